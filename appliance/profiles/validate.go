package profiles

import (
	"fmt"
	"regexp"
	"slices"
)

// FieldError is one validation failure, in the shape of an express-validator
// item, which RPS returns as 400 {"errors":[…]}. Value echoes the offending
// value for ordinary fields and is always nil for passwords; Msg never
// contains a password either.
type FieldError struct {
	Type     string `json:"type"` // always "field"
	Value    any    `json:"value,omitempty"`
	Msg      string `json:"msg"`
	Path     string `json:"path"`     // the JSON field name, e.g. "activation"
	Location string `json:"location"` // always "body"
}

// Error makes a FieldError usable as an error: "path: msg".
func (e FieldError) Error() string { return e.Path + ": " + e.Msg }

// ValidateOptions adjusts Validate for callers that hold a password
// somewhere else than in the profile.
type ValidateOptions struct {
	// AMTPasswordByReference and MEBxPasswordByReference count the password
	// as present although the field is empty: the site file names a file
	// that holds it. Its complexity is checked when the file is read.
	AMTPasswordByReference  bool
	MEBxPasswordByReference bool
}

// profileNameRE is RPS's `^[a-zA-Z0-9$@$!%*#?&-_~^]+$` read as documented:
// the literal characters & - _ rather than the JavaScript range &…_, which
// would also admit `/`, `.`, `:`, `<`, `>`, `[`, `\` and more — characters
// that turn a name into a different Vault path (`profiles/<name>`) or break
// the `/profiles/:profileName` route. See the password rules for the same
// quirk.
var profileNameRE = regexp.MustCompile(`^[a-zA-Z0-9$@!%*#?&_~^-]+$`)

// Messages shared by tests and callers that want to recognise a rule.
// Wording is RPS's (rps:src/routes/admin/profiles/amtProfileValidator.ts),
// except where RPS's text is ungrammatical or uninformative (passwords,
// dhcpEnabled, the item checks RPS does not make).
const (
	MsgProfileNameRequired = "AMT profile name is required"
	MsgProfileNameInvalid  = "AMT profile name accepts letters, numbers, special characters and no spaces"
	MsgActivationRequired  = "Activation is required"
	MsgActivationInvalid   = "Activation accepts either acmactivate (admin control activation) or ccmactivate (client control mode activation)"
	MsgAMTPasswordBoth     = "Either generate Random AMT Password should be enabled or should provide AMT Password but not both"
	MsgAMTPasswordMissing  = "If generate random AMT password is disabled, amtPassword is mandatory"
	MsgMEBxPasswordBoth    = "Either generate MEBx password should be enabled or should provide MEBx password, but not both"
	MsgMEBxPasswordMissing = "If generate random MEBx password is disabled, mebxPassword is mandatory"
	MsgTLSModeInvalid      = "tlsMode must be set to one of these values: 1 (Server Authentication Only), 2 (Server and Non-TLS Authentication), 3 (Mutual TLS only), 4 (Mutual and Non-TLS authentication)"
	MsgTLSSigningInvalid   = "TLS Signing Authority must be one of SelfSigned,MicrosoftCA"
	MsgCIRAWithTLS         = "CIRA cannot be configured if TLS is enabled"
	MsgDHCPRequired        = "DHCP enabled is required and must be a boolean"
	MsgWifiNeedsDHCP       = "Wifi supports only DHCP in AMT"
	MsgWifiTooMany         = "A maximum of 8 wifi profiles can be stored at a time."
	MsgWifiPriority        = "Wifi config priority should be an integer and between 1 and 255"
	MsgWifiNameRequired    = "Wifi config profile name is required"
	MsgProxyTooMany        = "A maximum of 15 proxy profiles can be stored at a time."
	MsgProxyPriority       = "Proxy config priority should be an integer and between 1 and 255"
	MsgProxyNameRequired   = "Proxy config name is required"
	MsgUserConsentInvalid  = "User consent must be one of None,All,KVM"
	MsgUserConsentCCM      = "User consent is required for all the actions in client control mode"
)

const (
	maxWifiConfigs    = 8
	maxProxyConfigs   = 15
	minConfigPriority = 1
	maxConfigPriority = 255
)

// Validate checks the profile against every rule of RPS's create validator
// that needs no store (reference §7.2) and returns the failures; an empty,
// non-nil slice means valid. Validate it before WithDefaults: the defaults
// are what RPS applies after validation.
//
// Differences from RPS, all deliberate:
//   - one error per field (RPS, without bail(), can report two for one field);
//   - a missing password is reported once, on generateRandomPassword /
//     generateRandomMEBxPassword (RPS repeats it on activation);
//   - password complexity is checked whenever the password counts (RPS skips
//     it when generateRandomPassword is absent from the body), and its message
//     names the broken rules;
//   - Wi-Fi and proxy items need a name and a priority in 1–255 (RPS lets a
//     missing priority through to the database);
//   - the character sets are read as documented (see profileNameRE).
//
// Not checked here, because they need the stores: that the named Wi-Fi,
// proxy, CIRA and 802.1X configs exist (and that the 802.1X one is wired),
// and that the profile name is free.
func (p Profile) Validate() []FieldError {
	return p.ValidateWith(ValidateOptions{})
}

