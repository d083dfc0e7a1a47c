package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/amtedge/amtedge/appliance/dhcpprobe"
	"github.com/amtedge/amtedge/appliance/domains"
	"github.com/amtedge/amtedge/appliance/site"
	"github.com/amtedge/amtedge/appliance/web"
	"github.com/amtedge/amtedge/secrets/seal"
	"github.com/amtedge/amtedge/secrets/vault"
)

// `amtedge doctor`: every check that explains what is wrong with a box — configuration, TPM, sealed key, Vault,
// clock, certificates, listeners and the segment's DHCP suffix — one line each, with what to do. It only reads:
// it creates no key, no store, no demo site, takes no lease, writes nothing to Vault; it unseals the store's key
// to prove it can, and forgets it at once. No secret (key, password, PFX, token) reaches its output.

// Check statuses.
const (
	statusOK   = "ok"
	statusWarn = "warn"
	statusFail = "fail"
	statusSkip = "skip"
)

// doctorCheck is one line of the report (and one element of --json).
type doctorCheck struct {
	Name    string `json:"name"`
	Status  string `json:"status"`
	Summary string `json:"summary"`
	Detail  string `json:"detail,omitempty"`
	Hint    string `json:"hint,omitempty"`
}

// packagedConfig is the packaged box's configuration, the doctor's default when it exists.
const packagedConfig = "/etc/amtedge/amtedge.yaml"

// Certificate expiry thresholds (days): a warning at each, a failure once expired.
var certWarnDays = []int{60, 30, 7}

type doctorOptions struct {
	config, socket, iface, netns string
	dhcpServer                   netip.Addr
	dhcpTimeout                  time.Duration
	json                         bool
}

