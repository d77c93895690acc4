//go:build linux

package local

import (
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// WarmSpare starts the spare shim and waits until Launch can take it and
// it is ready: blocked waiting for its assignment, its start-up and
// warm-up done.
func WarmSpare(l *Local) {
	l.refill(0)
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		l.mu.Lock()
		ok := l.noSpare.Load() || l.closed
		if sp := l.spare; sp != nil {
			ok = awaitingAssignment(sp.cmd.Process.Pid)
		}
		l.mu.Unlock()
		if ok {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// awaitingAssignment reports whether a thread of pid is blocked in recvmsg,
// the spare's wait for its instance.
func awaitingAssignment(pid int) bool {
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, t := range tasks {
		b, err := os.ReadFile(dir + "/" + t.Name() + "/syscall")
		if f := strings.Fields(string(b)); err == nil && len(f) > 0 && f[0] == strconv.Itoa(unix.SYS_RECVMSG) {
			return true
		}
	}
	return false
}

// SparePid is the idle spare shim's pid, 0 if none.
func SparePid(l *Local) int { return l.sparePid() }

// StopScans is how many /proc scans Stop made.
func StopScans(l *Local) int64 { return l.scans.Load() }
