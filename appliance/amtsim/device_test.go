package amtsim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestNewDeviceDefaultsAndValidation(t *testing.T) {
	d, err := NewDevice(DeviceConfig{})
	if err != nil {
		t.Fatal(err)
	}
	c := d.Config()
	if !validUUID(c.UUID) || !validRealm(c.Realm) || c.LSAUser != "$$OsAdmin" || c.LSAPassword == "" ||
		c.Version == "" || c.Build == "" || c.SKU == "" || !strings.HasPrefix(c.Hostname, "amtsim-") ||
		c.MEBxPassword != "admin" {
		t.Errorf("defaults not filled: %+v", c)
	}
	if s := d.Snapshot(); s.Mode != ModePreProvisioning || s.AdminHA1 != "" {
		t.Errorf("fresh device: %+v", s)
	}

	bad := []struct {
		name string
		cfg  DeviceConfig
	}{
		{"upper-case uuid", DeviceConfig{UUID: strings.ToUpper(testUUID)}},
		{"short uuid", DeviceConfig{UUID: "1234"}},
		{"realm without prefix", DeviceConfig{Realm: "62FFAC181B3F3457C5B3894ED21F3E6E"}},
		{"lower-case realm", DeviceConfig{Realm: strings.ToLower(testRealm)}},
		{"activated without password", DeviceConfig{Mode: ModeACM}},
		{"unknown mode", DeviceConfig{Mode: 3, AdminPassword: "x"}},
		{"bad root hash", DeviceConfig{TrustedRootHashes: []string{"abcd"}}},
		{"non-hex root hash", DeviceConfig{TrustedRootHashes: []string{strings.Repeat("zz", 32)}}},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewDevice(tc.cfg); err == nil {
				t.Error("NewDevice accepted an invalid config")
			}
		})
	}
}

func TestDigestChallengeThenSuccess(t *testing.T) {
	d := simDevice(t, DeviceConfig{Version: "15.0.23", Build: "1706"})
	env := envelopeXML(actionGet, gsURI, "7", "", "")

	r := parseReply(t, mustExchange(t, d, rawRequest(testUUID+":16992", "", env)))
	if r.status != 401 {
		t.Fatalf("unauthenticated request: status %d, want 401", r.status)
	}
	wa := r.header.Get("WWW-Authenticate")
	if !strings.HasPrefix(wa, `Digest realm="`+testRealm+`", nonce="`) || !strings.HasSuffix(wa, `",stale="false",qop="auth"`) {
		t.Errorf("WWW-Authenticate %q is not shaped like AMT's", wa)
	}
	for h, want := range map[string]string{
		"Content-Type": "text/html",
		"Server":       "Intel(R) Active Management Technology 15.0.23.1706",
	} {
		if got := r.header.Get(h); got != want {
			t.Errorf("401 %s = %q, want %q", h, got, want)
		}
	}
	if !bytes.Contains(r.raw, []byte("\r\nConnection: close\r\n")) {
		t.Error("401 without Connection: close")
	}
	if r.header.Get("Content-Length") != fmt.Sprint(len(r.body)) {
		t.Errorf("401 Content-Length %q does not match body length %d", r.header.Get("Content-Length"), len(r.body))
	}
	_, nonce, _ := challengeParams(t, r)

	auth := digestHeader("$$OsAdmin", testLSAPw, testRealm, nonce, 1, "abc123")
	out := mustExchange(t, d, rawRequest(testUUID+":16992", auth, env))
	r = parseReply(t, out)
	if r.status != 200 {
		t.Fatalf("authenticated request: status %d (%s)", r.status, d.Snapshot().LastFailure)
	}
	for _, h := range []string{
		"HTTP/1.1 200 OK\r\n", "\r\nServer: Intel(R) Active Management Technology 15.0.23.1706\r\n",
		"\r\nContent-Type: application/soap+xml; charset=UTF-8\r\n", "\r\nTransfer-Encoding: chunked\r\n",
		"\r\nX-Frame-Options: DENY\r\n", "\r\nConnection: close\r\n",
	} {
		if !bytes.Contains(out, []byte(h)) {
			t.Errorf("httpReply lacks %q", h)
		}
	}
	if n := countChunks(out); n < 2 {
		t.Errorf("httpReply body in %d chunk(s), want several", n)
	}
	if got := xmlValue(t, r.body, "RelatesTo"); got != "7" {
		t.Errorf("RelatesTo %q, want 7", got)
	}
	if got := xmlValue(t, r.body, "Action"); got != nsTransfer+"/GetResponse" {
		t.Errorf("Action %q", got)
	}
	if got := xmlValue(t, r.body, "MessageID"); !strings.HasPrefix(got, "uuid:00000000-8086-8086-8086-") || len(got) != 41 {
		t.Errorf("MessageID %q", got)
	}
	if got := xmlValue(t, r.body, "DigestRealm"); got != testRealm {
		t.Errorf("DigestRealm %q", got)
	}

	// The nonce stays valid for later requests (nc increasing), as AMT keeps it across connections.
	auth = digestHeader("$$OsAdmin", testLSAPw, testRealm, nonce, 2, "def456")
	if r := parseReply(t, mustExchange(t, d, rawRequest(testUUID+":16992", auth, env))); r.status != 200 {
		t.Errorf("second request with the same nonce: status %d", r.status)
	}
	s := d.Snapshot()
	if s.Requests != 3 || len(s.Actions) != 2 || s.Actions[0] != actionGet {
		t.Errorf("Requests %d Actions %v", s.Requests, s.Actions)
	}
}

