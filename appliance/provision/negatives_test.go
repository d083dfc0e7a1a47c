package provision_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/amtedge/amtedge/appliance/agent"
	"github.com/amtedge/amtedge/appliance/amtsim"
	"github.com/amtedge/amtedge/appliance/provision"
	"github.com/amtedge/amtedge/secrets"
	"github.com/amtedge/amtedge/secrets/storetest"
)

// mutatePayload edits the decoded device payload of the first message.
func mutatePayload(f func(map[string]any)) func(*amtsim.Envelope) {
	return func(e *amtsim.Envelope) {
		raw, _ := base64.StdEncoding.DecodeString(e.Payload)
		var m map[string]any
		_ = json.Unmarshal(raw, &m)
		f(m)
		b, _ := json.Marshal(m)
		e.Payload = base64.StdEncoding.EncodeToString(b)
	}
}

func TestRefusalsHaveExactTexts(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	dev := h.device(amtsim.DeviceConfig{DHCPDNSSuffix: corpSuffix}, "corp")
	uuid := dev.Config().UUID
	tests := []struct {
		name string
		cfg  amtsim.AgentConfig
		dev  *amtsim.Device
		want string // exact text, or prefix when it ends with "…"
	}{
		{"unknown profile", amtsim.AgentConfig{Profile: "nope"}, dev,
			"Device " + uuid + " activation failed. nope does not match list of available AMT profiles. Profiles on this box: acm, acmstatic, acmwifi, ccm, ccmstatic."},
		{"no profile", amtsim.AgentConfig{Profile: ""}, dev,
			"Device " + uuid + " activation failed. No profile was given: run rpc activate with --profile <name>. Profiles on this box: acm, acmstatic, acmwifi, ccm, ccmstatic."},
		{"empty suffix", amtsim.AgentConfig{Profile: "acm", Mutate: mutatePayload(func(m map[string]any) { m["fqdn"] = "" })}, dev,
			"Device " + uuid + " activation failed. Missing DNS Suffix.…"},
		{"suffix matching no domain", amtsim.AgentConfig{Profile: "acm", DNSSuffix: "other.example.net"}, dev,
			"Device " + uuid + " activation failed. Specified AMT domain suffix: other.example.net does not match list of available AMT domain suffixes. Domain suffixes on this box: corp.example.com, five.example.org."},
		{"single label never matches", amtsim.AgentConfig{Profile: "acm", DNSSuffix: "com"}, dev,
			"Device " + uuid + " activation failed. Specified AMT domain suffix: com does not match…"},
		{"no cert hashes", amtsim.AgentConfig{Profile: "acm", CertHashes: []string{}}, dev,
			"Device " + uuid + " activation failed. Missing certificate hashes from the device."},
		{"untrusted root", amtsim.AgentConfig{Profile: "acm"}, h.device(amtsim.DeviceConfig{DHCPDNSSuffix: corpSuffix}),
			"Invalid domain certificate, hash does not exists in list of trusted root certificates on AMT. The root of domain corp (SHA-256 " + h.roots["corp"] + ") is not among…"},
		{"wrong protocol version", amtsim.AgentConfig{Profile: "ccm", Mutate: func(e *amtsim.Envelope) { e.ProtocolVersion = "5.0.0" }}, dev,
			"Error: protocol version NOT supported: 5.0.0"},
		{"malformed base64", amtsim.AgentConfig{Profile: "ccm", Mutate: func(e *amtsim.Envelope) { e.Payload = "%%%" }}, dev,
			"Error: Failed to parse client message payload. The payload is not valid base64: illegal base64 data at input byte 0"},
		{"malformed JSON", amtsim.AgentConfig{Profile: "ccm", Mutate: func(e *amtsim.Envelope) { e.Payload = base64.StdEncoding.EncodeToString([]byte(`{"ver":1`)) }}, dev,
			"Error: Failed to parse client message payload. the JSON ends too early"},
		{"wrong JSON type", amtsim.AgentConfig{Profile: "ccm", Mutate: func(e *amtsim.Envelope) { e.Payload = base64.StdEncoding.EncodeToString([]byte(`{"ver":1}`)) }}, dev,
			`Error: Failed to parse client message payload. field "ver" must be string, not number`},
		{"missing fields", amtsim.AgentConfig{Profile: "ccm", Mutate: mutatePayload(func(m map[string]any) { delete(m, "build") })}, dev,
			"Error: Invalid payload from client"},
		{"missing password", amtsim.AgentConfig{Profile: "ccm", Mutate: mutatePayload(func(m map[string]any) { m["password"] = "" })}, dev,
			"Device " + uuid + " activation failed. Missing password."},
		{"old firmware", amtsim.AgentConfig{Profile: "ccm"}, h.device(amtsim.DeviceConfig{UUID: "11111111-2222-3333-4444-555555555555", Version: "11.6.10", Build: "2000"}),
			"Device 11111111-2222-3333-4444-555555555555 activation failed. Please check with your OEM for a firmware update."},
		{"AMT 6", amtsim.AgentConfig{Profile: "ccm"}, h.device(amtsim.DeviceConfig{UUID: "11111111-2222-3333-4444-666666666666", Version: "6.2.1"}),
			"Device 11111111-2222-3333-4444-666666666666 activation failed. AMT version: 6.2.1. Version less than 7 cannot be remotely configured "},
		{"TLS enforced", amtsim.AgentConfig{Profile: "ccm", Mutate: mutatePayload(func(m map[string]any) { m["tlsEnforced"] = true })}, dev,
			"Device " + uuid + " activation failed. The device enforces TLS on its local AMT ports…"},
		{"unknown mode", amtsim.AgentConfig{Profile: "ccm", Mutate: mutatePayload(func(m map[string]any) { m["currentMode"] = 7 })}, dev,
			"Device " + uuid + " activation failed. It is in unknown mode."},
		{"unsupported first method", amtsim.AgentConfig{Profile: "ccm", Mutate: func(e *amtsim.Envelope) { e.Method = "response" }}, dev,
			"Device " + uuid + " Not a supported method received from AMT device"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := h.run(tc.cfg, tc.dev)
			if res.Method != "error" {
				t.Fatalf("method %q (%v), want error", res.Method, res.Err)
			}
			if prefix, ok := strings.CutSuffix(tc.want, "…"); ok {
				if !strings.HasPrefix(res.Status, prefix) {
					t.Fatalf("text %q\nwant prefix %q", res.Status, prefix)
				}
			} else if res.Status != tc.want {
				t.Fatalf("text %q\nwant %q", res.Status, tc.want)
			}
			if tc.dev.Snapshot().Mode != amtsim.ModePreProvisioning {
				t.Fatal("a refused activation changed the device")
			}
		})
	}
}

