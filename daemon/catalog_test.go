package main

import (
	"encoding/base64"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/amtedge/amtedge/appliance/domains"
)

// The catalog through the control socket: the CLI's writes, the flows using an API profile, events with the
// peer as actor, the site's precedence on reload, and persistence across a restart.
func TestCatalogCLI(t *testing.T) {
	b, s, logs := startControlBox(t, "")
	sock := filepath.Join(s.dir, "state", controlSocketName)
	actor := "actor=cli:" + strconv.Itoa(os.Getuid())

	write := func(name, content string) string {
		p := filepath.Join(s.dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("api.json", `{"profileName":"apiccm","activation":"ccmactivate","amtPassword":"`+testAMTPassword+`","dhcpEnabled":true}`)
	bad := write("bad.json", `{"profileName":"bad one","activation":"nope","dhcpEnabled":true,"amtPassword":"`+testAMTPassword+`"}`)

	pfx, _, err := domains.GenerateProvisioningPFX(domains.GenerateOptions{Suffix: "lab.example.org", Password: "Lab-Pfx-Pass-42", ChainLen: 1})
	if err != nil {
		t.Fatal(err)
	}
	pfxFile := filepath.Join(s.dir, "lab.pfx")
	if err := os.WriteFile(pfxFile, pfx, 0o600); err != nil {
		t.Fatal(err)
	}
	pwFile := write("lab.pass", "Lab-Pfx-Pass-42\n")

	for _, tc := range []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"profiles", "create", "--file", good}, 0, []string{"profile apiccm created (ccmactivate, version 1)"}},
		{[]string{"profiles", "create", "--file", good}, 1, []string{"AMT profile apiccm already exists"}},
		{[]string{"profiles", "create", "--file", bad}, 1, []string{"2 problems", "\n  profileName: AMT profile name accepts", "\n  activation: Activation accepts"}},
		{[]string{"profiles", "create"}, 2, []string{"--file is required"}},
		{[]string{"profiles", "list"}, 0, []string{"apiccm", "acm", "ccm"}},
		{[]string{"profiles", "delete", "acm"}, 1, []string{"AMT profile acm is defined in the site file; change it there and reload"}},
		{[]string{"domains", "inspect", "--pfx", pfxFile, "--suffix", "other.example.net", "--password-file", pwFile}, 0,
			[]string{"Leaf CN:", "provision.lab.example.org", "NOT covered", "Import:", "refused", "does not cover"}},
		{[]string{"domains", "inspect", "--pfx", pfxFile, "--password-file", pwFile}, 0, []string{"would be accepted", "Root SHA-256:"}},
		{[]string{"domains", "import", "--pfx", pfxFile, "--suffix", "lab.example.org", "--password-file", s.dir + "/amt.pass"}, 1,
			[]string{"provisioningCertPassword: decode PFX: the PFX password is wrong"}},
		{[]string{"domains", "import", "--pfx", pfxFile, "--suffix", "lab.example.org", "--password-file", pwFile}, 0,
			[]string{"domain lab-example-org imported: DNS suffix lab.example.org, certificate expires"}},
		{[]string{"domains", "list"}, 0, []string{"lab-example-org", "lab.example.org", "demo"}},
		{[]string{"domains", "import", "--pfx", pfxFile}, 2, []string{"--suffix is required"}},
		{[]string{"domains", "delete"}, 2, []string{"usage: amtedge domains delete NAME"}},
	} {
		code, out, errOut := runCLI(t, append(tc.args, "--socket", sock)...)
		if code != tc.code {
			t.Errorf("%v: exit %d, want %d: %s%s", tc.args, code, tc.code, out, errOut)
		}
		for _, want := range tc.want {
			if !strings.Contains(out+errOut, want) {
				t.Errorf("%v: output lacks %q:\n%s%s", tc.args, want, out, errOut)
			}
		}
		for _, secret := range []string{testAMTPassword, "Lab-Pfx-Pass-42", base64.StdEncoding.EncodeToString(pfx)[:60]} {
			if strings.Contains(out+errOut, secret) {
				t.Errorf("%v: a secret is in the output", tc.args)
			}
		}
	}
	if !strings.Contains(logs.String(), "event=catalog_changed action=create kind=profile name=apiccm "+actor) ||
		!strings.Contains(logs.String(), "event=catalog_changed action=create kind=domain name=lab-example-org "+actor) {
		t.Errorf("no catalog_changed events naming the CLI's peer:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), testAMTPassword) || strings.Contains(logs.String(), "Lab-Pfx-Pass-42") {
		t.Error("a secret is in the logs")
	}

	// The flows use the API profile, its password read from the sealed store.
	url := "wss://" + b.listener.Addr().String() + "/activate"
	if sum := s.activate(t, url, "apiccm", "api", 1, 0); sum.Failed != 0 || sum.Activated != 1 {
		t.Fatalf("activation with the API profile: %+v", sum)
	}
	if _, ok := b.catalog.Expiry()["lab-example-org"]; !ok {
		t.Error("the imported domain's expiry is not watched")
	}

	// A site that takes an API entry's name is refused on reload, naming both; the box keeps its catalog.
	s.write(t, "  - profileName: apiccm\n    activation: ccmactivate\n    amtPasswordFile: amt.pass\n    dhcpEnabled: true\n")
	cfgPath := filepath.Join(s.dir, "amtedge.yaml")
	err = b.applyReload(cfgPath)
	if err == nil || !strings.Contains(err.Error(), "site profile apiccm has the name of profile apiccm created through the admin API") {
		t.Fatalf("conflicting reload: %v", err)
	}
	if p, err := b.catalog.ProfileByName("apiccm"); err != nil || p.Source != "api" {
		t.Fatalf("after the refused reload: %+v %v", p, err)
	}
	s.write(t, "")
	if err := b.applyReload(cfgPath); err != nil {
		t.Fatal(err)
	}

	if code, out, errOut := runCLI(t, "domains", "delete", "lab-example-org", "--socket", sock); code != 0 || !strings.Contains(out, "domain lab-example-org deleted") {
		t.Fatalf("domains delete: %d %s%s", code, out, errOut)
	}
	if code, _, errOut := runCLI(t, "domains", "delete", "lab-example-org", "--socket", sock); code != 1 || !strings.Contains(errOut, "Domain profile lab-example-org Not Found") {
		t.Fatalf("second delete: %d %s", code, errOut)
	}
}

