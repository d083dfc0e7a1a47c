package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/amtedge/amtedge/appliance/agent"
	"github.com/amtedge/amtedge/appliance/ui"
	"github.com/amtedge/amtedge/appliance/web"
)

// The admin listener (admin.listen, default :8443; HTTPS, TLS 1.2 minimum) serves the web UI (appliance/ui), the
// REST API (appliance/web, RPS's admin routes and the box's own) behind admin accounts and API tokens
// (appliance/access), and Prometheus GET /metrics.
//
// The metrics are read at scrape time from the same stats the journald metrics record reads (countRecord feeds
// both), so a scrape and the record never disagree. They live in the admin server's own registry, not in
// client_golang's global default one: two boxes in one process (the tests) do not share counters.

// adminServer is the running admin listener.
type adminServer struct {
	listener  net.Listener
	activated bool // the listener came from systemd (FileDescriptorName=admin)
	srv       *http.Server
	served    chan struct{} // closed when the serving loop has returned
	// cert is admin.tlsCertFile/tlsKeyFile when set; nil serves the agent listener's certificate (b.cert).
	cert atomic.Pointer[tls.Certificate]
}

// closePassed closes a socket systemd passed that the box does not take after all (start failed, or disabled).
func closePassed(l net.Listener) {
	if l != nil {
		l.Close()
	}
}

// startAdmin starts the admin listener on passed (systemd's socket named "admin") or on admin.listen. An empty
// admin.listen disables it: a passed socket is then closed, with a warning. passed is closed on every error.
func (b *box) startAdmin(passed net.Listener) error {
	listen := b.cfg.Admin.listen()
	if listen == "" {
		if passed != nil {
			b.log.Warn("systemd passed the admin socket, but admin.listen is \"\" (disabled); closing it: remove the "+
				"admin ListenStream from the socket units", "addr", passed.Addr().String())
			passed.Close()
		}
		return nil
	}
	own, err := adminCert(b.cfg)
	if err != nil {
		closePassed(passed)
		return err
	}
	handler, err := b.adminHandler()
	if err != nil {
		closePassed(passed)
		return err
	}
	a := &adminServer{listener: passed, activated: passed != nil, served: make(chan struct{})}
	a.cert.Store(own)
	if a.listener == nil {
		if a.listener, err = net.Listen("tcp", listen); err != nil {
			return fmt.Errorf("admin.listen: %w", err)
		}
	}
	a.srv = &http.Server{
		Handler: handler,
		TLSConfig: &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			if c := a.cert.Load(); c != nil {
				return c, nil
			}
			return b.cert.Load(), nil // read per handshake: a reload's new agent certificate is served here too
		}},
		ReadHeaderTimeout: 10 * time.Second,
		WriteTimeout:      time.Minute,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(b.log.Handler(), slog.LevelDebug),
	}
	// Shutdown waits for requests to finish but does not cancel them: the live activity streams (SSE) would hold
	// it for its whole grace. Their context ends when Shutdown begins, so they return at once.
	streams, endStreams := context.WithCancel(context.Background())
	a.srv.BaseContext = func(net.Listener) context.Context { return streams }
	a.srv.RegisterOnShutdown(endStreams)
	go func() {
		defer endStreams()
		err := a.srv.ServeTLS(a.listener, "", "")
		// The admin listener failing does not stop the box (provisioning goes on without the UI): it is logged
		// at once, and the UI, the API and /metrics are back after a restart.
		if !errors.Is(err, http.ErrServerClosed) {
			b.log.Error("admin listener failed; the web UI, the REST API and /metrics are unavailable until a restart", "err", err)
		}
		close(a.served)
	}()
	b.admin = a
	b.log.Info("admin listener serving the web UI, the REST API and /metrics", "listen", a.listener.Addr().String(), "socket_activated", a.activated)
	return nil
}

// stopAdmin closes the admin listener, letting running scrapes finish within grace.
func (b *box) stopAdmin(grace time.Duration) {
	a := b.admin
	if a == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := a.srv.Shutdown(ctx); err != nil {
		_ = a.srv.Close()
	}
	<-a.served
}

// adminCert loads admin.tlsCertFile/tlsKeyFile; nil when they are not set (the agent certificate is served).
func adminCert(cfg *Config) (*tls.Certificate, error) {
	if cfg.Admin.TLSCertFile == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(cfg.path(cfg.Admin.TLSCertFile), cfg.path(cfg.Admin.TLSKeyFile))
	if err != nil {
		return nil, fmt.Errorf("admin.tlsCertFile/tlsKeyFile: %w", err)
	}
	return &cert, nil
}

