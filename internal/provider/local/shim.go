//go:build linux

package local

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/autoheal/autoheal/internal/provider"
	"golang.org/x/sys/unix"
)

// drainTimeout bounds how long the shim copies output after the application
// exited: a descendant that keeps stdout open must not keep the exit from
// being reported.
const drainTimeout = 100 * time.Millisecond

// shim is the `__autoheal_shim <instance dir>` role: the application's
// parent for its whole life. It takes the volume locks, starts the
// application, copies its output into rotated logs and records its exit in
// status.json, so that the exit code and the logs are kept while no
// controller is running.
type shim struct {
	dir   string
	st    status
	hello *os.File // to the launcher: the answer, then the exit
	// subreaper: orphans of the application are ours (PR_SET_CHILD_SUBREAPER).
	subreaper bool
	// namespaced: the shim is PID 1 of the instance's PID namespace.
	namespaced bool
	// deadline is the host's dead man's switch (deadline.go), or "".
	deadline string
}

func runShim(args []string) int {
	spare := len(args) == 1 && args[0] == spareArg
	if len(args) != 1 || !spare && !filepath.IsAbs(args[0]) {
		fmt.Fprintln(os.Stderr, "usage: autoheal "+shimArg+" <absolute instance dir> | "+spareArg)
		return 2
	}
	subreaper := becomeShimProcess()
	helloW := os.NewFile(shimHelloFD, "hello")
	defer helloW.Close()

	dir := args[0]
	var listeners []*os.File
	if spare {
		var code int
		var ok bool
		if dir, listeners, code, ok = becomeAssigned(helloW); !ok {
			return code
		}
	}
	s := &shim{dir: dir, hello: helloW, subreaper: subreaper, namespaced: os.Getpid() == 1}
	// As PID 1 of its namespace the shim sees itself as 1; status.json
	// and every check of it use the pid that /proc (the host's) shows.
	s.st.ShimPid = selfPid()
	s.st.ShimStart, _ = startTime(s.st.ShimPid)

	spec, err := readShimSpec(s.dir)
	if err != nil {
		return s.refuse(err)
	}
	// status.json is first written once the application runs (or could
	// not): a record before that would only tell a restarted controller
	// of a launch it resumes by fencing anyway, and each write costs a
	// millisecond on the launch path.
	s.st.ID = spec.ID
	s.deadline = spec.Deadline
	if s.deadline != "" && DeadlinePassed(s.deadline) {
		// Never start a pet on a host whose lease may have lapsed.
		return s.refuse(errDeadline)
	}

	if !spare {
		for i, name := range spec.Listeners {
			listeners = append(listeners, os.NewFile(uintptr(shimListenersFD+i), "listener:"+name))
		}
	}
	defer func() {
		for _, f := range listeners {
			f.Close()
		}
	}()
	if len(listeners) != len(spec.Listeners) {
		return s.refuse(fmt.Errorf("got %d listeners for %d names", len(listeners), len(spec.Listeners)))
	}
	locks, err := takeLocks(spec.Locks)
	if err != nil {
		return s.refuse(err)
	}
	defer func() {
		for _, f := range locks {
			f.Close()
		}
	}()
	a, err := s.start(spec, listeners, locks)
	for _, f := range listeners {
		f.Close() // the application has its own; the controller keeps its
	}
	listeners = nil
	if err != nil {
		return s.refuse(err)
	}
	return s.supervise(a)
}

// becomeShimProcess sets up the shim's own process before anything else:
// inherited descriptors close on exec, signals cannot kill it, and it is
// its descendants' subreaper when the kernel allows (the result).
func becomeShimProcess() (subreaper bool) {
	// Go's fork/exec passes on every descriptor without close-on-exec. The
	// ones we inherited (hello channel, listeners) are handed on
	// explicitly, so mark them all: nothing reaches the application by
	// accident.
	unix.CloseRange(3, math.MaxUint32, unix.CLOSE_RANGE_CLOEXEC)
	// The shim lives exactly as long as its application. It is in its own
	// session, but a stray `kill` or a hangup must not orphan the
	// application's pipes either. A handler, not SIG_IGN: an ignored
	// disposition would be inherited by the application across exec.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	// Whatever the application starts and leaves behind (a daemon that
	// double-forked, a child in a session of its own) becomes ours when
	// its parent dies, instead of init's (as PID 1 of the instance's
	// namespace the shim is that init anyway): when the application exits,
	// the shim kills and reaps it all before it reports (killRest).
	return unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == nil
}

// readShimSpec reads the instance spec the launcher wrote into dir.
func readShimSpec(dir string) (shimSpec, error) {
	var spec shimSpec
	b, err := os.ReadFile(filepath.Join(dir, specFile))
	if err == nil {
		err = json.Unmarshal(b, &spec)
	}
	if err != nil {
		return shimSpec{}, fmt.Errorf("read instance spec: %w", err)
	}
	return spec, nil
}

