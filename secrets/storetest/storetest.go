// Package storetest holds the contract tests that every secrets.Store implementation must pass (Run), and
// an in-memory Store (NewMemory) for the tests of other packages.
//
// It is a test helper: only _test.go files may import it. The daemon must never link it — it imports
// "testing", and the in-memory store keeps secrets nowhere durable, which would break write-before-send.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/amtedge/amtedge/secrets"
)

// Run checks every clause of the secrets.Store contract against the stores open returns.
//
// Run calls open once per subtest, with the subtest's t. open returns a fresh, empty store and, for a
// persistent store, reopen: a function that closes that store (or the one the previous reopen returned) and
// opens the same underlying state again, so durability can be checked; reopen is nil for a store that keeps
// nothing across Close. open must arrange (t.Cleanup) to close the last store it or reopen handed out, and
// reopen must fail the test (t.Fatal) when reopening fails.
func Run(t *testing.T, open func(t *testing.T) (s secrets.Store, reopen func() secrets.Store)) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(h *harness)
	}{
		{"NotFound", testNotFound},
		{"EmptyNameRefused", testEmptyName},
		{"DomainRoundTrip", testDomainRoundTrip},
		{"ProfileRoundTrip", testProfileRoundTrip},
		{"DeviceRoundTrip", testDeviceRoundTrip},
		{"PutDeviceMovesCurrentToHistory", testPutDeviceHistory},
		{"HistoryLimit", testHistoryLimit},
		{"MarkDevice", testMarkDevice},
		{"InvalidStateRefused", testInvalidState},
		{"Candidates", testCandidates},
		{"Delete", testDelete},
		{"ListDevicesSorted", testListDevicesSorted},
		{"ReturnedValuesAreCopies", testCopies},
		{"ConcurrentWriters", testConcurrent},
		{"CancelledContext", testCancelled},
		{"Durability", testDurability},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, reopen := open(t)
			tc.fn(&harness{t: t, s: s, reopenFn: reopen, ctx: t.Context()})
		})
	}
}

// harness carries the store under test; s changes when the store is reopened.
type harness struct {
	t        *testing.T
	s        secrets.Store
	reopenFn func() secrets.Store
	ctx      context.Context
}

// reopen closes and reopens the store when it is persistent; it reports whether it did.
func (h *harness) reopen() bool {
	h.t.Helper()
	if h.reopenFn == nil {
		return false
	}
	h.s = h.reopenFn()
	if h.s == nil {
		h.t.Fatal("reopen returned a nil Store")
	}
	return true
}

// verify runs check now and, for a persistent store, again after a reopen: every clause that holds before a
// Close must hold after it.
func (h *harness) verify(check func()) {
	h.t.Helper()
	check()
	if h.reopen() {
		check()
	}
}

func (h *harness) putDomain(name string, d secrets.DomainSecret) {
	h.t.Helper()
	if err := h.s.PutDomain(h.ctx, name, d); err != nil {
		h.t.Fatalf("PutDomain(%q): %v", name, err)
	}
}

func (h *harness) putProfile(name string, p secrets.ProfileSecret) {
	h.t.Helper()
	if err := h.s.PutProfile(h.ctx, name, p); err != nil {
		h.t.Fatalf("PutProfile(%q): %v", name, err)
	}
}

func (h *harness) putDevice(uuid string, c secrets.Credentials) {
	h.t.Helper()
	if err := h.s.PutDevice(h.ctx, uuid, c); err != nil {
		h.t.Fatalf("PutDevice(%q): %v", uuid, err)
	}
}

func (h *harness) mark(uuid string, st secrets.State) {
	h.t.Helper()
	if err := h.s.MarkDevice(h.ctx, uuid, st); err != nil {
		h.t.Fatalf("MarkDevice(%q, %s): %v", uuid, st, err)
	}
}

func (h *harness) domain(name string) secrets.DomainSecret {
	h.t.Helper()
	d, err := h.s.Domain(h.ctx, name)
	if err != nil {
		h.t.Fatalf("Domain(%q): %v", name, err)
	}
	return d
}

func (h *harness) profile(name string) secrets.ProfileSecret {
	h.t.Helper()
	p, err := h.s.Profile(h.ctx, name)
	if err != nil {
		h.t.Fatalf("Profile(%q): %v", name, err)
	}
	return p
}

func (h *harness) device(uuid string) secrets.Device {
	h.t.Helper()
	d, err := h.s.Device(h.ctx, uuid)
	if err != nil {
		h.t.Fatalf("Device(%q): %v", uuid, err)
	}
	return d
}

func (h *harness) list() []string {
	h.t.Helper()
	l, err := h.s.ListDevices(h.ctx)
	if err != nil {
		h.t.Fatalf("ListDevices: %v", err)
	}
	return l
}

