package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/amtedge/amtedge/appliance/amtsim"
)

// The tests below run the box as its own process — this test binary re-executed with AMTEDGE_TEST_MAIN=1 runs
// main's `run` on its arguments — so signals, NOTIFY_SOCKET, socket activation and the journal are the real ones.
const testMainEnv = "AMTEDGE_TEST_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(testMainEnv) == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	// Each test box puts its control socket in its own state directory, not in a runtime directory the
	// environment may name (systemd sets RUNTIME_DIRECTORY for services).
	os.Unsetenv("RUNTIME_DIRECTORY")
	os.Exit(m.Run())
}

// Passwords of the test site: no log line may carry them.
const (
	testAMTPassword  = "Kq7#mZ2!vXp9wR"
	testMEBxPassword = "Tr4$eWq8&Lm1zY"
)

// testSite is a site for child-process boxes: the demo provisioning chain (generated once per test) and profiles
// with static passwords the tests know, so they can look for them in the logs.
type testSite struct {
	dir, sitePath, pfxPassword, rootHash string
}

func newTestSite(t *testing.T) *testSite {
	t.Helper()
	dir := t.TempDir()
	if _, err := ensureDemoSite(filepath.Join(dir, "gen"), "demo.amtedge.test"); err != nil {
		t.Fatal(err)
	}
	demo := filepath.Join(dir, "gen", "demo")
	pass, err := os.ReadFile(filepath.Join(demo, "demo-provisioning.pass"))
	if err != nil {
		t.Fatal(err)
	}
	root, err := os.ReadFile(filepath.Join(demo, "root.sha256"))
	if err != nil {
		t.Fatal(err)
	}
	for name, pw := range map[string]string{"amt.pass": testAMTPassword, "mebx.pass": testMEBxPassword} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(pw+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s := &testSite{dir: dir, sitePath: filepath.Join(dir, "site.yaml"), pfxPassword: strings.TrimSpace(string(pass)),
		rootHash: strings.TrimSpace(string(root))}
	s.write(t, "")
	return s
}

// write (re)writes the site file with the ccm and acm profiles plus extra YAML profile entries.
func (s *testSite) write(t *testing.T, extraProfiles string) {
	t.Helper()
	demo := filepath.Join(s.dir, "gen", "demo")
	y := fmt.Sprintf(`domains:
  - name: demo
    suffix: demo.amtedge.test
    pfxFile: %s
    passwordFile: %s
profiles:
  - profileName: ccm
    activation: ccmactivate
    amtPasswordFile: amt.pass
    dhcpEnabled: true
  - profileName: acm
    activation: acmactivate
    amtPasswordFile: amt.pass
    mebxPasswordFile: mebx.pass
    dhcpEnabled: true
%s`, filepath.Join(demo, "demo-provisioning.pfx"), filepath.Join(demo, "demo-provisioning.pass"), extraProfiles)
	if err := os.WriteFile(s.sitePath, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
}

// config writes a box configuration next to the site file and returns its path.
func (s *testSite) config(t *testing.T, listen, extra string) string {
	t.Helper()
	path := filepath.Join(s.dir, "amtedge.yaml")
	y := "stateDir: state\nsite: site.yaml\nagent: {listen: '" + listen + "'}\ncustody: {seal: software}\n" + extra
	if !strings.Contains(extra, "admin:") {
		y += "admin: {listen: '127.0.0.1:0'}\n" // not the default :8443: test boxes run side by side
	}
	if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func (s *testSite) tlsConfig(t *testing.T) *tls.Config {
	t.Helper()
	pemData, err := os.ReadFile(filepath.Join(s.dir, "state", "tls", "cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemData)
	return &tls.Config{RootCAs: pool}
}

// activate runs n simulated devices through `activate --profile` against url.
func (s *testSite) activate(t *testing.T, url, profile, seed string, n int, latency time.Duration) amtsim.Summary {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	return amtsim.Simulate(ctx, amtsim.SimulateConfig{
		URL: url, TLS: s.tlsConfig(t), Profile: profile, Devices: n, Concurrency: n,
		Device: func(i int) amtsim.DeviceConfig {
			return amtsim.DeviceConfig{UUID: amtsim.DeviceUUID(seed, i), DHCPDNSSuffix: "demo.amtedge.test",
				TrustedRootHashes: []string{s.rootHash}, Hostname: fmt.Sprintf("pc-%d", i), Latency: latency}
		},
		Agent: func(int, *amtsim.Device) amtsim.AgentConfig {
			return amtsim.AgentConfig{Command: "activate", Profile: profile, Progress: true}
		},
	})
}

// syncBuffer is a bytes.Buffer safe for a process writing while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// boxProcess is a box running as a child process.
type boxProcess struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	url    string
	exited chan struct{}
	err    error // cmd.Wait's, once exited is closed
}

// cleanEnv is the test's environment without anything systemd may have set for the test runner itself.
func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		switch strings.SplitN(kv, "=", 2)[0] {
		case "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "JOURNAL_STREAM", testMainEnv:
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

// startBoxProcess runs argv (the test binary as `amtedge serve`, or a wrapper around it) and waits for the
// banner that names the agent URL.
func startBoxProcess(t *testing.T, argv []string, env []string) *boxProcess {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	p := &boxProcess{cmd: cmd, stderr: &syncBuffer{}, exited: make(chan struct{})}
	cmd.Stderr = p.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %v: %v", argv, err)
	}
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if _, after, ok := strings.Cut(sc.Text(), "is serving agents at "); ok {
				urls <- after
			}
		}
	}()
	go func() { p.err = cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = cmd.Process.Kill()
			<-p.exited
		}
	})
	select {
	case p.url = <-urls:
	case <-p.exited:
		t.Fatalf("the box exited before serving: %v\n%s", p.err, p.stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("no banner after 30s; stderr:\n%s", p.stderr.String())
	}
	return p
}

func (p *boxProcess) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v: %v", sig, err)
	}
}

