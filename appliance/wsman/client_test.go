package wsman_test

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/device-management-toolkit/go-wsman-messages/v2/pkg/wsman/amt"
	"github.com/device-management-toolkit/go-wsman-messages/v2/pkg/wsman/amt/general"
	"github.com/device-management-toolkit/go-wsman-messages/v2/pkg/wsman/cim"
	"github.com/device-management-toolkit/go-wsman-messages/v2/pkg/wsman/client"
	"github.com/device-management-toolkit/go-wsman-messages/v2/pkg/wsman/ips"
	"github.com/device-management-toolkit/go-wsman-messages/v2/pkg/wsman/ips/hostbasedsetup"

	"github.com/amtedge/amtedge/appliance/wsman"
)

var _ client.WSMan = (*wsman.Client)(nil)

const (
	testUUID      = "4c4c4544-0052-3710-8058-b2c04f4e3432"
	lsaUser       = "$$OsAdmin"
	lsaPassword   = "Lsa-9f8e7d6c5b4a"
	adminPassword = "Adm1n-P@ss-7Q2w"
	fixtureRealm  = "Digest:F3EB554784E729164447A89F60B641C5" // DigestRealm in amt/general/get.xml
)

var lsa = wsman.Credentials{Username: lsaUser, Password: lsaPassword}

// getEnvelope is an AMT_GeneralSettings Get exactly as go-wsman-messages builds it (reference Appendix A).
const getEnvelope = `<?xml version="1.0" encoding="utf-8"?><Envelope xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" xmlns="http://www.w3.org/2003/05/soap-envelope"><Header><a:Action>http://schemas.xmlsoap.org/ws/2004/09/transfer/Get</a:Action><a:To>/wsman</a:To><w:ResourceURI>http://intel.com/wbem/wscim/1/amt-schema/1/AMT_GeneralSettings</w:ResourceURI><a:MessageID>0</a:MessageID><a:ReplyTo><a:Address>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:Address></a:ReplyTo><w:OperationTimeout>PT60S</w:OperationTimeout></Header><Body></Body></Envelope>`

func newClient(t testing.TB, relay wsman.Relay, opts wsman.Options) *wsman.Client {
	t.Helper()
	return wsman.NewClient(relay, testUUID, lsa, opts)
}

// getSettings is the first call of every flow, through the library.
func getSettings(c *wsman.Client) error {
	r, err := amt.NewMessages(c).GeneralSettings.Get()
	if err != nil {
		return err
	}
	if got := r.Body.GetResponse.DigestRealm; got != fixtureRealm {
		return fmt.Errorf("DigestRealm = %q, want %q", got, fixtureRealm)
	}
	return nil
}

func adminSetup(c *wsman.Client) error {
	r, err := ips.NewMessages(c).HostBasedSetupService.AdminSetup(
		hostbasedsetup.AdminPassEncryptionType(2), fixtureRealm, adminPassword, "bm9uY2Vub25jZW5vbmNlbm9uY2U=",
		hostbasedsetup.SigningAlgorithm(2), "c2lnbmF0dXJl")
	if err != nil {
		return err
	}
	if rv := r.Body.AdminSetup_OUTPUT.ReturnValue; rv != 0 {
		return fmt.Errorf("ReturnValue %d", rv)
	}
	return nil
}

func putSettings(c *wsman.Client) error {
	_, err := amt.NewMessages(c).GeneralSettings.Put(general.GeneralSettingsRequest{
		InstanceID: "Intel(r) AMT: General Settings", PingResponseEnabled: true,
	})
	return err
}

func enumerateSettings(c *wsman.Client) error {
	r, err := amt.NewMessages(c).GeneralSettings.Enumerate()
	if err == nil && r.Body.EnumerateResponse.EnumerationContext == "" {
		err = errors.New("no enumeration context")
	}
	return err
}

func pullSettings(c *wsman.Client) error {
	r, err := amt.NewMessages(c).GeneralSettings.Pull("14000000-0000-0000-0000-000000000000")
	if err == nil && len(r.Body.PullResponse.GeneralSettingsItems) != 1 {
		err = fmt.Errorf("%d pulled items", len(r.Body.PullResponse.GeneralSettingsItems))
	}
	return err
}

func md5hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

var authRE = regexp.MustCompile(`^Digest username="([^"]*)",realm="([^"]*)",nonce="([^"]*)",uri="/wsman",` +
	`qop="auth",response="([0-9a-f]{32})",nc="([0-9a-f]{8})",cnonce="([0-9a-f]{8,})"$`)

type digestFields struct {
	username, realm, nonce, response, nc, cnonce string
}

