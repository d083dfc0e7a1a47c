// Package web is the box's JSON API: health, live sessions, devices with their activation records, and the
// profiles and domains under RPS's admin routes and field names (/api/v1/admin/profiles, /api/v1/admin/domains),
// readable and writable as in RPS (POST, PATCH with versions, DELETE), with RPS's paging ($top, $skip, $count)
// and error shapes, plus two box extensions for provisioning certificates (inspect an upload, report a stored
// one). The daemon serves it on its local control socket, where the CLI uses it.
//
// It is built from small interfaces the daemon implements, so it never imports the daemon, and it holds no state
// of its own.
//
// Authentication is the caller's: the daemon wraps the handler in its own checks and names who asks with
// WithActor, which the catalog records in its events.
//
// What it must never do: return a secret (profiles leave the catalog without passwords; domains carry no
// certificate or password field at all; error texts come from the catalog, which quotes no secret), or treat a device-supplied string (hostname, DNS suffix, status text)
// as anything but data: every response is JSON, encoded by encoding/json.
package web

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/amtedge/amtedge/appliance/agent"
	"github.com/amtedge/amtedge/appliance/catalog"
	"github.com/amtedge/amtedge/appliance/inventory"
	"github.com/amtedge/amtedge/appliance/profiles"
)

// Status is the box's own state, as the daemon knows it.
type Status struct {
	Seal    Seal      `json:"seal"`
	Vault   Vault     `json:"vault"`
	Outbox  Outbox    `json:"outbox"`
	Listen  string    `json:"listen"` // the agent listener's address
	Version string    `json:"version"`
	Started time.Time `json:"started"`
}

// Seal is the sealed store's state.
type Seal struct {
	Mode   string `json:"mode"`             // tpm or software
	State  string `json:"state"`            // ok or degraded
	Reason string `json:"reason,omitempty"` // why degraded
}

// Vault is the central Vault's state.
type Vault struct {
	State  string `json:"state"`            // not configured, reachable, unreachable, unavailable
	Detail string `json:"detail,omitempty"` // the last error (names and paths only), or why the data may be stale
}

// Outbox is what the box still has to write to Vault.
type Outbox struct {
	Length int        `json:"length"`
	Oldest *time.Time `json:"oldest,omitempty"`
	Error  string     `json:"error,omitempty"` // the outbox could not be read (degraded store)
}

// StatusSource reports the box's state.
type StatusSource interface {
	Status(ctx context.Context) Status
}

// SessionSource lists live agent sessions (agent.Server implements it).
type SessionSource interface {
	Sessions() []agent.SessionInfo
}

// DeviceSource reads the inventory (inventory.Inventory implements it).
type DeviceSource interface {
	Latest() []inventory.Record
	Device(uuid string) []inventory.Record
}

// Catalog is the box's profiles and domains, readable and writable (*catalog.Catalog implements it). Its errors
// decide the answer: *catalog.ValidationError → 400, catalog.ErrNotFound → 404, *catalog.ConflictError → 409
// (412 for a stale If-Match), catalog.ErrStoreUnavailable → 503, anything else → 500.
type Catalog interface {
	ProfileList() []catalog.ProfileEntry
	ProfileByName(name string) (catalog.ProfileEntry, error)
	DomainList() []catalog.Domain
	DomainByName(name string) (catalog.Domain, error)
	CreateProfile(ctx context.Context, body []byte, actor string) (catalog.ProfileEntry, error)
	UpdateProfile(ctx context.Context, body []byte, ifMatch, actor string) (catalog.ProfileEntry, error)
	DeleteProfile(ctx context.Context, name, actor string) error
	CreateDomain(ctx context.Context, body []byte, actor string) (catalog.Domain, error)
	UpdateDomain(ctx context.Context, body []byte, ifMatch, actor string) (catalog.Domain, error)
	DeleteDomain(ctx context.Context, name, actor string) error
	InspectPFX(pfx []byte, password, suffix string) catalog.CertReport
	DomainCert(ctx context.Context, name string) (catalog.CertReport, error)
}

// SyncTrigger runs a pull from and a push to the central Vault now (`amtedge sync now`).
type SyncTrigger interface {
	SyncNow(ctx context.Context) (SyncResult, error)
}

// SyncResult is what `POST /api/v1/sync` answers.
type SyncResult struct {
	Pulled  int    `json:"pulled"`  // secrets read from Vault and stored
	Pushed  int    `json:"pushed"`  // outbox entries Vault accepted
	Outbox  int    `json:"outbox"`  // entries still waiting
	Message string `json:"message"` // one line for the technician
}

