// Package dhcptest builds, for tests, a LAN segment that touches nothing of the host's network: two network
// namespaces joined by a veth pair, a real dnsmasq (Debian dnsmasq-base) serving DHCP in the server namespace,
// and the client end where a probe runs (dhcpprobe.Options.NetNS). Everything it starts is stopped by PID, and
// every namespace it creates is deleted, when the test ends. Tests only: it never runs in the appliance.
package dhcptest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/amtedge/amtedge/appliance/dhcpprobe"
)

// Segment is one isolated segment: ServerNS holds ServerIface (ServerIP/24), ClientNS holds ClientIface
// (ClientIP/24).
type Segment struct {
	ServerNS, ClientNS       string // namespace names (ip netns); paths are /run/netns/<name>
	ServerIface, ClientIface string
	ServerIP, ClientIP       netip.Addr
}

// ClientNSPath is the client namespace's path, for dhcpprobe.Options.NetNS.
func (s *Segment) ClientNSPath() string { return "/run/netns/" + s.ClientNS }

// ServerNSPath is the server namespace's path.
func (s *Segment) ServerNSPath() string { return "/run/netns/" + s.ServerNS }

// need fails the test, naming the Debian package, when a tool is missing: a DHCP test that skips proves nothing.
func need(tb testing.TB, bin, pkg string) string {
	tb.Helper()
	p, err := exec.LookPath(bin)
	if err != nil {
		for _, dir := range []string{"/usr/sbin", "/sbin"} {
			if _, serr := os.Stat(filepath.Join(dir, bin)); serr == nil {
				return filepath.Join(dir, bin)
			}
		}
		tb.Fatalf("%s is not installed (%v): apt-get install %s", bin, err, pkg)
	}
	return p
}

