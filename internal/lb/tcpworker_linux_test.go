package lb

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// dead: w is not running.
func dead(w *worker) bool {
	_, live := w.load()
	return !live
}

// liveWorkers is the workers started so far that have not exited.
func liveWorkers() []*worker {
	workers.mu.Lock()
	defer workers.mu.Unlock()
	var ws []*worker
	for _, w := range workers.slots {
		if _, live := w.load(); live {
			ws = append(ws, w)
		}
	}
	return ws
}

func echoOnce(t *testing.T, c io.ReadWriter, s string) {
	t.Helper()
	if _, err := c.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len(s))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != s {
		t.Fatalf("echo %q %v", buf, err)
	}
}

// TestTCPWorkerDies: tcp connections are served by worker processes; when
// one is killed its connections close (the client sees the end, the
// listener's accounting ends), and the next connection gets a new worker.
// Not parallel: it kills every worker.
func TestTCPWorkerDies(t *testing.T) {
	bal, url := start(t, tcpYAML(echoServer(t), ""))
	waitHealthy(t, bal, "tg", 1)
	c := dialLB(t, url)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	echoOnce(t, c, "before")
	ws := liveWorkers()
	if len(ws) == 0 {
		t.Fatal("a tcp connection is served and no worker runs")
	}
	for _, w := range ws {
		env, err := os.ReadFile("/proc/" + strconv.Itoa(w.cmd.Process.Pid) + "/environ")
		if err != nil || !bytes.Contains(env, []byte(workerEnv+"=1")) {
			t.Fatalf("worker %d: environ %v", w.cmd.Process.Pid, err)
		}
		w.cmd.Process.Signal(syscall.SIGKILL)
	}
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("connection of a killed worker still open")
	}
	tg, _ := bal.TargetGroup("tg")
	waitFor(t, "no connection in flight", func() bool { return tg.Health().Targets[0].InFlight == 0 })
	// A worker that served none of this test's connections is reaped on
	// its own time.
	for _, w := range ws {
		waitFor(t, fmt.Sprintf("worker %d killed to be reaped", w.cmd.Process.Pid), func() bool { return dead(w) })
	}
	// They died young, which holds new workers back for workerRetry.
	workers.mu.Lock()
	if !workers.retryAt.After(time.Now()) {
		t.Error("workers that died right after their start are restarted at once")
	}
	workers.retryAt = time.Time{}
	workers.mu.Unlock()
	c2 := dialLB(t, url)
	c2.SetDeadline(time.Now().Add(10 * time.Second))
	echoOnce(t, c2, "after")
	if len(liveWorkers()) == 0 {
		t.Fatal("no worker restarted")
	}
}

func setWorkerPath(p string) {
	workers.mu.Lock()
	workerPath = p
	workers.mu.Unlock()
}

// killWorkers kills every worker and waits until each is reaped.
func killWorkers(t *testing.T) {
	t.Helper()
	for _, w := range liveWorkers() {
		w.cmd.Process.Signal(syscall.SIGKILL)
		waitFor(t, fmt.Sprintf("worker %d to be reaped", w.cmd.Process.Pid), func() bool { return dead(w) })
	}
	workers.mu.Lock()
	workers.retryAt = time.Time{}
	workers.mu.Unlock()
}

// TestTCPWorkerCannotStart: when no worker can be started the controller
// copies the connection itself, tries again only after workerRetry, and
// uses workers again once they start. Not parallel: it kills every worker.
func TestTCPWorkerCannotStart(t *testing.T) {
	bal, url := start(t, tcpYAML(echoServer(t), ""))
	waitHealthy(t, bal, "tg", 1)
	killWorkers(t)
	setWorkerPath("/nonexistent/autoheal")
	defer setWorkerPath("/proc/self/exe")
	c := dialLB(t, url)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	echoOnce(t, c, "copied by the controller")
	if n := len(liveWorkers()); n != 0 {
		t.Fatalf("%d workers from a binary that does not exist", n)
	}
	workers.mu.Lock()
	backoff := time.Until(workers.retryAt)
	workers.mu.Unlock()
	if backoff <= 0 || backoff > workerRetry {
		t.Fatalf("next start in %v after a failed one", backoff)
	}
	setWorkerPath("/proc/self/exe")
	killWorkers(t) // clears the backoff
	c2 := dialLB(t, url)
	c2.SetDeadline(time.Now().Add(10 * time.Second))
	echoOnce(t, c2, "served by a worker")
	if len(liveWorkers()) == 0 {
		t.Fatal("no worker once the binary can start")
	}
}

