package domains

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
)

// MaxKDFIterations bounds the password-based key-derivation iteration counts a PFX may ask for. go-pkcs12 runs
// whatever count the file names, so a damaged or hostile PFX (from an upload, or from a Vault entry) naming two
// billion iterations would pin a CPU for hours inside Import. Real exporters use 2,000 (Windows), 2,048 (OpenSSL),
// 10,000 (Java) or at most a few hundred thousand; a million PBKDF2 rounds costs well under a second.
const MaxKDFIterations = 1_000_000

var (
	oidPBES2             = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 13}
	oidPBKDF2            = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 12}
	oidPBMAC1            = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 14}
	oidPKCS12PBEPrefix   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 1}
	oidDataContent       = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	oidEncryptedContent  = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 6}
	oidShroudedKeyBagOID = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 10, 1, 2}
)

// The PKCS#12 (RFC 7292) structures, only as deep as the iteration counts that can be read without the
// password. Anything that does not parse is left for go-pkcs12 to reject with its own error.
type pfxOuter struct {
	Version  int
	AuthSafe struct {
		ContentType asn1.ObjectIdentifier
		Content     asn1.RawValue `asn1:"tag:0,explicit,optional"`
	}
	MacData struct {
		Mac struct {
			Algorithm pkix.AlgorithmIdentifier
			Digest    []byte
		}
		MacSalt    []byte
		Iterations int `asn1:"optional,default:1"`
	} `asn1:"optional"`
}

type contentInfo struct {
	ContentType asn1.ObjectIdentifier
	Content     asn1.RawValue `asn1:"tag:0,explicit,optional"`
}

type encryptedData struct {
	Version int
	Info    struct {
		ContentType asn1.ObjectIdentifier
		Algorithm   pkix.AlgorithmIdentifier
	}
}

type safeBag struct {
	ID    asn1.ObjectIdentifier
	Value asn1.RawValue `asn1:"tag:0,explicit"`
}

type encryptedPrivateKeyInfo struct {
	Algorithm pkix.AlgorithmIdentifier
	Data      []byte
}

// checkKDFIterations refuses a PFX whose visible iteration counts — the MAC's, each encrypted SafeContents',
// and each shrouded key bag in an unencrypted SafeContents — exceed MaxKDFIterations. A key bag nested inside
// encrypted content can only be read after decryption; crafting one requires the PFX password, that is, the
// custody this box already trusts.
func checkKDFIterations(pfx []byte) error {
	var outer pfxOuter
	if _, err := asn1.Unmarshal(pfx, &outer); err != nil {
		return nil
	}
	if err := checkIterations("the MAC", outer.MacData.Iterations); err != nil {
		return err
	}
	if outer.MacData.Mac.Algorithm.Algorithm.Equal(oidPBMAC1) {
		var p struct{ KDF pkix.AlgorithmIdentifier }
		if _, err := asn1.Unmarshal(outer.MacData.Mac.Algorithm.Parameters.FullBytes, &p); err == nil {
			if err := checkPBKDF2("the MAC", p.KDF); err != nil {
				return err
			}
		}
	}

	var authSafe []byte
	if _, err := asn1.Unmarshal(outer.AuthSafe.Content.Bytes, &authSafe); err != nil {
		return nil
	}
	var infos []contentInfo
	if _, err := asn1.Unmarshal(authSafe, &infos); err != nil {
		return nil
	}
	for _, ci := range infos {
		switch {
		case ci.ContentType.Equal(oidEncryptedContent):
			var ed encryptedData
			if _, err := asn1.Unmarshal(ci.Content.Bytes, &ed); err == nil {
				if err := checkAlgorithm("the certificate encryption", ed.Info.Algorithm); err != nil {
					return err
				}
			}
		case ci.ContentType.Equal(oidDataContent):
			var data []byte
			if _, err := asn1.Unmarshal(ci.Content.Bytes, &data); err != nil {
				continue
			}
			var bags []safeBag
			if _, err := asn1.Unmarshal(data, &bags); err != nil {
				continue
			}
			for _, b := range bags {
				if !b.ID.Equal(oidShroudedKeyBagOID) {
					continue
				}
				var epki encryptedPrivateKeyInfo
				if _, err := asn1.Unmarshal(b.Value.Bytes, &epki); err == nil {
					if err := checkAlgorithm("the private key encryption", epki.Algorithm); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}

// checkAlgorithm reads the iteration count of a PKCS#12 PBE (pbeParams) or PBES2/PBKDF2 algorithm.
func checkAlgorithm(what string, alg pkix.AlgorithmIdentifier) error {
	switch {
	case alg.Algorithm.Equal(oidPBES2):
		var p struct{ KDF pkix.AlgorithmIdentifier }
		if _, err := asn1.Unmarshal(alg.Parameters.FullBytes, &p); err != nil {
			return nil
		}
		return checkPBKDF2(what, p.KDF)
	case len(alg.Algorithm) == len(oidPKCS12PBEPrefix)+1 && alg.Algorithm[:len(oidPKCS12PBEPrefix)].Equal(oidPKCS12PBEPrefix):
		var p struct {
			Salt       []byte
			Iterations int
		}
		if _, err := asn1.Unmarshal(alg.Parameters.FullBytes, &p); err != nil {
			return nil
		}
		return checkIterations(what, p.Iterations)
	}
	return nil
}

func checkPBKDF2(what string, kdf pkix.AlgorithmIdentifier) error {
	if !kdf.Algorithm.Equal(oidPBKDF2) {
		return nil
	}
	var p struct {
		Salt       asn1.RawValue
		Iterations int
	}
	if _, err := asn1.Unmarshal(kdf.Parameters.FullBytes, &p); err != nil {
		return nil
	}
	return checkIterations(what, p.Iterations)
}

func checkIterations(what string, n int) error {
	if n > MaxKDFIterations {
		return fmt.Errorf("decode PFX: %s asks for %d key-derivation iterations, more than the %d this box accepts; the file is damaged or unusual — re-export it with default settings", what, n, MaxKDFIterations)
	}
	return nil
}
