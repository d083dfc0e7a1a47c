package web

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/amtedge/amtedge/appliance/agent"
	"github.com/amtedge/amtedge/appliance/catalog"
	"github.com/amtedge/amtedge/appliance/inventory"
	"github.com/amtedge/amtedge/appliance/profiles"
	"github.com/amtedge/amtedge/secrets/cache"
)

// Static passwords of the test profiles: no response may carry them.
const (
	testAMTPassword  = "Kq7#mZ2!vXp9wR"
	testMEBxPassword = "Tr4$eWq8&Lm1zY"
)

var now = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

type fakeStatus struct{ st Status }

func (f fakeStatus) Status(context.Context) Status { return f.st }

type fakeSessions []agent.SessionInfo

func (f fakeSessions) Sessions() []agent.SessionInfo { return f }

func ptr[T any](v T) *T { return &v }

// newTestAPI has 30 devices (dev-00 … dev-29; the even ones failed), one of them with two records, two
// profiles with static passwords, two domains and one live session.
func newTestAPI(t *testing.T, sealState string) (http.Handler, *inventory.Inventory) {
	t.Helper()
	h, inv, _ := newTestAPIWithCatalog(t, sealState)
	return h, inv
}

// newTestAPIWithCatalog is newTestAPI with its real catalog (a bbolt file and a sealed store in t.TempDir()):
// the two profiles and two domains are site entries.
func newTestAPIWithCatalog(t *testing.T, sealState string) (http.Handler, *inventory.Inventory, *catalog.Catalog) {
	t.Helper()
	inv := inventory.New(0)
	for i := range 30 {
		rec := inventory.Record{ID: fmt.Sprintf("r%d", i), UUID: fmt.Sprintf("dev-%02d", i), Verb: "activate", Profile: "ccm",
			Hostname: fmt.Sprintf("pc%02d.Example.test", i), Started: now.Add(time.Duration(i) * time.Minute),
			Ended: now.Add(time.Duration(i)*time.Minute + 5*time.Second), Success: i%2 == 1, Status: "Activated to client control mode.",
			Steps: []inventory.Step{{Name: "general settings", Result: inventory.StepOK, Duration: time.Second}}}
		if i%2 == 0 {
			rec.Status = "Unknown Error"
		}
		if i == 7 {
			rec.Hostname = `<img src=x onerror=alert(1)>`
		}
		inv.Add(rec)
	}
	inv.Add(inventory.Record{ID: "r30", UUID: "dev-03", Verb: "deactivate", Started: now.Add(time.Hour), Ended: now.Add(time.Hour + time.Second),
		Success: true, Status: "Deactivated.", Steps: []inventory.Step{{Name: "unprovision", Result: inventory.StepOK, Duration: 300 * time.Millisecond}}})
	dir := t.TempDir()
	store, err := cache.Open(filepath.Join(dir, "amtedge.db"), make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	cat, err := catalog.Open(catalog.Options{Path: filepath.Join(dir, "catalog.db"), Store: store, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cat.Close() })
	if err := cat.SetSite([]profiles.Profile{
		{ProfileName: "ccm", Activation: profiles.ActivationCCM, AMTPassword: testAMTPassword, DHCPEnabled: ptr(true)},
		{ProfileName: "acm", Activation: profiles.ActivationACM, AMTPassword: testAMTPassword, MEBxPassword: testMEBxPassword, DHCPEnabled: ptr(true)},
	}, []catalog.SiteDomain{
		{Name: "site-b", Suffix: "b.example.test", Expires: now.Add(10 * 24 * time.Hour)},
		{Name: "site-a", Suffix: "a.example.test", Expires: now.Add(400*24*time.Hour + time.Hour)},
	}); err != nil {
		t.Fatal(err)
	}
	st := Status{Seal: Seal{Mode: "software", State: sealState}, Vault: Vault{State: "not configured"}, Outbox: Outbox{Length: 3},
		Listen: "127.0.0.1:8080", Version: "test", Started: now.Add(-90 * time.Second)}
	if sealState != "ok" {
		st.Seal.Reason = "tpm: unseal refused"
	}
	sessions := fakeSessions{{ID: "s1", UUID: "dev-99", Verb: "activate", Profile: "acm", Remote: "10.0.0.9:5555", Step: "AdminSetup", Started: now.Add(-3 * time.Second)}}
	return New(Config{Status: fakeStatus{st}, Sessions: sessions, Devices: inv, Catalog: cat, Version: "test", Now: func() time.Time { return now }}), inv, cat
}

func get(t *testing.T, h http.Handler, method, target string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, target, nil))
	res := rec.Result()
	body, _ := io.ReadAll(res.Body)
	if ct := res.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q", method, target, ct)
	}
	if cc := res.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("%s %s: Cache-Control %q", method, target, cc)
	}
	if !json.Valid(body) {
		t.Errorf("%s %s: body is not JSON: %s", method, target, body)
	}
	for _, secret := range []string{testAMTPassword, testMEBxPassword} {
		if strings.Contains(string(body), secret) || strings.Contains(string(body), strings.ReplaceAll(secret, "&", `\u0026`)) {
			t.Errorf("%s %s: a password is in the response: %s", method, target, body)
		}
	}
	return res.StatusCode, string(body)
}

