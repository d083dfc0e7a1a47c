package cache

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/amtedge/amtedge/secrets"
	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// OutboxEntry is one write waiting to be sent to Vault. It names the record, not its value: the sync reads the
// record when it sends, and sends a delete when the record is gone by then.
type OutboxEntry struct {
	Seq  uint64 // increasing in commit order; Ack takes it
	Op   Op
	Kind Kind
	Name string
	Time time.Time // when the write was committed, by the store's clock
}

// Outbox returns the queued writes, oldest first.
func (s *Store) Outbox(ctx context.Context) ([]OutboxEntry, error) {
	var out []OutboxEntry
	err := s.view(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bucketOutbox)).ForEach(func(k, v []byte) error {
			var r outboxRecord
			if err := s.codec.checkRecordInto(bucketOutbox, k, v, &r); err != nil {
				return err
			}
			out = append(out, OutboxEntry{Seq: seqOf(k), Op: r.Op, Kind: r.Kind, Name: string(r.Name), Time: r.Time})
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read outbox: %w", err)
	}
	return out, nil
}

// OutboxSummary returns how many writes are queued and when the oldest was committed (the zero time when none
// is), decrypting only the oldest entry: what Outbox tells of the queue's size and age, for callers that need no
// more.
func (s *Store) OutboxSummary(ctx context.Context) (n int, oldest time.Time, err error) {
	err = s.view(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucketOutbox))
		k, v := b.Cursor().First()
		if k == nil {
			return nil
		}
		var r outboxRecord
		if err := s.codec.checkRecordInto(bucketOutbox, k, v, &r); err != nil {
			return err
		}
		n, oldest = b.Stats().KeyN, r.Time
		return nil
	})
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("read outbox: %w", err)
	}
	return n, oldest, nil
}

// Ack removes the outbox entry seq once Vault has it; secrets.ErrNotFound when there is no such entry. The
// removal is durable on return, like every write.
func (s *Store) Ack(ctx context.Context, seq uint64) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("ack outbox entry %d: %w", seq, err)
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		b := tx.Bucket([]byte(bucketOutbox))
		if b.Get(seqKey(seq)) == nil {
			return secrets.ErrNotFound
		}
		return b.Delete(seqKey(seq))
	})
	if err != nil {
		return fmt.Errorf("ack outbox entry %d: %w", seq, err)
	}
	return nil
}

// checkRecordInto is checkRecord for an outbox value, keeping the decoded record.
func (c *codec) checkRecordInto(bucket string, key, sealed []byte, r *outboxRecord) error {
	if len(key) != 8 {
		return fmt.Errorf("%w: outbox key is %d bytes, want 8", ErrCorrupt, len(key))
	}
	if err := c.open(bucket, key, sealed, r); err != nil {
		return fmt.Errorf("outbox entry %d: %w", seqOf(key), err)
	}
	return nil
}

func seqOf(key []byte) uint64 {
	var n uint64
	for _, b := range key {
		n = n<<8 | uint64(b)
	}
	return n
}

// maxReported caps how many problems Check lists; the count of the rest is still given.
const maxReported = 20

// Check verifies the state file: bbolt's own consistency check of the page tree and freelist, then that every
// stored value decrypts under the key and decodes as its bucket's record. It returns nil when all is well, else
// an error listing the problems (by bucket and key, never by value). It reads the whole file in one read
// transaction; writers are not blocked.
func (s *Store) Check(ctx context.Context) error {
	var problems []string
	total := 0
	report := func(format string, args ...any) {
		total++
		if len(problems) < maxReported {
			problems = append(problems, fmt.Sprintf(format, args...))
		}
	}
	err := s.view(ctx, func(tx *bolt.Tx) (err error) {
		defer func() {
			// bbolt panics on some malformed pages; Check is the tool run on a suspect file, so report it.
			if p := recover(); p != nil {
				report("bbolt could not read the file (%v): damaged pages", p)
				err = nil
			}
		}()
		// Drain the channel whole: its goroutine blocks until every error is read.
		for err := range tx.Check() {
			report("bbolt: %v", err)
		}
		meta := tx.Bucket([]byte(bucketMeta))
		if meta == nil {
			report("bucket %s is missing", bucketMeta)
		} else {
			for _, k := range []string{metaSchema, metaKeyCheck} {
				if v := meta.Get([]byte(k)); v == nil {
					report("%s/%s is missing", bucketMeta, k)
				} else if err := s.codec.checkRecord(bucketMeta, []byte(k), v); err != nil {
					report("%s/%s: %v", bucketMeta, k, err)
				}
			}
		}
		known := map[string]bool{bucketMeta: true}
		for _, name := range dataBuckets {
			known[name] = true
			b := tx.Bucket([]byte(name))
			if b == nil {
				report("bucket %s is missing", name)
				continue
			}
			n := 0
			err := b.ForEach(func(k, v []byte) error {
				if n++; n%1024 == 0 {
					if err := ctx.Err(); err != nil {
						return err
					}
				}
				if v == nil {
					report("%s/%s: a nested bucket where a record belongs", name, keyLabel(name, k))
					return nil
				}
				if err := s.codec.checkRecord(name, k, v); err != nil {
					report("%s/%s: %v", name, keyLabel(name, k), err)
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		return tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
			if !known[string(name)] {
				report("unexpected bucket %q", name)
			}
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("check state file %s: %w", s.path, err)
	}
	if total == 0 {
		return nil
	}
	msg := strings.Join(problems, "; ")
	if total > len(problems) {
		msg += fmt.Sprintf("; and %d more", total-len(problems))
	}
	return fmt.Errorf("check state file %s: %d problem(s): %s: %w", s.path, total, msg, ErrCheckFailed)
}

// keyLabel names a key for a report: outbox keys are sequence numbers, other keys are names.
func keyLabel(bucket string, k []byte) string {
	if bucket == bucketOutbox && len(k) == 8 {
		return fmt.Sprint(seqOf(k))
	}
	return fmt.Sprintf("%q", k)
}

// OutboxLength counts the writes queued for Vault in the state file at path without its key: the entries'
// contents are sealed, but how many there are is not. `amtedge store recover` reports it for a store whose key
// is lost, so the operator knows how many writes never reached Vault.
func OutboxLength(path string) (int, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: DefaultLockTimeout, ReadOnly: true})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return 0, fmt.Errorf("open state file %s: %w", path, ErrLocked)
	}
	if err != nil {
		return 0, fmt.Errorf("open state file %s: %w", path, err)
	}
	defer db.Close()
	n := 0
	err = db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket([]byte(bucketOutbox)); b != nil {
			n = b.Stats().KeyN
		}
		return nil
	})
	return n, err
}
