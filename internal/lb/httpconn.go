package lb

import (
	"bufio"
	"crypto/tls"
	"net"
	"sync"
	"syscall"
	"time"
)

// httpConn is what a client connection of an http listener holds for its
// whole life. Its buffers (a clientConn from a pool: the reader, the
// writer, the parsed heads) are taken when a request begins and given back
// when the connection waits for its client again, so that 10,000 idle
// connections hold a parked goroutine and this struct each rather than
// 16 KiB of buffers; once they close, nothing of theirs stays in a pool
// beyond the few buffers busy connections use at once.
type httpConn struct {
	l   *listener
	raw net.Conn // the socket: under TLS, the tls.Conn's
	tc  timedConn
	// rc waits for the socket to become readable without a buffer (nil
	// where the platform or the connection does not allow it: waits then
	// go through the buffered reader).
	rc    syscall.RawConn
	ready func(uintptr) bool // rc.Read's callback, made once
	woke  bool
	idle  idleEntry
	// ip is the client's address for X-Forwarded-For, in ipBuf.
	ip    []byte
	ipBuf [48]byte
}

// clientConns and writers are the buffers of connections that are reading
// or serving a request. A connection takes a writer only once it has read
// a head: one that trickles its head (slowloris) holds a reader alone.
var (
	clientConns = sync.Pool{New: func() any {
		return &clientConn{tried: make([]*target, 0, 4), br: bufio.NewReaderSize(nil, 8192)}
	}}
	writers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 8192) }}
)

// takeWriter gives cc a writer, when it has none, for its answer.
func (cc *clientConn) takeWriter() {
	if cc.bw == nil {
		cc.bw = writers.Get().(*bufio.Writer)
		cc.bw.Reset(cc.tc)
	}
}

// serveHTTP runs one client connection until it closes.
func (l *listener) serveHTTP(c net.Conn) {
	accepted := time.Now()
	hc := &httpConn{l: l, raw: c}
	tlsConn, isTLS := c.(*tls.Conn)
	if isTLS {
		hc.raw = tlsConn.NetConn()
	}
	hc.tc = timedConn{Conn: c, idle: l.cfg.IdleTimeout.D()}
	hc.idle.c = hc.raw
	hc.ip = hc.ipBuf[:0]
	if a, ok := hc.raw.RemoteAddr().(*net.TCPAddr); ok {
		hc.ip, _ = a.IP.AppendText(hc.ip)
	} else if host, _, err := net.SplitHostPort(hc.raw.RemoteAddr().String()); err == nil {
		hc.ip = append(hc.ip, host...)
	}
	if sc, ok := hc.raw.(syscall.Conn); ok && rawWaitSupported {
		if rc, err := sc.SyscallConn(); err == nil {
			hc.rc, hc.ready = rc, hc.readable
		}
	}
	var cc *clientConn
	defer func() {
		if cc != nil {
			cc.release()
		}
	}()
	// The first byte, of a request or of a TLS handshake, is due within
	// first_byte_timeout of the accept.
	hc.tc.readBy(readDeadline(phaseFirstByte, accepted, &l.cfg))
	if hc.rc != nil && !hc.wait() {
		return
	}
	// Under TLS the connection waits for its requests with its buffers: a
	// tls.Conn may hold decrypted bytes that the socket no longer shows.
	buffered := isTLS || hc.rc == nil
	if isTLS {
		// The handshake is bounded like a request head; then the first
		// request's first byte is due as a connection's first byte is.
		c.SetDeadline(readDeadline(phaseHead, time.Now(), &l.cfg))
		if err := tlsConn.HandshakeContext(l.ctx); err != nil {
			return
		}
		c.SetWriteDeadline(time.Time{})
		hc.tc.readBy(readDeadline(phaseFirstByte, time.Now(), &l.cfg))
	}
	if buffered {
		cc = hc.acquire()
		if !hc.waitBuffered(cc.br) {
			return
		}
	}
	for {
		if cc == nil {
			cc = hc.acquire()
		}
		if !cc.serveOne() || l.closing.Load() {
			return
		}
		if cc.br.Buffered() > 0 {
			continue // pipelined: the next head is here already
		}
		if buffered || keepBuffers(len(l.slots)) {
			if !hc.waitBuffered(cc.br) {
				return
			}
			continue
		}
		cc.release()
		cc = nil
		hc.tc.armIdle()
		if !hc.wait() {
			return
		}
	}
}

// keepBuffersBelow: while a listener has at most this many connections
// open, one waiting between requests keeps its buffers. Giving them back
// and taking them again for every request cost ~2.5% more CPU per request
// (bench/lb.sh, two runs); at most 1,024 connections keep ~17 MiB, and
// beyond that idle ones hold none. A connection's first wait, for its
// first byte, is always without buffers.
const keepBuffersBelow = 1024

// keepBuffers says whether a connection waiting between requests keeps
// its buffers, with open connections on its listener.
func keepBuffers(open int) bool { return open <= keepBuffersBelow }

// acquire takes buffers for the connection's next request.
func (hc *httpConn) acquire() *clientConn {
	cc := clientConns.Get().(*clientConn)
	cc.l, cc.tc = hc.l, &hc.tc
	cc.br.Reset(&hc.tc)
	cc.ip = hc.ip
	return cc
}

// release gives the buffers back. Nothing is left in them: the caller has
// served every request they held and flushed every response.
func (cc *clientConn) release() {
	cc.br.Reset(nil)
	if cc.bw != nil {
		cc.bw.Reset(nil)
		writers.Put(cc.bw)
		cc.bw = nil
	}
	cc.l, cc.tc, cc.ip = nil, nil, nil
	clientConns.Put(cc)
}

// wait parks until the client sends a byte, hangs up or the read deadline
// passes, holding no buffer, in the listener's idle list. False when the
// connection is done: timed out, ended, or evicted meanwhile.
func (hc *httpConn) wait() bool {
	hc.l.idle.add(&hc.idle)
	hc.woke = false
	err := hc.rc.Read(hc.ready)
	hc.tc.auto()
	return hc.l.idle.remove(&hc.idle) && err == nil
}

// waitBuffered is wait through the connection's reader.
func (hc *httpConn) waitBuffered(br *bufio.Reader) bool {
	hc.l.idle.add(&hc.idle)
	_, err := br.Peek(1)
	hc.tc.auto()
	return hc.l.idle.remove(&hc.idle) && err == nil
}

// readable is wait's callback. RawConn.Read calls it, and when it returns
// false, parks until the poller reports the socket readable and calls it
// again. The first call must look (the poller's readiness was reset before
// it, and bytes may be there already); a call after a wake-up need not:
// the poller wakes a reader only when bytes came, the peer hung up or an
// error is pending, so one syscall is saved per request. A rare spurious
// wake-up costs nothing but a read that waits under the same deadline.
func (hc *httpConn) readable(fd uintptr) bool {
	if hc.woke {
		return true
	}
	hc.woke = true
	return peekReady(fd)
}

// armIdle pushes the idle deadline forward as Read does, for a wait that
// does not go through Read.
func (t *timedConn) armIdle() {
	if t.idle > 0 {
		now := time.Now().UnixNano()
		if t.rdl-now < int64(t.idle)*9/10 {
			t.rdl = now + int64(t.idle)
			t.Conn.SetReadDeadline(time.Unix(0, t.rdl))
		}
	}
}