func decode[T any](t *testing.T, body string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	return v
}

func TestHealth(t *testing.T) {
	h, _ := newTestAPI(t, "ok")
	code, body := get(t, h, "GET", "/api/v1/health")
	if code != 200 {
		t.Fatalf("code %d: %s", code, body)
	}
	got := decode[Health](t, body)
	if got.Status != "ok" || got.Seal.Mode != "software" || got.Vault.State != "not configured" || got.Outbox.Length != 3 ||
		got.Listen != "127.0.0.1:8080" || got.Version != "test" || got.UptimeSeconds != 90 || got.Sessions != 1 {
		t.Errorf("health = %+v", got)
	}
	if len(got.Domains) != 2 || got.Domains[1].Name != "site-b" || got.Domains[1].DaysLeft != 10 || got.Domains[0].DaysLeft != 400 {
		t.Errorf("domains = %+v", got.Domains)
	}
	h, _ = newTestAPI(t, "degraded")
	_, body = get(t, h, "GET", "/api/v1/health")
	if got := decode[Health](t, body); got.Status != "degraded" || got.Seal.Reason != "tpm: unseal refused" {
		t.Errorf("degraded health = %+v", got)
	}
}

func TestSessions(t *testing.T) {
	h, _ := newTestAPI(t, "ok")
	code, body := get(t, h, "GET", "/api/v1/sessions")
	got := decode[[]Session](t, body)
	if code != 200 || len(got) != 1 || got[0].UUID != "dev-99" || got[0].Step != "AdminSetup" || got[0].Profile != "acm" ||
		!strings.Contains(body, `"remote":"10.0.0.9:5555"`) {
		t.Errorf("code %d, sessions %s", code, body)
	}
}

