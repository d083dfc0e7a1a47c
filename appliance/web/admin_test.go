package web

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/amtedge/amtedge/appliance/catalog"
	"github.com/amtedge/amtedge/appliance/domains"
)

const (
	apiAMTPassword = "Api-Amt-Pass9!"
	pfxPassword    = "Web-Pfx-Secret-31"
	suffix         = "corp.example.com"
)

var (
	pfxOnce sync.Once
	testPFX []byte
	pfxErr  error
)

func fixturePFX(t *testing.T) []byte {
	t.Helper()
	pfxOnce.Do(func() {
		testPFX, _, pfxErr = domains.GenerateProvisioningPFX(domains.GenerateOptions{Suffix: suffix, Password: pfxPassword, ChainLen: 1, Now: now})
	})
	if pfxErr != nil {
		t.Fatal(pfxErr)
	}
	return testPFX
}

type reply struct {
	code int
	hdr  http.Header
	body string
}

// send makes one request and checks what every response must satisfy: JSON (or empty for 204), no-store, and no
// secret sent by any test — passwords, the PFX in base64 or any sizeable piece of it.
func send(t *testing.T, h http.Handler, method, target, body string, hdr ...string) reply {
	t.Helper()
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	req = req.WithContext(WithActor(req.Context(), "test:web"))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	res := rec.Result()
	out, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusNoContent && !json.Valid(out) {
		t.Errorf("%s %s: body is not JSON: %s", method, target, out)
	}
	if cc := res.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("%s %s: Cache-Control %q", method, target, cc)
	}
	secrets := []string{testAMTPassword, testMEBxPassword, apiAMTPassword, pfxPassword}
	if testPFX != nil {
		b64 := base64.StdEncoding.EncodeToString(testPFX)
		secrets = append(secrets, b64[40:100], b64[len(b64)-80:len(b64)-20])
	}
	all := string(out)
	for k, v := range res.Header {
		all += k + strings.Join(v, " ")
	}
	for _, s := range secrets {
		if strings.Contains(all, s) || strings.Contains(all, strings.ReplaceAll(s, "&", `\u0026`)) {
			t.Errorf("%s %s: a secret is in the response: %s", method, target, all)
		}
	}
	return reply{res.StatusCode, res.Header, string(out)}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestProfileWrites(t *testing.T) {
	h, _, _ := newTestAPIWithCatalog(t, "ok")
	create := mustJSON(t, map[string]any{"profileName": "api1", "activation": "ccmactivate", "amtPassword": apiAMTPassword, "dhcpEnabled": true})

	r := send(t, h, "POST", "/api/v1/admin/profiles", create)
	if r.code != 201 || r.hdr.Get("ETag") != `"1"` || !strings.Contains(r.body, `"source":"api"`) || !strings.Contains(r.body, `"version":"1"`) {
		t.Fatalf("create: %d %v %s", r.code, r.hdr, r.body)
	}
	r = send(t, h, "POST", "/api/v1/admin/profiles", create)
	if r.code != 400 || !strings.Contains(r.body, `"msg":"AMT profile api1 already exists"`) {
		t.Fatalf("duplicate: %d %s", r.code, r.body)
	}
	r = send(t, h, "GET", "/api/v1/admin/profiles/api1", "")
	if r.code != 200 || r.hdr.Get("ETag") != `"1"` {
		t.Fatalf("get: %d %v", r.code, r.hdr)
	}
	r = send(t, h, "GET", "/api/v1/admin/profiles/acm", "")
	if r.code != 200 || r.hdr.Get("ETag") == "" || !strings.Contains(r.body, `"source":"site"`) {
		t.Fatalf("get site: %d %v %s", r.code, r.hdr, r.body)
	}

	// Versions: a body version, a stale body version (409 + current + ETag), a stale If-Match (412), none (400).
	r = send(t, h, "PATCH", "/api/v1/admin/profiles", `{"profileName":"api1","version":"1","tags":["a"]}`)
	if r.code != 200 || r.hdr.Get("ETag") != `"2"` || !strings.Contains(r.body, `"tags":["a"]`) {
		t.Fatalf("patch: %d %v %s", r.code, r.hdr, r.body)
	}
	r = send(t, h, "PATCH", "/api/v1/admin/profiles", `{"profileName":"api1","version":"1","tags":["b"]}`)
	if r.code != 409 || r.hdr.Get("ETag") != `"2"` || !strings.Contains(r.body, `"version":"2"`) || !strings.Contains(r.body, `"tags":["a"]`) || r.hdr.Get("X-Conflict-Reason") == "" {
		t.Fatalf("stale: %d %v %s", r.code, r.hdr, r.body)
	}
	r = send(t, h, "PATCH", "/api/v1/admin/profiles", `{"profileName":"api1","tags":["b"]}`, "If-Match", `"1"`)
	if r.code != 412 || r.hdr.Get("ETag") != `"2"` || !strings.Contains(r.body, `"profileName":"api1"`) {
		t.Fatalf("stale If-Match: %d %v %s", r.code, r.hdr, r.body)
	}
	r = send(t, h, "PATCH", "/api/v1/admin/profiles", `{"profileName":"api1","tags":["b"]}`, "If-Match", `"2"`)
	if r.code != 200 || r.hdr.Get("ETag") != `"3"` {
		t.Fatalf("If-Match: %d %v %s", r.code, r.hdr, r.body)
	}
	r = send(t, h, "PATCH", "/api/v1/admin/profiles", `{"profileName":"api1","tags":["b"]}`)
	if r.code != 400 || !strings.Contains(r.body, `"path":"version"`) {
		t.Fatalf("no version: %d %s", r.code, r.body)
	}
	r = send(t, h, "PATCH", "/api/v1/admin/profiles", `{"profileName":"acm","version":"1"}`)
	if r.code != 409 || !strings.Contains(r.body, "defined in the site file; change it there and reload") {
		t.Fatalf("site patch: %d %s", r.code, r.body)
	}
	r = send(t, h, "PATCH", "/api/v1/admin/profiles", `{"profileName":"nope","version":"1"}`)
	if r.code != 404 || !strings.Contains(r.body, `"message":"AMT profile nope Not Found"`) {
		t.Fatalf("patch unknown: %d %s", r.code, r.body)
	}
	r = send(t, h, "PATCH", "/api/v1/admin/profiles", `{"profileName":"api1","version":"3","amtPassword":"weak"}`)
	if r.code != 400 || !strings.Contains(r.body, `"path":"amtPassword"`) || strings.Contains(r.body, "weak\"") {
		t.Fatalf("weak password: %d %s", r.code, r.body)
	}

	// Paging over site and API entries together.
	r = send(t, h, "GET", "/api/v1/admin/profiles?$count=true&$skip=1&$top=1", "")
	if p := decode[Page[catalog.ProfileEntry]](t, r.body); p.TotalCount != 3 || len(p.Data) != 1 || p.Data[0].ProfileName != "api1" {
		t.Fatalf("paging: %s", r.body)
	}

	r = send(t, h, "DELETE", "/api/v1/admin/profiles/acm", "")
	if r.code != 409 {
		t.Fatalf("delete site: %d %s", r.code, r.body)
	}
	r = send(t, h, "DELETE", "/api/v1/admin/profiles/api1", "")
	if r.code != 204 || r.body != "" {
		t.Fatalf("delete: %d %s", r.code, r.body)
	}
	r = send(t, h, "DELETE", "/api/v1/admin/profiles/api1", "")
	if r.code != 404 {
		t.Fatalf("delete again: %d %s", r.code, r.body)
	}
}

