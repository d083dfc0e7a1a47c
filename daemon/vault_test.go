package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/amtedge/amtedge/appliance/amtsim"
	"github.com/amtedge/amtedge/secrets/vault"
	"github.com/amtedge/amtedge/secrets/vault/vaulttest"
)

// TestVaultWriteThroughAndOutage runs the box against a real Vault: a device's random password reaches Vault;
// with Vault gone the box still activates (offline autonomy) and queues the write; a new Vault gets everything.
func TestVaultWriteThroughAndOutage(t *testing.T) {
	v := vaulttest.Start(t, 0)
	dir := t.TempDir()
	auth := vault.AuthConfig{Method: "approle", RoleIDFile: filepath.Join(dir, "role-id"), SecretIDFile: filepath.Join(dir, "secret-id")}
	const prefix = "sites/test"
	v.SetupSite(t, prefix, auth)

	cfgYAML := "stateDir: state\ndemo: {enabled: true}\nagent: {listen: '127.0.0.1:0'}\nadmin: {listen: ''}\n" +
		"custody: {seal: software}\n" + // no standalone: random passwords are allowed because Vault holds a copy
		"vault: {address: '" + v.Addr + "', prefix: " + prefix + ", callTimeout: 2s, " +
		"auth: {method: approle, roleIdFile: role-id, secretIdFile: secret-id}}\n"
	cfgPath := filepath.Join(dir, "amtedge.yaml")
	cfg := writeTestConfig(t, cfgPath, cfgYAML)
	b, err := startBox(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer b.shutdown(5 * time.Second)

	activate := func(seed string) string {
		t.Helper()
		uuid := amtsim.DeviceUUID(seed, 0)
		sum := amtsim.Simulate(context.Background(), amtsim.SimulateConfig{
			URL: "wss://" + b.listener.Addr().String() + "/activate", TLS: testTLS(t, filepath.Join(dir, "state")),
			Profile: "ccm", Devices: 1,
			Device: func(int) amtsim.DeviceConfig { return amtsim.DeviceConfig{UUID: uuid} },
		})
		if sum.Failed != 0 {
			t.Fatalf("activation %s: %+v", seed, sum.Results[0].Result)
		}
		return uuid
	}
	inVault := func(uuid string, within time.Duration) bool {
		t.Helper()
		dev, err := b.store.Device(context.Background(), uuid)
		if err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if data, _ := v.Get(t, prefix+"/devices/"+uuid); data != nil && data["AMT_PASSWORD"] == dev.Current.AMTPassword {
				return true
			}
		}
		return false
	}

	first := activate("vault-1")
	if !inVault(first, 10*time.Second) {
		t.Fatal("the device's password did not reach Vault")
	}
	if word, reachable, _ := b.vaultState(); word != "reachable" || !reachable {
		t.Fatalf("vault state %q", word)
	}

	// Vault goes away: the box keeps activating, the password waits in the outbox.
	port := v.Port
	v.Kill()
	second := activate("vault-2")
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if word, _, _ := b.vaultState(); word == "unreachable" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the box did not notice Vault was gone")
		}
	}
	if out, err := b.store.Outbox(context.Background()); err != nil || len(out) == 0 {
		t.Fatalf("outbox while Vault is away: %d entries, %v", len(out), err)
	}

	// A new Vault on the same address (a dev server starts empty): the outbox drains into it.
	v2 := vaulttest.Start(t, port)
	v2.SetupSite(t, prefix, auth)
	v = v2
	if !inVault(second, 90*time.Second) {
		t.Fatalf("the queued password did not reach the new Vault (vault state %v)", func() string { w, _, d := b.vaultState(); return w + " " + d }())
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		out, err := b.store.Outbox(context.Background())
		if err == nil && len(out) == 0 && strings.Contains(b.statusLine(time.Now()), "Vault: reachable") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("outbox not drained (%d entries, %v) or status %q", len(out), err, b.statusLine(time.Now()))
		}
	}

	// `amtedge sync now` over the control socket.
	var out strings.Builder
	if code := run([]string{"sync", "now", "--socket", filepath.Join(dir, "state", "control.sock")}, &out, &out); code != 0 ||
		!strings.Contains(out.String(), "still waiting") {
		t.Fatalf("sync now: exit %d: %s", code, out.String())
	}
}

// TestStaleSecretsCanRefuseWork: with vault.whenStale: refuse, a box that never completed a pull from its Vault
// provisions nothing and says why; sync now reports Vault's failure.
func TestStaleSecretsCanRefuseWork(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"role-id", "secret-id"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfgYAML := "stateDir: state\ndemo: {enabled: true}\nagent: {listen: '127.0.0.1:0'}\nadmin: {listen: ''}\ncustody: {seal: software}\n" +
		"vault: {address: 'http://127.0.0.1:1', callTimeout: 1s, whenStale: refuse, auth: {method: approle, roleIdFile: role-id, secretIdFile: secret-id}}\n"
	cfgPath := filepath.Join(dir, "amtedge.yaml")
	cfg := writeTestConfig(t, cfgPath, cfgYAML)
	logs := &syncBuffer{}
	b, err := startBox(context.Background(), cfg, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer b.shutdown(5 * time.Second)
	if !b.checkStale(false) || !strings.Contains(logs.String(), "event=secrets_stale") {
		t.Fatalf("no secrets_stale event:\n%s", logs.String())
	}
	sum := amtsim.Simulate(context.Background(), amtsim.SimulateConfig{
		URL: "wss://" + b.listener.Addr().String() + "/activate", TLS: testTLS(t, filepath.Join(dir, "state")), Profile: "ccm", Devices: 1,
	})
	if r := sum.Results[0].Result; r.Method != "error" || !strings.Contains(r.Status, "copy of the central secrets is stale") {
		t.Fatalf("stale box: %s %q", r.Method, r.Status)
	}
	var out strings.Builder
	if code := run([]string{"sync", "now", "--socket", filepath.Join(dir, "state", "control.sock")}, &out, &out); code == 0 ||
		!strings.Contains(out.String(), "pull from Vault") {
		t.Fatalf("sync now against a dead Vault: exit %d: %s", code, out.String())
	}
}
