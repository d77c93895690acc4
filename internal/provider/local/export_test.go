//go:build linux

package local

import "time"

// WarmSpare starts the spare shim and waits until Launch can take it (its
// start-up may still be under way).
func WarmSpare(l *Local) {
	l.refill(0)
	for {
		l.mu.Lock()
		ok := l.spare != nil || l.noSpare.Load() || l.closed
		l.mu.Unlock()
		if ok {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// SparePid is the idle spare shim's pid, 0 if none.
func SparePid(l *Local) int { return l.sparePid() }

// StopScans is how many /proc scans Stop made.
func StopScans(l *Local) int64 { return l.scans.Load() }
