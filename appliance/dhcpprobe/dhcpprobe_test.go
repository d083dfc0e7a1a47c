package dhcpprobe_test

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/amtedge/amtedge/appliance/dhcpprobe"
	"github.com/amtedge/amtedge/appliance/dhcpprobe/dhcptest"
	"github.com/insomniacslk/dhcp/dhcpv4"
)

// The probe runs in the test process, its socket in the client namespace of an isolated segment (dhcptest); the
// host's own network is never touched.

func TestInformAgainstDnsmasq(t *testing.T) {
	seg := dhcptest.NewSegment(t)
	seg.StartDNSMasq(t, "Site.Example", "--dhcp-option=option:domain-search,corp.example,lab.corp.example")

	iface, err := dhcpprobe.DefaultInterface(seg.ClientNSPath())
	if err != nil || iface != seg.ClientIface {
		t.Fatalf("default interface in the client namespace: %q, %v; want %s", iface, err, seg.ClientIface)
	}
	cases := []struct {
		name string
		opts dhcpprobe.Options
	}{
		{"broadcast", dhcpprobe.Options{Interface: iface, NetNS: seg.ClientNSPath(), Timeout: 3 * time.Second}},
		{"unicast", dhcpprobe.Options{Interface: iface, NetNS: seg.ClientNSPath(), Timeout: 3 * time.Second, Server: seg.ServerIP}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := dhcpprobe.Inform(context.Background(), tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if res.DomainName != "site.example" {
				t.Errorf("domain name %q, want site.example (lower-cased)", res.DomainName)
			}
			if !slices.Equal(res.SearchList, []string{"corp.example", "lab.corp.example"}) {
				t.Errorf("search list %q", res.SearchList)
			}
			if res.Server != seg.ServerIP || res.ClientIP != seg.ClientIP || res.Interface != seg.ClientIface {
				t.Errorf("result %+v, want server %s client %s", res, seg.ServerIP, seg.ClientIP)
			}
		})
	}
}

func TestInformWithoutOption15(t *testing.T) {
	seg := dhcptest.NewSegment(t)
	seg.StartDNSMasq(t, "")
	res, err := dhcpprobe.Inform(context.Background(), dhcpprobe.Options{Interface: seg.ClientIface, NetNS: seg.ClientNSPath(), Timeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if res.DomainName != "" || res.SearchList != nil || res.Server != seg.ServerIP {
		t.Fatalf("result %+v: want an answer from %s without option 15 or 119", res, seg.ServerIP)
	}
}

func TestInformNoServer(t *testing.T) {
	seg := dhcptest.NewSegment(t)
	start := time.Now()
	_, err := dhcpprobe.Inform(context.Background(), dhcpprobe.Options{Interface: seg.ClientIface, NetNS: seg.ClientNSPath(), Timeout: 1500 * time.Millisecond})
	took := time.Since(start)
	if !errors.Is(err, dhcpprobe.ErrNoAnswer) || errors.Is(err, dhcpprobe.ErrMalformed) {
		t.Fatalf("err %v, want ErrNoAnswer alone", err)
	}
	if took < time.Second || took > 3*time.Second {
		t.Errorf("took %s, want about the 1.5 s timeout", took)
	}
	if !strings.Contains(err.Error(), seg.ClientIface) || !strings.Contains(err.Error(), "255.255.255.255:67") {
		t.Errorf("error does not say where it asked: %v", err)
	}

	// A cancelled context ends the wait early.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start = time.Now()
	if _, err := dhcpprobe.Inform(ctx, dhcpprobe.Options{Interface: seg.ClientIface, NetNS: seg.ClientNSPath(), Timeout: 10 * time.Second}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want the context's deadline", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Errorf("the context's deadline did not bound the wait: %s", time.Since(start))
	}
}

// ack builds the DHCPACK a server would send to req, with extra options.
func ack(t *testing.T, req []byte, opts ...dhcpv4.Option) []byte {
	t.Helper()
	r, err := dhcpv4.FromBytes(req)
	if err != nil {
		t.Fatalf("the probe sent an undecodable request: %v", err)
	}
	if r.MessageType() != dhcpv4.MessageTypeInform || r.ClientIPAddr.IsUnspecified() {
		t.Errorf("the probe sent %s with ciaddr %s, want a DHCPINFORM with its address", r.MessageType(), r.ClientIPAddr)
	}
	mods := []dhcpv4.Modifier{dhcpv4.WithReply(r), dhcpv4.WithMessageType(dhcpv4.MessageTypeAck)}
	for _, o := range opts {
		mods = append(mods, dhcpv4.WithOption(o))
	}
	p, err := dhcpv4.New(mods...)
	if err != nil {
		t.Fatal(err)
	}
	return p.ToBytes()
}

func TestInformRefusesMalformedReplies(t *testing.T) {
	cases := []struct {
		name  string
		reply func(t *testing.T, req []byte) []byte
		want  string
	}{
		{"garbage", func(t *testing.T, req []byte) []byte {
			// The request's xid, then junk: not a DHCP message.
			return append(slices.Clone(req[:8]), "not a DHCP reply"...)
		}, "undecodable"},
		{"option 15 with control characters", func(t *testing.T, req []byte) []byte {
			return ack(t, req, dhcpv4.OptGeneric(dhcpv4.OptionDomainName, []byte("evil\x1b[31m.example")))
		}, "option 15"},
		{"option 119 undecodable", func(t *testing.T, req []byte) []byte {
			return ack(t, req, dhcpv4.OptGeneric(dhcpv4.OptionDNSDomainSearchList, []byte{0x05, 'a'}))
		}, "option 119"},
		{"NAK", func(t *testing.T, req []byte) []byte {
			r, _ := dhcpv4.FromBytes(req)
			p, _ := dhcpv4.New(dhcpv4.WithReply(r), dhcpv4.WithMessageType(dhcpv4.MessageTypeNak))
			return p.ToBytes()
		}, "DHCPNAK"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			seg := dhcptest.NewSegment(t)
			seg.FakeServer(t, func(req []byte) []byte { return tc.reply(t, req) })
			start := time.Now()
			_, err := dhcpprobe.Inform(context.Background(), dhcpprobe.Options{Interface: seg.ClientIface, NetNS: seg.ClientNSPath(), Timeout: 1500 * time.Millisecond})
			if !errors.Is(err, dhcpprobe.ErrMalformed) || !errors.Is(err, dhcpprobe.ErrNoAnswer) {
				t.Fatalf("err %v, want ErrMalformed and ErrNoAnswer", err)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), seg.ServerIP.String()) {
				t.Errorf("error %q does not name %q and the sender", err, tc.want)
			}
			if strings.ContainsRune(err.Error(), '\x1b') {
				t.Errorf("the peer's control characters reached the error text: %q", err)
			}
			if time.Since(start) > 3*time.Second {
				t.Errorf("took %s", time.Since(start))
			}
		})
	}
}

