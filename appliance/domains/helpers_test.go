package domains

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"sync"
	"testing"
	"time"
)

// testNow is the clock of every test: certificates are generated around it and Import is asked about it, so no
// test depends on the wall clock.
var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const (
	testSuffix   = "corp.example.com"
	testPassword = "Pfx-Secret-Password-7f3a9"
	poolSize     = 12 // enough for a 10-certificate chain plus unrelated certificates
)

// RSA key generation is by far the slowest thing here, so one pool of keys serves the whole test binary.
var (
	poolOnce sync.Once
	pool     []*rsa.PrivateKey // poolSize RSA-2048 keys
	weakKey  *rsa.PrivateKey   // RSA-1024
)

func loadPool(t testing.TB) {
	t.Helper()
	poolOnce.Do(func() {
		keys := make([]*rsa.PrivateKey, poolSize+1)
		errs := make([]error, len(keys))
		var wg sync.WaitGroup
		for i := range keys {
			wg.Go(func() {
				bits := 2048
				if i == poolSize {
					bits = 1024
				}
				keys[i], errs[i] = rsa.GenerateKey(rand.Reader, bits)
			})
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				panic("generate test keys: " + err.Error())
			}
		}
		pool, weakKey = keys[:poolSize], keys[poolSize]
	})
}

// poolKeys returns n distinct RSA-2048 keys starting at pool index from.
func poolKeys(t testing.TB, from, n int) []*rsa.PrivateKey {
	t.Helper()
	loadPool(t)
	if from+n > len(pool) {
		t.Fatalf("test wants keys %d..%d, pool has %d", from, from+n-1, len(pool))
	}
	return append([]*rsa.PrivateKey(nil), pool[from:from+n]...)
}

// testChain builds a chain (leaf first) for opts, defaulting the suffix, clock and keys for tests.
func testChain(t testing.TB, opts GenerateOptions) (*rsa.PrivateKey, []*x509.Certificate) {
	t.Helper()
	if opts.Suffix == "" {
		opts.Suffix = testSuffix
	}
	if opts.Now.IsZero() {
		opts.Now = testNow
	}
	if opts.keys == nil {
		n := opts.ChainLen
		if n == 0 {
			n = 3
		}
		opts.keys = poolKeys(t, 0, n)
	}
	key, chain, err := generateChain(opts)
	if err != nil {
		t.Fatalf("generateChain: %v", err)
	}
	return key, chain
}

func mustPFX(t testing.TB, key any, bags []*x509.Certificate, password string) []byte {
	t.Helper()
	rk, ok := key.(*rsa.PrivateKey)
	if !ok {
		t.Fatalf("mustPFX: key %T", key)
	}
	pfx, err := encodePFX(rk, bags, password)
	if err != nil {
		t.Fatal(err)
	}
	return pfx
}

// makeCert signs a certificate from tmpl; a nil parent makes it self-signed with signer.
func makeCert(t testing.TB, tmpl, parent *x509.Certificate, pub any, signer any) *x509.Certificate {
	t.Helper()
	if tmpl.SerialNumber == nil {
		serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
		if err != nil {
			t.Fatal(err)
		}
		tmpl.SerialNumber = serial
	}
	if tmpl.NotBefore.IsZero() {
		tmpl.NotBefore = testNow.Add(-time.Hour)
	}
	if tmpl.NotAfter.IsZero() {
		tmpl.NotAfter = testNow.AddDate(1, 0, 0)
	}
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		t.Fatalf("create certificate %q: %v", tmpl.Subject.CommonName, err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func caTemplate(cn string) *x509.Certificate {
	return &x509.Certificate{
		Subject:               pkix.Name{CommonName: cn},
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
}

func leafTemplate(cn string) *x509.Certificate {
	return &x509.Certificate{
		Subject:               pkix.Name{CommonName: cn},
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		UnknownExtKeyUsage:    []asn1.ObjectIdentifier{OIDAMTProvisioning},
	}
}

func sameChain(t testing.TB, got, want []*x509.Certificate) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("chain has %d certificates %v, want %d %v", len(got), names(got), len(want), names(want))
	}
	for i := range want {
		if !got[i].Equal(want[i]) {
			t.Fatalf("chain[%d] = %s, want %s (got %v, want %v)", i, certName(got[i]), certName(want[i]), names(got), names(want))
		}
	}
}

func names(cs []*x509.Certificate) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.Subject.CommonName
	}
	return out
}

// permutations calls f with every ordering of items (Heap's algorithm); f must not keep the slice.
func permutations[T any](items []T, f func([]T)) {
	a := append([]T(nil), items...)
	var gen func(k int)
	gen = func(k int) {
		if k <= 1 {
			f(a)
			return
		}
		gen(k - 1)
		for i := 0; i < k-1; i++ {
			if k%2 == 0 {
				a[i], a[k-1] = a[k-1], a[i]
			} else {
				a[0], a[k-1] = a[k-1], a[0]
			}
			gen(k - 1)
		}
	}
	gen(len(a))
}