func doctorCommand(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("doctor", stderr)
	var o doctorOptions
	var server string
	fs.StringVar(&o.config, "config", "", "configuration file (default: "+packagedConfig+" when it exists, else the embedded demo configuration)")
	fs.StringVar(&o.socket, "socket", "", "the box's control socket (default: found from the configuration)")
	fs.StringVar(&o.iface, "interface", "", "interface of the agents' LAN segment for the DHCP probe (default: the default route's)")
	fs.StringVar(&server, "dhcp-server", "", "ask this DHCP server by unicast instead of broadcasting (e.g. behind a DHCP relay)")
	fs.DurationVar(&o.dhcpTimeout, "dhcp-timeout", dhcpprobe.DefaultTimeout, "how long to wait for the DHCP server's answer")
	fs.StringVar(&o.netns, "netns", "", "run the DHCP probe in this network namespace (a name as ip netns lists it, or a path)")
	fs.BoolVar(&o.json, "json", false, "print the checks as a JSON array of {name,status,summary,detail,hint}")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if server != "" {
		a, err := netip.ParseAddr(server)
		if err != nil || !a.Is4() {
			return usageError{fmt.Errorf("--dhcp-server %q is not an IPv4 address", server)}
		}
		o.dhcpServer = a
	}
	if o.dhcpTimeout <= 0 || o.dhcpTimeout > time.Minute {
		return usageError{fmt.Errorf("--dhcp-timeout %s: must be between 0 and 1m", o.dhcpTimeout)}
	}
	if o.config == "" {
		if _, err := os.Stat(packagedConfig); err == nil {
			o.config = packagedConfig
		}
	}
	checks := runDoctor(context.Background(), o)
	if o.json {
		b, err := json.MarshalIndent(checks, "", "  ")
		if err != nil {
			return err
		}
		if _, err := stdout.Write(append(b, '\n')); err != nil {
			return err
		}
	} else {
		printChecks(stdout, checks)
	}
	failed := 0
	for _, c := range checks {
		if c.Status == statusFail {
			failed++
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d checks failed", failed, len(checks))
	}
	return nil
}

// printChecks writes one line per check: status, name, what was found, and for warn/fail what to do.
func printChecks(w io.Writer, checks []doctorCheck) {
	width := 0
	for _, c := range checks {
		width = max(width, len(c.Name))
	}
	for _, c := range checks {
		line := fmt.Sprintf("%-4s  %-*s  %s", c.Status, width, c.Name, c.Summary)
		if c.Detail != "" {
			line += " (" + c.Detail + ")"
		}
		if c.Hint != "" && (c.Status == statusWarn || c.Status == statusFail) {
			line += " → " + c.Hint
		}
		fmt.Fprintln(w, line)
	}
}

// doctor holds what the checks share: the configuration, the daemon's own view, the site's domains.
type doctor struct {
	opts    doctorOptions
	cfg     *Config
	cfgName string
	now     time.Time

	socket    string
	health    *web.Health // the running daemon's view; nil when it could not be asked
	healthErr error

	domains []siteDomain // from the site file; nil when it did not load
	siteErr error

	vaultClient *vault.Client // nil without Vault or when it could not be built
	vaultUp     bool          // sys/health answered

	out []doctorCheck
}

// siteDomain is a domain of the site file as the doctor sees it: imported, or why not.
type siteDomain struct {
	name, suffix, leafCN string
	expires              time.Time
	err                  error
}

func (d *doctor) add(name, status, summary, detail, hint string) {
	d.out = append(d.out, doctorCheck{Name: name, Status: status, Summary: summary, Detail: detail, Hint: hint})
}

// runDoctor runs every check in order; a check that cannot run says why (skip).
func runDoctor(ctx context.Context, o doctorOptions) []doctorCheck {
	d := &doctor{opts: o, now: time.Now()}
	if !d.checkConfig() {
		for _, name := range []string{"tpm", "seal", "vault", "clock", "certificates", "listeners", "dhcp"} {
			d.add(name, statusSkip, "not checked: the configuration did not load", "", "")
		}
		return d.out
	}
	d.askDaemon()
	d.checkTPM(ctx)
	d.checkSeal(ctx)
	d.checkVault(ctx)
	d.checkClock(ctx)
	d.checkCertificates()
	d.checkListeners(ctx)
	d.checkDHCP(ctx)
	return d.out
}

// checkConfig is `amtedge config check`: the file loads and validates, and so does its site file.
func (d *doctor) checkConfig() bool {
	d.cfgName = d.opts.config
	if d.cfgName == "" {
		d.cfgName = "the embedded demo configuration"
	}
	cfg, err := loadConfig(d.opts.config)
	if err != nil {
		d.add("config", statusFail, d.cfgName+" does not load", err.Error(),
			"fix the keys named, then run amtedge config check --config "+orDefault(d.opts.config, packagedConfig))
		return false
	}
	d.cfg = cfg
	sitePath := cfg.path(cfg.Site)
	if cfg.Demo.Enabled {
		sitePath = filepath.Join(cfg.path(cfg.StateDir), "demo", "site.yaml")
		if _, err := os.Stat(sitePath); errors.Is(err, fs.ErrNotExist) {
			d.siteErr = errors.New("the demo site is generated at the box's first start")
			d.add("config", statusOK, d.cfgName+" is valid (demo: its site is generated at first start)", "", "")
			return true
		}
	}
	f, err := site.Load(sitePath)
	if err != nil {
		d.siteErr = err
		d.add("config", statusFail, d.cfgName+" is valid, its site file "+sitePath+" is not", err.Error(),
			"fix the site file's keys named, then run amtedge config check")
		return true
	}
	d.domains = loadSiteDomains(f, d.now)
	cat, _, err := checkSite(f, cfg.acceptsRandomPasswords(), d.now)
	if err != nil {
		d.add("config", statusFail, "the site file "+sitePath+" does not pass its checks", err.Error(),
			"fix what is named (the box refuses to start or reload with this site), then run amtedge config check")
		return true
	}
	d.add("config", statusOK, fmt.Sprintf("%s and its site file are valid: %s, %s", d.cfgName,
		plural(len(cat.profiles), "profile"), plural(len(cat.domains), "domain")), "", "")
	return true
}

// loadSiteDomains imports each domain on its own, so one bad certificate does not hide the others' expiry. The
// PFX and its password stay in this function.
func loadSiteDomains(f *site.File, now time.Time) []siteDomain {
	out := make([]siteDomain, 0, len(f.Domains))
	for _, sd := range f.Domains {
		dom := siteDomain{name: sd.Name, suffix: sd.Suffix}
		pfx, err := sd.ReadPFX()
		if err == nil {
			var pw string
			if pw, err = sd.ReadPassword(); err == nil {
				var imp *domains.Domain
				if imp, err = domains.Import(sd.Name, sd.Suffix, pfx, pw, now); err == nil {
					dom.suffix, dom.leafCN, dom.expires = imp.Suffix, imp.LeafCN(), imp.Expires
				}
			}
			clear(pfx)
		}
		dom.err = err
		out = append(out, dom)
	}
	return out
}

// askDaemon reads the running box's health over its control socket.
func (d *doctor) askDaemon() {
	path, err := (&cliFlags{socket: d.opts.socket, config: d.opts.config}).socketPath()
	if err != nil {
		d.healthErr = err
		return
	}
	d.socket = path
	c := newControlClient(path)
	c.http.Timeout = 10 * time.Second
	body, err := c.get("/api/v1/health", nil)
	if err != nil {
		d.healthErr = err
		return
	}
	var h web.Health
	if err := json.Unmarshal(body, &h); err != nil {
		d.healthErr = fmt.Errorf("the box's health answer does not decode: %w", err)
		return
	}
	d.health = &h
}

// bounded runs f with a deadline even when f cannot be interrupted (a TPM that does not answer): the doctor then
// reports the hang instead of hanging itself.
func bounded(ctx context.Context, limit time.Duration, f func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- f(ctx) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("no answer within %s", limit)
	}
}

