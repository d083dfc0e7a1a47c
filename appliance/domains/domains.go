// Package domains turns a site's provisioning certificate (a PKCS#12/PFX file and its password) into a Domain:
// a checked certificate chain in the order AMT wants it, the root fingerprints the device's trusted-root list is
// compared with, and the signer for the AdminSetup nonce signature. It also holds the two DNS-suffix rules the
// box needs: which domain a device's reported suffix selects (MatchSuffix), and whether a certificate's CN covers
// the suffix the firmware itself will check (CertMatchesSuffix).
//
// Every check happens once, in Import, so that a certificate that cannot activate a device is refused when the
// technician uploads it, with an error that says what is wrong and what to do, instead of failing later on a
// device in the middle of AdminSetup.
//
// Custody: the private key and the PFX password must never leave this package in any form other than a
// signature. Nothing here logs; no error, String or Format output contains the password, the PFX bytes or key
// material. The key is held unexported and Domain formats itself without it.
package domains

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

// MinRSABits is the smallest RSA modulus accepted for the provisioning key and for every certificate in the
// chain; AMT firmware and RPS both refuse anything smaller.
const MinRSABits = 2048

// MaxChainLen bounds the number of certificates accepted in a PFX. Real provisioning chains are 3 or 4 long;
// the bound keeps chain ordering cheap on hostile input.
const MaxChainLen = 10

// NonceLen is the length of both AdminSetup nonces (ConfigurationNonce from the firmware, McNonce from us).
const NonceLen = 20

// OIDAMTProvisioning is the extended key usage Intel AMT requires on a provisioning certificate
// ("Intel AMT Remote Configuration").
var OIDAMTProvisioning = asn1.ObjectIdentifier{2, 16, 840, 1, 113741, 1, 2, 3}

// Domain is a provisioning certificate decoded and checked, ready to activate devices. It is immutable after
// Import and safe for concurrent use.
type Domain struct {
	Name    string              // RPS "profileName" of the domain
	Suffix  string              // DNS suffix, normalised (lower case, no trailing dot)
	Chain   []*x509.Certificate // AMT order: leaf first, then each issuer, self-signed root last
	Expires time.Time           // earliest NotAfter across the chain

	key                              *rsa.PrivateKey // never formatted, logged or returned
	rootSHA1, rootSHA256, rootSHA384 string
}

// Import decodes pfx with password and checks everything AMT will check during Admin Control Mode activation
// that can be checked without a device:
//   - the PFX decodes with the password;
//   - the private key is RSA of at least MinRSABits, and so is every certificate's key;
//   - the leaf is the certificate whose public key matches the private key, wherever it sits in the PFX
//     (RPS assumes the first certificate bag; exporters do not guarantee that);
//   - the certificates form one chain, each link's signature verifying, ending at a self-signed root that is
//     included, with nothing left over; any bag order and 1..MaxChainLen certificates work;
//   - the leaf carries the AMT provisioning EKU (OIDAMTProvisioning);
//   - the leaf CN covers suffix (see CertMatchesSuffix);
//   - every certificate is valid at now (zero now means time.Now()).
//
// name must match RPS's profileName rule (letters, digits, '_' and '-'); suffix must be a DNS name of at least
// two labels. Identical certificates repeated in the PFX are tolerated and kept once. Whether an empty password
// is acceptable is a policy for the caller; Import decodes password-less files too.
func Import(name, suffix string, pfx []byte, password string, now time.Time) (*Domain, error) {
	d, err := doImport(name, suffix, pfx, password, now)
	if err != nil {
		return nil, fmt.Errorf("import domain %q: %w", name, err)
	}
	return d, nil
}

