package ui

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/amtedge/amtedge/appliance/access"
	"github.com/amtedge/amtedge/appliance/catalog"
	"github.com/amtedge/amtedge/appliance/domains"
	"github.com/amtedge/amtedge/appliance/events"
	"github.com/amtedge/amtedge/appliance/inventory"
)

// client is a signed-in browser stand-in: a cookie jar, same-origin headers on unsafe requests, no redirects
// followed (the tests look at them).
type client struct {
	t    *testing.T
	srv  *httptest.Server
	http *http.Client
	csrf string
}

func newClient(t *testing.T, f *fixture) *client {
	t.Helper()
	srv := httptest.NewServer(f.h)
	t.Cleanup(srv.Close)
	jar, _ := cookiejar.New(nil)
	c := &client{t: t, srv: srv, http: &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	return c
}

func (c *client) login() {
	c.t.Helper()
	resp := c.post("/login", url.Values{"user": {"tech"}, "password": {"correct horse"}, "next": {"/devices"}}, "")
	if resp.code != http.StatusSeeOther || resp.header.Get("Location") != "/devices" {
		c.t.Fatalf("login: %d %s", resp.code, resp.header.Get("Location"))
	}
	page := c.get("/")
	m := regexp.MustCompile(`name="csrf_token" value="([0-9a-f]+)"`).FindStringSubmatch(page.body)
	if m == nil {
		c.t.Fatalf("dashboard has no csrf_token field:\n%s", page.body)
	}
	c.csrf = m[1]
}

type response struct {
	code   int
	header http.Header
	body   string
}

func (c *client) do(req *http.Request) response {
	c.t.Helper()
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return response{resp.StatusCode, resp.Header, string(body)}
}

func (c *client) get(path string) response {
	c.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, c.srv.URL+path, nil)
	return c.do(req)
}

// post sends a urlencoded form with the session's CSRF token (unless the form has its own) from this origin.
func (c *client) post(path string, form url.Values, hx string) response {
	c.t.Helper()
	if form.Get(CSRFField) == "" && c.csrf != "" {
		form.Set(CSRFField, c.csrf)
	}
	req, _ := http.NewRequest(http.MethodPost, c.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", c.srv.URL)
	if hx != "" {
		req.Header.Set("HX-Request", "true")
	}
	return c.do(req)
}

func (c *client) postMultipart(path string, fields map[string]string, pfx []byte, hx bool) response {
	c.t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for k, v := range fields {
		_ = mw.WriteField(k, v)
	}
	if pfx != nil {
		fw, _ := mw.CreateFormFile("provisioningCert", "corp.pfx")
		_, _ = fw.Write(pfx)
	}
	_ = mw.Close()
	req, _ := http.NewRequest(http.MethodPost, c.srv.URL+path, &buf)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Origin", c.srv.URL)
	req.Header.Set(CSRFHeader, c.csrf)
	if hx {
		req.Header.Set("HX-Request", "true")
	}
	return c.do(req)
}

var pagePaths = []string{"/", "/devices", "/devices?q=pc&mode=acm&result=ok", "/devices/" + goodUUID, "/devices/" + xssUUID,
	"/profiles", "/profiles/new", "/profiles/acm", "/domains", "/domains/new", "/domains/corp", "/activity",
	"/activity?level=WARN&q=hostname", "/fragments/sessions", "/fragments/failures"}

func checkSecurityHeaders(t *testing.T, path string, h http.Header) {
	t.Helper()
	want := map[string]string{
		"Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
		"X-Frame-Options":         "DENY",
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "same-origin",
	}
	for k, v := range want {
		if got := h.Get(k); got != v {
			t.Errorf("%s: %s = %q, want %q", path, k, got, v)
		}
	}
}

func TestSecurityHeadersOnEveryResponse(t *testing.T) {
	f := newFixture(t)
	c := newClient(t, f)
	for _, p := range []string{"/login", "/nowhere", "/static/0000/app.css", "/"} { // signed out
		r := c.get(p)
		checkSecurityHeaders(t, p, r.header)
	}
	c.login()
	for _, p := range pagePaths {
		r := c.get(p)
		if r.code != http.StatusOK {
			t.Errorf("GET %s: %d\n%s", p, r.code, r.body)
		}
		checkSecurityHeaders(t, p, r.header)
		if cc := r.header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("GET %s: Cache-Control %q, want no-store", p, cc)
		}
		if ct := r.header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
			t.Errorf("GET %s: Content-Type %q", p, ct)
		}
	}
	// Static assets: versioned URL, long cache, correct type, still the security headers.
	page := c.get("/")
	css := regexp.MustCompile(`href="(/static/[0-9a-f]{12}/app\.css)"`).FindStringSubmatch(page.body)
	if css == nil {
		t.Fatal("the dashboard links no versioned app.css")
	}
	r := c.get(css[1])
	if r.code != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "text/css") ||
		r.header.Get("Cache-Control") != "public, max-age=31536000, immutable" {
		t.Errorf("GET %s: %d %q %q", css[1], r.code, r.header.Get("Content-Type"), r.header.Get("Cache-Control"))
	}
	checkSecurityHeaders(t, css[1], r.header)
	if r := c.get("/static/000000000000/app.css"); r.code != http.StatusNotFound {
		t.Errorf("a stale asset URL answered %d, want 404", r.code)
	}
}

