// This file is the simulated rpc-go agent: it speaks to an RPS-compatible server exactly what Intel's rpc-go (2.x
// line, with the v3 differences selectable) puts on the wire, and relays each `wsman` request to a simulated Device
// the way rpc-go relays it to LMS on 127.0.0.1:16992. It is written from the protocol reference, not from the
// appliance's code, so a disagreement between the two is a finding rather than a tautology.

package amtsim

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/websocket"
)

// Wire constants rpc-go puts in every envelope it sends.
const (
	ProtocolVersion   = "4.0.0"   // rpc-go 2.x and v3 both send 4.0.0
	DefaultAppVersion = "v2.52.4" // the 2.x release the reference was read from
	agentAPIKey       = "key"     // literally "key"; never validated by RPS
	statusOK          = "ok"
	clientName        = "RPC"

	// DefaultFirstByteTimeout is rpc-go's LMS first-byte window (non-TLS).
	DefaultFirstByteTimeout = 3 * time.Second
	// DefaultAgentTimeout bounds a whole run when AgentConfig.Timeout is zero. rpc-go itself has no overall bound,
	// but a load generator must not hang forever on a server that stops answering.
	DefaultAgentTimeout = 5 * time.Minute
	// handshakeTimeout is the WebSocket opening-handshake bound the reference gives for rpc-go.
	handshakeTimeout = 60 * time.Second
)

// Errors a run can end with that callers may want to recognise.
var (
	// ErrClosedUnexpectedly is rpc-go's error when the socket closes without a terminal message.
	ErrClosedUnexpectedly = errors.New("rps connection closed unexpectedly")
	// ErrMissingPassword mirrors rpc-go refusing to start against an activated device without --password.
	ErrMissingPassword = errors.New("AMT password is required for an activated device")
)

// Envelope is the JSON object carried by every WebSocket text frame, in both directions (§2.2). Field order and
// the absence of omitempty match rpc-go's Message struct, so a marshalled Envelope is byte-for-byte what rpc-go
// sends.
type Envelope struct {
	Method          string `json:"method"`
	APIKey          string `json:"apiKey"`
	AppVersion      string `json:"appVersion"`
	ProtocolVersion string `json:"protocolVersion"`
	Status          string `json:"status"`
	Message         string `json:"message"`
	Fqdn            string `json:"fqdn"`
	Payload         string `json:"payload"`
	TenantID        string `json:"tenantId"`
}

// Marshal encodes e as rpc-go does (encoding/json of the struct, HTML escaping included).
func (e Envelope) Marshal() []byte {
	b, _ := json.Marshal(e) // only strings: cannot fail
	return b
}

// Payload is the device description inside the initial message (§3), base64(JSON) in Envelope.Payload. Field
// order and omitempty follow rpc-go's MessagePayload.
type Payload struct {
	Version           string          `json:"ver"`
	Build             string          `json:"build"`
	SKU               string          `json:"sku"`
	Features          string          `json:"features"`
	UUID              string          `json:"uuid"`
	Username          string          `json:"username"`
	Password          string          `json:"password"`
	CurrentMode       int             `json:"currentMode"`
	Hostname          string          `json:"hostname"`
	FQDN              string          `json:"fqdn"`
	Client            string          `json:"client"`
	CertificateHashes []string        `json:"certHashes"`
	IPConfiguration   IPConfiguration `json:"ipConfiguration"`
	HostnameInfo      HostnameInfo    `json:"hostnameInfo"`
	FriendlyName      string          `json:"friendlyName,omitempty"`
	ProgressSupported bool            `json:"progressSupported,omitempty"`
}

// IPConfiguration is the syncip target; rpc-go always sends it, zero unless the task is syncip.
type IPConfiguration struct {
	DHCP         bool   `json:"dhcp"`
	Static       bool   `json:"static"`
	IPSync       bool   `json:"ipsync"`
	IPAddress    string `json:"ipAddress"`
	Netmask      string `json:"netmask"`
	Gateway      string `json:"gateway"`
	PrimaryDNS   string `json:"primaryDns"`
	SecondaryDNS string `json:"secondaryDns"`
}

// HostnameInfo is the synchostname target; rpc-go always sends it, zero unless the task is synchostname.
type HostnameInfo struct {
	DNSSuffixOS string `json:"dnsSuffixOS"`
	Hostname    string `json:"hostname"`
}

