package events

import "testing"

func TestHubSubscribers(t *testing.T) {
	hub := NewHub(2)
	sub := hub.Subscribe()
	for i := 0; i < 3; i++ {
		hub.Publish(Record{Name: Metrics})
	}
	if r := hub.Recent(0); len(r) != 2 || r[0].Seq != 2 || r[1].Seq != 3 {
		t.Fatalf("ring = %+v, want the last two", r)
	}
	if r := hub.Recent(2); len(r) != 1 || r[0].Seq != 3 {
		t.Fatalf("Recent(2) = %+v", r)
	}
	for want := uint64(1); want <= 3; want++ {
		if r := <-sub.C; r.Seq != want {
			t.Fatalf("subscriber got seq %d, want %d", r.Seq, want)
		}
	}
	hub.Unsubscribe(sub)
	if _, open := <-sub.C; open {
		t.Fatal("channel still open after Unsubscribe")
	}
	hub.Unsubscribe(sub) // twice is harmless
	slow := hub.Subscribe()
	for i := 0; i < subscriberBuffer+5; i++ {
		hub.Publish(Record{})
	}
	if slow.Dropped() != 5 {
		t.Fatalf("a full subscriber dropped %d records, want 5", slow.Dropped())
	}
}

// The ring wraps around many times over: Recent still answers the last records, oldest first, at every point.
func TestHubRingWraparound(t *testing.T) {
	const size = 5
	hub := NewHub(size)
	for n := uint64(1); n <= 3*size+2; n++ {
		hub.Publish(Record{Message: "m"})
		got := hub.Recent(0)
		first := uint64(1)
		if n > size {
			first = n - size + 1
		}
		if uint64(len(got)) != n-first+1 {
			t.Fatalf("after %d records: %d kept, want %d", n, len(got), n-first+1)
		}
		for i, r := range got {
			if r.Seq != first+uint64(i) {
				t.Fatalf("after %d records: Recent(0)[%d].Seq = %d, want %d (%+v)", n, i, r.Seq, first+uint64(i), got)
			}
		}
		// since cuts inside the wrapped ring, not at its storage boundary.
		if since := n - 2; n > size {
			if r := hub.Recent(since); len(r) != 2 || r[0].Seq != n-1 || r[1].Seq != n {
				t.Fatalf("after %d records: Recent(%d) = %+v", n, since, r)
			}
		}
	}
	if r := hub.Recent(3*size + 2); len(r) != 0 {
		t.Fatalf("Recent(last) = %+v, want none", r)
	}
	one := NewHub(0) // at least 1
	one.Publish(Record{})
	one.Publish(Record{})
	if r := one.Recent(0); len(r) != 1 || r[0].Seq != 2 {
		t.Fatalf("size-1 hub: %+v", r)
	}
}
