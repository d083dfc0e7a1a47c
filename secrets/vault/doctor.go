package vault

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"
)

// Read-only look-ups for `amtedge doctor`: what the box's token is, what it may do on the site's paths, and what
// time Vault thinks it is. None of them writes anything; none returns the token or any secret.

// TokenInfo is what Vault says about the box's token (auth/token/lookup-self), without the token itself.
type TokenInfo struct {
	Policies  []string
	TTL       time.Duration // remaining; 0 for a token without expiry (root)
	Renewable bool
}

// LookupSelf describes the token installed by Login.
func (c *Client) LookupSelf(ctx context.Context) (TokenInfo, error) {
	var info TokenInfo
	err := c.call(ctx, "lookup-self", "auth/token/lookup-self", "auth/token/lookup-self", func(ctx context.Context) error {
		s, err := c.api.Auth().Token().LookupSelfWithContext(ctx)
		if err != nil {
			return err
		}
		if s == nil {
			return fmt.Errorf("empty answer")
		}
		if info.Policies, err = s.TokenPolicies(); err != nil {
			return fmt.Errorf("policies: %w", err)
		}
		if info.TTL, err = s.TokenTTL(); err != nil {
			return fmt.Errorf("ttl: %w", err)
		}
		if info.Renewable, err = s.TokenIsRenewable(); err != nil {
			return fmt.Errorf("renewable: %w", err)
		}
		return nil
	})
	return info, err
}

// PathCapabilities is the token's capabilities on one Vault path, against what the box needs there.
type PathCapabilities struct {
	Path    string   // the full Vault path, e.g. secret/data/sites/lyon-1/devices/x
	Need    []string // what the box uses (the site policy, policy.hcl)
	Have    []string // what Vault grants ("root" grants everything)
	Missing []string // Need minus Have
}

// siteNeeds mirrors policy.hcl: what the box does on each of its folders, with "x" standing for any name.
func (c *Client) siteNeeds() []PathCapabilities {
	var out []PathCapabilities
	for _, f := range []struct {
		folder         Folder
		data, metadata []string
	}{
		{Certs, []string{"read"}, []string{"read", "list"}},
		{Profiles, []string{"read"}, []string{"read", "list"}},
		{Devices, []string{"create", "update", "read"}, []string{"read", "list", "delete"}},
	} {
		rel := string(f.folder) + "/x"
		out = append(out, PathCapabilities{Path: c.dataPath(rel), Need: f.data},
			PathCapabilities{Path: c.metadataPath(rel), Need: f.metadata},
			// The sync lists the folder itself (List): the policy's "folder/*" must cover "folder/" too.
			PathCapabilities{Path: c.metadataPath(string(f.folder) + "/"), Need: []string{"list"}})
	}
	return out
}

// SiteCapabilities asks Vault (sys/capabilities-self) what the token may do on the site's paths — the data and
// metadata of certs/x, profiles/x and devices/x under the prefix, and the folders the sync lists — and says what is missing from what the box
// needs. A path with nothing missing is fine.
func (c *Client) SiteCapabilities(ctx context.Context) ([]PathCapabilities, error) {
	out := c.siteNeeds()
	for i := range out {
		p := &out[i]
		err := c.call(ctx, "capabilities-self", p.Path, "sys/capabilities-self", func(ctx context.Context) error {
			var err error
			p.Have, err = c.api.Sys().CapabilitiesSelfWithContext(ctx, p.Path)
			return err
		})
		if err != nil {
			return nil, err
		}
		if slices.Contains(p.Have, "root") {
			continue
		}
		for _, n := range p.Need {
			if !slices.Contains(p.Have, n) {
				p.Missing = append(p.Missing, n)
			}
		}
	}
	return out, nil
}

// ServerTime reads Vault's clock from the Date header of its sys/health answer (any status: a standby or sealed
// Vault still dates its answer). sent and received bracket the exchange, so the caller can estimate the skew as
// date - (sent + (received-sent)/2), within the header's one-second resolution.
func (c *Client) ServerTime(ctx context.Context) (date, sent, received time.Time, err error) {
	err = c.callUnauthenticated(ctx, "read", "sys/health (Date header)", "sys/health", func(ctx context.Context) error {
		hc := c.api.CloneConfig().HttpClient
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.api.Address()+"/v1/sys/health", nil)
		if err != nil {
			return err
		}
		sent = time.Now()
		resp, err := hc.Do(req)
		received = time.Now()
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		h := resp.Header.Get("Date")
		if h == "" {
			return fmt.Errorf("Vault's answer (%s) has no Date header", resp.Status)
		}
		if date, err = http.ParseTime(h); err != nil {
			return fmt.Errorf("Vault's Date header %q: %w", h, err)
		}
		return nil
	})
	return date, sent, received, err
}
