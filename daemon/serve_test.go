package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// needTool finds a program the test needs; `make test` installs it (scripts/test-packages.txt), so its absence
// fails the test instead of skipping it.
func needTool(t *testing.T, name, debianPackage string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is not installed (Debian package %s; make test installs it)", name, debianPackage)
	}
	return path
}

// needRoot fails a test that needs root (make test runs as root: it installs packages and makes namespaces).
func needRoot(t *testing.T, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatalf("this test needs root (%s); run `make test` as root or with sudo", why)
	}
}

// writeTestConfig writes a configuration file at path and loads it.
func writeTestConfig(t *testing.T, path, yaml string) *Config {
	t.Helper()
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// startTestBox runs the appliance as `serve` wires it, on a demo state in a temp dir and a free port.
func startTestBox(t *testing.T) (*box, string) {
	t.Helper()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "amtedge.yaml")
	cfgYAML := "stateDir: state\ndemo: {enabled: true}\nagent: {listen: '127.0.0.1:0'}\nadmin: {listen: '127.0.0.1:0'}\ncustody: {seal: software, standalone: true}\n"
	cfg := writeTestConfig(t, cfgPath, cfgYAML)
	b, err := startBox(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.shutdown(5 * time.Second); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return b, filepath.Join(dir, "state")
}

func TestServeAndSimulate(t *testing.T) {
	b, state := startTestBox(t)
	var banner bytes.Buffer
	b.printBanner(&banner, "")
	url := "wss://" + b.listener.Addr().String() + "/activate"
	for _, want := range []string{"serving agents at wss://", "--profile acm -n", "--profile ccm -n", "domain demo: DNS suffix demo.amtedge.test"} {
		if !strings.Contains(banner.String(), want) {
			t.Errorf("banner lacks %q:\n%s", want, banner.String())
		}
	}
	common := []string{"--url", url, "--ca-file", filepath.Join(state, "tls", "cert.pem"), "--devices", "4", "--concurrency", "2"}
	var out, errOut bytes.Buffer
	if code := run(append([]string{"simulate", "--profile", "ccm", "--seed", "t-ccm"}, common...), &out, &errOut); code != 0 {
		t.Fatalf("ccm simulate exit %d: %s %s", code, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "succeeded: 4  failed: 0") {
		t.Fatalf("ccm table:\n%s", out.String())
	}
	out.Reset()
	args := append([]string{"simulate", "--profile", "acm", "--seed", "t-acm", "--trusted-root", "@" + filepath.Join(state, "demo", "root.sha256")}, common...)
	if code := run(args, &out, &errOut); code != 0 {
		t.Fatalf("acm simulate exit %d: %s %s", code, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "Activated to admin control mode.") {
		t.Fatalf("acm table:\n%s", out.String())
	}
	// Devices that do not trust the demo root fail, and simulate says so in its exit status.
	out.Reset()
	if code := run(append([]string{"simulate", "--profile", "acm", "--seed", "t-untrusted"}, common...), &out, &errOut); code != 1 {
		t.Fatalf("untrusted devices: exit %d\n%s", code, out.String())
	}
	if n := len(b.inventory.Latest()); n != 12 {
		t.Errorf("inventory holds %d devices, want 12", n)
	}
}

func TestRestartKeepsState(t *testing.T) {
	dir := t.TempDir()
	cfg, err := parseConfig([]byte("stateDir: "+dir+"\ndemo: {enabled: true}\nagent: {listen: '127.0.0.1:0'}\nadmin: {listen: '127.0.0.1:0'}\ncustody: {seal: software, standalone: true}\n"), dir)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	b, err := startBox(context.Background(), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	pfx, _ := os.ReadFile(filepath.Join(dir, "demo", "demo-provisioning.pfx"))
	if err := b.shutdown(time.Second); err != nil {
		t.Fatal(err)
	}
	b, err = startBox(context.Background(), cfg, log)
	if err != nil {
		t.Fatalf("second start: %v", err)
	}
	defer b.shutdown(time.Second)
	again, _ := os.ReadFile(filepath.Join(dir, "demo", "demo-provisioning.pfx"))
	if !bytes.Equal(pfx, again) {
		t.Error("the demo domain was regenerated on restart")
	}
}

func TestRandomPasswordsNeedStandaloneConsent(t *testing.T) {
	dir := t.TempDir()
	cfg, err := parseConfig([]byte("stateDir: "+dir+"\ndemo: {enabled: true}\nagent: {listen: '127.0.0.1:0'}\nadmin: {listen: '127.0.0.1:0'}\ncustody: {seal: software}\n"), dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = startBox(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil || !strings.Contains(err.Error(), "profiles[0] (ccm): generates random passwords, but no central Vault is configured") {
		t.Fatalf("err = %v", err)
	}
}

func TestCommandLine(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"version"}, 0, "amtedge dev"},
		{[]string{}, 2, "Usage:"},
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{[]string{"simulate"}, 2, "--url is required"},
		{[]string{"simulate", "--url", "wss://x/activate"}, 2, "--profile is required"},
		{[]string{"simulate", "--url", "wss://x/activate", "--profile", "p", "--trusted-root", "xyz"}, 2, `"xyz" is not a SHA-1, SHA-256 or SHA-384 hex hash`},
		{[]string{"config", "check"}, 0, "configuration is valid"},
		{[]string{"config", "check", "--config", "/nonexistent.yaml"}, 1, "read config"},
		{[]string{"serve", "extra"}, 2, `unexpected argument "extra"`},
	} {
		var out bytes.Buffer
		code := run(tc.args, &out, &out)
		if code != tc.code || !strings.Contains(out.String(), tc.out) {
			t.Errorf("%v: exit %d, output %q; want %d and %q", tc.args, code, out.String(), tc.code, tc.out)
		}
	}
}
