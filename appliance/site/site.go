// Package site reads the declarative site file: the YAML document that
// defines a box's domains (provisioning certificates) and activation
// profiles, used by `make run`, the demo and operators who keep a box's
// configuration in version control.
//
//	domains:
//	  - name: demo                           # RPS domain profileName, ^[a-zA-Z0-9_-]+$
//	    suffix: demo.amtedge.test            # DNS suffix the devices get (DHCP option 15)
//	    pfxFile: demo-provisioning.pfx       # relative paths resolve against the site file's directory
//	    passwordFile: demo-provisioning.pass # secrets only by file reference
//	profiles:
//	  - profileName: acm
//	    activation: acmactivate
//	    generateRandomPassword: true
//	    mebxPasswordFile: acm-mebx.pass      # static passwords only by file reference
//	    dhcpEnabled: true
//
// Profile keys are RPS's profile JSON names (appliance/profiles), so a
// profile reads the same in the site file, the admin API and RPS exports.
//
// Parsing is strict: unknown keys, wrong types, duplicate keys, YAML aliases
// and extra documents are errors, and every error names the key path
// (`profiles[1].activation: …`) and the line. Profiles are validated with the
// same rules as the admin API.
//
// What this package must never do: hold, echo or accept an inline secret. The
// site file names files; a *File holds only those names, never their
// contents, so it is always safe to print or log. Inline `amtPassword` /
// `mebxPassword` are refused. Secrets are read only on demand (ReadSecret,
// ResolveProfiles, Domain.ReadPassword, Domain.ReadPFX), from files that
// others cannot read, and no error ever quotes a secret.
package site

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/amtedge/amtedge/appliance/profiles"
)

// maxSiteFileSize bounds what Load and Parse read. A site file lists a few
// domains and profiles; a megabyte is generous and keeps a wrong path (a log,
// an image) from being slurped.
const maxSiteFileSize = 1 << 20

// File is a parsed site file. After Load every file path in it is absolute.
type File struct {
	Domains  []Domain  `yaml:"domains,omitempty"`
	Profiles []Profile `yaml:"profiles,omitempty"`
}

// Domain is a provisioning-certificate domain (RPS `AMTDomain`): the
// certificate in PFXFile is used for devices whose DNS suffix matches Suffix.
type Domain struct {
	// Name is the domain's RPS profileName (the Vault path is certs/<Name>).
	Name string `yaml:"name"`
	// Suffix is the DNS suffix (RPS domainSuffix), at least two labels.
	Suffix string `yaml:"suffix"`
	// PFXFile is the PKCS#12 file with the certificate chain and key.
	PFXFile string `yaml:"pfxFile"`
	// PasswordFile holds the PFX password (one line).
	PasswordFile string `yaml:"passwordFile"`
}

// Profile is an activation profile as the site file writes it: an RPS
// profile whose static passwords, if any, are named by file. The embedded
// profile's AMTPassword and MEBxPassword are always empty in a parsed File.
type Profile struct {
	profiles.Profile `yaml:",inline"`
	// AMTPasswordFile holds the static AMT admin password (one line);
	// exclusive with generateRandomPassword.
	AMTPasswordFile string `yaml:"amtPasswordFile,omitempty"`
	// MEBxPasswordFile holds the static MEBx password (one line);
	// exclusive with generateRandomMEBxPassword.
	MEBxPasswordFile string `yaml:"mebxPasswordFile,omitempty"`
}

// KeyError is one problem in a site file, located by key path and line.
type KeyError struct {
	Path string // e.g. "profiles[1].activation"; "site file" for the document itself
	Line int    // 1-based; 0 when unknown
	Msg  string
}

func (e *KeyError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s: %s (line %d)", e.Path, e.Msg, e.Line)
	}
	return e.Path + ": " + e.Msg
}

// domainNameRE is RPS's domain profileName rule.
var domainNameRE = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)

