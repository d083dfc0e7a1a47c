package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/activation"
	sd "github.com/coreos/go-systemd/v22/daemon"

	"github.com/amtedge/amtedge/appliance/agent"
	"github.com/amtedge/amtedge/appliance/events"
	"github.com/amtedge/amtedge/appliance/inventory"
	"github.com/amtedge/amtedge/appliance/site"
)

// statusInterval is how often the STATUS= line is re-checked (it is also refreshed when a session ends).
const statusInterval = 10 * time.Second

// expiryInterval is how often certificate expiry is checked after the check at start.
const expiryInterval = 24 * time.Hour

// notifier sends sd_notify(3) states to systemd. Without NOTIFY_SOCKET (not started by systemd as Type=notify)
// nothing is sent.
type notifier struct{ log *slog.Logger }

func newNotifier(log *slog.Logger) notifier { return notifier{log: log} }

func (n notifier) send(state string) {
	if _, err := sd.SdNotify(false, state); err != nil {
		n.log.Warn("notify systemd", "state", strings.SplitN(state, "=", 2)[0], "err", err)
	}
}

// loadSite reads and checks the site file named by cfg (generating the demo site first when demo.enabled):
// nothing is written to the Store, so a bad site changes nothing.
func (b *box) loadSite(cfg *Config, standalone bool) (*catalog, []siteSecret, error) {
	sitePath := cfg.path(cfg.Site)
	if cfg.Demo.Enabled {
		stateDir := cfg.path(cfg.StateDir)
		var err error
		if sitePath, err = ensureDemoSite(stateDir, cfg.Demo.Suffix); err != nil {
			return nil, nil, err
		}
		b.demoRoot = filepath.Join(stateDir, "demo", "root.sha256")
	}
	f, err := site.Load(sitePath)
	if err != nil {
		return nil, nil, fmt.Errorf("site file %s: %w", sitePath, err)
	}
	cat, secrets, err := checkSite(f, standalone, time.Now())
	if err != nil {
		return nil, nil, fmt.Errorf("site file %s: %w", sitePath, err)
	}
	return cat, secrets, nil
}

// countRecord is the provisioner's OnRecord hook: it feeds the STATUS line and the metrics record.
func (b *box) countRecord(rec inventory.Record) {
	mode := ""
	if rec.Verb == agent.VerbActivate {
		mode = "unknown"
		if p, ok := b.catalog.Profile(rec.Profile); ok {
			mode = "ccm"
			if p.IsACM() {
				mode = "acm"
			}
		}
	}
	b.stats.record(rec, mode, time.Now())
}

// announceStart logs activation_started for each activation session before its flow runs: the flows log only
// how a session ended, and an operator following a device wants to see it begin.
func announceStart(next agent.Handler, log *slog.Logger) agent.Handler {
	return agent.HandlerFunc(func(ctx context.Context, s *agent.Session) {
		req := s.Request()
		if req.Verb == agent.VerbActivate {
			log.Info("activation started", "event", events.ActivationStarted, "device", req.Payload.UUID,
				"profile", req.Method.Profile, "remote", s.RemoteAddr(), "mode_before", req.Payload.CurrentMode)
		}
		next.Serve(ctx, s)
	})
}

// passedListeners returns the sockets systemd passed (socket activation), by FileDescriptorName: the first one
// of each name in use ("agent", "admin"). Passed sockets the box has no use for are closed and named in the log.
// systemd's environment is read once (and cleared): call it once per process.
func passedListeners(log *slog.Logger, use ...string) (map[string]net.Listener, error) {
	named, err := activation.ListenersWithNames()
	if err != nil {
		return nil, fmt.Errorf("socket activation: %w", err)
	}
	out := map[string]net.Listener{}
	for name, ls := range named {
		for _, l := range ls {
			if _, taken := out[name]; !taken && slices.Contains(use, name) {
				out[name] = l
				continue
			}
			log.Warn("systemd passed a socket the box does not use; closing it", "name", name, "addr", l.Addr().String())
			l.Close()
		}
	}
	return out, nil
}

// agentListener returns the listener systemd passed under the name "agent" (socket activation: the unit's
// amtedge.socket with FileDescriptorName=agent), else binds agent.listen.
func agentListener(cfg *Config, passed net.Listener) (net.Listener, bool, error) {
	if passed != nil {
		return passed, true, nil
	}
	l, err := net.Listen("tcp", cfg.Agent.Listen)
	if err != nil {
		return nil, false, fmt.Errorf("agent.listen: %w", err)
	}
	return l, false, nil
}

