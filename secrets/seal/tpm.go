package seal

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
	"github.com/google/go-tpm/tpm2/transport/linuxtpm"
	"github.com/google/go-tpm/tpm2/transport/linuxudstpm"
)

const (
	// DefaultTPMDevice is the kernel's resource-managed TPM device. The resource manager lets the daemon share the
	// TPM with other users (tpm2-abrmd is not needed) and flushes what a crashed process left loaded.
	DefaultTPMDevice = "/dev/tpmrm0"
	// DefaultSRKHandle is the persistent handle of the storage root key: the TCG provisioning guidance's
	// well-known handle for the SRK, so the box shares the SRK other software on the machine expects there.
	DefaultSRKHandle uint32 = 0x81000001
	// DefaultTPMBlobFile is the name of the sealed-DEK file in the state directory.
	DefaultTPMBlobFile = "dek.tpm"
	// MaxPCR is the highest PCR index a PC-client TPM has (24 PCRs).
	MaxPCR = 23
)

var (
	// ErrNoTPM is returned (wrapped) when no usable TPM 2.0 can be reached: no device, no permission, or a device
	// that does not answer as a TPM 2.0. It is a configuration or hardware problem, fixed on the box; it says
	// nothing about whether the sealed key is still good.
	ErrNoTPM = errors.New("no usable TPM 2.0")
	// ErrUnsealRefused is returned (wrapped) by Unseal when a sealed DEK exists but cannot be had back: the TPM was
	// cleared or replaced, a PCR policy no longer holds, or the sealed-DEK file is damaged. Retrying will not
	// help; the daemon starts degraded and offers "amtedge store recover".
	ErrUnsealRefused = errors.New("the TPM refuses to unseal the data-encryption key")
	// ErrBlobCorrupt is returned (wrapped, together with ErrUnsealRefused) when the sealed-DEK file cannot be decoded.
	ErrBlobCorrupt = errors.New("the sealed data-encryption key file is damaged")
	// ErrSRKMismatch is returned (wrapped) when the persistent SRK handle holds a key that is not the standard
	// ECC P-256 SRK. The sealed DEK may still be fine: the standard SRK is derived from the owner seed, so freeing
	// the handle (or choosing another one) and starting again recreates the same SRK.
	ErrSRKMismatch = errors.New("the persistent handle holds a key that is not the standard ECC P-256 storage root key")
)

// TPMConfig says how to reach the TPM and where to keep the sealed DEK.
type TPMConfig struct {
	// Device is the TPM character device; DefaultTPMDevice when empty. Not used when Open is set. Prefer the
	// resource-managed /dev/tpmrm0 to /dev/tpm0: without a resource manager every call flushes all transient
	// objects on the TPM, including other programs' ones.
	Device string
	// SRKHandle is the persistent handle of the storage root key (owner range 0x81000000–0x817FFFFF);
	// DefaultSRKHandle when zero. It applies to Create; Unseal uses the handle recorded in the sealed-DEK file,
	// so changing this setting does not orphan an existing key.
	SRKHandle uint32
	// PCRs, when not empty, binds the DEK to the current values of these SHA-256 PCRs (0–23) at Create. Off by
	// default on purpose: PCR-bound secrets stop unsealing after a firmware, bootloader or Secure Boot database
	// update (PCRs 0–7 change), and on an unattended site box that means a degraded store until someone runs
	// "amtedge store recover". Turn it on only where a stolen disk-plus-TPM booted into another OS is a real
	// threat and updates are planned. It applies to Create; Unseal uses the PCRs recorded in the sealed-DEK file.
	PCRs []int
	// BlobPath is the file holding the sealed DEK (the TPM's public and private parts, the SRK's name and the
	// PCRs it is bound to), mode 0600; normally DefaultTPMBlobFile in the state directory (see TPMBlobPath).
	BlobPath string
	// Open, when set, replaces opening Device: tests reach a swtpm this way.
	Open func() (transport.TPMCloser, error)
}

