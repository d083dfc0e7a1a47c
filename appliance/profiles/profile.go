// Package profiles holds the activation profile: the model an operator (or an
// RPS-era script) creates through the admin API or the site file, its
// validation with the rules and messages of Intel's Remote Provisioning
// Server, the defaults the configuration flows apply, and the generation and
// complexity rules of AMT passwords.
//
// The model keeps RPS's JSON field names exactly (reference §7.2), so that
// existing scripts posting to /api/v1/admin/profiles keep working, and
// Validate reports errors in the express-validator item shape RPS returns in
// its 400 {"errors":[…]} body.
//
// What this package must never do: echo a password. A profile may carry the
// static AMT and MEBx passwords; no validation error, log value, String or
// GoString of a profile ever contains them, and API responses are built from
// Redacted. Passwords are only ever compared against the rules, never quoted.
//
// The package is pure: no I/O, no global mutable state, no knowledge of the
// stores. Checks that need a store (does the named Wi-Fi, proxy, CIRA or
// 802.1X config exist? is the name already taken?) belong to the caller that
// has the store.
package profiles

import (
	"fmt"
	"log/slog"
	"slices"
)

// Activation modes, the values of Profile.Activation (RPS `ClientAction`).
const (
	ActivationACM = "acmactivate" // Admin Control Mode, needs a domain's provisioning certificate
	ActivationCCM = "ccmactivate" // Client Control Mode
)

// User consent values, the values of Profile.UserConsent (RPS `AMTUserConsent`).
// They map to IPS_OptInService OptInRequired 0, 1 and 4294967295.
const (
	ConsentNone = "None"
	ConsentKVM  = "KVM"
	ConsentAll  = "All"
)

// TLS signing authorities, the values of Profile.TLSSigningAuthority.
const (
	SigningSelfSigned  = "SelfSigned"
	SigningMicrosoftCA = "MicrosoftCA"
)

// TLS modes, the values of Profile.TLSMode (reference §5.4).
const (
	TLSServerOnly        = 1 // server authentication only
	TLSServerAllowNonTLS = 2 // server authentication, non-TLS still accepted
	TLSMutualOnly        = 3 // mutual TLS only
	TLSMutualAllowNonTLS = 4 // mutual TLS, non-TLS still accepted
)

// Profile is an AMT activation profile (RPS `AMTConfiguration`). JSON names
// are RPS's; YAML names are the same so that the site file reads like the API.
//
// Optional booleans are pointers because "absent" has a meaning of its own:
// dhcpEnabled is required (nil is an error), and the feature switches take
// their defaults from WithDefaults only when absent.
//
// A static password is "present" when it is non-empty. RPS distinguishes an
// absent password from an empty string (which then fails the complexity
// rule); here both are absent, which reports "amtPassword is mandatory"
// instead of a complexity error for "" — the same outcome, a clearer message.
type Profile struct {
	ProfileName string `json:"profileName" yaml:"profileName"`
	Activation  string `json:"activation" yaml:"activation"`

	AMTPassword                string `json:"amtPassword,omitempty" yaml:"amtPassword,omitempty"`
	GenerateRandomPassword     bool   `json:"generateRandomPassword" yaml:"generateRandomPassword,omitempty"`
	MEBxPassword               string `json:"mebxPassword,omitempty" yaml:"mebxPassword,omitempty"`
	GenerateRandomMEBxPassword bool   `json:"generateRandomMEBxPassword" yaml:"generateRandomMEBxPassword,omitempty"`

	DHCPEnabled          *bool `json:"dhcpEnabled" yaml:"dhcpEnabled,omitempty"`
	IPSyncEnabled        *bool `json:"ipSyncEnabled,omitempty" yaml:"ipSyncEnabled,omitempty"`
	LocalWifiSyncEnabled *bool `json:"localWifiSyncEnabled,omitempty" yaml:"localWifiSyncEnabled,omitempty"`
	UEFIWifiSyncEnabled  *bool `json:"uefiWifiSyncEnabled,omitempty" yaml:"uefiWifiSyncEnabled,omitempty"`

	WifiConfigs          []WifiConfig  `json:"wifiConfigs,omitempty" yaml:"wifiConfigs,omitempty"`
	ProxyConfigs         []ProxyConfig `json:"proxyConfigs,omitempty" yaml:"proxyConfigs,omitempty"`
	IEEE8021xProfileName string        `json:"ieee8021xProfileName,omitempty" yaml:"ieee8021xProfileName,omitempty"`
	CIRAConfigName       string        `json:"ciraConfigName,omitempty" yaml:"ciraConfigName,omitempty"`
	TLSMode              *int          `json:"tlsMode,omitempty" yaml:"tlsMode,omitempty"`
	TLSSigningAuthority  string        `json:"tlsSigningAuthority,omitempty" yaml:"tlsSigningAuthority,omitempty"`

	UserConsent string `json:"userConsent,omitempty" yaml:"userConsent,omitempty"`
	IDEREnabled *bool  `json:"iderEnabled,omitempty" yaml:"iderEnabled,omitempty"`
	KVMEnabled  *bool  `json:"kvmEnabled,omitempty" yaml:"kvmEnabled,omitempty"`
	SOLEnabled  *bool  `json:"solEnabled,omitempty" yaml:"solEnabled,omitempty"`

	Tags     []string `json:"tags,omitempty" yaml:"tags,omitempty"`
	TenantID string   `json:"tenantId" yaml:"tenantId,omitempty"`
	// Version is the optimistic-concurrency token (RPS: Postgres xmin),
	// required on PATCH, meaningless on create.
	Version string `json:"version,omitempty" yaml:"version,omitempty"`
}

