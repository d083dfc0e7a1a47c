// Package vaultsync keeps the box's sealed cache (secrets/cache) and its site's central Vault (secrets/vault) in step:
// Push drains the cache's outbox into Vault (device passwords, with check-and-set), Pull copies what Vault owns
// (domains' certificates, profiles' passwords, device passwords set elsewhere) into the cache, skipping every
// secret whose KV version has not changed, and Run does both in a loop with backoff while Vault is away.
//
// The box keeps working from the cache whatever Vault does: local writes are durable before the sync sees them,
// and the sync only follows.
//
// It must never log a secret or put one in an error or in State (errors and log lines name the operation, the
// path and the UUID only), and never drop an outbox entry Vault has not accepted: an entry is acknowledged only
// after Vault answered the write (or the delete) that carries the record's current value, or when it is for a
// record the box does not own in Vault (domains, profiles).
//
// Log events (attribute event=…, on transitions only, never with a value):
//   - vault_unreachable (warn): a push or pull failed because Vault did not answer or refused the box's token
//     (cause=unreachable|"permission denied"); the box works from the cache and keeps writes queued;
//   - vault_restored (info): the first successful push or pull after vault_unreachable;
//   - outbox_backlog (warn): the outbox reached BacklogLength entries or its oldest entry BacklogAge;
//   - outbox_backlog_cleared (info): the outbox is back under both;
//   - vault_push_conflict (warn, per occurrence): Vault held a device password the box never had (written
//     elsewhere); the box's newer one replaced it, Vault keeps the older one in the secret's version history.
package vaultsync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/amtedge/amtedge/secrets/cache"
	"github.com/amtedge/amtedge/secrets/vault"
)

// Defaults filled by Config.
const (
	DefaultPullInterval  = 5 * time.Minute
	DefaultPollInterval  = 5 * time.Second
	DefaultMinBackoff    = time.Second
	DefaultMaxBackoff    = time.Minute
	DefaultWorkers       = 8
	DefaultCASAttempts   = 5
	DefaultBacklogLength = 1000
	DefaultBacklogAge    = 15 * time.Minute
	DefaultMaxAge        = 30 * 24 * time.Hour
	// ackBatch is how many pushed records one ack transaction (one fsync) settles at most.
	ackBatch = 256
	// applyBatch is how many pulled secrets one cache transaction stores at most.
	applyBatch = 512
)

