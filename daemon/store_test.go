package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"github.com/amtedge/amtedge/secrets"
	"github.com/amtedge/amtedge/secrets/cache"
	"github.com/amtedge/amtedge/secrets/seal"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/amtedge/amtedge/appliance/amtsim"
)

// testTLS trusts the box's self-signed certificate in stateDir.
func testTLS(t *testing.T, stateDir string) *tls.Config {
	t.Helper()
	pemData, err := os.ReadFile(filepath.Join(stateDir, "tls", "cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemData)
	return &tls.Config{RootCAs: pool}
}

// runSWTPM runs a software TPM 2.0 on the unix socket sock with its state in stateDir; stop ends it by PID.
func runSWTPM(tb testing.TB, sock, stateDir string) (stop func()) {
	tb.Helper()
	if _, err := exec.LookPath("swtpm"); err != nil {
		tb.Fatalf("swtpm is not installed (%v): `make test` installs it", err)
	}
	os.Remove(sock)
	cmd := exec.Command("swtpm", "socket", "--tpm2", "--flags", "not-need-init,startup-clear",
		"--server", "type=unixio,path="+sock, "--ctrl", "type=unixio,path="+sock+".ctrl", "--tpmstate", "dir="+stateDir)
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	stop = func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() }
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			return stop
		}
		if time.Now().After(deadline) {
			stop()
			tb.Fatal("swtpm did not listen")
		}
	}
}

// BenchmarkColdStart measures what a restart costs before the box can serve: unsealing the key with the TPM
// (swtpm here) and opening the sealed store holding 10,000 devices. The target is 1 s.
func BenchmarkColdStart(b *testing.B) {
	dir, err := os.MkdirTemp("", "amtedge-cold")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	state := filepath.Join(dir, "tpm")
	if err := os.Mkdir(state, 0o700); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(runSWTPM(b, filepath.Join(dir, "tpm.sock"), state))
	cfg, err := parseConfig([]byte("stateDir: "+dir+"\ndemo: {enabled: true}\ncustody: {seal: tpm, tpm: {device: "+filepath.Join(dir, "tpm.sock")+"}}\n"), dir)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	dek, _, err := seal.LoadOrCreate(ctx, cfg.sealer())
	if err != nil {
		b.Fatal(err)
	}
	store, err := cache.Open(storePath(dir), dek)
	if err != nil {
		b.Fatal(err)
	}
	for i := range 10000 {
		if err := store.PutDevice(ctx, amtsim.DeviceUUID("cold", i), secrets.Credentials{AMTPassword: "P@ssw0rd-0123456789", MEBxPassword: "Mebx-P@ss-01", State: secrets.Confirmed}); err != nil {
			b.Fatal(err)
		}
	}
	store.Close()
	for b.Loop() {
		dek, err := cfg.sealer().Unseal(ctx)
		if err != nil {
			b.Fatal(err)
		}
		s, err := cache.Open(storePath(dir), dek)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Device(ctx, amtsim.DeviceUUID("cold", 4242)); err != nil {
			b.Fatal(err)
		}
		s.Close()
	}
}