// Component is one entry of the terminal status's Components object (RPS ≥ 2.38).
type Component struct {
	Result  string `json:"Result"`            // Success | Failure | NotApplicable
	Mode    string `json:"Mode,omitempty"`    // ACM | CCM | LocalProfileSync
	Details string `json:"Details,omitempty"` // sentence case, no trailing period
}

// statusMessage is the JSON object RPS puts (as a string) in the message of success/error.
type statusMessage struct {
	Status           string               `json:"Status"`
	Network          string               `json:"Network"`
	CIRAConnection   string               `json:"CIRAConnection"`
	TLSConfiguration string               `json:"TLSConfiguration"`
	Components       map[string]Component `json:"Components"`
}

// AgentConfig says what the simulated rpc-go is asked to do, i.e. its command line.
type AgentConfig struct {
	URL     string      // wss://host:port/activate
	TLS     *tls.Config // RootCAs, or InsecureSkipVerify like --skip-cert-check
	Command string      // "activate", "deactivate" or "maintenance"
	Profile string      // activate --profile <name>
	// Password is the AMT admin password (rpc-go --password): put in the method for deactivate/maintenance and in
	// payload.password whenever the device is activated.
	Password string
	Force    bool   // -f
	Task     string // maintenance: synctime (or syncclock) | syncip | changepassword | synchostname | syncdeviceinfo
	TaskArg  string // changepassword: the static new password (rpc-go -static)
	TenantID string // --tenantid

	DNSSuffix    string // payload.fqdn override (rpc-go -d); default: the device's trusted suffix, else its DHCP suffix
	Hostname     string // payload.hostname; default: the device's Hostname, else a name derived from its UUID
	FriendlyName string // --name
	AppVersion   string // default DefaultAppVersion
	Progress     bool   // payload.progressSupported: rpc-go 2.x sends true, v3 omits it
	// CertHashes is payload.certHashes; nil means the device's trusted roots mixed into a few unrelated default
	// hashes, as real firmware reports its whole (mostly irrelevant) trust store.
	CertHashes   []string
	IPConfig     IPConfiguration // syncip
	HostnameInfo HostnameInfo    // synchostname

	// FirstByteTimeout is how long the firmware may take to answer a relayed request; when it does not answer the
	// agent sends nothing back (rpc-go "yields") and waits for the server's next message. Default 3 s.
	FirstByteTimeout time.Duration
	Timeout          time.Duration   // whole run, dial included; default DefaultAgentTimeout
	Mutate           func(*Envelope) // applied to the initial envelope before it is sent (malformed-request tests)
}

// Result is how a run ended, as rpc-go would report it, plus timing for load tests.
type Result struct {
	Method     string               // "success", "error", or "" when the run ended without a terminal message
	Status     string               // Status of the JSON status object, or the plain message text
	Message    string               // the terminal message field, raw
	Components map[string]Component // parsed when the status object carries them
	Progress   []string             // progress labels, in arrival order
	Exchanges  int                  // wsman requests relayed to the firmware
	// Turnarounds holds, per response sent, the time from our `response` frame to the server's next message:
	// the server's think time, which is what a load test of the server wants to see.
	Turnarounds []time.Duration
	Duration    time.Duration
	Err         error // nil for a terminal success or error; why the run broke off otherwise
}

// Succeeded reports whether the server ended the run with `success`.
func (r Result) Succeeded() bool { return r.Method == "success" && r.Err == nil }

// Dial opens the WebSocket the way rpc-go does: gorilla's dialer, no subprotocol, no extra headers, proxy from the
// environment.
func Dial(ctx context.Context, url string, tlsConfig *tls.Config) (*websocket.Conn, error) {
	d := websocket.Dialer{
		TLSClientConfig:  tlsConfig,
		Proxy:            http.ProxyFromEnvironment,
		HandshakeTimeout: handshakeTimeout,
	}
	conn, resp, err := d.DialContext(ctx, url, nil)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", url, err)
	}
	return conn, nil
}

// ReadEnvelope reads one frame and decodes it as an Envelope, for tests that drive a connection by hand.
func ReadEnvelope(conn *websocket.Conn) (Envelope, error) {
	_, data, err := conn.ReadMessage()
	if err != nil {
		return Envelope{}, err
	}
	var e Envelope
	if err := json.Unmarshal(data, &e); err != nil {
		return Envelope{}, fmt.Errorf("decode server message: %w", err)
	}
	return e, nil
}

