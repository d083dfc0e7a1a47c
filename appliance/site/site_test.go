package site

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/amtedge/amtedge/appliance/profiles"
)

const exampleSite = `# example site
domains:
  - name: demo
    suffix: demo.amtedge.test
    pfxFile: demo-provisioning.pfx
    passwordFile: demo-provisioning.pass
  - name: corp_2
    suffix: Corp.Example.COM
    pfxFile: /etc/amtedge/corp.pfx
    passwordFile: secrets/corp.pass
profiles:
  - profileName: ccm
    activation: ccmactivate
    generateRandomPassword: true
    dhcpEnabled: true
  - profileName: acm
    activation: acmactivate
    generateRandomPassword: true
    generateRandomMEBxPassword: true
    dhcpEnabled: true
    userConsent: None
    kvmEnabled: true
    solEnabled: true
    iderEnabled: false
    tags: [lab, "2024"]
  - profileName: acm-static
    activation: acmactivate
    amtPasswordFile: acm.amt
    mebxPasswordFile: /abs/acm.mebx
    dhcpEnabled: false
    ipSyncEnabled: false
    tlsMode: 2
    tlsSigningAuthority: MicrosoftCA
`

func ptr[T any](v T) *T { return &v }

func exampleWant(base string) *File {
	return &File{
		Domains: []Domain{
			{Name: "demo", Suffix: "demo.amtedge.test", PFXFile: base + "/demo-provisioning.pfx", PasswordFile: base + "/demo-provisioning.pass"},
			{Name: "corp_2", Suffix: "Corp.Example.COM", PFXFile: "/etc/amtedge/corp.pfx", PasswordFile: base + "/secrets/corp.pass"},
		},
		Profiles: []Profile{
			{Profile: profiles.Profile{ProfileName: "ccm", Activation: "ccmactivate", GenerateRandomPassword: true, DHCPEnabled: ptr(true)}},
			{Profile: profiles.Profile{
				ProfileName: "acm", Activation: "acmactivate", GenerateRandomPassword: true, GenerateRandomMEBxPassword: true,
				DHCPEnabled: ptr(true), UserConsent: "None", KVMEnabled: ptr(true), SOLEnabled: ptr(true), IDEREnabled: ptr(false),
				Tags: []string{"lab", "2024"},
			}},
			{
				Profile: profiles.Profile{
					ProfileName: "acm-static", Activation: "acmactivate", DHCPEnabled: ptr(false), IPSyncEnabled: ptr(false),
					TLSMode: ptr(2), TLSSigningAuthority: "MicrosoftCA",
				},
				AMTPasswordFile: base + "/acm.amt", MEBxPasswordFile: "/abs/acm.mebx",
			},
		},
	}
}

func TestParseValid(t *testing.T) {
	got, err := Parse([]byte(exampleSite), "/srv/site")
	if err != nil {
		t.Fatal(err)
	}
	if want := exampleWant("/srv/site"); !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	// Without a base directory relative references stay as written.
	got, err = Parse([]byte(exampleSite), "")
	if err != nil {
		t.Fatal(err)
	}
	if got.Domains[0].PFXFile != "demo-provisioning.pfx" {
		t.Errorf("PFXFile = %q", got.Domains[0].PFXFile)
	}
	if d, ok := got.Domain("CORP_2"); !ok || d.Suffix != "Corp.Example.COM" {
		t.Errorf("Domain lookup: %v %v", d, ok)
	}
	if _, ok := got.Domain("nope"); ok {
		t.Error("Domain found a missing name")
	}
}

func TestRoundTrip(t *testing.T) {
	first, err := Parse([]byte(exampleSite), "/srv/site")
	if err != nil {
		t.Fatal(err)
	}
	out, err := yaml.Marshal(first)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "amtPassword:") || strings.Contains(string(out), "mebxPassword:") {
		t.Errorf("marshalled site file has an inline password key:\n%s", out)
	}
	second, err := Parse(out, "/elsewhere")
	if err != nil {
		t.Fatalf("re-parse: %v\n%s", err, out)
	}
	if !reflect.DeepEqual(first, second) {
		t.Errorf("round trip changed the file:\nfirst  %+v\nsecond %+v\nyaml:\n%s", first, second, out)
	}
}

