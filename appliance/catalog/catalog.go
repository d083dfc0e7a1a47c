// Package catalog is the box's set of profiles and domains: the site file's entries (read-only here, changed by
// editing the file and reloading) and the entries created through RPS's writable admin API, which it persists in
// a bbolt file. It implements the writes of RPS's /api/v1/admin/profiles and /api/v1/admin/domains with RPS's
// validation and error shapes, and is the provision.Catalog the activation flows read.
//
// Custody: secrets (profiles' static passwords, domains' PFX and its password) go only to the secrets.Store,
// under the entry's name, exactly as the site's do; the catalog file holds configuration only. What it must never
// do: write a secret into its file, return one from any method, put one in an error or a log line, or let an API
// write change an entry the site file defines.
package catalog

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/amtedge/amtedge/appliance/domains"
	"github.com/amtedge/amtedge/appliance/events"
	"github.com/amtedge/amtedge/appliance/profiles"
	"github.com/amtedge/amtedge/appliance/provision"
	"github.com/amtedge/amtedge/secrets"
)

// ErrStoreUnavailable is returned (wrapped) by every write when the box runs without its sealed store: the
// secrets a write needs could not be kept.
var ErrStoreUnavailable = errors.New("the sealed store is degraded (not open), so no profile or domain can be created, changed or deleted; recover the store first (amtedge status says why it is degraded)")

// Options configures Open.
type Options struct {
	Path        string        // the bbolt file
	Store       secrets.Store // nil: the sealed store is degraded → every write fails with ErrStoreUnavailable
	AllowRandom bool          // random-password profiles allowed (a Vault is configured, or custody.standalone)
	Log         *slog.Logger  // emits events.CatalogChanged on every successful write
	Now         func() time.Time
}

// SiteDomain is a domain of the site file, already imported (checked) by the daemon.
type SiteDomain struct {
	Name, Suffix string
	Expires      time.Time
}

// Catalog is safe for concurrent use. Writes are serialised (one at a time, from the version check to the
// stored record) so versions and conflicts are exact; reads see either the state before a write or after it.
type Catalog struct {
	db    *bolt.DB
	store secrets.Store
	opts  Options
	log   *slog.Logger
	now   func() time.Time

	wmu sync.Mutex // serialises writes (held across the Store and the file)

	mu       sync.RWMutex // guards the maps below
	siteProf map[string]ProfileEntry
	siteDom  map[string]Domain
	apiProf  map[string]ProfileEntry
	apiDom   map[string]Domain
}

var (
	bucketProfiles = []byte("profiles")
	bucketDomains  = []byte("domains")
	bucketMeta     = []byte("meta")
	keySchema      = []byte("schema")
)

// schemaVersion is the layout of the catalog file; a file written by a newer layout is refused, not misread.
const schemaVersion = "1"

// siteVersion is the version of every site entry: they cannot be PATCHed, so it never needs to move.
const siteVersion = "1"

// Open opens (creating it when absent) the catalog file and loads its entries. The site entries are empty until
// SetSite.
func Open(opts Options) (*Catalog, error) {
	if opts.Path == "" {
		return nil, errors.New("open catalog: no file path given")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	db, err := bolt.Open(opts.Path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open catalog %s: %w", opts.Path, err)
	}
	c := &Catalog{db: db, store: opts.Store, opts: opts, log: log, now: opts.Now,
		siteProf: map[string]ProfileEntry{}, siteDom: map[string]Domain{}, apiProf: map[string]ProfileEntry{}, apiDom: map[string]Domain{}}
	if err := c.load(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open catalog %s: %w", opts.Path, err)
	}
	return c, nil
}

// load creates the buckets of a new file and reads every record, refusing a file it cannot fully understand:
// serving half a catalog would make devices activate with the wrong profile or none.
func (c *Catalog) load() error {
	return c.db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		switch v := meta.Get(keySchema); {
		case v == nil:
			if err := meta.Put(keySchema, []byte(schemaVersion)); err != nil {
				return err
			}
		case string(v) != schemaVersion:
			return fmt.Errorf("the file has layout %q, this version reads layout %s; use the amtedge version that wrote it", v, schemaVersion)
		}
		pb, err := tx.CreateBucketIfNotExists(bucketProfiles)
		if err != nil {
			return err
		}
		db, err := tx.CreateBucketIfNotExists(bucketDomains)
		if err != nil {
			return err
		}
		if err := pb.ForEach(func(k, v []byte) error {
			var e ProfileEntry
			if err := json.Unmarshal(v, &e); err != nil || e.ProfileName != string(k) {
				return fmt.Errorf("profile record %q is damaged", k)
			}
			e.Profile = e.Redacted()
			e.Source = SourceAPI
			c.apiProf[e.ProfileName] = e
			return nil
		}); err != nil {
			return err
		}
		return db.ForEach(func(k, v []byte) error {
			var d Domain
			if err := json.Unmarshal(v, &d); err != nil || d.ProfileName != string(k) {
				return fmt.Errorf("domain record %q is damaged", k)
			}
			d.Source = SourceAPI
			c.apiDom[d.ProfileName] = d
			return nil
		})
	})
}

