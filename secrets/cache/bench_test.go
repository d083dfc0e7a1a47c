package cache

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/amtedge/amtedge/secrets"
)

// BenchmarkPutDevice measures the write-through put: seal, bbolt commit and its fsync — the latency a
// provisioning flow waits before it may send a new password to a device. Puts rotate over 64 devices whose
// records carry a full history, as on a working box.
func BenchmarkPutDevice(b *testing.B) {
	s, _ := openTemp(b)
	ctx := b.Context()
	c := secrets.Credentials{AMTPassword: "P@ssw0rd-0123456789-abcdef", MEBxPassword: "Mebx-P@ss-01", State: secrets.Pending}
	for i := range 64 * (DefaultHistoryLimit + 1) {
		if err := s.PutDevice(ctx, fmt.Sprintf("4c4c4544-0000-1000-8000-%012d", i%64), c); err != nil {
			b.Fatal(err)
		}
	}
	uuids := make([]string, 64)
	for i := range uuids {
		uuids[i] = fmt.Sprintf("4c4c4544-0000-1000-8000-%012d", i)
	}
	i := 0
	lat := make([]time.Duration, 0, 4096)
	for b.Loop() {
		start := time.Now()
		if err := s.PutDevice(ctx, uuids[i%64], c); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
		i++
	}
	// The target is on the tail: report p50 and p99 besides the mean.
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkDevice measures a read: one bbolt lookup and a decrypt, no disk sync.
func BenchmarkDevice(b *testing.B) {
	s, _ := openTemp(b)
	ctx := b.Context()
	c := secrets.Credentials{AMTPassword: "P@ssw0rd-0123456789-abcdef", MEBxPassword: "Mebx-P@ss-01", State: secrets.Confirmed}
	for range DefaultHistoryLimit + 1 {
		if err := s.PutDevice(ctx, "dev", c); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		if _, err := s.Device(ctx, "dev"); err != nil {
			b.Fatal(err)
		}
	}
}