func TestInformErrors(t *testing.T) {
	if _, err := dhcpprobe.Inform(context.Background(), dhcpprobe.Options{}); err == nil || !strings.Contains(err.Error(), "no interface") {
		t.Errorf("no interface: %v", err)
	}
	if _, err := dhcpprobe.Inform(context.Background(), dhcpprobe.Options{Interface: "nonexistent0"}); err == nil || !strings.Contains(err.Error(), "nonexistent0") {
		t.Errorf("unknown interface: %v", err)
	}
	if _, err := dhcpprobe.Inform(context.Background(), dhcpprobe.Options{Interface: "lo", NetNS: "/nonexistent/ns"}); err == nil || !strings.Contains(err.Error(), "/nonexistent/ns") {
		t.Errorf("unknown namespace: %v", err)
	}
}

// realACK is a DHCPACK dnsmasq 2.9x sent to a DHCPINFORM: option 15 site.example, option 119 corp.example and
// lab.corp.example (the second compressed with a pointer).
func realACK(t testing.TB) []byte {
	b, err := os.ReadFile("testdata/dnsmasq-ack.bin")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func xidOf(b []byte) dhcpv4.TransactionID {
	var x dhcpv4.TransactionID
	if len(b) >= 8 {
		copy(x[:], b[4:8])
	}
	return x
}

func TestParseReply(t *testing.T) {
	good := realACK(t)
	res, err := dhcpprobe.ParseReply(good, xidOf(good))
	if err != nil {
		t.Fatal(err)
	}
	if res.DomainName != "site.example" || !slices.Equal(res.SearchList, []string{"corp.example", "lab.corp.example"}) ||
		res.Server.String() != "10.28.55.1" {
		t.Fatalf("parsed %+v", res)
	}
	other := xidOf(good)
	binary.BigEndian.PutUint32(other[:], binary.BigEndian.Uint32(other[:])+1)
	if _, err := dhcpprobe.ParseReply(good, other); err == nil {
		t.Error("a reply to another transaction was accepted")
	}
	if _, err := dhcpprobe.ParseReply(good[:100], xidOf(good)); err == nil {
		t.Error("a truncated reply was accepted")
	}
	if _, err := dhcpprobe.ParseReply(make([]byte, 5000), dhcpv4.TransactionID{}); err == nil {
		t.Error("an oversized reply was accepted")
	}
	// Option 15 with a trailing NUL and dot, as some servers send it, is accepted and normalised.
	p, _ := dhcpv4.FromBytes(good)
	p.UpdateOption(dhcpv4.OptGeneric(dhcpv4.OptionDomainName, []byte("Corp.Example.\x00")))
	if res, err := dhcpprobe.ParseReply(p.ToBytes(), p.TransactionID); err != nil || res.DomainName != "corp.example" {
		t.Errorf("NUL-terminated option 15: %+v, %v", res, err)
	}
	p.UpdateOption(dhcpv4.OptGeneric(dhcpv4.OptionDomainName, []byte("a..b")))
	if _, err := dhcpprobe.ParseReply(p.ToBytes(), p.TransactionID); err == nil {
		t.Error("option 15 with an empty label was accepted")
	}
	p.UpdateOption(dhcpv4.OptGeneric(dhcpv4.OptionDomainName, []byte("corp.example")))
	p.UpdateOption(dhcpv4.OptGeneric(dhcpv4.OptionServerIdentifier, []byte{1, 2}))
	if _, err := dhcpprobe.ParseReply(p.ToBytes(), p.TransactionID); err == nil {
		t.Error("a 2-byte server identifier was accepted")
	}
}

// FuzzParseReply: whatever a peer on the segment sends, ParseReply returns a result or an error, never panics,
// and what it accepts is a clean DNS name.
func FuzzParseReply(f *testing.F) {
	f.Add(realACK(f))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		res, err := dhcpprobe.ParseReply(b, xidOf(b))
		if err != nil {
			return
		}
		for _, s := range append([]string{res.DomainName}, res.SearchList...) {
			if strings.ContainsFunc(s, func(r rune) bool { return r < 0x21 || r > 0x7e }) {
				t.Fatalf("accepted a name with unprintable characters: %q", s)
			}
		}
		if res.Server.IsValid() && !res.Server.Is4() {
			t.Fatalf("accepted a non-IPv4 server %s", res.Server)
		}
	})
}