func (d *doctor) checkTPM(ctx context.Context) {
	cfg := d.cfg
	if cfg.Custody.Seal == "software" {
		d.add("tpm", statusWarn, "the store's key is not sealed by a TPM: it is a file, "+cfg.keyPath()+
			" (custody.seal: software)", "anyone who can read the file or a backup of it can read every stored password",
			"on a box with a TPM 2.0 set custody.seal: tpm (the existing store then needs amtedge store recover; Vault refills it)")
		return
	}
	tcfg := cfg.tpmConfig()
	device := orDefault(tcfg.Device, seal.DefaultTPMDevice)
	var p seal.TPMProbe
	err := bounded(ctx, 15*time.Second, func(ctx context.Context) error {
		var err error
		p, err = seal.NewTPM(tcfg).Probe(ctx)
		return err
	})
	if err != nil {
		d.add("tpm", statusFail, "no usable TPM 2.0 at "+device, err.Error(), tpmHint(device, err))
		return
	}
	summary := "TPM 2.0 at " + device
	if p.Manufacturer != "" {
		summary += " (manufacturer " + p.Manufacturer + ")"
	}
	switch p.SRK {
	case seal.SRKPresent:
		d.add("tpm", statusOK, fmt.Sprintf("%s; storage root key present at 0x%08X", summary, p.SRKHandle), "", "")
	case seal.SRKAbsent:
		d.add("tpm", statusOK, fmt.Sprintf("%s; SRK handle 0x%08X is empty", summary, p.SRKHandle),
			"the box persists the standard SRK there when it first seals or unseals", "")
	default:
		d.add("tpm", statusFail, fmt.Sprintf("%s; handle 0x%08X holds a key that is not the standard ECC P-256 SRK", summary, p.SRKHandle),
			"the box can neither seal nor unseal under it",
			fmt.Sprintf("evict it (tpm2_evictcontrol -C o -c 0x%08X) if nothing needs it, or set custody.tpm.srkHandle to a free handle", p.SRKHandle))
	}
}

// tpmHint says what to do about a TPM that cannot be used: permissions, a missing device, a socket nobody serves.
func tpmHint(device string, err error) string {
	fi, serr := os.Stat(device)
	switch {
	case errors.Is(serr, fs.ErrNotExist) && !strings.HasPrefix(device, "/dev/"):
		return "nothing serves the software TPM socket " + device + ": start the swtpm that should serve it, or set custody.tpm.device to the box's TPM"
	case errors.Is(serr, fs.ErrNotExist):
		return "enable the TPM in the firmware setup (it then appears as " + seal.DefaultTPMDevice + "), set custody.tpm.device to it, or use custody.seal: software"
	case serr == nil && fi.Mode()&os.ModeSocket != 0:
		return "start the software TPM serving " + device + ", or set custody.tpm.device to the box's TPM"
	case serr == nil && unix.Access(device, unix.R_OK|unix.W_OK) != nil:
		return fmt.Sprintf("%s is %s %s; add the service user to group tss (usermod -aG tss amtedge; the tpm-udev package makes the device 0660 root:tss) and run the doctor as root or that user",
			device, fi.Mode(), ownerOf(fi))
	case errors.Is(err, seal.ErrNoTPM) && strings.Contains(err.Error(), "TPM 2.0"):
		return "this machine's TPM is not a TPM 2.0: use custody.seal: software"
	}
	return "check custody.tpm.device and that nothing else holds the TPM (without /dev/tpmrm0, one user at a time)"
}

func ownerOf(fi fs.FileInfo) string {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return fmt.Sprintf("uid %d gid %d", st.Uid, st.Gid)
	}
	return ""
}

