// Package dhcpprobe asks the LAN segment's DHCP server what it hands out — above all the DNS suffix (option 15)
// that Intel AMT firmware takes as its network's domain and compares with a provisioning certificate during Admin
// Control Mode activation. It sends one DHCPINFORM (RFC 2131 §3.4: the box already has its address, so it asks
// for configuration only, and no lease is taken or changed) and decodes the DHCPACK.
//
// It is used by `amtedge doctor`. What it must never do: take or release a lease, send anything but a DHCPINFORM,
// or trust the answer: a DHCP reply is outside input from anyone on the segment, so every field it reports is
// checked (transaction id, message type, option 15 a well-formed DNS name) and a reply that fails is refused,
// never half-used.
package dhcpprobe

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/rfc1035label"
	"golang.org/x/sys/unix"
)

// Ports of RFC 2131: the client sends from 68 to the server's 67; servers answer to 68.
const (
	ClientPort = 68
	ServerPort = 67
)

// DefaultTimeout is how long Inform waits for an answer when Options.Timeout is zero.
const DefaultTimeout = 3 * time.Second

var (
	// ErrNoAnswer: no DHCP server sent a usable DHCPACK within the timeout.
	ErrNoAnswer = errors.New("no DHCP server answered")
	// ErrMalformed: a reply arrived but was refused (see the error text for why); no usable one followed.
	ErrMalformed = errors.New("malformed DHCP reply")
	// ErrPermission: the probe may not bind UDP port 68 or the interface (it needs root or
	// CAP_NET_BIND_SERVICE and CAP_NET_RAW).
	ErrPermission = errors.New("permission denied")
)

// Options says where to probe.
type Options struct {
	// Interface to send on; required (see DefaultInterface).
	Interface string
	// Server, when valid, is asked by unicast; otherwise the DHCPINFORM is broadcast to 255.255.255.255.
	Server netip.Addr
	// Timeout bounds the wait for an answer (DefaultTimeout when zero).
	Timeout time.Duration
	// NetNS, when set, is the path of a network namespace (e.g. /run/netns/lan) to probe in; the interface is
	// looked up there. Empty: the process's own namespace.
	NetNS string
}

// Result is what the segment's DHCP server said.
type Result struct {
	Interface string
	ClientIP  netip.Addr // the address the DHCPINFORM carried in ciaddr
	// Server is the answering server: its server identifier (option 54), else the reply's source address.
	Server netip.Addr
	// DomainName is option 15 without trailing dot or NULs, lower-cased; "" when the server sent none.
	DomainName string
	// SearchList is option 119 (RFC 3397), when present.
	SearchList []string
}

