package address

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultWaitTimeout is used when ListenProxy is given no wait timeout; it
// matches the configuration's default.
const DefaultWaitTimeout = 30 * time.Second

// Dial retry while the holder refuses connections: every millisecond for
// the first dialFastFor, because the usual cause is an application that is
// starting and will listen within milliseconds, and every millisecond of
// sleep past that moment is latency added to a client's first request; then
// backing off to dialBackoffMax, so that connections waiting on a slow
// start cost little.
const (
	dialBackoffMin = 1 * time.Millisecond
	dialBackoffMax = 50 * time.Millisecond
	dialFastFor    = 100 * time.Millisecond
)

// Proxy holds a listening socket in the controller and forwards each
// connection to the backend of the instance that holds the address.
type Proxy struct {
	ln          *net.TCPListener
	waitTimeout time.Duration
	log         *slog.Logger
	dialer      net.Dialer
	ctx         context.Context // done when Close starts
	cancel      context.CancelFunc

	mu       sync.Mutex // guards the fields below; held only briefly
	instance string
	backend  string
	// changed is closed, and replaced, whenever the holder changes: a
	// connection waiting for a holder, or backing off from a refused dial,
	// proceeds the moment it is closed instead of polling.
	changed chan struct{}
	conns   map[*net.TCPConn]struct{} // client and backend sides, for Close
	closed  bool

	wg sync.WaitGroup // the accept loop and every connection goroutine

	accepted, active, waited, timedOut, dialFailures, dialRetries atomic.Int64
}

// ProxyStats are a proxy's counters since it was opened.
type ProxyStats struct {
	// Accepted connections.
	Accepted int64 `json:"accepted"`
	// Active connections: waiting, dialling or forwarding.
	Active int64 `json:"active"`
	// Waited is how many connections arrived, or were retrying, while no
	// instance held the address.
	Waited int64 `json:"waited"`
	// TimedOut is how many connections were closed because no instance
	// took the address within the wait timeout.
	TimedOut int64 `json:"timed_out"`
	// DialFailures is how many connections were closed because the holder
	// kept refusing them until the wait timeout.
	DialFailures int64 `json:"dial_failures"`
	// DialRetries counts failed dials that were retried.
	DialRetries int64 `json:"dial_retries"`
}

// ListenProxy listens on listen (host:port) and forwards connections to the
// current holder. A connection that finds no holder, or a holder that is not
// listening yet, waits up to waitTimeout (DefaultWaitTimeout if zero) before
// it is closed. The logger may be nil.
//
// On Linux Go sets SO_REUSEADDR on listeners, so the address can be bound
// again at once after a controller restart, despite connections of the
// previous run in TIME_WAIT.
func ListenProxy(listen string, waitTimeout time.Duration, logger *slog.Logger) (*Proxy, error) {
	if waitTimeout <= 0 {
		waitTimeout = DefaultWaitTimeout
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ln, err := listenTCP(listen)
	if err != nil {
		return nil, fmt.Errorf("proxy listen: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Proxy{
		ln:          ln.(*net.TCPListener),
		waitTimeout: waitTimeout,
		log:         logger,
		ctx:         ctx,
		cancel:      cancel,
		changed:     make(chan struct{}),
		conns:       map[*net.TCPConn]struct{}{},
	}
	p.wg.Add(1)
	go p.acceptLoop()
	return p, nil
}

// listenTCP listens with plain TCP. Go listens with Multipath TCP by default
// since 1.24 where the kernel has it; an address is handed to applications
// that may set TCP socket options MPTCP does not support, and the proxy
// wants the plain TCP sockets that splice(2) serves best.
func listenTCP(listen string) (net.Listener, error) {
	var lc net.ListenConfig
	lc.SetMultipathTCP(false)
	return lc.Listen(context.Background(), "tcp", listen)
}

// Associate makes instance the holder, forwarding to backend (host:port).
// Connections waiting for a holder proceed at once.
func (p *Proxy) Associate(instance, backend string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.instance, p.backend = instance, backend
	p.notifyLocked()
}

// Disassociate removes instance as the holder; new connections wait again.
// Connections already forwarded to it are left to finish (draining). It
// does nothing if instance is not the holder, so a late call about an old
// instance cannot take the address from its successor.
func (p *Proxy) Disassociate(instance string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.instance != instance || instance == "" {
		return
	}
	p.instance, p.backend = "", ""
	p.notifyLocked()
}

func (p *Proxy) notifyLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// Holder returns the current holder and its backend; both are empty when no
// instance holds the address.
func (p *Proxy) Holder() (instance, backend string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.instance, p.backend
}

func (p *Proxy) current() (backend string, changed <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.backend, p.changed
}

// Addr returns the address the proxy listens on.
func (p *Proxy) Addr() net.Addr { return p.ln.Addr() }

// Stats returns the proxy's counters.
func (p *Proxy) Stats() ProxyStats {
	return ProxyStats{
		Accepted:     p.accepted.Load(),
		Active:       p.active.Load(),
		Waited:       p.waited.Load(),
		TimedOut:     p.timedOut.Load(),
		DialFailures: p.dialFailures.Load(),
		DialRetries:  p.dialRetries.Load(),
	}
}

// Close stops accepting, closes every connection (waiting or forwarding)
// and waits for all the proxy's goroutines.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		p.wg.Wait()
		return nil
	}
	p.closed = true
	conns := make([]*net.TCPConn, 0, len(p.conns))
	for c := range p.conns {
		conns = append(conns, c)
	}
	p.mu.Unlock()

	p.cancel() // wakes waiters and aborts dials
	err := p.ln.Close()
	for _, c := range conns {
		c.Close()
	}
	p.wg.Wait()
	if err != nil {
		return fmt.Errorf("close proxy: %w", err)
	}
	return nil
}

