package lb

import (
	"encoding/binary"
	"errors"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The tcp listener's data path, in a worker process. Copying each
// direction in its own goroutine costs, per message, a read that finds
// nothing (EAGAIN) before the goroutine parks, and a park and a wake-up
// through the runtime's poller: that kept the tcp listener at ~0.8x
// HAProxy's rate. Event loops in the controller's own process (epoll,
// level-triggered, one per CPU) brought it to ~0.96x, and no loop design
// went further: in a runtime with several processors, a loop's wake-up
// passes through the scheduler's hand-offs between threads. So, as nginx
// does, each loop runs in a worker process of its own with one processor:
// its one thread sleeps in the poller and runs the loop as soon as it wakes
// (about 1.03-1.05x HAProxy on two cores, see the README).
//
// The controller accepts, picks a target, connects (with its retries and
// hold) and hands both sockets to a worker over a unix socket
// (SCM_RIGHTS); the worker copies bytes until the pair ends and reports
// it. Messages are fixed-size records, one per datagram (SOCK_SEQPACKET).

const (
	opAdd  = 1 // controller -> worker: id, idle, first; the client and target sockets ride along
	opKill = 2 // controller -> worker: id
	opDone = 3 // worker -> controller: id
	opUsed = 4 // worker -> controller: id; the pair's first byte passed (it is no longer idle)
	msgLen = 25
)

type msg struct {
	op    byte
	id    uint64
	idle  int64 // ns
	first int64 // ns: first_byte_timeout
}

func (m msg) bytes() []byte {
	var b [msgLen]byte
	b[0] = m.op
	binary.LittleEndian.PutUint64(b[1:], m.id)
	binary.LittleEndian.PutUint64(b[9:], uint64(m.idle))
	binary.LittleEndian.PutUint64(b[17:], uint64(m.first))
	return b[:]
}

func parseMsg(b []byte) (msg, bool) {
	if len(b) != msgLen {
		return msg{}, false
	}
	return msg{op: b[0], id: binary.LittleEndian.Uint64(b[1:]), idle: int64(binary.LittleEndian.Uint64(b[9:])),
		first: int64(binary.LittleEndian.Uint64(b[17:]))}, true
}

// workerEnv marks a process started as a tcp worker; workerFD is its
// control socket.
const (
	workerEnv = "AUTOHEAL_LB_WORKER"
	workerFD  = 3
)

// Any binary that links this package can serve as a worker, test binaries
// included: the controller re-executes /proc/self/exe with workerEnv set.
// This runs in init rather than from main so that no binary can forget it
// (one that did would run its own main, a test binary all its tests).
func init() {
	if os.Getenv(workerEnv) != "1" {
		return
	}
	// Not on this goroutine: the runtime locks it to the main thread
	// during init, and a locked goroutine's every park and wake-up passes
	// its processor between two threads (a futex wake-up per batch).
	go func() { os.Exit(runWorker()) }()
	select {}
}

// runWorker serves pairs until the controller's end of the control socket
// closes (the controller exited or stopped the worker).
func runWorker() int {
	runtime.GOMAXPROCS(1)
	// The controller decides when connections end: a terminal's ^C or a
	// service manager's SIGTERM reaches the whole process group, and the
	// controller drains before it exits, which closes the control socket.
	signal.Ignore(syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGPIPE)
	lp, err := newEventLoop(workerFD)
	if err != nil {
		os.Stderr.WriteString("autoheal tcp worker: " + err.Error() + "\n")
		return 1
	}
	lp.run()
	return 0
}

// pairBufSize is each direction's buffer.
const pairBufSize = 32 << 10

// dir is one direction of a pair: bytes read from src wait in buf[off:n]
// until dst takes them.
type dir struct {
	src, dst int
	buf      []byte
	off, n   int
	eof      bool // src ended; dst is half-closed once buf is flushed
	shut     bool
}

// conn2 is a client socket and its target socket.
type conn2 struct {
	id     uint64
	afd    int // client
	bfd    int // target
	ab, ba dir
	idle   time.Duration
	last   int64 // unix ns of the last byte either way
	// first bounds a pair that has passed no byte either way since born:
	// on a tcp listener, that is what idle means (a target that speaks
	// first makes its pair busy).
	first  time.Duration
	born   int64
	used   bool
	ia, ib uint32
	// rega and regb: the socket is in the epoll set. A socket nothing is
	// wanted from is taken out: epoll reports a hang-up whatever the
	// interest, so one left in after its end would be reported forever.
	rega, regb bool
	closed     bool
}

// eventLoop serves pairs from one epoll instance. It does not block in
// epoll_wait: the epoll descriptor is itself registered with the Go
// runtime's poller (it reads as ready when it holds events), so the loop's
// goroutine parks like any other and the runtime can still run its timers.
type eventLoop struct {
	buf   [pairBufSize]byte // what was just read, on its way out
	epfd  int
	epf   *os.File
	ctl   int
	out   [][]byte // reports the control socket did not take yet
	ctlEv uint32
	pairs map[int]*conn2    // by fd, both sides
	ids   map[uint64]*conn2 // by the controller's id
}

func newEventLoop(ctl int) (*eventLoop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	if err := unix.SetNonblock(ctl, true); err != nil {
		unix.Close(epfd)
		return nil, err
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(ctl)}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, ctl, &ev); err != nil {
		unix.Close(epfd)
		return nil, err
	}
	// Non-blocking, so os.NewFile hands it to the runtime's poller.
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(epfd)
		return nil, err
	}
	return &eventLoop{epfd: epfd, epf: os.NewFile(uintptr(epfd), "epoll"), ctl: ctl, ctlEv: unix.EPOLLIN,
		pairs: map[int]*conn2{}, ids: map[uint64]*conn2{}}, nil
}