func (h *harness) wantDomain(name string, want secrets.DomainSecret) {
	h.t.Helper()
	if got := h.domain(name); !domainEqual(got, want) {
		h.t.Errorf("Domain(%q) = %s, want %s", name, fmtDomain(got), fmtDomain(want))
	}
}

func (h *harness) wantProfile(name string, want secrets.ProfileSecret) {
	h.t.Helper()
	if got := h.profile(name); got != want {
		h.t.Errorf("Profile(%q) = %+q, want %+q", name, got, want)
	}
}

func (h *harness) wantDevice(uuid string, want secrets.Device) {
	h.t.Helper()
	if diff := diffDevice(h.device(uuid), want); diff != "" {
		h.t.Errorf("Device(%q): %s", uuid, diff)
	}
}

func (h *harness) wantList(want []string) {
	h.t.Helper()
	if got := h.list(); !slices.Equal(got, want) {
		h.t.Errorf("ListDevices() = %q, want %q", got, want)
	}
}

// wantNotFound checks that err wraps secrets.ErrNotFound.
func (h *harness) wantNotFound(what string, err error) {
	h.t.Helper()
	if !errors.Is(err, secrets.ErrNotFound) {
		h.t.Errorf("%s: err = %v, want one wrapping secrets.ErrNotFound", what, err)
	}
}

func (h *harness) wantAbsent(domain, profile, device string) {
	h.t.Helper()
	if domain != "" {
		_, err := h.s.Domain(h.ctx, domain)
		h.wantNotFound(fmt.Sprintf("Domain(%q)", domain), err)
	}
	if profile != "" {
		_, err := h.s.Profile(h.ctx, profile)
		h.wantNotFound(fmt.Sprintf("Profile(%q)", profile), err)
	}
	if device != "" {
		_, err := h.s.Device(h.ctx, device)
		h.wantNotFound(fmt.Sprintf("Device(%q)", device), err)
	}
}

// --- test data ---

// printableASCII is every ASCII character from space to tilde: all the symbols a password may hold.
func printableASCII() string {
	var b strings.Builder
	for c := byte(0x20); c < 0x7f; c++ {
		b.WriteByte(c)
	}
	return b.String()
}

// allASCII is every ASCII byte, control characters and NUL included.
func allASCII() string {
	b := make([]byte, 0x80)
	for i := range b {
		b[i] = byte(i)
	}
	return string(b)
}

// passwords are strings a round trip must keep byte for byte.
func passwords() []string {
	return []string{
		"",
		"P@ssw0rd!",
		printableASCII(),
		allASCII(),
		`"quoted" \back\slash\ {json} <xml> &amp; 'single' %s %v $HOME ${x} \u0000`,
		"Pässwörd-日本語-🔑-Ωμέγα-\u200b-\ufeff",
		"\xff\xfe\xc0 invalid UTF-8 \x80\x00 tail",
		strings.Repeat("0123456789abcdef", 256),
	}
}

// binaryPFX returns n bytes holding every byte value and a deterministic pseudo-random tail, as a PFX is.
func binaryPFX(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		if i < 256 {
			b[i] = byte(i)
		} else {
			b[i] = byte(r.Uint32())
		}
	}
	return b
}

// baseTime is a fixed instant with nanoseconds, so a store that rounds times is caught.
var baseTime = time.Date(2025, 3, 14, 15, 9, 26, 535897932, time.UTC)

func creds(amt, mebx string, st secrets.State, minutes int) secrets.Credentials {
	t := baseTime.Add(time.Duration(minutes) * time.Minute)
	return secrets.Credentials{AMTPassword: amt, MEBxPassword: mebx, State: st, Created: t, Updated: t.Add(time.Second)}
}

// --- comparison ---

func domainEqual(a, b secrets.DomainSecret) bool {
	return a.Password == b.Password && string(a.PFX) == string(b.PFX)
}

func fmtDomain(d secrets.DomainSecret) string {
	return fmt.Sprintf("{PFX: %d bytes %.16x…, Password: %q}", len(d.PFX), d.PFX, d.Password)
}

func credEqual(a, b secrets.Credentials) bool {
	return a.AMTPassword == b.AMTPassword && a.MEBxPassword == b.MEBxPassword && a.State == b.State &&
		a.Created.Equal(b.Created) && a.Updated.Equal(b.Updated)
}

func fmtCred(c secrets.Credentials) string {
	return fmt.Sprintf("{AMT: %.40q, MEBx: %.40q, %s, created %s, updated %s}", c.AMTPassword, c.MEBxPassword,
		c.State, c.Created.Format(time.RFC3339Nano), c.Updated.Format(time.RFC3339Nano))
}

