//go:build linux

package local

import (
	"bytes"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// killRest runs in the shim once its application has exited and been
// reaped: it kills whatever the application left behind and reaps it, so
// that nothing of the instance runs when the exit is reported. It reports
// whether that is certain.
//
// As PID 1 of the instance's namespace, kill(-1, SIGKILL) reaches every
// other process in the namespace, however it got there (double fork,
// setsid, a cleared environment, closed descriptors), and a fork racing
// with it fails: the kernel refuses a fork whose parent has a fatal signal
// pending. The shim's own exit would do the same (the kernel kills a
// namespace whose init exits), but doing it here first lets the output
// pipes reach EOF and the report say that nothing is left.
//
// Without a namespace, the shim is the subreaper of everything the
// application started: killDescendants walks that tree.
func killRest(namespaced, subreaper bool) bool {
	if !namespaced && !subreaper {
		return false
	}
	// Registered before the first wait, so that no exit goes unnoticed.
	sigchld := make(chan os.Signal, 1)
	signal.Notify(sigchld, syscall.SIGCHLD)
	defer signal.Stop(sigchld)
	deadline := time.Now().Add(killTimeout)
	if namespaced {
		unix.Kill(-1, unix.SIGKILL)
		return reapAll(sigchld, deadline)
	}
	return killDescendants(selfPid(), sigchld, deadline)
}

// reapAll reaps exited children until none is left (true), or until the
// deadline with some still running (false).
func reapAll(sigchld <-chan os.Signal, deadline time.Time) bool {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		switch {
		case err == unix.EINTR || pid > 0:
			continue
		case err == unix.ECHILD:
			return true
		case err != nil:
			return false
		}
		if !waitSignal(sigchld, deadline) {
			return false
		}
	}
}

// waitSignal waits for a SIGCHLD until the deadline; false if none came.
func waitSignal(sigchld <-chan os.Signal, deadline time.Time) bool {
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-sigchld:
		return true
	case <-t.C:
		return false
	}
}

// killDescendants is the fallback fence, run by a shim that is the
// subreaper of its application's processes but not a namespace init. It
// SIGKILLs every live descendant of self, walking the tree through
// /proc/<pid>/task/<tid>/children, reaps its children, and repeats until
// a walk finds nothing alive and no child is left (true), or the deadline
// passes (false). A process forked while a walk runs is the child of one
// the walk kills, and the kernel hands it to the subreaper when its parent
// dies: the next walk finds it. What this cannot catch: a process that is
// no longer a descendant, because the shim itself was killed (a same-user
// or root process can do that) and its orphans went to init.
func killDescendants(self int, sigchld <-chan os.Signal, deadline time.Time) bool {
	for {
		found := walkKill(self)
		for {
			var ws unix.WaitStatus
			pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
			if err == unix.EINTR || pid > 0 {
				continue
			}
			if err == unix.ECHILD && found == 0 {
				return true
			}
			break
		}
		if time.Now().After(deadline) {
			return false
		}
		if found == 0 && !waitSignal(sigchld, deadline) {
			// Only children still exiting, and none did in time.
			return false
		}
	}
}

// walkKill SIGKILLs every live descendant of root and returns how many it
// signalled. Each pid read from a children file is pinned with a pidfd and
// checked to still be that parent's child before it is signalled, so that
// a pid reused by a stranger meanwhile is never hit.
func walkKill(root int) int {
	n := 0
	stack := []int{root}
	for len(stack) > 0 {
		parent := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, c := range childrenOf(parent) {
			fd, err := unix.PidfdOpen(c, 0)
			if err != nil {
				continue // gone
			}
			st, err := readStat(c)
			if err == nil && st.Ppid == parent && !st.zombie() {
				unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
				n++
				stack = append(stack, c)
			}
			unix.Close(fd)
		}
	}
	return n
}

// childrenOf lists the children of every thread of pid (the kernel files
// a child under the thread that forked it). An unreadable list is empty:
// the process is gone.
func childrenOf(pid int) []int {
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []int
	for _, t := range tasks {
		b, err := os.ReadFile(dir + "/" + t.Name() + "/children")
		if err != nil {
			continue
		}
		for _, f := range bytes.Fields(b) {
			if c, err := strconv.Atoi(string(f)); err == nil {
				out = append(out, c)
			}
		}
	}
	return out
}
