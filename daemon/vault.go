package main

import (
	"context"
	"fmt"
	"time"

	"github.com/amtedge/amtedge/appliance/agent"
	"github.com/amtedge/amtedge/appliance/web"
	"github.com/amtedge/amtedge/secrets"
	"github.com/amtedge/amtedge/secrets/vault"
	"github.com/amtedge/amtedge/secrets/vaultsync"
)

// VaultConfig is the site's central Vault (optional). Secrets are only referenced by file.
type VaultConfig struct {
	Address        string        `yaml:"address"` // e.g. https://vault.example.com:8200; empty: no Vault
	CAFile         string        `yaml:"caFile"`
	ClientCertFile string        `yaml:"clientCertFile"`
	ClientKeyFile  string        `yaml:"clientKeyFile"`
	TLSServerName  string        `yaml:"tlsServerName"`
	ProxyURL       string        `yaml:"proxyURL"`
	Mount          string        `yaml:"mount"`  // KV v2 mount, default "secret"
	Prefix         string        `yaml:"prefix"` // the site's folder under the mount, e.g. sites/lyon-1
	CallTimeout    time.Duration `yaml:"callTimeout"`
	PullInterval   time.Duration `yaml:"pullInterval"`
	// MaxAge is how old the central secrets may get (no complete pull) before the box reports them stale.
	MaxAge time.Duration `yaml:"maxAge"`
	// WhenStale: "continue" (default: report it) or "refuse" (provision nothing until a pull succeeds).
	WhenStale string `yaml:"whenStale"`
	Auth      struct {
		Method          string `yaml:"method"` // approle or token
		RoleIDFile      string `yaml:"roleIdFile"`
		SecretIDFile    string `yaml:"secretIdFile"`
		SecretIDWrapped bool   `yaml:"secretIdWrapped"`
		AppRoleMount    string `yaml:"appRoleMount"`
		TokenFile       string `yaml:"tokenFile"`
	} `yaml:"auth"`
}

// configured reports whether the box has a central Vault.
func (v VaultConfig) configured() bool { return v.Address != "" }

// clientConfig is the Vault client's configuration, with paths resolved against the config file.
func (c *Config) vaultClientConfig() vault.Config {
	v := c.Vault
	return vault.Config{
		Address: v.Address, CAFile: c.path(v.CAFile), ClientCertFile: c.path(v.ClientCertFile),
		ClientKeyFile: c.path(v.ClientKeyFile), TLSServerName: v.TLSServerName, ProxyURL: v.ProxyURL,
		Mount: v.Mount, Prefix: v.Prefix, CallTimeout: v.CallTimeout,
		Auth: vault.AuthConfig{Method: v.Auth.Method, RoleIDFile: c.path(v.Auth.RoleIDFile), SecretIDFile: c.path(v.Auth.SecretIDFile),
			SecretIDWrapped: v.Auth.SecretIDWrapped, AppRoleMount: v.Auth.AppRoleMount, TokenFile: c.path(v.Auth.TokenFile)},
	}
}

// startVault starts the Vault client (login, renewal) and the sync (outbox drain, pull) in the background. The
// box never waits for Vault: it provisions from the sealed cache, and writes queue in the outbox until Vault
// takes them.
func (b *box) startVault() error {
	// Kept apart from b.cfg, which a reload replaces while status, metrics and sessions read these.
	b.vaultConfigured = b.cfg.Vault.configured()
	if !b.vaultConfigured || b.store == nil {
		return nil
	}
	vcfg := b.cfg.vaultClientConfig()
	vcfg.Logger = b.log
	client, err := vault.New(vcfg)
	if err != nil {
		return fmt.Errorf("vault: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	syncer, err := vaultsync.New(ctx, b.store, client, vaultsync.Config{PullInterval: b.cfg.Vault.PullInterval,
		MaxAge: b.cfg.Vault.MaxAge, Logger: b.log})
	if err != nil {
		cancel()
		return fmt.Errorf("vault sync: %w", err)
	}
	b.syncer, b.stopSync = syncer, cancel
	b.syncDone = make(chan struct{})
	go func() {
		defer close(b.syncDone)
		done := make(chan struct{})
		go func() { defer close(done); _ = client.Run(ctx) }()
		_ = syncer.Run(ctx)
		<-done
	}()
	return nil
}