// becomeAssigned is a spare shim's wait for its instance: it returns the
// instance's directory and listeners once assigned, or the exit code.
func becomeAssigned(ctl *os.File) (dir string, listeners []*os.File, code int, ok bool) {
	env := spareEnviron()
	if env == nil {
		fmt.Fprintln(os.Stderr, "autoheal spare shim: cannot rewrite its environment here")
		return "", nil, exitNoSpare, false
	}
	warmUp()
	a, fds, err := awaitAssignment(ctl)
	if err != nil {
		if err != io.EOF { // EOF: the controller went away first
			fmt.Fprintf(os.Stderr, "autoheal spare shim: %v\n", err)
		}
		return "", nil, 0, false
	}
	// First of all, become visible as the instance's shim.
	assignEnviron(env, a.ID)
	// From here on the shim's own output belongs to the instance.
	if f, err := os.OpenFile(filepath.Join(a.Dir, shimLog), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640); err == nil {
		unix.Dup3(int(f.Fd()), 1, 0)
		unix.Dup3(int(f.Fd()), 2, 0)
		f.Close()
	}
	return a.Dir, fds, 0, true
}

// app is the running application and what the shim holds for it.
type app struct {
	cmd            *exec.Cmd
	pid            int        // in the shim's PID namespace: waits and reaping use it
	locks          []*os.File // the volume locks, released when it exits
	stdout, stderr *rotator   // its logs
	outR, errR     *os.File   // the read ends of its output pipes
	startedAt      time.Time
}

// start starts the application with the listeners and locks, records it
// in status.json and tells the launcher.
func (s *shim) start(spec shimSpec, listeners, locks []*os.File) (app, error) {
	a := app{locks: locks}
	cr, err := resolveUser(spec.User)
	if err != nil {
		return a, err
	}
	if a.stdout, err = openRotator(filepath.Join(s.dir, stdoutLog), spec.LogMaxSize, spec.LogMaxFiles); err != nil {
		return a, fmt.Errorf("open log: %w", err)
	}
	if a.stderr, err = openRotator(filepath.Join(s.dir, stderrLog), spec.LogMaxSize, spec.LogMaxFiles); err != nil {
		return a, fmt.Errorf("open log: %w", err)
	}
	var outW, errW *os.File
	if a.outR, outW, err = os.Pipe(); err != nil {
		return a, err
	}
	if a.errR, errW, err = os.Pipe(); err != nil {
		return a, err
	}
	cfg := execConfig{
		Command:   spec.Command,
		Argv:      append([]string{spec.Command}, spec.Args...),
		Env:       spec.Env,
		Workdir:   spec.Workdir,
		Cred:      cr,
		Listeners: spec.Listeners,
	}
	opts := startOptions{
		files:  append(append([]*os.File(nil), listeners...), locks...),
		stdout: outW,
		stderr: errW,
		// Exec'ing /proc/self/exe runs this very binary even if the file
		// was replaced by an upgrade since the shim started.
		trampoline: len(listeners) > 0,
		exe:        "/proc/self/exe",
		label:      s.dir,
	}
	a.startedAt = time.Now()
	if len(spec.Mounts) > 0 {
		// The shim stays in the host's mount namespace; the application
		// gets a private one with the mounts, and the working directory is
		// entered there, since it may lie inside a mount.
		a.cmd, err = startInMountNS(context.Background(), cfg, opts, spec.Mounts, spec.HostMountNS)
	} else {
		a.cmd, err = startProgram(context.Background(), cfg, opts)
	}
	outW.Close()
	errW.Close()
	if err != nil {
		fmt.Fprintf(a.stderr, "autoheal: %v\n", err)
		return a, err
	}
	// The record and the controller need the host's number for it.
	a.pid = a.cmd.Process.Pid
	s.st.Pid = a.pid
	if hp, err := hostPid(a.pid); err == nil {
		s.st.Pid = hp
	} else if s.namespaced {
		fmt.Fprintf(os.Stderr, "autoheal shim: host pid of %d: %v\n", a.pid, err)
	}
	s.st.PidStart, _ = startTime(s.st.Pid)
	s.st.StartedAt = a.startedAt
	s.save(false)
	s.sayHello(hello{Pid: s.st.Pid, PidStart: s.st.PidStart, StartedAt: a.startedAt, NS: s.namespaced})
	return a, nil
}

