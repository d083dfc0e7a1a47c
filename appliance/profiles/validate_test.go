package profiles

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"testing"
)

const (
	goodAMT  = "Amt!Passw0rd"
	goodMEBx = "Mebx#Passw0rd"
)

func acm() Profile {
	return Profile{
		ProfileName:  "acm-profile",
		Activation:   ActivationACM,
		AMTPassword:  goodAMT,
		MEBxPassword: goodMEBx,
		DHCPEnabled:  ptr(true),
	}
}

func ccm() Profile {
	return Profile{
		ProfileName:            "ccm_profile",
		Activation:             ActivationCCM,
		GenerateRandomPassword: true,
		DHCPEnabled:            ptr(true),
	}
}

func TestValidate(t *testing.T) {
	wifi := func(n int, prio int) []WifiConfig {
		var out []WifiConfig
		for i := range n {
			out = append(out, WifiConfig{ProfileName: fmt.Sprintf("wifi%d", i), Priority: prio})
		}
		return out
	}
	proxies := func(n int, prio int) []ProxyConfig {
		var out []ProxyConfig
		for i := range n {
			out = append(out, ProxyConfig{Name: fmt.Sprintf("proxy%d", i), Priority: prio})
		}
		return out
	}
	tests := []struct {
		name   string
		p      Profile
		opts   ValidateOptions
		path   string // "" = valid
		msg    string // substring of the message
		value  any    // expected Value (nil = omitted)
		noEcho string // must not appear in Msg or Value
	}{
		{name: "valid ACM static", p: acm()},
		{name: "valid CCM random", p: ccm()},
		{name: "valid ACM random both", p: func() Profile {
			p := acm()
			p.AMTPassword, p.MEBxPassword = "", ""
			p.GenerateRandomPassword, p.GenerateRandomMEBxPassword = true, true
			return p
		}()},
		{name: "valid profile name with specials", p: func() Profile { p := ccm(); p.ProfileName = "a$@!%*#?&-_~^Z9"; return p }()},
		{name: "valid static IP", p: func() Profile { p := ccm(); p.DHCPEnabled = ptr(false); p.IPSyncEnabled = ptr(false); return p }()},
		{name: "valid full ACM", p: func() Profile {
			p := acm()
			p.WifiConfigs = wifi(8, 255)
			p.ProxyConfigs = proxies(15, 1)
			p.TLSMode = ptr(4)
			p.TLSSigningAuthority = SigningMicrosoftCA
			p.UserConsent = ConsentNone
			p.Tags = []string{"a", "b"}
			return p
		}()},
		{name: "valid CCM consent All", p: func() Profile { p := ccm(); p.UserConsent = ConsentAll; return p }()},
		{name: "valid CCM with unused MEBx password", p: func() Profile { p := ccm(); p.MEBxPassword = goodMEBx; return p }()},
		{name: "valid by reference", p: func() Profile { p := acm(); p.AMTPassword, p.MEBxPassword = "", ""; return p }(),
			opts: ValidateOptions{AMTPasswordByReference: true, MEBxPasswordByReference: true}},

		{name: "profile name missing", p: func() Profile { p := ccm(); p.ProfileName = ""; return p }(),
			path: "profileName", msg: MsgProfileNameRequired},
		{name: "profile name with space", p: func() Profile { p := ccm(); p.ProfileName = "my profile"; return p }(),
			path: "profileName", msg: MsgProfileNameInvalid, value: "my profile"},
		{name: "profile name with slash (JS range quirk refused)", p: func() Profile { p := ccm(); p.ProfileName = "a/b"; return p }(),
			path: "profileName", msg: MsgProfileNameInvalid, value: "a/b"},
		{name: "profile name with dot", p: func() Profile { p := ccm(); p.ProfileName = "v1.2"; return p }(),
			path: "profileName", msg: MsgProfileNameInvalid, value: "v1.2"},

		{name: "activation missing", p: func() Profile { p := ccm(); p.Activation = ""; return p }(),
			path: "activation", msg: MsgActivationRequired},
		{name: "activation unknown", p: func() Profile { p := ccm(); p.Activation = "acm"; return p }(),
			path: "activation", msg: MsgActivationInvalid, value: "acm"},

		{name: "AMT password missing", p: func() Profile { p := ccm(); p.GenerateRandomPassword = false; return p }(),
			path: "generateRandomPassword", msg: MsgAMTPasswordMissing, value: false},
		{name: "AMT password and random", p: func() Profile { p := ccm(); p.AMTPassword = goodAMT; return p }(),
			path: "generateRandomPassword", msg: MsgAMTPasswordBoth, value: true, noEcho: goodAMT},
		{name: "AMT password by reference and random", p: ccm(), opts: ValidateOptions{AMTPasswordByReference: true},
			path: "generateRandomPassword", msg: MsgAMTPasswordBoth, value: true},
		{name: "AMT password too short", p: func() Profile { p := acm(); p.AMTPassword = "Aa1!xyz"; return p }(),
			path: "amtPassword", msg: "AMT password is shorter than 8 characters", noEcho: "Aa1!xyz"},
		{name: "AMT password too long", p: func() Profile { p := acm(); p.AMTPassword = "Aa1!" + strings.Repeat("x", 29); return p }(),
			path: "amtPassword", msg: "AMT password is longer than 32 characters", noEcho: "xxxxxxxx"},
		{name: "AMT password no digit", p: func() Profile { p := acm(); p.AMTPassword = "Secret!!pass"; return p }(),
			path: "amtPassword", msg: "has no digit", noEcho: "Secret!!pass"},
		{name: "AMT password no upper", p: func() Profile { p := acm(); p.AMTPassword = "secret!!pass1"; return p }(),
			path: "amtPassword", msg: "has no uppercase letter", noEcho: "secret!!pass1"},
		{name: "AMT password no lower", p: func() Profile { p := acm(); p.AMTPassword = "SECRET!!PASS1"; return p }(),
			path: "amtPassword", msg: "has no lowercase letter", noEcho: "SECRET!!PASS1"},
		{name: "AMT password no special", p: func() Profile { p := acm(); p.AMTPassword = "Secret1Pass~"; return p }(),
			path: "amtPassword", msg: "has none of !@#$%^&*", noEcho: "Secret1Pass~"},
		{name: "AMT password with colon (AMT refuses)", p: func() Profile { p := acm(); p.AMTPassword = "Secret1!:Pass"; return p }(),
			path: "amtPassword", msg: "contains a character that is not allowed", noEcho: "Secret1!:Pass"},
		{name: "AMT password with comma", p: func() Profile { p := acm(); p.AMTPassword = "Secret1!,Pass"; return p }(),
			path: "amtPassword", msg: "not allowed", noEcho: "Secret1!,Pass"},
		{name: "AMT password with quote", p: func() Profile { p := acm(); p.AMTPassword = `Secret1!"Pass`; return p }(),
			path: "amtPassword", msg: "not allowed", noEcho: `Secret1!"Pass`},
		{name: "AMT password with parenthesis", p: func() Profile { p := acm(); p.AMTPassword = "Secret1!(Pass"; return p }(),
			path: "amtPassword", msg: "not allowed", noEcho: "Secret1!(Pass"},
		{name: "AMT password with space", p: func() Profile { p := acm(); p.AMTPassword = "Secret1! Pass"; return p }(),
			path: "amtPassword", msg: "not allowed", noEcho: "Secret1! Pass"},
		{name: "AMT password non-ASCII", p: func() Profile { p := acm(); p.AMTPassword = "Sécret1!Pass"; return p }(),
			path: "amtPassword", msg: "not allowed", noEcho: "Sécret1!Pass"},

		{name: "MEBx password missing on ACM", p: func() Profile { p := acm(); p.MEBxPassword = ""; return p }(),
			path: "generateRandomMEBxPassword", msg: MsgMEBxPasswordMissing, value: false},
		{name: "MEBx password and random on ACM", p: func() Profile { p := acm(); p.GenerateRandomMEBxPassword = true; return p }(),
			path: "generateRandomMEBxPassword", msg: MsgMEBxPasswordBoth, value: true, noEcho: goodMEBx},
		{name: "MEBx weak on ACM", p: func() Profile { p := acm(); p.MEBxPassword = "weakpassword"; return p }(),
			path: "mebxPassword", msg: "MEBx password ", noEcho: "weakpassword"},
		{name: "MEBx weak on CCM (RPS checks it anyway)", p: func() Profile { p := ccm(); p.MEBxPassword = "weakpassword"; return p }(),
			path: "mebxPassword", msg: "MEBx password has no uppercase letter", noEcho: "weakpassword"},

		{name: "CCM consent None", p: func() Profile { p := ccm(); p.UserConsent = ConsentNone; return p }(),
			path: "userConsent", msg: MsgUserConsentCCM, value: ConsentNone},
		{name: "CCM consent KVM", p: func() Profile { p := ccm(); p.UserConsent = ConsentKVM; return p }(),
			path: "userConsent", msg: MsgUserConsentCCM, value: ConsentKVM},
		{name: "consent unknown", p: func() Profile { p := acm(); p.UserConsent = "all"; return p }(),
			path: "userConsent", msg: MsgUserConsentInvalid, value: "all"},

		{name: "dhcp missing", p: func() Profile { p := ccm(); p.DHCPEnabled = nil; return p }(),
			path: "dhcpEnabled", msg: MsgDHCPRequired},

		{name: "wifi needs DHCP", p: func() Profile { p := ccm(); p.DHCPEnabled = ptr(false); p.WifiConfigs = wifi(1, 1); return p }(),
			path: "wifiConfigs", msg: MsgWifiNeedsDHCP, value: wifi(1, 1)},
		{name: "wifi too many", p: func() Profile { p := ccm(); p.WifiConfigs = wifi(9, 1); return p }(),
			path: "wifiConfigs", msg: MsgWifiTooMany, value: wifi(9, 1)},
		{name: "wifi priority 0", p: func() Profile { p := ccm(); p.WifiConfigs = wifi(2, 0); return p }(),
			path: "wifiConfigs", msg: MsgWifiPriority + " (item 0)", value: wifi(2, 0)},
		{name: "wifi priority 256", p: func() Profile { p := ccm(); p.WifiConfigs = wifi(1, 256); return p }(),
			path: "wifiConfigs", msg: MsgWifiPriority, value: wifi(1, 256)},
		{name: "wifi name missing", p: func() Profile { p := ccm(); p.WifiConfigs = []WifiConfig{{Priority: 1}}; return p }(),
			path: "wifiConfigs", msg: MsgWifiNameRequired, value: []WifiConfig{{Priority: 1}}},

		{name: "proxy too many", p: func() Profile { p := ccm(); p.ProxyConfigs = proxies(16, 1); return p }(),
			path: "proxyConfigs", msg: MsgProxyTooMany, value: proxies(16, 1)},
		{name: "proxy priority 0", p: func() Profile { p := ccm(); p.ProxyConfigs = proxies(1, 0); return p }(),
			path: "proxyConfigs", msg: MsgProxyPriority, value: proxies(1, 0)},
		{name: "proxy priority 300", p: func() Profile { p := ccm(); p.ProxyConfigs = proxies(3, 300); return p }(),
			path: "proxyConfigs", msg: MsgProxyPriority, value: proxies(3, 300)},
		{name: "proxy name missing", p: func() Profile { p := ccm(); p.ProxyConfigs = []ProxyConfig{{Priority: 2}}; return p }(),
			path: "proxyConfigs", msg: MsgProxyNameRequired, value: []ProxyConfig{{Priority: 2}}},

		{name: "CIRA with TLS", p: func() Profile { p := ccm(); p.CIRAConfigName = "cira"; p.TLSMode = ptr(1); return p }(),
			path: "ciraConfigName", msg: MsgCIRAWithTLS, value: "cira"},
		{name: "tlsMode 0", p: func() Profile { p := ccm(); p.TLSMode = ptr(0); return p }(),
			path: "tlsMode", msg: MsgTLSModeInvalid, value: 0},
		{name: "tlsMode 5", p: func() Profile { p := ccm(); p.TLSMode = ptr(5); return p }(),
			path: "tlsMode", msg: MsgTLSModeInvalid, value: 5},
		{name: "tls signing authority unknown", p: func() Profile {
			p := ccm()
			p.TLSMode = ptr(1)
			p.TLSSigningAuthority = "LetsEncrypt"
			return p
		}(), path: "tlsSigningAuthority", msg: MsgTLSSigningInvalid, value: "LetsEncrypt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := tt.p.ValidateWith(tt.opts)
			if errs == nil {
				t.Fatal("Validate returned nil; want a non-nil slice")
			}
			if tt.path == "" {
				if len(errs) != 0 {
					t.Fatalf("want valid, got %v", errs)
				}
				return
			}
			if len(errs) != 1 {
				t.Fatalf("want exactly one error on %s, got %v", tt.path, errs)
			}
			e := errs[0]
			if e.Path != tt.path || !strings.Contains(e.Msg, tt.msg) {
				t.Errorf("got %s: %q; want %s: …%q…", e.Path, e.Msg, tt.path, tt.msg)
			}
			if e.Type != "field" || e.Location != "body" {
				t.Errorf("type/location = %q/%q, want field/body", e.Type, e.Location)
			}
			if !reflect.DeepEqual(e.Value, tt.value) {
				t.Errorf("value = %#v, want %#v", e.Value, tt.value)
			}
			if tt.noEcho != "" {
				b, _ := json.Marshal(errs)
				if strings.Contains(string(b), tt.noEcho) {
					t.Errorf("error echoes the password: %s", b)
				}
			}
		})
	}
}