var (
	inlineScript = regexp.MustCompile(`<script(?:\s[^>]*)?>`)
	onAttr       = regexp.MustCompile(`(?i)<[^>]*\son[a-z]+\s*=`)
	styleAttr    = regexp.MustCompile(`(?i)<[^>]*\sstyle\s*=`)
	postForm     = regexp.MustCompile(`(?s)<form[^>]*method="post"[^>]*>.*?</form>`)
)

// checkMarkup enforces what the CSP needs and what escaping promises: no inline script, no on* or style
// attributes, every POST form carries the CSRF token, and the XSS payloads appear only escaped.
func checkMarkup(t *testing.T, path, body string) {
	t.Helper()
	for _, tag := range inlineScript.FindAllString(body, -1) {
		if !strings.Contains(tag, ` src="/static/`) {
			t.Errorf("%s: inline or foreign script %s", path, tag)
		}
	}
	if m := onAttr.FindString(body); m != "" {
		t.Errorf("%s: event handler attribute in %s", path, m)
	}
	if m := styleAttr.FindString(body); m != "" {
		t.Errorf("%s: style attribute in %s", path, m)
	}
	if strings.Contains(body, "<style") {
		t.Errorf("%s: inline <style>", path)
	}
	for _, form := range postForm.FindAllString(body, -1) {
		if !strings.Contains(form, `name="csrf_token"`) && !strings.Contains(form, `action="/login"`) {
			t.Errorf("%s: POST form without csrf_token: %.200s", path, form)
		}
	}
	for _, raw := range []string{xssImg, "<script>alert(1)</script>", "onerror=alert(1)>"} {
		if strings.Contains(body, raw) {
			t.Errorf("%s: unescaped payload %q in the page", path, raw)
		}
	}
}

