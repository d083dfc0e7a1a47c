package agent

import (
	"encoding/base64"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
)

func b64(s string) *string { e := base64.StdEncoding.EncodeToString([]byte(s)); return &e }

const goodPayload = `{"ver":"16.1.25","build":"2000","sku":"16392","uuid":"4c4c4544-0035-5910-804e-b4c04f564433",` +
	`"username":"$$OsAdmin","password":"lsa-secret","currentMode":0,"hostname":"pc1","fqdn":"corp.example.com",` +
	`"client":"RPC","certHashes":["aa"],"ipConfiguration":{"dhcp":true},"hostnameInfo":{"hostname":"pc1"},"progressSupported":true}`

func TestParseMethod(t *testing.T) {
	tests := []struct {
		line string
		want Method
	}{
		{"activate --profile acm", Method{Verb: "activate", Profile: "acm"}},
		{"activate --profile=acm", Method{Verb: "activate", Profile: "acm"}},
		{"activate --profile", Method{Verb: "activate"}},
		{"deactivate --password P@ss -f", Method{Verb: "deactivate", Password: "P@ss", Force: true}},
		{"deactivate -p P@ss --force", Method{Verb: "deactivate", Password: "P@ss", Force: true}},
		{"maintenance -password P --synctime", Method{Verb: "maintenance", Password: "P", Task: "synctime"}},
		{"maintenance -password P --syncclock", Method{Verb: "maintenance", Password: "P", Task: "synctime"}},
		{"maintenance -password P --changepassword N3w! -f", Method{Verb: "maintenance", Password: "P", Task: "changepassword", TaskArg: "N3w!", Force: true}},
		{"maintenance -password P --changepassword", Method{Verb: "maintenance", Password: "P", Task: "changepassword"}},
		{"maintenance -password P --changepassword -Dash3d!pw", Method{Verb: "maintenance", Password: "P", Task: "changepassword", TaskArg: "-Dash3d!pw"}},
		{"maintenance -password P --changepassword -f", Method{Verb: "maintenance", Password: "P", Task: "changepassword", Force: true}},
		{"maintenance -password P --syncip --synchostname", Method{Verb: "maintenance", Password: "P", Task: "syncip"}},
		{"maintenance --unknown x --syncdeviceinfo", Method{Verb: "maintenance", Task: "syncdeviceinfo"}},
		{"response", Method{}},
		{"", Method{}},
		{"  activate   --profile  p1 ", Method{Verb: "activate", Profile: "p1"}},
	}
	for _, tc := range tests {
		if got := ParseMethod(tc.line); got != tc.want {
			t.Errorf("ParseMethod(%q) = %+v, want %+v", tc.line, got, tc.want)
		}
	}
}

func TestVersionSupported(t *testing.T) {
	for v, want := range map[string]bool{"4.0.0": true, "4": true, "4.0": true, "4.0.1": false, "4.1.0": false,
		"3.0.0": false, "5.0.0": false, "x": false, "4.0.0.0": false, "-4": false} {
		if got := versionSupported(v); got != want {
			t.Errorf("versionSupported(%q) = %v, want %v", v, got, want)
		}
	}
}

func TestParseRequestTexts(t *testing.T) {
	env := func(method, payload string, mutate func(*Envelope)) Envelope {
		e := Envelope{Method: method, APIKey: "key", ProtocolVersion: "4.0.0", Status: "ok", Message: "ok", Payload: b64(payload)}
		if mutate != nil {
			mutate(&e)
		}
		return e
	}
	withField := func(k string, v any) string {
		var m map[string]any
		_ = json.Unmarshal([]byte(goodPayload), &m)
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		b, _ := json.Marshal(m)
		return string(b)
	}
	tests := []struct {
		name string
		env  Envelope
		want string // exact text; "" = accepted
	}{
		{"good", env("activate --profile p", goodPayload, nil), ""},
		{"protocol", env("activate --profile p", goodPayload, func(e *Envelope) { e.ProtocolVersion = "5.0.0" }), "Error: protocol version NOT supported: 5.0.0"},
		{"no protocol is fine", env("activate --profile p", goodPayload, func(e *Envelope) { e.ProtocolVersion = "" }), ""},
		{"null payload", env("activate --profile p", "", func(e *Envelope) { e.Payload = nil }), "Error: Invalid payload from client"},
		{"bad base64", env("activate --profile p", "", func(e *Envelope) { s := "!!notbase64"; e.Payload = &s }), "Error: Failed to parse client message payload. The payload is not valid base64: illegal base64 data at input byte 0"},
		{"bad json", env("activate --profile p", `{"ver":`, nil), "Error: Failed to parse client message payload. the JSON ends too early"},
		{"bad json char", env("activate --profile p", `{"ver":x}`, nil), "Error: Failed to parse client message payload. invalid JSON at byte 8"},
		{"wrong type", env("activate --profile p", withField("currentMode", "zero"), nil), `Error: Failed to parse client message payload. field "currentMode" must be int, not string`},
		{"no client", env("activate --profile p", withField("client", nil), nil), "Error: Invalid payload from client"},
		{"no ver", env("activate --profile p", withField("ver", nil), nil), "Error: Invalid payload from client"},
		{"no build", env("activate --profile p", withField("build", nil), nil), "Error: Invalid payload from client"},
		{"no uuid", env("activate --profile p", withField("uuid", nil), nil), "Error: Invalid payload from client"},
		{"short uuid", env("activate --profile p", withField("uuid", "1234"), nil), "cid - uuid not valid length"},
		{"unknown verb", env("configure --profile p", goodPayload, nil), "Device 4c4c4544-0035-5910-804e-b4c04f564433 Not a supported method received from AMT device"},
		{"response first", env("response", goodPayload, nil), "Device 4c4c4544-0035-5910-804e-b4c04f564433 Not a supported method received from AMT device"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := ParseRequest(tc.env, "cid")
			if tc.want == "" {
				if err != nil {
					t.Fatalf("ParseRequest: %v", err)
				}
				if req.Payload.UUID != "4c4c4544-0035-5910-804e-b4c04f564433" || req.Method.Profile != "p" || !req.Payload.ProgressSupported {
					t.Fatalf("request = %+v", req)
				}
				return
			}
			if err == nil || err.Error() != tc.want {
				t.Fatalf("error = %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "lsa-secret") {
				t.Fatal("error text carries the password")
			}
		})
	}
}