func mustExchange(t testing.TB, d *Device, raw []byte) []byte {
	t.Helper()
	out, err := d.Exchange(context.Background(), raw)
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	return out
}

// countChunks counts the data chunks of a chunked reply.
func countChunks(raw []byte) int {
	_, body, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
	n := 0
	for len(body) > 0 {
		line, rest, ok := bytes.Cut(body, []byte("\r\n"))
		if !ok {
			return n
		}
		var size int
		if _, err := fmt.Sscanf(string(line), "%x", &size); err != nil || size == 0 || size+2 > len(rest) {
			return n
		}
		n++
		body = rest[size+2:]
	}
	return n
}

// freshNonce makes the device issue a nonce.
func freshNonce(t testing.TB, d *Device) string {
	t.Helper()
	r := parseReply(t, mustExchange(t, d, rawRequest(d.cfg.UUID+":16992", "", envelopeXML(actionGet, gsURI, "1", "", ""))))
	if r.status != 401 {
		t.Fatalf("want 401, got %d", r.status)
	}
	_, nonce, _ := challengeParams(t, r)
	return nonce
}

func TestDigestRules(t *testing.T) {
	env := envelopeXML(actionGet, gsURI, "1", "", "")
	tests := []struct {
		name      string
		mode      Mode
		auth      func(d *Device, nonce string) string
		wantCode  int
		wantStale string
	}{
		{"LSA accepted before activation", ModePreProvisioning, func(d *Device, n string) string {
			return digestHeader("$$OsAdmin", testLSAPw, testRealm, n, 1, "x")
		}, 200, ""},
		{"unquoted qop and nc accepted", ModePreProvisioning, func(d *Device, n string) string {
			h := digestHeader("$$OsAdmin", testLSAPw, testRealm, n, 1, "x")
			return strings.NewReplacer(`qop="auth"`, "qop=auth", `nc="00000001"`, "nc=00000001").Replace(h)
		}, 200, ""},
		{"spaces after commas and algorithm=MD5 accepted", ModePreProvisioning, func(d *Device, n string) string {
			h := digestHeader("$$OsAdmin", testLSAPw, testRealm, n, 1, "x")
			return strings.ReplaceAll(h, `",`, `", `) + `, algorithm=MD5`
		}, 200, ""},
		{"wrong LSA password", ModePreProvisioning, func(d *Device, n string) string {
			return digestHeader("$$OsAdmin", "wrong", testRealm, n, 1, "x")
		}, 401, "false"},
		{"admin before activation", ModePreProvisioning, func(d *Device, n string) string {
			return digestHeader("admin", "Passw0rd!", testRealm, n, 1, "x")
		}, 401, "false"},
		{"LSA after activation", ModeACM, func(d *Device, n string) string {
			return digestHeader("$$OsAdmin", testLSAPw, testRealm, n, 1, "x")
		}, 401, "false"},
		{"admin after activation", ModeACM, func(d *Device, n string) string {
			return digestHeader("admin", "Passw0rd!", testRealm, n, 1, "x")
		}, 200, ""},
		{"wrong admin password", ModeCCM, func(d *Device, n string) string {
			return digestHeader("admin", "Passw0rd?", testRealm, n, 1, "x")
		}, 401, "false"},
		{"wrong realm", ModePreProvisioning, func(d *Device, n string) string {
			return digestHeader("$$OsAdmin", testLSAPw, "Digest:00000000000000000000000000000000", n, 1, "x")
		}, 401, "false"},
		{"forged nonce", ModePreProvisioning, func(d *Device, n string) string {
			return digestHeader("$$OsAdmin", testLSAPw, testRealm, "B9AX94iAAAAAAAAAx6rrSfPHGUrx/3uA", 1, "x")
		}, 401, "false"},
		{"digest uri differs from request", ModePreProvisioning, func(d *Device, n string) string {
			return strings.Replace(digestHeader("$$OsAdmin", testLSAPw, testRealm, n, 1, "x"), `uri="/wsman"`, `uri="/other"`, 1)
		}, 401, "false"},
		{"qop missing", ModePreProvisioning, func(d *Device, n string) string {
			return strings.Replace(digestHeader("$$OsAdmin", testLSAPw, testRealm, n, 1, "x"), `qop="auth",`, ``, 1)
		}, 401, "false"},
		{"basic auth", ModePreProvisioning, func(d *Device, n string) string {
			return "Basic JCRPc0FkbWluOnNlY3JldA=="
		}, 401, "false"},
		{"expired nonce with right credentials", ModePreProvisioning, func(d *Device, n string) string {
			for i := 0; i < nonceSlots; i++ {
				freshNonce(t, d)
			}
			return digestHeader("$$OsAdmin", testLSAPw, testRealm, n, 1, "x")
		}, 401, "true"},
		{"expired nonce with wrong credentials", ModePreProvisioning, func(d *Device, n string) string {
			for i := 0; i < nonceSlots; i++ {
				freshNonce(t, d)
			}
			return digestHeader("$$OsAdmin", "wrong", testRealm, n, 1, "x")
		}, 401, "false"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DeviceConfig{Mode: tc.mode}
			if tc.mode != ModePreProvisioning {
				cfg.AdminPassword = "Passw0rd!"
			}
			d := simDevice(t, cfg)
			nonce := freshNonce(t, d)
			r := parseReply(t, mustExchange(t, d, rawRequest(testUUID+":16992", tc.auth(d, nonce), env)))
			if r.status != tc.wantCode {
				t.Fatalf("status %d, want %d (%s)", r.status, tc.wantCode, d.Snapshot().LastFailure)
			}
			if tc.wantCode == 401 {
				if _, _, stale := challengeParams(t, r); stale != tc.wantStale {
					t.Errorf("stale=%q, want %q", stale, tc.wantStale)
				}
			}
		})
	}
}

