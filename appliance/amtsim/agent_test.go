package amtsim

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// The tests drive the agent against a fake RPS written here rather than the appliance's server: the point is to
// pin the agent to the protocol reference on its own, so the appliance can then be tested against it.

// fakeRPS is a TLS WebSocket server that runs session for every connection, after reading the first frame.
type fakeRPS struct {
	url string
	tls *tls.Config
	wg  sync.WaitGroup
}

type sessionFunc func(t testing.TB, conn *websocket.Conn, first []byte)

func newFakeRPS(t testing.TB, session sessionFunc) *fakeRPS {
	t.Helper()
	f := &fakeRPS{}
	up := websocket.Upgrader{}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.wg.Add(1)
		defer f.wg.Done()
		conn, err := up.Upgrade(w, r, nil)
		if err != nil {
			t.Errorf("upgrade: %v", err)
			return
		}
		defer conn.Close()
		// Nothing in these tests takes seconds; a stuck session must fail rather than hang the test binary.
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		typ, first, err := conn.ReadMessage()
		if err != nil {
			t.Errorf("read first frame: %v", err)
			return
		}
		if typ != websocket.TextMessage {
			t.Errorf("first frame type %d, want text", typ)
		}
		session(t, conn, first)
	}))
	// Cleanups run last-in first-out: sessions finish (so their t.Errorf calls land) before the server closes.
	t.Cleanup(srv.Close)
	t.Cleanup(f.wg.Wait)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	f.url = "wss" + strings.TrimPrefix(srv.URL, "https") + "/activate"
	f.tls = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return f
}

// testDeviceConfig is a pre-provisioned device with every field the payload depends on set explicitly.
func testDeviceConfig(i int) DeviceConfig {
	return DeviceConfig{
		UUID:              DeviceUUID("agent-test", i),
		LSAUser:           "$$OsAdmin",
		LSAPassword:       fmt.Sprintf("lsa-P@ss-%d", i),
		DHCPDNSSuffix:     "corp.example.com",
		TrustedRootHashes: []string{strings.Repeat("ab", 32)},
		Version:           "16.1.25",
		Build:             "2000",
		SKU:               "16392",
		Hostname:          fmt.Sprintf("pc-%03d", i),
	}
}

func newTestDevice(t testing.TB, cfg DeviceConfig) *Device {
	t.Helper()
	dev, err := NewDevice(cfg)
	if err != nil {
		t.Fatalf("NewDevice: %v", err)
	}
	return dev
}

// checkFirstFrame asserts the frame is what rpc-go sends: every envelope key, in rpc-go's order, with rpc-go's
// constants, and a payload that decodes to the §3 keys. It returns the decoded payload.
func checkFirstFrame(t testing.TB, frame []byte, method string, progress bool) map[string]json.RawMessage {
	t.Helper()
	var env map[string]json.RawMessage
	if err := json.Unmarshal(frame, &env); err != nil {
		t.Fatalf("first frame is not JSON: %v: %s", err, frame)
	}
	wantKeys := []string{"method", "apiKey", "appVersion", "protocolVersion", "status", "message", "fqdn", "payload", "tenantId"}
	if len(env) != len(wantKeys) {
		t.Errorf("first frame has %d keys, want %d: %s", len(env), len(wantKeys), frame)
	}
	m, _ := json.Marshal(method)
	prefix := `{"method":` + string(m) + `,"apiKey":"key","appVersion":"v2.52.4","protocolVersion":"4.0.0","status":"ok","message":"ok","fqdn":"","payload":"`
	if !bytes.HasPrefix(frame, []byte(prefix)) {
		t.Errorf("first frame\n got %s\nwant prefix %s", frame, prefix)
	}
	if !bytes.HasSuffix(frame, []byte(`","tenantId":""}`)) {
		t.Errorf("first frame does not end with the tenantId key: %s", frame)
	}
	var b64 string
	json.Unmarshal(env["payload"], &b64)
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatalf("payload is not standard base64: %v", err)
	}
	var p map[string]json.RawMessage
	if err := json.Unmarshal(raw, &p); err != nil {
		t.Fatalf("payload is not JSON: %v: %s", err, raw)
	}
	want := []string{"ver", "build", "sku", "features", "uuid", "username", "password", "currentMode", "hostname",
		"fqdn", "client", "certHashes", "ipConfiguration", "hostnameInfo"}
	if progress {
		want = append(want, "progressSupported")
	}
	for _, k := range want {
		if _, ok := p[k]; !ok {
			t.Errorf("payload lacks %q: %s", k, raw)
		}
	}
	if len(p) != len(want) {
		t.Errorf("payload has %d keys, want %d: %s", len(p), len(want), raw)
	}
	var ip, hi map[string]json.RawMessage
	json.Unmarshal(p["ipConfiguration"], &ip)
	for _, k := range []string{"dhcp", "static", "ipsync", "ipAddress", "netmask", "gateway", "primaryDns", "secondaryDns"} {
		if _, ok := ip[k]; !ok {
			t.Errorf("ipConfiguration lacks %q", k)
		}
	}
	json.Unmarshal(p["hostnameInfo"], &hi)
	for _, k := range []string{"dnsSuffixOS", "hostname"} {
		if _, ok := hi[k]; !ok {
			t.Errorf("hostnameInfo lacks %q", k)
		}
	}
	return p
}

