package main

import (
	"context"
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

	"github.com/amtedge/amtedge/appliance/inventory"
	"github.com/amtedge/amtedge/appliance/profiles"
	"github.com/amtedge/amtedge/appliance/web"
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
	u := "http://amtedge" + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		return nil, err
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
		msgs := make([]string, len(ve.Errors))
		for i, e := range ve.Errors {
			msgs[i] = e.Path + ": " + e.Msg
		}
		return nil, errors.New(strings.Join(msgs, "; "))
	case json.Unmarshal(body, &eb) == nil && eb.Message != "":
		return nil, errors.New(eb.Message)
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
					result(r.Success), modeName(r.ModeAfter), r.Ended.Local().Format(time.DateTime), shorten(clean(r.Status), 60))
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
		fmt.Fprintf(tw, "  mode\t%s → %s\n", modeName(r.ModeBefore), modeName(r.ModeAfter))
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
	if len(args) > 0 && args[0] == "list" {
		args = args[1:]
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
	if len(args) > 0 && args[0] == "list" {
		args = args[1:]
	}
	return cliCommand("domains list", args, stdout, stderr, 0, nil, func(c *controlClient, f *cliFlags, _ []string) ([]byte, func() error, error) {
		raw, err := c.get("/api/v1/admin/domains", url.Values{"$top": {"10000"}})
		if err != nil {
			return nil, nil, err
		}
		var list []web.Domain
		if err := json.Unmarshal(raw, &list); err != nil {
			return nil, nil, fmt.Errorf("decode the answer of the box: %w", err)
		}
		return raw, func() error {
			now := time.Now()
			tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tDNS SUFFIX\tCERTIFICATE EXPIRES\tDAYS LEFT")
			for _, d := range list {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\n", clean(d.ProfileName), clean(d.DomainSuffix), d.ExpirationDate.Format(time.DateOnly),
					int(d.ExpirationDate.Sub(now).Hours()/24))
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

// modeName names AMT's control mode (0 pre-provisioning, 1 client, 2 admin).
func modeName(m int) string {
	switch m {
	case 0:
		return "none"
	case 1:
		return "CCM"
	case 2:
		return "ACM"
	}
	return fmt.Sprint(m)
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
