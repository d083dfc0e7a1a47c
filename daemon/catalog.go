package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	appcatalog "github.com/amtedge/amtedge/appliance/catalog"
	"github.com/amtedge/amtedge/appliance/domains"
	"github.com/amtedge/amtedge/appliance/profiles"
	"github.com/amtedge/amtedge/appliance/provision"
	"github.com/amtedge/amtedge/appliance/site"
	"github.com/amtedge/amtedge/appliance/web"
	"github.com/amtedge/amtedge/secrets"
)

// catalog is the box's profiles and domains as loaded from the site file (checkSite's result), or a snapshot
// of the whole catalog (siteCatalog.current). It is read-only once built.
type catalog struct {
	profiles map[string]profiles.Profile // static passwords stripped: they live in the Store
	domains  []provision.DomainRef
	expiry   map[string]time.Time // domain name → earliest certificate expiry
}

func (c *catalog) ProfileNames() []string {
	names := make([]string, 0, len(c.profiles))
	for n := range c.profiles {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
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

// siteCatalog is the box's catalog: the site file's entries (set at start and on reload) and those created
// through the admin API (persisted in stateDir/catalog.db). It is the provision.Catalog the flows hold: a session
// that already looked a profile up keeps what it got, new lookups see the current catalog. current() is a
// snapshot in the shape the expiry checks and the banner read.
type siteCatalog struct {
	*appcatalog.Catalog
}

// catalogPath is the catalog file in the state directory.
func catalogPath(stateDir string) string { return filepath.Join(stateDir, "catalog.db") }

// openCatalog opens the catalog file over b.custody (nil when the sealed store is degraded: every API write is then
// refused); allowRandom is whether random-password profiles may be created (a Vault, or standalone custody).
func (b *box) openCatalog(stateDir string, allowRandom bool) (*siteCatalog, error) {
	c, err := appcatalog.Open(appcatalog.Options{Path: catalogPath(stateDir), Store: b.custody, AllowRandom: allowRandom, Log: b.log})
	if err != nil {
		return nil, err
	}
	return &siteCatalog{Catalog: c}, nil
}

// setSite makes a checked site the catalog's site entries, storing its secrets (when the store is open) only
// once no site name collides with an API entry, so a colliding site never overwrites an API entry's secret.
func (s *siteCatalog) setSite(ctx context.Context, store secrets.Store, cat *catalog, list []siteSecret) error {
	profs := make([]profiles.Profile, 0, len(cat.profiles))
	for _, name := range cat.ProfileNames() {
		profs = append(profs, cat.profiles[name])
	}
	doms := make([]appcatalog.SiteDomain, 0, len(cat.domains))
	for _, d := range cat.domains {
		doms = append(doms, appcatalog.SiteDomain{Name: d.Name, Suffix: d.Suffix, Expires: cat.expiry[d.Name]})
	}
	var storeFn func() error
	if store != nil {
		storeFn = func() error { return storeSiteSecrets(ctx, store, list) }
	}
	if err := s.SetSiteWith(profs, doms, storeFn); err != nil {
		return fmt.Errorf("site file: %w", err)
	}
	return nil
}

// current returns a snapshot of every profile and domain.
func (s *siteCatalog) current() *catalog {
	c := &catalog{profiles: map[string]profiles.Profile{}, domains: s.Domains(), expiry: s.Expiry()}
	for _, e := range s.ProfileList() {
		c.profiles[e.ProfileName] = e.Profile
	}
	return c
}

// withPeerActor names the control socket's caller "cli:<uid>" for the catalog's change events: the kernel's
// peer credentials are what the control socket trusts.
func withPeerActor(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		actor := "cli:unknown"
		if p, ok := r.Context().Value(peerKey{}).(peer); ok && p.err == nil {
			actor = "cli:" + strconv.FormatUint(uint64(p.uid), 10)
		}
		next.ServeHTTP(w, r.WithContext(web.WithActor(r.Context(), actor)))
	})
}
