package cache

import (
	"context"
	"errors"
	"fmt"

	"github.com/amtedge/amtedge/secrets"
	bolt "go.etcd.io/bbolt"
)

// errEmptyName refuses a write to an empty name: it has no Vault path, and bbolt cannot store an empty key.
var errEmptyName = errors.New("empty name")

// opError wraps err with the operation and the record's name. Names (domains, profiles, device UUIDs) are not
// secrets; values never appear in errors.
func opError(op, name string, err error) error {
	if name == "" {
		return fmt.Errorf("%s: %w", op, err)
	}
	return fmt.Errorf("%s %q: %w", op, name, err)
}

// view runs fn in a read transaction, after checking ctx.
func (s *Store) view(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.View(fn)
}

// write runs fn in a write transaction and queues ent in the outbox in the same transaction, so a record never
// changes without its outbox entry nor the reverse. It returns after the commit's fsync. ctx is checked again
// once the transaction has started, because starting it may have waited for other writers; a ctx cancelled
// after that point no longer stops the write (it is then as good as done).
func (s *Store) write(ctx context.Context, ent outboxRecord, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(tx); err != nil {
			return err
		}
		ent.Time = s.now()
		return s.enqueue(tx, ent)
	})
}

func (s *Store) enqueue(tx *bolt.Tx, ent outboxRecord) error {
	b := tx.Bucket([]byte(bucketOutbox))
	seq, err := b.NextSequence()
	if err != nil {
		return fmt.Errorf("outbox sequence: %w", err)
	}
	key := seqKey(seq)
	v, err := s.codec.seal(bucketOutbox, key, ent)
	if err != nil {
		return err
	}
	if err := b.Put(key, v); err != nil {
		return fmt.Errorf("queue outbox entry: %w", err)
	}
	return nil
}

// get decrypts the record at bucket/name into r; secrets.ErrNotFound when there is none.
func (s *Store) get(tx *bolt.Tx, bucket, name string, r record) error {
	v := tx.Bucket([]byte(bucket)).Get([]byte(name))
	if v == nil || name == "" {
		return secrets.ErrNotFound
	}
	return s.codec.open(bucket, []byte(name), v, r)
}

func (s *Store) put(tx *bolt.Tx, bucket, name string, r record) error {
	key := []byte(name)
	v, err := s.codec.seal(bucket, key, r)
	if err != nil {
		return err
	}
	if err := tx.Bucket([]byte(bucket)).Put(key, v); err != nil {
		return fmt.Errorf("store %s record: %w", bucket, err)
	}
	return nil
}

func (s *Store) remove(ctx context.Context, bucket string, kind Kind, name string) error {
	if name == "" {
		return errEmptyName
	}
	return s.write(ctx, outboxRecord{Op: OpDelete, Kind: kind, Name: []byte(name)}, func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucket))
		if b.Get([]byte(name)) == nil {
			return secrets.ErrNotFound // rolls back: nothing to queue either
		}
		return b.Delete([]byte(name))
	})
}

// Domain implements secrets.Store.
func (s *Store) Domain(ctx context.Context, name string) (secrets.DomainSecret, error) {
	var r domainRecord
	if err := s.view(ctx, func(tx *bolt.Tx) error { return s.get(tx, bucketDomains, name, &r) }); err != nil {
		return secrets.DomainSecret{}, opError("read domain", name, err)
	}
	return secrets.DomainSecret{PFX: r.PFX, Password: string(r.Password)}, nil
}

// PutDomain implements secrets.Store.
func (s *Store) PutDomain(ctx context.Context, name string, d secrets.DomainSecret) error {
	if name == "" {
		return opError("put domain", name, errEmptyName)
	}
	err := s.write(ctx, outboxRecord{Op: OpPut, Kind: KindDomain, Name: []byte(name)}, func(tx *bolt.Tx) error {
		return s.put(tx, bucketDomains, name, &domainRecord{PFX: d.PFX, Password: []byte(d.Password)})
	})
	if err != nil {
		return opError("put domain", name, err)
	}
	return nil
}

// DeleteDomain implements secrets.Store.
func (s *Store) DeleteDomain(ctx context.Context, name string) error {
	if err := s.remove(ctx, bucketDomains, KindDomain, name); err != nil {
		return opError("delete domain", name, err)
	}
	return nil
}

