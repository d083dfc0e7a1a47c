package access

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/amtedge/amtedge/appliance/events"
)

// CSRFField and CSRFHeader carry a session's CSRF token on requests that change state.
const (
	CSRFField  = "csrf_token"
	CSRFHeader = "X-CSRF-Token"
)

type principalKey struct{}

// principal is who a request acts as, put in its context by Page, Stream and API.
type principal struct {
	name string // the user, or "token:<name>"
	csrf string // the session's CSRF token; "" for tokens
}

// User returns, inside Page, Stream or API, the principal's name ("token:<name>" for API tokens) and the
// session's CSRF token ("" for tokens). Outside them both are "".
func (g *Guard) User(r *http.Request) (user, csrf string) {
	p, _ := r.Context().Value(principalKey{}).(principal)
	return p.name, p.csrf
}

func withPrincipal(r *http.Request, p principal) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), principalKey{}, p))
}

func safeMethod(m string) bool { return m == http.MethodGet || m == http.MethodHead }

// Page guards the UI's pages: without a live session a GET or HEAD is sent to the sign-in page (303 to
// /login?next=<this path>) and anything else gets 403; a request that changes state needs a same-origin request
// and the session's CSRF token (form field csrf_token or header X-CSRF-Token). Each use refreshes the idle timer.
func (g *Guard) Page(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := g.session(r)
		if err != nil {
			if safeMethod(r.Method) {
				http.Redirect(w, r, "/login?next="+url.QueryEscape(SafeNext(r.URL.RequestURI())), http.StatusSeeOther)
				return
			}
			http.Error(w, "Forbidden: "+err.Error(), http.StatusForbidden)
			return
		}
		if !safeMethod(r.Method) {
			if reason := g.checkUnsafe(w, r, s.csrf); reason != "" {
				g.refused(r, reason)
				http.Error(w, "Forbidden: "+refusalText(reason), http.StatusForbidden)
				return
			}
		}
		next.ServeHTTP(w, withPrincipal(r, principal{name: s.user, csrf: s.csrf}))
	})
}

// Stream guards server-sent events and WebSockets: a live session and a same-origin request (a WebSocket
// handshake is a GET that browsers send cross-origin with the cookie's SameSite rules only; its Origin header is
// the check), else 403.
func (g *Guard) Stream(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := g.session(r)
		if err != nil {
			http.Error(w, "Forbidden: "+err.Error(), http.StatusForbidden)
			return
		}
		if ok, reason := sameOrigin(r); !ok {
			g.refused(r, reason)
			http.Error(w, "Forbidden: "+refusalText(reason), http.StatusForbidden)
			return
		}
		// A stream outlives the request that opened it: it ends with its session (sign-out, password change,
		// idle or absolute timeout), checked every streamCheck without counting as use.
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		go func() {
			tick := time.NewTicker(g.streamCheck)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
					if !g.alive(s.key) {
						cancel()
						return
					}
				}
			}
		}()
		next.ServeHTTP(w, withPrincipal(r.WithContext(ctx), principal{name: s.user, csrf: s.csrf}))
	})
}

// alive reports whether the session still lives, without refreshing its idle timer.
func (g *Guard) alive(key [sha256.Size]byte) bool {
	now := g.opts.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	s, ok := g.sessions[key]
	return ok && now.Sub(s.created) < g.opts.AbsoluteTimeout && now.Sub(s.lastUsed) < g.opts.IdleTimeout
}

// API guards the REST API: "Authorization: Bearer <token>" (a read token may only GET and HEAD) or a browser
// session, whose requests that change state need the CSRF token and a same-origin request. Failures answer 401
// (with WWW-Authenticate: Bearer) or 403, with the RPS error shape {"error","message"}.
func (g *Guard) API(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h := r.Header.Get("Authorization"); h != "" {
			scheme, secret, _ := strings.Cut(h, " ")
			if !strings.EqualFold(scheme, "Bearer") {
				unauthorized(w, "", "only API tokens are accepted: Authorization: Bearer amte_…")
				return
			}
			t, ok := g.useToken(strings.TrimSpace(secret))
			if !ok {
				g.refused(r, "invalid API token")
				unauthorized(w, `, error="invalid_token"`, "the API token is not valid (revoked, or never issued)")
				return
			}
			if t.Scope != ScopeWrite && !safeMethod(r.Method) {
				g.refused(r, "read-only API token "+t.Name+" used for "+r.Method)
				writeError(w, http.StatusForbidden, "Forbidden", "the API token "+t.Name+" has scope read: it may only read (GET, HEAD)")
				return
			}
			next.ServeHTTP(w, withPrincipal(r, principal{name: "token:" + t.Name}))
			return
		}
		s, err := g.session(r)
		if err != nil {
			msg := "sign in to the web UI, or send an API token: Authorization: Bearer amte_…"
			if err == errSessionEnded {
				msg = "the session ended; sign in again, or send an API token"
			}
			unauthorized(w, "", msg)
			return
		}
		if !safeMethod(r.Method) {
			if reason := g.checkUnsafe(w, r, s.csrf); reason != "" {
				g.refused(r, reason)
				writeError(w, http.StatusForbidden, "Forbidden", refusalText(reason))
				return
			}
		}
		next.ServeHTTP(w, withPrincipal(r, principal{name: s.user, csrf: s.csrf}))
	})
}

