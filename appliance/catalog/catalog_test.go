package catalog

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/amtedge/amtedge/appliance/domains"
	"github.com/amtedge/amtedge/appliance/profiles"
	"github.com/amtedge/amtedge/secrets"
	"github.com/amtedge/amtedge/secrets/cache"
)

var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const (
	amtPW   = "Amt-Secret-Pass1!"
	mebxPW  = "Mebx-Secret-Pass2!"
	pfxPW   = "Pfx-Secret-Password-7f3a9"
	suffixA = "corp.example.com"
	suffixB = "lab.example.org"
)

// Fixtures: key generation dominates, so each PFX is made once per test binary.
var (
	fixOnce          sync.Once
	pfxA, pfxB, pfx3 []byte // one-certificate chains for suffixA and suffixB; a 3-certificate chain for suffixA
	pfxNoEKU         []byte
	rootA3           string
	fixErr           error
)

func fixtures(t testing.TB) {
	t.Helper()
	fixOnce.Do(func() {
		gen := func(o domains.GenerateOptions) []byte {
			if fixErr != nil {
				return nil
			}
			o.Now, o.Password = testNow, pfxPW
			if o.ChainLen == 0 {
				o.ChainLen = 1
			}
			p, root, err := domains.GenerateProvisioningPFX(o)
			if err != nil {
				fixErr = err
			}
			if o.ChainLen == 3 {
				rootA3 = root
			}
			return p
		}
		pfxA = gen(domains.GenerateOptions{Suffix: suffixA})
		pfxB = gen(domains.GenerateOptions{Suffix: suffixB})
		pfx3 = gen(domains.GenerateOptions{Suffix: suffixA, ChainLen: 3})
		pfxNoEKU = gen(domains.GenerateOptions{Suffix: suffixA, OmitAMTEKU: true})
	})
	if fixErr != nil {
		t.Fatal(fixErr)
	}
}