// Profile implements secrets.Store.
func (s *Store) Profile(ctx context.Context, name string) (secrets.ProfileSecret, error) {
	var r profileRecord
	if err := s.view(ctx, func(tx *bolt.Tx) error { return s.get(tx, bucketProfiles, name, &r) }); err != nil {
		return secrets.ProfileSecret{}, opError("read profile", name, err)
	}
	return secrets.ProfileSecret{AMTPassword: string(r.AMT), MEBxPassword: string(r.MEBx)}, nil
}

// PutProfile implements secrets.Store.
func (s *Store) PutProfile(ctx context.Context, name string, p secrets.ProfileSecret) error {
	if name == "" {
		return opError("put profile", name, errEmptyName)
	}
	err := s.write(ctx, outboxRecord{Op: OpPut, Kind: KindProfile, Name: []byte(name)}, func(tx *bolt.Tx) error {
		return s.put(tx, bucketProfiles, name, &profileRecord{AMT: []byte(p.AMTPassword), MEBx: []byte(p.MEBxPassword)})
	})
	if err != nil {
		return opError("put profile", name, err)
	}
	return nil
}

// DeleteProfile implements secrets.Store.
func (s *Store) DeleteProfile(ctx context.Context, name string) error {
	if err := s.remove(ctx, bucketProfiles, KindProfile, name); err != nil {
		return opError("delete profile", name, err)
	}
	return nil
}

// Device implements secrets.Store.
func (s *Store) Device(ctx context.Context, uuid string) (secrets.Device, error) {
	var r deviceRecord
	if err := s.view(ctx, func(tx *bolt.Tx) error { return s.get(tx, bucketDevices, uuid, &r) }); err != nil {
		return secrets.Device{}, opError("read device", uuid, err)
	}
	return r.device(uuid), nil
}

// PutDevice implements secrets.Store. The previous current set moves to the front of the history, which is cut
// to the history limit.
func (s *Store) PutDevice(ctx context.Context, uuid string, c secrets.Credentials) error {
	if uuid == "" {
		return opError("put device", uuid, errEmptyName)
	}
	if !c.State.Valid() {
		return opError("put device", uuid, fmt.Errorf("invalid state %q", c.State))
	}
	err := s.write(ctx, outboxRecord{Op: OpPut, Kind: KindDevice, Name: []byte(uuid)}, func(tx *bolt.Tx) error {
		var r deviceRecord
		switch err := s.get(tx, bucketDevices, uuid, &r); {
		case errors.Is(err, secrets.ErrNotFound):
		case err != nil:
			// Never overwrite a record we cannot read: it may hold the only copy of a password a device has.
			return err
		default:
			r.retire(s.historyLimit)
		}
		r.Current = toCredRecord(c)
		return s.put(tx, bucketDevices, uuid, &r)
	})
	if err != nil {
		return opError("put device", uuid, err)
	}
	return nil
}

// MarkDevice implements secrets.Store.
func (s *Store) MarkDevice(ctx context.Context, uuid string, state secrets.State) error {
	if uuid == "" {
		return opError("mark device", uuid, errEmptyName)
	}
	if !state.Valid() {
		return opError("mark device", uuid, fmt.Errorf("invalid state %q", state))
	}
	err := s.write(ctx, outboxRecord{Op: OpMark, Kind: KindDevice, Name: []byte(uuid)}, func(tx *bolt.Tx) error {
		var r deviceRecord
		if err := s.get(tx, bucketDevices, uuid, &r); err != nil {
			return err
		}
		r.Current.State = state
		r.Current.Updated = s.now()
		return s.put(tx, bucketDevices, uuid, &r)
	})
	if err != nil {
		return opError("mark device", uuid, err)
	}
	return nil
}

// DeleteDevice implements secrets.Store.
func (s *Store) DeleteDevice(ctx context.Context, uuid string) error {
	if err := s.remove(ctx, bucketDevices, KindDevice, uuid); err != nil {
		return opError("delete device", uuid, err)
	}
	return nil
}

// ListDevices implements secrets.Store: bbolt keeps keys in byte order, which is the order the contract asks.
func (s *Store) ListDevices(ctx context.Context) ([]string, error) {
	var out []string
	err := s.view(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bucketDevices)).ForEach(func(k, _ []byte) error {
			out = append(out, string(k)) // string() copies: k is only valid inside the transaction
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list devices: %w", err)
	}
	return out, nil
}