// Config wires the handler.
type Config struct {
	Status   StatusSource
	Sessions SessionSource
	Devices  DeviceSource
	Catalog  Catalog
	Sync     SyncTrigger      // nil: the box has no Vault; POST /api/v1/sync answers 409
	Version  string           // the box's version, for GET /api/v1/admin/version
	Now      func() time.Time // default time.Now
}

// Health is GET /api/v1/health.
type Health struct {
	Status        string         `json:"status"` // ok or degraded
	Seal          Seal           `json:"seal"`
	Vault         Vault          `json:"vault"`
	Outbox        Outbox         `json:"outbox"`
	Domains       []DomainHealth `json:"domains"`
	Listen        string         `json:"listen"`
	Version       string         `json:"version"`
	Started       time.Time      `json:"started"`
	UptimeSeconds int64          `json:"uptimeSeconds"`
	Sessions      int            `json:"sessions"` // live sessions
}

// DomainHealth is a domain's certificate expiry.
type DomainHealth struct {
	Name     string    `json:"name"`
	Suffix   string    `json:"suffix"`
	Expires  time.Time `json:"expires"`
	DaysLeft int       `json:"daysLeft"` // negative once expired
}

// Session is a live agent session, GET /api/v1/sessions.
type Session struct {
	ID      string    `json:"id"`
	UUID    string    `json:"uuid"`
	Verb    string    `json:"verb"`
	Profile string    `json:"profile,omitempty"`
	Remote  string    `json:"remote"`
	Step    string    `json:"step"`
	Started time.Time `json:"started"`
}

// Device is GET /api/v1/devices/{uuid}: the device's records, newest first.
type Device struct {
	UUID    string             `json:"uuid"`
	Records []inventory.Record `json:"records"`
}

// Page is the $count=true list shape.
type Page[T any] struct {
	Data       []T `json:"data"`
	TotalCount int `json:"totalCount"`
}

// ErrorBody is the 404/405/403/500 shape (RPS: {"error":"Not Found","message":"…"}).
type ErrorBody struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

// ValidationErrors is the 400 shape: express-validator items.
type ValidationErrors struct {
	Errors []profiles.FieldError `json:"errors"`
}

type handler struct {
	cfg Config
	mux *http.ServeMux
}

// New returns the API handler.
func New(cfg Config) http.Handler {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	h := &handler{cfg: cfg, mux: http.NewServeMux()}
	h.mux.HandleFunc("GET /api/v1/health", h.health)
	h.mux.HandleFunc("GET /api/v1/sessions", h.sessions)
	h.mux.HandleFunc("GET /api/v1/devices", h.devices)
	h.mux.HandleFunc("GET /api/v1/devices/{uuid}", h.device)
	h.mux.HandleFunc("GET /api/v1/admin/profiles", h.profiles)
	h.mux.HandleFunc("POST /api/v1/admin/profiles", h.createProfile)
	h.mux.HandleFunc("PATCH /api/v1/admin/profiles", h.updateProfile)
	h.mux.HandleFunc("GET /api/v1/admin/profiles/{name}", h.profile)
	h.mux.HandleFunc("DELETE /api/v1/admin/profiles/{name}", h.deleteProfile)
	h.mux.HandleFunc("GET /api/v1/admin/domains", h.domains)
	h.mux.HandleFunc("POST /api/v1/admin/domains", h.createDomain)
	h.mux.HandleFunc("PATCH /api/v1/admin/domains", h.updateDomain)
	h.mux.HandleFunc("POST /api/v1/admin/domains/inspect", h.inspectPFX)
	h.mux.HandleFunc("GET /api/v1/admin/domains/{name}", h.domain)
	h.mux.HandleFunc("DELETE /api/v1/admin/domains/{name}", h.deleteDomain)
	h.mux.HandleFunc("GET /api/v1/admin/domains/{name}/certificate", h.domainCert)
	h.mux.HandleFunc("POST /api/v1/sync", h.syncNow)
	h.mux.HandleFunc("GET /api/v1/admin/version", h.version)
	for _, c := range unsupportedConfigs {
		h.mux.HandleFunc("GET /api/v1/admin/"+c.route, func(w http.ResponseWriter, r *http.Request) {
			pg, errs := parsePaging(r.URL.Query())
			if len(errs) > 0 {
				WriteJSON(w, http.StatusBadRequest, ValidationErrors{errs})
				return
			}
			writePage(w, pg, []struct{}{})
		})
		h.mux.HandleFunc("GET /api/v1/admin/"+c.route+"/{name}", func(w http.ResponseWriter, r *http.Request) {
			WriteJSON(w, http.StatusNotFound, ErrorBody{"Not Found", c.kind + " " + r.PathValue("name") + " Not Found"})
		})
		refuse := func(w http.ResponseWriter, _ *http.Request) {
			WriteJSON(w, http.StatusNotImplemented, ErrorBody{"Not Implemented", "this box does not configure " + c.feature +
				" on devices yet, so it keeps no " + c.kind + "s; profiles that name one are refused"})
		}
		h.mux.HandleFunc("POST /api/v1/admin/"+c.route, refuse)
		h.mux.HandleFunc("PATCH /api/v1/admin/"+c.route, refuse)
		h.mux.HandleFunc("DELETE /api/v1/admin/"+c.route+"/{name}", refuse)
	}
	return h
}

