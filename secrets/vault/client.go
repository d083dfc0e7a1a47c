// Package vault is the box's client for its site's central HashiCorp Vault: it logs in (AppRole or a token),
// keeps its token alive, and reads and writes the site's secrets in RPS's KV v2 layout under a configurable mount
// and site prefix (certs/<domain>, profiles/<profile>, devices/<uuid>), so a box can be pointed at an existing
// Open AMT Vault. The sync (secrets/cache's outbox → Vault, Vault → cache; secrets/vaultsync) builds on it.
//
// It must never: log a secret or put one in an error text (errors name the operation and the path, which hold
// only names and UUIDs); take anything from the process environment (VAULT_ADDR, VAULT_TOKEN, VAULT_NAMESPACE,
// VAULT_HEADERS, VAULT_WRAP_TTL, HTTPS_PROXY, … are all ignored: everything comes from Config — though the api
// package still parses VAULT_* in api.NewClient, so a malformed one makes New fail); overwrite a device secret
// blindly (every write is check-and-set and keeps the keys the box does not own); or block without a deadline
// (every call runs under Config.CallTimeout).
package vault

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/vault/api"
)

// Errors callers branch on; every returned error wraps at most one of them, test with errors.Is.
var (
	// ErrConflict: a check-and-set write found a version other than the one the caller read.
	ErrConflict = errors.New("version conflict")
	// ErrPermissionDenied: Vault refused the box's token (403), or refused the login.
	ErrPermissionDenied = errors.New("permission denied")
	// ErrUnreachable: no usable answer from Vault within the call timeout (connection refused, DNS, TLS, timeout,
	// sealed or standby-without-forwarding 5xx). The caller should keep the write queued and retry later.
	ErrUnreachable = errors.New("vault unreachable")
)

// Auth methods for Config.Auth.Method.
const (
	AuthAppRole = "approle"
	AuthToken   = "token"
)

// Defaults filled by Config.withDefaults.
const (
	DefaultMount        = "secret"
	DefaultAppRoleMount = "approle"
	DefaultCallTimeout  = 5 * time.Second
	DefaultMaxRetries   = 1
)

// Config is what the daemon's configuration gives the client. Every file is read when needed (login, start); no
// value comes from the environment.
type Config struct {
	// Address of the Vault server, e.g. https://vault.example.com:8200. Required.
	Address string
	// CAFile is a PEM bundle of CAs that sign Vault's server certificate; empty uses the system roots.
	CAFile string
	// ClientCertFile and ClientKeyFile: an optional client certificate (both or neither).
	ClientCertFile string
	ClientKeyFile  string
	// TLSServerName overrides the name checked in Vault's certificate (optional).
	TLSServerName string
	// ProxyURL is an HTTP(S) proxy to reach Vault through (optional; HTTPS_PROXY and friends are not read).
	ProxyURL string

	Auth AuthConfig

	// Mount is the KV v2 mount (default "secret").
	Mount string
	// Prefix is the site's folder under the mount, e.g. "sites/lyon-1"; RPS's layout lives beneath it. Empty means
	// the mount's root (a plain RPS Vault).
	Prefix string

	// CallTimeout bounds every call to Vault, retries included (default 5 s).
	CallTimeout time.Duration
	// MaxRetries is how many times a call is retried on a connection error or 5xx (default 1; negative for none).
	MaxRetries int

	// Logger receives one line per operator-relevant event (login, renewal failure); default slog.Default().
	Logger *slog.Logger
}

// AuthConfig says how the box logs in.
type AuthConfig struct {
	// Method is AuthAppRole or AuthToken.
	Method string

	// AppRole: files holding the role_id and the secret_id. With SecretIDWrapped, the secret_id file holds a
	// response-wrapping token that is unwrapped once at the first login; the secret_id is then kept in memory
	// only (a wrapping token is single-use), so a restart needs a fresh wrapped secret_id.
	RoleIDFile      string
	SecretIDFile    string
	SecretIDWrapped bool
	// AppRoleMount is where the AppRole auth method is mounted (default "approle").
	AppRoleMount string

	// Token: a file holding a Vault token (re-read at every re-login, so an agent may rotate it).
	TokenFile string
}

