package main

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/amtedge/amtedge/appliance/agent"
	"github.com/amtedge/amtedge/appliance/events"
	"github.com/amtedge/amtedge/appliance/inventory"
)

// stats counts finished sessions for the STATUS line and the metrics record. Counters run from the box's start
// (like Prometheus counters: a central collector takes differences); durations are per metrics interval.
type stats struct {
	mu          sync.Mutex
	results     map[string]int // "activate/acm/succeeded", "deactivate//failed", …
	failedSteps map[string]int
	exchanges   int
	durations   []time.Duration   // sessions finished since the last metrics record, bounded
	histogram   durationHistogram // all session durations since start, for Prometheus (admin.go)
	day         string            // local date of the today counters
	todayOK     int
	todayFailed int
	changed     chan struct{} // poked (never blocking) when a session finished: the STATUS line is refreshed
}

// maxDurations bounds the per-interval duration samples: beyond it the percentiles come from the first ones.
const maxDurations = 100000

func newStats() *stats {
	return &stats{results: map[string]int{}, failedSteps: map[string]int{}, changed: make(chan struct{}, 1)}
}

// record counts one finished session; mode is "ccm" or "acm" for activations (from the profile), "" otherwise.
func (s *stats) record(rec inventory.Record, mode string, now time.Time) {
	result := "failed"
	if rec.Success {
		result = "succeeded"
	}
	s.mu.Lock()
	s.results[rec.Verb+"/"+mode+"/"+result]++
	if !rec.Success {
		step := "(before any step)"
		for i := len(rec.Steps) - 1; i >= 0; i-- {
			if rec.Steps[i].Result == inventory.StepFailed {
				step = rec.Steps[i].Name
				break
			}
		}
		s.failedSteps[step]++
	}
	s.exchanges += rec.Exchanges
	if len(s.durations) < maxDurations {
		s.durations = append(s.durations, rec.Duration())
	}
	s.histogram.observe(rec.Duration())
	if rec.Verb == agent.VerbActivate {
		s.rollDay(now)
		if rec.Success {
			s.todayOK++
		} else {
			s.todayFailed++
		}
	}
	s.mu.Unlock()
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

func (s *stats) rollDay(now time.Time) {
	if d := now.Format("2006-01-02"); d != s.day {
		s.day, s.todayOK, s.todayFailed = d, 0, 0
	}
}

func (s *stats) today(now time.Time) (ok, failed int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rollDay(now)
	return s.todayOK, s.todayFailed
}

// snapshot returns the metrics record's counter attributes and resets the per-interval durations.
func (s *stats) snapshot() []any {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []any
	for _, mode := range []string{"ccm", "acm", "unknown"} {
		for _, result := range []string{"succeeded", "failed"} {
			out = append(out, "activations_"+mode+"_"+result, s.results[agent.VerbActivate+"/"+mode+"/"+result])
		}
	}
	for _, result := range []string{"succeeded", "failed"} {
		out = append(out, "deactivations_"+result, s.results[agent.VerbDeactivate+"//"+result],
			"maintenance_"+result, s.results[agent.VerbMaintenance+"//"+result])
	}
	steps := make([]string, 0, len(s.failedSteps))
	for name, n := range s.failedSteps {
		steps = append(steps, fmt.Sprintf("%s=%d", name, n))
	}
	sort.Strings(steps)
	out = append(out, "failures_by_step", strings.Join(steps, "; "), "wsman_exchanges_total", s.exchanges,
		"sessions_finished_interval", len(s.durations))
	d := s.durations
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	for _, p := range []int{50, 90, 99} {
		var v int64
		if len(d) > 0 {
			v = d[int(math.Ceil(float64(p)/100*float64(len(d))))-1].Milliseconds()
		}
		out = append(out, fmt.Sprintf("session_duration_p%d_ms", p), v)
	}
	s.durations = s.durations[:0]
	return out
}

// statusLine is the one-line STATUS= the box keeps current for `systemctl status`.
func (b *box) statusLine(now time.Time) string {
	ok, failed := b.stats.today(now)
	sealState := b.cfg.Custody.Seal
	if b.degraded != "" {
		sealState += " DEGRADED (run amtedge store recover)"
	}
	vaultWord, _, _ := b.vaultState()
	return fmt.Sprintf("sessions: %d live; activations today: %d ok, %d failed; seal: %s; Vault: %s",
		b.agents.Live(), ok, failed, sealState, vaultWord)
}

// logMetrics writes the periodic metrics record.
func (b *box) logMetrics(ctx context.Context, now time.Time) {
	attrs := []any{"event", events.Metrics}
	attrs = append(attrs, b.stats.snapshot()...)
	attrs = append(attrs, "sessions_live", b.agents.Live(), "seal_mode", b.cfg.Custody.Seal,
		"vault", strings.ReplaceAll(vaultWordOnly(b), " ", "_"), "uptime_s", int64(now.Sub(b.started).Seconds()),
		"interval_s", int64(b.cfg.Metrics.Interval.Seconds()))
	first, firstDomain := time.Time{}, ""
	for name, exp := range b.catalog.Expiry() {
		if first.IsZero() || exp.Before(first) {
			first, firstDomain = exp, name
		}
	}
	if firstDomain != "" {
		attrs = append(attrs, "cert_days_left_min", certDaysLeft(first, now),
			"cert_first_expiry_domain", firstDomain)
	}
	if b.store == nil {
		attrs = append(attrs, "outbox_err", "degraded: the sealed store is not open")
	} else if n, age, err := b.outbox(ctx, now); err != nil {
		attrs = append(attrs, "outbox_err", err.Error())
	} else {
		attrs = append(attrs, "outbox_length", n, "outbox_oldest_age_s", int64(age.Seconds()))
	}
	b.log.Info("metrics", attrs...)
}

// outbox is the outbox's length and the age of its oldest entry (0 when empty), for the record and /metrics.
// The store must be open.
func (b *box) outbox(ctx context.Context, now time.Time) (int, time.Duration, error) {
	n, oldest, err := b.store.OutboxSummary(ctx)
	if err != nil || n == 0 {
		return 0, 0, err
	}
	return n, now.Sub(oldest), nil
}

// certDaysLeft is whole days until exp (negative once expired), for the record and /metrics.
func certDaysLeft(exp, now time.Time) int64 { return int64(math.Floor(exp.Sub(now).Hours() / 24)) }

// expiryThresholds are the days-left marks that raise a certificate_expiring event, tightest last.
var expiryThresholds = []int{60, 30, 7, 1}

// checkExpiry raises certificate_expiring once per domain and threshold crossed (60, 30, 7, 1 days left), and
// certificate_expired at every check once a certificate has expired. warned remembers the last threshold per
// domain, so a daily check does not repeat a warning; a restart repeats it once, which is wanted.
func checkExpiry(log *slog.Logger, expiry map[string]time.Time, warned map[string]int, now time.Time) {
	names := make([]string, 0, len(expiry))
	for name := range expiry {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		exp := expiry[name]
		if !now.Before(exp) {
			log.Error("provisioning certificate expired", "event", events.CertificateExpired, "domain", name,
				"expires", exp.UTC().Format(time.RFC3339))
			continue
		}
		days := int(exp.Sub(now).Hours() / 24)
		threshold := 0
		for _, t := range expiryThresholds {
			if days < t {
				threshold = t
			}
		}
		if threshold == 0 || warned[name] == threshold {
			continue
		}
		warned[name] = threshold
		level := slog.LevelWarn
		if threshold <= 7 {
			level = slog.LevelError
		}
		log.Log(context.Background(), level, fmt.Sprintf("provisioning certificate of domain %s expires in %d days", name, days),
			"event", events.CertificateExpiring, "domain", name, "days_left", days, "threshold_days", threshold,
			"expires", exp.UTC().Format(time.RFC3339))
	}
}

func vaultWordOnly(b *box) string {
	w, _, _ := b.vaultState()
	return w
}
