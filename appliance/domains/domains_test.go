package domains

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

func TestImportRoundTrip(t *testing.T) {
	tests := []struct {
		name         string
		chainLen     int
		notAfter     time.Time // all certificates
		leafNotAfter time.Time // zero: same as notAfter
		wantExpires  time.Time
	}{
		{"self-signed leaf", 1, testNow.AddDate(1, 0, 0), time.Time{}, testNow.AddDate(1, 0, 0)},
		{"leaf and root", 2, testNow.AddDate(2, 0, 0), testNow.AddDate(0, 0, 30), testNow.AddDate(0, 0, 30)},
		{"one intermediate", 3, testNow.AddDate(1, 0, 0), testNow.AddDate(0, 6, 0), testNow.AddDate(0, 6, 0)},
		// The leaf outlives its CAs: the domain expires with the CAs.
		{"CAs expire first", 3, testNow.AddDate(0, 2, 0), testNow.AddDate(3, 0, 0), testNow.AddDate(0, 2, 0)},
		{"three intermediates", 5, testNow.AddDate(1, 0, 0), time.Time{}, testNow.AddDate(1, 0, 0)},
		{"longest accepted", MaxChainLen, testNow.AddDate(1, 0, 0), time.Time{}, testNow.AddDate(1, 0, 0)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key, chain := testChain(t, GenerateOptions{ChainLen: tc.chainLen, NotAfter: tc.notAfter, LeafNotAfter: tc.leafNotAfter})
			pfx := mustPFX(t, key, chain, testPassword)

			d, err := Import("corp_1", "Corp.Example.COM.", pfx, testPassword, testNow)
			if err != nil {
				t.Fatalf("Import: %v", err)
			}
			sameChain(t, d.Chain, chain)
			if d.Name != "corp_1" || d.Suffix != testSuffix {
				t.Errorf("Name, Suffix = %q, %q; want corp_1, %q", d.Name, d.Suffix, testSuffix)
			}
			if !d.Expires.Equal(tc.wantExpires) {
				t.Errorf("Expires = %v, want %v", d.Expires, tc.wantExpires)
			}
			if got, want := d.LeafCN(), "provision."+testSuffix; got != want {
				t.Errorf("LeafCN = %q, want %q", got, want)
			}

			b64 := d.ChainBase64()
			if len(b64) != len(chain) {
				t.Fatalf("ChainBase64 has %d entries, want %d", len(b64), len(chain))
			}
			for i, s := range b64 {
				der, err := base64.StdEncoding.DecodeString(s)
				if err != nil || !bytes.Equal(der, chain[i].Raw) {
					t.Errorf("ChainBase64[%d] does not decode to chain[%d] DER (err %v)", i, i, err)
				}
			}

			root := chain[len(chain)-1].Raw
			s1, s256, s384 := sha1.Sum(root), sha256.Sum256(root), sha512.Sum384(root)
			g1, g256, g384 := d.RootHashes()
			if g1 != hex.EncodeToString(s1[:]) || g256 != hex.EncodeToString(s256[:]) || g384 != hex.EncodeToString(s384[:]) {
				t.Errorf("RootHashes = %s %s %s, want hashes of %s", g1, g256, g384, certName(chain[len(chain)-1]))
			}

			fw, mc := bytes.Repeat([]byte{1}, NonceLen), bytes.Repeat([]byte{2}, NonceLen)
			sig, err := d.Sign(fw, mc)
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			digest := sha256.Sum256(append(append([]byte(nil), fw...), mc...))
			if err := rsa.VerifyPKCS1v15(chain[0].PublicKey.(*rsa.PublicKey), crypto.SHA256, digest[:], sig); err != nil {
				t.Errorf("signature does not verify with the leaf: %v", err)
			}
		})
	}
}

