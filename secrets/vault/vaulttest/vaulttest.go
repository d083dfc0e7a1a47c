// Package vaulttest runs a real Vault dev server for tests (built once per machine by scripts/ensure-vault.sh
// into ~/.cache/amtedge), stopped by PID when the test ends. Tests only: it never runs in the appliance.
package vaulttest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
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

	"github.com/amtedge/amtedge/secrets/vault"
	"github.com/hashicorp/vault/api"
)

const vaultVersion = "1.21.0"

func Binary(tb testing.TB) string {
	tb.Helper()
	root := os.Getenv("AMTEDGE_CACHE")
	if root == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			tb.Fatalf("home directory: %v", err)
		}
		root = filepath.Join(home, ".cache", "amtedge")
	}
	bin := filepath.Join(root, "vault-"+vaultVersion, "vault")
	if _, err := os.Stat(bin); err != nil {
		tb.Fatalf("Vault server binary %s is missing (%v): run make test, or ./scripts/ensure-vault.sh", bin, err)
	}
	return bin
}

// DevVault is one running dev server.
type DevVault struct {
	Addr   string // http://127.0.0.1:<port>
	Port   int
	Root   *api.Client // a client with the root token
	Token  string      // the root token
	cmd    *exec.Cmd
	exited chan error
	out    *LockedWriter
	stopMu sync.Once
}

func FreePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func RandomHex(tb testing.TB, n int) string {
	tb.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// Start starts a dev server on 127.0.0.1:port (a free one when port is 0) and waits until it is healthy. It
// is killed when the test ends, if kill was not called before.
func Start(tb testing.TB, port int) *DevVault {
	tb.Helper()
	bin := Binary(tb)
	dir := tb.TempDir()
	if port == 0 {
		port = FreePort(tb)
	}
	token := "root-" + RandomHex(tb, 12)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	out := &LockedWriter{}
	cmd := exec.Command(bin, "server", "-dev", "-dev-listen-address="+addr, "-dev-root-token-id="+token, "-dev-no-store-token")
	cmd.Env = []string{"HOME=" + dir, "PATH=/usr/bin:/bin"}
	cmd.Stdout, cmd.Stderr, cmd.Dir = out, out, dir
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start %s: %v", bin, err)
	}
	v := &DevVault{Addr: "http://" + addr, Port: port, Token: token, cmd: cmd, exited: make(chan error, 1), out: out}
	go func() { v.exited <- cmd.Wait() }()
	tb.Cleanup(func() {
		v.Stop()
		if tb.Failed() {
			tb.Logf("vault server output:\n%s", out.String())
		}
	})
	hc := &http.Client{Timeout: 60 * time.Second}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := hc.Get(v.Addr + "/v1/sys/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err := <-v.exited:
			tb.Fatalf("vault server exited before it was ready: %v\n%s", err, out.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			tb.Fatalf("vault server not healthy on %s after 20 s\n%s", addr, out.String())
		}
	}
	root, err := api.NewClient(&api.Config{Address: v.Addr, HttpClient: hc, Timeout: 60 * time.Second})
	if err != nil {
		tb.Fatal(err)
	}
	root.SetToken(token)
	v.Root = root
	return v
}

// kill stops the server abruptly (SIGKILL by PID), as a crash or a cut link would, and waits for it.
func (v *DevVault) Kill() {
	v.stopMu.Do(func() {
		_ = v.cmd.Process.Signal(syscall.SIGKILL)
		<-v.exited
	})
}

func (v *DevVault) Stop() {
	v.stopMu.Do(func() {
		_ = v.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-v.exited:
		case <-time.After(5 * time.Second):
			_ = v.cmd.Process.Kill()
			<-v.exited
		}
	})
}

// setupSite enables AppRole, installs the site policy and a role "site", and writes its role_id and a fresh
// secret_id into the files of auth (so a client built before a restart logs in to the new server).
func (v *DevVault) SetupSite(tb testing.TB, prefix string, auth vault.AuthConfig) {
	tb.Helper()
	ctx := context.Background()
	if err := v.Root.Sys().EnableAuthWithOptionsWithContext(ctx, "approle", &api.EnableAuthOptions{Type: "approle"}); err != nil {
		tb.Fatal(err)
	}
	if err := v.Root.Sys().PutPolicyWithContext(ctx, "amtedge-site", vault.Policy("secret", prefix)); err != nil {
		tb.Fatalf("put policy: %v", err)
	}
	if _, err := v.Root.Logical().WriteWithContext(ctx, "auth/approle/role/site", map[string]any{
		"token_policies": "amtedge-site", "token_ttl": "1h", "token_max_ttl": "4h",
	}); err != nil {
		tb.Fatal(err)
	}
	s, err := v.Root.Logical().ReadWithContext(ctx, "auth/approle/role/site/role-id")
	if err != nil || s == nil {
		tb.Fatalf("read role-id: %v", err)
	}
	roleID := s.Data["role_id"].(string)
	s, err = v.Root.Logical().WriteWithContext(ctx, "auth/approle/role/site/secret-id", nil)
	if err != nil || s == nil {
		tb.Fatalf("create secret-id: %v", err)
	}
	WriteFile(tb, auth.RoleIDFile, roleID+"\n")
	WriteFile(tb, auth.SecretIDFile, s.Data["secret_id"].(string)+"\n")
}

// put writes a KV v2 secret as the root token (what RPS or an operator does).
func (v *DevVault) Put(tb testing.TB, path string, data map[string]any) {
	tb.Helper()
	if _, err := v.Root.Logical().WriteWithContext(context.Background(), "secret/data/"+path, map[string]any{"data": data}); err != nil {
		tb.Fatalf("root write %s: %v", path, err)
	}
}

// get reads a KV v2 secret's data and version as the root token; nil when absent.
func (v *DevVault) Get(tb testing.TB, path string) (map[string]any, int) {
	tb.Helper()
	s, err := v.Root.Logical().ReadWithContext(context.Background(), "secret/data/"+path)
	if err != nil {
		tb.Fatalf("root read %s: %v", path, err)
	}
	if s == nil || s.Data == nil || s.Data["data"] == nil {
		return nil, 0
	}
	md := s.Data["metadata"].(map[string]any)
	n, _ := md["version"].(json.Number).Int64()
	return s.Data["data"].(map[string]any), int(n)
}

func WriteFile(tb testing.TB, name, content string) {
	tb.Helper()
	if err := os.WriteFile(name, []byte(content), 0o600); err != nil {
		tb.Fatal(err)
	}
}

// LockedWriter is a buffer safe for concurrent writers (a log sink shared by goroutines).
type LockedWriter struct {
	mu sync.Mutex
	w  bytes.Buffer
}

func (l *LockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (l *LockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.TrimSpace(l.w.String())
}
