package ui

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/amtedge/amtedge/appliance/catalog"
)

const (
	// maxPFXBytes bounds an uploaded provisioning certificate: a PFX with a chain of a few RSA certificates is a
	// few kilobytes. readUpload checks it on the file's header, whoever parsed the form (see readUpload).
	maxPFXBytes = 64 << 10
	// maxUploadBytes bounds the whole multipart form around it, when readUpload is the one to parse the form.
	maxUploadBytes = maxPFXBytes + 64<<10
)

var domainFields = []string{"profileName", "domainSuffix", "provisioningCert", "provisioningCertPassword", "version"}

type domainsView struct {
	List    []domainRow
	Saved   string
	Deleted string
}

type domainRow struct {
	catalog.Domain
	Cert certTile
}

func (h *handler) domains(w http.ResponseWriter, r *http.Request) {
	now := h.cfg.Now()
	v := domainsView{Saved: r.URL.Query().Get("saved"), Deleted: r.URL.Query().Get("deleted")}
	for _, d := range h.cfg.Catalog.DomainList() { // sorted by name
		v.List = append(v.List, domainRow{Domain: d, Cert: certTileFor(d, now)})
	}
	h.render(w, r, http.StatusOK, "domains", h.newView(r, "Domains", "domains", v))
}

// domainForm is the domain form's state. The PFX and its password never go back to the browser: after a preview
// without JavaScript they wait server-side under Upload (see pendingUploads).
type domainForm struct {
	Name     string
	Suffix   string
	Version  string
	Upload   string // token of a PFX kept from the previous step
	FileName string // its file name, to show
}

type domainEditView struct {
	New      bool
	ReadOnly bool
	Name     string
	Form     domainForm
	Errors   formErrors
	Report   *reportView // preview of the uploaded PFX, or the stored certificate on the edit page
	Current  *reportView // edit page: the certificate in use
}

type reportView struct {
	catalog.CertReport
	Now  time.Time
	Tile certTile
}

func (h *handler) report(rep catalog.CertReport) *reportView {
	now := h.cfg.Now()
	return &reportView{CertReport: rep, Now: now, Tile: certTileFor(catalog.Domain{ExpirationDate: rep.Expires}, now)}
}

// upload is what a domain form POST carried.
type upload struct {
	form     domainForm
	pfx      []byte
	password string
	step     string
}

// readUpload parses the multipart form: the PFX comes from the file field or, after a no-JavaScript preview, from
// the pending upload the form names.
//
// Which limits bound the form depends on where the CSRF token came. In a form field (the page without
// JavaScript), Auth.Page (access.Guard) has already parsed the whole form, under access.MaxFormBytes (1 MiB) and in
// memory, to read the token; ParseMultipartForm below then returns at once and neither maxUploadBytes nor this
// MaxBytesReader applies. Only in the X-CSRF-Token header (htmx) is the form still unread here, and bounded by
// maxUploadBytes. In both cases the certificate itself is bounded by the check of the file header's size against
// maxPFXBytes below, before the file is read.
func (h *handler) readUpload(w http.ResponseWriter, r *http.Request) (upload, error) {
	r.Body = http.MaxBytesReader(w, r.Body, maxUploadBytes)
	if err := r.ParseMultipartForm(maxUploadBytes); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return upload{}, fmt.Errorf("the upload is larger than %d KiB; a provisioning certificate (PFX) is a few KiB", maxPFXBytes>>10)
		}
		// The parser's error may quote the body, which may hold the PFX password: it is not passed on.
		return upload{}, errors.New("the form could not be read: send it as multipart/form-data, as the page does")
	}
	defer func() { _ = r.MultipartForm.RemoveAll() }()
	v := r.MultipartForm.Value
	get := func(k string) string {
		if len(v[k]) > 0 {
			return v[k][0]
		}
		return ""
	}
	for k, vals := range v {
		for _, val := range vals {
			if !utf8.ValidString(val) {
				return upload{}, fmt.Errorf("the field %s is not valid UTF-8 text", strconv.Quote(k))
			}
		}
	}
	u := upload{form: domainForm{Name: strings.TrimSpace(get("profileName")), Suffix: strings.TrimSpace(get("domainSuffix")),
		Version: get("version")}, password: get("provisioningCertPassword"), step: get("step")}
	if files := r.MultipartForm.File["provisioningCert"]; len(files) > 0 && files[0].Size > 0 {
		fh := files[0]
		// This bounds the PFX whichever parse read the form (see above); maxUploadBytes alone would not.
		if fh.Size > maxPFXBytes {
			return u, fmt.Errorf("the file %s is %d KiB; a provisioning certificate (PFX) is a few KiB", fh.Filename, fh.Size>>10)
		}
		f, err := fh.Open()
		if err != nil {
			return u, fmt.Errorf("the uploaded file could not be read: %v", err)
		}
		defer f.Close()
		if u.pfx, err = io.ReadAll(io.LimitReader(f, maxPFXBytes+1)); err != nil {
			return u, fmt.Errorf("the uploaded file could not be read: %v", err)
		}
		u.form.FileName = fh.Filename
		return u, nil
	}
	if tok := get("upload"); tok != "" {
		user, _ := h.cfg.Auth.User(r)
		p, ok := h.pending.take(tok, user)
		if !ok {
			return u, errors.New("the certificate uploaded earlier is no longer kept (it is dropped after 10 minutes); choose the file again")
		}
		u.pfx, u.form.FileName = p.pfx, p.fileName
		if u.password == "" {
			u.password = p.password
		}
	}
	return u, nil
}