// TestImportBagOrder puts the certificates into the PFX in every order of the CAs and with the leaf in every
// position; the first-bag cases are what RPS gets wrong (it takes bag 0 as the leaf).
func TestImportBagOrder(t *testing.T) {
	key, chain := testChain(t, GenerateOptions{ChainLen: 5})
	leaf, cas := chain[0], chain[1:]

	check := func(t *testing.T, bags []*x509.Certificate) {
		t.Helper()
		pfx := mustPFX(t, key, bags, testPassword)
		d, err := Import("corp", testSuffix, pfx, testPassword, testNow)
		if err != nil {
			t.Fatalf("Import with bags %v: %v", names(bags), err)
		}
		sameChain(t, d.Chain, chain)
	}

	t.Run("CA permutations", func(t *testing.T) {
		n := 0
		permutations(cas, func(p []*x509.Certificate) {
			check(t, append([]*x509.Certificate{leaf}, p...))
			n++
		})
		if n != 24 {
			t.Fatalf("tried %d CA orders, want 24", n)
		}
	})

	t.Run("leaf not in the first bag", func(t *testing.T) {
		r := mrand.New(mrand.NewPCG(1, 2))
		for pos := 1; pos < len(chain); pos++ {
			shuffled := append([]*x509.Certificate(nil), cas...)
			r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
			bags := append(append(append([]*x509.Certificate(nil), shuffled[:pos]...), leaf), shuffled[pos:]...)
			pfx := mustPFX(t, key, bags, testPassword)

			// Prove the file really has a CA in the first certificate bag: go-pkcs12 reports bag 0 as "the"
			// certificate, which is what RPS would send as the leaf.
			_, first, _, err := pkcs12.DecodeChain(pfx, testPassword)
			if err != nil {
				t.Fatal(err)
			}
			if first.Equal(leaf) {
				t.Fatalf("leaf at position %d is still the first bag", pos)
			}
			check(t, bags)
		}
	})

	t.Run("duplicate bags are tolerated", func(t *testing.T) {
		check(t, []*x509.Certificate{chain[3], leaf, chain[1], leaf, chain[2], chain[4], chain[1]})
	})
}

