package testutil

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// What the kernel knows of TCP sockets, from sock_diag (the netlink
// interface ss uses): the way for a test to see that another goroutine or
// process is blocked in accept or has read what was sent, where sleeping
// would only guess. Only sockets of the test's network namespace are
// visible. Each look is one socket found by its addresses, as the kernel
// finds the socket of an arriving packet: listing them all (a dump, or
// /proc/net/tcp) takes a tenth of a second and more on a test machine
// with thousands of TIME_WAIT sockets.

// tcpListen is the state of a listening socket (include/net/tcp_states.h).
const tcpListen = 10

// tcpSocket is one socket as sock_diag reports it.
type tcpSocket struct {
	local, remote netip.AddrPort
	state         int
	// txQueue is, for a connection, the bytes written and not yet
	// acknowledged by the peer; rxQueue the bytes received and not yet
	// read by the owner. For a listener, rxQueue is the number of
	// connections waiting to be accepted.
	txQueue, rxQueue int
}

// Sizes of struct inet_diag_req_v2 and struct inet_diag_msg
// (include/uapi/linux/inet_diag.h).
const (
	sizeofDiagReq = 56
	sizeofDiagMsg = 72
)

// errNoSocket is what the kernel answers when no socket has the addresses.
var errNoSocket = errors.New("no such socket")

// findSocket returns the TCP socket bound to local and connected to remote,
// or, when there is none (a zero remote, say), the one listening on local. An IPv4 connection
// may belong to an IPv6 socket (a dual-stack listener accepted it) under
// its IPv4-mapped address: both are tried.
func findSocket(local, remote netip.AddrPort) (tcpSocket, error) {
	sk, err := diagLookup(local, remote)
	if errors.Is(err, errNoSocket) && local.Addr().Is4() {
		m := func(ap netip.AddrPort) netip.AddrPort {
			return netip.AddrPortFrom(netip.AddrFrom16(ap.Addr().As16()), ap.Port())
		}
		if !remote.IsValid() {
			remote = netip.AddrPortFrom(netip.IPv4Unspecified(), 0)
		}
		sk, err = diagLookup(m(local), m(remote))
	}
	if errors.Is(err, errNoSocket) {
		if remote.Port() == 0 {
			return tcpSocket{}, fmt.Errorf("no TCP socket listens on %s", local)
		}
		return tcpSocket{}, fmt.Errorf("no TCP connection from %s to %s", local, remote)
	}
	return sk, err
}

// findConn returns the connection from local to remote.
func findConn(local, remote netip.AddrPort) (tcpSocket, error) {
	sk, err := findSocket(local, remote)
	if err == nil && sk.state == tcpListen {
		// The kernel's lookup falls back to the listener, as for a SYN.
		return tcpSocket{}, fmt.Errorf("no TCP connection from %s to %s", local, remote)
	}
	return sk, err
}

// diagLookup asks sock_diag for the one socket with these addresses.
func diagLookup(local, remote netip.AddrPort) (tcpSocket, error) {
	if !remote.IsValid() {
		remote = netip.AddrPortFrom(netip.IPv4Unspecified(), 0)
	}
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return tcpSocket{}, fmt.Errorf("sock_diag: %w", err)
	}
	defer unix.Close(fd)
	req := make([]byte, unix.SizeofNlMsghdr+sizeofDiagReq)
	binary.NativeEndian.PutUint32(req[0:], uint32(len(req)))
	binary.NativeEndian.PutUint16(req[4:], unix.SOCK_DIAG_BY_FAMILY)
	binary.NativeEndian.PutUint16(req[6:], unix.NLM_F_REQUEST)
	binary.NativeEndian.PutUint32(req[8:], 1) // seq
	r := req[unix.SizeofNlMsghdr:]
	r[0], r[1] = unix.AF_INET6, unix.IPPROTO_TCP
	if local.Addr().Is4() {
		r[0] = unix.AF_INET
	}
	binary.NativeEndian.PutUint32(r[4:], ^uint32(0)) // any state
	id := r[8:]
	binary.BigEndian.PutUint16(id[0:], local.Port())
	binary.BigEndian.PutUint16(id[2:], remote.Port())
	putAddr(id[4:20], local.Addr())
	putAddr(id[20:36], remote.Addr())
	binary.NativeEndian.PutUint64(id[40:], ^uint64(0)) // INET_DIAG_NOCOOKIE
	if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return tcpSocket{}, fmt.Errorf("sock_diag: %w", err)
	}
	buf := make([]byte, 8<<10)
	n, _, err := unix.Recvfrom(fd, buf, 0)
	if err != nil {
		return tcpSocket{}, fmt.Errorf("sock_diag: %w", err)
	}
	msgs, err := syscall.ParseNetlinkMessage(buf[:n])
	if err != nil || len(msgs) == 0 {
		return tcpSocket{}, fmt.Errorf("sock_diag: unreadable answer (%d bytes): %v", n, err)
	}
	m := msgs[0]
	switch m.Header.Type {
	case unix.NLMSG_ERROR:
		if len(m.Data) < 4 {
			return tcpSocket{}, errors.New("sock_diag: short error")
		}
		switch errno := syscall.Errno(-int32(binary.NativeEndian.Uint32(m.Data))); errno {
		case unix.ENOENT:
			return tcpSocket{}, errNoSocket
		default:
			return tcpSocket{}, fmt.Errorf("sock_diag: %w", errno)
		}
	case unix.SOCK_DIAG_BY_FAMILY:
		return parseDiagMsg(m.Data)
	}
	return tcpSocket{}, fmt.Errorf("sock_diag: unexpected message type %d", m.Header.Type)
}

