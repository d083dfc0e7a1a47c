package ui

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/amtedge/amtedge/appliance/catalog"
	"github.com/amtedge/amtedge/appliance/profiles"
)

// maxFormBytes bounds a urlencoded form; profiles are small. It applies only when the handler is the one to read
// the form, that is when the CSRF token came in the X-CSRF-Token header (htmx). When it came as a form field (the
// page without JavaScript), Auth.Page (access.Guard) has already read the whole form, under access.MaxFormBytes
// (1 MiB), to find the token; readProfileForm's ParseForm then reads nothing more and this limit is not reached.
const maxFormBytes = 256 << 10

// formErrors are a refused write's messages by form field, plus those that belong to no field.
type formErrors struct {
	ByField  map[string][]string
	General  []string
	Conflict string // the entry changed or is site-managed: offer a reload
}

// Err is the messages for one field, joined, for the template.
func (e formErrors) Err(field string) string { return strings.Join(e.ByField[field], "; ") }

// Any reports whether there is anything to show.
func (e formErrors) Any() bool { return len(e.ByField) > 0 || len(e.General) > 0 || e.Conflict != "" }

// classify turns a catalog write error into what the form shows and the status to answer with. Every text comes
// from the catalog's own error types, which never carry a secret.
func classify(err error, fields []string) (formErrors, int) {
	fe := formErrors{ByField: map[string][]string{}}
	var ve *catalog.ValidationError
	var ce *catalog.ConflictError
	switch {
	case errors.As(err, &ve):
		for _, item := range ve.Errors {
			if slices.Contains(fields, item.Path) {
				fe.ByField[item.Path] = append(fe.ByField[item.Path], item.Msg)
			} else {
				fe.General = append(fe.General, item.Error())
			}
		}
		if len(ve.Errors) == 0 {
			fe.General = append(fe.General, ve.Error())
		}
		return fe, http.StatusBadRequest
	case errors.As(err, &ce):
		fe.Conflict = ce.Error()
		return fe, http.StatusConflict
	case errors.Is(err, catalog.ErrNotFound):
		fe.General = append(fe.General, err.Error())
		return fe, http.StatusNotFound
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		fe.General = append(fe.General, "The request was cancelled before the box could save it; try again.")
		return fe, http.StatusServiceUnavailable
	}
	fe.General = append(fe.General, "The box could not save it: "+err.Error())
	return fe, http.StatusInternalServerError
}

// profileForm is the profile form's state, as typed (passwords are never sent back to the browser).
type profileForm struct {
	ProfileName                string
	Activation                 string
	GenerateRandomPassword     bool
	GenerateRandomMEBxPassword bool
	AMTPassword                string `json:"-"`
	MEBxPassword               string `json:"-"`
	DHCPEnabled                bool
	IPSyncEnabled              bool
	UserConsent                string
	IDEREnabled                bool
	KVMEnabled                 bool
	SOLEnabled                 bool
	TLSMode                    string // "", "1".."4"
	Tags                       string // comma-separated
	Version                    string
}

var profileFields = []string{"profileName", "activation", "amtPassword", "generateRandomPassword", "mebxPassword",
	"generateRandomMEBxPassword", "dhcpEnabled", "ipSyncEnabled", "userConsent", "iderEnabled", "kvmEnabled",
	"solEnabled", "tlsMode", "tags", "version"}

func formFromProfile(p profiles.Profile) profileForm {
	f := profileForm{ProfileName: p.ProfileName, Activation: p.Activation, GenerateRandomPassword: p.GenerateRandomPassword,
		GenerateRandomMEBxPassword: p.GenerateRandomMEBxPassword, DHCPEnabled: isTrue(p.DHCPEnabled),
		IPSyncEnabled: isTrue(p.IPSyncEnabled), UserConsent: p.UserConsent, IDEREnabled: isTrue(p.IDEREnabled),
		KVMEnabled: isTrue(p.KVMEnabled), SOLEnabled: isTrue(p.SOLEnabled), Tags: strings.Join(p.Tags, ", "), Version: p.Version}
	if p.TLSMode != nil {
		f.TLSMode = strconv.Itoa(*p.TLSMode)
	}
	return f
}