// TPMBlobPath is the default sealed-DEK file in stateDir.
func TPMBlobPath(stateDir string) string { return filepath.Join(stateDir, DefaultTPMBlobFile) }

// withDefaults fills the zero fields with their defaults.
func (c TPMConfig) withDefaults() TPMConfig {
	if c.Device == "" {
		c.Device = DefaultTPMDevice
	}
	if c.SRKHandle == 0 {
		c.SRKHandle = DefaultSRKHandle
	}
	c.PCRs = slices.Clone(c.PCRs)
	return c
}

// Validate checks the configuration after defaults are filled in. Its messages name the field; the daemon
// prefixes its own config key.
func (c TPMConfig) Validate() error {
	c = c.withDefaults()
	if err := checkSRKHandle(c.SRKHandle); err != nil {
		return fmt.Errorf("srkHandle: %w", err)
	}
	seen := make(map[int]bool, len(c.PCRs))
	for _, p := range c.PCRs {
		if p < 0 || p > MaxPCR {
			return fmt.Errorf("pcrs: PCR %d is out of range 0-%d", p, MaxPCR)
		}
		if seen[p] {
			return fmt.Errorf("pcrs: PCR %d is listed twice", p)
		}
		seen[p] = true
	}
	if c.BlobPath == "" {
		return errors.New("blobPath: empty (the default is " + DefaultTPMBlobFile + " in the state directory)")
	}
	return nil
}

func checkSRKHandle(h uint32) error {
	if h < 0x81000000 || h > 0x817FFFFF {
		return fmt.Errorf("0x%08X is not a persistent handle in the owner range 0x81000000-0x817FFFFF", h)
	}
	return nil
}

// TPM seals the DEK to the box's TPM 2.0. The DEK is generated on the host and sealed as a KeyedHash data object
// under the storage root key; the file at BlobPath holds the sealed object, which only this TPM (with its current
// owner seed) can load. Calls are serialised: swtpm, and a TPM without resource manager, has only three
// transient object slots that interleaved loads from several goroutines could exhaust, and each call starts by
// flushing transient objects, which would pull an object from under a concurrent call.
type TPM struct {
	cfg TPMConfig
	mu  sync.Mutex
}

var _ Sealer = (*TPM)(nil)

// NewTPM returns a TPM sealer. The configuration is checked on first use (call cfg.Validate to check it earlier).
func NewTPM(cfg TPMConfig) *TPM { return &TPM{cfg: cfg.withDefaults()} }

// Path is the sealed-DEK file's path.
func (t *TPM) Path() string { return t.cfg.BlobPath }

// Unseal reads the sealed-DEK file and has the TPM unseal it. It returns an error wrapping ErrNoKey when the file
// does not exist, ErrUnsealRefused when it exists but the TPM will not (or cannot) give the key back, ErrNoTPM
// when the TPM cannot be reached, ErrSRKMismatch when a foreign key sits at the SRK handle. When the SRK handle
// is empty but this TPM still derives the SRK the DEK was sealed under (someone evicted it), Unseal persists it
// again and succeeds.
func (t *TPM) Unseal(ctx context.Context) ([]byte, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("unseal data-encryption key: %w", err)
	}
	if err := t.cfg.Validate(); err != nil {
		return nil, fmt.Errorf("unseal data-encryption key: TPM configuration: %w", err)
	}
	raw, err := readBlobFile(t.cfg.BlobPath)
	if err != nil {
		return nil, fmt.Errorf("unseal data-encryption key: %w", err)
	}
	b, err := decodeBlob(raw)
	if err != nil {
		return nil, &multiError{
			msg:  fmt.Sprintf("%v: %s: %v — the box starts degraded; run amtedge store recover", ErrBlobCorrupt, t.cfg.BlobPath, err),
			errs: []error{ErrBlobCorrupt, ErrUnsealRefused},
		}
	}
	tpm, err := t.open()
	if err != nil {
		return nil, fmt.Errorf("unseal data-encryption key: %w", err)
	}
	defer tpm.Close()
	dek, err := unsealBlob(tpm, b)
	if err != nil {
		return nil, err
	}
	if err := checkKey(dek); err != nil {
		return nil, fmt.Errorf("unseal data-encryption key: %w", err)
	}
	return dek, nil
}

// Create generates a DEK with the host's random source, has the TPM seal it and writes the sealed-DEK file. It
// fails with ErrKeyExists, and changes nothing, when the file exists.
func (t *TPM) Create(ctx context.Context) ([]byte, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("create data-encryption key: %w", err)
	}
	if err := t.cfg.Validate(); err != nil {
		return nil, fmt.Errorf("create data-encryption key: TPM configuration: %w", err)
	}
	// Checked before touching the TPM so an existing key never costs a TPM round trip; the final link below is
	// what actually guarantees no replacement.
	if _, err := os.Lstat(t.cfg.BlobPath); err == nil {
		return nil, fmt.Errorf("create data-encryption key %s: %w", t.cfg.BlobPath, ErrKeyExists)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("create data-encryption key: %w", err)
	}
	tpm, err := t.open()
	if err != nil {
		return nil, fmt.Errorf("create data-encryption key: %w", err)
	}
	defer tpm.Close()

	srk, err := loadSRK(tpm, tpm2.TPMHandle(t.cfg.SRKHandle), nil)
	if err != nil {
		return nil, fmt.Errorf("create data-encryption key: %w", err)
	}
	b := &sealedBlob{srkHandle: t.cfg.SRKHandle, srkName: srk.name.Buffer}
	pcrs := slices.Clone(t.cfg.PCRs)
	slices.Sort(pcrs)
	var policy []byte
	if len(pcrs) > 0 {
		values, err := readPCRs(tpm, pcrs)
		if err != nil {
			return nil, fmt.Errorf("create data-encryption key: %w", err)
		}
		for i, p := range pcrs {
			b.pcrs = append(b.pcrs, pcrValue{index: uint8(p), value: values[i]})
		}
		if policy, err = pcrPolicyDigest(b.pcrs); err != nil {
			return nil, fmt.Errorf("create data-encryption key: %w", err)
		}
	}

	dek := make([]byte, KeySize)
	if _, err := rand.Read(dek); err != nil {
		return nil, fmt.Errorf("create data-encryption key: random source: %w", err)
	}
	// The DEK travels to the TPM as the first parameter of TPM2_Create, AES-encrypted under a salted session:
	// the salt is encrypted to the SRK, so someone listening on the LPC/SPI bus (or an interposer) sees neither
	// the session key nor the DEK.
	sess := tpm2.HMAC(tpm2.TPMAlgSHA256, 16,
		tpm2.Salted(srk.handle, srk.public), tpm2.AESEncryption(128, tpm2.EncryptIn))
	rsp, err := tpm2.Create{
		ParentHandle: tpm2.AuthHandle{Handle: srk.handle, Name: srk.name, Auth: sess},
		InSensitive: tpm2.TPM2BSensitiveCreate{Sensitive: &tpm2.TPMSSensitiveCreate{
			Data: tpm2.NewTPMUSensitiveCreate(&tpm2.TPM2BSensitiveData{Buffer: dek}),
		}},
		InPublic: tpm2.New2B(sealedTemplate(policy)),
	}.Execute(tpm)
	if err != nil {
		return nil, fmt.Errorf("create data-encryption key: TPM2_Create sealed object under SRK 0x%08X: %w", t.cfg.SRKHandle, err)
	}
	b.public = rsp.OutPublic.Bytes()
	b.private = rsp.OutPrivate.Buffer
	if err := writeNewFile(t.cfg.BlobPath, encodeBlob(b)); err != nil {
		return nil, fmt.Errorf("create data-encryption key %s: %w", t.cfg.BlobPath, err)
	}
	return dek, nil
}

// sealedTemplate is the public area of the sealed DEK object.
//   - FixedTPM|FixedParent: the object can never be duplicated off this TPM or moved under another parent.
//   - NoDA: the object has no secret auth value worth guessing (empty auth, or a PCR policy), so failed attempts
//     must not count toward the TPM's dictionary-attack lockout: a box that keeps retrying a refused unseal would
//     otherwise lock every other TPM user out as well.
//   - UserWithAuth only without a policy: with a PCR policy set, the empty auth value must not be a second way in.
//   - SensitiveDataOrigin is off because the data comes from the host (a sealed data object requires that).
func sealedTemplate(policy []byte) tpm2.TPMTPublic {
	return tpm2.TPMTPublic{
		Type:    tpm2.TPMAlgKeyedHash,
		NameAlg: tpm2.TPMAlgSHA256,
		ObjectAttributes: tpm2.TPMAObject{
			FixedTPM:     true,
			FixedParent:  true,
			NoDA:         true,
			UserWithAuth: len(policy) == 0,
		},
		AuthPolicy: tpm2.TPM2BDigest{Buffer: policy},
		Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgKeyedHash,
			&tpm2.TPMSKeyedHashParms{Scheme: tpm2.TPMTKeyedHashScheme{Scheme: tpm2.TPMAlgNull}}),
	}
}

// unsealBlob loads the sealed object under the SRK and unseals it, flushing whatever it loaded.
func unsealBlob(tpm transport.TPM, b *sealedBlob) ([]byte, error) {
	handle := tpm2.TPMHandle(b.srkHandle)
	srk, err := loadSRK(tpm, handle, b.srkName)
	if errors.Is(err, ErrUnsealRefused) {
		return nil, err // already in the technician's wording
	}
	if err != nil {
		return nil, fmt.Errorf("unseal data-encryption key: %w", err)
	}
	// The salted session is keyed to the SRK public area we just checked against the name recorded at Create, so
	// an interposer cannot substitute its own key and read the DEK.
	load, err := tpm2.Load{
		ParentHandle: tpm2.AuthHandle{Handle: srk.handle, Name: srk.name,
			Auth: tpm2.HMAC(tpm2.TPMAlgSHA256, 16, tpm2.Salted(srk.handle, srk.public))},
		InPrivate: tpm2.TPM2BPrivate{Buffer: b.private},
		InPublic:  tpm2.BytesAs2B[tpm2.TPMTPublic](b.public),
	}.Execute(tpm)
	if err != nil {
		if isObjectError(err) {
			return nil, refused(fmt.Sprintf("the sealed key does not load under SRK 0x%08X (%v): the TPM was "+
				"cleared or replaced, or the file comes from another box", b.srkHandle, err))
		}
		return nil, fmt.Errorf("unseal data-encryption key: TPM2_Load: %w", err)
	}
	defer flush(tpm, load.ObjectHandle)

	var sess tpm2.Session
	if len(b.pcrs) == 0 {
		sess = tpm2.HMAC(tpm2.TPMAlgSHA256, 16,
			tpm2.Salted(srk.handle, srk.public), tpm2.AESEncryption(128, tpm2.EncryptOut))
	} else {
		s, closeSession, err := tpm2.PolicySession(tpm, tpm2.TPMAlgSHA256, 16,
			tpm2.Salted(srk.handle, srk.public), tpm2.AESEncryption(128, tpm2.EncryptOut))
		if err != nil {
			return nil, fmt.Errorf("unseal data-encryption key: start policy session: %w", err)
		}
		// A reusable session stays loaded after Unseal: flush it on every path, or the TPM's few session slots
		// fill up on a TPM without resource manager.
		defer func() { _ = closeSession() }()
		if _, err := (tpm2.PolicyPCR{PolicySession: s.Handle(), Pcrs: pcrSelection(b.pcrs)}).Execute(tpm); err != nil {
			return nil, fmt.Errorf("unseal data-encryption key: TPM2_PolicyPCR: %w", err)
		}
		sess = s
	}
	rsp, err := tpm2.Unseal{ItemHandle: tpm2.AuthHandle{Handle: load.ObjectHandle, Name: load.Name, Auth: sess}}.Execute(tpm)
	if err != nil {
		if errors.Is(err, tpm2.TPMRCPolicyFail) && len(b.pcrs) > 0 {
			return nil, refused(pcrChangeText(tpm, b.pcrs))
		}
		if isObjectError(err) {
			return nil, refused(fmt.Sprintf("TPM2_Unseal: %v", err))
		}
		return nil, fmt.Errorf("unseal data-encryption key: TPM2_Unseal: %w", err)
	}
	return rsp.OutData.Buffer, nil
}

