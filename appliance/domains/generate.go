package domains

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"time"

	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

// GenerateOptions describes a provisioning chain for GenerateProvisioningPFX. The zero value of every field but
// Suffix is a usable default; the fields after KeyBits deliberately produce certificates Import refuses, for
// tests and for demonstrating the box's error messages.
type GenerateOptions struct {
	Suffix   string    // DNS suffix the leaf covers (CN "provision."+Suffix); required
	Password string    // PFX password; may be empty
	ChainLen int       // certificates including leaf and root, 1..MaxChainLen; 0 means 3 (leaf, intermediate, root)
	Now      time.Time // certificates are valid from Now-1h; zero means time.Now()
	NotAfter time.Time // end of validity of every certificate; zero means Now + 1 year
	KeyBits  int       // RSA modulus size of every key; 0 means 2048

	LeafCN        string    // overrides the leaf CN
	OmitAMTEKU    bool      // leaf gets serverAuth only, without OIDAMTProvisioning
	LeafNotBefore time.Time // overrides the leaf's NotBefore when set
	LeafNotAfter  time.Time // overrides the leaf's NotAfter when set
	OmitRoot      bool      // leave the root out of the PFX (rootSHA256 still names it); ignored when ChainLen is 1

	// keys, when set (tests in this package), are used instead of fresh ones: keys[0] for the leaf, keys[i] for
	// the i-th issuer, the root last. Key generation dominates the cost of this function.
	keys []*rsa.PrivateKey
}

// GenerateProvisioningPFX makes a provisioning chain for demos and tests: a self-signed RSA root, ChainLen-2
// intermediates and a leaf with CN "provision."+Suffix whose EKU holds OIDAMTProvisioning and serverAuth. The
// PFX (leaf first, then its issuers up to the root) is encrypted with go-pkcs12's Modern encoder (PBES2
// AES-256-CBC, HMAC-SHA-256), which DecodeChain reads. It returns the PFX and the lowercase hex SHA-256 of the
// root's DER — the hash to add to a simulated device's trusted roots.
//
// The root is self-made, so real AMT firmware will not trust it unless it is added as a custom trusted root in
// MEBx; this is for the simulator, demos and tests.
func GenerateProvisioningPFX(opts GenerateOptions) (pfx []byte, rootSHA256 string, err error) {
	key, chain, err := generateChain(opts)
	if err != nil {
		return nil, "", fmt.Errorf("generate provisioning PFX: %w", err)
	}
	root := chain[len(chain)-1]
	bags := chain
	if opts.OmitRoot && len(chain) > 1 {
		bags = chain[:len(chain)-1]
	}
	pfx, err = encodePFX(key, bags, opts.Password)
	if err != nil {
		return nil, "", fmt.Errorf("generate provisioning PFX: %w", err)
	}
	sum := sha256.Sum256(root.Raw)
	return pfx, hex.EncodeToString(sum[:]), nil
}

// generateChain returns the leaf key and the chain in AMT order (leaf first, root last).
func generateChain(opts GenerateOptions) (*rsa.PrivateKey, []*x509.Certificate, error) {
	n := opts.ChainLen
	if n == 0 {
		n = 3
	}
	if n < 1 || n > MaxChainLen {
		return nil, nil, fmt.Errorf("chain length %d is outside 1..%d", n, MaxChainLen)
	}
	if opts.Suffix == "" && opts.LeafCN == "" {
		return nil, nil, errors.New("a suffix (or a leaf CN) is required")
	}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	notBefore := now.Add(-time.Hour)
	notAfter := opts.NotAfter
	if notAfter.IsZero() {
		notAfter = now.AddDate(1, 0, 0)
	}
	bits := opts.KeyBits
	if bits == 0 {
		bits = MinRSABits
	}

	keys := opts.keys
	if keys == nil {
		for range n {
			k, err := rsa.GenerateKey(rand.Reader, bits)
			if err != nil {
				return nil, nil, fmt.Errorf("generate RSA-%d key: %w", bits, err)
			}
			keys = append(keys, k)
		}
	}
	if len(keys) < n {
		return nil, nil, fmt.Errorf("%d keys given for a chain of %d", len(keys), n)
	}

	// Build from the root down: each certificate needs its issuer's certificate to be signed.
	chain := make([]*x509.Certificate, n)
	var parent *x509.Certificate
	var parentKey *rsa.PrivateKey
	for i := n - 1; i >= 0; i-- {
		tmpl := &x509.Certificate{
			NotBefore:             notBefore,
			NotAfter:              notAfter,
			BasicConstraintsValid: true,
		}
		serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
		if err != nil {
			return nil, nil, fmt.Errorf("generate serial number: %w", err)
		}
		tmpl.SerialNumber = serial
		switch {
		case i == 0:
			cn := opts.LeafCN
			if cn == "" {
				cn = "provision." + opts.Suffix
			}
			tmpl.Subject = pkix.Name{CommonName: cn, Organization: []string{"amtedge demo"}}
			tmpl.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
			tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
			if !opts.OmitAMTEKU {
				tmpl.UnknownExtKeyUsage = []asn1.ObjectIdentifier{OIDAMTProvisioning}
			}
			if !opts.LeafNotBefore.IsZero() {
				tmpl.NotBefore = opts.LeafNotBefore
			}
			if !opts.LeafNotAfter.IsZero() {
				tmpl.NotAfter = opts.LeafNotAfter
			}
		case i == n-1:
			tmpl.Subject = pkix.Name{CommonName: "amtedge demo root CA", Organization: []string{"amtedge demo"}}
			tmpl.IsCA = true
			tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
		default:
			tmpl.Subject = pkix.Name{CommonName: fmt.Sprintf("amtedge demo intermediate CA %d", n-1-i), Organization: []string{"amtedge demo"}}
			tmpl.IsCA = true
			tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
		}
		signer, signerKey := parent, parentKey
		if signer == nil { // the root, or a self-signed leaf when n == 1
			signer, signerKey = tmpl, keys[i]
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &keys[i].PublicKey, signerKey)
		if err != nil {
			return nil, nil, fmt.Errorf("create certificate %q: %w", tmpl.Subject.CommonName, err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, nil, fmt.Errorf("parse generated certificate %q: %w", tmpl.Subject.CommonName, err)
		}
		chain[i] = c
		parent, parentKey = c, keys[i]
	}
	return keys[0], chain, nil
}

// encodePFX writes key and certs into a PFX with the certificate bags in the order given. go-pkcs12 marks the
// first bag with the key's LocalKeyId whichever certificate it is; tests use that to build files whose first bag
// is not the leaf.
func encodePFX(key *rsa.PrivateKey, bags []*x509.Certificate, password string) ([]byte, error) {
	if len(bags) == 0 {
		return nil, errors.New("encode PFX: no certificates")
	}
	pfx, err := pkcs12.Modern.Encode(key, bags[0], bags[1:], password)
	if err != nil {
		return nil, fmt.Errorf("encode PFX: %w", err)
	}
	return pfx, nil
}