// checkSeal unseals the key here (and forgets it) and compares with the daemon's own state.
func (d *doctor) checkSeal(ctx context.Context) {
	keyPath := d.cfg.keyPath()
	dbPath := storePath(d.cfg.path(d.cfg.StateDir))
	var localErr error
	missing := false
	if _, err := os.Stat(keyPath); errors.Is(err, fs.ErrNotExist) {
		missing = true
	} else {
		localErr = bounded(ctx, 20*time.Second, func(ctx context.Context) error {
			dek, err := d.cfg.sealer().Unseal(ctx)
			clear(dek)
			return err
		})
	}
	daemon, daemonDetail := "", ""
	if d.health != nil {
		daemon = d.health.Seal.State
		daemonDetail = d.health.Seal.Reason
	}
	switch {
	case missing:
		if _, err := os.Stat(dbPath); err == nil {
			d.add("seal", statusFail, "the store key "+keyPath+" is missing but the store "+dbPath+" exists",
				"a new key cannot open the old store: the box runs degraded", "run amtedge store recover (keeps the old files aside; Vault refills the store)")
			return
		}
		d.add("seal", statusOK, "no store key yet ("+keyPath+"): the box creates it at its first start", "", "")
	case localErr == nil && (daemon == "" || daemon == "ok"):
		sum := "the store key " + keyPath + " unseals"
		detail := "the daemon could not be asked: " + errText(d.healthErr)
		if daemon == "ok" {
			sum += "; the daemon's store is open"
			detail = ""
		}
		d.add("seal", statusOK, sum, detail, "")
	case localErr == nil:
		d.add("seal", statusFail, "the daemon runs degraded, but the store key "+keyPath+" unseals now",
			"the daemon says: "+daemonDetail, "restart the service (systemctl restart amtedge); if it stays degraded, run amtedge store recover")
	default:
		hint := "run amtedge store recover (keeps the old files aside; Vault refills the store)"
		switch {
		case errors.Is(localErr, seal.ErrNoTPM):
			hint = "fix the TPM first (see the tpm check); the key itself may still be good"
		case errors.Is(localErr, fs.ErrPermission), strings.Contains(localErr.Error(), "permission denied"):
			hint = "run amtedge doctor as root or as the service user"
		case errors.Is(localErr, seal.ErrSRKMismatch):
			hint = "free the SRK handle or set custody.tpm.srkHandle (see the tpm check)"
		}
		sum := "the store key " + keyPath + " does not unseal"
		if daemon == "ok" {
			sum = "the daemon unsealed its key at start, but " + keyPath + " does not unseal now: its next restart starts degraded"
		} else if daemon == "degraded" {
			sum += "; the daemon runs degraded (" + daemonDetail + ")"
		}
		d.add("seal", statusFail, sum, localErr.Error(), hint)
	}
}

