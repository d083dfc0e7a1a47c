package ui

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/amtedge/amtedge/appliance/inventory"
)

// pages holds one template set per page (the layout plus partials plus the page's "content"), and the partials
// alone for htmx fragments.
type pages struct {
	byName    map[string]*template.Template
	fragments *template.Template
}

func parsePages(a *assets) (*pages, error) {
	funcs := template.FuncMap{
		"asset":    a.url,
		"when":     fmtTime,
		"since":    since,
		"dur":      fmtDuration,
		"modeName": inventory.ModeName,
		"lower":    strings.ToLower,
	}
	base, err := template.New("").Funcs(funcs).ParseFS(embedded, "templates/layout.html", "templates/partials.html")
	if err != nil {
		return nil, fmt.Errorf("parse templates: %w", err)
	}
	files, err := fs.Glob(embedded, "templates/page_*.html")
	if err != nil {
		return nil, fmt.Errorf("list templates: %w", err)
	}
	p := &pages{byName: map[string]*template.Template{}, fragments: base}
	for _, f := range files {
		t, err := template.Must(base.Clone()).ParseFS(embedded, f)
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", f, err)
		}
		name := strings.TrimSuffix(strings.TrimPrefix(f, "templates/page_"), ".html")
		p.byName[name] = t
	}
	return p, nil
}

// view is what the layout needs on every page, with the page's own data in Data.
type view struct {
	Title   string
	Nav     string // the active navigation entry
	User    string
	CSRF    string
	Headers string // hx-headers JSON carrying the CSRF token
	Now     time.Time
	Flash   string // one line of feedback after an action
	Data    any
}

func (h *handler) newView(r *http.Request, title, nav string, data any) view {
	user, csrf := h.cfg.Auth.User(r)
	hdr, _ := json.Marshal(map[string]string{CSRFHeader: csrf}) // a map of strings always encodes
	return view{Title: title, Nav: nav, User: user, CSRF: csrf, Headers: string(hdr), Now: h.cfg.Now(), Data: data}
}

// render executes a page into a buffer first, so a template error becomes a clean 500 rather than half a page.
func (h *handler) render(w http.ResponseWriter, r *http.Request, code int, page string, v view) {
	t, ok := h.pages.byName[page]
	if !ok {
		h.serverError(w, r, fmt.Errorf("no page template %q", page))
		return
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", v); err != nil {
		h.serverError(w, r, fmt.Errorf("render %s: %w", page, err))
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

// fragment renders one partial for htmx.
func (h *handler) fragment(w http.ResponseWriter, r *http.Request, name string, data any) {
	var buf bytes.Buffer
	if err := h.pages.fragments.ExecuteTemplate(&buf, name, data); err != nil {
		h.serverError(w, r, fmt.Errorf("render fragment %s: %w", name, err))
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(buf.Bytes())
}

// serverError logs the cause (which never holds a secret: templates and catalog errors name fields and
// entries only) and shows the technician a plain page without it.
func (h *handler) serverError(w http.ResponseWriter, r *http.Request, err error) {
	slog.Error("ui: request failed", "path", r.URL.Path, "err", err)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusInternalServerError)
	_, _ = w.Write([]byte("The page could not be shown because of an internal error; the box's log has the cause.\n"))
}

type errorPage struct {
	Code    int
	Message string
}

func (h *handler) notFound(w http.ResponseWriter, r *http.Request, msg string) {
	h.errorPage(w, r, http.StatusNotFound, msg)
}

func (h *handler) errorPage(w http.ResponseWriter, r *http.Request, code int, msg string) {
	h.render(w, r, code, "error", h.newView(r, http.StatusText(code), "", errorPage{Code: code, Message: msg}))
}

func isHTMX(r *http.Request) bool { return r.Header.Get("HX-Request") == "true" }

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

// since is a short "3m ago" relative to now.
func since(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t)
	if d < 0 {
		return "in " + roughDuration(-d)
	}
	return roughDuration(d) + " ago"
}

func roughDuration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh %dm", int(d.Hours()), int(d.Minutes())%60)
	default:
		return fmt.Sprintf("%dd", int(d.Hours()/24))
	}
}

func fmtDuration(d time.Duration) string {
	if d < time.Second {
		return fmt.Sprintf("%d ms", d.Milliseconds())
	}
	return fmt.Sprintf("%.1f s", math.Round(d.Seconds()*10)/10)
}
