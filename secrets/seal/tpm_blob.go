package seal

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/google/go-tpm/tpm2"
)

// The sealed-DEK file, version 1, all integers big-endian:
//
//	magic      8 bytes  "AEDEKTPM"
//	version    1 byte   1
//	srkHandle  4 bytes  the persistent handle the DEK was sealed under
//	srkName    2-byte length + bytes: the SRK's TPM name (pins the SRK: a cleared or other TPM has another one)
//	pcrCount   1 byte   0-24; then per PCR: index (1 byte, ascending), SHA-256 value at seal time (32 bytes)
//	public     2-byte length + TPMT_PUBLIC of the sealed object (the contents of its TPM2B_PUBLIC)
//	private    2-byte length + the TPM2B_PRIVATE buffer (encrypted and integrity-protected by the TPM)
//	checksum   32 bytes SHA-256 of everything before it
//
// Nothing in it is secret on its own: the private part is encrypted under the SRK, which never leaves the TPM. The
// checksum lets a damaged file be reported as damaged rather than as a TPM refusal.
const (
	blobMagic   = "AEDEKTPM"
	blobVersion = 1
)

type pcrValue struct {
	index uint8
	value []byte
}

type sealedBlob struct {
	srkHandle uint32
	srkName   []byte
	pcrs      []pcrValue
	public    []byte
	private   []byte
}

func encodeBlob(b *sealedBlob) []byte {
	var buf bytes.Buffer
	buf.WriteString(blobMagic)
	buf.WriteByte(blobVersion)
	buf.Write(binary.BigEndian.AppendUint32(nil, b.srkHandle))
	writeSized(&buf, b.srkName)
	buf.WriteByte(byte(len(b.pcrs)))
	for _, p := range b.pcrs {
		buf.WriteByte(p.index)
		buf.Write(p.value)
	}
	writeSized(&buf, b.public)
	writeSized(&buf, b.private)
	sum := sha256.Sum256(buf.Bytes())
	buf.Write(sum[:])
	return buf.Bytes()
}

func writeSized(buf *bytes.Buffer, b []byte) {
	buf.Write(binary.BigEndian.AppendUint16(nil, uint16(len(b))))
	buf.Write(b)
}

var errShort = errors.New("file ends early")

// blobReader reads the fields in order; the first error sticks.
type blobReader struct {
	b   []byte
	err error
}

