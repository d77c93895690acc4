package lb

import (
	"bufio"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Target states, as in Elastic Load Balancing.
const (
	StateInitial   = "initial"   // registered; no health verdict yet
	StateHealthy   = "healthy"   // in rotation
	StateUnhealthy = "unhealthy" // failed its checks, or refused a connection, or its instance is going away
	StateDraining  = "draining"  // deregistered; finishing in-flight requests
	StateUnused    = "unused"    // deregistered by an operator and drained
)

// target is one backend of a target group. Its state is guarded by the
// target group's mutex; the counters and pool are safe for the proxy's
// goroutines.
type target struct {
	tg     *TargetGroup
	id     string
	addr   string
	group  string // the group whose instance it is; "" for a static target
	weight int
	seq    uint64 // order of making in its target group: picks its tcp worker

	// Guarded by tg.mu.
	state        string
	reason       string
	since        time.Time // of the last state change
	healthySince time.Time // for slow start
	manual       bool      // registered or deregistered by an operator
	checkOK      int       // consecutive check results
	checkFail    int
	stopCheck    chan struct{}
	drained      chan struct{} // closed when draining ends

	inflight atomic.Int64
	pool     pool
}

// backendConn is a keep-alive connection to a target.
type backendConn struct {
	t        *target
	c        net.Conn
	br       *bufio.Reader
	bw       *bufio.Writer
	lastUsed time.Time
}

func (bc *backendConn) close() {
	bc.c.Close()
	bc.t.pool.forget(bc)
}

// pool keeps a target's idle connections (newest first out, so that the
// least used ones age out) and knows its busy ones, so that the end of a
// drain can close them.
type pool struct {
	mu     sync.Mutex
	idle   []*backendConn
	busy   map[*backendConn]struct{}
	closed bool
}

const (
	maxIdlePerTarget = 256
	// idleLimit: idle connections older than this are closed rather than
	// reused: a target may have closed them meanwhile.
	idleLimit = 50 * time.Second
	// freshFor: a request that must not be retried (not idempotent, or
	// with a body) takes only a connection used this recently, when the
	// target is unlikely to have closed it, else a new one.
	freshFor = 2 * time.Second
)

// get returns an idle connection used within maxAge, or nil.
func (p *pool) get(now time.Time, maxAge time.Duration) *backendConn {
	p.mu.Lock()
	for n := len(p.idle); n > 0; n = len(p.idle) {
		bc := p.idle[n-1]
		p.idle = p.idle[:n-1]
		if now.Sub(bc.lastUsed) <= maxAge {
			if p.busy == nil {
				p.busy = map[*backendConn]struct{}{}
			}
			p.busy[bc] = struct{}{}
			p.mu.Unlock()
			return bc
		}
		bc.c.Close()
	}
	p.mu.Unlock()
	return nil
}

// track records a new connection as busy; false when the pool is closed.
func (p *pool) track(bc *backendConn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	if p.busy == nil {
		p.busy = map[*backendConn]struct{}{}
	}
	p.busy[bc] = struct{}{}
	return true
}

// put returns a busy connection for reuse.
func (p *pool) put(bc *backendConn, now time.Time) {
	bc.lastUsed = now
	p.mu.Lock()
	delete(p.busy, bc)
	if p.closed || len(p.idle) >= maxIdlePerTarget {
		p.mu.Unlock()
		bc.c.Close()
		return
	}
	p.idle = append(p.idle, bc)
	p.mu.Unlock()
}

func (p *pool) forget(bc *backendConn) {
	p.mu.Lock()
	delete(p.busy, bc)
	p.mu.Unlock()
}

// closeIdle closes the idle connections; with all, the busy ones too, and
// the pool takes no more.
func (p *pool) closeIdle(all bool) {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	var busy []*backendConn
	if all {
		p.closed = true
		for bc := range p.busy {
			busy = append(busy, bc)
		}
	}
	p.mu.Unlock()
	for _, bc := range idle {
		bc.c.Close()
	}
	for _, bc := range busy {
		bc.c.Close()
	}
}

// reopen lets a pool that was closed by a drain take connections again
// (the target was registered again).
func (p *pool) reopen() {
	p.mu.Lock()
	p.closed = false
	p.mu.Unlock()
}
