package cache

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/amtedge/amtedge/secrets"
)

// On-disk layout. Bucket and key names are part of every record's associated data: renaming one makes every
// record under it unreadable, so they are fixed for schema 1.
const (
	schemaVersion = 1

	bucketMeta     = "meta"
	bucketDomains  = "domains"
	bucketProfiles = "profiles"
	bucketDevices  = "devices"
	bucketOutbox   = "outbox"

	metaSchema   = "schema"    // ASCII decimal, in the clear: read before the key is checked
	metaKeyCheck = "dek-check" // keyCheckPlain sealed under the DEK

	// recordVersion is the first byte of every stored value: the envelope format (AES-256-GCM with a random
	// 12-byte nonce: version || nonce || ciphertext || tag, the plaintext JSON).
	recordVersion byte = 1

	keyCheckPlain = "amtedge data-encryption key check v1"
)

// dataBuckets are the buckets of records, in the order Check reports them.
var dataBuckets = [...]string{bucketDomains, bucketProfiles, bucketDevices, bucketOutbox, bucketVault}

// codec seals and opens records. It holds the expanded AES key only, never the DEK bytes the caller passed.
type codec struct {
	aead cipher.AEAD
}

func newCodec(dek []byte) (*codec, error) {
	if len(dek) != 32 {
		return nil, fmt.Errorf("data-encryption key is %d bytes, want 32", len(dek))
	}
	block, err := aes.NewCipher(dek)
	if err != nil {
		return nil, fmt.Errorf("data-encryption key: %w", err)
	}
	// A random 96-bit nonce per record: collisions become likely only after about 2^32 writes under one key,
	// far beyond what a site box writes in its life.
	aead, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		return nil, fmt.Errorf("data-encryption key: %w", err)
	}
	return &codec{aead: aead}, nil
}

// additionalData binds a record to where it is stored: the envelope version, the bucket and the key. The
// bucket is length-prefixed so ("ab","c") and ("a","bc") differ.
func additionalData(bucket string, key []byte) []byte {
	ad := make([]byte, 0, 1+binary.MaxVarintLen64+len(bucket)+len(key))
	ad = append(ad, recordVersion)
	ad = binary.AppendUvarint(ad, uint64(len(bucket)))
	ad = append(ad, bucket...)
	return append(ad, key...)
}

func (c *codec) sealRaw(bucket string, key, plain []byte) []byte {
	out := make([]byte, 1, 1+len(plain)+c.aead.Overhead())
	out[0] = recordVersion
	return c.aead.Seal(out, nil, plain, additionalData(bucket, key))
}

func (c *codec) openRaw(bucket string, key, sealed []byte) ([]byte, error) {
	if len(sealed) == 0 {
		return nil, fmt.Errorf("%w: empty value", ErrCorrupt)
	}
	if sealed[0] != recordVersion {
		return nil, fmt.Errorf("%w: unknown record format %d", ErrCorrupt, sealed[0])
	}
	plain, err := c.aead.Open(nil, nil, sealed[1:], additionalData(bucket, key))
	if err != nil {
		// GCM says only "message authentication failed"; say what that can mean here.
		return nil, fmt.Errorf("%w: authentication failed (the value was damaged, moved from another key, "+
			"or written under another data-encryption key)", ErrCorrupt)
	}
	return plain, nil
}

// record is a decoded value that can check its own invariants.
type record interface {
	validate() error
}

func (c *codec) seal(bucket string, key []byte, r record) ([]byte, error) {
	plain, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode %s record: %w", bucket, err)
	}
	sealed := c.sealRaw(bucket, key, plain)
	clear(plain) // best effort: fewer stray copies of secrets on the heap
	return sealed, nil
}

// open decrypts and decodes a stored value into r. Its errors never quote the plaintext: JSON errors can
// carry fragments of the input (a character, a field name, a number), and the input holds secrets.
func (c *codec) open(bucket string, key, sealed []byte, r record) error {
	plain, err := c.openRaw(bucket, key, sealed)
	if err != nil {
		return err
	}
	defer clear(plain)
	dec := json.NewDecoder(bytes.NewReader(plain))
	dec.DisallowUnknownFields()
	if err := dec.Decode(r); err != nil {
		return fmt.Errorf("%w: decrypted %s record does not decode", ErrCorrupt, bucket)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: decrypted %s record has trailing data", ErrCorrupt, bucket)
	}
	if err := r.validate(); err != nil {
		return fmt.Errorf("%w: %s record: %w", ErrCorrupt, bucket, err)
	}
	return nil
}

// checkRecord decrypts and decodes one stored value as what its bucket holds. It is the path every read takes,
// used whole by Check and by the fuzz target.
func (c *codec) checkRecord(bucket string, key, sealed []byte) error {
	switch bucket {
	case bucketDomains:
		return c.open(bucket, key, sealed, new(domainRecord))
	case bucketProfiles:
		return c.open(bucket, key, sealed, new(profileRecord))
	case bucketDevices:
		return c.open(bucket, key, sealed, new(deviceRecord))
	case bucketOutbox:
		if len(key) != 8 {
			return fmt.Errorf("%w: outbox key is %d bytes, want 8", ErrCorrupt, len(key))
		}
		return c.open(bucket, key, sealed, new(outboxRecord))
	case bucketVault:
		return c.open(bucket, key, sealed, new(vaultRecord))
	case bucketMeta:
		switch string(key) {
		case metaSchema:
			_, err := parseSchema(sealed)
			return err
		case metaKeyCheck:
			return c.checkKey(sealed)
		}
		return fmt.Errorf("%w: unknown meta key", ErrCorrupt)
	}
	return fmt.Errorf("%w: unknown bucket", ErrCorrupt)
}

