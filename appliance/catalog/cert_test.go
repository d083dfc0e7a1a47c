package catalog

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/amtedge/amtedge/appliance/domains"
)

// inspectDecodeFirst is InspectPFX as it was before it let Import decode the PFX: DecodeChain first, then Import.
// TestInspectPFXSameReport holds the current InspectPFX to exactly its reports.
func inspectDecodeFirst(c *Catalog, pfx []byte, password, suffix string) CertReport {
	r := CertReport{Suffix: normSuffix(suffix), Chain: []CertInfo{}}
	chain, _, err := domains.DecodeChain(pfx, password)
	if err != nil {
		r.Problem = err.Error()
		return r
	}
	leaf := chain[0]
	r.LeafCN = leaf.Subject.CommonName
	r.ActivationEKU = domains.HasProvisioningEKU(leaf)
	sum := sha256.Sum256(chain[len(chain)-1].Raw)
	r.RootSHA256 = hex.EncodeToString(sum[:])
	r.Expires = chain[0].NotAfter.UTC()
	for _, crt := range chain {
		if crt.NotAfter.Before(r.Expires) {
			r.Expires = crt.NotAfter.UTC()
		}
		r.Chain = append(r.Chain, certInfo(crt))
	}
	checkSuffix := r.Suffix
	if checkSuffix == "" {
		checkSuffix = cnSuffix(r.LeafCN)
	} else {
		r.SuffixMatches = domains.CertMatchesSuffix(r.LeafCN, r.Suffix)
	}
	if _, err := domains.Import("inspect", checkSuffix, pfx, password, c.now()); err != nil {
		if inner := errors.Unwrap(err); inner != nil {
			err = inner
		}
		r.Problem = err.Error()
	}
	return r
}

func TestInspectPFXSameReport(t *testing.T) {
	fixtures(t)
	e := newEnv(t, false)
	gen := func(o domains.GenerateOptions) []byte {
		t.Helper()
		o.Now, o.Password, o.Suffix = testNow, pfxPW, suffixA
		p, _, err := domains.GenerateProvisioningPFX(o)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	pfxs := map[string][]byte{
		"one":     pfxA,
		"other":   pfxB,
		"three":   pfx3,
		"no EKU":  pfxNoEKU,
		"expired": gen(domains.GenerateOptions{ChainLen: 1, LeafNotBefore: testNow.Add(-48 * time.Hour), LeafNotAfter: testNow.Add(-24 * time.Hour)}),
		// The leaf expires before its issuer: Expires is the earliest NotAfter, not the leaf's or the root's.
		"leaf first": gen(domains.GenerateOptions{ChainLen: 2, LeafNotAfter: testNow.Add(30 * 24 * time.Hour)}),
		"garbage":    []byte("hello world, no pfx"),
		"empty":      nil,
	}
	suffixes := []string{"", suffixA, " CORP.Example.com. ", "x." + suffixA, suffixB, "other.example.net", "single", "bad..suffix"}
	for pn, pfx := range pfxs {
		for _, pw := range []string{pfxPW, "Wrong-Pass-1", ""} {
			for _, s := range suffixes {
				got, want := e.cat.InspectPFX(pfx, pw, s), inspectDecodeFirst(e.cat, pfx, pw, s)
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s, password %q, suffix %q:\n got %+v\nwant %+v", pn, pw, s, got, want)
				}
			}
		}
	}
}
