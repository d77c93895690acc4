package testutil

import (
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

func TestParseDiagMsg(t *testing.T) {
	if _, err := parseDiagMsg(make([]byte, sizeofDiagMsg-1)); err == nil {
		t.Fatal("a short message accepted")
	}
}

// TestIPv6 sees a connection over ::1, whose far end, a dual-stack
// listener would show as IPv4-mapped.
func TestIPv6(t *testing.T) {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	WaitFor(t, Timeout, "a connection in the backlog", func() bool { n, _ := Backlog(ln.Addr()); return n == 1 })
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	io.WriteString(c, "abc")
	WaitFor(t, Timeout, "3 unread bytes", func() bool { n, _ := Unread(sc.LocalAddr(), sc.RemoteAddr()); return n == 3 })
}

// The kernel's view against real sockets: a listener nobody accepts on,
// and a connection whose reader is held back.
func TestBacklogAndUnread(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if n, err := Backlog(ln.Addr()); err != nil || n != 0 {
		t.Fatalf("backlog of a new listener: %d, %v", n, err)
	}
	var clients []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		clients = append(clients, c)
	}
	// The handshake's last ACK may reach the listener just after Dial
	// returns.
	WaitFor(t, Timeout, "3 connections in the backlog", func() bool { n, _ := Backlog(ln.Addr()); return n == 3 })
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	if n, err := Backlog(ln.Addr()); err != nil || n != 2 {
		t.Fatalf("backlog after one accept: %d, %v", n, err)
	}

	// Find the client that was accepted.
	var c net.Conn
	for _, cl := range clients {
		if cl.LocalAddr().String() == sc.RemoteAddr().String() {
			c = cl
		}
	}
	io.WriteString(c, "0123456789")
	WaitFor(t, Timeout, "10 unread bytes", func() bool { n, _ := Unread(sc.LocalAddr(), sc.RemoteAddr()); return n == 10 })
	io.ReadFull(sc, make([]byte, 4))
	if n, err := Unread(sc.LocalAddr(), sc.RemoteAddr()); err != nil || n != 6 {
		t.Fatalf("unread after reading 4: %d, %v", n, err)
	}

	if _, err := Backlog(c.LocalAddr()); err == nil || !strings.Contains(err.Error(), "no TCP socket listens on") {
		t.Fatalf("backlog of a connection: %v", err)
	}
	if _, err := Unread(sc.LocalAddr(), ln.Addr()); err == nil {
		t.Fatal("unread of a connection that does not exist")
	}
}

func TestWaitRead(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	io.WriteString(c, "request")

	// Nobody reads: the wait must fail, whatever the timeout.
	ft := &fakeTB{TB: t}
	WaitRead(ft, 50*time.Millisecond, c)
	if !strings.Contains(ft.failed, "to read what was sent: 7 bytes not read") {
		t.Fatalf("WaitRead with an idle reader: %q", ft.failed)
	}

	// The server reads part of it, and is then blocked reading the rest.
	got := make(chan string)
	go func() {
		b := make([]byte, 7)
		io.ReadFull(sc, b)
		got <- string(b)
		io.ReadFull(sc, b[:3])
		got <- string(b[:3])
	}()
	WaitRead(t, Timeout, c)
	if g := <-got; g != "request" {
		t.Fatalf("server read %q", g)
	}
	io.WriteString(c, "end")
	WaitRead(t, Timeout, c)
	if g := <-got; g != "end" {
		t.Fatalf("server read %q", g)
	}
}

// TestDualStackListener sees an IPv4 connection accepted by an IPv6
// socket, which the kernel keeps under IPv4-mapped addresses.
func TestDualStackListener(t *testing.T) {
	ln, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", ln.Addr().(*net.TCPAddr).Port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	WaitFor(t, Timeout, "a connection in the backlog", func() bool { n, _ := Backlog(ln.Addr()); return n == 1 })
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	io.WriteString(c, "abcd")
	WaitFor(t, Timeout, "4 unread bytes", func() bool { n, _ := Unread(sc.LocalAddr(), sc.RemoteAddr()); return n == 4 })
	go io.ReadFull(sc, make([]byte, 4))
	WaitRead(t, Timeout, c)
}