func parseSchema(v []byte) (int, error) {
	n, err := strconv.Atoi(string(v))
	if err != nil || n < 1 {
		return 0, fmt.Errorf("%w: unreadable schema mark", ErrCorrupt)
	}
	return n, nil
}

// checkKey opens the key check value: it fails with ErrWrongKey when the codec's key is not the one the state
// file was created with.
func (c *codec) checkKey(sealed []byte) error {
	plain, err := c.openRaw(bucketMeta, []byte(metaKeyCheck), sealed)
	if err != nil || string(plain) != keyCheckPlain {
		return ErrWrongKey
	}
	return nil
}

// Records. Strings are stored as []byte (base64 in the JSON) so that any bytes — not only valid UTF-8, which
// encoding/json would silently replace — come back exactly as written.

type domainRecord struct {
	PFX      []byte `json:"pfx"`
	Password []byte `json:"password"`
}

func (domainRecord) validate() error { return nil }

type profileRecord struct {
	AMT  []byte `json:"amt"`
	MEBx []byte `json:"mebx"`
}

func (profileRecord) validate() error { return nil }

type credRecord struct {
	AMT     []byte        `json:"amt"`
	MEBx    []byte        `json:"mebx"`
	State   secrets.State `json:"state"`
	Created time.Time     `json:"created"`
	Updated time.Time     `json:"updated"`
}

func (r credRecord) validate() error {
	if !r.State.Valid() {
		return errors.New("invalid credential state") // the value itself is not quoted: see codec.open
	}
	return nil
}

func toCredRecord(c secrets.Credentials) credRecord {
	return credRecord{
		AMT: []byte(c.AMTPassword), MEBx: []byte(c.MEBxPassword), State: c.State, Created: c.Created, Updated: c.Updated,
	}
}

func (r credRecord) credentials() secrets.Credentials {
	return secrets.Credentials{
		AMTPassword: string(r.AMT), MEBxPassword: string(r.MEBx), State: r.State, Created: r.Created, Updated: r.Updated,
	}
}

// deviceRecord is one device: its current credential set and older ones, newest first. Keeping them in one
// record makes PutDevice a single read-modify-write of one key.
type deviceRecord struct {
	Current credRecord   `json:"current"`
	History []credRecord `json:"history,omitempty"`
}

func (r deviceRecord) validate() error {
	if err := r.Current.validate(); err != nil {
		return fmt.Errorf("current set: %w", err)
	}
	for i, c := range r.History {
		if err := c.validate(); err != nil {
			return fmt.Errorf("history set %d: %w", i, err)
		}
	}
	return nil
}

func (r deviceRecord) device(uuid string) secrets.Device {
	d := secrets.Device{UUID: uuid, Current: r.Current.credentials()}
	if len(r.History) > 0 {
		d.History = make([]secrets.Credentials, len(r.History))
		for i, c := range r.History {
			d.History[i] = c.credentials()
		}
	}
	return d
}

// retire moves the current set to the front of the history, which is cut to limit sets (the oldest are dropped),
// to make room for a new current set.
func (r *deviceRecord) retire(limit int) {
	h := make([]credRecord, 0, min(len(r.History)+1, limit))
	h = append(h, r.Current)
	r.History = append(h, r.History[:min(len(r.History), limit-1)]...)
}

// Op is what a write did, as queued in the outbox.
type Op string

// The outbox operations.
const (
	OpPut    Op = "put"
	OpMark   Op = "mark"
	OpDelete Op = "delete"
)

// Kind is the kind of record a write touched.
type Kind string

// The kinds of records, which are also the Vault path prefixes the sync maps them to.
const (
	KindDomain  Kind = "domain"
	KindProfile Kind = "profile"
	KindDevice  Kind = "device"
)

// outboxRecord says which record changed and how; not the value: the drain reads the value at send time, so a
// secret is stored once, in its record.
type outboxRecord struct {
	Op   Op        `json:"op"`
	Kind Kind      `json:"kind"`
	Name []byte    `json:"name"`
	Time time.Time `json:"time"`
}

func (r outboxRecord) validate() error {
	switch r.Op {
	case OpPut, OpMark, OpDelete:
	default:
		return errors.New("unknown operation")
	}
	switch r.Kind {
	case KindDomain, KindProfile, KindDevice:
	default:
		return errors.New("unknown kind")
	}
	if r.Op == OpMark && r.Kind != KindDevice {
		return errors.New("mark of a record that is not a device")
	}
	if len(r.Name) == 0 {
		return errors.New("empty name")
	}
	return nil
}

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }
