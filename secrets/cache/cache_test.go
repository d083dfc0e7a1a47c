package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/amtedge/amtedge/secrets"
	"github.com/amtedge/amtedge/secrets/storetest"
	bolt "go.etcd.io/bbolt"
)

// testDEK returns a fixed key; different seeds give different keys.
func testDEK(seed byte) []byte {
	k := make([]byte, 32)
	for i := range k {
		k[i] = seed ^ byte(i*7+1)
	}
	return k
}

func mustOpen(t testing.TB, path string, dek []byte, opts ...Option) *Store {
	t.Helper()
	s, err := Open(path, dek, opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

// openTemp opens a new store in a temporary directory, closed at the end of the test.
func openTemp(t testing.TB, opts ...Option) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state.db")
	s := mustOpen(t, path, testDEK(1), opts...)
	t.Cleanup(func() { s.Close() })
	return s, path
}

// rawUpdate edits the bbolt file directly, bypassing the store, as damage or an attacker would.
func rawUpdate(t *testing.T, path string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatalf("raw open: %v", err)
	}
	defer db.Close()
	if err := db.Update(fn); err != nil {
		t.Fatalf("raw update: %v", err)
	}
}

func contractOpener(opts ...Option) func(t *testing.T) (secrets.Store, func() secrets.Store) {
	return func(t *testing.T) (secrets.Store, func() secrets.Store) {
		path := filepath.Join(t.TempDir(), "state.db")
		cur := mustOpen(t, path, testDEK(1), opts...)
		t.Cleanup(func() { cur.Close() })
		reopen := func() secrets.Store {
			if err := cur.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			cur = mustOpen(t, path, testDEK(1), opts...)
			if err := cur.Check(t.Context()); err != nil {
				t.Fatalf("Check after reopen: %v", err)
			}
			return cur
		}
		return cur, reopen
	}
}

func TestContract(t *testing.T) {
	storetest.Run(t, contractOpener())
}

func TestContractMinimumHistory(t *testing.T) {
	storetest.Run(t, contractOpener(WithHistoryLimit(MinHistoryLimit)))
}

func TestHistoryLimit(t *testing.T) {
	for _, limit := range []int{0, 4, 5, 12} {
		var opts []Option
		want := DefaultHistoryLimit
		if limit > 0 {
			opts = append(opts, WithHistoryLimit(limit))
			want = limit
		}
		s, _ := openTemp(t, opts...)
		for i := range want + 5 {
			if err := s.PutDevice(t.Context(), "d", secrets.Credentials{AMTPassword: fmt.Sprint(i), State: secrets.Pending}); err != nil {
				t.Fatal(err)
			}
		}
		d, err := s.Device(t.Context(), "d")
		if err != nil {
			t.Fatal(err)
		}
		if len(d.History) != want || d.History[want-1].AMTPassword != fmt.Sprint(4) {
			t.Errorf("limit option %d: len(History) = %d (oldest %q), want %d (oldest \"4\")", limit, len(d.History), d.History[len(d.History)-1].AMTPassword, want)
		}
	}
}

func TestOpenOptionsAndKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	for name, tc := range map[string]struct {
		dek  []byte
		opts []Option
		want string
	}{
		"short key":         {dek: testDEK(1)[:16], want: "16 bytes"},
		"no key":            {dek: nil, want: "0 bytes"},
		"history too small": {dek: testDEK(1), opts: []Option{WithHistoryLimit(3)}, want: "history limit 3"},
		"zero lock timeout": {dek: testDEK(1), opts: []Option{WithLockTimeout(0)}, want: "lock timeout"},
		"nil clock":         {dek: testDEK(1), opts: []Option{WithClock(nil)}, want: "clock"},
	} {
		_, err := Open(path, tc.dek, tc.opts...)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: Open err = %v, want one naming %s and saying %q", name, err, path, tc.want)
		}
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused Open created the state file (stat: %v)", err)
	}
}

func TestFileMode(t *testing.T) {
	_, path := openTemp(t)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("state file mode = %04o, want 0600", perm)
	}
}