// authOf returns the Authorization fields of a raw request, or ok=false when it has none.
func authOf(t *testing.T, req string) (digestFields, bool) {
	t.Helper()
	head, _, _ := strings.Cut(req, "\r\n\r\n")
	for _, line := range strings.Split(head, "\r\n") {
		v, ok := strings.CutPrefix(line, "Authorization: ")
		if !ok {
			continue
		}
		m := authRE.FindStringSubmatch(v)
		if m == nil {
			t.Fatalf("Authorization header not in the expected form:\n%s", v)
		}
		return digestFields{m[1], m[2], m[3], m[4], m[5], m[6]}, true
	}
	return digestFields{}, false
}

// wantDigest computes the RFC 2617 qop=auth response independently of the package.
func wantDigest(user, password string, f digestFields) string {
	ha1 := md5hex(user + ":" + f.realm + ":" + password)
	ha2 := md5hex("POST:/wsman")
	return md5hex(ha1 + ":" + f.nonce + ":" + f.nc + ":" + f.cnonce + ":auth:" + ha2)
}

// assertNoSecrets checks that an error text carries no password, HA1 or request body.
func assertNoSecrets(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	msg := err.Error()
	for _, secret := range []string{
		lsaPassword, adminPassword,
		md5hex(lsaUser + ":" + fixtureRealm + ":" + lsaPassword),
		md5hex("admin:" + fixtureRealm + ":" + adminPassword),
		"<Envelope", "<a:Envelope", "NetworkAdminPassword", "DigitalSignature",
	} {
		if strings.Contains(msg, secret) {
			t.Errorf("error text leaks %q: %s", secret, msg)
		}
	}
}

func TestRequestLayout(t *testing.T) {
	const nonASCII = `<h:SSID>Café-Büro ‘Wi-Fi’ ✓ 😀 Straße!</h:SSID>` // 58 UTF-8 bytes, 47 UTF-16 units
	tests := []struct {
		name     string
		body     string
		port     int
		wantHost string
		wantSize string
	}{
		{"Get envelope", getEnvelope, 0, testUUID + ":16992", fmt.Sprintf("%X", len(getEnvelope))},
		{"non-ASCII body is sized in UTF-8 bytes", nonASCII, 16993, testUUID + ":16993", "3A"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			relay := newFakeRelay(t,
				unauthorized("nonce-1"),
				raw(httpReply(200, "OK", []string{"Content-Length: 13"}, "<Envelope/>\r\n")),
			)
			c := newClient(t, relay, wsman.Options{Port: tt.port})
			if _, err := c.Post(tt.body); err != nil {
				t.Fatal(err)
			}
			relay.done()

			tail := "Host: " + tt.wantHost + "\r\n" +
				"Transfer-Encoding: chunked\r\n" +
				"Content-Type: application/soap+xml;charset=UTF-8\r\n" +
				"Connection: close\r\n" +
				"\r\n" +
				tt.wantSize + "\r\n" + tt.body + "\r\n0\r\n\r\n"
			if got, want := relay.request(0), "POST /wsman HTTP/1.1\r\n"+tail; got != want {
				t.Errorf("first (unsigned) request:\n got %q\nwant %q", got, want)
			}

			signed := relay.request(1)
			f, ok := authOf(t, signed)
			if !ok {
				t.Fatal("second request is not signed")
			}
			authLine := "Authorization: " + fmt.Sprintf(`Digest username="%s",realm="%s",nonce="%s",uri="/wsman",qop="auth",response="%s",nc="%s",cnonce="%s"`,
				f.username, f.realm, f.nonce, f.response, f.nc, f.cnonce)
			if want := "POST /wsman HTTP/1.1\r\n" + authLine + "\r\n" + tail; signed != want {
				t.Errorf("signed request:\n got %q\nwant %q", signed, want)
			}
		})
	}
}

