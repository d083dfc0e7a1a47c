package main

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/amtedge/amtedge/appliance/amtsim"
)

// The box under systemd's eyes: READY=1 with a STATUS line, watchdog pings, STATUS kept current, SIGHUP reloads
// (a bad site refused, the old one kept; a good one applied without a restart), SIGTERM lets an activation in
// flight finish. The box is its own process, signalled for real.
func TestSystemdLifecycle(t *testing.T) {
	site := newTestSite(t)
	cfgPath := site.config(t, "127.0.0.1:0", "log: {output: stderr, level: debug}\nmetrics: {interval: 1s}\nshutdownTimeout: 20s\n")
	sock, ch := notifySocket(t)
	d := &datagrams{ch: ch}
	p := startBoxProcess(t, []string{os.Args[0], "serve", "--config", cfgPath},
		cleanEnv(testMainEnv+"=1", "NOTIFY_SOCKET="+sock, "WATCHDOG_USEC=400000"))

	ready := d.waitFor(t, "READY=1", 10*time.Second)
	if len(d.seen) != 1 || !strings.Contains(ready, "STATUS=sessions: 0 live; activations today: 0 ok, 0 failed; seal: software; Vault: not configured") {
		t.Fatalf("first datagram %q (seen %q); want READY=1 with the STATUS line", ready, d.seen)
	}
	d.waitFor(t, "WATCHDOG=1", 2*time.Second)
	d.waitFor(t, "WATCHDOG=1", 2*time.Second)

	if sum := site.activate(t, p.url, "ccm", "lc-ccm", 2, 0); sum.Activated != 2 {
		t.Fatalf("ccm activations: %+v", sum.Results)
	}
	d.waitFor(t, "STATUS=sessions: 0 live; activations today: 2 ok, 0 failed*", 15*time.Second)

	// A site the box cannot load is refused; the box keeps serving the old one.
	if err := os.WriteFile(site.sitePath, []byte("domains:\n  - {name: demo, suffix: demo.amtedge.test, pfxFile: missing.pfx, passwordFile: missing.pass}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p.signal(t, syscall.SIGHUP)
	if m := d.waitFor(t, "RELOADING=1", 5*time.Second); !strings.Contains(m, "MONOTONIC_USEC=") {
		t.Errorf("RELOADING=1 without MONOTONIC_USEC: %q", m)
	}
	d.waitFor(t, "READY=1", 10*time.Second)
	waitForLog(t, p, "event=reload_failed")
	if sum := site.activate(t, p.url, "ccm", "lc-after-bad", 1, 0); sum.Activated != 1 {
		t.Fatalf("after a refused reload: %+v", sum.Results)
	}

	// A good site is applied without a restart: its new profile works.
	site.write(t, "  - profileName: ccm2\n    activation: ccmactivate\n    amtPasswordFile: amt.pass\n    dhcpEnabled: true\n")
	p.signal(t, syscall.SIGHUP)
	d.waitFor(t, "RELOADING=1", 5*time.Second)
	d.waitFor(t, "READY=1", 10*time.Second)
	waitForLog(t, p, "event=reloaded")
	if sum := site.activate(t, p.url, "ccm2", "lc-ccm2", 1, 0); sum.Activated != 1 {
		t.Fatalf("profile of the reloaded site: %+v", sum.Results)
	}

	waitForLog(t, p, "activations_ccm_succeeded=4") // the metrics record (every second here) counts ccm2 as CCM

	// SIGTERM while an ACM activation is mid-flow: STOPPING=1, and the activation still completes.
	done := make(chan amtsim.Summary, 1)
	go func() { done <- site.activate(t, p.url, "acm", "lc-term", 1, 150*time.Millisecond) }()
	uuid := amtsim.DeviceUUID("lc-term", 0)
	waitForLog(t, p, "event=activation_started device="+uuid)
	time.Sleep(300 * time.Millisecond) // a few exchanges into the flow
	p.signal(t, syscall.SIGTERM)
	d.waitFor(t, "STOPPING=1", 5*time.Second)
	select {
	case sum := <-done:
		if sum.Activated != 1 || sum.Results[0].ModeAfter != amtsim.ModeACM {
			t.Fatalf("the activation in flight at SIGTERM: %+v", sum.Results)
		}
	case <-time.After(40 * time.Second):
		t.Fatal("the activation in flight at SIGTERM did not end")
	}
	if err := p.wait(t, 30*time.Second); err != nil {
		t.Fatalf("box exit: %v\n%s", err, p.stderr.String())
	}
	log := p.stderr.String()
	for _, want := range []string{"event=metrics", "activations_ccm_succeeded=", "event=activation_succeeded device=" + uuid,
		"event=stopping"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	assertNoSecrets(t, "the box's log", log, testAMTPassword, testMEBxPassword, site.pfxPassword)
}

func waitForLog(t *testing.T, p *boxProcess, want string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(p.stderr.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("the log never said %q:\n%s", want, p.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Watchdog pings stop while a serving loop is wedged and resume when it recovers.
func TestWatchdogStopsWhenWedged(t *testing.T) {
	sock, ch := notifySocket(t)
	t.Setenv("NOTIFY_SOCKET", sock)
	t.Setenv("WATCHDOG_USEC", "200000")
	b, _ := startTestBox(t)
	var wedged atomic.Bool
	release := make(chan struct{})
	b.extraHealthCheck = func() {
		if wedged.Load() {
			<-release
		}
	}
	stop := b.startWatchdog(newNotifier(slog.New(slog.NewTextHandler(io.Discard, nil))))
	defer stop()
	d := &datagrams{ch: ch}
	d.waitFor(t, "WATCHDOG=1", 2*time.Second)
	d.waitFor(t, "WATCHDOG=1", 2*time.Second)
	wedged.Store(true)
	d.none(t, "", 250*time.Millisecond) // a ping already on its way may still arrive
	d.none(t, "WATCHDOG=1", 800*time.Millisecond)
	wedged.Store(false)
	close(release)
	d.waitFor(t, "WATCHDOG=1", 2*time.Second)
}

// Under socket activation the box serves on the socket systemd passed as "agent", not on agent.listen (here an
// address that is taken, so binding it would fail).
func TestSocketActivation(t *testing.T) {
	activate := needTool(t, "systemd-socket-activate", "systemd")
	site := newTestSite(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := free.Addr().String()
	free.Close()
	cfgPath := site.config(t, busy.Addr().String(), "log: {output: stderr, level: debug}\n")
	// systemd-socket-activate starts the program on the first connection, like a socket unit without Accept=.
	go func() {
		for i := 0; i < 100; i++ {
			if c, err := net.Dial("tcp", addr); err == nil {
				c.Close()
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	p := startBoxProcess(t, []string{activate, "-l", addr, "--fdname=agent", "-E", testMainEnv + "=1", os.Args[0],
		"serve", "--config", cfgPath}, cleanEnv())
	if want := "wss://" + addr + "/activate"; p.url != want {
		t.Fatalf("agent URL %s, want %s", p.url, want)
	}
	if sum := site.activate(t, p.url, "ccm", "sa-ccm", 1, 0); sum.Activated != 1 {
		t.Fatalf("activation through the passed socket: %+v", sum.Results)
	}
	waitForLog(t, p, "socket_activated=true")
	p.signal(t, syscall.SIGTERM)
	if err := p.wait(t, 20*time.Second); err != nil {
		t.Fatalf("box exit: %v\n%s", err, p.stderr.String())
	}
}

// A reload swaps the TLS certificate for new handshakes; a configuration with an error is refused, naming the
// key, and changes nothing.
func TestReloadCertificateAndBadConfig(t *testing.T) {
	site := newTestSite(t)
	cfgPath := site.config(t, "127.0.0.1:0", "")
	cfg, err := loadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	b, err := startBox(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer b.shutdown(5 * time.Second)
	serial := func() string {
		t.Helper()
		c, err := tls.Dial("tcp", b.listener.Addr().String(), &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // reads the serial only
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	before := serial()

	// A new certificate in another directory, named by the configuration.
	certDir := filepath.Join(site.dir, "newtls")
	if err := ensureSelfSigned(certDir, filepath.Join(certDir, "c.pem"), filepath.Join(certDir, "k.pem")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgPath, []byte("stateDir: state\nsite: site.yaml\ncustody: {seal: software}\n"+
		"agent: {listen: '127.0.0.1:0', tlsCertFile: newtls/c.pem, tlsKeyFile: newtls/k.pem}\nmetrics: {interval: 5s}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := b.applyReload(cfgPath); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if after := serial(); after == before {
		t.Error("the reload did not change the served certificate")
	}
	if b.cfg.Metrics.Interval != 5*time.Second {
		t.Errorf("metrics.interval after reload: %s", b.cfg.Metrics.Interval)
	}

	for _, bad := range []struct{ yaml, want string }{
		{"stateDir: state\nsite: site.yaml\ncustody: {seal: software}\nmetrics: {interval: 1ms}\n", "metrics.interval"},
		{"stateDir: state\nsite: site.yaml\ncustody: {seal: software}\nagent: {tlsCertFile: nope.pem, tlsKeyFile: nope.key}\n", "agent.tlsCertFile"},
	} {
		if err := os.WriteFile(cfgPath, []byte(bad.yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		err := b.applyReload(cfgPath)
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("bad reload %q: %v", bad.yaml, err)
		}
		if b.cfg.Metrics.Interval != 5*time.Second || b.cfg.Agent.TLSCertFile != "newtls/c.pem" {
			t.Errorf("a refused reload changed the configuration: %+v", b.cfg)
		}
	}
}
