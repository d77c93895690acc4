//go:build linux

package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/autoheal/autoheal/internal/provider"
)

// shimGrace is how long Stop waits for the shim to report an exit once the
// application was sent SIGKILL, before it kills the shim too.
const shimGrace = 5 * time.Second

// Stop fences an instance: sig to its process group, SIGKILL to the group
// after timeout, and it returns nil only once every process of the
// instance is gone, the shim included. With a PID namespace per instance
// that is once the shim (the namespace's init, which kills the rest when
// the application exits) has exited: the kernel completes an init's exit
// only after every member of its namespace is reaped. Without one, Stop
// also kills and waits for every process still in the group or carrying
// the instance's id in its environment (a descendant that called setsid
// has left the group but not its environment). It is idempotent and cheap
// on an instance that already exited.
func (l *Local) Stop(ctx context.Context, pp provider.Process, sig syscall.Signal, timeout time.Duration) error {
	p, ok := pp.(*process)
	if !ok || p == nil {
		return fmt.Errorf("stop: %T is not a process of the local provider", pp)
	}
	if p.fenced.Load() {
		return nil // confirmed gone; nothing of it can have come back
	}
	if sig == 0 {
		sig = syscall.SIGTERM
	}
	began := time.Now()
	defer func() {
		if p.fenced.Load() {
			l.log.Debug("stopped", "instance", p.id, "took", time.Since(began))
		}
	}()
	if err := l.stopApp(ctx, p, sig, timeout); err != nil {
		return fmt.Errorf("stop %s: %w", p.id, err)
	}
	cctx, cancel := context.WithTimeout(ctx, killTimeout)
	defer cancel()
	if err := l.killLeftovers(cctx, p); err != nil {
		return fmt.Errorf("stop %s: %w", p.id, err)
	}
	if err := l.awaitShim(ctx, cctx, p); err != nil {
		return fmt.Errorf("stop %s: %w", p.id, err)
	}
	p.fenced.Store(true)
	return nil
}

// stopApp sends sig to the application's process group, then SIGKILL
// after timeout, and waits for the shim to report the exit. It returns
// only ctx's error.
func (l *Local) stopApp(ctx context.Context, p *process, sig syscall.Signal, timeout time.Duration) error {
	if p.isDone() || p.pid <= 0 {
		return nil
	}
	// The shim has not reported the exit, so the leader is alive or
	// just gone: its pid still names the group.
	syscall.Kill(-p.pid, sig)
	if !l.waitExit(ctx, p, timeout) {
		if err := ctx.Err(); err != nil {
			return err
		}
		syscall.Kill(-p.pid, syscall.SIGKILL)
		l.waitExit(ctx, p, shimGrace)
	}
	return nil
}

// killLeftovers kills and waits for what the application or a script left
// behind, when that needs a scan of the host's processes. A failed scan is
// marked to run again on the next Stop.
func (l *Local) killLeftovers(ctx context.Context, p *process) error {
	l.mu.Lock()
	scan := !p.nsInit && !p.alone.Load() || l.mustScan[p.id]
	delete(l.mustScan, p.id)
	l.mu.Unlock()
	// The scan reads every process on the host (a millisecond or two on
	// a small VM, on every heal's path). It is not needed for what the
	// application started when the shim is PID 1 of the instance's
	// namespace: its exit, waited for below, is the exit of every process
	// of the instance. Without a namespace it is skipped when the shim,
	// the subreaper of everything the application started, killed and
	// reaped all of it. Scripts are another matter (mustScan): those Run
	// started without a namespace, and, for an adopted instance, those a
	// previous controller may have left (it may have run without
	// namespaces). The shim is left out of the scan: once its application
	// is gone it finishes its bookkeeping and exits by itself, and the
	// scan runs meanwhile. It is waited for after, and killed only if it
	// lingers.
	if !scan {
		return nil
	}
	l.scans.Add(1)
	if err := l.killAll(ctx, p.id, p.pid, p.pidStart, p.shimStart, p.shimPid); err != nil {
		l.markScan(p.id)
		return err
	}
	return nil
}