// diffDevice returns "" when got equals want (times compared with Equal), else a description.
func diffDevice(got, want secrets.Device) string {
	var diffs []string
	if got.UUID != want.UUID {
		diffs = append(diffs, fmt.Sprintf("UUID = %q, want %q", got.UUID, want.UUID))
	}
	if !credEqual(got.Current, want.Current) {
		diffs = append(diffs, fmt.Sprintf("Current = %s, want %s", fmtCred(got.Current), fmtCred(want.Current)))
	}
	if len(got.History) != len(want.History) {
		diffs = append(diffs, fmt.Sprintf("len(History) = %d, want %d", len(got.History), len(want.History)))
	}
	for i := range min(len(got.History), len(want.History)) {
		if !credEqual(got.History[i], want.History[i]) {
			diffs = append(diffs, fmt.Sprintf("History[%d] = %s, want %s", i, fmtCred(got.History[i]), fmtCred(want.History[i])))
		}
	}
	return strings.Join(diffs, "; ")
}

// --- the contract ---

func testNotFound(h *harness) {
	ctx := h.ctx
	_, err := h.s.Domain(ctx, "nope.example.com")
	h.wantNotFound("Domain of an unknown name", err)
	_, err = h.s.Profile(ctx, "nope")
	h.wantNotFound("Profile of an unknown name", err)
	_, err = h.s.Device(ctx, "00000000-0000-0000-0000-000000000000")
	h.wantNotFound("Device of an unknown UUID", err)
	h.wantNotFound("MarkDevice of an unknown UUID", h.s.MarkDevice(ctx, "00000000-0000-0000-0000-000000000000", secrets.Confirmed))
	h.wantNotFound("DeleteDomain of an unknown name", h.s.DeleteDomain(ctx, "nope.example.com"))
	h.wantNotFound("DeleteProfile of an unknown name", h.s.DeleteProfile(ctx, "nope"))
	h.wantNotFound("DeleteDevice of an unknown UUID", h.s.DeleteDevice(ctx, "00000000-0000-0000-0000-000000000000"))
	// A name close to a stored one is still unknown: no prefix matching, no case folding.
	h.putDomain("corp.example.com", secrets.DomainSecret{PFX: []byte{1}, Password: "x"})
	h.putDevice("abc", creds("a", "", secrets.Pending, 0))
	h.verify(func() {
		for _, n := range []string{"corp.example.co", "corp.example.com.", "CORP.example.com", "example.com"} {
			_, err := h.s.Domain(ctx, n)
			h.wantNotFound(fmt.Sprintf("Domain(%q) next to a stored one", n), err)
		}
		for _, n := range []string{"ab", "abcd", "ABC"} {
			_, err := h.s.Device(ctx, n)
			h.wantNotFound(fmt.Sprintf("Device(%q) next to a stored one", n), err)
		}
		// Failed marks and deletes must not have created anything.
		h.wantAbsent("", "", "00000000-0000-0000-0000-000000000000")
		h.wantList([]string{"abc"})
	})
}

func testEmptyName(h *harness) {
	ctx := h.ctx
	for what, err := range map[string]error{
		"PutDomain":     h.s.PutDomain(ctx, "", secrets.DomainSecret{PFX: []byte{1}}),
		"PutProfile":    h.s.PutProfile(ctx, "", secrets.ProfileSecret{AMTPassword: "x"}),
		"PutDevice":     h.s.PutDevice(ctx, "", creds("x", "", secrets.Pending, 0)),
		"MarkDevice":    h.s.MarkDevice(ctx, "", secrets.Confirmed),
		"DeleteDomain":  h.s.DeleteDomain(ctx, ""),
		"DeleteProfile": h.s.DeleteProfile(ctx, ""),
		"DeleteDevice":  h.s.DeleteDevice(ctx, ""),
	} {
		if err == nil {
			h.t.Errorf("%s with an empty name: err = nil, want an error", what)
		}
	}
	h.verify(func() {
		if _, err := h.s.Domain(h.ctx, ""); err == nil {
			h.t.Error("Domain(\"\"): err = nil, want an error")
		}
		if _, err := h.s.Profile(h.ctx, ""); err == nil {
			h.t.Error("Profile(\"\"): err = nil, want an error")
		}
		if _, err := h.s.Device(h.ctx, ""); err == nil {
			h.t.Error("Device(\"\"): err = nil, want an error")
		}
		h.wantList(nil)
	})
}

func testDomainRoundTrip(h *harness) {
	pw := passwords()
	want := map[string]secrets.DomainSecret{
		"empty.example.com": {},
		"one.example.com":   {PFX: []byte{0}, Password: ""},
		"bin.example.com":   {PFX: binaryPFX(256, 1), Password: pw[3]},
		"big.example.com":   {PFX: binaryPFX(64<<10, 2), Password: pw[5]},
	}
	for i, p := range pw {
		want[fmt.Sprintf("pw%d.example.com", i)] = secrets.DomainSecret{PFX: binaryPFX(2048+i, uint64(i)), Password: p}
	}
	for name, d := range want {
		h.putDomain(name, d)
	}
	// An overwrite replaces the whole value.
	h.putDomain("over.example.com", secrets.DomainSecret{PFX: binaryPFX(4096, 7), Password: "old-password"})
	want["over.example.com"] = secrets.DomainSecret{PFX: []byte("short"), Password: "new"}
	h.putDomain("over.example.com", want["over.example.com"])
	h.verify(func() {
		for name, d := range want {
			h.wantDomain(name, d)
		}
		// Domains and devices are separate name spaces.
		h.wantList(nil)
	})
}