// Close closes the file.
func (c *Catalog) Close() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.db.Close()
}

// SetSite replaces the site entries. A site name (or domain suffix) that an API entry uses is an error naming
// both, and nothing changes: the operator decides which one goes. The site's secrets are stored by the caller.
func (c *Catalog) SetSite(profs []profiles.Profile, doms []SiteDomain) error {
	return c.SetSiteWith(profs, doms, nil)
}

// SetSiteWith is SetSite with a step run between the check and the change, with every API write held off:
// the daemon stores the site's secrets there, so that a site name that collides with an API entry never
// overwrites that entry's secret, and an API write cannot take a site name in between. When store fails,
// nothing changes and its error is returned.
func (c *Catalog) SetSiteWith(profs []profiles.Profile, doms []SiteDomain, store func() error) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	sp, sd, err := c.checkSite(profs, doms)
	if err != nil {
		return err
	}
	if store != nil {
		if err := store(); err != nil {
			return err
		}
	}
	c.mu.Lock()
	c.siteProf, c.siteDom = sp, sd
	c.mu.Unlock()
	return nil
}

// checkSite builds the site entries, refusing names and suffixes the API entries hold. The caller holds wmu, so
// the API entries cannot change under it.
func (c *Catalog) checkSite(profs []profiles.Profile, doms []SiteDomain) (map[string]ProfileEntry, map[string]Domain, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var errs []error
	sp := make(map[string]ProfileEntry, len(profs))
	for _, p := range profs {
		if _, ok := c.apiProf[p.ProfileName]; ok {
			errs = append(errs, fmt.Errorf("site profile %s has the name of profile %s created through the admin API; rename the site's, or delete the API one (amtedge profiles delete %s)", p.ProfileName, p.ProfileName, p.ProfileName))
			continue
		}
		if _, dup := sp[p.ProfileName]; dup {
			errs = append(errs, fmt.Errorf("site profile %s is defined twice", p.ProfileName))
			continue
		}
		p = p.Redacted()
		p.Version = siteVersion
		sp[p.ProfileName] = ProfileEntry{Profile: p, Source: SourceSite}
	}
	sd := make(map[string]Domain, len(doms))
	for _, d := range doms {
		if _, ok := c.apiDom[d.Name]; ok {
			errs = append(errs, fmt.Errorf("site domain %s has the name of domain %s created through the admin API; rename the site's, or delete the API one (amtedge domains delete %s)", d.Name, d.Name, d.Name))
			continue
		}
		if other, ok := c.suffixOwner(d.Suffix, c.apiDom, ""); ok {
			errs = append(errs, fmt.Errorf("site domain %s has the DNS suffix %s of domain %s created through the admin API; a suffix selects one domain, so remove one of them", d.Name, d.Suffix, other))
			continue
		}
		if _, dup := sd[d.Name]; dup {
			errs = append(errs, fmt.Errorf("site domain %s is defined twice", d.Name))
			continue
		}
		sd[d.Name] = Domain{ProfileName: d.Name, DomainSuffix: d.Suffix, ExpirationDate: d.Expires.UTC(), Version: siteVersion, Source: SourceSite}
	}
	if len(errs) > 0 {
		return nil, nil, errors.Join(errs...)
	}
	return sp, sd, nil
}

// suffixOwner returns the name of the domain in m (other than except) whose suffix equals suffix, ignoring case
// and a trailing dot, as the firmware compares DNS names.
func (c *Catalog) suffixOwner(suffix string, m map[string]Domain, except string) (string, bool) {
	want := normSuffix(suffix)
	for name, d := range m {
		if name != except && normSuffix(d.DomainSuffix) == want {
			return name, true
		}
	}
	return "", false
}

func normSuffix(s string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), ".")
}

