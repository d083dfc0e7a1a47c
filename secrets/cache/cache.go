// Package cache is the box's local, sealed secrets.Store: a bbolt file in the state directory in which every
// value is AES-256-GCM encrypted under the data-encryption key (from package seal), bound to its bucket and key.
// It answers every read, so the box keeps activating when Vault or the WAN is down, and it queues every write in
// an outbox, in the same transaction, for the sync to Vault.
//
// A write returns only after bbolt has committed and fsync'd it: a password is on disk before it is sent.
//
// It must never log, print or put a secret (or the key) into an error text, and never hold a write
// transaction open across anything slower than the disk (in particular never across a network call).
package cache

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/amtedge/amtedge/secrets"
	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

var (
	// ErrLocked is returned (wrapped) by Open when another process holds the state file.
	ErrLocked = errors.New("state file is locked by another amtedge process")
	// ErrWrongKey is returned (wrapped) by Open when the data-encryption key is not the one the file was
	// created with: the TPM was reset or replaced, or the key file was swapped. The recovery is to move the
	// state file aside and re-sync from Vault.
	ErrWrongKey = errors.New("the data-encryption key does not match this state file")
	// ErrNewerSchema is returned (wrapped) by Open for a state file written by a newer amtedge.
	ErrNewerSchema = errors.New("state file was written by a newer amtedge")
	// ErrCorrupt is returned (wrapped) when a stored value fails authentication or decoding: damaged on disk,
	// moved from another key, or written under another key.
	ErrCorrupt = errors.New("stored record is damaged or was tampered with")
	// ErrCheckFailed is returned (wrapped) by Check when it found problems, to tell them from a check that
	// could not run.
	ErrCheckFailed = errors.New("state file check failed")
)

// Defaults.
const (
	DefaultHistoryLimit = 8
	DefaultLockTimeout  = time.Second

	// MinHistoryLimit is the least history the secrets.Store contract allows.
	MinHistoryLimit = 4
	maxHistoryLimit = 1024
)

// Store is the sealed bbolt store. It is safe for concurrent use; bbolt serialises writers.
type Store struct {
	db           *bolt.DB
	codec        *codec
	path         string
	historyLimit int
	now          func() time.Time
}

var _ secrets.Store = (*Store)(nil)

type options struct {
	historyLimit int
	lockTimeout  time.Duration
	now          func() time.Time
}

// Option changes how Open opens the store.
type Option func(*options) error

// WithHistoryLimit sets how many older credential sets are kept per device (default 8, at least 4).
func WithHistoryLimit(n int) Option {
	return func(o *options) error {
		if n < MinHistoryLimit || n > maxHistoryLimit {
			return fmt.Errorf("history limit %d: want %d to %d", n, MinHistoryLimit, maxHistoryLimit)
		}
		o.historyLimit = n
		return nil
	}
}

// WithLockTimeout sets how long Open waits for another process to release the state file (default 1 s). It
// must be positive: bbolt would otherwise wait forever, and a second daemon would hang instead of failing.
func WithLockTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("lock timeout %s: want a positive duration", d)
		}
		o.lockTimeout = d
		return nil
	}
}

// WithClock sets the clock used to stamp MarkDevice's Updated and outbox entries (default time.Now).
func WithClock(now func() time.Time) Option {
	return func(o *options) error {
		if now == nil {
			return errors.New("nil clock")
		}
		o.now = now
		return nil
	}
}

// Open opens the state file at path, creating it (mode 0600) when it does not exist, with dek, the 32-byte
// data-encryption key. It fails with ErrLocked when another process has the file open, ErrWrongKey when dek is
// not the file's key, and ErrNewerSchema when a newer amtedge wrote it. Open keeps no reference to dek.
func Open(path string, dek []byte, opts ...Option) (*Store, error) {
	o := options{historyLimit: DefaultHistoryLimit, lockTimeout: DefaultLockTimeout, now: time.Now}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, fmt.Errorf("open state file %s: %w", path, err)
		}
	}
	c, err := newCodec(dek)
	if err != nil {
		return nil, fmt.Errorf("open state file %s: %w", path, err)
	}
	_, statErr := os.Stat(path)
	creating := errors.Is(statErr, fs.ErrNotExist)

	// bbolt's defaults stay: NoSync false (every commit is fsync'd), freelist synced.
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: o.lockTimeout})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("open state file %s: %w (waited %s)", path, ErrLocked, o.lockTimeout)
	}
	if err != nil {
		return nil, fmt.Errorf("open state file %s: %w", path, err)
	}
	if creating {
		// The new name must survive a power cut too, or the first passwords would vanish with it.
		if err := syncDir(filepath.Dir(path)); err != nil {
			db.Close()
			return nil, fmt.Errorf("open state file %s: %w", path, err)
		}
	}
	s := &Store{db: db, codec: c, path: path, historyLimit: o.historyLimit, now: o.now}
	if err := db.Update(s.initialize); err != nil {
		db.Close()
		return nil, fmt.Errorf("open state file %s: %w", path, err)
	}
	return s, nil
}

// initialize checks the schema mark and key check value, writing both into a new file, and creates missing
// buckets.
func (s *Store) initialize(tx *bolt.Tx) error {
	meta, err := tx.CreateBucketIfNotExists([]byte(bucketMeta))
	if err != nil {
		return fmt.Errorf("create bucket %s: %w", bucketMeta, err)
	}
	if v := meta.Get([]byte(metaSchema)); v != nil {
		n, err := parseSchema(v)
		if err != nil {
			return err
		}
		if n > schemaVersion {
			return fmt.Errorf("%w: it has schema %d, this amtedge reads schema %d; upgrade amtedge", ErrNewerSchema, n, schemaVersion)
		}
		check := meta.Get([]byte(metaKeyCheck))
		if check == nil {
			return fmt.Errorf("%w: the key check value is missing", ErrCorrupt)
		}
		if err := s.codec.checkKey(check); err != nil {
			return err
		}
	} else {
		// A new file, or one whose creation was interrupted before this first commit: it must hold no records,
		// since records are only written after the key check value exists.
		for _, name := range dataBuckets {
			if b := tx.Bucket([]byte(name)); b != nil {
				if k, _ := b.Cursor().First(); k != nil {
					return fmt.Errorf("%w: records but no schema mark", ErrCorrupt)
				}
			}
		}
		if err := meta.Put([]byte(metaSchema), []byte(strconv.Itoa(schemaVersion))); err != nil {
			return fmt.Errorf("write schema mark: %w", err)
		}
		check := s.codec.sealRaw(bucketMeta, []byte(metaKeyCheck), []byte(keyCheckPlain))
		if err := meta.Put([]byte(metaKeyCheck), check); err != nil {
			return fmt.Errorf("write key check value: %w", err)
		}
	}
	for _, name := range dataBuckets {
		if _, err := tx.CreateBucketIfNotExists([]byte(name)); err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	return nil
}

// Close closes the state file and releases its lock.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close state file %s: %w", s.path, err)
	}
	return nil
}

// syncDir fsyncs a directory so a name just created in it survives a power cut.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("fsync directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync directory %s: %w", dir, err)
	}
	return nil
}
