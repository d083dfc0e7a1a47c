package domains

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

// The fuzz target's clock and domain; the seed PFX files in testdata/fuzz/FuzzImport are valid for them.
var (
	fuzzNow    = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	fuzzSuffix = "corp.example.com"
	fuzzPass   = "fuzz-pfx-password"
)

var writeFuzzSeeds = flag.Bool("write-fuzz-seeds", false, "regenerate testdata/fuzz/FuzzImport seed files")

// FuzzImport feeds arbitrary bytes and passwords to Import: it must never panic, a success must hold every
// invariant the activation flow relies on, and an error must never quote a (long) password.
func FuzzImport(f *testing.F) {
	f.Add([]byte{}, "")
	f.Add([]byte{0x30, 0x80, 0x02, 0x01, 0x03}, "x")
	f.Fuzz(func(t *testing.T, pfx []byte, password string) {
		d, err := Import("fuzz", fuzzSuffix, pfx, password, fuzzNow)
		if err != nil {
			if len(password) >= 12 && strings.Contains(err.Error(), password) {
				t.Fatalf("error quotes the password: %v", err)
			}
			if d != nil {
				t.Fatal("Import returned a Domain and an error")
			}
			return
		}
		checkDomainInvariants(t, d)
	})
}

func checkDomainInvariants(t *testing.T, d *Domain) {
	t.Helper()
	n := len(d.Chain)
	if n < 1 || n > MaxChainLen {
		t.Fatalf("chain of %d certificates", n)
	}
	if !publicKeyEqual(d.Chain[0].PublicKey, d.key.Public()) {
		t.Fatal("leaf does not match the key")
	}
	for i := 0; i+1 < n; i++ {
		if err := verifySignature(d.Chain[i], d.Chain[i+1].PublicKey); err != nil {
			t.Fatalf("chain[%d] not signed by chain[%d]: %v", i, i+1, err)
		}
	}
	if !selfSigned(d.Chain[n-1]) {
		t.Fatal("last certificate is not a self-signed root")
	}
	if !CertMatchesSuffix(d.LeafCN(), fuzzSuffix) {
		t.Fatalf("leaf CN %q does not cover %q", d.LeafCN(), fuzzSuffix)
	}
	for _, c := range d.Chain {
		if fuzzNow.Before(c.NotBefore) || fuzzNow.After(c.NotAfter) || c.NotAfter.Before(d.Expires) {
			t.Fatalf("%s valid %v..%v, now %v, Expires %v", certName(c), c.NotBefore, c.NotAfter, fuzzNow, d.Expires)
		}
	}
	if _, h256, _ := d.RootHashes(); !d.TrustedBy([]string{strings.ToUpper(h256)}) {
		t.Fatal("not trusted by its own root hash")
	}
	if len(d.ChainBase64()) != n {
		t.Fatal("ChainBase64 length")
	}
	fw, mc := bytes.Repeat([]byte{0xA5}, NonceLen), bytes.Repeat([]byte{0x5A}, NonceLen)
	sig, err := d.Sign(fw, mc)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	sum := sha256.Sum256(append(append([]byte(nil), fw...), mc...))
	if err := rsa.VerifyPKCS1v15(d.Chain[0].PublicKey.(*rsa.PublicKey), crypto.SHA256, sum[:], sig); err != nil {
		t.Fatalf("signature does not verify: %v", err)
	}
}

// TestFuzzSeeds checks that the committed seed corpus still contains PFX files that import, so the fuzzer
// starts from inputs that reach the chain checks. With -write-fuzz-seeds it regenerates them first.
func TestFuzzSeeds(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzImport")
	if *writeFuzzSeeds {
		writeSeeds(t, dir)
	}
	valid := 0
	for _, name := range []string{"valid-modern-1cert", "valid-passwordless-2cert"} {
		pfx, password := readSeed(t, filepath.Join(dir, name))
		d, err := Import("fuzz", fuzzSuffix, pfx, password, fuzzNow)
		if err != nil {
			t.Errorf("seed %s does not import: %v", name, err)
			continue
		}
		checkDomainInvariants(t, d)
		valid++
	}
	if valid != 2 {
		t.Fatalf("%d valid seeds, want 2", valid)
	}
}

func writeSeeds(t *testing.T, dir string) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	opts := GenerateOptions{Suffix: fuzzSuffix, Now: fuzzNow.AddDate(0, -1, 0), NotAfter: fuzzNow.AddDate(20, 0, 0)}

	// Small: a single self-signed leaf, Modern encoding with a password (exercises MAC and PBES2).
	o1 := opts
	o1.ChainLen, o1.keys = 1, poolKeys(t, 0, 1)
	key, chain, err := generateChain(o1)
	if err != nil {
		t.Fatal(err)
	}
	modern := mustPFX(t, key, chain, fuzzPass)

	// No MAC and no encryption: mutations of the certificates reach the chain checks instead of failing
	// the MAC. The CA comes first, so the leaf search matters.
	o2 := opts
	o2.ChainLen, o2.keys = 2, poolKeys(t, 0, 2)
	key, chain, err = generateChain(o2)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := pkcs12.Passwordless.Encode(key, chain[1], chain[:1], "")
	if err != nil {
		t.Fatal(err)
	}

	// Near misses: valid structure, one check fails each.
	o3 := opts
	o3.ChainLen, o3.keys, o3.OmitAMTEKU = 1, poolKeys(t, 2, 1), true
	key, chain, err = generateChain(o3)
	if err != nil {
		t.Fatal(err)
	}
	noEKU, err := pkcs12.Passwordless.Encode(key, chain[0], nil, "")
	if err != nil {
		t.Fatal(err)
	}

	for name, seed := range map[string]struct {
		pfx      []byte
		password string
	}{
		"valid-modern-1cert":       {modern, fuzzPass},
		"valid-passwordless-2cert": {plain, ""},
		"wrong-password":           {modern, "not-the-password"},
		"passwordless-no-eku":      {noEKU, ""},
		"garbage":                  {[]byte("MIIKmQIBAzCCCl8GCSqGSIb3DQEHAaCCClAEggpMMIIKSDCCBP8GCSqGSIb3"), "changeit"},
	} {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\nstring(%q)\n", seed.pfx, seed.password)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// readSeed parses the two-value corpus file format written by writeSeeds (and by go test -fuzz).
func readSeed(t *testing.T, path string) ([]byte, string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read seed (regenerate with go test -run TestFuzzSeeds -write-fuzz-seeds): %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	if len(lines) != 3 || lines[0] != "go test fuzz v1" {
		t.Fatalf("%s: not a two-value fuzz corpus file", path)
	}
	pfx, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
	if err != nil {
		t.Fatalf("%s: bytes: %v", path, err)
	}
	password, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[2], "string("), ")"))
	if err != nil {
		t.Fatalf("%s: password: %v", path, err)
	}
	return []byte(pfx), password
}
