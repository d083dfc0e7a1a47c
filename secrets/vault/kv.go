package vault

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/amtedge/amtedge/secrets"
	"github.com/hashicorp/vault/api"
)

// Folder is one of RPS's folders under the site prefix.
type Folder string

// RPS's folders (rps-protocol.md §7.5); note RPS's lower case for these three.
const (
	Certs    Folder = "certs"    // certs/<domain>: CERT (base64 PFX), CERT_PASSWORD
	Profiles Folder = "profiles" // profiles/<profile>: AMT_PASSWORD, MEBX_PASSWORD
	Devices  Folder = "devices"  // devices/<uuid>: AMT_PASSWORD, MEBX_PASSWORD, and keys other tools own
)

// RPS's key names.
const (
	keyCert         = "CERT"
	keyCertPassword = "CERT_PASSWORD"
	keyAMTPassword  = "AMT_PASSWORD"
	keyMEBxPassword = "MEBX_PASSWORD"
)

// DeviceSecret is the part of devices/<uuid> the box owns. Other keys there (MPS_PASSWORD,
// TLS_ISSUED_CERTIFICATE, anything else) are kept untouched by WriteDevice.
type DeviceSecret struct {
	AMTPassword  string
	MEBxPassword string // empty for CCM; written as null, like RPS
}

func (f Folder) valid() bool { return f == Certs || f == Profiles || f == Devices }

func (c *Client) rel(f Folder, name string) (string, error) {
	if !f.valid() {
		return "", fmt.Errorf("vault: unknown folder %q", f)
	}
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
		return "", fmt.Errorf("vault %s: invalid name %q (empty, a dot segment or containing /)", f, name)
	}
	return string(f) + "/" + name, nil
}

func (c *Client) dataPath(rel string) string     { return c.cfg.Mount + "/data/" + c.join(rel) }
func (c *Client) metadataPath(rel string) string { return c.cfg.Mount + "/metadata/" + c.join(rel) }

// read returns the data and version of the latest version of rel. A soft-deleted latest version comes back with
// its version and nil data; a path never written (or deleted with its metadata) is secrets.ErrNotFound.
func (c *Client) read(ctx context.Context, rel string) (map[string]any, int, error) {
	var s *api.Secret
	err := c.call(ctx, "read", rel, c.dataPath(rel), func(ctx context.Context) error {
		var err error
		s, err = c.api.Logical().ReadWithContext(ctx, c.dataPath(rel))
		return err
	})
	if err != nil {
		return nil, 0, err
	}
	if s == nil || s.Data == nil {
		return nil, 0, fmt.Errorf("vault read %s: %w", rel, secrets.ErrNotFound)
	}
	md, _ := s.Data["metadata"].(map[string]any)
	version, ok := toInt(md["version"])
	if !ok {
		return nil, 0, fmt.Errorf("vault read %s: answer has no metadata.version (is %s a KV v2 mount?)", rel, c.cfg.Mount)
	}
	data, _ := s.Data["data"].(map[string]any)
	return data, version, nil
}

// readLive is read with a soft-deleted latest version reported as secrets.ErrNotFound.
func (c *Client) readLive(ctx context.Context, f Folder, name string) (map[string]any, int, error) {
	rel, err := c.rel(f, name)
	if err != nil {
		return nil, 0, err
	}
	data, v, err := c.read(ctx, rel)
	if err != nil {
		return nil, 0, err
	}
	if data == nil {
		// Keep the version: a writer needs it as check-and-set to write over a soft-deleted secret.
		return nil, v, fmt.Errorf("vault read %s: latest version %d is deleted: %w", rel, v, secrets.ErrNotFound)
	}
	return data, v, nil
}

// ReadDomain reads certs/<name>: the PFX (decoded from RPS's base64) and its password, with the KV version.
func (c *Client) ReadDomain(ctx context.Context, name string) (secrets.DomainSecret, int, error) {
	data, v, err := c.readLive(ctx, Certs, name)
	if err != nil {
		return secrets.DomainSecret{}, 0, err
	}
	cert, err := stringKey(data, keyCert)
	if err != nil {
		return secrets.DomainSecret{}, 0, fmt.Errorf("vault read certs/%s: %w", name, err)
	}
	pfx, err := base64.StdEncoding.DecodeString(strings.TrimSpace(cert))
	if err != nil {
		// Not the decoder's error: it quotes an offset into a secret, which is harmless, but keep the rule simple.
		return secrets.DomainSecret{}, 0, fmt.Errorf("vault read certs/%s: %s is not base64 (RPS stores the PFX as standard base64)", name, keyCert)
	}
	pw, err := stringKey(data, keyCertPassword)
	if err != nil {
		return secrets.DomainSecret{}, 0, fmt.Errorf("vault read certs/%s: %w", name, err)
	}
	return secrets.DomainSecret{PFX: pfx, Password: pw}, v, nil
}

