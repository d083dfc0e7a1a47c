package vault

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
)

// vaultVersion is the Vault server scripts/ensure-vault.sh builds.
const vaultVersion = "1.21.0"

// vaultBinary is where scripts/ensure-vault.sh puts the server (AMTEDGE_CACHE overrides ~/.cache/amtedge, as in
// the script).
func vaultBinary(t *testing.T) string {
	t.Helper()
	root := os.Getenv("AMTEDGE_CACHE")
	if root == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			t.Fatalf("home directory: %v", err)
		}
		root = filepath.Join(home, ".cache", "amtedge")
	}
	bin := filepath.Join(root, "vault-"+vaultVersion, "vault")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("Vault server binary %s is missing (%v): run make test (it builds Vault into ~/.cache/amtedge), or ./scripts/ensure-vault.sh", bin, err)
	}
	return bin
}

// devVault is a real `vault server -dev` for one test, configured like a site's central Vault.
type devVault struct {
	addr  string
	root  *api.Client // root token
	dir   string
	token string // the root token
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startVault starts a dev server on a free 127.0.0.1 port (plain HTTP) with a random root token, waits until it
// is healthy, and stops it (by PID) when the test ends. extraConfig, when not empty, is HCL loaded with -config
// (e.g. a second, TLS listener).
func startVault(t *testing.T, extraConfig string) *devVault {
	t.Helper()
	bin := vaultBinary(t)
	dir := t.TempDir()
	token := "root-" + randomHex(t, 12)
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)

	var out bytes.Buffer
	args := []string{"server", "-dev", "-dev-listen-address=" + addr, "-dev-root-token-id=" + token, "-dev-no-store-token"}
	if extraConfig != "" {
		name := filepath.Join(dir, "extra.hcl")
		writeFile(t, name, extraConfig)
		args = append(args, "-config="+name)
	}
	cmd := exec.Command(bin, args...)
	// A clean environment: no VAULT_* from the developer's shell, and a HOME of its own.
	cmd.Env = []string{"HOME=" + dir, "PATH=/usr/bin:/bin"}
	cmd.Stdout = &lockedWriter{w: &out}
	cmd.Stderr = cmd.Stdout
	cmd.Dir = dir
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("vault server output:\n%s", cmd.Stdout.(*lockedWriter).String())
		}
	})

	v := &devVault{addr: "http://" + addr, dir: dir, token: token}
	deadline := time.Now().Add(20 * time.Second)
	hc := &http.Client{Timeout: 10 * time.Second}
	for {
		resp, err := hc.Get(v.addr + "/v1/sys/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err := <-exited:
			t.Fatalf("vault server exited before it was ready: %v\n%s", err, cmd.Stdout.(*lockedWriter).String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("vault server not healthy on %s after 20 s\n%s", addr, cmd.Stdout.(*lockedWriter).String())
		}
	}

	root, err := newAPIClient(Config{Address: v.addr, CallTimeout: 10 * time.Second}.withDefaults(), hc)
	if err != nil {
		t.Fatal(err)
	}
	root.SetToken(token)
	v.root = root
	return v
}

// setupSite enables AppRole, installs the site policy for prefix, and creates the roles the tests use:
// "site" (1 h tokens), "short" (3 s tokens renewable to 30 s) and "tiny" (2 s tokens, max 4 s: forces re-login).
func (v *devVault) setupSite(t *testing.T, prefix string) {
	t.Helper()
	ctx := context.Background()
	// The dev server mounts KV v2 at secret/ already; check rather than assume.
	mounts, err := v.root.Sys().ListMountsWithContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if m, ok := mounts["secret/"]; !ok || m.Options["version"] != "2" {
		t.Fatalf("dev server has no KV v2 at secret/: %+v", m)
	}
	if err := v.root.Sys().EnableAuthWithOptionsWithContext(ctx, "approle", &api.EnableAuthOptions{Type: "approle"}); err != nil {
		t.Fatal(err)
	}
	if err := v.root.Sys().PutPolicyWithContext(ctx, "amtedge-site", Policy("secret", prefix)); err != nil {
		t.Fatalf("put policy: %v", err)
	}
	for role, ttl := range map[string][2]string{"site": {"1h", "4h"}, "short": {"3s", "30s"}, "tiny": {"2s", "4s"}} {
		_, err := v.root.Logical().WriteWithContext(ctx, "auth/approle/role/"+role, map[string]any{
			"token_policies": "amtedge-site",
			"token_ttl":      ttl[0],
			"token_max_ttl":  ttl[1],
		})
		if err != nil {
			t.Fatalf("create role %s: %v", role, err)
		}
	}
}

