package provision_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"software.sslmate.com/src/go-pkcs12"

	"github.com/amtedge/amtedge/appliance/agent"
	"github.com/amtedge/amtedge/appliance/amtsim"
	"github.com/amtedge/amtedge/appliance/domains"
	"github.com/amtedge/amtedge/appliance/inventory"
	"github.com/amtedge/amtedge/appliance/profiles"
	"github.com/amtedge/amtedge/appliance/provision"
	"github.com/amtedge/amtedge/secrets"
	"github.com/amtedge/amtedge/secrets/storetest"
)

// Test domains: corp.example.com with a 3-certificate chain, five.example.org with a 5-certificate chain whose
// CA bags are shuffled in the PFX.
const (
	corpSuffix = "corp.example.com"
	fiveSuffix = "five.example.org"
	pfxPass    = "pfx-Pa55word!"
	staticAMT  = "Static-AMT-1!"
	staticMEBx = "Static-MEBx-1!"
)

type testDomain struct {
	name, suffix string
	pfx          []byte
	rootSHA256   string
}

var (
	domainsOnce sync.Once
	testDomains []testDomain
	domainsErr  error
)

// loadDomains generates the test provisioning chains once per test binary (RSA key generation is the cost).
func loadDomains(t testing.TB) []testDomain {
	t.Helper()
	domainsOnce.Do(func() {
		for _, d := range []struct {
			name, suffix string
			n            int
		}{{"corp", corpSuffix, 3}, {"five", fiveSuffix, 5}} {
			pfx, root, err := domains.GenerateProvisioningPFX(domains.GenerateOptions{Suffix: d.suffix, ChainLen: d.n, Password: pfxPass})
			if err == nil && d.n > 3 {
				pfx, err = shuffleBags(pfx)
			}
			if err != nil {
				domainsErr = err
				return
			}
			testDomains = append(testDomains, testDomain{d.name, d.suffix, pfx, root})
		}
	})
	if domainsErr != nil {
		t.Fatal(domainsErr)
	}
	return testDomains
}

// shuffleBags re-encodes a PFX with its certificate bags out of chain order and the leaf not first (RPS assumes
// the first bag is the leaf; exporters do not promise it).
func shuffleBags(pfx []byte) ([]byte, error) {
	key, leaf, cas, err := pkcs12.DecodeChain(pfx, pfxPass)
	if err != nil {
		return nil, err
	}
	// leaf, I1, I2, I3, root  =>  I2, root, leaf, I3, I1
	order := []*x509.Certificate{cas[1], cas[3], leaf, cas[2], cas[0]}
	return pkcs12.Modern.Encode(key, order[0], order[1:], pfxPass)
}

type testCatalog struct {
	profiles map[string]profiles.Profile
	domains  []provision.DomainRef
}

func (c *testCatalog) Profile(name string) (profiles.Profile, bool) {
	p, ok := c.profiles[name]
	return p, ok
}
func (c *testCatalog) ProfileNames() []string {
	var out []string
	for n := range c.profiles {
		out = append(out, n)
	}
	return out
}
func (c *testCatalog) Domains() []provision.DomainRef { return c.domains }

func yes() *bool { b := true; return &b }
func no() *bool  { b := false; return &b }

// harness is a box on a real TLS socket: agent server + flows + an in-memory Store.
type harness struct {
	t       testing.TB
	seenMu  sync.Mutex
	seen    []string // every password that went through the test so far, for the leak checks
	url     string
	tls     *tls.Config
	store   secrets.Store
	inv     *inventory.Inventory
	roots   map[string]string // domain name → root SHA-256
	agents  *agent.Server
	logBuf  *lockedBuffer
	srvStop func()
}

type harnessOptions struct {
	cfg   provision.Config
	agent agent.Config
	store secrets.Store
}