func isTrue(b *bool) bool { return b != nil && *b }

func readProfileForm(r *http.Request) (profileForm, error) {
	if err := r.ParseForm(); err != nil {
		return profileForm{}, errors.New("the form could not be read: send it as the page does (application/x-www-form-urlencoded)")
	}
	v := r.PostForm
	for k, vals := range v {
		for _, val := range vals {
			if !utf8.ValidString(val) {
				return profileForm{}, fmt.Errorf("the field %s is not valid UTF-8 text", strconv.Quote(k))
			}
		}
	}
	on := func(k string) bool { return v.Get(k) == "on" || v.Get(k) == "true" }
	return profileForm{
		ProfileName: strings.TrimSpace(v.Get("profileName")), Activation: v.Get("activation"),
		GenerateRandomPassword: on("generateRandomPassword"), GenerateRandomMEBxPassword: on("generateRandomMEBxPassword"),
		AMTPassword: v.Get("amtPassword"), MEBxPassword: v.Get("mebxPassword"),
		DHCPEnabled: on("dhcpEnabled"), IPSyncEnabled: on("ipSyncEnabled"), UserConsent: v.Get("userConsent"),
		IDEREnabled: on("iderEnabled"), KVMEnabled: on("kvmEnabled"), SOLEnabled: on("solEnabled"),
		TLSMode: v.Get("tlsMode"), Tags: v.Get("tags"), Version: v.Get("version"),
	}, nil
}

// body is the RPS JSON the catalog takes. A password left empty is left out, so an update keeps the stored one
// and a create without it is refused by validation with the catalog's own message. A TLS mode that is not a
// number is refused here, next to its field.
func (f profileForm) body() ([]byte, formErrors) {
	fe := formErrors{ByField: map[string][]string{}}
	b := func(x bool) *bool { return &x }
	p := profiles.Profile{ProfileName: f.ProfileName, Activation: f.Activation,
		GenerateRandomPassword: f.GenerateRandomPassword, GenerateRandomMEBxPassword: f.GenerateRandomMEBxPassword,
		DHCPEnabled: b(f.DHCPEnabled), IPSyncEnabled: b(f.IPSyncEnabled), UserConsent: f.UserConsent,
		IDEREnabled: b(f.IDEREnabled), KVMEnabled: b(f.KVMEnabled), SOLEnabled: b(f.SOLEnabled), Version: f.Version}
	if !f.GenerateRandomPassword {
		p.AMTPassword = f.AMTPassword
	}
	if !f.GenerateRandomMEBxPassword {
		p.MEBxPassword = f.MEBxPassword
	}
	if f.TLSMode != "" {
		n, err := strconv.Atoi(f.TLSMode)
		if err != nil {
			fe.ByField["tlsMode"] = []string{"TLS mode must be 1, 2, 3 or 4, or none"}
			return nil, fe
		}
		p.TLSMode = &n
	}
	for t := range strings.SplitSeq(f.Tags, ",") {
		if t = strings.TrimSpace(t); t != "" {
			p.Tags = append(p.Tags, t)
		}
	}
	body, err := json.Marshal(p)
	if err != nil {
		fe.General = []string{"the profile could not be encoded: " + err.Error()}
		return nil, fe
	}
	return body, fe
}

type profilesView struct {
	List    []catalog.ProfileEntry
	Saved   string
	Deleted string
}

func (h *handler) profiles(w http.ResponseWriter, r *http.Request) {
	list := h.cfg.Catalog.ProfileList() // sorted by name
	v := profilesView{List: list, Saved: r.URL.Query().Get("saved"), Deleted: r.URL.Query().Get("deleted")}
	h.render(w, r, http.StatusOK, "profiles", h.newView(r, "Profiles", "profiles", v))
}

