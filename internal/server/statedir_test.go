package server_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/autoheal/autoheal/internal/testutil"

	"github.com/autoheal/autoheal/internal/api/wire"
)

// stateDirConfig is the pet (a volume, an address) beside two web
// instances behind a load balancer.
func stateDirConfig(petPort, lbPort int) string {
	return petConfig(petPort, fastHeal+fmt.Sprintf(`  - name: web
    desired: 2
    launch: {command: {{WEB}}, ports: [http]}
    health_checks: [{type: http, port: http, interval: 200ms, timeout: 200ms}]
load_balancers:
  - name: web
    listeners: [{protocol: http, listen: "127.0.0.1:%d", target_group: web}]
    target_groups:
      - name: web
        protocol: http
        groups: [{group: web, port: http}]
        health_check: {path: /healthz, interval: 1s}
`, lbPort))
}

// TestFullStateDirHoldsAndRecovers fills the tmpfs the controller's state
// dir lives on, kills the pet, and frees the space: meanwhile the
// controller says it is degraded and holds still, the web instances keep
// running behind the load balancer; afterwards it heals the pet, and the
// journal is gapless with every event acknowledged before.
func TestFullStateDirHoldsAndRecovers(t *testing.T) {
	t.Parallel()
	state := mountStateTmpfs(t, "size=24m")
	var filler string
	runStateDirOutage(t, state, "no space left on device", func() {
		filler = testutil.FillDir(t, state)
	}, func() {
		if err := os.Remove(filler); err != nil {
			t.Fatal(err)
		}
	})
}

