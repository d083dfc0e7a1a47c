package amtsim

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/device-management-toolkit/go-wsman-messages/v2/pkg/wsman/ips/hostbasedsetup"
)

const newAdminPw = "N3w-Adm1n!pw"

func ha1Hex(pw string) string { return md5hexT("admin:" + testRealm + ":" + pw) }

func TestCCMSetupWithLibrary(t *testing.T) {
	d := simDevice(t, DeviceConfig{})
	lsa := libMessages(d, "$$OsAdmin", testLSAPw)

	gs, err := lsa.AMT.GeneralSettings.Get()
	if err != nil {
		t.Fatalf("GeneralSettings.Get: %v", err)
	}
	realm := gs.Body.GetResponse.DigestRealm
	if realm != testRealm {
		t.Fatalf("DigestRealm %q", realm)
	}
	hbs, err := lsa.IPS.HostBasedSetupService.Get()
	if err != nil {
		t.Fatalf("HostBasedSetupService.Get: %v", err)
	}
	if g := hbs.Body.GetResponse; g.CurrentControlMode != 0 || len(g.AllowedControlModes) != 2 || g.CertChainStatus != 0 {
		t.Errorf("HBS %+v", g)
	}
	if _, err := lsa.IPS.HostBasedSetupService.Setup(hostbasedsetup.AdminPassEncryptionTypeHTTPDigestMD5A1, realm, newAdminPw); err != nil {
		t.Fatalf("Setup: %v (%s)", err, d.Snapshot().LastFailure)
	}
	s := d.Snapshot()
	if s.Mode != ModeCCM || !s.AdminPasswordIs(newAdminPw) || s.AdminPasswordIs("other") {
		t.Fatalf("after Setup: mode %v HA1 %s", s.Mode, s.AdminHA1)
	}

	// The local system account stops working; admin with the new password works.
	if _, err := lsa.AMT.GeneralSettings.Get(); err == nil {
		t.Error("LSA still accepted after activation")
	}
	admin := libMessages(d, "admin", newAdminPw)
	hbs, err = admin.IPS.HostBasedSetupService.Get()
	if err != nil || hbs.Body.GetResponse.CurrentControlMode != 1 {
		t.Fatalf("admin Get after Setup: %v mode %d", err, hbs.Body.GetResponse.CurrentControlMode)
	}
	// Setup again: InvalidState.
	r, err := admin.IPS.HostBasedSetupService.Setup(hostbasedsetup.AdminPassEncryptionTypeHTTPDigestMD5A1, realm, "Other-pw1!")
	if err == nil || r.Body.Setup_OUTPUT.ReturnValue != setupInvalidState {
		t.Errorf("second Setup: %v, ReturnValue %d", err, r.Body.Setup_OUTPUT.ReturnValue)
	}
}

// TestActivationDropsTheDigestSession: right after Setup the cached challenge is stale, so a console re-authenticates
// (stale=true with the new credentials) before its first admin request succeeds.
func TestActivationDropsTheDigestSession(t *testing.T) {
	d := simDevice(t, DeviceConfig{})
	nonce := freshNonce(t, d)
	setup := envelopeXML(hbsURI+"/Setup", hbsURI, "1", "", methodXML(hbsURI, "Setup",
		"NetAdminPassEncryptionType", "2", "NetworkAdminPassword", ha1Hex(newAdminPw)))
	auth := digestHeader("$$OsAdmin", testLSAPw, testRealm, nonce, 1, "a")
	if r := parseReply(t, mustExchange(t, d, rawRequest(testUUID+":16992", auth, setup))); returnValueOf(t, r) != 0 {
		t.Fatal("Setup failed")
	}
	get := envelopeXML(actionGet, gsURI, "2", "", "")
	auth = digestHeader("admin", newAdminPw, testRealm, nonce, 2, "b")
	r := parseReply(t, mustExchange(t, d, rawRequest(testUUID+":16992", auth, get)))
	if r.status != 401 {
		t.Fatalf("first admin request on the old nonce: %d, want 401", r.status)
	}
	_, fresh, stale := challengeParams(t, r)
	if stale != "true" || fresh == nonce {
		t.Errorf("challenge stale=%q, new nonce %v", stale, fresh != nonce)
	}
	auth = digestHeader("admin", newAdminPw, testRealm, fresh, 1, "c")
	if r := parseReply(t, mustExchange(t, d, rawRequest(testUUID+":16992", auth, get))); r.status != 200 {
		t.Errorf("after re-authentication: %d", r.status)
	}
}

func TestSetupParameters(t *testing.T) {
	tests := []struct {
		name   string
		params []string
		want   int
	}{
		{"ok", []string{"NetAdminPassEncryptionType", "2", "NetworkAdminPassword", ha1Hex("x")}, 0},
		{"plain password instead of HA1", []string{"NetAdminPassEncryptionType", "2", "NetworkAdminPassword", "Passw0rd!"}, setupInvalidParam},
		{"encryption type 1", []string{"NetAdminPassEncryptionType", "1", "NetworkAdminPassword", ha1Hex("x")}, setupInvalidParam},
		{"missing password", []string{"NetAdminPassEncryptionType", "2"}, setupInvalidParam},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := simDevice(t, DeviceConfig{})
			c := newRawClient(t, d, "$$OsAdmin", testLSAPw)
			if got := returnValueOf(t, c.invoke(hbsURI, "Setup", tc.params...)); got != tc.want {
				t.Errorf("ReturnValue %d, want %d (%s)", got, tc.want, d.Snapshot().LastFailure)
			}
			wantMode := ModePreProvisioning
			if tc.want == 0 {
				wantMode = ModeCCM
			}
			if m := d.Snapshot().Mode; m != wantMode {
				t.Errorf("mode %v, want %v", m, wantMode)
			}
		})
	}
}

// acmFlow is the ACM activation with go-wsman-messages, as the appliance runs it.
func acmFlow(t *testing.T, d *Device, chain testChain) (hostbasedsetup.Response, error) {
	t.Helper()
	lsa := libMessages(d, "$$OsAdmin", testLSAPw)
	gs, err := lsa.AMT.GeneralSettings.Get()
	if err != nil {
		t.Fatalf("GeneralSettings.Get: %v", err)
	}
	hbs, err := lsa.IPS.HostBasedSetupService.Get()
	if err != nil {
		t.Fatalf("HostBasedSetupService.Get: %v", err)
	}
	certs := chain.b64()
	for i, c := range certs {
		r, err := lsa.IPS.HostBasedSetupService.AddNextCertInChain(c, i == 0, i == len(certs)-1)
		if err != nil || r.Body.AddNextCertInChain_OUTPUT.ReturnValue != 0 {
			t.Fatalf("AddNextCertInChain %d: %v %d (%s)", i, err, r.Body.AddNextCertInChain_OUTPUT.ReturnValue, d.Snapshot().LastFailure)
		}
	}
	mc := newMcNonce()
	sig := signNonces(t, chain.leafKey, hbs.Body.GetResponse.ConfigurationNonce, mc)
	return lsa.IPS.HostBasedSetupService.AdminSetup(hostbasedsetup.AdminPassEncryptionTypeHTTPDigestMD5A1,
		gs.Body.GetResponse.DigestRealm, newAdminPw, base64.StdEncoding.EncodeToString(mc),
		hostbasedsetup.SigningAlgorithmRSASHA2256, sig)
}

func TestACMAdminSetupWithLibrary(t *testing.T) {
	chain := makeChain(t, chainOpts{})
	d := simDevice(t, DeviceConfig{DHCPDNSSuffix: "example.com", TrustedRootHashes: []string{chain.rootSHA256()}})
	r, err := acmFlow(t, d, chain)
	if err != nil || r.Body.AdminSetup_OUTPUT.ReturnValue != 0 {
		t.Fatalf("AdminSetup: %v %d (%s)", err, r.Body.AdminSetup_OUTPUT.ReturnValue, d.Snapshot().LastFailure)
	}
	s := d.Snapshot()
	if s.Mode != ModeACM || !s.AdminPasswordIs(newAdminPw) || s.CertChainStatus != 0 || len(s.ChainPending) != 0 {
		t.Fatalf("after AdminSetup: %+v", s)
	}
	if strings.Join(s.ChainInstalled, ",") != strings.Join(chain.b64(), ",") {
		t.Error("ChainInstalled does not record the chain as received")
	}

	admin := libMessages(d, "admin", newAdminPw)
	hbs, err := admin.IPS.HostBasedSetupService.Get()
	if err != nil || hbs.Body.GetResponse.CurrentControlMode != 2 {
		t.Fatalf("Get after AdminSetup: %v %+v", err, hbs.Body.GetResponse)
	}
	mr, err := admin.AMT.SetupAndConfigurationService.SetMEBXPassword("MEBx-Pa55!")
	if err != nil || mr.Body.SetMEBxPassword_OUTPUT.ReturnValue != 0 {
		t.Fatalf("SetMEBxPassword: %v %d", err, mr.Body.SetMEBxPassword_OUTPUT.ReturnValue)
	}
	if got := d.Snapshot().MEBxPassword; got != "MEBx-Pa55!" {
		t.Errorf("MEBx %q", got)
	}
}

// adminSetupRaw runs AddNextCertInChain×N + AdminSetup with hand-built requests, letting a test bend each part.
type adminSetupCase struct {
	name      string
	opts      chainOpts
	device    func(c testChain) DeviceConfig
	certs     func(c testChain) []string // default c.b64()
	flags     func(i, n int) (leaf, root bool)
	signKey   func(c testChain) *rsaKey
	params    func(p map[string]string)
	nonceFrom string // "old": sign a nonce a later Get superseded; "reuse": a failed attempt consumed it
	want      int
}

func trustingDevice(suffix string) func(c testChain) DeviceConfig {
	return func(c testChain) DeviceConfig {
		return DeviceConfig{DHCPDNSSuffix: suffix, TrustedRootHashes: []string{c.rootSHA256()}}
	}
}

func TestAdminSetupChecks(t *testing.T) {
	k := testKeys(t)
	tests := []adminSetupCase{
		{name: "valid chain and signature", device: trustingDevice("example.com"), want: 0},
		{name: "suffix is a subdomain of the CN's domain", device: trustingDevice("site.example.com"), want: 0},
		{name: "suffix equals the CN", device: trustingDevice("provision.example.com"), want: 0},
		{name: "wildcard CN", opts: chainOpts{leafCN: "*.example.com"}, device: trustingDevice("example.com"), want: 0},
		{name: "MEBx trusted suffix matches, DHCP does not", device: func(c testChain) DeviceConfig {
			return DeviceConfig{DHCPDNSSuffix: "corp.local", TrustedDNSSuffix: "Example.com.", TrustedRootHashes: []string{c.rootSHA256()}}
		}, want: 0},
		{name: "OU instead of EKU", opts: chainOpts{ouInstead: true}, device: trustingDevice("example.com"), want: 0},
		{name: "root trusted by SHA-1", device: func(c testChain) DeviceConfig {
			h := sha1.Sum(c.der[2])
			return DeviceConfig{DHCPDNSSuffix: "example.com", TrustedRootHashes: []string{hex.EncodeToString(h[:])}}
		}, want: 0},
		{name: "root trusted by SHA-384 (upper-case config)", device: func(c testChain) DeviceConfig {
			h := sha512.Sum384(c.der[2])
			return DeviceConfig{DHCPDNSSuffix: "example.com", TrustedRootHashes: []string{strings.ToUpper(hex.EncodeToString(h[:]))}}
		}, want: 0},
		{name: "untrusted root", device: func(c testChain) DeviceConfig {
			return DeviceConfig{DHCPDNSSuffix: "example.com", TrustedRootHashes: []string{strings.Repeat("ab", 32)}}
		}, want: setupCertVerifyFailed},
		{name: "CN does not match the suffix", device: trustingDevice("other.org"), want: setupCertVerifyFailed},
		{name: "suffix only shares the TLD", opts: chainOpts{leafCN: "example.com"}, device: trustingDevice("other.com"), want: setupCertVerifyFailed},
		{name: "no DNS suffix at all", device: trustingDevice(""), want: setupCertVerifyFailed},
		{name: "missing provisioning EKU", opts: chainOpts{noEKU: true}, device: trustingDevice("example.com"), want: setupCertVerifyFailed},
		{name: "expired leaf", opts: chainOpts{expired: true}, device: trustingDevice("example.com"), want: setupCertVerifyFailed},
		{name: "leaf signature by another key under the intermediate's name", opts: chainOpts{leafSigner: k.other}, device: trustingDevice("example.com"), want: setupCertVerifyFailed},
		{name: "intermediate missing", device: trustingDevice("example.com"),
			certs: func(c testChain) []string { b := c.b64(); return []string{b[0], b[2]} }, want: setupCertVerifyFailed},
		{name: "root first, leaf last (reversed order)", device: trustingDevice("example.com"),
			certs: func(c testChain) []string { b := c.b64(); return []string{b[2], b[1], b[0]} }, want: setupCertVerifyFailed},
		{name: "chain not completed (no root flag)", device: trustingDevice("example.com"),
			flags: func(i, n int) (bool, bool) { return i == 0, false }, want: setupInvalidState},
		{name: "bad signature (other key)", device: trustingDevice("example.com"),
			signKey: func(c testChain) *rsaKey { return k.other }, want: setupAuthFailed},
		{name: "signature over a superseded nonce", device: trustingDevice("example.com"), nonceFrom: "old", want: setupAuthFailed},
		{name: "reused nonce after a failed attempt", device: trustingDevice("example.com"), nonceFrom: "reuse", want: setupAuthFailed},
		{name: "password as plain text", device: trustingDevice("example.com"),
			params: func(p map[string]string) { p["NetworkAdminPassword"] = newAdminPw }, want: setupInvalidParam},
		{name: "SigningAlgorithm 1", device: trustingDevice("example.com"),
			params: func(p map[string]string) { p["SigningAlgorithm"] = "1" }, want: setupInvalidParam},
		{name: "McNonce of 16 bytes", device: trustingDevice("example.com"),
			params: func(p map[string]string) { p["McNonce"] = base64.StdEncoding.EncodeToString(make([]byte, 16)) }, want: setupInvalidParam},
		{name: "device already in CCM", device: func(c testChain) DeviceConfig {
			return DeviceConfig{Mode: ModeCCM, AdminPassword: "Old-pw1!", DHCPDNSSuffix: "example.com", TrustedRootHashes: []string{c.rootSHA256()}}
		}, want: setupInvalidState},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			chain := makeChain(t, tc.opts)
			cfg := tc.device(chain)
			d := simDevice(t, cfg)
			user, pass := "$$OsAdmin", testLSAPw
			if cfg.Mode != ModePreProvisioning {
				user, pass = "admin", cfg.AdminPassword
			}
			c := newRawClient(t, d, user, pass)

			certs := chain.b64()
			if tc.certs != nil {
				certs = tc.certs(chain)
			}
			flags := func(i, n int) (bool, bool) { return i == 0, i == n-1 }
			if tc.flags != nil {
				flags = tc.flags
			}
			if cfg.Mode != ModeACM {
				for i, cert := range certs {
					leaf, root := flags(i, len(certs))
					if rv := returnValueOf(t, c.invoke(hbsURI, "AddNextCertInChain", "NextCertificate", cert,
						"IsLeafCertificate", boolText(leaf), "IsRootCertificate", boolText(root))); rv != 0 {
						t.Fatalf("AddNextCertInChain %d: %d (%s)", i, rv, d.Snapshot().LastFailure)
					}
				}
			}
			fwNonce := xmlValue(t, c.get(hbsURI).body, "ConfigurationNonce")
			if tc.nonceFrom == "old" {
				c.get(hbsURI) // a later Get supersedes the nonce we sign
			}
			key := chain.leafKey
			if tc.signKey != nil {
				key = tc.signKey(chain)
			}
			mc := newMcNonce()
			p := map[string]string{
				"NetAdminPassEncryptionType": "2",
				"NetworkAdminPassword":       ha1Hex(newAdminPw),
				"McNonce":                    base64.StdEncoding.EncodeToString(mc),
				"SigningAlgorithm":           "2",
				"DigitalSignature":           signNonces(t, key, fwNonce, mc),
			}
			if tc.params != nil {
				tc.params(p)
			}
			args := []string{}
			for _, name := range []string{"NetAdminPassEncryptionType", "NetworkAdminPassword", "McNonce", "SigningAlgorithm", "DigitalSignature"} {
				args = append(args, name, p[name])
			}
			if tc.nonceFrom == "reuse" {
				// First attempt with a broken password parameter fails and consumes the nonce ...
				bad := append([]string(nil), args...)
				bad[3] = "not-hex"
				if rv := returnValueOf(t, c.invoke(hbsURI, "AdminSetup", bad...)); rv != setupInvalidParam {
					t.Fatalf("broken first attempt: %d", rv)
				}
				// ... so the correct signature over the same nonce is refused.
			}
			before := d.Snapshot()
			got := returnValueOf(t, c.invoke(hbsURI, "AdminSetup", args...))
			after := d.Snapshot()
			if got != tc.want {
				t.Fatalf("AdminSetup ReturnValue %d, want %d (%s)", got, tc.want, after.LastFailure)
			}
			if tc.want == 0 {
				if after.Mode != ModeACM || !after.AdminPasswordIs(newAdminPw) {
					t.Errorf("after success: mode %v", after.Mode)
				}
				// The nonce is consumed: the same signed request again fails (InvalidState now, the device is in ACM).
				c2 := newRawClient(t, d, "admin", newAdminPw)
				if rv := returnValueOf(t, c2.invoke(hbsURI, "AdminSetup", args...)); rv == 0 {
					t.Error("AdminSetup replay succeeded")
				}
				return
			}
			if after.Mode != before.Mode || after.AdminHA1 != before.AdminHA1 || after.CertChainStatus != before.CertChainStatus {
				t.Errorf("failed AdminSetup changed state: %v/%v chain %d/%d", before.Mode, after.Mode, before.CertChainStatus, after.CertChainStatus)
			}
			if after.LastFailure == "" {
				t.Error("no LastFailure recorded")
			}
		})
	}
}

func TestAdminSetupRetryWithFreshNonce(t *testing.T) {
	chain := makeChain(t, chainOpts{})
	d := simDevice(t, DeviceConfig{DHCPDNSSuffix: "example.com", TrustedRootHashes: []string{chain.rootSHA256()}})
	c := newRawClient(t, d, "$$OsAdmin", testLSAPw)
	certs := chain.b64()
	for i, cert := range certs {
		returnValueOf(t, c.invoke(hbsURI, "AddNextCertInChain", "NextCertificate", cert,
			"IsLeafCertificate", boolText(i == 0), "IsRootCertificate", boolText(i == len(certs)-1)))
	}
	attempt := func(key *rsaKey) int {
		fw := xmlValue(t, c.get(hbsURI).body, "ConfigurationNonce")
		mc := newMcNonce()
		return returnValueOf(t, c.invoke(hbsURI, "AdminSetup", "NetAdminPassEncryptionType", "2",
			"NetworkAdminPassword", ha1Hex(newAdminPw), "McNonce", base64.StdEncoding.EncodeToString(mc),
			"SigningAlgorithm", "2", "DigitalSignature", signNonces(t, key, fw, mc)))
	}
	if rv := attempt(testKeys(t).other); rv != setupAuthFailed {
		t.Fatalf("wrong key: %d", rv)
	}
	// The chain survives a failed attempt; a fresh nonce and the right key succeed without re-sending it.
	if rv := attempt(chain.leafKey); rv != 0 {
		t.Fatalf("retry: %d (%s)", rv, d.Snapshot().LastFailure)
	}
}

