package domains

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"strings"
	"testing"
	"time"

	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

// withMACIterations rewrites the MAC iteration count of a PFX (leaving the MAC itself stale, which does not
// matter: the count must be refused before anything is derived).
func withMACIterations(t *testing.T, pfx []byte, n int) []byte {
	t.Helper()
	var p struct {
		Version  int
		AuthSafe asn1.RawValue
		MacData  struct {
			Mac        asn1.RawValue
			MacSalt    []byte
			Iterations int
		}
	}
	if rest, err := asn1.Unmarshal(pfx, &p); err != nil || len(rest) != 0 {
		t.Fatalf("parse PFX: %v (%d trailing bytes)", err, len(rest))
	}
	p.MacData.Iterations = n
	out, err := asn1.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestImportRefusesHugeKDFIterations(t *testing.T) {
	key, chain := testChain(t, GenerateOptions{ChainLen: 2})
	pfx := mustPFX(t, key, chain, testPassword)

	// The rewrite itself must keep the file decodable, else the test below proves nothing.
	same := withMACIterations(t, pfx, 2048)
	if _, err := Import("corp", testSuffix, same, testPassword, testNow); err != nil {
		t.Fatalf("PFX rewritten with its own MAC iteration count does not import: %v", err)
	}

	start := time.Now()
	_, err := Import("corp", testSuffix, withMACIterations(t, pfx, 1<<31-1), testPassword, testNow)
	if err == nil || !strings.Contains(err.Error(), "the MAC asks for 2147483647 key-derivation iterations, more than the 1000000") {
		t.Fatalf("Import error = %v, want the MAC iteration count refused", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("refusing took %v; the iterations were run", d)
	}
}

func TestCheckAlgorithmIterations(t *testing.T) {
	pbkdf2 := func(n int) pkix.AlgorithmIdentifier {
		params, err := asn1.Marshal(struct {
			Salt       []byte
			Iterations int
			KeyLength  int
		}{[]byte("saltsalt"), n, 32})
		if err != nil {
			t.Fatal(err)
		}
		return pkix.AlgorithmIdentifier{Algorithm: oidPBKDF2, Parameters: asn1.RawValue{FullBytes: params}}
	}
	pbes2 := func(n int) pkix.AlgorithmIdentifier {
		params, err := asn1.Marshal(struct {
			KDF pkix.AlgorithmIdentifier
			Enc pkix.AlgorithmIdentifier
		}{pbkdf2(n), pkix.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 42}}})
		if err != nil {
			t.Fatal(err)
		}
		return pkix.AlgorithmIdentifier{Algorithm: oidPBES2, Parameters: asn1.RawValue{FullBytes: params}}
	}
	pbe3DES := func(n int) pkix.AlgorithmIdentifier {
		params, err := asn1.Marshal(struct {
			Salt       []byte
			Iterations int
		}{[]byte("saltsalt"), n})
		if err != nil {
			t.Fatal(err)
		}
		return pkix.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 1, 3}, Parameters: asn1.RawValue{FullBytes: params}}
	}
	tests := []struct {
		name string
		alg  pkix.AlgorithmIdentifier
		ok   bool
	}{
		{"PBES2 default", pbes2(2048), true},
		{"PBES2 at the limit", pbes2(MaxKDFIterations), true},
		{"PBES2 above the limit", pbes2(MaxKDFIterations + 1), false},
		{"PBES2 2^40", pbes2(1 << 40), false},
		{"PKCS#12 3DES default", pbe3DES(2048), true},
		{"PKCS#12 3DES huge", pbe3DES(1 << 31), false},
		{"unknown algorithm is left to go-pkcs12", pkix.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{1, 2, 3}}, true},
		{"unparsable parameters are left to go-pkcs12", pkix.AlgorithmIdentifier{Algorithm: oidPBES2, Parameters: asn1.RawValue{FullBytes: []byte{0x30, 0x05}}}, true},
	}
	for _, tc := range tests {
		err := checkAlgorithm("the test", tc.alg)
		if (err == nil) != tc.ok {
			t.Errorf("%s: checkAlgorithm = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

// TestCheckKDFIterationsAcceptsExporters: every encoder go-pkcs12 offers stays within the bound.
func TestCheckKDFIterationsAcceptsExporters(t *testing.T) {
	key, chain := testChain(t, GenerateOptions{ChainLen: 2})
	for name, enc := range map[string]*pkcs12.Encoder{
		"Modern2023": pkcs12.Modern2023, "Modern2026": pkcs12.Modern2026, "LegacyDES": pkcs12.LegacyDES,
		"LegacyRC2": pkcs12.LegacyRC2, "Java-like 10000": pkcs12.Modern2023.WithIterations(10000),
	} {
		pfx, err := enc.Encode(key, chain[0], chain[1:], testPassword)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Import("corp", testSuffix, pfx, testPassword, testNow); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}

	// PBMAC1 keeps its count inside the MAC algorithm's PBKDF2 parameters.
	pfx, err := pkcs12.Modern2026.Encode(key, chain[0], nil, testPassword)
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		Version  int
		AuthSafe asn1.RawValue
		MacData  struct {
			Mac struct {
				Algorithm pkix.AlgorithmIdentifier
				Digest    []byte
			}
			MacSalt    []byte `asn1:"optional"`
			Iterations int    `asn1:"optional,default:1"`
		}
	}
	if _, err := asn1.Unmarshal(pfx, &p); err != nil {
		t.Fatal(err)
	}
	var mac struct {
		KDF    pkix.AlgorithmIdentifier
		MacAlg pkix.AlgorithmIdentifier
	}
	if _, err := asn1.Unmarshal(p.MacData.Mac.Algorithm.Parameters.FullBytes, &mac); err != nil {
		t.Fatal(err)
	}
	var kdf struct {
		Salt       []byte
		Iterations int
		KeyLength  int
		Prf        pkix.AlgorithmIdentifier
	}
	if _, err := asn1.Unmarshal(mac.KDF.Parameters.FullBytes, &kdf); err != nil {
		t.Fatal(err)
	}
	if kdf.Iterations != 2048 {
		t.Fatalf("Modern2026 PBMAC1 iterations = %d, test assumes 2048", kdf.Iterations)
	}
	kdf.Iterations = 1 << 33
	mustMarshal := func(v any) asn1.RawValue {
		b, err := asn1.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return asn1.RawValue{FullBytes: b}
	}
	mac.KDF.Parameters = mustMarshal(kdf)
	p.MacData.Mac.Algorithm.Parameters = mustMarshal(mac)
	huge := mustMarshal(p).FullBytes
	if _, err := Import("corp", testSuffix, huge, testPassword, testNow); err == nil || !strings.Contains(err.Error(), "the MAC asks for 8589934592") {
		t.Errorf("PBMAC1 with 2^33 iterations: %v, want the MAC refused", err)
	}
}