// TestImportOpenSSL checks files made by the tool technicians actually use, in its default (AES-256, PBKDF2,
// HMAC-SHA-256), 3DES (as Windows "TripleDES-SHA1" exports) and legacy RC2 forms.
func TestImportOpenSSL(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl not installed")
	}
	key, chain := testChain(t, GenerateOptions{ChainLen: 4})
	dir := t.TempDir()
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM := func(name, typ string, ders ...[]byte) string {
		var b bytes.Buffer
		for _, der := range ders {
			if err := pem.Encode(&b, &pem.Block{Type: typ, Bytes: der}); err != nil {
				t.Fatal(err)
			}
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	keyPEM := writePEM("key.pem", "PRIVATE KEY", keyDER)
	leafPEM := writePEM("leaf.pem", "CERTIFICATE", chain[0].Raw)
	// CAs root first, the reverse of chain order.
	caPEM := writePEM("cas.pem", "CERTIFICATE", chain[3].Raw, chain[1].Raw, chain[2].Raw)

	for _, tc := range []struct {
		name  string
		extra []string
	}{
		{"default", nil},
		{"3DES", []string{"-certpbe", "PBE-SHA1-3DES", "-keypbe", "PBE-SHA1-3DES", "-macalg", "sha1"}},
		{"legacy", []string{"-legacy"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(dir, tc.name+".p12")
			args := append([]string{"pkcs12", "-export", "-inkey", keyPEM, "-in", leafPEM, "-certfile", caPEM,
				"-passout", "env:PFX_PASSWORD", "-out", out}, tc.extra...)
			cmd := exec.Command(openssl, args...)
			cmd.Env = append(os.Environ(), "PFX_PASSWORD="+testPassword)
			if msg, err := cmd.CombinedOutput(); err != nil {
				if tc.name == "legacy" {
					t.Skipf("openssl without the legacy provider: %v: %s", err, msg)
				}
				t.Fatalf("openssl %v: %v: %s", args, err, msg)
			}
			pfx, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			d, err := Import("corp", testSuffix, pfx, testPassword, testNow)
			if err != nil {
				t.Fatalf("Import of openssl %s PFX: %v", tc.name, err)
			}
			sameChain(t, d.Chain, chain)
		})
	}
}

// TestImportSHA1Chain: public roots that AMT trusts are often SHA-1 self-signed; crypto/x509's
// CheckSignatureFrom refuses SHA-1, Import must not.
func TestImportSHA1Chain(t *testing.T) {
	keys := poolKeys(t, 0, 3)
	rootT := caTemplate("Old SHA-1 Root")
	rootT.SignatureAlgorithm = x509.SHA1WithRSA
	root := makeCert(t, rootT, nil, &keys[2].PublicKey, keys[2])
	interT := caTemplate("Old SHA-1 Intermediate")
	interT.SignatureAlgorithm = x509.SHA1WithRSA
	inter := makeCert(t, interT, root, &keys[1].PublicKey, keys[2])
	leaf := makeCert(t, leafTemplate("provision."+testSuffix), inter, &keys[0].PublicKey, keys[1])

	if err := inter.CheckSignatureFrom(root); err == nil {
		t.Fatal("crypto/x509 now accepts SHA-1 links; this test no longer proves anything")
	}
	d, err := Import("corp", testSuffix, mustPFX(t, keys[0], []*x509.Certificate{root, leaf, inter}, testPassword), testPassword, testNow)
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	sameChain(t, d.Chain, []*x509.Certificate{leaf, inter, root})
}

func TestImportErrors(t *testing.T) {
	keys := poolKeys(t, 0, poolSize)
	good := func(t *testing.T, opts GenerateOptions) []byte {
		key, chain := testChain(t, opts)
		bags := chain
		if opts.OmitRoot {
			bags = chain[:len(chain)-1]
		}
		return mustPFX(t, key, bags, testPassword)
	}
	valid := good(t, GenerateOptions{})

	tests := []struct {
		name     string
		domain   string // default "corp"
		suffix   string // default testSuffix
		noSuffix bool   // pass "" as the suffix
		password string // default testPassword
		pfx      func(t *testing.T) []byte
		want     []string // substrings of the error
	}{
		{
			name:     "wrong password",
			password: "Not-The-Password-12345",
			pfx:      func(t *testing.T) []byte { return valid },
			want:     []string{"decode PFX", "the PFX password is wrong or the file is not a PKCS#12 archive"},
		},
		{
			name: "PEM instead of a PFX",
			pfx:  func(t *testing.T) []byte { return []byte("-----BEGIN CERTIFICATE-----\nMIIB\n") },
			want: []string{"decode PFX: the file is not a PKCS#12 archive (it is PEM text"},
		},
		{
			name: "base64 of a PFX",
			pfx:  func(t *testing.T) []byte { return []byte(base64.StdEncoding.EncodeToString(valid) + "\n") },
			want: []string{"the file is not a PKCS#12 archive (it looks like base64 text; decode it"},
		},
		{
			name: "random bytes",
			pfx:  func(t *testing.T) []byte { return []byte{0x04, 0x03, 0xff, 0x00, 0x10} },
			want: []string{"the file is not a PKCS#12 archive (it is not DER-encoded PKCS#12 data)"},
		},
		{
			name: "no private key",
			pfx: func(t *testing.T) []byte {
				_, chain := testChain(t, GenerateOptions{})
				pfx, err := pkcs12.Modern.EncodeTrustStore(chain, testPassword)
				if err != nil {
					t.Fatal(err)
				}
				return pfx
			},
			want: []string{"the PFX holds no private key"},
		},
		{
			name: "empty PFX",
			pfx:  func(t *testing.T) []byte { return nil },
			want: []string{"the PFX file is empty"},
		},
		{
			name:     "password outside UCS-2",
			password: "pass\U0001F511word-xyz",
			pfx:      func(t *testing.T) []byte { return valid },
			want:     []string{"outside the Unicode Basic Multilingual Plane"},
		},
		{
			name: "expired leaf",
			pfx: func(t *testing.T) []byte {
				return good(t, GenerateOptions{LeafNotBefore: testNow.AddDate(-2, 0, 0), LeafNotAfter: testNow.AddDate(0, 0, -1)})
			},
			want: []string{`certificate CN="provision.corp.example.com" expired at 2026-02-28T12:00:00Z`},
		},
		{
			name: "expired intermediate",
			pfx: func(t *testing.T) []byte {
				return good(t, GenerateOptions{Now: testNow.AddDate(-2, 0, 0), NotAfter: testNow.AddDate(0, -1, 0), LeafNotAfter: testNow.AddDate(1, 0, 0)})
			},
			want: []string{`certificate CN="amtedge demo intermediate CA 1" expired at 2026-02-01T12:00:00Z`},
		},
		{
			name: "leaf not yet valid",
			pfx: func(t *testing.T) []byte {
				return good(t, GenerateOptions{LeafNotBefore: testNow.Add(48 * time.Hour)})
			},
			want: []string{`certificate CN="provision.corp.example.com" is not yet valid: valid from 2026-03-03T12:00:00Z`},
		},
		{
			name: "1024-bit leaf key",
			pfx: func(t *testing.T) []byte {
				return good(t, GenerateOptions{keys: []*rsa.PrivateKey{weakKey, keys[1], keys[2]}})
			},
			want: []string{"check private key", "RSA-1024", "at least RSA-2048"},
		},
		{
			name: "1024-bit intermediate key",
			pfx: func(t *testing.T) []byte {
				return good(t, GenerateOptions{keys: []*rsa.PrivateKey{keys[0], weakKey, keys[2]}})
			},
			want: []string{`certificate CN="amtedge demo intermediate CA 1" has an RSA-1024 key`},
		},
		{
			name: "ECDSA key",
			pfx: func(t *testing.T) []byte {
				ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
				if err != nil {
					t.Fatal(err)
				}
				leaf := makeCert(t, leafTemplate("provision."+testSuffix), nil, &ek.PublicKey, ek)
				pfx, err := pkcs12.Modern.Encode(ek, leaf, nil, testPassword)
				if err != nil {
					t.Fatal(err)
				}
				return pfx
			},
			want: []string{"the PFX key is ECDSA; AMT provisioning certificates must use RSA"},
		},
		{
			name: "missing AMT EKU",
			pfx:  func(t *testing.T) []byte { return good(t, GenerateOptions{OmitAMTEKU: true}) },
			want: []string{"lacks the Intel AMT provisioning extended key usage 2.16.840.1.113741.1.2.3", "it has: serverAuth (1.3.6.1.5.5.7.3.1)"},
		},
		{
			name: "no EKU extension at all",
			pfx: func(t *testing.T) []byte {
				tmpl := leafTemplate("provision." + testSuffix)
				tmpl.ExtKeyUsage, tmpl.UnknownExtKeyUsage = nil, nil
				leaf := makeCert(t, tmpl, nil, &keys[0].PublicKey, keys[0])
				return mustPFX(t, keys[0], []*x509.Certificate{leaf}, testPassword)
			},
			want: []string{"2.16.840.1.113741.1.2.3", "it has no extended key usage extension"},
		},
		{
			name: "CN does not cover suffix",
			pfx:  func(t *testing.T) []byte { return good(t, GenerateOptions{LeafCN: "provision.other.example.net"}) },
			want: []string{`CN "provision.other.example.net"`, `domain suffix "corp.example.com"`},
		},
		{
			name: "no root",
			pfx:  func(t *testing.T) []byte { return good(t, GenerateOptions{OmitRoot: true}) },
			want: []string{"the PFX has no self-signed root certificate; export the whole chain", `"CN=amtedge demo root CA,O=amtedge demo"`},
		},
		{
			name: "unrelated extra certificate",
			pfx: func(t *testing.T) []byte {
				key, chain := testChain(t, GenerateOptions{})
				other := makeCert(t, caTemplate("Unrelated Root"), nil, &keys[5].PublicKey, keys[5])
				return mustPFX(t, key, []*x509.Certificate{chain[0], other, chain[1], chain[2]}, testPassword)
			},
			want: []string{`certificate CN="Unrelated Root" is not part of the chain`, "remove it from the PFX"},
		},
		{
			name: "broken signature link",
			pfx: func(t *testing.T) []byte {
				key, chain := testChain(t, GenerateOptions{})
				// Same name as the real intermediate, issued by the same root, but a different key: the leaf's
				// issuer name matches, its signature does not.
				imposter := makeCert(t, &x509.Certificate{
					Subject: chain[1].Subject, IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
				}, chain[2], &keys[6].PublicKey, keys[2])
				return mustPFX(t, key, []*x509.Certificate{chain[0], imposter, chain[2]}, testPassword)
			},
			want: []string{`the signature of certificate CN="provision.corp.example.com" does not verify with the key of its issuer CN="amtedge demo intermediate CA 1"`},
		},
		{
			name: "key matches no certificate",
			pfx: func(t *testing.T) []byte {
				_, chain := testChain(t, GenerateOptions{})
				return mustPFX(t, keys[7], chain, testPassword)
			},
			want: []string{"no certificate in the PFX matches its private key"},
		},
		{
			name: "too many certificates",
			pfx: func(t *testing.T) []byte {
				key, chain := testChain(t, GenerateOptions{ChainLen: MaxChainLen})
				other := makeCert(t, caTemplate("Unrelated Root"), nil, &keys[11].PublicKey, keys[11])
				return mustPFX(t, key, append(chain, other), testPassword)
			},
			want: []string{"the PFX holds 11 certificates, at most 10 are supported"},
		},
		{name: "empty suffix", noSuffix: true, pfx: func(t *testing.T) []byte { return valid }, want: []string{"check domain suffix: the suffix is empty"}},
		{name: "single-label suffix", suffix: "corp", pfx: func(t *testing.T) []byte { return valid }, want: []string{`"corp" has a single label`}},
		{name: "suffix with underscore", suffix: "my_corp.example.com", pfx: func(t *testing.T) []byte { return valid }, want: []string{`contains '_'`}},
		{name: "suffix with empty label", suffix: "corp..com", pfx: func(t *testing.T) []byte { return valid }, want: []string{"empty label"}},
		{name: "suffix label with hyphen edge", suffix: "-corp.example.com", pfx: func(t *testing.T) []byte { return valid }, want: []string{"starts or ends with '-'"}},
		{name: "bad domain name", domain: "corp/../x", pfx: func(t *testing.T) []byte { return valid }, want: []string{"may contain only letters, digits"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			domain, suffix, password := "corp", testSuffix, testPassword
			if tc.domain != "" {
				domain = tc.domain
			}
			if tc.suffix != "" || tc.noSuffix {
				suffix = tc.suffix
			}
			if tc.password != "" {
				password = tc.password
			}
			d, err := Import(domain, suffix, tc.pfx(t), password, testNow)
			if err == nil {
				t.Fatalf("Import succeeded (%v), want an error containing %q", d, tc.want)
			}
			msg := err.Error()
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q\n  does not contain %q", msg, w)
				}
			}
			if !strings.HasPrefix(msg, fmt.Sprintf("import domain %q: ", domain)) {
				t.Errorf("error %q does not name the operation and domain", msg)
			}
			for _, secret := range []string{testPassword, password} {
				if strings.Contains(msg, secret) {
					t.Errorf("error %q contains the PFX password", msg)
				}
			}
		})
	}
}

