package access

import (
	"container/list"
	"net"
	"net/netip"
	"sync"
	"time"
)

// limiter counts failed sign-ins per source in fixed windows: after `attempts` failures a source is refused
// until the window that began with its first failure ends, without its password being checked (so guessing
// costs the box nothing and the right password does not help a guesser either). The table is capped; when full
// the source whose window began first is forgotten.
type limiter struct {
	attempts int
	window   time.Duration
	capacity int

	mu      sync.Mutex
	entries map[string]*list.Element // of *limitEntry
	order   *list.List               // oldest window start first
}

type limitEntry struct {
	key      string
	start    time.Time
	failures int
}

func newLimiter(attempts int, window time.Duration, capacity int) *limiter {
	return &limiter{attempts: attempts, window: window, capacity: capacity, entries: map[string]*list.Element{}, order: list.New()}
}

// take charges one attempt to the source before its password is checked, atomically with the check — so
// sign-ins sent in parallel cannot all pass it while earlier ones are still being hashed — and reports instead
// whether the source is refused now, and for how long still. A sign-in that succeeds clears the charge (succeed).
func (l *limiter) take(key string, now time.Time) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e := l.current(key, now); e != nil && e.failures >= l.attempts {
		return e.start.Add(l.window).Sub(now), true
	}
	l.failLocked(key, now)
	return 0, false
}

func (l *limiter) failLocked(key string, now time.Time) {
	if e := l.current(key, now); e != nil {
		e.failures++
		return
	}
	l.entries[key] = l.order.PushBack(&limitEntry{key: key, start: now, failures: 1})
	for l.order.Len() > l.capacity {
		oldest := l.order.Front()
		delete(l.entries, oldest.Value.(*limitEntry).key)
		l.order.Remove(oldest)
	}
}

// succeed forgets a source's failures once it signed in.
func (l *limiter) succeed(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if el, ok := l.entries[key]; ok {
		delete(l.entries, key)
		l.order.Remove(el)
	}
}

// current is the source's entry in its running window; an expired entry is dropped (l.mu held).
func (l *limiter) current(key string, now time.Time) *limitEntry {
	el, ok := l.entries[key]
	if !ok {
		return nil
	}
	e := el.Value.(*limitEntry)
	if now.Sub(e.start) >= l.window || now.Before(e.start) {
		delete(l.entries, key)
		l.order.Remove(el)
		return nil
	}
	return e
}

// sourceKey is the rate limit's key for a request: the peer's IP address from the connection (no proxy header
// is trusted). IPv6 sources count per /64, since one host commonly holds a whole /64 and could otherwise rotate
// through it.
func sourceKey(remoteAddr string) string {
	host := remoteAddr
	if h, _, err := net.SplitHostPort(remoteAddr); err == nil {
		host = h
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	a = a.Unmap().WithZone("")
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}