func (r *blobReader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n > len(r.b) {
		r.err = errShort
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *blobReader) u8() uint8 {
	if v := r.take(1); v != nil {
		return v[0]
	}
	return 0
}

func (r *blobReader) u16() uint16 {
	if v := r.take(2); v != nil {
		return binary.BigEndian.Uint16(v)
	}
	return 0
}

func (r *blobReader) u32() uint32 {
	if v := r.take(4); v != nil {
		return binary.BigEndian.Uint32(v)
	}
	return 0
}

func (r *blobReader) sized() []byte { return r.take(int(r.u16())) }

// decodeBlob parses and checks a sealed-DEK file. Its input comes from disk, so any byte string must give an
// error, never a panic. The structure is checked before the checksum so a fuzzer (and an error message) gets to
// see which part is wrong.
func decodeBlob(raw []byte) (*sealedBlob, error) {
	if len(raw) > maxBlobFile {
		return nil, fmt.Errorf("file is larger than %d bytes", maxBlobFile)
	}
	if len(raw) < len(blobMagic)+1 || string(raw[:len(blobMagic)]) != blobMagic {
		return nil, errors.New("not a sealed-DEK file (bad magic)")
	}
	if v := raw[len(blobMagic)]; v != blobVersion {
		return nil, fmt.Errorf("unknown sealed-DEK file version %d (this amtedge reads version %d)", v, blobVersion)
	}
	if len(raw) < len(blobMagic)+1+sha256.Size {
		return nil, errShort
	}
	body, sum := raw[:len(raw)-sha256.Size], raw[len(raw)-sha256.Size:]
	r := &blobReader{b: body[len(blobMagic)+1:]}
	b := &sealedBlob{}
	b.srkHandle = r.u32()
	b.srkName = r.sized()
	n := int(r.u8())
	if r.err == nil && n > MaxPCR+1 {
		return nil, fmt.Errorf("%d PCRs listed, at most %d exist", n, MaxPCR+1)
	}
	for i := 0; i < n && r.err == nil; i++ {
		idx := r.u8()
		val := r.take(sha256.Size)
		if r.err != nil {
			break
		}
		if idx > MaxPCR {
			return nil, fmt.Errorf("PCR %d is out of range 0-%d", idx, MaxPCR)
		}
		if i > 0 && idx <= b.pcrs[i-1].index {
			return nil, errors.New("PCR list is not in ascending order")
		}
		b.pcrs = append(b.pcrs, pcrValue{index: idx, value: val})
	}
	b.public = r.sized()
	b.private = r.sized()
	if r.err != nil {
		return nil, r.err
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("%d unexpected bytes before the checksum", len(r.b))
	}
	if err := checkSRKHandle(b.srkHandle); err != nil {
		return nil, fmt.Errorf("SRK handle: %w", err)
	}
	// A SHA-256 name: 2-byte algorithm + 32-byte digest.
	if len(b.srkName) != 2+sha256.Size {
		return nil, fmt.Errorf("SRK name is %d bytes, want %d", len(b.srkName), 2+sha256.Size)
	}
	if len(b.private) == 0 {
		return nil, errors.New("private part is empty")
	}
	if err := checkSealedPublic(b.public, len(b.pcrs) > 0); err != nil {
		return nil, fmt.Errorf("public part: %w", err)
	}
	if want := sha256.Sum256(body); !bytes.Equal(want[:], sum) {
		return nil, errors.New("checksum mismatch")
	}
	return b, nil
}

// checkSealedPublic checks that the public part describes a sealed data object with the attributes Create gives
// it, so a file edited to weaken them (say, UserWithAuth next to a PCR policy) is refused before the TPM sees it.
func checkSealedPublic(raw []byte, withPolicy bool) error {
	pub, err := unmarshalPublic(raw)
	if err != nil {
		return err
	}
	if pub.Type != tpm2.TPMAlgKeyedHash || pub.NameAlg != tpm2.TPMAlgSHA256 {
		return fmt.Errorf("object type 0x%04X / name algorithm 0x%04X, want a SHA-256 keyed-hash object",
			uint16(pub.Type), uint16(pub.NameAlg))
	}
	a := pub.ObjectAttributes
	if !a.FixedTPM || !a.FixedParent || !a.NoDA || a.SensitiveDataOrigin || a.SignEncrypt || a.Decrypt {
		return errors.New("object attributes are not those of a sealed data-encryption key")
	}
	if withPolicy && (a.UserWithAuth || len(pub.AuthPolicy.Buffer) == 0) {
		return errors.New("PCRs are listed but the object is not bound to a PCR policy")
	}
	if !withPolicy && (!a.UserWithAuth || len(pub.AuthPolicy.Buffer) != 0) {
		return errors.New("no PCRs are listed but the object carries a policy")
	}
	return nil
}

// unmarshalPublic decodes a TPMT_PUBLIC with go-tpm. go-tpm's reflection decoder makes no promise about hostile
// input (fuzzing found no panic, but it is not our code); a panic there must become an error, not take the daemon
// down at start.
func unmarshalPublic(raw []byte) (pub *tpm2.TPMTPublic, err error) {
	defer func() {
		if r := recover(); r != nil {
			pub, err = nil, fmt.Errorf("undecodable (%v)", r)
		}
	}()
	pub, err = tpm2.Unmarshal[tpm2.TPMTPublic](raw)
	if err != nil {
		return nil, fmt.Errorf("undecodable: %w", err)
	}
	// Trailing bytes would make the object's name differ from what the TPM computes; refuse them here.
	if again := tpm2.Marshal(*pub); !bytes.Equal(again, raw) {
		return nil, errors.New("undecodable: trailing or non-canonical bytes")
	}
	return pub, nil
}
