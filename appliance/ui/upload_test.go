package ui

import (
	"bytes"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/amtedge/amtedge/appliance/access"
)

// The certificate is bounded by maxPFXBytes on the file header in both ways a domain form arrives: read by
// readUpload itself (CSRF token in the header, htmx), or already read by access.Guard under access.MaxFormBytes
// (CSRF token in a form field), when maxUploadBytes does not apply.
func TestUploadPFXBound(t *testing.T) {
	h := newFixture(t).h.(*handler)
	request := func(pfxLen int) *http.Request {
		var b bytes.Buffer
		mw := multipart.NewWriter(&b)
		_ = mw.WriteField(CSRFField, "token")
		_ = mw.WriteField("domainSuffix", "a.example.com")
		fw, _ := mw.CreateFormFile("provisioningCert", "a.pfx")
		_, _ = fw.Write(bytes.Repeat([]byte{1}, pfxLen))
		_ = mw.Close()
		r := httptest.NewRequest(http.MethodPost, "/domains/preview", &b)
		r.Header.Set("Content-Type", mw.FormDataContentType())
		return r
	}
	// guardParsed reads the form as access.Guard does when the token is a form field.
	guardParsed := func(r *http.Request) *http.Request {
		r.Body = http.MaxBytesReader(httptest.NewRecorder(), r.Body, access.MaxFormBytes)
		if err := r.ParseMultipartForm(access.MaxFormBytes); err != nil {
			t.Fatal(err)
		}
		return r
	}
	for _, tt := range []struct {
		name    string
		r       *http.Request
		wantErr string // "" for accepted, with the whole file
	}{
		{"header, at the limit", request(maxPFXBytes), ""},
		{"header, over the PFX limit", request(maxPFXBytes + 1), "the file a.pfx is"},
		{"header, over the form limit", request(maxUploadBytes + 1), "the upload is larger than"},
		{"field, at the limit", guardParsed(request(maxPFXBytes)), ""},
		{"field, over the PFX limit", guardParsed(request(maxPFXBytes + 1)), "the file a.pfx is"},
		// Far over maxUploadBytes: only the file header's size check refuses it.
		{"field, over the form limit", guardParsed(request(4 * maxUploadBytes)), "the file a.pfx is 512 KiB"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			u, err := h.readUpload(httptest.NewRecorder(), tt.r)
			switch {
			case tt.wantErr == "" && (err != nil || len(u.pfx) != maxPFXBytes):
				t.Fatalf("refused: %v (%d bytes)", err, len(u.pfx))
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			case tt.wantErr != "" && len(u.pfx) != 0:
				t.Fatalf("%d bytes of a refused PFX kept", len(u.pfx))
			}
		})
	}
}

// POST /domains/{name} reads the certificate in use (DomainCert: a store read and a PFX decode) only when it renders
// the form again, not for a save that redirects.
func TestDomainUpdateReadsCertOnlyToRender(t *testing.T) {
	f := newFixture(t)
	c := newClient(t, f)
	c.login()
	pfx := testPFX(t, f.now, "lab.example.com", "pfx-pass")
	r := c.postMultipart("/domains/new", map[string]string{"step": "save", "profileName": "lab", "domainSuffix": "lab.example.com",
		"provisioningCertPassword": "pfx-pass"}, pfx, false)
	if r.code != http.StatusSeeOther {
		t.Fatalf("create: %d\n%s", r.code, r.body)
	}
	reads := func() int {
		f.cat.mu.Lock()
		defer f.cat.mu.Unlock()
		return f.cat.certReads
	}
	before := reads()
	d, _ := f.cat.DomainByName("lab")
	r = c.postMultipart("/domains/lab", map[string]string{"step": "save", "domainSuffix": "lab2.example.com", "version": d.Version}, nil, false)
	if r.code != http.StatusSeeOther || reads() != before {
		t.Fatalf("save: %d, %d certificate reads", r.code, reads()-before)
	}
	// Refused (stale version), bad upload, preview: the form is shown again, with the certificate in use.
	for name, req := range map[string]func() response{
		"conflict": func() response {
			return c.postMultipart("/domains/lab", map[string]string{"step": "save", "domainSuffix": "lab.example.com", "version": "0"}, nil, false)
		},
		"unreadable upload": func() response {
			return c.postMultipart("/domains/lab", map[string]string{"step": "save", "upload": "00112233445566778899aabbccddeeff"}, nil, false)
		},
		"preview": func() response {
			return c.postMultipart("/domains/lab", map[string]string{"step": "preview", "domainSuffix": "lab.example.com",
				"provisioningCertPassword": "pfx-pass"}, pfx, false)
		},
	} {
		before := reads()
		r := req()
		if r.code == http.StatusSeeOther || reads() != before+1 || !strings.Contains(r.body, "Certificate in use") {
			t.Errorf("%s: %d, %d certificate reads\n%s", name, r.code, reads()-before, r.body)
		}
	}
}