// appRoleFiles writes the role's role_id and a fresh secret_id (response-wrapped when wrapped) to files.
func (v *devVault) appRoleFiles(t *testing.T, role string, wrapped bool) AuthConfig {
	t.Helper()
	ctx := context.Background()
	s, err := v.root.Logical().ReadWithContext(ctx, "auth/approle/role/"+role+"/role-id")
	if err != nil || s == nil {
		t.Fatalf("read role-id: %v", err)
	}
	roleID := s.Data["role_id"].(string)
	c := v.root
	if wrapped {
		c, err = v.root.Clone()
		if err != nil {
			t.Fatal(err)
		}
		c.SetToken(v.token)
		c.SetWrappingLookupFunc(func(string, string) string { return "60s" })
	}
	s, err = c.Logical().WriteWithContext(ctx, "auth/approle/role/"+role+"/secret-id", nil)
	if err != nil || s == nil {
		t.Fatalf("create secret-id: %v", err)
	}
	var secretID string
	if wrapped {
		if s.WrapInfo == nil {
			t.Fatal("secret-id answer is not wrapped")
		}
		secretID = s.WrapInfo.Token
	} else {
		secretID = s.Data["secret_id"].(string)
	}
	dir := t.TempDir()
	a := AuthConfig{
		Method:          AuthAppRole,
		RoleIDFile:      filepath.Join(dir, "role_id"),
		SecretIDFile:    filepath.Join(dir, "secret_id"),
		SecretIDWrapped: wrapped,
	}
	writeFile(t, a.RoleIDFile, roleID+"\n")
	writeFile(t, a.SecretIDFile, secretID+"\n")
	return a
}

// tokenFile creates a child token with the site policy and writes it to a file.
func (v *devVault) tokenFile(t *testing.T, ttl string) AuthConfig {
	t.Helper()
	renewable := true
	s, err := v.root.Auth().Token().CreateWithContext(context.Background(), &api.TokenCreateRequest{
		Policies: []string{"amtedge-site"}, TTL: ttl, Renewable: &renewable,
	})
	if err != nil {
		t.Fatal(err)
	}
	name := filepath.Join(t.TempDir(), "token")
	writeFile(t, name, s.Auth.ClientToken)
	return AuthConfig{Method: AuthToken, TokenFile: name}
}

// put writes a KV v2 secret as the root token (what RPS or an operator would do).
func (v *devVault) put(t *testing.T, path string, data map[string]any) {
	t.Helper()
	if _, err := v.root.Logical().WriteWithContext(context.Background(), "secret/data/"+path, map[string]any{"data": data}); err != nil {
		t.Fatalf("root write %s: %v", path, err)
	}
}

// get reads a KV v2 secret's data as the root token.
func (v *devVault) get(t *testing.T, path string) map[string]any {
	t.Helper()
	s, err := v.root.Logical().ReadWithContext(context.Background(), "secret/data/"+path)
	if err != nil || s == nil {
		t.Fatalf("root read %s: %v", path, err)
	}
	return s.Data["data"].(map[string]any)
}

func writeFile(t *testing.T, name, content string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// lockedWriter collects the server's output; the exec copier and the test read it from different goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.TrimSpace(l.w.String())
}
