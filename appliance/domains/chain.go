package domains

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"strings"
)

// orderChain finds the leaf among certs — the certificate whose public key is pub — and follows issuer links
// from it to a self-signed root, returning leaf, issuers..., root: the order AddNextCertInChain needs.
//
// A link from child to issuer holds when issuer.RawSubject equals child.RawIssuer byte for byte AND child's
// signature verifies with issuer's key; names alone are not enough, because a PFX that mixes a renewed CA with
// the old one has two certificates of the same name. RPS instead takes bag 0 as the leaf and sorts the rest by
// a rule that is only right for chains of up to four; this works for any bag order and any length.
//
// Errors say which certificate is missing, stray or broken. certs must not contain byte-identical duplicates.
func orderChain(pub crypto.PublicKey, certs []*x509.Certificate) ([]*x509.Certificate, error) {
	leafIdx := -1
	var matching []string
	for i, c := range certs {
		if publicKeyEqual(c.PublicKey, pub) {
			if leafIdx < 0 {
				leafIdx = i
			}
			matching = append(matching, certName(c))
		}
	}
	switch {
	case leafIdx < 0:
		return nil, errors.New("no certificate in the PFX matches its private key; export the provisioning certificate together with its own private key")
	case len(matching) > 1:
		return nil, fmt.Errorf("%d certificates in the PFX match its private key (%s); keep only the current provisioning certificate", len(matching), strings.Join(matching, ", "))
	}

	used := make([]bool, len(certs))
	used[leafIdx] = true
	chain := []*x509.Certificate{certs[leafIdx]}
	for cur := certs[leafIdx]; !selfSigned(cur); {
		next, err := findIssuer(cur, certs, used)
		if err != nil {
			return nil, err
		}
		used[next] = true
		cur = certs[next]
		chain = append(chain, cur)
	}

	var stray []string
	for i, c := range certs {
		if !used[i] {
			stray = append(stray, certName(c))
		}
	}
	if len(stray) > 0 {
		return nil, fmt.Errorf("certificate %s is not part of the chain from the provisioning certificate %s to its root %s; remove it from the PFX",
			strings.Join(stray, ", "), certName(chain[0]), certName(chain[len(chain)-1]))
	}
	return chain, nil
}

