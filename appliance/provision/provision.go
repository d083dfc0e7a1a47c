// Package provision runs what an agent asked for — activate (CCM, ACM, CCM→ACM upgrade, reconfigure),
// deactivate, maintain — as straight-line Go over one agent session: each flow reads like the sequence in
// shared/reference/rps-protocol.md §4–6, records every step, and ends the session with a terminal message.
//
// Custody rule it must never break: a password reaches a device only after the Store has it durably
// (write-before-send), and it is marked confirmed or abandoned only once the device's answer says so. It never
// logs a secret or puts one into a text sent to an agent.
package provision

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/amtedge/amtedge/appliance/agent"
	"github.com/amtedge/amtedge/appliance/domains"
	"github.com/amtedge/amtedge/appliance/inventory"
	"github.com/amtedge/amtedge/appliance/profiles"
	"github.com/amtedge/amtedge/secrets"
)

// DomainRef names a domain (provisioning certificate) and the DNS suffix it serves; its PFX lives in the Store.
type DomainRef struct {
	Name   string
	Suffix string
}

// Catalog is the box's current set of profiles and domains.
type Catalog interface {
	Profile(name string) (profiles.Profile, bool)
	ProfileNames() []string
	Domains() []DomainRef
}

// Config tunes the flows. Zero values take the defaults.
type Config struct {
	RequestTimeout time.Duration // per WSMAN request relayed through the agent; default 12 s (RPS's delay_timer)
	Attempts       int           // attempts for idempotent WSMAN reads; default 3
	ReadyTimeout   time.Duration // how long to poll for AMT to answer as admin after activation; default 60 s
	Now            func() time.Time
	// OnRecord, when set, receives every finished session's record (after the inventory has it): the daemon's
	// metrics count from it. It runs on the session's goroutine, so it must be quick and must not block.
	OnRecord func(inventory.Record)
}