// keep stashes the upload's PFX for the next step of the form, so the technician does not choose the file again.
func (h *handler) keep(r *http.Request, u *upload) {
	if len(u.pfx) == 0 {
		return
	}
	user, _ := h.cfg.Auth.User(r)
	u.form.Upload = h.pending.put(user, pendingUpload{pfx: u.pfx, password: u.password, fileName: u.form.FileName})
}

// domainBody is the RPS JSON the catalog takes; without a new PFX (an update that keeps the certificate) the
// certificate fields are left out.
func domainBody(u upload) ([]byte, error) {
	m := map[string]string{"profileName": u.form.Name, "domainSuffix": u.form.Suffix}
	if u.form.Version != "" {
		m["version"] = u.form.Version
	}
	if len(u.pfx) > 0 {
		m["provisioningCert"] = base64.StdEncoding.EncodeToString(u.pfx)
		m["provisioningCertPassword"] = u.password
	}
	return json.Marshal(m)
}

func (h *handler) domainNew(w http.ResponseWriter, r *http.Request) {
	h.render(w, r, http.StatusOK, "domain", h.newView(r, "New domain", "domains", domainEditView{New: true}))
}

// domainPreview is the htmx preview: the report on the chosen PFX, for the suffix typed so far.
func (h *handler) domainPreview(w http.ResponseWriter, r *http.Request) {
	u, err := h.readUpload(w, r)
	if err != nil {
		// Answered 200: the problem is the preview's content, and htmx does not swap error statuses in.
		h.fragment(w, r, "certproblem", err.Error())
		return
	}
	if len(u.pfx) == 0 {
		h.fragment(w, r, "certproblem", "Choose the provisioning certificate (a .pfx file) to see what it holds.")
		return
	}
	h.fragment(w, r, "certreport", h.report(h.cfg.Catalog.InspectPFX(u.pfx, u.password, u.form.Suffix)))
}

func (h *handler) domainCreate(w http.ResponseWriter, r *http.Request) {
	u, err := h.readUpload(w, r)
	v := domainEditView{New: true, Form: u.form}
	if err != nil {
		v.Errors = formErrors{ByField: map[string][]string{"provisioningCert": {err.Error()}}}
		h.render(w, r, http.StatusBadRequest, "domain", h.newView(r, "New domain", "domains", v))
		return
	}
	if u.step == "preview" {
		if len(u.pfx) == 0 {
			v.Errors = formErrors{ByField: map[string][]string{"provisioningCert": {"choose the provisioning certificate (a .pfx file) to preview"}}}
			h.render(w, r, http.StatusBadRequest, "domain", h.newView(r, "New domain", "domains", v))
			return
		}
		v.Report = h.report(h.cfg.Catalog.InspectPFX(u.pfx, u.password, u.form.Suffix))
		h.keep(r, &u)
		v.Form = u.form
		h.render(w, r, http.StatusOK, "domain", h.newView(r, "New domain", "domains", v))
		return
	}
	body, err := domainBody(u)
	if err != nil {
		h.serverError(w, r, fmt.Errorf("encode domain: %w", err))
		return
	}
	user, _ := h.cfg.Auth.User(r)
	created, err := h.cfg.Catalog.CreateDomain(r.Context(), body, user)
	if err != nil {
		fe, code := classify(err, domainFields)
		v.Errors = fe
		if len(u.pfx) > 0 {
			v.Report = h.report(h.cfg.Catalog.InspectPFX(u.pfx, u.password, u.form.Suffix))
		}
		h.keep(r, &u)
		v.Form = u.form
		h.render(w, r, code, "domain", h.newView(r, "New domain", "domains", v))
		return
	}
	http.Redirect(w, r, "/domains?saved="+url.QueryEscape(created.ProfileName), http.StatusSeeOther)
}

// domainEditData is the edit page of domain name without its current certificate (see withCurrent), and the
// domain as the catalog holds it.
func (h *handler) domainEditData(name string) (domainEditView, catalog.Domain, error) {
	d, err := h.cfg.Catalog.DomainByName(name)
	if err != nil {
		return domainEditView{}, catalog.Domain{}, err
	}
	v := domainEditView{Name: name, ReadOnly: d.Source == catalog.SourceSite,
		Form: domainForm{Name: d.ProfileName, Suffix: d.DomainSuffix, Version: d.Version}}
	return v, d, nil
}

