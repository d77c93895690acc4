package lb

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/autoheal/autoheal/internal/config"
)

// listener accepts client connections for one target group.
type listener struct {
	cfg config.Listener
	tg  *TargetGroup
	ln  net.Listener
	log *slog.Logger

	// forwardedTail ends the X-Forwarded-For line and adds -Proto and
	// -Port, fixed per listener.
	forwardedTail string
	hostFallback  string

	ctx     context.Context
	cancel  context.CancelFunc
	closing atomic.Bool
	slots   chan struct{} // max_connections
	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	wg      sync.WaitGroup
	// idle: connections waiting for their client (tcp: no byte passed
	// yet), oldest first; near max_connections each new connection closes
	// the oldest.
	idle    idleList
	evicted atomic.Int64
	// peak is the most connections open since memory was last reclaimed
	// (see reclaimSoon).
	peak         atomic.Int64
	rmu          sync.Mutex
	reclaimTimer *time.Timer
	lastReclaim  time.Time
}

func newListener(cfg config.Listener, tg *TargetGroup, log *slog.Logger) (*listener, error) {
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	proto := "http"
	if cfg.TLS != nil {
		cert, err := tls.LoadX509KeyPair(cfg.TLS.CertFile, cfg.TLS.KeyFile)
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("listener %s: tls: %w", cfg.Listen, err)
		}
		ln = tls.NewListener(ln, &tls.Config{
			Certificates: []tls.Certificate{cert},
			MinVersion:   tls.VersionTLS12,
			NextProtos:   []string{"http/1.1"},
		})
		proto = "https"
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ctx, cancel := context.WithCancel(context.Background())
	l := &listener{
		cfg: cfg, tg: tg, ln: ln,
		log:           log.With("listener", cfg.Listen),
		forwardedTail: "\r\nX-Forwarded-Proto: " + proto + "\r\nX-Forwarded-Port: " + port + "\r\n",
		hostFallback:  ln.Addr().String(),
		ctx:           ctx, cancel: cancel,
		slots: make(chan struct{}, max(cfg.MaxConnections, 1)),
		conns: map[net.Conn]struct{}{},
	}
	return l, nil
}

// Addr is where the listener listens.
func (l *listener) Addr() net.Addr { return l.ln.Addr() }

func (l *listener) run() {
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		l.accept()
	}()
}

