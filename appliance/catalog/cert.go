package catalog

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/amtedge/amtedge/appliance/domains"
)

// InspectPFX reports what pfx holds, for the UI's upload preview. It writes nothing. Problem is the reason an
// import with suffix would be refused (the same text a POST answers), or "" when it would import. The report is
// filled from the decoded chain whenever the PFX decodes, even when the import would fail (a suffix mismatch,
// an expired or non-AMT certificate), so the technician sees what the file is. Without a suffix, every check but
// the suffix's runs.
//
// With a suffix the PFX is decoded once, by Import, when it imports; domains.DecodeChain decodes it again only
// when the import fails, to show what the file holds. Without a suffix the leaf's CN must be known before Import
// can run (it picks the suffix checked), so the chain is decoded first.
func (c *Catalog) InspectPFX(pfx []byte, password, suffix string) CertReport {
	r := CertReport{Suffix: normSuffix(suffix), Chain: []CertInfo{}}
	if r.Suffix != "" {
		d, err := domains.Import("inspect", r.Suffix, pfx, password, c.now())
		if err == nil {
			_, root256, _ := d.RootHashes()
			r.LeafCN = d.LeafCN()
			r.ActivationEKU = domains.HasProvisioningEKU(d.Chain[0])
			r.RootSHA256 = root256
			r.Expires = d.Expires.UTC()
			for _, crt := range d.Chain {
				r.Chain = append(r.Chain, certInfo(crt))
			}
			r.SuffixMatches = domains.CertMatchesSuffix(r.LeafCN, r.Suffix)
			return r
		}
		chain, _, derr := domains.DecodeChain(pfx, password)
		if derr != nil {
			r.Problem = derr.Error()
			return r
		}
		r.fillChain(chain)
		r.SuffixMatches = domains.CertMatchesSuffix(r.LeafCN, r.Suffix)
		r.Problem = importProblem(err)
		return r
	}
	chain, _, err := domains.DecodeChain(pfx, password)
	if err != nil {
		r.Problem = err.Error()
		return r
	}
	r.fillChain(chain)
	// No suffix to check against: use one the leaf's CN covers, so that every other check still runs.
	if _, err := domains.Import("inspect", cnSuffix(r.LeafCN), pfx, password, c.now()); err != nil {
		r.Problem = importProblem(err)
	}
	return r
}

// fillChain fills the certificate fields of r from chain (leaf first), as DecodeChain returned it.
func (r *CertReport) fillChain(chain []*x509.Certificate) {
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
}

// importProblem is the text of Import's refusal without its "import domain" wrapper.
func importProblem(err error) string {
	if inner := errors.Unwrap(err); inner != nil {
		err = inner
	}
	return err.Error()
}

// cnSuffix is the DNS suffix a certificate CN such as provision.corp.example.com covers (corp.example.com), or
// the CN itself when it has too few labels to cut one (Import then reports what is wrong with it).
func cnSuffix(cn string) string {
	cn = strings.TrimPrefix(cn, "*.")
	if labels := strings.Split(cn, "."); len(labels) > 2 {
		return strings.Join(labels[1:], ".")
	}
	return cn
}

// DomainCert reports the certificate of a stored domain (site or API), read from the sealed store and checked
// against the domain's suffix now.
func (c *Catalog) DomainCert(ctx context.Context, name string) (CertReport, error) {
	d, err := c.DomainByName(name)
	if err != nil {
		return CertReport{}, err
	}
	if c.store == nil {
		return CertReport{}, ErrStoreUnavailable
	}
	sec, err := c.store.Domain(ctx, name)
	if err != nil {
		return CertReport{}, fmt.Errorf("read the provisioning certificate of domain %s from the sealed store: %w", name, err)
	}
	return c.InspectPFX(sec.PFX, sec.Password, d.DomainSuffix), nil
}

func certInfo(c *x509.Certificate) CertInfo {
	return CertInfo{Subject: c.Subject.String(), Issuer: c.Issuer.String(), NotBefore: c.NotBefore.UTC(), NotAfter: c.NotAfter.UTC()}
}