// checkVault: reachable, the box logs in, its policy covers the site's paths; plus the daemon's outbox.
func (d *doctor) checkVault(ctx context.Context) {
	cfg := d.cfg
	if !cfg.Vault.configured() {
		d.add("vault", statusSkip, "not configured (vault.address is empty): the box keeps the only copy of what it generates", "", "")
		return
	}
	vcfg := cfg.vaultClientConfig()
	vcfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	vcfg.MaxRetries = -1 // the doctor reports, it does not insist
	c, err := vault.New(vcfg)
	if err != nil {
		d.add("vault", statusFail, "the Vault client cannot be set up", err.Error(), "fix the vault.* keys named")
		return
	}
	d.vaultClient = c
	addr := cfg.Vault.Address
	daemonView := ""
	if h := d.health; h != nil {
		daemonView = "daemon: Vault " + h.Vault.State
		if h.Vault.Detail != "" {
			daemonView += " (" + h.Vault.Detail + ")"
		}
		daemonView += fmt.Sprintf(", %d writes waiting in the outbox", h.Outbox.Length)
		if h.Outbox.Oldest != nil {
			daemonView += " since " + h.Outbox.Oldest.UTC().Format(time.RFC3339)
		}
	}
	join := func(parts ...string) string {
		var out []string
		for _, p := range parts {
			if p != "" {
				out = append(out, p)
			}
		}
		return strings.Join(out, "; ")
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := c.Health(cctx); err != nil {
		d.add("vault", statusFail, "Vault at "+addr+" is unreachable", join(err.Error(), daemonView),
			"check vault.address and the network path (curl -s "+addr+"/v1/sys/health) and that Vault is unsealed; "+
				"the box keeps provisioning from its sealed cache and queues writes until Vault is back")
		return
	}
	d.vaultUp = true
	if err := c.Login(cctx); err != nil {
		hint := "check the vault.auth files (roleIdFile and secretIdFile, or tokenFile): a secret_id or token may have expired or been revoked"
		if cfg.Vault.Auth.SecretIDWrapped {
			hint += "; a wrapped secret_id is single-use: put a fresh wrapping token in vault.auth.secretIdFile"
		}
		d.add("vault", statusFail, "Vault at "+addr+" refuses the box's login ("+cfg.Vault.Auth.Method+")", join(err.Error(), daemonView), hint)
		return
	}
	token := ""
	if info, err := c.LookupSelf(cctx); err == nil {
		ttl := "no expiry"
		if info.TTL > 0 {
			ttl = "TTL " + info.TTL.Round(time.Second).String()
		}
		token = fmt.Sprintf("token policies %s, %s, renewable %t", strings.Join(info.Policies, ","), ttl, info.Renewable)
	} else {
		token = "token look-up failed: " + err.Error()
	}
	caps, err := c.SiteCapabilities(cctx)
	if err != nil {
		d.add("vault", statusFail, "Vault at "+addr+": the token's capabilities cannot be read", join(err.Error(), token, daemonView),
			"the site policy (vault-policy.hcl) must be bound to the box's role")
		return
	}
	var missing []string
	for _, p := range caps {
		if len(p.Missing) > 0 {
			missing = append(missing, p.Path+": "+strings.Join(p.Missing, ","))
		}
	}
	if len(missing) > 0 {
		d.add("vault", statusFail, "the box's token lacks capabilities on the site's paths: "+strings.Join(missing, "; "),
			join(token, daemonView), fmt.Sprintf("write the site policy (/usr/share/doc/amtedge/examples/vault-policy.hcl with mount %s, prefix %s) "+
				"and bind it to the box's role (vault policy write …; vault write auth/approle/role/… token_policies=…)",
				orDefault(cfg.Vault.Mount, vault.DefaultMount), cfg.Vault.Prefix))
		return
	}
	summary := fmt.Sprintf("Vault at %s answers, the box logs in (%s), its policy covers read and write on the site's paths", addr, cfg.Vault.Auth.Method)
	if h := d.health; h != nil && h.Vault.State == "unreachable" {
		d.add("vault", statusWarn, summary+", but the daemon reports Vault unreachable", join(token, daemonView),
			"the daemon retries on its own; amtedge sync now tries at once")
		return
	}
	if h := d.health; h != nil && h.Outbox.Oldest != nil && d.now.Sub(*h.Outbox.Oldest) > time.Hour {
		d.add("vault", statusWarn, summary+fmt.Sprintf(", but %d writes wait in the daemon's outbox for over an hour", h.Outbox.Length),
			join(token, daemonView), "run amtedge sync now and read its error; journalctl -u amtedge says why writes fail")
		return
	}
	d.add("vault", statusOK, summary, join(token, daemonView), "")
}

// checkClock compares the box's clock with Vault's: AMT's digest authentication and certificate validity both
// depend on time.
func (d *doctor) checkClock(ctx context.Context) {
	if !d.cfg.Vault.configured() {
		d.add("clock", statusSkip, "no Vault configured to compare with", "", "")
		return
	}
	if d.vaultClient == nil || !d.vaultUp {
		d.add("clock", statusSkip, "not compared, Vault is unreachable", "", "")
		return
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	date, sent, received, err := d.vaultClient.ServerTime(cctx)
	if err != nil {
		d.add("clock", statusWarn, "Vault's time could not be read", err.Error(), "")
		return
	}
	// The Date header is truncated to the second: Vault's clock is date + [0, 1) s when it answered.
	mid := sent.Add(received.Sub(sent) / 2)
	skew := date.Add(500 * time.Millisecond).Sub(mid)
	abs := time.Duration(math.Abs(float64(skew))).Round(100 * time.Millisecond)
	dir := "ahead of"
	if skew > 0 {
		dir = "behind"
	}
	detail := fmt.Sprintf("Vault's Date %s, round trip %s", date.UTC().Format(time.RFC3339), max(received.Sub(sent).Round(time.Millisecond), time.Millisecond))
	hint := "synchronise the box's clock: timedatectl set-ntp true, then timedatectl timesync-status (or chronyc tracking)"
	switch {
	case abs > time.Minute:
		d.add("clock", statusFail, fmt.Sprintf("the box's clock is %s %s Vault's", abs, dir), detail+"; AMT digest authentication and certificate validity checks fail at this skew", hint)
	case abs > 2*time.Second:
		d.add("clock", statusWarn, fmt.Sprintf("the box's clock is %s %s Vault's", abs, dir), detail, hint)
	default:
		d.add("clock", statusOK, fmt.Sprintf("the box's clock agrees with Vault's (within %s)", max(abs, time.Second)), detail, "")
	}
}

// certStatus grades an expiry date.
func certStatus(expires, now time.Time) (status string, days int) {
	left := expires.Sub(now)
	days = int(math.Floor(left.Hours() / 24))
	switch {
	case left <= 0:
		return statusFail, days
	case days <= certWarnDays[0]: // 60, 30 and 7 days differ in the hint's urgency
		return statusWarn, days
	}
	return statusOK, days
}

func expiryText(expires time.Time, days int) string {
	if days < 0 || expires.IsZero() {
		return "expired " + expires.UTC().Format("2006-01-02")
	}
	return fmt.Sprintf("expires %s (in %d days)", expires.UTC().Format("2006-01-02"), days)
}

// checkCertificates: each domain's provisioning certificate (the daemon's view, else the site file) and the
// listeners' TLS certificates.
func (d *doctor) checkCertificates() {
	type dom struct {
		name, suffix string
		expires      time.Time
		err          error
	}
	var list []dom
	source := "site file"
	if d.health != nil {
		source = "running box"
		for _, h := range d.health.Domains {
			list = append(list, dom{name: h.Name, suffix: h.Suffix, expires: h.Expires})
		}
	} else {
		for _, s := range d.domains {
			list = append(list, dom{name: s.name, suffix: s.suffix, expires: s.expires, err: s.err})
		}
	}
	if len(list) == 0 {
		why := "no domains configured (CCM only)"
		if d.health == nil && d.siteErr != nil {
			why = "domains not checked: " + d.siteErr.Error()
		}
		d.add("certificates", statusSkip, why, "", "")
	}
	renew := "renew the provisioning certificate, export it as PFX, replace the domain's pfxFile (and passwordFile) in the site file, then systemctl reload amtedge"
	for _, c := range list {
		name := "certificate/" + c.name
		if c.err != nil {
			d.add(name, statusFail, "domain "+c.name+": the provisioning certificate cannot be used", c.err.Error(), renew)
			continue
		}
		st, days := certStatus(c.expires, d.now)
		sum := fmt.Sprintf("domain %s (%s): provisioning certificate %s", c.name, c.suffix, expiryText(c.expires, days))
		hint := ""
		switch {
		case st == statusFail:
			sum += ": ACM activations with it fail"
			hint = renew
		case st == statusWarn && days <= certWarnDays[2]:
			hint = "urgent: " + renew
		case st == statusWarn && days <= certWarnDays[1]:
			hint = "soon: " + renew
		case st == statusWarn:
			hint = "plan it: " + renew
		}
		d.add(name, st, sum, "from the "+source, hint)
	}

	agentFile := d.cfg.path(d.cfg.Agent.TLSCertFile)
	selfSigned := agentFile == ""
	if selfSigned {
		agentFile = filepath.Join(d.cfg.path(d.cfg.StateDir), "tls", "cert.pem")
	}
	d.checkTLSFile("certificate/agent-tls", "agent listener", agentFile, selfSigned, "agent.tlsCertFile/tlsKeyFile")
	if d.cfg.Admin.listen() != "" && d.cfg.Admin.TLSCertFile != "" {
		d.checkTLSFile("certificate/admin-tls", "admin listener", d.cfg.path(d.cfg.Admin.TLSCertFile), false, "admin.tlsCertFile/tlsKeyFile")
	}
}

func (d *doctor) checkTLSFile(name, what, path string, selfSigned bool, key string) {
	leaf, err := readLeaf(path)
	if errors.Is(err, fs.ErrNotExist) && selfSigned {
		d.add(name, statusSkip, what+": the self-signed certificate "+path+" is generated at the box's first start", "", "")
		return
	}
	if err != nil {
		d.add(name, statusFail, what+": certificate "+path+" cannot be read", err.Error(), "fix "+key)
		return
	}
	st, days := certStatus(leaf.NotAfter, d.now)
	sum := fmt.Sprintf("%s TLS certificate %s %s", what, path, expiryText(leaf.NotAfter, days))
	hint := ""
	if st != statusOK {
		hint = "put a renewed certificate and key in " + key + ", then systemctl reload amtedge"
		if selfSigned {
			hint = "delete " + filepath.Dir(path) + " and restart the service to generate a new self-signed certificate (agents using -n accept it), or set " + key
		}
	}
	d.add(name, st, sum, "", hint)
}

// readLeaf reads the first certificate of a PEM file.
func readLeaf(path string) (*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return nil, errors.New("no PEM CERTIFICATE block")
		}
		if blk.Type == "CERTIFICATE" {
			return x509.ParseCertificate(blk.Bytes)
		}
	}
}