// ReadProfile reads profiles/<name>: the profile's static passwords (empty when absent or null), with the version.
func (c *Client) ReadProfile(ctx context.Context, name string) (secrets.ProfileSecret, int, error) {
	data, v, err := c.readLive(ctx, Profiles, name)
	if err != nil {
		return secrets.ProfileSecret{}, 0, err
	}
	amt, err := stringKey(data, keyAMTPassword)
	if err != nil {
		return secrets.ProfileSecret{}, 0, fmt.Errorf("vault read profiles/%s: %w", name, err)
	}
	mebx, err := stringKey(data, keyMEBxPassword)
	if err != nil {
		return secrets.ProfileSecret{}, 0, fmt.Errorf("vault read profiles/%s: %w", name, err)
	}
	return secrets.ProfileSecret{AMTPassword: amt, MEBxPassword: mebx}, v, nil
}

// ReadDevice reads devices/<uuid>: the passwords the box owns, with the version to pass to WriteDevice. When the
// latest version was soft-deleted (by an operator; the box deletes with DeleteDevice, which removes everything),
// the error wraps secrets.ErrNotFound and the version returned is the deleted one, which WriteDevice takes as cas.
func (c *Client) ReadDevice(ctx context.Context, uuid string) (DeviceSecret, int, error) {
	data, v, err := c.readLive(ctx, Devices, uuid)
	if err != nil {
		return DeviceSecret{}, v, err
	}
	amt, err := stringKey(data, keyAMTPassword)
	if err != nil {
		return DeviceSecret{}, 0, fmt.Errorf("vault read devices/%s: %w", uuid, err)
	}
	mebx, err := stringKey(data, keyMEBxPassword)
	if err != nil {
		return DeviceSecret{}, 0, fmt.Errorf("vault read devices/%s: %w", uuid, err)
	}
	return DeviceSecret{AMTPassword: amt, MEBxPassword: mebx}, v, nil
}

// WriteDevice writes the box's passwords to devices/<uuid> with check-and-set and returns the new version.
//
// cas is the version the caller last read (0: the secret must not exist yet). The latest version's other keys
// (MPS_PASSWORD, TLS_ISSUED_CERTIFICATE, …) are carried over, unlike RPS's full-replace write that drops them.
// When Vault holds another version — before the write, or written between the merge read and the write — the
// error wraps ErrConflict and nothing is written.
func (c *Client) WriteDevice(ctx context.Context, uuid string, s DeviceSecret, cas int) (int, error) {
	rel, err := c.rel(Devices, uuid)
	if err != nil {
		return 0, err
	}
	if cas < 0 {
		return 0, fmt.Errorf("vault write %s: negative check-and-set version %d", rel, cas)
	}
	merged := map[string]any{}
	if cas > 0 {
		data, v, err := c.read(ctx, rel)
		switch {
		case errors.Is(err, secrets.ErrNotFound):
			return 0, fmt.Errorf("vault write %s: %w: expected version %d, Vault holds none", rel, ErrConflict, cas)
		case err != nil:
			return 0, fmt.Errorf("vault write %s: merge read: %w", rel, err)
		case v != cas:
			return 0, fmt.Errorf("vault write %s: %w: expected version %d, Vault holds %d", rel, ErrConflict, cas, v)
		}
		for k, val := range data {
			merged[k] = val
		}
	}
	merged[keyAMTPassword] = s.AMTPassword
	if s.MEBxPassword == "" {
		merged[keyMEBxPassword] = nil
	} else {
		merged[keyMEBxPassword] = s.MEBxPassword
	}
	var out *api.Secret
	err = c.call(ctx, "write", rel, c.dataPath(rel), func(ctx context.Context) error {
		var err error
		out, err = c.api.Logical().WriteWithContext(ctx, c.dataPath(rel), map[string]any{
			"data":    merged,
			"options": map[string]any{"cas": cas},
		})
		return err
	})
	if err != nil {
		return 0, err
	}
	if out == nil || out.Data == nil {
		return 0, fmt.Errorf("vault write %s: answer has no version (is %s a KV v2 mount?)", rel, c.cfg.Mount)
	}
	v, ok := toInt(out.Data["version"])
	if !ok {
		return 0, fmt.Errorf("vault write %s: answer has no version", rel)
	}
	return v, nil
}

