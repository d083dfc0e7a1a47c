package catalog

import (
	"errors"
	"time"

	"github.com/amtedge/amtedge/appliance/profiles"
)

// Source says where a catalog entry is managed.
type Source string

const (
	// SourceSite entries come from the site file; they are changed by editing it (and reloading), not by the API.
	SourceSite Source = "site"
	// SourceAPI entries were created through the admin API or the UI and are kept in the catalog file.
	SourceAPI Source = "api"
)

// ProfileEntry is a profile as the API lists it: RPS's AMTConfiguration fields (passwords always empty), with
// Version set, plus where it is managed.
type ProfileEntry struct {
	profiles.Profile
	Source Source `json:"source"`
}

// Domain is a domain as the API lists it: RPS's AMTDomain without provisioningCert and provisioningCertPassword,
// plus where it is managed.
type Domain struct {
	ProfileName    string    `json:"profileName"` // the domain's name, as RPS calls it
	DomainSuffix   string    `json:"domainSuffix"`
	ExpirationDate time.Time `json:"expirationDate"`
	TenantID       string    `json:"tenantId"`
	Version        string    `json:"version"`
	Source         Source    `json:"source"`
}

// CertReport is what a provisioning certificate (PFX) holds, for the UI's upload preview and the domain pages.
// It carries no secret: public certificate fields only.
type CertReport struct {
	LeafCN        string     `json:"leafCN"`
	Suffix        string     `json:"suffix"`        // the suffix it was checked against ("" when none was given)
	SuffixMatches bool       `json:"suffixMatches"` // the leaf CN covers Suffix
	ActivationEKU bool       `json:"activationEKU"` // the leaf carries 2.16.840.1.113741.1.2.3
	RootSHA256    string     `json:"rootSHA256"`    // hex, what the device's trusted root hash list must hold
	Expires       time.Time  `json:"expires"`       // earliest NotAfter of the chain
	Chain         []CertInfo `json:"chain"`         // leaf first, root last
	// Problem is why the certificate would not import (the same text a POST answers); "" when it would.
	Problem string `json:"problem,omitempty"`
}

// CertInfo is one certificate of a chain.
type CertInfo struct {
	Subject   string    `json:"subject"`
	Issuer    string    `json:"issuer"`
	NotBefore time.Time `json:"notBefore"`
	NotAfter  time.Time `json:"notAfter"`
}

// ErrNotFound is returned (wrapped, with RPS's "<Type> profile <name> Not Found" text) when no entry has the name.
var ErrNotFound = errors.New("not found")

// ValidationError is a refused write: RPS's 400 {"errors":[…]} items. No item carries a secret.
type ValidationError struct {
	Errors []profiles.FieldError
}

func (e *ValidationError) Error() string {
	if len(e.Errors) == 0 {
		return "validation failed"
	}
	msg := e.Errors[0].Error()
	if n := len(e.Errors) - 1; n > 0 {
		msg += " (and more)"
	}
	return msg
}

// ConflictError is a write that cannot apply to the entry as it is now: the version given is not the current
// one (the API answers 409, or 412 when the version came from If-Match), or the entry is managed by the site
// file. Current is the entry as it is now (ProfileEntry or Domain), for the 409 body and ETag; nil when the
// entry is gone.
type ConflictError struct {
	Msg     string
	Current any
	// VersionMismatch is set when the conflict is a stale version (the API answers 412 when that version came
	// from If-Match); it is false for an entry the site file manages (always 409).
	VersionMismatch bool
}

func (e *ConflictError) Error() string { return e.Msg }
