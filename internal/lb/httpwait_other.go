//go:build !linux

package lb

// rawWaitSupported: elsewhere an idle http connection waits through its
// buffered reader.
const rawWaitSupported = false

func peekReady(uintptr) bool { return true }
