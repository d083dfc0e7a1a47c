package vaultsync

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/amtedge/amtedge/secrets"
	"github.com/amtedge/amtedge/secrets/cache"
	"github.com/amtedge/amtedge/secrets/vault"
)

// PushResult counts what a drain did.
type PushResult struct {
	Entries int // outbox entries read at the start
	Acked   int // entries removed because Vault has them (or they are not Vault's)
	Written int // devices written to Vault
	Same    int // devices Vault already held with the box's values (no write)
	Deleted int // devices deleted in Vault
	Skipped int // domain and profile entries acknowledged without a write
	Retries int // check-and-set conflicts retried
}

// contactedVault reports whether the drain called Vault at all: an empty outbox, or one holding only domain and
// profile entries (acknowledged without a write), says nothing about Vault's health.
func (r PushResult) contactedVault() bool { return r.Written+r.Same+r.Deleted+r.Retries > 0 }

// Push drains the outbox into Vault once, returning when every entry it read is acknowledged or an error stops
// it.
//
// Rules:
//   - entries are grouped by record, oldest first; a record is pushed once, with its current value (the outbox
//     names records, not values), and all its entries are acknowledged together after Vault accepted that value;
//   - a device still in the cache is written to devices/<uuid> with AMT_PASSWORD = Candidates()[0] (the newest
//     password the device may hold: the newest pending set, or the newest confirmed one when nothing newer is
//     pending; a pending set is never dropped, since the device may hold it) and MEBX_PASSWORD = MEBxPassword(),
//     keeping the keys other tools own; the version is read first and the write is check-and-set on it, re-read
//     and retried up to CASAttempts times when Vault's version moves; a write that would change nothing is skipped;
//     when Vault holds a password the box never had (written elsewhere since the box's last push or pull), it is
//     kept in the device's history on the box (cache.Store.KeepForeign), the vault_push_conflict event is logged,
//     and the box's value is written over it (Vault keeps the older version in its own history);
//   - a device gone from the cache is deleted in Vault;
//   - domain and profile entries are acknowledged without a write: Vault owns them (the operator or RPS writes
//     them, the box's policy may only read them), the box pulls them; pushing would overwrite the source of truth
//     with a local copy;
//   - Vault unreachable or refusing (403) stops the drain: what Vault accepted so far is acknowledged, the rest
//     stays queued and the error is returned; other per-record errors leave that record queued, the drain goes on,
//     and the first one is returned.
//
// Records are pushed by up to Workers calls in flight, so two different devices may reach Vault in either order;
// one device's entries are never reordered, since only its current value is sent.
func (s *Syncer) Push(ctx context.Context) (PushResult, error) {
	s.pushMu.Lock()
	defer s.pushMu.Unlock()
	res, err := s.push(ctx)
	if ctx.Err() == nil && (err != nil || res.contactedVault()) {
		s.observe("push", err)
		if err == nil {
			s.mu.Lock()
			s.st.LastPush = s.cfg.Now()
			s.mu.Unlock()
		}
	}
	if err == nil && res.Entries == 0 {
		return res, nil // push found the outbox empty and recorded that: nothing to read again
	}
	if left, lerr := s.store.Outbox(context.WithoutCancel(ctx)); lerr == nil {
		s.setOutbox(left)
	}
	return res, err
}

type group struct {
	name string
	seqs []uint64
}

