package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/amtedge/amtedge/appliance/dhcpprobe/dhcptest"
	"github.com/amtedge/amtedge/appliance/domains"
	"github.com/amtedge/amtedge/secrets/vault"
	"github.com/amtedge/amtedge/secrets/vault/vaulttest"
)

// doctorRun runs `amtedge doctor --json` with args and decodes its checks.
func doctorRun(t *testing.T, args ...string) (int, map[string]doctorCheck, string) {
	t.Helper()
	code, out, errOut := runCLI(t, append([]string{"doctor", "--json"}, args...)...)
	var list []doctorCheck
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("doctor --json printed no JSON array (%v): %s\nstderr: %s", err, out, errOut)
	}
	checks := map[string]doctorCheck{}
	for _, c := range list {
		if _, dup := checks[c.Name]; dup {
			t.Errorf("check %s reported twice", c.Name)
		}
		checks[c.Name] = c
	}
	return code, checks, out + errOut
}

// expect asserts a check's status and that its summary (plus detail and hint) holds every want.
func expect(t *testing.T, checks map[string]doctorCheck, name, status string, want ...string) {
	t.Helper()
	c, ok := checks[name]
	if !ok {
		t.Errorf("no check %s", name)
		return
	}
	text := c.Summary + " | " + c.Detail + " | " + c.Hint
	if c.Status != status {
		t.Errorf("%s: %s, want %s: %s", name, c.Status, status, text)
	}
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("%s: %q does not say %q", name, text, w)
		}
	}
	if (c.Status == statusWarn || c.Status == statusFail) && c.Hint == "" {
		t.Errorf("%s: %s without a hint saying what to do", name, c.Status)
	}
}

