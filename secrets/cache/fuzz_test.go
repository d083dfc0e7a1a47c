package cache

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/amtedge/amtedge/secrets"
)

// fuzzDEK is the fixed key of the fuzz target and its seed corpus.
func fuzzDEK() []byte {
	k := make([]byte, 32)
	for i := range k {
		k[i] = byte(i)
	}
	return k
}

// fuzzKey is the key each bucket's records are sealed to in the fuzz target.
func fuzzKey(bucket string) []byte {
	switch bucket {
	case bucketOutbox:
		return seqKey(1)
	case bucketMeta:
		return []byte(metaKeyCheck)
	}
	return []byte("k")
}

var fuzzBuckets = []string{bucketDomains, bucketProfiles, bucketDevices, bucketOutbox, bucketMeta, bucketVault}

// newFuzzRecord returns an empty record of a bucket's kind, for the round-trip check.
func newFuzzRecord(bucket string) record {
	switch bucket {
	case bucketDomains:
		return new(domainRecord)
	case bucketProfiles:
		return new(profileRecord)
	case bucketDevices:
		return new(deviceRecord)
	case bucketOutbox:
		return new(outboxRecord)
	case bucketVault:
		return new(vaultRecord)
	}
	return nil
}

// FuzzDecodeRecord feeds arbitrary bytes to the path every read takes — decrypt, then decode and validate —
// first as a stored value (which must fail to authenticate unless it is a genuine record) and then as the
// plaintext inside a genuine envelope (which reaches the JSON decoding and validation). Neither may panic; a
// plaintext that decodes must survive a re-encode unchanged.
func FuzzDecodeRecord(f *testing.F) {
	c, err := newCodec(fuzzDEK())
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range fuzzSeeds(c) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, bucket := range fuzzBuckets {
			key := fuzzKey(bucket)
			_ = c.checkRecord(bucket, key, data) // arbitrary stored bytes: must not panic

			sealed := c.sealRaw(bucket, key, data)
			if err := c.checkRecord(bucket, key, sealed); err != nil {
				continue
			}
			r := newFuzzRecord(bucket)
			if r == nil {
				continue
			}
			if err := c.open(bucket, key, sealed, r); err != nil {
				t.Fatalf("%s: checkRecord accepted what open refuses: %v", bucket, err)
			}
			again, err := c.seal(bucket, key, r)
			if err != nil {
				t.Fatalf("%s: a decoded record does not encode: %v", bucket, err)
			}
			r2 := newFuzzRecord(bucket)
			if err := c.open(bucket, key, again, r2); err != nil {
				t.Fatalf("%s: a re-encoded record does not decode: %v", bucket, err)
			}
			j1, _ := json.Marshal(r)
			j2, _ := json.Marshal(r2)
			if !bytes.Equal(j1, j2) {
				t.Fatalf("%s: round trip changed the record:\n%s\n%s", bucket, j1, j2)
			}
		}
	})
}

// fuzzSeeds are genuine sealed records of every kind, their plaintexts, and near misses.
func fuzzSeeds(c *codec) [][]byte {
	t0 := time.Date(2025, 3, 14, 15, 9, 26, 535897932, time.FixedZone("", 3600))
	recs := map[string]record{
		bucketDomains:  &domainRecord{PFX: []byte{0x30, 0x82, 0x01, 0x00}, Password: []byte("pfx-pässword")},
		bucketProfiles: &profileRecord{AMT: []byte("P@ssw0rd!"), MEBx: []byte("\xff\x00")},
		bucketDevices: &deviceRecord{
			Current: credRecord{AMT: []byte("new"), MEBx: []byte("m"), State: secrets.Pending, Created: t0, Updated: t0},
			History: []credRecord{{AMT: []byte("old"), State: secrets.Confirmed, Created: t0.Add(-time.Hour), Updated: t0}},
		},
		bucketOutbox: &outboxRecord{Op: OpMark, Kind: KindDevice, Name: []byte("uuid"), Time: t0},
	}
	var seeds [][]byte
	for _, bucket := range fuzzBuckets[:4] {
		r := recs[bucket]
		plain, _ := json.Marshal(r)
		sealed, _ := c.seal(bucket, fuzzKey(bucket), r)
		truncated := bytes.Clone(sealed[:len(sealed)-1])
		flipped := bytes.Clone(sealed)
		flipped[len(flipped)/2] ^= 1
		seeds = append(seeds, sealed, plain, truncated, flipped)
	}
	seeds = append(seeds,
		c.sealRaw(bucketMeta, []byte(metaKeyCheck), []byte(keyCheckPlain)),
		nil,
		[]byte{recordVersion},
		[]byte{2, 0, 0},
		[]byte("null"),
		[]byte(`{"current":{"state":"pending"},"history":[{"state":"bogus"}]}`),
		[]byte(`{"op":"put","kind":"domain","name":"ZA==","time":"2025-01-01T00:00:00Z"} trailing`),
		[]byte(`{"amt":"not base64!","mebx":null}`),
		[]byte(`{"pfx":"AAEC","password":"cA==","extra":1}`),
	)
	return seeds
}

// TestWriteFuzzSeeds regenerates the seed corpus in testdata/fuzz/FuzzDecodeRecord after a format change:
// AMTEDGE_WRITE_FUZZ_SEEDS=1 go test -run TestWriteFuzzSeeds ./secrets/cache/
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("AMTEDGE_WRITE_FUZZ_SEEDS") == "" {
		t.Skip("set AMTEDGE_WRITE_FUZZ_SEEDS=1 to rewrite the seed corpus")
	}
	c, err := newCodec(fuzzDEK())
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzDecodeRecord")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, seed := range fuzzSeeds(c) {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", seed)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
