package seal

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-tpm/tpm2/transport"
)

func TestTPMProbe(t *testing.T) {
	ctx := context.Background()
	sw := startSWTPM(t, "")
	blob := TPMBlobPath(t.TempDir())
	s := NewTPM(TPMConfig{BlobPath: blob, Open: sw.open})

	p, err := s.Probe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if p.SRK != SRKAbsent || p.SRKHandle != DefaultSRKHandle || p.Manufacturer == "" {
		t.Fatalf("fresh TPM: %+v, want the SRK absent and a manufacturer", p)
	}
	// Probe is read-only: nothing was persisted or written.
	if again, _ := s.Probe(ctx); again.SRK != SRKAbsent {
		t.Fatalf("the probe persisted an SRK: %+v", again)
	}
	if _, err := os.Stat(blob); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the probe wrote the sealed-key file: %v", err)
	}

	if _, err := s.Create(ctx); err != nil {
		t.Fatal(err)
	}
	if p, err := s.Probe(ctx); err != nil || p.SRK != SRKPresent {
		t.Fatalf("after Create: %+v, %v; want the SRK present", p, err)
	}

	// A foreign key at the handle.
	sw2 := startSWTPM(t, "")
	sw2.with(t, func(tpm transport.TPM) { persistOtherKey(t, tpm) })
	if p, err := NewTPM(TPMConfig{BlobPath: blob, Open: sw2.open}).Probe(ctx); err != nil || p.SRK != SRKForeign {
		t.Fatalf("foreign key: %+v, %v; want SRKForeign", p, err)
	}
}

func TestTPMProbeErrors(t *testing.T) {
	dir := t.TempDir()
	_, err := NewTPM(TPMConfig{Device: filepath.Join(dir, "tpmrm0"), BlobPath: TPMBlobPath(dir)}).Probe(context.Background())
	if !errors.Is(err, ErrNoTPM) || !strings.Contains(err.Error(), "no TPM at") {
		t.Errorf("no device: %v", err)
	}
	sw := startSWTPMVersion(t, "", false)
	_, err = NewTPM(TPMConfig{Open: sw.open, BlobPath: TPMBlobPath(dir)}).Probe(context.Background())
	if !errors.Is(err, ErrNoTPM) || !strings.Contains(err.Error(), "does not answer as a TPM 2.0") {
		t.Errorf("TPM 1.2: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := NewTPM(TPMConfig{Open: sw.open, BlobPath: TPMBlobPath(dir)}).Probe(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

func TestVendorID(t *testing.T) {
	for v, want := range map[uint32]string{0x49465800: "IFX", 0x49424d20: "IBM", 0x4d534654: "MSFT", 0x01020304: ""} {
		if got := vendorID(v); got != want {
			t.Errorf("vendorID(%#x) = %q, want %q", v, got, want)
		}
	}
}