func (s *Syncer) push(ctx context.Context) (PushResult, error) {
	var res PushResult
	entries, err := s.store.Outbox(ctx)
	if err != nil {
		return res, opError("push", err)
	}
	res.Entries = len(entries)
	s.setOutbox(entries)
	if len(entries) == 0 {
		return res, nil
	}

	var devices []*group
	var others cache.Pushed
	byName := map[string]*group{}
	for _, e := range entries {
		if e.Kind != cache.KindDevice {
			others.Seqs = append(others.Seqs, e.Seq)
			continue
		}
		g := byName[e.Name]
		if g == nil {
			g = &group{name: e.Name}
			byName[e.Name] = g
			devices = append(devices, g)
		}
		g.seqs = append(g.seqs, e.Seq)
	}
	if len(others.Seqs) > 0 {
		if err := s.store.AckPushed(ctx, []cache.Pushed{others}); err != nil {
			return res, opError("push", err)
		}
		res.Skipped, res.Acked = len(others.Seqs), len(others.Seqs)
	}

	var (
		mu       sync.Mutex
		pending  []cache.Pushed
		firstErr error
		downErr  error
		ackErr   error
	)
	flush := func() {
		// Called with mu held.
		if len(pending) == 0 || ackErr != nil {
			return
		}
		if err := s.store.AckPushed(context.WithoutCancel(ctx), pending); err != nil {
			ackErr = err
			return
		}
		for _, p := range pending {
			res.Acked += len(p.Seqs)
		}
		pending = pending[:0]
	}
	runWorkers(ctx, len(devices), s.cfg.Workers, func(wctx context.Context, i int) bool {
		g := devices[i]
		out, err := s.pushDevice(wctx, g.name)
		mu.Lock()
		defer mu.Unlock()
		res.Retries += out.retries
		if err != nil {
			switch {
			case wctx.Err() != nil && ctx.Err() == nil:
				// Cancelled because another device found Vault down: not this record's error.
			case isVaultDown(err) || ctx.Err() != nil:
				if downErr == nil {
					downErr = err
				}
				return true
			case firstErr == nil:
				firstErr = err
			}
			return false
		}
		switch {
		case out.deleted:
			res.Deleted++
		case out.same:
			res.Same++
		default:
			res.Written++
		}
		pending = append(pending, cache.Pushed{Kind: cache.KindDevice, Name: g.name, Seqs: g.seqs, Version: out.version})
		if len(pending) >= ackBatch {
			flush()
		}
		return ackErr != nil
	})
	mu.Lock()
	flush()
	mu.Unlock()
	switch {
	case ackErr != nil:
		return res, opError("push", ackErr)
	case ctx.Err() != nil:
		return res, opError("push", ctx.Err())
	case downErr != nil:
		return res, opError("push", downErr)
	case firstErr != nil:
		return res, opError("push", firstErr)
	}
	return res, nil
}

type pushOutcome struct {
	version int
	retries int
	same    bool
	deleted bool
}

// pushDevice sends one device's current record to Vault.
func (s *Syncer) pushDevice(ctx context.Context, uuid string) (pushOutcome, error) {
	var out pushOutcome
	// known is the version the cache last recorded for the device (0 when none).
	known, err := s.store.VaultVersion(ctx, cache.KindDevice, uuid)
	if err != nil {
		return out, err
	}
	d, err := s.store.Device(ctx, uuid)
	if errors.Is(err, secrets.ErrNotFound) {
		if err := s.vc.DeleteDevice(ctx, uuid); err != nil {
			return out, err
		}
		out.deleted = true
		return out, nil
	}
	if err != nil {
		return out, err
	}
	want := vault.DeviceSecret{MEBxPassword: d.MEBxPassword()}
	if c := d.Candidates(); len(c) > 0 {
		want.AMTPassword = c[0]
	}
	for attempt := 1; ; attempt++ {
		cur, v, err := s.vc.ReadDevice(ctx, uuid)
		found := err == nil
		if err != nil && !errors.Is(err, secrets.ErrNotFound) {
			return out, err
		}
		if found && cur == want {
			out.version, out.same = v, true
			return out, nil
		}
		if found && v != known && !d.Holds(cur.AMTPassword) {
			// Someone else wrote a password the box never had. The write below supersedes it in Vault (which keeps
			// it in the secret's version history); the box keeps it too, at the end of the device's history.
			kept, err := s.store.KeepForeign(ctx, uuid, cur.AMTPassword, cur.MEBxPassword)
			if err != nil {
				return out, fmt.Errorf("push device %s: %w", uuid, err)
			}
			s.log.Warn("Vault held a device password written elsewhere; the box's newer one replaces it",
				"event", "vault_push_conflict", "device", uuid, "vault_version", v, "known_version", known,
				"kept_in_box_history", kept)
			d.History = append(d.History, secrets.Credentials{AMTPassword: cur.AMTPassword}) // once per push
		}
		if s.beforeWrite != nil {
			s.beforeWrite(uuid)
		}
		nv, err := s.vc.WriteDevice(ctx, uuid, want, v)
		if errors.Is(err, vault.ErrConflict) && attempt < s.cfg.CASAttempts {
			out.retries++
			continue
		}
		if err != nil {
			return out, fmt.Errorf("push device %s (attempt %d): %w", uuid, attempt, err)
		}
		out.version = nv
		return out, nil
	}
}
