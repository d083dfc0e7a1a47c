// Package secrets holds the custody of the box's secrets: the Store the appliance reads and writes
// (domains' provisioning certificates and their passwords, profiles' static passwords, every device's
// AMT and MEBx passwords), and its implementations.
//
// It must never log, print or return a secret in an error text.
package secrets

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned (wrapped) when the Store holds nothing under the asked name.
var ErrNotFound = errors.New("not found")

// State says whether a device is known to hold a credential set.
type State string

const (
	// Pending: written before the WSMAN call that sets it; the device may or may not hold it.
	Pending State = "pending"
	// Confirmed: the device accepted it.
	Confirmed State = "confirmed"
	// Abandoned: the device is known not to hold it (the call failed and the mode re-read says so).
	Abandoned State = "abandoned"
)

// Valid reports whether s is one of the three states.
func (s State) Valid() bool { return s == Pending || s == Confirmed || s == Abandoned }

// DomainSecret is a domain's provisioning certificate: the PFX (PKCS#12) bytes and their password.
type DomainSecret struct {
	PFX      []byte
	Password string
}

// ProfileSecret holds a profile's static passwords; empty when the profile generates them.
type ProfileSecret struct {
	AMTPassword  string
	MEBxPassword string
}

// Credentials is one set of passwords the box sent (or was about to send) to a device.
type Credentials struct {
	AMTPassword  string
	MEBxPassword string // empty for CCM
	State        State
	Created      time.Time
	Updated      time.Time
}

// Device is what the Store holds for one device: its newest credential set and older ones, newest first.
type Device struct {
	UUID    string
	Current Credentials
	History []Credentials
}

// Candidates lists the AMT passwords the device may hold now, most likely first: the current set when it is
// pending or confirmed, then the newest confirmed set before it. A pending set may or may not have reached the
// device (the box can crash between writing and hearing back), which is why both can be candidates.
func (d Device) Candidates() []string {
	var out []string
	if d.Current.State != Abandoned && d.Current.AMTPassword != "" {
		out = append(out, d.Current.AMTPassword)
		if d.Current.State == Confirmed {
			return out
		}
	}
	for _, c := range d.History {
		if c.State == Confirmed && c.AMTPassword != "" {
			return append(out, c.AMTPassword)
		}
	}
	return out
}

// Store is the custody interface the appliance uses.
//
// Contract (checked by storetest.Run against every implementation):
//   - a write returns only after it is durable on local disk (fsync'd) — and, where the implementation
//     writes through to Vault, queued for it — so that a crash after return loses nothing;
//   - reads of a name never written, or deleted, return an error wrapping ErrNotFound; so do MarkDevice and
//     the Delete methods when the name is absent (and then they write nothing);
//   - PutDevice makes the new set Current and moves the previous Current to the front of History; History keeps
//     at most the implementation's history limit (at least 4) entries, dropping the oldest;
//   - MarkDevice changes only Current.State and Current.Updated (set to the store's clock);
//   - values come back byte-for-byte as written, whatever the bytes (binary PFX, any string, not only valid
//     UTF-8); times come back equal by time.Time.Equal (location and monotonic reading are not kept);
//     a returned value is a copy the caller may keep, and the store keeps no reference to a value passed in;
//   - an empty name, or a State that is not Valid, is refused with an error and nothing is written;
//   - a call whose ctx is already done returns an error wrapping ctx.Err() and writes nothing;
//   - ListDevices returns the UUIDs in ascending byte order;
//   - all methods are safe for concurrent use.
type Store interface {
	Domain(ctx context.Context, name string) (DomainSecret, error)
	PutDomain(ctx context.Context, name string, s DomainSecret) error
	DeleteDomain(ctx context.Context, name string) error

	Profile(ctx context.Context, name string) (ProfileSecret, error)
	PutProfile(ctx context.Context, name string, s ProfileSecret) error
	DeleteProfile(ctx context.Context, name string) error

	Device(ctx context.Context, uuid string) (Device, error)
	// PutDevice records a new credential set (normally State Pending) before it is sent to the device.
	PutDevice(ctx context.Context, uuid string, c Credentials) error
	// MarkDevice sets the state of the device's current credential set.
	MarkDevice(ctx context.Context, uuid string, state State) error
	DeleteDevice(ctx context.Context, uuid string) error
	ListDevices(ctx context.Context) ([]string, error)

	Close() error
}
