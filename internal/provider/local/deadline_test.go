package local_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/autoheal/autoheal/internal/provider/local"
	"github.com/autoheal/autoheal/internal/testutil"
)

// TestDeadlineStopsThePet is the dead man's switch of a cluster host: while
// the controller renews the deadline, the application runs; once the
// deadline passes without renewal (the controller died, or cannot renew
// its lease), its shim kills it and everything it started, a daemon that
// left its session included, not before the deadline; and no application
// starts on a deadline passed.
func TestDeadlineStopsThePet(t *testing.T) {
	t.Parallel()
	for _, f := range fences(t) {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			dl := filepath.Join(t.TempDir(), "deadline")
			if err := local.WriteDeadline(dl, time.Now().Add(10*time.Second)); err != nil {
				t.Fatal(err)
			}
			l, _ := newLocalWith(t, local.Options{NoSpareShim: true, NoPIDNamespace: f.noNS, Deadline: dl})
			// The daemon is found by a token in its command line: under the
			// PID namespace fence, the pid it could write is its own
			// namespace's, not the host's.
			token := "deadline-daemon-" + strconv.Itoa(os.Getpid()) + "-" + f.name
			p := launch(t, l, shSpec(`setsid sh -c 'while :; do sleep 1; done' `+token+` & exec sleep 300`))
			var daemons []int
			testutil.WaitFor(t, 10*time.Second, "the daemon", func() bool {
				daemons = tokenProcs(token)
				return len(daemons) == 1
			})
			// Renewals a third of a 1 s deadline apart, as a 1 s margin
			// would be kept: the pet lives through them.
			for range 6 {
				if err := local.WriteDeadline(dl, time.Now().Add(time.Second)); err != nil {
					t.Fatal(err)
				}
				select {
				case <-p.Done():
					t.Fatalf("stopped while the deadline was renewed: %+v", p.Exit())
				case <-time.After(330 * time.Millisecond):
				}
			}
			deadline := time.Now().Add(500 * time.Millisecond)
			if err := local.WriteDeadline(dl, deadline); err != nil {
				t.Fatal(err)
			}
			select {
			case <-p.Done():
			case <-time.After(15 * time.Second):
				t.Fatal("the pet outlived its deadline by 15 s")
			}
			e := p.Exit()
			if !strings.Contains(e.Error, "deadline passed") || e.Signal != "SIGKILL" {
				t.Fatalf("exit %+v, want killed for its deadline", e)
			}
			if e.Time.Before(deadline.Add(-10 * time.Millisecond)) {
				t.Fatalf("killed %v before its deadline", deadline.Sub(e.Time))
			}
			t.Logf("killed %v after its deadline", e.Time.Sub(deadline).Round(time.Millisecond))
			if left := tokenProcs(token); len(left) > 0 {
				t.Fatalf("the daemon %v outlived the instance", left)
			}
			// A deadline passed: nothing starts.
			p2 := launch(t, l, shSpec("exec sleep 300"))
			select {
			case <-p2.Done():
			default:
				t.Fatal("an application started on a passed deadline")
			}
			if e := p2.Exit(); !strings.Contains(e.Error, "deadline passed") || p2.Pid() != 0 {
				t.Fatalf("launch on a passed deadline: exit %+v pid %d", e, p2.Pid())
			}
			// A removed deadline is a passed one (a controller that stands
			// down removes it).
			if err := local.WriteDeadline(dl, time.Now().Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
			p3 := launch(t, l, shSpec("exec sleep 300"))
			if err := os.Remove(dl); err != nil {
				t.Fatal(err)
			}
			select {
			case <-p3.Done():
			case <-time.After(15 * time.Second):
				t.Fatal("the pet outlived its removed deadline by 15 s")
			}
			if e := p3.Exit(); !strings.Contains(e.Error, "deadline passed") {
				t.Fatalf("exit after the deadline's removal %+v", e)
			}
		})
	}
}
