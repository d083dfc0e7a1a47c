// This file is the field smoke test and load generator behind `amtedge simulate`: N simulated devices, each with
// its own simulated rpc-go, run against a server with bounded concurrency, and the outcome is summarised per device
// and in aggregate (success count, rate, server turnaround percentiles).

package amtsim

import (
	"context"
	"crypto/sha1"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

// DefaultConcurrency is used when SimulateConfig.Concurrency is not positive.
const DefaultConcurrency = 10

// SimulateConfig describes one simulation run.
type SimulateConfig struct {
	URL         string
	TLS         *tls.Config
	Profile     string // activate --profile
	Devices     int    // how many devices to run
	Concurrency int    // at most this many sessions at once; default DefaultConcurrency
	// Device makes device i's configuration; nil gives a pre-provisioned device with UUID DeviceUUID("amtsim", i)
	// and the firmware's defaults for everything else.
	Device func(i int) DeviceConfig
	// Agent customises device i's agent. nil gives `activate --profile <Profile>` as rpc-go 2.x sends it
	// (progressSupported on). Empty URL, TLS, Command and Profile in the returned config are filled from the
	// simulation's; everything else is used as returned (so Progress false there means a v3-style agent).
	Agent func(i int, dev *Device) AgentConfig
}

// Summary is the outcome of a simulation.
type Summary struct {
	Results   []DeviceResult // by device index
	Activated int            // runs the server ended with success (for deactivate/maintenance runs too)
	Failed    int            // everything else: error terminal, broken-off runs, devices never started
	Wall      time.Duration
	PerSecond float64 // successful runs per second of wall time
	// Turnaround is the server's think time between our response and its next message, over all exchanges.
	Turnaround struct{ P50, P99, Max time.Duration }
}

// DeviceResult is one device's outcome. The Device itself is not kept: at 10,000 devices its state would
// dominate memory, and the mode after the run is what a summary needs.
type DeviceResult struct {
	Index     int
	UUID      string
	Result    Result
	ModeAfter Mode
}

// Simulate runs cfg.Devices sessions, at most cfg.Concurrency at a time, and waits for all of them. A cancelled
// ctx stops starting new sessions and aborts running ones; devices never started are reported failed with the
// context's error.
func Simulate(ctx context.Context, cfg SimulateConfig) Summary {
	conc := cfg.Concurrency
	if conc <= 0 {
		conc = DefaultConcurrency
	}
	if cfg.Devices > 0 && conc > cfg.Devices {
		conc = cfg.Devices
	}
	n := max(cfg.Devices, 0)
	results := make([]DeviceResult, n)

	start := time.Now()
	sem := make(chan struct{}, conc) // a token per running session; goroutines exist only for running sessions
	var wg sync.WaitGroup
	for i := range n {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			for j := i; j < n; j++ {
				results[j] = DeviceResult{Index: j, UUID: cfg.deviceConfig(j).UUID,
					Result: Result{Err: fmt.Errorf("not started: %w", context.Cause(ctx))}}
			}
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			results[i] = runOne(ctx, cfg, i)
		}()
	}
	wg.Wait()
	return summarize(results, time.Since(start))
}

// runOne creates device i, runs its agent and keeps only the result.
func runOne(ctx context.Context, cfg SimulateConfig, i int) DeviceResult {
	dc := cfg.deviceConfig(i)
	dr := DeviceResult{Index: i, UUID: dc.UUID}
	dev, err := NewDevice(dc)
	if err != nil {
		dr.Result.Err = fmt.Errorf("create device %d: %w", i, err)
		return dr
	}
	dr.UUID = dev.Config().UUID
	ac := AgentConfig{Progress: true}
	if cfg.Agent != nil {
		ac = cfg.Agent(i, dev)
	}
	if ac.URL == "" {
		ac.URL = cfg.URL
	}
	if ac.TLS == nil {
		ac.TLS = cfg.TLS
	}
	if ac.Command == "" {
		ac.Command = "activate"
	}
	if ac.Profile == "" {
		ac.Profile = cfg.Profile
	}
	dr.Result = RunAgent(ctx, ac, dev)
	dr.ModeAfter = dev.Snapshot().Mode
	return dr
}