// TestParseErrors covers every site-file error; each must name its key path.
func TestParseErrors(t *testing.T) {
	const dom = "domains:\n  - name: d\n    suffix: a.example.com\n    pfxFile: d.pfx\n    passwordFile: d.pass\n"
	const ccm = "profiles:\n  - profileName: c\n    activation: ccmactivate\n    generateRandomPassword: true\n    dhcpEnabled: true\n"
	const acmHead = "profiles:\n  - profileName: a\n    activation: acmactivate\n    dhcpEnabled: true\n"
	tests := []struct {
		name string
		yaml string
		want []string // substrings of the error
	}{
		// The document.
		{"empty", "", []string{"site file: is empty"}},
		{"comments only", "# nothing\n", []string{"site file: is empty"}},
		{"null document", "---\n", []string{"site file: defines no domains and no profiles"}},
		{"empty lists", "domains: []\nprofiles: []\n", []string{"site file: defines no domains and no profiles"}},
		{"two documents", ccm + "---\n" + ccm, []string{"site file: holds more than one YAML document", "(line 6)"}},
		{"syntax error", "profiles: [\n", []string{"site file: yaml:"}},
		{"top level list", "- a\n- b\n", []string{"site file: must be a mapping with the keys domains and profiles (line 1)"}},
		{"unknown top key", ccm + "domain: []\n", []string{"domain: unknown key; known keys here: domains, profiles (line 6)"}},
		{"top level case", "Profiles: []\n", []string{`Profiles: unknown key; did you mean "profiles"?`}},
		{"duplicate key", ccm + "profiles: []\n", []string{"profiles: appears more than once (first on line 1) (line 6)"}},
		{"alias", "x: &a 1\n", []string{"x: unknown key"}},
		{"alias use", "profiles:\n  - &p\n    profileName: c\n    activation: ccmactivate\n    generateRandomPassword: true\n    dhcpEnabled: true\n  - *p\n",
			[]string{"profiles[1]: YAML aliases (*name) are not supported"}},
		{"merge key", "profiles:\n  - <<: {profileName: c}\n    activation: ccmactivate\n", []string{"profiles[0].<<: YAML merge keys (<<) are not supported"}},
		{"complex key", "profiles:\n  - ? [a]\n    : b\n", []string{"profiles[0]: keys must be plain names"}},

		// Shapes and types.
		{"profiles not a list", "profiles: {}\n", []string{"profiles: must be a list (line 1)"}},
		{"domain not a mapping", "domains:\n  - demo\n", []string{"domains[0]: must be a mapping (key: value lines) (line 2)"}},
		{"null item", "profiles:\n  - ~\n", []string{"profiles[0]: is empty"}},
		{"bool as string", strings.Replace(ccm, "dhcpEnabled: true", "dhcpEnabled: \"true\"", 1), []string{"profiles[0].dhcpEnabled: must be true or false (line 5)"}},
		{"bool yes", strings.Replace(ccm, "dhcpEnabled: true", "dhcpEnabled: yes", 1), []string{"profiles[0].dhcpEnabled: must be true or false"}},
		{"int as text", ccm + "    tlsMode: one\n", []string{"profiles[0].tlsMode: must be a whole number (line 6)"}},
		{"int overflow", ccm + "    tlsMode: 99999999999999999999999\n", []string{"profiles[0].tlsMode: must be a whole number"}},
		{"string as list", "domains:\n  - name: [a]\n", []string{"domains[0].name: must be a single value, not a list or mapping"}},
		{"binary tag", "domains:\n  - name: !!binary aGVsbG8=\n", []string{"domains[0].name: explicit YAML tags are not supported here"}},
		{"tags not a list", ccm + "    tags: {a: b}\n", []string{"profiles[0].tags: must be a list"}},
		{"tag not a string", ccm + "    tags: [[x]]\n", []string{"profiles[0].tags[0]: must be a single value"}},
		{"wifi priority type", ccm + "    wifiConfigs:\n      - profileName: w\n        priority: high\n", []string{"profiles[0].wifiConfigs[0].priority: must be a whole number (line 8)"}},
		{"wifi unknown key", ccm + "    wifiConfigs:\n      - ssid: w\n", []string{"profiles[0].wifiConfigs[0].ssid: unknown key; known keys here: priority, profileName"}},

		// Keys the site file refuses.
		{"inline amtPassword", strings.Replace(ccm, "generateRandomPassword: true", "amtPassword: Sup3r$ecret!", 1),
			[]string{"profiles[0].amtPassword: inline passwords are not allowed in a site file", "amtPasswordFile", "(line 4)"}},
		{"inline empty amtPassword", ccm + "    amtPassword:\n", []string{"profiles[0].amtPassword: inline passwords are not allowed"}},
		{"inline mebxPassword", acmHead + "    generateRandomPassword: true\n    mebxPassword: Sup3r$ecret!\n",
			[]string{"profiles[0].mebxPassword: inline passwords are not allowed", "mebxPasswordFile"}},
		{"tenantId", ccm + "    tenantId: t\n", []string{"profiles[0].tenantId: is not a site file setting"}},
		{"version", ccm + "    version: \"1\"\n", []string{"profiles[0].version: is the admin API's concurrency token"}},
		{"profile key case", ccm + "    dhcpenabled: true\n", []string{`profiles[0].dhcpenabled: unknown key; did you mean "dhcpEnabled"?`}},
		{"domain inline password", "domains:\n  - name: d\n    password: x\n", []string{"domains[0].password: unknown key: inline secrets are not allowed", "passwordFile"}},
		{"domain RPS cert", "domains:\n  - provisioningCert: AAAA\n", []string{"domains[0].provisioningCert: unknown key: the certificate is given by file", "pfxFile"}},
		{"domain RPS suffix", "domains:\n  - domainSuffix: a.b\n", []string{`domains[0].domainSuffix: unknown key: the site file calls it "suffix"`}},
		{"domain RPS name", "domains:\n  - profileName: d\n", []string{`domains[0].profileName: unknown key: the site file calls the domain's name "name"`}},
		{"domain unknown", "domains:\n  - nam: d\n", []string{"domains[0].nam: unknown key; known keys here: name, passwordFile, pfxFile, suffix"}},

		// Domains.
		{"domain name missing", strings.Replace(dom, "name: d", "name: \"\"", 1), []string{"domains[0].name: is required (line 2)"}},
		{"domain name absent", "domains:\n  - suffix: a.example.com\n    pfxFile: d.pfx\n    passwordFile: d.pass\n", []string{"domains[0].name: is required (line 2)"}},
		{"domain name regex", strings.Replace(dom, "name: d", "name: my.domain", 1), []string{"domains[0].name: AMT Domain profile name accepts letters, numbers, hyphens (-), and underscores (_)"}},
		{"suffix missing", strings.Replace(dom, "suffix: a.example.com", "suffix: \"\"", 1), []string{"domains[0].suffix: is required"}},
		{"suffix one label", strings.Replace(dom, "a.example.com", "localdomain", 1), []string{`domains[0].suffix: "localdomain" must have at least two labels`}},
		{"suffix trailing dot", strings.Replace(dom, "a.example.com", "example.com.", 1), []string{`domains[0].suffix: "example.com." is not a DNS suffix`}},
		{"suffix underscore", strings.Replace(dom, "a.example.com", "a_b.example.com", 1), []string{"domains[0].suffix:", "not a DNS suffix"}},
		{"suffix hyphen edge", strings.Replace(dom, "a.example.com", "-a.example.com", 1), []string{"domains[0].suffix:", "not a DNS suffix"}},
		{"suffix long label", strings.Replace(dom, "a.example.com", strings.Repeat("a", 64)+".com", 1), []string{"domains[0].suffix:", "not a DNS suffix"}},
		{"suffix too long", strings.Replace(dom, "a.example.com", strings.Repeat("abcdefghi.", 26)+"com", 1), []string{"domains[0].suffix: is longer than 253 characters"}},
		{"pfxFile missing", strings.Replace(dom, "    pfxFile: d.pfx\n", "", 1), []string{"domains[0].pfxFile: is required"}},
		{"passwordFile missing", strings.Replace(dom, "    passwordFile: d.pass\n", "", 1), []string{"domains[0].passwordFile: is required"}},
		{"duplicate domain name", dom + strings.Replace(strings.Replace(dom, "domains:\n", "", 1), "a.example.com", "b.example.com", 1),
			[]string{`domains[1].name: domain name "d" is already used by domains[0]`}},
		{"duplicate domain name case", dom + strings.Replace(strings.Replace(strings.Replace(dom, "domains:\n", "", 1), "a.example.com", "b.example.com", 1), "name: d", "name: D", 1),
			[]string{`domains[1].name: domain name "D" is already used by domains[0]`}},
		{"duplicate suffix case", dom + strings.Replace(strings.Replace(strings.Replace(dom, "domains:\n", "", 1), "name: d", "name: e", 1), "a.example.com", "A.Example.com", 1),
			[]string{`domains[1].suffix: suffix "A.Example.com" is already used by domains[0]`}},

		// Profiles: every profile rule, reported with the key path.
		{"profile name missing", strings.Replace(ccm, "profileName: c", "profileName: \"\"", 1), []string{"profiles[0].profileName: " + profiles.MsgProfileNameRequired}},
		{"profile name regex", strings.Replace(ccm, "profileName: c", "profileName: a b", 1), []string{"profiles[0].profileName: " + profiles.MsgProfileNameInvalid}},
		{"activation missing", strings.Replace(ccm, "    activation: ccmactivate\n", "", 1), []string{"profiles[0].activation: " + profiles.MsgActivationRequired + " (line 2)"}},
		{"activation invalid", ccm + strings.Replace(strings.Replace(strings.Replace(ccm, "profiles:\n", "", 1), "ccmactivate", "acm", 1), "c\n", "c2\n", 1),
			[]string{"profiles[1].activation: " + profiles.MsgActivationInvalid + " (line 7)"}},
		{"AMT password neither", strings.Replace(ccm, "    generateRandomPassword: true\n", "", 1),
			[]string{"profiles[0].generateRandomPassword: set generateRandomPassword: true, or name the static password's file with amtPasswordFile"}},
		{"AMT password both", ccm + "    amtPasswordFile: a.pass\n", []string{"profiles[0].generateRandomPassword: generateRandomPassword: true and amtPasswordFile exclude each other"}},
		{"MEBx neither", acmHead + "    generateRandomPassword: true\n", []string{"profiles[0].generateRandomMEBxPassword: an acmactivate profile needs a MEBx password"}},
		{"MEBx both", acmHead + "    generateRandomPassword: true\n    generateRandomMEBxPassword: true\n    mebxPasswordFile: m\n",
			[]string{"profiles[0].generateRandomMEBxPassword: generateRandomMEBxPassword: true and mebxPasswordFile exclude each other"}},
		{"dhcp missing", strings.Replace(ccm, "    dhcpEnabled: true\n", "", 1), []string{"profiles[0].dhcpEnabled: " + profiles.MsgDHCPRequired}},
		{"dhcp null", strings.Replace(ccm, "dhcpEnabled: true", "dhcpEnabled: ~", 1), []string{"profiles[0].dhcpEnabled: " + profiles.MsgDHCPRequired}},
		{"CCM consent", ccm + "    userConsent: KVM\n", []string{"profiles[0].userConsent: " + profiles.MsgUserConsentCCM}},
		{"consent unknown", ccm + "    userConsent: some\n", []string{"profiles[0].userConsent: " + profiles.MsgUserConsentInvalid}},
		{"tlsMode range", ccm + "    tlsMode: 7\n", []string{"profiles[0].tlsMode: " + profiles.MsgTLSModeInvalid + " (line 6)"}},
		{"tls authority", ccm + "    tlsMode: 1\n    tlsSigningAuthority: Other\n", []string{"profiles[0].tlsSigningAuthority: " + profiles.MsgTLSSigningInvalid}},
		{"wifi refused", ccm + "    wifiConfigs:\n      - profileName: w\n        priority: 1\n", []string{"profiles[0].wifiConfigs: refers to wireless configs, which a site file cannot define"}},
		{"proxy refused", ccm + "    proxyConfigs:\n      - name: p\n        priority: 1\n", []string{"profiles[0].proxyConfigs: refers to proxy configs"}},
		{"cira refused", ccm + "    ciraConfigName: c\n", []string{"profiles[0].ciraConfigName: refers to a CIRA config"}},
		{"cira with tls reported once", ccm + "    ciraConfigName: c\n    tlsMode: 1\n", []string{"profiles[0].ciraConfigName: refers to a CIRA config"}},
		{"8021x refused", ccm + "    ieee8021xProfileName: x\n", []string{"profiles[0].ieee8021xProfileName: refers to an 802.1X config"}},
		{"duplicate profile name", ccm + strings.Replace(strings.Replace(ccm, "profiles:\n", "", 1), "profileName: c", "profileName: C", 1),
			[]string{`profiles[1].profileName: profile name "C" is already used by profiles[0]`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse([]byte(tt.yaml), "/base")
			if err == nil {
				t.Fatalf("want error, got %+v", f)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
			var ke *KeyError
			if !errors.As(err, &ke) {
				t.Errorf("error is not a *KeyError: %T", err)
			}
			if strings.Contains(err.Error(), "Sup3r$ecret!") {
				t.Errorf("error echoes an inline password: %v", err)
			}
		})
	}
}

// TestParseReportsAll checks that one pass reports the problems of every
// item, so an operator fixes a file in one round.
func TestParseReportsAll(t *testing.T) {
	in := "domains:\n  - name: a.b\n    suffix: x\n" +
		"profiles:\n  - profileName: p\n    activation: nope\n  - profileName: q\n    activation: ccmactivate\n    generateRandomPassword: true\n"
	_, err := Parse([]byte(in), "")
	if err == nil {
		t.Fatal("want error")
	}
	for _, w := range []string{"domains[0].name:", "domains[0].suffix:", "domains[0].pfxFile:", "domains[0].passwordFile:",
		"profiles[0].activation:", "profiles[0].generateRandomPassword:", "profiles[0].dhcpEnabled:", "profiles[1].dhcpEnabled:"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("missing %q in:\n%v", w, err)
		}
	}
}

