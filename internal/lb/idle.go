package lb

import (
	"net"
	"sync"
	"time"

	"github.com/autoheal/autoheal/internal/config"
)

// Idle client connections. An http connection that waits for its client
// (before its first request, or between keep-alive requests) is idle: it
// holds no buffer (see httpConn.wait) and sits in its listener's idle
// list, oldest first. A tcp connection is idle until a byte passes either
// way (the proxy knows no protocol: after that it cannot tell a quiet
// session from an abandoned one). When the listener nears
// max_connections, each new connection closes the oldest idle one, so that
// an attacker holding thousands of silent connections cannot lock out new
// clients; a connection in the middle of a request or a response is never
// in the list.

// phase is where a client connection is in its life.
type phase uint8

const (
	phaseFirstByte phase = iota // accepted; nothing received yet
	phaseKeepAlive              // between two requests
	phaseHead                   // a request head has begun
	phaseBusy                   // a body, the target's answer, a response or a tunnel
)

// idle says whether a connection in phase p may be closed to make room:
// only one that waits for its client, with nothing of a request received.
func (p phase) idle() bool { return p == phaseFirstByte || p == phaseKeepAlive }

// readDeadline is when a connection that entered phase p at since stops
// waiting for its client; zero when the phase has no fixed deadline: a
// connection between requests or busy is bounded by idle_timeout between
// reads, a deadline pushed forward lazily (see timedConn).
func readDeadline(p phase, since time.Time, lc *config.Listener) time.Time {
	var d time.Duration
	switch p {
	case phaseFirstByte:
		d = lc.FirstByteTimeout.D()
	case phaseHead:
		d = lc.HeaderTimeout.D()
	}
	if d <= 0 {
		return time.Time{}
	}
	return since.Add(d)
}

// evictReserve is how many of max connection slots are kept free by
// closing idle connections: 1%, at least one. A listener is near its limit
// when fewer than that are free.
func evictReserve(limit int) int { return max(1, limit/100) }

// shouldEvict says whether a listener with open connections (the one just
// accepted included) out of limit must close its oldest idle connection.
// Evicting before the limit rather than at it keeps the accept loop from
// waiting for the evicted connection's goroutine to let go of its slot.
func shouldEvict(open, limit int) bool { return open > limit-evictReserve(limit) }

// idleEntry is a connection's place in its listener's idle list.
type idleEntry struct {
	prev, next *idleEntry
	c          net.Conn // what eviction closes: the socket itself (under TLS too)
	listed     bool
	evicted    bool
}

// idleList is a listener's idle connections in the order they became
// idle: a doubly linked list through the entries, so that every operation
// is O(1) and allocates nothing.
type idleList struct {
	mu   sync.Mutex
	root idleEntry // root.next is the oldest, root.prev the newest
	n    int
}

func (l *idleList) lazyInit() {
	if l.root.next == nil {
		l.root.next, l.root.prev = &l.root, &l.root
	}
}

// add puts e at the newest end.
func (l *idleList) add(e *idleEntry) {
	l.mu.Lock()
	l.lazyInit()
	e.prev, e.next = l.root.prev, &l.root
	e.prev.next, l.root.prev = e, e
	e.listed, e.evicted = true, false
	l.n++
	l.mu.Unlock()
}

// remove takes e out of the list; false when it was evicted meanwhile (its
// connection is closed).
func (l *idleList) remove(e *idleEntry) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e.listed {
		l.unlink(e)
	}
	return !e.evicted
}

func (l *idleList) unlink(e *idleEntry) {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
	e.listed = false
	l.n--
}

// evictOldest takes the oldest entry out, marked evicted, and returns it
// (nil when there is none). The caller closes its connection.
func (l *idleList) evictOldest() *idleEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lazyInit()
	e := l.root.next
	if e == &l.root {
		return nil
	}
	l.unlink(e)
	e.evicted = true
	return e
}

// len is how many connections are idle.
func (l *idleList) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}