func TestWrongKey(t *testing.T) {
	s, path := openTemp(t)
	if err := s.PutDevice(t.Context(), "dev", secrets.Credentials{AMTPassword: "secret-amt", State: secrets.Pending}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	_, err = Open(path, testDEK(2))
	if !errors.Is(err, ErrWrongKey) {
		t.Fatalf("Open with another key: err = %v, want ErrWrongKey", err)
	}
	for _, want := range []string{path, "the data-encryption key does not match this state file"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Open with another key: err = %q, want it to say %q", err, want)
		}
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Error("Open with another key changed the state file")
	}
	// The right key still opens it: the refused Open released the lock and wrote nothing.
	s = mustOpen(t, path, testDEK(1), WithLockTimeout(100*time.Millisecond))
	defer s.Close()
	if d, err := s.Device(t.Context(), "dev"); err != nil || d.Current.AMTPassword != "secret-amt" {
		t.Fatalf("Device after a refused Open = (%q, %v)", d.Current.AMTPassword, err)
	}
}

func TestSchema(t *testing.T) {
	for _, tc := range []struct {
		schema string
		want   error
		text   string
	}{
		{"2", ErrNewerSchema, "schema 2"},
		{"999", ErrNewerSchema, "schema 999"},
		{"x", ErrCorrupt, "schema"},
		{"0", ErrCorrupt, "schema"},
	} {
		s, path := openTemp(t)
		s.Close()
		rawUpdate(t, path, func(tx *bolt.Tx) error {
			return tx.Bucket([]byte(bucketMeta)).Put([]byte(metaSchema), []byte(tc.schema))
		})
		_, err := Open(path, testDEK(1))
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) || !strings.Contains(err.Error(), path) {
			t.Errorf("schema %q: Open err = %v, want %v naming %s and saying %q", tc.schema, err, tc.want, path, tc.text)
		}
	}

	// A missing key check value on an existing file is damage, not a new file.
	s, path := openTemp(t)
	s.Close()
	rawUpdate(t, path, func(tx *bolt.Tx) error { return tx.Bucket([]byte(bucketMeta)).Delete([]byte(metaKeyCheck)) })
	if _, err := Open(path, testDEK(1)); !errors.Is(err, ErrCorrupt) {
		t.Errorf("missing key check value: Open err = %v, want ErrCorrupt", err)
	}

	// Records without a schema mark: damage, not a new file to initialise over.
	s, path = openTemp(t)
	if err := s.PutProfile(t.Context(), "p", secrets.ProfileSecret{AMTPassword: "x"}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	rawUpdate(t, path, func(tx *bolt.Tx) error { return tx.Bucket([]byte(bucketMeta)).Delete([]byte(metaSchema)) })
	if _, err := Open(path, testDEK(1)); !errors.Is(err, ErrCorrupt) {
		t.Errorf("records without a schema mark: Open err = %v, want ErrCorrupt", err)
	}
}

func TestNotABoltFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	if err := os.WriteFile(path, bytes.Repeat([]byte("not a bbolt file "), 1000), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path, testDEK(1)); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("Open of a non-bbolt file: err = %v, want an error naming the file", err)
	}
}

func TestLockTimeout(t *testing.T) {
	s, path := openTemp(t)
	start := time.Now()
	_, err := Open(path, testDEK(1), WithLockTimeout(200*time.Millisecond))
	elapsed := time.Since(start)
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: err = %v, want ErrLocked", err)
	}
	if !strings.Contains(err.Error(), "state file is locked by another amtedge process") || !strings.Contains(err.Error(), path) {
		t.Errorf("second Open: err = %q, want it to name the file and say it is locked", err)
	}
	if elapsed < 150*time.Millisecond || elapsed > 5*time.Second {
		t.Errorf("second Open gave up after %s, want about the 200ms timeout", elapsed)
	}
	// The first opener is unaffected, and once it closes the file opens again.
	if err := s.PutProfile(t.Context(), "p", secrets.ProfileSecret{AMTPassword: "x"}); err != nil {
		t.Fatalf("first store after a refused second Open: %v", err)
	}
	s.Close()
	s2 := mustOpen(t, path, testDEK(1), WithLockTimeout(200*time.Millisecond))
	s2.Close()
}