// WriteEnvelope sends e as one text frame, as rpc-go does.
func WriteEnvelope(conn *websocket.Conn, e Envelope) error {
	return conn.WriteMessage(websocket.TextMessage, e.Marshal())
}

// CommandLine builds the method string of the initial message exactly as rpc-go's setCommandMethod does (§2.4).
// Values are not quoted: a profile or password containing a space breaks the server's parser, as with rpc-go.
func CommandLine(cfg AgentConfig) (string, error) {
	var b strings.Builder
	switch cfg.Command {
	case "activate":
		b.WriteString("activate --profile " + cfg.Profile)
	case "deactivate":
		b.WriteString("deactivate --password " + cfg.Password)
	case "maintenance":
		task := cfg.Task
		if task == "syncclock" { // rpc-go's CLI name; the wire name is synctime
			task = "synctime"
		}
		switch task {
		case "synctime", "syncip", "changepassword", "synchostname", "syncdeviceinfo":
		default:
			return "", fmt.Errorf("unknown maintenance task %q", cfg.Task)
		}
		// Single-dash -password is what rpc-go 2.x sends (minimist does not map it; servers read payload.password).
		b.WriteString("maintenance -password " + cfg.Password + " --" + task)
		if task == "changepassword" && cfg.TaskArg != "" {
			b.WriteString(" " + cfg.TaskArg)
		}
	default:
		return "", fmt.Errorf("unknown command %q (want activate, deactivate or maintenance)", cfg.Command)
	}
	if cfg.Force {
		b.WriteString(" -f")
	}
	return b.String(), nil
}

// InitialMessage builds the first frame rpc-go would send for cfg against dev, before cfg.Mutate.
func InitialMessage(cfg AgentConfig, dev *Device) (Envelope, error) {
	if dev == nil {
		return Envelope{}, errors.New("no device")
	}
	method, err := CommandLine(cfg)
	if err != nil {
		return Envelope{}, err
	}
	dc := dev.Config()
	p := Payload{
		Version:           dc.Version,
		Build:             dc.Build,
		SKU:               dc.SKU,
		Features:          amtFeatures(dc.Version, dc.SKU),
		UUID:              dc.UUID,
		Username:          dc.LSAUser,
		Password:          dc.LSAPassword,
		CurrentMode:       int(dev.Snapshot().Mode), // the mode now, which a previous run may have changed
		Hostname:          cfg.Hostname,
		FQDN:              cfg.DNSSuffix,
		Client:            clientName,
		CertificateHashes: cfg.CertHashes,
		IPConfiguration:   cfg.IPConfig,
		HostnameInfo:      cfg.HostnameInfo,
		FriendlyName:      cfg.FriendlyName,
		ProgressSupported: cfg.Progress,
	}
	if p.CurrentMode != int(ModePreProvisioning) {
		// rpc-go refuses to start against an activated device without --password and sends it instead of the LSA's.
		if cfg.Password == "" {
			return Envelope{}, ErrMissingPassword
		}
		p.Password = cfg.Password
	}
	if p.Hostname == "" {
		p.Hostname = dc.Hostname
	}
	if p.Hostname == "" {
		p.Hostname = "amtsim-" + strings.SplitN(dc.UUID, "-", 2)[0]
	}
	if p.FQDN == "" {
		// rpc-go prefers the MEBx PKI DNS suffix (trimmed of spaces and a trailing dot), else the OS's suffix, which
		// on a DHCP-configured host is what option 15 gave it.
		p.FQDN = strings.TrimSuffix(strings.TrimSpace(dc.TrustedDNSSuffix), ".")
		if p.FQDN == "" {
			p.FQDN = dc.DHCPDNSSuffix
		}
	}
	if p.CertificateHashes == nil {
		p.CertificateHashes = defaultCertHashes(dc.TrustedRootHashes)
	}
	pj, err := json.Marshal(p)
	if err != nil {
		return Envelope{}, fmt.Errorf("encode payload: %w", err)
	}
	appVersion := cfg.AppVersion
	if appVersion == "" {
		appVersion = DefaultAppVersion
	}
	return Envelope{
		Method:          method,
		APIKey:          agentAPIKey,
		AppVersion:      appVersion,
		ProtocolVersion: ProtocolVersion,
		Status:          statusOK,
		Message:         statusOK,
		Payload:         base64.StdEncoding.EncodeToString(pj),
		TenantID:        cfg.TenantID,
	}, nil
}