type env struct {
	cat   *Catalog
	store *cache.Store
	path  string
	logs  *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newEnv(t *testing.T, allowRandom bool) *env {
	t.Helper()
	dir := t.TempDir()
	store, err := cache.Open(filepath.Join(dir, "amtedge.db"), bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	e := &env{store: store, path: filepath.Join(dir, "catalog.db"), logs: &syncBuffer{}}
	e.open(t, allowRandom)
	return e
}

func (e *env) open(t *testing.T, allowRandom bool) {
	t.Helper()
	cat, err := Open(Options{Path: e.path, Store: e.store, AllowRandom: allowRandom,
		Log: slog.New(slog.NewTextHandler(e.logs, nil)), Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	e.cat = cat
	t.Cleanup(func() { cat.Close() })
}

func (e *env) reopen(t *testing.T) {
	t.Helper()
	if err := e.cat.Close(); err != nil {
		t.Fatal(err)
	}
	e.open(t, e.cat.opts.AllowRandom)
}

func jsonBody(t testing.TB, v map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func acmBody(name string) map[string]any {
	return map[string]any{"profileName": name, "activation": "acmactivate", "amtPassword": amtPW, "mebxPassword": mebxPW,
		"dhcpEnabled": true, "tags": []string{"t1"}}
}

func domainBodyFor(name, suffix string, pfx []byte) map[string]any {
	return map[string]any{"profileName": name, "domainSuffix": suffix, "provisioningCert": base64.StdEncoding.EncodeToString(pfx),
		"provisioningCertStorageFormat": "string", "provisioningCertPassword": pfxPW}
}

// items returns the validation items of err, or fails.
func items(t *testing.T, err error) []profiles.FieldError {
	t.Helper()
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error %v (%T) is not a *ValidationError", err, err)
	}
	return ve.Errors
}

func hasItem(list []profiles.FieldError, path, msgPart string) bool {
	for _, it := range list {
		if it.Path == path && strings.Contains(it.Msg, msgPart) {
			return true
		}
	}
	return false
}

func TestProfileCreateValidation(t *testing.T) {
	e := newEnv(t, false)
	ctx := context.Background()
	if _, err := e.cat.CreateProfile(ctx, jsonBody(t, acmBody("taken")), "test"); err != nil {
		t.Fatal(err)
	}
	if err := e.cat.SetSite([]profiles.Profile{{ProfileName: "sitep", Activation: "ccmactivate"}}, nil); err != nil {
		t.Fatal(err)
	}
	with := func(mod func(m map[string]any)) []byte {
		m := acmBody("p1")
		mod(m)
		return jsonBody(t, m)
	}
	tests := []struct {
		name      string
		body      []byte
		path, msg string
	}{
		{"not an object", []byte(`[1,2]`), "", "must be a JSON object"},
		{"empty", []byte(``), "", "empty"},
		{"invalid json", []byte(`{"profileName":`), "", "must be a JSON object"},
		{"trailing data", []byte(`{"profileName":"x"} {}`), "", "nothing after it"},
		{"too large", append([]byte(`{"tags":["`), bytes.Repeat([]byte("a"), MaxBodyBytes)...), "", "at most"},
		{"wrong type", with(func(m map[string]any) { m["dhcpEnabled"] = "yes" }), "dhcpEnabled", "must be a boolean"},
		{"wrong type int", with(func(m map[string]any) { m["tlsMode"] = "one" }), "tlsMode", "must be an integer"},
		{"wrong item type", with(func(m map[string]any) { m["wifiConfigs"] = []any{map[string]any{"profileName": "w", "priority": "x"}} }), "wifiConfigs", "priority must be an integer"},
		{"unknown field", with(func(m map[string]any) { m["bogus"] = 1 }), "bogus", "Unknown field bogus"},
		{"duplicate", jsonBody(t, acmBody("taken")), "profileName", "AMT profile taken already exists"},
		{"duplicate of site", jsonBody(t, acmBody("sitep")), "profileName", "AMT profile sitep already exists"},
		{"rps rule", with(func(m map[string]any) { m["activation"] = "bogus" }), "activation", profiles.MsgActivationInvalid},
		{"weak password", with(func(m map[string]any) { m["amtPassword"] = "weak" }), "amtPassword", ""},
		{"wifi ref", with(func(m map[string]any) { m["wifiConfigs"] = []any{map[string]any{"profileName": "w1", "priority": 1}} }), "wifiConfigs", "w1 does not exist on this box"},
		{"cira ref", with(func(m map[string]any) { m["ciraConfigName"] = "c1" }), "ciraConfigName", "c1 does not exist on this box"},
		{"8021x ref", with(func(m map[string]any) { m["ieee8021xProfileName"] = "x1" }), "ieee8021xProfileName", "x1 does not exist on this box"},
		{"proxy ref", with(func(m map[string]any) { m["proxyConfigs"] = []any{map[string]any{"name": "px", "priority": 1}} }), "proxyConfigs", "px does not exist on this box"},
		{"random without custody", with(func(m map[string]any) { delete(m, "amtPassword"); m["generateRandomPassword"] = true }), "generateRandomPassword", "custody.standalone"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.cat.CreateProfile(ctx, tt.body, "test")
			list := items(t, err)
			if !hasItem(list, tt.path, tt.msg) {
				t.Fatalf("no item %s/%q in %+v", tt.path, tt.msg, list)
			}
			for _, it := range list {
				if s := fmt.Sprint(it.Value) + it.Msg; strings.Contains(s, amtPW) || strings.Contains(s, "weak") && it.Path == "amtPassword" && it.Value != nil {
					t.Errorf("item echoes a password: %+v", it)
				}
			}
		})
	}
	if _, err := e.cat.ProfileByName("p1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a refused create left a profile: %v", err)
	}
}

func TestProfileLifecycle(t *testing.T) {
	e := newEnv(t, true)
	ctx := context.Background()
	got, err := e.cat.CreateProfile(ctx, jsonBody(t, acmBody("p1")), "alice")
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != "1" || got.Source != SourceAPI || got.AMTPassword != "" || got.MEBxPassword != "" || got.UserConsent != profiles.ConsentKVM {
		t.Fatalf("created %+v", got)
	}
	sec, err := e.store.Profile(ctx, "p1")
	if err != nil || sec.AMTPassword != amtPW || sec.MEBxPassword != mebxPW {
		t.Fatalf("store holds %v, %v", sec.AMTPassword == amtPW, err)
	}
	if !strings.Contains(e.logs.String(), "event=catalog_changed action=create kind=profile name=p1 actor=alice") {
		t.Errorf("no event in %s", e.logs.String())
	}

	// PATCH without version: 400; stale version: conflict (409/412); current: applied and bumped.
	_, err = e.cat.UpdateProfile(ctx, jsonBody(t, map[string]any{"profileName": "p1", "tags": []string{"x"}}), "", "bob")
	if !hasItem(items(t, err), "version", "version is required") {
		t.Fatalf("no version item: %v", err)
	}
	_, err = e.cat.UpdateProfile(ctx, jsonBody(t, map[string]any{"profileName": "p1", "version": "7"}), "", "bob")
	var ce *ConflictError
	if !errors.As(err, &ce) || !ce.VersionMismatch || ce.Current.(ProfileEntry).Version != "1" {
		t.Fatalf("stale version: %v", err)
	}
	got, err = e.cat.UpdateProfile(ctx, jsonBody(t, map[string]any{"profileName": "p1", "tags": []string{"x"}, "generateRandomPassword": true}), `"1"`, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != "2" || !got.GenerateRandomPassword || got.Tags[0] != "x" || got.Activation != "acmactivate" {
		t.Fatalf("updated %+v", got)
	}
	sec, _ = e.store.Profile(ctx, "p1")
	if sec.AMTPassword != "" || sec.MEBxPassword != mebxPW {
		t.Fatalf("generateRandomPassword did not drop the AMT password / kept the MEBx one: %v %v", sec.AMTPassword == "", sec.MEBxPassword == mebxPW)
	}
	// A merged profile is validated as a whole: CCM needs user consent All.
	_, err = e.cat.UpdateProfile(ctx, jsonBody(t, map[string]any{"profileName": "p1", "version": "2", "activation": "ccmactivate", "userConsent": "KVM"}), "", "bob")
	if !hasItem(items(t, err), "userConsent", "") {
		t.Fatalf("merged validation: %v", err)
	}

	// Persistence.
	e.reopen(t)
	got, err = e.cat.ProfileByName("p1")
	if err != nil || got.Version != "2" || got.Tags[0] != "x" {
		t.Fatalf("after reopen %+v %v", got, err)
	}
	if _, ok := e.cat.Profile("p1"); !ok || len(e.cat.ProfileNames()) != 1 {
		t.Fatal("flows do not see the API profile")
	}
	raw := readFile(t, e.path)
	for _, s := range []string{amtPW, mebxPW} {
		if bytes.Contains(raw, []byte(s)) {
			t.Fatal("catalog file holds a password")
		}
	}

	if err := e.cat.DeleteProfile(ctx, "p1", "carol"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.Profile(ctx, "p1"); !errors.Is(err, secrets.ErrNotFound) {
		t.Fatalf("secret left behind: %v", err)
	}
	if err := e.cat.DeleteProfile(ctx, "p1", "carol"); !errors.Is(err, ErrNotFound) || err.Error() != "AMT profile p1 Not Found" {
		t.Fatalf("second delete: %v", err)
	}
	e.reopen(t)
	if len(e.cat.ProfileList()) != 0 {
		t.Fatal("deleted profile came back")
	}
}

func TestSiteEntries(t *testing.T) {
	e := newEnv(t, true)
	ctx := context.Background()
	if err := e.cat.SetSite([]profiles.Profile{{ProfileName: "sitep", Activation: "ccmactivate", AMTPassword: amtPW}},
		[]SiteDomain{{Name: "sited", Suffix: suffixB, Expires: testNow.AddDate(1, 0, 0)}}); err != nil {
		t.Fatal(err)
	}
	p, err := e.cat.ProfileByName("sitep")
	if err != nil || p.Source != SourceSite || p.AMTPassword != "" {
		t.Fatalf("%+v %v", p, err)
	}
	var ce *ConflictError
	if _, err := e.cat.UpdateProfile(ctx, jsonBody(t, map[string]any{"profileName": "sitep", "version": "1"}), "", "x"); !errors.As(err, &ce) || !strings.Contains(ce.Msg, "defined in the site file") || ce.VersionMismatch {
		t.Fatalf("patch of a site profile: %v", err)
	}
	if err := e.cat.DeleteProfile(ctx, "sitep", "x"); !errors.As(err, &ce) {
		t.Fatalf("delete of a site profile: %v", err)
	}
	if err := e.cat.DeleteDomain(ctx, "sited", "x"); !errors.As(err, &ce) || ce.Current.(Domain).Source != SourceSite {
		t.Fatalf("delete of a site domain: %v", err)
	}
	fixtures(t)
	_, err = e.cat.CreateDomain(ctx, jsonBody(t, domainBodyFor("other", strings.ToUpper(suffixB)+".", pfxB)), "x")
	if !hasItem(items(t, err), "profileName", "Domain other ID or Suffix already exists") {
		t.Fatalf("suffix of a site domain: %v", err)
	}

	// An API name a site then uses refuses the site, changing nothing.
	if _, err := e.cat.CreateProfile(ctx, jsonBody(t, acmBody("apip")), "x"); err != nil {
		t.Fatal(err)
	}
	err = e.cat.SetSite([]profiles.Profile{{ProfileName: "apip"}}, nil)
	if err == nil || !strings.Contains(err.Error(), "site profile apip has the name of profile apip created through the admin API") {
		t.Fatalf("conflicting site: %v", err)
	}
	if _, err := e.cat.ProfileByName("sitep"); err != nil {
		t.Fatal("a refused SetSite changed the site entries")
	}
	if exp := e.cat.Expiry(); !exp["sited"].Equal(testNow.AddDate(1, 0, 0)) {
		t.Fatalf("expiry %v", exp)
	}
}

func TestDomainLifecycle(t *testing.T) {
	fixtures(t)
	e := newEnv(t, false)
	ctx := context.Background()
	d, err := e.cat.CreateDomain(ctx, jsonBody(t, domainBodyFor("d1", suffixA, pfxA)), "alice")
	if err != nil {
		t.Fatal(err)
	}
	if d.Version != "1" || d.DomainSuffix != suffixA || d.Source != SourceAPI || !d.ExpirationDate.Equal(testNow.AddDate(1, 0, 0)) {
		t.Fatalf("created %+v", d)
	}
	sec, err := e.store.Domain(ctx, "d1")
	if err != nil || !bytes.Equal(sec.PFX, pfxA) || sec.Password != pfxPW {
		t.Fatalf("store: %v", err)
	}
	if refs := e.cat.Domains(); len(refs) != 1 || refs[0].Name != "d1" || refs[0].Suffix != suffixA {
		t.Fatalf("flows see %+v", refs)
	}

	// A new suffix the stored certificate does not cover is refused with Import's reason.
	_, err = e.cat.UpdateDomain(ctx, jsonBody(t, map[string]any{"profileName": "d1", "domainSuffix": suffixB, "version": "1"}), "", "bob")
	if !hasItem(items(t, err), "domainSuffix", "does not cover the domain suffix") {
		t.Fatalf("suffix change: %v", err)
	}
	// A new certificate with the new suffix is accepted.
	body := domainBodyFor("d1", suffixB, pfxB)
	d, err = e.cat.UpdateDomain(ctx, jsonBody(t, body), `"1"`, "bob")
	if err != nil || d.Version != "2" || d.DomainSuffix != suffixB {
		t.Fatalf("update: %+v %v", d, err)
	}
	sec, _ = e.store.Domain(ctx, "d1")
	if !bytes.Equal(sec.PFX, pfxB) {
		t.Fatal("the new certificate was not stored")
	}
	var ce *ConflictError
	if _, err := e.cat.UpdateDomain(ctx, jsonBody(t, body), `"1"`, "bob"); !errors.As(err, &ce) || !ce.VersionMismatch || ce.Current.(Domain).Version != "2" {
		t.Fatalf("stale: %v", err)
	}
	rep, err := e.cat.DomainCert(ctx, "d1")
	if err != nil || !rep.SuffixMatches || rep.Problem != "" || rep.LeafCN != "provision."+suffixB {
		t.Fatalf("report %+v %v", rep, err)
	}

	e.reopen(t)
	if d, err := e.cat.DomainByName("d1"); err != nil || d.Version != "2" || d.DomainSuffix != suffixB {
		t.Fatalf("after reopen %+v %v", d, err)
	}
	raw := readFile(t, e.path)
	if bytes.Contains(raw, []byte(pfxPW)) || bytes.Contains(raw, pfxB[:64]) || bytes.Contains(raw, []byte(base64.StdEncoding.EncodeToString(pfxB)[:64])) {
		t.Fatal("catalog file holds a secret")
	}
	if err := e.cat.DeleteDomain(ctx, "d1", "carol"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.Domain(ctx, "d1"); !errors.Is(err, secrets.ErrNotFound) {
		t.Fatal("certificate left in the store")
	}
	if _, err := e.cat.DomainByName("d1"); err == nil || err.Error() != "Domain profile d1 Not Found" {
		t.Fatalf("%v", err)
	}
}

func TestDomainCreateErrors(t *testing.T) {
	fixtures(t)
	e := newEnv(t, false)
	ctx := context.Background()
	if _, err := e.cat.CreateDomain(ctx, jsonBody(t, domainBodyFor("d1", suffixA, pfxA)), "x"); err != nil {
		t.Fatal(err)
	}
	with := func(mod func(m map[string]any)) []byte {
		m := domainBodyFor("d2", suffixB, pfxB)
		mod(m)
		return jsonBody(t, m)
	}
	tests := []struct {
		name      string
		body      []byte
		path, msg string
	}{
		{"duplicate name", jsonBody(t, domainBodyFor("d1", suffixB, pfxB)), "profileName", "Domain d1 ID or Suffix already exists"},
		{"duplicate suffix", jsonBody(t, domainBodyFor("d2", "CORP.example.com", pfxA)), "profileName", "Domain d2 ID or Suffix already exists"},
		{"wrong password", with(func(m map[string]any) { m["provisioningCertPassword"] = "Wrong-Password-1" }), "provisioningCertPassword", "password is wrong"},
		{"no password", with(func(m map[string]any) { delete(m, "provisioningCertPassword") }), "provisioningCertPassword", "required"},
		{"no cert", with(func(m map[string]any) { delete(m, "provisioningCert") }), "provisioningCert", "required"},
		{"not base64", with(func(m map[string]any) { m["provisioningCert"] = "%%%" }), "provisioningCert", "base64"},
		{"not pfx", with(func(m map[string]any) {
			m["provisioningCert"] = base64.StdEncoding.EncodeToString([]byte("hello world, no pfx"))
		}), "provisioningCert", "not a PKCS#12"},
		{"suffix mismatch", with(func(m map[string]any) { m["domainSuffix"] = "other.example.net" }), "domainSuffix", "does not cover"},
		{"no EKU", jsonBody(t, domainBodyFor("d2", "x."+suffixA, pfxNoEKU)), "provisioningCert", "extended key usage"},
		{"bad name", with(func(m map[string]any) { m["profileName"] = "a/b" }), "profileName", "may contain only"},
		{"bad format", with(func(m map[string]any) { m["provisioningCertStorageFormat"] = "pem" }), "provisioningCertStorageFormat", "raw or string"},
		{"wrong type", with(func(m map[string]any) { m["provisioningCertPassword"] = 5 }), "provisioningCertPassword", "must be a string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.cat.CreateDomain(ctx, tt.body, "x")
			list := items(t, err)
			if !hasItem(list, tt.path, tt.msg) {
				t.Fatalf("no item %s/%q in %+v", tt.path, tt.msg, list)
			}
			for _, it := range list {
				if strings.Contains(fmt.Sprint(it.Value)+it.Msg, pfxPW) || it.Path == "provisioningCert" && it.Value != nil {
					t.Errorf("item echoes a secret: %+v", it)
				}
			}
		})
	}
	if len(e.cat.DomainList()) != 1 {
		t.Fatal("a refused create left a domain")
	}
}

func TestInspectPFX(t *testing.T) {
	fixtures(t)
	e := newEnv(t, false)
	r := e.cat.InspectPFX(pfx3, pfxPW, "other.example.net")
	if r.Problem == "" || !strings.Contains(r.Problem, "does not cover") || r.SuffixMatches {
		t.Fatalf("mismatch not reported: %+v", r)
	}
	if r.LeafCN != "provision."+suffixA || len(r.Chain) != 3 || r.RootSHA256 != rootA3 || !r.ActivationEKU || r.Expires.IsZero() {
		t.Fatalf("report incomplete despite the failed import: %+v", r)
	}
	if r := e.cat.InspectPFX(pfx3, pfxPW, ""); r.Problem != "" || r.Suffix != "" {
		t.Fatalf("no suffix: %+v", r)
	}
	if r := e.cat.InspectPFX(pfx3, pfxPW, suffixA); r.Problem != "" || !r.SuffixMatches {
		t.Fatalf("good: %+v", r)
	}
	if r := e.cat.InspectPFX(pfxNoEKU, pfxPW, suffixA); r.ActivationEKU || !strings.Contains(r.Problem, "extended key usage") || r.LeafCN == "" {
		t.Fatalf("no EKU: %+v", r)
	}
	r = e.cat.InspectPFX(pfx3, "Wrong-Pass-1", suffixA)
	if !strings.Contains(r.Problem, "password is wrong") || strings.Contains(r.Problem, "Wrong-Pass-1") || len(r.Chain) != 0 {
		t.Fatalf("wrong password: %+v", r)
	}
}

// Concurrent PATCHes with the same version: exactly one wins, the others get a conflict with the new current.
func TestConcurrentUpdates(t *testing.T) {
	e := newEnv(t, true)
	ctx := context.Background()
	if _, err := e.cat.CreateProfile(ctx, jsonBody(t, acmBody("p1")), "x"); err != nil {
		t.Fatal(err)
	}
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			_, errs[i] = e.cat.UpdateProfile(ctx, jsonBody(t, map[string]any{"profileName": "p1", "version": "1", "tags": []string{fmt.Sprint(i)}}), "", "x")
		})
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		var ce *ConflictError
		switch {
		case err == nil:
			won++
		case errors.As(err, &ce) && ce.VersionMismatch && ce.Current.(ProfileEntry).Version == "2":
		default:
			t.Errorf("unexpected %v", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d updates won", won)
	}
	// Sequential updates each take the next version.
	for v := 2; v < 5; v++ {
		got, err := e.cat.UpdateProfile(ctx, jsonBody(t, map[string]any{"profileName": "p1", "version": fmt.Sprint(v)}), "", "x")
		if err != nil || got.Version != fmt.Sprint(v+1) {
			t.Fatalf("v%d: %+v %v", v, got, err)
		}
	}
}

func TestDegradedStore(t *testing.T) {
	cat, err := Open(Options{Path: filepath.Join(t.TempDir(), "c.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	ctx := context.Background()
	if _, err := cat.CreateProfile(ctx, jsonBody(t, acmBody("p1")), "x"); !errors.Is(err, ErrStoreUnavailable) {
		t.Fatalf("create: %v", err)
	}
	if err := cat.DeleteDomain(ctx, "d", "x"); !errors.Is(err, ErrStoreUnavailable) {
		t.Fatalf("delete: %v", err)
	}
}

func TestDamagedFile(t *testing.T) {
	e := newEnv(t, true)
	if _, err := e.cat.CreateProfile(context.Background(), jsonBody(t, acmBody("p1")), "x"); err != nil {
		t.Fatal(err)
	}
	if err := e.cat.putRecord(bucketProfiles, "p2", "not a profile"); err != nil {
		t.Fatal(err)
	}
	e.cat.Close()
	if _, err := Open(Options{Path: e.path, Store: e.store}); err == nil || !strings.Contains(err.Error(), `profile record "p2" is damaged`) {
		t.Fatalf("damaged file opened: %v", err)
	}
}