// TestStateDirFillsDuringAHeal kills the pet right after the state dir
// filled up, before any probe saw it: the heal meets the full disk
// somewhere in its writes (or its files), and whatever it had done, the
// pet is healed once space returns, with a gapless journal.
func TestStateDirFillsDuringAHeal(t *testing.T) {
	t.Parallel()
	state := mountStateTmpfs(t, "size=24m")
	petPort, lbPort := freePort(t), freePort(t)
	e := startProcess(t, writeConfig(t, stateDirConfig(petPort, lbPort)), state)
	e.waitInService(3, 30*time.Second)
	acked := e.events()
	webBefore := pidsOf(e, "web")
	petPid := instanceOf(t, e, "pet").Pid

	filler := testutil.FillDir(t, state)
	if err := syscall.Kill(petPid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitStateDir(t, e, false, 20*time.Second)
	checkServing(t, e, lbPort, webBefore)
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	waitStateDir(t, e, true, 20*time.Second)
	waitFor(t, 30*time.Second, "the pet healed", func() bool {
		in := instanceOf(t, e, "pet")
		return in.State == "InService" && in.Health == "healthy" && in.Pid != 0 && in.Pid != petPid && processAlive(in.Pid)
	})
	checkServing(t, e, lbPort, webBefore)
	checkJournal(t, e, acked)
	t.Logf("journal from the outage on:\n%s", eventsAfter(e, acked[len(acked)-1].Seq))
	t.Logf("controller warnings and errors:\n%s", warnings(e.procLogs()))
}

func processAlive(pid int) bool { return syscall.Kill(pid, 0) == nil }

// TestReadOnlyStateDirHoldsAndRecovers makes the state dir read-only, kills
// the pet, and makes it writable again. A file system cannot be remounted
// read-only while files are open on it for writing (EBUSY: the database,
// the instances' logs), so a read-only bind mount is stacked on the state
// dir: everything opened or made there from then on is refused (EROFS), as
// on a read-only state dir; remounting it read-write ends it.
func TestReadOnlyStateDirHoldsAndRecovers(t *testing.T) {
	t.Parallel()
	state := mountStateTmpfs(t, "size=24m")
	runStateDirOutage(t, state, "read-only file system", func() {
		mountOrFail(t, "--bind", state, state)
		t.Cleanup(func() { exec.Command("umount", "-l", state).Run() })
		mountOrFail(t, "-o", "remount,bind,ro", state)
	}, func() {
		mountOrFail(t, "-o", "remount,bind,rw", state)
	})
}

// runStateDirOutage runs a controller process on state, breaks the state
// dir (breakIt), kills the pet, checks the controller holds still and
// serves, mends it (mend), and checks the recovery.
func runStateDirOutage(t *testing.T, state, reason string, breakIt, mend func()) {
	petPort, lbPort := freePort(t), freePort(t)
	e := startProcess(t, writeConfig(t, stateDirConfig(petPort, lbPort)), state)
	e.waitInService(3, 30*time.Second)
	pet := fmt.Sprintf("http://127.0.0.1:%d", petPort)
	for i := range 20 {
		if code, b, err := httpPost(pet+"/write", fmt.Sprintf("entry-%d", i)); err != nil || code != 200 {
			t.Fatalf("write %d: %d %v %s", i, code, err, b)
		}
	}
	acked := e.events() // committed, so acknowledged
	webBefore := pidsOf(e, "web")

	broken := time.Now()
	breakIt()
	st := waitStateDir(t, e, false, 20*time.Second)
	t.Logf("not writable seen by status after %s", time.Since(broken).Round(time.Millisecond))
	if !strings.Contains(st.Error, reason) || st.Since == nil {
		t.Fatalf("degraded state %+v: want the reason %q and since when", st, reason)
	}
	if got := metricLine(t, e, "autoheal_state_writable"); got != "autoheal_state_writable 0" {
		t.Fatalf("/metrics while degraded: %q", got)
	}
	petPid := instanceOf(t, e, "pet").Pid
	if err := syscall.Kill(petPid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the pet's exit seen in memory", func() bool {
		return instanceOf(t, e, "pet").Health == "unhealthy"
	})
	// A negative: for a few probes of the state dir, the controller holds
	// still (the pet is not healed) and the rest keeps working.
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		// Its record stays as it was (InService, the dead pid): only the
		// failure is known, in memory.
		if in := instanceOf(t, e, "pet"); in.Pid != petPid || in.Health != "unhealthy" {
			t.Fatalf("the pet was healed while the state dir took no writes: %+v\n%s", in, e.procLogs())
		}
		checkServing(t, e, lbPort, webBefore)
		time.Sleep(100 * time.Millisecond) // the pace of the observation, not a synchronisation
	}
	if !strings.Contains(e.procLogs(), "state dir not writable: groups hold still") {
		t.Fatalf("no log line says the state dir is not writable:\n%s", e.procLogs())
	}

	mended := time.Now()
	mend()
	waitStateDir(t, e, true, 20*time.Second)
	seen := time.Since(mended)
	waitFor(t, 30*time.Second, "the pet healed", func() bool {
		in := instanceOf(t, e, "pet")
		return in.State == "InService" && in.Health == "healthy" && in.Pid != 0 && in.Pid != petPid
	})
	t.Logf("writable again seen by status after %s, the pet healed after %s", seen.Round(time.Millisecond), time.Since(mended).Round(time.Millisecond))
	if p := getPet(t, pet); p.Writes != 20 {
		t.Fatalf("pet after the outage: %+v, want its 20 writes", p)
	}
	checkServing(t, e, lbPort, webBefore)
	if got := metricLine(t, e, "autoheal_state_writable"); got != "autoheal_state_writable 1" {
		t.Fatalf("/metrics after recovery: %q", got)
	}
	checkJournal(t, e, acked)
	t.Logf("journal from the outage on:\n%s", eventsAfter(e, acked[len(acked)-1].Seq))
	t.Logf("controller warnings and errors:\n%s", warnings(e.procLogs()))
}

// eventsAfter is the journal after seq, for the log of a -v run.
func eventsAfter(e *env, seq int64) string {
	var b strings.Builder
	for _, ev := range e.events() {
		if ev.Seq > seq {
			fmt.Fprintf(&b, "%d %s %-22s %s %s\n", ev.Seq, ev.Time.Format("15:04:05.000"), ev.Type, ev.Instance, ev.Message)
		}
	}
	return b.String()
}

// checkJournal checks the journal is gapless, holds every event
// acknowledged before the outage, and says how long the outage was.
func checkJournal(t *testing.T, e *env, acked []wire.Event) {
	t.Helper()
	evs := e.events()
	have := map[int64]string{}
	outage := false
	for i, ev := range evs {
		have[ev.Seq] = ev.Message
		if i > 0 && ev.Seq != evs[i-1].Seq+1 {
			t.Fatalf("journal jumps from seq %d to %d", evs[i-1].Seq, ev.Seq)
		}
		outage = outage || ev.Type == "controller.state_dir"
	}
	for _, ev := range acked {
		if have[ev.Seq] != ev.Message {
			t.Fatalf("acknowledged event %d %q lost (now %q)", ev.Seq, ev.Message, have[ev.Seq])
		}
	}
	if !outage {
		t.Fatalf("no controller.state_dir event after the recovery:\n%s", e.dumpEvents())
	}
}