func TestParseTooLarge(t *testing.T) {
	data := []byte("profiles: []\n" + strings.Repeat("#", maxSiteFileSize))
	if _, err := Parse(data, ""); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("got %v", err)
	}
}

// writeFile writes content with mode into dir/name and returns the path.
func writeFile(t *testing.T, dir, name, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // WriteFile's mode is filtered by the umask
		t.Fatal(err)
	}
	return p
}

const loadSite = `domains:
  - name: demo
    suffix: demo.amtedge.test
    pfxFile: demo.pfx
    passwordFile: secrets/demo.pass
profiles:
  - profileName: acm
    activation: acmactivate
    amtPasswordFile: acm.amt
    generateRandomMEBxPassword: true
    dhcpEnabled: true
`

func loadDir(t *testing.T) string {
	dir := t.TempDir()
	writeFile(t, dir, "site.yaml", loadSite, 0o644) // the site file itself holds no secret
	writeFile(t, dir, "demo.pfx", "PFXBYTES", 0o600)
	writeFile(t, dir, "secrets/demo.pass", "pfx-pass\n", 0o640)
	writeFile(t, dir, "acm.amt", "Amt!Passw0rd\n", 0o600)
	return dir
}

func TestLoad(t *testing.T) {
	dir := loadDir(t)
	f, err := Load(filepath.Join(dir, "site.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	d := f.Domains[0]
	if d.PFXFile != filepath.Join(dir, "demo.pfx") || d.PasswordFile != filepath.Join(dir, "secrets/demo.pass") {
		t.Errorf("paths not resolved: %+v", d)
	}
	if f.Profiles[0].AMTPasswordFile != filepath.Join(dir, "acm.amt") || f.Profiles[0].AMTPassword != "" {
		t.Errorf("profile: %+v", f.Profiles[0])
	}
	if pw, err := d.ReadPassword(); err != nil || pw != "pfx-pass" {
		t.Errorf("ReadPassword = %q, %v", pw, err)
	}
	if b, err := d.ReadPFX(); err != nil || string(b) != "PFXBYTES" {
		t.Errorf("ReadPFX = %q, %v", b, err)
	}
	ps, err := f.ResolveProfiles()
	if err != nil {
		t.Fatal(err)
	}
	if ps[0].AMTPassword != "Amt!Passw0rd" || ps[0].MEBxPassword != "" || !ps[0].GenerateRandomMEBxPassword {
		t.Errorf("resolved profile: %#v", ps[0])
	}
	// A relative path to the site file works too.
	wd, _ := os.Getwd()
	t.Cleanup(func() { os.Chdir(wd) })
	if err := os.Chdir(dir); err != nil {
		t.Fatal(err)
	}
	if f, err := Load("site.yaml"); err != nil || f.Domains[0].PFXFile != filepath.Join(dir, "demo.pfx") {
		t.Errorf("relative Load: %v %+v", err, f)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string)
		want  []string
	}{
		{"missing site file", func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, "site.yaml")) }, []string{"site file: open"}},
		{"invalid site file", func(t *testing.T, dir string) {
			writeFile(t, dir, "site.yaml", "profiles: {}\n", 0o644)
		}, []string{"site.yaml:\nprofiles: must be a list"}},
		{"site file too large", func(t *testing.T, dir string) {
			writeFile(t, dir, "site.yaml", loadSite+strings.Repeat("#", maxSiteFileSize), 0o644)
		}, []string{"larger than"}},
		{"missing pfx", func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, "demo.pfx")) },
			[]string{"domains[0].pfxFile: secret file: stat " + "DIR/demo.pfx: no such file or directory"}},
		{"world-readable password", func(t *testing.T, dir string) { os.Chmod(filepath.Join(dir, "secrets/demo.pass"), 0o644) },
			[]string{"domains[0].passwordFile: secret file DIR/secrets/demo.pass is accessible to other users (mode 0644)", "chmod o-rwx"}},
		{"world-writable AMT password", func(t *testing.T, dir string) { os.Chmod(filepath.Join(dir, "acm.amt"), 0o602) },
			[]string{"profiles[0].amtPasswordFile:", "accessible to other users (mode 0602)"}},
		{"pfx is a directory", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, "demo.pfx"))
			os.Mkdir(filepath.Join(dir, "demo.pfx"), 0o700)
		}, []string{"domains[0].pfxFile: secret file DIR/demo.pfx is not a regular file"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := loadDir(t)
			tt.setup(t, dir)
			_, err := Load(filepath.Join(dir, "site.yaml"))
			if err == nil {
				t.Fatal("want error")
			}
			for _, w := range tt.want {
				if w = strings.ReplaceAll(w, "DIR", dir); !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
		})
	}
}