func (lp *eventLoop) run() {
	events := make([]unix.EpollEvent, 256)
	lastSweep := time.Now()
	var lastDeadline time.Time
	rc, err := lp.epf.SyscallConn()
	if err != nil {
		return
	}
	for {
		var n int
		if now := time.Now(); now.Sub(lastDeadline) > 500*time.Millisecond {
			lastDeadline = now
			lp.epf.SetReadDeadline(now.Add(time.Second)) // wakes the idle sweep
		}
		rerr := rc.Read(func(fd uintptr) bool {
			var errno syscall.Errno
			n, errno = epollNow(int(fd), events)
			return n > 0 || (errno != 0 && errno != unix.EINTR)
		})
		if rerr != nil && !errors.Is(rerr, os.ErrDeadlineExceeded) {
			return
		}
		now := time.Now().UnixNano()
		for i := 0; i < n; i++ {
			fd := int(events[i].Fd)
			if fd == lp.ctl {
				if !lp.control(events[i].Events) {
					return
				}
				continue
			}
			if p := lp.pairs[fd]; p != nil {
				lp.handle(p, fd, events[i].Events, now)
			}
		}
		if time.Since(lastSweep) > time.Second {
			lastSweep = time.Now()
			lp.sweep(lastSweep.UnixNano())
		}
	}
}

// control reads the controller's messages and sends queued reports. False
// when the controller is gone.
func (lp *eventLoop) control(ev uint32) bool {
	if ev&unix.EPOLLOUT != 0 {
		lp.report(nil)
	}
	if ev&(unix.EPOLLIN|unix.EPOLLHUP|unix.EPOLLERR) == 0 {
		return true
	}
	var b [msgLen + 1]byte
	oob := make([]byte, unix.CmsgSpace(2*4))
	for {
		n, oobn, flags, _, err := unix.Recvmsg(lp.ctl, b[:], oob, unix.MSG_CMSG_CLOEXEC)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			return true
		}
		if err != nil || n == 0 {
			return false // the controller closed its end
		}
		fds := rights(oob[:oobn])
		m, ok := parseMsg(b[:n])
		switch {
		case ok && m.op == opAdd && len(fds) == 2 && flags&unix.MSG_CTRUNC == 0:
			lp.add(m, fds[0], fds[1])
			continue
		case ok && m.op == opKill:
			if p := lp.ids[m.id]; p != nil {
				lp.close(p)
			}
		case ok && m.op == opAdd:
			lp.report(msg{op: opDone, id: m.id}.bytes()) // the sockets did not arrive whole
		}
		for _, fd := range fds {
			unix.Close(fd)
		}
	}
}

