package lb

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The controller's side of the tcp workers (tcploop_linux.go is theirs):
// one worker process per CPU the controller may use, started when the
// first tcp connection needs one and again when one dies.

// pair is a client connection and its target connection, served by a
// worker. done closes when the worker reports the pair ended, or died.
type pair struct {
	id   uint64
	w    *worker
	done chan struct{}
	// list is the listener's idle list, where the pair stays until its
	// first byte passes (nil: none).
	list  *idleList
	entry idleEntry
}

// used takes the pair out of its listener's idle list.
func (p *pair) used() {
	if p != nil && p.list != nil {
		p.list.remove(&p.entry)
	}
}

// kill asks the worker to close the pair (a drain's end, shutdown).
func (p *pair) kill() { p.w.send(msg{op: opKill, id: p.id}.bytes(), nil) }

// killConn is a target connection served by a worker: closing it (at the
// end of a drain) asks the worker to close the pair, which owns the sockets.
type killConn struct {
	net.Conn
	p *pair
}

func (k killConn) Close() error { k.p.kill(); return nil }

type worker struct {
	ctl     *net.UnixConn
	cmd     *exec.Cmd
	mu      sync.Mutex
	pairs   map[uint64]*pair
	dead    bool
	started time.Time
}

var workers struct {
	mu      sync.Mutex
	slots   []*worker
	next    uint64 // round robin over slots
	nextID  uint64
	retryAt time.Time
}

// workerRetry is how long after a failed start, or a worker's crash within
// workerRetry of its start, no worker is started.
const workerRetry = 5 * time.Second

// workerPath is the binary a worker runs. /proc/self/exe still runs this
// binary when its file was replaced or removed (an upgrade in place).
var workerPath = "/proc/self/exe"

// spliceLoop hands a and b to a worker, which serves them until both
// directions end, an error, the idle timeout, the first byte timeout (no
// byte either way since the hand-over) or kill. home is the
// target's: connections to one target go to one worker while the workers
// stay balanced (see pickWorker). It returns false (having done nothing)
// when no worker can take them; the caller then copies itself.
//
// Until a byte passes either way, the pair is in list (when not nil), from
// which the listener may evict it to make room.
func spliceLoop(a, b net.Conn, idle, first time.Duration, home uint64, list *idleList, log *slog.Logger) (*pair, bool) {
	afd, ok1 := rawFD(a)
	bfd, ok2 := rawFD(b)
	if !ok1 || !ok2 {
		return nil, false
	}
	w, id := pickWorker(home, log)
	if w == nil {
		return nil, false
	}
	p := &pair{id: id, w: w, done: make(chan struct{})}
	w.mu.Lock()
	if w.dead {
		w.mu.Unlock()
		return nil, false
	}
	w.pairs[id] = p
	w.mu.Unlock()
	if list != nil {
		// Listed before the worker has the pair: its report of the first
		// byte cannot come before.
		p.list, p.entry.c = list, killConn{p: p}
		list.add(&p.entry)
	}
	if err := w.send(msg{op: opAdd, id: id, idle: int64(idle), first: int64(first)}.bytes(), unix.UnixRights(afd, bfd)); err != nil {
		w.mu.Lock()
		delete(w.pairs, id)
		w.mu.Unlock()
		p.used()
		return nil, false
	}
	// The worker holds its own descriptors for both sockets now.
	a.Close()
	b.Close()
	return p, true
}

func rawFD(c net.Conn) (int, bool) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return 0, false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, false
	}
	fd := -1
	rc.Control(func(f uintptr) { fd = int(f) })
	return fd, fd >= 0
}

