package catalog

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/amtedge/amtedge/appliance/profiles"
	"github.com/amtedge/amtedge/secrets"
)

// MsgRandomCustody is the 400 text for a random-password profile on a box that would hold the only copy of the
// passwords; the daemon's site check says the same.
const MsgRandomCustody = "generates random passwords, but no central Vault is configured, so the box would hold the only copy; " +
	"set custody.standalone: true to accept that, or use static passwords"

// MsgVersionRequired is the 400 text of a PATCH without a version.
const MsgVersionRequired = "version is required to update: send the version you read (in the body or as If-Match)"

// maxDomainPassword is RPS's bound on provisioningCertPassword.
const maxDomainPassword = 64

// CreateProfile adds a profile from RPS's POST /profiles body.
func (c *Catalog) CreateProfile(ctx context.Context, body []byte, actor string) (ProfileEntry, error) {
	p, _, errs := decodeProfile(body, profiles.Profile{})
	if len(errs) > 0 {
		return ProfileEntry{}, &ValidationError{errs}
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.store == nil {
		return ProfileEntry{}, ErrStoreUnavailable
	}
	if p.ProfileName != "" {
		if _, ok := c.profileEntry(p.ProfileName); ok {
			return ProfileEntry{}, &ValidationError{[]profiles.FieldError{bodyItem("profileName", p.ProfileName, "AMT profile "+p.ProfileName+" already exists")}}
		}
	}
	if errs := c.checkProfile(p); len(errs) > 0 {
		return ProfileEntry{}, &ValidationError{errs}
	}
	return c.saveProfile(ctx, p, "1", "create", actor)
}

// UpdateProfile applies RPS's PATCH /profiles body to the stored profile: the fields given replace the stored
// ones, the others are kept. A static password given replaces the stored one; generateRandom…Password true drops
// it; absent keeps it. The merged profile is validated as a whole. The version to match comes from ifMatch when
// given (quotes stripped), else from the body's version.
func (c *Catalog) UpdateProfile(ctx context.Context, body []byte, ifMatch, actor string) (ProfileEntry, error) {
	// The name is needed before the merge: decode once over nothing to find it and the body's shape.
	probe, present, errs := decodeProfile(body, profiles.Profile{})
	if len(errs) > 0 {
		return ProfileEntry{}, &ValidationError{errs}
	}
	name := probe.ProfileName
	if name == "" {
		return ProfileEntry{}, &ValidationError{[]profiles.FieldError{bodyItem("profileName", nil, profiles.MsgProfileNameRequired)}}
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.store == nil {
		return ProfileEntry{}, ErrStoreUnavailable
	}
	cur, ok := c.profileEntry(name)
	if !ok {
		return ProfileEntry{}, profileNotFound(name)
	}
	if cur.Source == SourceSite {
		return ProfileEntry{}, &ConflictError{Msg: "AMT profile " + name + " is defined in the site file; change it there and reload", Current: cur}
	}
	if err := checkVersion("AMT profile "+name, cur.Version, probe.Version, present["version"], ifMatch, cur); err != nil {
		return ProfileEntry{}, err
	}
	stored, err := c.store.Profile(ctx, name)
	if err != nil && !errors.Is(err, secrets.ErrNotFound) {
		return ProfileEntry{}, fmt.Errorf("read the passwords of profile %s from the sealed store: %w", name, err)
	}
	merged, _, _ := decodeProfile(body, cur.Profile) // same body: it decoded cleanly above
	if !present["amtPassword"] || merged.AMTPassword == "" {
		merged.AMTPassword = ""
		if !merged.GenerateRandomPassword {
			merged.AMTPassword = stored.AMTPassword
		}
	}
	if !present["mebxPassword"] || merged.MEBxPassword == "" {
		merged.MEBxPassword = ""
		if !(merged.IsACM() && merged.GenerateRandomMEBxPassword) {
			merged.MEBxPassword = stored.MEBxPassword
		}
	}
	if errs := c.checkProfile(merged); len(errs) > 0 {
		return ProfileEntry{}, &ValidationError{errs}
	}
	return c.saveProfile(ctx, merged, nextVersion(cur.Version), "update", actor)
}

// checkProfile runs RPS's profile rules plus the box's own: no references to configs the box does not have, and
// random passwords only where a second copy is kept.
func (c *Catalog) checkProfile(p profiles.Profile) []profiles.FieldError {
	errs := p.Validate()
	for _, w := range p.WifiConfigs {
		if w.ProfileName != "" {
			errs = append(errs, bodyItem("wifiConfigs", w.ProfileName, fmt.Sprintf("Wireless profile %s does not exist on this box (it has no wireless configs)", w.ProfileName)))
		}
	}
	for _, x := range p.ProxyConfigs {
		if x.Name != "" {
			errs = append(errs, bodyItem("proxyConfigs", x.Name, fmt.Sprintf("Proxy config %s does not exist on this box (it has no proxy configs)", x.Name)))
		}
	}
	if p.IEEE8021xProfileName != "" {
		errs = append(errs, bodyItem("ieee8021xProfileName", p.IEEE8021xProfileName, fmt.Sprintf("802.1x profile %s does not exist on this box (it has no 802.1x configs)", p.IEEE8021xProfileName)))
	}
	if p.CIRAConfigName != "" {
		errs = append(errs, bodyItem("ciraConfigName", p.CIRAConfigName, fmt.Sprintf("CIRA config %s does not exist on this box (it has no CIRA configs)", p.CIRAConfigName)))
	}
	if p.UsesRandomPasswords() && !c.opts.AllowRandom {
		path := "generateRandomPassword"
		if !p.GenerateRandomPassword {
			path = "generateRandomMEBxPassword"
		}
		errs = append(errs, bodyItem(path, true, "AMT profile "+p.ProfileName+" "+MsgRandomCustody))
	}
	return errs
}

// saveProfile stores the secret first, then the record: a crash between them leaves only a secret that the next
// write of the name overwrites, never a profile whose passwords are missing.
func (c *Catalog) saveProfile(ctx context.Context, p profiles.Profile, version, action, actor string) (ProfileEntry, error) {
	sec := secrets.ProfileSecret{AMTPassword: p.AMTPassword, MEBxPassword: p.MEBxPassword}
	if err := c.store.PutProfile(ctx, p.ProfileName, sec); err != nil {
		return ProfileEntry{}, fmt.Errorf("store the passwords of profile %s: %w", p.ProfileName, err)
	}
	e := ProfileEntry{Profile: p.WithDefaults().Redacted(), Source: SourceAPI}
	e.Version = version
	if err := c.putRecord(bucketProfiles, e.ProfileName, e); err != nil {
		return ProfileEntry{}, fmt.Errorf("write profile %s to the catalog file: %w", e.ProfileName, err)
	}
	c.mu.Lock()
	c.apiProf[e.ProfileName] = e
	c.mu.Unlock()
	c.changed(action, "profile", e.ProfileName, actor)
	return cloneEntry(e), nil
}

// DeleteProfile removes an API profile: its record first, then its passwords.
func (c *Catalog) DeleteProfile(ctx context.Context, name, actor string) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.store == nil {
		return ErrStoreUnavailable
	}
	cur, ok := c.profileEntry(name)
	if !ok {
		return profileNotFound(name)
	}
	if cur.Source == SourceSite {
		return &ConflictError{Msg: "AMT profile " + name + " is defined in the site file; change it there and reload", Current: cur}
	}
	if err := c.deleteRecord(bucketProfiles, name); err != nil {
		return fmt.Errorf("delete profile %s from the catalog file: %w", name, err)
	}
	c.mu.Lock()
	delete(c.apiProf, name)
	c.mu.Unlock()
	c.changed("delete", "profile", name, actor)
	if err := c.store.DeleteProfile(ctx, name); err != nil && !errors.Is(err, secrets.ErrNotFound) {
		return fmt.Errorf("profile %s is deleted, but its passwords could not be removed from the sealed store (a new profile of that name overwrites them): %w", name, err)
	}
	return nil
}

// CreateDomain imports a provisioning certificate from RPS's POST /domains body. Every check of domains.Import
// runs; its text is the 400 item.
func (c *Catalog) CreateDomain(ctx context.Context, body []byte, actor string) (Domain, error) {
	b, present, errs := decodeDomain(body)
	if len(errs) > 0 {
		return Domain{}, &ValidationError{errs}
	}
	errs = checkDomainBody(b, present, true)
	pfx, perr := decodePFX(b.ProvisioningCert)
	if perr != nil && b.ProvisioningCert != "" {
		errs = append(errs, bodyItem("provisioningCert", nil, perr.Error()))
	}
	if len(errs) > 0 {
		return Domain{}, &ValidationError{errs}
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.store == nil {
		return Domain{}, ErrStoreUnavailable
	}
	if c.domainTaken(b.ProfileName, b.DomainSuffix, "") {
		return Domain{}, &ValidationError{[]profiles.FieldError{bodyItem("profileName", b.ProfileName, "Domain "+b.ProfileName+" ID or Suffix already exists")}}
	}
	dom, err := c.importDomain(b.ProfileName, b.DomainSuffix, pfx, b.ProvisioningCertPassword)
	if err != nil {
		return Domain{}, &ValidationError{[]profiles.FieldError{importItem(err, b)}}
	}
	if err := c.store.PutDomain(ctx, b.ProfileName, secrets.DomainSecret{PFX: pfx, Password: b.ProvisioningCertPassword}); err != nil {
		return Domain{}, fmt.Errorf("store the provisioning certificate of domain %s: %w", b.ProfileName, err)
	}
	d := Domain{ProfileName: b.ProfileName, DomainSuffix: dom.Suffix, ExpirationDate: dom.Expires.UTC(), TenantID: b.TenantID, Version: "1", Source: SourceAPI}
	return d, c.saveDomain(d, "create", actor)
}

// UpdateDomain applies RPS's PATCH /domains body: a new suffix, a new certificate (with its password), or both.
// Without a new certificate the stored one is checked again against the new suffix.
func (c *Catalog) UpdateDomain(ctx context.Context, body []byte, ifMatch, actor string) (Domain, error) {
	b, present, errs := decodeDomain(body)
	if len(errs) > 0 {
		return Domain{}, &ValidationError{errs}
	}
	errs = checkDomainBody(b, present, false)
	var pfx []byte
	if present["provisioningCert"] {
		var perr error
		if pfx, perr = decodePFX(b.ProvisioningCert); perr != nil {
			errs = append(errs, bodyItem("provisioningCert", nil, perr.Error()))
		}
	}
	if len(errs) > 0 {
		return Domain{}, &ValidationError{errs}
	}
	name := b.ProfileName
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.store == nil {
		return Domain{}, ErrStoreUnavailable
	}
	cur, err := c.DomainByName(name)
	if err != nil {
		return Domain{}, err
	}
	if cur.Source == SourceSite {
		return Domain{}, &ConflictError{Msg: "Domain " + name + " is defined in the site file; change it there and reload", Current: cur}
	}
	if err := checkVersion("Domain "+name, cur.Version, b.Version, present["version"], ifMatch, cur); err != nil {
		return Domain{}, err
	}
	next := cur
	if present["domainSuffix"] {
		next.DomainSuffix = b.DomainSuffix
	}
	if present["tenantId"] {
		next.TenantID = b.TenantID
	}
	if c.domainTaken("", next.DomainSuffix, name) {
		return Domain{}, &ValidationError{[]profiles.FieldError{bodyItem("domainSuffix", next.DomainSuffix, "Domain "+name+" ID or Suffix already exists")}}
	}
	sec := secrets.DomainSecret{PFX: pfx, Password: b.ProvisioningCertPassword}
	if pfx == nil {
		if sec, err = c.store.Domain(ctx, name); err != nil {
			return Domain{}, fmt.Errorf("read the provisioning certificate of domain %s from the sealed store: %w", name, err)
		}
	}
	dom, err := c.importDomain(name, next.DomainSuffix, sec.PFX, sec.Password)
	if err != nil {
		b.DomainSuffix = next.DomainSuffix
		return Domain{}, &ValidationError{[]profiles.FieldError{importItem(err, b)}}
	}
	if pfx != nil {
		if err := c.store.PutDomain(ctx, name, sec); err != nil {
			return Domain{}, fmt.Errorf("store the provisioning certificate of domain %s: %w", name, err)
		}
	}
	next.DomainSuffix, next.ExpirationDate, next.Version = dom.Suffix, dom.Expires.UTC(), nextVersion(cur.Version)
	return next, c.saveDomain(next, "update", actor)
}

func (c *Catalog) saveDomain(d Domain, action, actor string) error {
	if err := c.putRecord(bucketDomains, d.ProfileName, d); err != nil {
		return fmt.Errorf("write domain %s to the catalog file: %w", d.ProfileName, err)
	}
	c.mu.Lock()
	c.apiDom[d.ProfileName] = d
	c.mu.Unlock()
	c.changed(action, "domain", d.ProfileName, actor)
	return nil
}

// DeleteDomain removes an API domain: its record first, then its certificate.
func (c *Catalog) DeleteDomain(ctx context.Context, name, actor string) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.store == nil {
		return ErrStoreUnavailable
	}
	cur, err := c.DomainByName(name)
	if err != nil {
		return err
	}
	if cur.Source == SourceSite {
		return &ConflictError{Msg: "Domain " + name + " is defined in the site file; change it there and reload", Current: cur}
	}
	if err := c.deleteRecord(bucketDomains, name); err != nil {
		return fmt.Errorf("delete domain %s from the catalog file: %w", name, err)
	}
	c.mu.Lock()
	delete(c.apiDom, name)
	c.mu.Unlock()
	c.changed("delete", "domain", name, actor)
	if err := c.store.DeleteDomain(ctx, name); err != nil && !errors.Is(err, secrets.ErrNotFound) {
		return fmt.Errorf("domain %s is deleted, but its certificate could not be removed from the sealed store (a new domain of that name overwrites it): %w", name, err)
	}
	return nil
}

// domainTaken reports whether name (when not "") names a domain, or suffix is served by a domain other than except.
func (c *Catalog) domainTaken(name, suffix, except string) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if name != "" {
		if _, ok := c.siteDom[name]; ok {
			return true
		}
		if _, ok := c.apiDom[name]; ok {
			return true
		}
	}
	if _, ok := c.suffixOwner(suffix, c.siteDom, except); ok {
		return true
	}
	_, ok := c.suffixOwner(suffix, c.apiDom, except)
	return ok
}

