package seal

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestSoftwareCreateUnseal(t *testing.T) {
	dir := t.TempDir()
	s := NewSoftwareIn(dir)
	if want := filepath.Join(dir, "dek"); s.Path() != want {
		t.Fatalf("Path() = %q, want %q", s.Path(), want)
	}
	ctx := t.Context()

	_, err := s.Unseal(ctx)
	if !errors.Is(err, ErrNoKey) {
		t.Fatalf("Unseal before Create: err = %v, want ErrNoKey", err)
	}
	if !strings.Contains(err.Error(), s.Path()) {
		t.Errorf("Unseal before Create: error %q does not name the file", err)
	}

	dek, err := s.Create(ctx)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if len(dek) != KeySize {
		t.Fatalf("Create returned %d bytes, want %d", len(dek), KeySize)
	}
	fi, err := os.Stat(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("key file mode = %04o, want 0600", perm)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("state directory holds %q after Create, want only the key file (no temporary file left)", names)
	}

	got, err := s.Unseal(ctx)
	if err != nil {
		t.Fatalf("Unseal: %v", err)
	}
	if !bytes.Equal(got, dek) {
		t.Fatal("Unseal returned a different key than Create")
	}

	// Create never replaces a key: the state file encrypted under it would be lost.
	_, err = s.Create(ctx)
	if !errors.Is(err, ErrKeyExists) {
		t.Fatalf("second Create: err = %v, want ErrKeyExists", err)
	}
	if got, err := s.Unseal(ctx); err != nil || !bytes.Equal(got, dek) {
		t.Fatalf("after a refused Create, Unseal = (key equal: %v, %v), want the first key", bytes.Equal(got, dek), err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("a refused Create left %d entries in the directory, want 1", len(entries))
	}

	// Keys are random.
	other, err := NewSoftware(filepath.Join(dir, "other")).Create(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(other, dek) {
		t.Error("two Creates made the same key")
	}
}

func TestSoftwareRefusesBadFiles(t *testing.T) {
	good := bytes.Repeat([]byte{0xa5}, KeySize)
	tests := []struct {
		name    string
		content []byte
		mode    os.FileMode
		dir     bool
		want    string // in the error, next to the path
	}{
		{name: "group readable", content: good, mode: 0o640, want: "0640"},
		{name: "world readable", content: good, mode: 0o604, want: "0604"},
		{name: "group writable", content: good, mode: 0o620, want: "0620"},
		{name: "everyone", content: good, mode: 0o666, want: "0666"},
		{name: "empty", content: nil, mode: 0o600, want: "0 bytes"},
		{name: "short", content: good[:31], mode: 0o600, want: "31 bytes"},
		{name: "long", content: append(good, 1), mode: 0o600, want: "33 bytes"},
		{name: "much longer", content: bytes.Repeat(good, 4), mode: 0o600, want: "128 bytes"},
		{name: "all zero", content: make([]byte, KeySize), mode: 0o600, want: "zero"},
		{name: "directory", dir: true, want: "not a regular file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), DefaultFile)
			if tt.dir {
				if err := os.Mkdir(path, 0o700); err != nil {
					t.Fatal(err)
				}
			} else {
				if err := os.WriteFile(path, tt.content, 0o600); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(path, tt.mode); err != nil { // not subject to the umask
					t.Fatal(err)
				}
			}
			dek, err := NewSoftware(path).Unseal(t.Context())
			if err == nil {
				t.Fatalf("Unseal = %d bytes, nil; want an error", len(dek))
			}
			if errors.Is(err, ErrNoKey) {
				t.Errorf("err = %v wraps ErrNoKey: a caller would create a new key over the existing file", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, path) || !strings.Contains(msg, tt.want) {
				t.Errorf("err = %q, want it to name %s and say %q", msg, path, tt.want)
			}
			if len(tt.content) >= 4 && (strings.Contains(msg, hex.EncodeToString(tt.content[:4])) || strings.Contains(msg, string(tt.content[:4]))) {
				t.Errorf("err = %q carries key bytes", msg)
			}
			// LoadOrCreate must not paper over a damaged key by creating a new one.
			if _, _, err := LoadOrCreate(t.Context(), NewSoftware(path)); err == nil {
				t.Error("LoadOrCreate over a refused key file: err = nil, want the Unseal error")
			}
		})
	}
}

func TestSoftwareAcceptsOwnerOnlyModes(t *testing.T) {
	for _, mode := range []os.FileMode{0o600, 0o400, 0o700} {
		path := filepath.Join(t.TempDir(), DefaultFile)
		key := bytes.Repeat([]byte{7}, KeySize)
		if err := os.WriteFile(path, key, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		got, err := NewSoftware(path).Unseal(t.Context())
		if err != nil || !bytes.Equal(got, key) {
			t.Errorf("mode %04o: Unseal = (equal: %v, %v), want the key", mode, bytes.Equal(got, key), err)
		}
	}
}

func TestSoftwareErrors(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	s := NewSoftwareIn(t.TempDir())
	if _, err := s.Create(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Create with a cancelled context: err = %v, want context.Canceled", err)
	}
	if _, err := os.Stat(s.Path()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Create with a cancelled context wrote the key file (stat: %v)", err)
	}
	if _, err := s.Unseal(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Unseal with a cancelled context: err = %v, want context.Canceled", err)
	}

	missing := NewSoftware(filepath.Join(t.TempDir(), "no-such-dir", DefaultFile))
	if _, err := missing.Create(t.Context()); err == nil || !strings.Contains(err.Error(), "no-such-dir") {
		t.Errorf("Create in a missing directory: err = %v, want one naming the directory", err)
	}
}

func TestLoadOrCreate(t *testing.T) {
	s := NewSoftwareIn(t.TempDir())
	first, created, err := LoadOrCreate(t.Context(), s)
	if err != nil || !created || len(first) != KeySize {
		t.Fatalf("first LoadOrCreate = (%d bytes, created %v, %v), want a new key", len(first), created, err)
	}
	again, created, err := LoadOrCreate(t.Context(), s)
	if err != nil || created || !bytes.Equal(again, first) {
		t.Fatalf("second LoadOrCreate = (same key: %v, created %v, %v), want the first key, not created", bytes.Equal(again, first), created, err)
	}
}

// TestLoadOrCreateRace starts several creators on an empty directory at once, as two daemons started together
// would: every one of them must end up with the same key.
func TestLoadOrCreateRace(t *testing.T) {
	for range 20 {
		dir := t.TempDir()
		const n = 8
		keys := make([][]byte, n)
		var created sync.Map
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				dek, c, err := LoadOrCreate(t.Context(), NewSoftwareIn(dir))
				if err != nil {
					t.Errorf("LoadOrCreate %d: %v", i, err)
					return
				}
				keys[i] = dek
				if c {
					created.Store(i, true)
				}
			})
		}
		wg.Wait()
		for i := 1; i < n; i++ {
			if !bytes.Equal(keys[i], keys[0]) {
				t.Fatalf("creator %d got a different key than creator 0", i)
			}
		}
		count := 0
		created.Range(func(any, any) bool { count++; return true })
		if count != 1 {
			t.Fatalf("%d creators report having created the key, want exactly 1", count)
		}
	}
}

// fakeSealer stands in for a mode that hands out a bad key, to check LoadOrCreate's guard.
type fakeSealer struct{ key []byte }

func (f fakeSealer) Unseal(context.Context) ([]byte, error) { return f.key, nil }
func (f fakeSealer) Create(context.Context) ([]byte, error) { return nil, errors.New("unused") }

func TestLoadOrCreateChecksKeySize(t *testing.T) {
	if _, _, err := LoadOrCreate(t.Context(), fakeSealer{key: make([]byte, 16)}); err == nil {
		t.Error("LoadOrCreate accepted a 16-byte key")
	}
}
