package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/amtedge/amtedge/appliance/amtsim"
)

// startAdminBox starts a box on the test site with a JSON log (to read the metrics record back) and returns it.
func startAdminBox(t *testing.T, extra string) (*box, *testSite, *syncBuffer) {
	t.Helper()
	return startSiteBox(t, extra, func(w io.Writer) slog.Handler { return slog.NewJSONHandler(w, nil) })
}

// adminClient trusts the box's self-signed certificate.
func adminClient(t *testing.T, s *testSite) *http.Client {
	t.Helper()
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: s.tlsConfig(t)}}
}

// scrape fetches /metrics from addr and parses the text exposition format.
func scrape(t *testing.T, c *http.Client, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := c.Get("https://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET /metrics: %s\n%s", resp.Status, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// metricValue is the value of name's series with exactly labels (name=value pairs); ok false when absent.
func metricValue(fams map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
	want := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
next:
	for _, m := range f.GetMetric() {
		if len(m.GetLabel()) != len(want) {
			continue
		}
		for _, l := range m.GetLabel() {
			if want[l.GetName()] != l.GetValue() {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Untyped != nil:
			return m.GetUntyped().GetValue(), true
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
}

// lastMetricsRecord is the last "metrics" record in a JSON log.
func lastMetricsRecord(t *testing.T, log string) map[string]any {
	t.Helper()
	var rec map[string]any
	sc := bufio.NewScanner(strings.NewReader(log))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil && m["msg"] == "metrics" {
			rec = m
		}
	}
	if rec == nil {
		t.Fatalf("no metrics record in the log:\n%s", log)
	}
	return rec
}

// /metrics and the journald metrics record count the same sessions: both read the stats countRecord feeds.
func TestAdminMetricsAgreeWithRecord(t *testing.T) {
	b, s, logs := startAdminBox(t, "")
	url := "wss://" + b.listener.Addr().String() + "/activate"
	if sum := s.activate(t, url, "ccm", "m-ccm", 3, 0); sum.Activated != 3 {
		t.Fatalf("ccm: %+v", sum.Results)
	}
	if sum := s.activate(t, url, "acm", "m-acm", 2, 0); sum.Activated != 2 {
		t.Fatalf("acm: %+v", sum.Results)
	}
	// Devices that do not trust the provisioning root: ACM activations that fail at a step.
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	untrusted := amtsim.Simulate(ctx, amtsim.SimulateConfig{URL: url, TLS: s.tlsConfig(t), Profile: "acm", Devices: 2,
		Device: func(i int) amtsim.DeviceConfig {
			return amtsim.DeviceConfig{UUID: amtsim.DeviceUUID("m-untrusted", i), DHCPDNSSuffix: "demo.amtedge.test"}
		}})
	if untrusted.Failed != 2 {
		t.Fatalf("untrusted devices: %+v", untrusted.Results)
	}

	fams := scrape(t, adminClient(t, s), b.admin.listener.Addr().String())
	b.logMetrics(context.Background(), time.Now())
	rec := lastMetricsRecord(t, logs.String())
	num := func(key string) float64 {
		t.Helper()
		v, ok := rec[key].(float64)
		if !ok {
			t.Fatalf("the metrics record has no number %s: %v", key, rec)
		}
		return v
	}
	same := func(key string, name string, labels ...string) {
		t.Helper()
		got, ok := metricValue(fams, name, labels...)
		if !ok {
			t.Errorf("/metrics lacks %s%v", name, labels)
			return
		}
		if want := num(key); got != want {
			t.Errorf("%s%v = %v, the record's %s = %v", name, labels, got, key, want)
		}
	}
	for _, mode := range []string{"ccm", "acm", "unknown"} {
		for _, result := range []string{"succeeded", "failed"} {
			same("activations_"+mode+"_"+result, "amtedge_activations_total", "mode", mode, "result", result)
		}
	}
	for _, result := range []string{"succeeded", "failed"} {
		same("deactivations_"+result, "amtedge_deactivations_total", "result", result)
		same("maintenance_"+result, "amtedge_maintenance_total", "result", result)
	}
	same("wsman_exchanges_total", "amtedge_wsman_exchanges_total")
	same("sessions_live", "amtedge_sessions_live")
	same("sessions_finished_interval", "amtedge_session_duration_seconds") // the first interval: all sessions
	same("outbox_length", "amtedge_outbox_length")
	same("cert_days_left_min", "amtedge_certificate_expiry_days", "domain", rec["cert_first_expiry_domain"].(string))
	if age, _ := metricValue(fams, "amtedge_outbox_oldest_age_seconds"); math.Abs(age-num("outbox_oldest_age_s")) > 2 {
		t.Errorf("outbox age %v s, the record's %v s", age, num("outbox_oldest_age_s"))
	}
	// failures_by_step is "step=n; step=n".
	var steps []string
	for _, m := range fams["amtedge_failures_total"].GetMetric() {
		steps = append(steps, fmt.Sprintf("%s=%d", m.GetLabel()[0].GetValue(), int(m.GetCounter().GetValue())))
	}
	slices.Sort(steps)
	if got, want := strings.Join(steps, "; "), rec["failures_by_step"]; got != want {
		t.Errorf("amtedge_failures_total %q, the record's failures_by_step %q", got, want)
	}

	// And the numbers are the sessions that ran.
	for _, c := range []struct {
		mode, result string
		want         float64
	}{{"ccm", "succeeded", 3}, {"acm", "succeeded", 2}, {"acm", "failed", 2}, {"ccm", "failed", 0}} {
		if got, _ := metricValue(fams, "amtedge_activations_total", "mode", c.mode, "result", c.result); got != c.want {
			t.Errorf("activations %s/%s = %v, want %v", c.mode, c.result, got, c.want)
		}
	}
	if len(steps) == 0 {
		t.Error("no amtedge_failures_total series after failed activations")
	}
	if n, _ := metricValue(fams, "amtedge_wsman_exchanges_total"); n == 0 {
		t.Error("no WS-Management exchanges counted")
	}
	if h := fams["amtedge_session_duration_seconds"].GetMetric()[0].GetHistogram(); h.GetSampleCount() != 7 || h.GetSampleSum() <= 0 {
		t.Errorf("session duration histogram: %v", h)
	}
	for name, want := range map[string]float64{"amtedge_seal_degraded": 0, "amtedge_vault_reachable": 0} {
		if got, ok := metricValue(fams, name); !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", name, got, ok, want)
		}
	}
	for _, std := range []string{"go_goroutines", "process_resident_memory_bytes", "promhttp_metric_handler_requests_total"} {
		if fams[std] == nil {
			t.Errorf("/metrics lacks the standard %s", std)
		}
	}
}

// The admin listener serves /metrics openly, the REST API only with credentials and the UI only to a signed-in
// browser, over TLS 1.2 or newer.
func TestAdminRoutes(t *testing.T) {
	b, s, _ := startAdminBox(t, "")
	c := adminClient(t, s)
	addr := b.admin.listener.Addr().String()
	get := func(path string) (*http.Response, string) {
		t.Helper()
		resp, err := c.Get("https://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(body)
	}
	if resp, body := get("/"); resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/login" {
		t.Errorf("GET / without a session ended at %s: %s %.200s", resp.Request.URL, resp.Status, body)
	}
	resp, body := get("/api/v1/devices")
	var e struct{ Error, Message string }
	if resp.StatusCode != http.StatusUnauthorized || json.Unmarshal([]byte(body), &e) != nil || e.Error != "Unauthorized" ||
		resp.Header.Get("WWW-Authenticate") == "" {
		t.Errorf("GET /api/v1/devices without credentials: %s %s", resp.Status, body)
	}
	if resp, _ := get("/metrics/x"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /metrics/x: %s", resp.Status)
	}
	if resp, body := get("/metrics"); resp.StatusCode != http.StatusOK || !strings.Contains(body, "amtedge_sessions_live") {
		t.Errorf("GET /metrics: %s", resp.Status)
	}
	resp, err := c.Post("https://"+addr+"/metrics", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /metrics: %s", resp.Status)
	}
	if _, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS11}); err == nil { //nolint:gosec // checks the refusal
		t.Error("the admin listener accepted TLS 1.1")
	}
	var banner bytes.Buffer
	b.printBanner(&banner, "")
	if !strings.Contains(banner.String(), "Prometheus metrics: https://127.0.0.1:") ||
		!strings.Contains(banner.String(), "web UI and REST API: https://127.0.0.1:") || !strings.Contains(banner.String(), "admin init") {
		t.Errorf("banner:\n%s", banner.String())
	}
}

// The admin listener serves the agent certificate and follows its reloads, unless it has its own, which a reload
// can change too.
func TestAdminCertificateReload(t *testing.T) {
	b, s, _ := startAdminBox(t, "")
	serial := func(addr string) string {
		t.Helper()
		c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // reads the serial only
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if v := c.ConnectionState().Version; v < tls.VersionTLS12 {
			t.Errorf("TLS version %x", v)
		}
		return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	agentAddr, adminAddr := b.listener.Addr().String(), b.admin.listener.Addr().String()
	before := serial(adminAddr)
	if before != serial(agentAddr) {
		t.Fatal("the admin listener does not serve the agent certificate")
	}
	for _, d := range []string{"newtls", "admintls"} {
		dir := filepath.Join(s.dir, d)
		if err := ensureSelfSigned(dir, filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")); err != nil {
			t.Fatal(err)
		}
	}
	cfgPath := filepath.Join(s.dir, "amtedge.yaml")
	reload := func(admin string) {
		t.Helper()
		y := "stateDir: state\nsite: site.yaml\ncustody: {seal: software}\n" +
			"agent: {listen: '127.0.0.1:0', tlsCertFile: newtls/c.pem, tlsKeyFile: newtls/k.pem}\nadmin: " + admin + "\n"
		if err := os.WriteFile(cfgPath, []byte(y), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := b.applyReload(cfgPath); err != nil {
			t.Fatalf("reload: %v", err)
		}
	}
	reload("{listen: '127.0.0.1:0'}")
	agentNew := serial(agentAddr)
	if agentNew == before || serial(adminAddr) != agentNew {
		t.Fatalf("after the reload: agent %s, admin %s, before %s", agentNew, serial(adminAddr), before)
	}
	reload("{listen: '127.0.0.1:0', tlsCertFile: admintls/c.pem, tlsKeyFile: admintls/k.pem}")
	own := serial(adminAddr)
	if own == agentNew || serial(agentAddr) != agentNew {
		t.Fatalf("admin.tlsCertFile: admin %s, agent %s", own, serial(agentAddr))
	}
	// A bad admin certificate is refused like a bad agent one, and changes nothing.
	if err := os.WriteFile(cfgPath, []byte("stateDir: state\nsite: site.yaml\ncustody: {seal: software}\n"+
		"admin: {tlsCertFile: nope.pem, tlsKeyFile: nope.key}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := b.applyReload(cfgPath); err == nil || !strings.Contains(err.Error(), "admin.tlsCertFile") {
		t.Errorf("bad admin certificate: %v", err)
	}
	if serial(adminAddr) != own {
		t.Error("a refused reload changed the admin certificate")
	}
	// A changed admin.listen needs a restart: the box says so and keeps listening where it did.
	reload("{listen: '127.0.0.1:1'}")
	if serial(adminAddr) != agentNew || b.cfg.Admin.listen() != "127.0.0.1:0" {
		t.Errorf("admin after a listen change: %s, listen %s", serial(adminAddr), b.cfg.Admin.listen())
	}
}

// admin.listen: "" disables the admin listener; the default is :8443; bad values name the key.
func TestAdminConfig(t *testing.T) {
	b, _, _ := startAdminBox(t, "admin: {listen: ''}\n")
	if b.admin != nil {
		t.Fatalf("admin.listen '' started a listener on %s", b.admin.listener.Addr())
	}
	var banner bytes.Buffer
	b.printBanner(&banner, "")
	if strings.Contains(banner.String(), "metrics") {
		t.Errorf("banner of a box without admin listener:\n%s", banner.String())
	}
	cfg, err := parseConfig([]byte("demo: {enabled: true}\n"), ".")
	if err != nil || cfg.Admin.listen() != ":8443" {
		t.Fatalf("default admin.listen: %v %v", cfg, err)
	}
	for _, tc := range []struct{ yaml, want string }{
		{"admin: {listen: nonsense}", `admin.listen: "nonsense" is not host:port`},
		{"admin: {tlsCertFile: a.pem}", "admin.tlsCertFile: tlsCertFile and tlsKeyFile go together"},
	} {
		if _, err := parseConfig([]byte("demo: {enabled: true}\n"+tc.yaml), "."); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.yaml, err, tc.want)
		}
	}
	// admin.listen in use: the box does not start, and says which key.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	s := newTestSite(t)
	cfg, err = loadConfig(s.config(t, "127.0.0.1:0", "admin: {listen: '"+busy.Addr().String()+"'}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := startBox(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil))); err == nil ||
		!strings.Contains(err.Error(), "admin.listen") {
		t.Fatalf("admin.listen in use: %v", err)
	}
}

// Under socket activation the box takes the admin socket systemd passed under the name "admin" (here both the
// agent and the admin address in the config are taken, so binding either would fail).
func TestAdminSocketActivation(t *testing.T) {
	activate := needTool(t, "systemd-socket-activate", "systemd")
	site := newTestSite(t)
	var busy, free []string
	for range 2 {
		b, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		busy = append(busy, b.Addr().String())
		f, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		free = append(free, f.Addr().String())
		f.Close()
	}
	agentAddr, adminAddr := free[0], free[1]
	cfgPath := site.config(t, busy[0], "admin: {listen: '"+busy[1]+"'}\nlog: {output: stderr, level: debug}\n")
	// systemd-socket-activate starts the program on the first connection to either socket.
	go func() {
		for i := 0; i < 100; i++ {
			if c, err := net.Dial("tcp", adminAddr); err == nil {
				c.Close()
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	p := startBoxProcess(t, []string{activate, "-l", agentAddr, "-l", adminAddr, "--fdname=agent:admin",
		"-E", testMainEnv + "=1", os.Args[0], "serve", "--config", cfgPath}, cleanEnv())
	if want := "wss://" + agentAddr + "/activate"; p.url != want {
		t.Fatalf("agent URL %s, want %s", p.url, want)
	}
	waitForLog(t, p, "admin listener serving the web UI, the REST API and /metrics")
	if sum := site.activate(t, p.url, "ccm", "sa-admin", 1, 0); sum.Activated != 1 {
		t.Fatalf("activation through the passed socket: %+v", sum.Results)
	}
	fams := scrape(t, adminClient(t, site), adminAddr)
	if n, _ := metricValue(fams, "amtedge_activations_total", "mode", "ccm", "result", "succeeded"); n != 1 {
		t.Errorf("activations over the passed admin socket: %v", n)
	}
	if !strings.Contains(p.stderr.String(), "listen="+adminAddr+" socket_activated=true") {
		t.Errorf("the admin listener was not the passed socket:\n%s", p.stderr.String())
	}
	p.signal(t, syscall.SIGTERM)
	if err := p.wait(t, 20*time.Second); err != nil {
		t.Fatalf("box exit: %v\n%s", err, p.stderr.String())
	}
}

// With admin.listen "" a passed admin socket is not served: the box closes it and says so.
func TestAdminDisabledClosesPassedSocket(t *testing.T) {
	activate := needTool(t, "systemd-socket-activate", "systemd")
	site := newTestSite(t)
	var free []string
	for range 2 {
		f, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		free = append(free, f.Addr().String())
		f.Close()
	}
	agentAddr, adminAddr := free[0], free[1]
	cfgPath := site.config(t, "127.0.0.1:0", "admin: {listen: ''}\nlog: {output: stderr}\n")
	go func() {
		for i := 0; i < 100; i++ {
			if c, err := net.Dial("tcp", agentAddr); err == nil {
				c.Close()
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	p := startBoxProcess(t, []string{activate, "-l", agentAddr, "-l", adminAddr, "--fdname=agent:admin",
		"-E", testMainEnv + "=1", os.Args[0], "serve", "--config", cfgPath}, cleanEnv())
	waitForLog(t, p, `admin.listen is \"\" (disabled); closing it`)
	if _, err := tls.Dial("tcp", adminAddr, &tls.Config{InsecureSkipVerify: true}); err == nil { //nolint:gosec // checks the refusal
		t.Error("a disabled admin listener answered TLS")
	}
	p.signal(t, syscall.SIGTERM)
	if err := p.wait(t, 20*time.Second); err != nil {
		t.Fatalf("box exit: %v\n%s", err, p.stderr.String())
	}
}

// A degraded box (store not unsealed) reports amtedge_seal_degraded 1 and no outbox series rather than a false 0.
func TestAdminMetricsDegraded(t *testing.T) {
	b, _, _ := startAdminBox(t, "")
	degraded := &box{cfg: b.cfg, log: b.log, stats: b.stats, catalog: b.catalog, agents: b.agents, degraded: "test: TPM cleared"}
	fams, err := degraded.newRegistry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*dto.MetricFamily{}
	for _, f := range fams {
		byName[f.GetName()] = f
	}
	if v, ok := metricValue(byName, "amtedge_seal_degraded"); !ok || v != 1 {
		t.Errorf("amtedge_seal_degraded = %v (present %v), want 1", v, ok)
	}
	for _, name := range []string{"amtedge_outbox_length", "amtedge_outbox_oldest_age_seconds"} {
		if byName[name] != nil {
			t.Errorf("a degraded box reports %s", name)
		}
	}
	if byName["amtedge_activations_total"] == nil || byName["amtedge_certificate_expiry_days"] == nil {
		t.Error("a degraded box lacks its counters or certificate expiry")
	}
	adm := b.cfg.Admin
	adm.Listen = new(":9443")
	if got := restartKeys(b.cfg, &Config{Admin: adm, dir: b.cfg.dir, StateDir: b.cfg.StateDir,
		Demo: b.cfg.Demo, Agent: b.cfg.Agent, WSMAN: b.cfg.WSMAN, Custody: b.cfg.Custody, Log: b.cfg.Log, Control: b.cfg.Control}); !slices.Equal(got, []string{"admin.listen"}) {
		t.Errorf("restart keys for a changed admin.listen: %v", got)
	}
}

// signIn creates the first admin account and signs a client in; it returns the client with the session cookie.
func signIn(t *testing.T, b *box, s *testSite) *http.Client {
	t.Helper()
	const user, password = "admin", "correct horse battery"
	if err := b.access.InitAdmin(user, password); err != nil {
		t.Fatal(err)
	}
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := adminClient(t, s)
	c.Jar = jar
	base := "https://" + b.admin.listener.Addr().String()
	req, _ := http.NewRequest(http.MethodPost, base+"/login", strings.NewReader(url.Values{"user": {user}, "password": {password}, "next": {"/"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", base)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/" {
		t.Fatalf("sign-in ended at %s: %s", resp.Request.URL, resp.Status)
	}
	return c
}

// A live activity stream (SSE) does not hold the admin listener's shutdown for its whole grace.
func TestAdminShutdownEndsStreams(t *testing.T) {
	b, s, _ := startAdminBox(t, "")
	c := signIn(t, b, s)
	c.Timeout = 0 // the stream stays open
	base := "https://" + b.admin.listener.Addr().String()
	req, _ := http.NewRequest(http.MethodGet, base+"/activity/stream", nil)
	req.Header.Set("Origin", base)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("GET /activity/stream: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	ended := make(chan error, 1)
	go func() { _, err := io.Copy(io.Discard, resp.Body); ended <- err }()
	stopped := make(chan struct{})
	go func() { b.stopAdmin(time.Minute); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(30 * time.Second):
		t.Fatal("stopAdmin still waits for the open activity stream after 30 s (its grace is a minute)")
	}
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("the stream did not end with the listener")
	}
}
