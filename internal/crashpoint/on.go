//go:build crashpoints

package crashpoint

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// Enabled reports whether this build can crash at points.
const Enabled = true

var (
	once   sync.Once
	mu     sync.Mutex
	armed  map[string]int // point -> the hit to crash at
	counts map[string]int
)

func load() {
	armed, counts = map[string]int{}, map[string]int{}
	for _, f := range strings.Split(os.Getenv("AUTOHEAL_CRASH_AT"), ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		name, nth, ok := strings.Cut(f, "@")
		n := 1
		if ok {
			if v, err := strconv.Atoi(nth); err == nil && v > 0 {
				n = v
			}
		}
		armed[name] = n
	}
}

// Hit SIGKILLs the process if AUTOHEAL_CRASH_AT names this point (and
// this is the hit it names).
func Hit(name string) {
	once.Do(load)
	mu.Lock()
	n, ok := armed[name]
	if !ok {
		mu.Unlock()
		return
	}
	counts[name]++
	crash := counts[name] == n
	mu.Unlock()
	if crash {
		fmt.Fprintf(os.Stderr, "crashpoint %s\n", name)
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // SIGKILL is not deliverable late; never go on
	}
}