// rights is the descriptors an SCM_RIGHTS message carried.
func rights(oob []byte) []int {
	cms, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil
	}
	var fds []int
	for i := range cms {
		if f, err := unix.ParseUnixRights(&cms[i]); err == nil {
			fds = append(fds, f...)
		}
	}
	return fds
}

// report sends b (nil: only what is queued) to the controller, queueing
// what the control socket does not take now.
func (lp *eventLoop) report(b []byte) {
	if b != nil {
		lp.out = append(lp.out, b)
	}
	for len(lp.out) > 0 {
		err := unix.Send(lp.ctl, lp.out[0], unix.MSG_DONTWAIT)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			break // EAGAIN waits for EPOLLOUT; a dead controller ends the loop through EPOLLHUP
		}
		lp.out = lp.out[1:]
	}
	want := uint32(unix.EPOLLIN)
	if len(lp.out) > 0 {
		want |= unix.EPOLLOUT
	}
	if want != lp.ctlEv {
		lp.ctlEv = want
		e := unix.EpollEvent{Events: want, Fd: int32(lp.ctl)}
		unix.EpollCtl(lp.epfd, unix.EPOLL_CTL_MOD, lp.ctl, &e)
	}
}

func (lp *eventLoop) add(m msg, afd, bfd int) {
	now := time.Now().UnixNano()
	p := &conn2{
		id: m.id, afd: afd, bfd: bfd, idle: time.Duration(m.idle), last: now, first: time.Duration(m.first), born: now,
		ab: dir{src: afd, dst: bfd},
		ba: dir{src: bfd, dst: afd},
	}
	lp.pairs[afd], lp.pairs[bfd], lp.ids[m.id] = p, p, p
	p.ia, p.ib = unix.EPOLLIN, unix.EPOLLIN
	p.rega, p.regb = true, true
	ea := unix.EpollEvent{Events: p.ia, Fd: int32(afd)}
	eb := unix.EpollEvent{Events: p.ib, Fd: int32(bfd)}
	if unix.SetNonblock(afd, true) != nil || unix.SetNonblock(bfd, true) != nil ||
		unix.EpollCtl(lp.epfd, unix.EPOLL_CTL_ADD, afd, &ea) != nil ||
		unix.EpollCtl(lp.epfd, unix.EPOLL_CTL_ADD, bfd, &eb) != nil {
		lp.close(p)
	}
}

func (lp *eventLoop) close(p *conn2) {
	if p.closed {
		return
	}
	p.closed = true
	unix.EpollCtl(lp.epfd, unix.EPOLL_CTL_DEL, p.afd, nil)
	unix.EpollCtl(lp.epfd, unix.EPOLL_CTL_DEL, p.bfd, nil)
	delete(lp.pairs, p.afd)
	delete(lp.pairs, p.bfd)
	delete(lp.ids, p.id)
	unix.Close(p.afd)
	unix.Close(p.bfd)
	lp.report(msg{op: opDone, id: p.id}.bytes())
}

// sweep closes expired pairs. It runs about once a second: a timeout is
// kept to within a second.
func (lp *eventLoop) sweep(now int64) {
	for _, p := range lp.ids {
		if p.expired(now) {
			lp.close(p)
		}
	}
}

// expired says whether a pair is to be closed at now: no byte either way
// for first since it was made, or for idle since the last one.
func (p *conn2) expired(now int64) bool {
	if !p.used && p.first > 0 && now-p.born > int64(p.first) {
		return true
	}
	return p.idle > 0 && now-p.last > int64(p.idle)
}

func (lp *eventLoop) handle(p *conn2, fd int, ev uint32, now int64) {
	if ev&unix.EPOLLERR != 0 {
		lp.close(p) // reset or similar: nothing more will pass
		return
	}
	if ev&(unix.EPOLLIN|unix.EPOLLHUP) != 0 {
		d := &p.ab
		if fd == p.bfd {
			d = &p.ba
		}
		if !lp.pump(p, d, now) {
			return
		}
	}
	if ev&unix.EPOLLOUT != 0 {
		d := &p.ba // fd is the destination
		if fd == p.bfd {
			d = &p.ab
		}
		if !lp.flush(p, d) {
			return
		}
	}
	lp.rearm(p)
}

