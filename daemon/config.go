package main

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/amtedge/amtedge/secrets/seal"
)

// Config is the box's configuration file: loaded, defaults filled, validated; every error names its key.
// Secrets never appear inline: keys and passwords are referenced by file.
type Config struct {
	// StateDir holds the sealed store, the data-encryption key (software seal), generated TLS material and
	// the demo site. Relative paths resolve against the config file's directory.
	StateDir string `yaml:"stateDir"`
	// Site is the site file defining domains and profiles. Empty with Demo set: a demo site is generated.
	Site    string        `yaml:"site"`
	Demo    DemoConfig    `yaml:"demo"`
	Agent   AgentConfig   `yaml:"agent"`
	WSMAN   WSMANConfig   `yaml:"wsman"`
	Custody CustodyConfig `yaml:"custody"`
	Log     LogConfig     `yaml:"log"`
	Metrics MetricsConfig `yaml:"metrics"`
	Control ControlConfig `yaml:"control"`
	Admin   AdminConfig   `yaml:"admin"`
	Vault   VaultConfig   `yaml:"vault"`
	// ShutdownTimeout bounds how long a stopping box waits for running sessions to finish.
	ShutdownTimeout time.Duration `yaml:"shutdownTimeout"`

	dir string // the config file's directory
}

// DemoConfig makes the box generate a demo site on first start (the embedded default of `make run`).
type DemoConfig struct {
	Enabled bool   `yaml:"enabled"`
	Suffix  string `yaml:"suffix"` // DNS suffix of the demo domain
}

// AgentConfig is the agent (rpc-go) endpoint.
type AgentConfig struct {
	Listen              string        `yaml:"listen"`
	TLSCertFile         string        `yaml:"tlsCertFile"` // empty: self-signed, generated in stateDir on first start
	TLSKeyFile          string        `yaml:"tlsKeyFile"`
	FirstMessageTimeout time.Duration `yaml:"firstMessageTimeout"`
	SessionTimeout      time.Duration `yaml:"sessionTimeout"`
	MaxSessions         int           `yaml:"maxSessions"`
	// AllowedNetworks restricts agents to these source networks (CIDR), e.g. the box's LAN segment; empty: any.
	AllowedNetworks []string `yaml:"allowedNetworks"`
}

// allowedNetworks parses agent.allowedNetworks (validated at load).
func (a AgentConfig) allowedNetworks() []netip.Prefix {
	out := make([]netip.Prefix, 0, len(a.AllowedNetworks))
	for _, s := range a.AllowedNetworks {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
		}
	}
	return out
}

// WSMANConfig tunes the WS-Management exchanges relayed through agents.
type WSMANConfig struct {
	RequestTimeout time.Duration `yaml:"requestTimeout"`
	Attempts       int           `yaml:"attempts"`
	ReadyTimeout   time.Duration `yaml:"readyTimeout"`
}

// CustodyConfig says where secrets are kept.
type CustodyConfig struct {
	// Seal protects the store's data-encryption key: "tpm" (sealed by the box's TPM 2.0) or "software" (a 0600
	// key file in stateDir; loudly reported).
	Seal string `yaml:"seal"`
	// Standalone accepts that, without a central Vault, the box holds the only copy of the random passwords it
	// generates. Profiles with random passwords are refused unless this is set.
	Standalone bool          `yaml:"standalone"`
	TPM        TPMSealConfig `yaml:"tpm"`
}

// TPMSealConfig tunes the TPM seal (custody.seal: tpm).
type TPMSealConfig struct {
	Device    string `yaml:"device"`    // default /dev/tpmrm0 (the kernel's resource manager)
	SRKHandle uint32 `yaml:"srkHandle"` // persistent handle of the storage root key, default 0x81000001
	// PCRs bind the key to the boot state. Default none: PCR-bound secrets stop unsealing after a firmware
	// update, and the box then starts degraded until `amtedge store recover`.
	PCRs []int `yaml:"pcrs"`
}

// sealer returns the configured way of keeping the store's key.
func (c *Config) sealer() seal.Sealer {
	stateDir := c.path(c.StateDir)
	if c.Custody.Seal == "software" {
		return seal.NewSoftwareIn(stateDir)
	}
	return seal.NewTPM(c.tpmConfig())
}

// keyPath is the file holding the store's key: the software key, or the TPM-sealed blob.
func (c *Config) keyPath() string {
	stateDir := c.path(c.StateDir)
	if c.Custody.Seal == "software" {
		return seal.NewSoftwareIn(stateDir).Path()
	}
	return seal.TPMBlobPath(stateDir)
}

func (c *Config) tpmConfig() seal.TPMConfig {
	return seal.TPMConfig{Device: c.Custody.TPM.Device, SRKHandle: c.Custody.TPM.SRKHandle, PCRs: c.Custody.TPM.PCRs,
		BlobPath: seal.TPMBlobPath(c.path(c.StateDir))}
}

// LogConfig sets the log output.
type LogConfig struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // text or json
	// Output is where records go: "journal" (journald's native protocol with structured fields), "stderr" (text
	// or json per Format), or "auto": the journal when running under systemd, stderr otherwise.
	Output string `yaml:"output"`
}