func TestDeviceListPagingAndSearch(t *testing.T) {
	h, _ := newTestAPI(t, "ok")
	for _, tc := range []struct {
		query       string
		count       int    // -1: bare array expected
		total       int    // with count
		n           int    // items in the window
		first, last string // UUIDs
	}{
		{"", -1, 0, 25, "dev-03", "dev-06"}, // newest first: dev-03's deactivation is the newest record
		{"?$top=5&$skip=2", -1, 0, 5, "dev-28", "dev-24"},
		{"?$count=true", 1, 30, 25, "dev-03", "dev-06"},
		{"?$count=true&$skip=28", 1, 30, 2, "dev-01", "dev-00"},
		{"?$count=true&$skip=100", 1, 30, 0, "", ""},
		{"?$top=0", -1, 0, 0, "", ""},
		{"?$count=false&$top=1", -1, 0, 1, "dev-03", "dev-03"},
		{"?search=PC1&$count=true", 1, 10, 10, "dev-19", "dev-10"},
		{"?search=dev-2", -1, 0, 10, "dev-29", "dev-20"},
		{"?search=unknown%20error&$count=true&$top=2", 1, 15, 2, "dev-28", "dev-26"},
		{"?search=CCM&$count=1", 1, 29, 25, "dev-29", "dev-05"}, // dev-03's newest record has no profile
		{"?search=%3Cimg", -1, 0, 1, "dev-07", "dev-07"},
		{"?search=nothing-matches", -1, 0, 0, "", ""},
	} {
		code, body := get(t, h, "GET", "/api/v1/devices"+tc.query)
		if code != 200 {
			t.Errorf("%s: code %d %s", tc.query, code, body)
			continue
		}
		var recs []inventory.Record
		if tc.count < 0 {
			recs = decode[[]inventory.Record](t, body)
		} else {
			p := decode[Page[inventory.Record]](t, body)
			if p.TotalCount != tc.total {
				t.Errorf("%s: totalCount %d, want %d", tc.query, p.TotalCount, tc.total)
			}
			if p.Data == nil {
				t.Errorf("%s: data is null, want []", tc.query)
			}
			recs = p.Data
		}
		if len(recs) != tc.n {
			t.Errorf("%s: %d items, want %d", tc.query, len(recs), tc.n)
			continue
		}
		if tc.n > 0 && (recs[0].UUID != tc.first || recs[len(recs)-1].UUID != tc.last) {
			t.Errorf("%s: first %s last %s, want %s %s", tc.query, recs[0].UUID, recs[len(recs)-1].UUID, tc.first, tc.last)
		}
	}
	// A device-supplied hostname is data: JSON-escaped, never raw markup.
	_, body := get(t, h, "GET", "/api/v1/devices?search=dev-07")
	if strings.Contains(body, "<img") || !strings.Contains(body, `\u003cimg src=x onerror=alert(1)\u003e`) {
		t.Errorf("hostname not JSON-escaped: %s", body)
	}
}

func TestBadQueries(t *testing.T) {
	h, _ := newTestAPI(t, "ok")
	for _, tc := range []struct {
		target string
		want   []profiles.FieldError
	}{
		{"/api/v1/devices?$top=-1", []profiles.FieldError{{Type: "field", Value: "-1", Msg: MsgTop, Path: "$top", Location: "query"}}},
		{"/api/v1/devices?$skip=x&$count=maybe", []profiles.FieldError{
			{Type: "field", Value: "x", Msg: MsgSkip, Path: "$skip", Location: "query"},
			{Type: "field", Value: "maybe", Msg: MsgCount, Path: "$count", Location: "query"}}},
		{"/api/v1/devices?search=" + strings.Repeat("a", maxSearch+1), []profiles.FieldError{{Type: "field",
			Value: strings.Repeat("a", maxSearch+1), Msg: "The search text should be at most 256 characters", Path: "search", Location: "query"}}},
		{"/api/v1/admin/profiles?$top=1.5", []profiles.FieldError{{Type: "field", Value: "1.5", Msg: MsgTop, Path: "$top", Location: "query"}}},
		{"/api/v1/admin/domains?$top=", []profiles.FieldError{{Type: "field", Value: "", Msg: MsgTop, Path: "$top", Location: "query"}}},
	} {
		code, body := get(t, h, "GET", tc.target)
		if code != 400 {
			t.Errorf("%s: code %d %s", tc.target, code, body)
			continue
		}
		want, _ := json.Marshal(ValidationErrors{tc.want})
		if strings.TrimSpace(body) != string(want) {
			t.Errorf("%s:\n got %s\nwant %s", tc.target, body, want)
		}
	}
}

func TestDevice(t *testing.T) {
	h, _ := newTestAPI(t, "ok")
	code, body := get(t, h, "GET", "/api/v1/devices/dev-03")
	got := decode[Device](t, body)
	if code != 200 || got.UUID != "dev-03" || len(got.Records) != 2 || got.Records[0].Verb != "deactivate" ||
		got.Records[0].Steps[0].Name != "unprovision" || got.Records[1].Steps[0].Name != "general settings" {
		t.Errorf("code %d device %s", code, body)
	}
	code, body = get(t, h, "GET", "/api/v1/devices/nope")
	if code != 404 || strings.TrimSpace(body) != `{"error":"Not Found","message":"Device nope Not Found"}` {
		t.Errorf("unknown device: %d %s", code, body)
	}
}