// ValidateWith is Validate for a profile whose passwords may be held
// elsewhere (see ValidateOptions).
func (p Profile) ValidateWith(o ValidateOptions) []FieldError {
	errs := []FieldError{}
	add := func(path string, value any, msg string) {
		errs = append(errs, FieldError{Type: "field", Value: value, Msg: msg, Path: path, Location: "body"})
	}
	// addSecret never records a value: the field holds a password.
	addSecret := func(path, msg string) {
		errs = append(errs, FieldError{Type: "field", Msg: msg, Path: path, Location: "body"})
	}

	switch {
	case p.ProfileName == "":
		add("profileName", nil, MsgProfileNameRequired)
	case !profileNameRE.MatchString(p.ProfileName):
		add("profileName", p.ProfileName, MsgProfileNameInvalid)
	}

	switch p.Activation {
	case ActivationACM, ActivationCCM:
	case "":
		add("activation", nil, MsgActivationRequired)
	default:
		add("activation", p.Activation, MsgActivationInvalid)
	}

	amtGiven := p.AMTPassword != "" || o.AMTPasswordByReference
	switch {
	case p.GenerateRandomPassword && amtGiven:
		add("generateRandomPassword", true, MsgAMTPasswordBoth)
	case !p.GenerateRandomPassword && !amtGiven:
		add("generateRandomPassword", false, MsgAMTPasswordMissing)
	case !p.GenerateRandomPassword && p.AMTPassword != "":
		if msg := passwordProblem("AMT", p.AMTPassword); msg != "" {
			addSecret("amtPassword", msg)
		}
	}

	// RPS checks the MEBx password's complexity whenever one is given, even
	// for CCM where it is not used; the both/neither rules are ACM only.
	mebxGiven := p.MEBxPassword != "" || o.MEBxPasswordByReference
	switch {
	case p.IsACM() && p.GenerateRandomMEBxPassword && mebxGiven:
		add("generateRandomMEBxPassword", true, MsgMEBxPasswordBoth)
	case p.IsACM() && !p.GenerateRandomMEBxPassword && !mebxGiven:
		add("generateRandomMEBxPassword", false, MsgMEBxPasswordMissing)
	case p.MEBxPassword != "":
		if msg := passwordProblem("MEBx", p.MEBxPassword); msg != "" {
			addSecret("mebxPassword", msg)
		}
	}

	if p.TLSMode != nil && (*p.TLSMode < TLSServerOnly || *p.TLSMode > TLSMutualAllowNonTLS) {
		add("tlsMode", *p.TLSMode, MsgTLSModeInvalid)
	}
	switch p.TLSSigningAuthority {
	case "", SigningSelfSigned, SigningMicrosoftCA:
	default:
		add("tlsSigningAuthority", p.TLSSigningAuthority, MsgTLSSigningInvalid)
	}
	if p.CIRAConfigName != "" && p.TLSMode != nil {
		add("ciraConfigName", p.CIRAConfigName, MsgCIRAWithTLS)
	}

	if p.DHCPEnabled == nil {
		add("dhcpEnabled", nil, MsgDHCPRequired)
	}

	if msg := p.wifiProblem(); msg != "" {
		add("wifiConfigs", slices.Clone(p.WifiConfigs), msg)
	}
	if msg := p.proxyProblem(); msg != "" {
		add("proxyConfigs", slices.Clone(p.ProxyConfigs), msg)
	}

	switch p.UserConsent {
	case "":
		// Absent: WithDefaults picks KVM (ACM) or All (CCM).
	case ConsentNone, ConsentKVM, ConsentAll:
		if p.Activation == ActivationCCM && p.UserConsent != ConsentAll {
			add("userConsent", p.UserConsent, MsgUserConsentCCM)
		}
	default:
		add("userConsent", p.UserConsent, MsgUserConsentInvalid)
	}
	return errs
}

// wifiProblem returns the first problem of wifiConfigs, in RPS's order.
func (p Profile) wifiProblem() string {
	if len(p.WifiConfigs) == 0 {
		return ""
	}
	if p.DHCPEnabled == nil || !*p.DHCPEnabled {
		return MsgWifiNeedsDHCP
	}
	if len(p.WifiConfigs) > maxWifiConfigs {
		return MsgWifiTooMany
	}
	for i, c := range p.WifiConfigs {
		if c.ProfileName == "" {
			return fmt.Sprintf("%s (item %d)", MsgWifiNameRequired, i)
		}
		if c.Priority < minConfigPriority || c.Priority > maxConfigPriority {
			return fmt.Sprintf("%s (item %d)", MsgWifiPriority, i)
		}
	}
	return ""
}

// proxyProblem returns the first problem of proxyConfigs, in RPS's order.
func (p Profile) proxyProblem() string {
	if len(p.ProxyConfigs) == 0 {
		return ""
	}
	if len(p.ProxyConfigs) > maxProxyConfigs {
		return MsgProxyTooMany
	}
	for i, c := range p.ProxyConfigs {
		if c.Name == "" {
			return fmt.Sprintf("%s (item %d)", MsgProxyNameRequired, i)
		}
		if c.Priority < minConfigPriority || c.Priority > maxConfigPriority {
			return fmt.Sprintf("%s (item %d)", MsgProxyPriority, i)
		}
	}
	return ""
}
