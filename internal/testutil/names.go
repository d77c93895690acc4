package testutil

import (
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
)

var seq atomic.Uint64

// UniqueName returns prefix followed by "-PID-N", N counting the calls in
// this process: unique among the parallel tests of one binary, and, through
// the pid, among the test binaries go test runs at once, which matters for
// names the host shares (cgroups, network namespaces).
func UniqueName(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, os.Getpid(), seq.Add(1))
}

// StateDir returns a new empty directory, private to its owner (0700) as
// autoheal's state dir must be, removed when the test ends.
func StateDir(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "state")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatalf("state dir: %v", err)
	}
	// Mkdir's mode is filtered by the umask; 0700 is the point.
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatalf("state dir: %v", err)
	}
	return dir
}
