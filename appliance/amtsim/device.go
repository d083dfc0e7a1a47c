// Package amtsim simulates Intel AMT firmware (and, in agent*.go, the rpc-go agent) so that the appliance's
// activation, configuration and deactivation flows can be tested, demonstrated and load-tested without hardware.
//
// The firmware side (Device) is an independent implementation of what AMT does on port 16992: it parses raw
// HTTP/1.1 (chunk sizes are byte counts), enforces HTTP digest authentication (the local system account before
// activation, the admin account by its stored HA1 after), parses SOAP by local names, and verifies what real
// firmware verifies during provisioning: certificate chain order and signatures, the trusted root hash, the
// provisioning EKU, the leaf's domain against the DHCP or MEBx DNS suffix, certificate validity, and the RSA/SHA-256
// signature over the firmware and management-console nonces. Replies copy AMT's headers, namespace prefixes, element
// order, ReturnValue placement and faults, as captured from real firmware (the replies published with Intel's
// go-wsman-messages test data).
//
// It deliberately imports neither go-wsman-messages nor any appliance package: tests of the appliance against it
// are meaningful only if the two sides were written independently.
//
// It is a test and demo tool. It must never be used to talk to, or stand in for, real devices in production, and it
// is not an authority on AMT behaviour: where it and a real device disagree, the device is right. A Device is small
// (a few kilobytes, no goroutines) so that one process can simulate thousands.
//
// ReturnValue codes used (per rps-protocol.md §4):
//   - Setup, AdminSetup, UpgradeClientToAdmin: 0 Success, 2 InvalidState (wrong mode, no complete chain),
//     3 InvalidParam (malformed parameters), 4 certificate verification failed (chain signatures, untrusted root,
//     missing provisioning EKU, domain does not match the suffix, validity), 5 AuthFailed (nonce signature).
//   - AddNextCertInChain: 0 Success, 1 InvalidParam (undecodable certificate or flag), 3 InvalidState (first
//     certificate not flagged leaf, or a certificate after the root), 5 CertChainLengthExceeded (more than 10).
//   - Other AMT methods answer with PT_STATUS codes: 16 PT_STATUS_NOT_PERMITTED (e.g. SetMEBxPassword outside ACM),
//     36 PT_STATUS_INVALID_PARAMETER; CIM RequestStateChange answers 5 Invalid Parameter.
package amtsim