func TestExpiredCertificateAtActivation(t *testing.T) {
	// The box loaded the domain while valid; by the time a device comes, the chain has expired.
	h := newHarness(t, harnessOptions{cfg: provision.Config{Now: func() time.Time { return time.Now().AddDate(5, 0, 0) }}})
	dev := h.device(amtsim.DeviceConfig{DHCPDNSSuffix: corpSuffix}, "corp")
	res := h.run(amtsim.AgentConfig{Profile: "acm"}, dev)
	if res.Method != "error" || !strings.HasPrefix(res.Status, "Failed to get amt domain certificate from database. Domain corp: ") ||
		!strings.Contains(res.Status, "expired") {
		t.Fatalf("%s %q", res.Method, res.Status)
	}
}

func TestFirmwareSuffixMismatchIsCaughtBeforeInjection(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	// The agent reports the right suffix (from the OS), but the firmware got another one from DHCP.
	dev := h.device(amtsim.DeviceConfig{DHCPDNSSuffix: "guest.example.net"}, "corp")
	res := h.run(amtsim.AgentConfig{Profile: "acm", DNSSuffix: corpSuffix}, dev)
	if res.Method != "error" || !strings.Contains(res.Status, `DNS suffix from DHCP option 15 ("guest.example.net")`) ||
		!strings.Contains(res.Status, "nothing was changed on the device") {
		t.Fatalf("%s %q", res.Method, res.Status)
	}
	if snap := dev.Snapshot(); snap.Mode != amtsim.ModePreProvisioning || len(snap.ChainPending) != 0 {
		t.Fatal("the chain was injected anyway")
	}
}