// Profile returns the profile (without passwords: the flows read them from the Store), from the site or the API.
func (c *Catalog) Profile(name string) (profiles.Profile, bool) {
	e, ok := c.profileEntry(name)
	return e.Profile, ok
}

func (c *Catalog) profileEntry(name string) (ProfileEntry, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if e, ok := c.siteProf[name]; ok {
		return cloneEntry(e), true
	}
	e, ok := c.apiProf[name]
	return cloneEntry(e), ok
}

func cloneEntry(e ProfileEntry) ProfileEntry {
	e.Profile = e.Redacted() // copies the slices too
	return e
}

// ProfileNames lists every profile's name, sorted.
func (c *Catalog) ProfileNames() []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	names := make([]string, 0, len(c.siteProf)+len(c.apiProf))
	for n := range c.siteProf {
		names = append(names, n)
	}
	for n := range c.apiProf {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Domains lists every domain's name and suffix, sorted by name, for the flows.
func (c *Catalog) Domains() []provision.DomainRef {
	list := c.DomainList()
	out := make([]provision.DomainRef, len(list))
	for i, d := range list {
		out[i] = provision.DomainRef{Name: d.ProfileName, Suffix: d.DomainSuffix}
	}
	return out
}

// ProfileList lists every profile, sorted by name, without passwords.
func (c *Catalog) ProfileList() []ProfileEntry {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]ProfileEntry, 0, len(c.siteProf)+len(c.apiProf))
	for _, e := range c.siteProf {
		out = append(out, cloneEntry(e))
	}
	for _, e := range c.apiProf {
		out = append(out, cloneEntry(e))
	}
	slices.SortFunc(out, func(a, b ProfileEntry) int { return strings.Compare(a.ProfileName, b.ProfileName) })
	return out
}

// ProfileByName returns one profile, or an error wrapping ErrNotFound with RPS's text.
func (c *Catalog) ProfileByName(name string) (ProfileEntry, error) {
	e, ok := c.profileEntry(name)
	if !ok {
		return ProfileEntry{}, profileNotFound(name)
	}
	return e, nil
}

func profileNotFound(name string) error { return &notFoundError{"AMT profile " + name + " Not Found"} }

func domainNotFound(name string) error {
	return &notFoundError{"Domain profile " + name + " Not Found"}
}

// notFoundError is RPS's 404 text, and errors.Is(err, ErrNotFound).
type notFoundError struct{ msg string }

func (e *notFoundError) Error() string { return e.msg }
func (e *notFoundError) Unwrap() error { return ErrNotFound }

// DomainList lists every domain, sorted by name.
func (c *Catalog) DomainList() []Domain {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]Domain, 0, len(c.siteDom)+len(c.apiDom))
	for _, d := range c.siteDom {
		out = append(out, d)
	}
	for _, d := range c.apiDom {
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b Domain) int { return strings.Compare(a.ProfileName, b.ProfileName) })
	return out
}

// DomainByName returns one domain, or an error wrapping ErrNotFound with RPS's text.
func (c *Catalog) DomainByName(name string) (Domain, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if d, ok := c.siteDom[name]; ok {
		return d, nil
	}
	if d, ok := c.apiDom[name]; ok {
		return d, nil
	}
	return Domain{}, domainNotFound(name)
}

// Expiry maps each domain's name to its certificate's earliest expiry.
func (c *Catalog) Expiry() map[string]time.Time {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make(map[string]time.Time, len(c.siteDom)+len(c.apiDom))
	for n, d := range c.siteDom {
		out[n] = d.ExpirationDate
	}
	for n, d := range c.apiDom {
		out[n] = d.ExpirationDate
	}
	return out
}

// changed logs the catalog_changed event of a successful write.
func (c *Catalog) changed(action, kind, name, actor string) {
	if actor == "" {
		actor = "unknown"
	}
	c.log.Info(fmt.Sprintf("%s %s %s by %s", kind, name, action+"d", actor), "event", events.CatalogChanged,
		"action", action, "kind", kind, "name", name, "actor", actor)
}

// putRecord writes one record to the catalog file (fsync'd by bbolt before it returns).
func (c *Catalog) putRecord(bucket []byte, name string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return c.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucket).Put([]byte(name), data) })
}

func (c *Catalog) deleteRecord(bucket []byte, name string) error {
	return c.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucket).Delete([]byte(name)) })
}

// importDomain wraps domains.Import for the catalog's clock.
func (c *Catalog) importDomain(name, suffix string, pfx []byte, pw string) (*domains.Domain, error) {
	return domains.Import(name, suffix, pfx, pw, c.now())
}