import (
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// Mode is AMT's control mode.
type Mode int

// Control modes, as IPS_HostBasedSetupService.CurrentControlMode reports them.
const (
	ModePreProvisioning Mode = 0 // not activated
	ModeCCM             Mode = 1 // client control mode
	ModeACM             Mode = 2 // admin control mode
)

func (m Mode) String() string {
	switch m {
	case ModePreProvisioning:
		return "pre-provisioning"
	case ModeCCM:
		return "CCM"
	case ModeACM:
		return "ACM"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// DeviceConfig describes one simulated device. Zero values are defaulted by NewDevice; Config returns the result.
type DeviceConfig struct {
	UUID              string                // lowercase GUID, 36 chars; random when empty
	Realm             string                // "Digest:" + 32 upper-case hex; random when empty
	LSAUser           string                // local system account user, default "$$OsAdmin"
	LSAPassword       string                // random when empty
	Mode              Mode                  // initial control mode
	AdminPassword     string                // initial admin password; required when Mode > 0
	MEBxPassword      string                // initial MEBx password, default "admin" (the factory default)
	DHCPDNSSuffix     string                // what DHCP option 15 gave the device
	TrustedDNSSuffix  string                // MEBx "PKI DNS suffix"; empty when not set
	TrustedRootHashes []string              // lowercase hex (SHA-1/256/384) of the provisioning roots the firmware trusts (active ones)
	Version           string                // AMT version, default "16.1.25"
	Build             string                // firmware build, default "2000"
	SKU               string                // default "16392"
	Hostname          string                // AMT host name, default "amtsim-<first 8 of UUID>"
	Wireless          bool                  // the device has a Wi-Fi port: adds "Intel(r) AMT Ethernet Port Settings 1"
	Latency           time.Duration         // added before every reply
	Fault             func(call Call) Fault // optional fault injection, called once per request; nil = none
}

// Call identifies one request for fault injection.
type Call struct {
	N           int    // requests since NewDevice, from 1 (every Exchange call counts)
	Action      string // SOAP Action, empty when the request could not be parsed
	ResourceURI string
}

// Fault says how the firmware misbehaves for one request.
type Fault struct {
	// Drop: the firmware handles the request (its state changes) but no reply ever arrives — the case the appliance
	// must resolve by re-reading state (e.g. CurrentControlMode after AdminSetup) rather than by retrying blindly.
	Drop bool
	// Unheard: the request never reaches the firmware: no reply and no state change.
	Unheard bool
	// Truncate: the request is handled and the reply is cut in the middle of its body (what rpc-go delivers when
	// AMT pauses for more than 100 ms).
	Truncate bool
	// Status: reply with this HTTP status (e.g. 500, 503) instead of handling the request.
	Status int
}

// Device is one simulated AMT firmware instance. It is safe for concurrent use, although one agent talks to it at
// a time in practice.
type Device struct {
	mu       sync.Mutex
	cfg      DeviceConfig
	lsaHA1   string
	trusted  []string // validated, lower-case root hashes
	nonceKey [16]byte
	seed     uint64 // varies chunk boundaries between devices

	requests    int
	actions     []string
	lastFailure string
	failed      bool // lastFailure was set while handling the current request
	msgID       uint64

	mode     Mode
	adminHA1 string
	mebx     string

	nonces       [nonceSlots]nonceSlot
	nonceSeqNext uint32

	// IPS_HostBasedSetupService
	configNonce    []byte // last ConfigurationNonce issued; nil once consumed
	chain          []*x509.Certificate
	chainB64       []string
	chainStatus    int // 0 not started, 1 in progress, 2 complete
	chainInstalled []string

	general  generalSettings
	wired    ethernetSettings
	wireless ethernetSettings

	redirState    int  // AMT_RedirectionService.EnabledState, 32768..32771
	redirListener bool // AMT_RedirectionService.ListenerEnabled
	kvmState      int  // CIM_KVMRedirectionSAP.EnabledState: 2, 3 or 6
	kvmRequested  int
	optIn         uint32 // IPS_OptInService.OptInRequired

	detectionStrings []string // AMT_EnvironmentDetectionSettingData.DetectionStrings

	clockOffset int64 // device clock minus host clock, seconds
	ta0         int64
	ta0Live     bool
	tm1, tm2    int64
	clockSet    bool

	enums    [4]enumContext
	enumNext uint32
}

// NewDevice validates and defaults cfg and returns a device in cfg.Mode.
func NewDevice(cfg DeviceConfig) (*Device, error) {
	if cfg.UUID == "" {
		var b [16]byte
		mustRand(b[:])
		b[6] = b[6]&0x0f | 0x40
		b[8] = b[8]&0x3f | 0x80
		h := hex.EncodeToString(b[:])
		cfg.UUID = h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
	}
	if !validUUID(cfg.UUID) {
		return nil, fmt.Errorf("amtsim: UUID %q is not a lowercase 36-character GUID", cfg.UUID)
	}
	if cfg.Realm == "" {
		var b [16]byte
		mustRand(b[:])
		cfg.Realm = "Digest:" + strings.ToUpper(hex.EncodeToString(b[:]))
	}
	if !validRealm(cfg.Realm) {
		return nil, fmt.Errorf("amtsim: realm %q is not \"Digest:\" followed by 32 upper-case hex digits", cfg.Realm)
	}
	if cfg.LSAUser == "" {
		cfg.LSAUser = "$$OsAdmin"
	}
	if cfg.LSAPassword == "" {
		var b [24]byte
		mustRand(b[:])
		cfg.LSAPassword = hex.EncodeToString(b[:])[:32]
	}
	if cfg.Mode < ModePreProvisioning || cfg.Mode > ModeACM {
		return nil, fmt.Errorf("amtsim: unknown mode %d", cfg.Mode)
	}
	if cfg.Mode != ModePreProvisioning && cfg.AdminPassword == "" {
		return nil, errors.New("amtsim: AdminPassword is required for an activated device")
	}
	if cfg.MEBxPassword == "" {
		cfg.MEBxPassword = "admin"
	}
	if cfg.Version == "" {
		cfg.Version = "16.1.25"
	}
	if cfg.Build == "" {
		cfg.Build = "2000"
	}
	if cfg.SKU == "" {
		cfg.SKU = "16392"
	}
	if cfg.Hostname == "" {
		cfg.Hostname = "amtsim-" + cfg.UUID[:8]
	}
	cfg.DHCPDNSSuffix = normalizeSuffix(cfg.DHCPDNSSuffix)
	cfg.TrustedDNSSuffix = normalizeSuffix(cfg.TrustedDNSSuffix)
	trusted := make([]string, 0, len(cfg.TrustedRootHashes))
	for _, h := range cfg.TrustedRootHashes {
		h = strings.ToLower(strings.TrimSpace(h))
		if _, err := hex.DecodeString(h); err != nil || (len(h) != 40 && len(h) != 64 && len(h) != 96) {
			return nil, fmt.Errorf("amtsim: trusted root hash %q is not SHA-1/256/384 hex", h)
		}
		trusted = append(trusted, h)
	}
	cfg.TrustedRootHashes = trusted

	d := &Device{cfg: cfg, trusted: trusted}
	d.lsaHA1 = md5hex(cfg.LSAUser + ":" + cfg.Realm + ":" + cfg.LSAPassword)
	mustRand(d.nonceKey[:])
	var s [8]byte
	mustRand(s[:])
	d.seed = binary.LittleEndian.Uint64(s[:])
	d.msgID = uint64(s[0])<<8 | uint64(s[1])
	d.mode = cfg.Mode
	d.mebx = cfg.MEBxPassword
	if cfg.Mode != ModePreProvisioning {
		d.adminHA1 = md5hex("admin:" + cfg.Realm + ":" + cfg.AdminPassword)
	}
	d.resetConfiguration()
	return d, nil
}

// resetConfiguration puts every configurable class back to factory defaults (at creation and on Unprovision).
// The defaults deliberately differ from what a typical profile wants (redirection all on, consent for everything,
// RMCP ping off) so that a configuration flow has real work to do.
func (d *Device) resetConfiguration() {
	d.general = defaultGeneralSettings(d.cfg)
	d.wired = defaultWired()
	d.wireless = ethernetSettings{dhcp: true}
	d.redirState = 32771
	d.redirListener = true
	d.kvmState = 2
	d.kvmRequested = 2
	d.optIn = optInAll
	d.detectionStrings = nil
	d.chain, d.chainB64, d.chainStatus = nil, nil, 0
}

func mustRand(b []byte) {
	if _, err := rand.Read(b); err != nil {
		panic("amtsim: crypto/rand failed: " + err.Error())
	}
}

func validUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
				return false
			}
		}
	}
	return true
}