// pickWorker is the worker for a new pair to a target whose home is home,
// and an id for the pair. Each target has a home worker (home modulo the
// workers), so that a worker's batch of requests goes to few targets, each
// woken once for several: with two backends on two CPUs, 1.05x the
// requests of spreading each target's connections over every worker. The
// pair goes to the worker with the fewest pairs instead when home has more
// than that one and a slack (2, or an eighth): one busy target, or more
// targets than workers, still use every worker.
//
// A slot's worker is started when it is needed, and again after it died. A
// slot whose worker cannot be started passes the pair to a live worker;
// with none, it is nil: for workerRetry after a start failed or a worker
// crashed young, connections are copied by the controller rather than a
// process started for each.
func pickWorker(home uint64, log *slog.Logger) (*worker, uint64) {
	workers.mu.Lock()
	defer workers.mu.Unlock()
	if workers.slots == nil {
		workers.slots = make([]*worker, max(1, runtime.GOMAXPROCS(0)))
	}
	workers.nextID++
	var best *worker
	bestN := 0
	for k := range workers.slots {
		// The home slot first, then the others in order after it.
		i := (home + uint64(k)) % uint64(len(workers.slots))
		w := workers.slots[i]
		n, ok := w.load()
		if !ok && time.Now().After(workers.retryAt) {
			nw, err := startWorker(log)
			if err != nil {
				workers.retryAt = time.Now().Add(workerRetry)
				log.Error("tcp worker did not start; tcp connections go to the other workers, or are copied by the controller", "err", err, "retry_in", workerRetry)
			} else {
				workers.slots[i], w, n, ok = nw, nw, 0, true
			}
		}
		if !ok {
			continue
		}
		if best == nil {
			best, bestN = w, n // home, or the first live one after it
			continue
		}
		if bestN > n+max(2, n/8) {
			best, bestN = w, n
		}
	}
	return best, workers.nextID
}

// load is how many pairs w serves; false when it is nil or not running.
func (w *worker) load() (int, bool) {
	if w == nil {
		return 0, false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.pairs), !w.dead
}

// startWorker runs this binary again as a tcp worker.
func startWorker(log *slog.Logger) (*worker, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("tcp worker: socketpair: %w", err)
	}
	theirs := os.NewFile(uintptr(fds[1]), "tcp-worker-control")
	defer theirs.Close()
	ours := os.NewFile(uintptr(fds[0]), "tcp-worker-control")
	fc, err := net.FileConn(ours)
	ours.Close()
	if err != nil {
		return nil, fmt.Errorf("tcp worker: %w", err)
	}
	ctl := fc.(*net.UnixConn)
	cmd := &exec.Cmd{
		Path:       workerPath,
		Args:       []string{"autoheal-tcp-worker"},
		Env:        append(os.Environ(), workerEnv+"=1", "GOMAXPROCS=1"),
		ExtraFiles: []*os.File{theirs}, // fd 3, workerFD
		Stderr:     os.Stderr,
	}
	if err := cmd.Start(); err != nil {
		ctl.Close()
		return nil, fmt.Errorf("tcp worker: %w", err)
	}
	w := &worker{ctl: ctl, cmd: cmd, pairs: map[uint64]*pair{}, started: time.Now()}
	go w.read(log)
	return w, nil
}

// send writes one message, with descriptors when oob holds them.
func (w *worker) send(b, oob []byte) error {
	_, _, err := w.ctl.WriteMsgUnix(b, oob, nil)
	return err
}

// read takes the worker's reports until it exits; then every pair it
// served has ended (its sockets closed with it).
func (w *worker) read(log *slog.Logger) {
	var b [msgLen + 1]byte
	for {
		n, err := w.ctl.Read(b[:])
		if err != nil || n == 0 {
			break
		}
		m, ok := parseMsg(b[:n])
		if !ok || (m.op != opDone && m.op != opUsed) {
			continue
		}
		w.mu.Lock()
		p := w.pairs[m.id]
		if m.op == opDone {
			delete(w.pairs, m.id)
		}
		w.mu.Unlock()
		p.used()
		if p != nil && m.op == opDone {
			close(p.done)
		}
	}
	w.ctl.Close()
	err := w.cmd.Wait()
	if err != nil && time.Since(w.started) < workerRetry { // a crash, not a closed control socket
		workers.mu.Lock()
		workers.retryAt = time.Now().Add(workerRetry)
		workers.mu.Unlock()
	}
	w.mu.Lock()
	w.dead = true
	left := w.pairs
	w.pairs = nil
	w.mu.Unlock()
	log.Warn("tcp worker exited; its connections are closed", "pid", w.cmd.Process.Pid, "connections", len(left), "err", err)
	for _, p := range left {
		p.used()
		close(p.done)
	}
}