// Config tunes a Syncer; zero values take the defaults.
type Config struct {
	// PullInterval is the time between two pulls (default 5 min).
	PullInterval time.Duration
	// PollInterval is how often the outbox is looked at without a Notify (default 5 s).
	PollInterval time.Duration
	// MinBackoff and MaxBackoff bound the wait before the next try while Vault fails (default 1 s and 1 min).
	MinBackoff, MaxBackoff time.Duration
	// Workers is how many Vault calls a drain or a pull has in flight (default 8).
	Workers int
	// CASAttempts is how many times a device write is tried when Vault's version moves in between (default 5).
	CASAttempts int
	// BacklogLength and BacklogAge: the outbox is reported as backlogged from this many entries, or when its
	// oldest entry is this old (defaults 1000 and 15 min).
	BacklogLength int
	BacklogAge    time.Duration
	// MaxAge is how old the last complete pull may be before State reports the central secrets as stale
	// (default 30 days). What the box does when stale (refuse or continue) is the caller's decision.
	MaxAge time.Duration
	// Logger receives the events (vault_unreachable, vault_restored, outbox_backlog, …); default slog.Default().
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	if c.PullInterval <= 0 {
		c.PullInterval = DefaultPullInterval
	}
	if c.PollInterval <= 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = DefaultMinBackoff
	}
	if c.MaxBackoff < c.MinBackoff {
		c.MaxBackoff = max(DefaultMaxBackoff, c.MinBackoff)
	}
	if c.Workers <= 0 {
		c.Workers = DefaultWorkers
	}
	if c.CASAttempts <= 0 {
		c.CASAttempts = DefaultCASAttempts
	}
	if c.BacklogLength <= 0 {
		c.BacklogLength = DefaultBacklogLength
	}
	if c.BacklogAge <= 0 {
		c.BacklogAge = DefaultBacklogAge
	}
	if c.MaxAge <= 0 {
		c.MaxAge = DefaultMaxAge
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// State is the sync's status for the status page and metrics. It holds no secret.
type State struct {
	// Reachable: the last call to Vault got an answer that was not a refusal (false before the first one).
	Reachable bool
	// LastError is the text of the last failed push or pull (names and paths only), empty after a success.
	LastError string
	LastPush  time.Time // last drain that ended with Vault having every entry it was given
	LastPull  time.Time // last complete pull (also as recorded in the cache)
	// OutboxLength and OldestEntry describe the outbox as of the last drain (OldestEntry zero when empty).
	OutboxLength int
	OldestEntry  time.Time
	// Backlog: the outbox is over BacklogLength or BacklogAge.
	Backlog bool
	// Stale: no complete pull within MaxAge (or ever).
	Stale bool
}

// Syncer syncs one cache with one Vault. Push, Pull and Run are safe to call from several goroutines; pushes are
// serialised among themselves, and so are pulls.
type Syncer struct {
	store *cache.Store
	vc    *vault.Client
	cfg   Config
	log   *slog.Logger

	notify chan struct{}
	// beforeWrite, when set (by tests), runs between a device's version read and its check-and-set write.
	beforeWrite func(uuid string)
	pushMu      sync.Mutex
	pullMu      sync.Mutex

	mu         sync.Mutex
	st         State
	everFailed bool // an unreachable transition was logged and no success since
}

// New returns a Syncer for store and the Vault client vc (logged in and kept alive by its Run; the Syncer logs
// in again itself when Vault refuses the token). It reads the last pull time and the outbox from the store, so
// State is meaningful before the first push or pull.
func New(ctx context.Context, store *cache.Store, vc *vault.Client, cfg Config) (*Syncer, error) {
	if store == nil || vc == nil {
		return nil, errors.New("vault sync: a cache store and a Vault client are required")
	}
	cfg = cfg.withDefaults()
	s := &Syncer{store: store, vc: vc, cfg: cfg, log: cfg.Logger, notify: make(chan struct{}, 1)}
	last, err := store.LastPull(ctx)
	if err != nil {
		return nil, opError("start", err)
	}
	s.st.LastPull = last
	entries, err := store.Outbox(ctx)
	if err != nil {
		return nil, opError("start", err)
	}
	s.setOutbox(entries)
	return s, nil
}

// Notify asks Run to drain the outbox soon; the daemon calls it after local writes. It never blocks. While Vault
// is failing, the drain still waits for the backoff.
func (s *Syncer) Notify() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// State returns a copy of the sync's status.
func (s *Syncer) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.st
	now := s.cfg.Now()
	st.Stale = st.LastPull.IsZero() || now.Sub(st.LastPull) > s.cfg.MaxAge
	return st
}

// isVaultDown tells the errors that mean "try later" (Vault away or refusing the box) from per-record ones.
func isVaultDown(err error) bool {
	return errors.Is(err, vault.ErrUnreachable) || errors.Is(err, vault.ErrPermissionDenied)
}

// observe records the outcome of a push or pull in the state and logs the reachability transitions.
func (s *Syncer) observe(op string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case err == nil:
		s.st.LastError = ""
		s.st.Reachable = true
		if s.everFailed {
			s.everFailed = false
			s.log.Info("Vault reachable again: draining the outbox", "event", "vault_restored", "op", op)
		}
	case isVaultDown(err):
		s.st.LastError = err.Error()
		s.st.Reachable = false
		if !s.everFailed {
			s.everFailed = true
			cause := "unreachable"
			if errors.Is(err, vault.ErrPermissionDenied) {
				cause = "permission denied"
			}
			s.log.Warn("Vault unreachable: working from the cache, writes stay queued", "event", "vault_unreachable",
				"op", op, "cause", cause, "err", err)
		}
	default:
		s.st.LastError = err.Error()
	}
}