func TestDomainWrites(t *testing.T) {
	h, _, _ := newTestAPIWithCatalog(t, "ok")
	pfx := fixturePFX(t)
	b64 := base64.StdEncoding.EncodeToString(pfx)
	create := mustJSON(t, map[string]any{"profileName": "d1", "domainSuffix": suffix, "provisioningCert": b64,
		"provisioningCertStorageFormat": "string", "provisioningCertPassword": pfxPassword})

	r := send(t, h, "POST", "/api/v1/admin/domains/inspect", mustJSON(t, map[string]any{"provisioningCert": b64, "provisioningCertPassword": pfxPassword, "domainSuffix": "other.example.net"}))
	rep := decode[catalog.CertReport](t, r.body)
	if r.code != 200 || rep.LeafCN != "provision."+suffix || rep.SuffixMatches || !strings.Contains(rep.Problem, "does not cover") || len(rep.Chain) != 1 {
		t.Fatalf("inspect: %d %s", r.code, r.body)
	}
	if r := send(t, h, "GET", "/api/v1/admin/domains/d1", ""); r.code != 404 {
		t.Fatalf("inspect stored something: %d %s", r.code, r.body)
	}
	r = send(t, h, "POST", "/api/v1/admin/domains/inspect", `{"provisioningCertPassword":"`+pfxPassword+`"}`)
	if r.code != 400 || !strings.Contains(r.body, `"path":"provisioningCert"`) {
		t.Fatalf("inspect without cert: %d %s", r.code, r.body)
	}

	wrong := strings.Replace(create, pfxPassword, "Not-The-Password-1", 1)
	r = send(t, h, "POST", "/api/v1/admin/domains", strings.Replace(wrong, `"d1"`, `"d2"`, 1))
	if r.code != 400 || !strings.Contains(r.body, `"path":"provisioningCertPassword"`) || strings.Contains(r.body, "Not-The-Password-1") {
		t.Fatalf("wrong password: %d %s", r.code, r.body)
	}
	r = send(t, h, "POST", "/api/v1/admin/domains", create)
	if r.code != 201 || r.hdr.Get("ETag") != `"1"` || !strings.Contains(r.body, `"domainSuffix":"`+suffix+`"`) {
		t.Fatalf("create: %d %s", r.code, r.body)
	}
	r = send(t, h, "POST", "/api/v1/admin/domains", create)
	if r.code != 400 || !strings.Contains(r.body, "Domain d1 ID or Suffix already exists") {
		t.Fatalf("duplicate: %d %s", r.code, r.body)
	}
	r = send(t, h, "GET", "/api/v1/admin/domains/d1/certificate", "")
	if rep := decode[catalog.CertReport](t, r.body); r.code != 200 || !rep.SuffixMatches || rep.Problem != "" || rep.RootSHA256 == "" {
		t.Fatalf("certificate: %d %s", r.code, r.body)
	}
	r = send(t, h, "GET", "/api/v1/admin/domains/nope/certificate", "")
	if r.code != 404 || !strings.Contains(r.body, "Domain profile nope Not Found") {
		t.Fatalf("certificate of nothing: %d %s", r.code, r.body)
	}
	r = send(t, h, "PATCH", "/api/v1/admin/domains", `{"profileName":"d1","domainSuffix":"other.example.net","version":"1"}`)
	if r.code != 400 || !strings.Contains(r.body, `"path":"domainSuffix"`) {
		t.Fatalf("patch to an uncovered suffix: %d %s", r.code, r.body)
	}
	r = send(t, h, "PATCH", "/api/v1/admin/domains", `{"profileName":"d1","tenantId":"t1"}`, "If-Match", `"1"`)
	if r.code != 200 || r.hdr.Get("ETag") != `"2"` || !strings.Contains(r.body, `"tenantId":"t1"`) {
		t.Fatalf("patch: %d %s", r.code, r.body)
	}
	r = send(t, h, "PATCH", "/api/v1/admin/domains", `{"profileName":"d1","tenantId":"t2"}`, "If-Match", `"1"`)
	if r.code != 412 || r.hdr.Get("ETag") != `"2"` {
		t.Fatalf("stale: %d %s", r.code, r.body)
	}
	r = send(t, h, "DELETE", "/api/v1/admin/domains/site-a", "")
	if r.code != 409 || !strings.Contains(r.body, "site file") {
		t.Fatalf("delete site: %d %s", r.code, r.body)
	}
	r = send(t, h, "DELETE", "/api/v1/admin/domains/d1", "")
	if r.code != 204 {
		t.Fatalf("delete: %d %s", r.code, r.body)
	}
}