func TestTrustedBy(t *testing.T) {
	key, chain := testChain(t, GenerateOptions{ChainLen: 2})
	d, err := Import("corp", testSuffix, mustPFX(t, key, chain, testPassword), testPassword, testNow)
	if err != nil {
		t.Fatal(err)
	}
	h1, h256, h384 := d.RootHashes()
	leafSum := sha256.Sum256(chain[0].Raw)
	leaf256 := hex.EncodeToString(leafSum[:])
	other1, other384 := strings.Repeat("ab", 20), strings.Repeat("cd", 48)

	tests := []struct {
		name   string
		hashes []string
		want   bool
	}{
		{"SHA-1", []string{other1, h1}, true},
		{"SHA-256", []string{h256}, true},
		{"SHA-384", []string{other384, h384}, true},
		{"upper case", []string{strings.ToUpper(h256)}, true},
		{"mixed case SHA-384", []string{strings.ToUpper(h384[:48]) + h384[48:]}, true},
		{"leaf hash is not the root", []string{leaf256}, false},
		{"other roots only", []string{other1, other384, strings.Repeat("0", 64)}, false},
		{"empty list", nil, false},
		{"SHA-256 truncated to an unknown length", []string{h256[:63]}, false},
		{"SHA-384 prefix of SHA-1 length is compared as SHA-1", []string{h384[:40]}, false},
		{"SHA-256 with a separator appended", []string{h256 + " "}, false},
		{"unknown lengths ignored, later match found", []string{"", "abc", h384 + "00", h1}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := d.TrustedBy(tc.hashes); got != tc.want {
				t.Errorf("TrustedBy(%v) = %v, want %v", tc.hashes, got, tc.want)
			}
		})
	}
}

