package vaultsync

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/amtedge/amtedge/secrets"
	"github.com/amtedge/amtedge/secrets/cache"
)

// benchN is the figure: drain 10,000 outbox entries (target ≤ 60 s), pull 10,000 secrets. Measure once
// with: go test -run '^$' -bench . -benchtime 1x ./secrets/vaultsync
const benchN = 10_000

// BenchmarkDrain drains benchN outbox entries, one per device (the worst case: nothing coalesces), into a real
// dev Vault. Filling the outbox (benchN fsync'd puts) is not timed.
func BenchmarkDrain(b *testing.B) {
	e := newEnv(b, Config{})
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		for j := range benchN {
			c := secrets.Credentials{AMTPassword: fmt.Sprintf("Amt-%d-%d", i, j), MEBxPassword: "Mebx-P@ss-01", State: secrets.Pending}
			if err := e.store.PutDevice(ctx, fmt.Sprintf("4c4c4544-0000-1000-8000-%012d", j), c); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		res, err := e.s.Push(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if res.Acked != benchN || res.Written != benchN {
			b.Fatalf("drain: %+v", res)
		}
	}
	b.ReportMetric(float64(b.Elapsed())/float64(time.Second)/float64(b.N), "s/drain")
}

// BenchmarkPull pulls benchN device secrets written by the root token into a fresh cache each time (every one is
// read), then, untimed, checks that a second pull reads nothing.
func BenchmarkPull(b *testing.B) {
	e := newEnv(b, Config{})
	ctx := context.Background()
	var wg sync.WaitGroup
	jobs := make(chan int)
	for range 16 {
		wg.Go(func() {
			for j := range jobs {
				e.v.Put(b, fmt.Sprintf("%s/devices/4c4c4544-0000-1000-8000-%012d", testPrefix, j),
					map[string]any{"AMT_PASSWORD": fmt.Sprintf("Amt-%d", j), "MEBX_PASSWORD": "Mebx"})
			}
		})
	}
	for j := range benchN {
		jobs <- j
	}
	close(jobs)
	wg.Wait()
	dir := b.TempDir()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		st, err := cache.Open(filepath.Join(dir, fmt.Sprintf("state-%d.db", i)), bytes.Repeat([]byte{7}, 32))
		if err != nil {
			b.Fatal(err)
		}
		s, err := New(ctx, st, e.vc, Config{Logger: e.s.log})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		res, err := s.Pull(ctx)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if res.Read != benchN || res.Stored != benchN {
			b.Fatalf("pull: %+v", res)
		}
		t0 := time.Now()
		if res, err := s.Pull(ctx); err != nil || res.Read != 0 {
			b.Fatalf("second pull: %+v, %v", res, err)
		}
		b.ReportMetric(time.Since(t0).Seconds(), "s/unchanged-pull")
		st.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed())/float64(time.Second)/float64(b.N), "s/pull")
}
