package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/amtedge/amtedge/secrets"
)

// MemoryHistoryLimit is how many older credential sets a Memory store keeps per device (the same default as
// the sealed cache, so tests of other packages see the same history behaviour).
const MemoryHistoryLimit = 8

// errClosed is returned by every method of a closed Memory store.
var errClosed = errors.New("store is closed")

// Memory is an in-memory secrets.Store for tests of other packages. It keeps the whole contract except
// durability: nothing survives the process, so Run checks it with reopen == nil.
type Memory struct {
	mu       sync.Mutex
	closed   bool
	domains  map[string]secrets.DomainSecret
	profiles map[string]secrets.ProfileSecret
	devices  map[string]secrets.Device
}

var _ secrets.Store = (*Memory)(nil)

// NewMemory returns an empty in-memory Store.
func NewMemory() *Memory {
	return &Memory{
		domains:  make(map[string]secrets.DomainSecret),
		profiles: make(map[string]secrets.ProfileSecret),
		devices:  make(map[string]secrets.Device),
	}
}

// lock takes the mutex after checking the call's preconditions; on success the caller must unlock.
func (m *Memory) lock(ctx context.Context, op, name string, needName bool) error {
	if err := ctx.Err(); err != nil {
		return opErr(op, name, err)
	}
	if needName && name == "" {
		return fmt.Errorf("%s: empty name", op)
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return opErr(op, name, errClosed)
	}
	return nil
}

func opErr(op, name string, err error) error {
	if name == "" {
		return fmt.Errorf("%s: %w", op, err)
	}
	return fmt.Errorf("%s %q: %w", op, name, err)
}

func notFound(op, name string) error { return opErr(op, name, secrets.ErrNotFound) }

// Domain implements secrets.Store.
func (m *Memory) Domain(ctx context.Context, name string) (secrets.DomainSecret, error) {
	if err := m.lock(ctx, "read domain", name, false); err != nil {
		return secrets.DomainSecret{}, err
	}
	defer m.mu.Unlock()
	d, ok := m.domains[name]
	if !ok {
		return secrets.DomainSecret{}, notFound("read domain", name)
	}
	return copyDomain(d), nil
}

// PutDomain implements secrets.Store.
func (m *Memory) PutDomain(ctx context.Context, name string, s secrets.DomainSecret) error {
	if err := m.lock(ctx, "put domain", name, true); err != nil {
		return err
	}
	defer m.mu.Unlock()
	m.domains[name] = copyDomain(s)
	return nil
}

// DeleteDomain implements secrets.Store.
func (m *Memory) DeleteDomain(ctx context.Context, name string) error {
	if err := m.lock(ctx, "delete domain", name, true); err != nil {
		return err
	}
	defer m.mu.Unlock()
	if _, ok := m.domains[name]; !ok {
		return notFound("delete domain", name)
	}
	delete(m.domains, name)
	return nil
}

// Profile implements secrets.Store.
func (m *Memory) Profile(ctx context.Context, name string) (secrets.ProfileSecret, error) {
	if err := m.lock(ctx, "read profile", name, false); err != nil {
		return secrets.ProfileSecret{}, err
	}
	defer m.mu.Unlock()
	p, ok := m.profiles[name]
	if !ok {
		return secrets.ProfileSecret{}, notFound("read profile", name)
	}
	return p, nil
}

// PutProfile implements secrets.Store.
func (m *Memory) PutProfile(ctx context.Context, name string, s secrets.ProfileSecret) error {
	if err := m.lock(ctx, "put profile", name, true); err != nil {
		return err
	}
	defer m.mu.Unlock()
	m.profiles[name] = s
	return nil
}

// DeleteProfile implements secrets.Store.
func (m *Memory) DeleteProfile(ctx context.Context, name string) error {
	if err := m.lock(ctx, "delete profile", name, true); err != nil {
		return err
	}
	defer m.mu.Unlock()
	if _, ok := m.profiles[name]; !ok {
		return notFound("delete profile", name)
	}
	delete(m.profiles, name)
	return nil
}

// Device implements secrets.Store.
func (m *Memory) Device(ctx context.Context, uuid string) (secrets.Device, error) {
	if err := m.lock(ctx, "read device", uuid, false); err != nil {
		return secrets.Device{}, err
	}
	defer m.mu.Unlock()
	d, ok := m.devices[uuid]
	if !ok {
		return secrets.Device{}, notFound("read device", uuid)
	}
	return copyDevice(d), nil
}

// PutDevice implements secrets.Store.
func (m *Memory) PutDevice(ctx context.Context, uuid string, c secrets.Credentials) error {
	if !c.State.Valid() {
		return fmt.Errorf("put device %q: invalid state %q", uuid, c.State)
	}
	if err := m.lock(ctx, "put device", uuid, true); err != nil {
		return err
	}
	defer m.mu.Unlock()
	d, ok := m.devices[uuid]
	if ok {
		// The stored History is never shared with a caller, so building a fresh slice is all the copying needed.
		h := make([]secrets.Credentials, 0, min(len(d.History)+1, MemoryHistoryLimit))
		h = append(h, d.Current)
		h = append(h, d.History[:min(len(d.History), MemoryHistoryLimit-1)]...)
		d.History = h
	}
	d.UUID = uuid
	d.Current = c
	m.devices[uuid] = d
	return nil
}

// MarkDevice implements secrets.Store.
func (m *Memory) MarkDevice(ctx context.Context, uuid string, state secrets.State) error {
	if !state.Valid() {
		return fmt.Errorf("mark device %q: invalid state %q", uuid, state)
	}
	if err := m.lock(ctx, "mark device", uuid, true); err != nil {
		return err
	}
	defer m.mu.Unlock()
	d, ok := m.devices[uuid]
	if !ok {
		return notFound("mark device", uuid)
	}
	d.Current.State = state
	d.Current.Updated = time.Now()
	m.devices[uuid] = d
	return nil
}

// DeleteDevice implements secrets.Store.
func (m *Memory) DeleteDevice(ctx context.Context, uuid string) error {
	if err := m.lock(ctx, "delete device", uuid, true); err != nil {
		return err
	}
	defer m.mu.Unlock()
	if _, ok := m.devices[uuid]; !ok {
		return notFound("delete device", uuid)
	}
	delete(m.devices, uuid)
	return nil
}

// ListDevices implements secrets.Store.
func (m *Memory) ListDevices(ctx context.Context) ([]string, error) {
	if err := m.lock(ctx, "list devices", "", false); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	out := make([]string, 0, len(m.devices))
	for uuid := range m.devices {
		out = append(out, uuid)
	}
	slices.Sort(out)
	return out, nil
}

// Close implements secrets.Store; later calls fail.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	return nil
}

func copyDomain(d secrets.DomainSecret) secrets.DomainSecret {
	d.PFX = slices.Clone(d.PFX)
	return d
}

func copyDevice(d secrets.Device) secrets.Device {
	d.History = slices.Clone(d.History)
	return d
}