// checkDomainBody applies RPS's domain rules that need no certificate decoding.
func checkDomainBody(b domainBody, present map[string]bool, create bool) []profiles.FieldError {
	var errs []profiles.FieldError
	if b.ProfileName == "" {
		errs = append(errs, bodyItem("profileName", nil, "Domain profile name is required"))
	}
	if create && b.DomainSuffix == "" || present["domainSuffix"] && b.DomainSuffix == "" {
		errs = append(errs, bodyItem("domainSuffix", nil, "Domain suffix name is required"))
	}
	switch {
	case create && b.ProvisioningCert == "":
		errs = append(errs, bodyItem("provisioningCert", nil, "Provisioning certificate is required"))
	case len(b.ProvisioningCert) > MaxPFXBase64:
		errs = append(errs, bodyItem("provisioningCert", nil, fmt.Sprintf("Provisioning certificate is %d characters of base64; at most %d are accepted", len(b.ProvisioningCert), MaxPFXBase64)))
	}
	switch b.ProvisioningCertStorageFormat {
	case "", "raw", "string":
	default:
		errs = append(errs, bodyItem("provisioningCertStorageFormat", b.ProvisioningCertStorageFormat, "Provisioning certificate storage format must be raw or string"))
	}
	certGiven := present["provisioningCert"] && b.ProvisioningCert != ""
	switch {
	case (create || certGiven) && b.ProvisioningCertPassword == "":
		errs = append(errs, bodyItem("provisioningCertPassword", nil, "Provisioning certificate password is required"))
	case !create && !certGiven && b.ProvisioningCertPassword != "":
		errs = append(errs, bodyItem("provisioningCertPassword", nil, "A provisioning certificate password was given without a new provisioningCert; send both to replace the certificate"))
	case utf8.RuneCountInString(b.ProvisioningCertPassword) > maxDomainPassword:
		errs = append(errs, bodyItem("provisioningCertPassword", nil, fmt.Sprintf("Provisioning certificate password must be at most %d characters", maxDomainPassword)))
	}
	return errs
}

