// Package ui is the box's local web UI for the site technician: health at a glance, live activations, why a device
// failed, profile and domain editing, and a live activity log. Pages are rendered on the server with html/template
// and work without JavaScript; htmx (vendored, embedded, served from /static) only adds live updates and the PFX
// preview. The daemon mounts the handler at "/" of the admin listener behind its own TLS.
//
// It is built from small interfaces the daemon implements (status, sessions, inventory, catalog, auth), so it
// never imports the daemon and holds no state of its own beyond short-lived PFX uploads awaiting confirmation.
//
// What it must never do: render a device-supplied string (hostname, DNS suffix, status text, UUID) or any other data
// as markup — only html/template, never template.HTML built from data; put a secret (password, PFX, session id,
// CSRF token) in a log line, a URL or a cacheable page; serve a page without its Content-Security-Policy; or accept
// an unsafe request that Auth.Page has not checked for session, CSRF token and same origin.
package ui

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/amtedge/amtedge/appliance/events"
	"github.com/amtedge/amtedge/appliance/web"
)

// Config wires the UI to the box.
type Config struct {
	Status   web.StatusSource
	Sessions web.SessionSource
	Devices  web.DeviceSource
	Catalog  Catalog
	Activity *events.Hub
	Auth     Auth
	// Reveal returns a device's current AMT and MEBx passwords for actor and logs the audit event itself.
	Reveal func(ctx context.Context, uuid, actor string) (amtPassword, mebxPassword string, err error)
	// Sync pulls from and pushes to Vault now; nil when the box has no Vault (the dashboard shows no button).
	Sync func(ctx context.Context) (web.SyncResult, error)
	Now  func() time.Time // default time.Now
}

// Catalog is the profiles and domains store, the same the REST API writes through (*catalog.Catalog implements
// it): its errors are *catalog.ValidationError, *catalog.ConflictError or an error wrapping catalog.ErrNotFound.
// The UI shows ProfileList and DomainList in the order they come, which *catalog.Catalog documents as by name.
type Catalog = web.Catalog

// Auth is the admin listener's session and CSRF guard (*access.Guard implements it).
type Auth interface {
	// Login checks the credentials and sets the session cookie; err.Error() is safe to show.
	Login(w http.ResponseWriter, r *http.Request, user, password string) error
	Logout(w http.ResponseWriter, r *http.Request)
	// Page requires a session (else redirects to /login?next=…) and checks CSRF and same origin on unsafe methods.
	Page(next http.Handler) http.Handler
	// Stream requires a session and same origin, for server-sent events.
	Stream(next http.Handler) http.Handler
	// User is the signed-in user and the session's CSRF token.
	User(r *http.Request) (user, csrf string)
}

// CSP is the Content-Security-Policy of every response: scripts and styles from the box only, no inline code,
// no framing, forms post only to the box.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// CSRFHeader is the request header htmx sends the session's CSRF token in (set through hx-headers on <body>);
// forms carry the same token in the field CSRFField.
const (
	CSRFHeader = "X-CSRF-Token"
	CSRFField  = "csrf_token"
)

type handler struct {
	cfg     Config
	mux     *http.ServeMux
	pages   *pages
	static  *assets
	pending *pendingUploads
}

// New returns the UI handler. Every dependency but Sync and Now is required.
func New(cfg Config) (http.Handler, error) {
	switch {
	case cfg.Status == nil:
		return nil, errors.New("ui: Config.Status is required")
	case cfg.Sessions == nil:
		return nil, errors.New("ui: Config.Sessions is required")
	case cfg.Devices == nil:
		return nil, errors.New("ui: Config.Devices is required")
	case cfg.Catalog == nil:
		return nil, errors.New("ui: Config.Catalog is required")
	case cfg.Activity == nil:
		return nil, errors.New("ui: Config.Activity is required")
	case cfg.Auth == nil:
		return nil, errors.New("ui: Config.Auth is required")
	case cfg.Reveal == nil:
		return nil, errors.New("ui: Config.Reveal is required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	static, err := newAssets()
	if err != nil {
		return nil, fmt.Errorf("ui: %w", err)
	}
	pg, err := parsePages(static)
	if err != nil {
		return nil, fmt.Errorf("ui: %w", err)
	}
	h := &handler{cfg: cfg, mux: http.NewServeMux(), pages: pg, static: static, pending: newPendingUploads(cfg.Now)}
	h.routes()
	return h, nil
}

func (h *handler) routes() {
	page := func(pattern string, fn http.HandlerFunc) { h.mux.Handle(pattern, h.cfg.Auth.Page(fn)) }
	h.mux.HandleFunc("GET /login", h.loginForm)
	h.mux.HandleFunc("POST /login", h.loginSubmit)
	h.mux.Handle("GET /static/", h.static)
	page("POST /logout", h.logout)
	page("GET /{$}", h.dashboard)
	page("GET /fragments/sessions", h.sessionsFragment)
	page("GET /fragments/failures", h.failuresFragment)
	page("POST /sync", h.syncNow)
	page("GET /devices", h.devices)
	page("GET /devices/{uuid}", h.device)
	page("POST /devices/{uuid}/reveal", h.reveal)
	page("GET /profiles", h.profiles)
	page("GET /profiles/new", h.profileNew)
	page("POST /profiles/new", h.profileCreate)
	page("GET /profiles/{name}", h.profileEdit)
	page("POST /profiles/{name}", h.profileUpdate)
	page("POST /profiles/{name}/delete", h.profileDelete)
	page("GET /domains", h.domains)
	page("GET /domains/new", h.domainNew)
	page("POST /domains/new", h.domainCreate)
	page("POST /domains/preview", h.domainPreview)
	page("GET /domains/{name}", h.domainEdit)
	page("POST /domains/{name}", h.domainUpdate)
	page("POST /domains/{name}/delete", h.domainDelete)
	page("GET /activity", h.activity)
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { h.notFound(w, r, "No page at "+r.URL.Path) })
	h.mux.Handle("GET /activity/stream", h.cfg.Auth.Stream(http.HandlerFunc(h.activityStream)))
}

// ServeHTTP sets the security headers every response carries, then routes. Pages are never cached: they may
// hold a revealed password or a CSRF token. Static assets override Cache-Control with their own long lifetime.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", CSP)
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "same-origin")
	hd.Set("Cache-Control", "no-store")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	hd.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.mux.ServeHTTP(w, r)
}