// isObjectError reports whether the TPM rejected a command over one of its handles, parameters or sessions
// (integrity, binding, policy, ...): a verdict on the sealed object. Warnings (TPM_RC_RETRY, object memory full)
// and transport failures are not, and must not send the box into degraded mode.
func isObjectError(err error) bool {
	var f1 tpm2.TPMFmt1Error
	return errors.As(err, &f1)
}

// pcrChangeText names the PCRs whose values differ from those recorded at Create.
func pcrChangeText(tpm transport.TPM, recorded []pcrValue) string {
	idx := make([]int, len(recorded))
	for i, p := range recorded {
		idx[i] = int(p.index)
	}
	now, err := readPCRs(tpm, idx)
	if err != nil {
		return fmt.Sprintf("PCRs %s no longer match the policy it was sealed with (reading them now failed: %v)", joinInts(idx), err)
	}
	var changed []int
	for i, p := range recorded {
		if string(now[i]) != string(p.value) {
			changed = append(changed, int(p.index))
		}
	}
	if len(changed) == 0 {
		return fmt.Sprintf("PCRs %s hold the values it was sealed with, yet the policy fails (the PCRs changed and were reset?)", joinInts(idx))
	}
	return fmt.Sprintf("PCRs %s changed since it was sealed (firmware update?)", joinInts(changed))
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ", ")
}

// refused builds the error for a DEK that exists but will not come back, in the wording the technician sees.
func refused(detail string) error {
	return fmt.Errorf("%w: %s — the box starts degraded; run amtedge store recover", ErrUnsealRefused, detail)
}

// multiError is an error with its own text that matches several sentinels with errors.Is.
type multiError struct {
	msg  string
	errs []error
}

func (e *multiError) Error() string   { return e.msg }
func (e *multiError) Unwrap() []error { return e.errs }

// srkKey is the storage root key as the sessions need it.
type srkKey struct {
	handle tpm2.TPMHandle
	name   tpm2.TPM2BName
	public tpm2.TPMTPublic
}

