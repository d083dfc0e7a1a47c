// Package inventory holds what the box knows of devices: one activation record per agent session, with the
// result and duration of every step, and each device's latest state. The flows write records; the status views,
// the CLI and the event writers read them.
//
// It never holds a secret: records carry step names, results and technician-facing details only.
package inventory

import (
	"sort"
	"strconv"
	"sync"
	"time"
)

// Step results.
const (
	StepOK      = "ok"
	StepFailed  = "failed"
	StepSkipped = "skipped"
)

// Step is one thing a flow did: read the realm, inject the chain, AdminSetup, set the MEBx password, …
type Step struct {
	Name     string        `json:"name"`
	Result   string        `json:"result"`
	Detail   string        `json:"detail,omitempty"`
	Duration time.Duration `json:"duration"`
}

// Record is one agent session's work on one device.
type Record struct {
	ID           string    `json:"id"`
	UUID         string    `json:"uuid"`
	Verb         string    `json:"verb"` // activate, deactivate, maintenance
	Task         string    `json:"task,omitempty"`
	Profile      string    `json:"profile,omitempty"`
	Domain       string    `json:"domain,omitempty"`
	Remote       string    `json:"remote,omitempty"`
	Hostname     string    `json:"hostname,omitempty"`
	DNSSuffix    string    `json:"dnsSuffix,omitempty"`
	FirmwareVer  string    `json:"firmwareVersion,omitempty"`
	AgentVersion string    `json:"agentVersion,omitempty"`
	ModeBefore   int       `json:"modeBefore"`
	ModeAfter    int       `json:"modeAfter"`
	Started      time.Time `json:"started"`
	Ended        time.Time `json:"ended"`
	Success      bool      `json:"success"`
	Status       string    `json:"status"` // the Status text sent to the agent
	Steps        []Step    `json:"steps"`
	Exchanges    int       `json:"exchanges"`
}

// ModeName names an AMT control mode as the records hold it (ModeBefore, ModeAfter): 0 pre-provisioning
// ("none"), 1 client control ("CCM"), 2 admin control ("ACM"); anything else as its number.
func ModeName(m int) string {
	switch m {
	case 0:
		return "none"
	case 1:
		return "CCM"
	case 2:
		return "ACM"
	}
	return strconv.Itoa(m)
}

// Duration is how long the session's work took.
func (r Record) Duration() time.Duration { return r.Ended.Sub(r.Started) }

// Inventory keeps the most recent records in memory, bounded per device and in number of devices: the agent
// endpoint is unauthenticated, so a client cycling random UUIDs must not grow it without end.
type Inventory struct {
	mu         sync.Mutex
	perDevice  int
	maxDevices int
	byUUID     map[string][]Record // newest last
}

// DefaultMaxDevices bounds the devices an inventory keeps unless told otherwise.
const DefaultMaxDevices = 20000

// New makes an inventory that keeps at most perDevice records for each device (default 20) and at most
// DefaultMaxDevices devices, dropping the device whose newest record is oldest.
func New(perDevice int) *Inventory {
	return NewBounded(perDevice, DefaultMaxDevices)
}

// NewBounded is New with a bound on devices (default DefaultMaxDevices when not positive).
func NewBounded(perDevice, maxDevices int) *Inventory {
	if perDevice <= 0 {
		perDevice = 20
	}
	if maxDevices <= 0 {
		maxDevices = DefaultMaxDevices
	}
	return &Inventory{perDevice: perDevice, maxDevices: maxDevices, byUUID: map[string][]Record{}}
}

// Add stores a finished record.
func (inv *Inventory) Add(r Record) {
	r.Steps = append([]Step(nil), r.Steps...)
	inv.mu.Lock()
	defer inv.mu.Unlock()
	if _, known := inv.byUUID[r.UUID]; !known && len(inv.byUUID) >= inv.maxDevices {
		inv.evictOldest()
	}
	list := append(inv.byUUID[r.UUID], r)
	if len(list) > inv.perDevice {
		list = append([]Record(nil), list[len(list)-inv.perDevice:]...)
	}
	inv.byUUID[r.UUID] = list
}

// evictOldest drops the device whose newest record ended first. Linear, but it runs only once the inventory is
// full, at most once per new device.
func (inv *Inventory) evictOldest() {
	var oldest string
	var at time.Time
	for uuid, list := range inv.byUUID {
		if end := list[len(list)-1].Ended; oldest == "" || end.Before(at) {
			oldest, at = uuid, end
		}
	}
	delete(inv.byUUID, oldest)
}

// Device returns a device's records, newest first.
func (inv *Inventory) Device(uuid string) []Record {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	list := inv.byUUID[uuid]
	out := make([]Record, len(list))
	for i, r := range list {
		r.Steps = append([]Step(nil), r.Steps...)
		out[len(list)-1-i] = r
	}
	return out
}

// Latest returns each device's newest record, newest first.
func (inv *Inventory) Latest() []Record {
	inv.mu.Lock()
	out := make([]Record, 0, len(inv.byUUID))
	for _, list := range inv.byUUID {
		r := list[len(list)-1]
		r.Steps = append([]Step(nil), r.Steps...)
		out = append(out, r)
	}
	inv.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Ended.After(out[j].Ended) })
	return out
}