// checkListeners: the agent and admin listeners answer a TLS handshake, the control socket answers.
func (d *doctor) checkListeners(ctx context.Context) {
	agentAddr := d.cfg.Agent.Listen
	if _, port, _ := net.SplitHostPort(agentAddr); port == "0" && d.health != nil {
		agentAddr = d.health.Listen // chosen at start; the daemon says which
	}
	d.checkTLSListener(ctx, "listener/agent", "agent listener", agentAddr, "agent.listen")
	if l := d.cfg.Admin.listen(); l == "" {
		d.add("listener/admin", statusSkip, "admin listener: disabled (admin.listen: \"\")", "", "")
	} else {
		d.checkTLSListener(ctx, "listener/admin", "admin listener", l, "admin.listen")
	}
	if d.health != nil {
		d.add("listener/control", statusOK, fmt.Sprintf("control socket %s answers: amtedge %s, status %s, up %s", d.socket,
			d.health.Version, d.health.Status, (time.Duration(d.health.UptimeSeconds)*time.Second).String()), "", "")
		return
	}
	d.add("listener/control", statusFail, "the daemon does not answer on its control socket", errText(d.healthErr),
		"systemctl status amtedge; journalctl -u amtedge -e says why it is not running")
}

func (d *doctor) checkTLSListener(ctx context.Context, name, what, addr, key string) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		d.add(name, statusFail, what+": "+key+" "+addr+" is not host:port", err.Error(), "fix "+key)
		return
	}
	if port == "0" {
		d.add(name, statusSkip, what+": "+key+" has port 0, chosen at start; the daemon could not be asked which", "", "")
		return
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1" // it listens on every address: this one is the box's own
	}
	target := net.JoinHostPort(host, port)
	dialer := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second},
		// The doctor checks that a TLS server answers and which certificate it serves; trust is the agents'
		// business (rpc-go -n accepts a self-signed one), and no secret is sent over this connection.
		Config: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := dialer.DialContext(cctx, "tcp", target)
	if err != nil {
		d.add(name, statusFail, what+": nothing answers a TLS handshake on "+target, err.Error(),
			"systemctl status amtedge; check "+key+" and the firewall")
		return
	}
	defer conn.Close()
	st := conn.(*tls.Conn).ConnectionState()
	sum := fmt.Sprintf("%s answers TLS on %s (%s)", what, target, tls.VersionName(st.Version))
	if len(st.PeerCertificates) > 0 {
		leaf := st.PeerCertificates[0]
		sum += fmt.Sprintf(", serving %q until %s", leaf.Subject.CommonName, leaf.NotAfter.UTC().Format("2006-01-02"))
		if file := d.servedFile(name); file != "" {
			if onDisk, err := readLeaf(file); err == nil && !onDisk.Equal(leaf) {
				d.add(name, statusWarn, sum+", which is not the certificate in "+file, "",
					"systemctl reload amtedge to serve the file's certificate")
				return
			}
		}
	}
	d.add(name, statusOK, sum, "", "")
}

