package cache

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/amtedge/amtedge/secrets"
	bolt "go.etcd.io/bbolt"
)

// The vault bucket holds what the sync knows of Vault, sealed like every record: the KV version of every secret
// it last pulled or pushed (key "<kind>/<name>"), and the time of the last complete pull (key lastPullKey). It is
// bookkeeping, not custody: losing it only makes the next pull read everything again. Its writes queue nothing in
// the outbox, since they are Vault's state, not changes for Vault.
const (
	bucketVault = "vault"
	lastPullKey = "last-pull"
)

// vaultRecord is one entry of the vault bucket.
type vaultRecord struct {
	Version int       `json:"version,omitempty"`
	Time    time.Time `json:"time,omitzero"`
}

func (vaultRecord) validate() error { return nil }

func vaultKey(kind Kind, name string) []byte { return []byte(string(kind) + "/" + name) }

// VaultVersions returns the Vault KV version recorded for every name of kind (by the last pull or push).
func (s *Store) VaultVersions(ctx context.Context, kind Kind) (map[string]int, error) {
	out := map[string]int{}
	prefix := vaultKey(kind, "")
	err := s.view(ctx, func(tx *bolt.Tx) error {
		c := tx.Bucket([]byte(bucketVault)).Cursor()
		for k, v := c.Seek(prefix); k != nil && strings.HasPrefix(string(k), string(prefix)); k, v = c.Next() {
			var r vaultRecord
			if err := s.codec.open(bucketVault, k, v, &r); err != nil {
				return fmt.Errorf("%s: %w", k, err)
			}
			out[string(k[len(prefix):])] = r.Version
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read vault versions of %s: %w", kind, err)
	}
	return out, nil
}

// VaultVersion returns the Vault KV version recorded for one name of kind (by the last pull or push); 0 when none
// is, as VaultVersions leaves such a name out.
func (s *Store) VaultVersion(ctx context.Context, kind Kind, name string) (int, error) {
	var r vaultRecord
	err := s.view(ctx, func(tx *bolt.Tx) error { return s.get(tx, bucketVault, string(vaultKey(kind, name)), &r) })
	if errors.Is(err, secrets.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read vault version of %s %q: %w", kind, name, err)
	}
	return r.Version, nil
}

// LastPull returns the time of the last complete pull recorded by SetLastPull; the zero time when none was.
func (s *Store) LastPull(ctx context.Context) (time.Time, error) {
	var r vaultRecord
	err := s.view(ctx, func(tx *bolt.Tx) error { return s.get(tx, bucketVault, lastPullKey, &r) })
	if errors.Is(err, secrets.ErrNotFound) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("read last pull time: %w", err)
	}
	return r.Time, nil
}

// SetLastPull records the time of a complete pull (durable on return; nothing is queued for Vault).
func (s *Store) SetLastPull(ctx context.Context, t time.Time) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("record last pull time: %w", err)
	}
	err := s.db.Update(func(tx *bolt.Tx) error { return s.put(tx, bucketVault, lastPullKey, &vaultRecord{Time: t}) })
	if err != nil {
		return fmt.Errorf("record last pull time: %w", err)
	}
	return nil
}

// Pushed is what Vault accepted for one record in a drain: the outbox entries it settles and the KV version Vault
// now holds (0 when the secret was deleted there).
type Pushed struct {
	Kind    Kind
	Name    string
	Seqs    []uint64
	Version int
}

// AckPushed removes the outbox entries of every p and records the Vault versions, in one transaction (one fsync
// for many entries). Entries already gone are skipped; it never removes an entry it was not given.
func (s *Store) AckPushed(ctx context.Context, ps []Pushed) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("ack pushed outbox entries: %w", err)
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		out := tx.Bucket([]byte(bucketOutbox))
		for _, p := range ps {
			for _, seq := range p.Seqs {
				if err := out.Delete(seqKey(seq)); err != nil {
					return err
				}
			}
			if p.Name == "" {
				continue
			}
			if err := s.setVaultVersion(tx, vaultKey(p.Kind, p.Name), p.Version); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("ack pushed outbox entries: %w", err)
	}
	return nil
}