func str(t testing.TB, raw json.RawMessage) string {
	t.Helper()
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Errorf("not a JSON string: %s", raw)
	}
	return s
}

// generalSettingsGet is the first request of every RPS flow, laid out byte for byte as RPS's wrapIt does (§2.6),
// without Authorization: the firmware must challenge it.
func generalSettingsGet(uuid string) []byte {
	soap := `<?xml version="1.0" encoding="utf-8"?><Envelope xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" ` +
		`xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" ` +
		`xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" xmlns="http://www.w3.org/2003/05/soap-envelope">` +
		`<Header><a:Action>http://schemas.xmlsoap.org/ws/2004/09/transfer/Get</a:Action><a:To>/wsman</a:To>` +
		`<w:ResourceURI>http://intel.com/wbem/wscim/1/amt-schema/1/AMT_GeneralSettings</w:ResourceURI>` +
		`<a:MessageID>0</a:MessageID><a:ReplyTo><a:Address>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:Address></a:ReplyTo>` +
		`<w:OperationTimeout>PT60S</w:OperationTimeout></Header><Body></Body></Envelope>`
	return fmt.Appendf(nil, "POST /wsman HTTP/1.1\r\nHost: %s:16992\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n%X\r\n%s\r\n0\r\n\r\n",
		uuid, len(soap), soap)
}

// serverEnvelope is what RPS sends: its own apiKey/appVersion, empty message for wsman.
func serverEnvelope(method, message, payload string) []byte {
	status := "ok"
	switch method {
	case "success":
		status = "success"
	case "error":
		status = "failed"
	}
	return Envelope{Method: method, APIKey: "xxxxx", AppVersion: "2.40.0", ProtocolVersion: "4.0.0", Status: status,
		Message: message, Payload: payload}.Marshal()
}

func send(t testing.TB, conn *websocket.Conn, frame []byte) {
	t.Helper()
	if err := conn.WriteMessage(websocket.TextMessage, frame); err != nil {
		t.Errorf("server write: %v", err)
	}
}

// relayGeneralSettings sends the Get as `wsman` and checks the agent answers with the firmware's 401.
func relayGeneralSettings(t testing.TB, conn *websocket.Conn, uuid string) {
	t.Helper()
	send(t, conn, serverEnvelope("wsman", "", base64.StdEncoding.EncodeToString(generalSettingsGet(uuid))))
	typ, frame, err := conn.ReadMessage()
	if err != nil {
		t.Errorf("read response: %v", err)
		return
	}
	if typ != websocket.TextMessage {
		t.Errorf("response frame type %d, want text", typ)
	}
	var env Envelope
	if err := json.Unmarshal(frame, &env); err != nil {
		t.Errorf("response is not JSON: %v", err)
		return
	}
	if env.Method != "response" || env.Status != "ok" || env.Message != "ok" || env.APIKey != "key" || env.ProtocolVersion != "4.0.0" {
		t.Errorf("response envelope = %+v", env)
	}
	reply, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		t.Errorf("response payload is not base64: %v", err)
		return
	}
	if !bytes.HasPrefix(reply, []byte("HTTP/1.1 401")) {
		t.Errorf("firmware reply to an unauthenticated Get: want HTTP/1.1 401, got %.200q", reply)
	}
	if !bytes.Contains(bytes.ToLower(reply), []byte("www-authenticate: digest")) {
		t.Errorf("401 without a digest challenge: %.300q", reply)
	}
}