// unsupportedConfigs are RPS's other admin collections. The box applies none of these features yet, so it lists
// them empty (RPS scripts that list them keep working) and refuses writes with 501 rather than storing
// configuration it would silently not apply.
var unsupportedConfigs = []struct{ route, kind, feature string }{
	{"ciraconfigs", "CIRA config", "CIRA"},
	{"wirelessconfigs", "Wireless profile", "Wi-Fi"},
	{"ieee8021xconfigs", "802.1x profile", "802.1X"},
	{"proxyconfigs", "Proxy config", "HTTP proxies"},
}

// Version is GET /api/v1/admin/version, in RPS's shape.
type Version struct {
	ServiceVersion  string `json:"serviceVersion"`
	ProtocolVersion string `json:"protocolVersion"`
}

func (h *handler) version(w http.ResponseWriter, _ *http.Request) {
	WriteJSON(w, http.StatusOK, Version{ServiceVersion: h.cfg.Version, ProtocolVersion: agent.ProtocolVersion})
}

// syncNow is `amtedge sync now`: pull from and push to Vault at once rather than at the next interval.
func (h *handler) syncNow(w http.ResponseWriter, r *http.Request) {
	if h.cfg.Sync == nil {
		WriteJSON(w, http.StatusConflict, ErrorBody{"Conflict", "this box has no central Vault configured (vault.address)"})
		return
	}
	res, err := h.cfg.Sync.SyncNow(r.Context())
	if err != nil {
		WriteJSON(w, http.StatusBadGateway, ErrorBody{"Bad Gateway", err.Error()})
		return
	}
	WriteJSON(w, http.StatusOK, res)
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if _, pattern := h.mux.Handler(r); pattern == "" {
		if allow := h.allowed(r); len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			WriteJSON(w, http.StatusMethodNotAllowed, ErrorBody{"Method Not Allowed", r.Method + " is not served on " + r.URL.Path + "; it answers " + strings.Join(allow, ", ")})
			return
		}
		WriteJSON(w, http.StatusNotFound, ErrorBody{"Not Found", "No route " + r.URL.Path})
		return
	}
	h.mux.ServeHTTP(w, r)
}