// setVaultVersion records the Vault version the box's copy of a secret matches, or forgets it (version 0: the
// secret is gone from Vault, or the box's copy is not Vault's).
func (s *Store) setVaultVersion(tx *bolt.Tx, k []byte, version int) error {
	if version == 0 {
		return tx.Bucket([]byte(bucketVault)).Delete(k)
	}
	return s.put(tx, bucketVault, string(k), &vaultRecord{Version: version})
}

// Pulled is one secret read from Vault (or found gone from it) for ApplyPulled. Exactly one of Domain, Profile,
// Device is set for a present secret of that Kind; Gone says Vault no longer lists it.
type Pulled struct {
	Kind    Kind
	Name    string
	Version int
	Gone    bool
	Domain  secrets.DomainSecret
	Profile secrets.ProfileSecret
	Device  secrets.Credentials // AMTPassword and MEBxPassword from Vault; State, times are set here
}

// PullOutcome counts what ApplyPulled did with a batch.
type PullOutcome struct {
	Stored   int // domains and profiles replaced, devices given Vault's password as a new confirmed set
	Same     int // devices whose Vault password the box already has as its newest candidate
	Deferred int // devices with writes still in the outbox: the outbox decides, the pull waits for the push
	Repushed int // devices where Vault holds an older password of the box's: queued to push again
	Removed  int // domains and profiles Vault no longer has, removed locally
}

// ApplyPulled stores a batch of pulled secrets in one transaction, with their Vault versions, without queueing
// them for Vault (they came from there). Rules, decided inside the transaction so no local write can slip in:
//   - domains and profiles (Vault owns them): replaced by Vault's value; when Gone, removed locally if they had
//     been pulled before (a record written only on this box is kept);
//   - devices with entries in the outbox: untouched, and the version is not recorded, so the next pull looks again
//     after the push (the box's newer set must not be overwritten by Vault's older one);
//   - devices whose Vault AMT password is the newest candidate and MEBx password the same: only the version;
//   - devices whose Vault AMT password is an older password of the box's (Vault is behind): a device put is queued
//     so the next drain corrects Vault;
//   - devices whose Vault AMT password the box never held (rotated elsewhere, or a device the box never saw): a new
//     Confirmed set with Vault's passwords becomes current, the box's older sets stay in the history;
//   - a Gone device is never removed locally (the box may hold the only copy of what the device has); only its
//     version is dropped.
func (s *Store) ApplyPulled(ctx context.Context, ps []Pulled) (PullOutcome, error) {
	var res PullOutcome
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("store pulled secrets: %w", err)
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		res = PullOutcome{}
		queued, err := s.queuedDevices(tx)
		if err != nil {
			return err
		}
		vb := tx.Bucket([]byte(bucketVault))
		for _, p := range ps {
			if p.Name == "" {
				return errEmptyName
			}
			k := vaultKey(p.Kind, p.Name)
			record := true
			switch {
			case p.Gone && p.Kind == KindDevice:
				record = false
			case p.Gone:
				bucket := bucketDomains
				if p.Kind == KindProfile {
					bucket = bucketProfiles
				}
				if vb.Get(k) != nil {
					if err := tx.Bucket([]byte(bucket)).Delete([]byte(p.Name)); err != nil {
						return err
					}
					res.Removed++
				}
				record = false
			case p.Kind == KindDomain:
				if err := s.put(tx, bucketDomains, p.Name, &domainRecord{PFX: p.Domain.PFX, Password: []byte(p.Domain.Password)}); err != nil {
					return err
				}
				res.Stored++
			case p.Kind == KindProfile:
				if err := s.put(tx, bucketProfiles, p.Name, &profileRecord{AMT: []byte(p.Profile.AMTPassword), MEBx: []byte(p.Profile.MEBxPassword)}); err != nil {
					return err
				}
				res.Stored++
			case p.Kind == KindDevice:
				if queued[p.Name] {
					res.Deferred++
					record = false
					break
				}
				rec, err := s.applyPulledDevice(tx, p, &res)
				if err != nil {
					return fmt.Errorf("device %q: %w", p.Name, err)
				}
				record = rec
			default:
				return fmt.Errorf("unknown kind %q", p.Kind)
			}
			version := p.Version
			if !record {
				version = 0
			}
			if err := s.setVaultVersion(tx, k, version); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return PullOutcome{}, fmt.Errorf("store pulled secrets: %w", err)
	}
	return res, nil
}