// rawSession dials the box and sends a valid first message for dev, returning the connection.
func rawSession(t *testing.T, h *harness, dev *amtsim.Device, profile string) *websocket.Conn {
	t.Helper()
	conn, err := amtsim.Dial(context.Background(), h.url, h.tls)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	first, err := amtsim.InitialMessage(amtsim.AgentConfig{Command: "activate", Profile: profile}, dev)
	if err != nil {
		t.Fatal(err)
	}
	if err := amtsim.WriteEnvelope(conn, first); err != nil {
		t.Fatal(err)
	}
	return conn
}

// readUntilTerminal reads frames until success/error and returns it.
func readUntilTerminal(t *testing.T, conn *websocket.Conn) amtsim.Envelope {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	for {
		env, err := amtsim.ReadEnvelope(conn)
		if err != nil {
			t.Fatalf("no terminal message: %v", err)
		}
		if env.Method == "success" || env.Method == "error" {
			return env
		}
	}
}

func TestProtocolViolationsMidSession(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	for _, tc := range []struct {
		name  string
		send  func(*websocket.Conn) error
		wants string
	}{
		{"binary frame", func(c *websocket.Conn) error { return c.WriteMessage(websocket.BinaryMessage, []byte{1, 2, 3}) },
			"Error: the agent sent a binary frame; the RPS protocol uses text frames with one JSON message each"},
		{"oversized frame", func(c *websocket.Conn) error {
			return c.WriteMessage(websocket.TextMessage, []byte(`{"method":"response","payload":"`+strings.Repeat("A", 110*1024)+`"}`))
		}, "Error: the agent sent a message larger than 102400 bytes; the box refuses it"},
		{"bad JSON", func(c *websocket.Conn) error { return c.WriteMessage(websocket.TextMessage, []byte(`{"method":`)) },
			"Error: Failed to parse client message payload. The message is not a JSON envelope: the JSON ends too early"},
		{"bad base64 reply", func(c *websocket.Conn) error {
			return amtsim.WriteEnvelope(c, amtsim.Envelope{Method: "response", Payload: "@@@"})
		}, "Error: Failed to parse client message payload. The response payload is not valid base64: illegal base64 data at input byte 0"},
		{"unsupported method", func(c *websocket.Conn) error { return amtsim.WriteEnvelope(c, amtsim.Envelope{Method: "tls_data"}) },
			"Device %s Not a supported method received from AMT device"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dev := h.device(amtsim.DeviceConfig{DHCPDNSSuffix: corpSuffix})
			conn := rawSession(t, h, dev, "ccm")
			if env, err := amtsim.ReadEnvelope(conn); err != nil || env.Method != "wsman" {
				t.Fatalf("first server message %+v %v", env, err)
			}
			// A write may fail once the box has refused the frame and closed; what matters is the box's answer.
			_ = tc.send(conn)
			env := readUntilTerminal(t, conn)
			want := strings.ReplaceAll(tc.wants, "%s", dev.Config().UUID)
			if env.Method != "error" || !strings.Contains(env.Message, want) {
				t.Fatalf("got %s %q\nwant containing %q", env.Method, env.Message, want)
			}
		})
	}
	t.Run("binary first frame", func(t *testing.T) {
		conn, err := amtsim.Dial(context.Background(), h.url, h.tls)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.WriteMessage(websocket.BinaryMessage, []byte("x"))
		env := readUntilTerminal(t, conn)
		if env.Message != "Error: the agent sent a binary frame; the RPS protocol uses text frames with one JSON message each" {
			t.Fatalf("%q", env.Message)
		}
	})
}

func TestAgentDisconnectsMidFlow(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	dev := h.device(amtsim.DeviceConfig{DHCPDNSSuffix: corpSuffix})
	conn := rawSession(t, h, dev, "ccm")
	if env, err := amtsim.ReadEnvelope(conn); err != nil || env.Method != "wsman" {
		t.Fatalf("first server message %+v %v", env, err)
	}
	conn.Close()
	// The box ends the session and frees the device for its next session, which succeeds.
	deadline := time.Now().Add(5 * time.Second)
	for h.agents.Live() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n, listed := h.agents.Live(), len(h.agents.Sessions()); n != 0 || listed != 0 {
		t.Fatalf("%d sessions still live after the agent left", n)
	}
	if res := h.run(amtsim.AgentConfig{Profile: "ccm"}, dev); !res.Succeeded() {
		t.Fatalf("next session: %s %q", res.Method, res.Status)
	}
	recs := h.inv.Device(dev.Config().UUID)
	if len(recs) != 2 || recs[1].Success || !strings.Contains(recs[1].Status, "the agent disconnected") {
		t.Fatalf("records: %+v", recs)
	}
}

