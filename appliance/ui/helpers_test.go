package ui

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/amtedge/amtedge/appliance/agent"
	"github.com/amtedge/amtedge/appliance/catalog"
	"github.com/amtedge/amtedge/appliance/domains"
	"github.com/amtedge/amtedge/appliance/events"
	"github.com/amtedge/amtedge/appliance/inventory"
	"github.com/amtedge/amtedge/appliance/profiles"
	"github.com/amtedge/amtedge/appliance/web"
)

// XSS payloads that device-reported and operator-typed strings carry in the tests.
const (
	xssImg    = `<img src=x onerror=alert(1)>`
	xssScript = `"><script>alert(1)</script>`
)

// testAuth honours the Auth contract the way access.Guard does: a random session cookie, a per-session CSRF
// token required (header or form field) with a same-origin check on unsafe methods, and a redirect to /login.
type testAuth struct {
	mu       sync.Mutex
	user     string
	password string
	sessions map[string]testSession // cookie value -> session
}

type testSession struct{ user, csrf string }

const testCookie = "amtedge_test_session"

func newTestAuth(user, password string) *testAuth {
	return &testAuth{user: user, password: password, sessions: map[string]testSession{}}
}

func randHex() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (a *testAuth) Login(w http.ResponseWriter, r *http.Request, user, password string) error {
	if subtle.ConstantTimeCompare([]byte(user), []byte(a.user)) != 1 || subtle.ConstantTimeCompare([]byte(password), []byte(a.password)) != 1 {
		return errors.New("wrong user name or password")
	}
	id := randHex()
	a.mu.Lock()
	a.sessions[id] = testSession{user: user, csrf: randHex()}
	a.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: testCookie, Value: id, Path: "/", HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	return nil
}

func (a *testAuth) session(r *http.Request) (testSession, bool) {
	c, err := r.Cookie(testCookie)
	if err != nil {
		return testSession{}, false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	s, ok := a.sessions[c.Value]
	return s, ok
}

func (a *testAuth) Logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(testCookie); err == nil {
		a.mu.Lock()
		delete(a.sessions, c.Value)
		a.mu.Unlock()
	}
	http.SetCookie(w, &http.Cookie{Name: testCookie, Value: "", Path: "/", MaxAge: -1})
}

type ctxKey struct{}

func (a *testAuth) Page(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, ok := a.session(r)
		if !ok {
			http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if !sameOrigin(r) {
				http.Error(w, "cross-origin request refused", http.StatusForbidden)
				return
			}
			got := r.Header.Get(CSRFHeader)
			if got == "" {
				got = r.PostFormValue(CSRFField)
			}
			if subtle.ConstantTimeCompare([]byte(got), []byte(s.csrf)) != 1 {
				http.Error(w, "missing or wrong CSRF token", http.StatusForbidden)
				return
			}
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, s)))
	})
}

func (a *testAuth) Stream(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, ok := a.session(r)
		if !ok || !sameOrigin(r) {
			http.Error(w, "sign in first", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, s)))
	})
}

func (a *testAuth) User(r *http.Request) (string, string) {
	s, _ := r.Context().Value(ctxKey{}).(testSession)
	return s.user, s.csrf
}

// memCatalog is an in-memory Catalog that refuses writes with the catalog's own error types.
type memCatalog struct {
	mu       sync.Mutex
	profiles map[string]catalog.ProfileEntry
	domains  map[string]catalog.Domain
	pfx      map[string][]byte
	pfxPass  map[string]string
	version  int
	now      func() time.Time
	// certReads counts DomainCert calls (each a store read and a PFX decode in *catalog.Catalog).
	certReads int
}

func newMemCatalog(now func() time.Time) *memCatalog {
	return &memCatalog{profiles: map[string]catalog.ProfileEntry{}, domains: map[string]catalog.Domain{},
		pfx: map[string][]byte{}, pfxPass: map[string]string{}, now: now}
}