func TestDigestNonceCountMustIncrease(t *testing.T) {
	d := simDevice(t, DeviceConfig{})
	env := envelopeXML(actionGet, gsURI, "1", "", "")
	nonce := freshNonce(t, d)
	for i, tc := range []struct {
		nc   int
		want int
	}{{5, 200}, {5, 401}, {4, 401}, {6, 200}} {
		auth := digestHeader("$$OsAdmin", testLSAPw, testRealm, nonce, tc.nc, fmt.Sprint("c", i))
		if r := parseReply(t, mustExchange(t, d, rawRequest(testUUID+":16992", auth, env))); r.status != tc.want {
			t.Errorf("step %d nc=%d: status %d, want %d", i, tc.nc, r.status, tc.want)
		}
	}
}

func TestHTTPFraming(t *testing.T) {
	env := envelopeXML(actionGet, gsURI, "1", "", "")
	tests := []struct {
		name string
		raw  func(auth string) string
		want int // HTTP status; 0 = no httpReply at all
	}{
		{"RPS layout", func(a string) string { return string(rawRequest(testUUID+":16992", a, env)) }, 200},
		{"Content-Length body", func(a string) string {
			return "POST /wsman HTTP/1.1\r\nHost: " + testUUID + ":16992\r\nAuthorization: " + a +
				"\r\nContent-Type: application/soap+xml;charset=UTF-8\r\nContent-Length: " + fmt.Sprint(len(env)) + "\r\n\r\n" + env
		}, 200},
		{"lower-case hex, extension and several chunks", func(a string) string {
			half := len(env) / 2
			return "POST /wsman HTTP/1.1\r\nAuthorization: " + a + "\r\nHost: " + testUUID + ":16992\r\nTransfer-Encoding: chunked\r\n\r\n" +
				fmt.Sprintf("%x;ext=1\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n", half, env[:half], len(env)-half, env[half:])
		}, 200},
		{"wrong Host", func(a string) string { return string(rawRequest("127.0.0.1:16992", a, env)) }, 400},
		{"wrong port", func(a string) string { return string(rawRequest(testUUID+":16993", a, env)) }, 400},
		{"missing Host", func(a string) string {
			return strings.Replace(string(rawRequest(testUUID+":16992", a, env)), "Host: "+testUUID+":16992\r\n", "", 1)
		}, 400},
		{"chunk size one byte short", func(a string) string {
			return strings.Replace(string(rawRequest(testUUID+":16992", a, env)), fmt.Sprintf("%X\r\n", len(env)), fmt.Sprintf("%X\r\n", len(env)-1), 1)
		}, 400},
		{"chunk size one byte long", func(a string) string {
			return strings.Replace(string(rawRequest(testUUID+":16992", a, env)), fmt.Sprintf("%X\r\n", len(env)), fmt.Sprintf("%X\r\n", len(env)+1), 1)
		}, 400},
		{"chunk size far too long: firmware waits", func(a string) string {
			return strings.Replace(string(rawRequest(testUUID+":16992", a, env)), fmt.Sprintf("%X\r\n", len(env)), fmt.Sprintf("%X\r\n", len(env)+100), 1)
		}, 0},
		{"chunk size counted in UTF-16 units", func(a string) string {
			body := strings.Replace(env, "<a:To>/wsman</a:To>", "<a:To>/wsman</a:To><a:Note>Café ü</a:Note>", 1)
			req := string(rawRequest(testUUID+":16992", a, body))
			return strings.Replace(req, fmt.Sprintf("%X\r\n", len(body)), fmt.Sprintf("%X\r\n", len([]rune(body))), 1)
		}, 400},
		{"non-ASCII body with byte-length chunk", func(a string) string {
			body := strings.Replace(env, "<a:To>/wsman</a:To>", "<a:To>/wsman</a:To><a:Note>Café ü</a:Note>", 1)
			return string(rawRequest(testUUID+":16992", a, body))
		}, 200},
		{"headers not terminated", func(a string) string { return "POST /wsman HTTP/1.1\r\nHost: x\r\n" }, 0},
		{"GET", func(a string) string { return "GET /wsman HTTP/1.1\r\nHost: " + testUUID + ":16992\r\n\r\n" }, 405},
		{"other path", func(a string) string {
			return strings.Replace(string(rawRequest(testUUID+":16992", a, env)), "POST /wsman ", "POST /index.htm ", 1)
		}, 404},
		{"HTTP/1.0", func(a string) string {
			return strings.Replace(string(rawRequest(testUUID+":16992", a, env)), "HTTP/1.1\r\n", "HTTP/1.0\r\n", 1)
		}, 400},
		{"gzip transfer coding", func(a string) string {
			return strings.Replace(string(rawRequest(testUUID+":16992", a, env)), "chunked", "gzip", 1)
		}, 501},
		{"chunked and Content-Length", func(a string) string {
			return strings.Replace(string(rawRequest(testUUID+":16992", a, env)), "Connection: close", "Content-Length: 5", 1)
		}, 400},
		{"header without colon", func(a string) string {
			return strings.Replace(string(rawRequest(testUUID+":16992", a, env)), "Connection: close", "Connection close", 1)
		}, 400},
		{"not XML", func(a string) string { return string(rawRequest(testUUID+":16992", a, "hello")) }, 400},
		{"SOAP 1.1 envelope", func(a string) string {
			return string(rawRequest(testUUID+":16992", a, strings.Replace(env, "http://www.w3.org/2003/05/soap-envelope", "http://schemas.xmlsoap.org/soap/envelope/", 1)))
		}, 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := simDevice(t, DeviceConfig{})
			auth := digestHeader("$$OsAdmin", testLSAPw, testRealm, freshNonce(t, d), 1, "x")
			out := mustExchange(t, d, []byte(tc.raw(auth)))
			if tc.want == 0 {
				if out != nil {
					t.Fatalf("want no reply, got\n%s", out)
				}
				return
			}
			if r := parseReply(t, out); r.status != tc.want {
				t.Fatalf("status %d, want %d (%s)\n%s", r.status, tc.want, d.Snapshot().LastFailure, out)
			}
		})
	}
}