// RunAgent runs one rpc-go session against cfg.URL for dev and returns how it ended. It never panics on server
// misbehaviour; everything the server did wrong ends up in Result.Err.
func RunAgent(ctx context.Context, cfg AgentConfig, dev *Device) (res Result) {
	start := time.Now()
	defer func() { res.Duration = time.Since(start) }()

	if cfg.FirstByteTimeout <= 0 {
		cfg.FirstByteTimeout = DefaultFirstByteTimeout
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultAgentTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()

	// Like rpc-go, the request is assembled from the firmware before connecting.
	first, err := InitialMessage(cfg, dev)
	if err != nil {
		res.Err = err
		return res
	}
	if cfg.Mutate != nil {
		cfg.Mutate(&first)
	}

	conn, err := Dial(ctx, cfg.URL, cfg.TLS)
	if err != nil {
		res.Err = err
		return res
	}
	defer conn.Close()
	// Closing the socket is the only way to interrupt a blocked read; AfterFunc costs no goroutine until it fires.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	a := agentRun{cfg: cfg, dev: dev, conn: conn, res: &res}
	if err := a.loop(ctx, first); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("run aborted after %s: %w", time.Since(start).Round(time.Millisecond), context.Cause(ctx))
		}
		res.Err = err
	}
	return res
}

// agentRun is the state of one session. It is only touched by the goroutine running RunAgent.
type agentRun struct {
	cfg  AgentConfig
	dev  *Device
	conn *websocket.Conn
	res  *Result

	sentAt time.Time // when our last `response` went out; zero when no turnaround is being timed
}

// loop sends the request and handles server messages until a terminal one. A nil return means a terminal message
// was received (success or error); an error means the run broke off.
func (a *agentRun) loop(ctx context.Context, first Envelope) error {
	if err := WriteEnvelope(a.conn, first); err != nil {
		return fmt.Errorf("send activation request: %w", err)
	}
	for {
		_, data, err := a.conn.ReadMessage()
		if err != nil {
			if ctx.Err() != nil {
				return err
			}
			return closedError{cause: err}
		}
		if !a.sentAt.IsZero() {
			a.res.Turnarounds = append(a.res.Turnarounds, time.Since(a.sentAt))
			a.sentAt = time.Time{}
		}
		var msg Envelope
		if err := json.Unmarshal(data, &msg); err != nil {
			// rpc-go logs and drops such a frame, then waits until the server gives up; a test tool reports it.
			return fmt.Errorf("undecodable message from server (%d bytes): %w", len(data), err)
		}
		done, err := a.handle(ctx, msg)
		if err != nil || done {
			return err
		}
	}
}

// handle processes one server message; done is true after a terminal message.
func (a *agentRun) handle(ctx context.Context, msg Envelope) (done bool, err error) {
	switch msg.Method {
	case "success", "error":
		a.res.Method = msg.Method
		a.res.Message = msg.Message
		a.res.Status = msg.Message
		var sm statusMessage
		if json.Unmarshal([]byte(msg.Message), &sm) == nil {
			a.res.Status = sm.Status
			a.res.Components = sm.Components
		}
		return true, nil

	case "heartbeat_request":
		// rpc-go echoes the request with only method and status changed.
		msg.Method = "heartbeat_response"
		msg.Status = "success"
		if err := WriteEnvelope(a.conn, msg); err != nil {
			return false, fmt.Errorf("send heartbeat_response: %w", err)
		}
		return false, nil

	case "progress":
		if !a.cfg.Progress {
			// rpc-go v3 has no progress case: it would relay the null payload to AMT, get nothing back within its
			// response window and abort. Servers must not send progress unless progressSupported was true.
			return false, fmt.Errorf("server sent progress %q although the request did not set progressSupported", msg.Message)
		}
		a.res.Progress = append(a.res.Progress, msg.Message)
		return false, nil
	}

	// Anything else is relayed to the firmware, as rpc-go does. A bad base64 payload is logged by rpc-go and what
	// did decode is still written to LMS; an empty write gets no answer, so nothing is sent back.
	request, _ := base64.StdEncoding.DecodeString(msg.Payload)
	a.res.Exchanges++
	if len(request) == 0 {
		return false, nil
	}
	xctx, cancel := context.WithTimeout(ctx, a.cfg.FirstByteTimeout)
	reply, err := a.dev.Exchange(xctx, request)
	timedOut := xctx.Err() != nil
	cancel()
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	if err != nil && !timedOut {
		// A hard LMS error aborts an rpc-go run (non-tunnel mode).
		return false, fmt.Errorf("LME/LMS error: %w", err)
	}
	if len(reply) == 0 {
		return false, nil // the firmware did not answer within the first-byte window: yield
	}
	resp := Envelope{
		Method:          "response",
		APIKey:          agentAPIKey,
		AppVersion:      a.appVersion(),
		ProtocolVersion: ProtocolVersion,
		Status:          statusOK,
		Message:         statusOK,
		Payload:         base64.StdEncoding.EncodeToString(reply),
	}
	if err := WriteEnvelope(a.conn, resp); err != nil {
		return false, fmt.Errorf("send response: %w", err)
	}
	a.sentAt = time.Now()
	return false, nil
}

