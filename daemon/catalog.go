package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/amtedge/amtedge/appliance/domains"
	"github.com/amtedge/amtedge/appliance/profiles"
	"github.com/amtedge/amtedge/appliance/provision"
	"github.com/amtedge/amtedge/appliance/site"
	"github.com/amtedge/amtedge/secrets"
)

// catalog is the box's profiles and domains as loaded from the site file. It is read-only after start.
type catalog struct {
	profiles map[string]profiles.Profile // static passwords stripped: they live in the Store
	domains  []provision.DomainRef
	expiry   map[string]time.Time // domain name → earliest certificate expiry
}

func (c *catalog) Profile(name string) (profiles.Profile, bool) {
	p, ok := c.profiles[name]
	return p, ok
}

func (c *catalog) ProfileNames() []string {
	names := make([]string, 0, len(c.profiles))
	for n := range c.profiles {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (c *catalog) Domains() []provision.DomainRef {
	return append([]provision.DomainRef(nil), c.domains...)
}

// siteSecret is a secret read from the site's files, to be written into the Store once the whole site checked.
type siteSecret struct {
	domain  string
	profile string
	dsec    secrets.DomainSecret
	psec    secrets.ProfileSecret
}

// checkSite runs the full checks over the site file's domains (PFX import) and profiles and returns the catalog
// with the secrets it needs in the Store. Random-password profiles need a durable central copy, or the
// operator's explicit acceptance of standalone custody. Nothing is written: a bad site changes nothing.
func checkSite(f *site.File, standalone bool, now time.Time) (*catalog, []siteSecret, error) {
	cat := &catalog{profiles: map[string]profiles.Profile{}, expiry: map[string]time.Time{}}
	var out []siteSecret
	var errs []error
	for i, d := range f.Domains {
		key := fmt.Sprintf("domains[%d]", i)
		pfx, err := d.ReadPFX()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s.pfxFile: %w", key, err))
			continue
		}
		pw, err := d.ReadPassword()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s.passwordFile: %w", key, err))
			continue
		}
		dom, err := domains.Import(d.Name, d.Suffix, pfx, pw, now)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s (%s): %w", key, d.Name, err))
			continue
		}
		out = append(out, siteSecret{domain: d.Name, dsec: secrets.DomainSecret{PFX: pfx, Password: pw}})
		cat.domains = append(cat.domains, provision.DomainRef{Name: d.Name, Suffix: dom.Suffix})
		cat.expiry[d.Name] = dom.Expires
	}
	resolved, err := f.ResolveProfiles()
	if err != nil {
		errs = append(errs, err)
	}
	for i, p := range resolved {
		if p.UsesRandomPasswords() && !standalone {
			errs = append(errs, fmt.Errorf("profiles[%d] (%s): generates random passwords, but no central Vault is configured, "+
				"so the box would hold the only copy; set custody.standalone: true to accept that, or use static passwords", i, p.ProfileName))
			continue
		}
		out = append(out, siteSecret{profile: p.ProfileName, psec: secrets.ProfileSecret{AMTPassword: p.AMTPassword, MEBxPassword: p.MEBxPassword}})
		cat.profiles[p.ProfileName] = p.Redacted()
	}
	if len(errs) > 0 {
		return nil, nil, errors.Join(errs...)
	}
	return cat, out, nil
}

// storeSiteSecrets writes the site's secrets into the Store.
func storeSiteSecrets(ctx context.Context, store secrets.Store, list []siteSecret) error {
	for _, s := range list {
		if s.domain != "" {
			if err := store.PutDomain(ctx, s.domain, s.dsec); err != nil {
				return fmt.Errorf("store the provisioning certificate of domain %s: %w", s.domain, err)
			}
			continue
		}
		if err := store.PutProfile(ctx, s.profile, s.psec); err != nil {
			return fmt.Errorf("store the passwords of profile %s: %w", s.profile, err)
		}
	}
	return nil
}

// siteCatalog is the catalog the flows read, swappable on reload: a session that already looked a profile up
// keeps what it got, new lookups see the new site. It is the provision.Catalog the provisioner holds.
type siteCatalog struct {
	mu  sync.RWMutex
	cur *catalog
}

func newSiteCatalog(c *catalog) *siteCatalog { return &siteCatalog{cur: c} }

func (s *siteCatalog) current() *catalog {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.cur
}

func (s *siteCatalog) swap(c *catalog) {
	s.mu.Lock()
	s.cur = c
	s.mu.Unlock()
}

func (s *siteCatalog) Profile(name string) (profiles.Profile, bool) { return s.current().Profile(name) }
func (s *siteCatalog) ProfileNames() []string                       { return s.current().ProfileNames() }
func (s *siteCatalog) Domains() []provision.DomainRef               { return s.current().Domains() }