func TestPagesRenderDeviceStringsAsText(t *testing.T) {
	f := newFixture(t)
	c := newClient(t, f)
	c.login()
	escapedImg := "&lt;img src=x onerror=alert(1)&gt;"
	escapedScript := "&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"
	for _, p := range pagePaths {
		r := c.get(p)
		checkMarkup(t, p, r.body)
		if !strings.Contains(r.body, `hx-headers="{&#34;X-CSRF-Token&#34;:&#34;`+c.csrf+`&#34;}"`) && !strings.HasPrefix(p, "/fragments/") {
			t.Errorf("%s: <body> lacks hx-headers with the CSRF token", p)
		}
	}
	for p, want := range map[string][]string{
		"/":                    {escapedImg, escapedScript, "match domain"},
		"/devices":             {escapedImg, escapedScript},
		"/devices/" + xssUUID:  {escapedImg, escapedScript, "match domain"},
		"/activity":            {escapedImg, escapedScript},
		"/fragments/sessions":  {"AdminSetup " + escapedImg},
		"/devices/" + goodUUID: {"pc-0042", "16.1.30", "AdminSetup", "Reveal passwords"},
	} {
		body := c.get(p).body
		for _, w := range want {
			if !strings.Contains(body, w) {
				t.Errorf("%s: missing %q", p, w)
			}
		}
	}
	// Operator-typed names are data too: a profile named with a payload is listed escaped.
	r := c.post("/profiles/new", url.Values{"profileName": {xssScript}, "activation": {"ccmactivate"}, "generateRandomPassword": {"on"}}, "")
	if r.code != http.StatusSeeOther {
		t.Fatalf("create profile: %d\n%s", r.code, r.body)
	}
	list := c.get("/profiles")
	checkMarkup(t, "/profiles", list.body)
	if !strings.Contains(list.body, escapedScript) {
		t.Errorf("/profiles does not show the profile name as text")
	}
	if r := c.get(r.header.Get("Location")); !strings.Contains(r.body, escapedScript+"</strong> saved") {
		t.Errorf("the saved notice does not show the name as text:\n%s", r.body)
	}
}

func TestDashboard(t *testing.T) {
	f := newFixture(t)
	c := newClient(t, f)
	c.login()
	body := c.get("/").body
	for _, want := range []string{
		"Software seal", "reachable", "Outbox: 2 waiting, oldest 5m ago", // seal warning and Vault tile
		"corp.example.com", "20 days", "cert lvl-d30", // certificate countdown at the 30-day level
		"4c4c4544-1111-2222-3333-444455556666",              // live session
		`<svg class="chart"`, "succeeded (1)", "failed (1)", // chart
		"Sync now", "Up 26h 0m", // sync button, uptime
	} {
		if !strings.Contains(body, want) {
			t.Errorf("dashboard lacks %q", want)
		}
	}
	// Sync: htmx gets the fragment, a plain form post the whole dashboard.
	r := c.post("/sync", url.Values{}, "hx")
	if r.code != http.StatusOK || !strings.Contains(r.body, "Vault is in sync (pulled 3, pushed 2") || strings.Contains(r.body, "<html") {
		t.Errorf("htmx sync: %d %s", r.code, r.body)
	}
	r = c.post("/sync", url.Values{}, "")
	if r.code != http.StatusOK || !strings.Contains(r.body, "Vault is in sync") || !strings.Contains(r.body, "<html") {
		t.Errorf("form sync: %d", r.code)
	}
}

func TestCertLevels(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		left time.Duration
		want string
	}{
		{-time.Hour, "expired"}, {12 * time.Hour, "d1"}, {3 * 24 * time.Hour, "d7"}, {7*24*time.Hour + time.Hour, "d30"},
		{29 * 24 * time.Hour, "d30"}, {45 * 24 * time.Hour, "d60"}, {61 * 24 * time.Hour, "ok"},
	} {
		got := certTileFor(catalog.Domain{ExpirationDate: now.Add(tc.left)}, now)
		if got.Level != tc.want {
			t.Errorf("%v left: level %s, want %s (%s)", tc.left, got.Level, tc.want, got.Text)
		}
	}
}

