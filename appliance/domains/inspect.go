package domains

import (
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"

	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

// DecodeChain decodes pfx with password and returns its certificates for display (an upload preview, a report of
// a stored certificate): leaf first, root last when the certificates form one chain from the private key's
// certificate, otherwise in the PFX's own order (with Ordered false). It checks nothing else — no EKU, suffix,
// validity or key size — so a certificate Import refuses can still be shown; Import remains the only gate.
// Errors carry the same technician-facing text as Import's and never the password or PFX bytes.
func DecodeChain(pfx []byte, password string) (chain []*x509.Certificate, ordered bool, err error) {
	if len(pfx) == 0 {
		return nil, false, errors.New("decode PFX: the PFX file is empty")
	}
	if err := checkPassword(password); err != nil {
		return nil, false, err
	}
	if err := checkKDFIterations(pfx); err != nil {
		return nil, false, err
	}
	key, first, rest, err := pkcs12.DecodeChain(pfx, password)
	if err != nil {
		return nil, false, decodeError(err, pfx)
	}
	certs := dedupe(append([]*x509.Certificate{first}, rest...))
	if len(certs) > MaxChainLen {
		return nil, false, fmt.Errorf("check chain: the PFX holds %d certificates, at most %d are supported", len(certs), MaxChainLen)
	}
	if k, ok := key.(*rsa.PrivateKey); ok {
		if c, err := orderChain(&k.PublicKey, certs); err == nil {
			return c, true, nil
		}
	}
	return certs, false, nil
}

// HasProvisioningEKU reports whether c carries the Intel AMT provisioning extended key usage (OIDAMTProvisioning),
// the check Import makes on the leaf.
func HasProvisioningEKU(c *x509.Certificate) bool { return checkAMTEKU(c) == nil }
