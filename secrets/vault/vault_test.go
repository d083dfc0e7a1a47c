package vault

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/amtedge/amtedge/secrets"
)

const testPrefix = "sites/test-site"

// testLogger sends the client's log to the test's output, where -v shows it (and a leaked secret would be seen).
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func newClient(t *testing.T, v *devVault, auth AuthConfig, prefix string) *Client {
	t.Helper()
	c, err := New(Config{Address: v.addr, Auth: auth, Prefix: prefix, CallTimeout: 5 * time.Second, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func login(t *testing.T, c *Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Login(ctx); err != nil {
		t.Fatalf("login: %v", err)
	}
}

// TestVault runs every case that needs a server against one real dev server, configured as a site's Vault.
func TestVault(t *testing.T) {
	v := startVault(t, "")
	v.setupSite(t, testPrefix)
	ctx := context.Background()

	pfx := []byte("\x30\x82\x01\x00 not really a PFX \x00\xff")
	v.put(t, testPrefix+"/certs/corp.example.com", map[string]any{
		"CERT": base64.StdEncoding.EncodeToString(pfx), "CERT_PASSWORD": "pfx-pass-1",
	})
	v.put(t, testPrefix+"/profiles/acm-static", map[string]any{"AMT_PASSWORD": "Amt!pass1", "MEBX_PASSWORD": "Mebx!pass1"})
	v.put(t, testPrefix+"/profiles/ccm-random", map[string]any{"AMT_PASSWORD": "Amt!pass2", "MEBX_PASSWORD": nil})

	// Sequential first: the environment case uses t.Setenv, which parallel subtests may not run beside.
	t.Run("environment is ignored", func(t *testing.T) {
		t.Setenv("VAULT_ADDR", "http://127.0.0.1:1")
		t.Setenv("VAULT_TOKEN", v.token) // the root token: if it leaked in, the 403 below would be a 200
		t.Setenv("VAULT_NAMESPACE", "bogus-ns")
		t.Setenv("VAULT_WRAP_TTL", "1s")
		t.Setenv("VAULT_MAX_RETRIES", "7")
		c := newClient(t, v, v.appRoleFiles(t, "site", false), testPrefix)
		if err := c.Health(ctx); err != nil {
			t.Fatalf("health with VAULT_ADDR pointing elsewhere: %v", err)
		}
		// The api client itself, before any login, carries no token from VAULT_TOKEN: Vault refuses the read.
		if _, err := c.api.Logical().ReadWithContext(ctx, c.dataPath(testPrefix+"/profiles/acm-static")); err == nil ||
			!strings.Contains(err.Error(), "403") {
			t.Fatalf("raw read before login = %v, want a 403 (no token from VAULT_TOKEN)", err)
		}
		// The client's own calls wait for a login instead of going out without a token.
		short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		_, _, err := c.ReadProfile(short, "acm-static")
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("read before login = %v, want it to wait for the login until its deadline", err)
		}
		// A call made before the login completes waits for it and then succeeds (the sync starts with the client).
		waited := make(chan error, 1)
		go func() { _, _, err := c.ReadProfile(ctx, "acm-static"); waited <- err }()
		login(t, c)
		if err := <-waited; err != nil {
			t.Fatalf("a read waiting for the login: %v", err)
		}
		p, _, err := c.ReadProfile(ctx, "acm-static")
		if err != nil || p.AMTPassword != "Amt!pass1" {
			t.Fatalf("read after login: err %v, right password %t", err, p.AMTPassword == "Amt!pass1")
		}
		// Sequential, so before any parallel case writes a device: an absent folder lists as empty.
		if names, err := c.List(ctx, Devices); err != nil || len(names) != 0 {
			t.Fatalf("list devices of an empty folder = %v, %v", names, err)
		}
	})

	t.Run("approle login and RPS layout read", func(t *testing.T) {
		t.Parallel()
		c := newClient(t, v, v.appRoleFiles(t, "site", false), testPrefix)
		login(t, c)
		if err := c.Health(ctx); err != nil {
			t.Fatal(err)
		}
		d, ver, err := c.ReadDomain(ctx, "corp.example.com")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(d.PFX, pfx) || d.Password != "pfx-pass-1" || ver != 1 {
			t.Fatalf("domain: pfx equal %t, password equal %t, version %d", bytes.Equal(d.PFX, pfx), d.Password == "pfx-pass-1", ver)
		}
		p, _, err := c.ReadProfile(ctx, "ccm-random")
		if err != nil || p.AMTPassword != "Amt!pass2" || p.MEBxPassword != "" {
			t.Fatalf("profile: %v", err)
		}
		names, err := c.List(ctx, Profiles)
		if err != nil || !slices.Equal(names, []string{"acm-static", "ccm-random"}) {
			t.Fatalf("list profiles = %v, %v", names, err)
		}
		if n, err := c.Version(ctx, Certs, "corp.example.com"); err != nil || n != 1 {
			t.Fatalf("version = %d, %v", n, err)
		}
		v.put(t, testPrefix+"/certs/corp.example.com", map[string]any{"CERT": base64.StdEncoding.EncodeToString(pfx), "CERT_PASSWORD": "pfx-pass-2"})
		if n, err := c.Version(ctx, Certs, "corp.example.com"); err != nil || n != 2 {
			t.Fatalf("version after a second write = %d, %v", n, err)
		}
		if _, _, err := c.ReadDevice(ctx, "no-such-device"); !errors.Is(err, secrets.ErrNotFound) {
			t.Fatalf("absent device: %v, want ErrNotFound", err)
		}
		if _, err := c.Version(ctx, Devices, "no-such-device"); !errors.Is(err, secrets.ErrNotFound) {
			t.Fatalf("absent device version: %v, want ErrNotFound", err)
		}
		vs, err := c.Versions(ctx, Certs, 4)
		if err != nil || len(vs) != 1 || vs["corp.example.com"] != 2 {
			t.Fatalf("versions of certs/ = %v, %v", vs, err)
		}
		if vs, err := c.Versions(ctx, Certs, 0); err != nil || len(vs) != 1 || vs["corp.example.com"] != 2 {
			t.Fatalf("versions of certs/ with no worker count = %v, %v", vs, err) // at least one worker
		}
	})

	t.Run("through a configured proxy", func(t *testing.T) {
		t.Parallel()
		var proxied atomic.Int32
		proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// A plain forward proxy for http:// targets: the request line holds the absolute URL.
			proxied.Add(1)
			r.RequestURI = ""
			resp, err := http.DefaultTransport.RoundTrip(r)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			defer resp.Body.Close()
			maps.Copy(w.Header(), resp.Header)
			w.WriteHeader(resp.StatusCode)
			_, _ = io.Copy(w, resp.Body)
		}))
		t.Cleanup(proxy.Close)
		c, err := New(Config{Address: v.addr, ProxyURL: proxy.URL, Auth: v.appRoleFiles(t, "site", false), Prefix: testPrefix, Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		login(t, c)
		if _, _, err := c.ReadProfile(ctx, "acm-static"); err != nil {
			t.Fatal(err)
		}
		if n := proxied.Load(); n < 2 {
			t.Fatalf("%d requests went through the proxy, want login and read", n)
		}
	})

	t.Run("token auth", func(t *testing.T) {
		t.Parallel()
		c := newClient(t, v, v.tokenFile(t, "1h"), testPrefix)
		login(t, c)
		p, ver, err := c.ReadProfile(ctx, "acm-static")
		if err != nil || p.MEBxPassword != "Mebx!pass1" || ver != 1 {
			t.Fatalf("read: %v (version %d)", err, ver)
		}
		// A bad token is refused at login, with a clear error and no token text.
		bad := AuthConfig{Method: AuthToken, TokenFile: t.TempDir() + "/token"}
		writeFile(t, bad.TokenFile, "hvs.not-a-token")
		err = newClient(t, v, bad, testPrefix).Login(ctx)
		if !errors.Is(err, ErrPermissionDenied) || strings.Contains(err.Error(), "not-a-token") {
			t.Fatalf("bad token login = %v", err)
		}
	})

	t.Run("wrapped secret_id", func(t *testing.T) {
		t.Parallel()
		auth := v.appRoleFiles(t, "site", true)
		c := newClient(t, v, auth, testPrefix)
		login(t, c)
		login(t, c) // a re-login uses the unwrapped secret_id kept in memory
		if _, _, err := c.ReadDomain(ctx, "corp.example.com"); err != nil {
			t.Fatal(err)
		}
		// The wrapping token is single-use: another client (a restart) cannot unwrap it again.
		err := newClient(t, v, auth, testPrefix).Login(ctx)
		if !errors.Is(err, ErrPermissionDenied) || !strings.Contains(err.Error(), "single-use") {
			t.Fatalf("second unwrap = %v, want ErrPermissionDenied naming the single-use token", err)
		}
	})

	t.Run("write device with check-and-set", func(t *testing.T) {
		t.Parallel()
		c := newClient(t, v, v.appRoleFiles(t, "site", false), testPrefix)
		login(t, c)
		const uuid = "4c4c4544-0044-4210-8031-c7c04f4e3332"
		v1, err := c.WriteDevice(ctx, uuid, DeviceSecret{AMTPassword: "first", MEBxPassword: "mebx-1"}, 0)
		if err != nil || v1 != 1 {
			t.Fatalf("create = %d, %v", v1, err)
		}
		_, err = c.WriteDevice(ctx, uuid, DeviceSecret{AMTPassword: "again"}, 0)
		t.Log(err)
		if !errors.Is(err, ErrConflict) {
			t.Fatalf("create over an existing device = %v, want ErrConflict", err)
		}
		d, ver, err := c.ReadDevice(ctx, uuid)
		if err != nil || d.AMTPassword != "first" || d.MEBxPassword != "mebx-1" || ver != 1 {
			t.Fatalf("read back: %v, version %d", err, ver)
		}
		v2, err := c.WriteDevice(ctx, uuid, DeviceSecret{AMTPassword: "second"}, ver)
		if err != nil || v2 != 2 {
			t.Fatalf("update = %d, %v", v2, err)
		}
		// Another writer (RPS, another box) got there first: the stale version is refused, nothing written.
		_, err = c.WriteDevice(ctx, uuid, DeviceSecret{AMTPassword: "stale"}, 1)
		t.Log(err)
		if !errors.Is(err, ErrConflict) || strings.Contains(err.Error(), "stale") {
			t.Fatalf("stale write = %v, want ErrConflict without the password", err)
		}
		if d, ver, _ := c.ReadDevice(ctx, uuid); d.AMTPassword != "second" || d.MEBxPassword != "" || ver != 2 {
			t.Fatalf("after conflict: version %d, right password %t", ver, d.AMTPassword == "second")
		}
		if got := v.get(t, testPrefix+"/devices/"+uuid); got["MEBX_PASSWORD"] != nil {
			t.Fatalf("CCM device: MEBX_PASSWORD = %v, want null like RPS", got["MEBX_PASSWORD"])
		}
		if names, err := c.List(ctx, Devices); err != nil || !slices.Contains(names, uuid) {
			t.Fatalf("list devices = %v, %v", names, err)
		}
		if err := c.DeleteDevice(ctx, uuid); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Version(ctx, Devices, uuid); !errors.Is(err, secrets.ErrNotFound) {
			t.Fatalf("after delete: %v, want ErrNotFound (all versions gone)", err)
		}
		if v1, err := c.WriteDevice(ctx, uuid, DeviceSecret{AMTPassword: "third"}, 0); err != nil || v1 != 1 {
			t.Fatalf("re-create after delete = %d, %v", v1, err)
		}
	})

	t.Run("write keeps keys the box does not own", func(t *testing.T) {
		t.Parallel()
		c := newClient(t, v, v.appRoleFiles(t, "site", false), testPrefix)
		login(t, c)
		const uuid = "0b1c2d3e-aaaa-bbbb-cccc-000000000001"
		v.put(t, testPrefix+"/devices/"+uuid, map[string]any{
			"AMT_PASSWORD": "rps-set", "MEBX_PASSWORD": "rps-mebx",
			"MPS_PASSWORD": "cira-pass", "TLS_ISSUED_CERTIFICATE": "-----BEGIN CERTIFICATE-----x",
		})
		_, ver, err := c.ReadDevice(ctx, uuid)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.WriteDevice(ctx, uuid, DeviceSecret{AMTPassword: "box-set", MEBxPassword: "box-mebx"}, ver); err != nil {
			t.Fatal(err)
		}
		got := v.get(t, testPrefix+"/devices/"+uuid)
		want := map[string]any{"AMT_PASSWORD": "box-set", "MEBX_PASSWORD": "box-mebx", "MPS_PASSWORD": "cira-pass", "TLS_ISSUED_CERTIFICATE": "-----BEGIN CERTIFICATE-----x"}
		for k, w := range want {
			if got[k] != w {
				t.Errorf("%s after the box's write: kept %t", k, got[k] == w)
			}
		}
		// An operator soft-deletes the latest version: the box sees "not found" with the deleted version, and can
		// write over it with that version as check-and-set.
		if _, err := v.root.Logical().DeleteWithContext(ctx, "secret/data/"+testPrefix+"/devices/"+uuid); err != nil {
			t.Fatal(err)
		}
		_, ver, err = c.ReadDevice(ctx, uuid)
		if !errors.Is(err, secrets.ErrNotFound) || ver != 2 {
			t.Fatalf("read a soft-deleted device = version %d, %v; want 2, ErrNotFound", ver, err)
		}
		if n, err := c.WriteDevice(ctx, uuid, DeviceSecret{AMTPassword: "after-delete"}, ver); err != nil || n != 3 {
			t.Fatalf("write over a soft-deleted version = %d, %v", n, err)
		}
		if got := v.get(t, testPrefix+"/devices/"+uuid); got["AMT_PASSWORD"] != "after-delete" || len(got) != 2 {
			t.Fatalf("after writing over a soft delete: keys %d, right password %t", len(got), got["AMT_PASSWORD"] == "after-delete")
		}
	})

	t.Run("403 from the site policy", func(t *testing.T) {
		t.Parallel()
		// The box's role is bound to sites/test-site; a box configured for another site is refused.
		c := newClient(t, v, v.appRoleFiles(t, "site", false), "sites/other-site")
		login(t, c)
		_, err := c.WriteDevice(ctx, "dev-1", DeviceSecret{AMTPassword: "secret-pw"}, 0)
		if !errors.Is(err, ErrPermissionDenied) {
			t.Fatalf("write outside the policy = %v, want ErrPermissionDenied", err)
		}
		msg := err.Error()
		t.Log(msg)
		for _, want := range []string{"write devices/dev-1", "secret/data/sites/other-site/devices/dev-1", "policy", "403"} {
			if !strings.Contains(msg, want) {
				t.Errorf("error %q does not mention %q", msg, want)
			}
		}
		if strings.Contains(msg, "secret-pw") {
			t.Errorf("error carries the password: %q", msg)
		}
		if _, err := c.List(ctx, Certs); !errors.Is(err, ErrPermissionDenied) {
			t.Fatalf("list outside the policy = %v", err)
		}
		// Inside the prefix, the policy is read-only for profiles: the box cannot delete one through the metadata path.
		own := newClient(t, v, v.appRoleFiles(t, "site", false), testPrefix)
		login(t, own)
		err = own.call(ctx, "delete", "profiles/acm-static", own.metadataPath("profiles/acm-static"), func(ctx context.Context) error {
			_, err := own.api.Logical().DeleteWithContext(ctx, own.metadataPath("profiles/acm-static"))
			return err
		})
		if !errors.Is(err, ErrPermissionDenied) {
			t.Fatalf("delete a profile = %v, want ErrPermissionDenied", err)
		}
	})

	t.Run("renewal keeps a short-TTL token working", func(t *testing.T) {
		t.Parallel()
		for _, role := range []string{"short", "tiny"} { // tiny: max TTL 4 s, so Run must log in again
			t.Run(role, func(t *testing.T) {
				t.Parallel()
				c := newClient(t, v, v.appRoleFiles(t, role, false), testPrefix)
				login(t, c)
				rctx, stop := context.WithCancel(ctx)
				done := make(chan error, 1)
				go func() { done <- c.Run(rctx) }()
				defer func() {
					stop()
					if err := <-done; !errors.Is(err, context.Canceled) {
						t.Errorf("Run = %v, want context.Canceled", err)
					}
				}()
				start := time.Now()
				for time.Since(start) < 6500*time.Millisecond {
					if _, _, err := c.ReadProfile(ctx, "acm-static"); err != nil {
						t.Fatalf("read at %s: %v", time.Since(start).Round(100*time.Millisecond), err)
					}
					time.Sleep(500 * time.Millisecond)
				}
			})
		}
	})
}

// TestTLS: a listener that requires a client certificate; the client trusts Vault only through vault.caFile and
// is let in only with vault.clientCertFile/client_key_file.
func TestTLS(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	port := freePort(t)
	v := startVault(t, fmt.Sprintf(`listener "tcp" {
  address = "127.0.0.1:%d"
  tls_cert_file = %q
  tls_key_file = %q
  tls_client_ca_file = %q
  tls_require_and_verify_client_cert = true
}
`, port, pki.serverCert, pki.serverKey, pki.ca))
	v.setupSite(t, testPrefix)
	v.put(t, testPrefix+"/profiles/p", map[string]any{"AMT_PASSWORD": "Amt!pass3"})
	auth := v.appRoleFiles(t, "site", false)
	ctx := context.Background()
	addr := fmt.Sprintf("https://127.0.0.1:%d", port)

	c, err := New(Config{Address: addr, CAFile: pki.ca, ClientCertFile: pki.clientCert, ClientKeyFile: pki.clientKey,
		Auth: auth, Prefix: testPrefix, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	login(t, c)
	if p, _, err := c.ReadProfile(ctx, "p"); err != nil || p.AMTPassword != "Amt!pass3" {
		t.Fatalf("read over mutual TLS: %v", err)
	}

	for name, cfg := range map[string]Config{
		"no CA":          {Address: addr, ClientCertFile: pki.clientCert, ClientKeyFile: pki.clientKey},
		"no client cert": {Address: addr, CAFile: pki.ca},
	} {
		cfg.Auth, cfg.Prefix, cfg.CallTimeout, cfg.Logger = auth, testPrefix, 15*time.Second, testLogger(t)
		c, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		err = c.Login(ctx)
		t.Logf("%s: %v", name, err)
		if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "certificate") {
			t.Errorf("%s: login = %v, want ErrUnreachable naming the certificate", name, err)
		}
	}

	if _, err := New(Config{Address: addr, CAFile: auth.RoleIDFile, Auth: auth}); err == nil || !strings.Contains(err.Error(), "vault.caFile") {
		t.Errorf("CA file without PEM = %v, want an error naming vault.caFile", err)
	}
	if _, err := New(Config{Address: addr, ClientCertFile: pki.clientCert, ClientKeyFile: pki.serverKey, Auth: auth}); err == nil || !strings.Contains(err.Error(), "vault.clientCertFile") {
		t.Errorf("mismatched client key = %v, want an error naming vault.clientCertFile", err)
	}
}

// TestUnreachable: a dead address and a silent one both fail fast with ErrUnreachable.
func TestUnreachable(t *testing.T) {
	t.Parallel()
	// A port nobody listens on (connection refused) and a listener that accepts but never answers (the per-call
	// deadline must fire, not the api client's 60 s default).
	dead := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { silent.Close() })
	go func() {
		for {
			conn, err := silent.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { conn.Close() })
		}
	}()
	dir := t.TempDir()
	auth := AuthConfig{Method: AuthToken, TokenFile: dir + "/token"}
	writeFile(t, auth.TokenFile, "hvs.whatever")
	for name, addr := range map[string]string{"refused": dead, "silent": silent.Addr().String()} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c, err := New(Config{Address: "http://" + addr, Auth: auth, CallTimeout: time.Second, Logger: testLogger(t)})
			if err != nil {
				t.Fatal(err)
			}
			for op, f := range map[string]func(context.Context) error{
				"login":  c.Login,
				"health": c.Health,
				"read": func(ctx context.Context) error {
					_, _, err := c.ReadDevice(ctx, "dev-1")
					return err
				},
				"write": func(ctx context.Context) error {
					_, err := c.WriteDevice(ctx, "dev-1", DeviceSecret{AMTPassword: "pw"}, 0)
					return err
				},
			} {
				start := time.Now()
				err := f(context.Background())
				took := time.Since(start)
				t.Logf("%s after %s: %v", op, took.Round(time.Millisecond), err)
				if !errors.Is(err, ErrUnreachable) {
					t.Errorf("%s = %v, want ErrUnreachable", op, err)
				}
				if took >= 3*time.Second {
					t.Errorf("%s took %s, want < 3 s", op, took)
				}
			}
		})
	}
}