// Inform sends a DHCPINFORM on opts.Interface and returns the first valid DHCPACK's contents. It returns an
// error wrapping ErrNoAnswer when none came within the timeout (wrapping ErrMalformed as well when replies came
// but were refused), ErrPermission when the socket may not be opened.
func Inform(ctx context.Context, opts Options) (Result, error) {
	if opts.Interface == "" {
		return Result{}, errors.New("dhcp probe: no interface given")
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Server.IsValid() && !opts.Server.Is4() {
		return Result{}, fmt.Errorf("dhcp probe: server %s is not an IPv4 address", opts.Server)
	}
	var (
		conn   net.PacketConn
		iface  *net.Interface
		client netip.Addr
	)
	err := InNetNS(opts.NetNS, func() error {
		var err error
		if iface, err = net.InterfaceByName(opts.Interface); err != nil {
			return fmt.Errorf("interface %s: %w", opts.Interface, err)
		}
		if client, err = interfaceIPv4(iface); err != nil {
			return err
		}
		conn, err = listen(ctx, iface.Name)
		return err
	})
	if err != nil {
		return Result{}, fmt.Errorf("dhcp probe on %s: %w", opts.Interface, err)
	}
	defer conn.Close()

	req, err := dhcpv4.NewInform(iface.HardwareAddr, client.AsSlice(),
		dhcpv4.WithRequestedOptions(dhcpv4.OptionSubnetMask, dhcpv4.OptionRouter, dhcpv4.OptionDomainNameServer,
			dhcpv4.OptionDomainName, dhcpv4.OptionDNSDomainSearchList))
	if err != nil {
		return Result{}, fmt.Errorf("dhcp probe: build DHCPINFORM: %w", err)
	}
	if len(iface.HardwareAddr) == 0 {
		// A link without a MAC (a tunnel): chaddr stays zero; the server answers to ciaddr anyway.
		req.ClientHWAddr = make(net.HardwareAddr, 6)
	}
	dst := &net.UDPAddr{IP: net.IPv4bcast, Port: ServerPort}
	if opts.Server.IsValid() {
		dst.IP = opts.Server.AsSlice()
	}
	if _, err := conn.WriteTo(req.ToBytes(), dst); err != nil {
		return Result{}, fmt.Errorf("dhcp probe: send DHCPINFORM to %s on %s: %w", dst, opts.Interface, err)
	}

	deadline := time.Now().Add(opts.Timeout)
	ctxBound := false // the context's deadline comes first: its expiry is the caller's, not "no answer"
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline, ctxBound = d, true
	}
	if err := conn.SetReadDeadline(deadline); err != nil {
		return Result{}, err
	}
	// A cancelled context ends the wait at once.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()

	var refused []string
	buf := make([]byte, 4096)
	for {
		n, from, err := conn.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return Result{}, fmt.Errorf("dhcp probe on %s: %w", opts.Interface, ctx.Err())
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				if ctxBound {
					return Result{}, fmt.Errorf("dhcp probe on %s: %w", opts.Interface, context.DeadlineExceeded)
				}
				return Result{}, noAnswer(opts, dst, refused)
			}
			return Result{}, fmt.Errorf("dhcp probe: receive on %s: %w", opts.Interface, err)
		}
		res, perr := ParseReply(buf[:n], req.TransactionID)
		if errors.Is(perr, errNotOurs) {
			continue // another client's traffic on a shared segment
		}
		if perr != nil {
			if len(refused) < 3 {
				refused = append(refused, fmt.Sprintf("from %s: %v", from, perr))
			}
			continue
		}
		res.Interface, res.ClientIP = opts.Interface, client
		if !res.Server.IsValid() {
			if ua, ok := from.(*net.UDPAddr); ok {
				res.Server, _ = netip.AddrFromSlice(ua.IP.To4())
			}
		}
		return res, nil
	}
}

func noAnswer(opts Options, dst *net.UDPAddr, refused []string) error {
	if len(refused) > 0 {
		return fmt.Errorf("dhcp probe on %s: %w within %s; %w refused: %s", opts.Interface, ErrNoAnswer, opts.Timeout,
			ErrMalformed, strings.Join(refused, "; "))
	}
	return fmt.Errorf("dhcp probe on %s: %w a DHCPINFORM sent to %s within %s", opts.Interface, ErrNoAnswer, dst, opts.Timeout)
}

// errNotOurs marks a packet that is not an answer to our request (wrong xid, a request echoed back).
var errNotOurs = errors.New("not an answer to this probe")

// maxReply bounds what ParseReply accepts: a DHCP message over UDP/IPv4 fits in one 1500-byte frame in practice;
// anything near 64 KiB is not a DHCP reply.
const maxReply = 4096