func TestSOAPFaults(t *testing.T) {
	tests := []struct {
		name, action, uri, body string
		mode                    Mode
		subcode                 string
	}{
		{"unknown class", actionGet, amtSchema + "AMT_NoSuchClass", "", ModeACM, "b:DestinationUnreachable"},
		{"unknown method", hbsURI + "/Frobnicate", hbsURI, "", ModeACM, "b:ActionNotSupported"},
		{"Create", actionCreate, gsURI, "", ModeACM, "b:ActionNotSupported"},
		{"LSA may not configure redirection", actionGet, amtSchema + "AMT_RedirectionService", "", ModePreProvisioning, "e:AccessDenied"},
		{"LSA may not write general settings", actionPut, gsURI, `<h:AMT_GeneralSettings xmlns:h="` + gsURI + `"><h:HostName>x</h:HostName></h:AMT_GeneralSettings>`, ModePreProvisioning, "e:AccessDenied"},
		{"Put with the wrong body", actionPut, gsURI, `<h:Other xmlns:h="` + gsURI + `"/>`, ModeACM, "e:InvalidRepresentation"},
		{"Pull with an unknown context", actionPull, gsURI, `<Pull xmlns="` + nsEnum + `"><EnumerationContext>01000000-0000-0000-0000-000000000000</EnumerationContext></Pull>`, ModeACM, "c:InvalidEnumerationContext"},
		{"Delete of nothing", actionDelete, amtSchema + "AMT_PublicKeyCertificate", "", ModeACM, "b:DestinationUnreachable"},
		{"wrong method input element", hbsURI + "/Setup", hbsURI, `<h:AdminSetup_INPUT xmlns:h="` + hbsURI + `"/>`, ModePreProvisioning, "e:SchemaValidationError"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DeviceConfig{Mode: tc.mode}
			user, pass := "$$OsAdmin", testLSAPw
			if tc.mode != ModePreProvisioning {
				cfg.AdminPassword, user, pass = "Passw0rd!", "admin", "Passw0rd!"
			}
			d := simDevice(t, cfg)
			r := newRawClient(t, d, user, pass).call(tc.action, tc.uri, "", tc.body)
			if r.status != 400 {
				t.Fatalf("status %d, want 400\n%s", r.status, r.body)
			}
			if got := xmlValue(t, r.body, "RelatesTo"); got != "1" {
				t.Errorf("RelatesTo %q", got)
			}
			vals := xmlValues(t, r.body, "Value")
			if len(vals) != 2 || vals[0] != "a:Sender" || vals[1] != tc.subcode {
				t.Errorf("fault code %v, want [a:Sender %s]", vals, tc.subcode)
			}
			if xmlValue(t, r.body, "Text") == "" {
				t.Error("fault without reason text")
			}
		})
	}
}