// NewSegment creates the namespaces and the veth pair. The test must run as root (network namespaces need
// CAP_SYS_ADMIN); it fails with that message otherwise.
func NewSegment(tb testing.TB) *Segment {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Fatalf("this test builds network namespaces and must run as root (CI and make test run as root)")
	}
	ip := need(tb, "ip", "iproute2")
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	id := hex.EncodeToString(b)
	s := &Segment{
		ServerNS: "amtedge-dhs-" + id, ClientNS: "amtedge-dhc-" + id,
		ServerIface: "dhs" + id, ClientIface: "dhc" + id,
		// 10.<b0>.<b1>.0/24: a private network that only exists between the two namespaces.
		ServerIP: netip.AddrFrom4([4]byte{10, b[0], b[1], 1}),
		ClientIP: netip.AddrFrom4([4]byte{10, b[0], b[1], 2}),
	}
	run := func(args ...string) {
		tb.Helper()
		if out, err := exec.Command(ip, args...).CombinedOutput(); err != nil {
			tb.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	run("netns", "add", s.ServerNS)
	tb.Cleanup(func() { _ = exec.Command(ip, "netns", "delete", s.ServerNS).Run() })
	run("netns", "add", s.ClientNS)
	tb.Cleanup(func() { _ = exec.Command(ip, "netns", "delete", s.ClientNS).Run() })
	// Created inside the server namespace, so the pair never exists in the host's namespace.
	run("-n", s.ServerNS, "link", "add", s.ServerIface, "type", "veth", "peer", "name", s.ClientIface, "netns", s.ClientNS)
	run("-n", s.ServerNS, "addr", "add", s.ServerIP.String()+"/24", "dev", s.ServerIface)
	run("-n", s.ClientNS, "addr", "add", s.ClientIP.String()+"/24", "dev", s.ClientIface)
	for _, ns := range [][2]string{{s.ServerNS, s.ServerIface}, {s.ClientNS, s.ClientIface}} {
		run("-n", ns[0], "link", "set", "lo", "up")
		run("-n", ns[0], "link", "set", ns[1], "up")
	}
	run("-n", s.ClientNS, "route", "add", "default", "via", s.ServerIP.String())
	return s
}

// DNSMasq is a running dnsmasq.
type DNSMasq struct {
	cmd    *exec.Cmd
	out    *lockedWriter
	exited chan struct{}
}

// StartDNSMasq runs dnsmasq in the server namespace as the segment's DHCP server (DNS off). domain is served as
// option 15 unless empty; extra are further dnsmasq arguments. It is stopped (by PID) at cleanup or by Stop.
func (s *Segment) StartDNSMasq(tb testing.TB, domain string, extra ...string) *DNSMasq {
	tb.Helper()
	ip := need(tb, "ip", "iproute2")
	bin := need(tb, "dnsmasq", "dnsmasq-base")
	dir := tb.TempDir()
	p := s.ServerIP.As4()
	lo, hi := netip.AddrFrom4([4]byte{p[0], p[1], p[2], 100}), netip.AddrFrom4([4]byte{p[0], p[1], p[2], 150})
	args := []string{"netns", "exec", s.ServerNS, bin, "--no-daemon", "--port=0", "--conf-file=/dev/null",
		"--interface=" + s.ServerIface, "--bind-interfaces", "--except-interface=lo",
		"--dhcp-range=" + lo.String() + "," + hi.String() + ",255.255.255.0,1h", "--dhcp-authoritative",
		"--no-resolv", "--no-hosts", "--no-ping", "--leasefile-ro", "--log-dhcp", "--log-facility=-",
		"--pid-file=" + filepath.Join(dir, "dnsmasq.pid"), "--dhcp-leasefile=" + filepath.Join(dir, "leases")}
	if domain != "" {
		args = append(args, "--dhcp-option=option:domain-name,"+domain)
	}
	args = append(args, extra...)
	d := &DNSMasq{out: &lockedWriter{}, exited: make(chan struct{})}
	// `ip netns exec` execs dnsmasq in place, so the PID we hold is dnsmasq's own.
	d.cmd = exec.Command(ip, args...)
	d.cmd.Stdout, d.cmd.Stderr = d.out, d.out // one writer: exec then uses one pipe for both
	if err := d.cmd.Start(); err != nil {
		tb.Fatalf("start dnsmasq: %v", err)
	}
	go func() { _ = d.cmd.Wait(); close(d.exited) }()
	tb.Cleanup(func() {
		d.Stop()
		if tb.Failed() {
			tb.Logf("dnsmasq output:\n%s", d.Output())
		}
	})
	// Ready when it logs its DHCP range; it exits at once on a bad option.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if strings.Contains(d.Output(), "DHCP, IP range") {
			return d
		}
		select {
		case <-d.exited:
			tb.Fatalf("dnsmasq exited at start: %s", d.Output())
		default:
		}
		if time.Now().After(deadline) {
			tb.Fatalf("dnsmasq not ready after 10 s: %s", d.Output())
		}
	}
}

// Stop ends dnsmasq by its PID and waits for it.
func (d *DNSMasq) Stop() {
	select {
	case <-d.exited:
		return
	default:
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(5 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.exited
	}
}

// Output is what dnsmasq logged.
func (d *DNSMasq) Output() string {
	d.out.mu.Lock()
	defer d.out.mu.Unlock()
	return d.out.b.String()
}

// FakeServer answers every packet arriving on UDP port 67 of the server end with reply(request), sent to the
// request's source (the probe's port 68) — for replies no real server would send.
func (s *Segment) FakeServer(tb testing.TB, reply func(req []byte) []byte) {
	tb.Helper()
	var conn *net.UDPConn
	err := dhcpprobe.InNetNS(s.ServerNSPath(), func() error {
		var err error
		// Every address: the probe's broadcast as well as its unicast arrive (the namespace has only this link).
		conn, err = net.ListenUDP("udp4", &net.UDPAddr{Port: dhcpprobe.ServerPort})
		return err
	})
	if err != nil {
		tb.Fatalf("fake DHCP server: %v", err)
	}
	done := make(chan struct{})
	tb.Cleanup(func() { conn.Close(); <-done })
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			n, from, err := conn.ReadFromUDP(buf)
			if err != nil {
				return
			}
			_, _ = conn.WriteToUDP(reply(append([]byte(nil), buf[:n]...)), from)
		}
	}()
}

type lockedWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// String describes the segment for test logs.
func (s *Segment) String() string {
	return fmt.Sprintf("segment %s(%s %s) ↔ %s(%s %s)", s.ServerNS, s.ServerIface, s.ServerIP, s.ClientNS, s.ClientIface, s.ClientIP)
}