// checkUnsafe checks a cookie-authenticated request that changes state: same origin, then the CSRF token.
// It returns the refusal's reason, or "".
func (g *Guard) checkUnsafe(w http.ResponseWriter, r *http.Request, want string) string {
	if ok, reason := sameOrigin(r); !ok {
		return reason
	}
	got := r.Header.Get(CSRFHeader)
	if got == "" && isForm(r) {
		// The token is in the form, so the form is read here, within MaxFormBytes and in memory: Go's own
		// defaults (32 MiB in memory, files of any size spilled to disk) would apply before the handler's limit.
		r.Body = http.MaxBytesReader(w, r.Body, MaxFormBytes)
		if err := parseForm(r); err != nil {
			return reasonFormUnreadable
		}
		got = r.PostForm.Get(CSRFField)
	}
	if got == "" {
		return reasonNoCSRF
	}
	if want == "" || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		return reasonBadCSRF
	}
	return ""
}

const (
	reasonNoCSRF         = "missing CSRF token"
	reasonBadCSRF        = "wrong CSRF token"
	reasonFormUnreadable = "form unreadable or larger than 1 MiB"
)

// MaxFormBytes bounds a form a signed-in browser posts (the largest is the domain form with its PFX upload).
const MaxFormBytes = 1 << 20

// parseForm reads a urlencoded or multipart form wholly into memory (the body is already bounded).
func parseForm(r *http.Request) error {
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct == "multipart/form-data" {
		return r.ParseMultipartForm(MaxFormBytes)
	}
	return r.ParseForm()
}

// refusalText is what the client is told about a refusal (the reason carries no secret; this only adds advice).
func refusalText(reason string) string {
	switch reason {
	case reasonNoCSRF, reasonBadCSRF:
		return "request refused (" + reason + "): reload the page and try again"
	case reasonFormUnreadable:
		return "request refused (" + reason + ")"
	}
	return "request refused (" + reason + "): only this box's own pages may do this"
}

func isForm(r *http.Request) bool {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return ct == "application/x-www-form-urlencoded" || ct == "multipart/form-data"
}

// sameOrigin applies the box's same-origin rule: an Origin header must be "https://" + Host, a Sec-Fetch-Site
// header must be same-origin or none, and a request with neither needs a same-origin Referer.
func sameOrigin(r *http.Request) (bool, string) {
	origin, site := r.Header.Get("Origin"), r.Header.Get("Sec-Fetch-Site")
	if origin != "" && !strings.EqualFold(origin, "https://"+r.Host) {
		return false, "cross-origin request"
	}
	if site != "" && site != "same-origin" && site != "none" {
		return false, "cross-site request (Sec-Fetch-Site: " + truncate(site, 20) + ")"
	}
	if origin == "" && site == "" {
		u, err := url.Parse(r.Referer())
		if r.Referer() == "" || err != nil || u.Scheme != "https" || !strings.EqualFold(u.Host, r.Host) {
			return false, "no Origin, Sec-Fetch-Site or same-origin Referer header"
		}
	}
	return true, ""
}

// refused logs a refused request. Only headers that say where it came from: no cookie, token or form value.
func (g *Guard) refused(r *http.Request, reason string) {
	g.log.Warn("admin request refused", "event", events.AdminRequestRefused, "remote", r.RemoteAddr,
		"origin", truncate(r.Header.Get("Origin"), 200), "reason", reason, "method", r.Method, "path", truncate(r.URL.Path, 200))
}

// SafeNext returns next when it is a path on this box ("/devices?x=1"), else "/": the sign-in page redirects
// there afterwards, and must not become an open redirect to another site.
func SafeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") ||
		strings.ContainsAny(next, "\\\r\n\t") || len(next) > 2048 {
		return "/"
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return "/"
	}
	return next
}

func unauthorized(w http.ResponseWriter, extra, msg string) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="amtedge"`+extra)
	writeError(w, http.StatusUnauthorized, "Unauthorized", msg)
}

// writeError writes the RPS error shape {"error":"…","message":"…"}.
func writeError(w http.ResponseWriter, code int, word, msg string) {
	body, _ := json.Marshal(struct {
		Error   string `json:"error"`
		Message string `json:"message"`
	}{word, msg})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(append(body, '\n'))
}