// adminURL is the admin listener's base URL shown in the banner (no trailing slash).
func adminURL(addr net.Addr) string {
	return strings.TrimSuffix(strings.Replace(agentURL(addr), "wss://", "https://", 1), "/activate")
}

// adminHandler routes the admin listener: Prometheus GET /metrics (open, like any exporter: counters and gauges,
// no secret), the REST API under /api/ behind an API token or a browser session (appliance/access), and the web UI
// at every other path (appliance/ui), which signs the browser in itself.
func (b *box) adminHandler() (http.Handler, error) {
	reg := b.newRegistry()
	mux := http.NewServeMux()
	// InstrumentMetricHandler adds promhttp_metric_handler_requests_total and _requests_in_flight.
	mux.Handle("GET /metrics", promhttp.InstrumentMetricHandler(reg, promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		Registry: reg, // promhttp_metric_handler_errors_total
		ErrorLog: slog.NewLogLogger(b.log.Handler(), slog.LevelWarn),
		Timeout:  30 * time.Second,
	})))
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", "GET, HEAD")
		web.WriteJSON(w, http.StatusMethodNotAllowed, web.ErrorBody{Error: "Method Not Allowed",
			Message: r.Method + " /metrics is not allowed: use GET"})
	})
	mux.Handle("/api/", b.access.API(b.withGuardActor(web.New(b.webConfig()))))
	cfg := ui.Config{Status: b.view(), Sessions: b.agents, Devices: b.inventory, Catalog: b.catalog.Catalog,
		Activity: b.activity, Auth: b.access, Reveal: b.revealPassword}
	if b.syncer != nil {
		cfg.Sync = syncNow{b}.SyncNow
	}
	pages, err := ui.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("admin web UI: %w", err)
	}
	mux.Handle("/", pages)
	return mux, nil
}

// withGuardActor names the signed-in user or token (access.Guard.User) as the actor of catalog changes.
func (b *box) withGuardActor(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, _ := b.access.User(r)
		next.ServeHTTP(w, r.WithContext(web.WithActor(r.Context(), user)))
	})
}

// webConfig is the REST API's view of the box, the same on the control socket and the admin listener.
func (b *box) webConfig() web.Config {
	cfg := web.Config{Status: b.view(), Sessions: b.agents, Devices: b.inventory, Catalog: b.catalog.Catalog, Version: version}
	if b.syncer != nil {
		cfg.Sync = syncNow{b}
	}
	return cfg
}

// view is the box's state as the API and the UI read it.
func (b *box) view() *boxView {
	return &boxView{b: b, sealMode: b.cfg.Custody.Seal, listen: b.listener.Addr().String()}
}

// newRegistry is the box's own Prometheus registry: the box's metrics and the Go runtime and process collectors.
func (b *box) newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "amtedge_sessions_live", Help: "Agent sessions running now."},
			func() float64 { return float64(b.agents.Live()) }),
		newBoxCollector(b),
	)
	return reg
}

// sessionBuckets are the upper bounds (seconds) of amtedge_session_duration_seconds: an activation takes seconds
// (CCM) to a minute or two (ACM on slow firmware); sessions time out after agent.sessionTimeout (10m).
var sessionBuckets = [...]float64{0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600}

// durationHistogram is the cumulative session-duration histogram, kept in stats next to the record's counters.
type durationHistogram struct {
	counts [len(sessionBuckets)]uint64 // per bucket, not cumulative
	sum    float64                     // seconds
	count  uint64
}

func (h *durationHistogram) observe(d time.Duration) {
	s := d.Seconds()
	h.sum += s
	h.count++
	for i, le := range sessionBuckets {
		if s <= le {
			h.counts[i]++
			return
		}
	}
}

// statsCounters is a consistent copy of the counters in stats, taken under its lock for one scrape.
type statsCounters struct {
	results     map[string]int
	failedSteps map[string]int
	exchanges   int
	durations   durationHistogram
}

func (s *stats) counters() statsCounters {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := statsCounters{results: make(map[string]int, len(s.results)), failedSteps: make(map[string]int, len(s.failedSteps)),
		exchanges: s.exchanges, durations: s.histogram}
	for k, v := range s.results {
		c.results[k] = v
	}
	for k, v := range s.failedSteps {
		c.failedSteps[k] = v
	}
	return c
}

