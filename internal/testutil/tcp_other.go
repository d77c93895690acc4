//go:build !linux

package testutil

import (
	"errors"
	"net"
	"testing"
	"time"
)

// Only Linux tells what a TCP socket holds (sock_diag); elsewhere the tests
// that need it skip.

var errNoSockDiag = errors.New("socket queues are only visible on Linux")

// Backlog is only available on Linux.
func Backlog(addr net.Addr) (int, error) { return 0, errNoSockDiag }

// Unread is only available on Linux.
func Unread(local, remote net.Addr) (int, error) { return 0, errNoSockDiag }

// WaitRead skips the test: only Linux can see what the far end read.
func WaitRead(t testing.TB, timeout time.Duration, c net.Conn) {
	t.Helper()
	t.Skip("waiting for a peer to read needs Linux (sock_diag)")
}