func newHarness(t testing.TB, opts harnessOptions) *harness {
	t.Helper()
	doms := loadDomains(t)
	store := opts.store
	if store == nil {
		store = storetest.NewMemory()
	}
	ctx := context.Background()
	cat := &testCatalog{profiles: map[string]profiles.Profile{
		"ccm":       {ProfileName: "ccm", Activation: profiles.ActivationCCM, GenerateRandomPassword: true, DHCPEnabled: yes()},
		"ccmstatic": {ProfileName: "ccmstatic", Activation: profiles.ActivationCCM, DHCPEnabled: yes()},
		"acm": {ProfileName: "acm", Activation: profiles.ActivationACM, GenerateRandomPassword: true,
			GenerateRandomMEBxPassword: true, DHCPEnabled: yes(), SOLEnabled: yes(), UserConsent: profiles.ConsentNone},
		"acmstatic": {ProfileName: "acmstatic", Activation: profiles.ActivationACM, DHCPEnabled: no(), IPSyncEnabled: yes()},
		"acmwifi": {ProfileName: "acmwifi", Activation: profiles.ActivationACM, GenerateRandomPassword: true,
			GenerateRandomMEBxPassword: true, DHCPEnabled: yes(), WifiConfigs: []profiles.WifiConfig{{ProfileName: "office", Priority: 1}}},
	}}
	for _, name := range []string{"ccmstatic", "acmstatic"} {
		if err := store.PutProfile(ctx, name, secrets.ProfileSecret{AMTPassword: staticAMT, MEBxPassword: staticMEBx}); err != nil {
			t.Fatal(err)
		}
	}
	h := &harness{t: t, store: store, inv: inventory.New(0), roots: map[string]string{}, logBuf: &lockedBuffer{}}
	for _, d := range doms {
		cat.domains = append(cat.domains, provision.DomainRef{Name: d.name, Suffix: d.suffix})
		if err := store.PutDomain(ctx, d.name, secrets.DomainSecret{PFX: d.pfx, Password: pfxPass}); err != nil {
			t.Fatal(err)
		}
		h.roots[d.name] = d.rootSHA256
	}
	log := slog.New(slog.NewTextHandler(h.logBuf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg := opts.cfg
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = 5 * time.Second
	}
	acfg := opts.agent
	acfg.Logger = log
	acfg.CloseGrace = 200 * time.Millisecond
	h.agents = agent.NewServer(acfg, provision.New(cfg, cat, store, h.inv, log))
	srv := httptest.NewUnstartedServer(h.agents)
	srv.StartTLS()
	h.srvStop = srv.Close
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = h.agents.Drain(ctx)
		srv.Close()
		for _, secret := range h.secretsUsed() {
			if strings.Contains(h.logBuf.String(), secret) {
				t.Errorf("a secret reached the log")
			}
		}
	})
	h.url = "wss" + strings.TrimPrefix(srv.URL, "https") + "/activate"
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	h.tls = &tls.Config{RootCAs: pool}
	return h
}

// secretsUsed lists every password the box holds or was given in this test, to check none reached a log line.
func (h *harness) secretsUsed() []string {
	h.seenMu.Lock()
	out := append([]string{pfxPass, staticAMT, staticMEBx}, h.seen...)
	h.seenMu.Unlock()
	ctx := context.Background()
	uuids, _ := h.store.ListDevices(ctx)
	for _, u := range uuids {
		d, err := h.store.Device(ctx, u)
		if err != nil {
			continue
		}
		for _, c := range append([]secrets.Credentials{d.Current}, d.History...) {
			for _, p := range []string{c.AMTPassword, c.MEBxPassword} {
				if p != "" {
					out = append(out, p)
				}
			}
		}
	}
	return out
}

// note adds passwords to those the leak checks look for.
func (h *harness) note(pw ...string) {
	h.seenMu.Lock()
	defer h.seenMu.Unlock()
	for _, p := range pw {
		if !slices.Contains(h.seen, p) {
			h.seen = append(h.seen, p)
		}
	}
}

// device makes a simulated device that trusts the given domains' roots and got suffix from DHCP.
func (h *harness) device(cfg amtsim.DeviceConfig, trust ...string) *amtsim.Device {
	h.t.Helper()
	for _, name := range trust {
		cfg.TrustedRootHashes = append(cfg.TrustedRootHashes, h.roots[name])
	}
	d, err := amtsim.NewDevice(cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	dc := d.Config()
	for _, p := range []string{dc.LSAPassword, dc.AdminPassword, dc.MEBxPassword} {
		if len(p) >= 6 { // the factory MEBx "admin" is a word that legitimately appears in texts
			h.note(p)
		}
	}
	return d
}

// run runs a simulated rpc-go against the box.
func (h *harness) run(cfg amtsim.AgentConfig, dev *amtsim.Device) amtsim.Result {
	h.t.Helper()
	cfg.URL, cfg.TLS = h.url, h.tls
	if cfg.Command == "" {
		cfg.Command = "activate"
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 30 * time.Second
	}
	if len(cfg.Password) >= 6 {
		h.note(cfg.Password)
	}
	res := amtsim.RunAgent(context.Background(), cfg, dev)
	used := h.secretsUsed()
	h.note(used...) // passwords deleted from the store later still count
	for _, text := range append([]string{res.Message}, res.Progress...) {
		for _, secret := range used {
			if strings.Contains(text, secret) {
				h.t.Errorf("a secret reached the agent in a %q message", res.Method)
			}
		}
	}
	return res
}

// current returns the device's current credentials in the Store.
func (h *harness) current(uuid string) secrets.Credentials {
	h.t.Helper()
	d, err := h.store.Device(context.Background(), uuid)
	if err != nil {
		h.t.Fatalf("store has no record of %s: %v", uuid, err)
	}
	return d.Current
}

// lockedBuffer is a log sink safe for concurrent writers.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var _ io.Writer = (*lockedBuffer)(nil)