func TestAMTNeverAnswers(t *testing.T) {
	h := newHarness(t, harnessOptions{cfg: provision.Config{RequestTimeout: 150 * time.Millisecond, Attempts: 3}})
	dev := h.device(amtsim.DeviceConfig{DHCPDNSSuffix: corpSuffix, Fault: func(amtsim.Call) amtsim.Fault { return amtsim.Fault{Unheard: true} }})
	start := time.Now()
	res := h.run(amtsim.AgentConfig{Profile: "ccm", FirstByteTimeout: 2 * time.Second}, dev)
	if res.Method != "error" || !strings.Contains(res.Status, "read AMT general settings: AMT did not answer through the agent in time") {
		t.Fatalf("%s %q", res.Method, res.Status)
	}
	if dev.Snapshot().Requests != 3 {
		t.Errorf("%d requests relayed, want 3 attempts", dev.Snapshot().Requests)
	}
	if time.Since(start) > 10*time.Second {
		t.Error("the session was not bounded by the request timeout")
	}
}

func TestAuthenticationLoop(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	dev := h.device(amtsim.DeviceConfig{DHCPDNSSuffix: corpSuffix})
	res := h.run(amtsim.AgentConfig{Profile: "ccm", Mutate: mutatePayload(func(m map[string]any) { m["password"] = "not-the-LSA-password" })}, dev)
	if res.Method != "error" || !strings.Contains(res.Status, `AMT rejected the credentials of user "$$OsAdmin"`) {
		t.Fatalf("%s %q", res.Method, res.Status)
	}
	if n := dev.Snapshot().Requests; n != 3 {
		t.Errorf("%d requests, want 3 (one 401 plus two re-challenges)", n)
	}
}

func TestTwoSessionsForOneDevice(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	cfg := amtsim.DeviceConfig{UUID: "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee", DHCPDNSSuffix: corpSuffix, Latency: 300 * time.Millisecond}
	devA, devB := h.device(cfg), h.device(cfg)
	var wg sync.WaitGroup
	var resA amtsim.Result
	wg.Add(1)
	go func() { defer wg.Done(); resA = h.run(amtsim.AgentConfig{Profile: "ccm"}, devA) }()
	deadline := time.Now().Add(5 * time.Second)
	for len(h.agents.Sessions()) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	resB := h.run(amtsim.AgentConfig{Profile: "ccm"}, devB)
	wg.Wait()
	if !resA.Succeeded() {
		t.Fatalf("first session: %s %q", resA.Method, resA.Status)
	}
	if resB.Method != "error" || !strings.HasPrefix(resB.Status, "Device aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee already has a session in progress on this box (activate, from 127.0.0.1:") {
		t.Fatalf("second session: %s %q", resB.Method, resB.Status)
	}
}

// failingStore refuses device writes, as a full or broken disk would.
type failingStore struct{ secrets.Store }

func (failingStore) PutDevice(context.Context, string, secrets.Credentials) error {
	return errors.New("disk full")
}

func TestNothingIsSentWhenThePasswordCannotBeStored(t *testing.T) {
	h := newHarness(t, harnessOptions{store: failingStore{storetest.NewMemory()}})
	dev := h.device(amtsim.DeviceConfig{DHCPDNSSuffix: corpSuffix}, "corp")
	for _, profile := range []string{"ccm", "acm"} {
		res := h.run(amtsim.AgentConfig{Profile: profile}, dev)
		if res.Method != "error" || !strings.Contains(res.Status, "the box could not store the device's new password, so it did not send it") {
			t.Fatalf("%s: %s %q", profile, res.Method, res.Status)
		}
	}
	for _, a := range dev.Snapshot().Actions {
		if strings.HasSuffix(a, "/Setup") || strings.HasSuffix(a, "/AdminSetup") {
			t.Fatalf("%s was sent although its password was not stored", a)
		}
	}
}