func TestAgentActivateSuccess(t *testing.T) {
	dc := testDeviceConfig(1)
	dev := newTestDevice(t, dc)
	status := `{"Status":"Admin control mode.","Network":"Wired Network Configured","CIRAConnection":"Not Configured",` +
		`"TLSConfiguration":"Not Configured","Components":{"Activation":{"Result":"Success","Mode":"ACM"},` +
		`"WiredNetwork":{"Result":"Success","Details":"Dhcp"},"WirelessNetwork":{"Result":"NotApplicable"},` +
		`"TLS":{"Result":"NotApplicable"},"CIRAProxy":{"Result":"NotApplicable"},"CIRAConnection":{"Result":"NotApplicable"}}}`
	f := newFakeRPS(t, func(t testing.TB, conn *websocket.Conn, first []byte) {
		p := checkFirstFrame(t, first, "activate --profile acm-profile", true)
		for k, want := range map[string]string{
			"uuid": dc.UUID, "ver": "16.1.25", "build": "2000", "sku": "16392", "features": "AMT Pro Corporate",
			"username": "$$OsAdmin", "password": dc.LSAPassword, "hostname": "pc-001", "fqdn": "corp.example.com",
			"client": "RPC",
		} {
			if got := str(t, p[k]); got != want {
				t.Errorf("payload %s = %q, want %q", k, got, want)
			}
		}
		if string(p["currentMode"]) != "0" || string(p["progressSupported"]) != "true" {
			t.Errorf("currentMode %s progressSupported %s", p["currentMode"], p["progressSupported"])
		}
		var hashes []string
		json.Unmarshal(p["certHashes"], &hashes)
		if !slices.Contains(hashes, dc.TrustedRootHashes[0]) || len(hashes) < 3 || hashes[0] == dc.TrustedRootHashes[0] {
			t.Errorf("certHashes %v: want the trusted root among (not first of) several", hashes)
		}

		send(t, conn, serverEnvelope("progress", "Starting provisioning", ""))
		relayGeneralSettings(t, conn, dc.UUID)
		send(t, conn, serverEnvelope("progress", "Activation completed", ""))
		send(t, conn, serverEnvelope("success", status, ""))
	})

	res := RunAgent(context.Background(), AgentConfig{URL: f.url, TLS: f.tls, Command: "activate", Profile: "acm-profile", Progress: true}, dev)
	if res.Err != nil || res.Method != "success" || !res.Succeeded() {
		t.Fatalf("result = %+v", res)
	}
	if res.Status != "Admin control mode." || res.Message != status {
		t.Errorf("status %q message %q", res.Status, res.Message)
	}
	if c := res.Components["Activation"]; c.Result != "Success" || c.Mode != "ACM" || len(res.Components) != 6 {
		t.Errorf("components = %+v", res.Components)
	}
	if !slices.Equal(res.Progress, []string{"Starting provisioning", "Activation completed"}) {
		t.Errorf("progress = %q", res.Progress)
	}
	if res.Exchanges != 1 || len(res.Turnarounds) != 1 || res.Turnarounds[0] <= 0 || res.Duration < res.Turnarounds[0] {
		t.Errorf("exchanges %d turnarounds %v duration %v", res.Exchanges, res.Turnarounds, res.Duration)
	}
}

func TestAgentErrorTerminal(t *testing.T) {
	for _, tc := range []struct {
		name, message, wantStatus string
	}{
		{"json", `{"Status":"Device 1 activation failed. Missing password."}`, "Device 1 activation failed. Missing password."},
		{"plain", "Error: protocol version NOT supported: 5.0.0", "Error: protocol version NOT supported: 5.0.0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dev := newTestDevice(t, testDeviceConfig(2))
			f := newFakeRPS(t, func(t testing.TB, conn *websocket.Conn, first []byte) {
				send(t, conn, serverEnvelope("error", tc.message, ""))
			})
			res := RunAgent(context.Background(), AgentConfig{URL: f.url, TLS: f.tls, Command: "activate", Profile: "p"}, dev)
			if res.Err != nil || res.Method != "error" || res.Succeeded() {
				t.Fatalf("result = %+v", res)
			}
			if res.Status != tc.wantStatus || res.Message != tc.message || res.Exchanges != 0 {
				t.Errorf("status %q message %q exchanges %d", res.Status, res.Message, res.Exchanges)
			}
		})
	}
}

