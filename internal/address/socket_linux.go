package address

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// Socket is a listening TCP socket the controller owns and hands to each
// instance in turn (systemd LISTEN_FDS style). The controller never accepts
// on it: while no instance runs, connections wait in its backlog instead of
// being refused.
type Socket struct {
	f    *os.File // never read: it only keeps the socket open
	addr *net.TCPAddr
}

// ListenSocket listens on listen (host:port).
func ListenSocket(listen string) (*Socket, error) {
	ln, err := listenTCP(listen)
	if err != nil {
		return nil, fmt.Errorf("socket listen: %w", err)
	}
	// Only a dup of the descriptor is kept (adopt below); closing the Go
	// listener closes its own descriptor, not the socket.
	defer ln.Close()
	rc, err := ln.(*net.TCPListener).SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("socket listen %s: %w", listen, err)
	}
	return adopt(rc, listen)
}

// SocketFromFile adopts a listening socket recovered from elsewhere (from a
// running instance after a controller restart, see RecoverListener). It
// checks that f is a listening TCP socket; compare Addr, or call Verify,
// to check it is the expected one. f stays the caller's to close.
func SocketFromFile(f *os.File) (*Socket, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("adopt socket %s: %w", f.Name(), err)
	}
	return adopt(rc, f.Name())
}

// adopt dups the descriptor behind rc into a Socket after checking it is a
// listening TCP socket.
func adopt(rc syscall.RawConn, name string) (*Socket, error) {
	var nfd int
	var addr *net.TCPAddr
	var opErr error
	err := rc.Control(func(fd uintptr) {
		addr, opErr = checkListening(int(fd))
		if opErr != nil {
			return
		}
		nfd, opErr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	})
	if err == nil {
		err = opErr
	}
	if err != nil {
		return nil, fmt.Errorf("adopt socket %s: %w", name, err)
	}
	// The blocking mode is left alone here: a recovered socket may be in use
	// by a live instance, which set the mode it needs. File sets it for the
	// next instance.
	return &Socket{f: os.NewFile(uintptr(nfd), "socket:"+addr.String()), addr: addr}, nil
}

// ErrNotListening is returned for a descriptor that is not a listening TCP
// socket.
var ErrNotListening = errors.New("not a listening tcp socket")

func checkListening(fd int) (*net.TCPAddr, error) {
	typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil {
		if errors.Is(err, unix.ENOTSOCK) {
			return nil, fmt.Errorf("%w: not a socket", ErrNotListening)
		}
		return nil, fmt.Errorf("getsockopt SO_TYPE: %w", err)
	}
	proto, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PROTOCOL)
	if err != nil {
		return nil, fmt.Errorf("getsockopt SO_PROTOCOL: %w", err)
	}
	// MPTCP is accepted too: a socket created by a Go program with default
	// settings (Go 1.24+) is one, and behaves as TCP towards plain clients.
	if typ != unix.SOCK_STREAM || proto != unix.IPPROTO_TCP && proto != unix.IPPROTO_MPTCP {
		return nil, fmt.Errorf("%w: socket type %d protocol %d", ErrNotListening, typ, proto)
	}
	acc, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
	if err != nil {
		return nil, fmt.Errorf("getsockopt SO_ACCEPTCONN: %w", err)
	}
	if acc != 1 {
		return nil, fmt.Errorf("%w: tcp socket not listening", ErrNotListening)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return nil, fmt.Errorf("getsockname: %w", err)
	}
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return &net.TCPAddr{IP: net.IP(sa.Addr[:]).To16(), Port: sa.Port}, nil
	case *unix.SockaddrInet6:
		a := &net.TCPAddr{IP: net.IP(sa.Addr[:]), Port: sa.Port}
		if sa.ZoneId != 0 {
			if ifi, err := net.InterfaceByIndex(int(sa.ZoneId)); err == nil {
				a.Zone = ifi.Name
			}
		}
		return a, nil
	}
	return nil, fmt.Errorf("%w: address family %T", ErrNotListening, sa)
}

// Addr returns the address the socket is bound to.
func (s *Socket) Addr() net.Addr { return s.addr }

// Verify returns an error unless the socket is bound to listen (host:port
// as configured): the same port (unless listen's is 0), and the same IP, or
// any wildcard for a wildcard (Go binds "0.0.0.0:p" and ":p" as a
// dual-stack [::]:p).
func (s *Socket) Verify(listen string) error {
	want, err := net.ResolveTCPAddr("tcp", listen)
	if err != nil {
		return fmt.Errorf("verify socket: %w", err)
	}
	got := s.addr
	ok := want.Port == 0 || want.Port == got.Port
	if want.IP == nil || want.IP.IsUnspecified() {
		ok = ok && got.IP.IsUnspecified()
	} else {
		ok = ok && want.IP.Equal(got.IP)
	}
	if !ok {
		return fmt.Errorf("verify socket: bound to %s, want %s", got, listen)
	}
	return nil
}

// File returns a new descriptor for the socket, in blocking mode, to pass
// to an instance (exec.Cmd.ExtraFiles); the caller closes it once the
// instance has its own copy.
//
// The mode is set on the open file description that every copy shares, so
// call File only once the previous holder is fenced: a Go program (or any
// epoll user) sets O_NONBLOCK on it, and File resets that so the next
// instance gets a blocking socket, as systemd hands them over by default.
func (s *Socket) File() (*os.File, error) {
	rc, err := s.f.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("socket file: %w", err)
	}
	var nfd int
	var opErr error
	if err := rc.Control(func(fd uintptr) {
		nfd, opErr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
		if opErr != nil {
			return
		}
		if opErr = unix.SetNonblock(nfd, false); opErr != nil {
			unix.Close(nfd)
		}
	}); err != nil {
		return nil, fmt.Errorf("socket file: %w", err)
	}
	if opErr != nil {
		return nil, fmt.Errorf("socket file: %w", opErr)
	}
	return os.NewFile(uintptr(nfd), s.f.Name()), nil
}

// Close closes the controller's descriptor. The socket stays open while an
// instance still holds a copy.
func (s *Socket) Close() error {
	if err := s.f.Close(); err != nil {
		return fmt.Errorf("close socket: %w", err)
	}
	return nil
}

// RecoverListener takes a copy of descriptor fd of process pid, so that a
// restarted controller can take back the listening socket that a
// still-running instance inherited. It uses pidfd_open and pidfd_getfd
// (Linux 5.6+), and needs the right to ptrace the process (same user, or
// CAP_SYS_PTRACE; Yama's ptrace_scope may restrict it further). The caller
// verifies the process's identity (not just its pid) beforehand.
func RecoverListener(pid int, fd int) (*os.File, error) {
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil, fmt.Errorf("recover listener: pidfd_open %d: %w", pid, err)
	}
	defer unix.Close(pidfd)
	nfd, err := unix.PidfdGetfd(pidfd, fd, 0)
	if err != nil {
		return nil, fmt.Errorf("recover listener: pidfd_getfd %d of pid %d: %w", fd, pid, err)
	}
	// The kernel sets close-on-exec on the new descriptor.
	return os.NewFile(uintptr(nfd), fmt.Sprintf("pid%d:fd%d", pid, fd)), nil
}
