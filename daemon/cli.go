package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
	"unicode"

	appcatalog "github.com/amtedge/amtedge/appliance/catalog"
	"github.com/amtedge/amtedge/appliance/inventory"
	"github.com/amtedge/amtedge/appliance/profiles"
	"github.com/amtedge/amtedge/appliance/web"
	"golang.org/x/term"
)

// The CLI's read commands: they ask the running box over its control socket (see control.go).

// cliFlags are the flags every read command takes.
type cliFlags struct {
	socket, config string
	json           bool
}

func newCLIFlagSet(name string, stderr io.Writer) (*flag.FlagSet, *cliFlags) {
	fs := newFlagSet(name, stderr)
	f := &cliFlags{}
	fs.StringVar(&f.socket, "socket", "", "the box's control socket (default: found from --config like the daemon does)")
	fs.StringVar(&f.config, "config", "", "configuration file of the box (to find its control socket)")
	fs.BoolVar(&f.json, "json", false, "print the API's JSON as is")
	return fs, f
}

// parseInterspersed parses flags anywhere among the arguments (`devices show UUID --json`) and returns the
// positional ones.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usageError{err}
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// socketPath is the control socket the CLI talks to: --socket, else control.socket of the configuration, else
// the first that exists of $RUNTIME_DIRECTORY/control.sock, /run/amtedge/control.sock (the packaged service) and
// <stateDir>/control.sock; when none exists, the first candidate, for the error message.
func (f *cliFlags) socketPath() (string, error) {
	if f.socket != "" {
		return f.socket, nil
	}
	cfg, err := loadConfig(f.config)
	if err != nil {
		return "", err
	}
	if cfg.Control.Socket != "" {
		return cfg.path(cfg.Control.Socket), nil
	}
	var candidates []string
	if dir := runtimeDirectory(); dir != "" {
		candidates = append(candidates, filepath.Join(dir, controlSocketName))
	}
	candidates = append(candidates, filepath.Join(packagedRuntimeDir, controlSocketName),
		filepath.Join(cfg.path(cfg.StateDir), controlSocketName))
	for _, c := range candidates {
		if _, err := os.Stat(c); err == nil {
			return c, nil
		}
	}
	return candidates[0], nil
}

// controlClient talks HTTP to the box over its control socket.
type controlClient struct {
	path string
	http *http.Client
}

func newControlClient(path string) *controlClient {
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}}
	// Longer than the box's own bound on `sync now` (2 minutes), so the box's answer is what the user sees.
	return &controlClient{path: path, http: &http.Client{Transport: tr, Timeout: 3 * time.Minute}}
}

// get fetches an API path; a non-2xx answer becomes an error carrying the box's message.
func (c *controlClient) get(path string, query url.Values) ([]byte, error) {
	return c.do(http.MethodGet, path, query)
}

// do sends one request to the box's API; a non-2xx answer becomes an error carrying the box's message.
func (c *controlClient) do(method, path string, query url.Values) ([]byte, error) {
	return c.sendJSON(method, path, query, nil)
}