func TestDigestSession(t *testing.T) {
	relay := newFakeRelay(t,
		unauthorized("nonce-1"), soapOK(t, "amt-replies/amt/general/get.xml"), // 0, 1
		soapOK(t, "amt-replies/amt/general/get.xml"),                          // 2: challenge reused
		soapOK(t, "amt-replies/amt/general/get.xml"),                          // 3: after SetCredentials
		unauthorized("nonce-2"), soapOK(t, "amt-replies/amt/general/get.xml"), // 4, 5: new challenge
	)
	c := newClient(t, relay, wsman.Options{})
	if c.IsAuthenticated() {
		t.Error("IsAuthenticated before any exchange")
	}
	for i := range 3 {
		if i == 2 {
			c.SetCredentials(wsman.Credentials{Username: "admin", Password: adminPassword})
		}
		if err := getSettings(c); err != nil {
			t.Fatalf("Get %d: %v", i, err)
		}
		if !c.IsAuthenticated() {
			t.Errorf("IsAuthenticated false after Get %d", i)
		}
	}
	if err := getSettings(c); err != nil {
		t.Fatal(err)
	}
	relay.done()

	type want struct {
		signed         bool
		user, password string
		nonce, nc      string
	}
	wants := []want{
		{signed: false},
		{true, lsaUser, lsaPassword, "nonce-1", "00000001"},
		{true, lsaUser, lsaPassword, "nonce-1", "00000002"},
		{true, "admin", adminPassword, "nonce-1", "00000003"},
		{true, "admin", adminPassword, "nonce-1", "00000004"},
		{true, "admin", adminPassword, "nonce-2", "00000001"},
	}
	cnonces := map[string]bool{}
	for i, w := range wants {
		f, signed := authOf(t, relay.request(i))
		if signed != w.signed {
			t.Fatalf("request %d signed = %v, want %v", i, signed, w.signed)
		}
		if !signed {
			continue
		}
		if f.username != w.user || f.realm != testRealm || f.nonce != w.nonce || f.nc != w.nc {
			t.Errorf("request %d: username=%q realm=%q nonce=%q nc=%q, want %q %q %q %q",
				i, f.username, f.realm, f.nonce, f.nc, w.user, testRealm, w.nonce, w.nc)
		}
		if got, want := f.response, wantDigest(w.user, w.password, f); got != want {
			t.Errorf("request %d: response=%s, want %s", i, got, want)
		}
		if cnonces[f.cnonce] {
			t.Errorf("request %d reuses cnonce %s", i, f.cnonce)
		}
		cnonces[f.cnonce] = true
	}
}

func TestUnauthorized(t *testing.T) {
	get := soapOK(t, "amt-replies/amt/general/get.xml")
	tests := []struct {
		name      string
		steps     []step
		wantCalls int
		wantErr   error
		wantText  string
		check     func(t *testing.T, relay *fakeRelay)
	}{
		{
			name:      "challenge then success",
			steps:     []step{unauthorized("n1"), get},
			wantCalls: 2,
		},
		{
			name:      "re-challenge then success",
			steps:     []step{unauthorized("n1"), unauthorized("n2"), get},
			wantCalls: 3,
			check: func(t *testing.T, relay *fakeRelay) {
				f, _ := authOf(t, relay.request(2))
				if f.nonce != "n2" || f.nc != "00000001" {
					t.Errorf("resent with nonce=%q nc=%q, want n2 00000001", f.nonce, f.nc)
				}
			},
		},
		{
			name:      "third 401 in a row fails",
			steps:     []step{unauthorized("n1"), unauthorized("n2"), unauthorized("n3")},
			wantCalls: 3,
			wantErr:   wsman.ErrUnauthorized,
			wantText:  `AMT_GeneralSettings.Get: AMT rejected the credentials for user "$$OsAdmin"`,
		},
		{
			name: "lower-case header name, qop list, stray commas, unquoted values",
			steps: []step{raw(unauthorizedReply("www-authenticate",
				` Digest ,realm="`+testRealm+`",,  nonce=AbC123== , qop="auth,auth-int", stale=false,`)), get},
			wantCalls: 2,
			check: func(t *testing.T, relay *fakeRelay) {
				f, _ := authOf(t, relay.request(1))
				if f.nonce != "AbC123==" || f.realm != testRealm {
					t.Errorf("signed with nonce=%q realm=%q", f.nonce, f.realm)
				}
				if got, want := f.response, wantDigest(lsaUser, lsaPassword, f); got != want {
					t.Errorf("response=%s, want %s", got, want)
				}
			},
		},
		{
			name:      "401 without a challenge",
			steps:     []step{raw(httpReply(401, "Unauthorized", []string{"Content-Length: 0"}, ""))},
			wantCalls: 1,
			wantText:  "AMT answered 401 without a usable digest challenge",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			relay := newFakeRelay(t, tt.steps...)
			var records []wsman.Exchange
			c := newClient(t, relay, wsman.Options{Observe: func(e wsman.Exchange) { records = append(records, e) }})
			err := getSettings(c)
			relay.done()
			if got := relay.calls(); got != tt.wantCalls {
				t.Errorf("relay calls = %d, want %d", got, tt.wantCalls)
			}
			if len(records) != tt.wantCalls {
				t.Errorf("%d Observe records, want %d", len(records), tt.wantCalls)
			}
			switch {
			case tt.wantErr == nil && tt.wantText == "":
				if err != nil {
					t.Fatal(err)
				}
			case err == nil:
				t.Fatal("no error")
			default:
				if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
					t.Errorf("error %v is not %v", err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantText) {
					t.Errorf("error %q does not contain %q", err, tt.wantText)
				}
				if errors.Is(err, wsman.ErrTimeout) || errors.Is(err, wsman.ErrTruncated) {
					t.Errorf("auth failure %v classified as retryable", err)
				}
			}
			assertNoSecrets(t, err)
			for _, r := range records {
				assertNoSecrets(t, r.Err)
			}
			if tt.check != nil {
				tt.check(t, relay)
			}
		})
	}
}