func (c Config) withDefaults() Config {
	if c.Mount == "" {
		c.Mount = DefaultMount
	}
	if c.Auth.AppRoleMount == "" {
		c.Auth.AppRoleMount = DefaultAppRoleMount
	}
	if c.CallTimeout <= 0 {
		c.CallTimeout = DefaultCallTimeout
	}
	switch {
	case c.MaxRetries == 0:
		c.MaxRetries = DefaultMaxRetries
	case c.MaxRetries < 0:
		c.MaxRetries = 0
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	c.Mount = strings.Trim(c.Mount, "/")
	c.Prefix = strings.Trim(c.Prefix, "/")
	c.Auth.AppRoleMount = strings.Trim(c.Auth.AppRoleMount, "/")
	return c
}

// Validate checks the configuration without touching the network or the files' contents; errors name the key.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if c.Address == "" {
		errs = append(errs, errors.New("vault.address: required"))
	} else if !strings.HasPrefix(c.Address, "https://") && !strings.HasPrefix(c.Address, "http://") {
		errs = append(errs, fmt.Errorf("vault.address: %q must start with https:// (or http:// for a local dev server)", c.Address))
	}
	if c.ProxyURL != "" {
		if u, err := url.Parse(c.ProxyURL); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			errs = append(errs, fmt.Errorf("vault.proxyURL: %q is not an http:// or https:// URL", c.ProxyURL))
		}
	}
	if (c.ClientCertFile == "") != (c.ClientKeyFile == "") {
		errs = append(errs, errors.New("vault.clientCertFile and vault.clientKeyFile: give both or neither"))
	}
	switch c.Auth.Method {
	case AuthAppRole:
		if c.Auth.RoleIDFile == "" {
			errs = append(errs, errors.New("vault.auth.roleIdFile: required with method approle"))
		}
		if c.Auth.SecretIDFile == "" {
			errs = append(errs, errors.New("vault.auth.secretIdFile: required with method approle"))
		}
	case AuthToken:
		if c.Auth.TokenFile == "" {
			errs = append(errs, errors.New("vault.auth.tokenFile: required with method token"))
		}
	default:
		errs = append(errs, fmt.Errorf("vault.auth.method: %q is not %q or %q", c.Auth.Method, AuthAppRole, AuthToken))
	}
	for _, seg := range strings.Split(c.Mount+"/"+c.Prefix, "/") {
		if seg == "." || seg == ".." {
			errs = append(errs, errors.New("vault.mount / vault.prefix: no . or .. segments"))
			break
		}
	}
	return errors.Join(errs...)
}

// Client talks to one Vault for one site. It is safe for concurrent use; Run keeps its token alive.
type Client struct {
	cfg Config
	log *slog.Logger
	api *api.Client // token set by Login; the api client guards it with its own lock

	mu       sync.Mutex
	auth     *api.Secret // the last login's response, for the lifetime watcher
	secretID string      // the unwrapped AppRole secret_id, kept when SecretIDWrapped (a wrapping token is single-use)
	loginErr error       // why the last login failed (Run), for calls that wait for the first login

	// loggedIn is closed by the first successful Login: calls made before it (the sync starts with the client)
	// wait for it, up to their own deadline, instead of going out without a token and reading Vault's 403 as a
	// policy problem.
	loggedIn  chan struct{}
	firstAuth sync.Once
}

// New checks cfg and builds the client; it reads the TLS files but does not contact Vault (see Login).
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("vault config: %w", err)
	}
	cfg = cfg.withDefaults()
	httpClient, err := newHTTPClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("vault config: %w", err)
	}
	ac, err := newAPIClient(cfg, httpClient)
	if err != nil {
		return nil, err
	}
	return &Client{cfg: cfg, log: cfg.Logger, api: ac, loggedIn: make(chan struct{})}, nil
}