func TestReadSecret(t *testing.T) {
	const pw = "Amt!Passw0rd"
	tests := []struct {
		name    string
		content string
		mode    os.FileMode
		want    string // "" = error
		errWant string
	}{
		{"plain", pw, 0o600, pw, ""},
		{"one newline trimmed", pw + "\n", 0o600, pw, ""},
		{"CRLF trimmed", pw + "\r\n", 0o600, pw, ""},
		{"group readable allowed", pw + "\n", 0o640, pw, ""},
		{"spaces kept", " a b \n", 0o600, " a b ", ""},
		{"two newlines", pw + "\n\n", 0o600, "", "holds more than one line"},
		{"two lines", pw + "\nsecond\n", 0o600, "", "holds more than one line"},
		{"lone CR", pw + "\r", 0o600, "", "holds more than one line"},
		{"empty", "", 0o600, "", "is empty"},
		{"only newline", "\n", 0o600, "", "is empty"},
		{"world readable", pw, 0o604, "", "accessible to other users (mode 0604)"},
		{"other executable", pw, 0o601, "", "accessible to other users"},
		{"invalid UTF-8", "\xff\xfe" + pw, 0o600, "", "is not UTF-8 text"},
		{"too large", strings.Repeat("a", maxPasswordFileSize+1), 0o600, "", "larger than 4096 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := writeFile(t, t.TempDir(), "secret", tt.content, tt.mode)
			got, err := ReadSecret(p)
			if tt.want != "" {
				if err != nil || got != tt.want {
					t.Fatalf("got %q, %v; want %q", got, err, tt.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.errWant) {
				t.Fatalf("got %q, %v; want error with %q", got, err, tt.errWant)
			}
			if !strings.Contains(err.Error(), p) {
				t.Errorf("error does not name the file: %v", err)
			}
			if strings.Contains(err.Error(), pw) || strings.Contains(err.Error(), "second") {
				t.Errorf("error echoes the secret: %v", err)
			}
		})
	}
	if _, err := ReadSecret(""); err == nil {
		t.Error("empty path: want error")
	}
	if _, err := ReadSecret(filepath.Join(t.TempDir(), "missing")); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	if _, err := ReadSecret(t.TempDir()); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("directory: %v", err)
	}
	if _, err := ReadSecretBytes(writeFile(t, t.TempDir(), "empty.pfx", "", 0o600)); err == nil || !strings.Contains(err.Error(), "is empty") {
		t.Errorf("empty PFX: %v", err)
	}
}

