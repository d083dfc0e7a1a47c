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
func (c *Catalog) InspectPFX(pfx []byte, password, suffix string) CertReport {
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
		// No suffix to check against: use one the leaf's CN covers, so that every other check still runs.
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
