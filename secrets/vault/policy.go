package vault

import (
	_ "embed"
	"strings"
)

//go:embed policy.hcl
var policyTemplate string

// Policy returns the least-privilege policy (policy.hcl) for one site: mount is the KV v2 mount (default "secret")
// and prefix the site prefix, as in Config. Packaging ships policy.hcl itself, with @MOUNT@ and @PREFIX@ to fill.
func Policy(mount, prefix string) string {
	cfg := Config{Mount: mount, Prefix: prefix}.withDefaults()
	p := policyTemplate
	if cfg.Prefix == "" {
		p = strings.ReplaceAll(p, "/@PREFIX@/", "/")
	}
	return strings.NewReplacer("@MOUNT@", cfg.Mount, "@PREFIX@", cfg.Prefix).Replace(p)
}