func TestAgentHeartbeat(t *testing.T) {
	dev := newTestDevice(t, testDeviceConfig(3))
	f := newFakeRPS(t, func(t testing.TB, conn *websocket.Conn, first []byte) {
		send(t, conn, serverEnvelope("heartbeat_request", "", ""))
		var env Envelope
		if err := conn.ReadJSON(&env); err != nil {
			t.Errorf("read heartbeat_response: %v", err)
			return
		}
		// rpc-go echoes the request with only method and status changed.
		want := Envelope{Method: "heartbeat_response", APIKey: "xxxxx", AppVersion: "2.40.0", ProtocolVersion: "4.0.0", Status: "success"}
		if env != want {
			t.Errorf("heartbeat reply = %+v, want %+v", env, want)
		}
		send(t, conn, serverEnvelope("success", `{"Status":"Deactivated"}`, ""))
	})
	res := RunAgent(context.Background(), AgentConfig{URL: f.url, TLS: f.tls, Command: "deactivate", Password: "x"}, dev)
	if res.Err != nil || res.Status != "Deactivated" || res.Exchanges != 0 || len(res.Turnarounds) != 0 {
		t.Fatalf("result = %+v", res)
	}
}

// A v3 agent does not advertise progress; a progress message would make the real one abort.
func TestAgentProgressNotAdvertised(t *testing.T) {
	dev := newTestDevice(t, testDeviceConfig(4))
	f := newFakeRPS(t, func(t testing.TB, conn *websocket.Conn, first []byte) {
		checkFirstFrame(t, first, "activate --profile p", false)
		send(t, conn, serverEnvelope("progress", "Starting provisioning", ""))
		conn.ReadMessage() // until the agent hangs up
	})
	res := RunAgent(context.Background(), AgentConfig{URL: f.url, TLS: f.tls, Command: "activate", Profile: "p"}, dev)
	if res.Method != "" || res.Err == nil || !strings.Contains(res.Err.Error(), "progressSupported") {
		t.Fatalf("result = %+v", res)
	}
}

func TestAgentClosedWithoutTerminal(t *testing.T) {
	dev := newTestDevice(t, testDeviceConfig(5))
	f := newFakeRPS(t, func(t testing.TB, conn *websocket.Conn, first []byte) {
		conn.Close()
	})
	res := RunAgent(context.Background(), AgentConfig{URL: f.url, TLS: f.tls, Command: "activate", Profile: "p"}, dev)
	if res.Method != "" || !errors.Is(res.Err, ErrClosedUnexpectedly) || res.Err.Error() != "rps connection closed unexpectedly" {
		t.Fatalf("result = %+v", res)
	}
}

// A server that refuses with a close frame: rpc-go's error text, with the close code still reachable.
func TestAgentClosedWithCode(t *testing.T) {
	dev := newTestDevice(t, testDeviceConfig(5))
	f := newFakeRPS(t, func(t testing.TB, conn *websocket.Conn, first []byte) {
		msg := websocket.FormatCloseMessage(websocket.CloseMessageTooBig, "frame too large")
		conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
		conn.ReadMessage() // until the agent hangs up
	})
	res := RunAgent(context.Background(), AgentConfig{URL: f.url, TLS: f.tls, Command: "activate", Profile: "p"}, dev)
	var ce *websocket.CloseError
	if res.Method != "" || !errors.Is(res.Err, ErrClosedUnexpectedly) || !errors.As(res.Err, &ce) || ce.Code != websocket.CloseMessageTooBig {
		t.Fatalf("result = %+v", res)
	}
}