// sendJSON is do with a JSON request body (nil: none).
func (c *controlClient) sendJSON(method, path string, query url.Values, reqBody []byte) ([]byte, error) {
	u := "http://amtedge" + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var rd io.Reader
	if reqBody != nil {
		rd = bytes.NewReader(reqBody)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		return nil, err
	}
	if reqBody != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := c.http.Do(req)
	if err != nil {
		return nil, c.dialError(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("read the answer of the box: %w", err)
	}
	if res.StatusCode/100 == 2 {
		return body, nil
	}
	var eb web.ErrorBody
	var ve web.ValidationErrors
	switch {
	case json.Unmarshal(body, &ve) == nil && len(ve.Errors) > 0:
		if len(ve.Errors) == 1 {
			return nil, errors.New(itemText(ve.Errors[0]))
		}
		msgs := make([]string, len(ve.Errors))
		for i, e := range ve.Errors {
			msgs[i] = "\n  " + itemText(e)
		}
		return nil, fmt.Errorf("the box refused it (%d problems):%s", len(ve.Errors), strings.Join(msgs, ""))
	case json.Unmarshal(body, &eb) == nil && eb.Message != "":
		return nil, errors.New(clean(eb.Message)) // the box's text reaches a terminal: no control characters
	}
	return nil, fmt.Errorf("the box answered %s", res.Status)
}

func (c *controlClient) dialError(err error) error {
	switch {
	case errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("no amtedge is listening on %s: is the service running? systemctl status amtedge", c.path)
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return fmt.Errorf("permission denied on %s: run as root or a member of group amtedge", c.path)
	}
	return fmt.Errorf("control socket %s: %w", c.path, err)
}

// cliCommand runs one read command: parse, connect, fetch, print.
func cliCommand(name string, args []string, stdout, stderr io.Writer, maxArgs int,
	extra func(fs *flag.FlagSet), do func(c *controlClient, f *cliFlags, pos []string) ([]byte, func() error, error)) error {
	fs, f := newCLIFlagSet(name, stderr)
	if extra != nil {
		extra(fs)
	}
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > maxArgs {
		return usageError{fmt.Errorf("unexpected argument %q", pos[maxArgs])}
	}
	path, err := f.socketPath()
	if err != nil {
		return err
	}
	raw, print, err := do(newControlClient(path), f, pos)
	if err != nil {
		return err
	}
	if f.json {
		_, err := stdout.Write(raw)
		return err
	}
	return print()
}

func statusCommand(args []string, stdout, stderr io.Writer) error {
	return cliCommand("status", args, stdout, stderr, 0, nil, func(c *controlClient, f *cliFlags, _ []string) ([]byte, func() error, error) {
		hb, err := c.get("/api/v1/health", nil)
		if err != nil {
			return nil, nil, err
		}
		sb, err := c.get("/api/v1/sessions", nil)
		if err != nil {
			return nil, nil, err
		}
		raw := fmt.Appendf(nil, "{\"health\":%s,\"sessions\":%s}\n", strings.TrimSpace(string(hb)), strings.TrimSpace(string(sb)))
		var h web.Health
		var sessions []web.Session
		if err := errors.Join(json.Unmarshal(hb, &h), json.Unmarshal(sb, &sessions)); err != nil {
			return nil, nil, fmt.Errorf("decode the answer of the box: %w", err)
		}
		return raw, func() error { return printStatus(stdout, h, sessions, time.Now()) }, nil
	})
}

func printStatus(w io.Writer, h web.Health, sessions []web.Session, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	seal := h.Seal.Mode + ", " + h.Seal.State
	if h.Seal.Reason != "" {
		seal += ": " + h.Seal.Reason
	}
	fmt.Fprintf(tw, "amtedge\t%s, %s, up %s\n", clean(h.Version), h.Status, (time.Duration(h.UptimeSeconds) * time.Second).String())
	fmt.Fprintf(tw, "agents\t%s\n", clean(h.Listen))
	fmt.Fprintf(tw, "seal\t%s\n", clean(seal))
	fmt.Fprintf(tw, "Vault\t%s\n", clean(h.Vault.State))
	outbox := fmt.Sprintf("%d queued", h.Outbox.Length)
	if h.Outbox.Oldest != nil {
		outbox += ", oldest " + h.Outbox.Oldest.Local().Format(time.DateTime)
	}
	if h.Outbox.Error != "" {
		outbox = h.Outbox.Error
	}
	fmt.Fprintf(tw, "outbox\t%s\n", clean(outbox))
	for _, d := range h.Domains {
		left := fmt.Sprintf("%d days left", d.DaysLeft)
		if d.DaysLeft < 0 {
			left = "EXPIRED"
		}
		fmt.Fprintf(tw, "domain %s\t%s, certificate expires %s (%s)\n", clean(d.Name), clean(d.Suffix), d.Expires.Format(time.DateOnly), left)
	}
	fmt.Fprintf(tw, "sessions\t%d live\n", len(sessions))
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(sessions) == 0 {
		return nil
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "UUID\tVERB\tPROFILE\tREMOTE\tSTEP\tRUNNING")
	for _, s := range sessions {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", clean(s.UUID), clean(s.Verb), dash(s.Profile), clean(s.Remote), dash(s.Step),
			now.Sub(s.Started).Round(time.Second))
	}
	return tw.Flush()
}

func devicesCommand(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return devicesList(args, stdout, stderr)
	}
	switch args[0] {
	case "list":
		return devicesList(args[1:], stdout, stderr)
	case "show":
		return devicesShow(args[1:], stdout, stderr)
	}
	return usageError{fmt.Errorf("unknown devices command %q (list or show UUID)", args[0])}
}