func doImport(name, suffix string, pfx []byte, password string, now time.Time) (*Domain, error) {
	if now.IsZero() {
		now = time.Now()
	}
	if err := validateName(name); err != nil {
		return nil, err
	}
	suffix = normaliseSuffix(suffix)
	if err := validateSuffix(suffix); err != nil {
		return nil, err
	}
	if len(pfx) == 0 {
		return nil, errors.New("decode PFX: the PFX file is empty")
	}
	if err := checkPassword(password); err != nil {
		return nil, err
	}
	if err := checkKDFIterations(pfx); err != nil {
		return nil, err
	}

	anyKey, first, rest, err := pkcs12.DecodeChain(pfx, password)
	if err != nil {
		return nil, decodeError(err, pfx)
	}
	key, err := checkPrivateKey(anyKey)
	if err != nil {
		return nil, err
	}

	certs := dedupe(append([]*x509.Certificate{first}, rest...))
	if len(certs) > MaxChainLen {
		return nil, fmt.Errorf("check chain: the PFX holds %d certificates, at most %d are supported; export only the provisioning certificate and its issuers", len(certs), MaxChainLen)
	}
	for _, c := range certs {
		if err := checkCertKey(c); err != nil {
			return nil, err
		}
	}

	chain, err := orderChain(&key.PublicKey, certs)
	if err != nil {
		return nil, fmt.Errorf("check chain: %w", err)
	}
	leaf := chain[0]
	if err := checkAMTEKU(leaf); err != nil {
		return nil, err
	}
	if !CertMatchesSuffix(leaf.Subject.CommonName, suffix) {
		return nil, fmt.Errorf("check leaf CN: the provisioning certificate CN %q does not cover the domain suffix %q; AMT would refuse it on that network (use a certificate issued for the suffix, or fix the suffix)", leaf.Subject.CommonName, suffix)
	}
	expires := chain[0].NotAfter
	for _, c := range chain {
		if err := checkValidity(c, now); err != nil {
			return nil, err
		}
		if c.NotAfter.Before(expires) {
			expires = c.NotAfter
		}
	}

	root := chain[len(chain)-1].Raw
	s1, s256, s384 := sha1.Sum(root), sha256.Sum256(root), sha512.Sum384(root)
	return &Domain{
		Name:       name,
		Suffix:     suffix,
		Chain:      chain,
		Expires:    expires,
		key:        key,
		rootSHA1:   hex.EncodeToString(s1[:]),
		rootSHA256: hex.EncodeToString(s256[:]),
		rootSHA384: hex.EncodeToString(s384[:]),
	}, nil
}

// ChainBase64 returns the standard base64 of each chain certificate's DER, in AMT order (leaf first, root last):
// exactly what AddNextCertInChain's NextCertificate carries.
func (d *Domain) ChainBase64() []string {
	out := make([]string, len(d.Chain))
	for i, c := range d.Chain {
		out[i] = base64.StdEncoding.EncodeToString(c.Raw)
	}
	return out
}

// RootHashes returns the lowercase hex SHA-1, SHA-256 and SHA-384 of the root certificate's DER, the forms in
// which AMT lists its trusted roots.
func (d *Domain) RootHashes() (sha1Hex, sha256Hex, sha384Hex string) {
	return d.rootSHA1, d.rootSHA256, d.rootSHA384
}

// TrustedBy reports whether the domain's root is among deviceHashes, the trusted-root hash list as rpc-go sends
// it (payload.certHashes). The algorithm is chosen by length as RPS does: 40 hex digits compare with SHA-1, 64 with
// SHA-256, 96 with SHA-384; other lengths are ignored; case does not matter. Note the list includes roots the
// owner disabled in MEBx (rpc-go sends no active flag), so true here is necessary, not sufficient.
func (d *Domain) TrustedBy(deviceHashes []string) bool {
	for _, h := range deviceHashes {
		var want string
		switch len(h) {
		case 40:
			want = d.rootSHA1
		case 64:
			want = d.rootSHA256
		case 96:
			want = d.rootSHA384
		default:
			continue
		}
		if strings.EqualFold(h, want) {
			return true
		}
	}
	return false
}