// supervise copies the application's output into its logs until it
// exits, then kills what it left behind, releases its volume and reports
// the exit.
func (s *shim) supervise(a app) int {
	// Orphans that exit while the application runs are reaped as they go;
	// the application itself is left to cmd.Wait.
	sigchld := make(chan os.Signal, 1)
	reaping := make(chan struct{})
	if s.subreaper {
		signal.Notify(sigchld, syscall.SIGCHLD)
		go func() {
			defer close(reaping)
			for range sigchld {
				reapOrphans(a.pid)
			}
		}()
	} else {
		close(reaping)
	}
	var copying sync.WaitGroup
	for _, c := range []struct {
		w io.Writer
		r *os.File
	}{{a.stdout, a.outR}, {a.stderr, a.errR}} {
		copying.Add(1)
		go func() {
			defer copying.Done()
			io.CopyBuffer(c.w, c.r, make([]byte, 32<<10))
		}()
	}

	stopWatch, watching := make(chan struct{}), make(chan bool, 1)
	if s.deadline != "" {
		go func() {
			passed := WatchDeadline(s.deadline, stopWatch)
			if passed {
				// The rest of the instance is killed below, as after
				// any exit of the application.
				_ = syscall.Kill(a.pid, syscall.SIGKILL)
			}
			watching <- passed
		}()
	} else {
		watching <- false
	}
	a.cmd.Wait()
	exit := exitStatus(a.cmd.ProcessState, time.Now())
	close(stopWatch)
	if <-watching {
		exit.Error = errDeadline.Error()
	}
	signal.Stop(sigchld)
	close(sigchld)
	<-reaping
	// By now the kernel has handed the application's children to us. The
	// instance lives as long as its application: whatever it left behind
	// is killed now, before anyone hears of the exit.
	alone := killRest(s.namespaced, s.subreaper)
	// The volume was the application's: release it before anyone hears of
	// the exit. (A descendant the fallback could not kill may still hold
	// the lock through an inherited descriptor, until Stop kills it.)
	for _, f := range a.locks {
		f.Close()
	}
	drainOutput(&copying, a)
	s.st.Exited, s.st.Exit = true, exit
	// Tell the launching controller first: it holds the other end of the
	// hello pipe for as long as it follows the instance, closes Done on
	// this line without waiting for our own exit, and records the exit
	// durably in its own store. Then the fsync here is not needed. If the
	// pipe is broken (the controller is gone, or adopted us later), this
	// record may be the only copy of the exit until a controller reads it:
	// it must survive a crash.
	line, _ := json.Marshal(hello{Exit: &exit, Alone: alone})
	_, perr := s.hello.Write(append(line, '\n'))
	s.save(perr != nil)
	a.stdout.Close()
	a.stderr.Close()
	return 0
}

// drainOutput waits for the copiers of the application's output to reach
// EOF: what the application wrote before it exited is in the pipes, and
// the logs must be complete for whoever reads them after Done. A
// descendant holding a pipe open (one the fallback could not kill) must
// not delay the report for long.
func drainOutput(copying *sync.WaitGroup, a app) {
	drained := make(chan struct{})
	go func() {
		copying.Wait()
		close(drained)
	}()
	select {
	case <-drained:
	case <-time.After(drainTimeout):
		// No EOF yet: a descendant holds a pipe open, or the copy is
		// slow. Stop waiting for EOF, but copy everything already in
		// the pipes: that much the application wrote before it exited.
		a.outR.SetReadDeadline(time.Now())
		a.errR.SetReadDeadline(time.Now())
		<-drained // the copiers finish their current chunk
		copyAvailable(a.stdout, a.outR)
		copyAvailable(a.stderr, a.errR)
	}
}

// reapOrphans reaps the shim's exited children other than keep (the running
// application, left to its own Wait), without blocking.
func reapOrphans(keep int) {
	for {
		var si siginfo
		// Look first (WNOWAIT): it may be keep.
		_, _, errno := unix.Syscall6(unix.SYS_WAITID, unix.P_ALL, 0, uintptr(unsafe.Pointer(&si)), unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, 0, 0)
		switch {
		case errno == unix.EINTR:
			continue
		case errno != 0, si.Pid == 0, int(si.Pid) == keep: // no child, none exited, or keep
			return
		}
		var ws unix.WaitStatus
		unix.Wait4(int(si.Pid), &ws, unix.WNOHANG, nil)
	}
}

// siginfo is the head of the kernel's siginfo_t as waitid fills it for
// SIGCHLD (x/sys/unix leaves the union opaque).
type siginfo struct {
	Signo, Errno, Code, _ int32
	Pid, Uid, Status      int32
	_                     [100]byte
}