func (c *memCatalog) nextVersion() string { c.version++; return strconv.Itoa(c.version) }

func (c *memCatalog) ProfileList() []catalog.ProfileEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []catalog.ProfileEntry
	for _, p := range c.profiles {
		out = append(out, p)
	}
	// Sorted by name, as *catalog.Catalog's list is (the UI shows it in this order).
	slices.SortFunc(out, func(a, b catalog.ProfileEntry) int { return strings.Compare(a.ProfileName, b.ProfileName) })
	return out
}

func (c *memCatalog) ProfileByName(name string) (catalog.ProfileEntry, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.profiles[name]
	if !ok {
		return p, fmt.Errorf("AMT profile %s Not Found: %w", name, catalog.ErrNotFound)
	}
	return p, nil
}

func (c *memCatalog) DomainList() []catalog.Domain {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []catalog.Domain
	for _, d := range c.domains {
		out = append(out, d)
	}
	// Sorted by name, as *catalog.Catalog's list is (the UI shows it in this order).
	slices.SortFunc(out, func(a, b catalog.Domain) int { return strings.Compare(a.ProfileName, b.ProfileName) })
	return out
}

func (c *memCatalog) DomainByName(name string) (catalog.Domain, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d, ok := c.domains[name]
	if !ok {
		return d, fmt.Errorf("Domain profile %s Not Found: %w", name, catalog.ErrNotFound)
	}
	return d, nil
}

func validateProfile(p profiles.Profile) error {
	var errs []profiles.FieldError
	if p.ProfileName == "" {
		errs = append(errs, profiles.FieldError{Type: "field", Msg: "profile name is required", Path: "profileName", Location: "body"})
	}
	if p.Activation != profiles.ActivationACM && p.Activation != profiles.ActivationCCM {
		errs = append(errs, profiles.FieldError{Type: "field", Msg: "activation must be acmactivate or ccmactivate", Path: "activation", Location: "body"})
	}
	if !p.GenerateRandomPassword && p.AMTPassword == "" {
		errs = append(errs, profiles.FieldError{Type: "field", Msg: "amtPassword is required when generateRandomPassword is false", Path: "amtPassword", Location: "body"})
	}
	if len(errs) > 0 {
		return &catalog.ValidationError{Errors: errs}
	}
	return nil
}