// ParseReply decodes a DHCP reply to the request with transaction id xid. It refuses, with an error saying
// why, anything that is not a well-formed BOOTREPLY DHCPACK: a DHCPNAK, a damaged packet, an option 15 that is
// not a DNS name, an undecodable option 119. Packets for other transactions return an error that callers may
// skip (another client's traffic).
func ParseReply(b []byte, xid dhcpv4.TransactionID) (Result, error) {
	if len(b) > maxReply {
		return Result{}, fmt.Errorf("%d bytes: too long for a DHCP reply", len(b))
	}
	p, err := dhcpv4.FromBytes(b)
	if err != nil {
		return Result{}, fmt.Errorf("undecodable (%d bytes): %v", len(b), err)
	}
	if p.TransactionID != xid || p.OpCode != dhcpv4.OpcodeBootReply {
		return Result{}, errNotOurs
	}
	switch mt := p.MessageType(); mt {
	case dhcpv4.MessageTypeAck:
	case dhcpv4.MessageTypeNak:
		return Result{}, fmt.Errorf("the server refused the DHCPINFORM (DHCPNAK: %q)", clip(p.Message()))
	case dhcpv4.MessageTypeNone:
		return Result{}, errors.New("a BOOTP reply without DHCP message type (option 53)")
	default:
		return Result{}, fmt.Errorf("a %s, not a DHCPACK", mt)
	}
	var res Result
	if sid := p.Options.Get(dhcpv4.OptionServerIdentifier); sid != nil {
		a, ok := netip.AddrFromSlice(sid)
		if !ok || !a.Is4() {
			return Result{}, fmt.Errorf("server identifier (option 54) is %d bytes, not an IPv4 address", len(sid))
		}
		res.Server = a
	}
	if raw := p.Options.Get(dhcpv4.OptionDomainName); raw != nil {
		name, err := domainName(raw)
		if err != nil {
			return Result{}, fmt.Errorf("domain name (option 15): %w", err)
		}
		res.DomainName = name
	}
	if raw := p.Options.Get(dhcpv4.OptionDNSDomainSearchList); raw != nil {
		list, err := searchList(raw)
		if err != nil {
			return Result{}, fmt.Errorf("domain search list (option 119): %w", err)
		}
		res.SearchList = list
	}
	return res, nil
}

// domainName checks option 15: RFC 2132 §3.17 says a domain name; many servers add a NUL, some a trailing dot.
func domainName(raw []byte) (string, error) {
	s := strings.TrimRight(string(raw), "\x00")
	s = strings.ToLower(strings.TrimSuffix(s, "."))
	if err := checkDNSName(s); err != nil {
		return "", err
	}
	return s, nil
}

func searchList(raw []byte) ([]string, error) {
	list, err := decodeLabels(raw)
	if err != nil {
		return nil, err
	}
	for i, s := range list {
		s = strings.ToLower(strings.TrimSuffix(s, "."))
		if err := checkDNSName(s); err != nil {
			return nil, fmt.Errorf("entry %d: %w", i+1, err)
		}
		list[i] = s
	}
	return list, nil
}

// checkDNSName accepts what a DNS suffix can be: labels of 1..63 letters, digits, '-' or '_', 253 characters
// at most. Anything else (control characters, spaces, a crafted escape sequence) is refused and shown quoted.
func checkDNSName(s string) error {
	if s == "" {
		return errors.New("empty")
	}
	if len(s) > 253 {
		return fmt.Errorf("%d characters, a DNS name has at most 253", len(s))
	}
	for _, l := range strings.Split(s, ".") {
		if l == "" || len(l) > 63 {
			return fmt.Errorf("%q is not a DNS name (empty label or one over 63 characters)", clip(s))
		}
		for _, r := range l {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return fmt.Errorf("%q is not a DNS name (it holds %q)", clip(s), r)
			}
		}
	}
	return nil
}

// clip shortens a peer-supplied string for an error text.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// interfaceIPv4 is the interface's first IPv4 address: the ciaddr of the DHCPINFORM.
func interfaceIPv4(iface *net.Interface) (netip.Addr, error) {
	if iface.Flags&net.FlagUp == 0 {
		return netip.Addr{}, fmt.Errorf("interface %s is down", iface.Name)
	}
	addrs, err := iface.Addrs()
	if err != nil {
		return netip.Addr{}, fmt.Errorf("addresses of %s: %w", iface.Name, err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP.To4()); ok && n.IP.To4() != nil && !ip.IsLoopback() {
				return ip, nil
			}
		}
	}
	return netip.Addr{}, fmt.Errorf("interface %s has no IPv4 address: a DHCPINFORM needs one (RFC 2131 §3.4)", iface.Name)
}