// awaitShim waits for the shim to exit, killing it if it lingers (cctx
// bounds that), and then for its exit status to be read.
func (l *Local) awaitShim(ctx, cctx context.Context, p *process) error {
	grace := shimGrace
	if !p.isDone() && !isClosed(p.unwatched) {
		grace = 0 // it did not report the exit after SIGKILL: stuck
	}
	if isClosed(p.unwatched) || !waitClosed(ctx, p.shimGone, grace) {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := l.endShim(cctx, p, grace); err != nil {
			return err
		}
	}
	// Everything is gone, the shim too, so its watcher closes Done at once;
	// unless no watcher runs (this Local was closed): then read the
	// status here.
	if isClosed(p.unwatched) {
		l.shimExited(p)
	} else if !waitDone(ctx, p, shimGrace) {
		if err := ctx.Err(); err != nil {
			return err
		}
		l.shimExited(p)
	}
	return nil
}

// endShim waits up to grace for the shim to exit by itself, then kills it.
func (l *Local) endShim(ctx context.Context, p *process, grace time.Duration) error {
	if grace > 0 {
		fd, ok := l.openVerified(p.shimPid, p.shimStart, p.id, false)
		if !ok {
			return nil
		}
		gctx, cancel := context.WithTimeout(ctx, grace)
		err := fd.wait(gctx)
		cancel()
		fd.Close()
		if err == nil {
			return nil
		}
	}
	fd, ok := l.openVerified(p.shimPid, p.shimStart, p.id, false)
	if !ok {
		return nil
	}
	defer fd.Close()
	l.log.Warn("killing a shim that does not exit", "instance", p.id, "shim_pid", p.shimPid)
	if err := fd.signal(syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill shim %d: %w", p.shimPid, err)
	}
	return fd.wait(ctx)
}

// waitExit waits up to d for the application to exit: for Done while a
// watcher runs, else for the leader itself through a pidfd.
func (l *Local) waitExit(ctx context.Context, p *process, d time.Duration) bool {
	deadline := time.Now().Add(d)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-p.done:
		return true
	case <-ctx.Done():
		return false
	case <-t.C:
		return false
	case <-p.unwatched:
	}
	fd, ok := l.openVerified(p.pid, p.pidStart, p.id, false)
	if !ok {
		return true // gone (or a zombie)
	}
	defer fd.Close()
	wctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	return fd.wait(wctx) == nil
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func waitDone(ctx context.Context, p *process, d time.Duration) bool {
	return waitClosed(ctx, p.done, d)
}

// waitClosed waits up to d for c to be closed.
func waitClosed(ctx context.Context, c <-chan struct{}, d time.Duration) bool {
	select {
	case <-c:
		return true
	default:
	}
	if d <= 0 {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-c:
		return true
	case <-ctx.Done():
		return false
	case <-t.C:
		return false
	}
}

// killAll kills every live process of instance id but exclude and waits
// for them: the members of process group pgid (the application's, if > 0)
// and the processes whose environment names the instance. Only processes
// started no earlier than notBefore (the shim's start) can be the
// instance's, so only their environments are read. It scans again after
// each kill, since a process may fork while it is being killed, and
// returns once a scan finds nothing.
func (l *Local) killAll(ctx context.Context, id string, pgid int, pgidStart, notBefore uint64, exclude int) error {
	if pgid > 0 {
		// A pid names a process group only while the group has members,
		// and is not reused meanwhile. If a process with that pid exists
		// but is not our leader, our group is empty and the number now
		// belongs to a stranger.
		if st, err := readStat(pgid); err == nil && st.Start != pgidStart {
			pgid = 0
		}
	}
	var ancestors map[int]bool // computed only if something is found
	for round := 0; ; round++ {
		procs, err := scanProcs(l.stateDir,
			func(st procStat) bool { return st.Start >= notBefore },
			func(e procEntry) bool {
				return e.pid != exclude && (pgid > 0 && e.stat.Pgid == pgid || e.ours && e.id == id)
			})
		if err != nil {
			return err
		}
		if len(procs) > 0 && ancestors == nil {
			ancestors = ancestry()
		}
		procs = slices.DeleteFunc(procs, func(e procEntry) bool { return ancestors[e.pid] })
		if len(procs) == 0 {
			return nil
		}
		if round == 10 {
			return fmt.Errorf("processes keep appearing (%d left)", len(procs))
		}
		if err := l.kill(ctx, procs); err != nil {
			return err
		}
	}
}

// kill sends SIGKILL to each process (and to the group of each that leads
// one) and waits for them to exit.
func (l *Local) kill(ctx context.Context, procs []procEntry) error {
	ancestors := ancestry()
	ownGroup := syscall.Getpgrp()
	var fds []*pidFD
	defer func() {
		for _, fd := range fds {
			fd.Close()
		}
	}()
	for _, e := range procs {
		if ancestors[e.pid] {
			continue // never the caller, nor what it runs under
		}
		fd, err := openPidFD(e.pid)
		if err != nil {
			continue // gone
		}
		// Pinned by the pidfd, the pid is still the process the scan saw
		// only if its start time is unchanged.
		if st, err := readStat(e.pid); err != nil || st.Start != e.stat.Start {
			fd.Close()
			continue
		}
		fds = append(fds, fd)
		if e.stat.Pgid == e.pid && e.pid != ownGroup {
			syscall.Kill(-e.pid, syscall.SIGKILL)
		}
		if err := fd.signal(syscall.SIGKILL); err != nil {
			return fmt.Errorf("kill %d: %w", e.pid, err)
		}
	}
	if err := waitAll(ctx, fds); err != nil {
		return fmt.Errorf("processes still alive after SIGKILL: %w", err)
	}
	return nil
}

// ancestry is this process and its ancestors: what a kill must never hit.
func ancestry() map[int]bool {
	m := map[int]bool{}
	for pid := os.Getpid(); pid > 1 && !m[pid]; {
		m[pid] = true
		st, err := readStat(pid)
		if err != nil {
			break
		}
		pid = st.Ppid
	}
	return m
}

// Sweep kills every process of this state dir whose instance is not in
// keep: orphans of launches and runs interrupted by a controller crash.
// Processes are found by their environment and, for applications that
// overwrite theirs (setproctitle), by the live pids that instances' status
// files record. It returns the pids it killed, once they are gone.
func (l *Local) Sweep(ctx context.Context, keep []string) ([]int, error) {
	keepSet := make(map[string]bool, len(keep))
	for _, id := range keep {
		keepSet[id] = true
	}
	ctx, cancel := context.WithTimeout(ctx, killTimeout)
	defer cancel()
	var killed []int
	for round := 0; ; round++ {
		procs, err := scanProcs(l.stateDir, nil, func(e procEntry) bool { return e.ours && !keepSet[e.id] })
		if err != nil {
			return killed, fmt.Errorf("sweep: %w", err)
		}
		if round == 0 {
			procs = append(procs, l.recorded(keepSet)...)
		}
		ancestors := ancestry() // never the caller, nor what it runs under
		procs = slices.DeleteFunc(procs, func(e procEntry) bool { return ancestors[e.pid] })
		if len(procs) == 0 {
			break
		}
		if round == 10 {
			return killed, fmt.Errorf("sweep: processes keep appearing (%d left)", len(procs))
		}
		if err := l.kill(ctx, procs); err != nil {
			return killed, fmt.Errorf("sweep: %w", err)
		}
		for _, e := range procs {
			if !slices.Contains(killed, e.pid) {
				killed = append(killed, e.pid)
			}
		}
	}
	slices.Sort(killed)
	if len(killed) > 0 {
		l.log.Info("swept orphan processes", "pids", killed)
	}
	return killed, nil
}

// recorded returns the live shims and applications that the status files of
// instances not in keep name, verified by start time.
func (l *Local) recorded(keep map[string]bool) []procEntry {
	ents, err := os.ReadDir(filepath.Join(l.stateDir, "instances"))
	if err != nil {
		return nil
	}
	var out []procEntry
	for _, ent := range ents {
		id := ent.Name()
		if keep[id] || !provider.ValidInstanceID(id) {
			continue
		}
		st, err := readStatus(filepath.Join(l.stateDir, "instances", id))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			l.log.Warn("sweep: unreadable status", "instance", id, "err", err)
		}
		if err != nil || st.Exited {
			continue
		}
		for _, c := range []struct {
			pid   int
			start uint64
		}{{st.ShimPid, st.ShimStart}, {st.Pid, st.PidStart}} {
			if c.pid <= 0 || c.pid == os.Getpid() {
				continue
			}
			if s, err := readStat(c.pid); err == nil && !s.zombie() && s.Start == c.start {
				out = append(out, procEntry{pid: c.pid, stat: s, ours: true, id: id})
			}
		}
	}
	return out
}