// newHTTPClient builds the transport from Config only (the api package's default one reads VAULT_* variables).
func newHTTPClient(cfg Config) (*http.Client, error) {
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: cfg.TLSServerName}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("vault.caFile: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("vault.caFile: %s holds no PEM certificate", cfg.CAFile)
		}
		tlsCfg.RootCAs = pool
	}
	if cfg.ClientCertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.ClientCertFile, cfg.ClientKeyFile)
		if err != nil {
			// The key file's content never reaches the text: LoadX509KeyPair reports only what is wrong.
			return nil, fmt.Errorf("vault.clientCertFile / vault.clientKeyFile: %w", err)
		}
		tlsCfg.Certificates = []tls.Certificate{cert}
	}
	var proxy func(*http.Request) (*url.URL, error) // none unless configured: HTTPS_PROXY is not read either
	if cfg.ProxyURL != "" {
		u, err := url.Parse(cfg.ProxyURL)
		if err != nil {
			return nil, fmt.Errorf("vault.proxyURL: %w", err)
		}
		proxy = http.ProxyURL(u)
	}
	dialer := &net.Dialer{Timeout: cfg.CallTimeout, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy:                 proxy,
		DialContext:           dialer.DialContext,
		TLSClientConfig:       tlsCfg,
		TLSHandshakeTimeout:   cfg.CallTimeout,
		ResponseHeaderTimeout: cfg.CallTimeout,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   4,
		// HTTP/1.1: the box's traffic is small, and a refused client certificate then reads "tls: certificate
		// required" instead of HTTP/2's "client conn could not be established".
		ForceAttemptHTTP2: false,
	}
	return &http.Client{
		Transport: tr,
		// The api client does its own redirect handling (standby → active).
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}, nil
}

// newAPIClient builds an api.Client from cfg and undoes what api.NewClient takes from the environment (token,
// namespace, extra headers), and pins the wrapping lookup (the default one reads VAULT_WRAP_TTL).
func newAPIClient(cfg Config, hc *http.Client) (*api.Client, error) {
	ac, err := api.NewClient(&api.Config{
		Address:      cfg.Address,
		HttpClient:   hc,
		Timeout:      cfg.CallTimeout,
		MinRetryWait: 100 * time.Millisecond,
		MaxRetryWait: 400 * time.Millisecond,
		MaxRetries:   cfg.MaxRetries,
	})
	if err != nil {
		// api.NewClient fails when the environment's VAULT_* variables are malformed, even though none is used.
		return nil, fmt.Errorf("vault client for %s: the api package parses the process's VAULT_* variables (amtedge uses none of them) and refuses one: unset it: %w", cfg.Address, err)
	}
	ac.ClearToken()
	ac.ClearNamespace()
	ac.SetHeaders(http.Header{api.RequestHeaderName: []string{"true"}})
	ac.SetWrappingLookupFunc(func(string, string) string { return "" })
	return ac, nil
}

// call runs f under the per-call deadline and maps its error; op and path (relative to the site prefix, or a
// system path) name what failed in the error text, vaultPath is the path the policy must cover.
func (c *Client) call(ctx context.Context, op, path, vaultPath string, f func(ctx context.Context) error) error {
	if err := c.awaitLogin(ctx); err != nil {
		return fmt.Errorf("vault %s %s: %w", op, path, err)
	}
	return c.callUnauthenticated(ctx, op, path, vaultPath, f)
}

// awaitLogin returns once the client has logged in at least once, or with why not when the call's deadline
// (CallTimeout) or ctx ends first.
func (c *Client) awaitLogin(ctx context.Context) error {
	select {
	case <-c.loggedIn:
		return nil
	default:
	}
	wctx, cancel := context.WithTimeout(ctx, c.cfg.CallTimeout)
	defer cancel()
	select {
	case <-c.loggedIn:
		return nil
	case <-wctx.Done():
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	lerr := c.loginErr
	c.mu.Unlock()
	if lerr != nil {
		return fmt.Errorf("not logged in to Vault: %w", lerr)
	}
	return fmt.Errorf("%w: not logged in to Vault yet (no login within %s)", ErrUnreachable, c.cfg.CallTimeout)
}

// callUnauthenticated is call for what does not wait for a login: sys/health and the login calls themselves.
func (c *Client) callUnauthenticated(ctx context.Context, op, path, vaultPath string, f func(ctx context.Context) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("vault %s %s: %w", op, path, err)
	}
	cctx, cancel := context.WithTimeout(ctx, c.cfg.CallTimeout)
	defer cancel()
	err := f(cctx)
	if err == nil {
		return nil
	}
	return c.mapError(ctx, op, path, vaultPath, err)
}