// listen opens UDP port 68 on every address, bound to the interface (SO_BINDTODEVICE), with SO_BROADCAST for the
// broadcast request and SO_REUSEADDR so a DHCP client holding the port on the box does not stop the probe.
func listen(ctx context.Context, ifname string) (net.PacketConn, error) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); serr != nil {
				return
			}
			if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_BROADCAST, 1); serr != nil {
				return
			}
			if serr = unix.BindToDevice(int(fd), ifname); serr != nil {
				serr = fmt.Errorf("SO_BINDTODEVICE %s: %w", ifname, serr)
			}
		})
		return errors.Join(err, serr)
	}}
	conn, err := lc.ListenPacket(ctx, "udp4", ":"+strconv.Itoa(ClientPort))
	if err != nil {
		if errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM) {
			return nil, fmt.Errorf("%w: binding UDP port %d on %s needs root (or CAP_NET_BIND_SERVICE and CAP_NET_RAW): "+
				"run amtedge doctor as root: %w", ErrPermission, ClientPort, ifname, err)
		}
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("UDP port %d is taken on %s by a program that does not share it (a DHCP client or "+
				"server on the box?): %w", ClientPort, ifname, err)
		}
		return nil, err
	}
	return conn, nil
}

// DefaultInterface is the interface holding the IPv4 default route, else the first interface that is up, not
// a loopback and has an IPv4 address. netns is as in Options.NetNS.
func DefaultInterface(netns string) (string, error) {
	var name string
	err := InNetNS(netns, func() error {
		var err error
		name, err = defaultInterface()
		return err
	})
	return name, err
}

func defaultInterface() (string, error) {
	// thread-self, not self: the calling thread may have entered another network namespace (InNetNS).
	if f, err := os.Open("/proc/thread-self/net/route"); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			// Iface Destination Gateway Flags ... Mask: the default route has destination and mask 0.
			fields := strings.Fields(sc.Text())
			if len(fields) >= 8 && fields[1] == "00000000" && fields[7] == "00000000" {
				return fields[0], nil
			}
		}
	}
	ifaces, err := net.Interfaces()
	if err != nil {
		return "", fmt.Errorf("list interfaces: %w", err)
	}
	for i := range ifaces {
		if ifaces[i].Flags&net.FlagLoopback != 0 {
			continue
		}
		if _, err := interfaceIPv4(&ifaces[i]); err == nil {
			return ifaces[i].Name, nil
		}
	}
	return "", errors.New("no interface has a default route or an IPv4 address: pass --interface")
}

// InNetNS runs fn on an OS thread that has entered the network namespace at path (all of fn's sockets and
// interface look-ups happen there; sockets stay in it after fn returns). An empty path runs fn as is.
func InNetNS(path string, fn func() error) error {
	if path == "" {
		return fn()
	}
	if !strings.Contains(path, "/") {
		path = "/run/netns/" + path // a name as `ip netns` gives it
	}
	errc := make(chan error, 1)
	go func() {
		// The thread is never unlocked: if returning to the original namespace failed, the runtime must throw
		// it away with this goroutine rather than hand a thread in the wrong namespace to other code.
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			errc <- fmt.Errorf("network namespace: %w", err)
			return
		}
		defer orig.Close()
		target, err := os.Open(path)
		if err != nil {
			errc <- fmt.Errorf("network namespace %s: %w", path, err)
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("enter network namespace %s: %w", path, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			ferr = errors.Join(ferr, fmt.Errorf("leave network namespace %s: %w", path, err))
		} else {
			runtime.UnlockOSThread()
		}
		errc <- ferr
	}()
	return <-errc
}

// decodeLabels decodes RFC 1035 labels with RFC 1035 §4.1.4 compression, as option 119 carries them.
func decodeLabels(raw []byte) ([]string, error) {
	l, err := rfc1035label.FromBytes(raw)
	if err != nil {
		return nil, err
	}
	if len(l.Labels) == 0 {
		return nil, errors.New("empty")
	}
	return l.Labels, nil
}
