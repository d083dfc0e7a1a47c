package seal

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
)

// swtpm is one software TPM 2.0 (or 1.2) process serving raw TPM commands on a unix socket.
type swtpm struct {
	stateDir string
	sock     string
	tpm2     bool
	cmd      *exec.Cmd
	opens    atomic.Int32 // connections open now
	maxOpens atomic.Int32 // most connections open at once

	wireMu sync.Mutex
	wire   []byte // every command and response sent through open's connections
}

func (s *swtpm) record(b []byte) {
	s.wireMu.Lock()
	s.wire = append(s.wire, b...)
	s.wireMu.Unlock()
}

func (s *swtpm) wireBytes() []byte {
	s.wireMu.Lock()
	defer s.wireMu.Unlock()
	return bytes.Clone(s.wire)
}

// startSWTPM starts a swtpm on stateDir (a new one when empty) and stops it at cleanup. The test fails, and says
// how to get swtpm, when it is not installed: a TPM test that silently skips proves nothing.
func startSWTPM(t *testing.T, stateDir string) *swtpm {
	t.Helper()
	return startSWTPMVersion(t, stateDir, true)
}

func startSWTPMVersion(t *testing.T, stateDir string, tpm2 bool) *swtpm {
	t.Helper()
	if _, err := exec.LookPath("swtpm"); err != nil {
		t.Fatalf("swtpm is not installed (%v): `make test` installs it (scripts/test-packages.txt), or run "+
			"`apt-get install swtpm swtpm-tools`", err)
	}
	// A short directory of our own rather than t.TempDir: its path carries the test name, which may hold commas
	// (swtpm's option separator) and exceed the 108-byte limit of a unix socket path.
	dir, err := os.MkdirTemp("", "swtpm")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if stateDir == "" {
		stateDir = filepath.Join(dir, "state")
		if err := os.Mkdir(stateDir, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	s := &swtpm{stateDir: stateDir, sock: filepath.Join(dir, "sock"), tpm2: tpm2}
	s.start(t)
	return s
}

func (s *swtpm) start(t *testing.T) {
	t.Helper()
	os.Remove(s.sock)
	args := []string{"socket"}
	if s.tpm2 {
		args = append(args, "--tpm2")
	}
	args = append(args,
		"--flags", "not-need-init,startup-clear",
		"--server", "type=unixio,path="+s.sock,
		"--ctrl", "type=unixio,path="+s.sock+".ctrl",
		"--tpmstate", "dir="+s.stateDir)
	var stderr bytes.Buffer
	cmd := exec.Command("swtpm", args...)
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start swtpm: %v", err)
	}
	s.cmd = cmd
	t.Cleanup(func() { s.stop(t) })
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.Dial("unix", s.sock)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			s.stop(t)
			t.Fatalf("swtpm did not listen on %s within 5 s: %v; stderr: %s", s.sock, err, stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stop ends the process by its PID: SIGTERM (swtpm saves its state), SIGKILL if it lingers.
func (s *swtpm) stop(t *testing.T) {
	if s.cmd == nil {
		return
	}
	cmd := s.cmd
	s.cmd = nil
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// restart stops and starts the same TPM (same state directory).
func (s *swtpm) restart(t *testing.T) {
	t.Helper()
	s.stop(t)
	s.start(t)
}

// open is a TPMConfig.Open: a connection to this swtpm that counts how many are open at once.
func (s *swtpm) open() (transport.TPMCloser, error) {
	c, err := net.Dial("unix", s.sock)
	if err != nil {
		return nil, err
	}
	n := s.opens.Add(1)
	for {
		m := s.maxOpens.Load()
		if n <= m || s.maxOpens.CompareAndSwap(m, n) {
			break
		}
	}
	return &streamTPM{conn: c, onClose: func() { s.opens.Add(-1) }, record: s.record}, nil
}

// with runs the test's own TPM commands on a connection of their own, closed before it returns: swtpm serves one
// connection at a time.
func (s *swtpm) with(t *testing.T, f func(tpm transport.TPM)) {
	t.Helper()
	tpm, err := s.open()
	if err != nil {
		t.Fatal(err)
	}
	defer tpm.Close()
	f(tpm)
}

// streamTPM sends raw TPM commands over a stream, as swtpm's unixio server expects: write the command, read the
// 10-byte response header, then the rest of the size it announces.
type streamTPM struct {
	conn    net.Conn
	onClose func()
	record  func([]byte)
	once    sync.Once
}

func (s *streamTPM) Send(cmd []byte) ([]byte, error) {
	if err := s.conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return nil, err
	}
	if _, err := s.conn.Write(cmd); err != nil {
		return nil, err
	}
	rsp := make([]byte, 10)
	if _, err := io.ReadFull(s.conn, rsp); err != nil {
		return nil, fmt.Errorf("read TPM response header: %w", err)
	}
	size := binary.BigEndian.Uint32(rsp[2:6])
	if size < 10 || size > 1<<16 {
		return nil, fmt.Errorf("TPM response size %d out of range", size)
	}
	rsp = append(rsp, make([]byte, size-10)...)
	if _, err := io.ReadFull(s.conn, rsp[10:]); err != nil {
		return nil, fmt.Errorf("read TPM response: %w", err)
	}
	if s.record != nil {
		s.record(cmd)
		s.record(rsp)
	}
	return rsp, nil
}

func (s *streamTPM) Close() error {
	s.once.Do(func() {
		if s.onClose != nil {
			s.onClose()
		}
	})
	return s.conn.Close()
}

// newSealer returns a TPM sealer on sw with its blob in a fresh directory.
func newSealer(t *testing.T, sw *swtpm, pcrs ...int) *TPM {
	t.Helper()
	return NewTPM(TPMConfig{PCRs: pcrs, BlobPath: TPMBlobPath(t.TempDir()), Open: sw.open})
}

func mustCreate(t *testing.T, s Sealer) []byte {
	t.Helper()
	dek, err := s.Create(context.Background())
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if len(dek) != KeySize || allZero(dek) {
		t.Fatalf("Create returned a %d-byte key (all zero: %v)", len(dek), allZero(dek))
	}
	return dek
}

// assertNoKeyIn fails when an error text carries the key, raw or in hex.
func assertNoKeyIn(t *testing.T, err error, dek []byte) {
	t.Helper()
	if err == nil || dek == nil {
		return
	}
	msg := err.Error()
	if strings.Contains(msg, string(dek)) || strings.Contains(strings.ToLower(msg), hex.EncodeToString(dek)) ||
		strings.Contains(msg, hex.EncodeToString(dek[:8])) {
		t.Fatalf("error text carries the key: %q", msg)
	}
}

func extendPCR(t *testing.T, tpm transport.TPM, pcr int) {
	t.Helper()
	_, err := tpm2.PCRExtend{
		PCRHandle: tpm2.AuthHandle{Handle: tpm2.TPMHandle(pcr), Auth: tpm2.PasswordAuth(nil)},
		Digests: tpm2.TPMLDigestValues{Digests: []tpm2.TPMTHA{{
			HashAlg: tpm2.TPMAlgSHA256, Digest: bytes.Repeat([]byte{0x5a}, 32),
		}}},
	}.Execute(tpm)
	if err != nil {
		t.Fatalf("PCR_Extend %d: %v", pcr, err)
	}
}

// evictSRK removes the persistent SRK at the default handle.
func evictSRK(t *testing.T, tpm transport.TPM) {
	t.Helper()
	h := tpm2.TPMHandle(DefaultSRKHandle)
	rp, err := tpm2.ReadPublic{ObjectHandle: h}.Execute(tpm)
	if err != nil {
		t.Fatalf("ReadPublic SRK: %v", err)
	}
	if _, err := (tpm2.EvictControl{
		Auth:             tpm2.TPMRHOwner,
		ObjectHandle:     &tpm2.NamedHandle{Handle: h, Name: rp.Name},
		PersistentHandle: h,
	}).Execute(tpm); err != nil {
		t.Fatalf("evict SRK: %v", err)
	}
}

// persistOtherKey puts an RSA storage key (not the ECC SRK template) at the default SRK handle.
func persistOtherKey(t *testing.T, tpm transport.TPM) {
	t.Helper()
	cp, err := tpm2.CreatePrimary{PrimaryHandle: tpm2.TPMRHOwner, InPublic: tpm2.New2B(tpm2.RSASRKTemplate)}.Execute(tpm)
	if err != nil {
		t.Fatalf("CreatePrimary RSA: %v", err)
	}
	defer flush(tpm, cp.ObjectHandle)
	if _, err := (tpm2.EvictControl{
		Auth:             tpm2.TPMRHOwner,
		ObjectHandle:     &tpm2.NamedHandle{Handle: cp.ObjectHandle, Name: cp.Name},
		PersistentHandle: tpm2.TPMHandle(DefaultSRKHandle),
	}).Execute(tpm); err != nil {
		t.Fatalf("persist RSA key: %v", err)
	}
}

// fillTransientSlots leaves transient objects loaded, as a crashed process would on a TPM without resource manager.
func fillTransientSlots(t *testing.T, tpm transport.TPM) {
	t.Helper()
	for i := 0; i < 3; i++ {
		if _, err := (tpm2.CreatePrimary{PrimaryHandle: tpm2.TPMRHOwner, InPublic: tpm2.New2B(tpm2.ECCSRKTemplate)}).Execute(tpm); err != nil {
			t.Fatalf("CreatePrimary %d: %v", i, err)
		}
	}
}

func TestTPMRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		pcrs []int
		// between runs after Create and before the second Unseal, which must still give the same key.
		between func(t *testing.T, sw *swtpm)
	}{
		{name: "no policy, swtpm restarted", between: func(t *testing.T, sw *swtpm) { sw.restart(t) }},
		{name: "PCR policy 7+16, swtpm restarted", pcrs: []int{16, 7}, between: func(t *testing.T, sw *swtpm) { sw.restart(t) }},
		{name: "SRK evicted: recreated from the same owner seed", between: func(t *testing.T, sw *swtpm) { sw.with(t, func(tpm transport.TPM) { evictSRK(t, tpm) }) }},
		{name: "stale transient objects are flushed", between: func(t *testing.T, sw *swtpm) {
			sw.with(t, func(tpm transport.TPM) { fillTransientSlots(t, tpm) })
			if h := leftoverHandles(t, sw); len(h) != 3 {
				t.Fatalf("after filling the slots: %#x loaded, want 3 objects", h)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			sw := startSWTPM(t, "")
			s := newSealer(t, sw, tc.pcrs...)
			dek := mustCreate(t, s)
			got, err := s.Unseal(ctx)
			if err != nil {
				t.Fatalf("Unseal: %v", err)
			}
			if !bytes.Equal(got, dek) {
				t.Fatal("Unseal returned another key than Create")
			}
			fi, err := os.Stat(s.Path())
			if err != nil {
				t.Fatal(err)
			}
			if perm := fi.Mode().Perm(); perm != 0o600 {
				t.Fatalf("sealed-DEK file mode %04o, want 0600", perm)
			}
			if raw, _ := os.ReadFile(s.Path()); bytes.Contains(raw, dek) {
				t.Fatal("sealed-DEK file holds the key in clear")
			}
			tc.between(t, sw)
			// A new sealer, as after a daemon restart.
			got, err = NewTPM(TPMConfig{PCRs: tc.pcrs, BlobPath: s.Path(), Open: sw.open}).Unseal(ctx)
			if err != nil {
				t.Fatalf("Unseal after restart: %v", err)
			}
			if !bytes.Equal(got, dek) {
				t.Fatal("Unseal after restart returned another key")
			}
			if _, err := s.Create(ctx); !errors.Is(err, ErrKeyExists) {
				t.Fatalf("second Create: %v, want ErrKeyExists", err)
			}
			if got, err := s.Unseal(ctx); err != nil || !bytes.Equal(got, dek) {
				t.Fatalf("Unseal after refused Create: err %v, same key %v", err, bytes.Equal(got, dek))
			}
			if n := sw.opens.Load(); n != 0 {
				t.Fatalf("%d TPM connections left open", n)
			}
			if h := leftoverHandles(t, sw); len(h) != 0 {
				t.Fatalf("objects or sessions left loaded on the TPM: %#x", h)
			}
		})
	}
}

// leftoverHandles lists transient objects and loaded sessions: swtpm has no resource manager, so whatever the
// sealer does not flush stays there.
func leftoverHandles(t *testing.T, sw *swtpm) []tpm2.TPMHandle {
	t.Helper()
	var out []tpm2.TPMHandle
	sw.with(t, func(tpm transport.TPM) {
		for _, first := range []uint32{0x80000000, 0x02000000, 0x03000000} {
			rsp, err := tpm2.GetCapability{Capability: tpm2.TPMCapHandles, Property: first, PropertyCount: 64}.Execute(tpm)
			if err != nil {
				t.Fatal(err)
			}
			hs, err := rsp.CapabilityData.Data.Handles()
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range hs.Handle {
				if uint32(h)>>24 == first>>24 {
					out = append(out, h)
				}
			}
		}
	})
	return out
}

// TestTPMBusCarriesNoClearKey records every byte exchanged with the TPM: the DEK must not appear in it, neither
// going in (Create) nor coming out (Unseal). The control at the end unseals the same object without parameter
// encryption and must find the key on the wire, which shows the recording sees what it should.
func TestTPMBusCarriesNoClearKey(t *testing.T) {
	for _, pcrs := range [][]int{nil, {16}} {
		t.Run(fmt.Sprintf("PCRs %v", pcrs), func(t *testing.T) {
			sw := startSWTPM(t, "")
			s := newSealer(t, sw, pcrs...)
			dek := mustCreate(t, s)
			if got, err := s.Unseal(context.Background()); err != nil || !bytes.Equal(got, dek) {
				t.Fatalf("Unseal: err %v, same key %v", err, bytes.Equal(got, dek))
			}
			if bytes.Contains(sw.wireBytes(), dek) {
				t.Fatal("the DEK crossed the TPM connection in clear")
			}
			if len(pcrs) > 0 {
				return // the control below needs the empty-auth object
			}
			raw, err := os.ReadFile(s.Path())
			if err != nil {
				t.Fatal(err)
			}
			b, err := decodeBlob(raw)
			if err != nil {
				t.Fatal(err)
			}
			sw.with(t, func(tpm transport.TPM) {
				srk := tpm2.AuthHandle{Handle: tpm2.TPMHandle(b.srkHandle), Name: tpm2.TPM2BName{Buffer: b.srkName}, Auth: tpm2.PasswordAuth(nil)}
				l, err := tpm2.Load{ParentHandle: srk, InPrivate: tpm2.TPM2BPrivate{Buffer: b.private},
					InPublic: tpm2.BytesAs2B[tpm2.TPMTPublic](b.public)}.Execute(tpm)
				if err != nil {
					t.Fatal(err)
				}
				defer flush(tpm, l.ObjectHandle)
				if _, err := (tpm2.Unseal{ItemHandle: tpm2.AuthHandle{Handle: l.ObjectHandle, Name: l.Name,
					Auth: tpm2.PasswordAuth(nil)}}).Execute(tpm); err != nil {
					t.Fatal(err)
				}
			})
			if !bytes.Contains(sw.wireBytes(), dek) {
				t.Fatal("control: an unencrypted unseal did not show the DEK on the recorded wire")
			}
		})
	}
}

func TestTPMUnsealErrors(t *testing.T) {
	tests := []struct {
		name   string
		pcrs   []int
		create bool
		// breakIt changes the TPM or the file after Create.
		breakIt  func(t *testing.T, sw *swtpm, s *TPM) *swtpm
		is       []error
		isNot    []error
		contains []string
	}{
		{
			name:     "no key yet",
			is:       []error{ErrNoKey},
			isNot:    []error{ErrUnsealRefused},
			contains: []string{"dek.tpm"},
		},
		{
			name:   "PCR changed",
			pcrs:   []int{16},
			create: true,
			breakIt: func(t *testing.T, sw *swtpm, s *TPM) *swtpm {
				sw.with(t, func(tpm transport.TPM) { extendPCR(t, tpm, 16) })
				return sw
			},
			is: []error{ErrUnsealRefused},
			contains: []string{"the TPM refuses to unseal the data-encryption key: PCRs 16 changed since it was sealed " +
				"(firmware update?) — the box starts degraded; run amtedge store recover"},
		},
		{
			name:   "TPM state wiped",
			create: true,
			breakIt: func(t *testing.T, sw *swtpm, s *TPM) *swtpm {
				sw.stop(t)
				return startSWTPM(t, "")
			},
			is:       []error{ErrUnsealRefused},
			contains: []string{"cleared or replaced", "run amtedge store recover"},
		},
		{
			name:   "TPM state wiped, PCR policy",
			pcrs:   []int{7},
			create: true,
			breakIt: func(t *testing.T, sw *swtpm, s *TPM) *swtpm {
				sw.stop(t)
				return startSWTPM(t, "")
			},
			is:       []error{ErrUnsealRefused},
			contains: []string{"cleared or replaced"},
		},
		{
			name:   "another key at the SRK handle",
			create: true,
			breakIt: func(t *testing.T, sw *swtpm, s *TPM) *swtpm {
				sw.with(t, func(tpm transport.TPM) {
					evictSRK(t, tpm)
					persistOtherKey(t, tpm)
				})
				return sw
			},
			is:       []error{ErrSRKMismatch},
			isNot:    []error{ErrUnsealRefused, ErrNoKey},
			contains: []string{"0x81000001", "custody.tpm.srkHandle"},
		},
		{
			name:   "file corrupt: one byte flipped",
			create: true,
			breakIt: func(t *testing.T, sw *swtpm, s *TPM) *swtpm {
				editFile(t, s.Path(), func(b []byte) []byte { b[len(b)/2] ^= 1; return b })
				return sw
			},
			is:       []error{ErrBlobCorrupt, ErrUnsealRefused},
			contains: []string{"damaged", "dek.tpm"},
		},
		{
			name:   "file corrupt: truncated",
			create: true,
			breakIt: func(t *testing.T, sw *swtpm, s *TPM) *swtpm {
				editFile(t, s.Path(), func(b []byte) []byte { return b[:40] })
				return sw
			},
			is:       []error{ErrBlobCorrupt, ErrUnsealRefused},
			contains: []string{"damaged"},
		},
		{
			name:   "file corrupt: empty",
			create: true,
			breakIt: func(t *testing.T, sw *swtpm, s *TPM) *swtpm {
				editFile(t, s.Path(), func(b []byte) []byte { return nil })
				return sw
			},
			is:       []error{ErrBlobCorrupt},
			contains: []string{"bad magic"},
		},
		{
			name:   "private part tampered, checksum redone",
			create: true,
			breakIt: func(t *testing.T, sw *swtpm, s *TPM) *swtpm {
				editFile(t, s.Path(), func(raw []byte) []byte {
					b, err := decodeBlob(raw)
					if err != nil {
						t.Fatal(err)
					}
					b.private[len(b.private)-1] ^= 0x80
					return encodeBlob(b)
				})
				return sw
			},
			is:       []error{ErrUnsealRefused},
			isNot:    []error{ErrBlobCorrupt},
			contains: []string{"does not load under SRK 0x81000001"},
		},
		{
			name:   "file readable by its group",
			create: true,
			breakIt: func(t *testing.T, sw *swtpm, s *TPM) *swtpm {
				if err := os.Chmod(s.Path(), 0o640); err != nil {
					t.Fatal(err)
				}
				return sw
			},
			isNot:    []error{ErrUnsealRefused, ErrNoKey},
			contains: []string{"0640", "must be 0600"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sw := startSWTPM(t, "")
			s := newSealer(t, sw, tc.pcrs...)
			var dek []byte
			if tc.create {
				dek = mustCreate(t, s)
			}
			if tc.breakIt != nil {
				sw = tc.breakIt(t, sw, s)
			}
			// A new sealer on the (maybe new) TPM, as after a daemon restart.
			s = NewTPM(TPMConfig{PCRs: tc.pcrs, BlobPath: s.Path(), Open: sw.open})
			got, err := s.Unseal(context.Background())
			if err == nil {
				t.Fatalf("Unseal succeeded (key returned: %v), want an error", got != nil)
			}
			t.Logf("error: %v", err)
			assertNoKeyIn(t, err, dek)
			for _, target := range tc.is {
				if !errors.Is(err, target) {
					t.Errorf("error is not %q", target)
				}
			}
			for _, target := range tc.isNot {
				if errors.Is(err, target) {
					t.Errorf("error is %q, must not be", target)
				}
			}
			for _, sub := range tc.contains {
				if !strings.Contains(err.Error(), sub) {
					t.Errorf("error text lacks %q", sub)
				}
			}
			if tc.create {
				// The sealed file must survive every failure: creating over it would lose the key for good.
				if _, err := s.Create(context.Background()); !errors.Is(err, ErrKeyExists) {
					t.Errorf("Create over an unsealable key: %v, want ErrKeyExists", err)
				}
			}
		})
	}
}

func editFile(t *testing.T, path string, edit func([]byte) []byte) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, edit(raw), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestTPMCreateErrors(t *testing.T) {
	tests := []struct {
		name     string
		cfg      func(sw *swtpm, dir string) TPMConfig
		prepare  func(t *testing.T, sw *swtpm)
		is       []error
		contains []string
	}{
		{
			name:     "another key at the SRK handle",
			cfg:      func(sw *swtpm, dir string) TPMConfig { return TPMConfig{BlobPath: TPMBlobPath(dir), Open: sw.open} },
			prepare:  func(t *testing.T, sw *swtpm) { sw.with(t, func(tpm transport.TPM) { persistOtherKey(t, tpm) }) },
			is:       []error{ErrSRKMismatch},
			contains: []string{"handle 0x81000001 holds another key", "tpm2_evictcontrol"},
		},
		{
			name: "owner hierarchy has a password",
			cfg:  func(sw *swtpm, dir string) TPMConfig { return TPMConfig{BlobPath: TPMBlobPath(dir), Open: sw.open} },
			prepare: func(t *testing.T, sw *swtpm) {
				sw.with(t, func(tpm transport.TPM) {
					if _, err := (tpm2.HierarchyChangeAuth{
						AuthHandle: tpm2.AuthHandle{Handle: tpm2.TPMRHOwner, Auth: tpm2.PasswordAuth(nil)},
						NewAuth:    tpm2.TPM2BAuth{Buffer: []byte("owner")},
					}).Execute(tpm); err != nil {
						t.Fatal(err)
					}
				})
			},
			contains: []string{"no key at 0x81000001 and the owner hierarchy has a password", "tpm2_evictcontrol"},
		},
		{
			name: "PCR out of range",
			cfg: func(sw *swtpm, dir string) TPMConfig {
				return TPMConfig{PCRs: []int{7, 24}, BlobPath: TPMBlobPath(dir), Open: sw.open}
			},
			contains: []string{"pcrs: PCR 24 is out of range 0-23"},
		},
		{
			name: "SRK handle not persistent",
			cfg: func(sw *swtpm, dir string) TPMConfig {
				return TPMConfig{SRKHandle: 0x80000001, BlobPath: TPMBlobPath(dir), Open: sw.open}
			},
			contains: []string{"srkHandle: 0x80000001 is not a persistent handle"},
		},
		{
			name:     "no blob path",
			cfg:      func(sw *swtpm, dir string) TPMConfig { return TPMConfig{Open: sw.open} },
			contains: []string{"blobPath: empty"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sw := startSWTPM(t, "")
			if tc.prepare != nil {
				tc.prepare(t, sw)
			}
			s := NewTPM(tc.cfg(sw, t.TempDir()))
			_, err := s.Create(context.Background())
			if err == nil {
				t.Fatal("Create succeeded, want an error")
			}
			t.Logf("error: %v", err)
			for _, target := range tc.is {
				if !errors.Is(err, target) {
					t.Errorf("error is not %q", target)
				}
			}
			for _, sub := range tc.contains {
				if !strings.Contains(err.Error(), sub) {
					t.Errorf("error text lacks %q", sub)
				}
			}
			if s.Path() != "" {
				if _, err := os.Stat(s.Path()); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("failed Create left a file: %v", err)
				}
			}
		})
	}
}

func TestTPMOpenErrors(t *testing.T) {
	dir := t.TempDir()
	notDevice := filepath.Join(dir, "regular")
	if err := os.WriteFile(notDevice, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		cfg      func(t *testing.T) TPMConfig
		contains string
	}{
		{
			name:     "no device",
			cfg:      func(t *testing.T) TPMConfig { return TPMConfig{Device: filepath.Join(dir, "tpmrm0")} },
			contains: "no TPM at " + filepath.Join(dir, "tpmrm0") + ": enable the TPM in firmware or use custody.seal: software",
		},
		{
			name:     "not a device",
			cfg:      func(t *testing.T) TPMConfig { return TPMConfig{Device: notDevice} },
			contains: notDevice + " is not a TPM device",
		},
		{
			name: "TPM 1.2",
			cfg: func(t *testing.T) TPMConfig {
				sw := startSWTPMVersion(t, "", false)
				return TPMConfig{Open: sw.open}
			},
			contains: "does not answer as a TPM 2.0",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg(t)
			cfg.BlobPath = TPMBlobPath(t.TempDir())
			s := NewTPM(cfg)
			_, err := s.Create(context.Background())
			t.Logf("Create: %v", err)
			if !errors.Is(err, ErrNoTPM) || !strings.Contains(err.Error(), tc.contains) {
				t.Errorf("Create: %v, want ErrNoTPM with %q", err, tc.contains)
			}
			// With a sealed file present, Unseal reports the same TPM problem, not a refusal.
			if err := os.WriteFile(cfg.BlobPath, validBlobForTest(t), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err = s.Unseal(context.Background())
			if !errors.Is(err, ErrNoTPM) || errors.Is(err, ErrUnsealRefused) || !strings.Contains(err.Error(), tc.contains) {
				t.Errorf("Unseal: %v, want ErrNoTPM with %q", err, tc.contains)
			}
		})
	}
}

// TestOpenErrorPermission checks the EACCES wording; a real EACCES cannot be produced when the tests run as root.
func TestOpenErrorPermission(t *testing.T) {
	err := openError("/dev/tpmrm0", &fs.PathError{Op: "open", Path: "/dev/tpmrm0", Err: syscall.EACCES})
	if !errors.Is(err, ErrNoTPM) || !strings.Contains(err.Error(), "no permission to open /dev/tpmrm0: add the amtedge user to group tss") {
		t.Fatalf("got %v", err)
	}
}

func TestTPMConcurrentUnseal(t *testing.T) {
	sw := startSWTPM(t, "")
	s := newSealer(t, sw)
	dek := mustCreate(t, s)
	sw.maxOpens.Store(0)
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := s.Unseal(context.Background())
			if err == nil && !bytes.Equal(got, dek) {
				err = errors.New("another key")
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if m := sw.maxOpens.Load(); m != 1 {
		t.Fatalf("%d TPM connections were open at once, want calls serialised (1)", m)
	}
}

func TestTPMLoadOrCreate(t *testing.T) {
	sw := startSWTPM(t, "")
	s := newSealer(t, sw)
	ctx := context.Background()
	dek, created, err := LoadOrCreate(ctx, s)
	if err != nil || !created {
		t.Fatalf("first LoadOrCreate: created %v, err %v", created, err)
	}
	again, created, err := LoadOrCreate(ctx, NewTPM(TPMConfig{BlobPath: s.Path(), Open: sw.open}))
	if err != nil || created {
		t.Fatalf("second LoadOrCreate: created %v, err %v", created, err)
	}
	if !bytes.Equal(dek, again) {
		t.Fatal("second LoadOrCreate returned another key")
	}
	// A refused unseal must not turn into a new key.
	sw.stop(t)
	sw2 := startSWTPM(t, "")
	_, created, err = LoadOrCreate(ctx, NewTPM(TPMConfig{BlobPath: s.Path(), Open: sw2.open}))
	if !errors.Is(err, ErrUnsealRefused) || created {
		t.Fatalf("LoadOrCreate on a wiped TPM: created %v, err %v; want ErrUnsealRefused", created, err)
	}
}

func TestTPMConfigValidate(t *testing.T) {
	tests := []struct {
		cfg  TPMConfig
		want string
	}{
		{TPMConfig{BlobPath: "/x"}, ""},
		{TPMConfig{BlobPath: "/x", PCRs: []int{0, 7, 23}, SRKHandle: 0x817FFFFF}, ""},
		{TPMConfig{BlobPath: "/x", PCRs: []int{-1}}, "pcrs: PCR -1 is out of range"},
		{TPMConfig{BlobPath: "/x", PCRs: []int{7, 7}}, "pcrs: PCR 7 is listed twice"},
		{TPMConfig{BlobPath: "/x", SRKHandle: 0x81800000}, "srkHandle: 0x81800000"},
		{TPMConfig{}, "blobPath: empty"},
	}
	for _, tc := range tests {
		err := tc.cfg.Validate()
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("Validate(%+v) = %v, want %q", tc.cfg, err, tc.want)
		}
	}
}

// validBlobForTest is a well-formed sealed-DEK file (not sealed by any TPM).
func validBlobForTest(t testing.TB) []byte {
	t.Helper()
	name := append([]byte{0, 0x0b}, bytes.Repeat([]byte{1}, 32)...)
	b := &sealedBlob{srkHandle: DefaultSRKHandle, srkName: name, private: bytes.Repeat([]byte{2}, 60)}
	b.public = tpm2.Marshal(sealedTemplate(nil))
	raw := encodeBlob(b)
	if _, err := decodeBlob(raw); err != nil {
		t.Fatalf("test blob does not decode: %v", err)
	}
	return raw
}

func TestDecodeBlob(t *testing.T) {
	good := validBlobForTest(t)
	pcrBlob := func(edit func(*sealedBlob)) []byte {
		b, _ := decodeBlob(good)
		b.pcrs = []pcrValue{{index: 7, value: make([]byte, 32)}}
		b.public = tpm2.Marshal(sealedTemplate(make([]byte, 32)))
		if edit != nil {
			edit(b)
		}
		return encodeBlob(b)
	}
	tests := []struct {
		name string
		raw  []byte
		want string
	}{
		{"good", good, ""},
		{"good with PCRs", pcrBlob(nil), ""},
		{"empty", nil, "bad magic"},
		{"other version", append([]byte(blobMagic), 2), "unknown sealed-DEK file version 2"},
		{"checksum", append(append([]byte{}, good[:len(good)-1]...), good[len(good)-1]^1), "checksum mismatch"},
		{"trailing byte", append(append([]byte{}, good...), 0), "unexpected bytes"},
		{"PCRs unordered", pcrBlob(func(b *sealedBlob) {
			b.pcrs = []pcrValue{{7, make([]byte, 32)}, {3, make([]byte, 32)}}
		}), "ascending"},
		{"PCR out of range", pcrBlob(func(b *sealedBlob) { b.pcrs[0].index = 24 }), "PCR 24 is out of range"},
		{"PCRs without policy", pcrBlob(func(b *sealedBlob) { b.public = tpm2.Marshal(sealedTemplate(nil)) }), "not bound to a PCR policy"},
		{"policy without PCRs", pcrBlob(func(b *sealedBlob) { b.pcrs = nil }), "carries a policy"},
		{"SRK public as object", pcrBlob(func(b *sealedBlob) { b.pcrs = nil; b.public = tpm2.Marshal(tpm2.ECCSRKTemplate) }), "keyed-hash"},
		{"bad SRK handle", pcrBlob(func(b *sealedBlob) { b.srkHandle = 0x40000001 }), "SRK handle"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeBlob(tc.raw)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("decodeBlob: %v, want %q", err, tc.want)
			}
		})
	}
}

// FuzzDecodeTPMBlob feeds arbitrary files to the sealed-DEK decoder: it must return an error or a blob that
// encodes back to the same bytes, and never panic.
func FuzzDecodeTPMBlob(f *testing.F) {
	f.Add(validBlobForTest(f))
	f.Fuzz(func(t *testing.T, raw []byte) {
		b, err := decodeBlob(raw)
		if err != nil {
			return
		}
		if again := encodeBlob(b); !bytes.Equal(again, raw) {
			t.Fatalf("decoded blob encodes to other bytes")
		}
	})
}

func TestTPMCanceledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s := NewTPM(TPMConfig{BlobPath: TPMBlobPath(t.TempDir()), Open: func() (transport.TPMCloser, error) {
		t.Fatal("the TPM was opened despite a canceled context")
		return nil, nil
	}})
	if _, err := s.Unseal(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Unseal: %v, want context.Canceled", err)
	}
	if _, err := s.Create(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Create: %v, want context.Canceled", err)
	}
}
