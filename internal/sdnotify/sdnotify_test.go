package sdnotify

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// listen makes a notify socket as systemd does and points NOTIFY_SOCKET
// at it.
func listen(t *testing.T) *net.UnixConn {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	return c
}

func read(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, 256)
	n, err := c.Read(b)
	if err != nil {
		t.Fatal(err)
	}
	return string(b[:n])
}

func TestNotify(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	if sent, err := Notify("READY=1"); sent || err != nil {
		t.Fatalf("without systemd: %v %v", sent, err)
	}
	c := listen(t)
	if sent, err := Notify("READY=1"); !sent || err != nil {
		t.Fatalf("Notify: %v %v", sent, err)
	}
	if got := read(t, c); got != "READY=1" {
		t.Fatalf("systemd read %q", got)
	}
}

// TestWatchdog: pings come while alive says so, and stop when it does
// not (systemd then restarts the service).
func TestWatchdog(t *testing.T) {
	c := listen(t)
	t.Setenv("WATCHDOG_USEC", "20000")
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	alive := make(chan bool, 1)
	alive <- true
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Watchdog(ctx, func() bool {
			select {
			case a := <-alive:
				return a
			default:
				return false
			}
		})
	}()
	if got := read(t, c); got != "WATCHDOG=1" {
		t.Fatalf("systemd read %q", got)
	}
	// Not alive: no ping within many intervals.
	c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if n, err := c.Read(make([]byte, 64)); err == nil {
		t.Fatalf("a ping (%d bytes) while not alive", n)
	}
	cancel()
	<-done
	t.Setenv("WATCHDOG_PID", "1")
	if WatchdogInterval() != 0 {
		t.Fatal("a watchdog meant for another pid")
	}
}