// dnsLabelRE is one DNS label by the host-name rules (RFC 1123): letters,
// digits and inner hyphens. Underscores are refused because they are not
// valid in the host names DHCP option 15 hands to AMT.
var dnsLabelRE = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$`)

// Load reads and parses the site file at path. Relative file references
// resolve against the site file's directory, and every referenced file must
// exist and be a regular file that others cannot read (see ReadSecret); the
// files' contents are not read.
func Load(path string) (*File, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("site file %s: %w", path, err)
	}
	f, err := os.Open(abs)
	if err != nil {
		return nil, fmt.Errorf("site file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxSiteFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("site file %s: %w", abs, err)
	}
	sf, err := Parse(data, filepath.Dir(abs))
	if err != nil {
		return nil, fmt.Errorf("site file %s:\n%w", abs, err)
	}
	if err := sf.checkFiles(); err != nil {
		return nil, fmt.Errorf("site file %s:\n%w", abs, err)
	}
	return sf, nil
}

// Parse parses a site file. Relative file references are joined to baseDir
// when baseDir is not empty (Load passes the file's absolute directory).
// Parse touches no file; it returns every problem it finds, joined, each a
// *KeyError.
func Parse(data []byte, baseDir string) (*File, error) {
	if len(data) > maxSiteFileSize {
		return nil, &KeyError{Path: "site file", Msg: fmt.Sprintf("larger than %d bytes", maxSiteFileSize)}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &KeyError{Path: "site file", Msg: "is empty; it must define domains and/or profiles"}
		}
		return nil, &KeyError{Path: "site file", Msg: err.Error()}
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, &KeyError{Path: "site file", Msg: err.Error()}
	default:
		return nil, &KeyError{Path: "site file", Line: extra.Line, Msg: "holds more than one YAML document; a site file is a single document"}
	}

	w := &walker{lines: map[string]int{}}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	w.walkRoot(root)
	if len(w.errs) > 0 {
		return nil, errors.Join(w.errs...)
	}

	// The walk has checked every key and type, so this strict decode is a
	// second line of defence; its errors carry lines but no key paths.
	var f File
	strict := yaml.NewDecoder(bytes.NewReader(data))
	strict.KnownFields(true)
	if err := strict.Decode(&f); err != nil {
		return nil, &KeyError{Path: "site file", Msg: err.Error()}
	}
	if len(f.Domains) == 0 && len(f.Profiles) == 0 {
		return nil, &KeyError{Path: "site file", Msg: "defines no domains and no profiles"}
	}
	f.resolvePaths(baseDir)
	if errs := f.validate(w); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return &f, nil
}

func (f *File) resolvePaths(baseDir string) {
	resolve := func(p *string) {
		if *p != "" && baseDir != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(baseDir, *p)
		}
	}
	for i := range f.Domains {
		resolve(&f.Domains[i].PFXFile)
		resolve(&f.Domains[i].PasswordFile)
	}
	for i := range f.Profiles {
		resolve(&f.Profiles[i].AMTPasswordFile)
		resolve(&f.Profiles[i].MEBxPasswordFile)
	}
}

// validate applies the rules that need the decoded values: domain names and
// suffixes, profile validation, uniqueness.
func (f *File) validate(w *walker) []error {
	var errs []error
	add := func(path, msg string) {
		errs = append(errs, &KeyError{Path: path, Line: w.line(path), Msg: msg})
	}

	names := map[string]string{}    // lower-cased name → path of first use
	suffixes := map[string]string{} // lower-cased suffix → path of first use
	for i, d := range f.Domains {
		p := fmt.Sprintf("domains[%d]", i)
		switch {
		case d.Name == "":
			add(p+".name", "is required")
		case !domainNameRE.MatchString(d.Name):
			add(p+".name", "AMT Domain profile name accepts letters, numbers, hyphens (-), and underscores (_)")
		default:
			if first, dup := names[strings.ToLower(d.Name)]; dup {
				add(p+".name", fmt.Sprintf("domain name %q is already used by %s (names are compared without case)", d.Name, first))
			} else {
				names[strings.ToLower(d.Name)] = p
			}
		}
		if msg := suffixProblem(d.Suffix); msg != "" {
			add(p+".suffix", msg)
		} else if first, dup := suffixes[strings.ToLower(d.Suffix)]; dup {
			add(p+".suffix", fmt.Sprintf("suffix %q is already used by %s (suffixes are compared without case)", d.Suffix, first))
		} else {
			suffixes[strings.ToLower(d.Suffix)] = p
		}
		if d.PFXFile == "" {
			add(p+".pfxFile", "is required: the PKCS#12 (.pfx) file with the provisioning certificate chain and key")
		}
		if d.PasswordFile == "" {
			add(p+".passwordFile", "is required: the file holding the PFX password")
		}
	}

	profileNames := map[string]string{}
	for i, sp := range f.Profiles {
		p := fmt.Sprintf("profiles[%d]", i)
		// A site file cannot define wireless, proxy, CIRA or 802.1X configs,
		// so a reference to one can only dangle (RPS refuses those too: "…
		// does not exist in db").
		for _, ref := range []struct {
			key, what string
			set       bool
		}{
			{"wifiConfigs", "wireless configs", len(sp.WifiConfigs) > 0},
			{"proxyConfigs", "proxy configs", len(sp.ProxyConfigs) > 0},
			{"ciraConfigName", "a CIRA config", sp.CIRAConfigName != ""},
			{"ieee8021xProfileName", "an 802.1X config", sp.IEEE8021xProfileName != ""},
		} {
			if ref.set {
				add(p+"."+ref.key, "refers to "+ref.what+", which a site file cannot define (and this version does not apply yet)")
			}
		}
		opts := profiles.ValidateOptions{
			AMTPasswordByReference:  sp.AMTPasswordFile != "",
			MEBxPasswordByReference: sp.MEBxPasswordFile != "",
		}
		for _, fe := range sp.ValidateWith(opts) {
			if isReferenceKey(fe.Path) && refAlreadyReported(errs, p+"."+fe.Path) {
				continue
			}
			add(p+"."+fe.Path, siteMessage(fe.Msg))
		}
		if sp.ProfileName != "" {
			key := strings.ToLower(sp.ProfileName)
			if first, dup := profileNames[key]; dup {
				add(p+".profileName", fmt.Sprintf("profile name %q is already used by %s (names are compared without case)", sp.ProfileName, first))
			} else {
				profileNames[key] = p
			}
		}
	}
	return errs
}

func isReferenceKey(k string) bool {
	switch k {
	case "wifiConfigs", "proxyConfigs", "ciraConfigName", "ieee8021xProfileName":
		return true
	}
	return false
}

// refAlreadyReported avoids a second message for a key already refused as a
// dangling reference.
func refAlreadyReported(errs []error, path string) bool {
	for _, e := range errs {
		var ke *KeyError
		if errors.As(e, &ke) && ke.Path == path {
			return true
		}
	}
	return false
}

// siteMessage rewrites the validator's password messages, which name the
// API's amtPassword/mebxPassword fields, into the site file's terms.
func siteMessage(msg string) string {
	switch msg {
	case profiles.MsgAMTPasswordMissing:
		return "set generateRandomPassword: true, or name the static password's file with amtPasswordFile"
	case profiles.MsgAMTPasswordBoth:
		return "generateRandomPassword: true and amtPasswordFile exclude each other; keep one"
	case profiles.MsgMEBxPasswordMissing:
		return "an acmactivate profile needs a MEBx password: set generateRandomMEBxPassword: true, or name its file with mebxPasswordFile"
	case profiles.MsgMEBxPasswordBoth:
		return "generateRandomMEBxPassword: true and mebxPasswordFile exclude each other; keep one"
	}
	return msg
}

// suffixProblem checks a DNS suffix: host-name labels, at least two of them
// (AMT and RPS compare the last two labels with the certificate's CN), 253
// characters at most, no trailing dot (DHCP option 15 carries none).
func suffixProblem(s string) string {
	if s == "" {
		return "is required: the DNS suffix the devices get from DHCP option 15, e.g. corp.example.com"
	}
	if len(s) > 253 {
		return "is longer than 253 characters"
	}
	labels := strings.Split(s, ".")
	if len(labels) < 2 {
		return fmt.Sprintf("%q must have at least two labels, e.g. corp.example.com", s)
	}
	for _, l := range labels {
		if !dnsLabelRE.MatchString(l) {
			return fmt.Sprintf("%q is not a DNS suffix: each dot-separated label must be 1 to 63 letters, digits or inner hyphens", s)
		}
	}
	return ""
}

// checkFiles stats every referenced file: it must exist, be regular and be
// closed to others. Contents are not read.
func (f *File) checkFiles() error {
	var errs []error
	check := func(path, file string) {
		if file == "" {
			return
		}
		if _, err := statSecretFile(file); err != nil {
			errs = append(errs, &KeyError{Path: path, Msg: err.Error()})
		}
	}
	for i, d := range f.Domains {
		check(fmt.Sprintf("domains[%d].pfxFile", i), d.PFXFile)
		check(fmt.Sprintf("domains[%d].passwordFile", i), d.PasswordFile)
	}
	for i, p := range f.Profiles {
		check(fmt.Sprintf("profiles[%d].amtPasswordFile", i), p.AMTPasswordFile)
		check(fmt.Sprintf("profiles[%d].mebxPasswordFile", i), p.MEBxPasswordFile)
	}
	return errors.Join(errs...)
}

// Domain looks a domain up by name, without case (as names are unique
// without case).
func (f *File) Domain(name string) (Domain, bool) {
	for _, d := range f.Domains {
		if strings.EqualFold(d.Name, name) {
			return d, true
		}
	}
	return Domain{}, false
}

// ResolveProfiles returns the site's profiles as the appliance stores them:
// static passwords read from their files and checked against the complexity
// rules, then validated as the admin API would. Defaults are not filled in
// (see profiles.Profile.WithDefaults), just as an API create body carries
// none. The result holds secrets; the caller stores it and lets it go.
func (f *File) ResolveProfiles() ([]profiles.Profile, error) {
	out := make([]profiles.Profile, 0, len(f.Profiles))
	var errs []error
	for i, sp := range f.Profiles {
		p := sp.Profile
		read := func(key, file string, dst *string) {
			if file == "" {
				return
			}
			path := fmt.Sprintf("profiles[%d].%s", i, key)
			pw, err := ReadSecret(file)
			if err == nil {
				err = profiles.CheckPassword(pw)
			}
			if err != nil {
				errs = append(errs, &KeyError{Path: path, Msg: err.Error()})
				return
			}
			*dst = pw
		}
		read("amtPasswordFile", sp.AMTPasswordFile, &p.AMTPassword)
		read("mebxPasswordFile", sp.MEBxPasswordFile, &p.MEBxPassword)
		for _, fe := range p.Validate() {
			errs = append(errs, &KeyError{Path: fmt.Sprintf("profiles[%d].%s", i, fe.Path), Msg: fe.Msg})
		}
		out = append(out, p)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// maxPFXPasswordLen is RPS's limit on provisioningCertPassword.
const maxPFXPasswordLen = 64

// ReadPassword reads the domain's PFX password from PasswordFile.
func (d Domain) ReadPassword() (string, error) {
	pw, err := ReadSecret(d.PasswordFile)
	if err != nil {
		return "", fmt.Errorf("domain %s: %w", d.Name, err)
	}
	if len(pw) > maxPFXPasswordLen {
		return "", fmt.Errorf("domain %s: password file %s: password should not exceed %d characters in length", d.Name, d.PasswordFile, maxPFXPasswordLen)
	}
	return pw, nil
}

// ReadPFX reads the domain's PKCS#12 file.
func (d Domain) ReadPFX() ([]byte, error) {
	b, err := ReadSecretBytes(d.PFXFile)
	if err != nil {
		return nil, fmt.Errorf("domain %s: %w", d.Name, err)
	}
	return b, nil
}
