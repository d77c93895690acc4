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
	"strconv"
	"strings"
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
	dir string
	st  status
}

func runShim(args []string) int {
	spare := len(args) == 1 && args[0] == spareArg
	if len(args) != 1 || !spare && !filepath.IsAbs(args[0]) {
		fmt.Fprintln(os.Stderr, "usage: autoheal "+shimArg+" <absolute instance dir> | "+spareArg)
		return 2
	}
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
	// its parent dies, instead of init's: then when the application exits
	// the shim knows whether anything of it survived (see reapOrphans).
	subreaper := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == nil
	helloW := os.NewFile(shimHelloFD, "hello")

	dir := args[0]
	var listeners []*os.File
	if spare {
		env := spareEnviron()
		if env == nil {
			fmt.Fprintln(os.Stderr, "autoheal spare shim: cannot rewrite its environment here")
			return exitNoSpare
		}
		warmUp()
		a, fds, err := awaitAssignment(helloW)
		if err != nil {
			if err != io.EOF { // EOF: the controller went away first
				fmt.Fprintf(os.Stderr, "autoheal spare shim: %v\n", err)
			}
			return 0
		}
		// First of all, become visible as the instance's shim.
		assignEnviron(env, a.ID)
		dir, listeners = a.Dir, fds
		// From here on the shim's own output belongs to the instance.
		if f, err := os.OpenFile(filepath.Join(dir, shimLog), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640); err == nil {
			unix.Dup3(int(f.Fd()), 1, 0)
			unix.Dup3(int(f.Fd()), 2, 0)
			f.Close()
		}
	}
	s := &shim{dir: dir}
	s.st.ShimPid = os.Getpid()
	s.st.ShimStart, _ = startTime(os.Getpid())

	b, err := os.ReadFile(filepath.Join(s.dir, specFile))
	var spec shimSpec
	if err == nil {
		err = json.Unmarshal(b, &spec)
	}
	if err != nil {
		return s.refuse(helloW, fmt.Errorf("read instance spec: %w", err))
	}
	// status.json is first written once the application runs (or could
	// not): a record before that would only tell a restarted controller
	// of a launch it resumes by fencing anyway, and each write costs a
	// millisecond on the launch path.
	s.st.ID = spec.ID

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
		return s.refuse(helloW, fmt.Errorf("got %d listeners for %d names", len(listeners), len(spec.Listeners)))
	}
	locks, err := takeLocks(spec.Locks)
	if err != nil {
		return s.refuse(helloW, err)
	}
	defer func() {
		for _, f := range locks {
			f.Close()
		}
	}()
	cr, err := resolveUser(spec.User)
	if err != nil {
		return s.refuse(helloW, err)
	}
	stdout, err := openRotator(filepath.Join(s.dir, stdoutLog), spec.LogMaxSize, spec.LogMaxFiles)
	if err != nil {
		return s.refuse(helloW, fmt.Errorf("open log: %w", err))
	}
	stderr, err := openRotator(filepath.Join(s.dir, stderrLog), spec.LogMaxSize, spec.LogMaxFiles)
	if err != nil {
		return s.refuse(helloW, fmt.Errorf("open log: %w", err))
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		return s.refuse(helloW, err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		return s.refuse(helloW, err)
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
	startedAt := time.Now()
	var cmd *exec.Cmd
	if len(spec.Mounts) > 0 {
		// The shim stays in the host's mount namespace; the application
		// gets a private one with the mounts, and the working directory is
		// entered there, since it may lie inside a mount.
		cmd, err = startInMountNS(context.Background(), cfg, opts, spec.Mounts, spec.HostMountNS)
	} else {
		cmd, err = startProgram(context.Background(), cfg, opts)
	}
	outW.Close()
	errW.Close()
	for _, f := range listeners {
		f.Close() // the application has its own; the controller keeps its
	}
	listeners = nil
	if err != nil {
		fmt.Fprintf(stderr, "autoheal: %v\n", err)
		return s.refuse(helloW, err)
	}
	pid := cmd.Process.Pid
	s.st.Pid = pid
	s.st.PidStart, _ = startTime(pid)
	s.st.StartedAt = startedAt
	s.save(false)
	s.sayHello(helloW, hello{Pid: pid, PidStart: s.st.PidStart, StartedAt: startedAt})
	defer helloW.Close()

	// Orphans that exit while the application runs are reaped as they go;
	// the application itself is left to cmd.Wait.
	sigchld := make(chan os.Signal, 1)
	reaping := make(chan struct{})
	if subreaper {
		signal.Notify(sigchld, syscall.SIGCHLD)
		go func() {
			defer close(reaping)
			for range sigchld {
				reapOrphans(pid)
			}
		}()
	} else {
		close(reaping)
	}

	var copying sync.WaitGroup
	for _, c := range []struct {
		w io.Writer
		r *os.File
	}{{stdout, outR}, {stderr, errR}} {
		copying.Add(1)
		go func() {
			defer copying.Done()
			io.CopyBuffer(c.w, c.r, make([]byte, 32<<10))
		}()
	}

	cmd.Wait()
	exit := exitStatus(cmd.ProcessState, time.Now())
	signal.Stop(sigchld)
	close(sigchld)
	<-reaping
	// By now the kernel has handed the application's children to us.
	alone := subreaper && reapOrphans(0)
	if subreaper && !alone {
		// What outlived the application dies with it, here, where it is
		// known for sure: by its parent, us. A fence could not find a
		// process that left the application's process group and
		// overwrote its environment (PostgreSQL's children call setsid
		// and write their title over it) once it is reparented away.
		alone = killOrphans()
	}
	// The volume was the application's: release it before anyone hears of
	// the exit. (Descendants that inherited the lock descriptors hold the
	// lock until Stop kills them.)
	for _, f := range locks {
		f.Close()
	}
	locks = nil
	// What the application wrote before it exited is in the pipes: copy it
	// before reporting, so that the logs are complete for whoever reads
	// them after Done. A descendant holding a pipe open must not delay the
	// report for long.
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
		outR.SetReadDeadline(time.Now())
		errR.SetReadDeadline(time.Now())
		<-drained // the copiers finish their current chunk
		copyAvailable(stdout, outR)
		copyAvailable(stderr, errR)
	}
	s.st.Exited, s.st.Exit = true, exit
	// Tell the launching controller first: it holds the other end of the
	// hello pipe for as long as it follows the instance, closes Done on
	// this line without waiting for our own exit, and records the exit
	// durably in its own store. Then the fsync here is not needed. If the
	// pipe is broken (the controller is gone, or adopted us later), this
	// record may be the only copy of the exit until a controller reads it:
	// it must survive a crash.
	line, _ := json.Marshal(hello{Exit: &exit, Alone: alone})
	_, perr := helloW.Write(append(line, '\n'))
	s.save(perr != nil)
	stdout.Close()
	stderr.Close()
	return 0
}