// staleReply answers with the fixture but RelatesTo another request.
func staleReply(t testing.TB, name string) step {
	body := relatesTo.ReplaceAllString(fixture(t, name), "${1}41${2}")
	return raw(httpReply(200, "OK", append(amtHeaders, "Transfer-Encoding: chunked"), chunked(body, 500)))
}

// truncatedReply answers with the first half of the fixture's chunked reply, as rpc-go delivers a reply when
// AMT pauses mid-stream.
func truncatedReply(t testing.TB, name string) step {
	full := soapOK(t, name, 300)
	return func(ctx context.Context, req []byte) ([]byte, error) {
		b, err := full(ctx, req)
		return b[:len(b)/2], err
	}
}

func TestRetries(t *testing.T) {
	const (
		getXML   = "amt-replies/amt/general/get.xml"
		setupXML = "amt-replies/ips/hostbasedsetup/adminsetup.xml"
	)
	tests := []struct {
		name       string
		call       func(*wsman.Client) error
		steps      []step
		wantCalls  int
		wantErr    error
		wantText   string
		wantStatus []int // Observe statuses
	}{
		{"Get: timeout then answer", getSettings,
			[]step{silent(), soapOK(t, getXML)}, 2, nil, "", []int{0, 200}},
		{"Get: truncated then answer", getSettings,
			[]step{truncatedReply(t, getXML), soapOK(t, getXML)}, 2, nil, "", []int{200, 200}},
		{"Get: stale RelatesTo then answer", getSettings,
			[]step{staleReply(t, getXML), soapOK(t, getXML)}, 2, nil, "", []int{200, 200}},
		{"Get: three timeouts", getSettings,
			[]step{silent(), silent(), silent()}, 3, wsman.ErrTimeout,
			"AMT did not answer AMT_GeneralSettings.Get within 40ms (3 attempts)", []int{0, 0, 0}},
		{"Get: 401 does not use up attempts", getSettings,
			[]step{silent(), unauthorized("n1"), silent(), soapOK(t, getXML)}, 4, nil, "", []int{0, 401, 0, 200}},
		{"Enumerate: truncated then answer", enumerateSettings,
			[]step{truncatedReply(t, "amt-replies/amt/general/enumerate.xml"),
				soapOK(t, "amt-replies/amt/general/enumerate.xml")}, 2, nil, "", []int{200, 200}},
		{"Pull: timeout then answer", pullSettings,
			[]step{silent(), soapOK(t, "amt-replies/amt/general/pull.xml", 100)}, 2, nil, "", []int{0, 200}},
		{"AdminSetup: success", adminSetup,
			[]step{soapOK(t, setupXML)}, 1, nil, "", []int{200}},
		{"AdminSetup: timeout is not retried", adminSetup,
			[]step{silent()}, 1, wsman.ErrTimeout,
			"AMT did not answer IPS_HostBasedSetupService.AdminSetup within 40ms", []int{0}},
		{"AdminSetup: truncated is not retried", adminSetup,
			[]step{truncatedReply(t, setupXML)}, 1, wsman.ErrTruncated,
			"IPS_HostBasedSetupService.AdminSetup: truncated or malformed reply", []int{200}},
		{"AdminSetup: stale is not retried", adminSetup,
			[]step{staleReply(t, setupXML)}, 1, wsman.ErrStaleReply,
			"IPS_HostBasedSetupService.AdminSetup: reply belongs to another request", []int{200}},
		{"AdminSetup: 401 is answered (AMT did not run it)", adminSetup,
			[]step{unauthorized("n1"), soapOK(t, setupXML)}, 2, nil, "", []int{401, 200}},
		{"Put: timeout is not retried", putSettings,
			[]step{silent()}, 1, wsman.ErrTimeout, "AMT did not answer AMT_GeneralSettings.Put", []int{0}},
		{"Get: 500 is not retried", getSettings,
			[]step{raw(httpReply(500, "Internal Server Error", []string{"Content-Length: 0"}, ""))}, 1, nil,
			"AMT_GeneralSettings.Get: AMT answered HTTP 500 Internal Server Error", []int{500}},
		{"Get: relay failure is not retried", getSettings,
			[]step{func(context.Context, []byte) ([]byte, error) { return nil, errors.New("agent went away") }}, 1, nil,
			"AMT_GeneralSettings.Get: relay: agent went away", []int{0}},
		{"Get: empty reply is retried", getSettings,
			[]step{raw(""), soapOK(t, getXML)}, 2, nil, "", []int{0, 200}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			relay := newFakeRelay(t, tt.steps...)
			var records []wsman.Exchange
			c := newClient(t, relay, wsman.Options{
				RequestTimeout: 40 * time.Millisecond,
				Observe:        func(e wsman.Exchange) { records = append(records, e) },
			})
			err := tt.call(c)
			relay.done()
			if got := relay.calls(); got != tt.wantCalls {
				t.Errorf("relay calls = %d, want %d", got, tt.wantCalls)
			}
			if tt.wantErr == nil && tt.wantText == "" {
				if err != nil {
					t.Fatal(err)
				}
			} else {
				if err == nil {
					t.Fatal("no error")
				}
				if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
					t.Errorf("error %v is not %v", err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantText) {
					t.Errorf("error %q does not contain %q", err, tt.wantText)
				}
			}
			assertNoSecrets(t, err)
			var statuses []int
			for _, r := range records {
				statuses = append(statuses, r.Status)
				assertNoSecrets(t, r.Err)
				if r.Action == "" || r.Duration <= 0 {
					t.Errorf("Observe record %+v lacks action or duration", r)
				}
				if r.Status == 0 && r.Err == nil {
					t.Errorf("Observe record %+v: no reply but no error", r)
				}
			}
			if fmt.Sprint(statuses) != fmt.Sprint(tt.wantStatus) {
				t.Errorf("Observe statuses %v, want %v", statuses, tt.wantStatus)
			}
		})
	}
}

