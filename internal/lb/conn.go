package lb

import (
	"bufio"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// timedConn bounds how long a connection may sit without progress. Setting
// a deadline costs a runtime timer update, too much to do on every read of
// a busy connection, so deadlines are pushed forward lazily: only once less
// than nine tenths of the idle timeout is left. A connection idle for the
// whole timeout is therefore always closed, one idle for 90% of it may be.
// A phase with a stricter bound (a request head) sets its own deadline.
type timedConn struct {
	net.Conn
	idle   time.Duration
	manual bool  // a phase set its own read deadline
	rdl    int64 // current read deadline, unix ns
	wdl    int64
}

func (t *timedConn) Read(b []byte) (int, error) {
	if !t.manual && t.idle > 0 {
		now := time.Now().UnixNano()
		if t.rdl-now < int64(t.idle)*9/10 {
			t.rdl = now + int64(t.idle)
			t.Conn.SetReadDeadline(time.Unix(0, t.rdl))
		}
	}
	return t.Conn.Read(b)
}

func (t *timedConn) Write(b []byte) (int, error) {
	if t.idle > 0 {
		now := time.Now().UnixNano()
		if t.wdl-now < int64(t.idle)*9/10 {
			t.wdl = now + int64(t.idle)
			t.Conn.SetWriteDeadline(time.Unix(0, t.wdl))
		}
	}
	return t.Conn.Write(b)
}

// readBy sets a fixed read deadline until auto is called.
func (t *timedConn) readBy(d time.Time) {
	t.manual = true
	t.rdl = d.UnixNano()
	t.Conn.SetReadDeadline(d)
}

// auto returns to idle-based read deadlines (the next Read sets one, when
// readBy had set another).
func (t *timedConn) auto() {
	if t.manual {
		t.manual = false
		t.rdl = 0
	}
}

// CloseWrite half-closes when the connection can.
func (t *timedConn) CloseWrite() error {
	if cw, ok := t.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// tunnel copies both ways between a and b until both directions end, for
// TCP listeners and HTTP upgrades. ar and br hold bytes already read from a
// and b (nil when none). When one side stops sending, the other is
// half-closed, so request/response protocols finish cleanly. idle bounds a
// connection with no traffic in either direction; first (when not 0) one
// that has had none since the tunnel began. onFirst (when not nil) is
// called when the first byte passes.
func tunnel(a, b net.Conn, ar, br *bufio.Reader, idle, first time.Duration, onFirst func()) (aToB, bToA int64) {
	var last atomic.Int64 // unix ns of the last byte either way; 0: none yet
	began := time.Now()
	if first <= 0 || (ar != nil && ar.Buffered() > 0) || (br != nil && br.Buffered() > 0) {
		last.Store(began.UnixNano())
	}
	t := tunnelTimes{idle: idle, first: first, began: began, last: &last, onFirst: onFirst}
	done := make(chan int64, 1)
	go func() { done <- pipe(a, b, br, t) }()
	aToB = pipe(b, a, ar, t)
	bToA = <-done
	return aToB, bToA
}

// tunnelTimes are what bounds a tunnel's two pipes.
type tunnelTimes struct {
	idle, first time.Duration
	began       time.Time
	last        *atomic.Int64
	onFirst     func()
}

// readBy is the read deadline of a pipe whose last deadline was rdl (unix
// ns, 0 for none) at now, and whether it changed: before any byte,
// began+first; then idle after now, pushed forward lazily as timedConn
// does.
func (t tunnelTimes) readBy(rdl, now int64) (int64, bool) {
	switch {
	case t.last.Load() == 0:
		return t.began.UnixNano() + int64(t.first), rdl == 0
	case t.idle <= 0:
		return 0, rdl != 0 // none: clear the first byte's
	case rdl-now < int64(t.idle)*9/10:
		return now + int64(t.idle), true
	}
	return rdl, false
}

// unixTime is ns as a deadline: 0 is none.
func unixTime(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// pipe copies src to dst (first what pending holds), then half-closes dst.
// A read that times out while the other direction has had traffic within
// idle keeps waiting: only a connection idle both ways is closed.
func pipe(dst, src net.Conn, pending *bufio.Reader, t tunnelTimes) int64 {
	var n int64
	if pending != nil && pending.Buffered() > 0 {
		b, _ := pending.Peek(pending.Buffered())
		w, err := dst.Write(b)
		n += int64(w)
		if err != nil {
			src.Close()
			dst.Close()
			return n
		}
	}
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	var rdl, wdl int64 // deadlines pushed forward lazily, as in timedConn
	idle := t.idle
	for {
		if next, ok := t.readBy(rdl, time.Now().UnixNano()); ok {
			rdl = next
			src.SetReadDeadline(unixTime(rdl))
		}
		r, err := src.Read(buf)
		if r > 0 {
			now := time.Now().UnixNano()
			if t.last.Swap(now) == 0 && t.onFirst != nil {
				t.onFirst()
			}
			if idle > 0 && wdl-now < int64(idle)*9/10 {
				wdl = now + int64(idle)
				dst.SetWriteDeadline(time.Unix(0, wdl))
			}
			w, werr := dst.Write(buf[:r])
			n += int64(w)
			if werr != nil {
				src.Close()
				dst.Close()
				return n
			}
		}
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() && t.last.Load() != 0 && time.Since(time.Unix(0, t.last.Load())) < idle {
				rdl = 0 // the other direction is busy, or the first byte came: wait again
				continue
			}
			if err == io.EOF {
				if cw, ok := dst.(interface{ CloseWrite() error }); ok {
					cw.CloseWrite()
					return n
				}
			}
			src.Close()
			dst.Close()
			return n
		}
	}
}
