// Package access is the security layer in front of the box's web UI and REST API on the admin TLS listener:
// admin accounts (argon2id password hashes in a 0600 JSON file), browser sessions (an in-memory table behind a
// __Host- cookie, with a per-session CSRF token), a per-source sign-in rate limit, API tokens for automation
// (stored as SHA-256 hashes, shown once), the same-origin checks that keep other sites from using an operator's
// session, and the control-socket handler the `amtedge admin` CLI talks to.
//
// What it must never do: put a secret — a password, a token secret, a session id or a CSRF token — into a log
// line, an error text or a response body (a token secret leaves exactly once, in the answer that creates it);
// tell a client whether a user name exists; check a password for a source that is being throttled; or trust a
// proxy header for a client's address (the admin listener is direct TLS).
package access

import (
	"container/list"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/amtedge/amtedge/appliance/events"
)

// Scope is what an API token may do.
type Scope string

// The scopes: read may only GET and HEAD; write may do anything the API offers.
const (
	ScopeRead  Scope = "read"
	ScopeWrite Scope = "write"
)

// Defaults for Options.
const (
	DefaultIdleTimeout     = 30 * time.Minute
	DefaultAbsoluteTimeout = 12 * time.Hour
	DefaultLoginAttempts   = 5
	DefaultLoginWindow     = 5 * time.Minute
)

// Bounds on the in-memory tables, so a flood of sources or sign-ins cannot grow the box's memory without end.
const (
	maxSessions      = 1000
	maxLimiterSource = 10000
	// hashSlots bounds concurrent argon2id computations: each takes 64 MiB and a core for a moment.
	hashSlots = 2
)

// Options configures a Guard.
type Options struct {
	Path            string        // accounts file: JSON, mode 0600, written atomically
	IdleTimeout     time.Duration // default 30m: a session unused that long ends
	AbsoluteTimeout time.Duration // default 12h: a session ends that long after login whatever its use
	LoginAttempts   int           // default 5 failed attempts per source IP …
	LoginWindow     time.Duration // … per 5m window; then refused for the rest of the window without checking
	Log             *slog.Logger  // events (appliance/events); default: discard
	Now             func() time.Time
}

// Errors. Their texts are safe to show to whoever is signing in: they say nothing about which user names exist.
var (
	ErrBadCredentials = errors.New("wrong user name or password")
	ErrNoAccounts     = errors.New("no admin account yet: run `amtedge admin init` on the box")
	ErrCrossOrigin    = errors.New("sign-in refused: the form was not sent from this box's own sign-in page")
	ErrInitialized    = errors.New("an admin account already exists: change a password with `amtedge admin passwd`")
	ErrNoSuchUser     = errors.New("no such admin account")
	ErrNoSuchToken    = errors.New("no such API token")
	ErrTokenExists    = errors.New("an API token with that name already exists: revoke it first or pick another name")
	errBusy           = errors.New("the box is busy; try again in a moment")
)

// ThrottledError is returned by Login while a source is refused for too many failed sign-ins.
type ThrottledError struct {
	RetryAfter time.Duration
}

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("too many failed sign-ins from your address; try again in %d s", retrySeconds(e.RetryAfter))
}

// retrySeconds rounds up, so a client that waits the number it was told is never refused again.
func retrySeconds(d time.Duration) int64 {
	s := int64((d + time.Second - 1) / time.Second)
	return max(s, 1)
}

// TokenInfo describes an API token; the secret is not kept.
type TokenInfo struct {
	Name     string    `json:"name"`
	Scope    Scope     `json:"scope"`
	Created  time.Time `json:"created"`
	LastUsed time.Time `json:"lastUsed"` // zero: never used
}

// Guard holds the accounts, tokens and sessions and serves the middleware.
type Guard struct {
	opts  Options
	log   *slog.Logger
	slots chan struct{}

	dummyOnce sync.Once
	dummy     string // a hash of a random password, compared for unknown users

	mu       sync.Mutex
	accounts map[string]*account // by user name
	tokens   map[string]*token   // by name
	byHash   map[[sha256.Size]byte]*token
	sessions map[[sha256.Size]byte]*session // by SHA-256 of the session id
	order    *list.List                     // sessions, oldest login first

	limiter *limiter

	// streamCheck is how often a running stream (Stream) checks that its session still lives.
	streamCheck time.Duration
}

var namePattern = regexp.MustCompile(`^[a-z][a-z0-9_.-]{0,31}$`)

// validName checks a user or token name.
func validName(kind, name string) error {
	if !namePattern.MatchString(name) {
		return fmt.Errorf("%s name %q is not valid: 1 to 32 characters, a lower-case letter first, then a-z, 0-9, '_', '.', '-'",
			kind, truncate(name, 40))
	}
	return nil
}

// validPassword checks a new password; the error never quotes it.
func validPassword(user, password string) error {
	if !utf8.ValidString(password) {
		return errors.New("the password is not valid UTF-8 text")
	}
	n := utf8.RuneCountInString(password)
	if n < 12 || n > 256 {
		return fmt.Errorf("the password has %d characters: it needs 12 to 256", n)
	}
	if strings.IndexFunc(password, unicode.IsControl) >= 0 {
		return errors.New("the password contains a control character (a tab, a line break, …): use printable characters")
	}
	if strings.EqualFold(password, user) {
		return errors.New("the password may not be the user name")
	}
	return nil
}

