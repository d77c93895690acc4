//go:build linux

package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/autoheal/autoheal/internal/provider"
	"golang.org/x/sys/unix"
)

// Run runs `/bin/sh -c script` to completion in the instance's context: its
// environment (identity variables included, so Stop and Sweep see it), its
// working directory, its user and, as root, its bind mounts in a private
// mount namespace. It is not run under the shim: the caller waits for it.
// Spec.Locks and Spec.Listeners are ignored. stdout and stderr are captured
// together, the last RunOutputMax bytes kept. The script runs in its own
// process group, killed whole on timeout (TimedOut, ExitCode -1) or when
// ctx ends, and once the shell exits. A timeout of 0 or less means none:
// ctx still bounds it.
//
// Where the script's leftovers go (a descendant that called setsid has
// left the group): while the instance's shim runs as PID 1 of its
// namespace, the script is started inside that namespace, and what it
// leaves dies with the instance; otherwise, with a namespaced fence, the
// shell is PID 1 of a namespace of its own, and everything it left dies
// when it exits, before Run returns, and it gets SIGKILL if the controller
// dies (PR_SET_PDEATHSIG): a controller killed during a Run leaves nothing
// running outside an instance. With the fallback fence the leftovers are
// left to Stop's scan and to Sweep.
func (l *Local) Run(ctx context.Context, spec provider.Spec, script string, timeout time.Duration) (provider.Result, error) {
	var res provider.Result
	if !provider.ValidInstanceID(spec.ID) {
		return res, fmt.Errorf("run: invalid instance id %q", spec.ID)
	}
	if !l.fence.namespaced() {
		l.markScan(spec.ID)
	}
	cr, err := resolveUser(spec.User)
	if err != nil {
		return res, fmt.Errorf("run: %w", err)
	}
	cfg := execConfig{
		Command: "/bin/sh",
		Argv:    []string{"sh", "-c", script},
		Env:     l.environ(spec),
		Workdir: spec.Workdir,
		Cred:    cr,
	}
	if cfg.Workdir == "" {
		cfg.Workdir = DefaultWorkdir
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return res, fmt.Errorf("run: %w", err)
	}
	defer pr.Close()
	began := time.Now()
	// The whole run, fork to reap, on one thread: the parent-death signal
	// fires when the thread that forked the shell ends, and the thread may
	// change its namespaces, so it is thrown away afterwards.
	onThrowawayThread(func() {
		cmd, serr := l.startScript(ctx, spec, cfg, startOptions{stdout: pw, stderr: pw})
		res, err = l.finishRun(ctx, cmd, serr, pr, pw, began, timeout)
	})
	return res, err
}

// startScript starts a Run's shell on the calling thread, which must be
// locked to its goroutine and thrown away after the shell is reaped.
func (l *Local) startScript(ctx context.Context, spec provider.Spec, cfg execConfig, opts startOptions) (*exec.Cmd, error) {
	if l.useMounts(spec.Mounts) {
		// unshare(CLONE_NEWNS) implies CLONE_FS, which a thread may
		// unshare from the rest of its process.
		if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
			return nil, &unshareError{err}
		}
		if err := makeMounts(spec.Mounts, l.hostNS); err != nil {
			return nil, err
		}
	}
	if l.fence == FencePIDNamespace {
		if cmd, ok, err := l.startInInstance(ctx, spec.ID, cfg, opts); ok {
			return cmd, err
		}
	}
	opts.attr = l.fence.sysProcAttr()
	// As PID 1 of its own namespace the shell sees getppid() == 0, and
	// the self-kill with which Go's child answers a parent that seems
	// gone is ignored: a namespace's init ignores signals from inside it
	// that it has no handler for. The parent's real death is signalled
	// from outside and is not ignored.
	opts.attr.Pdeathsig = syscall.SIGKILL
	return startProgram(ctx, cfg, opts)
}

