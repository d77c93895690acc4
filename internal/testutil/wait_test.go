package testutil

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// fakeTB records a failure instead of ending the test, so that a WaitFor
// that must fail can be watched failing. Embedding testing.TB supplies the
// methods WaitFor does not call.
type fakeTB struct {
	testing.TB
	failed string
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed = fmt.Sprintf(format, args...)
}

// Time is the point of these tests (a deadline, a backoff), so they run
// on synctest's fake clock: exact, and instant however loaded the machine.

func TestWaitForReturnsWhenTheConditionHolds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ft := &fakeTB{TB: t}
		calls := 0
		start := time.Now()
		WaitFor(ft, time.Hour, "the fifth look", func() bool {
			calls++
			return calls == 5
		})
		if ft.failed != "" {
			t.Fatalf("failed: %s", ft.failed)
		}
		if calls != 5 {
			t.Fatalf("%d calls, want 5", calls)
		}
		// The pauses double from 1ms: 1+2+4+8.
		if d := time.Since(start); d != 15*time.Millisecond {
			t.Fatalf("returned after %s, want 15ms", d)
		}
	})
}

func TestWaitForFailsAfterTheTimeoutNamingWhat(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ft := &fakeTB{TB: t}
		calls := 0
		start := time.Now()
		WaitFor(ft, time.Second, "the moon", func() bool { calls++; return false })
		if want := "timed out after 1s waiting for the moon"; ft.failed != want {
			t.Fatalf("failure %q, want %q", ft.failed, want)
		}
		// It looked until the deadline and not a moment longer, at most
		// every 20ms once backed off: 1+2+4+8+16ms, then 20ms pauses.
		if d := time.Since(start); d != time.Second {
			t.Fatalf("gave up after %s, want 1s", d)
		}
		if calls < 1000/20 || calls > 1000/20+6 {
			t.Fatalf("%d looks in 1s", calls)
		}
	})
}

func TestWaitForLooksOnceMoreAtTheDeadline(t *testing.T) {
	// A condition that becomes true while the last pause runs is seen: the
	// last look is at the deadline, not before it.
	synctest.Test(t, func(t *testing.T) {
		ft := &fakeTB{TB: t}
		start := time.Now()
		WaitFor(ft, 100*time.Millisecond, "the deadline", func() bool { return time.Since(start) >= 100*time.Millisecond })
		if ft.failed != "" {
			t.Fatalf("failed: %s", ft.failed)
		}
	})
}

func TestEventuallyReturnsTheValue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ft := &fakeTB{TB: t}
		n := 0
		got := Eventually(ft, time.Minute, "three", func() (int, error) {
			n++
			if n < 3 {
				return n, fmt.Errorf("only %d", n)
			}
			return n, nil
		})
		if ft.failed != "" || got != 3 {
			t.Fatalf("got %d, failure %q", got, ft.failed)
		}
	})
}

func TestEventuallyFailsWithTheLastError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ft := &fakeTB{TB: t}
		n := 0
		got := Eventually(ft, 50*time.Millisecond, "ten", func() (int, error) {
			n++
			return n, fmt.Errorf("only %d", n)
		})
		if got != n {
			t.Errorf("returned %d, want the last value %d", got, n)
		}
		if want := fmt.Sprintf("timed out after 50ms waiting for ten: only %d", n); ft.failed != want {
			t.Fatalf("failure %q, want %q", ft.failed, want)
		}
	})
}

// TestWaitForFailsTheRealTest runs a WaitFor that must fail in a child
// process, with a real *testing.T: the child fails, and the message
// names what it waited for at the caller's line.
func TestWaitForFailsTheRealTest(t *testing.T) {
	if os.Getenv("TESTUTIL_CHILD") == "1" {
		WaitFor(t, 10*time.Millisecond, "the moon", func() bool { return false }) // the line the failure names
		t.Log("still running after WaitFor failed")
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestWaitForFailsTheRealTest$", "-test.v")
	cmd.Env = append(os.Environ(), "TESTUTIL_CHILD=1")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("child: %v, want exit 1\n%s", err, out)
	}
	if !regexp.MustCompile(`wait_test\.go:\d+: timed out after 10ms waiting for the moon`).Match(out) {
		t.Fatalf("child's failure does not name the wait and its line:\n%s", out)
	}
	if strings.Contains(string(out), "still running") {
		t.Fatalf("the test went on after WaitFor failed:\n%s", out)
	}
}
