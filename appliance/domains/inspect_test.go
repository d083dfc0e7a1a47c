package domains

import (
	"strings"
	"testing"
)

// DecodeChain shows what Import refuses, as long as the PFX decodes: here a certificate without the AMT EKU,
// its chain in AMT order.
func TestDecodeChain(t *testing.T) {
	pfx, _, err := GenerateProvisioningPFX(GenerateOptions{Suffix: testSuffix, Password: testPassword, Now: testNow,
		OmitAMTEKU: true, keys: poolKeys(t, 0, 3)})
	if err != nil {
		t.Fatal(err)
	}
	chain, ordered, err := DecodeChain(pfx, testPassword)
	if err != nil || !ordered || len(chain) != 3 {
		t.Fatalf("chain %d ordered %v err %v", len(chain), ordered, err)
	}
	if chain[0].Subject.CommonName != "provision."+testSuffix || chain[2].Subject.CommonName != "amtedge demo root CA" {
		t.Fatalf("order: %s … %s", chain[0].Subject.CommonName, chain[2].Subject.CommonName)
	}
	if HasProvisioningEKU(chain[0]) {
		t.Fatal("EKU reported on a leaf without it")
	}
	if _, err := Import("d", testSuffix, pfx, testPassword, testNow); err == nil {
		t.Fatal("Import accepted a leaf without the EKU")
	}

	good, _, err := GenerateProvisioningPFX(GenerateOptions{Suffix: testSuffix, Password: testPassword, Now: testNow, keys: poolKeys(t, 3, 3)})
	if err != nil {
		t.Fatal(err)
	}
	if chain, _, err := DecodeChain(good, testPassword); err != nil || !HasProvisioningEKU(chain[0]) {
		t.Fatalf("good chain: %v", err)
	}
	for _, tc := range []struct {
		pfx  []byte
		pw   string
		want string
	}{
		{good, "wrong", "password is wrong"},
		{nil, "", "empty"},
		{[]byte("-----BEGIN CERTIFICATE-----"), testPassword, "PEM"},
	} {
		_, _, err := DecodeChain(tc.pfx, tc.pw)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), testPassword) {
			t.Errorf("want %q, got %v", tc.want, err)
		}
	}
}