// loadSRK returns the SRK at the persistent handle, creating and persisting it when the handle is empty. When
// want is set (Unseal), the SRK must have that name: a standard SRK is derived from the owner seed, so recreating
// it after someone evicted it gives the same key, while a cleared or different TPM gives another one.
func loadSRK(tpm transport.TPM, handle tpm2.TPMHandle, want []byte) (*srkKey, error) {
	if err := checkSRKHandle(uint32(handle)); err != nil {
		return nil, fmt.Errorf("SRK: %w", err)
	}
	rp, err := tpm2.ReadPublic{ObjectHandle: handle}.Execute(tpm)
	if err == nil {
		pub, err := rp.OutPublic.Contents()
		if err != nil {
			return nil, fmt.Errorf("SRK 0x%08X: decode public area: %w", uint32(handle), err)
		}
		if !isStandardSRK(pub) {
			return nil, fmt.Errorf("%w: handle 0x%08X holds another key (type 0x%04X); evict it "+
				"(tpm2_evictcontrol -C o -c 0x%08X) if nothing needs it, or set custody.tpm.srkHandle to a free handle",
				ErrSRKMismatch, uint32(handle), uint16(pub.Type), uint32(handle))
		}
		if want != nil && string(rp.Name.Buffer) != string(want) {
			return nil, refused(fmt.Sprintf("the SRK at 0x%08X is not the key the DEK was sealed under: the TPM was "+
				"cleared or replaced", uint32(handle)))
		}
		return &srkKey{handle: handle, name: rp.Name, public: *pub}, nil
	}
	if !errors.Is(err, tpm2.TPMRCHandle) {
		return nil, fmt.Errorf("SRK: TPM2_ReadPublic 0x%08X: %w", uint32(handle), err)
	}

	// The handle is empty: make the standard SRK. Owner auth is assumed empty, as on a TPM nobody took ownership of.
	cp, err := tpm2.CreatePrimary{
		PrimaryHandle: tpm2.TPMRHOwner,
		InPublic:      tpm2.New2B(tpm2.ECCSRKTemplate),
	}.Execute(tpm)
	if err != nil {
		if errors.Is(err, tpm2.TPMRCBadAuth) || errors.Is(err, tpm2.TPMRCAuthFail) {
			return nil, fmt.Errorf("SRK: no key at 0x%08X and the owner hierarchy has a password, so the box cannot "+
				"create one: create the standard ECC SRK there yourself (tpm2_createprimary -C o -P <owner password> "+
				"-G ecc256:aes128cfb -c srk.ctx && tpm2_evictcontrol -C o -P <owner password> -c srk.ctx 0x%08X): %w", uint32(handle), uint32(handle), err)
		}
		return nil, fmt.Errorf("SRK: TPM2_CreatePrimary: %w", err)
	}
	defer flush(tpm, cp.ObjectHandle)
	if want != nil && string(cp.Name.Buffer) != string(want) {
		return nil, refused(fmt.Sprintf("no SRK at 0x%08X, and the one this TPM makes now is not the key the DEK "+
			"was sealed under: the TPM was cleared or replaced", uint32(handle)))
	}
	pub, err := cp.OutPublic.Contents()
	if err != nil {
		return nil, fmt.Errorf("SRK: decode public area: %w", err)
	}
	if _, err := (tpm2.EvictControl{
		Auth:             tpm2.TPMRHOwner,
		ObjectHandle:     &tpm2.NamedHandle{Handle: cp.ObjectHandle, Name: cp.Name},
		PersistentHandle: handle,
	}).Execute(tpm); err != nil {
		if !errors.Is(err, tpm2.TPMRCNVDefined) {
			return nil, fmt.Errorf("SRK: persist at 0x%08X (TPM2_EvictControl): %w", uint32(handle), err)
		}
		// Another process persisted a key there since our ReadPublic. If it is the standard SRK it has our name
		// (same template, same owner seed) and is as good as ours; if not, say so.
		rp, rerr := tpm2.ReadPublic{ObjectHandle: handle}.Execute(tpm)
		if rerr != nil || string(rp.Name.Buffer) != string(cp.Name.Buffer) {
			return nil, fmt.Errorf("%w: handle 0x%08X was taken by another key while the box created its SRK; "+
				"set custody.tpm.srkHandle to a free handle", ErrSRKMismatch, uint32(handle))
		}
	}
	return &srkKey{handle: handle, name: cp.Name, public: *pub}, nil
}

// isStandardSRK reports whether pub is the TCG ECC P-256 SRK template, whatever its (seed-derived) unique point.
func isStandardSRK(pub *tpm2.TPMTPublic) bool {
	tmpl := tpm2.ECCSRKTemplate
	tmpl.Unique = pub.Unique
	got, want := marshalSafe(*pub), marshalSafe(tmpl)
	return got != nil && string(got) == string(want)
}

// marshalSafe marshals v, returning nil instead of panicking on a structure go-tpm cannot encode.
func marshalSafe(v tpm2.TPMTPublic) (b []byte) {
	defer func() {
		if recover() != nil {
			b = nil
		}
	}()
	return tpm2.Marshal(v)
}

// flush unloads a transient object; errors are ignored because the caller is already returning its own result
// and the kernel resource manager (or the next start's sweep) flushes what is left.
func flush(tpm transport.TPM, h tpm2.TPMHandle) {
	_, _ = tpm2.FlushContext{FlushHandle: h}.Execute(tpm)
}