func TestSign(t *testing.T) {
	key, chain := testChain(t, GenerateOptions{ChainLen: 2})
	d, err := Import("corp", testSuffix, mustPFX(t, key, chain, testPassword), testPassword, testNow)
	if err != nil {
		t.Fatal(err)
	}
	fw, mc := make([]byte, NonceLen), make([]byte, NonceLen)
	rand.Read(fw)
	rand.Read(mc)
	sig, err := d.Sign(fw, mc)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	pub := chain[0].PublicKey.(*rsa.PublicKey)
	verify := func(first, second []byte) error {
		sum := sha256.Sum256(append(append([]byte(nil), first...), second...))
		return rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig)
	}
	if err := verify(fw, mc); err != nil {
		t.Errorf("signature over fwNonce||mcNonce does not verify with the leaf key: %v", err)
	}
	if err := verify(mc, fw); err == nil {
		t.Error("signature also verifies over mcNonce||fwNonce; the nonce order is not what AMT expects")
	}
	if len(sig) != pub.Size() {
		t.Errorf("signature is %d bytes, want %d", len(sig), pub.Size())
	}

	for _, tc := range []struct {
		name   string
		fw, mc []byte
		want   string
	}{
		{"short firmware nonce", fw[:19], mc, "firmware nonce is 19 bytes, want 20"},
		{"long McNonce", fw, append(mc, 0), "McNonce is 21 bytes, want 20"},
		{"nil firmware nonce", nil, mc, "firmware nonce is 0 bytes"},
		{"base64 instead of bytes", []byte(base64.StdEncoding.EncodeToString(fw)), mc, "firmware nonce is 28 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := d.Sign(tc.fw, tc.mc); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Sign error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// TestDomainFormatHidesKey: a Domain passed to a logger or %v by mistake must not print the private key.
func TestDomainFormatHidesKey(t *testing.T) {
	key, chain := testChain(t, GenerateOptions{ChainLen: 2})
	d, err := Import("corp", testSuffix, mustPFX(t, key, chain, testPassword), testPassword, testNow)
	if err != nil {
		t.Fatal(err)
	}
	secrets := []string{key.D.String(), key.D.Text(16), key.Primes[0].String(), key.Primes[0].Text(16)}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%d", "%x", "%q"} {
		for _, v := range []any{d, *d, []*Domain{d}, struct{ D *Domain }{d}} {
			out := fmt.Sprintf(verb, v)
			for _, s := range secrets {
				if strings.Contains(out, s[:32]) {
					t.Fatalf("fmt %s of %T prints key material: %.200s", verb, v, out)
				}
			}
		}
	}
	if s := d.String(); !strings.Contains(s, "corp") || !strings.Contains(s, "provision.corp.example.com") {
		t.Errorf("String() = %q, want it to name the domain and leaf CN", s)
	}
}

// TestGenerateProvisioningPFX runs the public generator with fresh keys, as the demo does.
func TestGenerateProvisioningPFX(t *testing.T) {
	pfx, rootSHA256, err := GenerateProvisioningPFX(GenerateOptions{Suffix: "site1.example.org", Password: testPassword, ChainLen: 2})
	if err != nil {
		t.Fatalf("GenerateProvisioningPFX: %v", err)
	}
	d, err := Import("site1", "site1.example.org", pfx, testPassword, time.Now())
	if err != nil {
		t.Fatalf("Import of generated PFX: %v", err)
	}
	if _, h256, _ := d.RootHashes(); h256 != rootSHA256 {
		t.Errorf("returned root SHA-256 %s, imported root %s", rootSHA256, h256)
	}
	if len(d.Chain) != 2 || d.LeafCN() != "provision.site1.example.org" {
		t.Errorf("chain %v, want [provision.site1.example.org, root]", names(d.Chain))
	}
	if !d.TrustedBy([]string{rootSHA256}) {
		t.Error("domain not trusted by its own root hash")
	}

	// Modern must stay readable by DecodeChain; if go-pkcs12 changes that, the generator needs LegacyRC2.
	if _, _, _, err := pkcs12.DecodeChain(pfx, testPassword); err != nil {
		t.Errorf("DecodeChain cannot read the generator's PFX: %v", err)
	}

	for _, tc := range []struct {
		name string
		opts GenerateOptions
		want string
	}{
		{"chain too long", GenerateOptions{Suffix: testSuffix, ChainLen: MaxChainLen + 1}, "chain length 11 is outside 1..10"},
		{"negative chain length", GenerateOptions{Suffix: testSuffix, ChainLen: -1}, "outside"},
		{"no suffix", GenerateOptions{ChainLen: 1}, "suffix"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := GenerateProvisioningPFX(tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}