// pump reads what src holds and passes it on. False when the pair closed.
func (lp *eventLoop) pump(p *conn2, d *dir, now int64) bool {
	if d.eof || d.n > d.off {
		return true // not reading now
	}
	// Read into the loop's buffer and write straight on: usually all of
	// it goes, and one hot buffer per loop serves every connection. Only
	// what the destination does not take yet is kept, in the direction's
	// own buffer (made when first needed).
	n, errno := rawRead(d.src, lp.buf[:])
	switch {
	case n > 0:
		p.last = now
		if !p.used {
			p.used = true
			lp.report(msg{op: opUsed, id: p.id}.bytes())
		}
		w := 0
		for w < n {
			k, e := rawWrite(d.dst, lp.buf[w:n])
			if k > 0 {
				w += k
				continue
			}
			if e == unix.EAGAIN || e == unix.EINTR {
				break
			}
			lp.close(p)
			return false
		}
		if w < n {
			if d.buf == nil {
				d.buf = make([]byte, pairBufSize)
			}
			d.off, d.n = 0, copy(d.buf, lp.buf[w:n])
		}
		return lp.flush(p, d)
	case n == 0 && errno == 0:
		d.eof = true
		return lp.flush(p, d)
	case errno == unix.EAGAIN || errno == unix.EINTR:
		return true
	}
	lp.close(p)
	return false
}

// flush writes what d holds; at its end, after eof, half-closes dst.
func (lp *eventLoop) flush(p *conn2, d *dir) bool {
	for d.off < d.n {
		n, errno := rawWrite(d.dst, d.buf[d.off:d.n])
		if n > 0 {
			d.off += n
			continue
		}
		if errno == unix.EAGAIN || errno == unix.EINTR {
			return true // rearm waits for EPOLLOUT
		}
		lp.close(p)
		return false
	}
	if d.eof && !d.shut {
		d.shut = true
		unix.Shutdown(d.dst, unix.SHUT_WR)
	}
	if p.ab.shut && p.ba.shut {
		lp.close(p)
		return false
	}
	return true
}

// rearm sets each socket's interest: read when its direction is idle and
// open, write when the other direction waits for it.
func (lp *eventLoop) rearm(p *conn2) {
	want := func(in, out *dir) uint32 {
		var ev uint32
		if !in.eof && in.off >= in.n {
			ev |= unix.EPOLLIN
		}
		if out.off < out.n {
			ev |= unix.EPOLLOUT
		}
		return ev
	}
	lp.interest(p.afd, &p.ia, &p.rega, want(&p.ab, &p.ba))
	lp.interest(p.bfd, &p.ib, &p.regb, want(&p.ba, &p.ab))
}

// interest brings one socket's epoll registration to ev.
func (lp *eventLoop) interest(fd int, cur *uint32, reg *bool, ev uint32) {
	switch {
	case ev == 0 && *reg:
		unix.EpollCtl(lp.epfd, unix.EPOLL_CTL_DEL, fd, nil)
		*reg = false
	case ev != 0 && !*reg:
		e := unix.EpollEvent{Events: ev, Fd: int32(fd)}
		unix.EpollCtl(lp.epfd, unix.EPOLL_CTL_ADD, fd, &e)
		*reg = true
	case ev != 0 && ev != *cur:
		e := unix.EpollEvent{Events: ev, Fd: int32(fd)}
		unix.EpollCtl(lp.epfd, unix.EPOLL_CTL_MOD, fd, &e)
	}
	*cur = ev
}

// epollNow, rawRead and rawWrite never block (a zero timeout, non-blocking
// sockets), so they do not tell the scheduler: a call through
// unix.EpollWait enters and leaves the runtime's syscall state, which kept
// its monitor thread waking every few microseconds to look for processors
// to retake (0.13 nanosleep and 0.13 more context switches per proxied
// request, measured with perf stat).
func epollNow(epfd int, events []unix.EpollEvent) (int, syscall.Errno) {
	r, _, e := syscall.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(r), 0
}

func rawRead(fd int, b []byte) (int, syscall.Errno) {
	r, _, e := syscall.RawSyscall(syscall.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	if e != 0 {
		return 0, e
	}
	return int(r), 0
}

func rawWrite(fd int, b []byte) (int, syscall.Errno) {
	r, _, e := syscall.RawSyscall(syscall.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	if e != 0 {
		return 0, e
	}
	return int(r), 0
}