// setOutbox records the outbox's size and logs the backlog transitions.
func (s *Syncer) setOutbox(entries []cache.OutboxEntry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.OutboxLength = len(entries)
	s.st.OldestEntry = time.Time{}
	if len(entries) > 0 {
		s.st.OldestEntry = entries[0].Time
	}
	age := time.Duration(0)
	if !s.st.OldestEntry.IsZero() {
		age = s.cfg.Now().Sub(s.st.OldestEntry)
	}
	backlog := len(entries) >= s.cfg.BacklogLength || age >= s.cfg.BacklogAge
	if backlog == s.st.Backlog {
		return
	}
	s.st.Backlog = backlog
	if backlog {
		s.log.Warn("outbox backlog: writes are waiting for Vault", "event", "outbox_backlog",
			"entries", len(entries), "oldest_age", age.Round(time.Second))
	} else {
		s.log.Info("outbox backlog cleared", "event", "outbox_backlog_cleared", "entries", len(entries))
	}
}

// Run drains the outbox after Notify and every PollInterval, and pulls at start and every PullInterval, until
// ctx is done; while Vault fails it waits an exponential backoff (MinBackoff to MaxBackoff) between tries. It
// returns ctx.Err().
func (s *Syncer) Run(ctx context.Context) error {
	now := s.cfg.Now()
	nextPush, nextPull := now, now
	backoff := s.cfg.MinBackoff
	var failUntil time.Time
	// relogged: a re-login after a refusal succeeded and Vault has neither answered nor been away since, so further
	// refusals are a lasting policy gap that a new token would not close.
	relogged := false
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		wake := min(nextPush.UnixNano(), nextPull.UnixNano())
		timer.Reset(max(0, time.Duration(wake-s.cfg.Now().UnixNano())))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.notify:
			if now := s.cfg.Now(); now.After(failUntil) {
				nextPush = now
			}
		case <-timer.C:
		}
		fail := func(err error) time.Time {
			if !isVaultDown(err) {
				return time.Time{}
			}
			switch {
			case !errors.Is(err, vault.ErrPermissionDenied):
				relogged = false // Vault away: what answers next may be a restored or replaced Vault
			case !relogged:
				// The token may belong to a Vault that was restored or replaced, or have been revoked: log in
				// again now rather than at the next renewal; a refused login changes nothing. Only once per
				// streak of refusals: each login mints a token, and a refusal that outlasts a fresh one is the
				// policy's, not the token's.
				if lerr := s.vc.Login(ctx); lerr != nil {
					s.log.Debug("vault re-login after a refusal failed", "err", lerr)
				} else {
					relogged = true
				}
			}
			failUntil = s.cfg.Now().Add(backoff)
			backoff = min(2*backoff, s.cfg.MaxBackoff)
			return failUntil
		}
		if now := s.cfg.Now(); !now.Before(nextPush) {
			pushed, err := s.Push(ctx)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if until := fail(err); !until.IsZero() {
				nextPush = until
			} else {
				nextPush = s.cfg.Now().Add(s.cfg.PollInterval)
				if err == nil && pushed.contactedVault() {
					backoff, relogged = s.cfg.MinBackoff, false // only an answer from Vault ends the backoff
				}
			}
		}
		if now := s.cfg.Now(); !now.Before(nextPull) {
			_, err := s.Pull(ctx)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if until := fail(err); !until.IsZero() {
				nextPull = until
			} else {
				nextPull = s.cfg.Now().Add(s.cfg.PullInterval)
				if err == nil {
					backoff, relogged = s.cfg.MinBackoff, false
				}
			}
		}
	}
}

// runWorkers calls f for each of n jobs with at most workers in flight, stopping the dispatch when stop says so.
func runWorkers(ctx context.Context, n, workers int, f func(ctx context.Context, i int) (stop bool)) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Go(func() {
			for i := range jobs {
				if f(ctx, i) {
					cancel()
				}
			}
		})
	}
	for i := range n {
		select {
		case jobs <- i:
			continue
		case <-ctx.Done():
		}
		break
	}
	close(jobs)
	wg.Wait()
}

// opError names the operation for errors of the sync itself.
func opError(op string, err error) error { return fmt.Errorf("vault sync %s: %w", op, err) }
