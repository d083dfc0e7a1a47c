package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/amtedge/amtedge/appliance/amtsim"
)

// startControlBox starts a box on the test site (static passwords the test knows) with extra config YAML.
func startControlBox(t *testing.T, extra string) (*box, *testSite, *syncBuffer) {
	t.Helper()
	return startSiteBox(t, extra, func(w io.Writer) slog.Handler { return slog.NewTextHandler(w, nil) })
}

// startSiteBox starts a box on the test site with extra config YAML, logging through the given handler into the
// returned buffer; it is shut down when the test ends.
func startSiteBox(t *testing.T, extra string, handler func(io.Writer) slog.Handler) (*box, *testSite, *syncBuffer) {
	t.Helper()
	t.Setenv("RUNTIME_DIRECTORY", "")
	s := newTestSite(t)
	cfg, err := loadConfig(s.config(t, "127.0.0.1:0", extra))
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	b, err := startBox(context.Background(), cfg, slog.New(handler(logs)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.shutdown(5 * time.Second); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return b, s, logs
}

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestControlSocketCLI(t *testing.T) {
	b, s, _ := startControlBox(t, "")
	sock := filepath.Join(s.dir, "state", controlSocketName)
	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o660 {
		t.Errorf("control socket mode %v, want a socket with 0660", fi.Mode())
	}

	url := "wss://" + b.listener.Addr().String() + "/activate"
	if sum := s.activate(t, url, "acm", "ctl", 2, 0); sum.Failed != 0 || sum.Activated != 2 {
		t.Fatalf("activations: %+v", sum)
	}
	uuid := amtsim.DeviceUUID("ctl", 0)
	cfgPath := filepath.Join(s.dir, "amtedge.yaml")

	// devices show, with the socket given and found from --config.
	for _, args := range [][]string{{"devices", "show", uuid, "--socket", sock}, {"devices", "show", "--config", cfgPath, uuid}} {
		code, out, errOut := runCLI(t, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errOut)
		}
		for _, want := range []string{"device " + uuid + ": 1 records", "activate succeeded", "profile", "acm", "domain", "demo",
			"hostname", "pc-0", "mode", "none → ACM", "STEP", "RESULT", "DURATION", "DETAIL", " ok "} {
			if !strings.Contains(out, want) {
				t.Errorf("%v: output lacks %q:\n%s", args, want, out)
			}
		}
		if n := strings.Count(out, "\n  "); n < 5 {
			t.Errorf("%v: step timeline has %d lines:\n%s", args, n, out)
		}
	}

	for _, tc := range []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"status"}, 0, []string{"amtedge", "ok, up", "seal", "software, ok", "Vault", "not configured", "outbox",
			"domain demo", "demo.amtedge.test, certificate expires", "days left", "sessions", "0 live"}},
		{[]string{"devices", "list"}, 0, []string{"UUID", "HOSTNAME", uuid, amtsim.DeviceUUID("ctl", 1), "succeeded", "ACM", "2 of 2 devices"}},
		{[]string{"devices", "list", "--search", "PC-1"}, 0, []string{amtsim.DeviceUUID("ctl", 1), "1 of 1 devices"}},
		{[]string{"devices", "--search", "no-such-thing"}, 0, []string{"0 of 0 devices"}},
		{[]string{"profiles", "list"}, 0, []string{"NAME", "acm", "acmactivate", "ccm", "ccmactivate", "static"}},
		{[]string{"domains", "list"}, 0, []string{"DNS SUFFIX", "demo", "demo.amtedge.test"}},
		{[]string{"devices", "show", "nope"}, 1, []string{"Device nope Not Found"}},
		{[]string{"devices", "show"}, 2, []string{"usage: amtedge devices show UUID"}},
		{[]string{"devices", "list", "--top", "-3"}, 1, []string{"$top: The number of items to return should be a positive integer"}},
		{[]string{"devices", "frob"}, 2, []string{`unknown devices command "frob"`}},
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
	}

	// --json prints the API's JSON; no command's output carries a password of the site.
	for _, args := range [][]string{{"status"}, {"devices", "list"}, {"devices", "show", uuid}, {"profiles"}, {"domains"}} {
		code, out, errOut := runCLI(t, append(args, "--json", "--socket", sock)...)
		if code != 0 || !strings.HasPrefix(out, "{") && !strings.HasPrefix(out, "[") {
			t.Errorf("%v --json: exit %d: %s%s", args, code, out, errOut)
		}
		for _, secret := range []string{testAMTPassword, testMEBxPassword, s.pfxPassword} {
			if strings.Contains(out, secret) {
				t.Errorf("%v --json: a password is in the output", args)
			}
		}
	}

	// No box: the CLI says what to check.
	code, _, errOut := runCLI(t, "status", "--socket", filepath.Join(t.TempDir(), "none.sock"))
	if code != 1 || !strings.Contains(errOut, "is the service running? systemctl status amtedge") {
		t.Errorf("missing socket: exit %d: %s", code, errOut)
	}
}

