package main

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/amtedge/amtedge/appliance/inventory"
)

func TestJournalFieldName(t *testing.T) {
	for key, want := range map[string]string{
		"device": "DEVICE_UUID", "failed_step": "STEP", "duration_ms": "DURATION_MS", "profile": "PROFILE",
		"domain": "DOMAIN", "err": "ERROR", "activations_ccm_succeeded": "ACTIVATIONS_CCM_SUCCEEDED",
		"tls.version": "TLS_VERSION", "_hidden": "ATTR_HIDDEN", "1st": "ATTR_1ST", "message": "ATTR_MESSAGE",
		"priority": "ATTR_PRIORITY", strings.Repeat("x", 80): strings.Repeat("X", 64),
	} {
		if got := journalFieldName(key); got != want {
			t.Errorf("journalFieldName(%q) = %q, want %q", key, got, want)
		}
	}
}

// Expiry warnings come once per threshold crossed, the 7- and 1-day ones as errors; an expired certificate is
// reported at every check.
func TestCertificateExpiryEvents(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	expiry := map[string]time.Time{
		"far": now.AddDate(1, 0, 0), "soon": now.Add(45 * 24 * time.Hour), "week": now.Add(6 * 24 * time.Hour),
		"gone": now.Add(-time.Hour),
	}
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	warned := map[string]int{}
	checkExpiry(log, expiry, warned, now)
	out := buf.String()
	for _, want := range []string{
		`level=WARN msg="provisioning certificate of domain soon expires in 45 days" event=certificate_expiring domain=soon days_left=45 threshold_days=60`,
		`level=ERROR msg="provisioning certificate of domain week expires in 6 days" event=certificate_expiring domain=week days_left=6 threshold_days=7`,
		`level=ERROR msg="provisioning certificate expired" event=certificate_expired domain=gone`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	if strings.Contains(out, "domain=far") {
		t.Errorf("a certificate a year from expiry raised an event:\n%s", out)
	}
	// The next day: nothing new for soon and week, expired again; a day later soon crosses nothing new either.
	buf.Reset()
	checkExpiry(log, expiry, warned, now.Add(24*time.Hour))
	if out := buf.String(); strings.Count(out, "\n") != 1 || !strings.Contains(out, "certificate_expired") {
		t.Errorf("second day:\n%s", out)
	}
	buf.Reset()
	checkExpiry(log, expiry, warned, now.Add(16*24*time.Hour)) // soon: 29 days left, crosses 30
	if out := buf.String(); !strings.Contains(out, "domain=soon days_left=29 threshold_days=30") {
		t.Errorf("30-day mark:\n%s", out)
	}
}

func TestStatsSnapshot(t *testing.T) {
	s := newStats()
	now := time.Now()
	for i := 1; i <= 10; i++ {
		s.record(inventory.Record{Verb: "activate", Success: true, Exchanges: 10, Started: now,
			Ended: now.Add(time.Duration(i) * 100 * time.Millisecond)}, "acm", now)
	}
	s.record(inventory.Record{Verb: "activate", Steps: []inventory.Step{{Name: "AdminSetup", Result: inventory.StepFailed}}}, "acm", now)
	s.record(inventory.Record{Verb: "deactivate", Success: true}, "", now)
	got := map[string]any{}
	snap := s.snapshot()
	for i := 0; i < len(snap); i += 2 {
		got[snap[i].(string)] = snap[i+1]
	}
	for k, want := range map[string]any{"activations_acm_succeeded": 10, "activations_acm_failed": 1, "activations_ccm_succeeded": 0,
		"deactivations_succeeded": 1, "failures_by_step": "AdminSetup=1", "wsman_exchanges_total": 100,
		"session_duration_p50_ms": int64(400), "session_duration_p90_ms": int64(900), "sessions_finished_interval": 12} {
		if got[k] != want {
			t.Errorf("%s = %v (%T), want %v", k, got[k], got[k], want)
		}
	}
	if ok, failed := s.today(now); ok != 10 || failed != 1 {
		t.Errorf("today: %d ok, %d failed", ok, failed)
	}
	if snap := s.snapshot(); snap[len(snap)-7] != 0 { // sessions_finished_interval resets
		t.Errorf("durations not reset: %v", snap)
	}
}