// killOrphans SIGKILLs the shim's children (the application is gone, so
// they are what outlived it) and reaps them, round after round, since the
// children of a killed one become ours in turn. It reports whether none is
// left.
func killOrphans() bool {
	for range 100 {
		kids := children()
		if len(kids) == 0 {
			return reapOrphans(0)
		}
		for _, pid := range kids {
			unix.Kill(pid, unix.SIGKILL)
		}
		for range kids {
			var ws unix.WaitStatus
			if _, err := unix.Wait4(-1, &ws, 0, nil); err == unix.ECHILD {
				break
			}
		}
	}
	return reapOrphans(0)
}

// children lists the shim's children, from every thread's list.
func children() []int {
	tasks, _ := filepath.Glob("/proc/self/task/*/children")
	var out []int
	for _, f := range tasks {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, field := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(field); err == nil {
				out = append(out, pid)
			}
		}
	}
	return out
}

// reapOrphans reaps the shim's exited children other than keep (the running
// application, left to its own Wait), without blocking. It reports whether
// the shim has no child left at all: with the shim as their subreaper, that
// means no process descended from the application is alive.
func reapOrphans(keep int) bool {
	for {
		var si siginfo
		flags := unix.WEXITED | unix.WNOHANG
		if keep > 0 {
			flags |= unix.WNOWAIT // look first: it may be keep
		}
		_, _, errno := unix.Syscall6(unix.SYS_WAITID, unix.P_ALL, 0, uintptr(unsafe.Pointer(&si)), uintptr(flags), 0, 0)
		switch {
		case errno == unix.EINTR:
			continue
		case errno == unix.ECHILD:
			return true
		case errno != 0, si.Pid == 0: // children, none exited
			return false
		case keep > 0 && int(si.Pid) == keep:
			return false
		case keep > 0:
			var ws unix.WaitStatus
			unix.Wait4(int(si.Pid), &ws, unix.WNOHANG, nil)
		}
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
func (s *shim) refuse(helloW *os.File, err error) int {
	s.st.Exited = true
	s.st.Exit = provider.ExitStatus{Code: -1, Time: time.Now(), Error: err.Error()}
	s.save(true)
	s.sayHello(helloW, hello{Error: err.Error()})
	helloW.Close()
	return 0
}

// sayHello answers Launch with one line. Its launcher may be gone (killed
// mid-launch): then the write fails with EPIPE, which changes nothing. (Go
// raises SIGPIPE only for writes to stdout and stderr.)
func (s *shim) sayHello(w *os.File, h hello) {
	b, _ := json.Marshal(h)
	w.Write(append(b, '\n'))
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