// run is the box's lifecycle under systemd: READY=1 (the store is open and the listener accepts: startBox
// returned), STATUS= kept current, watchdog pings from health checks, SIGHUP reloads, SIGTERM/SIGINT stop.
func (b *box) run(configPath string, sigs <-chan os.Signal, n notifier) error {
	now := time.Now()
	lastStatus := b.statusLine(now)
	staleWarned := false
	n.send("READY=1\nSTATUS=" + lastStatus)

	stopWatchdog := b.startWatchdog(n)
	defer stopWatchdog()

	warned := map[string]int{}
	checkExpiry(b.log, b.catalog.Expiry(), warned, now)
	statusT := time.NewTicker(statusInterval)
	defer statusT.Stop()
	metricsT := time.NewTicker(b.cfg.Metrics.Interval)
	defer metricsT.Stop()
	expiryT := time.NewTicker(expiryInterval)
	defer expiryT.Stop()

	for {
		select {
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				b.reload(configPath, n)
				metricsT.Reset(b.cfg.Metrics.Interval)
				lastStatus = ""
				continue
			}
			n.send("STOPPING=1\nSTATUS=stopping: waiting for running sessions")
			// systemd does not watch a stopping service (TimeoutStopSec bounds it), and the closed listener
			// would fail the health check: the pings end here.
			stopWatchdog()
			return b.shutdown(b.cfg.ShutdownTimeout)
		case err := <-b.served:
			// The listener died under the box: without it the box is useless, so it stops and systemd restarts it.
			b.served <- err
			n.send("STOPPING=1\nSTATUS=agent listener failed")
			stopWatchdog()
			return errors.Join(fmt.Errorf("agent listener: %w", err), b.shutdown(b.cfg.ShutdownTimeout))
		case <-statusT.C:
		case <-b.stats.changed:
		case t := <-metricsT.C:
			b.logMetrics(context.Background(), t)
		case t := <-expiryT.C:
			checkExpiry(b.log, b.catalog.Expiry(), warned, t)
		}
		if line := b.statusLine(time.Now()); line != lastStatus {
			lastStatus = line
			n.send("STATUS=" + line)
		}
		staleWarned = b.checkStale(staleWarned)
	}
}

// checkStale logs secrets_stale when the central secrets become older than vault.maxAge, and secrets_fresh when
// a pull succeeds again; it returns whether they are stale now.
func (b *box) checkStale(wasStale bool) bool {
	if b.syncer == nil {
		return false
	}
	st := b.syncer.State()
	switch {
	case st.Stale && !wasStale:
		last := "never"
		if !st.LastPull.IsZero() {
			last = st.LastPull.UTC().Format(time.RFC3339)
		}
		b.log.Warn("the box's copy of the central secrets is stale", "event", events.SecretsStale, "last_pull", last,
			"max_age", b.cfg.Vault.MaxAge.String(), "when_stale", b.cfg.Vault.WhenStale)
	case !st.Stale && wasStale:
		b.log.Info("the box's copy of the central secrets is fresh again", "event", events.SecretsFresh)
	}
	return st.Stale
}

// reload re-reads the configuration file, the TLS certificate and the site file. Everything is checked before
// anything is applied, so a bad file leaves the box exactly as it was; running sessions are not touched (they
// keep the profile they looked up, the certificate of their TLS connection).
func (b *box) reload(configPath string, n notifier) {
	n.send("RELOADING=1\n" + sd.SdNotifyMonotonicUsec() + "STATUS=reloading")
	defer n.send("READY=1\nSTATUS=" + b.statusLine(time.Now()))
	if err := b.applyReload(configPath); err != nil {
		b.log.Error("reload refused; the box keeps its previous configuration", "event", events.ReloadFailed, "err", err)
		return
	}
}