// open reaches the TPM, checks it is a TPM 2.0 and sweeps transient objects left behind.
func (t *TPM) open() (transport.TPMCloser, error) {
	var tpm transport.TPMCloser
	var err error
	where := t.cfg.Device
	if t.cfg.Open != nil {
		where = "the configured TPM transport"
		tpm, err = t.cfg.Open()
		if err != nil {
			return nil, fmt.Errorf("%w: open %s: %w", ErrNoTPM, where, err)
		}
	} else if fi, statErr := os.Stat(t.cfg.Device); statErr == nil && fi.Mode()&os.ModeSocket != 0 {
		// A software TPM's unix socket (swtpm socket --server type=unixio): VMs without a TPM device, and tests.
		tpm, err = linuxudstpm.Open(t.cfg.Device)
		if err != nil {
			return nil, openError(t.cfg.Device, err)
		}
	} else {
		tpm, err = linuxtpm.Open(t.cfg.Device)
		if err != nil {
			return nil, openError(t.cfg.Device, err)
		}
	}
	if err := checkTPM2(tpm); err != nil {
		tpm.Close()
		var rc tpm2.TPMRC
		if errors.As(err, &rc) || errors.Is(err, errNotTPM2) {
			return nil, fmt.Errorf("%w: %s does not answer as a TPM 2.0 (a TPM 1.2 cannot seal the key; use "+
				"custody.seal: software on this machine): %w", ErrNoTPM, where, err)
		}
		return nil, fmt.Errorf("%w: no answer from %s: %w", ErrNoTPM, where, err)
	}
	flushTransients(tpm)
	return tpm, nil
}

// openError turns a failure to open the device into what the technician should do about it.
func openError(device string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w: no TPM at %s: enable the TPM in firmware or use custody.seal: software", ErrNoTPM, device)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("%w: no permission to open %s: add the amtedge user to group tss", ErrNoTPM, device)
	case errors.Is(err, linuxtpm.ErrFileIsNotDevice):
		return fmt.Errorf("%w: %s is not a TPM device (set custody.tpm.device to the TPM, normally %s): %w",
			ErrNoTPM, device, DefaultTPMDevice, err)
	default:
		return fmt.Errorf("%w: open %s: %w", ErrNoTPM, device, err)
	}
}

// checkTPM2 asks for the TPM family; a TPM 1.2 answers TPM 2.0 commands with a 1.2 error, failing the call.
func checkTPM2(tpm transport.TPM) error {
	rsp, err := tpm2.GetCapability{
		Capability:    tpm2.TPMCapTPMProperties,
		Property:      uint32(tpm2.TPMPTFamilyIndicator),
		PropertyCount: 1,
	}.Execute(tpm)
	if err != nil {
		return err
	}
	props, err := rsp.CapabilityData.Data.TPMProperties()
	if err != nil {
		return err
	}
	for _, p := range props.TPMProperty {
		if p.Property == tpm2.TPMPTFamilyIndicator {
			if p.Value != 0x322E3000 { // "2.0\0"
				return fmt.Errorf("%w: TPM family 0x%08X", errNotTPM2, p.Value)
			}
			return nil
		}
	}
	return fmt.Errorf("%w: the TPM does not report its family", errNotTPM2)
}

var errNotTPM2 = errors.New("not a TPM 2.0")

// flushTransients flushes every transient object the TPM reports. Behind the kernel resource manager there are
// none (each connection starts empty); on a TPM without one (swtpm, /dev/tpm0) a crashed run may have left
// objects in the three transient slots, and the next load would fail with TPM_RC_OBJECT_MEMORY.
func flushTransients(tpm transport.TPM) {
	rsp, err := tpm2.GetCapability{
		Capability:    tpm2.TPMCapHandles,
		Property:      uint32(tpm2.TPMHTTransient) << 24,
		PropertyCount: 64,
	}.Execute(tpm)
	if err != nil {
		return
	}
	handles, err := rsp.CapabilityData.Data.Handles()
	if err != nil {
		return
	}
	for _, h := range handles.Handle {
		if uint32(h)>>24 == uint32(tpm2.TPMHTTransient) {
			flush(tpm, h)
		}
	}
}