func devicesList(args []string, stdout, stderr io.Writer) error {
	var search string
	var top, skip int
	return cliCommand("devices list", args, stdout, stderr, 0, func(fs *flag.FlagSet) {
		fs.StringVar(&search, "search", "", "only devices whose UUID, hostname, profile or status contains this (any case)")
		fs.IntVar(&top, "top", 100, "at most this many devices")
		fs.IntVar(&skip, "skip", 0, "skip this many devices first (newest first)")
	}, func(c *controlClient, f *cliFlags, _ []string) ([]byte, func() error, error) {
		q := url.Values{"$top": {fmt.Sprint(top)}, "$skip": {fmt.Sprint(skip)}, "$count": {"true"}}
		if search != "" {
			q.Set("search", search)
		}
		raw, err := c.get("/api/v1/devices", q)
		if err != nil {
			return nil, nil, err
		}
		var page web.Page[inventory.Record]
		if err := json.Unmarshal(raw, &page); err != nil {
			return nil, nil, fmt.Errorf("decode the answer of the box: %w", err)
		}
		return raw, func() error {
			tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "UUID\tHOSTNAME\tVERB\tPROFILE\tRESULT\tMODE\tENDED\tSTATUS")
			for _, r := range page.Data {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", clean(r.UUID), dash(r.Hostname), clean(r.Verb), dash(r.Profile),
					result(r.Success), inventory.ModeName(r.ModeAfter), r.Ended.Local().Format(time.DateTime), shorten(clean(r.Status), 60))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			_, err := fmt.Fprintf(stdout, "%d of %d devices\n", len(page.Data), page.TotalCount)
			return err
		}, nil
	})
}

func devicesShow(args []string, stdout, stderr io.Writer) error {
	return cliCommand("devices show", args, stdout, stderr, 1, nil, func(c *controlClient, f *cliFlags, pos []string) ([]byte, func() error, error) {
		if len(pos) != 1 {
			return nil, nil, usageError{errors.New("usage: amtedge devices show UUID")}
		}
		raw, err := c.get("/api/v1/devices/"+url.PathEscape(pos[0]), nil)
		if err != nil {
			return nil, nil, err
		}
		var dev web.Device
		if err := json.Unmarshal(raw, &dev); err != nil {
			return nil, nil, fmt.Errorf("decode the answer of the box: %w", err)
		}
		return raw, func() error { return printDevice(stdout, dev) }, nil
	})
}

