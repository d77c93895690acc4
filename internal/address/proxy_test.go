package address

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/autoheal/autoheal/internal/testutil"
)

// echoServer listens on addr ("127.0.0.1:0" for any port) and echoes every
// connection, prefixing nothing, until the test ends. It half-closes its
// side when the client does.
func echoServer(t testing.TB, addr string) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Go(func() {
				defer func() {
					mu.Lock()
					delete(conns, c)
					mu.Unlock()
					c.Close()
				}()
				io.Copy(c, c)
				c.(*net.TCPConn).CloseWrite()
			})
		}
	})
	return ln
}

func freePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func newProxy(t testing.TB, wait time.Duration) *Proxy {
	t.Helper()
	p, err := ListenProxy("127.0.0.1:0", wait, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func dial(t testing.TB, p *Proxy) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", p.Addr().String())
	if err != nil {
		t.Fatalf("dial proxy: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

// roundTrip writes msg and reads it back.
func roundTrip(t testing.TB, c net.Conn, msg string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatalf("write: %v", err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("read: %v", err)
	}
	if string(buf) != msg {
		t.Fatalf("read %q, want %q", buf, msg)
	}
}

// expectClosed reads until the proxy closes the connection.
func expectClosed(t testing.TB, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	n, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("connection not closed by the proxy")
	}
	if n != 0 {
		t.Fatalf("read %d bytes from a connection that should carry none", n)
	}
}

func TestProxyWaitsForHolder(t *testing.T) {
	backend := echoServer(t, "127.0.0.1:0")
	p := newProxy(t, 10*time.Second)
	c := dial(t, p) // accepted, not refused, although nobody holds the address
	io.WriteString(c, "hello")
	// The holder comes only once the connection is waiting for one.
	testutil.WaitFor(t, testutil.Timeout, "the connection to wait for a holder", func() bool { return p.Stats().Waited == 1 })
	p.Associate("i-1", backend.Addr().String())
	c.SetReadDeadline(time.Now().Add(testutil.Timeout))
	buf := make([]byte, 5)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "hello" {
		t.Fatalf("read %q, %v; want hello", buf, err)
	}
	if s := p.Stats(); s.Accepted != 1 || s.Waited != 1 || s.TimedOut != 0 {
		t.Fatalf("stats %+v", s)
	}
	if inst, be := p.Holder(); inst != "i-1" || be != backend.Addr().String() {
		t.Fatalf("holder %s %s", inst, be)
	}
}

func TestProxyWaitTimeout(t *testing.T) {
	p := newProxy(t, 100*time.Millisecond)
	c := dial(t, p)
	expectClosed(t, c)
	testutil.WaitFor(t, testutil.Timeout, "the connection to be counted", func() bool { return p.Stats().Active == 0 })
	if s := p.Stats(); s.TimedOut != 1 || s.Waited != 1 || s.DialFailures != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestProxyDialRetry(t *testing.T) {
	// The holder's port refuses at first (the application is starting, or
	// restarting in place), then listens: the client never notices.
	addr := freePort(t)
	p := newProxy(t, 10*time.Second)
	p.Associate("i-1", addr)
	c := dial(t, p)
	testutil.WaitFor(t, testutil.Timeout, "a refused dial", func() bool { return p.Stats().DialRetries > 0 })
	echoServer(t, addr)
	roundTrip(t, c, "still here")
	if s := p.Stats(); s.DialFailures != 0 || s.Waited != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestProxyDialFailsUntilTimeout(t *testing.T) {
	p := newProxy(t, 100*time.Millisecond)
	p.Associate("i-1", freePort(t))
	c := dial(t, p)
	expectClosed(t, c)
	testutil.WaitFor(t, testutil.Timeout, "the connection to be counted", func() bool { return p.Stats().Active == 0 })
	if s := p.Stats(); s.DialFailures != 1 || s.TimedOut != 0 || s.DialRetries == 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestProxyHolderChangesWhileRetrying(t *testing.T) {
	// The connection is backing off from a dead holder when another takes
	// the address: it goes to the new one without waiting out its backoff.
	p := newProxy(t, 10*time.Second)
	p.Associate("i-old", freePort(t))
	c := dial(t, p)
	testutil.WaitFor(t, testutil.Timeout, "a refused dial", func() bool { return p.Stats().DialRetries > 0 })
	p.Associate("i-new", echoServer(t, "127.0.0.1:0").Addr().String())
	roundTrip(t, c, "moved")
}

func TestProxyDisassociate(t *testing.T) {
	a := echoServer(t, "127.0.0.1:0")
	b := echoServer(t, "127.0.0.1:0")
	p := newProxy(t, 10*time.Second)
	p.Associate("i-a", a.Addr().String())

	t.Run("by a non-holder is a no-op", func(t *testing.T) {
		p.Disassociate("i-b")
		p.Disassociate("")
		if inst, _ := p.Holder(); inst != "i-a" {
			t.Fatalf("holder %q", inst)
		}
		roundTrip(t, dial(t, p), "a")
	})
	t.Run("by the holder: existing connections drain, new ones wait", func(t *testing.T) {
		old := dial(t, p)
		roundTrip(t, old, "before")
		p.Disassociate("i-a")
		if inst, be := p.Holder(); inst != "" || be != "" {
			t.Fatalf("holder %q %q after disassociate", inst, be)
		}
		roundTrip(t, old, "after") // still forwarded to i-a
		waiting := dial(t, p)
		testutil.WaitFor(t, testutil.Timeout, "the new connection to wait", func() bool { return p.Stats().Waited == 1 })
		p.Associate("i-b", b.Addr().String())
		roundTrip(t, waiting, "b")
	})
}

func TestProxyHalfClose(t *testing.T) {
	// The backend reads the whole request until the client's FIN, then
	// answers and closes: the FIN must cross the proxy, and the answer must
	// still come back after it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		req, _ := io.ReadAll(c)
		fmt.Fprintf(c, "got %d bytes: %s", len(req), req)
	}()
	p := newProxy(t, 10*time.Second)
	p.Associate("i-1", ln.Addr().String())
	c := dial(t, p)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "request")
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	resp, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if string(resp) != "got 7 bytes: request" {
		t.Fatalf("response %q", resp)
	}
}

func TestProxyBackendReset(t *testing.T) {
	// The backend resets every connection: the client's connection is
	// closed, whether the reset comes after the dial (the copy fails) or
	// during it (the dial is retried until the wait timeout).
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.(*net.TCPConn).SetLinger(0)
			c.Close() // RST
		}
	}()
	p := newProxy(t, 500*time.Millisecond)
	p.Associate("i-1", ln.Addr().String())
	c := dial(t, p)
	expectClosed(t, c)
	testutil.WaitFor(t, testutil.Timeout, "the connection to end", func() bool { return p.Stats().Active == 0 })
}

func TestProxyClose(t *testing.T) {
	before := runtime.NumGoroutine()
	backend := echoServer(t, "127.0.0.1:0")
	p, err := ListenProxy("127.0.0.1:0", time.Minute, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Forwarding connections, and some waiting for a holder.
	var forwarding, waiting []*net.TCPConn
	p.Associate("i-1", backend.Addr().String())
	for range 5 {
		c := dial(t, p)
		roundTrip(t, c, "x")
		forwarding = append(forwarding, c)
	}
	p.Disassociate("i-1")
	for range 5 {
		waiting = append(waiting, dial(t, p))
	}
	testutil.WaitFor(t, testutil.Timeout, "the waiters", func() bool { return p.Stats().Waited == 5 })
	if s := p.Stats(); s.Active != 10 {
		t.Fatalf("stats %+v", s)
	}
	done := make(chan error)
	go func() { done <- p.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close hangs")
	}
	for _, c := range append(forwarding, waiting...) {
		expectClosed(t, c)
	}
	if s := p.Stats(); s.Active != 0 || s.TimedOut != 0 {
		t.Fatalf("stats after close %+v", s)
	}
	if _, err := net.DialTimeout("tcp", p.Addr().String(), time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial after close: %v, want refused", err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	// Every goroutine of the proxy is gone (the echo server's are the
	// test's own, and end at cleanup).
	for _, c := range append(forwarding, waiting...) {
		c.Close()
	}
	testutil.WaitFor(t, testutil.Timeout, "goroutines to end", func() bool { return runtime.NumGoroutine() <= before+2 })
}

func TestProxyManyConnections(t *testing.T) {
	backend := echoServer(t, "127.0.0.1:0")
	p := newProxy(t, 10*time.Second)
	const n = 200
	var wg sync.WaitGroup
	var failed atomic.Int32
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			c, err := net.Dial("tcp", p.Addr().String())
			if err != nil {
				failed.Add(1)
				t.Error(err)
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(20 * time.Second))
			msg := make([]byte, 64<<10+i)
			rand.Read(msg)
			go func() {
				c.Write(msg)
				c.(*net.TCPConn).CloseWrite()
			}()
			got, err := io.ReadAll(c)
			if err != nil || !bytes.Equal(got, msg) {
				failed.Add(1)
				t.Errorf("conn %d: %d bytes back, want %d (%v)", i, len(got), len(msg), err)
			}
		})
	}
	close(start)
	// Half of them arrive before the holder, and the holder flips under
	// the others.
	testutil.WaitFor(t, testutil.Timeout, "half the connections to wait", func() bool { return p.Stats().Waited >= n/2 })
	p.Associate("i-1", backend.Addr().String())
	p.Associate("i-1", backend.Addr().String())
	wg.Wait()
	if failed.Load() > 0 {
		t.Fatalf("%d of %d connections failed", failed.Load(), n)
	}
	testutil.WaitFor(t, testutil.Timeout, "connections to end", func() bool { return p.Stats().Active == 0 })
	if s := p.Stats(); s.Accepted != n {
		t.Fatalf("stats %+v", s)
	}
}

func TestListenProxyErrors(t *testing.T) {
	taken := echoServer(t, "127.0.0.1:0").Addr().String()
	for _, addr := range []string{taken, "127.0.0.1:notaport", "256.0.0.1:80"} {
		t.Run(addr, func(t *testing.T) {
			p, err := ListenProxy(addr, 0, nil)
			if err == nil {
				p.Close()
				t.Fatal("no error")
			}
			if !strings.HasPrefix(err.Error(), "proxy listen: ") {
				t.Fatalf("error %q", err)
			}
		})
	}
	t.Run("zero wait timeout means the default", func(t *testing.T) {
		p := newProxy(t, 0)
		if p.waitTimeout != DefaultWaitTimeout {
			t.Fatalf("wait timeout %s", p.waitTimeout)
		}
	})
}

// BenchmarkProxyThroughput sends a stream one way to a sink, directly and
// through the proxy, in the same run.
func BenchmarkProxyThroughput(b *testing.B) {
	sink, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer sink.Close()
	go func() {
		for {
			c, err := sink.Accept()
			if err != nil {
				return
			}
			go func() {
				n, _ := io.Copy(io.Discard, c)
				fmt.Fprintf(c, "%d", n)
				c.Close()
			}()
		}
	}()
	p := newProxy(b, 10*time.Second)
	p.Associate("i-1", sink.Addr().String())

	const chunk = 256 << 10
	buf := make([]byte, chunk)
	for _, target := range []struct{ name, addr string }{
		{"direct", sink.Addr().String()},
		{"proxy", p.Addr().String()},
	} {
		b.Run(target.name, func(b *testing.B) {
			c, err := net.Dial("tcp", target.addr)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			b.SetBytes(chunk)
			b.ResetTimer()
			for b.Loop() {
				if _, err := c.Write(buf); err != nil {
					b.Fatal(err)
				}
			}
			// Count the time until the sink has it all.
			c.(*net.TCPConn).CloseWrite()
			got, _ := io.ReadAll(c)
			b.StopTimer()
			if want := fmt.Sprint(b.N * chunk); string(got) != want {
				b.Fatalf("sink read %s bytes, want %s", got, want)
			}
		})
	}
}