// closedError reads exactly as rpc-go reports a socket closed without a terminal message, and keeps the read error
// (e.g. a *websocket.CloseError with the server's close code) for errors.As in tests.
type closedError struct{ cause error }

func (e closedError) Error() string   { return ErrClosedUnexpectedly.Error() }
func (e closedError) Unwrap() []error { return []error{ErrClosedUnexpectedly, e.cause} }

func (a *agentRun) appVersion() string {
	if a.cfg.AppVersion != "" {
		return a.cfg.AppVersion
	}
	return DefaultAppVersion
}

// unrelatedRootHashes stand in for the rest of a real ME trust store: SHA-256 hashes of public CA roots that a
// provisioning certificate normally does not chain to. Real firmware reports ~20, inactive ones included.
var unrelatedRootHashes = []string{
	"c3846bf24b9e93ca64274c0ec67c1ecc5e024ffcacd2d74019350e81fe546ae4",
	"45140b3247eb9cc8c5b4f0d7b53091f73292089e6e5a63e2749dd3aca9198eda",
	"d7a7a0fb5d7e2731d771e9484ebcdef71d5f0c3e0a2948782bc83ee0ea699ef4",
	"1465fa205397b876faa6f0a9958e5590e40fcc7faa4fb7c2c8677521fb5fb658",
	"742c3192e607e424eb4549542be1bbc53e6174e2",
}

// defaultCertHashes puts the device's own roots among the unrelated ones (not first, so a server that only looks
// at the first hash is caught), lowercased and without duplicates.
func defaultCertHashes(trusted []string) []string {
	out := make([]string, 0, len(trusted)+len(unrelatedRootHashes))
	seen := make(map[string]bool, cap(out))
	add := func(h string) {
		h = strings.ToLower(h)
		if h != "" && !seen[h] {
			seen[h] = true
			out = append(out, h)
		}
	}
	for _, h := range unrelatedRootHashes[:2] {
		add(h)
	}
	for _, h := range trusted {
		add(h)
	}
	for _, h := range unrelatedRootHashes[2:] {
		add(h)
	}
	return out
}

// amtFeatures decodes ver+sku into rpc-go's features string (AMT ≥ 5 rules, which is every AMT the appliance
// supports; older versions get rpc-go's bit names for 3.x/4.x).
func amtFeatures(version, sku string) string {
	major, _, ok := strings.Cut(version, ".")
	if !ok {
		return "Invalid AMT version format"
	}
	ver, err := strconv.ParseFloat(major, 64)
	if err != nil {
		return "Invalid AMT version"
	}
	s, err := strconv.ParseInt(sku, 0, 64)
	if err != nil {
		return "Invalid SKU"
	}
	var f []string
	bit := func(mask int64, cond bool, name string) {
		if s&mask != 0 && cond {
			f = append(f, name)
		}
	}
	if ver < 5 {
		bit(0x02, true, "iQST")
		bit(0x04, true, "ASF")
		bit(0x08, true, "AMT")
		return strings.Join(f, " ")
	}
	bit(0x02, ver < 7, "iQST")
	bit(0x04, ver < 6, "ASF")
	bit(0x08, true, "AMT Pro")
	bit(0x10, true, "Intel Standard Manageability")
	bit(0x20, ver < 6, "TPM")
	bit(0x100, ver < 6, "Home IT")
	bit(0x400, ver < 6, "WOX")
	bit(0x2000, true, "AT-p")
	bit(0x4000, true, "Corporate")
	bit(0x8000, ver < 8, "L3 Mgt Upgrade")
	return strings.Join(f, " ")
}