// findIssuer returns the index of the unused certificate that issued child, or an error naming what is wrong.
func findIssuer(child *x509.Certificate, certs []*x509.Certificate, used []bool) (int, error) {
	var firstErr error
	for i, c := range certs {
		if used[i] || !bytes.Equal(c.RawSubject, child.RawIssuer) {
			continue
		}
		err := checkIssued(child, c)
		if err == nil {
			return i, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	if firstErr != nil {
		return -1, firstErr
	}
	if bytes.Equal(child.RawIssuer, child.RawSubject) {
		// Named like a root but its self-signature fails: a damaged or tampered root.
		return -1, fmt.Errorf("the root certificate %s is not correctly self-signed; export the chain again from the issuing CA", certName(child))
	}
	return -1, fmt.Errorf("the PFX has no self-signed root certificate; export the whole chain (the issuer %q of certificate %s is missing)",
		child.Issuer.String(), certName(child))
}

// checkIssued verifies that issuer signed child and may sign certificates, mirroring the constraints of
// x509.Certificate.CheckSignatureFrom but accepting SHA-1 signatures (see verifySignature).
func checkIssued(child, issuer *x509.Certificate) error {
	if issuer.Version == 3 && !issuer.BasicConstraintsValid || issuer.BasicConstraintsValid && !issuer.IsCA {
		return fmt.Errorf("certificate %s is named as the issuer of %s but is not a CA certificate (basicConstraints CA:FALSE or missing)", certName(issuer), certName(child))
	}
	if issuer.KeyUsage != 0 && issuer.KeyUsage&x509.KeyUsageCertSign == 0 {
		return fmt.Errorf("certificate %s is named as the issuer of %s but its key usage does not allow signing certificates", certName(issuer), certName(child))
	}
	if err := verifySignature(child, issuer.PublicKey); err != nil {
		return fmt.Errorf("the signature of certificate %s does not verify with the key of its issuer %s (%v); the PFX mixes certificates from different chains — export the chain again", certName(child), certName(issuer), err)
	}
	return nil
}

// selfSigned reports whether c is a root: issuer name equals subject name and c's own key verifies its
// signature. CA constraints are not required here, so a one-certificate (self-signed leaf) chain works.
func selfSigned(c *x509.Certificate) bool {
	return bytes.Equal(c.RawIssuer, c.RawSubject) && verifySignature(c, c.PublicKey) == nil
}

// verifySignature checks c's signature with pub. It goes through Certificate.CheckSignature, which (unlike
// CheckSignatureFrom) still accepts SHA-1: many public roots AMT trusts, and some older CA chains, are SHA-1
// signed, and refusing them here would reject certificates the firmware accepts. Trust is decided by the
// firmware's root list, not by this check; the check exists to catch PFX files that mix chains.
func verifySignature(c *x509.Certificate, pub crypto.PublicKey) error {
	return (&x509.Certificate{PublicKey: pub}).CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature)
}

func publicKeyEqual(a, b crypto.PublicKey) bool {
	ak, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && ak.Equal(b)
}

var oidExtKeyUsage = asn1.ObjectIdentifier{2, 5, 29, 37}

// Names for the EKUs a technician is likely to see, so an error can say "serverAuth" rather than only an OID.
var ekuNames = map[string]string{
	"2.5.29.37.0":             "anyExtendedKeyUsage",
	"1.3.6.1.5.5.7.3.1":       "serverAuth",
	"1.3.6.1.5.5.7.3.2":       "clientAuth",
	"1.3.6.1.5.5.7.3.3":       "codeSigning",
	"1.3.6.1.5.5.7.3.4":       "emailProtection",
	"1.3.6.1.5.5.7.3.8":       "timeStamping",
	"1.3.6.1.5.5.7.3.9":       "OCSPSigning",
	"2.16.840.1.113741.1.2.3": "Intel AMT provisioning",
}

// leafEKUs returns the leaf's extended key usages as dotted OIDs, read from the raw extension so the list is
// exactly what the certificate carries (crypto/x509 splits known and unknown ones).
func leafEKUs(c *x509.Certificate) (oids []asn1.ObjectIdentifier, present bool) {
	for _, ext := range c.Extensions {
		if !ext.Id.Equal(oidExtKeyUsage) {
			continue
		}
		if _, err := asn1.Unmarshal(ext.Value, &oids); err != nil {
			return nil, true
		}
		return oids, true
	}
	return nil, false
}

// checkAMTEKU requires OIDAMTProvisioning on the leaf. AMT also accepts the OU "Intel(R) Client Setup
// Certificate" instead; RPS (and so existing sites) rely on the EKU, and so do we.
func checkAMTEKU(leaf *x509.Certificate) error {
	oids, present := leafEKUs(leaf)
	var has []string
	for _, o := range oids {
		if o.Equal(OIDAMTProvisioning) {
			return nil
		}
		if name, ok := ekuNames[o.String()]; ok {
			has = append(has, fmt.Sprintf("%s (%s)", name, o))
		} else {
			has = append(has, o.String())
		}
	}
	what := "it has no extended key usage extension"
	if present {
		what = "it has: " + strings.Join(has, ", ")
		if len(has) == 0 {
			what = "its extended key usage extension is empty or unreadable"
		}
	}
	return fmt.Errorf("check leaf EKU: the provisioning certificate %s lacks the Intel AMT provisioning extended key usage %s; %s; request an AMT provisioning certificate from the CA",
		certName(leaf), OIDAMTProvisioning, what)
}