func (cfg SimulateConfig) deviceConfig(i int) DeviceConfig {
	if cfg.Device != nil {
		return cfg.Device(i)
	}
	return DeviceConfig{UUID: DeviceUUID("amtsim", i)}
}

// summarize counts outcomes and computes turnaround percentiles (nearest rank).
func summarize(results []DeviceResult, wall time.Duration) Summary {
	s := Summary{Results: results, Wall: wall}
	total := 0
	for _, r := range results {
		total += len(r.Result.Turnarounds)
	}
	all := make([]time.Duration, 0, total)
	for _, r := range results {
		if r.Result.Succeeded() {
			s.Activated++
		} else {
			s.Failed++
		}
		all = append(all, r.Result.Turnarounds...)
	}
	if wall > 0 {
		s.PerSecond = float64(s.Activated) / wall.Seconds()
	}
	if len(all) > 0 {
		slices.Sort(all)
		s.Turnaround.P50 = percentile(all, 50)
		s.Turnaround.P99 = percentile(all, 99)
		s.Turnaround.Max = all[len(all)-1]
	}
	return s
}

// percentile returns the nearest-rank p-th percentile of sorted, non-empty d.
func percentile(d []time.Duration, p int) time.Duration {
	rank := (p*len(d) + 99) / 100 // ceil(p/100 * n)
	return d[max(rank, 1)-1]
}

// WriteTable writes one aligned row per device and then the summary lines.
// Write errors are ignored: the table goes to a terminal or a log, and a short write there has no remedy here.
func (s Summary) WriteTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tUUID\tRESULT\tSTATUS\tEXCHANGES\tDURATION")
	for _, r := range s.Results {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%s\n", r.Index, orDash(r.UUID), resultWord(r.Result),
			oneLine(resultStatus(r.Result)), r.Result.Exchanges, r.Result.Duration.Round(time.Millisecond))
	}
	tw.Flush()
	fmt.Fprintf(w, "devices: %d  succeeded: %d  failed: %d\nwall: %s  rate: %.1f/s\nserver turnaround: p50 %s  p99 %s  max %s\n",
		len(s.Results), s.Activated, s.Failed, s.Wall.Round(time.Millisecond), s.PerSecond,
		roundDur(s.Turnaround.P50), roundDur(s.Turnaround.P99), roundDur(s.Turnaround.Max))
}

func resultWord(r Result) string {
	switch {
	case r.Err != nil && r.Method == "":
		if errors.Is(r.Err, ErrClosedUnexpectedly) {
			return "closed"
		}
		return "broken"
	case r.Method != "":
		return r.Method
	default:
		return "-"
	}
}

func resultStatus(r Result) string {
	if r.Err != nil {
		return r.Err.Error()
	}
	return r.Status
}

// oneLine keeps a status from breaking the table: tabs and newlines become spaces, and it is capped in length.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 100 {
		s = s[:97] + "..."
	}
	return orDash(s)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// roundDur keeps sub-millisecond turnarounds readable without printing nanoseconds.
func roundDur(d time.Duration) time.Duration {
	if d >= time.Millisecond {
		return d.Round(100 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}

// DeviceUUID derives device i's UUID from seed: a name-based (version 5 layout) lowercase GUID, so the same seed
// gives the same fleet on every run and different seeds give disjoint fleets.
func DeviceUUID(seed string, i int) string {
	h := sha1.New()
	io.WriteString(h, seed)
	var n [9]byte
	n[0] = 0 // separator so ("a",12) and ("a1",2) differ
	binary.BigEndian.PutUint64(n[1:], uint64(i))
	h.Write(n[:])
	var u [16]byte
	copy(u[:], h.Sum(nil))
	u[6] = u[6]&0x0f | 0x50 // version 5
	u[8] = u[8]&0x3f | 0x80 // RFC 4122 variant
	x := hex.EncodeToString(u[:])
	return x[0:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:32]
}