// applyPulledDevice applies one pulled device with no queued writes; it reports whether to record the version.
func (s *Store) applyPulledDevice(tx *bolt.Tx, p Pulled, res *PullOutcome) (bool, error) {
	var r deviceRecord
	err := s.get(tx, bucketDevices, p.Name, &r)
	exists := err == nil
	if err != nil && !errors.Is(err, secrets.ErrNotFound) {
		return false, err // never overwrite a record we cannot read
	}
	if exists {
		d := r.device(p.Name)
		cands := d.Candidates()
		if len(cands) > 0 && cands[0] == p.Device.AMTPassword && d.MEBxPassword() == p.Device.MEBxPassword {
			res.Same++
			return true, nil
		}
		if d.Holds(p.Device.AMTPassword) {
			// Vault is behind the box: push the box's newest again.
			res.Repushed++
			return true, s.enqueue(tx, outboxRecord{Op: OpPut, Kind: KindDevice, Name: []byte(p.Name), Time: s.now()})
		}
		r.retire(s.historyLimit)
	}
	now := s.now()
	r.Current = toCredRecord(secrets.Credentials{
		AMTPassword: p.Device.AMTPassword, MEBxPassword: p.Device.MEBxPassword,
		State: secrets.Confirmed, Created: now, Updated: now,
	})
	res.Stored++
	return true, s.put(tx, bucketDevices, p.Name, &r)
}

// queuedDevices lists the devices that have entries in the outbox.
func (s *Store) queuedDevices(tx *bolt.Tx) (map[string]bool, error) {
	out := map[string]bool{}
	err := tx.Bucket([]byte(bucketOutbox)).ForEach(func(k, v []byte) error {
		var r outboxRecord
		if err := s.codec.checkRecordInto(bucketOutbox, k, v, &r); err != nil {
			return err
		}
		if r.Kind == KindDevice {
			out[string(r.Name)] = true
		}
		return nil
	})
	return out, err
}

// KeepForeign adds to a device's history a password found in Vault that the box never held (written there by
// another tool or box), so a push that replaces it in Vault keeps both on the box. The set goes to the end of the
// history, as the oldest one, Confirmed and stamped now: the device may have held it before the box's own sets,
// and at the end it becomes a candidate only when no set of the box's was ever confirmed, which is when the
// device may still hold it. Nothing is queued for Vault. It reports false, and changes nothing, when the device
// already has that password or its history is full (the box's own sets are never dropped for it).
func (s *Store) KeepForeign(ctx context.Context, uuid string, amt, mebx string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, opError("keep foreign password of device", uuid, err)
	}
	kept := false
	err := s.db.Update(func(tx *bolt.Tx) error {
		var r deviceRecord
		if err := s.get(tx, bucketDevices, uuid, &r); err != nil {
			return err
		}
		if r.device(uuid).Holds(amt) {
			return nil
		}
		if len(r.History) >= s.historyLimit {
			return nil
		}
		now := s.now()
		r.History = append(r.History, credRecord{AMT: []byte(amt), MEBx: []byte(mebx), State: secrets.Confirmed, Created: now, Updated: now})
		kept = true
		return s.put(tx, bucketDevices, uuid, &r)
	})
	if err != nil {
		return false, opError("keep foreign password of device", uuid, err)
	}
	return kept, nil
}
