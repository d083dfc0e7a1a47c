package vaultsync

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/amtedge/amtedge/secrets"
	"github.com/amtedge/amtedge/secrets/cache"
	"github.com/amtedge/amtedge/secrets/vault"
	"github.com/amtedge/amtedge/secrets/vault/vaulttest"
)

const testPrefix = "sites/test-site"

// env is one test's world: a real dev Vault set up as a site, a real sealed cache on a temp dir, a logged-in
// client and a Syncer, with the Syncer's log kept for event checks.
type env struct {
	v     *vaulttest.DevVault
	auth  vault.AuthConfig
	store *cache.Store
	vc    *vault.Client
	s     *Syncer
	logs  *vaulttest.LockedWriter
}

func newEnv(tb testing.TB, cfg Config) *env {
	tb.Helper()
	e := &env{v: vaulttest.Start(tb, 0), logs: &vaulttest.LockedWriter{}}
	dir := tb.TempDir()
	e.auth = vault.AuthConfig{Method: vault.AuthAppRole, RoleIDFile: filepath.Join(dir, "role_id"), SecretIDFile: filepath.Join(dir, "secret_id")}
	e.v.SetupSite(tb, testPrefix, e.auth)
	dek := bytes.Repeat([]byte{7}, 32)
	st, err := cache.Open(filepath.Join(dir, "state.db"), dek)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	e.store = st
	quiet := slog.New(slog.NewTextHandler(e.logs, nil))
	vc, err := vault.New(vault.Config{Address: e.v.Addr, Auth: e.auth, Prefix: testPrefix, CallTimeout: 15 * time.Second, Logger: quiet})
	if err != nil {
		tb.Fatal(err)
	}
	if err := vc.Login(context.Background()); err != nil {
		tb.Fatal(err)
	}
	e.vc = vc
	cfg.Logger = slog.New(slog.NewTextHandler(e.logs, nil))
	e.s, err = New(context.Background(), st, vc, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return e
}

func cred(amt, mebx string, st secrets.State) secrets.Credentials {
	return secrets.Credentials{AMTPassword: amt, MEBxPassword: mebx, State: st, Created: time.Now()}
}

// vaultDevice reads devices/<uuid> as root: AMT and MEBx passwords (nil MEBx as ""), all data, and the version.
func (e *env) vaultDevice(t *testing.T, uuid string) (string, string, map[string]any, int) {
	t.Helper()
	data, v := e.v.Get(t, testPrefix+"/devices/"+uuid)
	if data == nil {
		return "", "", nil, 0
	}
	amt, _ := data["AMT_PASSWORD"].(string)
	mebx, _ := data["MEBX_PASSWORD"].(string)
	return amt, mebx, data, v
}

// checkEqual checks that Vault holds, for every device of the cache, the box's newest candidate and MEBx password.
func (e *env) checkEqual(t *testing.T) int {
	t.Helper()
	ctx := context.Background()
	uuids, err := e.store.ListDevices(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range uuids {
		d, err := e.store.Device(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		amt, mebx, _, _ := e.vaultDevice(t, u)
		if c := d.Candidates(); len(c) == 0 || amt != c[0] || mebx != d.MEBxPassword() {
			t.Errorf("device %s: Vault's passwords differ from the box's (amt equal %t, mebx equal %t)", u, len(c) > 0 && amt == c[0], mebx == d.MEBxPassword())
		}
	}
	return len(uuids)
}

func outboxLen(t *testing.T, st *cache.Store) int {
	t.Helper()
	ob, err := st.Outbox(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return len(ob)
}

func mustPush(t *testing.T, s *Syncer) PushResult {
	t.Helper()
	res, err := s.Push(context.Background())
	if err != nil {
		t.Fatalf("push: %v (result %+v)", err, res)
	}
	return res
}

func TestPush(t *testing.T) {
	e := newEnv(t, Config{})
	ctx := context.Background()
	st := e.store

	// A new device, then a foreign key written by another tool, then the box's next password.
	if err := st.PutDevice(ctx, "dev-1", cred("Amt-A", "Mebx-A", secrets.Pending)); err != nil {
		t.Fatal(err)
	}
	if res := mustPush(t, e.s); res.Written != 1 || res.Acked != 1 {
		t.Fatalf("first push: %+v", res)
	}
	if amt, mebx, _, v := e.vaultDevice(t, "dev-1"); amt != "Amt-A" || mebx != "Mebx-A" || v != 1 {
		t.Fatalf("dev-1 in Vault: amt ok %t, mebx ok %t, version %d", amt == "Amt-A", mebx == "Mebx-A", v)
	}
	e.v.Put(t, testPrefix+"/devices/dev-1", map[string]any{"AMT_PASSWORD": "Amt-A", "MEBX_PASSWORD": "Mebx-A", "MPS_PASSWORD": "mps-1"})
	if err := st.MarkDevice(ctx, "dev-1", secrets.Confirmed); err != nil {
		t.Fatal(err)
	}
	if err := st.PutDevice(ctx, "dev-1", cred("Amt-B", "", secrets.Pending)); err != nil {
		t.Fatal(err)
	}
	if res := mustPush(t, e.s); res.Written != 1 || res.Acked != 2 {
		t.Fatalf("second push (two entries, one device): %+v", res)
	}
	if amt, mebx, data, _ := e.vaultDevice(t, "dev-1"); amt != "Amt-B" || mebx != "Mebx-A" || data["MPS_PASSWORD"] != "mps-1" {
		t.Fatalf("dev-1: pending newest not pushed, MEBx of the older set lost, or the foreign key dropped (amt ok %t, mebx ok %t, mps kept %t)",
			amt == "Amt-B", mebx == "Mebx-A", data["MPS_PASSWORD"] == "mps-1")
	}

	// The candidate rule: abandoning the pending set puts the confirmed one back into Vault.
	if err := st.MarkDevice(ctx, "dev-1", secrets.Abandoned); err != nil {
		t.Fatal(err)
	}
	mustPush(t, e.s)
	if amt, _, _, _ := e.vaultDevice(t, "dev-1"); amt != "Amt-A" {
		t.Fatal("after abandon, Vault does not hold the confirmed password")
	}

	// Coalescing, domains and profiles, an unchanged device.
	for i := range 5 {
		if err := st.PutDevice(ctx, "dev-2", cred(fmt.Sprintf("Amt-2-%d", i), "", secrets.Pending)); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.PutDomain(ctx, "corp.example.com", secrets.DomainSecret{PFX: []byte{1, 2}, Password: "pfx"}); err != nil {
		t.Fatal(err)
	}
	if err := st.PutProfile(ctx, "p1", secrets.ProfileSecret{AMTPassword: "x"}); err != nil {
		t.Fatal(err)
	}
	if err := st.MarkDevice(ctx, "dev-1", secrets.Abandoned); err != nil { // same value in Vault already
		t.Fatal(err)
	}
	res := mustPush(t, e.s)
	if res.Written != 1 || res.Same != 1 || res.Skipped != 2 || res.Acked != 8 || outboxLen(t, st) != 0 {
		t.Fatalf("coalesced push: %+v, outbox %d", res, outboxLen(t, st))
	}
	if data, _ := e.v.Get(t, testPrefix+"/certs/corp.example.com"); data != nil {
		t.Fatal("a domain was written to Vault")
	}
	e.checkEqual(t)

	// Delete.
	if err := st.DeleteDevice(ctx, "dev-2"); err != nil {
		t.Fatal(err)
	}
	if res := mustPush(t, e.s); res.Deleted != 1 {
		t.Fatalf("delete push: %+v", res)
	}
	if data, _ := e.v.Get(t, testPrefix+"/devices/dev-2"); data != nil {
		t.Fatal("dev-2 still in Vault after delete")
	}
	if st := e.s.State(); !st.Reachable || st.LastPush.IsZero() || st.OutboxLength != 0 || st.LastError != "" {
		t.Fatalf("state: %+v", st)
	}
	if strings.Contains(e.logs.String(), "Amt-") {
		t.Fatal("a password reached the log")
	}
}

func TestPushCASConflict(t *testing.T) {
	e := newEnv(t, Config{CASAttempts: 3})
	ctx := context.Background()
	if err := e.store.PutDevice(ctx, "dev-c", cred("Amt-1", "", secrets.Pending)); err != nil {
		t.Fatal(err)
	}
	// Another writer slips a version in between the box's read and its check-and-set write, once.
	writes := 0
	e.s.beforeWrite = func(uuid string) {
		if writes++; writes == 1 {
			e.v.Put(t, testPrefix+"/devices/"+uuid, map[string]any{"AMT_PASSWORD": "Other", "TLS_ISSUED_CERTIFICATE": "cert"})
		}
	}
	res := mustPush(t, e.s)
	if res.Retries != 1 || res.Written != 1 {
		t.Fatalf("push over a conflict: %+v", res)
	}
	amt, _, data, _ := e.vaultDevice(t, "dev-c")
	if amt != "Amt-1" || data["TLS_ISSUED_CERTIFICATE"] != "cert" {
		t.Fatalf("after the retry: box's password %t, foreign key kept %t", amt == "Amt-1", data["TLS_ISSUED_CERTIFICATE"] == "cert")
	}
	if !strings.Contains(e.logs.String(), "event=vault_push_conflict") {
		t.Fatal("no vault_push_conflict event for a password written elsewhere")
	}
	d, err := e.store.Device(ctx, "dev-c")
	if err != nil || len(d.History) != 1 || d.History[0].AMTPassword != "Other" || d.Candidates()[0] != "Amt-1" {
		t.Fatalf("the password written elsewhere is not kept at the end of the box's history: %v", err)
	}
	if n := outboxLen(t, e.store); n != 0 {
		t.Fatalf("keeping the foreign password queued %d entries", n)
	}

	// A writer that always wins: the attempts run out, the entry stays queued.
	if err := e.store.PutDevice(ctx, "dev-c", cred("Amt-2", "", secrets.Pending)); err != nil {
		t.Fatal(err)
	}
	e.s.beforeWrite = func(uuid string) {
		e.v.Put(t, testPrefix+"/devices/"+uuid, map[string]any{"AMT_PASSWORD": "Other"})
	}
	_, err = e.s.Push(ctx)
	if !errors.Is(err, vault.ErrConflict) || outboxLen(t, e.store) != 1 {
		t.Fatalf("push against a writer that always wins: %v, outbox %d", err, outboxLen(t, e.store))
	}
	e.s.beforeWrite = nil
	mustPush(t, e.s)
	e.checkEqual(t)
}

// TestOutage kills Vault during a stream of device-password writes, starts a new one on the same address, and
// checks that every write returned, the outbox drained completely and Vault equals the cache.
func TestOutage(t *testing.T) {
	e := newEnv(t, Config{PollInterval: 50 * time.Millisecond, MinBackoff: 100 * time.Millisecond, MaxBackoff: 400 * time.Millisecond, BacklogLength: 20})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { _ = e.s.Run(ctx) })
	defer wg.Wait()
	defer cancel()

	const devices, writes = 20, 150
	writeRange := func(from, to int) {
		for i := from; i < to; i++ {
			u := fmt.Sprintf("dev-%02d", i%devices)
			if err := e.store.PutDevice(context.Background(), u, cred(fmt.Sprintf("Amt-%d", i), fmt.Sprintf("Mebx-%d", i), secrets.Pending)); err != nil {
				t.Errorf("write %d: %v", i, err)
			}
			if i%3 == 0 {
				if err := e.store.MarkDevice(context.Background(), u, secrets.Confirmed); err != nil {
					t.Errorf("mark %d: %v", i, err)
				}
			}
			e.s.Notify()
			time.Sleep(2 * time.Millisecond)
		}
	}
	writeRange(0, 50)
	e.v.Kill()
	writeRange(50, 120)
	waitFor(t, 10*time.Second, "state unreachable", func() bool { return !e.s.State().Reachable })
	if st := e.s.State(); st.OutboxLength == 0 || st.LastError == "" {
		t.Fatalf("state during the outage: %+v", st)
	}

	// A new dev server on the same address: empty, with a new role and secret_id in the box's files.
	nv := vaulttest.Start(t, e.v.Port)
	nv.SetupSite(t, testPrefix, e.auth)
	e.v = nv
	writeRange(120, writes)
	waitFor(t, 30*time.Second, "outbox drained", func() bool { return outboxLen(t, e.store) == 0 && e.s.State().OutboxLength == 0 })
	if n := e.checkEqual(t); n != devices {
		t.Fatalf("%d devices in the cache, want %d", n, devices)
	}
	logs := e.logs.String()
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, "event=") {
			t.Log(line)
		}
	}
	for _, ev := range []string{"event=vault_unreachable", "event=vault_restored", "event=outbox_backlog"} {
		if !strings.Contains(logs, ev) {
			t.Errorf("no %s in the log", ev)
		}
	}
	if strings.Count(logs, "event=vault_unreachable") != 1 {
		t.Errorf("vault_unreachable logged %d times, want once (transitions only)", strings.Count(logs, "event=vault_unreachable"))
	}
	if st := e.s.State(); !st.Reachable || st.LastError != "" || st.Backlog {
		t.Fatalf("state after the drain: %+v", st)
	}
	if strings.Contains(logs, "Amt-") || strings.Contains(logs, "Mebx-") {
		t.Fatal("a password reached the log")
	}
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestPull(t *testing.T) {
	e := newEnv(t, Config{})
	ctx := context.Background()
	st := e.store
	pfx := []byte("\x30\x82 not a PFX \x00\xff")
	e.v.Put(t, testPrefix+"/certs/corp.example.com", map[string]any{"CERT": base64.StdEncoding.EncodeToString(pfx), "CERT_PASSWORD": "pfx-1"})
	e.v.Put(t, testPrefix+"/profiles/acm", map[string]any{"AMT_PASSWORD": "P-Amt", "MEBX_PASSWORD": "P-Mebx"})
	e.v.Put(t, testPrefix+"/profiles/gone", map[string]any{"AMT_PASSWORD": "G"})
	e.v.Put(t, testPrefix+"/devices/dev-new", map[string]any{"AMT_PASSWORD": "V-Amt", "MEBX_PASSWORD": "V-Mebx", "MPS_PASSWORD": "m"})

	if !e.s.State().Stale {
		t.Fatal("not stale before the first pull")
	}
	res, err := e.s.Pull(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if e.s.State().Stale {
		t.Fatal("stale after a pull")
	}
	if res.Listed != 4 || res.Read != 4 || res.Stored != 4 {
		t.Fatalf("first pull: %+v", res)
	}
	d, err := st.Domain(ctx, "corp.example.com")
	if err != nil || !bytes.Equal(d.PFX, pfx) || d.Password != "pfx-1" {
		t.Fatalf("domain: %v, equal %t", err, bytes.Equal(d.PFX, pfx) && d.Password == "pfx-1")
	}
	if p, err := st.Profile(ctx, "acm"); err != nil || p != (secrets.ProfileSecret{AMTPassword: "P-Amt", MEBxPassword: "P-Mebx"}) {
		t.Fatalf("profile: %v", err)
	}
	dev, err := st.Device(ctx, "dev-new")
	if err != nil || dev.Current.State != secrets.Confirmed || dev.Candidates()[0] != "V-Amt" || dev.MEBxPassword() != "V-Mebx" {
		t.Fatalf("device from Vault: %v", err)
	}
	if n := outboxLen(t, st); n != 0 {
		t.Fatalf("a pull queued %d outbox entries", n)
	}
	if last, err := st.LastPull(ctx); err != nil || last.IsZero() || e.s.State().LastPull.IsZero() {
		t.Fatalf("last pull not recorded: %v", err)
	}

	// Nothing changed: no secret is read again.
	if res, err := e.s.Pull(ctx); err != nil || res.Read != 0 || res.Listed != 4 {
		t.Fatalf("second pull: %+v, %v", res, err)
	}

	// One change, one deletion.
	e.v.Put(t, testPrefix+"/profiles/acm", map[string]any{"AMT_PASSWORD": "P-Amt-2", "MEBX_PASSWORD": "P-Mebx"})
	if _, err := e.v.Root.Logical().DeleteWithContext(ctx, "secret/metadata/"+testPrefix+"/profiles/gone"); err != nil {
		t.Fatal(err)
	}
	res, err = e.s.Pull(ctx)
	if err != nil || res.Read != 1 || res.Removed != 1 {
		t.Fatalf("pull after a change and a deletion: %+v, %v", res, err)
	}
	if p, _ := st.Profile(ctx, "acm"); p.AMTPassword != "P-Amt-2" {
		t.Fatal("changed profile not updated")
	}
	if _, err := st.Profile(ctx, "gone"); !errors.Is(err, secrets.ErrNotFound) {
		t.Fatalf("profile deleted in Vault still here: %v", err)
	}

	// The box pushed its device; another tool rotates it in Vault: the box records Vault's as a new confirmed set
	// and keeps its own in the history.
	if err := st.PutDevice(ctx, "dev-box", cred("Box-1", "", secrets.Confirmed)); err != nil {
		t.Fatal(err)
	}
	mustPush(t, e.s)
	if res, err := e.s.Pull(ctx); err != nil || res.Read != 0 {
		t.Fatalf("pull after a push re-read the pushed device: %+v, %v", res, err)
	}
	e.v.Put(t, testPrefix+"/devices/dev-box", map[string]any{"AMT_PASSWORD": "Elsewhere"})
	if res, err := e.s.Pull(ctx); err != nil || res.Read != 1 || res.Stored != 1 {
		t.Fatalf("pull of a device rotated elsewhere: %+v, %v", res, err)
	}
	dev, _ = st.Device(ctx, "dev-box")
	if dev.Current.AMTPassword != "Elsewhere" || dev.Current.State != secrets.Confirmed || len(dev.History) != 1 || dev.History[0].AMTPassword != "Box-1" {
		t.Fatal("device rotated elsewhere: Vault's password not current, or the box's lost from the history")
	}

	// A newer local set not pushed yet: the pull leaves it alone (the outbox decides), then the push wins.
	if err := st.PutDevice(ctx, "dev-box", cred("Box-2", "", secrets.Pending)); err != nil {
		t.Fatal(err)
	}
	e.v.Put(t, testPrefix+"/devices/dev-box", map[string]any{"AMT_PASSWORD": "Elsewhere-2"})
	if res, err := e.s.Pull(ctx); err != nil || res.Deferred != 1 {
		t.Fatalf("pull of a device with queued writes: %+v, %v", res, err)
	}
	if dev, _ = st.Device(ctx, "dev-box"); dev.Current.AMTPassword != "Box-2" {
		t.Fatal("the pull overwrote a set still in the outbox")
	}
	mustPush(t, e.s)
	if amt, _, _, _ := e.vaultDevice(t, "dev-box"); amt != "Box-2" {
		t.Fatal("push after a deferred pull did not write the box's newest password")
	}
	if res, err := e.s.Pull(ctx); err != nil || res.Read != 0 {
		t.Fatalf("pull after the push: %+v, %v", res, err)
	}

	// Vault set back to an older password of the box's (a restored backup): the box queues its newest again.
	e.v.Put(t, testPrefix+"/devices/dev-box", map[string]any{"AMT_PASSWORD": "Box-1"})
	if res, err := e.s.Pull(ctx); err != nil || res.Repushed != 1 || outboxLen(t, st) != 1 {
		t.Fatalf("pull of an older password: %+v, %v", res, err)
	}
	mustPush(t, e.s)
	if amt, _, _, _ := e.vaultDevice(t, "dev-box"); amt != "Box-2" {
		t.Fatal("the repush did not restore the box's newest password in Vault")
	}
	if strings.Contains(e.logs.String(), "Amt") {
		t.Fatal("a password reached the log")
	}
}

// TestPushRefused: a token whose policy does not cover the path (403) stops the drain and keeps every entry.
func TestPushRefused(t *testing.T) {
	e := newEnv(t, Config{})
	ctx := context.Background()
	other, err := vault.New(vault.Config{Address: e.v.Addr, Auth: e.auth, Prefix: "sites/another-site", CallTimeout: 2 * time.Second,
		Logger: slog.New(slog.NewTextHandler(e.logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Login(ctx); err != nil {
		t.Fatal(err)
	}
	s, err := New(ctx, e.store, other, Config{Logger: slog.New(slog.NewTextHandler(e.logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"dev-a", "dev-b", "dev-c"} {
		if err := e.store.PutDevice(ctx, u, cred("Amt-"+u, "", secrets.Pending)); err != nil {
			t.Fatal(err)
		}
	}
	again, err := New(ctx, e.store, other, Config{})
	if err != nil || again.State().OutboxLength != 3 {
		t.Fatalf("New does not report the outbox it starts with: %v", err)
	}
	res, err := s.Push(ctx)
	if !errors.Is(err, vault.ErrPermissionDenied) || res.Acked != 0 || outboxLen(t, e.store) != 3 {
		t.Fatalf("push refused: %v, %+v, outbox %d", err, res, outboxLen(t, e.store))
	}
	st := s.State()
	if st.Reachable || !strings.Contains(st.LastError, "permission denied") || st.OutboxLength != 3 {
		t.Fatalf("state after a refusal: %+v", st)
	}
	if !strings.Contains(e.logs.String(), `cause="permission denied"`) {
		t.Fatal("no vault_unreachable event with the refusal as cause")
	}
	// The right client drains it all.
	if res := mustPush(t, e.s); res.Written != 3 {
		t.Fatalf("push with the site's client: %+v", res)
	}
	e.checkEqual(t)
}

// TestRun: Notify drains promptly (the poll is an hour here), the pull runs every PullInterval, and Run returns
// when its context ends.
func TestRun(t *testing.T) {
	e := newEnv(t, Config{PollInterval: time.Hour, PullInterval: 200 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.s.Run(ctx) }()
	waitFor(t, 5*time.Second, "first pull", func() bool { return !e.s.State().LastPull.IsZero() })

	if err := e.store.PutDevice(context.Background(), "dev-r", cred("Amt-r", "", secrets.Pending)); err != nil {
		t.Fatal(err)
	}
	e.s.Notify()
	waitFor(t, 5*time.Second, "push after Notify", func() bool { amt, _, _, _ := e.vaultDevice(t, "dev-r"); return amt == "Amt-r" })

	e.v.Put(t, testPrefix+"/profiles/later", map[string]any{"AMT_PASSWORD": "L"})
	waitFor(t, 5*time.Second, "periodic pull", func() bool {
		p, err := e.store.Profile(context.Background(), "later")
		return err == nil && p.AMTPassword == "L"
	})
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Run returned %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

// TestRunReloginOncePerRefusalStreak: under a lasting refusal (the token's policy does not cover the site), Run
// logs in again once, on the first refusal, not at every backoff step (each login mints a token).
func TestRunReloginOncePerRefusalStreak(t *testing.T) {
	e := newEnv(t, Config{})
	clientLogs := &vaulttest.LockedWriter{}
	other, err := vault.New(vault.Config{Address: e.v.Addr, Auth: e.auth, Prefix: "sites/another-site", CallTimeout: 2 * time.Second,
		Logger: slog.New(slog.NewTextHandler(clientLogs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := other.Login(ctx); err != nil {
		t.Fatal(err)
	}
	s, err := New(ctx, e.store, other, Config{MinBackoff: 5 * time.Millisecond, MaxBackoff: 10 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(e.logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.PutDevice(ctx, "dev-a", cred("Amt-a", "", secrets.Pending)); err != nil {
		t.Fatal(err)
	}
	logins := func() int { return strings.Count(clientLogs.String(), `msg="vault login"`) }
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	waitFor(t, 5*time.Second, "a refused try", func() bool { return strings.Contains(s.State().LastError, "permission denied") })
	time.Sleep(300 * time.Millisecond) // dozens of backoff steps
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v", err)
	}
	if n := logins(); n != 2 {
		t.Fatalf("%d logins (the first one included), want 2: one re-login per streak of refusals", n)
	}
}
