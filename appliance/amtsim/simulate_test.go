package amtsim

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func TestSimulate(t *testing.T) {
	const devices, concurrency = 20, 5
	var running, peak atomic.Int32
	f := newFakeRPS(t, func(t testing.TB, conn *websocket.Conn, first []byte) {
		n := running.Add(1)
		defer running.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		pl := checkFirstFrame(t, first, "activate --profile ccm", true)
		uuid, host := str(t, pl["uuid"]), str(t, pl["hostname"])
		relayGeneralSettings(t, conn, uuid)
		// Every fourth device is refused, so the summary has both kinds.
		if strings.HasPrefix(host, "fail-") {
			send(t, conn, serverEnvelope("error", `{"Status":"Device `+uuid+` activation failed."}`, ""))
			return
		}
		send(t, conn, serverEnvelope("success", `{"Status":"Client control mode."}`, ""))
		// Like RPS, leave closing to the client.
		conn.ReadMessage()
	})

	sum := Simulate(context.Background(), SimulateConfig{
		URL: f.url, TLS: f.tls, Profile: "ccm", Devices: devices, Concurrency: concurrency,
		Device: func(i int) DeviceConfig {
			dc := testDeviceConfig(i)
			dc.UUID = DeviceUUID("simulate-test", i)
			if i%4 == 3 {
				dc.Hostname = fmt.Sprintf("fail-%d", i)
			}
			return dc
		},
	})

	if len(sum.Results) != devices || sum.Activated != 15 || sum.Failed != 5 {
		t.Fatalf("results %d activated %d failed %d", len(sum.Results), sum.Activated, sum.Failed)
	}
	if p := peak.Load(); p > concurrency || p < 1 {
		t.Errorf("peak concurrent sessions %d, limit %d", p, concurrency)
	}
	for i, r := range sum.Results {
		if r.Index != i || r.UUID != DeviceUUID("simulate-test", i) || r.Result.Exchanges != 1 || len(r.Result.Turnarounds) != 1 {
			t.Errorf("result %d = %+v", i, r)
		}
		if want := map[bool]string{true: "error", false: "success"}[i%4 == 3]; r.Result.Method != want || r.Result.Err != nil {
			t.Errorf("device %d: method %q err %v, want %s", i, r.Result.Method, r.Result.Err, want)
		}
	}
	if sum.Wall <= 0 || sum.PerSecond <= 0 || sum.Turnaround.P50 <= 0 || sum.Turnaround.P50 > sum.Turnaround.P99 || sum.Turnaround.P99 > sum.Turnaround.Max {
		t.Errorf("wall %v rate %v turnaround %+v", sum.Wall, sum.PerSecond, sum.Turnaround)
	}

	var buf bytes.Buffer
	sum.WriteTable(&buf)
	out := buf.String()
	rows := regexp.MustCompile(`(?m)^\d+ +[0-9a-f-]{36} +(success|error) `).FindAllString(out, -1)
	if len(rows) != devices {
		t.Errorf("table has %d device rows, want %d:\n%s", len(rows), devices, out)
	}
	if !strings.Contains(out, "devices: 20  succeeded: 15  failed: 5") || !strings.Contains(out, "server turnaround: p50 ") {
		t.Errorf("summary lines missing:\n%s", out)
	}
	// tabwriter alignment: every device row starts its UUID in the same column as the header.
	lines := strings.Split(out, "\n")
	col := strings.Index(lines[0], "UUID")
	for i, l := range lines[1 : devices+1] {
		if len(l) < col+36 || l[col:col+36] != DeviceUUID("simulate-test", i) {
			t.Errorf("row not aligned with header (UUID at column %d): %q", col, l)
		}
	}
}

