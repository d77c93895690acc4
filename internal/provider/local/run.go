//go:build linux

package local

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/autoheal/autoheal/internal/provider"
)

// Run runs `/bin/sh -c script` to completion in the instance's context: its
// environment (identity variables included, so Stop and Sweep see it), its
// working directory, its user and, as root, its bind mounts in a private
// mount namespace. It is not run under the shim: the caller waits for it.
// Spec.Locks and Spec.Listeners are ignored. stdout and stderr are captured
// together, the last RunOutputMax bytes kept. The script runs in its own
// process group, killed whole on timeout (TimedOut, ExitCode -1) or when
// ctx ends, and once the shell exits, so that nothing it left in the
// background outlives it (a descendant that called setsid is left to Stop
// and Sweep). A timeout of 0 or less means none: ctx still bounds it.
func (l *Local) Run(ctx context.Context, spec provider.Spec, script string, timeout time.Duration) (provider.Result, error) {
	var res provider.Result
	if !provider.ValidInstanceID(spec.ID) {
		return res, fmt.Errorf("run: invalid instance id %q", spec.ID)
	}
	l.markScan(spec.ID)
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
	opts := startOptions{stdout: pw, stderr: pw}
	began := time.Now()
	var cmd *exec.Cmd
	if l.useMounts(spec.Mounts) {
		cmd, err = startInMountNS(ctx, cfg, opts, spec.Mounts, l.hostNS)
	} else {
		cmd, err = startProgram(ctx, cfg, opts)
	}
	return l.finishRun(ctx, cmd, err, pr, pw, began, timeout)
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