// TestValidateCollectsAll checks that independent failures are all reported,
// in RPS's chain order, so an API client sees every problem at once.
func TestValidateCollectsAll(t *testing.T) {
	p := Profile{ProfileName: "bad name", Activation: "x", TLSMode: ptr(9), CIRAConfigName: "c", UserConsent: "Some"}
	var paths []string
	for _, e := range p.Validate() {
		paths = append(paths, e.Path)
	}
	want := []string{"profileName", "activation", "generateRandomPassword", "tlsMode", "ciraConfigName", "dhcpEnabled", "userConsent"}
	if !reflect.DeepEqual(paths, want) {
		t.Errorf("paths = %v, want %v", paths, want)
	}
}

func TestFieldErrorJSON(t *testing.T) {
	p := ccm()
	p.Activation = "bogus"
	b, err := json.Marshal(map[string]any{"errors": p.Validate()})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"errors":[{"type":"field","value":"bogus","msg":"` + MsgActivationInvalid + `","path":"activation","location":"body"}]}`
	if string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}
	if got := p.Validate()[0].Error(); got != "activation: "+MsgActivationInvalid {
		t.Errorf("Error() = %q", got)
	}
}

func TestWithDefaults(t *testing.T) {
	tests := []struct {
		name string
		in   Profile
		want func(Profile) Profile // applied to the input
	}{
		{"ACM", acm(), func(p Profile) Profile {
			p.UserConsent, p.KVMEnabled, p.SOLEnabled, p.IDEREnabled = ConsentKVM, ptr(true), ptr(false), ptr(false)
			return p
		}},
		{"CCM", ccm(), func(p Profile) Profile {
			p.UserConsent, p.KVMEnabled, p.SOLEnabled, p.IDEREnabled = ConsentAll, ptr(true), ptr(false), ptr(false)
			return p
		}},
		{"explicit values kept", func() Profile {
			p := acm()
			p.UserConsent, p.KVMEnabled, p.SOLEnabled, p.IDEREnabled = ConsentNone, ptr(false), ptr(true), ptr(true)
			return p
		}(), func(p Profile) Profile { return p }},
		{"static IP syncs by default", func() Profile { p := ccm(); p.DHCPEnabled = ptr(false); return p }(), func(p Profile) Profile {
			p.UserConsent, p.KVMEnabled, p.SOLEnabled, p.IDEREnabled, p.IPSyncEnabled = ConsentAll, ptr(true), ptr(false), ptr(false), ptr(true)
			return p
		}},
		{"static IP explicit no sync", func() Profile { p := ccm(); p.DHCPEnabled, p.IPSyncEnabled = ptr(false), ptr(false); return p }(), func(p Profile) Profile {
			p.UserConsent, p.KVMEnabled, p.SOLEnabled, p.IDEREnabled = ConsentAll, ptr(true), ptr(false), ptr(false)
			return p
		}},
		{"TLS defaults to SelfSigned", func() Profile { p := ccm(); p.TLSMode = ptr(2); return p }(), func(p Profile) Profile {
			p.UserConsent, p.KVMEnabled, p.SOLEnabled, p.IDEREnabled, p.TLSSigningAuthority = ConsentAll, ptr(true), ptr(false), ptr(false), SigningSelfSigned
			return p
		}},
		{"TLS authority kept", func() Profile { p := ccm(); p.TLSMode, p.TLSSigningAuthority = ptr(2), SigningMicrosoftCA; return p }(), func(p Profile) Profile {
			p.UserConsent, p.KVMEnabled, p.SOLEnabled, p.IDEREnabled = ConsentAll, ptr(true), ptr(false), ptr(false)
			return p
		}},
		{"authority cleared without TLS", func() Profile { p := ccm(); p.TLSSigningAuthority = SigningMicrosoftCA; return p }(), func(p Profile) Profile {
			p.UserConsent, p.KVMEnabled, p.SOLEnabled, p.IDEREnabled, p.TLSSigningAuthority = ConsentAll, ptr(true), ptr(false), ptr(false), ""
			return p
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orig := tt.in
			got := tt.in.WithDefaults()
			if want := tt.want(tt.in); !reflect.DeepEqual(got, want) {
				t.Errorf("got  %#v\nwant %#v", redactedProfile(got), redactedProfile(want))
			}
			if !reflect.DeepEqual(tt.in, orig) {
				t.Error("WithDefaults changed its receiver")
			}
			if errs := got.Validate(); len(errs) != 0 {
				t.Errorf("defaults made a valid profile invalid: %v", errs)
			}
		})
	}
}

func TestRedactedAndFormatting(t *testing.T) {
	p := acm()
	p.Tags = []string{"t"}
	r := p.Redacted()
	if r.AMTPassword != "" || r.MEBxPassword != "" {
		t.Fatal("Redacted kept a password")
	}
	if p.AMTPassword != goodAMT {
		t.Fatal("Redacted changed its receiver")
	}
	r.Tags[0] = "changed"
	if p.Tags[0] != "t" {
		t.Fatal("Redacted shares the tags slice")
	}
	var logged strings.Builder
	slog.New(slog.NewTextHandler(&logged, nil)).Info("profile", "p", p)
	b, _ := json.Marshal(r)
	for name, s := range map[string]string{
		//lint:ignore S1025 the test checks each formatting verb itself
		"%v": fmt.Sprintf("%v", p), "%s": fmt.Sprintf("%s", p), "%+v": fmt.Sprintf("%+v", p),
		"%#v": fmt.Sprintf("%#v", p), "slog": logged.String(), "json(redacted)": string(b),
	} {
		if strings.Contains(s, goodAMT) || strings.Contains(s, goodMEBx) {
			t.Errorf("%s output contains a password: %s", name, s)
		}
	}
	if !strings.Contains(logged.String(), "acm-profile") {
		t.Errorf("slog output lost the profile: %s", logged.String())
	}
}

func TestIsACMAndRandom(t *testing.T) {
	if !acm().IsACM() || ccm().IsACM() {
		t.Error("IsACM")
	}
	if acm().UsesRandomPasswords() || !ccm().UsesRandomPasswords() {
		t.Error("UsesRandomPasswords: static ACM / random CCM")
	}
	p := acm()
	p.MEBxPassword, p.GenerateRandomMEBxPassword = "", true
	if !p.UsesRandomPasswords() {
		t.Error("UsesRandomPasswords: ACM with random MEBx")
	}
	p = ccm()
	p.GenerateRandomPassword, p.AMTPassword, p.GenerateRandomMEBxPassword = false, goodAMT, true
	if p.UsesRandomPasswords() {
		t.Error("UsesRandomPasswords: CCM never uses a MEBx password")
	}
}

func TestUnsupported(t *testing.T) {
	if got := acm().Unsupported(); len(got) != 0 {
		t.Errorf("plain profile: %v", got)
	}
	p := acm()
	p.WifiConfigs = []WifiConfig{{ProfileName: "w", Priority: 1}}
	p.LocalWifiSyncEnabled = ptr(true)
	p.UEFIWifiSyncEnabled = ptr(false)
	p.TLSMode = ptr(1)
	p.CIRAConfigName = "cira"
	p.ProxyConfigs = []ProxyConfig{{Name: "p", Priority: 1}}
	p.IEEE8021xProfileName = "dot1x"
	want := []string{
		"Wi-Fi profiles (wifiConfigs)",
		"local Wi-Fi profile sync (localWifiSyncEnabled)",
		"TLS (tlsMode)",
		"CIRA (ciraConfigName)",
		"HTTP proxies (proxyConfigs)",
		"802.1X (ieee8021xProfileName)",
	}
	if got := p.Unsupported(); !reflect.DeepEqual(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

func TestJSONNames(t *testing.T) {
	// The admin API must read RPS's field names; a round trip through a
	// body written as an RPS client would write it proves the tags.
	body := `{"profileName":"p","activation":"acmactivate","amtPassword":"` + goodAMT + `","generateRandomPassword":false,
	"mebxPassword":"` + goodMEBx + `","generateRandomMEBxPassword":false,"dhcpEnabled":false,"ipSyncEnabled":true,
	"localWifiSyncEnabled":true,"uefiWifiSyncEnabled":false,"wifiConfigs":[{"profileName":"w","priority":3}],
	"proxyConfigs":[{"name":"x","priority":4}],"ieee8021xProfileName":"d","ciraConfigName":"c","tlsMode":2,
	"tlsSigningAuthority":"MicrosoftCA","userConsent":"None","iderEnabled":true,"kvmEnabled":false,"solEnabled":true,
	"tags":["a"],"tenantId":"t","version":"7"}`
	var p Profile
	dec := json.NewDecoder(strings.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		t.Fatal(err)
	}
	want := Profile{
		ProfileName: "p", Activation: ActivationACM, AMTPassword: goodAMT, MEBxPassword: goodMEBx,
		DHCPEnabled: ptr(false), IPSyncEnabled: ptr(true), LocalWifiSyncEnabled: ptr(true), UEFIWifiSyncEnabled: ptr(false),
		WifiConfigs: []WifiConfig{{"w", 3}}, ProxyConfigs: []ProxyConfig{{"x", 4}}, IEEE8021xProfileName: "d",
		CIRAConfigName: "c", TLSMode: ptr(2), TLSSigningAuthority: SigningMicrosoftCA, UserConsent: ConsentNone,
		IDEREnabled: ptr(true), KVMEnabled: ptr(false), SOLEnabled: ptr(true), Tags: []string{"a"}, TenantID: "t", Version: "7",
	}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("got  %#v\nwant %#v", redactedProfile(p), redactedProfile(want))
	}
}