// When the firmware does not answer within the first-byte window (dropped, or answering too late), the agent sends
// nothing and keeps listening; the server's own timeout ends the session.
func TestAgentFirmwareDrop(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(*DeviceConfig)
	}{
		{"drop", func(dc *DeviceConfig) { dc.Fault = func(Call) Fault { return Fault{Drop: true} } }},
		{"slow", func(dc *DeviceConfig) { dc.Latency = 200 * time.Millisecond }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dc := testDeviceConfig(6)
			tc.set(&dc)
			dev := newTestDevice(t, dc)
			const serverWait = 300 * time.Millisecond
			f := newFakeRPS(t, func(t testing.TB, conn *websocket.Conn, first []byte) {
				send(t, conn, serverEnvelope("wsman", "", base64.StdEncoding.EncodeToString(generalSettingsGet(dc.UUID))))
				conn.SetReadDeadline(time.Now().Add(serverWait))
				if _, frame, err := conn.ReadMessage(); err == nil {
					t.Errorf("agent answered for a silent firmware: %s", frame)
					return
				}
				// A timed-out gorilla connection cannot be read again, but it can still be written to.
				send(t, conn, serverEnvelope("error", `{"Status":"timeout waiting for AMT"}`, ""))
			})
			res := RunAgent(context.Background(), AgentConfig{URL: f.url, TLS: f.tls, Command: "activate", Profile: "p",
				FirstByteTimeout: 50 * time.Millisecond}, dev)
			if res.Err != nil || res.Method != "error" || res.Status != "timeout waiting for AMT" {
				t.Fatalf("result = %+v", res)
			}
			if res.Exchanges != 1 || len(res.Turnarounds) != 0 {
				t.Errorf("exchanges %d turnarounds %v", res.Exchanges, res.Turnarounds)
			}
		})
	}
}

// A malformed wsman payload: rpc-go relays what decoded (here nothing) and stays silent.
func TestAgentBadBase64Yields(t *testing.T) {
	dev := newTestDevice(t, testDeviceConfig(7))
	f := newFakeRPS(t, func(t testing.TB, conn *websocket.Conn, first []byte) {
		send(t, conn, serverEnvelope("wsman", "", "!!!not base64"))
		conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if _, frame, err := conn.ReadMessage(); err == nil {
			t.Errorf("agent answered an undecodable request: %s", frame)
			return
		}
		send(t, conn, serverEnvelope("error", "gave up", ""))
	})
	res := RunAgent(context.Background(), AgentConfig{URL: f.url, TLS: f.tls, Command: "activate", Profile: "p"}, dev)
	if res.Err != nil || res.Method != "error" || res.Status != "gave up" {
		t.Fatalf("result = %+v", res)
	}
}

func TestAgentMutateAndNonJSONServer(t *testing.T) {
	dev := newTestDevice(t, testDeviceConfig(8))
	f := newFakeRPS(t, func(t testing.TB, conn *websocket.Conn, first []byte) {
		var env Envelope
		json.Unmarshal(first, &env)
		if env.ProtocolVersion != "5.0.0" || env.Payload != "%%%" {
			t.Errorf("Mutate not applied: %s", first)
		}
		send(t, conn, []byte("this is not json"))
		conn.ReadMessage()
	})
	res := RunAgent(context.Background(), AgentConfig{URL: f.url, TLS: f.tls, Command: "activate", Profile: "p",
		Mutate: func(e *Envelope) { e.ProtocolVersion = "5.0.0"; e.Payload = "%%%" }}, dev)
	if res.Method != "" || res.Err == nil || !strings.Contains(res.Err.Error(), "undecodable") {
		t.Fatalf("result = %+v", res)
	}
}

func TestAgentTimeout(t *testing.T) {
	dev := newTestDevice(t, testDeviceConfig(9))
	f := newFakeRPS(t, func(t testing.TB, conn *websocket.Conn, first []byte) {
		conn.ReadMessage() // say nothing until the agent gives up
	})
	start := time.Now()
	// Long enough for the TLS dial on a loaded machine; the server then stays silent until the bound ends the run.
	res := RunAgent(context.Background(), AgentConfig{URL: f.url, TLS: f.tls, Command: "activate", Profile: "p",
		Timeout: 2 * time.Second}, dev)
	if res.Method != "" || !errors.Is(res.Err, context.DeadlineExceeded) {
		t.Fatalf("result = %+v", res)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("timeout took %v", d)
	}
}

