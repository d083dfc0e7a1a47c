package ui

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/amtedge/amtedge/appliance/access"
	"github.com/amtedge/amtedge/appliance/profiles"
)

// FuzzSafeNext: whatever the sign-in form's next holds, the redirect access.SafeNext gives it stays on this box.
func FuzzSafeNext(f *testing.F) {
	for _, s := range []string{"", "/", "/devices?q=a", "//evil", "/\\evil", "https://evil/", "/%2F%2Fevil", "/a\r\nb", "\\\\evil", "/./\\evil", "/a/../\\evil"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, next string) {
		got := access.SafeNext(next)
		if got != "/" && got != next {
			t.Fatalf("access.SafeNext(%q) = %q: neither the input nor /", next, got)
		}
		if strings.HasPrefix(got, "//") || strings.HasPrefix(got, "/\\") || !strings.HasPrefix(got, "/") {
			t.Fatalf("access.SafeNext(%q) = %q leaves the box", next, got)
		}
		u, err := url.Parse(got)
		if err != nil || u.Host != "" || u.Scheme != "" {
			t.Fatalf("access.SafeNext(%q) = %q names a host", next, got)
		}
		// What the browser gets is http.Redirect's Location, after it cleaned the path.
		if loc := redirectTo(got); strings.HasPrefix(loc, "//") || strings.ContainsRune(loc, '\\') {
			t.Fatalf("access.SafeNext(%q) = %q redirects to %q, which browsers read as another host", next, got, loc)
		}
	})
}

// FuzzListQueries: the device and activity list queries never panic, bad values are named, and a device
// filter survives its own paging links.
func FuzzListQueries(f *testing.F) {
	for _, s := range []string{"", "q=pc&mode=acm&result=ok&page=2", "mode=bogus&page=-1", "page=99999999999999999999",
		"event=activation_failed&level=warn&q=x&since=3", "since=x&level=LOUD", "q=%ZZ", "profile=%3Cimg%3E"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		r := httptest.NewRequest(http.MethodGet, "/devices", nil)
		r.URL.RawQuery = raw
		df, problem := parseDeviceFilter(r)
		if df.Page < 1 {
			t.Fatalf("page %d from %q", df.Page, raw)
		}
		if problem == "" {
			r2 := httptest.NewRequest(http.MethodGet, "/devices"+df.PageQuery(df.Page), nil)
			back, p2 := parseDeviceFilter(r2)
			if p2 != "" || back != df {
				t.Fatalf("paging link of %+v parses to %+v (%s)", df, back, p2)
			}
		}
		af, _ := parseActivityFilter(r)
		r3 := httptest.NewRequest(http.MethodGet, "/activity/stream"+af.StreamQuery(), nil)
		if back, p3 := parseActivityFilter(r3); p3 != "" || back != af {
			t.Fatalf("stream query of %+v parses to %+v (%s)", af, back, p3)
		}
	})
}

// FuzzProfileForm: any posted profile form either is refused with a message or becomes RPS JSON that decodes
// back to the same name, activation and passwords.
func FuzzProfileForm(f *testing.F) {
	for _, s := range []string{"profileName=lab&activation=ccmactivate&generateRandomPassword=on",
		"profileName=a&activation=acmactivate&amtPassword=P%40ss&mebxPassword=x&tlsMode=3&tags=a,+b,,c",
		"tlsMode=five", "profileName=%3Cimg%20src%3Dx%3E&kvmEnabled=true", "%", "a=%ZZ"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		r := httptest.NewRequest(http.MethodPost, "/profiles/new", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		form, err := readProfileForm(r)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		js, fe := form.body()
		if fe.Any() {
			if fe.Err("tlsMode") == "" && len(fe.General) == 0 {
				t.Fatalf("refused without a message: %+v", fe)
			}
			return
		}
		var p profiles.Profile
		if err := json.Unmarshal(js, &p); err != nil {
			t.Fatalf("body %s does not decode: %v", js, err)
		}
		if p.ProfileName != form.ProfileName || p.Activation != form.Activation {
			t.Fatalf("round trip: %+v vs %+v", p, form)
		}
		if !form.GenerateRandomPassword && p.AMTPassword != form.AMTPassword {
			t.Fatalf("AMT password lost")
		}
		if form.GenerateRandomPassword && p.AMTPassword != "" {
			t.Fatalf("a fixed password was sent with a random-password profile")
		}
	})
}

// FuzzDomainUpload: any multipart body to the PFX preview answers with a fragment or a clear 400, never a panic
// or a 500, and never echoes the password.
func FuzzDomainUpload(f *testing.F) {
	const boundary = "xBOUNDARYx"
	part := func(name, val string) string {
		return "--" + boundary + "\r\nContent-Disposition: form-data; name=\"" + name + "\"\r\n\r\n" + val + "\r\n"
	}
	file := "--" + boundary + "\r\nContent-Disposition: form-data; name=\"provisioningCert\"; filename=\"a.pfx\"\r\n" +
		"Content-Type: application/x-pkcs12\r\n\r\n0\x82\x01\x00garbage\r\n"
	f.Add(part("domainSuffix", "a.example") + part("provisioningCertPassword", "pw-secret") + file + "--" + boundary + "--\r\n")
	f.Add(part("upload", "00112233445566778899aabbccddeeff") + "--" + boundary + "--\r\n")
	f.Add("--" + boundary + "\r\nbroken")
	f.Add("")
	fx := newFixture(f)
	h := fx.h.(*handler)
	f.Fuzz(func(t *testing.T, body string) {
		r := httptest.NewRequest(http.MethodPost, "/domains/preview", strings.NewReader(body))
		r.Header.Set("Content-Type", "multipart/form-data; boundary="+boundary)
		w := httptest.NewRecorder()
		h.domainPreview(w, r)
		if w.Code != http.StatusOK && w.Code != http.StatusBadRequest {
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
		if pw := passwordField(body, boundary); len(pw) >= 4 && strings.Contains(w.Body.String(), pw) {
			t.Fatalf("the PFX password %q was echoed: %s", pw, w.Body)
		}
		if !strings.Contains(w.Body.String(), `id="preview-result"`) {
			t.Fatalf("no preview fragment: %s", w.Body)
		}
	})
}

// passwordField is the provisioningCertPassword the body carries, as the handler would read it, unless another
// field (shown on purpose, like the suffix) holds the same text.
func passwordField(body, boundary string) string {
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
	r.Header.Set("Content-Type", "multipart/form-data; boundary="+boundary)
	if err := r.ParseMultipartForm(maxUploadBytes); err != nil {
		return ""
	}
	pw := r.MultipartForm.Value["provisioningCertPassword"]
	if len(pw) == 0 {
		return ""
	}
	for k, vals := range r.MultipartForm.Value {
		for _, v := range vals {
			if k != "provisioningCertPassword" && strings.Contains(v, pw[0]) {
				return ""
			}
		}
	}
	for _, files := range r.MultipartForm.File {
		for _, fh := range files {
			if strings.Contains(fh.Filename, pw[0]) {
				return ""
			}
		}
	}
	return pw[0]
}