// WriteJSON writes v as the response with the API's headers.
func WriteJSON(w http.ResponseWriter, code int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		code, body = http.StatusInternalServerError, []byte(`{"message":"Operation failed: encoding the response"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(append(body, '\n'))
}

func (h *handler) health(w http.ResponseWriter, r *http.Request) {
	st := h.cfg.Status.Status(r.Context())
	now := h.cfg.Now()
	out := Health{Status: "ok", Seal: st.Seal, Vault: st.Vault, Outbox: st.Outbox, Listen: st.Listen, Version: st.Version,
		Started: st.Started, UptimeSeconds: int64(now.Sub(st.Started).Seconds()), Sessions: len(h.cfg.Sessions.Sessions()),
		Domains: []DomainHealth{}}
	if st.Seal.State != "ok" {
		out.Status = "degraded"
	}
	for _, d := range h.cfg.Catalog.DomainList() {
		out.Domains = append(out.Domains, DomainHealth{Name: d.ProfileName, Suffix: d.DomainSuffix, Expires: d.ExpirationDate,
			DaysLeft: int(math.Floor(d.ExpirationDate.Sub(now).Hours() / 24))})
	}
	WriteJSON(w, http.StatusOK, out)
}

func (h *handler) sessions(w http.ResponseWriter, _ *http.Request) {
	out := []Session{}
	for _, s := range h.cfg.Sessions.Sessions() {
		out = append(out, Session{ID: s.ID, UUID: s.UUID, Verb: s.Verb, Profile: s.Profile, Remote: s.Remote, Step: s.Step, Started: s.Started})
	}
	WriteJSON(w, http.StatusOK, out)
}

// maxSearch bounds the search text: it is matched against every device.
const maxSearch = 256

func (h *handler) devices(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	pg, errs := parsePaging(q)
	search := q.Get("search")
	if len(search) > maxSearch {
		errs = append(errs, queryError("search", search, fmt.Sprintf("The search text should be at most %d characters", maxSearch)))
	}
	if len(errs) > 0 {
		WriteJSON(w, http.StatusBadRequest, ValidationErrors{errs})
		return
	}
	list := h.cfg.Devices.Latest()
	if search != "" {
		needle := strings.ToLower(search)
		list = slices.DeleteFunc(list, func(rec inventory.Record) bool {
			for _, f := range []string{rec.UUID, rec.Hostname, rec.Profile, rec.Status} {
				if strings.Contains(strings.ToLower(f), needle) {
					return false
				}
			}
			return true
		})
	}
	writePage(w, pg, list)
}

func (h *handler) device(w http.ResponseWriter, r *http.Request) {
	uuid := r.PathValue("uuid")
	recs := h.cfg.Devices.Device(uuid)
	if len(recs) == 0 {
		WriteJSON(w, http.StatusNotFound, ErrorBody{"Not Found", "Device " + uuid + " Not Found"})
		return
	}
	WriteJSON(w, http.StatusOK, Device{UUID: uuid, Records: recs})
}

func (h *handler) profiles(w http.ResponseWriter, r *http.Request) {
	pg, errs := parsePaging(r.URL.Query())
	if len(errs) > 0 {
		WriteJSON(w, http.StatusBadRequest, ValidationErrors{errs})
		return
	}
	writePage(w, pg, h.cfg.Catalog.ProfileList())
}

func (h *handler) profile(w http.ResponseWriter, r *http.Request) {
	p, err := h.cfg.Catalog.ProfileByName(r.PathValue("name"))
	if err != nil {
		writeError(w, err, false)
		return
	}
	writeVersioned(w, http.StatusOK, p.Version, p)
}

func (h *handler) domains(w http.ResponseWriter, r *http.Request) {
	pg, errs := parsePaging(r.URL.Query())
	if len(errs) > 0 {
		WriteJSON(w, http.StatusBadRequest, ValidationErrors{errs})
		return
	}
	writePage(w, pg, h.cfg.Catalog.DomainList())
}

func (h *handler) domain(w http.ResponseWriter, r *http.Request) {
	d, err := h.cfg.Catalog.DomainByName(r.PathValue("name"))
	if err != nil {
		writeError(w, err, false)
		return
	}
	writeVersioned(w, http.StatusOK, d.Version, d)
}

// paging is RPS's OData-ish list window.
type paging struct {
	top, skip int
	count     bool
}

// DefaultTop is RPS's default page size.
const DefaultTop = 25

// Messages of RPS's odata validator for bad paging values.
const (
	MsgTop   = "The number of items to return should be a positive integer"
	MsgSkip  = "The number of items to skip before starting to collect the result set should be a positive integer"
	MsgCount = "To return total number of records in result set should be boolean"
)

func parsePaging(q url.Values) (paging, []profiles.FieldError) {
	pg := paging{top: DefaultTop}
	var errs []profiles.FieldError
	intParam := func(name, msg string, dst *int) {
		if !q.Has(name) {
			return
		}
		v := q.Get(name)
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			errs = append(errs, queryError(name, v, msg))
			return
		}
		*dst = n
	}
	intParam("$top", MsgTop, &pg.top)
	intParam("$skip", MsgSkip, &pg.skip)
	if q.Has("$count") {
		switch v := q.Get("$count"); strings.ToLower(v) {
		case "true", "1":
			pg.count = true
		case "false", "0":
		default:
			errs = append(errs, queryError("$count", v, MsgCount))
		}
	}
	return pg, errs
}

func queryError(name, value, msg string) profiles.FieldError {
	return profiles.FieldError{Type: "field", Value: value, Msg: msg, Path: name, Location: "query"}
}

// writePage answers a list: the window [skip, skip+top) of list, bare or with its total count.
func writePage[T any](w http.ResponseWriter, pg paging, list []T) {
	total := len(list)
	start := min(pg.skip, total)
	end := start + min(pg.top, total-start)
	window := list[start:end]
	if window == nil {
		window = []T{}
	}
	if pg.count {
		WriteJSON(w, http.StatusOK, Page[T]{Data: window, TotalCount: total})
		return
	}
	WriteJSON(w, http.StatusOK, window)
}
