package wsman

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

const envelope = `<a:Envelope xmlns:a="http://www.w3.org/2003/05/soap-envelope" xmlns:b="http://schemas.xmlsoap.org/ws/2004/08/addressing"><a:Header><b:RelatesTo>7</b:RelatesTo></a:Header><a:Body><x/></a:Body></a:Envelope>`

func TestParseResponse(t *testing.T) {
	tests := []struct {
		name       string
		raw        string
		wantStatus int // 0: no head
		wantBody   string
		wantErr    bool // wraps ErrTruncated
	}{
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", 200, "abcde", false},
		{"chunked, size with extension and spaces", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3 ;a=b\r\nabc\r\n0\r\n\r\n", 200, "abc", false},
		{"chunked, encodings list", "HTTP/1.1 200 OK\r\nTransfer-Encoding: identity, Chunked\r\n\r\n1\r\na\r\n0\r\n", 200, "a", false},
		{"Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc", 200, "abc", false},
		{"repeated equal Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\nabcd", 200, "abc", false},
		{"read to end", "HTTP/1.1 500 Internal Server Error\r\nServer: x\r\n\r\nabc", 500, "abc", false},
		{"status line without reason", "HTTP/1.1 404\r\n\r\n", 404, "", false},
		{"folded header", "HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 1\r\n\r\nz", 200, "z", false},
		{"empty", "", 0, "", true},
		{"no status line end", "HTTP/1.1 200 OK", 0, "", true},
		{"not HTTP", "<html>hello</html>\r\n\r\n", 0, "", true},
		{"bad status code", "HTTP/1.1 2x0 OK\r\n\r\n", 0, "", true},
		{"status code out of range", "HTTP/1.1 999 What\r\n\r\n", 0, "", true},
		{"header block cut", "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\n", 0, "", true},
		{"bad header line", "HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", 0, "", true},
		{"continuation first", "HTTP/1.1 200 OK\r\n folded\r\n\r\n", 0, "", true},
		{"chunked without last chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n", 200, "", true},
		{"chunk cut short", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nA\r\nabc", 200, "", true},
		{"chunk longer than its size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n", 200, "", true},
		{"chunk size not hex", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n", 200, "", true},
		{"chunk size overflow", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFF\r\nabc\r\n0\r\n\r\n", 200, "", true},
		{"negative size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\nabc\r\n0\r\n\r\n", 200, "", true},
		{"chunk size line cut", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0", 200, "", true},
		{"chunk data ends without CRLF", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc", 200, "", true},
		{"short Content-Length body", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", 200, "", true},
		{"bad Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\nabc", 200, "", true},
		{"conflicting Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 200, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := parseResponse([]byte(tt.raw))
			if tt.wantErr != (err != nil) {
				t.Fatalf("error = %v, want error %v", err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrTruncated) {
				t.Errorf("error %v does not wrap ErrTruncated", err)
			}
			status := 0
			if resp != nil {
				status = resp.status
			}
			if status != tt.wantStatus {
				t.Errorf("status = %d, want %d", status, tt.wantStatus)
			}
			if err == nil && string(resp.body) != tt.wantBody {
				t.Errorf("body = %q, want %q", resp.body, tt.wantBody)
			}
		})
	}
}

func TestInspectEnvelope(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		wantRel   string
		wantHas   bool
		wantFault bool
		wantErr   bool
	}{
		{"RelatesTo", envelope, "7", true, false, false},
		{"default namespace", `<?xml version="1.0"?><Envelope xmlns="http://www.w3.org/2003/05/soap-envelope"><Header><RelatesTo xmlns="urn:x"> 9 </RelatesTo></Header><Body/></Envelope>`, "9", true, false, false},
		{"no RelatesTo", `<a:Envelope xmlns:a="x"><a:Header/><a:Body/></a:Envelope>`, "", false, false, false},
		{"RelatesTo outside Header is ignored", `<a:Envelope xmlns:a="x"><a:Body><a:RelatesTo>5</a:RelatesTo></a:Body></a:Envelope>`, "", false, false, false},
		{"fault", `<a:Envelope xmlns:a="x"><a:Body><a:Fault/></a:Body></a:Envelope>`, "", false, true, false},
		{"cut short", envelope[:len(envelope)-20], "", false, false, true},
		{"empty", "", "", false, false, true},
		{"not an envelope", `<html/>`, "", false, false, true},
		{"two roots", envelope + envelope, "", false, false, true},
		{"text after root", envelope + "junk", "", false, false, true},
		{"mismatched tags", `<a:Envelope xmlns:a="x"><a:Body></a:Header></a:Envelope>`, "", false, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info, err := inspectEnvelope([]byte(tt.body))
			if tt.wantErr != (err != nil) {
				t.Fatalf("error = %v, want error %v", err, tt.wantErr)
			}
			if err != nil {
				if !errors.Is(err, ErrTruncated) {
					t.Errorf("error %v does not wrap ErrTruncated", err)
				}
				return
			}
			if info.relatesTo != tt.wantRel || info.hasRelatesTo != tt.wantHas || info.fault != tt.wantFault {
				t.Errorf("info = %+v", info)
			}
		})
	}
}

func TestParseChallenge(t *testing.T) {
	const realm = "Digest:727734D63A1FC0423736E48DA554E462"
	tests := []struct {
		name    string
		values  []string
		want    challenge
		wantErr string
	}{
		{"AMT", []string{`Digest realm="` + realm + `", nonce="B9AX94iAAAAAAAAAx6rrSfPHGUrx/3uA",stale="false",qop="auth"`},
			challenge{realm: realm, nonce: "B9AX94iAAAAAAAAAx6rrSfPHGUrx/3uA", stale: "false", qop: "auth"}, ""},
		{"qop list", []string{`Digest realm="r", nonce="n", qop="auth,auth-int"`},
			challenge{realm: "r", nonce: "n", qop: "auth,auth-int"}, ""},
		{"unquoted qop list", []string{`Digest qop=auth-int,auth, realm=r,nonce=n`},
			challenge{realm: "r", nonce: "n", qop: "auth-int,auth"}, ""},
		{"stray commas and spaces", []string{` ,Digest  ,, realm = "r" ,,nonce="n",  qop="auth" , `},
			challenge{realm: "r", nonce: "n", qop: "auth"}, ""},
		{"lower-case scheme and keys, escapes", []string{`digest REALM="r\"x", Nonce="n\\"`},
			challenge{}, "cannot be echoed"},
		{"escaped harmless character", []string{`Digest realm="a\bc", nonce="n"`},
			challenge{realm: "abc", nonce: "n"}, ""},
		{"no qop", []string{`Digest realm="r", nonce="n"`}, challenge{realm: "r", nonce: "n"}, ""},
		{"algorithm MD5 and opaque", []string{`Digest realm="r", nonce="n", algorithm=md5, opaque="o"`},
			challenge{realm: "r", nonce: "n", algorithm: "md5", opaque: "o"}, ""},
		{"Negotiate first in its own header", []string{`Negotiate`, `Digest realm="r", nonce="n", qop="auth"`},
			challenge{realm: "r", nonce: "n", qop: "auth"}, ""},
		{"Negotiate token68 then Digest", []string{`Negotiate YIIabc==, Digest realm="r", nonce="n"`},
			challenge{realm: "r", nonce: "n"}, ""},
		{"Digest then Basic", []string{`Digest realm="r", nonce="n", Basic realm="other"`},
			challenge{realm: "r", nonce: "n"}, ""},
		{"first value wins", []string{`Digest realm="r", nonce="n", nonce="m"`}, challenge{realm: "r", nonce: "n"}, ""},
		{"Basic only", []string{`Basic realm="r"`}, challenge{}, "no Digest challenge"},
		{"empty", nil, challenge{}, "no Digest challenge"},
		{"no nonce", []string{`Digest realm="r"`}, challenge{}, "without nonce"},
		{"no realm", []string{`Digest nonce="n"`}, challenge{}, "without realm"},
		{"auth-int only", []string{`Digest realm="r", nonce="n", qop="auth-int"`}, challenge{}, "does not offer auth"},
		{"SHA-256", []string{`Digest realm="r", nonce="n", algorithm=SHA-256`}, challenge{}, "not supported"},
		{"header injection", []string{"Digest realm=\"r\", nonce=\"n\r\nX-Evil: 1\""}, challenge{}, "cannot be echoed"},
		{"unterminated quote", []string{`Digest realm="r", nonce="n`}, challenge{}, "unterminated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseChallenges(tt.values)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("challenge = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestAuthorizationRFC2617Example(t *testing.T) {
	// RFC 2617 §3.5, with the "POST /wsman" request line of every AMT request in place of "GET /dir/index.html".
	ch := challenge{realm: "testrealm@host.com", nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093", qop: "auth"}
	got := authorization(Credentials{"Mufasa", "Circle Of Life"}, ch, 1, "0a4f113b")
	ha1 := md5Hex("Mufasa:testrealm@host.com:Circle Of Life")
	resp := md5Hex(ha1 + ":dcd98b7102dd2f0e8b11d0f600bfb0c093:00000001:0a4f113b:auth:" + md5Hex("POST:/wsman"))
	want := `Digest username="Mufasa",realm="testrealm@host.com",nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",uri="/wsman",qop="auth",response="` +
		resp + `",nc="00000001",cnonce="0a4f113b"`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if ha1 != "939e7578ed9e3c518a452acee763bce9" { // HA1 from RFC 2617 §3.5
		t.Errorf("HA1 = %s", ha1)
	}
	if formatNC(0x1ab) != "000001ab" {
		t.Errorf("formatNC = %s", formatNC(0x1ab))
	}
}

func TestReadHeader(t *testing.T) {
	msg := `<?xml version="1.0" encoding="utf-8"?><Envelope xmlns:a="A" xmlns:w="W"><Header><a:Action>http://schemas.xmlsoap.org/ws/2004/09/enumeration/Pull</a:Action><a:To>/wsman</a:To><w:ResourceURI>http://x/CIM_WiFiPort</w:ResourceURI><a:MessageID>12</a:MessageID><a:ReplyTo><a:Address>anon</a:Address></a:ReplyTo></Header><Body><a:MessageID>99</a:MessageID></Body></Envelope>`
	r := newRequest(msg)
	if r.action != actionPull || r.resourceURI != "http://x/CIM_WiFiPort" || r.messageID != "12" || !r.idempotent || r.name != "CIM_WiFiPort.Pull" {
		t.Errorf("request = %+v", r)
	}
	for _, bad := range []string{"", "not xml", "<Other><Header><Action>x</Action></Header></Other>"} {
		if r := newRequest(bad); r.idempotent || r.messageID != "" || r.name != "unknown action" {
			t.Errorf("newRequest(%q) = %+v", bad, r)
		}
	}
}

func TestFault(t *testing.T) {
	f := parseFault(400, []byte(`<a:Envelope xmlns:a="x"><a:Body><a:Fault><a:Code><a:Value>a:Sender</a:Value><a:Subcode><a:Value>w:InvalidSelectors</a:Value></a:Subcode></a:Code><a:Reason><a:Text xml:lang="en-US">The selectors
   for the resource are not valid.</a:Text><a:Text xml:lang="de">x</a:Text></a:Reason></a:Fault></a:Body></a:Envelope>`))
	want := Fault{Status: 400, Code: "Sender", Subcode: "InvalidSelectors", Reason: "The selectors for the resource are not valid."}
	if f == nil || *f != want {
		t.Fatalf("fault = %+v, want %+v", f, want)
	}
	if got := f.Error(); got != "AMT fault InvalidSelectors: The selectors for the resource are not valid." {
		t.Errorf("Error() = %q", got)
	}
	if got := (&Fault{Code: "Receiver"}).Error(); got != "AMT fault Receiver" {
		t.Errorf("Error() = %q", got)
	}
	for _, body := range []string{"", "<html/>", envelope, "<a:Envelope"} {
		if f := parseFault(500, []byte(body)); f != nil {
			t.Errorf("parseFault(%q) = %+v", body, f)
		}
	}
}

// FuzzParseResponse feeds raw HTTP replies (as an agent might relay them) through every parser a reply meets.
// Seeds: testdata/fuzz/FuzzParseResponse.
func FuzzParseResponse(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n" + envelope[:5] + "\r\n" +
		strconvHex(len(envelope)-5) + "\r\n" + envelope[5:] + "\r\n0\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Digest realm=\"r\", nonce=\"n\",qop=\"auth\"\r\nContent-Length: 0\r\n\r\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		resp, err := parseResponse(raw)
		if err != nil && !errors.Is(err, ErrTruncated) {
			t.Fatalf("error %v does not wrap ErrTruncated", err)
		}
		if resp == nil {
			if err == nil {
				t.Fatal("nil response without error")
			}
			return
		}
		if resp.status < 100 || resp.status > 599 {
			t.Fatalf("status %d", resp.status)
		}
		if len(resp.body) > len(raw) {
			t.Fatalf("body longer than the reply")
		}
		if err == nil && !bytes.Contains(raw, resp.body) && resp.header("Transfer-Encoding") == nil {
			t.Fatalf("unchunked body is not a part of the reply")
		}
		if _, err := parseChallenges(resp.header("WWW-Authenticate")); err == nil {
			// A challenge that parses must be safe to echo.
			ch, _ := parseChallenges(resp.header("WWW-Authenticate"))
			checkEchoable(t, ch)
		}
		if _, err := inspectEnvelope(resp.body); err != nil && !errors.Is(err, ErrTruncated) {
			t.Fatalf("inspectEnvelope error %v does not wrap ErrTruncated", err)
		}
		if f := parseFault(resp.status, resp.body); f != nil {
			_ = f.Error()
		}
	})
}

// FuzzParseChallenge feeds WWW-Authenticate values to the challenge parser and signs with what it accepts.
// Seeds: testdata/fuzz/FuzzParseChallenge.
func FuzzParseChallenge(f *testing.F) {
	f.Add(`Digest realm="Digest:727734D63A1FC0423736E48DA554E462", nonce="B9AX94iAAAAAAAAAx6rrSfPHGUrx/3uA",stale="false",qop="auth"`)
	f.Add(`Negotiate YIIabc==, Digest qop=auth,auth-int realm=r nonce="n\"x"`)
	f.Fuzz(func(t *testing.T, v string) {
		ch, err := parseChallenge(v)
		if err != nil {
			return
		}
		if ch.nonce == "" || ch.realm == "" {
			t.Fatalf("accepted challenge without nonce or realm: %+v", ch)
		}
		checkEchoable(t, ch)
	})
}

// checkEchoable signs with ch and checks that the Authorization value is one well-formed header value.
func checkEchoable(t *testing.T, ch challenge) {
	t.Helper()
	auth := authorization(Credentials{"admin", "P@ssw0rd"}, ch, 1, "0123456789abcdef")
	if strings.ContainsAny(auth, "\r\n\x00") {
		t.Fatalf("Authorization value breaks the header: %q", auth)
	}
	if n := strings.Count(auth, `"`); n != 16 {
		t.Fatalf("Authorization value has %d quotes, want 16: %q", n, auth)
	}
	if strings.Contains(auth, "P@ssw0rd") {
		t.Fatal("password in the Authorization value")
	}
}

func strconvHex(n int) string {
	return string(appendUpperHex(nil, uint64(n)))
}
