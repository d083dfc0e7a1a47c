package agent

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ProtocolVersion is the RPS protocol version this box speaks (RPS has kept 4.0.0 since 2021).
const ProtocolVersion = "4.0.0"

// MaxFrameBytes is the largest text frame accepted from an agent; RPS closes the socket above 1024*10*10 bytes.
const MaxFrameBytes = 100 * 1024

// Envelope is the JSON object carried by every text frame, in both directions (§2.2). rpc-go emits every key.
type Envelope struct {
	Method          string  `json:"method"`
	APIKey          string  `json:"apiKey"`
	AppVersion      string  `json:"appVersion"`
	ProtocolVersion string  `json:"protocolVersion"`
	Status          string  `json:"status"`
	Message         string  `json:"message"`
	FQDN            string  `json:"fqdn,omitempty"`
	Payload         *string `json:"payload"`
	TenantID        string  `json:"tenantId"`
}

// Payload is the device description rpc-go sends base64-encoded in its first message (§3).
type Payload struct {
	Ver               string           `json:"ver"`
	Build             string           `json:"build"`
	SKU               string           `json:"sku"`
	Features          string           `json:"features"`
	UUID              string           `json:"-"`
	RawUUID           json.RawMessage  `json:"uuid"`
	Username          string           `json:"username"`
	Password          string           `json:"password"`
	CurrentMode       int              `json:"currentMode"`
	Hostname          string           `json:"hostname"`
	FQDN              string           `json:"fqdn"`
	Client            string           `json:"client"`
	CertHashes        []string         `json:"certHashes"`
	IPConfiguration   *IPConfiguration `json:"ipConfiguration"`
	HostnameInfo      *HostnameInfo    `json:"hostnameInfo"`
	FriendlyName      string           `json:"friendlyName,omitempty"`
	TLSEnforced       bool             `json:"tlsEnforced,omitempty"`
	TLSTunnel         bool             `json:"tlsTunnel,omitempty"`
	LMSInstalled      bool             `json:"lmsInstalled,omitempty"`
	ProgressSupported bool             `json:"progressSupported,omitempty"`
}

// IPConfiguration is what rpc-go 2.x fills for the maintenance task syncip.
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

// HostnameInfo is what rpc-go 2.x fills for the maintenance task synchostname.
type HostnameInfo struct {
	DNSSuffixOS string `json:"dnsSuffixOS"`
	Hostname    string `json:"hostname"`
}

// Request is an agent's first message, parsed and validated: what the agent asks for and about which device.
type Request struct {
	Verb       string // activate, deactivate or maintenance
	Method     Method // the parsed method command line (its Password field is a fallback only)
	Payload    Payload
	TenantID   string
	AppVersion string
}

// Password is the AMT password the agent supplied: the payload's (authoritative, rpc-go always fills it), else the
// method line's --password flag (rps-protocol.md §2.4).
func (r *Request) Password() string {
	if r.Payload.Password != "" {
		return r.Payload.Password
	}
	return r.Method.Password
}

// ClientError is a failure whose Text is written for the technician and goes to the agent as is.
// Text never contains a secret.
type ClientError struct{ Text string }

func (e *ClientError) Error() string { return e.Text }

func clientErrorf(format string, args ...any) error {
	return &ClientError{Text: fmt.Sprintf(format, args...)}
}

// DecodeEnvelope parses one text frame.
func DecodeEnvelope(frame []byte) (Envelope, error) {
	var env Envelope
	dec := json.NewDecoder(bytes.NewReader(frame))
	if err := dec.Decode(&env); err != nil {
		return Envelope{}, clientErrorf("Error: Failed to parse client message payload. The message is not a JSON envelope: %s", jsonProblem(err))
	}
	if dec.More() {
		return Envelope{}, clientErrorf("Error: Failed to parse client message payload. The message has data after its JSON object.")
	}
	return env, nil
}

// ParseRequest validates an agent's first message in RPS's order (§2.3, §2.10, §4.1 step 1, §8) and returns the
// request. clientID names the connection in texts where RPS names it (before a device UUID is known).
func ParseRequest(env Envelope, clientID string) (*Request, error) {
	if env.ProtocolVersion != "" && !versionSupported(env.ProtocolVersion) {
		return nil, clientErrorf("Error: protocol version NOT supported: %s", env.ProtocolVersion)
	}
	m := ParseMethod(env.Method)
	if env.Payload == nil || *env.Payload == "" {
		return nil, clientErrorf("Error: Invalid payload from client")
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(*env.Payload))
	if err != nil {
		return nil, clientErrorf("Error: Failed to parse client message payload. The payload is not valid base64: %v", err)
	}
	var p Payload
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, clientErrorf("Error: Failed to parse client message payload. %s", jsonProblem(err))
	}
	uuid, present, err := decodeUUID(p.RawUUID)
	if err != nil {
		return nil, clientErrorf("Error: Failed to parse client message payload. %v", err)
	}
	if p.Client == "" || p.Ver == "" || p.Build == "" || !present {
		return nil, clientErrorf("Error: Invalid payload from client")
	}
	if len(uuid) != 36 {
		return nil, clientErrorf("%s - uuid not valid length", clientID)
	}
	p.UUID = strings.ToLower(uuid)
	if m.Verb == "" {
		// A method the box does not serve as a first message (e.g. `response` before any request).
		return nil, clientErrorf("Device %s Not a supported method received from AMT device", p.UUID)
	}
	return &Request{Verb: m.Verb, Method: m, Payload: p, TenantID: env.TenantID, AppVersion: env.AppVersion}, nil
}

// decodeUUID accepts the GUID string rpc-go sends and the 16-byte array legacy clients send (converted the
// SMBIOS way, as RPS does: the first three groups byte-swapped).
func decodeUUID(raw json.RawMessage) (uuid string, present bool, err error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", false, nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", false, fmt.Errorf("uuid: %s", jsonProblem(err))
		}
		return s, s != "", nil
	}
	var b []int
	if err := json.Unmarshal(raw, &b); err != nil {
		return "", false, errors.New("uuid must be a string or an array of 16 bytes")
	}
	if len(b) != 16 {
		return "", true, nil // reported as "uuid not valid length"
	}
	var u [16]byte
	for i, v := range b {
		if v < 0 || v > 255 {
			return "", false, errors.New("uuid array holds a value outside 0..255")
		}
		u[i] = byte(v)
	}
	return fmt.Sprintf("%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		u[3], u[2], u[1], u[0], u[5], u[4], u[7], u[6], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]), true, nil
}

// jsonProblem describes a JSON error without echoing input (a payload holds the LSA password).
func jsonProblem(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "the JSON ends too early"
	case errors.As(err, &syn) && strings.Contains(syn.Error(), "unexpected end"):
		return "the JSON ends too early"
	case errors.As(err, &syn):
		return fmt.Sprintf("invalid JSON at byte %d", syn.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("field %q must be %s, not %s", typ.Field, typ.Type, typ.Value)
	default:
		return "invalid JSON"
	}
}
