package access

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParsePHC: the hash decoder never panics, and what it accepts is canonical (formats back to the input).
func FuzzParsePHC(f *testing.F) {
	f.Add("$argon2id$v=19$m=65536,t=3,p=2$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g")
	f.Add("$argon2id$v=19$m=64,t=1,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Add("$argon2i$v=19$m=65536,t=3,p=2$salt$hash")
	f.Add("$argon2id$v=19$m=065536,t=3,p=2$c2FsdHNhbHQ$aGFzaA")
	f.Add("$argon2id$v=19$m=4294967295,t=4294967295,p=255$AA$AA")
	f.Add("")
	f.Add("$argon2id$v=19$m=~")
	f.Fuzz(func(t *testing.T, s string) {
		p, salt, key, err := parsePHC(s)
		if err != nil {
			// No message of parsePHC contains '~', so an input with one found in the error was quoted.
			if strings.Contains(s, "~") && strings.Contains(err.Error(), s) {
				t.Errorf("the error quotes the input: %v", err)
			}
			return
		}
		if got := formatPHC(p, salt, key); got != s {
			t.Errorf("accepted a non-canonical hash: %q formats as %q", s, got)
		}
		if p.memory > maxMemoryKiB || p.time > maxTime || p.threads == 0 {
			t.Errorf("accepted parameters out of bounds: %+v", p)
		}
	})
}

// FuzzDecodeFile: the accounts file decoder never panics, and a file it accepts survives a write and a re-read.
func FuzzDecodeFile(f *testing.F) {
	hash := "$argon2id$v=19$m=64,t=1,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	f.Add([]byte(`{"version":1,"accounts":[],"tokens":[]}`))
	f.Add([]byte(`{"version":1,"accounts":[{"user":"admin","hash":"` + hash + `","changed":"2026-01-01T00:00:00Z"}],` +
		`"tokens":[{"name":"ci","scope":"read","sha256":"` + strings.Repeat("0f", 32) + `","created":"2026-01-01T00:00:00Z","lastUsed":"0001-01-01T00:00:00Z"}]}`))
	f.Add([]byte(`{"version":1,"accounts":[{"user":"admin","hash":"x"}]}`))
	f.Add([]byte(`{"version":1,"tokens":[{"name":"a","scope":"write","sha256":"` + strings.Repeat("00", 32) + `"},{"name":"b","scope":"write","sha256":"` + strings.Repeat("00", 32) + `"}]}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		fd, err := decodeFile(data)
		if err != nil {
			return
		}
		g := &Guard{opts: Options{Path: filepath.Join(t.TempDir(), "a.json")}, accounts: map[string]*account{}, tokens: map[string]*token{}}
		for _, a := range fd.Accounts {
			g.accounts[a.User] = &account{user: a.User, hash: a.Hash, changed: a.Changed}
		}
		for _, tk := range fd.Tokens {
			g.tokens[tk.Name] = &token{TokenInfo: TokenInfo{Name: tk.Name, Scope: tk.Scope, Created: tk.Created, LastUsed: tk.LastUsed}, hash: tk.hash}
		}
		if err := g.saveLocked(); err != nil {
			t.Fatal(err)
		}
		again, err := readFile(g.opts.Path)
		if err != nil {
			t.Fatalf("a file the decoder accepted does not read back after a save: %v", err)
		}
		if len(again.Accounts) != len(fd.Accounts) || len(again.Tokens) != len(fd.Tokens) {
			t.Fatalf("the save lost entries: %d/%d accounts, %d/%d tokens", len(again.Accounts), len(fd.Accounts), len(again.Tokens), len(fd.Tokens))
		}
	})
}

// FuzzControlBody: any body to the control endpoints gets a JSON answer that never echoes the password field.
func FuzzControlBody(f *testing.F) {
	f.Add("/api/v1/accounts/init", `{"user":"admin","password":"a long enough password"}`)
	f.Add("/api/v1/accounts/password", `{"user":"admin","password":"x~"}`)
	f.Add("/api/v1/accounts/init", `{"user":"admin","password":"admin~admin~"}`)
	f.Add("/api/v1/tokens", `{"name":"ci","scope":"read"}`)
	f.Add("/api/v1/tokens", `{"name":"ci","scope":"read","x":1}`)
	f.Add("/api/v1/accounts/init", `{"user":"adm`)
	g, err := Open(Options{Path: filepath.Join(f.TempDir(), "accounts.json")})
	if err != nil {
		f.Fatal(err)
	}
	h := g.ControlHandler()
	f.Fuzz(func(t *testing.T, path, body string) {
		if path != "/api/v1/accounts/init" && path != "/api/v1/accounts/password" && path != "/api/v1/tokens" {
			return
		}
		r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		var out map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
			t.Fatalf("answer %d is not JSON: %q", w.Code, w.Body.String())
		}
		var req AccountRequest
		// No message of the handler contains '~', so a password with one found in the answer was echoed.
		if json.Unmarshal([]byte(body), &req) == nil && strings.Contains(req.Password, "~") && strings.Contains(w.Body.String(), req.Password) {
			t.Errorf("the answer echoes the password: %s", w.Body.String())
		}
	})
}
