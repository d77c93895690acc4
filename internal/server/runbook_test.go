package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/autoheal/autoheal/internal/api/wire"
	"github.com/autoheal/autoheal/internal/runbook"
)

// End-to-end tests of runbook executions: the built-in maintenance
// documents run against real web app instances behind the load balancer
// with counted load through it, and an execution that outlives its
// controller.

// runDocument starts an execution through the API and returns its id.
func (e *env) runDocument(doc string, params map[string]string) string {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	id, err := e.client.Run(ctx, wire.RunRequest{Document: doc, Parameters: params})
	if err != nil {
		e.t.Fatalf("run %s %v: %v", doc, params, err)
	}
	return id
}

// execution reads one execution through the API.
func (e *env) execution(id string) (wire.Execution, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return e.client.Execution(ctx, id)
}

// waitExecution polls an execution until it has ended and returns it.
func (e *env) waitExecution(id string, timeout time.Duration) wire.Execution {
	e.t.Helper()
	var ex wire.Execution
	var err error
	deadline := time.Now().Add(timeout)
	for {
		ex, err = e.execution(id)
		if err == nil && ended(ex.Status) {
			return ex
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("execution %s did not end in %s (%v):\n%s\nevents:\n%s", id, timeout, err, showExecution(ex), e.dumpEvents())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func ended(status string) bool {
	switch status {
	case runbook.StatusSuccess, runbook.StatusFailed, runbook.StatusCancelled, runbook.StatusTimedOut:
		return true
	}
	return false
}

// step returns an execution's step by name; a missing one fails the test.
func step(t *testing.T, ex wire.Execution, name string) wire.StepExecution {
	t.Helper()
	for _, s := range ex.Steps {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("execution %s has no step %s:\n%s", ex.ID, name, showExecution(ex))
	return wire.StepExecution{}
}

// showExecution is an execution's status and step history, for failures.
func showExecution(ex wire.Execution) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: %s %s\n", ex.ID, ex.Document, ex.Status, ex.Error)
	at := func(p *time.Time) string {
		if p == nil {
			return "-"
		}
		return p.Local().Format("15:04:05.000")
	}
	for _, s := range ex.Steps {
		fmt.Fprintf(&b, "  %-30s %-16s %-10s attempts %d %s..%s %s %s\n", s.Name, s.Action, s.Status, s.Attempts, at(s.StartedAt), at(s.EndedAt), s.Child, s.Error)
	}
	return b.String()
}

// pids maps instance ids to their process ids.
func pids(ins []wire.Instance) map[string]int {
	m := map[string]int{}
	for _, in := range ins {
		m[in.ID] = in.Pid
	}
	return m
}

// startWebForMaintenance is startWeb with three instances, except that
// the group's own health check tolerates a stalled machine (a one second
// timeout, four failures in a row): these tests are about planned
// restarts, and a check that timed out on a noisy machine under -race
// would replace an instance in the middle of one.
func startWebForMaintenance(t *testing.T) (*env, string) {
	t.Helper()
	port := freePort(t)
	const strict = "        timeout: 500ms\n        unhealthy_threshold: 2\n    heal:"
	cfg := webConfig(port, 3, "")
	if !strings.Contains(cfg, strict) {
		t.Fatalf("webConfig no longer has the group health check this test relaxes:\n%s", cfg)
	}
	cfg = strings.Replace(cfg, strict, "        timeout: 1s\n        unhealthy_threshold: 4\n    heal:", 1)
	e := startInProcess(t, writeConfig(t, cfg), "")
	e.waitInService(3, 20*time.Second)
	e.waitHealthyTargets("web", 3, 20*time.Second)
	return e, fmt.Sprintf("http://127.0.0.1:%d", port)
}

// rotationWatch samples the target group's health from the API while a
// test runs and remembers the most targets ever out of rotation at once.
type rotationWatch struct {
	stopc chan struct{}
	done  chan struct{}

	mu      sync.Mutex
	samples int
	errs    int
	maxOut  int
	atMax   string          // the sample that had maxOut out, for the failure message
	wasOut  map[string]bool // every target seen out of rotation at least once
}

// watchRotation starts sampling; ids are the targets that should be in
// rotation. A target is out when it is listed in any state but healthy, or
// not listed at all (a drained target of an instance that is not serving is
// removed from the list).
func watchRotation(e *env, name string, ids []string) *rotationWatch {
	w := &rotationWatch{stopc: make(chan struct{}), done: make(chan struct{}), wasOut: map[string]bool{}}
	go func() {
		defer close(w.done)
		for {
			select {
			case <-w.stopc:
				return
			case <-time.After(10 * time.Millisecond):
			}
			ts, err := e.targets(name)
			w.mu.Lock()
			if err != nil {
				w.errs++
				w.mu.Unlock()
				continue
			}
			w.samples++
			var out []string
			for _, id := range ids {
				if stateOf(ts, id) != "healthy" {
					out = append(out, id)
					w.wasOut[id] = true
				}
			}
			if len(out) > w.maxOut {
				w.maxOut = len(out)
				w.atMax = fmt.Sprintf("%s: %+v", time.Now().Format("15:04:05.000"), ts)
			}
			w.mu.Unlock()
		}
	}()
	e.t.Cleanup(w.stop)
	return w
}

func (w *rotationWatch) stop() {
	select {
	case <-w.stopc:
	default:
		close(w.stopc)
	}
	<-w.done
}

func TestGracefulMaintenanceUnderLoad(t *testing.T) {
	t.Parallel()
	// webConfig's deregistration delay (10s) is far longer than the slow
	// requests (1.5s): draining lets every one of them finish.
	e, base := startWebForMaintenance(t)
	before := pids(e.live())
	ids := make([]string, 0, len(before))
	for id := range before {
		ids = append(ids, id)
	}
	sort.Strings(ids)

	// The slow requests outlast the app's one second of grace on SIGTERM:
	// only a restart that waits for the drain lets them finish.
	load := startLoad(t, base, map[string]int{"/": 6, "/slow?ms=1500": 2})
	load.waitRequests(100, 20*time.Second)

	// One instance at a time, checked from outside the documents: the
	// target group's health, sampled every few milliseconds for the whole
	// run, never has two targets out of rotation. Sampling is robust here
	// because each target stays out for over a second (drain, restart,
	// re-registration), so an overlap of two would be seen by dozens of
	// samples; a missed sample can only hide an overlap shorter than a
	// sampling interval, never invent one. The journal (the step times
	// below) says the same from inside, but it only records what the
	// documents did, not a target that left rotation for another reason.
	watch := watchRotation(e, "web", ids)

	// Besides the load, each maintenance begins with a slow request known
	// to be in flight on its instance, so that every drain has something
	// to wait for: it must complete.
	const slowMs = 3000
	var execs []wire.Execution
	for _, id := range ids {
		p := probeOn(t, base, id, slowMs)
		exID := e.runDocument("Autoheal-GracefulMaintenance", map[string]string{"InstanceId": id})
		ex := e.waitExecution(exID, 45*time.Second)
		if ex.Status != runbook.StatusSuccess {
			t.Fatalf("graceful maintenance of %s ended %s:\n%s\nevents:\n%s", id, ex.Status, showExecution(ex), e.dumpEvents())
		}
		execs = append(execs, ex)
		if cut, how := p.finish(slowMs); cut {
			t.Errorf("the slow request in flight on %s when its maintenance began was cut: %s\n%s", id, how, showExecution(ex))
		}
		dereg, unused, task, healthy := step(t, ex, "deregister"), step(t, ex, "waitUnused"), step(t, ex, "runTask"), step(t, ex, "waitHealthy")
		t.Logf("%s: drained in %s, restarted in %s, back in rotation %s after its deregistration", id,
			unused.EndedAt.Sub(*dereg.StartedAt).Round(time.Millisecond),
			task.EndedAt.Sub(*task.StartedAt).Round(time.Millisecond),
			healthy.EndedAt.Sub(*dereg.StartedAt).Round(time.Millisecond))
		// Healthy is not enough: a target can be healthy and still get no
		// request (TestTargetRegisteredDuringDrainServesAgain).
		load.waitServedAgain(e, id)
	}
	watch.stop()
	load.waitRequests(100, 10*time.Second)
	load.check(e)
	e.assertLaunched(3)

	// Each instance really restarted: same id, new process.
	after := pids(e.live())
	for _, id := range ids {
		if after[id] == 0 || after[id] == before[id] {
			t.Errorf("instance %s: pid %d before its maintenance, %d after; want a new process of the same instance (after: %v)", id, before[id], after[id], after)
		}
	}

	watch.mu.Lock()
	t.Logf("rotation: %d samples (%d unanswered), at most %d target(s) out at once", watch.samples, watch.errs, watch.maxOut)
	if watch.maxOut > 1 {
		t.Errorf("%d targets were out of rotation at once, want one at a time; at %s", watch.maxOut, watch.atMax)
	}
	for _, id := range ids {
		if !watch.wasOut[id] {
			t.Errorf("target %s was never seen out of rotation: the watch did not see its maintenance", id)
		}
	}
	watch.mu.Unlock()

	// From the journal: each restart ran while its target was drained and
	// out of rotation (after waitUnused, before register), and each
	// maintenance put its target back (waitHealthy) before the next took
	// one out (deregister).
	var prevBack time.Time
	for i, ex := range execs {
		dereg, unused := step(t, ex, "deregister"), step(t, ex, "waitUnused")
		task, reg, healthy := step(t, ex, "runTask"), step(t, ex, "register"), step(t, ex, "waitHealthy")
		if task.Child == "" {
			t.Fatalf("runTask of %s has no child execution:\n%s", ids[i], showExecution(ex))
		}
		child, err := e.execution(task.Child)
		if err != nil {
			t.Fatal(err)
		}
		restart := step(t, child, "restart")
		if child.Document != "Autoheal-RestartInstance" || child.Status != runbook.StatusSuccess || restart.StartedAt == nil || child.EndedAt == nil {
			t.Fatalf("task of %s:\n%s", ids[i], showExecution(child))
		}
		if restart.StartedAt.Before(*unused.EndedAt) || reg.StartedAt.Before(*child.EndedAt) {
			t.Errorf("%s restarted at %s, outside its drained window %s..%s:\n%s%s", ids[i],
				restart.StartedAt.Format("15:04:05.000"), unused.EndedAt.Format("15:04:05.000"), reg.StartedAt.Format("15:04:05.000"),
				showExecution(ex), showExecution(child))
		}
		if dereg.StartedAt.Before(prevBack) {
			t.Errorf("maintenance of %s took it out at %s, before the previous target was back at %s", ids[i], dereg.StartedAt.Format("15:04:05.000"), prevBack.Format("15:04:05.000"))
		}
		prevBack = *healthy.EndedAt
	}
}

// waitServedAgain waits until instance id answers a request of the load
// again, for at most ten seconds.
func (l *loadGen) waitServedAgain(e *env, id string) {
	l.t.Helper()
	served, total := l.servedBy(id), l.total.Load()
	deadline := time.Now().Add(10 * time.Second)
	for l.servedBy(id) <= served {
		if time.Now().After(deadline) {
			ts, err := e.targets("web")
			var retries int64 = -1
			if h, err := e.client.TargetHealth(context.Background(), "web"); err == nil {
				retries = h.Metrics.RetryCount
			}
			l.mu.Lock()
			by := fmt.Sprint(l.byID)
			l.mu.Unlock()
			l.t.Fatalf("%s served none of the %d requests of the last 10s (served by %s; lb retries %d); targets %+v %v\nevents:\n%s",
				id, l.total.Load()-total, by, retries, ts, err, e.dumpEvents())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// slowProbe is a slow request through the load balancer that is known to
// be in flight on one instance.
type slowProbe struct {
	resp   *http.Response
	br     *bufio.Reader
	cancel context.CancelFunc
}

// probeOn sends GET /slow?ms=N through the load balancer until one is
// served by instance id, and returns it in flight: the app has answered
// its first line ("hello from <id>") and will finish N ms later. The
// probes served by other instances are cancelled.
func probeOn(t *testing.T, base, id string, ms int) *slowProbe {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		// Its own connection, so that a cut one says nothing about the
		// load's connections.
		tr := &http.Transport{Proxy: nil, DisableKeepAlives: true}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		req, _ := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("%s/slow?ms=%d", base, ms), nil)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			cancel()
			t.Fatalf("slow probe: %v", err)
		}
		br := bufio.NewReader(resp.Body)
		first, err := br.ReadString('\n')
		if err != nil || resp.StatusCode != 200 {
			resp.Body.Close()
			cancel()
			t.Fatalf("slow probe: %d %q %v", resp.StatusCode, first, err)
		}
		if strings.TrimSuffix(strings.TrimPrefix(first, "hello from "), "\n") == id {
			return &slowProbe{resp: resp, br: br, cancel: cancel}
		}
		resp.Body.Close()
		cancel()
	}
	t.Fatalf("no slow request reached %s in 15s", id)
	return nil
}

// finish reads the rest of the probe's answer and says whether it was cut
// short, and how.
func (p *slowProbe) finish(ms int) (cut bool, how string) {
	defer p.cancel()
	defer p.resp.Body.Close()
	rest, err := io.ReadAll(p.br)
	want := fmt.Sprintf("done after %d ms\n", ms)
	switch {
	case err != nil:
		return true, fmt.Sprintf("%v after %q", err, rest)
	case string(rest) != want:
		return true, fmt.Sprintf("ended without error after %q, want %q", rest, want)
	}
	return false, "completed"
}

func TestRestartWithoutGracefulDocumentFailsRequests(t *testing.T) {
	t.Parallel()
	e, base := startWebForMaintenance(t)
	before := pids(e.live())
	ids := make([]string, 0, len(before))
	for id := range before {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	load := startLoad(t, base, map[string]int{"/": 6, "/slow?ms=1500": 2})
	load.waitRequests(100, 20*time.Second)

	// Each restart happens with a slow request known to be in flight on
	// its instance: the restart stops the process at once, and the app
	// gives in-flight requests one second, not the three this one needs.
	const ms = 3000
	cut := 0
	for _, id := range ids {
		p := probeOn(t, base, id, ms)
		exID := e.runDocument("Autoheal-RestartInstance", map[string]string{"InstanceId": id})
		ex := e.waitExecution(exID, 30*time.Second)
		if ex.Status != runbook.StatusSuccess {
			t.Fatalf("restart of %s ended %s:\n%s\nevents:\n%s", id, ex.Status, showExecution(ex), e.dumpEvents())
		}
		c, how := p.finish(ms)
		t.Logf("slow request in flight on %s during its restart: %s", id, how)
		if c {
			cut++
		}
		// Wait until it is back in rotation before the next: one at a
		// time here too, so that only the missing drain differs.
		e.waitHealthyTargets("web", 3, 10*time.Second)
	}
	load.waitRequests(100, 10*time.Second)
	load.stop()

	after := pids(e.live())
	for _, id := range ids {
		if after[id] == 0 || after[id] == before[id] {
			t.Errorf("instance %s: pid %d before its restart, %d after; want a new process of the same instance", id, before[id], after[id])
		}
	}
	e.assertLaunched(3)

	load.mu.Lock()
	defer load.mu.Unlock()
	t.Logf("without draining: %d of %d restarts cut the slow request in flight on them; load: %d requests, %d failed; first failures:\n  %s",
		cut, len(ids), load.total.Load(), load.failed.Load(), strings.Join(load.errs, "\n  "))
	if cut == 0 && load.failed.Load() == 0 {
		t.Fatalf("restarts without draining failed no request: this test no longer shows why Autoheal-GracefulMaintenance exists\nevents:\n%s", e.dumpEvents())
	}
}

// pausedDoc calls the API, sleeps, and calls the API again with an output
// of the first call, so that a resumed execution shows both its history
// and its outputs survived. The sleep is long enough for the test to stop
// the controller in it even on a machine that stalls for a second.
const pausedDoc = `schemaVersion: "0.3"
description: Two API calls three seconds apart.
parameters:
  Group:
    type: String
    default: web
mainSteps:
  - name: before
    action: executeApi
    inputs:
      Method: GET
      Path: /v1/groups/{{ Group }}/capacity
    outputs:
      - {Name: Desired, Selector: $.Payload.desired, Type: Integer}
  - name: pause
    action: sleep
    inputs:
      Duration: PT3S
  - name: after
    action: executeApi
    inputs:
      Method: GET
      Path: /v1/groups/{{ Group }}/capacity?desired={{ before.Desired }}
    outputs:
      - {Name: Complete, Selector: $.Payload.complete, Type: Boolean}
outputs: [before.Desired, after.Complete]
`

func TestExecutionResumesAfterControllerRestart(t *testing.T) {
	t.Parallel()
	// The documents directory beside the config file is the default one.
	cfg := writeConfig(t, webGroupConfig(1))
	docs := filepath.Join(filepath.Dir(cfg), "documents")
	if err := os.Mkdir(docs, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(docs, "Paused.yaml"), []byte(pausedDoc), 0o644); err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	e := startInProcess(t, cfg, state)
	e.waitInService(1, 20*time.Second)

	id := e.runDocument("Paused", nil)
	var mid wire.Execution
	waitFor(t, 10*time.Second, "the execution to sleep at step pause", func() bool {
		ex, err := e.execution(id)
		if err != nil {
			return false
		}
		mid = ex
		return ex.Current == "pause" && ex.Steps[1].Status == runbook.StatusInProgress
	})
	// The controller stops while the step sleeps; instances keep running.
	e.stop()
	stopped := time.Now()

	e2 := startInProcess(t, cfg, state)
	ex := e2.waitExecution(id, 30*time.Second)
	if ex.Status != runbook.StatusSuccess {
		t.Fatalf("resumed execution ended %s:\n%s\nevents:\n%s", ex.Status, showExecution(ex), e2.dumpEvents())
	}
	t.Logf("stopped %s into the pause; resumed:\n%s", stopped.Sub(*mid.Steps[1].StartedAt).Round(time.Millisecond), showExecution(ex))

	// The history is intact: the step that ran before the stop kept its
	// record and did not run again, the sleep kept its start (and slept
	// only what was left of it), the last step ran under the new
	// controller, with the first step's output.
	var names []string
	for _, s := range ex.Steps {
		names = append(names, s.Name)
	}
	if !slices.Equal(names, []string{"before", "pause", "after"}) {
		t.Fatalf("steps after the restart:\n%s", showExecution(ex))
	}
	for _, s := range ex.Steps {
		if s.Status != runbook.StatusSuccess || s.Attempts != 1 || s.StartedAt == nil || s.EndedAt == nil {
			t.Errorf("step %s: %s, %d attempt(s), want one successful attempt:\n%s", s.Name, s.Status, s.Attempts, showExecution(ex))
		}
	}
	b0, m0 := mid.Steps[0], ex.Steps[0]
	if !m0.StartedAt.Equal(*b0.StartedAt) || !m0.EndedAt.Equal(*b0.EndedAt) {
		t.Errorf("step before ran %s..%s before the restart, %s..%s after: it ran again", b0.StartedAt, b0.EndedAt, m0.StartedAt, m0.EndedAt)
	}
	if p := ex.Steps[1]; !p.StartedAt.Equal(*mid.Steps[1].StartedAt) {
		t.Errorf("step pause started at %s before the restart, %s after: the sleep started over", mid.Steps[1].StartedAt, p.StartedAt)
	} else if p.EndedAt.Sub(*p.StartedAt) < 3*time.Second {
		t.Errorf("step pause slept %s, want its three seconds", p.EndedAt.Sub(*p.StartedAt))
	}
	if last := ex.Steps[2]; !last.StartedAt.After(stopped) {
		t.Errorf("step after started at %s, before the controller stopped at %s", last.StartedAt, stopped)
	}
	if in, _ := ex.Steps[2].Inputs.(map[string]any); in == nil || !strings.HasSuffix(fmt.Sprint(in["Path"]), "?desired=1") {
		t.Errorf("step after ran with inputs %v, want the first step's output in its path", ex.Steps[2].Inputs)
	}
	if _, ok := ex.Outputs["after.Complete"].(bool); fmt.Sprint(ex.Outputs["before.Desired"]) != "1" || !ok {
		t.Errorf("outputs %v, want before.Desired 1 and after.Complete a boolean", ex.Outputs)
	}

	resumed := 0
	for _, ev := range e2.events() {
		if ev.Type == "execution.resume" && strings.Contains(ev.Message, id) {
			resumed++
			if !strings.Contains(ev.Message, "at step pause") {
				t.Errorf("resume event %q, want it at step pause", ev.Message)
			}
		}
	}
	if resumed != 1 {
		t.Errorf("%d execution.resume events for %s, want 1:\n%s", resumed, id, e2.dumpEvents())
	}
}

// webGroupConfig is web app instances without a load balancer.
func webGroupConfig(desired int) string {
	return fmt.Sprintf(`
groups:
  - name: web
    desired: %d
    launch:
      command: {{WEB}}
      ports: [http]
      stop_timeout: 5s
`, desired)
}

// restartAnswer asks for a restart in place through the API and returns
// the instance as the answer shows it.
func (e *env) restartAnswer(id string) (int, wire.Instance, []byte) {
	e.t.Helper()
	code, b, err := httpPostJSON("http://"+e.apiAddr+"/v1/instances/"+id+"/restart", map[string]any{}, 30*time.Second)
	if err != nil {
		e.t.Fatalf("restart %s: %v", id, err)
	}
	var in wire.Instance
	if code == http.StatusAccepted {
		if err := json.Unmarshal(b, &in); err != nil {
			e.t.Fatalf("restart %s answered %s: %v", id, b, err)
		}
	}
	return code, in, b
}

// waitNewProcess waits until instance id is InService with a process
// other than pid, and returns it.
func (e *env) waitNewProcess(id string, pid int, timeout time.Duration) wire.Instance {
	e.t.Helper()
	var got wire.Instance
	waitFor(e.t, timeout, id+" InService again with a new process", func() bool {
		for _, in := range e.live() {
			if in.ID == id && in.State == "InService" && in.Pid != 0 && in.Pid != pid {
				got = in
				return true
			}
		}
		return false
	})
	return got
}

// Regression: POST /v1/instances/{id}/restart answered as soon as the
// instance's pid changed, and stopping the old process sets the pid to 0
// while the instance is still InService (it leaves InService only when
// the new process is launched). The answer could then show the instance
// InService with no process, and Autoheal-RestartInstance, which waits for
// InService after that answer, could end Success before the instance was
// restarted; Autoheal-GracefulMaintenance then registered the target
// while its instance was still restarting. The restarts go round three
// instances, so that none is asked again right after its own restart
// (TestRestartRightAfterARestartIsNotDropped).
func TestRestartAnswersOnlyOnceTheInstanceLeftInService(t *testing.T) {
	t.Parallel()
	e := startInProcess(t, writeConfig(t, webGroupConfig(3)), "")
	ins := e.waitInService(3, 20*time.Second)
	answers := map[string]int{}
	for i := range 12 {
		in := &ins[i%3]
		code, got, b := e.restartAnswer(in.ID)
		if code != http.StatusAccepted {
			t.Fatalf("restart %d of %s: HTTP %d: %s", i, in.ID, code, b)
		}
		answers[fmt.Sprintf("%s, pid %d", got.State, map[bool]int{true: 0, false: 1}[got.Pid == 0])]++
		if got.State == "InService" && (got.Pid == 0 || got.Pid == in.Pid) {
			t.Fatalf("restart %d of %s answered with it InService and pid %d (was %d): the restart had not begun, and whoever waits for InService next sees it at once:\n%s", i, in.ID, got.Pid, in.Pid, b)
		}
		*in = e.waitNewProcess(in.ID, in.Pid, 20*time.Second)
	}
	t.Logf("restart answers (pid 0: none, 1: one): %v", answers)

	// The document, which relies on that answer, ends only once the
	// instance runs a new process.
	for i := range 3 {
		in := ins[i]
		ex := e.waitExecution(e.runDocument("Autoheal-RestartInstance", map[string]string{"InstanceId": in.ID}), 30*time.Second)
		if ex.Status != runbook.StatusSuccess {
			t.Fatalf("restart document on %s ended %s:\n%s", in.ID, ex.Status, showExecution(ex))
		}
		for _, now := range e.live() {
			if now.ID == in.ID && (now.State != "InService" || now.Pid == 0 || now.Pid == in.Pid) {
				t.Fatalf("restart document on %s ended Success with it %s, pid %d (before: %d):\n%s\nevents:\n%s", in.ID, now.State, now.Pid, in.Pid, showExecution(ex), e.dumpEvents())
			}
		}
	}
}

// A restart asked right after the instance is InService again from the
// previous one must restart it again. It is dropped instead: the group
// still has the previous restart's cause set (its job clears it just
// after the instance is InService), takes the request for a restart
// already under way and asks for none, so the instance is never
// restarted, and the API, waiting for a restart to begin, answers after
// its ten seconds with the instance untouched. Autoheal-RestartInstance
// would then end Success without a restart. Not fixed: see the report.
func TestRestartRightAfterARestartIsNotDropped(t *testing.T) {
	t.Parallel()
	e := startInProcess(t, writeConfig(t, webGroupConfig(1)), "")
	in := e.waitInService(1, 20*time.Second)[0]

	// Each restart is asked again and again until accepted: refused while
	// the previous one runs (the instance is not InService), the first one
	// accepted comes right after the instance is InService again.
	const want = 4
	accepted, refused := 0, 0
	var slowest time.Duration
	deadline := time.Now().Add(40 * time.Second)
	for accepted < want {
		if time.Now().After(deadline) {
			t.Fatalf("%d restarts of %s accepted in 40s, want %d", accepted, in.ID, want)
		}
		asked := time.Now()
		code, _, b := e.restartAnswer(in.ID)
		switch {
		case code == http.StatusBadRequest && strings.Contains(string(b), "only an InService instance can be restarted"):
			refused++
		case code == http.StatusAccepted:
			accepted++
			slowest = max(slowest, time.Since(asked))
		default:
			t.Fatalf("restart of %s: HTTP %d: %s", in.ID, code, b)
		}
	}
	e.waitInService(1, 20*time.Second)

	// Every accepted restart is a restart in the journal.
	var restarts []string
	for _, ev := range e.events() {
		if ev.Type == "instance.state" && ev.Instance == in.ID && strings.Contains(ev.Message, "-> Pending: restarted by operator") {
			restarts = append(restarts, ev.Time.Format("15:04:05.000"))
		}
	}
	t.Logf("%d restarts accepted (the slowest answered in %s), %d refused meanwhile; restarts in the journal at %v",
		accepted, slowest.Round(time.Millisecond), refused, restarts)
	if len(restarts) != accepted {
		t.Fatalf("%d restarts accepted but %d done: a restart asked right after the previous one was dropped\nevents:\n%s", accepted, len(restarts), e.dumpEvents())
	}
}

// Regression: a target registered again while it was still draining was
// healthy and in rotation, but the drain, once its in-flight requests were
// done, closed the target's connection pool anyway: from then on every
// request sent to it failed to get a connection ("target is draining") and
// was retried on another target, so it never served again (and a request
// in flight on it at that moment was cut). Autoheal-GracefulMaintenance
// did this when the restart document ended early (see above): it
// registered the target during the restart, the restart took it out
// again (a drain), and put it back when the instance was InService.
func TestTargetRegisteredDuringDrainServesAgain(t *testing.T) {
	t.Parallel()
	e, base := startWeb(t, 2, "")
	ids := e.waitHealthyTargets("web", 2, 10*time.Second)
	sort.Strings(ids)
	victim := ids[0]

	// A slow request keeps the drain going while the target is
	// registered again.
	const ms = 2000
	p := probeOn(t, base, victim, ms)
	for _, op := range []string{"deregister", "register"} {
		if code, b, err := httpPostJSON("http://"+e.apiAddr+"/v1/target-groups/web/"+op, map[string]any{"id": victim}, 5*time.Second); err != nil || code != 200 {
			t.Fatalf("%s %s: %d %s %v", op, victim, code, b, err)
		}
	}
	e.waitHealthyTargets("web", 2, 10*time.Second)
	if cut, how := p.finish(ms); cut {
		t.Fatalf("the slow request on %s was cut: %s", victim, how)
	}

	// Its drain is over (it had only the slow request to wait for): the
	// target must take its share of new requests.
	load := startLoad(t, base, map[string]int{"/": 2})
	load.waitRequests(300, 20*time.Second)
	load.stop()
	h, err := e.client.TargetHealth(context.Background(), "web")
	if err != nil {
		t.Fatal(err)
	}
	load.mu.Lock()
	t.Logf("after the drain: %d requests, %d failed, served by %v; lb retries %d", load.total.Load(), load.failed.Load(), load.byID, h.Metrics.RetryCount)
	if n, total := load.byID[victim], load.total.Load(); int64(n) < total/4 {
		t.Errorf("%s, registered again during its drain and healthy, served %d of %d requests after the drain: %v; lb retries %d",
			victim, n, total, load.byID, h.Metrics.RetryCount)
	}
	if n := load.failed.Load(); n > 0 {
		t.Errorf("%d requests failed: %s", n, strings.Join(load.errs, "\n  "))
	}
	load.mu.Unlock()
}