// API entries survive a restart; a site that takes an API name refuses the start, naming both.
func TestCatalogPersistsAcrossRestart(t *testing.T) {
	t.Setenv("RUNTIME_DIRECTORY", "")
	s := newTestSite(t)
	cfg, err := loadConfig(s.config(t, "127.0.0.1:0", ""))
	if err != nil {
		t.Fatal(err)
	}
	b, err := startBox(t.Context(), cfg, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	body := `{"profileName":"kept","activation":"ccmactivate","amtPassword":"` + testAMTPassword + `","dhcpEnabled":true}`
	if _, err := b.catalog.CreateProfile(t.Context(), []byte(body), "test"); err != nil {
		t.Fatal(err)
	}
	if err := b.shutdown(5 * time.Second); err != nil {
		t.Fatal(err)
	}

	b, err = startBox(t.Context(), cfg, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	if p, err := b.catalog.ProfileByName("kept"); err != nil || p.Source != "api" || p.Version != "1" {
		t.Fatalf("after restart: %+v %v", p, err)
	}
	if err := b.shutdown(5 * time.Second); err != nil {
		t.Fatal(err)
	}

	s.write(t, "  - profileName: kept\n    activation: ccmactivate\n    amtPasswordFile: amt.pass\n    dhcpEnabled: true\n")
	if b, err := startBox(t.Context(), cfg, discardLogger()); err == nil {
		b.shutdown(time.Second)
		t.Fatal("a site taking an API name started")
	} else if !strings.Contains(err.Error(), "site profile kept has the name of profile kept created through the admin API") {
		t.Fatalf("start: %v", err)
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
