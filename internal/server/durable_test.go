package server_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/autoheal/autoheal/internal/api"
	"github.com/autoheal/autoheal/internal/api/wire"
	"github.com/autoheal/autoheal/internal/event"
	"github.com/autoheal/autoheal/internal/store"
)

// crashing is an autoheal binary run with AUTOHEAL_CRASH_AT set: it kills
// itself at the crash point (package crashpoint: "name" or "name@N").
type crashing struct {
	t     *testing.T
	state string
	point string
	out   *syncBuffer
	done  chan struct{}
}

func startCrashing(t *testing.T, cfgPath, stateDir, point string) *crashing {
	t.Helper()
	cmd := exec.Command(bins.autoheal, "serve", "--config", cfgPath, "--state-dir", stateDir, "--listen", "127.0.0.1:0", "--log-level", "debug")
	cmd.Env = append(os.Environ(), "AUTOHEAL_CRASH_AT="+point)
	c := &crashing{t: t, state: stateDir, point: point, out: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = c.out, c.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-c.done
		killInstances(t, stateDir)
	})
	return c
}

// client waits for the controller's API and returns a client of it.
func (c *crashing) client() *api.Client {
	c.t.Helper()
	var addr string
	waitFor(c.t, 30*time.Second, "the API of a controller to crash at "+c.point, func() bool {
		if m := apiLine.FindStringSubmatch(c.out.String()); m != nil {
			addr = m[1]
			return true
		}
		return false
	})
	tok, err := api.ReadTokenFile(filepath.Join(c.state, api.TokenFile))
	if err != nil {
		c.t.Fatalf("the controller's admin token: %v", err)
	}
	return api.NewClientWithToken(addr, tok)
}

// wait waits until the controller killed itself at its crash point and
// returns its output; it fails the test if it ended any other way.
func (c *crashing) wait(timeout time.Duration) string {
	c.t.Helper()
	select {
	case <-c.done:
	case <-time.After(timeout):
		c.t.Fatalf("controller did not reach crash point %s in %s:\n%s", c.point, timeout, c.out.String())
	}
	name, _, _ := strings.Cut(c.point, "@")
	if !strings.Contains(c.out.String(), "crashpoint "+name+"\n") {
		c.t.Fatalf("controller ended without reaching crash point %s:\n%s", c.point, c.out.String())
	}
	return c.out.String()
}

// crashAt runs a controller until it kills itself at the crash point.
func crashAt(t *testing.T, cfgPath, stateDir, point string, timeout time.Duration) string {
	t.Helper()
	return startCrashing(t, cfgPath, stateDir, point).wait(timeout)
}

