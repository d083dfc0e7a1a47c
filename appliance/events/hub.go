package events

import (
	"sync"
	"time"
)

// Record is one emitted event as the activity views show it: the event's name, the log line's level and
// message, and its attributes as text. It holds what the log line held, so it holds no secret either.
type Record struct {
	Seq     uint64    `json:"seq"` // increasing per hub, for "since" queries and SSE ids
	Time    time.Time `json:"time"`
	Name    string    `json:"event"` // a catalog name, e.g. activation_failed
	Level   string    `json:"level"` // DEBUG, INFO, WARN, ERROR
	Message string    `json:"message"`
	Fields  []Field   `json:"fields"` // in the order they were logged
}

// Field is one attribute of a Record.
type Field struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Get returns the value of the first field named key, or "".
func (r Record) Get(key string) string {
	for _, f := range r.Fields {
		if f.Key == key {
			return f.Value
		}
	}
	return ""
}

// Hub keeps the most recent records and hands each new one to its subscribers. A subscriber that does not keep
// up loses records (its channel is bounded) rather than slowing down the box: Dropped tells it so.
type Hub struct {
	mu   sync.Mutex
	ring []Record // at most size; once full, a ring whose oldest record is at head
	head int      // index of the oldest record in ring (0 until ring is full)
	size int
	seq  uint64
	subs map[*Subscription]struct{}
}

// Subscription is one subscriber's feed.
type Subscription struct {
	C       <-chan Record
	c       chan Record
	mu      sync.Mutex
	dropped uint64
}

// Dropped is how many records the subscriber lost because its channel was full.
func (s *Subscription) Dropped() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dropped
}

// subscriberBuffer bounds what a slow subscriber may fall behind by.
const subscriberBuffer = 256

// NewHub keeps the last size records (at least 1).
func NewHub(size int) *Hub {
	return &Hub{size: max(size, 1), subs: map[*Subscription]struct{}{}}
}

// Publish stamps r with the next sequence number, keeps it and sends it to every subscriber.
func (h *Hub) Publish(r Record) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seq++
	r.Seq = h.seq
	if len(h.ring) < h.size {
		h.ring = append(h.ring, r)
	} else { // full: overwrite the oldest, the next one becomes the oldest
		h.ring[h.head] = r
		h.head = (h.head + 1) % h.size
	}
	for s := range h.subs {
		select {
		case s.c <- r:
		default:
			s.mu.Lock()
			s.dropped++
			s.mu.Unlock()
		}
	}
}

// Recent returns the kept records with a sequence number above since, oldest first.
func (h *Hub) Recent(since uint64) []Record {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]Record, 0, len(h.ring))
	for i := range h.ring {
		if r := h.ring[(h.head+i)%len(h.ring)]; r.Seq > since {
			out = append(out, r)
		}
	}
	return out
}

// Subscribe starts a feed of records published from now on. Call Unsubscribe when done.
func (h *Hub) Subscribe() *Subscription {
	c := make(chan Record, subscriberBuffer)
	s := &Subscription{C: c, c: c}
	h.mu.Lock()
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	return s
}

// Unsubscribe ends s's feed and closes its channel.
func (h *Hub) Unsubscribe(s *Subscription) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[s]; ok {
		delete(h.subs, s)
		close(s.c)
	}
}
