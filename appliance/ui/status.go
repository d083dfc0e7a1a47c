package ui

import (
	"math"
	"net/http"
	"net/url"
	"sort"
	"time"

	"github.com/amtedge/amtedge/appliance/access"
	"github.com/amtedge/amtedge/appliance/agent"
	"github.com/amtedge/amtedge/appliance/catalog"
	"github.com/amtedge/amtedge/appliance/inventory"
	"github.com/amtedge/amtedge/appliance/web"
)

type loginView struct {
	Next  string
	User  string
	Error string
}

func (h *handler) loginForm(w http.ResponseWriter, r *http.Request) {
	h.render(w, r, http.StatusOK, "login", h.newView(r, "Sign in", "", loginView{Next: access.SafeNext(r.URL.Query().Get("next"))}))
}

// loginSubmit refuses cross-site posts (login CSRF: a foreign page signing the technician into another account)
// before asking Auth, then sends the user on to the page they asked for, which must be one of ours.
func (h *handler) loginSubmit(w http.ResponseWriter, r *http.Request) {
	// Anyone may post here: a body sent slowly must not hold a connection (the admin listener has no server-wide
	// read timeout, for the sake of the live streams).
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(10 * time.Second))
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if !sameOrigin(r) {
		h.errorPage(w, r, http.StatusForbidden, "Sign-in refused: the form was not sent from this box's own page.")
		return
	}
	if err := r.ParseForm(); err != nil {
		h.errorPage(w, r, http.StatusBadRequest, "Sign-in refused: the form could not be read.")
		return
	}
	next := access.SafeNext(r.PostForm.Get("next"))
	user := r.PostForm.Get("user")
	if err := h.cfg.Auth.Login(w, r, user, r.PostForm.Get("password")); err != nil {
		h.render(w, r, http.StatusUnauthorized, "login", h.newView(r, "Sign in", "", loginView{Next: next, User: user, Error: err.Error()}))
		return
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (h *handler) logout(w http.ResponseWriter, r *http.Request) {
	h.cfg.Auth.Logout(w, r)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// sameOrigin accepts a request the browser says came from this origin: Sec-Fetch-Site same-origin, or an Origin
// header naming this host. A request with neither (an old browser, curl) is accepted only without Origin.
// loginSubmit runs it before Auth (POST /login is not behind Auth.Page) so that a cross-site post is refused
// before its form is read; access.Guard.Login then checks the origin again with access's own, stricter rule
// (unexported there, so it cannot be called from here).
func sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return false
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	return err == nil && u.Host == r.Host
}

// certLevel is how urgent a certificate's expiry is: the dashboard warns at 60, 30, 7 and 1 day.
type certTile struct {
	Name     string
	Suffix   string
	Expires  time.Time
	DaysLeft int
	Level    string // ok, d60, d30, d7, d1, expired
	Text     string
}

func certTileFor(d catalog.Domain, now time.Time) certTile {
	left := d.ExpirationDate.Sub(now)
	days := int(math.Floor(left.Hours() / 24))
	t := certTile{Name: d.ProfileName, Suffix: d.DomainSuffix, Expires: d.ExpirationDate, DaysLeft: days}
	switch {
	case left <= 0:
		t.Level, t.Text = "expired", "expired "+roughDuration(-left)+" ago"
	case left <= 24*time.Hour:
		t.Level, t.Text = "d1", "expires in "+roughDuration(left)
	case days < 7:
		t.Level, t.Text = "d7", "expires in "+roughDuration(left)
	case days < 30:
		t.Level, t.Text = "d30", "expires in "+roughDuration(left)
	case days < 60:
		t.Level, t.Text = "d60", "expires in "+roughDuration(left)
	default:
		t.Level, t.Text = "ok", "expires in "+roughDuration(left)
	}
	return t
}

type dashboardView struct {
	Status   web.Status
	Uptime   string
	Certs    []certTile
	Sessions sessionsView
	Failures failuresView
	Chart    chart
	CanSync  bool
	Sync     *syncView
}

type sessionsView struct {
	Now  time.Time
	List []agent.SessionInfo
}

type failure struct {
	Record     inventory.Record
	FailedStep string
}

type failuresView struct {
	Now  time.Time
	List []failure
}

type syncView struct {
	Result web.SyncResult
	Error  string
}

func (h *handler) dashboardData(r *http.Request) dashboardView {
	now := h.cfg.Now()
	st := h.cfg.Status.Status(r.Context())
	latest := h.cfg.Devices.Latest() // read once for both the failures and the chart
	d := dashboardView{Status: st, Sessions: h.sessionsData(), Failures: h.failuresData(latest), CanSync: h.cfg.Sync != nil}
	if !st.Started.IsZero() {
		d.Uptime = roughDuration(now.Sub(st.Started))
	}
	for _, dom := range h.cfg.Catalog.DomainList() {
		d.Certs = append(d.Certs, certTileFor(dom, now))
	}
	sort.Slice(d.Certs, func(i, j int) bool { return d.Certs[i].Expires.Before(d.Certs[j].Expires) })
	d.Chart = activationChart(h.allRecords(latest), now)
	return d
}

func (h *handler) dashboard(w http.ResponseWriter, r *http.Request) {
	h.render(w, r, http.StatusOK, "dashboard", h.newView(r, "Dashboard", "dashboard", h.dashboardData(r)))
}

func (h *handler) sessionsData() sessionsView {
	return sessionsView{Now: h.cfg.Now(), List: h.cfg.Sessions.Sessions()}
}

func (h *handler) sessionsFragment(w http.ResponseWriter, r *http.Request) {
	h.fragment(w, r, "sessions", h.sessionsData())
}

// failuresData is the ten most recent devices whose latest session failed, with the step that failed; latest
// is Devices.Latest() (newest first).
func (h *handler) failuresData(latest []inventory.Record) failuresView {
	v := failuresView{Now: h.cfg.Now()}
	for _, rec := range latest { // newest first
		if rec.Success {
			continue
		}
		v.List = append(v.List, failure{Record: rec, FailedStep: failedStep(rec)})
		if len(v.List) == 10 {
			break
		}
	}
	return v
}

func (h *handler) failuresFragment(w http.ResponseWriter, r *http.Request) {
	h.fragment(w, r, "failures", h.failuresData(h.cfg.Devices.Latest()))
}

func failedStep(rec inventory.Record) string {
	for _, s := range rec.Steps {
		if s.Result == inventory.StepFailed {
			return s.Name
		}
	}
	return ""
}

// allRecords is every record the inventory keeps, for the activation chart; latest is Devices.Latest().
func (h *handler) allRecords(latest []inventory.Record) []inventory.Record {
	var out []inventory.Record
	for _, rec := range latest {
		out = append(out, h.cfg.Devices.Device(rec.UUID)...)
	}
	return out
}

// syncNow runs a Vault sync. From htmx it answers the result fragment; without JavaScript, the dashboard with it.
func (h *handler) syncNow(w http.ResponseWriter, r *http.Request) {
	if h.cfg.Sync == nil {
		h.errorPage(w, r, http.StatusConflict, "This box has no central Vault configured (vault.address), so there is nothing to sync.")
		return
	}
	sv := &syncView{}
	res, err := h.cfg.Sync(r.Context())
	if err != nil {
		sv.Error = err.Error()
	} else {
		sv.Result = res
	}
	if isHTMX(r) {
		h.fragment(w, r, "syncresult", sv)
		return
	}
	d := h.dashboardData(r)
	d.Sync = sv
	h.render(w, r, http.StatusOK, "dashboard", h.newView(r, "Dashboard", "dashboard", d))
}
