package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/amtedge/amtedge/appliance/amtsim"
	"github.com/amtedge/amtedge/appliance/events"
)

// journaldChildEnv marks the re-executed test process that runs inside its own mount namespace.
const journaldChildEnv = "AMTEDGE_TEST_JOURNALD_CHILD"

// The box writes to a real systemd-journald with the native protocol: the test re-executes itself under
// `unshare -m`, so the tmpfs mounts that give journald its own /run/systemd and /run/log exist only in that child's
// mount namespace; the host's journal is never touched.
func TestJournald(t *testing.T) {
	if os.Getenv(journaldChildEnv) == "1" {
		journaldChild(t)
		return
	}
	needRoot(t, "for a private mount namespace")
	needTool(t, "unshare", "util-linux")
	needTool(t, "journalctl", "systemd")
	needTool(t, "/lib/systemd/systemd-journald", "systemd")
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", os.Args[0], "-test.run", "^TestJournald$", "-test.v")
	cmd.Env = cleanEnv(journaldChildEnv + "=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("--- PASS: TestJournald")) {
		t.Fatalf("the journald test in its own mount namespace failed: %v\n%s", err, out)
	}
	if testing.Verbose() {
		t.Logf("child:\n%s", out)
	}
}

func journaldChild(t *testing.T) {
	tmp := t.TempDir()
	// Journald's run-time directories on tmpfs; the persistent directory too, so Storage=auto cannot reach the
	// host's /var/log/journal; and a journald.conf that keeps everything volatile.
	for _, dir := range []string{"/run/systemd", "/run/log", "/var/log/journal"} {
		if _, err := os.Stat(dir); err != nil {
			continue
		}
		if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "mode=0755"); err != nil {
			t.Fatalf("mount tmpfs on %s: %v", dir, err)
		}
	}
	conf := filepath.Join(tmp, "journald.conf")
	if err := os.WriteFile(conf, []byte("[Journal]\nStorage=volatile\nForwardToSyslog=no\nForwardToWall=no\nReadKMsg=no\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("/etc/systemd/journald.conf"); err == nil {
		if err := syscall.Mount(conf, "/etc/systemd/journald.conf", "", syscall.MS_BIND, ""); err != nil {
			t.Fatalf("bind journald.conf: %v", err)
		}
	}
	jd := exec.Command("/lib/systemd/systemd-journald")
	var jdOut syncBuffer
	jd.Stdout, jd.Stderr = &jdOut, &jdOut
	if err := jd.Start(); err != nil {
		t.Fatalf("start systemd-journald: %v", err)
	}
	defer func() { _ = jd.Process.Kill(); _ = jd.Wait() }()
	for i := 0; ; i++ {
		if _, err := os.Stat("/run/systemd/journal/socket"); err == nil {
			break
		}
		if i == 600 { // 30 s
			t.Fatalf("systemd-journald made no socket:\n%s", jdOut.String())
		}
		time.Sleep(50 * time.Millisecond)
	}

	// The box with log.output auto, JOURNAL_STREAM unset and stderr a pipe: the journal socket decides.
	site := newTestSite(t)
	cfgPath := site.config(t, "127.0.0.1:0", "log: {output: auto}\nmetrics: {interval: 1s}\n")
	p := startBoxProcess(t, []string{os.Args[0], "serve", "--config", cfgPath}, cleanEnv(testMainEnv+"=1"))
	sum := site.activate(t, p.url, "acm", "jd-acm", 1, 0)
	if sum.Activated != 1 {
		t.Fatalf("acm activation: %+v", sum.Results)
	}
	uuid := amtsim.DeviceUUID("jd-acm", 0)
	// A failed activation (the device does not trust the root) for the STEP field.
	failed := site.activateUntrusted(t, p.url, "jd-untrusted")
	machineID, err := os.ReadFile("/etc/machine-id")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join("/run/log/journal", strings.TrimSpace(string(machineID)))
	var out []byte
	read := func() []map[string]any {
		t.Helper()
		o, err := exec.Command("journalctl", "--directory", dir, "-o", "json", "SYSLOG_IDENTIFIER=amtedge").Output()
		if err != nil {
			t.Fatalf("journalctl: %v", err)
		}
		out = o
		var recs []map[string]any
		sc := bufio.NewScanner(bytes.NewReader(o))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var r map[string]any
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				t.Fatalf("journalctl json: %v", err)
			}
			recs = append(recs, r)
		}
		return recs
	}
	// Wait (bounded, generously: CI machines are loaded) for a metrics record written after both activations.
	var m map[string]any
	for deadline := time.Now().Add(60 * time.Second); m == nil; time.Sleep(200 * time.Millisecond) {
		for _, r := range read() {
			if r["EVENT"] == events.Metrics && r["ACTIVATIONS_ACM_SUCCEEDED"] == "1" && r["ACTIVATIONS_ACM_FAILED"] == "1" && r["SESSIONS_LIVE"] == "0" {
				m = r
			}
		}
		if m == nil && time.Now().After(deadline) {
			t.Fatalf("no metrics record after the activations:\n%s", out)
		}
	}
	p.signal(t, syscall.SIGTERM)
	if err := p.wait(t, 60*time.Second); err != nil {
		t.Fatalf("box exit: %v\n%s", err, p.stderr.String())
	}
	records := read()
	find := func(event, device string) map[string]any {
		for _, r := range records {
			if r["EVENT"] == event && (device == "" || r["DEVICE_UUID"] == device) {
				return r
			}
		}
		t.Fatalf("no %s record for %q among %d records:\n%s", event, device, len(records), out)
		return nil
	}
	id := func(name string) string { e, _ := events.Lookup(name); return e.ID }
	expect := func(r map[string]any, want map[string]string) {
		t.Helper()
		for k, v := range want {
			if got := fmt.Sprint(r[k]); got != v {
				t.Errorf("%s record: %s=%q, want %q", r["EVENT"], k, got, v)
			}
		}
	}
	ok := find(events.ActivationSucceeded, uuid)
	expect(ok, map[string]string{"MESSAGE_ID": id(events.ActivationSucceeded), "PRIORITY": "6", "PROFILE": "acm",
		"DOMAIN": "demo", "MODE_BEFORE": "0", "MODE_AFTER": "2", "VERB": "activate", "MESSAGE": "session finished"})
	for _, k := range []string{"DURATION_MS", "EXCHANGES", "STATUS"} {
		if r, present := ok[k]; !present || r == "" {
			t.Errorf("activation record lacks %s", k)
		}
	}
	expect(find(events.ActivationStarted, uuid), map[string]string{"MESSAGE_ID": id(events.ActivationStarted), "PROFILE": "acm"})
	bad := find(events.ActivationFailed, failed)
	expect(bad, map[string]string{"MESSAGE_ID": id(events.ActivationFailed), "PRIORITY": "4"})
	if bad["STEP"] == nil || bad["STEP"] == "" {
		t.Errorf("failed activation record lacks STEP: %v", bad)
	}
	expect(m, map[string]string{"MESSAGE_ID": id(events.Metrics), "ACTIVATIONS_ACM_SUCCEEDED": "1", "ACTIVATIONS_ACM_FAILED": "1",
		"SEAL_MODE": "software", "VAULT": "not_configured", "SESSIONS_LIVE": "0", "CERT_FIRST_EXPIRY_DOMAIN": "demo"})
	for _, k := range []string{"WSMAN_EXCHANGES_TOTAL", "FAILURES_BY_STEP", "SESSION_DURATION_P50_MS", "CERT_DAYS_LEFT_MIN", "UPTIME_S",
		"OUTBOX_LENGTH", "OUTBOX_OLDEST_AGE_S"} {
		if _, present := m[k]; !present {
			t.Errorf("metrics record lacks %s", k)
		}
	}
	// Attributes bound with Logger.With (the agent server's per-session logger) become fields too.
	var session map[string]any
	for _, r := range records {
		if r["MESSAGE"] == "agent session started" && r["DEVICE_UUID"] == uuid {
			session = r
		}
	}
	if session == nil || session["SESSION_ID"] == nil || session["REMOTE_ADDR"] == nil || session["VERB"] != "activate" {
		t.Errorf("agent session record: %v", session)
	}
	expect(find(events.Started, ""), map[string]string{"MESSAGE_ID": id(events.Started)})
	expect(find(events.Stopping, ""), map[string]string{"MESSAGE_ID": id(events.Stopping)})
	expect(find(events.SealSoftware, ""), map[string]string{"MESSAGE_ID": id(events.SealSoftware), "PRIORITY": "4"})
	if s := p.stderr.String(); strings.Contains(s, "level=INFO") {
		t.Errorf("records went to stderr instead of the journal:\n%s", s)
	}
	// The whole journal (every field of every record) holds none of the test's passwords.
	all, err := exec.Command("journalctl", "--directory", dir, "-o", "export").Output()
	if err != nil {
		t.Fatalf("journalctl export: %v", err)
	}
	assertNoSecrets(t, "the journal", string(all), testAMTPassword, testMEBxPassword, site.pfxPassword)
}

// activateUntrusted runs one ACM activation of a device that trusts no root of the site: it fails at the
// certificate step. It returns the device's UUID.
func (s *testSite) activateUntrusted(t *testing.T, url, seed string) string {
	t.Helper()
	saved := s.rootHash
	s.rootHash = strings.Repeat("ab", 32)
	defer func() { s.rootHash = saved }()
	if sum := s.activate(t, url, "acm", seed, 1, 0); sum.Failed != 1 {
		t.Fatalf("an untrusting device was activated: %+v", sum.Results)
	}
	return amtsim.DeviceUUID(seed, 0)
}