// putAddr writes a as sock_diag wants it: the address bytes in network
// order, an IPv4 one in the first four.
func putAddr(b []byte, a netip.Addr) {
	if a.Is4() {
		v := a.As4()
		copy(b, v[:])
		return
	}
	v := a.As16()
	copy(b, v[:])
}

// parseDiagMsg reads a struct inet_diag_msg: family, state, timer,
// retrans, then the socket id (ports and addresses in network order),
// then expires, rqueue, wqueue.
func parseDiagMsg(b []byte) (tcpSocket, error) {
	if len(b) < sizeofDiagMsg {
		return tcpSocket{}, fmt.Errorf("sock_diag: short message (%d bytes)", len(b))
	}
	id := b[4:52]
	addr := func(ip []byte, port []byte) netip.AddrPort {
		a, _ := netip.AddrFromSlice(ip)
		if b[0] == unix.AF_INET {
			a, _ = netip.AddrFromSlice(ip[:4])
		}
		return netip.AddrPortFrom(a.Unmap(), binary.BigEndian.Uint16(port))
	}
	return tcpSocket{
		local:   addr(id[4:20], id[0:2]),
		remote:  addr(id[20:36], id[2:4]),
		state:   int(b[1]),
		rxQueue: int(binary.NativeEndian.Uint32(b[56:])),
		txQueue: int(binary.NativeEndian.Uint32(b[60:])),
	}, nil
}

// addrPort converts a TCP address; an IPv4-mapped IPv6 address becomes
// IPv4.
func addrPort(a net.Addr) (netip.AddrPort, error) {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("%v is not a TCP address", a)
	}
	ap := ta.AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}

// Backlog returns how many connections wait in the accept queue of the
// socket listening on addr: connections the kernel has completed and
// nobody has accepted yet.
func Backlog(addr net.Addr) (int, error) {
	local, err := addrPort(addr)
	if err != nil {
		return 0, err
	}
	sk, err := findSocket(local, netip.AddrPort{})
	if err != nil {
		return 0, err
	}
	if sk.state != tcpListen {
		return 0, fmt.Errorf("the TCP socket on %s does not listen (state %d)", local, sk.state)
	}
	return sk.rxQueue, nil
}

// Unread returns how many bytes the connection bound to local, connected
// to remote, has received and its owner has not read yet. For the far end
// of a connection c to a process on this host, pass c.RemoteAddr(),
// c.LocalAddr().
func Unread(local, remote net.Addr) (int, error) {
	l, err := addrPort(local)
	if err != nil {
		return 0, err
	}
	r, err := addrPort(remote)
	if err != nil {
		return 0, err
	}
	sk, err := findConn(l, r)
	if err != nil {
		return 0, err
	}
	return sk.rxQueue, nil
}

// unacked returns the bytes written to c and not yet acknowledged.
func unacked(c net.Conn) (int, error) {
	l, err := addrPort(c.LocalAddr())
	if err != nil {
		return 0, err
	}
	r, err := addrPort(c.RemoteAddr())
	if err != nil {
		return 0, err
	}
	sk, err := findConn(l, r)
	if err != nil {
		return 0, err
	}
	return sk.txQueue, nil
}

// WaitRead waits until the far end of c, a TCP connection to a process on
// this host, has read every byte written to c so far: the server is then
// past the read that got them (handling a request, or blocked reading the
// rest of it). It fails the test if that has not happened after timeout,
// which is also what a far end that closed without reading gets.
func WaitRead(t testing.TB, timeout time.Duration, c net.Conn) {
	t.Helper()
	Eventually(t, timeout, fmt.Sprintf("the far end of %s->%s to read what was sent", c.LocalAddr(), c.RemoteAddr()), func() (struct{}, error) {
		// Two looks, in this order: once the peer has acknowledged every
		// byte (which stays true until c writes again), a later look at
		// its receive queue that finds it empty means it read them. One
		// look at both could see the peer's queue before the bytes
		// arrived.
		n, err := unacked(c)
		if err != nil {
			return struct{}{}, err
		}
		if n > 0 {
			return struct{}{}, fmt.Errorf("%d bytes not acknowledged", n)
		}
		n, err = Unread(c.RemoteAddr(), c.LocalAddr())
		if err != nil {
			return struct{}{}, err
		}
		if n > 0 {
			return struct{}{}, fmt.Errorf("%d bytes not read", n)
		}
		return struct{}{}, nil
	})
}