// startInInstance starts cfg inside the PID namespace of instance id's
// shim, if this provider follows one whose application has not exited; ok
// is false if there is none (or it ended meanwhile), and the caller then
// starts it elsewhere. (Once the application has exited, its shim is
// about to end the namespace: a script started there would be killed.)
// setns changes the namespace of the calling thread's future children
// only.
func (l *Local) startInInstance(ctx context.Context, id string, cfg execConfig, opts startOptions) (cmd *exec.Cmd, ok bool, err error) {
	l.mu.Lock()
	p := l.namespaces[id]
	l.mu.Unlock()
	if p == nil || p.isDone() {
		return nil, false, nil
	}
	fd, verified := l.openVerified(p.shimPid, p.shimStart, id, false)
	if !verified {
		return nil, false, nil
	}
	err = setnsPID(fd)
	fd.Close()
	if err != nil {
		return nil, false, nil // it exited: ESRCH
	}
	// No parent-death signal here: Go's child checks getppid() against
	// its parent's pid after setting it and kills itself on a mismatch,
	// and a process whose parent is outside its namespace sees 0. (A
	// namespace's init ignores that self-kill; a member does not.) A
	// script left by a dead controller dies with the instance.
	opts.attr = &syscall.SysProcAttr{Setsid: true}
	cmd, err = startProgram(ctx, cfg, opts)
	if errors.Is(err, unix.ENOMEM) {
		// The namespace's init exited between setns and fork: the kernel
		// no longer adds processes to it. Back to our own namespace.
		if err := leavePIDNamespace(); err != nil {
			return nil, true, fmt.Errorf("leave instance namespace: %w", err)
		}
		return nil, false, nil
	}
	return cmd, true, err
}

// finishRun collects a started script's output and exit.
func (l *Local) finishRun(ctx context.Context, cmd *exec.Cmd, startErr error, pr, pw *os.File, began time.Time, timeout time.Duration) (provider.Result, error) {
	pw.Close() // ours; the script has its copies
	var res provider.Result
	if startErr != nil {
		return res, fmt.Errorf("run: %w", startErr)
	}
	pid := cmd.Process.Pid
	// Not yet reaped, so the pid is still the script's shell.
	pfd, err := openPidFD(pid)
	if err != nil {
		killWait(cmd)
		return res, fmt.Errorf("run: %w", err)
	}
	defer pfd.Close()
	out := &tailBuffer{max: RunOutputMax}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		io.Copy(out, pr)
	}()

	// The shell leads the group. Until it is reaped its pid cannot be
	// reused, so a group kill sent before then cannot hit a stranger;
	// reaped flips under mu so that a late timer does not.
	var (
		mu       sync.Mutex
		reaped   bool
		timedOut atomic.Bool
	)
	killGroup := func() {
		mu.Lock()
		defer mu.Unlock()
		if !reaped {
			syscall.Kill(-pid, syscall.SIGKILL)
		}
	}
	if timeout > 0 {
		t := time.AfterFunc(timeout, func() {
			timedOut.Store(true)
			killGroup()
		})
		defer t.Stop()
	}
	stop := context.AfterFunc(ctx, killGroup)
	defer stop()

	pfd.wait(context.Background()) // ends: the kills above make sure
	killGroup()                    // what the script left in the background
	mu.Lock()
	reaped = true
	mu.Unlock()
	cmd.Wait()
	res.Duration = time.Since(began)
	// SIGKILL is delivered, not yet acted on, when kill returns: wait
	// until the leftovers are gone, so that none still holds a volume when
	// Run returns. The group id stays reserved while any member, zombie
	// or not, exists, so a group that answers is still the script's.
	if syscall.Kill(-pid, 0) == nil {
		if err := l.waitGroup(pid); err != nil {
			l.log.Warn("run: leftover processes", "pgid", pid, "err", err)
		}
	}
	// Output still in the pipe is there at once; a descendant that left
	// the group (setsid) may hold the pipe open, so do not wait for EOF
	// for long.
	select {
	case <-copied:
	case <-time.After(drainTimeout):
		pr.Close()
		<-copied
	}
	res.ExitCode = cmd.ProcessState.ExitCode()
	res.TimedOut = timedOut.Load()
	res.Output = out.String()
	if err := ctx.Err(); err != nil && !res.TimedOut {
		return res, fmt.Errorf("run: %w", err)
	}
	return res, nil
}

// waitGroup kills and waits for the live members of process group pgid.
func (l *Local) waitGroup(pgid int) error {
	ctx, cancel := context.WithTimeout(context.Background(), killTimeout)
	defer cancel()
	for {
		procs, err := scanProcs(l.stateDir, func(procStat) bool { return false },
			func(e procEntry) bool { return e.stat.Pgid == pgid })
		if err != nil || len(procs) == 0 {
			return err
		}
		if err := l.kill(ctx, procs); err != nil {
			return err
		}
	}
}