func TestAddNextCertInChainOrder(t *testing.T) {
	chain := makeChain(t, chainOpts{})
	b := chain.b64()
	type step struct {
		cert       string
		leaf, root string
		want       int
		status     int // CertChainStatus afterwards
	}
	tests := []struct {
		name  string
		mode  Mode
		steps []step
	}{
		{"leaf, intermediate, root", 0, []step{{b[0], "true", "false", 0, 1}, {b[1], "false", "false", 0, 1}, {b[2], "false", "true", 0, 2}}},
		{"first certificate not flagged leaf", 0, []step{{b[1], "false", "false", addCertInvalidState, 0}}},
		{"certificate after the root", 0, []step{{b[0], "true", "false", 0, 1}, {b[2], "false", "true", 0, 2}, {b[1], "false", "false", addCertInvalidState, 2}}},
		{"leaf restarts a chain", 0, []step{{b[0], "true", "false", 0, 1}, {b[1], "false", "false", 0, 1}, {b[0], "true", "false", 0, 1}}},
		{"undecodable base64", 0, []step{{"%%%", "true", "false", addCertInvalidParam, 0}}},
		{"not a certificate", 0, []step{{base64.StdEncoding.EncodeToString([]byte("hello")), "true", "false", addCertInvalidParam, 0}}},
		{"flag not boolean", 0, []step{{b[0], "yes", "false", addCertInvalidParam, 0}}},
		{"too long", 0, append([]step{{b[0], "true", "false", 0, 1}},
			step{b[1], "false", "false", 0, 1}, step{b[1], "false", "false", 0, 1}, step{b[1], "false", "false", 0, 1},
			step{b[1], "false", "false", 0, 1}, step{b[1], "false", "false", 0, 1}, step{b[1], "false", "false", 0, 1},
			step{b[1], "false", "false", 0, 1}, step{b[1], "false", "false", 0, 1}, step{b[1], "false", "false", 0, 1},
			step{b[2], "false", "true", addCertChainLengthExceeded, 1})},
		{"in ACM", ModeACM, []step{{b[0], "true", "false", addCertInvalidState, 0}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DeviceConfig{Mode: tc.mode}
			user, pass := "$$OsAdmin", testLSAPw
			if tc.mode != ModePreProvisioning {
				cfg.AdminPassword, user, pass = "Passw0rd!", "admin", "Passw0rd!"
			}
			d := simDevice(t, cfg)
			c := newRawClient(t, d, user, pass)
			for i, s := range tc.steps {
				rv := returnValueOf(t, c.invoke(hbsURI, "AddNextCertInChain", "NextCertificate", s.cert,
					"IsLeafCertificate", s.leaf, "IsRootCertificate", s.root))
				if rv != s.want {
					t.Fatalf("step %d: ReturnValue %d, want %d (%s)", i, rv, s.want, d.Snapshot().LastFailure)
				}
				if got := xmlValue(t, c.get(hbsURI).body, "CertChainStatus"); got != itoa(s.status) {
					t.Fatalf("step %d: CertChainStatus %s, want %d", i, got, s.status)
				}
			}
		})
	}
}