// ControlConfig is the local control socket the CLI talks to.
type ControlConfig struct {
	// Socket overrides the socket's path (default: control.sock in $RUNTIME_DIRECTORY, else in stateDir).
	Socket string `yaml:"socket"`
}

// AdminConfig is the admin listener (HTTPS): Prometheus /metrics for now (daemon/admin.go).
type AdminConfig struct {
	// Listen is host:port; default ":8443", the empty string disables the listener. A pointer, so an explicit ""
	// is told apart from an absent key; never nil after fillDefaults (use listen()).
	Listen *string `yaml:"listen"`
	// TLSCertFile/TLSKeyFile: empty serves the agent listener's certificate (and follows its reloads).
	TLSCertFile string `yaml:"tlsCertFile"`
	TLSKeyFile  string `yaml:"tlsKeyFile"`
	// Web UI and REST API sign-in (appliance/access): a browser session ends after SessionIdle without use and
	// SessionMax after sign-in; LoginAttempts failed sign-ins from one address within LoginWindow refuse that
	// address for the rest of the window.
	SessionIdle   time.Duration `yaml:"sessionIdle"`
	SessionMax    time.Duration `yaml:"sessionMax"`
	LoginAttempts int           `yaml:"loginAttempts"`
	LoginWindow   time.Duration `yaml:"loginWindow"`
}

// listen is admin.listen with its default filled in; "" means disabled.
func (a AdminConfig) listen() string {
	if a.Listen == nil {
		return defaultAdminListen
	}
	return *a.Listen
}

const defaultAdminListen = ":8443"

// MetricsConfig sets the periodic metrics record.
type MetricsConfig struct {
	Interval time.Duration `yaml:"interval"` // between two metrics records
}

//go:embed default.yaml
var defaultConfigYAML []byte