func printDevice(w io.Writer, dev web.Device) error {
	fmt.Fprintf(w, "device %s: %d records, newest first\n", clean(dev.UUID), len(dev.Records))
	for _, r := range dev.Records {
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "%s\t%s %s, %s\n", r.Started.Local().Format(time.DateTime), clean(r.Verb), result(r.Success), r.Duration().Round(time.Millisecond))
		for _, kv := range [][2]string{{"profile", r.Profile}, {"domain", r.Domain}, {"hostname", r.Hostname}, {"DNS suffix", r.DNSSuffix},
			{"firmware", r.FirmwareVer}, {"agent", r.AgentVersion}, {"remote", r.Remote}} {
			if kv[1] != "" {
				fmt.Fprintf(tw, "  %s\t%s\n", kv[0], clean(kv[1]))
			}
		}
		fmt.Fprintf(tw, "  mode\t%s → %s\n", inventory.ModeName(r.ModeBefore), inventory.ModeName(r.ModeAfter))
		fmt.Fprintf(tw, "  status\t%s\n", clean(r.Status))
		if err := tw.Flush(); err != nil {
			return err
		}
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  STEP\tRESULT\tDURATION\tDETAIL")
		for _, s := range r.Steps {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", clean(s.Name), clean(s.Result), s.Duration.Round(time.Millisecond), clean(s.Detail))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

func profilesCommand(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "create":
			return profileCreateCommand(args[1:], stdout, stderr)
		case "delete":
			return deleteCommand("profiles", args[1:], stdout, stderr)
		case "list":
			args = args[1:]
		}
	}
	return cliCommand("profiles list", args, stdout, stderr, 0, nil, func(c *controlClient, f *cliFlags, _ []string) ([]byte, func() error, error) {
		raw, err := c.get("/api/v1/admin/profiles", url.Values{"$top": {"10000"}})
		if err != nil {
			return nil, nil, err
		}
		var list []profiles.Profile
		if err := json.Unmarshal(raw, &list); err != nil {
			return nil, nil, fmt.Errorf("decode the answer of the box: %w", err)
		}
		return raw, func() error {
			tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tACTIVATION\tPASSWORDS\tDHCP\tUSER CONSENT")
			for _, p := range list {
				pw := "static"
				if p.UsesRandomPasswords() {
					pw = "random"
				}
				dhcp := "-"
				if p.DHCPEnabled != nil {
					dhcp = fmt.Sprint(*p.DHCPEnabled)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", clean(p.ProfileName), clean(p.Activation), pw, dhcp, dash(p.WithDefaults().UserConsent))
			}
			return tw.Flush()
		}, nil
	})
}

func domainsCommand(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "import":
			return domainImportCommand(args[1:], stdout, stderr)
		case "inspect":
			return domainInspectCommand(args[1:], stdout, stderr)
		case "delete":
			return deleteCommand("domains", args[1:], stdout, stderr)
		case "list":
			args = args[1:]
		}
	}
	return cliCommand("domains list", args, stdout, stderr, 0, nil, func(c *controlClient, f *cliFlags, _ []string) ([]byte, func() error, error) {
		raw, err := c.get("/api/v1/admin/domains", url.Values{"$top": {"10000"}})
		if err != nil {
			return nil, nil, err
		}
		var list []appcatalog.Domain
		if err := json.Unmarshal(raw, &list); err != nil {
			return nil, nil, fmt.Errorf("decode the answer of the box: %w", err)
		}
		return raw, func() error {
			now := time.Now()
			tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tDNS SUFFIX\tCERTIFICATE EXPIRES\tDAYS LEFT")
			for _, d := range list {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\n", clean(d.ProfileName), clean(d.DomainSuffix), d.ExpirationDate.Format(time.DateOnly),
					certDaysLeft(d.ExpirationDate, now))
			}
			return tw.Flush()
		}, nil
	})
}

// clean makes a device-supplied string safe for a terminal: control characters (escape sequences, tabs that would
// break the columns, newlines) are shown escaped instead of interpreted.
func clean(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if unicode.IsPrint(r) {
			b.WriteRune(r)
		} else {
			fmt.Fprintf(&b, "\\x%02x", r)
		}
	}
	return b.String()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return clean(s)
}

func shorten(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func result(ok bool) string {
	if ok {
		return "succeeded"
	}
	return "failed"
}

// syncCommand is `amtedge sync now`: the box pulls from and pushes to its central Vault at once.
func syncCommand(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "now" {
		return usageError{errors.New("usage: amtedge sync now [--socket PATH | --config FILE] [--json]")}
	}
	return cliCommand("sync now", args[1:], stdout, stderr, 0, nil, func(c *controlClient, f *cliFlags, _ []string) ([]byte, func() error, error) {
		raw, err := c.do(http.MethodPost, "/api/v1/sync", nil)
		if err != nil {
			return nil, nil, err
		}
		var res web.SyncResult
		if err := json.Unmarshal(raw, &res); err != nil {
			return nil, nil, fmt.Errorf("decode the answer of the box: %w", err)
		}
		return raw, func() error { _, err := fmt.Fprintln(stdout, res.Message); return err }, nil
	})
}

// The CLI's catalog writes: the same admin API as the UI, over the control socket, where the kernel's peer
// credentials are the authentication. Secrets (static passwords in a profile file, the PFX password) go to the
// box in the request body only; nothing here prints them.

// itemText is one validation item as a line: "path: msg" (or the message alone for the body as a whole).
func itemText(e profiles.FieldError) string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

// maxCLIFile bounds what the CLI reads from a file given to it (a profile body, a PFX): the box refuses more.
const maxCLIFile = appcatalog.MaxBodyBytes

func readCLIFile(path, what string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxCLIFile+1))
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", what, path, err)
	}
	if len(b) > maxCLIFile {
		return nil, fmt.Errorf("%s %s is larger than %d bytes", what, path, maxCLIFile)
	}
	return b, nil
}

