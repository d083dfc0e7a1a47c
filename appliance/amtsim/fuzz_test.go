package amtsim

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"
)

// FuzzExchange feeds arbitrary bytes to the firmware twice: as a raw HTTP request (HTTP parser, de-chunker, digest
// parser), and as the SOAP body of a correctly authenticated request to a pre-provisioned and to an activated
// device (XML parser, dispatch, every class and method). The firmware must never panic, must never return an
// error for bad input, and every reply it gives must be well-formed HTTP.
func FuzzExchange(f *testing.F) {
	env := envelopeXML(actionGet, gsURI, "1", "", "")
	f.Add(rawRequest(testUUID+":16992", "", env))
	f.Add([]byte(env))
	f.Add([]byte(envelopeXML(hbsURI+"/AddNextCertInChain", hbsURI, "2", "", methodXML(hbsURI, "AddNextCertInChain",
		"NextCertificate", "MIIB", "IsLeafCertificate", "true", "IsRootCertificate", "false"))))

	f.Fuzz(func(t *testing.T, raw []byte) {
		d := simDevice(t, DeviceConfig{DHCPDNSSuffix: "example.com", Wireless: true})
		out, err := d.Exchange(context.Background(), raw)
		if err != nil {
			t.Fatalf("Exchange returned an error for bad input: %v", err)
		}
		checkHTTP(t, out)

		for _, dev := range []struct {
			mode       Mode
			user, pass string
		}{{ModePreProvisioning, "$$OsAdmin", testLSAPw}, {ModeACM, "admin", "Adm1n-pw!"}} {
			cfg := DeviceConfig{Mode: dev.mode, Wireless: true}
			if dev.mode != ModePreProvisioning {
				cfg.AdminPassword = dev.pass
			}
			d := simDevice(t, cfg)
			auth := digestHeader(dev.user, dev.pass, testRealm, freshNonce(t, d), 1, "fz")
			out, err := d.Exchange(context.Background(), rawRequest(testUUID+":16992", auth, string(raw)))
			if err != nil {
				t.Fatalf("Exchange: %v", err)
			}
			if out == nil {
				t.Fatal("no reply to a well-framed, authenticated request")
			}
			if code := checkHTTP(t, out); code != 200 && code != 400 {
				t.Fatalf("authenticated request answered %d\n%s", code, out)
			}
		}
	})
}

// checkHTTP asserts a reply is nil or a complete, well-formed HTTP response and returns its status.
func checkHTTP(t *testing.T, out []byte) int {
	t.Helper()
	if out == nil {
		return 0
	}
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(out)), nil)
	if err != nil {
		t.Fatalf("reply is not HTTP: %v\n%q", err, out)
	}
	if _, err := io.ReadAll(resp.Body); err != nil {
		t.Fatalf("reply body: %v\n%q", err, out)
	}
	return resp.StatusCode
}