func TestLegacyByteArrayUUID(t *testing.T) {
	p := strings.Replace(goodPayload, `"4c4c4544-0035-5910-804e-b4c04f564433"`,
		`[68,69,76,76,53,0,16,89,128,78,180,192,79,86,68,51]`, 1)
	req, err := ParseRequest(Envelope{Method: "activate --profile p", Payload: b64(p)}, "cid")
	if err != nil {
		t.Fatal(err)
	}
	if req.Payload.UUID != "4c4c4544-0035-5910-804e-b4c04f564433" {
		t.Fatalf("uuid = %s", req.Payload.UUID)
	}
}

func TestRequestPassword(t *testing.T) {
	r := Request{Method: Method{Password: "flag"}, Payload: Payload{Password: "payload"}}
	if r.Password() != "payload" {
		t.Fatal("payload password must win")
	}
	r.Payload.Password = ""
	if r.Password() != "flag" {
		t.Fatal("flag password is the fallback")
	}
}

func TestDecodeEnvelope(t *testing.T) {
	if _, err := DecodeEnvelope([]byte(`{"method":"x"} {}`)); err == nil {
		t.Fatal("trailing data accepted")
	}
	if _, err := DecodeEnvelope([]byte(`not json`)); err == nil || !strings.HasPrefix(err.Error(), "Error: Failed to parse client message payload.") {
		t.Fatalf("err = %v", err)
	}
}

func FuzzParseRequest(f *testing.F) {
	f.Add([]byte(`{"method":"activate --profile p","apiKey":"key","appVersion":"v2.52.4","protocolVersion":"4.0.0","status":"ok","message":"ok","fqdn":"","payload":"` +
		*b64(goodPayload) + `","tenantId":""}`))
	f.Add([]byte(`{"method":"deactivate --password x -f","payload":null}`))
	f.Fuzz(func(t *testing.T, frame []byte) {
		env, err := DecodeEnvelope(frame)
		if err != nil {
			return
		}
		req, err := ParseRequest(env, "cid")
		if err == nil && len(req.Payload.UUID) != 36 {
			t.Fatalf("accepted uuid %q", req.Payload.UUID)
		}
	})
}

func FuzzParseMethod(f *testing.F) {
	for _, s := range []string{"activate --profile acm", "deactivate --password P -f", "maintenance -password P --changepassword N"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		m := ParseMethod(line)
		if m.Verb != "" && !strings.HasPrefix(strings.TrimSpace(line), m.Verb) {
			t.Fatalf("verb %q not from %q", m.Verb, line)
		}
	})
}

func TestAdmitNetwork(t *testing.T) {
	srv := NewServer(Config{AllowedNetworks: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16"), netip.MustParsePrefix("fd00::/8")}}, nil)
	for remote, ok := range map[string]bool{"10.1.2.3:5000": true, "10.2.0.1:5000": false, "[::ffff:10.1.0.9]:1": true,
		"[fd00::1]:1": true, "[2001:db8::1]:1": false, "garbage": false} {
		err := srv.admitNetwork(remote)
		if (err == nil) != ok {
			t.Errorf("%s: err = %v, want admitted %v", remote, err, ok)
		}
		if err != nil && remote == "10.2.0.1:5000" && err.Error() != "Error: this box serves agents from 10.1.0.0/16, fd00::/8 only; this PC's address 10.2.0.1 is not among them. Use the provisioning box of this PC's network segment." {
			t.Errorf("text: %q", err)
		}
	}
	if err := NewServer(Config{}, nil).admitNetwork("203.0.113.9:1"); err != nil {
		t.Errorf("no list admits everyone: %v", err)
	}
}
