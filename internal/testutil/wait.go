package testutil

import (
	"errors"
	"testing"
	"time"
)

// Timeout is how long a test waits for something that should happen soon
// when the wait is not what it measures: long enough for a loaded two-core
// machine under -race, short enough to fail well before go test's own
// timeout.
const Timeout = 20 * time.Second

// The polling backoff: the first retry comes quickly, because most
// conditions hold within a millisecond, and later ones no faster than
// maxPoll, so that a condition that costs an HTTP round trip does not load
// the machine it waits on.
const (
	firstPoll = time.Millisecond
	maxPoll   = 20 * time.Millisecond
)

// errNotYet is what Eventually reports for a WaitFor condition that never
// held: the condition has nothing more to say.
var errNotYet = errors.New("condition false")

// WaitFor polls cond until it returns true, and fails the test (naming
// what it waited for) if timeout passes first. cond runs on the calling
// goroutine, so it may call t.Fatal to give up early.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	Eventually(t, timeout, what, func() (struct{}, error) {
		if cond() {
			return struct{}{}, nil
		}
		return struct{}{}, errNotYet
	})
}

// Eventually polls f until it returns a nil error, and returns the value it
// returned then. If timeout passes first it fails the test with what and
// the last error, which should say what f saw ("2 healthy targets of 3:
// [...]"), and returns the last value.
func Eventually[T any](t testing.TB, timeout time.Duration, what string, f func() (T, error)) T {
	t.Helper()
	deadline := time.Now().Add(timeout)
	pause := firstPoll
	for {
		v, err := f()
		if err == nil {
			return v
		}
		if !time.Now().Before(deadline) {
			if errors.Is(err, errNotYet) {
				t.Fatalf("timed out after %s waiting for %s", timeout, what)
			} else {
				t.Fatalf("timed out after %s waiting for %s: %v", timeout, what, err)
			}
			return v
		}
		// Polling, not synchronisation: the next look comes after a short
		// pause whatever happens meanwhile.
		time.Sleep(min(pause, time.Until(deadline)))
		pause = min(2*pause, maxPoll)
	}
}