// track registers a connection for Close; false means the proxy is closing
// and the caller must close it itself. Registering under the lock that
// Close takes guarantees no connection escapes Close.
func (p *Proxy) track(c *net.TCPConn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c *net.TCPConn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.Close()
}

func (p *Proxy) acceptLoop() {
	defer p.wg.Done()
	var delay time.Duration
	for {
		c, err := p.ln.AcceptTCP()
		if err != nil {
			if p.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: back off as net/http
			// does rather than spin, and try again.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			p.log.Warn("proxy accept failed; retrying", "err", err, "retry_in", delay)
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-p.ctx.Done():
				t.Stop()
				return
			}
			continue
		}
		delay = 0
		p.accepted.Add(1)
		if !p.track(c) {
			c.Close()
			return
		}
		// The accept loop holds a count on wg, so this Add cannot race with
		// Close's Wait reaching zero.
		p.wg.Add(1)
		go p.serve(c)
	}
}

// serve owns one client connection from accept to close.
func (p *Proxy) serve(client *net.TCPConn) {
	defer p.wg.Done()
	p.active.Add(1)
	defer p.active.Add(-1)
	defer p.untrack(client)

	backend, err := p.connect()
	if err != nil {
		p.log.Debug("proxy connection dropped", "client", client.RemoteAddr(), "err", err)
		return
	}
	if !p.track(backend) {
		backend.Close()
		return
	}
	defer p.untrack(backend)
	p.pipe(client, backend)
}

var (
	errNoHolder  = errors.New("no instance took the address in time")
	errClosing   = errors.New("proxy closing")
	errNoBackend = errors.New("holder refused connections until the wait timeout")
)

// connect dials the current holder, waiting for one while there is none and
// retrying while its dials fail, until the wait timeout. The holder is read
// again before every attempt: it may have changed meanwhile.
func (p *Proxy) connect() (*net.TCPConn, error) {
	ctx, cancel := context.WithTimeout(p.ctx, p.waitTimeout)
	defer cancel()
	backoff := dialBackoffMin
	var failingSince time.Time
	waited := false
	var lastErr error
	for {
		backend, changed := p.current()
		if backend == "" {
			if !waited {
				waited = true
				p.waited.Add(1)
			}
			select {
			case <-changed:
				continue
			case <-ctx.Done():
				return nil, p.giveUp(lastErr)
			}
		}
		c, err := p.dialer.DialContext(ctx, "tcp", backend)
		if err == nil {
			return c.(*net.TCPConn), nil
		}
		lastErr = fmt.Errorf("dial %s: %w", backend, err)
		if failingSince.IsZero() {
			failingSince = time.Now()
		}
		if ctx.Err() != nil {
			return nil, p.giveUp(lastErr)
		}
		p.dialRetries.Add(1)
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
			if time.Since(failingSince) >= dialFastFor {
				backoff = min(2*backoff, dialBackoffMax)
			}
		case <-changed:
			// A new holder (or the same one associated again): try it now.
			t.Stop()
			backoff, failingSince = dialBackoffMin, time.Time{}
		case <-ctx.Done():
			t.Stop()
			return nil, p.giveUp(lastErr)
		}
	}
}

// giveUp counts why a connection is dropped and says so.
func (p *Proxy) giveUp(lastDial error) error {
	switch {
	case p.ctx.Err() != nil:
		return errClosing
	case lastDial != nil:
		p.dialFailures.Add(1)
		return fmt.Errorf("%w: %w", errNoBackend, lastDial)
	default:
		p.timedOut.Add(1)
		return errNoHolder
	}
}

// pipe copies both ways until both directions are done. Each direction
// forwards the end of its stream as a half-close (CloseWrite), so protocols
// where a client shuts its sending side and then reads the answer work. An
// error in either direction (a reset, or Close) aborts both.
//
// io.Copy between two *net.TCPConn uses splice(2) on Linux: the bytes go
// from one socket to the other through a kernel pipe, never through user
// space.
func (p *Proxy) pipe(client, backend *net.TCPConn) {
	var abort sync.Once
	stop := func() {
		abort.Do(func() {
			client.Close()
			backend.Close()
		})
	}
	half := func(dst, src *net.TCPConn) {
		if _, err := io.Copy(dst, src); err != nil {
			stop()
			return
		}
		dst.CloseWrite()
	}
	p.wg.Add(1)
	upDone := make(chan struct{})
	go func() {
		defer p.wg.Done()
		defer close(upDone)
		half(backend, client)
	}()
	half(client, backend)
	<-upDone
}
