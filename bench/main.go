// Command bench is `make bench`: it runs the appliance (`amtedge serve`) as its own process and drives it with
// simulated rpc-go agents and AMT devices from this one, then prints activations per second, the server's
// turnaround per WS-Management exchange, the server's CPU time per activation (read from /proc, so the
// simulator's own work is not counted) and the server's resident memory with 1,000 and 10,000 concurrent sessions.
//
// It is a benchmark, not a test: it asserts nothing and prints figures to compare with the targets.
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/amtedge/amtedge/appliance/amtsim"
)

func main() {
	bin := flag.String("amtedge", "bin/amtedge", "the amtedge binary to measure")
	ccm := flag.Int("ccm", 2000, "CCM activations for throughput and CPU")
	acm := flag.Int("acm", 1000, "ACM activations for throughput and CPU")
	concurrency := flag.Int("concurrency", 50, "agents at once in the throughput runs")
	concurrent := flag.String("concurrent", "1000,10000", "concurrent-session counts for turnaround and memory")
	flag.Parse()
	if err := run(*bin, *ccm, *acm, *concurrency, *concurrent); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type server struct {
	cmd   *exec.Cmd
	url   string
	tls   *tls.Config
	roots []string
	state string
}

func run(bin string, ccm, acm, concurrency int, concurrent string) error {
	srv, err := startServer(bin)
	if err != nil {
		return err
	}
	defer srv.stop()
	host, _ := os.Hostname()
	fmt.Printf("machine: %s, %d cores (%s), %s; server: %s\n\n", host, runtime.NumCPU(), cpuModel(), runtime.Version(), bin)

	fmt.Printf("%-34s %10s %10s %10s %10s %14s\n", "run", "activ./s", "p50", "p99", "max", "server CPU/act")
	// One agent at a time: the turnaround is the server's own work per exchange, without queueing for the CPU.
	if err := throughput(srv, "CCM, one at a time", "ccm", 200, 1); err != nil {
		return err
	}
	if err := throughput(srv, "ACM, one at a time", "acm", 200, 1); err != nil {
		return err
	}
	if err := throughput(srv, "CCM", "ccm", ccm, concurrency); err != nil {
		return err
	}
	if err := throughput(srv, "ACM", "acm", acm, concurrency); err != nil {
		return err
	}
	for _, f := range strings.Split(concurrent, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return fmt.Errorf("-concurrent: %w", err)
		}
		if n <= 1000 {
			if err := throughput(srv, fmt.Sprintf("CCM, %d concurrent", n), "ccm", n, n); err != nil {
				return err
			}
		}
	}
	fmt.Println()
	for _, f := range strings.Split(concurrent, ",") {
		n, _ := strconv.Atoi(strings.TrimSpace(f))
		if err := idleSessions(srv, n); err != nil {
			return err
		}
	}
	return nil
}

// throughput activates n devices, concurrency at a time, and reports rate, turnaround and server CPU.
func throughput(srv *server, label, profile string, n, concurrency int) error {
	cpu0, err := cpuTime(srv.cmd.Process.Pid)
	if err != nil {
		return err
	}
	sum := amtsim.Simulate(context.Background(), amtsim.SimulateConfig{
		URL: srv.url, TLS: srv.tls, Profile: profile, Devices: n, Concurrency: concurrency,
		Device: func(i int) amtsim.DeviceConfig {
			return amtsim.DeviceConfig{UUID: amtsim.DeviceUUID(label, i), DHCPDNSSuffix: "demo.amtedge.test", TrustedRootHashes: srv.roots}
		},
	})
	cpu1, err := cpuTime(srv.cmd.Process.Pid)
	if err != nil {
		return err
	}
	if sum.Failed > 0 {
		for _, r := range sum.Results {
			if !r.Result.Succeeded() {
				return fmt.Errorf("%s: %d of %d failed, e.g. %s %q %v", label, sum.Failed, n, r.Result.Method, r.Result.Status, r.Result.Err)
			}
		}
	}
	perAct := (cpu1 - cpu0) / time.Duration(n)
	fmt.Printf("%-34s %10.1f %10s %10s %10s %14s\n", label, sum.PerSecond, round(sum.Turnaround.P50), round(sum.Turnaround.P99),
		round(sum.Turnaround.Max), fmt.Sprintf("%.2f ms", float64(perAct)/float64(time.Millisecond)))
	return nil
}

