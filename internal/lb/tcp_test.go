package lb

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// echoServer echoes every connection until the client half-closes, then
// closes.
func echoServer(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	return l.Addr().String()
}

func tcpYAML(target, extra string) string {
	return fmt.Sprintf(`  - name: lb
    listeners: [{protocol: tcp, listen: LISTEN, target_group: tg%s}]
    target_groups:
      - name: tg
        protocol: tcp
        targets: [{address: %s}]
        health_check: {protocol: tcp, interval: 100ms}
        deregistration_delay: 300ms
`, extra, target)
}

func dialLB(t *testing.T, url string) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

// TestTCPLargeTransferBothWays pushes more than the socket buffers hold in
// both directions at once, so the proxy must wait for its writes to drain.
func TestTCPLargeTransferBothWays(t *testing.T) {
	t.Parallel()
	bal, url := start(t, tcpYAML(echoServer(t), ""))
	waitHealthy(t, bal, "tg", 1)
	c := dialLB(t, url)
	data := make([]byte, 16<<20)
	rand.Read(data)
	go func() {
		c.Write(data)
		c.CloseWrite()
	}()
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if sha256.Sum256(got) != sha256.Sum256(data) {
		t.Fatalf("echoed %d bytes, not the %d sent", len(got), len(data))
	}
}

func TestTCPHalfClose(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for { // health checks connect too
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				req, _ := io.ReadAll(c) // until the client's FIN
				c.Write(append([]byte("got "), req...))
			}()
		}
	}()
	bal, url := start(t, tcpYAML(l.Addr().String(), ""))
	waitHealthy(t, bal, "tg", 1)
	c := dialLB(t, url)
	c.Write([]byte("ping"))
	c.CloseWrite()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "got ping" {
		t.Fatalf("answer %q %v", got, err)
	}
}

func TestTCPIdleTimeout(t *testing.T) {
	t.Parallel()
	bal, url := start(t, tcpYAML(echoServer(t), ", idle_timeout: 300ms"))
	waitHealthy(t, bal, "tg", 1)
	c := dialLB(t, url)
	c.Write([]byte("x"))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 1)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := c.Read(buf); err == nil {
		t.Fatal("read data from an idle connection")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("idle connection closed after %v", d)
	}
}

func TestTCPDrainClosesConnections(t *testing.T) {
	t.Parallel()
	backend := echoServer(t)
	bal, url := start(t, tcpYAML(backend, ""))
	waitHealthy(t, bal, "tg", 1)
	c := dialLB(t, url)
	c.Write([]byte("hi"))
	buf := make([]byte, 2)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, buf); err != nil || !bytes.Equal(buf, []byte("hi")) {
		t.Fatalf("echo %q %v", buf, err)
	}
	tg, _ := bal.TargetGroup("tg")
	done, err := tg.Deregister(backend)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("drain did not end")
	}
	if _, err := c.Read(buf); err == nil {
		t.Fatal("connection still open after the deregistration delay")
	}
	if s := stateOf(tg, backend); s != StateUnused {
		t.Fatalf("state %s", s)
	}
}

// TestTCPFirstByteTimeout: a tcp connection over which nothing passes
// either way is closed after first_byte_timeout (in the worker's sweep,
// to within a second); one whose target speaks first is not, though its
// client is silent until long after.
func TestTCPFirstByteTimeout(t *testing.T) {
	t.Parallel()
	greeter, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { greeter.Close() })
	go func() {
		for {
			c, err := greeter.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.WriteString(c, "hello\n")
				io.Copy(c, c)
			}()
		}
	}()
	tests := []struct {
		name    string
		target  string
		greeted bool
	}{
		{"silent both ways: closed", echoServer(t), false},
		{"target speaks first: kept", greeter.Addr().String(), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bal, url := start(t, tcpYAML(tt.target, ", first_byte_timeout: 300ms, idle_timeout: 1h"))
			waitHealthy(t, bal, "tg", 1)
			c := dialLB(t, url)
			br := bufio.NewReader(c)
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if tt.greeted {
				if line, err := br.ReadString('\n'); err != nil || line != "hello\n" {
					t.Fatalf("greeting %q %v", line, err)
				}
				// Past the first byte timeout and the sweep after it: still
				// open, and serving.
				c.SetReadDeadline(time.Now().Add(2500 * time.Millisecond))
				if _, err := br.ReadByte(); !isTimeout(err) {
					t.Fatalf("a greeted connection ended: %v", err)
				}
				c.SetReadDeadline(time.Now().Add(10 * time.Second))
				echoOnce(t, struct {
					io.Reader
					io.Writer
				}{br, c}, "still here")
				return
			}
			if _, err := br.ReadByte(); err == nil || isTimeout(err) {
				t.Fatalf("a silent connection was not closed within 10s: %v", err)
			}
		})
	}
}