func (c Config) withDefaults() Config {
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 12 * time.Second
	}
	if c.Attempts <= 0 {
		c.Attempts = 3
	}
	if c.ReadyTimeout <= 0 {
		c.ReadyTimeout = 60 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Provisioner serves agent sessions (it is an agent.Handler).
type Provisioner struct {
	cfg     Config
	catalog Catalog
	store   secrets.Store
	inv     *inventory.Inventory
	log     *slog.Logger

	mu      sync.Mutex
	decoded map[string]decodedDomain // domain name → decoded PFX, so the key is not re-parsed per activation
}

type decodedDomain struct {
	fingerprint [32]byte
	domain      *domains.Domain
}

// New makes a Provisioner.
func New(cfg Config, catalog Catalog, store secrets.Store, inv *inventory.Inventory, log *slog.Logger) *Provisioner {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Provisioner{cfg: cfg.withDefaults(), catalog: catalog, store: store, inv: inv, log: log,
		decoded: map[string]decodedDomain{}}
}

// Serve runs the session's flow to its terminal message.
func (p *Provisioner) Serve(ctx context.Context, s *agent.Session) {
	req := s.Request()
	r := &run{p: p, s: s, req: req, ctx: ctx, uuid: req.Payload.UUID,
		rec: inventory.Record{
			ID: s.ID(), UUID: req.Payload.UUID, Verb: req.Verb, Task: req.Method.Task, Profile: req.Method.Profile,
			Remote: s.RemoteAddr(), Hostname: req.Payload.Hostname, DNSSuffix: req.Payload.FQDN,
			FirmwareVer: req.Payload.Ver, AgentVersion: req.AppVersion,
			ModeBefore: req.Payload.CurrentMode, ModeAfter: req.Payload.CurrentMode, Started: p.cfg.Now(),
		}}
	r.remember(req.Payload.Password, req.Method.Password, req.Method.TaskArg)
	var out outcome
	switch {
	case req.Payload.TLSEnforced || req.Payload.TLSTunnel:
		// rpc-go would relay our plain HTTP to AMT's TLS port: fail now with the reason, not later with a timeout.
		out = refuse("Device %s %s failed. The device enforces TLS on its local AMT ports (AMT 19 or later) or the agent asked for the TLS tunnel; "+
			"this box does not support the TLS-tunnel protocol yet, so it did not touch the device.", r.uuid, verbNoun(req.Verb))
	case req.Verb == agent.VerbActivate:
		out = r.activate()
	case req.Verb == agent.VerbDeactivate:
		out = r.deactivate()
	case req.Verb == agent.VerbMaintenance:
		out = r.maintain()
	default:
		out = refuse("Device %s Not a supported method received from AMT device", r.uuid)
	}
	r.finish(out)
}

func verbNoun(verb string) string {
	switch verb {
	case agent.VerbActivate:
		return "activation"
	case agent.VerbDeactivate:
		return "deactivation"
	default:
		return "maintenance"
	}
}

// outcome is how a flow ends: plain text for validation refusals (as RPS), else a JSON status object.
type outcome struct {
	ok     bool
	plain  string // validation refusal, sent as plain text
	status agent.Status
}

func refuse(format string, args ...any) outcome {
	return outcome{plain: fmt.Sprintf(format, args...)}
}

func failed(st agent.Status) outcome { return outcome{status: st} }

func succeeded(st agent.Status) outcome { return outcome{ok: true, status: st} }

func (r *run) finish(out outcome) {
	out.plain = r.redact(out.plain)
	out.status.Status = r.redact(out.status.Status)
	out.status.Network = r.redact(out.status.Network)
	if c := out.status.Components; c != nil {
		for _, comp := range []*agent.Component{&c.Activation, &c.WiredNetwork, &c.WirelessNetwork, &c.TLS, &c.CIRAProxy, &c.CIRAConnection} {
			comp.Details = r.redact(comp.Details)
		}
	}
	rec := r.rec
	rec.Ended = r.p.cfg.Now()
	rec.Success = out.ok
	rec.Status = out.status.Status
	if out.plain != "" {
		rec.Status = out.plain
	}
	rec.Exchanges = r.exchanges
	// The record is written before the terminal message: whoever reads the device's history right after the
	// agent saw the result finds it.
	if r.p.inv != nil {
		r.p.inv.Add(rec)
	}
	if r.p.cfg.OnRecord != nil {
		r.p.cfg.OnRecord(rec)
	}
	var err error
	switch {
	case out.plain != "":
		err = r.s.Refuse(out.plain)
	case out.ok:
		err = r.s.Succeed(out.status)
	default:
		err = r.s.Fail(out.status)
	}
	attrs := []any{"event", eventName(rec), "device", rec.UUID, "verb", rec.Verb, "profile", rec.Profile,
		"domain", rec.Domain, "mode_before", rec.ModeBefore, "mode_after", rec.ModeAfter,
		"duration_ms", rec.Duration().Milliseconds(), "exchanges", rec.Exchanges, "status", rec.Status}
	if rec.Task != "" {
		attrs = append(attrs, "task", rec.Task)
	}
	if err != nil {
		attrs = append(attrs, "send_err", err)
	}
	if out.ok {
		r.p.log.Info("session finished", attrs...)
	} else {
		attrs = append(attrs, "failed_step", lastFailedStep(rec.Steps))
		r.p.log.Warn("session failed", attrs...)
	}
}

func eventName(rec inventory.Record) string {
	result := "failed"
	if rec.Success {
		result = "succeeded"
	}
	switch rec.Verb {
	case agent.VerbActivate:
		return "activation_" + result
	case agent.VerbDeactivate:
		return "deactivation_" + result
	default:
		return "maintenance_" + result
	}
}

func lastFailedStep(steps []inventory.Step) string {
	for i := len(steps) - 1; i >= 0; i-- {
		if steps[i].Result == inventory.StepFailed {
			return steps[i].Name
		}
	}
	return ""
}

// domain returns the decoded provisioning certificate of a domain, decoding the PFX from the Store only when it
// changed since the last use.
func (p *Provisioner) domain(ctx context.Context, ref DomainRef) (*domains.Domain, error) {
	sec, err := p.store.Domain(ctx, ref.Name)
	if err != nil {
		return nil, fmt.Errorf("read the provisioning certificate of domain %s from the store: %w", ref.Name, err)
	}
	h := sha256.New()
	h.Write(sec.PFX)
	h.Write([]byte{0})
	h.Write([]byte(sec.Password))
	h.Write([]byte{0})
	h.Write([]byte(ref.Suffix))
	var fp [32]byte
	copy(fp[:], h.Sum(nil))
	p.mu.Lock()
	cached, ok := p.decoded[ref.Name]
	p.mu.Unlock()
	if ok && cached.fingerprint == fp && p.cfg.Now().Before(cached.domain.Expires) {
		return cached.domain, nil
	}
	d, err := domains.Import(ref.Name, ref.Suffix, sec.PFX, sec.Password, p.cfg.Now())
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	p.decoded[ref.Name] = decodedDomain{fingerprint: fp, domain: d}
	p.mu.Unlock()
	return d, nil
}

func profileList(c Catalog) string {
	names := c.ProfileNames()
	if len(names) == 0 {
		return "none are configured"
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

func suffixList(refs []DomainRef) string {
	if len(refs) == 0 {
		return "none are configured"
	}
	out := make([]string, len(refs))
	for i, d := range refs {
		out[i] = d.Suffix
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

// custodyCtx keeps custody writes out of the session's cancellation: a password about to be sent, or the
// device's answer about it, must be recorded even when the agent hangs up or the box is stopping.
func custodyCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
}