func TestUpgradeClientToAdmin(t *testing.T) {
	chain := makeChain(t, chainOpts{})
	for _, tc := range []struct {
		name string
		mode Mode
		key  func() *rsaKey
		want int
	}{
		{"from CCM", ModeCCM, func() *rsaKey { return chain.leafKey }, 0},
		{"bad signature", ModeCCM, func() *rsaKey { return testKeys(t).other }, setupAuthFailed},
		{"already ACM", ModeACM, func() *rsaKey { return chain.leafKey }, setupInvalidState},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := simDevice(t, DeviceConfig{Mode: tc.mode, AdminPassword: "Ccm-pw12!", DHCPDNSSuffix: "example.com",
				TrustedRootHashes: []string{chain.rootSHA256()}})
			m := libMessages(d, "admin", "Ccm-pw12!")
			hbs := m.IPS.HostBasedSetupService
			if tc.mode == ModeCCM {
				for i, c := range chain.b64() {
					if r, err := hbs.AddNextCertInChain(c, i == 0, i == 2); err != nil || r.Body.AddNextCertInChain_OUTPUT.ReturnValue != 0 {
						t.Fatalf("AddNextCertInChain: %v", err)
					}
				}
			}
			g, err := hbs.Get()
			if err != nil {
				t.Fatal(err)
			}
			mc := newMcNonce()
			r, err := hbs.UpgradeClientToAdmin(base64.StdEncoding.EncodeToString(mc), hostbasedsetup.SigningAlgorithmRSASHA2256,
				signNonces(t, tc.key(), g.Body.GetResponse.ConfigurationNonce, mc))
			if err != nil {
				t.Fatal(err)
			}
			if got := int(r.Body.UpgradeClientToAdmin_OUTPUT.ReturnValue); got != tc.want {
				t.Fatalf("ReturnValue %d, want %d (%s)", got, tc.want, d.Snapshot().LastFailure)
			}
			s := d.Snapshot()
			if tc.want == 0 && (s.Mode != ModeACM || !s.AdminPasswordIs("Ccm-pw12!")) {
				t.Errorf("after upgrade: mode %v, password kept %v", s.Mode, s.AdminPasswordIs("Ccm-pw12!"))
			}
			if tc.want != 0 && s.Mode != tc.mode {
				t.Errorf("failed upgrade changed mode to %v", s.Mode)
			}
		})
	}
}