// DeleteDevice deletes devices/<uuid> with all its versions and metadata (what RPS does on deactivation).
// Deleting an absent device succeeds: Vault does not tell the difference.
func (c *Client) DeleteDevice(ctx context.Context, uuid string) error {
	rel, err := c.rel(Devices, uuid)
	if err != nil {
		return err
	}
	return c.call(ctx, "delete", rel, c.metadataPath(rel), func(ctx context.Context) error {
		_, err := c.api.Logical().DeleteWithContext(ctx, c.metadataPath(rel))
		return err
	})
}

// List returns the names directly under folder f, sorted; sub-folders are left out. An absent folder is empty.
func (c *Client) List(ctx context.Context, f Folder) ([]string, error) {
	if !f.valid() {
		return nil, fmt.Errorf("vault list: unknown folder %q", f)
	}
	rel := string(f) + "/"
	var s *api.Secret
	err := c.call(ctx, "list", rel, c.metadataPath(rel), func(ctx context.Context) error {
		var err error
		s, err = c.api.Logical().ListWithContext(ctx, c.metadataPath(rel))
		return err
	})
	if err != nil {
		return nil, err
	}
	if s == nil || s.Data == nil {
		return nil, nil
	}
	keys, _ := s.Data["keys"].([]any)
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		if name, ok := k.(string); ok && name != "" && !strings.HasSuffix(name, "/") {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out, nil
}

// Version returns the current version of f/name from its metadata, without reading the secret: the sync compares
// it with the cached one to skip what has not changed. A soft-deleted latest version still counts.
func (c *Client) Version(ctx context.Context, f Folder, name string) (int, error) {
	rel, err := c.rel(f, name)
	if err != nil {
		return 0, err
	}
	var s *api.Secret
	err = c.call(ctx, "read metadata", rel, c.metadataPath(rel), func(ctx context.Context) error {
		var err error
		s, err = c.api.Logical().ReadWithContext(ctx, c.metadataPath(rel))
		return err
	})
	if err != nil {
		return 0, err
	}
	if s == nil || s.Data == nil {
		return 0, fmt.Errorf("vault read metadata %s: %w", rel, secrets.ErrNotFound)
	}
	v, ok := toInt(s.Data["current_version"])
	if !ok {
		return 0, fmt.Errorf("vault read metadata %s: answer has no current_version", rel)
	}
	return v, nil
}

// Versions returns the current version of every secret directly under folder f (List, then one metadata read per
// name, up to workers at a time; at least one), for the sync to skip what has not changed since its last pull. A
// name deleted between the list and its metadata read is left out.
func (c *Client) Versions(ctx context.Context, f Folder, workers int) (map[string]int, error) {
	names, err := c.List(ctx, f)
	if err != nil {
		return nil, err
	}
	workers = max(workers, 1)
	type result struct {
		name    string
		version int
		err     error
	}
	jobs := make(chan string)
	results := make(chan result, len(names)) // buffered: workers never block when the collector gives up
	for range min(workers, len(names)) {
		go func() {
			for name := range jobs {
				v, err := c.Version(ctx, f, name)
				results <- result{name, v, err}
			}
		}()
	}
	go func() {
		defer close(jobs)
		for _, name := range names {
			select {
			case jobs <- name:
			case <-ctx.Done():
				return
			}
		}
	}()
	out := make(map[string]int, len(names))
	var errs []error
	for range names {
		var r result
		select {
		case r = <-results:
		case <-ctx.Done():
			return nil, fmt.Errorf("vault versions %s: %w", f, ctx.Err())
		}
		switch {
		case errors.Is(r.err, secrets.ErrNotFound):
		case r.err != nil:
			errs = append(errs, r.err)
		default:
			out[r.name] = r.version
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("vault versions %s: %w", f, errs[0])
	}
	return out, nil
}

// stringKey returns data[key] as a string: absent or null is "", anything else but a string is an error that
// names the key, never the value.
func stringKey(data map[string]any, key string) (string, error) {
	switch v := data[key].(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	default:
		return "", fmt.Errorf("key %s is a %T, not a string", key, v)
	}
}

func toInt(v any) (int, bool) {
	switch n := v.(type) {
	case json.Number:
		i, err := n.Int64()
		return int(i), err == nil
	case float64:
		return int(n), true
	case int:
		return n, true
	case int64:
		return int(n), true
	}
	return 0, false
}