func TestProfilesAndDomains(t *testing.T) {
	h, _ := newTestAPI(t, "ok")
	code, body := get(t, h, "GET", "/api/v1/admin/profiles")
	list := decode[[]profiles.Profile](t, body)
	if code != 200 || len(list) != 2 || list[0].ProfileName != "acm" || list[1].ProfileName != "ccm" || list[0].Activation != "acmactivate" {
		t.Errorf("profiles: %d %s", code, body)
	}
	if strings.Contains(body, "amtPassword") || strings.Contains(body, "mebxPassword") {
		t.Errorf("password fields in %s", body)
	}
	_, body = get(t, h, "GET", "/api/v1/admin/profiles?$count=true&$top=1&$skip=1")
	if p := decode[Page[profiles.Profile]](t, body); p.TotalCount != 2 || len(p.Data) != 1 || p.Data[0].ProfileName != "ccm" {
		t.Errorf("profiles page: %s", body)
	}
	code, body = get(t, h, "GET", "/api/v1/admin/profiles/acm")
	if p := decode[profiles.Profile](t, body); code != 200 || p.ProfileName != "acm" || p.AMTPassword != "" || !strings.Contains(body, `"dhcpEnabled":true`) {
		t.Errorf("profile acm: %d %s", code, body)
	}
	code, body = get(t, h, "GET", "/api/v1/admin/profiles/nope")
	if code != 404 || strings.TrimSpace(body) != `{"error":"Not Found","message":"AMT profile nope Not Found"}` {
		t.Errorf("unknown profile: %d %s", code, body)
	}

	code, body = get(t, h, "GET", "/api/v1/admin/domains")
	doms := decode[[]map[string]any](t, body)
	if code != 200 || len(doms) != 2 || doms[0]["profileName"] != "site-a" || doms[0]["domainSuffix"] != "a.example.test" {
		t.Errorf("domains: %d %s", code, body)
	}
	for _, d := range doms {
		for _, k := range []string{"profileName", "domainSuffix", "expirationDate", "tenantId", "version", "source"} {
			if _, ok := d[k]; !ok {
				t.Errorf("domain lacks %s: %v", k, d)
			}
		}
		if len(d) != 6 {
			t.Errorf("domain has other fields than RPS's public ones: %v", d)
		}
	}
	_, body = get(t, h, "GET", "/api/v1/admin/domains?$count=true&$top=1")
	if p := decode[Page[catalog.Domain]](t, body); p.TotalCount != 2 || len(p.Data) != 1 || p.Data[0].ProfileName != "site-a" {
		t.Errorf("domains page: %s", body)
	}
	code, body = get(t, h, "GET", "/api/v1/admin/domains/site-b")
	if d := decode[catalog.Domain](t, body); code != 200 || d.DomainSuffix != "b.example.test" || !d.ExpirationDate.Equal(now.Add(240*time.Hour)) {
		t.Errorf("domain site-b: %d %s", code, body)
	}
	code, body = get(t, h, "GET", "/api/v1/admin/domains/nope")
	if code != 404 || strings.TrimSpace(body) != `{"error":"Not Found","message":"Domain profile nope Not Found"}` {
		t.Errorf("unknown domain: %d %s", code, body)
	}
}

func TestRoutesAndMethods(t *testing.T) {
	h, _ := newTestAPI(t, "ok")
	for _, tc := range []struct {
		method, target string
		code           int
	}{
		{"GET", "/", 404},
		{"GET", "/api/v1/nope", 404},
		{"GET", "/api/v1/devices/", 404},
		{"PUT", "/api/v1/admin/profiles", 405},
		{"POST", "/api/v1/admin/domains/site-a", 405},
		{"DELETE", "/api/v1/admin/profiles", 405},
		{"GET", "/api/v1/sync", 405},
		{"HEAD", "/api/v1/health", 200},
	} {
		code, body := get(t, h, tc.method, tc.target)
		if code != tc.code {
			t.Errorf("%s %s: %d %s, want %d", tc.method, tc.target, code, body, tc.code)
		}
		if tc.code >= 400 && !strings.Contains(body, `"error":`) {
			t.Errorf("%s %s: error body %s", tc.method, tc.target, body)
		}
	}
}
