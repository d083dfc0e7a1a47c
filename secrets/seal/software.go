package seal

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// DefaultFile is the name of the software-mode key file in the state directory.
const DefaultFile = "dek"

// Software keeps the DEK in a plain file readable only by its owner (mode 0600). It protects the key only as
// far as file permissions do: anyone who can read the state directory's backups has the key. It is the mode
// for boxes without a TPM, and for tests.
type Software struct {
	path string
}

var _ Sealer = (*Software)(nil)

// NewSoftware returns a Software sealer keeping its key in the file at path.
func NewSoftware(path string) *Software { return &Software{path: path} }

// NewSoftwareIn returns a Software sealer keeping its key in DefaultFile in stateDir.
func NewSoftwareIn(stateDir string) *Software {
	return NewSoftware(filepath.Join(stateDir, DefaultFile))
}

// Path is the key file's path.
func (s *Software) Path() string { return s.path }

// Unseal reads the key file. It refuses a file that is not a regular file, that its group or other users may
// access (the key would be as good as published), or that does not hold exactly KeySize bytes.
func (s *Software) Unseal(ctx context.Context) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("read data-encryption key %s: %w", s.path, err)
	}
	f, fi, err := openPrivate(s.path, "read data-encryption key", "the key")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// Read one byte more than a key so a longer file is detected even if its size changed since Stat.
	buf := make([]byte, KeySize+1)
	n, err := io.ReadFull(f, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read data-encryption key: %w", err)
	}
	if n != KeySize {
		size := fmt.Sprintf("%d bytes", n)
		if n > KeySize {
			size = fmt.Sprintf("%d bytes", fi.Size())
		}
		return nil, fmt.Errorf("read data-encryption key %s: file holds %s, want exactly %d (damaged or not a key file)", s.path, size, KeySize)
	}
	dek := buf[:KeySize]
	if allZero(dek) {
		// What a file system may leave after a power cut during the first write: not a key anyone made.
		return nil, fmt.Errorf("read data-encryption key %s: file holds only zero bytes (damaged)", s.path)
	}
	return dek, nil
}

// Create writes a new random key: to a temporary file (mode 0600) that is fsync'd, then linked to the final name,
// then the directory is fsync'd, so the key is either wholly there or not there after a crash. A link, unlike a
// rename, fails when the name exists: two processes starting at once cannot replace a key the other one already
// uses.
func (s *Software) Create(ctx context.Context) (dek []byte, err error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("create data-encryption key %s: %w", s.path, err)
	}
	dek = make([]byte, KeySize)
	if _, err := rand.Read(dek); err != nil {
		return nil, fmt.Errorf("create data-encryption key: random source: %w", err)
	}
	if err := linkNewFile(s.path, dek); errors.Is(err, ErrKeyExists) {
		return nil, fmt.Errorf("create data-encryption key %s: %w", s.path, err)
	} else if err != nil {
		return nil, fmt.Errorf("create data-encryption key: %w", err)
	}
	if err := syncDir(filepath.Dir(s.path)); err != nil {
		return nil, fmt.Errorf("create data-encryption key %s: %w", s.path, err)
	}
	return dek, nil
}

// openPrivate opens the file at path for reading, refusing one that is not a regular file or that its group or
// other users may access; what names its contents in that refusal. Errors start with op (when not empty) and, where
// they are about the file, its path. The caller closes the file.
func openPrivate(path, op, what string) (*os.File, fs.FileInfo, error) {
	wrap := func(err error) error {
		if op == "" {
			return err
		}
		return fmt.Errorf("%s: %w", op, err)
	}
	named := strings.TrimPrefix(op+" "+path, " ") // "op path", or the path alone
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("%s: %w", named, ErrNoKey)
	}
	if err != nil {
		return nil, nil, wrap(err)
	}
	// Stat the opened file, not the path, so the checks apply to the bytes read.
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, wrap(err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, nil, fmt.Errorf("%s: not a regular file (%s)", named, fi.Mode().Type())
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		f.Close()
		return nil, nil, fmt.Errorf("%s: file mode %04o lets its group or other users access %s; refusing to use it "+
			"(it must be 0600, owned by the service user)", named, perm, what)
	}
	return f, fi, nil
}

// syncDir fsyncs a directory so a name just linked or created in it survives a power cut.
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

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
