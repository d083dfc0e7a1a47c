package domains

import (
	"crypto/x509"
	"strings"
	"testing"
)

// TestOrderChainPermutations feeds every ordering of a 5-certificate chain (the leaf in every position) to
// orderChain, and shorter chains too.
func TestOrderChainPermutations(t *testing.T) {
	for _, n := range []int{1, 2, 3, 5} {
		key, chain := testChain(t, GenerateOptions{ChainLen: n})
		count := 0
		leafPositions := map[int]bool{}
		permutations(chain, func(p []*x509.Certificate) {
			count++
			for i, c := range p {
				if c.Equal(chain[0]) {
					leafPositions[i] = true
				}
			}
			got, err := orderChain(&key.PublicKey, p)
			if err != nil {
				t.Fatalf("n=%d order %v: %v", n, names(p), err)
			}
			sameChain(t, got, chain)
		})
		want := 1
		for i := 2; i <= n; i++ {
			want *= i
		}
		if count != want || len(leafPositions) != n {
			t.Fatalf("n=%d: tried %d orders with the leaf in %d positions, want %d orders, %d positions", n, count, len(leafPositions), want, n)
		}
	}
}

func TestOrderChainErrors(t *testing.T) {
	keys := poolKeys(t, 0, 8)
	key, chain := testChain(t, GenerateOptions{ChainLen: 3})
	leaf, inter, root := chain[0], chain[1], chain[2]

	// A second certificate for the leaf's key (a renewal exported alongside the old one).
	renewed := makeCert(t, leafTemplate("provision2."+testSuffix), inter, &key.PublicKey, keys[1])
	// An end-entity certificate that claims to issue the leaf: right name, right key, but not a CA.
	notCATmpl := &x509.Certificate{Subject: inter.Subject, BasicConstraintsValid: true, IsCA: false}
	notCA := makeCert(t, notCATmpl, root, &keys[1].PublicKey, keys[2])
	// A root whose self-signature was made by another key.
	forgedRoot := makeCert(t, caTemplate("Forged Root"), caTemplate("Forged Root"), &keys[3].PublicKey, keys[4])
	forgedLeaf := makeCert(t, leafTemplate("provision."+testSuffix), forgedRoot, &keys[5].PublicKey, keys[3])
	// A CA whose key usage does not include certSign.
	noSignTmpl := caTemplate(inter.Subject.CommonName)
	noSignTmpl.Subject = inter.Subject
	noSignTmpl.KeyUsage = x509.KeyUsageDigitalSignature
	noSign := makeCert(t, noSignTmpl, root, &keys[1].PublicKey, keys[2])

	tests := []struct {
		name  string
		pub   any
		certs []*x509.Certificate
		want  string
	}{
		{"no certificate for the key", &keys[7].PublicKey, chain, "no certificate in the PFX matches its private key"},
		{"two certificates for the key", &key.PublicKey, []*x509.Certificate{root, leaf, inter, renewed}, "2 certificates in the PFX match its private key"},
		{"issuer missing", &key.PublicKey, []*x509.Certificate{leaf, root}, "the PFX has no self-signed root certificate"},
		{"root missing", &key.PublicKey, []*x509.Certificate{inter, leaf}, `the issuer "CN=amtedge demo root CA,O=amtedge demo" of certificate CN="amtedge demo intermediate CA 1" is missing`},
		{"stray certificate", &key.PublicKey, []*x509.Certificate{leaf, forgedRoot, inter, root}, `certificate CN="Forged Root" is not part of the chain from the provisioning certificate CN="provision.corp.example.com" to its root CN="amtedge demo root CA"`},
		{"issuer is not a CA", &key.PublicKey, []*x509.Certificate{leaf, notCA, root}, "is not a CA certificate"},
		{"issuer may not sign certificates", &key.PublicKey, []*x509.Certificate{leaf, noSign, root}, "key usage does not allow signing certificates"},
		{"forged root self-signature", &keys[5].PublicKey, []*x509.Certificate{forgedLeaf, forgedRoot}, `the root certificate CN="Forged Root" is not correctly self-signed`},
		{"nil key", nil, chain, "no certificate in the PFX matches its private key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := orderChain(tc.pub, tc.certs)
			if err == nil {
				t.Fatalf("orderChain = %v, want error %q", names(got), tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q\n  does not contain %q", err, tc.want)
			}
		})
	}
}
