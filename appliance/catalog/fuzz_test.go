package catalog

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/amtedge/amtedge/appliance/profiles"
)

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzDecodeProfile: the profile body decoder never panics, reports every refusal as items, never echoes a
// password, and writes only fields the body names.
func FuzzDecodeProfile(f *testing.F) {
	for _, s := range []string{
		`{"profileName":"p1","activation":"acmactivate","amtPassword":"Amt-Secret-Pass1!","dhcpEnabled":true}`,
		`{"profileName":"p1","wifiConfigs":[{"profileName":"w","priority":"x"}],"tlsMode":1.5}`,
		`{"amtPassword":5,"mebxPassword":["Amt-Secret-Pass1!"]}`,
		`[]`, `null`, `{}`, `{"a":1} x`, `{"tags":null,"source":"api"}`, "",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		p, present, errs := decodeProfile(body, profiles.Profile{})
		for _, it := range errs {
			if secretFields[it.Path] && it.Value != nil {
				t.Fatalf("secret echoed: %+v", it)
			}
			if it.Msg == "" {
				t.Fatalf("item without a message: %+v", it)
			}
		}
		if len(errs) == 0 && !present["amtPassword"] && p.AMTPassword != "" {
			t.Fatal("a field not in the body was set")
		}
		// When the password appears in the body only as its value, no message may repeat it.
		if p.AMTPassword != "" && strings.Count(string(body), p.AMTPassword) == 1 {
			for _, it := range errs {
				if strings.Contains(it.Msg, p.AMTPassword) {
					t.Fatalf("password in a message: %+v", it)
				}
			}
		}
	})
}

// FuzzDecodeDomain: the domain body decoder and its field checks never panic and never echo the certificate or
// its password.
func FuzzDecodeDomain(f *testing.F) {
	for _, s := range []string{
		`{"profileName":"d1","domainSuffix":"corp.example.com","provisioningCert":"TUlJ","provisioningCertPassword":"Pfx-Secret-1","provisioningCertStorageFormat":"string"}`,
		`{"provisioningCert":5}`, `{"expirationDate":"2026-01-01T00:00:00Z","source":"site"}`, `"x"`, `{`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		b, present, errs := decodeDomain(body)
		if len(errs) == 0 {
			errs = checkDomainBody(b, present, true)
			if _, err := decodePFX(b.ProvisioningCert); err != nil && b.ProvisioningCertPassword != "" && strings.Contains(err.Error(), b.ProvisioningCertPassword) {
				t.Fatal("password in a PFX decode error")
			}
		}
		for _, it := range errs {
			if secretFields[it.Path] && it.Value != nil {
				t.Fatalf("secret echoed: %+v", it)
			}
			if pw := b.ProvisioningCertPassword; pw != "" && strings.Count(string(body), pw) == 1 && strings.Contains(it.Msg, pw) {
				t.Fatalf("password in a message: %+v", it)
			}
		}
	})
}

// FuzzDecodeInspect: the inspect body decoder never panics, and a refusal quotes neither the certificate nor the
// password.
func FuzzDecodeInspect(f *testing.F) {
	for _, s := range []string{
		`{"provisioningCert":"TUlJQw==","provisioningCertPassword":"Pfx-Secret-1","domainSuffix":"corp.example.com"}`,
		`{"provisioningCert":"%%%","provisioningCertPassword":"Pfx-Secret-1"}`, `{"provisioningCert":1}`, `{}`, `[]`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		pfx, _, _, err := DecodeInspect(body)
		if err == nil {
			if len(pfx) == 0 {
				t.Fatal("accepted without a certificate")
			}
			return
		}
		var ve *ValidationError
		if !errors.As(err, &ve) || len(ve.Errors) == 0 {
			t.Fatalf("refusal is not a validation error: %v", err)
		}
		for _, it := range ve.Errors {
			if secretFields[it.Path] && it.Value != nil {
				t.Fatalf("secret echoed: %+v", it)
			}
		}
	})
}
