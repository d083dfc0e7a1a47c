package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/amtedge/amtedge/appliance/access"
	"github.com/amtedge/amtedge/appliance/agent"
	"github.com/amtedge/amtedge/appliance/events"
	"github.com/amtedge/amtedge/appliance/inventory"
	"github.com/amtedge/amtedge/appliance/provision"
	"github.com/amtedge/amtedge/appliance/site"
	"github.com/amtedge/amtedge/secrets"
	"github.com/amtedge/amtedge/secrets/cache"
	"github.com/amtedge/amtedge/secrets/seal"
	"github.com/amtedge/amtedge/secrets/vaultsync"
)

func serveCommand(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", stderr)
	configPath := fs.String("config", "", "configuration file (default: the embedded demo configuration)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	level := new(slog.LevelVar)
	log, err := newLogger(cfg.Log, stderr, level)
	if err != nil {
		return err
	}
	// Signals are taken before the box starts: a SIGHUP during start must not kill the process (its default
	// action), and a SIGTERM then is handled as soon as the box runs.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, os.Interrupt, syscall.SIGHUP)
	defer signal.Stop(sigs)
	// A stop request during start (a TPM or a store that hangs) cancels the start; the same signal is also queued
	// in sigs, so a box that did come up stops right away.
	startCtx, startDone := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	box, err := startBox(startCtx, cfg, log)
	startDone()
	if err != nil {
		return err
	}
	box.level = level
	box.printBanner(stdout, *configPath)
	return box.run(*configPath, sigs, newNotifier(log))
}

// box is one running appliance: its store, its listeners and the flows behind them.
type box struct {
	cfg      *Config // the effective configuration; replaced on reload (only by the lifecycle loop)
	log      *slog.Logger
	level    *slog.LevelVar    // the logger's level, when reloadable; nil in tests that pass their own logger
	store    *cache.Store      // nil when degraded
	custody  secrets.Store     // store, waking the Vault sync after each write; nil when degraded
	degraded string            // why the sealed store could not be opened; "" when it is open
	syncer   *vaultsync.Syncer // nil without Vault (or degraded)
	// vaultConfigured is whether the box started with a Vault (a reload does not change it).
	vaultConfigured bool
	stopSync        context.CancelFunc
	syncDone        chan struct{}
	catalog         *siteCatalog
	inventory       *inventory.Inventory
	access          *access.Guard
	activity        *events.Hub // recent events for the web UI (fed by the logger)
	stats           *stats
	agents          *agent.Server
	http            *http.Server
	listener        net.Listener
	activated       bool // the listener came from systemd (socket activation)
	control         *controlServer
	admin           *adminServer // nil when admin.listen is ""
	cert            atomic.Pointer[tls.Certificate]
	certFile        string
	demoRoot        string
	started         time.Time
	served          chan error
	// extraHealthCheck, when set, runs inside the watchdog's health check (tests wedge the box with it).
	extraHealthCheck func()
}

// startBox wires and starts the appliance. On error everything started so far is stopped again.
func startBox(ctx context.Context, cfg *Config, log *slog.Logger) (_ *box, err error) {
	// Every event the box logs from here on also reaches the web UI's activity feed.
	hub := events.NewHub(activitySize)
	log = slog.New(newActivityHandler(log.Handler(), hub))
	b := &box{cfg: cfg, log: log, activity: hub, stats: newStats(), started: time.Now(), served: make(chan error, 1)}
	stateDir := cfg.path(cfg.StateDir)
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return nil, fmt.Errorf("stateDir: %w", err)
	}

	if err := b.openStore(ctx, stateDir); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil && b.store != nil {
			b.store.Close()
		}
	}()

	if b.store != nil { // degraded: custody stays a nil interface (a nil *cache.Store would not compare nil)
		b.custody = notifyingStore{Store: b.store, notify: b.notifySync}
	}

	cat, siteSecrets, err := b.loadSite(cfg, cfg.acceptsRandomPasswords())
	if err != nil {
		return nil, err
	}
	if b.catalog, err = b.openCatalog(stateDir, cfg.acceptsRandomPasswords()); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			b.catalog.Close()
		}
	}()
	if err := b.catalog.setSite(ctx, b.custody, cat, siteSecrets); err != nil {
		return nil, err
	}
	if cfg.Custody.Standalone && !cfg.Vault.configured() {
		log.Warn("standalone custody: no central Vault holds a copy of the passwords this box generates; back up "+stateDir,
			"event", events.CustodyStandalone)
	}

	cert, certFile, err := agentCert(cfg)
	if err != nil {
		return nil, err
	}
	b.cert.Store(cert)
	b.certFile = certFile
	b.inventory = inventory.New(0)
	// Admin accounts, API tokens and browser sessions (appliance/access); sessions live in memory only.
	if b.access, err = access.Open(access.Options{Path: filepath.Join(stateDir, "accounts.json"),
		IdleTimeout: cfg.Admin.SessionIdle, AbsoluteTimeout: cfg.Admin.SessionMax, LoginAttempts: cfg.Admin.LoginAttempts,
		LoginWindow: cfg.Admin.LoginWindow, Log: log}); err != nil {
		return nil, err
	}
	var handler agent.Handler
	if b.degraded != "" {
		handler = b.refuseDegraded()
	} else {
		if err := b.startVault(); err != nil {
			return nil, err
		}
		defer func() {
			if err != nil {
				b.stopVault()
			}
		}()
		flows := provision.New(provision.Config{RequestTimeout: cfg.WSMAN.RequestTimeout, Attempts: cfg.WSMAN.Attempts,
			ReadyTimeout: cfg.WSMAN.ReadyTimeout, OnRecord: b.countRecord}, b.catalog, b.custody, b.inventory, log)
		handler = b.refuseWhenStale(announceStart(flows, log))
	}
	b.agents = agent.NewServer(agent.Config{AppVersion: version, FirstMessageTimeout: cfg.Agent.FirstMessageTimeout,
		SessionTimeout: cfg.Agent.SessionTimeout, MaxSessions: cfg.Agent.MaxSessions, AllowedNetworks: cfg.Agent.allowedNetworks(),
		Logger: log}, handler)

	passed, err := passedListeners(log, "agent", "admin")
	if err != nil {
		return nil, err
	}
	if b.listener, b.activated, err = agentListener(cfg, passed["agent"]); err != nil {
		closePassed(passed["admin"])
		return nil, err
	}
	if err := b.startControl(); err != nil {
		b.listener.Close()
		closePassed(passed["admin"])
		return nil, err
	}
	if err := b.startAdmin(passed["admin"]); err != nil {
		b.listener.Close()
		b.stopControl(time.Second)
		return nil, err
	}
	b.http = &http.Server{
		Handler:           b.agents,
		TLSConfig:         agentTLS(&b.cert),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	go func() { b.served <- b.http.ServeTLS(b.listener, "", "") }()
	log.Info("amtedge is serving agents", "event", events.Started, "listen", b.listener.Addr().String(), "version", version,
		"profiles", strings.Join(cat.ProfileNames(), ","), "domains", len(cat.domains), "socket_activated", b.activated)
	return b, nil
}