// idleSessions opens n sessions whose devices do not answer their first WS-Management request for a while, so
// the server holds n live sessions waiting for AMT, and reads the server's memory then.
func idleSessions(srv *server, n int) error {
	base, _, err := memory(srv.cmd.Process.Pid)
	if err != nil {
		return err
	}
	var waiting atomic.Int64
	hold := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan amtsim.Summary, 1)
	go func() {
		done <- amtsim.Simulate(ctx, amtsim.SimulateConfig{
			URL: srv.url, TLS: srv.tls, Profile: "ccm", Devices: n, Concurrency: n,
			Device: func(i int) amtsim.DeviceConfig {
				return amtsim.DeviceConfig{UUID: amtsim.DeviceUUID(fmt.Sprintf("idle-%d", n), i), DHCPDNSSuffix: "demo.amtedge.test",
					Fault: func(c amtsim.Call) amtsim.Fault {
						if c.N == 1 {
							waiting.Add(1)
							<-hold // the firmware is slow: the session sits waiting for AMT
						}
						return amtsim.Fault{}
					}}
			},
			Agent: func(i int, dev *amtsim.Device) amtsim.AgentConfig {
				return amtsim.AgentConfig{FirstByteTimeout: 10 * time.Minute, Timeout: 15 * time.Minute, Progress: true}
			},
		})
	}()
	deadline := time.Now().Add(5 * time.Minute)
	for waiting.Load() < int64(n) && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if got := waiting.Load(); got < int64(n) {
		close(hold)
		return fmt.Errorf("only %d of %d sessions reached the waiting state", got, n)
	}
	time.Sleep(time.Second) // let the server settle with all sessions waiting
	rss, hwm, err := memory(srv.cmd.Process.Pid)
	close(hold)
	<-done
	if err != nil {
		return err
	}
	perSession := float64(rss-base) / float64(n)
	fmt.Printf("%6d concurrent sessions waiting for AMT: server RSS %6.1f MiB (baseline %5.1f MiB), %5.1f KiB per session, peak RSS %6.1f MiB\n",
		n, mib(rss), mib(base), perSession/1024, mib(hwm))
	return nil
}

func startServer(bin string) (*server, error) {
	state, err := os.MkdirTemp("", "amtedge-bench-")
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cfg := fmt.Sprintf(`stateDir: %s
demo: {enabled: true}
agent: {listen: "127.0.0.1:%d", sessionTimeout: 30m, maxSessions: 20000}
wsman: {requestTimeout: 10m}
custody: {seal: software, standalone: true}
log: {level: warn}
`, state, port)
	cfgPath := filepath.Join(state, "amtedge.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "serve", "--config", cfgPath)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	logFile, err := os.Create(filepath.Join(state, "serve.log"))
	if err != nil {
		return nil, err
	}
	cmd.Stderr = logFile
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	srv := &server{cmd: cmd, state: state, url: fmt.Sprintf("wss://127.0.0.1:%d/activate", port)}
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		ok := false
		for sc.Scan() {
			if !ok && strings.Contains(sc.Text(), "serving agents") {
				ok = true
				ready <- true
			}
		}
		if !ok {
			ready <- false
		}
	}()
	select {
	case ok := <-ready:
		if !ok {
			srv.stop()
			return nil, fmt.Errorf("the appliance did not start; see %s", logFile.Name())
		}
	case <-time.After(30 * time.Second):
		srv.stop()
		return nil, fmt.Errorf("the appliance did not start within 30 s")
	}
	pemData, err := os.ReadFile(filepath.Join(state, "tls", "cert.pem"))
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemData)
	srv.tls = &tls.Config{RootCAs: pool}
	root, err := os.ReadFile(filepath.Join(state, "demo", "root.sha256"))
	if err != nil {
		return nil, err
	}
	srv.roots = []string{strings.TrimSpace(string(root))}
	return srv, nil
}

func (s *server) stop() {
	_ = s.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(40 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
	}
	os.RemoveAll(s.state)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// cpuTime is the process's user+system CPU time from /proc/<pid>/stat (clock ticks of 10 ms).
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the parenthesised command name; utime and stime are fields 14 and 15.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond, nil
}

// memory returns the process's resident set and its peak, in bytes.
func memory(pid int) (rss, hwm int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			rss = kb * 1024
		case "VmHWM:":
			hwm = kb * 1024
		}
	}
	return rss, hwm, nil
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

func round(d time.Duration) string {
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond).String()
	default:
		return d.Round(time.Microsecond).String()
	}
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
