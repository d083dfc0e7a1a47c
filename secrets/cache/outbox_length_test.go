package cache

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/amtedge/amtedge/secrets"
)

func TestOutboxLengthWithoutTheKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "amtedge.db")
	s, err := Open(path, make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"a", "b", "c"} {
		if err := s.PutDevice(context.Background(), u, secrets.Credentials{AMTPassword: "x", State: secrets.Pending}); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	if n, err := OutboxLength(path); err != nil || n != 3 {
		t.Fatalf("OutboxLength = %d, %v; want 3", n, err)
	}
}

// TestOutboxSummary checks that OutboxSummary agrees with Outbox on the queue's length and oldest time: empty, with
// several entries, and after the oldest is acknowledged.
func TestOutboxSummary(t *testing.T) {
	ctx := t.Context()
	clock := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	s, _ := openTemp(t, WithClock(func() time.Time { clock = clock.Add(time.Second); return clock }))
	check := func(want int) {
		t.Helper()
		entries, err := s.Outbox(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var oldest time.Time
		if len(entries) > 0 {
			oldest = entries[0].Time
		}
		n, first, err := s.OutboxSummary(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n != len(entries) || !first.Equal(oldest) || n != want {
			t.Fatalf("OutboxSummary = %d, %s; Outbox has %d, oldest %s; want %d entries", n, first, len(entries), oldest, want)
		}
	}
	check(0)
	if err := s.PutProfile(ctx, "p", secrets.ProfileSecret{}); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"a", "b", "a", "c"} {
		if err := s.PutDevice(ctx, u, secrets.Credentials{AMTPassword: "x", State: secrets.Pending}); err != nil {
			t.Fatal(err)
		}
	}
	check(5)
	entries, err := s.Outbox(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Ack(ctx, entries[0].Seq); err != nil {
		t.Fatal(err)
	}
	check(4)
	for _, e := range entries[1:] {
		if err := s.Ack(ctx, e.Seq); err != nil {
			t.Fatal(err)
		}
	}
	check(0)

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, _, err := s.OutboxSummary(cancelled); !errors.Is(err, context.Canceled) {
		t.Errorf("OutboxSummary with a cancelled context: err = %v, want context.Canceled", err)
	}
}