func TestFaults(t *testing.T) {
	soapHeaders := append(amtHeaders, "Transfer-Encoding: chunked")
	tests := []struct {
		name      string
		reply     string
		wantFault *wsman.Fault
		wantHTTP  *wsman.HTTPError
		wantText  string
	}{
		{
			name:  "400 AlreadyExists",
			reply: httpReply(400, "Bad Request", soapHeaders, chunked(fixture(t, "fault-alreadyexists.xml"), 97, 13)),
			wantFault: &wsman.Fault{Status: 400, Code: "Sender", Subcode: "AlreadyExists",
				Reason: "The sender attempted to create a resource which already exists."},
			wantText: "AMT_GeneralSettings.Get: AMT fault AlreadyExists: The sender attempted to create a resource which already exists.",
		},
		{
			name:  "500 with a fault and detail",
			reply: httpReply(500, "Internal Server Error", soapHeaders, chunked(fixture(t, "fault-destinationunreachable.xml"))),
			wantFault: &wsman.Fault{Status: 500, Code: "Receiver", Subcode: "DestinationUnreachable",
				Reason: "No route can be determined to reach the destination role defined by the WSAddressing To.",
				Detail: "http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/InvalidResourceURI"},
			wantText: "AMT fault DestinationUnreachable: No route",
		},
		{
			name:      "200 carrying a fault",
			reply:     httpReply(200, "OK", soapHeaders, chunked(fixture(t, "fault-alreadyexists.xml"))),
			wantFault: &wsman.Fault{Status: 200, Code: "Sender", Subcode: "AlreadyExists", Reason: "The sender attempted to create a resource which already exists."},
		},
		{
			name:     "500 without a fault",
			reply:    httpReply(500, "Internal Server Error", []string{"Content-Type: text/html", "Content-Length: 5"}, "oops!"),
			wantHTTP: &wsman.HTTPError{Status: 500, Reason: "Internal Server Error"},
			wantText: "AMT_GeneralSettings.Get: AMT answered HTTP 500 Internal Server Error",
		},
		{
			name:     "400 without a body",
			reply:    httpReply(400, "Bad Request", []string{"Content-Length: 0"}, ""),
			wantHTTP: &wsman.HTTPError{Status: 400, Reason: "Bad Request"},
		},
		{
			name:     "404",
			reply:    httpReply(404, "Not Found", []string{"Connection: close"}, ""),
			wantHTTP: &wsman.HTTPError{Status: 404, Reason: "Not Found"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			relay := newFakeRelay(t, raw(tt.reply))
			err := getSettings(newClient(t, relay, wsman.Options{}))
			relay.done()
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("error %q does not contain %q", err, tt.wantText)
			}
			var f *wsman.Fault
			var h *wsman.HTTPError
			switch {
			case tt.wantFault != nil:
				if !errors.As(err, &f) {
					t.Fatalf("error %v is not a *Fault", err)
				}
				if *f != *tt.wantFault {
					t.Errorf("fault = %+v, want %+v", *f, *tt.wantFault)
				}
			case tt.wantHTTP != nil:
				if !errors.As(err, &h) {
					t.Fatalf("error %v is not an *HTTPError", err)
				}
				if *h != *tt.wantHTTP {
					t.Errorf("HTTPError = %+v, want %+v", *h, *tt.wantHTTP)
				}
			}
		})
	}
}

