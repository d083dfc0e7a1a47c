package domains

import (
	"errors"
	"fmt"
	"strings"
)

// MatchSuffix picks the domain for a device's reported DNS suffix (payload.fqdn), the way RPS does: split fqdn on
// '.', and try the candidate suffixes from the longest down to the last two labels — never a single label, so a
// bare "com" can never select a domain. Comparison is case-insensitive and a trailing dot is ignored on both
// sides. It returns the index into suffixes of the first exact match for the longest candidate; an empty fqdn
// matches nothing.
//
// Example: "a.b.corp.com" tries "a.b.corp.com", then "b.corp.com", then "corp.com".
func MatchSuffix(fqdn string, suffixes []string) (int, bool) {
	fqdn = normaliseSuffix(fqdn)
	if fqdn == "" {
		return -1, false
	}
	norm := make([]string, len(suffixes))
	for i, s := range suffixes {
		norm[i] = normaliseSuffix(s)
	}
	labels := strings.Split(fqdn, ".")
	for i := 0; i+2 <= len(labels); i++ {
		if labels[i] == "" {
			// "a..corp.com" would otherwise offer ".corp.com" as a candidate.
			continue
		}
		cand := strings.Join(labels[i:], ".")
		for j, s := range norm {
			if s == cand {
				return j, true
			}
		}
	}
	return -1, false
}

// CertMatchesSuffix reports whether a provisioning certificate whose leaf CN is cn can activate a device on a
// network whose DNS suffix is s (DHCP option 15, or the MEBx "PKI DNS Suffix"), as the AMT firmware checks
// during AdminSetup.
//
// The rule: cn is lower-cased, a leading "*." and a trailing dot are removed; s is normalised the same way (lower
// case, no trailing dot). The certificate covers s when s == cn, or — with D = cn minus its first label, and only
// if D still has at least two labels — when s == D or s ends with "."+D.
//
// So CN "provision.corp.com" covers "corp.com", "site1.corp.com" and "a.b.corp.com", but not "com" or
// "othercorp.com"; CN "corp.com" covers only "corp.com" (its parent "com" is a single label). This is stricter
// than RPS's upload check (last two labels of CN equal last two labels of the suffix), which accepts
// "provision.site1.corp.com" for "site2.corp.com"; this rule refuses that pair, because the certificate's domain
// (site1.corp.com) is not the network's suffix nor a parent of it.
func CertMatchesSuffix(cn, s string) bool {
	cn = normaliseSuffix(strings.TrimPrefix(strings.ToLower(cn), "*."))
	s = normaliseSuffix(s)
	if cn == "" || s == "" {
		return false
	}
	if s == cn {
		return true
	}
	_, d, ok := strings.Cut(cn, ".")
	if !ok || !strings.Contains(d, ".") {
		return false
	}
	return s == d || strings.HasSuffix(s, "."+d)
}

// normaliseSuffix lower-cases s and drops one trailing dot (the DNS root), the form suffixes are stored and
// compared in.
func normaliseSuffix(s string) string {
	return strings.TrimSuffix(strings.ToLower(s), ".")
}

// validateSuffix checks a normalised domain suffix: at least two labels, each 1..63 letters, digits or hyphens
// not starting or ending with a hyphen, 253 characters at most. A single label could never be matched by
// MatchSuffix, so it is refused here rather than silently never used.
func validateSuffix(s string) error {
	if s == "" {
		return errors.New("check domain suffix: the suffix is empty")
	}
	if len(s) > 253 {
		return fmt.Errorf("check domain suffix: %q is %d characters, a DNS name has at most 253", s, len(s))
	}
	labels := strings.Split(s, ".")
	if len(labels) < 2 {
		return fmt.Errorf("check domain suffix: %q has a single label; use the full DNS suffix the devices get from DHCP option 15, e.g. corp.example.com", s)
	}
	for _, l := range labels {
		if l == "" {
			return fmt.Errorf("check domain suffix: %q has an empty label", s)
		}
		if len(l) > 63 {
			return fmt.Errorf("check domain suffix: %q has a label longer than 63 characters", s)
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return fmt.Errorf("check domain suffix: label %q of %q starts or ends with '-'", l, s)
		}
		for _, r := range l {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
				return fmt.Errorf("check domain suffix: %q contains %q; only letters, digits, '-' and '.' are allowed", s, r)
			}
		}
	}
	return nil
}