func TestFaultInjection(t *testing.T) {
	setupBody := func(d *Device) string {
		return methodXML(hbsURI, "Setup", "NetAdminPassEncryptionType", "2",
			"NetworkAdminPassword", md5hexT("admin:"+testRealm+":Passw0rd!"))
	}
	tests := []struct {
		name     string
		fault    Fault
		check    func(t *testing.T, out []byte)
		wantMode Mode
	}{
		{"drop: handled, no reply", Fault{Drop: true}, func(t *testing.T, out []byte) {
			if out != nil {
				t.Errorf("want no reply, got %q", out)
			}
		}, ModeCCM},
		{"unheard: no reply, no change", Fault{Unheard: true}, func(t *testing.T, out []byte) {
			if out != nil {
				t.Errorf("want no reply, got %q", out)
			}
		}, ModePreProvisioning},
		{"truncate: handled, httpReply cut", Fault{Truncate: true}, func(t *testing.T, out []byte) {
			if !bytes.HasPrefix(out, []byte("HTTP/1.1 200 OK\r\n")) || bytes.HasSuffix(out, []byte("0\r\n\r\n")) {
				t.Errorf("httpReply not truncated mid-body:\n%s", out)
			}
		}, ModeCCM},
		{"status 500: not handled", Fault{Status: 500}, func(t *testing.T, out []byte) {
			if r := parseReply(t, out); r.status != 500 || !bytes.Contains(out, []byte("\r\nConnection: close\r\n")) {
				t.Errorf("status %d", r.status)
			}
		}, ModePreProvisioning},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var calls []Call
			var d *Device
			d = simDevice(t, DeviceConfig{Fault: func(c Call) Fault {
				calls = append(calls, c)
				_ = d.Snapshot() // the hook may inspect the device without deadlocking
				if c.Action == hbsURI+"/Setup" {
					return tc.fault
				}
				return Fault{}
			}})
			nonce := freshNonce(t, d)
			auth := digestHeader("$$OsAdmin", testLSAPw, testRealm, nonce, 1, "x")
			out := mustExchange(t, d, rawRequest(testUUID+":16992", auth, envelopeXML(hbsURI+"/Setup", hbsURI, "1", "", setupBody(d))))
			tc.check(t, out)
			if m := d.Snapshot().Mode; m != tc.wantMode {
				t.Errorf("mode %v, want %v", m, tc.wantMode)
			}
			if len(calls) != 2 || calls[0].N != 1 || calls[1].N != 2 || calls[1].Action != hbsURI+"/Setup" || calls[1].ResourceURI != hbsURI {
				t.Errorf("fault hook calls %+v", calls)
			}
		})
	}
}