// copyAvailable copies what the pipe holds now, without waiting for more.
// The read end is non-blocking (os.Pipe gives it to the poller), so a raw
// read returns EAGAIN once the pipe is empty; raw, because the deadline set
// on the file would fail its Read.
func copyAvailable(w io.Writer, r *os.File) {
	rc, err := r.SyscallConn()
	if err != nil {
		return
	}
	buf := make([]byte, 32<<10)
	rc.Control(func(fd uintptr) {
		for {
			n, err := unix.Read(int(fd), buf)
			if n > 0 {
				w.Write(buf[:n])
			}
			if err == unix.EINTR {
				continue
			}
			if n <= 0 || err != nil {
				return
			}
		}
	})
}

// exitStatus converts a wait status.
func exitStatus(ps *os.ProcessState, t time.Time) provider.ExitStatus {
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return provider.ExitStatus{Code: -1, Signal: unix.SignalName(ws.Signal()), Time: t}
	}
	return provider.ExitStatus{Code: ps.ExitCode(), Time: t}
}

// refuse records that the application could not be started and tells the
// launcher.
func (s *shim) refuse(err error) int {
	s.st.Exited = true
	s.st.Exit = provider.ExitStatus{Code: -1, Time: time.Now(), Error: err.Error()}
	s.save(true)
	s.sayHello(hello{Error: err.Error()})
	return 0
}

// sayHello answers Launch with one line. Its launcher may be gone (killed
// mid-launch): then the write fails with EPIPE, which changes nothing. (Go
// raises SIGPIPE only for writes to stdout and stderr.)
func (s *shim) sayHello(h hello) {
	b, _ := json.Marshal(h)
	s.hello.Write(append(b, '\n'))
}

func (s *shim) save(durable bool) {
	if err := writeJSON(filepath.Join(s.dir, statusFile), s.st, 0o644, durable); err != nil {
		fmt.Fprintf(os.Stderr, "autoheal shim: write status: %v\n", err)
	}
}

// assignment is what a spare shim waits for: its instance. The listeners
// come with it as SCM_RIGHTS, in order.
type assignment struct {
	ID        string `json:"id"`
	Dir       string `json:"dir"`
	Listeners int    `json:"listeners"`
}

// maxListeners bounds the descriptors one assignment may carry.
const maxListeners = 64

// awaitAssignment reads the assignment line from the control socket, with
// the descriptors that came with its first byte.
func awaitAssignment(ctl *os.File) (assignment, []*os.File, error) {
	var a assignment
	var files []*os.File
	var line []byte
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4*maxListeners))
	fd := int(ctl.Fd()) // blocking: nothing else to do until assigned
	for !bytes.Contains(line, []byte{'\n'}) {
		n, oobn, flags, _, err := unix.Recvmsg(fd, buf, oob, unix.MSG_CMSG_CLOEXEC)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return a, nil, fmt.Errorf("await assignment: %w", err)
		}
		if flags&unix.MSG_CTRUNC != 0 {
			return a, nil, errors.New("await assignment: too many descriptors")
		}
		if oobn > 0 {
			msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
			if err != nil {
				return a, nil, fmt.Errorf("await assignment: %w", err)
			}
			for _, m := range msgs {
				fds, err := unix.ParseUnixRights(&m)
				if err != nil {
					return a, nil, fmt.Errorf("await assignment: %w", err)
				}
				for _, fd := range fds {
					files = append(files, os.NewFile(uintptr(fd), "listener"))
				}
			}
		}
		if n == 0 {
			return a, nil, io.EOF
		}
		line = append(line, buf[:n]...)
	}
	if err := json.Unmarshal(line, &a); err != nil {
		return a, nil, fmt.Errorf("await assignment: %w", err)
	}
	if !filepath.IsAbs(a.Dir) || !provider.ValidInstanceID(a.ID) || len(files) != a.Listeners {
		return a, nil, fmt.Errorf("await assignment: bad assignment %q with %d descriptors", line, len(files))
	}
	return a, files, nil
}

// warmUp runs, while a spare waits, the code a launch will need: the first
// use of a code path in a fresh process costs page faults, about a
// millisecond each for JSON, pipes and fork/exec on a small VM, and those
// should not be paid on the launch path.
func warmUp() {
	var spec shimSpec
	b, _ := json.Marshal(shimSpec{Env: []string{"A=B"}, Locks: []provider.Lock{{}}})
	json.Unmarshal(b, &spec)
	b, _ = json.Marshal(status{Exited: true})
	var st status
	json.Unmarshal(b, &st)
	json.Marshal(hello{Exit: &provider.ExitStatus{}})
	if r, w, err := os.Pipe(); err == nil {
		r.Close()
		w.Close()
	}
	startTime(os.Getpid())
	// A fork/exec that fails in the child: the whole path, no process left.
	cmd := exec.Command("/nonexistent/autoheal-warm-up")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Run()
}