// profileCreateCommand is `amtedge profiles create --file profile.json`: the file is RPS's POST /profiles body.
func profileCreateCommand(args []string, stdout, stderr io.Writer) error {
	var file string
	return cliCommand("profiles create", args, stdout, stderr, 0, func(fs *flag.FlagSet) {
		fs.StringVar(&file, "file", "", "the profile as RPS's JSON body (required)")
	}, func(c *controlClient, f *cliFlags, _ []string) ([]byte, func() error, error) {
		if file == "" {
			return nil, nil, usageError{errors.New("--file is required")}
		}
		body, err := readCLIFile(file, "profile file")
		if err != nil {
			return nil, nil, err
		}
		raw, err := c.sendJSON(http.MethodPost, "/api/v1/admin/profiles", nil, body)
		if err != nil {
			return nil, nil, err
		}
		var p appcatalog.ProfileEntry
		if err := json.Unmarshal(raw, &p); err != nil {
			return nil, nil, fmt.Errorf("decode the answer of the box: %w", err)
		}
		return raw, func() error {
			_, err := fmt.Fprintf(stdout, "profile %s created (%s, version %s)\n", clean(p.ProfileName), clean(p.Activation), clean(p.Version))
			return err
		}, nil
	})
}

// deleteCommand is `amtedge profiles delete NAME` and `amtedge domains delete NAME`.
func deleteCommand(kind string, args []string, stdout, stderr io.Writer) error {
	return cliCommand(kind+" delete", args, stdout, stderr, 1, nil, func(c *controlClient, f *cliFlags, pos []string) ([]byte, func() error, error) {
		if len(pos) != 1 || pos[0] == "" {
			return nil, nil, usageError{fmt.Errorf("usage: amtedge %s delete NAME", kind)}
		}
		name := pos[0]
		if _, err := c.do(http.MethodDelete, "/api/v1/admin/"+kind+"/"+url.PathEscape(name), nil); err != nil {
			return nil, nil, err
		}
		raw := fmt.Appendf(nil, "{\"deleted\":%q}\n", name)
		return raw, func() error {
			_, err := fmt.Fprintf(stdout, "%s %s deleted\n", strings.TrimSuffix(kind, "s"), clean(name))
			return err
		}, nil
	})
}

// pfxFlags are the flags of `domains import` and `domains inspect`.
type pfxFlags struct {
	pfx, suffix, name, passwordFile string
}

func (p *pfxFlags) register(fs *flag.FlagSet, withName bool) {
	fs.StringVar(&p.pfx, "pfx", "", "the provisioning certificate, a PKCS#12 (.pfx/.p12) file (required)")
	fs.StringVar(&p.suffix, "suffix", "", "the DNS suffix the certificate serves")
	fs.StringVar(&p.passwordFile, "password-file", "", "file holding the PFX password (default: prompt, or read stdin when it is not a terminal)")
	if withName {
		fs.StringVar(&p.name, "name", "", "the domain's name (default: the suffix with dots as dashes)")
	}
}

// cliStdin is where the PFX password is read from without --password-file (a variable for the tests).
var cliStdin = os.Stdin

// readPFXPassword reads the PFX password from --password-file, else from the terminal without echo, else the
// first line of stdin. A trailing newline is not part of the password.
func readPFXPassword(file string, stderr io.Writer) (string, error) {
	var b []byte
	var err error
	switch {
	case file != "":
		if b, err = readCLIFile(file, "password file"); err != nil {
			return "", err
		}
	case term.IsTerminal(int(cliStdin.Fd())):
		fmt.Fprint(stderr, "PFX password: ")
		b, err = term.ReadPassword(int(cliStdin.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return "", fmt.Errorf("read the PFX password: %w", err)
		}
	default:
		line, err := bufio.NewReader(io.LimitReader(cliStdin, 4096)).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("read the PFX password from stdin: %w", err)
		}
		b = []byte(line)
	}
	pw := strings.TrimRight(string(b), "\r\n")
	if strings.ContainsAny(pw, "\r\n") {
		return "", errors.New("the PFX password file holds more than one line")
	}
	return pw, nil
}

// pfxBody reads the PFX and its password into the fields of RPS's domain body.
func (p *pfxFlags) body(stderr io.Writer) (map[string]any, error) {
	if p.pfx == "" {
		return nil, usageError{errors.New("--pfx is required")}
	}
	pfx, err := readCLIFile(p.pfx, "PFX file")
	if err != nil {
		return nil, err
	}
	pw, err := readPFXPassword(p.passwordFile, stderr)
	if err != nil {
		return nil, err
	}
	return map[string]any{"provisioningCert": base64.StdEncoding.EncodeToString(pfx), "provisioningCertPassword": pw,
		"domainSuffix": p.suffix}, nil
}

