package vault_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/amtedge/amtedge/secrets/vault"
	"github.com/amtedge/amtedge/secrets/vault/vaulttest"
)

func TestDoctorLookups(t *testing.T) {
	ctx := context.Background()
	v := vaulttest.Start(t, 0)
	dir := t.TempDir()
	auth := vault.AuthConfig{Method: vault.AuthAppRole, RoleIDFile: filepath.Join(dir, "role-id"), SecretIDFile: filepath.Join(dir, "secret-id")}
	const prefix = "sites/doctor"
	v.SetupSite(t, prefix, auth)
	c, err := vault.New(vault.Config{Address: v.Addr, Prefix: prefix, Auth: auth, CallTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login(ctx); err != nil {
		t.Fatal(err)
	}

	info, err := c.LookupSelf(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(info.Policies, "amtedge-site") || info.TTL <= 0 || info.TTL > time.Hour || !info.Renewable {
		t.Errorf("token info %+v: want policy amtedge-site, a TTL up to 1h, renewable", info)
	}

	caps, err := c.SiteCapabilities(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(caps) != 9 {
		t.Fatalf("%d paths checked, want 9 (data, metadata and the folder list of certs, profiles, devices)", len(caps))
	}
	for _, p := range caps {
		if len(p.Missing) != 0 || !strings.HasPrefix(p.Path, "secret/") || !strings.Contains(p.Path, prefix+"/") {
			t.Errorf("%+v: the site policy should grant everything the box needs", p)
		}
	}

	// A narrower policy: devices read-only. What is missing is named per path.
	if err := v.Root.Sys().PutPolicyWithContext(ctx, "amtedge-site", `path "secret/data/`+prefix+`/devices/*" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	caps, err = c.SiteCapabilities(ctx)
	if err != nil {
		t.Fatal(err)
	}
	missing := map[string][]string{}
	for _, p := range caps {
		if len(p.Missing) > 0 {
			missing[p.Path] = p.Missing
		}
	}
	if got := missing["secret/data/"+prefix+"/devices/x"]; !slices.Equal(got, []string{"create", "update"}) {
		t.Errorf("devices data missing %q, want create and update (all: %v)", got, missing)
	}
	if got := missing["secret/data/"+prefix+"/certs/x"]; !slices.Equal(got, []string{"read"}) {
		t.Errorf("certs data missing %q, want read", got)
	}

	date, sent, received, err := c.ServerTime(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if date.Before(sent.Add(-2*time.Second)) || date.After(received.Add(2*time.Second)) || received.Before(sent) {
		t.Errorf("Vault's date %s outside [%s, %s] ± 2 s (same machine)", date, sent, received)
	}

	// Vault gone: every look-up says unreachable.
	v.Kill()
	if _, err := c.LookupSelf(ctx); !errors.Is(err, vault.ErrUnreachable) {
		t.Errorf("LookupSelf without Vault: %v", err)
	}
	if _, _, _, err := c.ServerTime(ctx); !errors.Is(err, vault.ErrUnreachable) {
		t.Errorf("ServerTime without Vault: %v", err)
	}
}