// Sign makes the AdminSetup DigitalSignature: RSASSA-PKCS1-v1_5 with SHA-256 (SigningAlgorithm 2) over
// fwNonce ‖ mcNonce, firmware nonce first. Both nonces must be NonceLen bytes; anything else means a decoding
// bug upstream, and a signature over it would only fail on the device.
func (d *Domain) Sign(fwNonce, mcNonce []byte) ([]byte, error) {
	if len(fwNonce) != NonceLen {
		return nil, fmt.Errorf("sign AdminSetup nonces: firmware nonce is %d bytes, want %d", len(fwNonce), NonceLen)
	}
	if len(mcNonce) != NonceLen {
		return nil, fmt.Errorf("sign AdminSetup nonces: McNonce is %d bytes, want %d", len(mcNonce), NonceLen)
	}
	h := sha256.New()
	h.Write(fwNonce)
	h.Write(mcNonce)
	sig, err := rsa.SignPKCS1v15(rand.Reader, d.key, crypto.SHA256, h.Sum(nil))
	if err != nil {
		return nil, fmt.Errorf("sign AdminSetup nonces: %w", err)
	}
	return sig, nil
}

// LeafCN returns the provisioning certificate's subject common name.
func (d *Domain) LeafCN() string { return d.Chain[0].Subject.CommonName }

// String describes the domain without key material, so that a Domain handed to a logger by mistake stays safe.
func (d Domain) String() string {
	return fmt.Sprintf("domain %s (suffix %s, leaf CN %q, %d certificates, root sha256 %s, expires %s)",
		d.Name, d.Suffix, cnOf(d.Chain), len(d.Chain), d.rootSHA256, d.Expires.UTC().Format(time.RFC3339))
}

// GoString keeps %#v from dumping the private key's fields.
func (d Domain) GoString() string { return "domains.Domain{" + d.String() + "}" }

// Format makes every verb (%v, %+v, %d, ...) print String: fmt would otherwise walk the unexported key's fields.
func (d Domain) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		fmt.Fprint(f, d.GoString())
		return
	}
	fmt.Fprint(f, d.String())
}

func cnOf(chain []*x509.Certificate) string {
	if len(chain) == 0 {
		return ""
	}
	return chain[0].Subject.CommonName
}

// validateName applies RPS's profileName rule; the name becomes a Vault path element (certs/<name>), so the
// rule also keeps path separators out.
func validateName(name string) error {
	if name == "" {
		return errors.New("check domain name: the name is empty")
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return fmt.Errorf("check domain name: %q may contain only letters, digits, '_' and '-'", name)
		}
	}
	return nil
}

// checkPassword catches what PKCS#12 cannot encode (passwords are UCS-2 there) before decoding, so the
// technician is not told the password is wrong when it cannot be represented at all. The password itself is
// never quoted.
func checkPassword(pw string) error {
	if !utf8.ValidString(pw) {
		return errors.New("decode PFX: the PFX password is not valid UTF-8")
	}
	for _, r := range pw {
		if r > 0xFFFF {
			return errors.New("decode PFX: the PFX password contains a character outside the Unicode Basic Multilingual Plane, which PKCS#12 cannot encode")
		}
	}
	return nil
}

// decodeError translates go-pkcs12's errors into what a technician can act on. Its messages carry no secret
// material (they describe structure, never content), so the cause is kept for diagnosis.
func decodeError(err error, pfx []byte) error {
	var notImpl pkcs12.NotImplementedError
	switch {
	case strings.HasPrefix(err.Error(), "pkcs12: error reading P12 data"):
		// The outer DER structure is wrong: the password played no part, and the asn1 detail helps nobody.
		return fmt.Errorf("decode PFX: the file is not a PKCS#12 archive (%s)", notPFXHint(pfx))
	case errors.As(err, &notImpl):
		return fmt.Errorf("decode PFX: the PFX uses a PKCS#12 layout or algorithm this box cannot read; re-export it (AES-256 or 3DES, one key, certificates in cert bags): %w", err)
	case err.Error() == "pkcs12: private key missing":
		return errors.New("decode PFX: the PFX holds no private key; export the provisioning certificate together with its private key")
	case err.Error() == "pkcs12: certificate missing":
		return errors.New("decode PFX: the PFX holds no certificate; export the provisioning certificate with its chain")
	case err.Error() == "pkcs12: expected exactly one key bag":
		return errors.New("decode PFX: the PFX holds more than one private key; export only the provisioning certificate's key")
	default:
		return fmt.Errorf("decode PFX: the PFX password is wrong or the file is not a PKCS#12 archive: %w", err)
	}
}

