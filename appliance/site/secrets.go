package site

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"unicode/utf8"
)

// Size limits for secret files: a password file holds one short line; a
// PFX holds a certificate chain and a key.
const (
	maxPasswordFileSize = 4 << 10
	maxSecretFileSize   = 1 << 20
)

// Secret files must be regular files closed to "others": no read, write or
// execute bit for other users.
//
// Refuse, not warn: a world-readable password file means any local account
// can read the secret that controls every device on the site, and a warning
// in a log is easy to miss while the box works. Group access stays allowed
// because that is how a service account is normally given a file an
// operator owns (root:amtedge, mode 0640). The owner is not checked: the
// daemon runs under its own user and files are placed by root or by it.
const otherPermBits fs.FileMode = 0o007

// ReadSecret reads a one-line secret such as a password from path. The file
// must be a regular file that others cannot access. One trailing newline
// ("\n" or "\r\n", as editors add it) is removed; an empty secret, a second
// line or invalid UTF-8 is refused. Errors name the file and never its
// contents.
func ReadSecret(path string) (string, error) {
	b, err := readSecretFile(path, maxPasswordFileSize)
	if err != nil {
		return "", err
	}
	switch {
	case bytes.HasSuffix(b, []byte("\r\n")):
		b = b[:len(b)-2]
	case bytes.HasSuffix(b, []byte("\n")):
		b = b[:len(b)-1]
	}
	switch {
	case len(b) == 0:
		return "", fmt.Errorf("secret file %s is empty", path)
	case bytes.ContainsAny(b, "\r\n"):
		return "", fmt.Errorf("secret file %s holds more than one line; it must hold the secret alone (one trailing newline is allowed)", path)
	case !utf8.Valid(b):
		return "", fmt.Errorf("secret file %s is not UTF-8 text", path)
	}
	return string(b), nil
}

// ReadSecretBytes reads a binary secret such as a PFX from path, with the
// same file checks as ReadSecret.
func ReadSecretBytes(path string) ([]byte, error) {
	b, err := readSecretFile(path, maxSecretFileSize)
	if err != nil {
		return nil, err
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("secret file %s is empty", path)
	}
	return b, nil
}

func readSecretFile(path string, limit int64) ([]byte, error) {
	if path == "" {
		return nil, errors.New("no secret file given")
	}
	// Stat before opening: opening a FIFO or a device could block or have
	// side effects. The opened file is compared with what was checked so
	// a swap in between is noticed.
	before, err := statSecretFile(path)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("secret file: %w", err)
	}
	defer f.Close()
	after, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("secret file %s: %w", path, err)
	}
	if !os.SameFile(before, after) {
		return nil, fmt.Errorf("secret file %s changed while it was being opened", path)
	}
	if err := checkSecretMode(path, after); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("secret file %s: %w", path, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("secret file %s is larger than %d bytes", path, limit)
	}
	return b, nil
}

// statSecretFile checks a secret file without reading it.
func statSecretFile(path string) (fs.FileInfo, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("secret file: %w", err)
	}
	return fi, checkSecretMode(path, fi)
}

func checkSecretMode(path string, fi fs.FileInfo) error {
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("secret file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&otherPermBits != 0 {
		return fmt.Errorf("secret file %s is accessible to other users (mode %04o); secret files must not be: chmod o-rwx %s", path, perm, path)
	}
	return nil
}