// domainImportCommand is `amtedge domains import --pfx FILE --suffix S [--name N] [--password-file F]`.
func domainImportCommand(args []string, stdout, stderr io.Writer) error {
	var pf pfxFlags
	return cliCommand("domains import", args, stdout, stderr, 0, func(fs *flag.FlagSet) { pf.register(fs, true) },
		func(c *controlClient, f *cliFlags, _ []string) ([]byte, func() error, error) {
			if pf.suffix == "" {
				return nil, nil, usageError{errors.New("--suffix is required")}
			}
			body, err := pf.body(stderr)
			if err != nil {
				return nil, nil, err
			}
			name := pf.name
			if name == "" {
				name = strings.ReplaceAll(strings.TrimSuffix(strings.ToLower(pf.suffix), "."), ".", "-")
			}
			body["profileName"] = name
			body["provisioningCertStorageFormat"] = "string"
			data, err := json.Marshal(body)
			if err != nil {
				return nil, nil, err
			}
			raw, err := c.sendJSON(http.MethodPost, "/api/v1/admin/domains", nil, data)
			if err != nil {
				return nil, nil, err
			}
			var d appcatalog.Domain
			if err := json.Unmarshal(raw, &d); err != nil {
				return nil, nil, fmt.Errorf("decode the answer of the box: %w", err)
			}
			return raw, func() error {
				_, err := fmt.Fprintf(stdout, "domain %s imported: DNS suffix %s, certificate expires %s\n", clean(d.ProfileName),
					clean(d.DomainSuffix), d.ExpirationDate.UTC().Format(time.DateOnly))
				return err
			}, nil
		})
}

// domainInspectCommand is `amtedge domains inspect --pfx FILE [--suffix S] [--password-file F]`: what the box
// would say of the certificate, without storing it.
func domainInspectCommand(args []string, stdout, stderr io.Writer) error {
	var pf pfxFlags
	return cliCommand("domains inspect", args, stdout, stderr, 0, func(fs *flag.FlagSet) { pf.register(fs, false) },
		func(c *controlClient, f *cliFlags, _ []string) ([]byte, func() error, error) {
			body, err := pf.body(stderr)
			if err != nil {
				return nil, nil, err
			}
			data, err := json.Marshal(body)
			if err != nil {
				return nil, nil, err
			}
			raw, err := c.sendJSON(http.MethodPost, "/api/v1/admin/domains/inspect", nil, data)
			if err != nil {
				return nil, nil, err
			}
			var r appcatalog.CertReport
			if err := json.Unmarshal(raw, &r); err != nil {
				return nil, nil, fmt.Errorf("decode the answer of the box: %w", err)
			}
			return raw, func() error { return printCertReport(stdout, r) }, nil
		})
}

func printCertReport(w io.Writer, r appcatalog.CertReport) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if len(r.Chain) > 0 {
		fmt.Fprintf(tw, "Leaf CN:\t%s\n", clean(r.LeafCN))
		if r.Suffix != "" {
			fmt.Fprintf(tw, "Suffix %s:\t%s\n", clean(r.Suffix), yesNo(r.SuffixMatches, "covered by the CN", "NOT covered by the CN"))
		}
		fmt.Fprintf(tw, "AMT provisioning EKU:\t%s\n", yesNo(r.ActivationEKU, "present", "MISSING"))
		fmt.Fprintf(tw, "Expires:\t%s\n", r.Expires.UTC().Format(time.RFC3339))
		fmt.Fprintf(tw, "Root SHA-256:\t%s\n", clean(r.RootSHA256))
		for i, c := range r.Chain {
			fmt.Fprintf(tw, "Chain %d:\t%s (issuer %s, valid %s to %s)\n", i, clean(c.Subject), clean(c.Issuer),
				c.NotBefore.UTC().Format(time.DateOnly), c.NotAfter.UTC().Format(time.DateOnly))
		}
	}
	if r.Problem != "" {
		fmt.Fprintf(tw, "Import:\trefused: %s\n", clean(r.Problem))
	} else {
		fmt.Fprintf(tw, "Import:\twould be accepted\n")
	}
	return tw.Flush()
}

func yesNo(ok bool, yes, no string) string {
	if ok {
		return yes
	}
	return no
}