func TestLostAdminSetupReplyIsResolvedByReadingTheMode(t *testing.T) {
	h := newHarness(t, harnessOptions{cfg: provision.Config{RequestTimeout: 3 * time.Second}})
	dev := h.device(amtsim.DeviceConfig{DHCPDNSSuffix: corpSuffix, Fault: func(c amtsim.Call) amtsim.Fault {
		return amtsim.Fault{Drop: strings.HasSuffix(c.Action, "/AdminSetup")}
	}}, "corp")
	res := h.run(amtsim.AgentConfig{Profile: "acm", FirstByteTimeout: 2 * time.Second}, dev)
	if !res.Succeeded() {
		t.Fatalf("%s %q", res.Method, res.Status)
	}
	n := 0
	for _, a := range dev.Snapshot().Actions {
		if strings.HasSuffix(a, "/AdminSetup") {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("AdminSetup sent %d times, want once", n)
	}
	if cur := h.current(dev.Config().UUID); !dev.Snapshot().AdminPasswordIs(cur.AMTPassword) || cur.State != secrets.Confirmed {
		t.Fatal("stored password does not match the device's")
	}
}

func TestUnheardSetupLeavesNoConfirmedPassword(t *testing.T) {
	h := newHarness(t, harnessOptions{cfg: provision.Config{RequestTimeout: 3 * time.Second}})
	dev := h.device(amtsim.DeviceConfig{DHCPDNSSuffix: corpSuffix, Fault: func(c amtsim.Call) amtsim.Fault {
		return amtsim.Fault{Unheard: strings.HasSuffix(c.Action, "/Setup")}
	}})
	res := h.run(amtsim.AgentConfig{Profile: "ccm", FirstByteTimeout: 2 * time.Second}, dev)
	if res.Method != "error" || !strings.HasPrefix(res.Status, "Failed to activate in client control mode.") {
		t.Fatalf("%s %q", res.Method, res.Status)
	}
	// The re-read showed the device still pre-provisioned: the password it never got is abandoned, not lost or
	// mistaken for the device's.
	d, err := h.store.Device(context.Background(), dev.Config().UUID)
	if err != nil || d.Current.State != secrets.Abandoned || len(d.Candidates()) != 0 {
		t.Fatalf("store: %+v %v", d.Current.State, err)
	}
}

func TestLostMEBxReplyKeepsThePasswordPending(t *testing.T) {
	h := newHarness(t, harnessOptions{cfg: provision.Config{RequestTimeout: 3 * time.Second}})
	dev := h.device(amtsim.DeviceConfig{DHCPDNSSuffix: corpSuffix, Fault: func(c amtsim.Call) amtsim.Fault {
		return amtsim.Fault{Drop: strings.HasSuffix(c.Action, "/SetMEBxPassword")}
	}}, "corp")
	res := h.run(amtsim.AgentConfig{Profile: "acm", FirstByteTimeout: 2 * time.Second}, dev)
	if !res.Succeeded() || !strings.Contains(res.Components["Activation"].Details, "The MEBx password was not set") {
		t.Fatalf("%s %q %+v", res.Method, res.Status, res.Components["Activation"])
	}
	// The device did take it (only the reply was lost): the box must still hold it, as pending.
	d, err := h.store.Device(context.Background(), dev.Config().UUID)
	if err != nil || d.Current.State != secrets.Pending || d.MEBxPassword() != dev.Snapshot().MEBxPassword {
		t.Fatalf("store: state %s, MEBx kept %v (%v)", d.Current.State, d.MEBxPassword() == dev.Snapshot().MEBxPassword, err)
	}
}

func TestMEBxPasswordStaysInCustodyAcrossPasswordChanges(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	dev := h.device(amtsim.DeviceConfig{DHCPDNSSuffix: corpSuffix}, "corp")
	uuid := dev.Config().UUID
	if res := h.run(amtsim.AgentConfig{Profile: "acm"}, dev); !res.Succeeded() {
		t.Fatalf("activate: %q", res.Status)
	}
	for i := 0; i < 12; i++ { // more than the store's history
		res := h.run(amtsim.AgentConfig{Command: "maintenance", Task: "changepassword", Password: h.current(uuid).AMTPassword}, dev)
		if !res.Succeeded() {
			t.Fatalf("changepassword %d: %q", i, res.Status)
		}
	}
	if d, _ := h.store.Device(context.Background(), uuid); d.Current.MEBxPassword != dev.Snapshot().MEBxPassword {
		t.Fatal("the current set no longer carries the device's MEBx password")
	}
}

func TestLostSetAdminAclEntryExReplyIsResolvedByTheNewPassword(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault amtsim.Fault
		want  secrets.State
	}{
		{"reply lost: the device holds it", amtsim.Fault{Drop: true}, secrets.Confirmed},
		{"request lost: the device kept the old one", amtsim.Fault{Unheard: true}, secrets.Abandoned},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, harnessOptions{cfg: provision.Config{RequestTimeout: 3 * time.Second}})
			const old = "Old-Passw0rd!"
			dev := h.device(amtsim.DeviceConfig{Mode: amtsim.ModeACM, AdminPassword: old, Fault: func(c amtsim.Call) amtsim.Fault {
				if strings.HasSuffix(c.Action, "/SetAdminAclEntryEx") {
					return tc.fault
				}
				return amtsim.Fault{}
			}})
			uuid := dev.Config().UUID
			res := h.run(amtsim.AgentConfig{Command: "maintenance", Task: "changepassword", Password: old, Force: true, FirstByteTimeout: 2 * time.Second}, dev)
			cur := h.current(uuid)
			if cur.State != tc.want {
				t.Fatalf("state %s, want %s (%s %q)", cur.State, tc.want, res.Method, res.Status)
			}
			if holds := dev.Snapshot().AdminPasswordIs(cur.AMTPassword); holds != (tc.want == secrets.Confirmed) {
				t.Fatalf("device holds the new password: %v", holds)
			}
			if res.Succeeded() != (tc.want == secrets.Confirmed) {
				t.Fatalf("result %s %q", res.Method, res.Status)
			}
		})
	}
}