// Open reads the accounts file, if it exists; a missing file means no accounts yet.
func Open(opts Options) (*Guard, error) {
	if opts.Path == "" {
		return nil, errors.New("access: the accounts file path is empty")
	}
	switch {
	case opts.IdleTimeout < 0:
		return nil, fmt.Errorf("access: session idle timeout %s is negative", opts.IdleTimeout)
	case opts.AbsoluteTimeout < 0:
		return nil, fmt.Errorf("access: session maximum %s is negative", opts.AbsoluteTimeout)
	case opts.LoginAttempts < 0:
		return nil, fmt.Errorf("access: login attempts %d is negative", opts.LoginAttempts)
	case opts.LoginWindow < 0:
		return nil, fmt.Errorf("access: login window %s is negative", opts.LoginWindow)
	}
	if opts.IdleTimeout == 0 {
		opts.IdleTimeout = DefaultIdleTimeout
	}
	if opts.AbsoluteTimeout == 0 {
		opts.AbsoluteTimeout = DefaultAbsoluteTimeout
	}
	if opts.LoginAttempts == 0 {
		opts.LoginAttempts = DefaultLoginAttempts
	}
	if opts.LoginWindow == 0 {
		opts.LoginWindow = DefaultLoginWindow
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	g := &Guard{
		opts:     opts,
		log:      opts.Log,
		slots:    make(chan struct{}, hashSlots),
		accounts: map[string]*account{},
		tokens:   map[string]*token{},
		byHash:   map[[sha256.Size]byte]*token{},
		sessions: map[[sha256.Size]byte]*session{},
		order:    list.New(),
		limiter:  newLimiter(opts.LoginAttempts, opts.LoginWindow, maxLimiterSource),

		streamCheck: 10 * time.Second,
	}
	f, err := readFile(opts.Path)
	if err != nil {
		return nil, err
	}
	for _, a := range f.Accounts {
		g.accounts[a.User] = &account{user: a.User, hash: a.Hash, changed: a.Changed}
	}
	for _, t := range f.Tokens {
		tk := &token{TokenInfo: TokenInfo{Name: t.Name, Scope: t.Scope, Created: t.Created, LastUsed: t.LastUsed}, hash: t.hash,
			savedLastUsed: t.LastUsed}
		g.tokens[t.Name] = tk
		g.byHash[t.hash] = tk
	}
	return g, nil
}

// account is one admin account.
type account struct {
	user    string
	hash    string // PHC string
	changed time.Time
}

// HasAccounts says whether an admin account exists (the UI tells the operator to run `amtedge admin init` if not).
func (g *Guard) HasAccounts() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.accounts) > 0
}

// InitAdmin creates the first admin account; once one exists it returns ErrInitialized.
func (g *Guard) InitAdmin(user, password string) error {
	if err := validName("user", user); err != nil {
		return err
	}
	if err := validPassword(user, password); err != nil {
		return err
	}
	if g.HasAccounts() { // cheap early answer; checked again under the lock below
		return ErrInitialized
	}
	hash, err := g.hashPassword(context.Background(), password)
	if err != nil {
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.accounts) > 0 {
		return ErrInitialized
	}
	g.accounts[user] = &account{user: user, hash: hash, changed: g.opts.Now().UTC()}
	if err := g.saveLocked(); err != nil {
		delete(g.accounts, user)
		return err
	}
	g.log.Info("admin account created", "event", events.AdminAccountChanged, "user", user, "action", "init")
	return nil
}

// SetPassword changes an account's password and ends all of that account's sessions.
func (g *Guard) SetPassword(user, password string) error {
	if err := validName("user", user); err != nil {
		return err
	}
	if err := validPassword(user, password); err != nil {
		return err
	}
	g.mu.Lock()
	_, ok := g.accounts[user]
	g.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: %s", ErrNoSuchUser, user)
	}
	hash, err := g.hashPassword(context.Background(), password)
	if err != nil {
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	a, ok := g.accounts[user]
	if !ok {
		return fmt.Errorf("%w: %s", ErrNoSuchUser, user)
	}
	old := *a
	a.hash, a.changed = hash, g.opts.Now().UTC()
	if err := g.saveLocked(); err != nil {
		*a = old
		return err
	}
	ended := g.endSessionsLocked(user)
	g.log.Info("admin password changed", "event", events.AdminAccountChanged, "user", user, "action", "password",
		"sessions_ended", ended)
	return nil
}

// hashPassword hashes with the current parameters, waiting for a free slot (bounded by ctx).
func (g *Guard) hashPassword(ctx context.Context, password string) (string, error) {
	if err := g.acquire(ctx); err != nil {
		return "", err
	}
	defer g.release()
	h, err := hashPassword(password, hashParams)
	if err != nil {
		return "", internalError{err}
	}
	return h, nil
}

// internalError is a failure of the box (disk, randomness), not of the request: the control socket answers 500.
type internalError struct{ error }

func (e internalError) Unwrap() error { return e.error }

func (g *Guard) acquire(ctx context.Context) error {
	select {
	case g.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return errBusy
	}
}

func (g *Guard) release() { <-g.slots }

// dummyHash is a hash no password given to Login matches: comparing against it for an unknown user name costs
// what a known one costs, so the time of an answer does not tell which names exist.
func (g *Guard) dummyHash() string {
	g.dummyOnce.Do(func() {
		pw, err := randomString(32)
		if err == nil {
			g.dummy, err = hashPassword(pw, hashParams)
		}
		if err != nil {
			// Without randomness the box cannot make sessions either; a fixed, unmatchable value keeps the
			// comparison failing (verifyPassword rejects it as malformed, quickly — acceptable in this state).
			g.dummy = "$argon2id$invalid"
		}
	})
	return g.dummy
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// fileMode is the accounts file's mode: it holds password hashes.
const fileMode os.FileMode = 0o600