func TestSetAdminAclEntryEx(t *testing.T) {
	raw := md5.Sum([]byte("admin:" + testRealm + ":" + newAdminPw))
	tests := []struct {
		name, user, digest string
		want               int
	}{
		{"base64 of raw md5", "admin", base64.StdEncoding.EncodeToString(raw[:]), 0},
		{"hex instead of base64 bytes", "admin", ha1Hex(newAdminPw), ptStatusInvalidParameter},
		{"15 bytes", "admin", base64.StdEncoding.EncodeToString(raw[:15]), ptStatusInvalidParameter},
		{"other user name", "root", base64.StdEncoding.EncodeToString(raw[:]), ptStatusInvalidParameter},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := simDevice(t, DeviceConfig{Mode: ModeACM, AdminPassword: "Old-pw12!"})
			m := libMessages(d, "admin", "Old-pw12!")
			r, err := m.AMT.AuthorizationService.SetAdminAclEntryEx(tc.user, tc.digest)
			if err != nil {
				t.Fatal(err)
			}
			if got := int(r.Body.SetAdminResponse.ReturnValue); got != tc.want {
				t.Fatalf("ReturnValue %d, want %d", got, tc.want)
			}
			s := d.Snapshot()
			if tc.want == 0 {
				if !s.AdminPasswordIs(newAdminPw) {
					t.Error("password not changed")
				}
				if _, err := libMessages(d, "admin", "Old-pw12!").AMT.GeneralSettings.Get(); err == nil {
					t.Error("old password still accepted")
				}
				if _, err := libMessages(d, "admin", newAdminPw).AMT.GeneralSettings.Get(); err != nil {
					t.Errorf("new password refused: %v", err)
				}
			} else if !s.AdminPasswordIs("Old-pw12!") {
				t.Error("failed SetAdminAclEntryEx changed the password")
			}
		})
	}
}

func TestSetMEBxPassword(t *testing.T) {
	tests := []struct {
		name string
		mode Mode
		pw   string
		want int
	}{
		{"ACM strong", ModeACM, "Mebx-Pa55!", 0},
		{"ACM weak", ModeACM, "password", ptStatusInvalidParameter},
		{"ACM with colon", ModeACM, "Mebx:Pa55!", ptStatusInvalidParameter},
		{"CCM", ModeCCM, "Mebx-Pa55!", ptStatusNotPermitted},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := simDevice(t, DeviceConfig{Mode: tc.mode, AdminPassword: "Adm1n-pw!"})
			// The library reports a non-zero ReturnValue as an error and still fills the response.
			r, err := libMessages(d, "admin", "Adm1n-pw!").AMT.SetupAndConfigurationService.SetMEBXPassword(tc.pw)
			if (err == nil) != (tc.want == 0) {
				t.Fatalf("SetMEBXPassword error %v", err)
			}
			if got := int(r.Body.SetMEBxPassword_OUTPUT.ReturnValue); got != tc.want {
				t.Fatalf("ReturnValue %d, want %d", got, tc.want)
			}
			wantPw := "admin"
			if tc.want == 0 {
				wantPw = tc.pw
			}
			if got := d.Snapshot().MEBxPassword; got != wantPw {
				t.Errorf("MEBx %q, want %q", got, wantPw)
			}
		})
	}
}

