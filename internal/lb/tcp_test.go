package lb

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"strings"
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