func testProfileRoundTrip(h *harness) {
	pw := passwords()
	want := map[string]secrets.ProfileSecret{"random": {}}
	for i, a := range pw {
		want[fmt.Sprintf("profile-%d", i)] = secrets.ProfileSecret{AMTPassword: a, MEBxPassword: pw[len(pw)-1-i]}
	}
	// Odd profile names are names too.
	want["näme with spaces/and\\slashes"] = secrets.ProfileSecret{AMTPassword: "a", MEBxPassword: "b"}
	for name, p := range want {
		h.putProfile(name, p)
	}
	h.putProfile("over", secrets.ProfileSecret{AMTPassword: "old-amt", MEBxPassword: "old-mebx"})
	want["over"] = secrets.ProfileSecret{AMTPassword: "new-amt"}
	h.putProfile("over", want["over"])
	h.verify(func() {
		for name, p := range want {
			h.wantProfile(name, p)
		}
	})
}

func testDeviceRoundTrip(h *harness) {
	pw := passwords()
	zone := time.FixedZone("UTC+0530", 5*3600+1800)
	want := map[string]secrets.Device{}
	for i, a := range pw {
		uuid := fmt.Sprintf("4c4c4544-0000-1000-8000-%012d", i)
		c := secrets.Credentials{
			AMTPassword:  a,
			MEBxPassword: pw[len(pw)-1-i],
			State:        []secrets.State{secrets.Pending, secrets.Confirmed, secrets.Abandoned}[i%3],
			Created:      baseTime.Add(time.Duration(i) * time.Hour).In(zone),
			Updated:      baseTime.Add(time.Duration(i)*time.Hour + time.Nanosecond),
		}
		h.putDevice(uuid, c)
		want[uuid] = secrets.Device{UUID: uuid, Current: c}
	}
	// CCM: no MEBx password; zero times are values too.
	want["ccm"] = secrets.Device{UUID: "ccm", Current: secrets.Credentials{AMTPassword: "ccm-only", State: secrets.Pending}}
	h.putDevice("ccm", want["ccm"].Current)
	h.verify(func() {
		for uuid, d := range want {
			h.wantDevice(uuid, d)
		}
	})
}

func testPutDeviceHistory(h *harness) {
	const uuid = "hist"
	a := creds("a", "ma", secrets.Confirmed, 0)
	b := creds("b", "mb", secrets.Abandoned, 1)
	c := creds("c", "mc", secrets.Pending, 2)
	h.putDevice(uuid, a)
	h.wantDevice(uuid, secrets.Device{UUID: uuid, Current: a})
	h.putDevice(uuid, b)
	h.wantDevice(uuid, secrets.Device{UUID: uuid, Current: b, History: []secrets.Credentials{a}})
	h.verify(func() {}) // reopen between puts: history must be built on what is on disk
	h.putDevice(uuid, c)
	h.verify(func() {
		h.wantDevice(uuid, secrets.Device{UUID: uuid, Current: c, History: []secrets.Credentials{b, a}})
	})
	// Putting the same set again still moves the old one into History: every put is a new set.
	h.putDevice(uuid, c)
	h.wantDevice(uuid, secrets.Device{UUID: uuid, Current: c, History: []secrets.Credentials{c, b, a}})
}

func testHistoryLimit(h *harness) {
	const uuid, puts = "limit", 40
	set := func(i int) secrets.Credentials {
		return creds(fmt.Sprintf("amt-%02d", i), fmt.Sprintf("mebx-%02d", i), secrets.Confirmed, i)
	}
	check := func(i, wantLen int) {
		h.t.Helper()
		d := h.device(uuid)
		if len(d.History) != wantLen {
			h.t.Fatalf("after put %d: len(History) = %d, want %d", i, len(d.History), wantLen)
		}
		want := secrets.Device{UUID: uuid, Current: set(i)}
		for k := range wantLen {
			want.History = append(want.History, set(i-1-k)) // newest first; the oldest are the ones dropped
		}
		if diff := diffDevice(d, want); diff != "" {
			h.t.Fatalf("after put %d: %s", i, diff)
		}
	}
	limit := -1
	for i := range puts {
		h.putDevice(uuid, set(i))
		n := len(h.device(uuid).History)
		switch {
		case limit < 0 && n == i:
			// still growing
		case limit < 0 && n == i-1:
			limit = n // the first put that dropped one: the limit is reached
		case limit < 0:
			h.t.Fatalf("after put %d: len(History) = %d, want %d (growing) or %d (limit reached, oldest dropped)", i, n, i, i-1)
		}
		if limit >= 0 {
			check(i, limit)
		} else {
			check(i, i)
		}
		if i == puts/2 {
			h.reopen() // the limit holds across a reopen, and history is read back from disk
		}
	}
	if limit < 0 {
		h.t.Fatalf("History still grew after %d puts: the history limit must be bounded", puts)
	}
	if limit < 4 {
		h.t.Fatalf("history limit = %d, the contract asks for at least 4", limit)
	}
	h.verify(func() { check(puts-1, limit) })
}