// TestTCPWorkerOutlivesSignalsNotController: a worker ignores the signals
// a terminal or service manager sends the whole process group (the
// controller drains first), and exits once the controller's end of its
// control socket closes.
func TestTCPWorkerOutlivesSignalsNotController(t *testing.T) {
	t.Parallel()
	w, err := startWorker(slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	// Past init, where the signals are set: the kernel then discards
	// them at once.
	ignored := uint64(1)<<(syscall.SIGINT-1) | 1<<(syscall.SIGTERM-1) | 1<<(syscall.SIGHUP-1)
	waitFor(t, "the worker to ignore SIGINT, SIGTERM and SIGHUP", func() bool { return sigIgn(w.cmd.Process.Pid)&ignored == ignored })
	for _, s := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP} {
		if err := w.cmd.Process.Signal(s); err != nil {
			t.Fatal(err)
		}
	}
	// A signal's default action would have been taken before the worker
	// reads its next message: one it serves proves it outlived them.
	workerServes(t, w)
	if dead(w) {
		t.Fatal("worker exited on a signal")
	}
	w.ctl.Close()
	waitFor(t, "the worker to exit once its controller closed the control socket", func() bool { return dead(w) })
	if !w.cmd.ProcessState.Success() {
		t.Fatalf("worker exited %v", w.cmd.ProcessState)
	}
}

// TestTCPWorkerHome: a target's connections go to its home worker, and to
// the least loaded one once home has more than the slack over it. Not
// parallel: it loads the workers with pairs of its own.
func TestTCPWorkerHome(t *testing.T) {
	killWorkers(t)
	log := slog.New(slog.DiscardHandler)
	w0, _ := pickWorker(0, log)
	if w0 == nil {
		t.Fatal("no worker")
	}
	workers.mu.Lock()
	n := uint64(len(workers.slots))
	workers.mu.Unlock()
	if n < 2 {
		t.Skip("one worker: GOMAXPROCS is 1")
	}
	w1, _ := pickWorker(1, log)
	if w1 == w0 || w1 == nil {
		t.Fatalf("targets 0 and 1 share worker %p", w0)
	}
	if w, _ := pickWorker(n, log); w != w0 {
		t.Fatal("home n is not worker 0's")
	}
	load := func(w *worker, k int) {
		w.mu.Lock()
		defer w.mu.Unlock()
		for range k {
			id := uint64(len(w.pairs)) + 1<<40
			w.pairs[id] = &pair{id: id, w: w, done: make(chan struct{})}
		}
	}
	defer func() {
		for _, w := range []*worker{w0, w1} {
			w.mu.Lock()
			for id := range w.pairs {
				if id >= 1<<40 {
					delete(w.pairs, id)
				}
			}
			w.mu.Unlock()
		}
	}()
	load(w0, 2)
	if w, _ := pickWorker(0, log); w != w0 {
		t.Fatal("left home with 2 pairs more than the other worker (the slack)")
	}
	load(w0, 1)
	if w, _ := pickWorker(0, log); w != w1 {
		t.Fatal("stayed home with 3 pairs more than the other worker")
	}
	load(w1, 40)
	load(w0, 40) // 43 against 40: within an eighth
	if w, _ := pickWorker(0, log); w != w0 {
		t.Fatal("left home within the slack")
	}
}

// sigIgn is the set of signals process pid ignores (SigIgn in its
// /proc status), bit n-1 for signal n; 0 when unknown.
func sigIgn(pid int) uint64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "SigIgn:"); ok {
			n, _ := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return n
		}
	}
	return 0
}

// workerServes hands w a pair of unix sockets, as spliceLoop hands it a
// client and its target, and checks that it copies a message across.
func workerServes(t *testing.T, w *worker) {
	t.Helper()
	a, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	near := os.NewFile(uintptr(a[0]), "near")
	far := os.NewFile(uintptr(b[0]), "far")
	defer near.Close()
	defer far.Close()
	err = w.send(msg{op: opAdd, id: 1 << 50, idle: int64(time.Minute)}.bytes(), unix.UnixRights(a[1], b[1]))
	unix.Close(a[1]) // the worker has its own now
	unix.Close(b[1])
	if err != nil {
		t.Fatalf("hand the worker a pair: %v", err)
	}
	far.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := near.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(far, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("the worker did not copy a message: %q %v", buf, err)
	}
}