func TestResolveProfilesErrors(t *testing.T) {
	dir := loadDir(t)
	f, err := Load(filepath.Join(dir, "site.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "acm.amt", "weakpassword\n", 0o600)
	_, err = f.ResolveProfiles()
	if err == nil || !strings.Contains(err.Error(), "profiles[0].amtPasswordFile: password has no uppercase letter") {
		t.Fatalf("got %v", err)
	}
	if strings.Contains(err.Error(), "weakpassword") {
		t.Errorf("error echoes the password: %v", err)
	}
	os.Chmod(filepath.Join(dir, "acm.amt"), 0o644)
	if _, err := f.ResolveProfiles(); err == nil || !strings.Contains(err.Error(), "profiles[0].amtPasswordFile: secret file") {
		t.Errorf("world-readable: %v", err)
	}
}

func TestDomainReadPasswordTooLong(t *testing.T) {
	dir := t.TempDir()
	long := strings.Repeat("p", 65)
	d := Domain{Name: "d", PasswordFile: writeFile(t, dir, "p", long, 0o600)}
	_, err := d.ReadPassword()
	if err == nil || !strings.Contains(err.Error(), "should not exceed 64 characters") || strings.Contains(err.Error(), long) {
		t.Errorf("got %v", err)
	}
	d.PasswordFile = writeFile(t, dir, "q", strings.Repeat("p", 64), 0o600)
	if _, err := d.ReadPassword(); err != nil {
		t.Errorf("64 characters: %v", err)
	}
}

// TestFileFormatting: a *File holds no secret, so printing it is safe; and
// the embedded profile's String keeps %v short.
func TestFileFormatting(t *testing.T) {
	f, err := Parse([]byte(exampleSite), "/b")
	if err != nil {
		t.Fatal(err)
	}
	if s := f.Profiles[0].String(); s != `profile "ccm" (ccmactivate)` {
		t.Errorf("String = %q", s)
	}
}