// TestDoctorEndToEnd runs the doctor against a real box: its TPM a swtpm, a real Vault dev server, the site's
// DHCP server a dnsmasq on an isolated segment; then breaks one thing at a time.
func TestDoctorEndToEnd(t *testing.T) {
	t.Setenv("RUNTIME_DIRECTORY", "")
	s := newTestSite(t)

	tpmDir, err := os.MkdirTemp("", "doctor-tpm") // short: a unix socket path holds 107 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(tpmDir) })
	tpmSock := filepath.Join(tpmDir, "sock")
	stopTPM := runSWTPM(t, tpmSock, tpmDir)
	t.Cleanup(stopTPM)

	v := vaulttest.Start(t, 0)
	auth := vault.AuthConfig{Method: "approle", RoleIDFile: filepath.Join(s.dir, "role-id"), SecretIDFile: filepath.Join(s.dir, "secret-id")}
	const prefix = "sites/doctor"
	v.SetupSite(t, prefix, auth)
	secretID, err := os.ReadFile(auth.SecretIDFile)
	if err != nil {
		t.Fatal(err)
	}

	seg := dhcptest.NewSegment(t)
	dns := seg.StartDNSMasq(t, "demo.amtedge.test")

	agentPort, adminPort := vaulttest.FreePort(t), vaulttest.FreePort(t)
	cfgPath := filepath.Join(s.dir, "amtedge.yaml")
	cfgYAML := fmt.Sprintf("stateDir: state\nsite: site.yaml\nagent: {listen: ':%d'}\nadmin: {listen: '127.0.0.1:%d'}\n"+
		"custody: {seal: tpm, tpm: {device: %s}}\n"+
		"vault: {address: '%s', prefix: %s, callTimeout: 2s, auth: {method: approle, roleIdFile: role-id, secretIdFile: secret-id}}\n",
		agentPort, adminPort, tpmSock, v.Addr, prefix)
	cfg := writeTestConfig(t, cfgPath, cfgYAML)
	b, err := startBox(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.shutdown(5 * time.Second) })

	// The box's first pull may race its first login; a sync now makes its view of Vault current.
	sock := filepath.Join(s.dir, "state", controlSocketName)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if word, _, _ := b.vaultState(); word == "reachable" {
			break
		}
		if time.Now().After(deadline) {
			_, _, detail := b.vaultState()
			t.Fatalf("the box does not reach Vault: %s", detail)
		}
		_, _, _ = runCLI(t, "sync", "now", "--socket", sock)
	}

	args := []string{"--config", cfgPath, "--interface", seg.ClientIface, "--netns", seg.ClientNS, "--dhcp-timeout", "2s"}
	secrets := []string{testAMTPassword, testMEBxPassword, s.pfxPassword, v.Token, strings.TrimSpace(string(secretID))}
	var outputs []string

	// 1. Everything works.
	code, checks, out := doctorRun(t, args...)
	outputs = append(outputs, out)
	for _, name := range []string{"config", "tpm", "seal", "vault", "clock", "certificate/demo", "certificate/agent-tls",
		"listener/agent", "listener/admin", "listener/control", "dhcp"} {
		expect(t, checks, name, statusOK)
	}
	if code != 0 || len(checks) != 11 {
		t.Fatalf("healthy box: exit %d, %d checks:\n%s", code, len(checks), out)
	}
	expect(t, checks, "tpm", statusOK, "TPM 2.0 at "+tpmSock, "storage root key present at 0x81000001")
	expect(t, checks, "seal", statusOK, "unseals", "the daemon's store is open")
	expect(t, checks, "vault", statusOK, v.Addr, "approle", "amtedge-site", "0 writes waiting")
	expect(t, checks, "listener/agent", statusOK, fmt.Sprintf("127.0.0.1:%d", agentPort)) // it listens on every address
	expect(t, checks, "dhcp", statusOK, "segment suffix demo.amtedge.test matches domain demo", seg.ServerIP.String())

	// The text form: one line per check, exit 0.
	tcode, text, terr := runCLI(t, append([]string{"doctor"}, args...)...)
	outputs = append(outputs, text+terr)
	if lines := strings.Split(strings.TrimSpace(text), "\n"); tcode != 0 || len(lines) != 11 || !strings.HasPrefix(lines[0], "ok    config") {
		t.Errorf("text report: exit %d, %d lines:\n%s%s", tcode, len(lines), text, terr)
	}

	// 2. A domain whose certificate expires in 20 days: a warning, not a failure.
	soonPass := "Soon-" + vaulttest.RandomHex(t, 8)
	pfx, _, err := domains.GenerateProvisioningPFX(domains.GenerateOptions{Suffix: "soon.example", Password: soonPass,
		NotAfter: time.Now().Add(20*24*time.Hour + time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	secrets = append(secrets, soonPass)
	for name, data := range map[string][]byte{"soon.pfx": pfx, "soon.pass": []byte(soonPass + "\n")} {
		if err := os.WriteFile(filepath.Join(s.dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	siteYAML, err := os.ReadFile(s.sitePath)
	if err != nil {
		t.Fatal(err)
	}
	withSoon := strings.Replace(string(siteYAML), "profiles:\n", "  - name: soon\n    suffix: soon.example\n    pfxFile: soon.pfx\n    passwordFile: soon.pass\nprofiles:\n", 1)
	if err := os.WriteFile(s.sitePath, []byte(withSoon), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := b.applyReload(cfgPath); err != nil {
		t.Fatalf("reload with the short-lived domain: %v", err)
	}
	code, checks, out = doctorRun(t, args...)
	outputs = append(outputs, out)
	expect(t, checks, "certificate/soon", statusWarn, "soon.example", "in 20 days", "soon: renew")
	expect(t, checks, "certificate/demo", statusOK)
	if code != 0 {
		t.Errorf("warnings alone must exit 0, got %d:\n%s", code, out)
	}

	// 3. The segment's suffix is one no domain covers.
	dns.Stop()
	seg.StartDNSMasq(t, "other.example")
	code, checks, out = doctorRun(t, args...)
	outputs = append(outputs, out)
	expect(t, checks, "dhcp", statusWarn, "the segment's suffix other.example is covered by no domain",
		"ACM activations here will fail unless the MEBx PKI suffix is set", "demo.amtedge.test, soon.example")
	if code != 0 {
		t.Errorf("warnings alone must exit 0, got %d:\n%s", code, out)
	}

	// 4. Vault is gone.
	v.Kill()
	code, checks, out = doctorRun(t, args...)
	outputs = append(outputs, out)
	expect(t, checks, "vault", statusFail, "Vault at "+v.Addr+" is unreachable", "vault.address", "sealed cache")
	expect(t, checks, "clock", statusSkip, "Vault is unreachable")
	if code != 1 {
		t.Errorf("a failed check must exit 1, got %d:\n%s", code, out)
	}

	// 5. The TPM is gone (its socket no longer served): the daemon still holds its key, the next start would not.
	stopTPM()
	code, checks, out = doctorRun(t, args...)
	outputs = append(outputs, out)
	expect(t, checks, "tpm", statusFail, "no usable TPM 2.0 at "+tpmSock, "start the swtpm")
	expect(t, checks, "seal", statusFail, "the daemon unsealed its key at start", "next restart starts degraded", "fix the TPM first")
	if code != 1 {
		t.Errorf("a failed check must exit 1, got %d:\n%s", code, out)
	}

	for i, o := range outputs {
		t.Logf("doctor output %d:\n%s", i+1, o)
		assertNoSecrets(t, fmt.Sprintf("doctor output %d", i+1), o, secrets...)
	}
}

// TestDoctorConfigErrors: a configuration that does not load fails its check, and every other check says it was
// not run; bad flags are usage errors.
func TestDoctorConfigErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "amtedge.yaml")
	if err := os.WriteFile(bad, []byte("stateDir: state\nsite: site.yaml\ncustody: {seal: paper}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, checks, out := doctorRun(t, "--config", bad)
	if code != 1 || len(checks) != 8 {
		t.Fatalf("exit %d, %d checks: %s", code, len(checks), out)
	}
	expect(t, checks, "config", statusFail, "custody.seal", "amtedge config check")
	expect(t, checks, "dhcp", statusSkip, "the configuration did not load")

	for _, args := range [][]string{{"--dhcp-server", "not-an-ip"}, {"--dhcp-server", "::1"}, {"--dhcp-timeout", "0s"}, {"extra"}} {
		if code, _, errOut := runCLI(t, append([]string{"doctor"}, args...)...); code != 2 || errOut == "" {
			t.Errorf("doctor %v: exit %d (%s), want 2 with a message", args, code, errOut)
		}
	}
}

func TestCertStatus(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		left   time.Duration
		status string
		days   int
	}{
		{400 * 24 * time.Hour, statusOK, 400},
		{61 * 24 * time.Hour, statusOK, 61},
		{60*24*time.Hour + time.Hour, statusWarn, 60},
		{20 * 24 * time.Hour, statusWarn, 20},
		{3 * 24 * time.Hour, statusWarn, 3},
		{time.Hour, statusWarn, 0},
		{0, statusFail, 0},
		{-48 * time.Hour, statusFail, -2},
	} {
		if st, days := certStatus(now.Add(tc.left), now); st != tc.status || days != tc.days {
			t.Errorf("%s left: %s %d days, want %s %d", tc.left, st, days, tc.status, tc.days)
		}
	}
}
