package access

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/amtedge/amtedge/appliance/atomicfile"
)

// The accounts file: {"version":1,"accounts":[{"user","hash","changed"}],"tokens":[{"name","scope","sha256",
// "created","lastUsed"}]}. Only hashes: a copy of the file lets nobody sign in or call the API.

const (
	fileVersion = 1
	maxFileSize = 4 << 20
	maxAccounts = 100
	maxTokens   = 1000
)

type fileData struct {
	Version  int           `json:"version"`
	Accounts []fileAccount `json:"accounts"`
	Tokens   []fileToken   `json:"tokens"`
}

type fileAccount struct {
	User    string    `json:"user"`
	Hash    string    `json:"hash"`
	Changed time.Time `json:"changed"`
}

type fileToken struct {
	Name     string    `json:"name"`
	Scope    Scope     `json:"scope"`
	SHA256   string    `json:"sha256"`
	Created  time.Time `json:"created"`
	LastUsed time.Time `json:"lastUsed"`

	hash [sha256.Size]byte // SHA256 decoded
}

// readFile reads and checks the accounts file; a missing file is an empty one. A file others may read or write
// is refused: it would let them read the hashes or add an account.
func readFile(path string) (*fileData, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return &fileData{Version: fileVersion}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("accounts file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("accounts file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("accounts file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("accounts file %s has mode %04o: it holds password hashes and must be 0600 (chmod 600 %s)",
			path, perm, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("accounts file: %w", err)
	}
	fd, err := decodeFile(data)
	if err != nil {
		return nil, fmt.Errorf("accounts file %s: %w", path, err)
	}
	return fd, nil
}

// decodeFile parses and validates the accounts file's content. Errors name the entry, never a hash.
func decodeFile(data []byte) (*fileData, error) {
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("larger than %d bytes", maxFileSize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var fd fileData
	if err := dec.Decode(&fd); err != nil {
		return nil, fmt.Errorf("not valid JSON: %w", err)
	}
	if dec.More() {
		return nil, errors.New("data after the JSON object")
	}
	if fd.Version != fileVersion {
		return nil, fmt.Errorf("version %d: this amtedge reads version %d", fd.Version, fileVersion)
	}
	if len(fd.Accounts) > maxAccounts || len(fd.Tokens) > maxTokens {
		return nil, fmt.Errorf("more than %d accounts or %d tokens", maxAccounts, maxTokens)
	}
	users := map[string]bool{}
	for i, a := range fd.Accounts {
		if err := validName("user", a.User); err != nil {
			return nil, fmt.Errorf("accounts[%d]: %w", i, err)
		}
		if users[a.User] {
			return nil, fmt.Errorf("accounts[%d]: user %s appears twice", i, a.User)
		}
		users[a.User] = true
		if _, _, _, err := parsePHC(a.Hash); err != nil {
			return nil, fmt.Errorf("accounts[%d] (%s): %w", i, a.User, err)
		}
	}
	names := map[string]bool{}
	hashes := map[[sha256.Size]byte]bool{}
	for i := range fd.Tokens {
		t := &fd.Tokens[i]
		if err := validName("token", t.Name); err != nil {
			return nil, fmt.Errorf("tokens[%d]: %w", i, err)
		}
		if names[t.Name] {
			return nil, fmt.Errorf("tokens[%d]: token %s appears twice", i, t.Name)
		}
		names[t.Name] = true
		if t.Scope != ScopeRead && t.Scope != ScopeWrite {
			return nil, fmt.Errorf("tokens[%d] (%s): scope must be read or write", i, t.Name)
		}
		b, err := hex.DecodeString(t.SHA256)
		if err != nil || len(b) != sha256.Size || hex.EncodeToString(b) != t.SHA256 {
			return nil, fmt.Errorf("tokens[%d] (%s): sha256 is not 64 lower-case hex digits", i, t.Name)
		}
		copy(t.hash[:], b)
		if hashes[t.hash] {
			return nil, fmt.Errorf("tokens[%d] (%s): the same secret as another token", i, t.Name)
		}
		hashes[t.hash] = true
	}
	return &fd, nil
}

// saveLocked writes the accounts and tokens (g.mu held). The file is replaced atomically — temp file, fsync,
// rename, directory fsync — so a crash leaves either the old or the new file, never a torn one.
func (g *Guard) saveLocked() error {
	fd := fileData{Version: fileVersion, Accounts: []fileAccount{}, Tokens: []fileToken{}}
	for _, a := range sortedKeys(g.accounts) {
		acc := g.accounts[a]
		fd.Accounts = append(fd.Accounts, fileAccount{User: acc.user, Hash: acc.hash, Changed: acc.changed})
	}
	for _, n := range sortedKeys(g.tokens) {
		t := g.tokens[n]
		fd.Tokens = append(fd.Tokens, fileToken{Name: t.Name, Scope: t.Scope, SHA256: hex.EncodeToString(t.hash[:]),
			Created: t.Created, LastUsed: t.LastUsed})
	}
	data, err := json.MarshalIndent(fd, "", "  ")
	if err != nil {
		return internalError{fmt.Errorf("accounts file: encode: %w", err)}
	}
	if err := atomicfile.Write(g.opts.Path, append(data, '\n'), fileMode); err != nil {
		return internalError{fmt.Errorf("accounts file: %w", err)}
	}
	for _, t := range g.tokens {
		t.savedLastUsed = t.LastUsed
	}
	return nil
}