func testMarkDevice(h *harness) {
	const uuid = "mark"
	a := creds("a", "ma", secrets.Confirmed, 0)
	b := creds("b", "mb", secrets.Pending, 1)
	h.putDevice(uuid, a)
	h.putDevice(uuid, b)
	for _, st := range []secrets.State{secrets.Confirmed, secrets.Abandoned, secrets.Pending, secrets.Confirmed, secrets.Confirmed} {
		// The store stamps Updated with its clock; times read back may have lost the monotonic reading, so
		// compare wall clocks.
		before := time.Now().Round(0)
		h.mark(uuid, st)
		after := time.Now().Round(0)
		h.verify(func() {
			d := h.device(uuid)
			if d.Current.Updated.Before(before) || d.Current.Updated.After(after) {
				h.t.Errorf("MarkDevice(%s): Updated = %s, want between %s and %s", st, d.Current.Updated, before, after)
			}
			want := b
			want.State = st
			want.Updated = d.Current.Updated
			h.wantDevice(uuid, secrets.Device{UUID: uuid, Current: want, History: []secrets.Credentials{a}})
		})
	}
}

func testInvalidState(h *harness) {
	const uuid = "invalid-state"
	a := creds("a", "ma", secrets.Pending, 0)
	h.putDevice(uuid, a)
	for _, st := range []secrets.State{"", "Confirmed", "done"} {
		if err := h.s.MarkDevice(h.ctx, uuid, st); err == nil {
			h.t.Errorf("MarkDevice(%q): err = nil, want an error", st)
		}
		bad := creds("bad", "bad", st, 1)
		if err := h.s.PutDevice(h.ctx, uuid, bad); err == nil {
			h.t.Errorf("PutDevice with State %q: err = nil, want an error", st)
		}
		if err := h.s.PutDevice(h.ctx, "new-"+string(st), bad); err == nil {
			h.t.Errorf("PutDevice of a new device with State %q: err = nil, want an error", st)
		}
	}
	h.verify(func() {
		h.wantDevice(uuid, secrets.Device{UUID: uuid, Current: a})
		h.wantList([]string{uuid})
	})
}

func testCandidates(h *harness) {
	const uuid = "cand"
	step := func(what string, want ...string) {
		h.t.Helper()
		h.verify(func() {
			h.t.Helper()
			if got := h.device(uuid).Candidates(); !slices.Equal(got, want) {
				h.t.Errorf("%s: Candidates() = %q, want %q", what, got, want)
			}
		})
	}
	h.putDevice(uuid, creds("first", "", secrets.Pending, 0))
	step("first set pending", "first")
	h.mark(uuid, secrets.Confirmed)
	step("first set confirmed", "first")
	h.putDevice(uuid, creds("second", "", secrets.Pending, 1))
	step("second set pending: it or the confirmed first", "second", "first")
	h.mark(uuid, secrets.Confirmed)
	step("second set confirmed", "second")
	h.putDevice(uuid, creds("third", "", secrets.Pending, 2))
	h.mark(uuid, secrets.Abandoned)
	step("third set abandoned: back to the second", "second")
	h.putDevice(uuid, creds("fourth", "", secrets.Pending, 3))
	step("fourth pending after an abandoned third", "fourth", "second")
}