// boxCollector turns the box's stats and state into metrics at each scrape.
type boxCollector struct {
	b                                             *box
	activations, deactivations, maintenance       *prometheus.Desc
	failures, exchanges, durations                *prometheus.Desc
	sealDegraded, outboxLength, outboxAge, expiry *prometheus.Desc
	vaultReachable                                *prometheus.Desc
}

func newBoxCollector(b *box) *boxCollector {
	d := prometheus.NewDesc
	return &boxCollector{b: b,
		activations:   d("amtedge_activations_total", "Finished activation sessions, by mode (ccm, acm, unknown profile) and result.", []string{"mode", "result"}, nil),
		deactivations: d("amtedge_deactivations_total", "Finished deactivation sessions, by result.", []string{"result"}, nil),
		maintenance:   d("amtedge_maintenance_total", "Finished maintenance sessions, by result.", []string{"result"}, nil),
		failures:      d("amtedge_failures_total", "Failed sessions, by the step that failed.", []string{"step"}, nil),
		exchanges:     d("amtedge_wsman_exchanges_total", "WS-Management exchanges relayed through agents.", nil, nil),
		durations:     d("amtedge_session_duration_seconds", "Duration of finished sessions.", nil, nil),
		sealDegraded:  d("amtedge_seal_degraded", "1 when the sealed store cannot be unsealed (run amtedge store recover).", nil, nil),
		outboxLength:  d("amtedge_outbox_length", "Entries waiting in the store's outbox.", nil, nil),
		outboxAge:     d("amtedge_outbox_oldest_age_seconds", "Age of the oldest outbox entry; 0 when empty.", nil, nil),
		expiry:        d("amtedge_certificate_expiry_days", "Whole days until the domain's provisioning certificate expires (negative: expired).", []string{"domain"}, nil),
		vaultReachable: d("amtedge_vault_reachable", "1 when the central Vault answers; 0 when not, or not configured.",
			nil, nil),
	}
}

func (c *boxCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.activations, c.deactivations, c.maintenance, c.failures, c.exchanges,
		c.durations, c.sealDegraded, c.outboxLength, c.outboxAge, c.expiry, c.vaultReachable} {
		ch <- d
	}
}

func (c *boxCollector) Collect(ch chan<- prometheus.Metric) {
	b, now := c.b, time.Now()
	counter := func(d *prometheus.Desc, v int, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	// The same keys and label values as the record's activations_<mode>_<result>, deactivations_<result>, …
	s := b.stats.counters()
	for _, mode := range []string{"ccm", "acm", "unknown"} {
		for _, result := range []string{"succeeded", "failed"} {
			counter(c.activations, s.results[agent.VerbActivate+"/"+mode+"/"+result], mode, result)
		}
	}
	for _, result := range []string{"succeeded", "failed"} {
		counter(c.deactivations, s.results[agent.VerbDeactivate+"//"+result], result)
		counter(c.maintenance, s.results[agent.VerbMaintenance+"//"+result], result)
	}
	for step, n := range s.failedSteps {
		counter(c.failures, n, step)
	}
	counter(c.exchanges, s.exchanges)
	buckets := make(map[float64]uint64, len(sessionBuckets))
	var cum uint64
	for i, le := range sessionBuckets {
		cum += s.durations.counts[i]
		buckets[le] = cum
	}
	ch <- prometheus.MustNewConstHistogram(c.durations, s.durations.count, s.durations.sum, buckets)

	degraded := 0.0
	if b.degraded != "" {
		degraded = 1
	}
	gauge(c.sealDegraded, degraded)
	if b.store != nil { // degraded: no outbox to read; the series are absent rather than a misleading 0
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		n, age, err := b.outbox(ctx, now)
		cancel()
		if err != nil {
			b.log.Warn("metrics: outbox unreadable", "err", err)
		} else {
			gauge(c.outboxLength, float64(n))
			gauge(c.outboxAge, age.Seconds())
		}
	}
	for name, exp := range b.catalog.Expiry() {
		gauge(c.expiry, float64(certDaysLeft(exp, now)), name)
	}
	_, reachable, _ := b.vaultState()
	v := 0.0
	if reachable {
		v = 1
	}
	gauge(c.vaultReachable, v)
}