// shutdown stops accepting agents, lets running sessions finish (bounded), and closes the store.
func (b *box) shutdown(grace time.Duration) error {
	b.log.Info("stopping: no new sessions; waiting for running ones", "event", events.Stopping, "sessions", b.agents.Live())
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	_ = b.http.Shutdown(ctx)
	drainErr := b.agents.Drain(ctx)
	if err := <-b.served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		b.log.Error("agent listener failed", "err", err)
	}
	b.stopControl(time.Second)
	b.stopAdmin(time.Second)
	b.stopVault()
	drainErr = errors.Join(drainErr, b.catalog.Close())
	if b.store == nil {
		return drainErr
	}
	return errors.Join(drainErr, b.store.Close())
}

// openStore unseals the store's key and opens the sealed store. When the key exists but cannot be unsealed
// (TPM cleared or replaced, PCRs changed, key file damaged) the box starts degraded instead of failing in a
// restart loop: it says why to every agent and in its status until `amtedge store recover`.
func (b *box) openStore(ctx context.Context, stateDir string) error {
	cfg, log := b.cfg, b.log
	sealer := cfg.sealer()
	if cfg.Custody.Seal == "software" {
		log.Warn("the store's data-encryption key is sealed in software (custody.seal: software): anyone who can read "+
			cfg.keyPath()+" can read every stored password; use a TPM in production", "event", events.SealSoftware)
	}
	dek, created, err := seal.LoadOrCreate(ctx, sealer)
	if errors.Is(err, seal.ErrUnsealRefused) {
		b.degraded = err.Error()
		log.Error("the sealed store cannot be unsealed: the box provisions nothing until `amtedge store recover`",
			"event", events.SealDegraded, "err", err)
		return nil
	}
	if err != nil {
		return fmt.Errorf("unseal the store key (custody.seal: %s): %w", cfg.Custody.Seal, err)
	}
	if created {
		log.Info("created a new data-encryption key", "seal", cfg.Custody.Seal)
	}
	b.store, err = cache.Open(storePath(stateDir), dek)
	clear(dek)
	if errors.Is(err, cache.ErrWrongKey) {
		// The state file was sealed with another key (its key file was lost or replaced): the same degraded state
		// as an unsealable key, not a crash loop.
		b.degraded = "the data-encryption key does not open the state file (its key was lost or replaced)"
		if created {
			b.degraded = "the state file's data-encryption key is missing; a new key cannot open it"
		}
		log.Error("the sealed store cannot be opened: the box provisions nothing until `amtedge store recover`",
			"event", events.SealDegraded, "err", err)
		return nil
	}
	if err != nil {
		return fmt.Errorf("open the sealed store: %w", err)
	}
	return nil
}