func testDelete(h *harness) {
	h.putDomain("d.example.com", secrets.DomainSecret{PFX: binaryPFX(512, 3), Password: "pfx"})
	h.putDomain("keep.example.com", secrets.DomainSecret{PFX: []byte("keep"), Password: "keep"})
	h.putProfile("p", secrets.ProfileSecret{AMTPassword: "a", MEBxPassword: "m"})
	h.putProfile("keep", secrets.ProfileSecret{AMTPassword: "k"})
	h.putDevice("dev", creds("a", "", secrets.Confirmed, 0))
	h.putDevice("dev", creds("b", "", secrets.Pending, 1))
	h.putDevice("keep", creds("k", "", secrets.Confirmed, 0))

	ctx := h.ctx
	for what, err := range map[string]error{
		"DeleteDomain":  h.s.DeleteDomain(ctx, "d.example.com"),
		"DeleteProfile": h.s.DeleteProfile(ctx, "p"),
		"DeleteDevice":  h.s.DeleteDevice(ctx, "dev"),
	} {
		if err != nil {
			h.t.Fatalf("%s: %v", what, err)
		}
	}
	h.verify(func() {
		h.wantAbsent("d.example.com", "p", "dev")
		h.wantNotFound("second DeleteDomain", h.s.DeleteDomain(ctx, "d.example.com"))
		h.wantNotFound("second DeleteProfile", h.s.DeleteProfile(ctx, "p"))
		h.wantNotFound("second DeleteDevice", h.s.DeleteDevice(ctx, "dev"))
		h.wantNotFound("MarkDevice of a deleted device", h.s.MarkDevice(ctx, "dev", secrets.Confirmed))
		h.wantList([]string{"keep"})
		h.wantDomain("keep.example.com", secrets.DomainSecret{PFX: []byte("keep"), Password: "keep"})
		h.wantProfile("keep", secrets.ProfileSecret{AMTPassword: "k"})
		h.wantDevice("keep", secrets.Device{UUID: "keep", Current: creds("k", "", secrets.Confirmed, 0)})
	})
	// A device put again after a delete starts with no history.
	c := creds("c", "", secrets.Pending, 2)
	h.putDevice("dev", c)
	h.verify(func() {
		h.wantDevice("dev", secrets.Device{UUID: "dev", Current: c})
		h.wantList([]string{"dev", "keep"})
	})
}

func testListDevicesSorted(h *harness) {
	h.wantList(nil)
	want := []string{
		"03000200-0400-0500-0006-000700080009", "4C4C4544-0035-3010-8030-B4C04F4E4B32",
		"4c4c4544-0035-3010-8030-b4c04f4e4b32", "a-1", "a-10", "a-2", "b", "B", "é", "z", "~",
	}
	slices.Sort(want) // byte order
	shuffled := slices.Clone(want)
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	for i, uuid := range shuffled {
		h.putDevice(uuid, creds(fmt.Sprint(i), "", secrets.Pending, i))
	}
	h.putDevice(shuffled[0], creds("again", "", secrets.Pending, 99)) // a second put lists the device once
	h.verify(func() { h.wantList(want) })
	if err := h.s.DeleteDevice(h.ctx, "b"); err != nil {
		h.t.Fatalf("DeleteDevice: %v", err)
	}
	want = slices.DeleteFunc(want, func(s string) bool { return s == "b" })
	h.verify(func() { h.wantList(want) })
}

func testCopies(h *harness) {
	pfx := binaryPFX(1024, 5)
	wantPFX := slices.Clone(pfx)
	h.putDomain("copy.example.com", secrets.DomainSecret{PFX: pfx, Password: "pw"})
	// The store must not keep the caller's slice: the caller may reuse or wipe it after the put.
	clear(pfx)
	wantDomain := secrets.DomainSecret{PFX: wantPFX, Password: "pw"}
	h.wantDomain("copy.example.com", wantDomain)

	got := h.domain("copy.example.com")
	clear(got.PFX)
	h.wantDomain("copy.example.com", wantDomain)

	a, b, c := creds("a", "ma", secrets.Confirmed, 0), creds("b", "mb", secrets.Confirmed, 1), creds("c", "mc", secrets.Pending, 2)
	h.putDevice("copy", a)
	h.putDevice("copy", b)
	h.putDevice("copy", c)
	wantDev := secrets.Device{UUID: "copy", Current: c, History: []secrets.Credentials{b, a}}
	d := h.device("copy")
	d.History[0].AMTPassword = "changed"
	d.History[1].State = secrets.Abandoned
	d.History = append(d.History[:1], creds("x", "", secrets.Pending, 9)) // writes into the returned backing array
	d.Current.AMTPassword = "changed"
	h.wantDevice("copy", wantDev)

	h.putDevice("copy2", a)
	l := h.list()
	l[0] = "mutated"
	_ = append(l[:1], "appended")
	h.wantList([]string{"copy", "copy2"})
}