// notPFXHint guesses what was uploaded instead of a binary PFX; text forms are the usual mistake because RPS's
// API carries the PFX as base64.
func notPFXHint(pfx []byte) string {
	text := strings.TrimSpace(string(pfx))
	switch {
	case strings.HasPrefix(text, "-----BEGIN"):
		return "it is PEM text; convert it with openssl pkcs12 -export, or upload the .pfx/.p12 file"
	case len(text) >= 16 && strings.Trim(text, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=\r\n") == "":
		return "it looks like base64 text; decode it to the binary .pfx/.p12 first"
	default:
		return "it is not DER-encoded PKCS#12 data"
	}
}

func checkPrivateKey(k any) (*rsa.PrivateKey, error) {
	key, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("check private key: the PFX key is %s; AMT provisioning certificates must use RSA", keyKind(k))
	}
	if bits := key.N.BitLen(); bits < MinRSABits {
		return nil, fmt.Errorf("check private key: the PFX key is RSA-%d; AMT requires at least RSA-%d", bits, MinRSABits)
	}
	return key, nil
}

func checkCertKey(c *x509.Certificate) error {
	pub, ok := c.PublicKey.(*rsa.PublicKey)
	if !ok {
		return fmt.Errorf("check certificate keys: certificate %s has a %s key; every certificate in an AMT provisioning chain must be RSA", certName(c), keyKind(c.PublicKey))
	}
	if bits := pub.N.BitLen(); bits < MinRSABits {
		return fmt.Errorf("check certificate keys: certificate %s has an RSA-%d key; AMT requires at least RSA-%d for every certificate in the chain", certName(c), bits, MinRSABits)
	}
	return nil
}

func keyKind(k any) string {
	switch k.(type) {
	case *rsa.PrivateKey, *rsa.PublicKey:
		return "RSA"
	case *ecdsa.PrivateKey, *ecdsa.PublicKey:
		return "ECDSA"
	case ed25519.PrivateKey, ed25519.PublicKey:
		return "Ed25519"
	case *ecdh.PrivateKey, *ecdh.PublicKey:
		return "ECDH"
	case nil:
		return "missing"
	default:
		// Only the Go type name: never the value.
		return fmt.Sprintf("%T", k)
	}
}

func checkValidity(c *x509.Certificate, now time.Time) error {
	if now.Before(c.NotBefore) {
		return fmt.Errorf("check validity: certificate %s is not yet valid: valid from %s (now %s); check the box's clock or wait", certName(c), c.NotBefore.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if now.After(c.NotAfter) {
		return fmt.Errorf("check validity: certificate %s expired at %s (now %s); renew it and export a new PFX", certName(c), c.NotAfter.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	return nil
}

// certName names a certificate the way a technician sees it in a certificate viewer.
func certName(c *x509.Certificate) string {
	if c.Subject.CommonName != "" {
		return fmt.Sprintf("CN=%q", c.Subject.CommonName)
	}
	if s := c.Subject.String(); s != "" {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprintf("with serial %x", c.SerialNumber)
}

// dedupe drops byte-identical repeats (some exporters include the leaf twice) so they do not count as stray
// certificates.
func dedupe(certs []*x509.Certificate) []*x509.Certificate {
	out := certs[:0:0]
	seen := make(map[string]bool, len(certs))
	for _, c := range certs {
		if c == nil || seen[string(c.Raw)] {
			continue
		}
		seen[string(c.Raw)] = true
		out = append(out, c)
	}
	return out
}