// loadConfig reads a config file; an empty path takes the embedded default (the demo box of `make run`), whose
// relative paths resolve against the working directory.
func loadConfig(path string) (*Config, error) {
	data, dir := defaultConfigYAML, "."
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read config: %w", err)
		}
		data, dir = b, filepath.Dir(path)
	}
	cfg, err := parseConfig(data, dir)
	if err != nil {
		if path == "" {
			path = "embedded default config"
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

func parseConfig(data []byte, dir string) (*Config, error) {
	var cfg Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) { // an empty file means all defaults
		return nil, fmt.Errorf("parse: %s", yamlProblem(err))
	}
	cfg.dir = dir
	cfg.fillDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// yamlProblem turns a YAML decoding error into "line N: what" sentences without Go type names.
func yamlProblem(err error) string {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return strings.TrimPrefix(err.Error(), "yaml: ")
	}
	out := make([]string, len(te.Errors))
	for i, e := range te.Errors {
		if j := strings.Index(e, " in type "); j >= 0 {
			e = e[:j]
		}
		out[i] = strings.Replace(e, " into time.Duration", " into a duration (e.g. 30s, 10m)", 1)
	}
	return strings.Join(out, "; ")
}

func (c *Config) fillDefaults() {
	if c.StateDir == "" {
		c.StateDir = "/var/lib/amtedge"
	}
	if c.Demo.Enabled && c.Demo.Suffix == "" {
		c.Demo.Suffix = "demo.amtedge.test"
	}
	if c.Agent.Listen == "" {
		c.Agent.Listen = ":8080"
	}
	if c.Agent.FirstMessageTimeout == 0 {
		c.Agent.FirstMessageTimeout = 30 * time.Second
	}
	if c.Agent.SessionTimeout == 0 {
		c.Agent.SessionTimeout = 10 * time.Minute
	}
	if c.Agent.MaxSessions == 0 {
		c.Agent.MaxSessions = 20000
	}
	if c.WSMAN.RequestTimeout == 0 {
		c.WSMAN.RequestTimeout = 12 * time.Second
	}
	if c.WSMAN.Attempts == 0 {
		c.WSMAN.Attempts = 3
	}
	if c.WSMAN.ReadyTimeout == 0 {
		c.WSMAN.ReadyTimeout = 60 * time.Second
	}
	if c.Custody.Seal == "" {
		c.Custody.Seal = "tpm"
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "text"
	}
	if c.Log.Output == "" {
		c.Log.Output = "auto"
	}
	if c.Metrics.Interval == 0 {
		c.Metrics.Interval = time.Minute
	}
	if c.Admin.Listen == nil {
		l := defaultAdminListen
		c.Admin.Listen = &l
	}
	if c.Admin.SessionIdle == 0 {
		c.Admin.SessionIdle = 30 * time.Minute
	}
	if c.Admin.SessionMax == 0 {
		c.Admin.SessionMax = 12 * time.Hour
	}
	if c.Admin.LoginAttempts == 0 {
		c.Admin.LoginAttempts = 5
	}
	if c.Admin.LoginWindow == 0 {
		c.Admin.LoginWindow = 5 * time.Minute
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = 30 * time.Second
	}
}

func (c *Config) validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		if format == "" { // key already says it all
			errs = append(errs, errors.New(key))
			return
		}
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if c.Site == "" && !c.Demo.Enabled {
		bad("site", "required (the site file with domains and profiles), unless demo.enabled is true")
	}
	if c.Site != "" && c.Demo.Enabled {
		bad("demo.enabled", "cannot be combined with site: the demo generates its own site file")
	}
	if _, _, err := net.SplitHostPort(c.Agent.Listen); err != nil {
		bad("agent.listen", "%q is not host:port (%v)", c.Agent.Listen, err)
	}
	if (c.Agent.TLSCertFile == "") != (c.Agent.TLSKeyFile == "") {
		bad("agent.tlsCertFile", "tlsCertFile and tlsKeyFile go together")
	}
	for key, d := range map[string]time.Duration{"agent.firstMessageTimeout": c.Agent.FirstMessageTimeout,
		"agent.sessionTimeout": c.Agent.SessionTimeout, "wsman.requestTimeout": c.WSMAN.RequestTimeout,
		"wsman.readyTimeout": c.WSMAN.ReadyTimeout} {
		if d < 0 {
			bad(key, "must be positive")
		}
	}
	for i, s := range c.Agent.AllowedNetworks {
		if _, err := netip.ParsePrefix(s); err != nil {
			bad(fmt.Sprintf("agent.allowedNetworks[%d]", i), "%q is not a network in CIDR notation (e.g. 10.1.0.0/16)", s)
		}
	}
	if c.Agent.MaxSessions < 0 {
		bad("agent.maxSessions", "must be positive")
	}
	if c.WSMAN.Attempts < 1 || c.WSMAN.Attempts > 10 {
		bad("wsman.attempts", "must be 1 to 10, not %d", c.WSMAN.Attempts)
	}
	if c.Vault.configured() {
		if err := c.vaultClientConfig().Validate(); err != nil {
			bad(err.Error(), "") // the client's checks name their vault.* key
		}
		if c.Vault.PullInterval < 0 {
			bad("vault.pullInterval", "must be positive")
		}
		if c.Vault.MaxAge < 0 {
			bad("vault.maxAge", "must be positive")
		}
		switch c.Vault.WhenStale {
		case "", "continue", "refuse":
		default:
			bad("vault.whenStale", "must be continue or refuse, not %q", c.Vault.WhenStale)
		}
	}
	switch c.Custody.Seal {
	case "software":
	case "tpm":
		if err := c.tpmConfig().Validate(); err != nil {
			bad("custody.tpm."+err.Error(), "")
		}
	default:
		bad("custody.seal", "must be \"tpm\" or \"software\", not %q", c.Custody.Seal)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "must be debug, info, warn or error, not %q", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		bad("log.format", "must be text or json, not %q", c.Log.Format)
	}
	switch c.Log.Output {
	case "auto", "journal", "stderr":
	default:
		bad("log.output", "must be auto, journal or stderr, not %q", c.Log.Output)
	}
	// Below a second the record would flood the journal; metrics are for trends, not tracing.
	if c.Metrics.Interval < time.Second {
		bad("metrics.interval", "must be at least 1s, not %s", c.Metrics.Interval)
	}
	if c.Control.Socket != "" {
		// sun_path holds 108 bytes with its terminating NUL.
		if p := c.path(c.Control.Socket); len(p) > 107 || strings.HasSuffix(c.Control.Socket, "/") {
			bad("control.socket", "%q is not a usable unix socket path (a file name, at most 107 bytes)", p)
		}
	}
	if l := c.Admin.listen(); l != "" {
		if _, _, err := net.SplitHostPort(l); err != nil {
			bad("admin.listen", "%q is not host:port (%v); \"\" disables the admin listener", l, err)
		}
	}
	if (c.Admin.TLSCertFile == "") != (c.Admin.TLSKeyFile == "") {
		bad("admin.tlsCertFile", "tlsCertFile and tlsKeyFile go together")
	}
	if c.Admin.SessionIdle < time.Minute {
		bad("admin.sessionIdle", "must be at least 1m, not %s", c.Admin.SessionIdle)
	}
	if c.Admin.SessionMax < c.Admin.SessionIdle {
		bad("admin.sessionMax", "must be at least admin.sessionIdle (%s), not %s", c.Admin.SessionIdle, c.Admin.SessionMax)
	}
	if c.Admin.LoginAttempts < 1 || c.Admin.LoginAttempts > 1000 {
		bad("admin.loginAttempts", "must be 1 to 1000, not %d", c.Admin.LoginAttempts)
	}
	if c.Admin.LoginWindow < time.Second {
		bad("admin.loginWindow", "must be at least 1s, not %s", c.Admin.LoginWindow)
	}
	if c.ShutdownTimeout < 0 {
		bad("shutdownTimeout", "must be positive")
	}
	return errors.Join(errs...)
}

// path resolves a configured path against the config file's directory.
func (c *Config) path(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.dir, p)
}

// acceptsRandomPasswords: random per-device passwords need a copy outside the box (Vault), or the operator's
// explicit acceptance that the box holds the only one (custody.standalone).
func (c *Config) acceptsRandomPasswords() bool { return c.Custody.Standalone || c.Vault.configured() }