func TestPendingPasswordTheDeviceHoldsIsAccepted(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	const confirmed, pending = "Confirmed-P4ss!", "Pending-P4ss!"
	dev := h.device(amtsim.DeviceConfig{Mode: amtsim.ModeACM, AdminPassword: pending})
	uuid := dev.Config().UUID
	ctx := context.Background()
	// The box wrote `pending` and crashed before hearing back; then another set was abandoned on top of it.
	for _, c := range []secrets.Credentials{{AMTPassword: confirmed, State: secrets.Confirmed}, {AMTPassword: pending, State: secrets.Pending},
		{AMTPassword: "Never-Sent-1!", State: secrets.Abandoned}} {
		if err := h.store.PutDevice(ctx, uuid, c); err != nil {
			t.Fatal(err)
		}
	}
	res := h.run(amtsim.AgentConfig{Command: "maintenance", Task: "synctime", Password: pending}, dev)
	if !res.Succeeded() {
		t.Fatalf("%s %q", res.Method, res.Status)
	}
}

func TestTLSTunnelIsRefusedForEveryCommand(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	dev := h.device(amtsim.DeviceConfig{Mode: amtsim.ModeCCM, AdminPassword: "Known-Passw0rd!"})
	res := h.run(amtsim.AgentConfig{Command: "deactivate", Password: "Known-Passw0rd!", Force: true,
		Mutate: mutatePayload(func(m map[string]any) { m["tlsTunnel"] = true })}, dev)
	if want := "Device " + dev.Config().UUID + " deactivation failed. The device enforces TLS"; !strings.HasPrefix(res.Status, want) {
		t.Fatalf("%q", res.Status)
	}
	if dev.Snapshot().Mode != amtsim.ModeCCM {
		t.Fatal("device changed")
	}
}

func TestAgentFromAnotherNetworkIsRefused(t *testing.T) {
	h := newHarness(t, harnessOptions{agent: agent.Config{AllowedNetworks: []netip.Prefix{netip.MustParsePrefix("10.20.0.0/16")}}})
	dev := h.device(amtsim.DeviceConfig{DHCPDNSSuffix: corpSuffix})
	res := h.run(amtsim.AgentConfig{Profile: "ccm"}, dev)
	want := "Error: this box serves agents from 10.20.0.0/16 only; this PC's address 127.0.0.1 is not among them."
	if res.Method != "error" || !strings.HasPrefix(res.Status, want) {
		t.Fatalf("%s %q (%v)", res.Method, res.Status, res.Err)
	}
	if dev.Snapshot().Requests != 0 {
		t.Fatal("a refused agent's device was talked to")
	}
	if !strings.Contains(h.logBuf.String(), "event=agent_refused reason=\"Error: this box serves agents from 10.20.0.0/16 only") {
		t.Errorf("the refusal was not logged as the agent_refused event:\n%s", h.logBuf)
	}
}
