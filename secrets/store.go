// Package secrets holds the custody of the box's secrets: the Store the appliance reads and writes
// (domains' provisioning certificates and their passwords, profiles' static passwords, every device's
// AMT and MEBx passwords), and its implementations.
//
// It must never log, print or return a secret in an error text.
package secrets

import (
	"context"
	"errors"
	"slices"
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

// Candidates lists the AMT passwords the device may hold now, most likely first: every set from the newest back
// to the newest confirmed one, skipping abandoned sets. A pending set may or may not have reached the device
// (the box can crash between writing and hearing back, or a reply can be lost), which is why several can be
// candidates. A confirmed set without an AMT password (the device was deactivated) ends the list.
func (d Device) Candidates() []string {
	var out []string
	for _, c := range d.sets() {
		if c.State == Abandoned {
			continue
		}
		if c.AMTPassword != "" && !slices.Contains(out, c.AMTPassword) {
			out = append(out, c.AMTPassword)
		}
		if c.State == Confirmed {
			break
		}
	}
	return out
}

// MEBxPassword is the MEBx password of the newest set that is not abandoned and has one; empty when none does.
func (d Device) MEBxPassword() string {
	for _, c := range d.sets() {
		if c.State != Abandoned && c.MEBxPassword != "" {
			return c.MEBxPassword
		}
	}
	return ""
}

// Holds reports whether any of the device's credential sets, current or in the history, has AMT password
// amtPassword.
func (d Device) Holds(amtPassword string) bool {
	return slices.ContainsFunc(d.sets(), func(c Credentials) bool { return c.AMTPassword == amtPassword })
}

// sets lists the current set and the history, newest first.
func (d Device) sets() []Credentials {
	return append([]Credentials{d.Current}, d.History...)
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
