package vaultsync

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/amtedge/amtedge/secrets"
	"github.com/amtedge/amtedge/secrets/cache"
	"github.com/amtedge/amtedge/secrets/vault"
)

// PullResult counts what a pull did.
type PullResult struct {
	Listed int // secrets Vault lists under the three folders
	Read   int // secrets read because their version changed since the last pull (or was never seen)
	cache.PullOutcome
}

var folders = []struct {
	folder vault.Folder
	kind   cache.Kind
}{
	{vault.Certs, cache.KindDomain},
	{vault.Profiles, cache.KindProfile},
	{vault.Devices, cache.KindDevice},
}

// Pull copies Vault's secrets under the site prefix into the cache: it lists certs/, profiles/ and devices/ with
// their KV versions, reads only those whose version differs from the one the cache recorded at the last pull or
// push, and stores them with cache.ApplyPulled (see there for the rules: domains and profiles are replaced,
// devices gain Vault's password as a confirmed set only when the box never held it, and a device with writes still
// in the outbox is left to the push). A secret that cannot be read is skipped (and read again next time); the
// first such error is returned after the rest is stored. The last pull time is recorded only when nothing failed.
func (s *Syncer) Pull(ctx context.Context) (PullResult, error) {
	s.pullMu.Lock()
	defer s.pullMu.Unlock()
	res, err := s.pull(ctx)
	if ctx.Err() == nil {
		s.observe("pull", err)
	}
	return res, err
}

func (s *Syncer) pull(ctx context.Context) (PullResult, error) {
	var res PullResult
	var firstErr error
	for _, f := range folders {
		remote, err := s.vc.Versions(ctx, f.folder, s.cfg.Workers)
		if err != nil {
			return res, opError("pull", err)
		}
		local, err := s.store.VaultVersions(ctx, f.kind)
		if err != nil {
			return res, opError("pull", err)
		}
		res.Listed += len(remote)
		var changed []string
		for name, v := range remote {
			if local[name] != v {
				changed = append(changed, name)
			}
		}
		sort.Strings(changed)
		var batch []cache.Pulled
		for name := range local {
			if _, ok := remote[name]; !ok {
				batch = append(batch, cache.Pulled{Kind: f.kind, Name: name, Gone: true})
			}
		}
		var (
			mu      sync.Mutex
			downErr error
			applied cache.PullOutcome
			apply   = func() error { // with mu held
				if len(batch) == 0 {
					return nil
				}
				out, err := s.store.ApplyPulled(context.WithoutCancel(ctx), batch)
				if err != nil {
					return err
				}
				applied = add(applied, out)
				batch = batch[:0]
				return nil
			}
		)
		var applyErr error
		runWorkers(ctx, len(changed), s.cfg.Workers, func(wctx context.Context, i int) bool {
			p, err := s.read(wctx, f.kind, changed[i])
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errors.Is(err, secrets.ErrNotFound):
				// Deleted (or soft-deleted) since the list: the next pull sees it gone.
				return false
			case err != nil:
				if wctx.Err() != nil && ctx.Err() == nil {
					return false
				}
				if isVaultDown(err) || ctx.Err() != nil {
					if downErr == nil {
						downErr = err
					}
					return true
				}
				if firstErr == nil {
					firstErr = err
				}
				return false
			}
			res.Read++
			batch = append(batch, p)
			if len(batch) >= applyBatch {
				if err := apply(); err != nil {
					applyErr = err
					return true
				}
			}
			return false
		})
		mu.Lock()
		if applyErr == nil {
			applyErr = apply()
		}
		mu.Unlock()
		res.PullOutcome = add(res.PullOutcome, applied)
		switch {
		case applyErr != nil:
			return res, opError("pull", applyErr)
		case ctx.Err() != nil:
			return res, opError("pull", ctx.Err())
		case downErr != nil:
			return res, opError("pull", downErr)
		}
	}
	if firstErr != nil {
		return res, opError("pull", firstErr)
	}
	now := s.cfg.Now()
	if err := s.store.SetLastPull(ctx, now); err != nil {
		return res, opError("pull", err)
	}
	s.mu.Lock()
	s.st.LastPull = now
	s.mu.Unlock()
	return res, nil
}

// read reads one changed secret from Vault.
func (s *Syncer) read(ctx context.Context, kind cache.Kind, name string) (cache.Pulled, error) {
	p := cache.Pulled{Kind: kind, Name: name}
	var err error
	switch kind {
	case cache.KindDomain:
		p.Domain, p.Version, err = s.vc.ReadDomain(ctx, name)
	case cache.KindProfile:
		p.Profile, p.Version, err = s.vc.ReadProfile(ctx, name)
	case cache.KindDevice:
		var d vault.DeviceSecret
		d, p.Version, err = s.vc.ReadDevice(ctx, name)
		p.Device = secrets.Credentials{AMTPassword: d.AMTPassword, MEBxPassword: d.MEBxPassword}
	default:
		err = fmt.Errorf("unknown kind %q", kind)
	}
	return p, err
}

func add(a, b cache.PullOutcome) cache.PullOutcome {
	return cache.PullOutcome{
		Stored: a.Stored + b.Stored, Same: a.Same + b.Same, Deferred: a.Deferred + b.Deferred,
		Repushed: a.Repushed + b.Repushed, Removed: a.Removed + b.Removed,
	}
}
