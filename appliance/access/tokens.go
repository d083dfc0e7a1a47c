package access

import (
	"crypto/sha256"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/amtedge/amtedge/appliance/events"
)

// tokenPrefix marks the box's API tokens, so secret scanners and people recognise one.
const tokenPrefix = "amte_"

// lastUsedGranularity: a token's last use is kept in memory at once but written to the accounts file at most
// this often, so busy automation does not turn every API call into an fsync.
const lastUsedGranularity = time.Hour

type token struct {
	TokenInfo
	hash          [sha256.Size]byte
	savedLastUsed time.Time // LastUsed as the file has it
}

// CreateToken makes a new API token and returns its secret; the box keeps only its SHA-256, so the secret can
// never be shown again.
func (g *Guard) CreateToken(name string, scope Scope) (string, error) {
	if err := validName("token", name); err != nil {
		return "", err
	}
	if scope != ScopeRead && scope != ScopeWrite {
		return "", fmt.Errorf("token scope %q is not valid: read or write", truncate(string(scope), 20))
	}
	raw, err := randomString(32)
	if err != nil {
		return "", internalError{fmt.Errorf("create token: %w", err)}
	}
	secret := tokenPrefix + raw
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.tokens[name]; ok {
		return "", fmt.Errorf("%w (%s)", ErrTokenExists, name)
	}
	if len(g.tokens) >= maxTokens {
		return "", fmt.Errorf("the box holds %d API tokens already: revoke some first", maxTokens)
	}
	t := &token{TokenInfo: TokenInfo{Name: name, Scope: scope, Created: g.opts.Now().UTC()}, hash: sha256.Sum256([]byte(secret))}
	g.tokens[name] = t
	g.byHash[t.hash] = t
	if err := g.saveLocked(); err != nil {
		delete(g.tokens, name)
		delete(g.byHash, t.hash)
		return "", err
	}
	g.log.Info("API token created", "event", events.AdminTokenChanged, "name", name, "scope", string(scope), "action", "create")
	return secret, nil
}

// Tokens lists the API tokens by name.
func (g *Guard) Tokens() []TokenInfo {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]TokenInfo, 0, len(g.tokens))
	for _, n := range sortedKeys(g.tokens) {
		out = append(out, g.tokens[n].TokenInfo)
	}
	return out
}

// RevokeToken deletes a token; requests carrying it get 401 from then on.
func (g *Guard) RevokeToken(name string) error {
	if err := validName("token", name); err != nil {
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	t, ok := g.tokens[name]
	if !ok {
		return fmt.Errorf("%w: %s", ErrNoSuchToken, name)
	}
	delete(g.tokens, name)
	delete(g.byHash, t.hash)
	if err := g.saveLocked(); err != nil {
		g.tokens[name] = t
		g.byHash[t.hash] = t
		return err
	}
	g.log.Info("API token revoked", "event", events.AdminTokenChanged, "name", name, "scope", string(t.Scope), "action", "revoke")
	return nil
}

// useToken finds the token a bearer secret belongs to and notes its use. The lookup is by the secret's
// SHA-256, so the map compares hashes, not secrets, and timing says nothing about a secret's prefix.
func (g *Guard) useToken(secret string) (TokenInfo, bool) {
	if !strings.HasPrefix(secret, tokenPrefix) || len(secret) > 128 {
		return TokenInfo{}, false
	}
	h := sha256.Sum256([]byte(secret))
	g.mu.Lock()
	defer g.mu.Unlock()
	t, ok := g.byHash[h]
	if !ok {
		return TokenInfo{}, false
	}
	now := g.opts.Now().UTC()
	t.LastUsed = now
	if now.Sub(t.savedLastUsed) >= lastUsedGranularity {
		if err := g.saveLocked(); err != nil {
			// The request is authentic; only the bookkeeping failed. Say so, and try again on the next use.
			g.log.Warn("API token last use not saved", "name", t.Name, "err", err)
		}
	}
	return t.TokenInfo, true
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