func (c *memCatalog) CreateProfile(_ context.Context, body []byte, _ string) (catalog.ProfileEntry, error) {
	var p profiles.Profile
	if err := json.Unmarshal(body, &p); err != nil {
		return catalog.ProfileEntry{}, &catalog.ValidationError{Errors: []profiles.FieldError{{Type: "field", Msg: err.Error(), Path: "body", Location: "body"}}}
	}
	if err := validateProfile(p); err != nil {
		return catalog.ProfileEntry{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur, ok := c.profiles[p.ProfileName]; ok {
		return catalog.ProfileEntry{}, &catalog.ConflictError{Msg: "AMT profile " + p.ProfileName + " already exists", Current: cur}
	}
	p.AMTPassword, p.MEBxPassword = "", ""
	p.Version = c.nextVersion()
	e := catalog.ProfileEntry{Profile: p, Source: catalog.SourceAPI}
	c.profiles[p.ProfileName] = e
	return e, nil
}

func (c *memCatalog) UpdateProfile(_ context.Context, body []byte, _, _ string) (catalog.ProfileEntry, error) {
	var p profiles.Profile
	if err := json.Unmarshal(body, &p); err != nil {
		return catalog.ProfileEntry{}, &catalog.ValidationError{Errors: []profiles.FieldError{{Type: "field", Msg: err.Error(), Path: "body", Location: "body"}}}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	cur, ok := c.profiles[p.ProfileName]
	if !ok {
		return catalog.ProfileEntry{}, fmt.Errorf("AMT profile %s Not Found: %w", p.ProfileName, catalog.ErrNotFound)
	}
	if cur.Source == catalog.SourceSite {
		return catalog.ProfileEntry{}, &catalog.ConflictError{Msg: "AMT profile " + p.ProfileName + " is managed by the site file", Current: cur}
	}
	if p.Version != cur.Version {
		return catalog.ProfileEntry{}, &catalog.ConflictError{Msg: "AMT profile " + p.ProfileName + " was changed by someone else (version " + cur.Version + ")", Current: cur}
	}
	if !p.GenerateRandomPassword && p.AMTPassword == "" && cur.GenerateRandomPassword {
		return catalog.ProfileEntry{}, validateProfile(p)
	}
	p.AMTPassword, p.MEBxPassword = "", ""
	p.Version = c.nextVersion()
	e := catalog.ProfileEntry{Profile: p, Source: catalog.SourceAPI}
	c.profiles[p.ProfileName] = e
	return e, nil
}

func (c *memCatalog) DeleteProfile(_ context.Context, name, _ string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	cur, ok := c.profiles[name]
	if !ok {
		return fmt.Errorf("AMT profile %s Not Found: %w", name, catalog.ErrNotFound)
	}
	if cur.Source == catalog.SourceSite {
		return &catalog.ConflictError{Msg: "AMT profile " + name + " is managed by the site file", Current: cur}
	}
	delete(c.profiles, name)
	return nil
}

type domainBodyJSON struct {
	ProfileName              string `json:"profileName"`
	DomainSuffix             string `json:"domainSuffix"`
	ProvisioningCert         string `json:"provisioningCert"`
	ProvisioningCertPassword string `json:"provisioningCertPassword"`
	Version                  string `json:"version"`
}

func (c *memCatalog) CreateDomain(_ context.Context, body []byte, _ string) (catalog.Domain, error) {
	var b domainBodyJSON
	if err := json.Unmarshal(body, &b); err != nil {
		return catalog.Domain{}, &catalog.ValidationError{Errors: []profiles.FieldError{{Type: "field", Msg: err.Error(), Path: "body", Location: "body"}}}
	}
	var errs []profiles.FieldError
	if b.ProfileName == "" {
		errs = append(errs, profiles.FieldError{Type: "field", Msg: "name is required", Path: "profileName", Location: "body"})
	}
	pfx, err := base64.StdEncoding.DecodeString(b.ProvisioningCert)
	if err != nil || len(pfx) == 0 {
		errs = append(errs, profiles.FieldError{Type: "field", Msg: "provisioningCert must be a base64 PFX", Path: "provisioningCert", Location: "body"})
	}
	var d *domains.Domain
	if len(errs) == 0 {
		if d, err = domains.Import(b.ProfileName, b.DomainSuffix, pfx, b.ProvisioningCertPassword, c.now()); err != nil {
			errs = append(errs, profiles.FieldError{Type: "field", Msg: err.Error(), Path: "provisioningCert", Location: "body"})
		}
	}
	if len(errs) > 0 {
		return catalog.Domain{}, &catalog.ValidationError{Errors: errs}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur, ok := c.domains[b.ProfileName]; ok {
		return catalog.Domain{}, &catalog.ConflictError{Msg: "domain " + b.ProfileName + " already exists", Current: cur}
	}
	dom := catalog.Domain{ProfileName: b.ProfileName, DomainSuffix: b.DomainSuffix, ExpirationDate: d.Chain[0].NotAfter,
		Version: c.nextVersion(), Source: catalog.SourceAPI}
	c.domains[b.ProfileName] = dom
	c.pfx[b.ProfileName], c.pfxPass[b.ProfileName] = pfx, b.ProvisioningCertPassword
	return dom, nil
}

func (c *memCatalog) UpdateDomain(_ context.Context, body []byte, _, _ string) (catalog.Domain, error) {
	var b domainBodyJSON
	if err := json.Unmarshal(body, &b); err != nil {
		return catalog.Domain{}, &catalog.ValidationError{Errors: []profiles.FieldError{{Type: "field", Msg: err.Error(), Path: "body", Location: "body"}}}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	cur, ok := c.domains[b.ProfileName]
	if !ok {
		return catalog.Domain{}, fmt.Errorf("Domain profile %s Not Found: %w", b.ProfileName, catalog.ErrNotFound)
	}
	if b.Version != cur.Version {
		return catalog.Domain{}, &catalog.ConflictError{Msg: "domain " + b.ProfileName + " was changed by someone else", Current: cur}
	}
	cur.DomainSuffix = b.DomainSuffix
	cur.Version = c.nextVersion()
	c.domains[b.ProfileName] = cur
	return cur, nil
}

func (c *memCatalog) DeleteDomain(_ context.Context, name, _ string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.domains[name]; !ok {
		return fmt.Errorf("Domain profile %s Not Found: %w", name, catalog.ErrNotFound)
	}
	delete(c.domains, name)
	return nil
}

func (c *memCatalog) InspectPFX(pfx []byte, password, suffix string) catalog.CertReport {
	chain, _, err := domains.DecodeChain(pfx, password)
	if err != nil {
		return catalog.CertReport{Suffix: suffix, Problem: err.Error()}
	}
	rep := catalog.CertReport{Suffix: suffix, LeafCN: chain[0].Subject.CommonName, ActivationEKU: domains.HasProvisioningEKU(chain[0])}
	rep.Expires = chain[0].NotAfter
	for _, crt := range chain {
		rep.Chain = append(rep.Chain, catalog.CertInfo{Subject: crt.Subject.String(), Issuer: crt.Issuer.String(), NotBefore: crt.NotBefore, NotAfter: crt.NotAfter})
		if crt.NotAfter.Before(rep.Expires) {
			rep.Expires = crt.NotAfter
		}
	}
	if suffix != "" {
		rep.SuffixMatches = domains.CertMatchesSuffix(rep.LeafCN, suffix)
	}
	if d, err := domains.Import("preview", suffix, pfx, password, c.now()); err != nil {
		rep.Problem = err.Error()
	} else {
		_, rep.RootSHA256, _ = d.RootHashes()
	}
	return rep
}

func (c *memCatalog) DomainCert(_ context.Context, name string) (catalog.CertReport, error) {
	c.mu.Lock()
	c.certReads++
	pfx, ok := c.pfx[name]
	pass := c.pfxPass[name]
	suffix := c.domains[name].DomainSuffix
	c.mu.Unlock()
	if !ok {
		return catalog.CertReport{}, fmt.Errorf("Domain profile %s Not Found: %w", name, catalog.ErrNotFound)
	}
	return c.InspectPFX(pfx, pass, suffix), nil
}

type fixedStatus struct{ st web.Status }

func (f fixedStatus) Status(context.Context) web.Status { return f.st }

type sessionList struct {
	mu   sync.Mutex
	list []agent.SessionInfo
}

func (s *sessionList) Sessions() []agent.SessionInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.list)
}

// fixture is a UI handler over fakes with a little history: a successful ACM device, a device whose hostname,
// suffix and status are XSS payloads, a live session, and one domain.
type fixture struct {
	h        http.Handler
	auth     *testAuth
	cat      *memCatalog
	inv      *inventory.Inventory
	hub      *events.Hub
	sessions *sessionList
	now      time.Time
	reveals  []string
}

const (
	goodUUID = "4c4c4544-0042-3510-8052-b4c04f4e3232"
	xssUUID  = "4c4c4544-0000-0000-0000-000000000bad"
)

func newFixture(t testing.TB) *fixture {
	t.Helper()
	now := time.Date(2026, 11, 29, 12, 30, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	f := &fixture{auth: newTestAuth("tech", "correct horse"), cat: newMemCatalog(clock), inv: inventory.New(20),
		hub: events.NewHub(100), sessions: &sessionList{}, now: now}
	f.inv.Add(inventory.Record{ID: "r1", UUID: goodUUID, Verb: "activate", Profile: "acm", Domain: "corp",
		Hostname: "pc-0042", DNSSuffix: "corp.example.com", FirmwareVer: "16.1.30", AgentVersion: "2.48.0",
		ModeBefore: 0, ModeAfter: 2, Started: now.Add(-3 * time.Hour), Ended: now.Add(-3*time.Hour + 9*time.Second),
		Success: true, Status: "Admin control mode.", Steps: []inventory.Step{
			{Name: "get general settings", Result: inventory.StepOK, Duration: 120 * time.Millisecond},
			{Name: "add certificate chain", Result: inventory.StepOK, Duration: 2 * time.Second},
			{Name: "AdminSetup", Result: inventory.StepOK, Duration: 4 * time.Second}}})
	f.inv.Add(inventory.Record{ID: "r2", UUID: xssUUID, Verb: "activate", Profile: "acm",
		Hostname: xssImg, DNSSuffix: xssScript, FirmwareVer: xssImg, Remote: "192.0.2.7:51000",
		ModeBefore: 0, ModeAfter: 0, Started: now.Add(-40 * time.Minute), Ended: now.Add(-39 * time.Minute),
		Success: false, Status: "DNS suffix " + xssScript + " matches no domain", Steps: []inventory.Step{
			{Name: "get general settings", Result: inventory.StepOK, Duration: 100 * time.Millisecond},
			{Name: "match domain", Result: inventory.StepFailed, Detail: "suffix " + xssImg, Duration: time.Millisecond}}})
	f.sessions.list = []agent.SessionInfo{{ID: "s1", UUID: "4c4c4544-1111-2222-3333-444455556666", Verb: "activate",
		Profile: "ccm", Remote: "192.0.2.9:50000", Step: "AdminSetup " + xssImg, Started: now.Add(-12 * time.Second)}}
	f.cat.domains["corp"] = catalog.Domain{ProfileName: "corp", DomainSuffix: "corp.example.com",
		ExpirationDate: now.Add(20 * 24 * time.Hour), Version: "1", Source: catalog.SourceSite}
	f.cat.profiles["acm"] = catalog.ProfileEntry{Profile: profiles.Profile{ProfileName: "acm", Activation: profiles.ActivationACM,
		GenerateRandomPassword: true, GenerateRandomMEBxPassword: true, UserConsent: "None", Version: "1"}, Source: catalog.SourceSite}
	f.hub.Publish(events.Record{Time: now.Add(-time.Minute), Name: events.ActivationFailed, Level: "WARN",
		Message: "activation failed " + xssScript, Fields: []events.Field{{Key: "hostname", Value: xssImg}}})
	oldest := now.Add(-5 * time.Minute)
	h, err := New(Config{
		Status: fixedStatus{web.Status{Seal: web.Seal{Mode: "software", State: "ok"}, Vault: web.Vault{State: "reachable"},
			Outbox: web.Outbox{Length: 2, Oldest: &oldest}, Listen: "0.0.0.0:8080", Version: "1.0.0-test", Started: now.Add(-26 * time.Hour)}},
		Sessions: f.sessions, Devices: f.inv, Catalog: f.cat, Activity: f.hub, Auth: f.auth,
		Reveal: func(_ context.Context, uuid, actor string) (string, string, error) {
			f.reveals = append(f.reveals, uuid+" by "+actor)
			if uuid != goodUUID {
				return "", "", errors.New("no password is stored for device " + uuid)
			}
			return "Amt-S3cret!pw", "Mebx-S3cret!pw", nil
		},
		Sync: func(context.Context) (web.SyncResult, error) {
			return web.SyncResult{Pulled: 3, Pushed: 2, Message: "Vault is in sync"}, nil
		},
		Now: clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	f.h = h
	return f
}