// WifiConfig links a profile to a wireless config by name, with the priority
// AMT gives the Wi-Fi profile (RPS `ProfileWifiConfigs`).
type WifiConfig struct {
	ProfileName string `json:"profileName" yaml:"profileName"`
	Priority    int    `json:"priority" yaml:"priority"`
}

// ProxyConfig links a profile to an HTTP proxy config by name (RPS
// `ProfileProxyConfigs`).
type ProxyConfig struct {
	Name     string `json:"name" yaml:"name"`
	Priority int    `json:"priority" yaml:"priority"`
}

// IsACM reports whether the profile activates in Admin Control Mode.
func (p Profile) IsACM() bool { return p.Activation == ActivationACM }

// UsesRandomPasswords reports whether activating with this profile creates a
// per-device password that exists nowhere but in the box's store. Without a
// durable secret store such profiles must be refused (reference §8), because
// the box would hold the only copy of a device's admin password.
func (p Profile) UsesRandomPasswords() bool {
	return p.GenerateRandomPassword || (p.IsACM() && p.GenerateRandomMEBxPassword)
}

// WithDefaults returns the profile with RPS's defaults filled in for what the
// operator left out (reference §5.3, §7.2): user consent KVM for ACM and All
// for CCM, KVM on, SOL and IDER off, IP sync on for static-IP profiles, and
// the TLS signing authority SelfSigned when a TLS mode is set (and cleared
// when none is, as RPS clears it). Explicit values are kept, even invalid
// ones: defaults never hide a validation error.
func (p Profile) WithDefaults() Profile {
	if p.UserConsent == "" {
		switch p.Activation {
		case ActivationACM:
			p.UserConsent = ConsentKVM
		case ActivationCCM:
			p.UserConsent = ConsentAll
		}
	}
	if p.KVMEnabled == nil {
		p.KVMEnabled = ptr(true)
	}
	if p.SOLEnabled == nil {
		p.SOLEnabled = ptr(false)
	}
	if p.IDEREnabled == nil {
		p.IDEREnabled = ptr(false)
	}
	if p.IPSyncEnabled == nil && p.DHCPEnabled != nil && !*p.DHCPEnabled {
		p.IPSyncEnabled = ptr(true)
	}
	if p.TLSMode == nil {
		p.TLSSigningAuthority = ""
	} else if p.TLSSigningAuthority == "" {
		p.TLSSigningAuthority = SigningSelfSigned
	}
	return p
}

// Redacted returns the profile without its static passwords, for API
// responses and anything else that leaves the process. The slices are copied
// so the result shares nothing mutable with the original.
func (p Profile) Redacted() Profile {
	p.AMTPassword = ""
	p.MEBxPassword = ""
	p.WifiConfigs = slices.Clone(p.WifiConfigs)
	p.ProxyConfigs = slices.Clone(p.ProxyConfigs)
	p.Tags = slices.Clone(p.Tags)
	return p
}

// Unsupported lists, in a fixed order, the features the profile asks for
// that this version of the appliance does not apply to devices yet. The
// configuration flows report them as "not supported yet" rather than
// skipping them silently, so that an operator migrating RPS profiles learns
// what the box did not do. Each entry names the feature and its field.
func (p Profile) Unsupported() []string {
	var out []string
	if len(p.WifiConfigs) > 0 {
		out = append(out, "Wi-Fi profiles (wifiConfigs)")
	}
	if p.LocalWifiSyncEnabled != nil && *p.LocalWifiSyncEnabled {
		out = append(out, "local Wi-Fi profile sync (localWifiSyncEnabled)")
	}
	if p.UEFIWifiSyncEnabled != nil && *p.UEFIWifiSyncEnabled {
		out = append(out, "UEFI Wi-Fi profile sharing (uefiWifiSyncEnabled)")
	}
	if p.TLSMode != nil {
		out = append(out, "TLS (tlsMode)")
	}
	if p.CIRAConfigName != "" {
		out = append(out, "CIRA (ciraConfigName)")
	}
	if len(p.ProxyConfigs) > 0 {
		out = append(out, "HTTP proxies (proxyConfigs)")
	}
	if p.IEEE8021xProfileName != "" {
		out = append(out, "802.1X (ieee8021xProfileName)")
	}
	return out
}

// String describes the profile without any secret, so that fmt's %v and %s
// of a profile are safe to log.
func (p Profile) String() string {
	return fmt.Sprintf("profile %q (%s)", p.ProfileName, p.Activation)
}

// redactedProfile has Profile's fields and none of its methods, so that
// GoString and LogValue can format it without recursing into themselves.
type redactedProfile Profile

// GoString makes %#v print the redacted profile.
func (p Profile) GoString() string {
	return fmt.Sprintf("%#v", redactedProfile(p.Redacted()))
}

// LogValue makes slog record the redacted profile.
func (p Profile) LogValue() slog.Value {
	return slog.AnyValue(redactedProfile(p.Redacted()))
}

func ptr[T any](v T) *T { return &v }
