//go:build !linux

package address

import (
	"errors"
	"net"
	"os"
)

// Socket mode needs Linux (descriptor passing is portable, but recovering a
// descriptor from a running process is not); these stubs keep the package
// building elsewhere.

// Socket is a listening socket handed to instances; Linux only.
type Socket struct{}

// ErrNotListening is returned for a descriptor that is not a listening TCP
// socket.
var ErrNotListening = errors.New("not a listening tcp socket")

// ListenSocket is not supported on this platform.
func ListenSocket(listen string) (*Socket, error) { return nil, errors.ErrUnsupported }

// SocketFromFile is not supported on this platform.
func SocketFromFile(f *os.File) (*Socket, error) { return nil, errors.ErrUnsupported }

// RecoverListener is not supported on this platform.
func RecoverListener(pid int, fd int) (*os.File, error) { return nil, errors.ErrUnsupported }

// Addr returns nil.
func (s *Socket) Addr() net.Addr { return nil }

// Verify is not supported on this platform.
func (s *Socket) Verify(listen string) error { return errors.ErrUnsupported }

// File is not supported on this platform.
func (s *Socket) File() (*os.File, error) { return nil, errors.ErrUnsupported }

// Close does nothing.
func (s *Socket) Close() error { return nil }