// decodePFX reads RPS's provisioningCert: standard base64 of the PFX, line breaks tolerated (exporters wrap).
func decodePFX(text string) ([]byte, error) {
	clean := strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == ' ' || r == '\t' {
			return -1
		}
		return r
	}, text)
	if clean == "" {
		return nil, errors.New("Provisioning certificate is empty")
	}
	pfx, err := base64.StdEncoding.DecodeString(clean)
	if err != nil {
		if pfx, err = base64.RawStdEncoding.DecodeString(clean); err != nil {
			return nil, errors.New("Provisioning certificate must be the base64 text of the PFX (.pfx/.p12) file")
		}
	}
	return pfx, nil
}

// importItem turns a domains.Import error into the 400 item on the field at fault. The text is Import's (which
// never contains the password or the PFX), without its "import domain" prefix, which the path already says.
func importItem(err error, b domainBody) profiles.FieldError {
	msg := err.Error()
	if inner := errors.Unwrap(err); inner != nil {
		msg = inner.Error()
	}
	switch {
	case strings.HasPrefix(msg, "check domain name"):
		return bodyItem("profileName", b.ProfileName, msg)
	case strings.HasPrefix(msg, "check domain suffix"), strings.HasPrefix(msg, "check leaf CN"):
		return bodyItem("domainSuffix", b.DomainSuffix, msg)
	case strings.HasPrefix(msg, "decode PFX: the PFX password"):
		return bodyItem("provisioningCertPassword", nil, msg)
	default:
		return bodyItem("provisioningCert", nil, msg)
	}
}

// checkVersion compares the version a PATCH names with the current one. ifMatch (an HTTP If-Match value) wins
// over the body's version; quotes and a weak-validator prefix are stripped.
func checkVersion(what, current, bodyVersion string, bodyHas bool, ifMatch string, cur any) error {
	want := strings.TrimSpace(ifMatch)
	fromHeader := want != ""
	if fromHeader {
		want = strings.Trim(strings.TrimPrefix(want, "W/"), `"`)
	} else if bodyHas {
		want = bodyVersion
	}
	if want == "" {
		return &ValidationError{[]profiles.FieldError{bodyItem("version", nil, MsgVersionRequired)}}
	}
	if want != current && !(fromHeader && want == "*") { // If-Match: * matches any current entry
		return &ConflictError{Msg: fmt.Sprintf("%s was changed since version %s was read: the current version is %s; read it again and re-apply your change", what, want, current),
			Current: cur, VersionMismatch: true}
	}
	return nil
}

// nextVersion counts versions "1", "2", …: what matters is that each update gets a new one.
func nextVersion(v string) string {
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return "1"
	}
	return strconv.FormatUint(n+1, 10)
}