// readStore opens a stopped controller's store and passes it to f. Once
// closed, it waits until the state dir's lock is free: a process that
// another test forks meanwhile holds a copy of the descriptor until it
// execs, and the next controller would find the dir in use.
func readStore(t *testing.T, stateDir string, f func(st *store.Store)) {
	t.Helper()
	st, err := store.Open(stateDir)
	if err != nil {
		t.Fatal(err)
	}
	f(st)
	st.Close()
	waitFor(t, 10*time.Second, "the state dir's lock to be free", func() bool {
		l, err := os.OpenFile(filepath.Join(stateDir, store.LockFile), os.O_RDWR, 0)
		if err != nil {
			return false
		}
		defer l.Close()
		if syscall.Flock(int(l.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
			return false
		}
		syscall.Flock(int(l.Fd()), syscall.LOCK_UN)
		return true
	})
}

// storedEvents are the journal of a stopped controller.
func storedEvents(t *testing.T, stateDir string) []store.Event {
	t.Helper()
	var evs []store.Event
	readStore(t, stateDir, func(st *store.Store) {
		var err error
		if evs, err = st.Events(context.Background(), store.EventFilter{}); err != nil {
			t.Fatal(err)
		}
	})
	return evs
}

// heal is a heal decision and, if it was carried out, when.
type healAct struct {
	at        time.Time // decided
	delay     time.Duration
	notBefore time.Time // zero for a heal without backoff
	action    string
	acted     time.Time // the restart's Pending:Proceed; zero if not yet
}

// heals pairs each heal decision with the Pending:Proceed that carried it
// out (a restart in place).
func heals(t *testing.T, evs []store.Event) []healAct {
	t.Helper()
	var out []healAct
	for _, ev := range evs {
		switch d := ev.Data.(type) {
		case event.InstanceHeal:
			h := healAct{at: ev.Time, delay: time.Duration(d.DelayMS) * time.Millisecond, action: d.Action}
			if d.NotBefore != "" {
				nb, err := time.Parse(time.RFC3339Nano, d.NotBefore)
				if err != nil {
					t.Fatalf("not_before %q: %v", d.NotBefore, err)
				}
				h.notBefore = nb
			}
			out = append(out, h)
		case event.InstanceState:
			if d.To == "Pending:Proceed" && len(out) > 0 && out[len(out)-1].acted.IsZero() {
				out[len(out)-1].acted = ev.Time
			}
		}
	}
	return out
}

func dumpStored(evs []store.Event) string {
	var b strings.Builder
	for _, ev := range evs {
		fmt.Fprintf(&b, "%s %-20s %s %s\n", ev.Time.Format("15:04:05.000"), ev.Type, ev.Instance, ev.Message)
	}
	return b.String()
}

// waitUntil waits for the wall clock to pass at: the condition is time
// itself (a backoff half over), not another goroutine's progress.
func waitUntil(t *testing.T, at time.Time) {
	t.Helper()
	waitFor(t, time.Until(at)+10*time.Second, "the clock to pass "+at.Format("15:04:05.000"), func() bool { return time.Now().After(at) })
}

const crashLoop = `
groups:
  - name: loop
    launch:
      command: /bin/sh
      args: ["-c", "exit 1"]
    heal:
      max_restarts: 20
      restart_window: 1h
      backoff_base: %s
      backoff_cap: %s
`

// TestBackoffResumesFromTheRecordedDeadline (issue 15, bug 3): the
// controller dies right after each heal decision that must back off is
// recorded, and the next one starts halfway through the backoff. Each heal
// must wait its documented backoff measured from the recorded decision:
// not before the recorded deadline, and well before a backoff counted from
// the restart would end; and the failure series goes on across restarts
// (0s, 2s, 4s, 8s: nothing forgotten, nothing counted twice).
func TestBackoffResumesFromTheRecordedDeadline(t *testing.T) {
	t.Parallel()
	cfg := writeConfig(t, fmt.Sprintf(crashLoop, "2s", "8s"))
	state := t.TempDir()
	// Controller 1: the first heal acts at once; the second is recorded.
	crashAt(t, cfg, state, "heal.recorded", time.Minute)
	var started []time.Time // when each resuming controller started
	for round := 0; round < 3; round++ {
		hs := heals(t, storedEvents(t, state))
		last := hs[len(hs)-1]
		if last.notBefore.IsZero() || !last.acted.IsZero() {
			t.Fatalf("round %d: the last heal is not a recorded, pending one: %+v", round, last)
		}
		// Restart halfway through: a wait counted from the restart would
		// end half a backoff after the recorded deadline.
		waitUntil(t, last.at.Add(last.delay/2))
		started = append(started, time.Now())
		if round < 2 {
			crashAt(t, cfg, state, "heal.recorded", time.Minute)
		}
	}
	e := startProcess(t, cfg, state)
	var hs []healAct
	waitFor(t, time.Minute, "the fourth heal to be carried out", func() bool {
		hs = heals(t, e.events())
		return len(hs) >= 4 && !hs[3].acted.IsZero()
	})
	e.stop()
	want := []time.Duration{0, 2 * time.Second, 4 * time.Second, 8 * time.Second}
	for i, w := range want {
		h := hs[i]
		if h.action != "restart" || h.delay != w {
			t.Fatalf("heal %d: %s after %s, want restart after %s (the series must survive controller restarts):\n%s", i+1, h.action, h.delay, w, e.dumpEvents())
		}
		if i == 0 {
			continue
		}
		if !h.notBefore.Equal(h.at.Add(h.delay)) {
			t.Fatalf("heal %d: not_before %s, want decided at %s + %s", i+1, h.notBefore, h.at, h.delay)
		}
		restart := started[i-1]
		switch {
		case h.acted.Before(h.notBefore):
			t.Fatalf("heal %d acted at %s, before its recorded deadline %s", i+1, h.acted, h.notBefore)
		case !h.acted.After(restart):
			t.Fatalf("heal %d acted at %s, before the controller that resumed it started (%s): the crash point did not hold it", i+1, h.acted, restart)
		case !h.acted.Before(restart.Add(h.delay)):
			t.Fatalf("heal %d acted at %s, a whole backoff (%s) after the restart at %s: the wait started over", i+1, h.acted, h.delay, restart)
		}
		t.Logf("heal %d: backoff %s, restart %.1fs after the decision, acted %.0fms after the deadline",
			i+1, h.delay, restart.Sub(h.at).Seconds(), float64(h.acted.Sub(h.notBefore).Microseconds())/1000)
	}
}

// TestCrashLoopHealsUnderRepeatedControllerKills is the scenario:
// the controller is SIGKILLed and restarted every 1.5s while its pet
// crash-loops with backoff. Heals must keep happening, each at or after
// its recorded deadline, with the documented series of backoffs.
func TestCrashLoopHealsUnderRepeatedControllerKills(t *testing.T) {
	t.Parallel()
	cfg := writeConfig(t, fmt.Sprintf(crashLoop, "1s", "2s"))
	state := t.TempDir()
	end := time.Now().Add(20 * time.Second)
	kills := 0
	for time.Now().Before(end) {
		e := startProcess(t, cfg, state)
		// The kill cadence, not a synchronisation.
		<-time.After(1500 * time.Millisecond)
		e.kill9()
		kills++
	}
	evs := storedEvents(t, state)
	hs := heals(t, evs)
	acted := 0
	for _, h := range hs {
		if !h.acted.IsZero() {
			acted++
		}
	}
	// Ideally 0, 1, 2, 2, 2... seconds apart: 10 heals in 20s. A restart
	// costs some of each 1.5s; before the fix, not one backed-off heal
	// happened.
	if acted < 5 {
		t.Fatalf("%d heals carried out in 20s of %d controller kills, want at least 5:\n%s", acted, kills, dumpStored(evs))
	}
	for i, h := range hs {
		want := min(time.Duration(1<<max(i-1, 0))*time.Second, 2*time.Second)
		if i == 0 {
			want = 0
		}
		if h.delay != want {
			t.Fatalf("heal %d: backoff %s, want %s (the series must go on across restarts):\n%s", i+1, h.delay, want, dumpStored(evs))
		}
		if !h.acted.IsZero() && h.acted.Before(h.notBefore) {
			t.Fatalf("heal %d acted at %s, before its deadline %s", i+1, h.acted, h.notBefore)
		}
	}
	t.Logf("%d heals carried out across %d controller kills", acted, kills)
}

// TestInstanceFoundDeadAtAdoptionIsNotShownHealthy (issue 15, bug 3): an
// instance that died while the controller was down is recorded unhealthy
// with no pid as soon as it is adopted, and leaves InService with the
// decision to heal it, durably, before any backoff.
func TestInstanceFoundDeadAtAdoptionIsNotShownHealthy(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	cfg := writeConfig(t, petConfig(port, `    heal:
      backoff_base: 3s
`))
	state := t.TempDir()
	e := startProcess(t, cfg, state)
	first := e.waitInService(1, 30*time.Second)[0]
	// One crash while the controller runs: the next heal must back off.
	syscall.Kill(first.Pid, syscall.SIGKILL)
	var again wire.Instance
	waitFor(t, 30*time.Second, "the restart in place", func() bool {
		l := e.live()
		if len(l) == 1 && l[0].State == "InService" && l[0].Pid > 0 && l[0].Pid != first.Pid {
			again = l[0]
			return true
		}
		return false
	})
	e.kill9()
	syscall.Kill(again.Pid, syscall.SIGKILL)
	waitFor(t, 10*time.Second, "the pet to die", func() bool { return syscall.Kill(again.Pid, 0) != nil })

	check := func(when, wantState string) store.Instance {
		t.Helper()
		var in store.Instance
		readStore(t, state, func(st *store.Store) {
			var err error
			if in, err = st.Instance(context.Background(), again.ID); err != nil {
				t.Fatal(err)
			}
		})
		if in.State != wantState || in.Health != "unhealthy" || in.Pid != 0 {
			t.Fatalf("%s: stored %s %s pid %d, want %s unhealthy pid 0", when, in.State, in.Health, in.Pid, wantState)
		}
		return in
	}
	crashAt(t, cfg, state, "group.adopted", time.Minute)
	check("right after adoption", "InService")
	crashAt(t, cfg, state, "heal.recorded", time.Minute)
	rec := check("with the heal decision recorded", "Pending")
	if !strings.Contains(rec.Cause, "restart in place at") {
		t.Fatalf("cause %q does not say when the restart happens", rec.Cause)
	}
	// A controller that runs shows it so until the restart, then healthy
	// with a live process.
	e2 := startProcess(t, cfg, state)
	waitFor(t, 30*time.Second, "the restart after the backoff", func() bool {
		st, err := e2.client.Status(context.Background(), false)
		if err != nil || len(st.Instances) != 1 {
			return false
		}
		in := st.Instances[0]
		if in.State == "InService" && in.Health == "healthy" {
			if in.Pid == 0 || syscall.Kill(in.Pid, 0) != nil {
				t.Fatalf("InService and healthy with pid %d, not alive", in.Pid)
			}
			return true
		}
		if in.Health == "healthy" && in.Pid == 0 {
			t.Fatalf("%s healthy with pid 0", in.State)
		}
		return false
	})
}

// TestAdoptedHungInstanceIsHealedByItsChecks: an InService instance that a
// restarted controller re-adopts was proven healthy before, so its checks'
// failures count at once (not only after startup_timeout, 5m by default):
// it hangs while the controller is down and is healed by its checks.
func TestAdoptedHungInstanceIsHealedByItsChecks(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	cfg := writeConfig(t, petConfig(port, fastHeal))
	state := t.TempDir()
	e := startProcess(t, cfg, state)
	in := e.waitInService(1, 30*time.Second)[0]
	e.kill9()
	// The proxy lives in the controller, which is down: reach the pet directly.
	if code, _, err := httpPost(fmt.Sprintf("http://127.0.0.1:%d/hang", in.Ports["http"]), ""); err != nil || code != 202 {
		t.Fatalf("hang: %d %v", code, err)
	}
	e2 := startProcess(t, cfg, state)
	waitFor(t, 30*time.Second, "the re-adopted hung instance healed by its check", func() bool {
		for _, ev := range e2.events() {
			if d, ok := ev.Data.(event.InstanceHeal); ok && ev.Instance == in.ID && strings.HasPrefix(d.Failure, "http health check unhealthy") {
				return true
			}
		}
		return false
	})
}

// TestLaunchInterruptedAfterTheStartIsHealed: the controller dies between
// the application's start and the write of its pid, and the application
// exits meanwhile. The next controller must heal it (it ran: a failure),
// not wait forever for a process that is gone, nor resume the launch as
// if it never started.
func TestLaunchInterruptedAfterTheStartIsHealed(t *testing.T) {
	t.Parallel()
	cfg := writeConfig(t, fmt.Sprintf(crashLoop, "10ms", "20ms"))
	state := t.TempDir()
	crashAt(t, cfg, state, "launch.started", time.Minute)
	e := startProcess(t, cfg, state)
	waitFor(t, 30*time.Second, "the instance healed and launched again", func() bool {
		hs := heals(t, e.events())
		return len(hs) >= 1 && !hs[0].acted.IsZero()
	})
	for _, ev := range e.events() {
		if d, ok := ev.Data.(event.InstanceHeal); ok {
			if !strings.Contains(d.Failure, "while the controller was down") {
				t.Fatalf("first heal for %q, want the exit found at adoption", d.Failure)
			}
			break
		}
	}
}