// waitStateDir waits until status says the state dir is (or is not)
// writable, and returns what it says.
func waitStateDir(t *testing.T, e *env, writable bool, timeout time.Duration) wire.StateDir {
	t.Helper()
	var got wire.StateDir
	waitFor(t, timeout, fmt.Sprintf("status state writable=%v", writable), func() bool {
		st, err := e.client.Status(context.Background(), false)
		if err != nil {
			t.Fatalf("status (the controller must keep answering): %v\n%s", err, e.procLogs())
		}
		if st.State == nil {
			t.Fatal("status has no state")
		}
		got = *st.State
		return got.Writable == writable
	})
	return got
}

// checkServing checks the web instances run with the pids they had and the
// load balancer answers.
func checkServing(t *testing.T, e *env, lbPort int, want map[int]bool) {
	t.Helper()
	if got := pidsOf(e, "web"); len(got) != len(want) {
		t.Fatalf("web pids %v, want %v", got, want)
	}
	for pid := range want {
		if err := syscall.Kill(pid, 0); err != nil {
			t.Fatalf("web instance pid %d: %v", pid, err)
		}
	}
	if code, b, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/", lbPort)); err != nil || code != 200 {
		t.Fatalf("load balancer: %d %v %s", code, err, b)
	}
}

func pidsOf(e *env, group string) map[int]bool {
	out := map[int]bool{}
	for _, in := range e.live() {
		if in.Group == group && in.Pid > 0 {
			out[in.Pid] = true
		}
	}
	return out
}

func instanceOf(t *testing.T, e *env, group string) wire.Instance {
	t.Helper()
	for _, in := range e.live() {
		if in.Group == group {
			return in
		}
	}
	t.Fatalf("no live instance of %s", group)
	return wire.Instance{}
}

// metricLine is the /metrics line that starts with name.
func metricLine(t *testing.T, e *env, name string) string {
	t.Helper()
	code, b, err := httpGet("http://" + e.apiAddr + "/metrics")
	if err != nil || code != 200 {
		t.Fatalf("/metrics: %d %v", code, err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, name+" ") {
			return l
		}
	}
	return ""
}

// mountStateTmpfs mounts a tmpfs for a state dir, unmounted (lazily: the
// instances killed at cleanup may still be closing their files) at
// cleanup. It skips the test where it cannot mount.
func mountStateTmpfs(t *testing.T, opts string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs for the state dir")
	}
	dir := filepath.Join(t.TempDir(), "state")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", opts, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs (%v): %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return dir
}

func mountOrFail(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("mount", args...).CombinedOutput(); err != nil {
		t.Fatalf("mount %v: %v: %s", args, err, out)
	}
}

// TestServeRefusesUnwritableStateDir: a controller does not start on a
// state dir that takes no writes, and says why.
func TestServeRefusesUnwritableStateDir(t *testing.T) {
	t.Parallel()
	cfg := writeConfig(t, petConfig(freePort(t), ""))
	full := mountStateTmpfs(t, "size=1m")
	testutil.FillDir(t, full)
	ro := mountStateTmpfs(t, "size=1m,ro")
	for _, tc := range []struct{ dir, want string }{
		{full, "autoheal: state dir " + full + " is full: "},
		{ro, "autoheal: state dir " + ro + " is not writable: "},
	} {
		out, err := exec.Command(bins.autoheal, "serve", "--config", cfg, "--state-dir", tc.dir, "--listen", "127.0.0.1:0").CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() == 0 || !strings.Contains(string(out), tc.want) {
			t.Errorf("serve on %s: %v, output:\n%s\nwant a non-zero exit and %q", tc.dir, err, out, tc.want)
		}
	}
}

// warnings are the WARN and ERROR lines of a controller's log, for the log
// of a -v run.
func warnings(logs string) string {
	var b strings.Builder
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}