func (b *box) applyReload(configPath string) error {
	cfg, err := loadConfig(configPath)
	if err != nil {
		return err
	}
	restart := restartKeys(b.cfg, cfg)
	// Custody decisions belong to the running store: the site is checked under the standalone setting in force.
	cat, siteSecrets, err := b.loadSite(cfg, b.cfg.acceptsRandomPasswords())
	if err != nil {
		return err
	}
	cert, certFile, err := agentCert(cfg)
	if err != nil {
		return err
	}
	ownAdminCert, err := adminCert(cfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Degraded (b.custody nil): nothing can be stored until the store is recovered; setSite skips the secrets.
	if err := b.catalog.setSite(ctx, b.custody, cat, siteSecrets); err != nil {
		return err
	}
	b.cert.Store(cert)
	b.certFile = certFile
	if b.admin != nil {
		b.admin.cert.Store(ownAdminCert) // nil: the admin listener follows the agent certificate
	}
	// Keys that need a restart keep their running values, so b.cfg says what the box actually does.
	eff := *b.cfg
	eff.Site, eff.dir = cfg.Site, cfg.dir
	eff.Agent.TLSCertFile, eff.Agent.TLSKeyFile = cfg.Agent.TLSCertFile, cfg.Agent.TLSKeyFile
	eff.Admin.TLSCertFile, eff.Admin.TLSKeyFile = cfg.Admin.TLSCertFile, cfg.Admin.TLSKeyFile
	eff.Log.Level, eff.Metrics, eff.ShutdownTimeout = cfg.Log.Level, cfg.Metrics, cfg.ShutdownTimeout
	b.cfg = &eff
	if b.level != nil {
		var l slog.Level
		_ = l.UnmarshalText([]byte(cfg.Log.Level))
		b.level.Set(l)
	}
	b.log.Info("configuration reloaded", "event", events.Reloaded, "profiles", strings.Join(cat.ProfileNames(), ","),
		"domains", len(cat.domains), "restart_needed", strings.Join(restart, ","))
	return nil
}

// restartKeys lists the keys whose change needs a restart: they shape the store, the listener and the flows
// built at start.
func restartKeys(old, new *Config) []string {
	var out []string
	for key, changed := range map[string]bool{
		"stateDir":                  old.path(old.StateDir) != new.path(new.StateDir),
		"demo":                      old.Demo != new.Demo,
		"agent.listen":              old.Agent.Listen != new.Agent.Listen,
		"agent.firstMessageTimeout": old.Agent.FirstMessageTimeout != new.Agent.FirstMessageTimeout,
		"agent.sessionTimeout":      old.Agent.SessionTimeout != new.Agent.SessionTimeout,
		"agent.maxSessions":         old.Agent.MaxSessions != new.Agent.MaxSessions,
		"agent.allowedNetworks":     !slices.Equal(old.Agent.AllowedNetworks, new.Agent.AllowedNetworks),
		"wsman":                     old.WSMAN != new.WSMAN,
		"custody":                   !reflect.DeepEqual(old.Custody, new.Custody),
		"vault":                     old.Vault != new.Vault,
		"log.format":                old.Log.Format != new.Log.Format,
		"log.output":                old.Log.Output != new.Log.Output,
		"control.socket":            old.Control != new.Control,
		"admin.listen":              old.Admin.listen() != new.Admin.listen(),
		"admin.sessionIdle":         old.Admin.SessionIdle != new.Admin.SessionIdle,
		"admin.sessionMax":          old.Admin.SessionMax != new.Admin.SessionMax,
		"admin.loginAttempts":       old.Admin.LoginAttempts != new.Admin.LoginAttempts,
		"admin.loginWindow":         old.Admin.LoginWindow != new.Admin.LoginWindow,
	} {
		if changed {
			out = append(out, key)
		}
	}
	sort.Strings(out)
	return out
}

// startWatchdog pings systemd at half of WATCHDOG_USEC while the serving loops are healthy, and stops pinging
// while they are not, so systemd restarts a wedged box. Without WATCHDOG_USEC it does nothing.
func (b *box) startWatchdog(n notifier) (stop func()) {
	interval, err := sd.SdWatchdogEnabled(false)
	if err != nil {
		b.log.Warn("systemd watchdog settings unreadable; not pinging", "err", err)
	}
	if interval <= 0 {
		return func() {}
	}
	period := interval / 2
	// Each check must answer well within one period, or the ping comes too late even for a healthy box.
	bound := min(period/2, 5*time.Second)
	done := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		t := time.NewTicker(period)
		defer t.Stop()
		healthy := true
		var pending chan struct{}
		for {
			err := b.health(bound, &pending)
			switch {
			case err == nil:
				if !healthy {
					b.log.Info("serving loops healthy again; watchdog pings resume")
				}
				n.send("WATCHDOG=1")
			case healthy:
				b.log.Error("serving loops unhealthy; withholding watchdog pings so systemd restarts the box",
					"event", events.WatchdogUnhealthy, "err", err)
			}
			healthy = err == nil
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(done); <-exited }) }
}

// health checks the serving loops, each within bound: the agent listener completes a TLS handshake (the accept
// loop and the TLS stack are alive), and the agent server's session table answers (its lock is not held by a
// wedged goroutine). A lock probe that did not return stays the only one: *pending is closed when it returns, and
// while it is open the box counts as unhealthy without starting another (no goroutine pile-up while wedged).
// extraHealthCheck lets tests wedge the box on purpose.
func (b *box) health(bound time.Duration, pending *chan struct{}) error {
	if err := b.probeListener(bound); err != nil {
		return fmt.Errorf("agent listener: %w", err)
	}
	if *pending == nil {
		done := make(chan struct{})
		*pending = done
		go func() {
			b.agents.Sessions() // takes the server's state lock
			if b.extraHealthCheck != nil {
				b.extraHealthCheck()
			}
			close(done)
		}()
	}
	select {
	case <-*pending:
		*pending = nil
		return nil
	case <-time.After(bound):
		return fmt.Errorf("the session table did not answer within %s", bound)
	}
}

// probeListener dials the agent listener and completes a TLS handshake.
func (b *box) probeListener(bound time.Duration) error {
	addr := b.listener.Addr().(*net.TCPAddr)
	host := addr.IP
	if host == nil || host.IsUnspecified() {
		host = net.IPv4(127, 0, 0, 1) // a wildcard listener (IPv4 or dual-stack) answers on the loopback
	}
	d := &net.Dialer{Timeout: bound}
	conn, err := tls.DialWithDialer(d, "tcp", net.JoinHostPort(host.String(), fmt.Sprint(addr.Port)),
		// The probe checks that the box answers, not who it is: it talks to itself.
		&tls.Config{InsecureSkipVerify: true}) //nolint:gosec
	if err != nil {
		return err
	}
	return conn.Close()
}