func TestLatency(t *testing.T) {
	d := simDevice(t, DeviceConfig{Latency: 60 * time.Millisecond})
	raw := rawRequest(testUUID+":16992", "", envelopeXML(actionGet, gsURI, "1", "", ""))
	start := time.Now()
	if out := mustExchange(t, d, raw); out == nil {
		t.Fatal("no reply")
	}
	if el := time.Since(start); el < 60*time.Millisecond {
		t.Errorf("httpReply after %v, want >= 60ms", el)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	start = time.Now()
	out, err := d.Exchange(ctx, raw)
	if !errors.Is(err, context.DeadlineExceeded) || out != nil {
		t.Errorf("Exchange with expiring context = %v, %v", out != nil, err)
	}
	if el := time.Since(start); el > 50*time.Millisecond {
		t.Errorf("cancellation took %v", el)
	}

	done, cancel2 := context.WithCancel(context.Background())
	cancel2()
	if _, err := d.Exchange(done, raw); !errors.Is(err, context.Canceled) {
		t.Errorf("Exchange with cancelled context: %v", err)
	}
}

func TestChunkBoundariesVary(t *testing.T) {
	d := simDevice(t, DeviceConfig{})
	c := newRawClient(t, d, "$$OsAdmin", testLSAPw)
	seen := map[string]bool{}
	for i := 0; i < 5; i++ {
		r := c.get(gsURI)
		_, body, _ := bytes.Cut(r.raw, []byte("\r\n\r\n"))
		line, _, _ := bytes.Cut(body, []byte("\r\n"))
		seen[string(line)] = true
		if len(line) != 4 {
			t.Errorf("chunk size %q is not four hex digits", line)
		}
	}
	if len(seen) < 2 {
		t.Errorf("chunk boundaries never vary: %v", seen)
	}
}

func TestConcurrentExchangeIsSafe(t *testing.T) {
	d := simDevice(t, DeviceConfig{})
	raw := rawRequest(testUUID+":16992", "", envelopeXML(actionGet, gsURI, "1", "", ""))
	done := make(chan struct{})
	for i := 0; i < 8; i++ {
		go func() {
			defer func() { done <- struct{}{} }()
			for j := 0; j < 50; j++ {
				_, _ = d.Exchange(context.Background(), raw)
				_ = d.Snapshot()
			}
		}()
	}
	for i := 0; i < 8; i++ {
		<-done
	}
	if n := d.Snapshot().Requests; n != 400 {
		t.Errorf("Requests %d, want 400", n)
	}
}

func BenchmarkExchangeGet(b *testing.B) {
	d := simDevice(b, DeviceConfig{})
	nonce := freshNonce(b, d)
	env := envelopeXML(actionGet, gsURI, "1", "", "")
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		auth := digestHeader("$$OsAdmin", testLSAPw, testRealm, nonce, i+1, "x")
		if out, _ := d.Exchange(context.Background(), rawRequest(testUUID+":16992", auth, env)); out == nil {
			b.Fatal("no reply")
		}
	}
}

// TestDeviceFootprint guards the load-generator use: thousands of devices in one process.
func TestDeviceFootprint(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation measurement")
	}
	const n = 2000
	devs := make([]*Device, n)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range devs {
		d, err := NewDevice(DeviceConfig{DHCPDNSSuffix: "example.com", TrustedRootHashes: []string{strings.Repeat("ab", 32)}})
		if err != nil {
			t.Fatal(err)
		}
		devs[i] = d
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := (after.HeapAlloc - before.HeapAlloc) / n
	t.Logf("%d bytes per idle device", per)
	if per > 4096 {
		t.Errorf("%d bytes per idle device, want <= 4 KiB", per)
	}
	runtime.KeepAlive(devs)
}
