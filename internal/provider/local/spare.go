//go:build linux

package local

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/autoheal/autoheal/internal/provider"
	"golang.org/x/sys/unix"
)

// A spare shim is a shim started before its instance exists: `autoheal
// __autoheal_shim --spare`, waiting on a control socket (its fd 3) for the
// instance and its listeners (SCM_RIGHTS). Starting a Go binary as large
// as autoheal costs tens of milliseconds on a small VM (runtime and package
// initialisation, page faults), most of a Launch; a spare pays it, and
// warms up the code a launch runs, before the Launch that needs it. One is
// kept per provider, started again a moment after each Launch. It exits by
// itself when the socket closes (the controller went away), and Close
// kills it. Until assigned it is invisible to scans of the state dir; then
// it takes on the identity of its instance (see spareenv.go).
type spare struct {
	cmd   *exec.Cmd
	ctl   *os.File // our end of the control socket, then the hello channel
	start uint64
}

// startSpare starts a spare shim.
func (l *Local) startSpare() (*spare, error) {
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, os.NewSyscallError("socketpair", err)
	}
	// Ours non-blocking, so that os.NewFile gives it to the poller (read
	// deadlines, Close waking a blocked read); the spare's blocking.
	unix.SetNonblock(pair[0], true)
	ctl := os.NewFile(uintptr(pair[0]), "spare-ctl")
	child := os.NewFile(uintptr(pair[1]), "spare-ctl")
	defer child.Close()
	logf, err := os.OpenFile(filepath.Join(l.stateDir, "instances", ".spare-shim.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		ctl.Close()
		return nil, err
	}
	defer logf.Close()
	cmd := &exec.Cmd{
		Path:       l.exe,
		Args:       []string{l.exe, shimArg, spareArg},
		Env:        spareEnv(l.stateDir),
		Dir:        "/",
		Stdout:     logf,
		Stderr:     logf,
		ExtraFiles: []*os.File{child}, // fd 3
		// The namespace is made now, off the launch path.
		SysProcAttr: l.fence.sysProcAttr(),
	}
	if err := cmd.Start(); err != nil {
		ctl.Close()
		return nil, err
	}
	start, _ := startTime(cmd.Process.Pid) // our unreaped child: still it
	return &spare{cmd: cmd, ctl: ctl, start: start}, nil
}

// kill ends an unused spare and reaps it.
func (sp *spare) kill() {
	sp.ctl.Close()
	sp.cmd.Process.Kill()
	sp.cmd.Wait()
}

// assignSpare hands the spare, if there is one, the instance in dir and its
// listeners. It returns the spare as a started shim, or nil (and why, if the
// spare failed) for Launch to start one.
func (l *Local) assignSpare(id, dir string, listeners []provider.Listener) (*exec.Cmd, *os.File, error) {
	l.mu.Lock()
	sp := l.spare
	l.spare = nil
	l.mu.Unlock()
	if sp == nil {
		return nil, nil, nil
	}
	msg, _ := json.Marshal(assignment{ID: id, Dir: dir, Listeners: len(listeners)})
	msg = append(msg, '\n')
	var fds []int
	for _, ln := range listeners {
		fds = append(fds, int(ln.File.Fd()))
	}
	var rights []byte
	if len(fds) > 0 {
		rights = unix.UnixRights(fds...)
	}
	rc, err := sp.ctl.SyscallConn()
	if err != nil {
		sp.kill()
		return nil, nil, err
	}
	var serr error
	var n int
	err = rc.Write(func(fd uintptr) bool {
		n, serr = unix.SendmsgN(int(fd), msg, rights, nil, 0)
		return serr != unix.EAGAIN
	})
	if err == nil {
		err = serr
	}
	if err == nil && n != len(msg) {
		err = errors.New("short write")
	}
	if err != nil {
		// Nothing was assigned: the spare died or its socket is broken.
		sp.kill()
		if sp.cmd.ProcessState.ExitCode() == exitNoSpare {
			l.noSpare.Store(true)
			return nil, nil, errors.New("spare shims cannot work here (see instances/.spare-shim.log); not using them")
		}
		return nil, nil, fmt.Errorf("assign spare shim: %w", err)
	}
	return sp.cmd, sp.ctl, nil
}

// refillDelay is how long after a Launch the next spare is started: long
// enough not to compete for a CPU with the application's own first
// milliseconds, short enough that a second failure soon after the first
// (a crash loop, or the heal benchmark's back-to-back kills) still finds a
// spare: at 250ms, half of those launches paid for a fresh shim (~25ms).
const refillDelay = 30 * time.Millisecond

// refillSpare starts the next spare after refillDelay, unless one exists or
// is on its way.
func (l *Local) refillSpare() { l.refill(refillDelay) }

func (l *Local) refill(delay time.Duration) {
	if l.noSpare.Load() {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || l.spare != nil || l.refilling {
		return
	}
	l.refilling = true
	l.wg.Add(1)
	l.refillTimer = time.AfterFunc(delay, func() {
		defer l.wg.Done()
		l.mu.Lock()
		closed := l.closed
		l.mu.Unlock()
		var sp *spare
		if !closed {
			var err error
			if sp, err = l.startSpare(); err != nil {
				l.log.Warn("cannot start a spare shim", "err", err)
			}
		}
		l.mu.Lock()
		l.refilling = false
		if sp != nil && !l.closed && l.spare == nil {
			l.spare, sp = sp, nil
		}
		l.mu.Unlock()
		if sp != nil {
			sp.kill()
		}
	})
}

// sparePid is the pid of the idle spare, 0 if none.
func (l *Local) sparePid() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.spare == nil {
		return 0
	}
	return l.spare.cmd.Process.Pid
}