type profileEditView struct {
	New      bool
	ReadOnly bool // site-managed: edited in the site file, not here
	Form     profileForm
	Errors   formErrors
	Name     string // the entry's name in URLs (edit)
}

func (h *handler) profileNew(w http.ResponseWriter, r *http.Request) {
	v := profileEditView{New: true, Form: profileForm{Activation: profiles.ActivationCCM, GenerateRandomPassword: true,
		GenerateRandomMEBxPassword: true, DHCPEnabled: true, UserConsent: profiles.ConsentAll}}
	h.render(w, r, http.StatusOK, "profile", h.newView(r, "New profile", "profiles", v))
}

func (h *handler) profileCreate(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	f, err := readProfileForm(r)
	v := profileEditView{New: true, Form: f}
	if err != nil {
		v.Errors = formErrors{General: []string{err.Error()}}
		h.render(w, r, http.StatusBadRequest, "profile", h.newView(r, "New profile", "profiles", v))
		return
	}
	body, fe := f.body()
	if fe.Any() {
		v.Errors = fe
		h.render(w, r, http.StatusBadRequest, "profile", h.newView(r, "New profile", "profiles", v))
		return
	}
	user, _ := h.cfg.Auth.User(r)
	created, err := h.cfg.Catalog.CreateProfile(r.Context(), body, user)
	if err != nil {
		fe, code := classify(err, profileFields)
		v.Errors = fe
		h.render(w, r, code, "profile", h.newView(r, "New profile", "profiles", v))
		return
	}
	http.Redirect(w, r, "/profiles?saved="+url.QueryEscape(created.ProfileName), http.StatusSeeOther)
}

func (h *handler) profileEdit(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	p, err := h.cfg.Catalog.ProfileByName(name)
	if err != nil {
		h.catalogReadError(w, r, err)
		return
	}
	v := profileEditView{Name: name, Form: formFromProfile(p.Profile), ReadOnly: p.Source == catalog.SourceSite}
	h.render(w, r, http.StatusOK, "profile", h.newView(r, "Profile "+name, "profiles", v))
}

func (h *handler) profileUpdate(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	f, err := readProfileForm(r)
	f.ProfileName = name // the name is the entry's identity; renaming is delete and create
	v := profileEditView{Name: name, Form: f}
	if err != nil {
		v.Errors = formErrors{General: []string{err.Error()}}
		h.render(w, r, http.StatusBadRequest, "profile", h.newView(r, "Profile "+name, "profiles", v))
		return
	}
	body, fe := f.body()
	if fe.Any() {
		v.Errors = fe
		h.render(w, r, http.StatusBadRequest, "profile", h.newView(r, "Profile "+name, "profiles", v))
		return
	}
	user, _ := h.cfg.Auth.User(r)
	if _, err := h.cfg.Catalog.UpdateProfile(r.Context(), body, "", user); err != nil {
		fe, code := classify(err, profileFields)
		v.Errors = fe
		h.render(w, r, code, "profile", h.newView(r, "Profile "+name, "profiles", v))
		return
	}
	http.Redirect(w, r, "/profiles?saved="+url.QueryEscape(name), http.StatusSeeOther)
}

func (h *handler) profileDelete(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	user, _ := h.cfg.Auth.User(r)
	if err := h.cfg.Catalog.DeleteProfile(r.Context(), name, user); err != nil {
		fe, code := classify(err, nil)
		msg := fe.Conflict
		if msg == "" {
			msg = strings.Join(fe.General, "; ")
		}
		h.errorPage(w, r, code, "Profile "+name+" was not deleted: "+msg)
		return
	}
	http.Redirect(w, r, "/profiles?deleted="+url.QueryEscape(name), http.StatusSeeOther)
}

// catalogReadError answers a failed lookup: 404 for an unknown name, else a 500 that names the cause.
func (h *handler) catalogReadError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, catalog.ErrNotFound) {
		h.notFound(w, r, err.Error())
		return
	}
	h.serverError(w, r, err)
}