// A cancelled context stops new sessions; the rest are reported, not lost.
func TestSimulateCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	sum := Simulate(ctx, SimulateConfig{URL: "wss://127.0.0.1:1/activate", Devices: 3, Concurrency: 1})
	if len(sum.Results) != 3 || sum.Failed != 3 || sum.Activated != 0 {
		t.Fatalf("summary = %+v", sum)
	}
	for i, r := range sum.Results {
		if r.Result.Err == nil || r.UUID != DeviceUUID("amtsim", i) {
			t.Errorf("result %d = %+v", i, r)
		}
	}
	var buf bytes.Buffer
	sum.WriteTable(&buf)
	if !strings.Contains(buf.String(), "broken") {
		t.Errorf("table:\n%s", buf.String())
	}
}

// The agent hook can turn the simulation into a deactivation run.
func TestSimulateAgentHook(t *testing.T) {
	f := newFakeRPS(t, func(t testing.TB, conn *websocket.Conn, first []byte) {
		var env Envelope
		json.Unmarshal(first, &env)
		if env.Method != "deactivate --password Pw -f" {
			t.Errorf("method %q", env.Method)
		}
		raw, _ := base64.StdEncoding.DecodeString(env.Payload)
		if bytes.Contains(raw, []byte("progressSupported")) {
			t.Errorf("hook did not ask for progress, payload has it: %s", raw)
		}
		send(t, conn, serverEnvelope("success", `{"Status":"Deactivated"}`, ""))
	})
	sum := Simulate(context.Background(), SimulateConfig{
		URL: f.url, TLS: f.tls, Devices: 2,
		Agent: func(i int, dev *Device) AgentConfig {
			return AgentConfig{Command: "deactivate", Password: "Pw", Force: true}
		},
	})
	if sum.Activated != 2 {
		t.Fatalf("summary = %+v", sum)
	}
}

func TestDeviceUUID(t *testing.T) {
	re := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	seen := map[string]bool{}
	for i := range 1000 {
		u := DeviceUUID("seed", i)
		if !re.MatchString(u) {
			t.Fatalf("DeviceUUID(seed, %d) = %q", i, u)
		}
		if seen[u] {
			t.Fatalf("duplicate %q at %d", u, i)
		}
		seen[u] = true
		if DeviceUUID("seed", i) != u {
			t.Fatalf("not deterministic at %d", i)
		}
	}
	if DeviceUUID("a", 1) == DeviceUUID("b", 1) {
		t.Error("seed ignored")
	}
}

func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	if p := percentile(d, 50); p != 50*time.Millisecond {
		t.Errorf("p50 = %v", p)
	}
	if p := percentile(d, 99); p != 99*time.Millisecond {
		t.Errorf("p99 = %v", p)
	}
	if p := percentile(d[:1], 99); p != time.Millisecond {
		t.Errorf("p99 of one = %v", p)
	}
}

// BenchmarkSimulate runs b.N devices (one relayed exchange each) through the agent and a minimal server, to see
// the client side's own cost per device: the figure to subtract when load-testing the appliance.
func BenchmarkSimulate(b *testing.B) {
	f := newFakeRPS(b, func(t testing.TB, conn *websocket.Conn, first []byte) {
		var env Envelope
		json.Unmarshal(first, &env)
		raw, _ := base64.StdEncoding.DecodeString(env.Payload)
		var p Payload
		json.Unmarshal(raw, &p)
		send(t, conn, serverEnvelope("wsman", "", base64.StdEncoding.EncodeToString(generalSettingsGet(p.UUID))))
		if _, _, err := conn.ReadMessage(); err != nil {
			t.Errorf("read response: %v", err)
			return
		}
		send(t, conn, serverEnvelope("success", `{"Status":"Client control mode."}`, ""))
	})
	b.ReportAllocs()
	b.ResetTimer()
	sum := Simulate(context.Background(), SimulateConfig{URL: f.url, TLS: f.tls, Profile: "ccm", Devices: b.N, Concurrency: 64})
	b.StopTimer()
	if sum.Activated != b.N {
		b.Fatalf("activated %d of %d", sum.Activated, b.N)
	}
	b.ReportMetric(float64(sum.Turnaround.P99.Microseconds()), "p99-µs")
	b.ReportMetric(sum.PerSecond, "devices/s")
}
