package local

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// The dead man's switch of a cluster host (docs/design.md#13-the-cluster):
// the controller writes, at each renewal of its host's lease, a deadline by
// which the host's pets must be gone unless it renews again; every shim
// launched with Options.Deadline reads it and kills its application once
// the deadline passes. So a controller that dies (SIGKILL, a crash) leaves
// its pets running only until the lease could lapse and another host be
// given their volumes, not forever; a controller restarted in time renews
// and nothing stops.
//
// The deadline is CLOCK_BOOTTIME nanoseconds, the clock every process of
// the host shares and that goes on during a suspend (CLOCK_MONOTONIC does
// not: a host resumed after its lease lapsed would keep its pets running).
// A paused VM stops every clock of the guest; that needs a watchdog
// outside it (README, Cluster).

// deadlineFileSize is the file's size: one little-endian int64.
const deadlineFileSize = 8

// deadlinePoll is how often a shim reads the deadline while it is more
// than that away: the controller's fence budget covers it.
const deadlinePoll = 100 * time.Millisecond

func boottime() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		panic(fmt.Sprintf("clock_gettime(CLOCK_BOOTTIME): %v", err))
	}
	return ts.Nano()
}

// WriteDeadline records at path that the pets of shims launched with it
// must be gone by d (a time of this process's clock). The write replaces
// the file atomically; it is not synced (after a crash of the machine no
// pet runs anyway).
func WriteDeadline(path string, d time.Time) error {
	at := boottime() + int64(time.Until(d))
	var b [deadlineFileSize]byte
	binary.LittleEndian.PutUint64(b[:], uint64(at))
	tmp, err := os.CreateTemp(filepath.Dir(path), ".deadline-*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(b[:]); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return nil
}

// readDeadline returns the deadline at path (CLOCK_BOOTTIME ns). A file
// that is missing or not a deadline is a deadline passed: a controller
// that stands down removes it.
func readDeadline(path string) int64 {
	b, err := os.ReadFile(path)
	if err != nil || len(b) != deadlineFileSize {
		return 0
	}
	return int64(binary.LittleEndian.Uint64(b))
}

// errDeadline is why a shim killed its application.
var errDeadline = errors.New("the host's cluster lease could lapse: the application was stopped by its shim (deadline passed without renewal)")

// DeadlineLeft is the time left before the deadline at path: zero or less
// when it has passed or the file is missing.
func DeadlineLeft(path string) time.Duration { return time.Duration(readDeadline(path) - boottime()) }

// DeadlinePassed reports whether the deadline at path has passed (or the
// file is missing).
func DeadlinePassed(path string) bool { return readDeadline(path) <= boottime() }

// WatchDeadline returns true once the deadline at path has passed, or
// false when stop is closed. It reads the file every deadlinePoll, and
// wakes at the deadline itself when it is nearer. Whatever must go with a
// host's pets (its virtual IPs: internal/vip) watches it too.
func WatchDeadline(path string, stop <-chan struct{}) bool {
	for {
		left := time.Duration(readDeadline(path) - boottime())
		if left <= 0 {
			return true
		}
		t := time.NewTimer(min(left, deadlinePoll))
		select {
		case <-stop:
			t.Stop()
			return false
		case <-t.C:
		}
	}
}