// TestSwappedCiphertexts moves sealed values between keys and buckets, as an attacker with write access to the
// file (but not the key) could: every read of a moved value must fail loudly, not return another record.
func TestSwappedCiphertexts(t *testing.T) {
	const pwA, pwB = "secret-password-A", "secret-password-B"
	setup := func(t *testing.T) (*Store, string) {
		s, path := openTemp(t)
		ctx := t.Context()
		for _, err := range []error{
			s.PutDevice(ctx, "A", secrets.Credentials{AMTPassword: pwA, State: secrets.Confirmed}),
			s.PutDevice(ctx, "B", secrets.Credentials{AMTPassword: pwB, State: secrets.Confirmed}),
			s.PutProfile(ctx, "A", secrets.ProfileSecret{AMTPassword: pwA}),
			s.PutDomain(ctx, "A", secrets.DomainSecret{PFX: []byte(pwA), Password: pwA}),
		} {
			if err != nil {
				t.Fatal(err)
			}
		}
		s.Close()
		return s, path
	}
	swap := func(b *bolt.Bucket, k1, k2 []byte) error {
		v1, v2 := bytes.Clone(b.Get(k1)), bytes.Clone(b.Get(k2))
		if err := b.Put(k1, v2); err != nil {
			return err
		}
		return b.Put(k2, v1)
	}
	tests := []struct {
		name   string
		edit   func(tx *bolt.Tx) error
		read   func(s *Store) error
		report string // what Check must name
	}{
		{
			name: "two devices",
			edit: func(tx *bolt.Tx) error { return swap(tx.Bucket([]byte(bucketDevices)), []byte("A"), []byte("B")) },
			read: func(s *Store) error {
				_, errA := s.Device(context.Background(), "A")
				_, errB := s.Device(context.Background(), "B")
				return errors.Join(nonNil(errA, "Device(A)"), nonNil(errB, "Device(B)"))
			},
			report: `devices/"A"`,
		},
		{
			name: "domain value copied over a profile",
			edit: func(tx *bolt.Tx) error {
				return tx.Bucket([]byte(bucketProfiles)).Put([]byte("A"), bytes.Clone(tx.Bucket([]byte(bucketDomains)).Get([]byte("A"))))
			},
			read:   func(s *Store) error { _, err := s.Profile(context.Background(), "A"); return nonNil(err, "Profile(A)") },
			report: `profiles/"A"`,
		},
		{
			name: "device value copied to a new key",
			edit: func(tx *bolt.Tx) error {
				b := tx.Bucket([]byte(bucketDevices))
				return b.Put([]byte("C"), bytes.Clone(b.Get([]byte("A"))))
			},
			read:   func(s *Store) error { _, err := s.Device(context.Background(), "C"); return nonNil(err, "Device(C)") },
			report: `devices/"C"`,
		},
		{
			name: "two outbox entries",
			edit: func(tx *bolt.Tx) error { return swap(tx.Bucket([]byte(bucketOutbox)), seqKey(1), seqKey(2)) },
			read: func(s *Store) error {
				_, err := s.Outbox(context.Background())
				return nonNil(err, "Outbox")
			},
			report: "outbox/1",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, path := setup(t)
			rawUpdate(t, path, tt.edit)
			s := mustOpen(t, path, testDEK(1)) // meta is intact: Open succeeds, the damage is per record
			defer s.Close()
			err := tt.read(s)
			if err != nil {
				t.Fatal(err)
			}
			err = s.Check(t.Context())
			if !errors.Is(err, ErrCheckFailed) || !strings.Contains(err.Error(), tt.report) {
				t.Errorf("Check = %v, want ErrCheckFailed naming %s", err, tt.report)
			}
			noSecrets(t, err)
		})
	}
}

// nonNil checks a read of a tampered record: it must fail with ErrCorrupt (not ErrNotFound: the record is
// there, and a caller must not treat it as absent), and its text must hold no secret.
func nonNil(err error, what string) error {
	switch {
	case err == nil:
		return fmt.Errorf("%s of a moved value: err = nil, want ErrCorrupt", what)
	case !errors.Is(err, ErrCorrupt) || errors.Is(err, secrets.ErrNotFound):
		return fmt.Errorf("%s of a moved value: err = %v, want ErrCorrupt", what, err)
	case strings.Contains(err.Error(), "secret-password"):
		return fmt.Errorf("%s: error text carries a secret: %q", what, err)
	}
	return nil
}