func TestWriteRequestErrors(t *testing.T) {
	h, _, _ := newTestAPIWithCatalog(t, "ok")
	for _, tc := range []struct {
		name, method, target, body, ctype string
		code                              int
		want                              string
	}{
		{"no content type", "POST", "/api/v1/admin/profiles", `{}`, "", 415, "Content-Type: application/json"},
		{"text", "PATCH", "/api/v1/admin/domains", `{}`, "text/plain", 415, "Unsupported Media Type"},
		{"charset ok", "POST", "/api/v1/admin/profiles", `[]`, "application/json; charset=utf-8", 400, "must be a JSON object"},
		{"too large", "POST", "/api/v1/admin/domains", `{"provisioningCert":"` + strings.Repeat("A", catalog.MaxBodyBytes) + `"}`, "application/json", 413, "Content Too Large"},
		{"wrong type", "POST", "/api/v1/admin/profiles", `{"profileName":1}`, "application/json", 400, "profileName must be a string"},
		{"unknown field", "POST", "/api/v1/admin/domains", `{"profileName":"x","bogus":true}`, "application/json", 400, "Unknown field bogus"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, tc.target, strings.NewReader(tc.body))
			if tc.ctype != "" {
				req.Header.Set("Content-Type", tc.ctype)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.code || !strings.Contains(rec.Body.String(), tc.want) {
				t.Fatalf("%d %s", rec.Code, rec.Body.String())
			}
		})
	}
	r := send(t, h, "PUT", "/api/v1/admin/domains", "")
	if r.code != 405 || r.hdr.Get("Allow") != "GET, HEAD, POST, PATCH" {
		t.Fatalf("405: %d %v", r.code, r.hdr)
	}
	r = send(t, h, "PATCH", "/api/v1/admin/domains/x/certificate", "")
	if r.code != 405 || r.hdr.Get("Allow") != "GET, HEAD" {
		t.Fatalf("405: %d %v", r.code, r.hdr)
	}
	r = send(t, h, "GET", "/api/v1/admin/domains/inspect", "")
	if r.code != 404 {
		t.Fatalf("GET inspect: %d %s", r.code, r.body)
	}
}