// stopVault stops the sync (what is still queued stays in the outbox for the next start).
func (b *box) stopVault() {
	if b.stopSync == nil {
		return
	}
	b.stopSync()
	<-b.syncDone
}

// vaultState says how the central Vault is doing, for status, metrics and the API.
func (b *box) vaultState() (word string, reachable bool, detail string) {
	if b.syncer == nil {
		if b.vaultConfigured {
			return "unavailable", false, "the sealed store is not open"
		}
		return "not configured", false, ""
	}
	st := b.syncer.State()
	word = "unreachable"
	if st.Reachable {
		word = "reachable"
	}
	if st.Stale {
		detail = "no complete pull yet or too long ago"
	}
	if st.LastError != "" {
		detail = st.LastError
	}
	return word, st.Reachable, detail
}

// notifyingStore tells the sync after every write, so the outbox drains promptly (the sync also polls). The
// flows write devices through it, the catalog profiles and domains.
type notifyingStore struct {
	secrets.Store
	notify func()
}

// notifySync wakes the Vault sync, when the box has one.
func (b *box) notifySync() {
	if b.syncer != nil {
		b.syncer.Notify()
	}
}

func (s notifyingStore) after(err error) error {
	if err == nil {
		s.notify()
	}
	return err
}

func (s notifyingStore) PutDevice(ctx context.Context, uuid string, c secrets.Credentials) error {
	return s.after(s.Store.PutDevice(ctx, uuid, c))
}

func (s notifyingStore) MarkDevice(ctx context.Context, uuid string, state secrets.State) error {
	return s.after(s.Store.MarkDevice(ctx, uuid, state))
}

func (s notifyingStore) DeleteDevice(ctx context.Context, uuid string) error {
	return s.after(s.Store.DeleteDevice(ctx, uuid))
}

func (s notifyingStore) PutProfile(ctx context.Context, name string, p secrets.ProfileSecret) error {
	return s.after(s.Store.PutProfile(ctx, name, p))
}

func (s notifyingStore) DeleteProfile(ctx context.Context, name string) error {
	return s.after(s.Store.DeleteProfile(ctx, name))
}

func (s notifyingStore) PutDomain(ctx context.Context, name string, d secrets.DomainSecret) error {
	return s.after(s.Store.PutDomain(ctx, name, d))
}

func (s notifyingStore) DeleteDomain(ctx context.Context, name string) error {
	return s.after(s.Store.DeleteDomain(ctx, name))
}

// syncNow is `amtedge sync now`: a pull and a push at once, bounded.
type syncNow struct{ b *box }

func (s syncNow) SyncNow(ctx context.Context) (web.SyncResult, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	pulled, err := s.b.syncer.Pull(ctx)
	if err != nil {
		return web.SyncResult{}, fmt.Errorf("pull from Vault: %w", err)
	}
	pushed, err := s.b.syncer.Push(ctx)
	if err != nil {
		return web.SyncResult{}, fmt.Errorf("push to Vault: %w", err)
	}
	st := s.b.syncer.State()
	return web.SyncResult{Pulled: pulled.Stored, Pushed: pushed.Acked, Outbox: st.OutboxLength,
		Message: fmt.Sprintf("pulled %d changed secrets, pushed %d queued writes; %d still waiting", pulled.Stored, pushed.Acked, st.OutboxLength)}, nil
}

// refuseWhenStale wraps the flows: with vault.whenStale: refuse, a box whose central secrets are older than
// vault.maxAge provisions nothing and says why (the default, continue, only reports it).
func (b *box) refuseWhenStale(next agent.Handler) agent.Handler {
	if b.syncer == nil || b.cfg.Vault.WhenStale != "refuse" {
		return next
	}
	maxAge := b.cfg.Vault.MaxAge // captured: a reload replaces b.cfg while sessions run
	return agent.HandlerFunc(func(ctx context.Context, s *agent.Session) {
		if st := b.syncer.State(); st.Stale {
			last := "never"
			if !st.LastPull.IsZero() {
				last = st.LastPull.UTC().Format(time.RFC3339)
			}
			_ = s.Refuse(fmt.Sprintf("Device %s: this box's copy of the central secrets is stale (last complete pull from Vault: %s; "+
				"vault.maxAge %s) and it is set to refuse work then (vault.whenStale: refuse). Restore its access to Vault, "+
				"or run amtedge sync now on the box.", s.Request().Payload.UUID, last, maxAge))
			return
		}
		next.Serve(ctx, s)
	})
}