// mapError turns an api error into one wrapping ErrConflict, ErrPermissionDenied, ErrUnreachable,
// secrets.ErrNotFound (done by callers) or the caller's context error. Vault's error strings name paths and
// reasons, never the request's values, so they may be kept; the raw body of an unparsable answer is not.
func (c *Client) mapError(ctx context.Context, op, path, vaultPath string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("vault %s %s: %w", op, path, ctx.Err())
	}
	var re *api.ResponseError
	if errors.As(err, &re) {
		ve := &ResponseError{Status: re.StatusCode}
		if !re.RawError {
			for _, e := range re.Errors {
				ve.Errors = append(ve.Errors, oneLine(e))
			}
		}
		switch {
		case re.StatusCode == http.StatusForbidden:
			return fmt.Errorf("vault %s %s: %w: %w: the box's token lacks the capability for %s on %s — check that the site policy (policy.hcl) bound to the box's role covers this path, or that the token has not expired",
				op, path, ErrPermissionDenied, ve, op, vaultPath)
		case re.StatusCode == http.StatusBadRequest && strings.Contains(ve.text(), "check-and-set"):
			return fmt.Errorf("vault %s %s: %w: Vault holds a newer version than the one read: %w", op, path, ErrConflict, ve)
		case re.StatusCode >= 500:
			return fmt.Errorf("vault %s %s: %w: %w", op, path, ErrUnreachable, ve)
		default:
			return fmt.Errorf("vault %s %s: %w", op, path, ve)
		}
	}
	// Anything else is transport: refused, reset, DNS, TLS, or our own per-call deadline.
	return fmt.Errorf("vault %s %s: %w: %s (call timeout %s): %w", op, path, ErrUnreachable, c.cfg.Address, c.cfg.CallTimeout, err)
}

// ResponseError is Vault's answer to a failed call: its HTTP status and Vault's own error strings (which name
// paths and reasons, never the request's values; an unparsable body is dropped, not quoted).
type ResponseError struct {
	Status int
	Errors []string
}

func (e *ResponseError) Error() string {
	return fmt.Sprintf("Vault answered %d (%s)", e.Status, e.text())
}

// oneLine flattens Vault's multi-error texts ("1 error occurred:\n\t* permission denied\n\n") to one line.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if i := strings.Index(s, " occurred: * "); i >= 0 && strings.Contains(s[:i], "error") {
		s = s[i+len(" occurred: * "):]
	}
	return strings.ReplaceAll(s, " * ", "; ")
}

func (e *ResponseError) text() string {
	if len(e.Errors) == 0 {
		return "no error text"
	}
	return strings.Join(e.Errors, "; ")
}

func (c *Client) join(rel string) string {
	if c.cfg.Prefix == "" {
		return rel
	}
	return c.cfg.Prefix + "/" + rel
}

// Health reports whether Vault answers and is initialized and unsealed; the error wraps ErrUnreachable otherwise.
func (c *Client) Health(ctx context.Context) error {
	var h *api.HealthResponse
	err := c.callUnauthenticated(ctx, "health", "sys/health", "sys/health", func(ctx context.Context) error {
		var err error
		h, err = c.api.Sys().HealthWithContext(ctx)
		return err
	})
	if err != nil {
		return err
	}
	if !h.Initialized || h.Sealed {
		return fmt.Errorf("vault health: %w: %s is initialized=%t sealed=%t", ErrUnreachable, c.cfg.Address, h.Initialized, h.Sealed)
	}
	return nil
}