func TestAgentRefusesWithoutPassword(t *testing.T) {
	dc := testDeviceConfig(10)
	dc.Mode = ModeCCM
	dc.AdminPassword = "Adm1n!Passw0rd"
	dev := newTestDevice(t, dc)
	if dev.Config().Mode != ModeCCM {
		t.Skip("firmware does not keep the configured mode yet")
	}
	res := RunAgent(context.Background(), AgentConfig{URL: "wss://127.0.0.1:1/activate", Command: "deactivate"}, dev)
	if !errors.Is(res.Err, ErrMissingPassword) {
		t.Fatalf("result = %+v", res)
	}
	env, err := InitialMessage(AgentConfig{Command: "deactivate", Password: "Adm1n!Passw0rd", Force: true}, dev)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.StdEncoding.DecodeString(env.Payload)
	var p Payload
	json.Unmarshal(raw, &p)
	if p.Password != "Adm1n!Passw0rd" || p.CurrentMode != 1 || env.Method != "deactivate --password Adm1n!Passw0rd -f" {
		t.Errorf("method %q payload %+v", env.Method, p)
	}
}

func TestCommandLine(t *testing.T) {
	for _, tc := range []struct {
		cfg  AgentConfig
		want string
	}{
		{AgentConfig{Command: "activate", Profile: "acm"}, "activate --profile acm"},
		{AgentConfig{Command: "activate", Profile: "acm", Force: true}, "activate --profile acm -f"},
		{AgentConfig{Command: "deactivate", Password: "P@ss"}, "deactivate --password P@ss"},
		{AgentConfig{Command: "deactivate", Password: "P@ss", Force: true}, "deactivate --password P@ss -f"},
		{AgentConfig{Command: "maintenance", Password: "P@ss", Task: "syncclock"}, "maintenance -password P@ss --synctime"},
		{AgentConfig{Command: "maintenance", Password: "P@ss", Task: "synctime"}, "maintenance -password P@ss --synctime"},
		{AgentConfig{Command: "maintenance", Password: "P@ss", Task: "syncip"}, "maintenance -password P@ss --syncip"},
		{AgentConfig{Command: "maintenance", Password: "P@ss", Task: "synchostname", Force: true}, "maintenance -password P@ss --synchostname -f"},
		{AgentConfig{Command: "maintenance", Password: "P@ss", Task: "syncdeviceinfo"}, "maintenance -password P@ss --syncdeviceinfo"},
		{AgentConfig{Command: "maintenance", Password: "P@ss", Task: "changepassword"}, "maintenance -password P@ss --changepassword"},
		{AgentConfig{Command: "maintenance", Password: "P@ss", Task: "changepassword", TaskArg: "N3w!", Force: true}, "maintenance -password P@ss --changepassword N3w! -f"},
		{AgentConfig{Command: "maintenance", Password: "P@ss", Task: "synctime", TaskArg: "ignored"}, "maintenance -password P@ss --synctime"},
	} {
		got, err := CommandLine(tc.cfg)
		if err != nil || got != tc.want {
			t.Errorf("CommandLine(%+v) = %q, %v; want %q", tc.cfg, got, err, tc.want)
		}
	}
	for _, bad := range []AgentConfig{{Command: "configure"}, {Command: "maintenance", Task: "reboot"}} {
		if _, err := CommandLine(bad); err == nil {
			t.Errorf("CommandLine(%+v) accepted", bad)
		}
	}
}

func TestAMTFeatures(t *testing.T) {
	for _, tc := range []struct{ ver, sku, want string }{
		{"16.1.25", "16392", "AMT Pro Corporate"},
		{"15.0.23", "16392", "AMT Pro Corporate"},
		{"11.8.50", "16400", "Intel Standard Manageability Corporate"},
		{"16", "16392", "Invalid AMT version format"},
		{"16.1", "x", "Invalid SKU"},
	} {
		if got := amtFeatures(tc.ver, tc.sku); got != tc.want {
			t.Errorf("amtFeatures(%q, %q) = %q, want %q", tc.ver, tc.sku, got, tc.want)
		}
	}
}