func TestActivationChart(t *testing.T) {
	now := time.Date(2026, 1, 1, 10, 30, 0, 0, time.UTC)
	recs := []inventory.Record{
		{Verb: "activate", Success: true, Ended: now.Add(-10 * time.Minute)},
		{Verb: "activate", Success: true, Ended: now.Add(-20 * time.Minute)},
		{Verb: "activate", Success: false, Ended: now.Add(-23 * time.Hour)},
		{Verb: "activate", Success: true, Ended: now.Add(-25 * time.Hour)}, // outside the window
		{Verb: "deactivate", Success: true, Ended: now},                    // not an activation
	}
	c := activationChart(recs, now)
	if c.OK != 2 || c.Failed != 1 || c.Max != 2 || len(c.Bars) != 24 {
		t.Fatalf("chart: ok %d failed %d max %d bars %d", c.OK, c.Failed, c.Max, len(c.Bars))
	}
	if last := c.Bars[23]; last.OKH != chartBottom-4 || last.BadH != 0 {
		t.Errorf("the current hour's bar: %+v", last)
	}
	if first := c.Bars[0]; first.BadH != (chartBottom-4)/2 || first.OKH != 0 {
		t.Errorf("the first hour's bar: %+v", first)
	}
}

func TestLogin(t *testing.T) {
	f := newFixture(t)
	c := newClient(t, f)
	r := c.get("/devices?q=x")
	if r.code != http.StatusSeeOther || r.header.Get("Location") != "/login?next="+url.QueryEscape("/devices?q=x") {
		t.Fatalf("signed out: %d %q", r.code, r.header.Get("Location"))
	}
	r = c.post("/login", url.Values{"user": {"tech"}, "password": {"wrong"}}, "")
	if r.code != http.StatusUnauthorized || !strings.Contains(r.body, "wrong user name or password") || strings.Contains(r.body, "value=\"wrong\"") {
		t.Errorf("bad password: %d\n%s", r.code, r.body)
	}
	// A foreign page cannot sign the technician in (login CSRF).
	req, _ := http.NewRequest(http.MethodPost, c.srv.URL+"/login", strings.NewReader("user=tech&password=correct+horse"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	if r := c.do(req); r.code != http.StatusForbidden {
		t.Errorf("cross-origin login: %d", r.code)
	}
	// The next parameter never leaves the box.
	r = c.post("/login", url.Values{"user": {"tech"}, "password": {"correct horse"}, "next": {"//evil.example/x"}}, "")
	if r.code != http.StatusSeeOther || r.header.Get("Location") != "/" {
		t.Errorf("next=//evil: %d %q", r.code, r.header.Get("Location"))
	}
	c.login()
	if r := c.post("/logout", url.Values{}, ""); r.code != http.StatusSeeOther {
		t.Errorf("logout: %d", r.code)
	}
	if r := c.get("/"); r.code != http.StatusSeeOther {
		t.Errorf("after logout: %d", r.code)
	}
}

func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{
		"": "/", "/": "/", "/devices?q=a": "/devices?q=a", "//evil": "/", "/\\evil": "/", "https://evil/": "/",
		"devices": "/", "/a\r\nSet-Cookie: x": "/", "javascript:alert(1)": "/",
		// http.Redirect cleans the path: these would leave as "/\\evil", which browsers read as //evil.
		"/./\\evil": "/", "/a/../\\evil": "/",
	} {
		if got := access.SafeNext(in); got != want {
			t.Errorf("access.SafeNext(%q) = %q, want %q", in, got, want)
		}
		if loc := redirectTo(access.SafeNext(in)); strings.HasPrefix(loc, "//") || strings.HasPrefix(loc, "/\\") {
			t.Errorf("access.SafeNext(%q) redirects to %q, another host", in, loc)
		}
	}
}

// redirectTo is the Location header http.Redirect (which the sign-in uses) sends for target.
func redirectTo(target string) string {
	w := httptest.NewRecorder()
	http.Redirect(w, httptest.NewRequest(http.MethodPost, "https://box.test/login", nil), target, http.StatusSeeOther)
	return w.Header().Get("Location")
}

func TestUnsafeRequestsNeedCSRF(t *testing.T) {
	f := newFixture(t)
	c := newClient(t, f)
	c.login()
	r := c.post("/profiles/new", url.Values{CSRFField: {"0000"}, "profileName": {"x"}, "activation": {"ccmactivate"}}, "")
	if r.code != http.StatusForbidden {
		t.Errorf("wrong CSRF token: %d", r.code)
	}
	if _, err := f.cat.ProfileByName("x"); err == nil {
		t.Error("a profile was created without the CSRF token")
	}
}

func TestProfileEditing(t *testing.T) {
	f := newFixture(t)
	c := newClient(t, f)
	c.login()
	// Validation errors show next to their field, and the password typed is not sent back.
	r := c.post("/profiles/new", url.Values{"profileName": {"lab"}, "activation": {"bogus"}, "amtPassword": {""}}, "")
	if r.code != http.StatusBadRequest {
		t.Fatalf("invalid profile: %d", r.code)
	}
	for _, want := range []string{`<small class="field-error">activation must be acmactivate or ccmactivate</small>`,
		`<small class="field-error">amtPassword is required when generateRandomPassword is false</small>`, `value="lab"`} {
		if !strings.Contains(r.body, want) {
			t.Errorf("invalid profile page lacks %q", want)
		}
	}
	r = c.post("/profiles/new", url.Values{"profileName": {"lab"}, "activation": {"ccmactivate"}, "amtPassword": {"Secret-P4ss!"},
		"tlsMode": {"2"}, "tags": {"a, b"}, "kvmEnabled": {"on"}}, "")
	if r.code != http.StatusSeeOther || r.header.Get("Location") != "/profiles?saved=lab" {
		t.Fatalf("create: %d %q\n%s", r.code, r.header.Get("Location"), r.body)
	}
	p, err := f.cat.ProfileByName("lab")
	if err != nil || p.TLSMode == nil || *p.TLSMode != 2 || len(p.Tags) != 2 || !isTrue(p.KVMEnabled) || isTrue(p.SOLEnabled) {
		t.Fatalf("stored profile: %+v %v", p, err)
	}
	edit := c.get("/profiles/lab")
	if strings.Contains(edit.body, "Secret-P4ss!") || !strings.Contains(edit.body, `name="version" value="1"`) {
		t.Errorf("edit page leaks the password or lacks the version")
	}
	// A stale version is a conflict with a reload link.
	r = c.post("/profiles/lab", url.Values{"activation": {"ccmactivate"}, "version": {"0"}, "generateRandomPassword": {"on"}}, "")
	if r.code != http.StatusConflict || !strings.Contains(r.body, "was changed by someone else") || !strings.Contains(r.body, "Reload the current version") {
		t.Errorf("stale update: %d\n%s", r.code, r.body)
	}
	r = c.post("/profiles/lab", url.Values{"activation": {"ccmactivate"}, "version": {"1"}, "generateRandomPassword": {"on"}}, "")
	if r.code != http.StatusSeeOther {
		t.Errorf("update: %d\n%s", r.code, r.body)
	}
	// Site-managed profiles are read-only, and deleting one explains why it cannot be.
	site := c.get("/profiles/acm")
	if !strings.Contains(site.body, "<fieldset disabled>") || !strings.Contains(site.body, "comes from the site file") {
		t.Errorf("site profile is not read-only")
	}
	if r := c.post("/profiles/acm/delete", url.Values{}, ""); r.code != http.StatusConflict || !strings.Contains(r.body, "managed by the site file") {
		t.Errorf("delete site profile: %d", r.code)
	}
	if r := c.post("/profiles/lab/delete", url.Values{}, ""); r.code != http.StatusSeeOther {
		t.Errorf("delete: %d", r.code)
	}
	if r := c.get("/profiles/lab"); r.code != http.StatusNotFound || !strings.Contains(r.body, "AMT profile lab Not Found") {
		t.Errorf("deleted profile: %d", r.code)
	}
}

func testPFX(t testing.TB, now time.Time, suffix, password string) []byte {
	t.Helper()
	pfx, _, err := domains.GenerateProvisioningPFX(domains.GenerateOptions{Suffix: suffix, Password: password, Now: now,
		NotAfter: now.Add(90 * 24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	return pfx
}

func TestDomainUploadPreviewAndSave(t *testing.T) {
	f := newFixture(t)
	c := newClient(t, f)
	c.login()
	pfx := testPFX(t, f.now, "lab.example.com", "pfx-pass")
	fields := map[string]string{"profileName": "lab", "domainSuffix": "lab.example.com", "provisioningCertPassword": "pfx-pass"}

	// htmx preview: a fragment with the chain's facts.
	r := c.postMultipart("/domains/preview", fields, pfx, true)
	for _, want := range []string{"provision.lab.example.com", "matches", "present", "expires in 90d", "2027-02-27", "Chain (3 certificates"} {
		if !strings.Contains(r.body, want) {
			t.Errorf("preview lacks %q:\n%s", want, r.body)
		}
	}
	if strings.Contains(r.body, "<html") || strings.Contains(r.body, "pfx-pass") {
		t.Errorf("preview is not a clean fragment")
	}
	// A wrong password is reported, not saved.
	bad := map[string]string{"profileName": "lab", "domainSuffix": "lab.example.com", "provisioningCertPassword": "nope"}
	if r := c.postMultipart("/domains/preview", bad, pfx, true); !strings.Contains(r.body, "Problem:") {
		t.Errorf("wrong password preview:\n%s", r.body)
	}

	// Without JavaScript: step 1 previews and keeps the upload, step 2 saves it without the file again.
	step1 := map[string]string{"step": "preview"}
	for k, v := range fields {
		step1[k] = v
	}
	r = c.postMultipart("/domains/new", step1, pfx, false)
	tok := regexp.MustCompile(`name="upload" value="([0-9a-f]{32})"`).FindStringSubmatch(r.body)
	if r.code != http.StatusOK || tok == nil || !strings.Contains(r.body, "provision.lab.example.com") || strings.Contains(r.body, "pfx-pass") {
		t.Fatalf("no-JS preview: %d\n%s", r.code, r.body)
	}
	r = c.postMultipart("/domains/new", map[string]string{"step": "save", "profileName": "lab", "domainSuffix": "lab.example.com", "upload": tok[1]}, nil, false)
	if r.code != http.StatusSeeOther || r.header.Get("Location") != "/domains?saved=lab" {
		t.Fatalf("save: %d\n%s", r.code, r.body)
	}
	// The token was single-use.
	r = c.postMultipart("/domains/new", map[string]string{"step": "save", "profileName": "lab2", "domainSuffix": "lab.example.com", "upload": tok[1]}, nil, false)
	if r.code != http.StatusBadRequest || !strings.Contains(r.body, "no longer kept") {
		t.Errorf("reused upload token: %d", r.code)
	}
	list := c.get("/domains")
	if !strings.Contains(list.body, "lab.example.com") || !strings.Contains(list.body, "expires in 90d") {
		t.Errorf("domain list:\n%s", list.body)
	}
	page := c.get("/domains/lab")
	if !strings.Contains(page.body, "Certificate in use") || !strings.Contains(page.body, "provision.lab.example.com") {
		t.Errorf("domain page lacks its certificate")
	}
	// Editing keeps the certificate when no file is chosen; a stale version is a conflict.
	r = c.postMultipart("/domains/lab", map[string]string{"step": "save", "domainSuffix": "lab2.example.com", "version": "0"}, nil, false)
	if r.code != http.StatusConflict || !strings.Contains(r.body, "changed by someone else") {
		t.Errorf("stale domain update: %d", r.code)
	}
	d, _ := f.cat.DomainByName("lab")
	r = c.postMultipart("/domains/lab", map[string]string{"step": "save", "domainSuffix": "lab2.example.com", "version": d.Version}, nil, false)
	if r.code != http.StatusSeeOther {
		t.Errorf("domain update: %d\n%s", r.code, r.body)
	}
	if d, _ := f.cat.DomainByName("lab"); d.DomainSuffix != "lab2.example.com" {
		t.Errorf("suffix after update: %s", d.DomainSuffix)
	}
	if r := c.get("/domains/corp"); !strings.Contains(r.body, "comes from the site file") || !strings.Contains(r.body, "<fieldset disabled>") {
		t.Errorf("site domain is not read-only")
	}
	if r := c.post("/domains/lab/delete", url.Values{}, ""); r.code != http.StatusSeeOther {
		t.Errorf("delete domain: %d", r.code)
	}
	if r := c.get("/domains/lab"); r.code != http.StatusNotFound {
		t.Errorf("deleted domain: %d", r.code)
	}
	// A certificate that does not import is refused with the reason next to the file field.
	r = c.postMultipart("/domains/new", map[string]string{"step": "save", "profileName": "x", "domainSuffix": "x.example", "provisioningCertPassword": "nope"}, pfx, false)
	if r.code != http.StatusBadRequest || !strings.Contains(r.body, `class="field-error"`) {
		t.Errorf("bad PFX: %d\n%s", r.code, r.body)
	}
	// Oversized uploads are refused with a clear message.
	r = c.postMultipart("/domains/preview", fields, bytes.Repeat([]byte{1}, maxUploadBytes+1), true)
	if r.code != http.StatusOK || !strings.Contains(r.body, "larger than") || !strings.Contains(r.body, `id="preview-result"`) {
		t.Errorf("oversized upload: %d %s", r.code, r.body)
	}
}

func TestRevealPasswords(t *testing.T) {
	f := newFixture(t)
	c := newClient(t, f)
	c.login()
	if body := c.get("/devices/" + goodUUID).body; strings.Contains(body, "Amt-S3cret!pw") {
		t.Fatal("the device page shows the password without a reveal")
	}
	r := c.post("/devices/"+goodUUID+"/reveal", url.Values{}, "")
	if r.code != http.StatusOK || !strings.Contains(r.body, "Amt-S3cret!pw") || !strings.Contains(r.body, "Mebx-S3cret!pw") ||
		r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("reveal: %d %q", r.code, r.header.Get("Cache-Control"))
	}
	if len(f.reveals) != 1 || f.reveals[0] != goodUUID+" by tech" {
		t.Errorf("reveal actor: %v", f.reveals)
	}
	if r := c.post("/devices/"+xssUUID+"/reveal", url.Values{}, ""); !strings.Contains(r.body, "no password is stored") {
		t.Errorf("reveal error not shown")
	}
	if r := c.post("/devices/unknown/reveal", url.Values{}, ""); r.code != http.StatusNotFound {
		t.Errorf("unknown device: %d", r.code)
	}
}

func TestDeviceFilters(t *testing.T) {
	f := newFixture(t)
	c := newClient(t, f)
	c.login()
	for q, want := range map[string][2]bool{ // [shows good, shows xss]
		"":               {true, true},
		"?mode=acm":      {true, false},
		"?mode=none":     {false, true},
		"?result=failed": {false, true},
		"?q=PC-0042":     {true, false},
		"?profile=ccm":   {false, false},
	} {
		body := c.get("/devices" + q).body
		if strings.Contains(body, goodUUID) != want[0] || strings.Contains(body, xssUUID) != want[1] {
			t.Errorf("/devices%s: good %v xss %v, want %v", q, strings.Contains(body, goodUUID), strings.Contains(body, xssUUID), want)
		}
	}
	if r := c.get("/devices?mode=bogus&page=x"); r.code != http.StatusBadRequest || !strings.Contains(r.body, "mode must be none, ccm or acm") {
		t.Errorf("bad filter: %d", r.code)
	}
	for i := range 120 {
		f.inv.Add(inventory.Record{UUID: "dev-" + string(rune('a'+i%26)) + strings.Repeat("x", i/26), Verb: "activate", Success: true,
			Ended: f.now.Add(-time.Duration(i) * time.Minute)})
	}
	body := c.get("/devices?page=2").body
	if !strings.Contains(body, "page 2 of 3") || !strings.Contains(body, `href="/devices?page=1"`) || !strings.Contains(body, `href="/devices?page=3"`) {
		t.Errorf("paging:\n%s", body)
	}
	if r := c.get("/devices/nope"); r.code != http.StatusNotFound {
		t.Errorf("unknown device: %d", r.code)
	}
}

func TestActivityFilterAndStream(t *testing.T) {
	f := newFixture(t)
	c := newClient(t, f)
	c.login()
	f.hub.Publish(events.Record{Time: f.now, Name: events.Reloaded, Level: "INFO", Message: "configuration reloaded"})
	if body := c.get("/activity?level=INFO").body; !strings.Contains(body, "configuration reloaded") || strings.Contains(body, "activation failed") {
		t.Errorf("level filter")
	}
	if body := c.get("/activity?event=activation_failed").body; strings.Contains(body, "configuration reloaded") || !strings.Contains(body, "activation failed") {
		t.Errorf("event filter")
	}
	if r := c.get("/activity?event=nope&level=LOUD"); r.code != http.StatusBadRequest || !strings.Contains(r.body, "no event named") {
		t.Errorf("bad filter: %d", r.code)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.srv.URL+"/activity/stream?q=hostname", nil)
	req.Header.Set("Last-Event-ID", "0")
	resp, err := c.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	checkSecurityHeaders(t, "/activity/stream", resp.Header)
	go func() {
		time.Sleep(100 * time.Millisecond)
		f.hub.Publish(events.Record{Time: f.now, Name: events.Reloaded, Level: "INFO", Message: "not matching"})
		f.hub.Publish(events.Record{Time: f.now, Name: events.ActivationSucceeded, Level: "INFO", Message: "live one",
			Fields: []events.Field{{Key: "hostname", Value: xssImg}}})
	}()
	sc := bufio.NewScanner(resp.Body)
	var ids []string
	var data strings.Builder
	for sc.Scan() {
		line := sc.Text()
		if line == "" && len(ids) == 2 {
			break
		}
		switch {
		case strings.HasPrefix(line, "id: "):
			ids = append(ids, strings.TrimPrefix(line, "id: "))
		case strings.HasPrefix(line, "data: "):
			data.WriteString(strings.TrimPrefix(line, "data: ") + "\n")
		}
	}
	// The replay (Last-Event-ID 0) holds the fixture's record, then the live matching one; "not matching" is
	// filtered out. Both rows are escaped by the page's own template.
	if len(ids) != 2 || ids[0] != "1" || ids[1] != "4" {
		t.Errorf("event ids %v, want [1 4]", ids)
	}
	got := data.String()
	if !strings.Contains(got, "live one") || strings.Contains(got, "not matching") || strings.Contains(got, xssImg) ||
		!strings.Contains(got, "&lt;img src=x onerror=alert(1)&gt;") {
		t.Errorf("stream data:\n%s", got)
	}
}

func TestNewRequiresDependencies(t *testing.T) {
	if _, err := New(Config{}); err == nil || !strings.Contains(err.Error(), "Status is required") {
		t.Errorf("New(Config{}) = %v", err)
	}
}

func TestPendingUploadsBounded(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := newPendingUploads(func() time.Time { return now })
	first := p.put("tech", pendingUpload{pfx: []byte{1}})
	for range pendingMax {
		p.put("tech", pendingUpload{pfx: []byte{2}})
	}
	if len(p.m) != pendingMax {
		t.Errorf("%d pending uploads kept, want %d", len(p.m), pendingMax)
	}
	tok := p.put("tech", pendingUpload{pfx: []byte{3}})
	if _, ok := p.take(tok, "someone else"); ok {
		t.Error("another user took the upload")
	}
	if _, ok := p.take(first, "tech"); ok {
		t.Error("the oldest upload was not dropped")
	}
	now = now.Add(pendingTTL)
	if _, ok := p.take(tok, "tech"); ok {
		t.Error("an expired upload was taken")
	}
}
