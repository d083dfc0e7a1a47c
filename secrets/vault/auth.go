package vault

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"
)

// Re-login backoff bounds (Run).
const (
	reloginMinBackoff = 500 * time.Millisecond
	reloginMaxBackoff = time.Minute
)

// Login authenticates with the configured method and installs the token. AppRole with SecretIDWrapped unwraps
// the secret_id file's wrapping token at the first call only and keeps the secret_id in memory for re-logins.
func (c *Client) Login(ctx context.Context) error {
	var s *api.Secret
	var err error
	switch c.cfg.Auth.Method {
	case AuthAppRole:
		s, err = c.loginAppRole(ctx)
	case AuthToken:
		s, err = c.loginToken(ctx)
	default:
		err = fmt.Errorf("vault login: unknown auth method %q", c.cfg.Auth.Method)
	}
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.auth = s
	c.loginErr = nil
	c.mu.Unlock()
	c.api.SetToken(s.Auth.ClientToken)
	c.firstAuth.Do(func() { close(c.loggedIn) })
	c.log.Info("vault login", "method", c.cfg.Auth.Method, "address", c.cfg.Address,
		"ttl", time.Duration(s.Auth.LeaseDuration)*time.Second, "renewable", s.Auth.Renewable,
		"policies", strings.Join(s.Auth.Policies, ","))
	return nil
}

func (c *Client) loginAppRole(ctx context.Context) (*api.Secret, error) {
	roleID, err := readSecretFile("vault.auth.roleIdFile", c.cfg.Auth.RoleIDFile)
	if err != nil {
		return nil, fmt.Errorf("vault login approle: %w", err)
	}
	secretID, err := c.appRoleSecretID(ctx)
	if err != nil {
		return nil, err
	}
	path := "auth/" + c.cfg.Auth.AppRoleMount + "/login"
	// A separate tokenless client: a login must not carry the (maybe expired) token of the previous one.
	lc, err := c.bareClient()
	if err != nil {
		return nil, err
	}
	var s *api.Secret
	err = c.callUnauthenticated(ctx, "login", path, path, func(ctx context.Context) error {
		var err error
		s, err = lc.Logical().WriteWithContext(ctx, path, map[string]any{"role_id": roleID, "secret_id": secretID})
		return err
	})
	if err != nil {
		return nil, loginRefused(err, "AppRole: Vault does not accept this role_id/secret_id pair (wrong, expired or used-up secret_id, or a CIDR restriction)")
	}
	if s == nil || s.Auth == nil || s.Auth.ClientToken == "" {
		return nil, fmt.Errorf("vault login %s: answer holds no token", path)
	}
	return s, nil
}

// appRoleSecretID returns the secret_id: from its file, or unwrapped from the wrapping token in its file once.
func (c *Client) appRoleSecretID(ctx context.Context) (string, error) {
	if !c.cfg.Auth.SecretIDWrapped {
		id, err := readSecretFile("vault.auth.secretIdFile", c.cfg.Auth.SecretIDFile)
		if err != nil {
			return "", fmt.Errorf("vault login approle: %w", err)
		}
		return id, nil
	}
	c.mu.Lock()
	id := c.secretID
	c.mu.Unlock()
	if id != "" {
		return id, nil
	}
	wrap, err := readSecretFile("vault.auth.secretIdFile", c.cfg.Auth.SecretIDFile)
	if err != nil {
		return "", fmt.Errorf("vault login approle: %w", err)
	}
	uc, err := c.bareClient()
	if err != nil {
		return "", err
	}
	uc.SetToken(wrap)
	var s *api.Secret
	err = c.callUnauthenticated(ctx, "unwrap", "sys/wrapping/unwrap", "sys/wrapping/unwrap", func(ctx context.Context) error {
		var err error
		// An empty argument unwraps the client's own token, so the wrapping token never travels in a body.
		s, err = uc.Logical().UnwrapWithContext(ctx, "")
		return err
	})
	if err != nil {
		return "", loginRefused(err, "the secret_id file's wrapping token is invalid, expired or already used (it is single-use: issue a new wrapped secret_id)")
	}
	if s == nil || s.Data == nil {
		return "", errors.New("vault unwrap secret_id: the wrapping token holds no data")
	}
	id, _ = s.Data["secret_id"].(string)
	if id == "" {
		return "", errors.New("vault unwrap secret_id: the wrapped answer holds no secret_id (was it wrapped from auth/approle/role/<role>/secret-id?)")
	}
	c.mu.Lock()
	c.secretID = id
	c.mu.Unlock()
	return id, nil
}