// servedFile is the certificate file a listener should serve ("" when it cannot be told).
func (d *doctor) servedFile(name string) string {
	agent := d.cfg.path(d.cfg.Agent.TLSCertFile)
	if agent == "" {
		agent = filepath.Join(d.cfg.path(d.cfg.StateDir), "tls", "cert.pem")
	}
	switch name {
	case "listener/agent":
		return agent
	case "listener/admin":
		if d.cfg.Admin.TLSCertFile != "" {
			return d.cfg.path(d.cfg.Admin.TLSCertFile)
		}
		return agent
	}
	return ""
}

// checkDHCP asks the segment's DHCP server for its DNS suffix (option 15) and compares it with the domains.
func (d *doctor) checkDHCP(ctx context.Context) {
	iface := d.opts.iface
	if iface == "" {
		var err error
		if iface, err = dhcpprobe.DefaultInterface(d.opts.netns); err != nil {
			d.add("dhcp", statusFail, "no interface to probe", err.Error(), "pass --interface IFACE (the agents' LAN segment)")
			return
		}
	}
	res, err := dhcpprobe.Inform(ctx, dhcpprobe.Options{Interface: iface, Server: d.opts.dhcpServer,
		Timeout: d.opts.dhcpTimeout, NetNS: d.opts.netns})
	switch {
	case errors.Is(err, dhcpprobe.ErrPermission):
		d.add("dhcp", statusWarn, "the segment's DNS suffix could not be asked on "+iface, err.Error(), "run amtedge doctor as root")
		return
	case errors.Is(err, dhcpprobe.ErrMalformed):
		d.add("dhcp", statusWarn, "the replies on "+iface+" were refused as malformed", err.Error(),
			"check the segment's DHCP server (or a rogue one); --dhcp-server ADDR asks a given server")
		return
	case errors.Is(err, dhcpprobe.ErrNoAnswer):
		d.add("dhcp", statusWarn, fmt.Sprintf("no DHCP server answered a DHCPINFORM on %s within %s", iface, d.opts.dhcpTimeout),
			"either no DHCP server serves this segment (devices then get no option 15, and ACM needs the MEBx PKI DNS suffix set on each), "+
				"the server sits behind a relay that does not forward the box's broadcast, or it does not answer DHCPINFORM",
			"ask the server directly with --dhcp-server ADDR, or check option 15 in the DHCP server's configuration")
		return
	case err != nil:
		d.add("dhcp", statusFail, "the probe could not run on "+iface, err.Error(), "pass --interface IFACE (the agents' LAN segment)")
		return
	}
	from := fmt.Sprintf("DHCP option 15 from %s on %s", res.Server, iface)
	var detail []string
	if len(res.SearchList) > 0 {
		detail = append(detail, "option 119 search list: "+strings.Join(res.SearchList, ", ")+" (AMT uses option 15 only)")
	}
	if res.DomainName == "" {
		d.add("dhcp", statusWarn, fmt.Sprintf("the DHCP server %s answered on %s without option 15: devices here get no DNS suffix", res.Server, iface),
			strings.Join(detail, "; "), "set option 15 (domain name) on the DHCP server to a suffix one of the domains covers, or set the MEBx PKI DNS suffix on each device")
		return
	}
	type dom struct{ name, suffix, cn string }
	var doms []dom
	if d.health != nil {
		for _, h := range d.health.Domains {
			doms = append(doms, dom{name: h.Name, suffix: h.Suffix})
		}
	} else {
		for _, s := range d.domains {
			doms = append(doms, dom{name: s.name, suffix: s.suffix})
		}
	}
	for i := range doms { // the certificate's CN, when the site file gave it
		for _, s := range d.domains {
			if s.name == doms[i].name {
				doms[i].cn = s.leafCN
			}
		}
	}
	if len(doms) == 0 {
		d.add("dhcp", statusOK, "segment suffix "+res.DomainName+" ("+from+"); no domains configured, so CCM only", strings.Join(detail, "; "), "")
		return
	}
	suffixes := make([]string, len(doms))
	for i, x := range doms {
		suffixes[i] = x.suffix
	}
	i, ok := domains.MatchSuffix(res.DomainName, suffixes)
	if !ok {
		d.add("dhcp", statusWarn, "the segment's suffix "+res.DomainName+" is covered by no domain: ACM activations here will fail unless the MEBx PKI suffix is set",
			strings.Join(append([]string{from, "domains: " + strings.Join(suffixes, ", ")}, detail...), "; "),
			"add a domain for "+res.DomainName+" (a provisioning certificate issued for it) to the site file, or serve a suffix a domain covers in option 15")
		return
	}
	m := doms[i]
	if m.cn != "" && !domains.CertMatchesSuffix(m.cn, res.DomainName) {
		d.add("dhcp", statusWarn, fmt.Sprintf("segment suffix %s selects domain %s, but its certificate CN %q does not cover %s: AMT will refuse it",
			res.DomainName, m.name, m.cn, res.DomainName), strings.Join(append([]string{from}, detail...), "; "),
			"use a provisioning certificate whose CN covers "+res.DomainName)
		return
	}
	d.add("dhcp", statusOK, "segment suffix "+res.DomainName+" matches domain "+m.name+" ("+m.suffix+")",
		strings.Join(append([]string{from}, detail...), "; "), "")
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