func (p *boxProcess) wait(t *testing.T, timeout time.Duration) error {
	t.Helper()
	select {
	case <-p.exited:
		return p.err
	case <-time.After(timeout):
		t.Fatalf("the box did not exit within %s", timeout)
		return nil
	}
}

// notifySocket listens where NOTIFY_SOCKET will point and delivers every datagram.
func notifySocket(t *testing.T) (string, <-chan string) {
	t.Helper()
	// Unix socket paths are limited to 108 bytes; t.TempDir() under a long TMPDIR could exceed it.
	dir, err := os.MkdirTemp("", "sdn")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ch := make(chan string, 4096)
	go func() {
		buf := make([]byte, 65536)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				close(ch)
				return
			}
			ch <- string(buf[:n])
		}
	}()
	return path, ch
}

// datagrams records what the box told systemd and waits for particular states.
type datagrams struct {
	ch   <-chan string
	seen []string
}

// waitFor returns the first datagram from now on that has the line want (e.g. "READY=1", or a "STATUS=" prefix
// when want ends in '='), failing after timeout.
func (d *datagrams) waitFor(t *testing.T, want string, timeout time.Duration) string {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case m, ok := <-d.ch:
			if !ok {
				t.Fatalf("notify socket closed while waiting for %q; seen %q", want, d.seen)
			}
			d.seen = append(d.seen, m)
			for _, line := range strings.Split(m, "\n") {
				if line == want || strings.HasSuffix(want, "=") && strings.HasPrefix(line, want) ||
					strings.HasSuffix(want, "*") && strings.HasPrefix(line, strings.TrimSuffix(want, "*")) {
					return m
				}
			}
		case <-deadline:
			t.Fatalf("no %q within %s; seen %q", want, timeout, d.seen)
			return ""
		}
	}
}

// none checks no datagram with the line want arrives within d.
func (d *datagrams) none(t *testing.T, want string, within time.Duration) {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case m := <-d.ch:
			d.seen = append(d.seen, m)
			if strings.Contains("\n"+m+"\n", "\n"+want+"\n") {
				t.Fatalf("unexpected %q; seen %q", want, d.seen)
			}
		case <-deadline:
			return
		}
	}
}

// assertNoSecrets fails when a log holds one of the test's passwords.
func assertNoSecrets(t *testing.T, what, log string, secrets ...string) {
	t.Helper()
	if log == "" {
		t.Errorf("%s: empty; the secrets check would prove nothing", what)
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(log, s) {
			t.Errorf("%s contains a password (%.3s…)", what, s)
		}
	}
}