// TestReplyFraming runs the library's GeneralSettings.Get against every way AMT (or a relay) may frame a reply.
func TestReplyFraming(t *testing.T) {
	body := fixture(t, "amt-replies/amt/general/get.xml")
	withID := func(req []byte) string { return relatesTo.ReplaceAllString(body, "${1}"+messageIDOf(req)+"${2}") }
	te := append(amtHeaders, "Transfer-Encoding: chunked")
	tests := []struct {
		name  string
		reply func(req []byte) string
	}{
		{"one chunk", func(r []byte) string { return httpReply(200, "OK", te, chunked(withID(r))) }},
		{"1-byte chunks", func(r []byte) string { return httpReply(200, "OK", te, chunked(withID(r), 1)) }},
		{"awkward chunks", func(r []byte) string { return httpReply(200, "OK", te, chunked(withID(r), 7, 301, 13, 1, 64)) }},
		{"chunk boundary inside DigestRealm", func(r []byte) string {
			b := withID(r)
			i := strings.Index(b, "F3EB5547")
			return httpReply(200, "OK", te, chunked(b, i+4, 9, len(b)))
		}},
		{"upper-case sizes, extensions and trailers", func(r []byte) string {
			b := withID(r)
			return httpReply(200, "OK", te, fmt.Sprintf("%X ; name=\"v\"\r\n%s\r\n%X\r\n%s\r\n0;last\r\nX-Trailer: 1\r\n\r\n",
				100, b[:100], len(b)-100, b[100:]))
		}},
		{"zero chunk without final CRLF", func(r []byte) string {
			return strings.TrimSuffix(httpReply(200, "OK", te, chunked(withID(r), 500)), "\r\n")
		}},
		{"Content-Length", func(r []byte) string {
			b := withID(r)
			return httpReply(200, "OK", append(amtHeaders, fmt.Sprintf("Content-Length: %d", len(b))), b)
		}},
		{"bytes after Content-Length are ignored", func(r []byte) string {
			b := withID(r)
			return httpReply(200, "OK", append(amtHeaders, fmt.Sprintf("content-length: %d", len(b))), b+"garbage")
		}},
		{"read to end", func(r []byte) string { return httpReply(200, "OK", amtHeaders, withID(r)) }},
		{"LF line endings", func(r []byte) string {
			return strings.ReplaceAll(httpReply(200, "OK", te, ""), "\r\n", "\n") + strings.ReplaceAll(chunked(withID(r), 200), "\r\n", "\n")
		}},
		{"interim 100 Continue", func(r []byte) string {
			return "HTTP/1.1 100 Continue\r\n\r\n" + httpReply(200, "OK", te, chunked(withID(r), 33))
		}},
		{"no RelatesTo is accepted", func([]byte) string {
			return httpReply(200, "OK", te, chunked(relatesTo.ReplaceAllString(body, ""), 50))
		}},
		{"RelatesTo with another prefix", func(r []byte) string {
			b := strings.NewReplacer("<b:RelatesTo>", "<wsa:RelatesTo xmlns:wsa=\"http://schemas.xmlsoap.org/ws/2004/08/addressing\"> ",
				"</b:RelatesTo>", " </wsa:RelatesTo>").Replace(withID(r))
			return httpReply(200, "OK", te, chunked(b))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			relay := newFakeRelay(t, rawFor(tt.reply))
			if err := getSettings(newClient(t, relay, wsman.Options{Attempts: 1})); err != nil {
				t.Fatal(err)
			}
			relay.done()
		})
	}
}