func noSecrets(t *testing.T, err error) {
	t.Helper()
	if err != nil && strings.Contains(err.Error(), "secret-password") {
		t.Errorf("error text carries a secret: %q", err)
	}
}

func TestCheck(t *testing.T) {
	ctx := t.Context()
	fill := func(t *testing.T, s *Store) {
		for i := range 12 {
			name := fmt.Sprintf("name-%02d", i)
			for _, err := range []error{
				s.PutDomain(ctx, name, secrets.DomainSecret{PFX: bytes.Repeat([]byte{byte(i)}, 500), Password: "secret-password-" + name}),
				s.PutProfile(ctx, name, secrets.ProfileSecret{AMTPassword: "secret-password-" + name}),
				s.PutDevice(ctx, name, secrets.Credentials{AMTPassword: "secret-password-" + name, State: secrets.Pending}),
				s.MarkDevice(ctx, name, secrets.Confirmed),
			} {
				if err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := s.DeleteProfile(ctx, "name-03"); err != nil { // a freed page, and a delete in the outbox
			t.Fatal(err)
		}
	}

	t.Run("good file", func(t *testing.T) {
		s, _ := openTemp(t)
		if err := s.Check(ctx); err != nil {
			t.Fatalf("Check of a new file: %v", err)
		}
		fill(t, s)
		if err := s.Check(ctx); err != nil {
			t.Fatalf("Check of a good file: %v", err)
		}
		cancelled, cancel := context.WithCancel(ctx)
		cancel()
		if err := s.Check(cancelled); !errors.Is(err, context.Canceled) {
			t.Errorf("Check with a cancelled context: err = %v, want context.Canceled", err)
		}
	})

	t.Run("value changed through bbolt", func(t *testing.T) {
		s, path := openTemp(t)
		fill(t, s)
		s.Close()
		rawUpdate(t, path, func(tx *bolt.Tx) error {
			b := tx.Bucket([]byte(bucketProfiles))
			v := bytes.Clone(b.Get([]byte("name-07")))
			v[len(v)/2] ^= 0x01
			return b.Put([]byte("name-07"), v)
		})
		s = mustOpen(t, path, testDEK(1))
		defer s.Close()
		err := s.Check(ctx)
		if !errors.Is(err, ErrCheckFailed) || !strings.Contains(err.Error(), `profiles/"name-07"`) || !strings.Contains(err.Error(), "1 problem") {
			t.Fatalf("Check = %v, want ErrCheckFailed naming profiles/\"name-07\" only", err)
		}
		noSecrets(t, err)
		_, err = s.Profile(ctx, "name-07")
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("Profile of the damaged record: err = %v, want ErrCorrupt", err)
		}
		noSecrets(t, err)
		// A put over a damaged device record is refused: it may hold the only copy of a device's password.
		rawUpdate2 := func() {
			s.Close()
			rawUpdate(t, path, func(tx *bolt.Tx) error {
				b := tx.Bucket([]byte(bucketDevices))
				v := bytes.Clone(b.Get([]byte("name-08")))
				v[len(v)-1] ^= 0x80
				return b.Put([]byte("name-08"), v)
			})
			s = mustOpen(t, path, testDEK(1))
		}
		rawUpdate2()
		err = s.PutDevice(ctx, "name-08", secrets.Credentials{AMTPassword: "new", State: secrets.Pending})
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("PutDevice over a damaged record: err = %v, want ErrCorrupt", err)
		}
	})

	t.Run("bytes flipped in the file", func(t *testing.T) {
		s, path := openTemp(t)
		fill(t, s)
		var stored []byte
		if err := s.db.View(func(tx *bolt.Tx) error {
			stored = bytes.Clone(tx.Bucket([]byte(bucketDomains)).Get([]byte("name-09")))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if len(stored) == 0 {
			t.Fatal("record domains/name-09 not stored")
		}
		s.Close()
		file, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		// bbolt copies pages on write, so old copies of the value may sit in free pages: flip them all.
		found := 0
		for off := 0; ; {
			i := bytes.Index(file[off:], stored)
			if i < 0 {
				break
			}
			file[off+i+len(stored)/2] ^= 0xff
			off += i + len(stored)
			found++
		}
		if found == 0 {
			t.Fatal("sealed value not found in the file")
		}
		if err := os.WriteFile(path, file, 0o600); err != nil {
			t.Fatal(err)
		}
		s = mustOpen(t, path, testDEK(1))
		defer s.Close()
		err = s.Check(ctx)
		if !errors.Is(err, ErrCheckFailed) || !strings.Contains(err.Error(), `domains/"name-09"`) {
			t.Fatalf("Check = %v, want ErrCheckFailed naming domains/\"name-09\"", err)
		}
		noSecrets(t, err)
	})

	t.Run("many problems are capped", func(t *testing.T) {
		s, path := openTemp(t)
		fill(t, s)
		s.Close()
		rawUpdate(t, path, func(tx *bolt.Tx) error {
			for _, name := range []string{bucketDomains, bucketProfiles, bucketDevices} {
				b := tx.Bucket([]byte(name))
				if err := b.ForEach(func(k, v []byte) error { return b.Put(bytes.Clone(k), []byte{recordVersion, 1, 2, 3}) }); err != nil {
					return err
				}
			}
			return nil
		})
		s = mustOpen(t, path, testDEK(1))
		defer s.Close()
		err := s.Check(ctx)
		// 12 domains, 11 profiles, 12 devices.
		if err == nil || !strings.Contains(err.Error(), "35 problem(s)") || !strings.Contains(err.Error(), "and 15 more") {
			t.Fatalf("Check = %v, want 35 problems, 20 listed", err)
		}
	})
}

func TestOutbox(t *testing.T) {
	ctx := t.Context()
	clock := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	tick := func() time.Time { clock = clock.Add(time.Second); return clock }
	path := filepath.Join(t.TempDir(), "state.db")
	s := mustOpen(t, path, testDEK(1), WithClock(tick))
	defer func() { s.Close() }()

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	type want struct {
		op   Op
		kind Kind
		name string
	}
	var wants []want
	do := func(err error, w *want) {
		t.Helper()
		if w == nil {
			if err == nil {
				t.Fatal("a write that must fail succeeded")
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		wants = append(wants, *w)
	}
	do(s.PutDomain(ctx, "d.example.com", secrets.DomainSecret{PFX: []byte{1}}), &want{OpPut, KindDomain, "d.example.com"})
	do(s.PutProfile(ctx, "p", secrets.ProfileSecret{}), &want{OpPut, KindProfile, "p"})
	do(s.PutDevice(ctx, "u", secrets.Credentials{AMTPassword: "x", State: secrets.Pending}), &want{OpPut, KindDevice, "u"})
	do(s.MarkDevice(ctx, "u", secrets.Confirmed), &want{OpMark, KindDevice, "u"})
	do(s.DeleteProfile(ctx, "p"), &want{OpDelete, KindProfile, "p"})
	// Failed writes queue nothing.
	do(s.DeleteProfile(ctx, "p"), nil)
	do(s.MarkDevice(ctx, "nope", secrets.Confirmed), nil)
	do(s.MarkDevice(ctx, "u", "bogus"), nil)
	do(s.PutDevice(ctx, "", secrets.Credentials{State: secrets.Pending}), nil)
	do(s.PutDomain(cancelled, "d2", secrets.DomainSecret{}), nil)
	do(s.DeleteDevice(ctx, "u"), &want{OpDelete, KindDevice, "u"})
	do(s.DeleteDomain(ctx, "d.example.com"), &want{OpDelete, KindDomain, "d.example.com"})

	check := func(got []OutboxEntry, wants []want, firstSeq uint64) {
		t.Helper()
		if len(got) != len(wants) {
			t.Fatalf("Outbox holds %d entries, want %d: %+v", len(got), len(wants), got)
		}
		for i, e := range got {
			w := wants[i]
			if e.Op != w.op || e.Kind != w.kind || e.Name != w.name {
				t.Errorf("entry %d = %s %s %q, want %s %s %q", i, e.Op, e.Kind, e.Name, w.op, w.kind, w.name)
			}
			if i > 0 && (e.Seq <= got[i-1].Seq || !e.Time.After(got[i-1].Time)) {
				t.Errorf("entry %d (seq %d, %s) is not after entry %d (seq %d, %s)", i, e.Seq, e.Time, i-1, got[i-1].Seq, got[i-1].Time)
			}
		}
		if len(got) > 0 && got[0].Seq != firstSeq {
			t.Errorf("first seq = %d, want %d", got[0].Seq, firstSeq)
		}
	}
	got, err := s.Outbox(ctx)
	if err != nil {
		t.Fatal(err)
	}
	check(got, wants, 1)

	// Ack removes exactly one entry, durably; a second Ack of it is ErrNotFound.
	if err := s.Ack(ctx, got[2].Seq); err != nil {
		t.Fatalf("Ack: %v", err)
	}
	if err := s.Ack(ctx, got[2].Seq); !errors.Is(err, secrets.ErrNotFound) {
		t.Errorf("second Ack: err = %v, want ErrNotFound", err)
	}
	if err := s.Ack(ctx, 9999); !errors.Is(err, secrets.ErrNotFound) {
		t.Errorf("Ack of an unknown seq: err = %v, want ErrNotFound", err)
	}
	if err := s.Ack(cancelled, got[0].Seq); !errors.Is(err, context.Canceled) {
		t.Errorf("Ack with a cancelled context: err = %v, want context.Canceled", err)
	}
	wants = append(wants[:2], wants[3:]...)
	s.Close()
	s = mustOpen(t, path, testDEK(1), WithClock(tick))
	got, err = s.Outbox(ctx)
	if err != nil {
		t.Fatal(err)
	}
	check(got, wants, 1)

	// Ack everything; later writes still get higher sequence numbers (a reused one could be mistaken for an
	// entry the sync already sent).
	last := got[len(got)-1].Seq
	for _, e := range got {
		if err := s.Ack(ctx, e.Seq); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := s.Outbox(ctx); err != nil || len(got) != 0 {
		t.Fatalf("Outbox after acking all = (%d entries, %v), want empty", len(got), err)
	}
	s.Close()
	s = mustOpen(t, path, testDEK(1), WithClock(tick))
	do(s.PutProfile(ctx, "after", secrets.ProfileSecret{}), &want{OpPut, KindProfile, "after"})
	got, err = s.Outbox(ctx)
	if err != nil {
		t.Fatal(err)
	}
	check(got, wants[len(wants)-1:], last+1)
}

// TestOutboxOrderAcrossByteBoundary checks that sequence numbers sort numerically past 255 and 65535: keys are
// big-endian, so bbolt's byte order is numeric order.
func TestOutboxOrderAcrossByteBoundary(t *testing.T) {
	s, path := openTemp(t)
	s.Close()
	rawUpdate(t, path, func(tx *bolt.Tx) error { return tx.Bucket([]byte(bucketOutbox)).SetSequence(65530) })
	s = mustOpen(t, path, testDEK(1))
	defer s.Close()
	for i := range 10 {
		if err := s.PutProfile(t.Context(), fmt.Sprint(i), secrets.ProfileSecret{}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Outbox(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range got {
		if e.Seq != uint64(65531+i) || e.Name != fmt.Sprint(i) {
			t.Errorf("entry %d = seq %d %q, want seq %d %q", i, e.Seq, e.Name, 65531+i, fmt.Sprint(i))
		}
	}
}

// TestValuesAreEncrypted looks for secrets in the raw file: none may appear in the clear.
func TestValuesAreEncrypted(t *testing.T) {
	s, path := openTemp(t)
	ctx := t.Context()
	const pw = "secret-password-plaintext-canary"
	pfx := bytes.Repeat([]byte("PFX-CANARY"), 50)
	for _, err := range []error{
		s.PutDomain(ctx, "dom", secrets.DomainSecret{PFX: pfx, Password: pw}),
		s.PutProfile(ctx, "prof", secrets.ProfileSecret{AMTPassword: pw, MEBxPassword: pw}),
		s.PutDevice(ctx, "dev", secrets.Credentials{AMTPassword: pw, MEBxPassword: pw, State: secrets.Pending}),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, canary := range []string{pw, "PFX-CANARY", "secret-password"} {
		if bytes.Contains(raw, []byte(canary)) {
			t.Errorf("the state file holds %q in the clear", canary)
		}
	}
}
