package access

import (
	"container/list"
	"crypto/sha256"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/amtedge/amtedge/appliance/events"
)

// SessionCookie is the browser session's cookie. The __Host- prefix makes browsers accept it only when Secure,
// with Path=/ and no Domain, so no other host (and no plain-HTTP page) can set or overwrite it.
const SessionCookie = "__Host-amtedge_session"

// session is one signed-in browser. Sessions live only in memory: a restart of the box signs everyone out.
type session struct {
	key      [sha256.Size]byte // SHA-256 of the cookie value; the value itself is not kept
	user     string
	csrf     string
	created  time.Time
	lastUsed time.Time
	el       *list.Element
}

// Login checks a sign-in from the login form and, on success, starts a session and sets its cookie. Its errors
// are safe to show on the login page.
func (g *Guard) Login(w http.ResponseWriter, r *http.Request, user, password string) error {
	remote := r.RemoteAddr
	if ok, reason := sameOrigin(r); !ok {
		g.refused(r, reason)
		return ErrCrossOrigin
	}
	if !g.HasAccounts() {
		g.log.Warn("admin sign-in refused", "event", events.AdminLoginFailed, "remote", remote, "reason", "no admin account yet")
		return ErrNoAccounts
	}
	src := sourceKey(remote)
	if wait, blocked := g.limiter.take(src, g.opts.Now()); blocked {
		g.log.Warn("admin sign-in refused", "event", events.AdminLoginFailed, "remote", remote, "reason", "too many attempts",
			"retry_after_s", retrySeconds(wait))
		w.Header().Set("Retry-After", strconv.FormatInt(retrySeconds(wait), 10))
		return &ThrottledError{RetryAfter: wait}
	}

	g.mu.Lock()
	acc, known := g.accounts[user]
	hash := ""
	if known {
		hash = acc.hash
	}
	g.mu.Unlock()
	if !known {
		hash = g.dummyHash()
	}
	var ok bool
	var err error
	// No account has a password over 256 characters: a longer one is wrong without being hashed (which would
	// cost time in proportion to its length).
	if len(password) <= 4*256 {
		if err := g.acquire(r.Context()); err != nil {
			return err
		}
		ok, err = verifyPassword(password, hash)
		g.release()
	}
	if err != nil && known {
		// A hash that does not parse was let in by no code path of this package; say so without the hash.
		g.log.Error("admin password hash unreadable", "user", user, "err", err)
	}
	if !ok || !known {
		// The attempt was charged by take before hashing.
		attrs := []any{"event", events.AdminLoginFailed, "remote", remote, "reason", "wrong user name or password"}
		if known {
			// An unknown name is not logged: people type their password into the name field by mistake.
			attrs = append(attrs, "user", user)
		}
		g.log.Warn("admin sign-in refused", attrs...)
		return ErrBadCredentials
	}
	g.limiter.succeed(src)

	id, err := randomString(32)
	if err != nil {
		return errBusy
	}
	csrf, err := randomString(32)
	if err != nil {
		return errBusy
	}
	now := g.opts.Now()
	s := &session{key: sha256.Sum256([]byte(id)), user: user, csrf: csrf, created: now, lastUsed: now}
	g.mu.Lock()
	if c, err := r.Cookie(SessionCookie); err == nil {
		// A new session id at every sign-in: a session id planted before sign-in never becomes authenticated.
		g.endLocked(sha256.Sum256([]byte(c.Value)))
	}
	if g.order.Len() >= maxSessions {
		g.pruneLocked(now)
	}
	for g.order.Len() >= maxSessions {
		// The table is full of live sessions: the oldest sign-in ends, so sign-ins keep working.
		g.endLocked(g.order.Front().Value.(*session).key)
	}
	s.el = g.order.PushBack(s)
	g.sessions[s.key] = s
	g.mu.Unlock()

	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: id, Path: "/", MaxAge: int(g.opts.AbsoluteTimeout / time.Second),
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	g.log.Info("admin signed in", "event", events.AdminLogin, "user", user, "remote", remote)
	return nil
}

// Logout ends the request's session, if any, and clears the cookie.
func (g *Guard) Logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(SessionCookie); err == nil {
		g.mu.Lock()
		s := g.sessions[sha256.Sum256([]byte(c.Value))]
		if s != nil {
			g.log.Info("admin signed out", "user", s.user, "remote", r.RemoteAddr)
			g.endLocked(s.key)
		}
		g.mu.Unlock()
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1, Secure: true, HttpOnly: true,
		SameSite: http.SameSiteStrictMode})
}

// errNoSession and errSessionEnded tell Page and API why there is no principal.
var (
	errNoSession    = errors.New("not signed in")
	errSessionEnded = errors.New("the session ended; sign in again")
)

// session finds the request's live session and refreshes its idle timer; it returns a copy.
func (g *Guard) session(r *http.Request) (session, error) {
	c, err := r.Cookie(SessionCookie)
	if err != nil || c.Value == "" {
		return session{}, errNoSession
	}
	if len(c.Value) > 128 {
		return session{}, errSessionEnded
	}
	key := sha256.Sum256([]byte(c.Value))
	now := g.opts.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	s, ok := g.sessions[key]
	if !ok {
		return session{}, errSessionEnded
	}
	if now.Sub(s.created) >= g.opts.AbsoluteTimeout || now.Sub(s.lastUsed) >= g.opts.IdleTimeout {
		g.endLocked(key)
		return session{}, errSessionEnded
	}
	// A page's own background refresh (the dashboard polls its live parts) is not use: without this an open
	// dashboard would keep a walked-away technician's session alive forever.
	if r.Header.Get(BackgroundHeader) == "" {
		s.lastUsed = now
	}
	return *s, nil
}

// BackgroundHeader marks a request a page makes by itself (a poll), which does not count as use of the session
// for its idle timeout. The UI's polling elements send it.
const BackgroundHeader = "X-Amtedge-Background"

// endLocked ends one session (g.mu held).
func (g *Guard) endLocked(key [sha256.Size]byte) {
	if s, ok := g.sessions[key]; ok {
		delete(g.sessions, key)
		g.order.Remove(s.el)
	}
}

// pruneLocked ends the sessions that have expired (g.mu held). Expired sessions otherwise end when next seen.
func (g *Guard) pruneLocked(now time.Time) {
	for key, s := range g.sessions {
		if now.Sub(s.created) >= g.opts.AbsoluteTimeout || now.Sub(s.lastUsed) >= g.opts.IdleTimeout {
			g.endLocked(key)
		}
	}
}

// endSessionsLocked ends every session of a user and returns how many there were (g.mu held).
func (g *Guard) endSessionsLocked(user string) int {
	n := 0
	for key, s := range g.sessions {
		if s.user == user {
			g.endLocked(key)
			n++
		}
	}
	return n
}