func (c *Client) loginToken(ctx context.Context) (*api.Secret, error) {
	tok, err := readSecretFile("vault.auth.tokenFile", c.cfg.Auth.TokenFile)
	if err != nil {
		return nil, fmt.Errorf("vault login token: %w", err)
	}
	lc, err := c.bareClient()
	if err != nil {
		return nil, err
	}
	lc.SetToken(tok)
	var s *api.Secret
	err = c.callUnauthenticated(ctx, "login", "auth/token/lookup-self", "auth/token/lookup-self", func(ctx context.Context) error {
		var err error
		s, err = lc.Auth().Token().LookupSelfWithContext(ctx)
		return err
	})
	if err != nil {
		return nil, loginRefused(err, "the token in vault.auth.tokenFile is invalid or expired")
	}
	if s == nil || s.Data == nil {
		return nil, errors.New("vault login token: lookup-self answered no data")
	}
	// Shape the lookup as a login answer so Run's watcher can renew it like an AppRole token.
	ttl, _ := s.TokenTTL()
	renewable, _ := s.TokenIsRenewable()
	policies, _ := s.TokenPolicies()
	return &api.Secret{Auth: &api.SecretAuth{
		ClientToken:   tok,
		LeaseDuration: int(ttl / time.Second),
		Renewable:     renewable,
		Policies:      policies,
	}}, nil
}

// loginRefused adds a hint to a refused login (400/403) and makes it ErrPermissionDenied.
func loginRefused(err error, hint string) error {
	var re *ResponseError
	if errors.Is(err, ErrPermissionDenied) || (errors.As(err, &re) && re.Status == 400) {
		if !errors.Is(err, ErrPermissionDenied) {
			return fmt.Errorf("%w: %s: %w", ErrPermissionDenied, hint, err)
		}
		return fmt.Errorf("%s: %w", hint, err)
	}
	return err
}

// bareClient is a fresh, tokenless api client on the same transport, with the environment stripped again.
func (c *Client) bareClient() (*api.Client, error) {
	cfg := c.api.CloneConfig()
	return newAPIClient(c.cfg, cfg.HttpClient)
}

// readSecretFile reads a one-line credential file; the error names the key and file, never the content.
func readSecretFile(key, name string) (string, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return "", fmt.Errorf("%s: %w", key, err)
	}
	v := strings.TrimSpace(string(b))
	if v == "" {
		return "", fmt.Errorf("%s: %s is empty", key, name)
	}
	return v, nil
}

// Run keeps the token alive until ctx is done: it logs in when there is no token yet, renews it with the api's
// lifetime watcher, and logs in again (with exponential backoff, capped at a minute) when renewal stops — the
// token reached its max TTL, was revoked, or Vault was away. It returns ctx.Err().
func (c *Client) Run(ctx context.Context) error {
	backoff := reloginMinBackoff
	for {
		c.mu.Lock()
		s := c.auth
		c.mu.Unlock()
		if s == nil {
			if err := c.Login(ctx); err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				c.mu.Lock()
				c.loginErr = err
				c.mu.Unlock()
				wait := backoff/2 + rand.N(backoff/2+1)
				c.log.Warn("vault login failed; retrying", "err", err, "in", wait.Round(time.Millisecond))
				backoff = min(2*backoff, reloginMaxBackoff)
				if !sleep(ctx, wait) {
					return ctx.Err()
				}
				continue
			}
			backoff = reloginMinBackoff
			continue
		}
		if err := c.watch(ctx, s); err != nil {
			return err
		}
		// Renewal is over: drop the login so the next turn logs in again.
		c.mu.Lock()
		if c.auth == s {
			c.auth = nil
		}
		c.mu.Unlock()
	}
}

// watch renews s until renewal stops (nil) or ctx is done (ctx.Err()).
func (c *Client) watch(ctx context.Context, s *api.Secret) error {
	ttl := time.Duration(s.Auth.LeaseDuration) * time.Second
	if ttl == 0 {
		// A token without expiry (e.g. a root or periodic-less orphan token): nothing to renew.
		<-ctx.Done()
		return ctx.Err()
	}
	if !s.Auth.Renewable {
		// Use it for most of its life, then log in again.
		if !sleep(ctx, ttl*4/5) {
			return ctx.Err()
		}
		return nil
	}
	w, err := c.api.NewLifetimeWatcher(&api.LifetimeWatcherInput{Secret: s})
	if err != nil {
		c.log.Warn("vault token watcher", "err", err)
		return nil
	}
	go w.Start()
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-w.DoneCh():
			if err != nil {
				c.log.Warn("vault token renewal failed; logging in again", "err", err)
			} else {
				c.log.Info("vault token reached its max TTL; logging in again")
			}
			return nil
		case r := <-w.RenewCh():
			if r != nil && r.Secret != nil && r.Secret.Auth != nil {
				c.log.Debug("vault token renewed", "ttl", time.Duration(r.Secret.Auth.LeaseDuration)*time.Second)
			}
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