func TestContext(t *testing.T) {
	t.Run("cancel while AMT is silent", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		var cancelledAt time.Time
		relay := newFakeRelay(t, func(rctx context.Context, req []byte) ([]byte, error) {
			cancelledAt = time.Now()
			cancel() // the flow's session ends while AMT is silent
			return silent()(rctx, req)
		})
		c := newClient(t, relay, wsman.Options{RequestTimeout: time.Minute}).WithContext(ctx)
		err := getSettings(c)
		if !errors.Is(err, context.Canceled) || errors.Is(err, wsman.ErrTimeout) {
			t.Errorf("error %v, want context.Canceled and not ErrTimeout", err)
		}
		if d := time.Since(cancelledAt); d > 5*time.Second {
			t.Errorf("Post returned %v after the cancel", d)
		}
		if relay.calls() != 1 {
			t.Errorf("relay calls = %d, want 1 (no retry after cancel)", relay.calls())
		}
	})
	t.Run("session deadline before the request timeout", func(t *testing.T) {
		relay := newFakeRelay(t, silent())
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
		defer cancel()
		err := getSettings(newClient(t, relay, wsman.Options{RequestTimeout: time.Minute}).WithContext(ctx))
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("error %v, want context.DeadlineExceeded", err)
		}
	})
	t.Run("already cancelled", func(t *testing.T) {
		relay := newFakeRelay(t)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		err := getSettings(newClient(t, relay, wsman.Options{}).WithContext(ctx))
		if !errors.Is(err, context.Canceled) {
			t.Errorf("error %v, want context.Canceled", err)
		}
		if relay.calls() != 0 {
			t.Errorf("relay called %d times", relay.calls())
		}
	})
	t.Run("cancel while waiting for the request slot", func(t *testing.T) {
		relay := newFakeRelay(t, silent())
		base := newClient(t, relay, wsman.Options{RequestTimeout: time.Minute})
		firstCtx, stopFirst := context.WithCancel(context.Background())
		firstDone := make(chan error, 1)
		go func() { firstDone <- getSettings(base.WithContext(firstCtx)) }()
		for relay.calls() == 0 {
			time.Sleep(time.Millisecond)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
		defer cancel()
		if err := getSettings(base.WithContext(ctx)); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("waiting Post: %v, want context.DeadlineExceeded", err)
		}
		stopFirst()
		if err := <-firstDone; !errors.Is(err, context.Canceled) {
			t.Errorf("first Post: %v, want context.Canceled", err)
		}
		if relay.calls() != 1 {
			t.Errorf("relay calls = %d, want 1", relay.calls())
		}
	})
}