func TestCallerContext(t *testing.T) {
	t.Parallel()
	c, err := New(Config{Address: "http://127.0.0.1:1", Auth: AuthConfig{Method: AuthToken, TokenFile: "/nonexistent"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := c.ReadDevice(ctx, "dev-1"); !errors.Is(err, context.Canceled) || errors.Is(err, ErrUnreachable) {
		t.Fatalf("done context = %v, want context.Canceled only", err)
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	good := Config{Address: "https://vault:8200", Auth: AuthConfig{Method: AuthAppRole, RoleIDFile: "r", SecretIDFile: "s"}}
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		key  string // "" when valid
	}{
		{"valid approle", func(*Config) {}, ""},
		{"valid token", func(c *Config) { c.Auth = AuthConfig{Method: AuthToken, TokenFile: "t"} }, ""},
		{"no address", func(c *Config) { c.Address = "" }, "vault.address"},
		{"bare address", func(c *Config) { c.Address = "vault:8200" }, "vault.address"},
		{"cert without key", func(c *Config) { c.ClientCertFile = "c" }, "vault.clientKeyFile"},
		{"no method", func(c *Config) { c.Auth.Method = "" }, "vault.auth.method"},
		{"approle without secret_id", func(c *Config) { c.Auth.SecretIDFile = "" }, "vault.auth.secretIdFile"},
		{"token without file", func(c *Config) { c.Auth = AuthConfig{Method: AuthToken} }, "vault.auth.tokenFile"},
		{"proxy", func(c *Config) { c.ProxyURL = "http://proxy:3128" }, ""},
		{"bad proxy", func(c *Config) { c.ProxyURL = "proxy:3128" }, "vault.proxyURL"},
		{"dot-dot prefix", func(c *Config) { c.Prefix = "sites/../other" }, "vault.prefix"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := good
			tc.mod(&c)
			err := c.Validate()
			if tc.key == "" && err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if tc.key != "" && (err == nil || !strings.Contains(err.Error(), tc.key)) {
				t.Fatalf("error %v does not name %s", err, tc.key)
			}
		})
	}
}

func TestPolicy(t *testing.T) {
	t.Parallel()
	p := Policy("kv", "/sites/lyon-1/")
	for _, want := range []string{`path "kv/data/sites/lyon-1/devices/*"`, `path "kv/metadata/sites/lyon-1/certs/*"`} {
		if !strings.Contains(p, want) {
			t.Errorf("policy lacks %s", want)
		}
	}
	if strings.Contains(p, "@") {
		t.Errorf("policy has unfilled placeholders")
	}
	if p := Policy("", ""); !strings.Contains(p, `path "secret/data/devices/*"`) {
		t.Errorf("root-prefix policy: %s", p)
	}
}
