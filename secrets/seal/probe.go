package seal

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/go-tpm/tpm2"
)

// SRKState is what the persistent SRK handle holds.
type SRKState string

const (
	// SRKPresent: the handle holds the standard ECC P-256 storage root key.
	SRKPresent SRKState = "present"
	// SRKAbsent: the handle is empty; the first Create (or an Unseal) persists the standard SRK there.
	SRKAbsent SRKState = "absent"
	// SRKForeign: the handle holds another key (see ErrSRKMismatch).
	SRKForeign SRKState = "foreign"
)

// TPMProbe is what Probe found.
type TPMProbe struct {
	Manufacturer string   // the TPM vendor's four-letter ID (e.g. "IFX", "STM", "MSFT", "IBM" for swtpm), when it says
	SRKHandle    uint32   // the handle looked at
	SRK          SRKState // what it holds
}

// Probe opens the TPM, checks that it is a TPM 2.0 and reports what the configured SRK handle holds. It is
// read-only: it creates, persists and unseals nothing (besides the flush of stale transient objects every open
// does), so `amtedge doctor` may run it next to the daemon. Errors wrap ErrNoTPM as Unseal's do, with the same
// technician-facing wording (device missing, permission, not a TPM 2.0).
func (t *TPM) Probe(ctx context.Context) (TPMProbe, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return TPMProbe{}, fmt.Errorf("probe TPM: %w", err)
	}
	p := TPMProbe{SRKHandle: t.cfg.SRKHandle}
	if err := checkSRKHandle(t.cfg.SRKHandle); err != nil {
		return p, fmt.Errorf("probe TPM: srkHandle: %w", err)
	}
	tpm, err := t.open()
	if err != nil {
		return p, fmt.Errorf("probe TPM: %w", err)
	}
	defer tpm.Close()
	if rsp, err := (tpm2.GetCapability{Capability: tpm2.TPMCapTPMProperties, Property: uint32(tpm2.TPMPTManufacturer),
		PropertyCount: 1}).Execute(tpm); err == nil {
		if props, err := rsp.CapabilityData.Data.TPMProperties(); err == nil && len(props.TPMProperty) > 0 &&
			props.TPMProperty[0].Property == tpm2.TPMPTManufacturer {
			p.Manufacturer = vendorID(props.TPMProperty[0].Value)
		}
	}
	rp, err := tpm2.ReadPublic{ObjectHandle: tpm2.TPMHandle(t.cfg.SRKHandle)}.Execute(tpm)
	switch {
	case errors.Is(err, tpm2.TPMRCHandle):
		p.SRK = SRKAbsent
	case err != nil:
		return p, fmt.Errorf("probe TPM: TPM2_ReadPublic 0x%08X: %w", t.cfg.SRKHandle, err)
	default:
		pub, err := rp.OutPublic.Contents()
		if err != nil {
			return p, fmt.Errorf("probe TPM: SRK 0x%08X: decode public area: %w", t.cfg.SRKHandle, err)
		}
		p.SRK = SRKPresent
		if !isStandardSRK(pub) {
			p.SRK = SRKForeign
		}
	}
	return p, nil
}

// vendorID turns TPM_PT_MANUFACTURER (four ASCII bytes, NUL- or space-padded) into text, dropping anything
// unprintable.
func vendorID(v uint32) string {
	var out []byte
	for _, c := range []byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)} {
		if c > 0x20 && c < 0x7f {
			out = append(out, c)
		}
	}
	return string(out)
}