func validRealm(s string) bool {
	h, ok := strings.CutPrefix(s, "Digest:")
	if !ok || len(h) != 32 {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !('0' <= c && c <= '9' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

func normalizeSuffix(s string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), ".")
}

// Exchange handles one raw HTTP/1.1 request as AMT on port 16992 would and returns the raw HTTP reply.
// reply == nil with err == nil means the firmware did not answer (a Drop/Unheard fault, or an incomplete request
// the firmware is still waiting on); err is only ever the context's error.
func (d *Device) Exchange(ctx context.Context, request []byte) (reply []byte, err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// Parsing needs no lock, and the Fault hook is called without it so that it may call Snapshot.
	req, st, why := parseRequest(request)
	var env *envelope
	var envErr error
	if st == parseOK {
		env, envErr = parseEnvelope(req.body)
	}

	d.mu.Lock()
	d.requests++
	call := Call{N: d.requests}
	d.mu.Unlock()
	if env != nil {
		call.Action, call.ResourceURI = env.action, env.resourceURI
	}
	var fault Fault
	if d.cfg.Fault != nil {
		fault = d.cfg.Fault(call)
	}
	if fault.Unheard {
		return nil, nil
	}

	if fault.Status != 0 {
		reply = d.htmlReply(fault.Status, "", reasonPhrase(fault.Status))
	} else {
		d.mu.Lock()
		reply = d.handle(&req, st, why, env, envErr, call.N)
		d.mu.Unlock()
	}
	if reply == nil || fault.Drop {
		return nil, nil
	}
	if fault.Truncate {
		reply = truncate(reply)
	}
	if d.cfg.Latency > 0 {
		t := time.NewTimer(d.cfg.Latency)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
	}
	return reply, nil
}

// handle runs one parsed request through the firmware: HTTP checks, digest authentication, SOAP dispatch.
// Callers hold d.mu.
func (d *Device) handle(req *httpRequest, st parseStatus, why string, env *envelope, envErr error, n int) []byte {
	switch st {
	case parseOK:
	case parseIncomplete:
		d.lastFailure = "http: " + why
		return nil
	default:
		d.lastFailure = "http: " + why
		code := 400
		switch st {
		case parseNotFound:
			code = 404
		case parseMethod:
			code = 405
		case parseTooLarge:
			code = 413
		case parseNotImpl:
			code = 501
		}
		return d.htmlReply(code, "", reasonPhrase(code))
	}
	if !strings.EqualFold(req.host, d.cfg.UUID+":16992") {
		d.lastFailure = "http: Host " + req.host + " is not " + d.cfg.UUID + ":16992"
		return d.htmlReply(400, "", "Bad Request")
	}
	if a := d.authenticate(req.authorization, "POST", req.target); !a.ok {
		d.lastFailure = "digest: " + a.why
		return d.htmlReply(401, d.challenge(a.stale),
			"Log on failed. Incorrect user name or password, or user account temporarily locked.")
	}

	var w xw
	code := 200
	seed := d.seed ^ uint64(n)*0x9E3779B97F4A7C15
	if envErr != nil {
		d.lastFailure = "soap: " + envErr.Error()
		writeFault(&w, faultSchemaValidation(envErr.Error()), "", d.nextMessageID())
		return d.soapReply(400, w.Bytes(), seed)
	}
	d.actions = append(d.actions, env.action)
	d.failed = false
	if f := d.dispatch(&w, env); f != nil {
		if !d.failed {
			d.fail("soap: %s %s", f.subcode, f.detail)
		}
		w.Reset()
		writeFault(&w, f, env.messageID, d.nextMessageID())
		code = 400
	}
	return d.soapReply(code, w.Bytes(), seed)
}

// nextMessageID returns AMT-style reply message IDs.
func (d *Device) nextMessageID() string {
	d.msgID++
	return fmt.Sprintf("uuid:00000000-8086-8086-8086-%012X", d.msgID&0xFFFFFFFFFFFF)
}

// Config returns the defaulted configuration (UUID, realm, LSA credentials, versions, suffixes, host name) that an
// agent needs to describe this device.
func (d *Device) Config() DeviceConfig {
	c := d.cfg
	c.TrustedRootHashes = append([]string(nil), d.cfg.TrustedRootHashes...)
	return c
}

// Snapshot is a copy of the firmware state, for test assertions.
type Snapshot struct {
	Mode         Mode
	Realm        string
	AdminHA1     string // hex md5("admin:"+realm+":"+pw); empty when not activated
	MEBxPassword string
	Hostname     string
	DomainName   string

	Requests        int      // every Exchange call
	Actions         []string // action URIs of authenticated requests, in order
	LastFailure     string   // why the firmware last refused something (diagnostics only; never sent on the wire)
	ChainPending    []string // base64 DER received by AddNextCertInChain for the chain being built
	ChainInstalled  []string // base64 DER of the chain the last successful AdminSetup/UpgradeClientToAdmin used
	CertChainStatus int      // 0 not started, 1 in progress, 2 complete

	// AMT_GeneralSettings
	SharedFQDN              bool
	AMTNetworkEnabled       int
	RmcpPingResponseEnabled bool

	// AMT_RedirectionService
	RedirectionEnabledState int  // 32768 none, 32769 IDER, 32770 SOL, 32771 IDER+SOL
	RedirectionListener     bool // ListenerEnabled
	// CIM_KVMRedirectionSAP
	KVMEnabledState int // 2 enabled, 3 disabled, 6 enabled but offline
	// IPS_OptInService
	OptInRequired uint32 // 0 none, 1 KVM, 4294967295 all

	// AMT_EthernetPortSettings, wired instance ("… Settings 0")
	DHCPEnabled    bool
	IpSyncEnabled  bool
	SharedStaticIp bool
	IPAddress      string
	SubnetMask     string
	DefaultGateway string
	PrimaryDNS     string
	SecondaryDNS   string

	// AMT_EnvironmentDetectionSettingData
	DetectionStrings []string

	// AMT_TimeSynchronizationService
	ClockSet bool  // SetHighAccuracyTimeSynch succeeded
	Tm1, Tm2 int64 // as last set
}

// AdminPasswordIs reports whether pw is the current admin password (compares HA1, which is all AMT stores).
func (s Snapshot) AdminPasswordIs(pw string) bool {
	if s.AdminHA1 == "" {
		return false
	}
	sum := md5.Sum([]byte("admin:" + s.Realm + ":" + pw))
	return hex.EncodeToString(sum[:]) == s.AdminHA1
}

// Snapshot returns a copy of the current state.
func (d *Device) Snapshot() Snapshot {
	d.mu.Lock()
	defer d.mu.Unlock()
	w := d.wired.shown(d)
	return Snapshot{
		Mode:                    d.mode,
		Realm:                   d.cfg.Realm,
		AdminHA1:                d.adminHA1,
		MEBxPassword:            d.mebx,
		Hostname:                d.general.hostName,
		DomainName:              d.general.domainName,
		Requests:                d.requests,
		Actions:                 append([]string(nil), d.actions...),
		LastFailure:             d.lastFailure,
		ChainPending:            append([]string(nil), d.chainB64...),
		ChainInstalled:          append([]string(nil), d.chainInstalled...),
		CertChainStatus:         d.chainStatus,
		SharedFQDN:              d.general.sharedFQDN,
		AMTNetworkEnabled:       d.general.amtNetworkEnabled,
		RmcpPingResponseEnabled: d.general.rmcpPing,
		RedirectionEnabledState: d.redirState,
		RedirectionListener:     d.redirListener,
		KVMEnabledState:         d.kvmState,
		OptInRequired:           d.optIn,
		DHCPEnabled:             d.wired.dhcp,
		IpSyncEnabled:           d.wired.ipSync,
		SharedStaticIp:          d.wired.sharedStatic,
		IPAddress:               w.ip,
		SubnetMask:              w.mask,
		DefaultGateway:          w.gateway,
		PrimaryDNS:              w.dns1,
		SecondaryDNS:            w.dns2,
		DetectionStrings:        append([]string(nil), d.detectionStrings...),
		ClockSet:                d.clockSet,
		Tm1:                     d.tm1,
		Tm2:                     d.tm2,
	}
}