// TestTPMSealDegradedAndRecover runs the box on a real (software) TPM, wipes the TPM as a replaced mainboard
// would, and checks the box starts degraded, tells agents why, and that `store recover` brings it back.
func TestTPMSealDegradedAndRecover(t *testing.T) {
	dir, err := os.MkdirTemp("", "amtedge-tpm") // short: unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	tpmState := func(name string) string {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(p, 0o700); err != nil {
			t.Fatal(err)
		}
		return p
	}
	stop := func() {}
	restartTPM := func(state string) {
		stop()
		stop = runSWTPM(t, filepath.Join(dir, "tpm.sock"), state)
	}
	t.Cleanup(func() { stop() })
	restartTPM(tpmState("tpm-a"))

	cfgPath := filepath.Join(dir, "amtedge.yaml")
	cfgYAML := "stateDir: state\ndemo: {enabled: true}\nagent: {listen: '127.0.0.1:0'}\nadmin: {listen: '127.0.0.1:0'}\n" +
		"custody: {seal: tpm, standalone: true, tpm: {device: " + filepath.Join(dir, "tpm.sock") + "}}\n"
	cfg := writeTestConfig(t, cfgPath, cfgYAML)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	activate := func(b *box, seed string) amtsim.Summary {
		return amtsim.Simulate(context.Background(), amtsim.SimulateConfig{
			URL: "wss://" + b.listener.Addr().String() + "/activate", TLS: testTLS(t, filepath.Join(dir, "state")),
			Profile: "ccm", Devices: 1,
			Device: func(i int) amtsim.DeviceConfig { return amtsim.DeviceConfig{UUID: amtsim.DeviceUUID(seed, i)} },
		})
	}

	b, err := startBox(context.Background(), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	if b.degraded != "" {
		t.Fatalf("degraded on a fresh TPM: %s", b.degraded)
	}
	if sum := activate(b, "tpm-1"); sum.Failed != 0 {
		t.Fatalf("activation on the TPM-sealed box: %+v", sum.Results[0].Result)
	}
	if err := b.shutdown(5 * time.Second); err != nil {
		t.Fatal(err)
	}

	// The TPM is cleared (or the mainboard replaced): its state is gone.
	restartTPM(tpmState("tpm-b"))
	b, err = startBox(context.Background(), cfg, log)
	if err != nil {
		t.Fatalf("a box whose key cannot be unsealed must start degraded, not fail: %v", err)
	}
	if !strings.Contains(b.degraded, "cleared or replaced") || !strings.Contains(b.statusLine(time.Now()), "DEGRADED") {
		t.Fatalf("degraded = %q, status %q", b.degraded, b.statusLine(time.Now()))
	}
	sum := activate(b, "tpm-2")
	if r := sum.Results[0].Result; r.Method != "error" || !strings.Contains(r.Status, "amtedge store recover") {
		t.Fatalf("agent of a degraded box: %s %q", r.Method, r.Status)
	}
	if err := b.shutdown(5 * time.Second); err != nil {
		t.Fatal(err)
	}

	var out bytes.Buffer
	if code := run([]string{"store", "recover", "--config", cfgPath}, &out, &out); code != 0 {
		t.Fatalf("store recover: exit %d\n%s", code, out.String())
	}
	for _, want := range []string{"kept aside", "writes that had not reached Vault", "new key and store created"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("store recover output lacks %q:\n%s", want, out.String())
		}
	}
	b, err = startBox(context.Background(), cfg, log)
	if err != nil || b.degraded != "" {
		t.Fatalf("after recover: %v %q", err, b.degraded)
	}
	if sum := activate(b, "tpm-3"); sum.Failed != 0 {
		t.Fatalf("activation after recover: %+v", sum.Results[0].Result)
	}
	if err := b.shutdown(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if code := run([]string{"store", "check", "--config", cfgPath}, &out, &out); code != 0 || !strings.Contains(out.String(), "is consistent") {
		t.Fatalf("store check: exit %d\n%s", code, out.String())
	}
	out.Reset()
	if code := run([]string{"store", "recover", "--config", cfgPath}, &out, &out); code != 0 || !strings.Contains(out.String(), "nothing to recover") {
		t.Fatalf("store recover on a healthy store: exit %d\n%s", code, out.String())
	}
}

// TestLostKeyFileStartsDegraded: the software key file is deleted (or replaced) while the state file stays — the
// box must start degraded rather than crash-loop, and store recover must bring it back.
func TestLostKeyFileStartsDegraded(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "amtedge.yaml")
	if err := os.WriteFile(cfgPath, []byte("stateDir: state\ndemo: {enabled: true}\nagent: {listen: '127.0.0.1:0'}\nadmin: {listen: ''}\n"+
		"custody: {seal: software, standalone: true}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	b, err := startBox(context.Background(), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.shutdown(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "state", "dek")); err != nil {
		t.Fatal(err)
	}
	b, err = startBox(context.Background(), cfg, log)
	if err != nil {
		t.Fatalf("a lost key file must start the box degraded, not fail: %v", err)
	}
	if !strings.Contains(b.degraded, "key is missing") {
		t.Fatalf("degraded = %q", b.degraded)
	}
	if err := b.shutdown(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if code := run([]string{"store", "recover", "--config", cfgPath}, &out, &out); code != 0 || !strings.Contains(out.String(), "does not open the store") {
		t.Fatalf("store recover: exit %d\n%s", code, out.String())
	}
	b, err = startBox(context.Background(), cfg, log)
	if err != nil || b.degraded != "" {
		t.Fatalf("after recover: %v %q", err, b.degraded)
	}
	if err := b.shutdown(5 * time.Second); err != nil {
		t.Fatal(err)
	}
}