// withCurrent adds the report on the certificate in use to v, the edit page of domain d. It reads the sealed
// store and decodes the PFX, so it runs only when the page is rendered, not before a save that redirects.
func (h *handler) withCurrent(r *http.Request, v *domainEditView, d catalog.Domain) {
	if rep, err := h.cfg.Catalog.DomainCert(r.Context(), v.Name); err == nil {
		v.Current = h.report(rep)
	} else {
		v.Current = h.report(catalog.CertReport{Expires: d.ExpirationDate, Problem: "The stored certificate could not be read: " + err.Error()})
	}
}

func (h *handler) domainEdit(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	v, d, err := h.domainEditData(name)
	if err != nil {
		h.catalogReadError(w, r, err)
		return
	}
	h.withCurrent(r, &v, d)
	h.render(w, r, http.StatusOK, "domain", h.newView(r, "Domain "+name, "domains", v))
}

func (h *handler) domainUpdate(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	v, d, err := h.domainEditData(name)
	if err != nil {
		h.catalogReadError(w, r, err)
		return
	}
	u, err := h.readUpload(w, r)
	u.form.Name = name // the name is the entry's identity
	v.Form = u.form
	if err != nil {
		v.Errors = formErrors{ByField: map[string][]string{"provisioningCert": {err.Error()}}}
		h.withCurrent(r, &v, d)
		h.render(w, r, http.StatusBadRequest, "domain", h.newView(r, "Domain "+name, "domains", v))
		return
	}
	if u.step == "preview" && len(u.pfx) > 0 {
		v.Report = h.report(h.cfg.Catalog.InspectPFX(u.pfx, u.password, u.form.Suffix))
		h.withCurrent(r, &v, d)
		h.keep(r, &u)
		v.Form = u.form
		h.render(w, r, http.StatusOK, "domain", h.newView(r, "Domain "+name, "domains", v))
		return
	}
	body, err := domainBody(u)
	if err != nil {
		h.serverError(w, r, fmt.Errorf("encode domain: %w", err))
		return
	}
	user, _ := h.cfg.Auth.User(r)
	if _, err := h.cfg.Catalog.UpdateDomain(r.Context(), body, "", user); err != nil {
		fe, code := classify(err, domainFields)
		v.Errors = fe
		h.withCurrent(r, &v, d)
		h.keep(r, &u)
		v.Form = u.form
		h.render(w, r, code, "domain", h.newView(r, "Domain "+name, "domains", v))
		return
	}
	http.Redirect(w, r, "/domains?saved="+url.QueryEscape(name), http.StatusSeeOther)
}

func (h *handler) domainDelete(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	user, _ := h.cfg.Auth.User(r)
	if err := h.cfg.Catalog.DeleteDomain(r.Context(), name, user); err != nil {
		fe, code := classify(err, nil)
		msg := fe.Conflict
		if msg == "" {
			msg = strings.Join(fe.General, "; ")
		}
		h.errorPage(w, r, code, "Domain "+name+" was not deleted: "+msg)
		return
	}
	http.Redirect(w, r, "/domains?deleted="+url.QueryEscape(name), http.StatusSeeOther)
}

// pendingUploads keeps a PFX between the preview and the save step of the no-JavaScript domain form, in memory
// only, for one user, for at most pendingTTL, and at most pendingMax at once. The token is random and single-use.
type pendingUploads struct {
	mu  sync.Mutex
	now func() time.Time
	seq uint64
	m   map[string]pendingUpload
}

type pendingUpload struct {
	user     string
	pfx      []byte
	password string
	fileName string
	expires  time.Time
	seq      uint64 // order of arrival, to drop the oldest when full
}

const (
	pendingTTL = 10 * time.Minute
	pendingMax = 32
)

func newPendingUploads(now func() time.Time) *pendingUploads {
	return &pendingUploads{now: now, m: map[string]pendingUpload{}}
}

func (p *pendingUploads) put(user string, u pendingUpload) string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	tok := hex.EncodeToString(b[:])
	now := p.now()
	u.user, u.expires = user, now.Add(pendingTTL)
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, v := range p.m {
		if !now.Before(v.expires) {
			delete(p.m, k)
		}
	}
	for len(p.m) >= pendingMax { // drop the oldest
		var oldest string
		for k, v := range p.m {
			if oldest == "" || v.seq < p.m[oldest].seq {
				oldest = k
			}
		}
		delete(p.m, oldest)
	}
	p.seq++
	u.seq = p.seq
	p.m[tok] = u
	return tok
}

func (p *pendingUploads) take(tok, user string) (pendingUpload, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	u, ok := p.m[tok]
	if !ok || u.user != user || !p.now().Before(u.expires) {
		return pendingUpload{}, false
	}
	delete(p.m, tok)
	return u, true
}