func testConcurrent(h *harness) {
	// Enough to interleave every kind of call under -race; more only adds fsyncs, not coverage.
	const workers, iters = 6, 6
	ctx := h.ctx
	var wg sync.WaitGroup
	for g := range workers {
		wg.Go(func() {
			own := fmt.Sprintf("own-%d", g)
			for i := range iters {
				pw := fmt.Sprintf("g%d-i%02d", g, i)
				if err := h.s.PutDevice(ctx, own, creds(pw, "m"+pw, secrets.Pending, i)); err != nil {
					h.t.Errorf("worker %d: PutDevice(own): %v", g, err)
					return
				}
				if i%2 == 0 {
					if err := h.s.MarkDevice(ctx, own, secrets.Confirmed); err != nil {
						h.t.Errorf("worker %d: MarkDevice(own): %v", g, err)
						return
					}
				}
				if err := h.s.PutDevice(ctx, "shared", creds(pw, "", secrets.Pending, i)); err != nil {
					h.t.Errorf("worker %d: PutDevice(shared): %v", g, err)
					return
				}
				if err := h.s.MarkDevice(ctx, "shared", secrets.Confirmed); err != nil {
					h.t.Errorf("worker %d: MarkDevice(shared): %v", g, err)
					return
				}
				if err := h.s.PutDomain(ctx, fmt.Sprintf("d%d.example.com", g), secrets.DomainSecret{PFX: []byte(pw), Password: pw}); err != nil {
					h.t.Errorf("worker %d: PutDomain: %v", g, err)
					return
				}
				if err := h.s.PutProfile(ctx, "shared", secrets.ProfileSecret{AMTPassword: pw, MEBxPassword: pw}); err != nil {
					h.t.Errorf("worker %d: PutProfile: %v", g, err)
					return
				}
				if _, err := h.s.Device(ctx, "shared"); err != nil {
					h.t.Errorf("worker %d: Device(shared): %v", g, err)
					return
				}
				if _, err := h.s.ListDevices(ctx); err != nil {
					h.t.Errorf("worker %d: ListDevices: %v", g, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if h.t.Failed() {
		return
	}
	h.verify(func() {
		for g := range workers {
			own := fmt.Sprintf("own-%d", g)
			d := h.device(own)
			last := fmt.Sprintf("g%d-i%02d", g, iters-1)
			if d.Current.AMTPassword != last || d.Current.MEBxPassword != "m"+last || d.Current.State != secrets.Pending {
				h.t.Errorf("Device(%q).Current = %s, want the last put %q, pending", own, fmtCred(d.Current), last)
			}
			for k, c := range d.History {
				want := fmt.Sprintf("g%d-i%02d", g, iters-2-k)
				if c.AMTPassword != want {
					h.t.Errorf("Device(%q).History[%d] = %q, want %q", own, k, c.AMTPassword, want)
				}
			}
			dom := h.domain(fmt.Sprintf("d%d.example.com", g))
			if dom.Password != last || string(dom.PFX) != last {
				h.t.Errorf("Domain(d%d) = %q, want the last put %q", g, dom.Password, last)
			}
		}
		// The shared device saw puts from every worker: Current and History are distinct sets that were
		// written, and each worker's sets appear newest first (its puts were sequential).
		d := h.device("shared")
		if d.Current.State != secrets.Confirmed {
			h.t.Errorf("Device(shared).Current.State = %s, want confirmed (every put was followed by a mark)", d.Current.State)
		}
		seen := map[string]bool{}
		lastIter := map[int]int{}
		for _, c := range append([]secrets.Credentials{d.Current}, d.History...) {
			var g, i int
			if _, err := fmt.Sscanf(c.AMTPassword, "g%d-i%d", &g, &i); err != nil || g < 0 || g >= workers || i < 0 || i >= iters {
				h.t.Errorf("Device(shared) holds %q, which no worker wrote", c.AMTPassword)
				continue
			}
			if seen[c.AMTPassword] {
				h.t.Errorf("Device(shared) holds %q twice", c.AMTPassword)
			}
			seen[c.AMTPassword] = true
			if prev, ok := lastIter[g]; ok && i >= prev {
				h.t.Errorf("Device(shared): worker %d's set %d comes after its set %d; want newest first", g, i, prev)
			}
			lastIter[g] = i
		}
		if len(d.History) < 4 {
			h.t.Errorf("Device(shared) has %d history entries after %d puts, want at least 4", len(d.History), workers*iters)
		}
		p := h.profile("shared")
		if p.AMTPassword != p.MEBxPassword || !strings.HasPrefix(p.AMTPassword, "g") {
			h.t.Errorf("Profile(shared) = %+q: a torn write", p)
		}
		wantList := []string{"shared"}
		for g := range workers {
			wantList = append(wantList, fmt.Sprintf("own-%d", g))
		}
		slices.Sort(wantList)
		h.wantList(wantList)
	})
}

func testCancelled(h *harness) {
	dom := secrets.DomainSecret{PFX: binaryPFX(300, 9), Password: "dom"}
	prof := secrets.ProfileSecret{AMTPassword: "amt", MEBxPassword: "mebx"}
	dev := secrets.Device{UUID: "dev", Current: creds("b", "mb", secrets.Pending, 1), History: []secrets.Credentials{creds("a", "ma", secrets.Confirmed, 0)}}
	h.putDomain("dom", dom)
	h.putProfile("prof", prof)
	h.putDevice("dev", dev.History[0])
	h.putDevice("dev", dev.Current)

	ctx, cancel := context.WithCancel(h.ctx)
	cancel()
	other := secrets.DomainSecret{PFX: []byte("other"), Password: "other"}
	otherCreds := creds("z", "mz", secrets.Pending, 5)
	calls := []struct {
		what string
		call func() error
	}{
		{"Domain", func() error { _, err := h.s.Domain(ctx, "dom"); return err }},
		{"Profile", func() error { _, err := h.s.Profile(ctx, "prof"); return err }},
		{"Device", func() error { _, err := h.s.Device(ctx, "dev"); return err }},
		{"ListDevices", func() error { _, err := h.s.ListDevices(ctx); return err }},
		{"PutDomain (new)", func() error { return h.s.PutDomain(ctx, "new", other) }},
		{"PutDomain (overwrite)", func() error { return h.s.PutDomain(ctx, "dom", other) }},
		{"DeleteDomain", func() error { return h.s.DeleteDomain(ctx, "dom") }},
		{"PutProfile (new)", func() error { return h.s.PutProfile(ctx, "new", prof) }},
		{"PutProfile (overwrite)", func() error { return h.s.PutProfile(ctx, "prof", secrets.ProfileSecret{}) }},
		{"DeleteProfile", func() error { return h.s.DeleteProfile(ctx, "prof") }},
		{"PutDevice (new)", func() error { return h.s.PutDevice(ctx, "new", otherCreds) }},
		{"PutDevice (existing)", func() error { return h.s.PutDevice(ctx, "dev", otherCreds) }},
		{"MarkDevice", func() error { return h.s.MarkDevice(ctx, "dev", secrets.Confirmed) }},
		{"DeleteDevice", func() error { return h.s.DeleteDevice(ctx, "dev") }},
	}
	for _, c := range calls {
		if err := c.call(); !errors.Is(err, context.Canceled) {
			h.t.Errorf("%s with a cancelled context: err = %v, want one wrapping context.Canceled", c.what, err)
		}
	}
	h.verify(func() {
		h.wantDomain("dom", dom)
		h.wantProfile("prof", prof)
		h.wantDevice("dev", dev)
		h.wantAbsent("new", "new", "new")
		h.wantList([]string{"dev"})
	})
}

func testDurability(h *harness) {
	if h.reopenFn == nil {
		h.t.Skip("the store is not persistent (reopen == nil)")
	}
	pw := passwords()
	doms := map[string]secrets.DomainSecret{}
	profs := map[string]secrets.ProfileSecret{}
	devs := map[string]secrets.Device{}
	for round := range 3 {
		for i, p := range pw {
			name := fmt.Sprintf("r%d-%d", round, i)
			doms[name] = secrets.DomainSecret{PFX: binaryPFX(1000+i*round, uint64(round*100+i)), Password: p}
			h.putDomain(name, doms[name])
			profs[name] = secrets.ProfileSecret{AMTPassword: p, MEBxPassword: name}
			h.putProfile(name, profs[name])

			// Every round adds a set to the same devices, so history is built across reopens.
			uuid := fmt.Sprintf("dev-%d", i)
			c := creds(p, name, secrets.Pending, round)
			d := devs[uuid]
			if round > 0 {
				d.History = append([]secrets.Credentials{d.Current}, d.History...)
			}
			d.UUID, d.Current = uuid, c
			h.putDevice(uuid, c)
			if i%2 == 0 {
				h.mark(uuid, secrets.Confirmed)
				d.Current.State = secrets.Confirmed
				d.Current.Updated = h.device(uuid).Current.Updated
			}
			devs[uuid] = d
		}
		// Deletes are durable too.
		gone := fmt.Sprintf("r%d-0", round)
		for what, err := range map[string]error{
			"DeleteDomain":  h.s.DeleteDomain(h.ctx, gone),
			"DeleteProfile": h.s.DeleteProfile(h.ctx, gone),
		} {
			if err != nil {
				h.t.Fatalf("%s(%q): %v", what, gone, err)
			}
		}
		delete(doms, gone)
		delete(profs, gone)
		if round == 2 {
			if err := h.s.DeleteDevice(h.ctx, "dev-1"); err != nil {
				h.t.Fatalf("DeleteDevice: %v", err)
			}
			delete(devs, "dev-1")
		}
		h.reopen()
		for name, d := range doms {
			h.wantDomain(name, d)
		}
		for name, p := range profs {
			h.wantProfile(name, p)
		}
		for uuid, d := range devs {
			h.wantDevice(uuid, d)
		}
		h.wantAbsent(gone, gone, "")
		if round == 2 {
			h.wantAbsent("", "", "dev-1")
		}
		want := make([]string, 0, len(devs))
		for uuid := range devs {
			want = append(want, uuid)
		}
		slices.Sort(want)
		h.wantList(want)
	}
}