func TestControlSocketRemovedAtShutdown(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "ctl.sock")
	t.Setenv("RUNTIME_DIRECTORY", "")
	config := func(state string) *Config {
		cfg, err := parseConfig([]byte("stateDir: "+state+"\ndemo: {enabled: true}\nagent: {listen: '127.0.0.1:0'}\nadmin: {listen: '127.0.0.1:0'}\n"+
			"custody: {seal: software, standalone: true}\ncontrol: {socket: "+sock+"}\n"), dir)
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	// A socket file left by a box that died is replaced.
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	b, err := startBox(context.Background(), config(filepath.Join(dir, "a")), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runCLI(t, "status", "--socket", sock); code != 0 {
		t.Errorf("status: %d %s%s", code, out, errOut)
	}
	// A second box on the same socket is refused while the first one serves.
	if _, err := startBox(context.Background(), config(filepath.Join(dir, "b")), slog.New(slog.NewTextHandler(io.Discard, nil))); err == nil ||
		!strings.Contains(err.Error(), "another amtedge is serving on "+sock) {
		t.Errorf("second box: %v", err)
	}
	if err := b.shutdown(time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Errorf("control socket still there after shutdown: %v", err)
	}
	code, _, errOut := runCLI(t, "status", "--socket", sock)
	if code != 1 || !strings.Contains(errOut, "is the service running?") {
		t.Errorf("after shutdown: %d %s", code, errOut)
	}
	if code, _, errOut := runCLI(t, "status", "--config", filepath.Join(dir, "nope.yaml")); code != 1 || !strings.Contains(errOut, "read config") {
		t.Errorf("bad --config: %d %s", code, errOut)
	}
}

func TestControlConfig(t *testing.T) {
	for _, tc := range []struct {
		yaml, want string
	}{
		{"control: {socket: /run/x/" + strings.Repeat("a", 120) + "}", "control.socket: "},
		{"control: {socket: /run/x/}", "control.socket: "},
		{"control: {sockt: x}", "field sockt not found"},
	} {
		_, err := parseConfig([]byte("demo: {enabled: true}\n"+tc.yaml+"\n"), "/tmp")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want %q", tc.yaml, err, tc.want)
		}
	}
	cfg, err := parseConfig([]byte("stateDir: /var/lib/amtedge\ndemo: {enabled: true}\n"), "/etc/amtedge")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("RUNTIME_DIRECTORY", "/run/amtedge")
	if got := controlSocketPath(cfg); got != "/run/amtedge/control.sock" {
		t.Errorf("with RUNTIME_DIRECTORY: %s", got)
	}
	t.Setenv("RUNTIME_DIRECTORY", "")
	if got := controlSocketPath(cfg); got != "/var/lib/amtedge/control.sock" {
		t.Errorf("without RUNTIME_DIRECTORY: %s", got)
	}
	cfg.Control.Socket = "ctl/amtedge.sock"
	if got := controlSocketPath(cfg); got != "/etc/amtedge/ctl/amtedge.sock" {
		t.Errorf("control.socket: %s", got)
	}
}

// A process whose user is neither root, nor the service's, nor in group amtedge is refused: first by the socket
// file's mode, and — when the mode was opened by mistake — by the peer-credential check, with a 403 and an event.
func TestControlSocketPeerCheck(t *testing.T) {
	needRoot(t, "to run a child under another uid")
	setpriv := needTool(t, "setpriv", "util-linux")
	// A directory the unprivileged child can traverse, holding the socket and a copy of this test binary.
	pub, err := os.MkdirTemp("", "amtedge-ctl-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(pub) })
	if err := os.Chmod(pub, 0o755); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(pub, "amtedge.test")
	if err := os.WriteFile(bin, exe, 0o755); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(pub, "control.sock")
	_, _, logs := startControlBox(t, "control: {socket: "+sock+"}\n")

	child := func() (string, error) {
		cmd := exec.Command(setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", bin, "status", "--socket", sock)
		cmd.Env = []string{testMainEnv + "=1", "PATH=/usr/bin:/bin"}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := child()
	if err == nil || !strings.Contains(out, "permission denied on "+sock+": run as root or a member of group amtedge") {
		t.Errorf("child through a 0660 socket: %v\n%s", err, out)
	}
	// The mode opened by mistake: the peer check still refuses.
	if err := os.Chmod(sock, 0o666); err != nil {
		t.Fatal(err)
	}
	out, err = child()
	if err == nil || !strings.Contains(out, "uid 65534 may not use the amtedge control socket: run as root or a member of group amtedge") {
		t.Errorf("child through a 0666 socket: %v\n%s", err, out)
	}
	if l := logs.String(); !strings.Contains(l, "event=control_refused") || !strings.Contains(l, "peer_uid=65534") {
		t.Errorf("no control_refused log line:\n%s", l)
	}
	// Root, in process, is served.
	if code, out, errOut := runCLI(t, "status", "--socket", sock); code != 0 || !strings.Contains(out, "software, ok") {
		t.Errorf("root: exit %d %s%s", code, out, errOut)
	}
}