// TestConcurrentPosts shares one session between goroutines: requests must go one at a time and every nonce
// count must be used once.
func TestConcurrentPosts(t *testing.T) {
	ok := soapOK(t, "amt-replies/amt/general/get.xml", 256)
	var mu sync.Mutex
	ncs := map[string]bool{}
	relay := newFakeRelay(t)
	relay.loop = func(ctx context.Context, req []byte) ([]byte, error) {
		f, signed := authOf(t, string(req))
		if !signed {
			return []byte(unauthorizedReply("WWW-Authenticate", `Digest realm="`+testRealm+`", nonce="n", qop="auth"`)), nil
		}
		mu.Lock()
		if ncs[f.nc] {
			t.Errorf("nc %s used twice", f.nc)
		}
		ncs[f.nc] = true
		mu.Unlock()
		return ok(ctx, req)
	}
	base := newClient(t, relay, wsman.Options{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			c := base.WithContext(t.Context())
			for range 5 {
				if err := getSettings(c); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if len(ncs) < 40 {
		t.Errorf("%d signed requests, want at least 40", len(ncs))
	}
}

// TestLibraryEndToEnd drives the session's first calls through go-wsman-messages as a flow would.
func TestLibraryEndToEnd(t *testing.T) {
	relay := newFakeRelay(t,
		unauthorized("n1"),
		soapOK(t, "amt-replies/amt/general/get.xml", 17, 250, 3),
		soapOK(t, "amt-replies/ips/hostbasedsetup/get.xml", 40),
	)
	c := newClient(t, relay, wsman.Options{}).WithContext(t.Context())
	amtMsgs, ipsMsgs := amt.NewMessages(c), ips.NewMessages(c)
	_ = cim.NewMessages(c) // compiles against client.WSMan

	gs, err := amtMsgs.GeneralSettings.Get()
	if err != nil {
		t.Fatal(err)
	}
	if gs.Body.GetResponse.DigestRealm != fixtureRealm {
		t.Errorf("DigestRealm = %q", gs.Body.GetResponse.DigestRealm)
	}
	hbs, err := ipsMsgs.HostBasedSetupService.Get()
	if err != nil {
		t.Fatal(err)
	}
	if hbs.Body.GetResponse.CurrentControlMode != 2 || hbs.Body.GetResponse.ConfigurationNonce == "" {
		t.Errorf("host based setup service = %+v", hbs.Body.GetResponse)
	}
	if !c.IsAuthenticated() {
		t.Error("not authenticated")
	}
	relay.done()
}

func TestTCPMethodsNotSupported(t *testing.T) {
	c := newClient(t, newFakeRelay(t), wsman.Options{})
	_, recvErr := c.Receive()
	_, certErr := c.GetServerCertificate()
	for _, err := range []error{c.Connect(), c.Send([]byte("x")), recvErr, c.CloseConnection(), certErr} {
		if !errors.Is(err, wsman.ErrNotSupported) || !strings.Contains(err.Error(), "not supported over the agent relay") {
			t.Errorf("error %v", err)
		}
	}
}

func TestPostRejects(t *testing.T) {
	tests := []struct {
		name     string
		uuid     string
		creds    wsman.Credentials
		steps    []step
		msg      string
		wantText string
	}{
		{"empty message", testUUID, lsa, nil, "", "empty message"},
		{"UUID with CRLF", "x\r\nEvil: 1", lsa, nil, getEnvelope, "invalid device address"},
		{"username with a quote", testUUID, wsman.Credentials{Username: `ad"min`, Password: lsaPassword},
			nil, getEnvelope, "username holds characters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			relay := newFakeRelay(t, tt.steps...)
			_, err := wsman.NewClient(relay, tt.uuid, tt.creds, wsman.Options{}).Post(tt.msg)
			if err == nil || !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("error %v, want %q", err, tt.wantText)
			}
			assertNoSecrets(t, err)
			relay.done()
		})
	}
}

func TestShortAction(t *testing.T) {
	tests := []struct {
		action, resourceURI, want string
	}{
		{"http://intel.com/wbem/wscim/1/ips-schema/1/IPS_HostBasedSetupService/AdminSetup", "", "IPS_HostBasedSetupService.AdminSetup"},
		{"http://intel.com/wbem/wscim/1/amt-schema/1/AMT_SetupAndConfigurationService/SetMEBxPassword",
			"http://intel.com/wbem/wscim/1/amt-schema/1/AMT_SetupAndConfigurationService", "AMT_SetupAndConfigurationService.SetMEBxPassword"},
		{"http://schemas.xmlsoap.org/ws/2004/09/transfer/Get", "http://intel.com/wbem/wscim/1/amt-schema/1/AMT_GeneralSettings", "AMT_GeneralSettings.Get"},
		{"http://schemas.xmlsoap.org/ws/2004/09/transfer/Get", "", "Get"},
		{"http://schemas.xmlsoap.org/ws/2004/09/enumeration/Pull", "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_WiFiPort", "CIM_WiFiPort.Pull"},
		{"http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_BootConfigSetting/ChangeBootOrder", "", "CIM_BootConfigSetting.ChangeBootOrder"},
		{"", "", "unknown action"},
		{"Get", "", "Get"},
	}
	for _, tt := range tests {
		got := wsman.ShortActionFor(tt.action, tt.resourceURI)
		if got != tt.want {
			t.Errorf("ShortActionFor(%q, %q) = %q, want %q", tt.action, tt.resourceURI, got, tt.want)
		}
		if tt.resourceURI == "" {
			if got := wsman.ShortAction(tt.action); got != tt.want {
				t.Errorf("ShortAction(%q) = %q, want %q", tt.action, got, tt.want)
			}
		}
	}
}

// BenchmarkPost measures one signed request: build, digest, relay hand-off, reply parse and checks.
func BenchmarkPost(b *testing.B) {
	body := relatesTo.ReplaceAllString(fixture(b, "amt-replies/amt/general/get.xml"), "${1}0${2}")
	ok := []byte(httpReply(200, "OK", append(amtHeaders, "Transfer-Encoding: chunked"), chunked(body, 512)))
	challenge := []byte(unauthorizedReply("WWW-Authenticate", `Digest realm="`+testRealm+`", nonce="n", qop="auth"`))
	relay := newFakeRelay(b)
	relay.loop = func(_ context.Context, req []byte) ([]byte, error) {
		if !strings.Contains(string(req[:40]), "Authorization") {
			return challenge, nil
		}
		return ok, nil
	}
	c := newClient(b, relay, wsman.Options{})
	if _, err := c.Post(getEnvelope); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Post(getEnvelope); err != nil {
			b.Fatal(err)
		}
	}
}