func TestUnprovision(t *testing.T) {
	for _, mode := range []Mode{ModeCCM, ModeACM} {
		t.Run(mode.String(), func(t *testing.T) {
			d := simDevice(t, DeviceConfig{Mode: mode, AdminPassword: "Adm1n-pw!", Hostname: "pc1"})
			admin := libMessages(d, "admin", "Adm1n-pw!")
			if _, err := admin.AMT.GeneralSettings.Put(generalPutRequest("renamed")); err != nil {
				t.Fatalf("Put: %v", err)
			}
			if _, err := admin.AMT.RedirectionService.RequestStateChange(32768); err != nil {
				t.Fatal(err)
			}
			r, err := admin.AMT.SetupAndConfigurationService.Unprovision(1)
			if err != nil || r.Body.Unprovision_OUTPUT.ReturnValue != 0 {
				t.Fatalf("Unprovision: %v %d", err, r.Body.Unprovision_OUTPUT.ReturnValue)
			}
			s := d.Snapshot()
			// The MEBx password survives a full unprovision, as on real firmware.
			if s.Mode != ModePreProvisioning || s.AdminHA1 != "" || s.MEBxPassword == "" || s.Hostname != "pc1" || s.RedirectionEnabledState != 32771 {
				t.Errorf("after Unprovision: %+v", s)
			}
			if _, err := admin.AMT.GeneralSettings.Get(); err == nil {
				t.Error("admin still accepted after Unprovision")
			}
			hbs, err := libMessages(d, "$$OsAdmin", testLSAPw).IPS.HostBasedSetupService.Get()
			if err != nil || hbs.Body.GetResponse.CurrentControlMode != 0 {
				t.Errorf("LSA after Unprovision: %v", err)
			}
		})
	}

	d := simDevice(t, DeviceConfig{Mode: ModeACM, AdminPassword: "Adm1n-pw!"})
	c := newRawClient(t, d, "admin", "Adm1n-pw!")
	if rv := returnValueOf(t, c.invoke(sacURI, "Unprovision", "ProvisioningMode", "4")); rv != ptStatusInvalidParameter || d.Snapshot().Mode != ModeACM {
		t.Errorf("Unprovision with ProvisioningMode 4: %d, mode %v", rv, d.Snapshot().Mode)
	}
}

func TestSetupAndConfigurationBeforeActivation(t *testing.T) {
	d := simDevice(t, DeviceConfig{DHCPDNSSuffix: "Site.Example.com.", TrustedDNSSuffix: "example.com"})
	r, err := libMessages(d, "$$OsAdmin", testLSAPw).AMT.SetupAndConfigurationService.Get()
	if err != nil {
		t.Fatalf("Get with LSA: %v", err)
	}
	g := r.Body.GetResponse
	if g.DhcpDNSSuffix != "site.example.com" || g.TrustedDNSSuffix != "example.com" || g.ProvisioningState != 0 || g.ProvisioningMode != 1 {
		t.Errorf("%+v", g)
	}
	if r := newRawClient(t, d, "$$OsAdmin", testLSAPw).invoke(sacURI, "GetUuid"); r.status != 400 {
		t.Errorf("GetUuid with the LSA: %d, want an AccessDenied fault", r.status)
	}
	a := simDevice(t, DeviceConfig{Mode: ModeACM, AdminPassword: "Adm1n-pw!"})
	uuidB64 := xmlValue(t, newRawClient(t, a, "admin", "Adm1n-pw!").invoke(sacURI, "GetUuid").body, "UUID")
	raw, _ := base64.StdEncoding.DecodeString(uuidB64)
	if hex.EncodeToString(raw) != "44454c4c35001059804eb4c04f564433" {
		t.Errorf("GetUuid %q", uuidB64)
	}
}

func TestDomainMatches(t *testing.T) {
	tests := []struct {
		cn, suffix string
		want       bool
	}{
		{"provision.example.com", "example.com", true},
		{"provision.example.com", "a.b.example.com", true},
		{"provision.example.com", "provision.example.com", true},
		{"Provision.Example.COM", "example.com", true},
		{"*.example.com", "example.com", true},
		{"*.example.com", "x.example.com", false}, // wildcard stripped: parent "com" is a single label
		{"provision.example.com.", "example.com", true},
		{"provision.example.com", "badexample.com", false},
		{"provision.example.com", "com", false},
		{"example.com", "other.com", false},
		{"example.com", "example.com", true},
		{"provision.example.com", "", false},
		{"", "example.com", false},
	}
	for _, tc := range tests {
		if got := domainMatches(tc.cn, tc.suffix); got != tc.want {
			t.Errorf("domainMatches(%q, %q) = %v, want %v", tc.cn, tc.suffix, got, tc.want)
		}
	}
}