// TestTunnelFirstByte: the controller's own copy (when no worker runs)
// closes a tunnel over which nothing passed within first, and keeps one
// that had a byte.
func TestTunnelFirstByte(t *testing.T) {
	t.Parallel()
	pair := func() (near, far net.Conn) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		near, err = net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		far, err = l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { near.Close(); far.Close() })
		return near, far
	}
	for _, used := range []bool{false, true} {
		client, a := pair()
		b, target := pair()
		done := make(chan struct{})
		go func() {
			defer close(done)
			tunnel(a, b, nil, nil, time.Hour, 100*time.Millisecond, nil)
		}()
		if !used {
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("a silent tunnel still open after 10s (first 100ms)")
			}
			continue
		}
		client.Write([]byte("x"))
		target.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(target, make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
		// Three first-byte timeouts later the tunnel still carries bytes.
		client.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		if _, err := client.Read(make([]byte, 1)); !isTimeout(err) {
			t.Fatalf("used tunnel: %v", err)
		}
		target.Write([]byte("y"))
		client.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(client, make([]byte, 1)); err != nil {
			t.Fatalf("a used tunnel was closed: %v", err)
		}
		client.Close()
		target.Close()
		<-done
	}
}

func TestPairExpired(t *testing.T) {
	const s = int64(time.Second)
	tests := []struct {
		name string
		p    conn2
		now  int64
		want bool
	}{
		{"fresh", conn2{first: time.Second, idle: time.Minute, born: 100 * s, last: 100 * s}, 100 * s, false},
		{"no byte within first", conn2{first: time.Second, idle: time.Minute, born: 100 * s, last: 100 * s}, 102 * s, true},
		{"a byte came: idle counts", conn2{first: time.Second, idle: time.Minute, born: 100 * s, last: 101 * s, used: true}, 102 * s, false},
		{"idle both ways", conn2{first: time.Second, idle: time.Minute, born: 100 * s, last: 101 * s, used: true}, 162 * s, true},
		{"no first byte timeout", conn2{idle: time.Minute, born: 100 * s, last: 100 * s}, 150 * s, false},
		{"no timeouts", conn2{born: 100 * s, last: 100 * s}, 1000 * s, false},
	}
	for _, tt := range tests {
		if got := tt.p.expired(tt.now); got != tt.want {
			t.Errorf("%s: expired = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestTunnelReadBy(t *testing.T) {
	began := time.Unix(100, 0)
	const s = int64(time.Second)
	tests := []struct {
		name      string
		idle      time.Duration
		first     time.Duration
		last      int64
		rdl, now  int64
		want      int64
		wantReset bool
	}{
		{"before any byte: began+first", time.Minute, time.Second, 0, 0, 100 * s, 101 * s, true},
		{"before any byte, set already", time.Minute, time.Second, 0, 101 * s, 100 * s, 101 * s, false},
		{"after a byte: idle from now", time.Minute, time.Second, 100 * s, 101 * s, 100 * s, 160 * s, true},
		{"idle set recently: kept", time.Minute, time.Second, 100 * s, 159 * s, 100 * s, 159 * s, false},
		{"no idle timeout: cleared", 0, time.Second, 100 * s, 101 * s, 100 * s, 0, true},
	}
	for _, tt := range tests {
		var last atomic.Int64
		last.Store(tt.last)
		tm := tunnelTimes{idle: tt.idle, first: tt.first, began: began, last: &last}
		got, reset := tm.readBy(tt.rdl, tt.now)
		if got != tt.want || reset != tt.wantReset {
			t.Errorf("%s: readBy = %d %v, want %d %v", tt.name, got, reset, tt.want, tt.wantReset)
		}
	}
}

// TestTCPEvictsOldestUnused: near max_connections, a new tcp connection
// closes the oldest one over which no byte has passed yet; one that
// passed bytes is never closed for room, though it is older.
func TestTCPEvictsOldestUnused(t *testing.T) {
	t.Parallel()
	bal, url := start(t, tcpYAML(echoServer(t), ", max_connections: 10, first_byte_timeout: 1h, idle_timeout: 1h"))
	waitHealthy(t, bal, "tg", 1)
	l := listenerOf(t, bal)
	busy := dialLB(t, url)
	busy.SetDeadline(time.Now().Add(30 * time.Second))
	echoOnce(t, busy, "busy")
	waitFor(t, "no idle connection", func() bool { return l.idle.len() == 0 })
	var silent []*net.TCPConn
	for i := range 8 {
		silent = append(silent, dialLB(t, url))
		waitFor(t, "silent connections listed", func() bool { return l.idle.len() == i+1 })
	}
	// 9 open: the 10th closes the oldest silent one, and is served.
	c := dialLB(t, url)
	c.SetDeadline(time.Now().Add(30 * time.Second))
	echoOnce(t, c, "new")
	if !closedByPeer(t, silent[0]) {
		t.Fatal("the oldest silent connection was not closed")
	}
	// Seven more new ones (each served: they leave the list as their
	// first byte passes) close the other seven silent ones, oldest first.
	for i := range 7 {
		n := dialLB(t, url)
		n.SetDeadline(time.Now().Add(30 * time.Second))
		echoOnce(t, n, fmt.Sprintf("new %d", i))
	}
	for i, s := range silent[1:] {
		if !closedByPeer(t, s) {
			t.Fatalf("silent connection %d not closed", i+1)
		}
	}
	echoOnce(t, busy, "still busy")
	if n := l.evicted.Load(); n != 8 {
		t.Fatalf("%d evicted, want the 8 silent ones", n)
	}
}