// pcrSelection selects the recorded PCRs in the SHA-256 bank.
func pcrSelection(pcrs []pcrValue) tpm2.TPMLPCRSelection {
	idx := make([]uint, len(pcrs))
	for i, p := range pcrs {
		idx[i] = uint(p.index)
	}
	return tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{{
		Hash:      tpm2.TPMAlgSHA256,
		PCRSelect: tpm2.PCClientCompatible.PCRs(idx...),
	}}}
}

// readPCRs reads the SHA-256 values of the given PCRs, one at a time (a TPM returns at most eight per call).
func readPCRs(tpm transport.TPM, pcrs []int) ([][]byte, error) {
	out := make([][]byte, len(pcrs))
	for i, p := range pcrs {
		rsp, err := tpm2.PCRRead{PCRSelectionIn: tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{{
			Hash:      tpm2.TPMAlgSHA256,
			PCRSelect: tpm2.PCClientCompatible.PCRs(uint(p)),
		}}}}.Execute(tpm)
		if err != nil {
			return nil, fmt.Errorf("read PCR %d: %w", p, err)
		}
		if len(rsp.PCRValues.Digests) != 1 || len(rsp.PCRValues.Digests[0].Buffer) != sha256.Size {
			return nil, fmt.Errorf("read PCR %d: the TPM has no SHA-256 value for it (is the SHA-256 PCR bank enabled?)", p)
		}
		out[i] = rsp.PCRValues.Digests[0].Buffer
	}
	return out, nil
}

// pcrPolicyDigest computes, on the host, the policy digest of TPM2_PolicyPCR over the recorded values: the
// digest then matches exactly the values stored in the file, which lets Unseal name the PCRs that changed.
func pcrPolicyDigest(pcrs []pcrValue) ([]byte, error) {
	h := sha256.New()
	for _, p := range pcrs {
		h.Write(p.value)
	}
	calc, err := tpm2.NewPolicyCalculator(tpm2.TPMAlgSHA256)
	if err != nil {
		return nil, err
	}
	cmd := tpm2.PolicyPCR{PcrDigest: tpm2.TPM2BDigest{Buffer: h.Sum(nil)}, Pcrs: pcrSelection(pcrs)}
	if err := cmd.Update(calc); err != nil {
		return nil, fmt.Errorf("PCR policy digest: %w", err)
	}
	return calc.Hash().Digest, nil
}

// maxBlobFile bounds what readBlobFile reads: a real file is well under 1 KiB.
const maxBlobFile = 64 << 10

// readBlobFile reads the sealed-DEK file, refusing one its group or other users can access: with an empty auth
// value, the file plus access to the TPM is enough to unseal, so the file is kept as private as a key.
func readBlobFile(path string) ([]byte, error) {
	f, _, err := openPrivate(path, "", "the sealed key")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, maxBlobFile+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return raw, nil
}

// writeNewFile writes data to path the same way Software.Create writes its key: temporary file (0600), fsync,
// link (which fails when the name exists, so an existing sealed key is never replaced), directory fsync.
func writeNewFile(path string, data []byte) error {
	if err := linkNewFile(path, data); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

// linkNewFile is writeNewFile up to the directory fsync, which the caller does: data goes to a temporary file
// (mode 0600) in path's directory, which is fsync'd, then linked to path (ErrKeyExists when the name exists),
// then its temporary name is removed, so that the directory fsync also makes the removal durable and no stray
// copy is left behind by a crash. The temporary file is removed when anything fails.
func linkNewFile(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+"-*.tmp") // CreateTemp uses mode 0600
	if err != nil {
		return err
	}
	tmpName := tmp.Name()
	defer func() {
		if err != nil {
			os.Remove(tmpName) // best effort: the error being returned says more than a failed clean-up
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", tmpName, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("fsync %s: %w", tmpName, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmpName, err)
	}
	if err := os.Link(tmpName, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return ErrKeyExists
		}
		return err
	}
	if err := os.Remove(tmpName); err != nil {
		return fmt.Errorf("remove temporary file: %w", err)
	}
	return nil
}