// refuseDegraded answers every agent of a degraded box with the reason: nothing can be provisioned without the
// store's key, and a technician at the PC should learn why at once.
func (b *box) refuseDegraded() agent.Handler {
	return agent.HandlerFunc(func(_ context.Context, s *agent.Session) {
		_ = s.Refuse(fmt.Sprintf("Device %s: this box cannot provision right now: its sealed store is unavailable (%s). "+
			"The box's operator must run `amtedge store recover` on the box.", s.Request().Payload.UUID, b.degraded))
	})
}

func storePath(stateDir string) string { return filepath.Join(stateDir, "amtedge.db") }

// printBanner tells the technician where agents connect and what to type on a PC.
func (b *box) printBanner(w io.Writer, configPath string) {
	url := agentURL(b.listener.Addr())
	fmt.Fprintf(w, "amtedge %s is serving agents at %s\n", version, url)
	fmt.Fprintf(w, "  TLS certificate: %s\n", b.certFile)
	if b.admin != nil {
		base := adminURL(b.admin.listener.Addr())
		fmt.Fprintf(w, "  web UI and REST API: %s/ (same certificate)\n", base)
		fmt.Fprintf(w, "  Prometheus metrics: %s/metrics\n", base)
		if !b.access.HasAccounts() {
			cmd := os.Args[0] + " admin init"
			if configPath != "" {
				cmd += " --config " + configPath
			}
			fmt.Fprintf(w, "  no admin account yet: in another terminal, run `%s` to set the first password\n", cmd)
		}
	}
	cat := b.catalog.current()
	fmt.Fprintf(w, "  profiles: %s\n", strings.Join(cat.ProfileNames(), ", "))
	for _, d := range cat.domains {
		fmt.Fprintf(w, "  domain %s: DNS suffix %s, certificate expires %s\n", d.Name, d.Suffix, cat.expiry[d.Name].Format("2006-01-02"))
	}
	fmt.Fprintf(w, "On a PC with Intel AMT, as root:\n")
	skip := ""
	if b.cfg.Agent.TLSCertFile == "" {
		skip = " -n" // self-signed certificate: rpc-go must skip its verification
	}
	for _, name := range cat.ProfileNames() {
		fmt.Fprintf(w, "  rpc activate -u %s --profile %s%s\n", url, name, skip)
	}
	if b.demoRoot != "" {
		fmt.Fprintf(w, "Demo: simulated devices trust the demo root listed in %s\n", b.demoRoot)
	}
}

// agentURL is the wss URL agents use: the listen address, or this box's first LAN address when it listens on all.
func agentURL(addr net.Addr) string {
	host, port, _ := net.SplitHostPort(addr.String())
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "localhost"
		if ips := localIPs(); len(ips) > 0 {
			host = ips[0].String()
		}
	}
	return "wss://" + net.JoinHostPort(host, port) + "/activate"
}

func configCheckCommand(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("config check", stderr)
	configPath := fs.String("config", "", "configuration file (default: the embedded demo configuration)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	if cfg.Site != "" {
		f, err := site.Load(cfg.path(cfg.Site))
		if err != nil {
			return fmt.Errorf("site file %s: %w", cfg.path(cfg.Site), err)
		}
		if _, _, err := checkSite(f, cfg.acceptsRandomPasswords(), time.Now()); err != nil {
			return fmt.Errorf("site file %s: %w", cfg.path(cfg.Site), err)
		}
	}
	fmt.Fprintln(stdout, "configuration is valid")
	return nil
}