func (l *listener) accept() {
	var backoff time.Duration
	for {
		select {
		case l.slots <- struct{}{}:
		case <-l.ctx.Done():
			return
		}
		c, err := l.ln.Accept()
		if err != nil {
			<-l.slots
			if l.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: wait, as net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			l.log.Warn("accept", "err", err, "retry_in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		l.noteOpen(len(l.slots))
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetNoDelay(true)
		}
		l.mu.Lock()
		l.conns[c] = struct{}{}
		l.mu.Unlock()
		l.wg.Add(1)
		go l.serve(c)
		if shouldEvict(len(l.slots), cap(l.slots)) {
			l.evictIdle()
		}
	}
}

// evictIdle closes the connection idle longest, if any, to make room for
// new ones. Its goroutine, woken by the close, sees that it was evicted
// and ends. A client whose request crossed the close on the wire sees the
// connection end without an answer, as at an idle timeout: HTTP clients
// retry an idempotent request on a reused connection that does so.
func (l *listener) evictIdle() {
	if e := l.idle.evictOldest(); e != nil {
		e.c.Close()
		l.evicted.Add(1)
	}
}

func (l *listener) serve(c net.Conn) {
	defer l.wg.Done()
	defer func() {
		if r := recover(); r != nil {
			l.log.Error("connection handler panicked", "panic", r)
		}
		c.Close()
		l.mu.Lock()
		delete(l.conns, c)
		l.mu.Unlock()
		<-l.slots
		l.noteClosed(len(l.slots))
	}()
	if l.cfg.Protocol == config.ProtocolTCP {
		l.serveTCP(c)
		return
	}
	l.serveHTTP(c)
}

// serveTCP forwards one connection to a target as it is.
func (l *listener) serveTCP(c net.Conn) {
	tg := l.tg
	tg.metrics.connections.Add(1)
	holdUntil := time.Now().Add(tg.cfg.HoldTimeout.D())
	var tried []*target
	for attempts := 0; ; {
		t := tg.pick(tried)
		if t == nil {
			if len(tried) == 0 || len(tg.rot.Load().targets) <= len(tried) {
				if !tg.hold(l.ctx, holdUntil) {
					tg.metrics.elb5xx.Add(1)
					return
				}
				tried = tried[:0]
			}
			continue
		}
		attempts++
		d := net.Dialer{Timeout: tg.cfg.ConnectTimeout.D()}
		bc, err := d.DialContext(l.ctx, "tcp", t.addr)
		if err != nil {
			tg.connectFailed(t, err)
			tried = append(tried, t)
			if attempts > *tg.cfg.Retries {
				tg.metrics.elb5xx.Add(1)
				return
			}
			tg.metrics.retries.Add(1)
			continue
		}
		if tc, ok := bc.(*net.TCPConn); ok {
			tc.SetNoDelay(true)
		}
		t.inflight.Add(1)
		defer t.inflight.Add(-1)
		if p, ok := spliceLoop(c, bc, l.cfg.IdleTimeout.D(), l.cfg.FirstByteTimeout.D(), t.seq, &l.idle, l.log); ok {
			conn := &backendConn{t: t, c: killConn{bc, p}}
			if !t.pool.track(conn) {
				p.kill() // drained meanwhile
			}
			select {
			case <-p.done:
			case <-l.ctx.Done():
				p.kill()
				<-p.done
			}
			t.pool.forget(conn)
			return
		}
		conn := &backendConn{t: t, c: bc}
		if !t.pool.track(conn) {
			bc.Close()
			return
		}
		// Idle, and so evictable, until a byte passes either way.
		entry := idleEntry{c: c}
		l.idle.add(&entry)
		tunnel(c, bc, nil, nil, l.cfg.IdleTimeout.D(), l.cfg.FirstByteTimeout.D(), func() { l.idle.remove(&entry) })
		l.idle.remove(&entry)
		conn.close()
		return
	}
}

// close stops accepting, lets requests in flight finish for up to grace,
// then closes every connection.
func (l *listener) close(grace time.Duration) {
	l.closing.Store(true)
	l.rmu.Lock()
	if l.reclaimTimer != nil && l.reclaimTimer.Stop() {
		l.reclaimTimer = nil
		l.wg.Done()
	}
	l.rmu.Unlock()
	l.ln.Close()
	done := make(chan struct{})
	go func() { l.wg.Wait(); close(done) }()
	// Idle keep-alive connections would wait for their idle timeout: wake
	// them now (a request being read still completes).
	l.mu.Lock()
	for c := range l.conns {
		c.SetReadDeadline(time.Now())
	}
	l.mu.Unlock()
	select {
	case <-done:
	case <-time.After(grace):
	}
	l.cancel()
	if l.cfg.Protocol == config.ProtocolTCP {
		// Each connection's goroutine has its worker close it: the worker
		// owns the sockets until then.
		<-done
		return
	}
	l.mu.Lock()
	for c := range l.conns {
		c.Close()
	}
	l.mu.Unlock()
	<-done
}

// Memory of closed connections. An idle connection holds little (see
// httpConn), but each open one still has a goroutine stack, and each busy
// one a reader and a writer; when thousands close at once (an attack
// ends, or its connections time out), that memory is free in the Go heap
// but stays in the process until a collection: a proxy that then idles
// allocates too little to start one, and the runtime forces one only
// every two minutes. So once reclaimAfter connections have closed since
// the peak, the listener asks for two collections (a sync.Pool keeps its
// buffers across one), after a second (the rest of the burst) and at most
// every reclaimEvery; the runtime's scavenger then hands the pages back
// to the OS within seconds.
const (
	reclaimAfter = 1024
	reclaimEvery = 5 * time.Second
)

// noteOpen records open connections, counted by the accept loop.
func (l *listener) noteOpen(open int) {
	for {
		p := l.peak.Load()
		if int64(open) <= p || l.peak.CompareAndSwap(p, int64(open)) {
			return
		}
	}
}

// noteClosed records open connections after one closed.
func (l *listener) noteClosed(open int) {
	p := l.peak.Load()
	if shouldReclaim(p, int64(open)) && l.peak.CompareAndSwap(p, int64(open)) {
		l.reclaimSoon()
	}
}

// shouldReclaim says whether memory is to be reclaimed with open
// connections left of a peak.
func shouldReclaim(peak, open int64) bool { return peak-open >= reclaimAfter }

// reclaimSoon schedules the collections, unless they are scheduled.
func (l *listener) reclaimSoon() {
	l.rmu.Lock()
	defer l.rmu.Unlock()
	if l.reclaimTimer != nil || l.closing.Load() {
		return
	}
	delay := max(time.Second, time.Until(l.lastReclaim.Add(reclaimEvery)))
	l.wg.Add(1)
	l.reclaimTimer = time.AfterFunc(delay, func() {
		defer l.wg.Done()
		l.rmu.Lock()
		l.reclaimTimer, l.lastReclaim = nil, time.Now()
		l.rmu.Unlock()
		if l.closing.Load() {
			return
		}
		runtime.GC()
		runtime.GC()
	})
}