func TestActor(t *testing.T) {
	ctx := httptest.NewRequest("GET", "/", nil).Context()
	if got := ActorFrom(ctx); got != "unknown" {
		t.Fatalf("default actor %q", got)
	}
	if got := ActorFrom(WithActor(ctx, "cli:0")); got != "cli:0" {
		t.Fatalf("actor %q", got)
	}
}

// RPS's other collections list empty and refuse writes (the box applies none of those features); version answers
// in RPS's shape.
func TestUnsupportedConfigsAndVersion(t *testing.T) {
	h, _, _ := newTestAPIWithCatalog(t, "ok")
	for _, route := range []string{"ciraconfigs", "wirelessconfigs", "ieee8021xconfigs", "proxyconfigs"} {
		base := "/api/v1/admin/" + route
		if r := send(t, h, "GET", base, ""); r.code != 200 || strings.TrimSpace(r.body) != "[]" {
			t.Errorf("GET %s: %d %s", base, r.code, r.body)
		}
		if r := send(t, h, "GET", base+"?$count=true", ""); r.code != 200 || strings.TrimSpace(r.body) != `{"data":[],"totalCount":0}` {
			t.Errorf("GET %s?$count=true: %d %s", base, r.code, r.body)
		}
		if r := send(t, h, "GET", base+"?$top=x", ""); r.code != 400 || !strings.Contains(r.body, MsgTop) {
			t.Errorf("GET %s?$top=x: %d %s", base, r.code, r.body)
		}
		if r := send(t, h, "GET", base+"/x1", ""); r.code != 404 || !strings.Contains(r.body, "x1 Not Found") {
			t.Errorf("GET %s/x1: %d %s", base, r.code, r.body)
		}
		for _, m := range []struct{ method, target string }{{"POST", base}, {"PATCH", base}, {"DELETE", base + "/x1"}} {
			if r := send(t, h, m.method, m.target, `{"configName":"x1"}`); r.code != 501 || !strings.Contains(r.body, "does not configure") {
				t.Errorf("%s %s: %d %s", m.method, m.target, r.code, r.body)
			}
		}
	}
	var v Version
	r := send(t, h, "GET", "/api/v1/admin/version", "")
	if r.code != 200 || json.Unmarshal([]byte(r.body), &v) != nil || v.ProtocolVersion != "4.0.0" || v.ServiceVersion == "" {
		t.Errorf("GET /api/v1/admin/version: %d %s", r.code, r.body)
	}
}
