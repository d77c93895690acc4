package maintenance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/autoheal/autoheal/internal/config"
	"github.com/autoheal/autoheal/internal/event"
	"github.com/autoheal/autoheal/internal/store"
)

// fakeRunner is the runbook executor, faked at its edge: the real one is
// another package's, and what is tested here is the scheduling around it.
type fakeRunner struct {
	StartFunc  func(ctx context.Context, id, document string, params map[string]string, origin string) error
	ExistsFunc func(ctx context.Context, id string) (bool, error)
	WaitFunc   func(ctx context.Context, id string) (string, error)
	CancelFunc func(ctx context.Context, id string) error
}

func (f *fakeRunner) StartAs(ctx context.Context, id, document string, params map[string]string, origin string) error {
	return f.StartFunc(ctx, id, document, params, origin)
}
func (f *fakeRunner) Exists(ctx context.Context, id string) (bool, error) {
	return f.ExistsFunc(ctx, id)
}
func (f *fakeRunner) Wait(ctx context.Context, id string) (string, error) { return f.WaitFunc(ctx, id) }
func (f *fakeRunner) Cancel(ctx context.Context, id string) error         { return f.CancelFunc(ctx, id) }

var _ Runner = (*fakeRunner)(nil)

// executions is a fake executor's state: each execution ends with the
// status its end function gives, or Cancelled when cancelled.
type executions struct {
	mu        sync.Mutex
	order     []string // ids, in the order started
	byID      map[string]*execution
	cancelled []string
	// end decides an execution's status; it may block (until ctx ends, to
	// model an execution that runs past its window).
	end func(ctx context.Context, e *execution) string
}

type execution struct {
	id, document, origin string
	params               map[string]string
	busy                 bool // the scheduler reported the target busy at Start
	cancel               chan struct{}
	once                 sync.Once
}

func newExecutions(end func(ctx context.Context, e *execution) string) *executions {
	return &executions{byID: map[string]*execution{}, end: end}
}

// runner returns a fake Runner over x; sched, when set, is asked whether
// the target is busy at each Start.
func (x *executions) runner(sched **Scheduler) *fakeRunner {
	return &fakeRunner{
		StartFunc: func(ctx context.Context, id, document string, params map[string]string, origin string) error {
			x.mu.Lock()
			defer x.mu.Unlock()
			if _, ok := x.byID[id]; ok {
				return nil // as the engine: an id starts once
			}
			e := &execution{id: id, document: document, origin: origin, params: params, cancel: make(chan struct{})}
			if sched != nil && *sched != nil {
				e.busy = (*sched).Busy(params["Target"])
			}
			x.byID[e.id] = e
			x.order = append(x.order, id)
			return nil
		},
		ExistsFunc: func(ctx context.Context, id string) (bool, error) {
			x.mu.Lock()
			defer x.mu.Unlock()
			_, ok := x.byID[id]
			return ok, nil
		},
		WaitFunc: func(ctx context.Context, id string) (string, error) {
			x.mu.Lock()
			e := x.byID[id]
			x.mu.Unlock()
			done := make(chan string, 1)
			go func() { done <- x.end(ctx, e) }()
			select {
			case st := <-done:
				return st, nil
			case <-e.cancel:
				return StatusCancelled, nil
			case <-ctx.Done():
				return "", ctx.Err()
			}
		},
		CancelFunc: func(ctx context.Context, id string) error {
			x.mu.Lock()
			defer x.mu.Unlock()
			x.cancelled = append(x.cancelled, id)
			x.byID[id].once.Do(func() { close(x.byID[id].cancel) })
			return nil
		},
	}
}

func (x *executions) all() []*execution {
	x.mu.Lock()
	defer x.mu.Unlock()
	var out []*execution
	for _, e := range x.byID {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b *execution) int {
		return slices.Index(x.order, a.id) - slices.Index(x.order, b.id)
	})
	return out
}

// journal records events as the store would, in the order appended.
type journal struct {
	mu  sync.Mutex
	evs []store.Event
}

func (j *journal) append(_ context.Context, ev store.Event) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	ev.Seq = int64(len(j.evs) + 1)
	j.evs = append(j.evs, ev)
	return nil
}

func (j *journal) events(typ event.Kind) []store.Event {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []store.Event
	for _, ev := range j.evs {
		if typ == "" || ev.Type == typ {
			out = append(out, ev)
		}
	}
	return out
}

// waitFor polls until cond holds; the bound only keeps a broken test from
// hanging, it asserts nothing about speed.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// waitEnd waits for the end of a window run and returns its event.
func waitEnd(t *testing.T, j *journal, runID string) store.Event {
	t.Helper()
	var end store.Event
	waitFor(t, "the end of run "+runID, func() bool {
		for _, ev := range j.events(event.KindWindowEnd) {
			if ev.Data.(event.WindowEnd).RunID == runID {
				end = ev
				return true
			}
		}
		return false
	})
	return end
}

// testConfig is a validated config with one group per name and the given
// windows and actions.
func testConfig(t *testing.T, groups []string, windows []config.MaintenanceWindow, actions []config.ScheduledAction) *config.Config {
	t.Helper()
	cfg := &config.Config{MaintenanceWindows: windows, ScheduledActions: actions}
	for _, g := range groups {
		cfg.Groups = append(cfg.Groups, config.Group{Name: g, Max: 20, Launch: config.Launch{Command: "sh"}})
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func targets(group string, n int) []Target {
	out := make([]Target, n)
	for i := range out {
		out[i] = Target{ID: fmt.Sprintf("i-%02d", i+1), Group: group}
	}
	return out
}

// task is a task that passes its target's id to the document as Target.
func task(document, maxConcurrency, maxErrors string) config.WindowTask {
	return config.WindowTask{Document: document, MaxConcurrency: maxConcurrency, MaxErrors: maxErrors,
		Parameters: map[string]string{"Target": "{{ TARGET_ID }}", "Group": "{{TARGET_GROUP}}"}}
}

type setup struct {
	window  config.MaintenanceWindow
	targets []Target
	end     func(ctx context.Context, e *execution) string
	now     func() time.Time
}

type fixture struct {
	sched *Scheduler
	j     *journal
	x     *executions
}

func start(t *testing.T, s setup) *fixture {
	t.Helper()
	f := &fixture{j: &journal{}, x: newExecutions(s.end)}
	cfg := testConfig(t, []string{"web"}, []config.MaintenanceWindow{s.window}, nil)
	sched, err := New(cfg, Deps{
		Runner:  f.x.runner(&f.sched),
		Targets: func() []Target { return s.targets },
		Journal: f.j.append,
		Now:     s.now,
		Logger:  slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	f.sched = sched
	t.Cleanup(sched.Close)
	return f
}

func (f *fixture) run(t *testing.T) (string, store.Event) {
	t.Helper()
	id, err := f.sched.RunNow(context.Background(), f.sched.windows[0].cfg.Name)
	if err != nil {
		t.Fatal(err)
	}
	return id, waitEnd(t, f.j, id)
}

func testWindow(tasks ...config.WindowTask) config.MaintenanceWindow {
	return config.MaintenanceWindow{Name: "patch", Schedule: "0 3 * * *", Duration: config.Duration(time.Hour),
		Targets: config.WindowTargets{Groups: []string{"web"}}, Tasks: tasks}
}

// maxOpen replays the journal's task events and returns the most
// executions that were running at once.
func maxOpen(t *testing.T, evs []store.Event) int {
	t.Helper()
	open := map[string]bool{}
	most := 0
	for _, ev := range evs {
		id := taskOf(ev.Data).Execution
		switch ev.Type {
		case event.KindTaskStart:
			if open[id] {
				t.Errorf("execution %s started twice", id)
			}
			open[id] = true
			most = max(most, len(open))
		case event.KindTaskEnd:
			if id != "" && !open[id] {
				t.Errorf("execution %s ended without a start", id)
			}
			delete(open, id)
		}
	}
	if len(open) > 0 {
		t.Errorf("executions never ended: %v", open)
	}
	return most
}

func statuses(evs []store.Event) map[string]string {
	out := map[string]string{}
	for _, ev := range evs {
		if ev.Type == event.KindTaskEnd {
			out[ev.Instance] = ev.Data.(event.TaskEnd).Status
		}
	}
	return out
}

func TestMaxConcurrencyIsNeverExceeded(t *testing.T) {
	for _, c := range []struct {
		name        string
		concurrency string
		targets     int
		want        int
	}{
		{"one at a time", "1", 5, 1},
		{"a count", "3", 12, 3},
		{"a percentage, rounded up", "25%", 10, 3},
		{"more than there are targets", "10", 4, 4},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var f *fixture
			f = start(t, setup{
				window:  testWindow(task("patch", c.concurrency, "0")),
				targets: targets("web", c.targets),
				end: func(ctx context.Context, e *execution) string {
					// The first wave holds until it is complete, so that the
					// limit is reached; then executions of different lengths
					// free their slots in every order.
					for len(f.x.all()) < c.want && ctx.Err() == nil {
						time.Sleep(time.Millisecond)
					}
					time.Sleep(time.Duration(1+rand.IntN(8)) * time.Millisecond)
					return StatusSuccess
				},
			})
			_, end := f.run(t)
			evs := f.j.events("")
			if got := maxOpen(t, evs); got != c.want {
				t.Errorf("at most %d executions ran at once, want exactly %d (max_concurrency %s of %d targets)", got, c.want, c.concurrency, c.targets)
			}
			if end.Data.(event.WindowEnd).Outcome != OutcomeSuccess || end.Data.(event.WindowEnd).Succeeded != c.targets {
				t.Errorf("end: %s %v", end.Message, end.Data)
			}
			for _, e := range f.x.all() {
				if !e.busy {
					t.Errorf("target %s was not busy while %s ran on it", e.params["Target"], e.id)
				}
			}
			for _, tg := range targets("web", c.targets) {
				if f.sched.Busy(tg.ID) {
					t.Errorf("%s still busy after the run", tg.ID)
				}
			}
		})
	}
}

func TestMaxErrorsStopsTheWindow(t *testing.T) {
	for _, c := range []struct {
		name        string
		concurrency string
		maxErrors   string
		failing     []string
		started     []string // in order, for max_concurrency 1
		notRun      int
	}{
		{"max_errors 0 stops after the first failing target", "1", "0", []string{"i-02"}, []string{"i-01", "i-02"}, 3 + 5},
		{"max_errors 1 tolerates one failure", "1", "1", []string{"i-02", "i-04"}, []string{"i-01", "i-02", "i-03", "i-04"}, 1 + 5},
		{"a percentage: 20% of 5 is 1", "1", "20%", []string{"i-01", "i-03"}, []string{"i-01", "i-02", "i-03"}, 2 + 5},
		{"within the budget the window goes on", "1", "2", []string{"i-05"}, []string{"i-01", "i-02", "i-03", "i-04", "i-05"}, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			f := start(t, setup{
				// A second task that must not run once the first spent its
				// budget.
				window:  testWindow(task("patch", c.concurrency, c.maxErrors), task("verify", "5", "0")),
				targets: targets("web", 5),
				end: func(ctx context.Context, e *execution) string {
					if e.document == "patch" && slices.Contains(c.failing, e.params["Target"]) {
						return StatusFailed
					}
					return StatusSuccess
				},
			})
			_, end := f.run(t)
			var started, verified []string
			for _, ev := range f.j.events(event.KindTaskStart) {
				if taskOf(ev.Data).Document == "patch" {
					started = append(started, ev.Instance)
				} else {
					verified = append(verified, ev.Instance)
				}
			}
			if !slices.Equal(started, c.started) {
				t.Errorf("patch started on %v, want %v", started, c.started)
			}
			if wantVerified := map[bool]int{true: 5, false: 0}[c.notRun == 0]; len(verified) != wantVerified {
				t.Errorf("the next task started on %v, want %d targets", verified, wantVerified)
			}
			if end.Data.(event.WindowEnd).Outcome != OutcomeFailed || end.Data.(event.WindowEnd).NotRun != c.notRun {
				t.Errorf("end: %s %v", end.Message, end.Data)
			}
			if c.notRun > 0 && !strings.Contains(end.Message, "max_errors "+c.maxErrors) {
				t.Errorf("end message does not say why: %s", end.Message)
			}
		})
	}
}

// TestMaxErrorsWithConcurrency: executions that were already running when
// the budget ran out finish; no new one starts.
func TestMaxErrorsWithConcurrency(t *testing.T) {
	release := make(chan struct{})
	var f *fixture
	f = start(t, setup{
		window:  testWindow(task("patch", "3", "0")),
		targets: targets("web", 8),
		end: func(ctx context.Context, e *execution) string {
			if e.params["Target"] == "i-01" {
				// Fail once the three slots are taken.
				for len(f.x.all()) < 3 && ctx.Err() == nil {
					time.Sleep(time.Millisecond)
				}
				return StatusFailed
			}
			<-release
			return StatusSuccess
		},
	})
	id, err := f.sched.RunNow(context.Background(), "patch")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "i-01 to fail", func() bool { return statuses(f.j.events(""))["i-01"] == StatusFailed })
	close(release)
	end := waitEnd(t, f.j, id)
	got := statuses(f.j.events(""))
	want := map[string]string{"i-01": StatusFailed, "i-02": StatusSuccess, "i-03": StatusSuccess}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("executions %v, want %v", got, want)
	}
	if end.Data.(event.WindowEnd).NotRun != 5 {
		t.Errorf("end: %s", end.Message)
	}
}

// fakeClock is a clock that only the test moves.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestCutoffStopsNewTasks(t *testing.T) {
	clock := &fakeClock{t: time.Date(2024, 5, 2, 3, 0, 0, 0, time.UTC)}
	w := testWindow(task("patch", "1", "0"))
	w.Duration, w.Cutoff = config.Duration(time.Hour), config.Duration(30*time.Minute)
	f := start(t, setup{
		window:  w,
		targets: targets("web", 10),
		now:     clock.Now,
		end: func(ctx context.Context, e *execution) string {
			clock.Advance(10 * time.Minute) // each execution takes ten minutes
			return StatusSuccess
		},
	})
	_, end := f.run(t)
	cutoff := time.Date(2024, 5, 2, 3, 30, 0, 0, time.UTC)
	starts := f.j.events(event.KindTaskStart)
	for _, ev := range starts {
		if !ev.Time.Before(cutoff) {
			t.Errorf("%s started at %s, past the cutoff %s", ev.Instance, ev.Time, cutoff)
		}
	}
	// At 03:00, 03:10 and 03:20; at 03:30 the cutoff is reached.
	if len(starts) != 3 {
		t.Errorf("%d executions started, want 3", len(starts))
	}
	if end.Data.(event.WindowEnd).Outcome != OutcomeTimedOut || end.Data.(event.WindowEnd).NotRun != 7 || !strings.Contains(end.Message, "cutoff reached") {
		t.Errorf("end: %s %v", end.Message, end.Data)
	}
}

func TestWindowEndCancelsRunningTasks(t *testing.T) {
	w := testWindow(task("patch", "2", "0"))
	w.Duration = config.Duration(200 * time.Millisecond)
	f := start(t, setup{
		window:  w,
		targets: targets("web", 4),
		end: func(ctx context.Context, e *execution) string {
			<-e.cancel // runs until cancelled
			return StatusCancelled
		},
	})
	_, end := f.run(t)
	if got := statuses(f.j.events("")); fmt.Sprint(got) != fmt.Sprint(map[string]string{"i-01": StatusCancelled, "i-02": StatusCancelled}) {
		t.Errorf("executions %v, want i-01 and i-02 cancelled", got)
	}
	f.x.mu.Lock()
	cancelled := slices.Sorted(slices.Values(f.x.cancelled))
	started := slices.Sorted(slices.Values(f.x.order))
	f.x.mu.Unlock()
	if !slices.Equal(cancelled, started) || len(started) != 2 {
		t.Errorf("cancelled %v, want both running executions", cancelled)
	}
	if end.Data.(event.WindowEnd).Outcome != OutcomeTimedOut || end.Data.(event.WindowEnd).Cancelled != 2 || end.Data.(event.WindowEnd).NotRun != 2 {
		t.Errorf("end: %s %v", end.Message, end.Data)
	}
	for _, id := range []string{"i-01", "i-02"} {
		if f.sched.Busy(id) {
			t.Errorf("%s still busy", id)
		}
	}
}

func TestTasksRunInPriorityOrder(t *testing.T) {
	first, second, third := task("first", "2", "0"), task("second", "2", "0"), task("third", "2", "0")
	first.Priority, second.Priority, third.Priority = new(0), new(1), new(1)
	// Written out of order; equal priorities keep the order written.
	f := start(t, setup{
		window:  testWindow(second, third, first),
		targets: targets("web", 3),
		end:     func(context.Context, *execution) string { return StatusSuccess },
	})
	_, end := f.run(t)
	var order []string
	for _, ev := range f.j.events(event.KindTaskStart) {
		if len(order) == 0 || order[len(order)-1] != taskOf(ev.Data).Document {
			order = append(order, taskOf(ev.Data).Document)
		}
	}
	if !slices.Equal(order, []string{"first", "second", "third"}) {
		t.Errorf("documents ran in the order %v", order)
	}
	if end.Data.(event.WindowEnd).Succeeded != 9 || end.Data.(event.WindowEnd).Outcome != OutcomeSuccess {
		t.Errorf("end: %s", end.Message)
	}
	for _, e := range f.x.all() {
		if e.params["Target"] == "" || !strings.HasPrefix(e.params["Target"], "i-") || e.params["Group"] != "web" {
			t.Errorf("%s: parameters not substituted: %v", e.id, e.params)
		}
		if !strings.HasPrefix(e.origin, "maintenance-window/patch/mw-") {
			t.Errorf("%s: origin %q", e.id, e.origin)
		}
	}
}

func TestTaskEventsNameTheirTarget(t *testing.T) {
	f := start(t, setup{
		window:  testWindow(task("patch", "1", "0")),
		targets: targets("web", 1),
		end:     func(context.Context, *execution) string { return StatusSuccess },
	})
	id, _ := f.run(t)
	evs := f.j.events("")
	var types []event.Kind
	for _, ev := range evs {
		types = append(types, ev.Type)
	}
	if !slices.Equal(types, []event.Kind{event.KindWindowStart, event.KindTaskStart, event.KindTaskEnd, event.KindWindowEnd}) {
		t.Fatalf("events %v", types)
	}
	for _, ev := range evs[1:3] {
		if ev.Instance != "i-01" || ev.Group != "web" || taskOf(ev.Data).Execution != f.x.all()[0].id ||
			taskOf(ev.Data).Window != "patch" || taskOf(ev.Data).RunID != id || taskOf(ev.Data).Task != 1 {
			t.Errorf("%s: %+v", ev.Type, ev)
		}
	}
	if evs[2].Data.(event.TaskEnd).Status != StatusSuccess {
		t.Errorf("task end status %v", evs[2].Data.(event.TaskEnd).Status)
	}
}

func TestStartErrorIsAFailure(t *testing.T) {
	f := start(t, setup{
		window:  testWindow(task("missing", "1", "0")),
		targets: targets("web", 3),
	})
	f.sched.deps.Runner.(*fakeRunner).StartFunc = func(context.Context, string, string, map[string]string, string) error {
		return errors.New(`document "missing" not found`)
	}
	_, end := f.run(t)
	ends := f.j.events(event.KindTaskEnd)
	if len(ends) != 1 || ends[0].Data.(event.TaskEnd).Status != StatusFailed || !strings.Contains(ends[0].Message, "not found") {
		t.Errorf("task ends %+v", ends)
	}
	// The task is recorded as starting, with its execution's id, before
	// the execution starts; its end says it did not.
	if starts := f.j.events(event.KindTaskStart); len(starts) != 1 || taskOf(starts[0].Data).Execution != taskOf(ends[0].Data).Execution {
		t.Errorf("task starts %+v", starts)
	}
	if end.Data.(event.WindowEnd).Outcome != OutcomeFailed || end.Data.(event.WindowEnd).NotRun != 2 {
		t.Errorf("end: %s", end.Message)
	}
}

func TestNoTargets(t *testing.T) {
	f := start(t, setup{window: testWindow(task("patch", "1", "0"))})
	_, end := f.run(t)
	if end.Data.(event.WindowEnd).Outcome != OutcomeSuccess || end.Data.(event.WindowEnd).Targets != 0 {
		t.Errorf("end: %s", end.Message)
	}
}

func TestRunNow(t *testing.T) {
	release := make(chan struct{})
	f := start(t, setup{
		window:  testWindow(task("patch", "1", "0")),
		targets: targets("web", 2),
		end: func(ctx context.Context, e *execution) string {
			<-release
			return StatusSuccess
		},
	})
	ctx := context.Background()
	if _, err := f.sched.RunNow(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown window: %v", err)
	}
	id, err := f.sched.RunNow(ctx, "patch")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.sched.RunNow(ctx, "patch"); !errors.Is(err, ErrRunning) || !strings.Contains(err.Error(), id) {
		t.Errorf("second run while the first runs: %v", err)
	}
	waitFor(t, "an execution", func() bool { return len(f.j.events(event.KindTaskStart)) == 1 })
	ws := f.sched.Windows()
	if len(ws) != 1 || ws[0].Running == nil || ws[0].Running.ID != id || ws[0].Running.Running != 1 ||
		ws[0].Running.Targets != 2 || ws[0].Running.Trigger != TriggerManual || ws[0].Next == nil || ws[0].Last != nil {
		t.Errorf("while running: %+v", ws)
	}
	close(release)
	waitEnd(t, f.j, id)
	ws = f.sched.Windows()
	if ws[0].Running != nil || ws[0].Last == nil || ws[0].Last.ID != id || ws[0].Last.Succeeded != 2 || ws[0].Last.Outcome != OutcomeSuccess {
		t.Errorf("after the run: %+v", ws[0])
	}
	// The window is free again.
	id2, err := f.sched.RunNow(ctx, "patch")
	if err != nil || id2 == id {
		t.Errorf("second run: %s, %v", id2, err)
	}
	waitEnd(t, f.j, id2)
	f.sched.Close()
	if _, err := f.sched.RunNow(ctx, "patch"); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
}

// TestCloseInterruptsRuns: at shutdown a run stops following its
// executions without cancelling them (the runbook executor owns them).
func TestCloseInterruptsRuns(t *testing.T) {
	f := start(t, setup{
		window:  testWindow(task("patch", "2", "0")),
		targets: targets("web", 3),
		end: func(ctx context.Context, e *execution) string {
			<-e.cancel
			return StatusCancelled
		},
	})
	id, err := f.sched.RunNow(context.Background(), "patch")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "two executions", func() bool { return len(f.j.events(event.KindTaskStart)) == 2 })
	f.sched.Close()
	end := waitEnd(t, f.j, id)
	if end.Data.(event.WindowEnd).Outcome != OutcomeInterrupted {
		t.Errorf("end: %s", end.Message)
	}
	f.x.mu.Lock()
	cancelled := f.x.cancelled
	f.x.mu.Unlock()
	if len(cancelled) != 0 {
		t.Errorf("Close cancelled executions %v", cancelled)
	}
	if got := statuses(f.j.events("")); got["i-01"] != StatusInterrupted || got["i-02"] != StatusInterrupted {
		t.Errorf("executions %v", got)
	}
}

// offsetClock runs at real speed from base: schedules fire on real timers
// a moment after the test starts.
func offsetClock(base time.Time) func() time.Time {
	t0 := time.Now()
	return func() time.Time { return base.Add(time.Since(t0)) }
}

func TestScheduledWindowStarts(t *testing.T) {
	w := testWindow(task("patch", "1", "0"))
	w.Schedule = "0 8 * * *"
	f := start(t, setup{
		window:  w,
		targets: targets("web", 1),
		now:     offsetClock(time.Date(2024, 5, 2, 7, 59, 59, 900e6, time.UTC)),
		end:     func(context.Context, *execution) string { return StatusSuccess },
	})
	f.sched.Run()
	waitFor(t, "the scheduled run", func() bool { return len(f.j.events(event.KindWindowEnd)) == 1 })
	st := f.j.events(event.KindWindowStart)[0]
	if st.Data.(event.WindowStart).Trigger != TriggerSchedule || !st.Data.(event.WindowStart).Start.Equal(time.Date(2024, 5, 2, 8, 0, 0, 0, time.UTC)) {
		t.Errorf("start: %s %v", st.Message, st.Data)
	}
	if next := f.sched.Windows()[0].Next; next == nil || !next.Start.Equal(time.Date(2024, 5, 3, 8, 0, 0, 0, time.UTC)) {
		t.Errorf("next: %+v", next)
	}
}

func TestScheduledActionsCallScale(t *testing.T) {
	type call struct {
		group             string
		min, max, desired *int
	}
	var mu sync.Mutex
	var calls []call
	j := &journal{}
	actions := []config.ScheduledAction{
		{Name: "morning-utc", Group: "web", Schedule: "0 8 * * *", Desired: new(3)},
		// 09:00 in Paris is 08:00 UTC in winter.
		{Name: "morning-paris", Group: "dev", Schedule: "0 9 * * MON-FRI", TimeZone: "Europe/Paris", Min: new(1), Desired: new(1)},
		{Name: "evening", Group: "web", Schedule: "0 9 * * *", Desired: new(0)},
		{Name: "refused", Group: "dev", Schedule: "@daily", Max: new(2)},
	}
	cfg := testConfig(t, []string{"web", "dev"}, nil, actions)
	sched, err := New(cfg, Deps{
		Scale: func(ctx context.Context, group string, min, max, desired *int) error {
			mu.Lock()
			defer mu.Unlock()
			calls = append(calls, call{group, min, max, desired})
			if max != nil {
				return errors.New("desired 3 is outside min 1 and max 2")
			}
			return nil
		},
		Journal: j.append,
		// Thursday 2 January 2025, 07:59:59.9 UTC: a moment before 08:00
		// UTC and 09:00 in Paris. @daily is not due.
		Now:    offsetClock(time.Date(2025, 1, 2, 7, 59, 59, 900e6, time.UTC)),
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	sched.Run()
	waitFor(t, "two scheduled actions", func() bool { return len(j.events(event.KindScheduledAction)) == 2 })
	sched.Close()

	slices.SortFunc(calls, func(a, b call) int { return strings.Compare(a.group, b.group) })
	if len(calls) != 2 || calls[0].group != "dev" || *calls[0].min != 1 || calls[0].max != nil || *calls[0].desired != 1 ||
		calls[1].group != "web" || calls[1].min != nil || calls[1].max != nil || *calls[1].desired != 3 {
		t.Errorf("Scale calls %+v", calls)
	}
	for _, ev := range j.events(event.KindScheduledAction) {
		want := map[string]string{"web": "scheduled action morning-utc set desired 3 of group web",
			"dev": "scheduled action morning-paris set min 1 desired 1 of group dev"}[ev.Group]
		if ev.Message != want || ev.Data.(event.ScheduledAction).Error != "" {
			t.Errorf("event %q %v, want %q", ev.Message, ev.Data, want)
		}
	}
}

func TestScheduledActionFailureIsJournaled(t *testing.T) {
	j := &journal{}
	cfg := testConfig(t, []string{"web"}, nil, []config.ScheduledAction{{Name: "grow", Group: "web", Schedule: "0 8 * * *", Max: new(2)}})
	sched, err := New(cfg, Deps{
		Scale: func(context.Context, string, *int, *int, *int) error {
			return errors.New("invalid request: desired 3 is outside min 0 and max 2")
		},
		Journal: j.append,
		Now:     offsetClock(time.Date(2025, 1, 2, 7, 59, 59, 900e6, time.UTC)),
		Logger:  slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	sched.Run()
	waitFor(t, "the action", func() bool { return len(j.events(event.KindScheduledAction)) == 1 })
	sched.Close()
	ev := j.events(event.KindScheduledAction)[0]
	if !strings.Contains(ev.Message, "could not set max 2 of group web: invalid request") || ev.Data.(event.ScheduledAction).Error == "" || *ev.Data.(event.ScheduledAction).Max != 2 {
		t.Errorf("event %q %v", ev.Message, ev.Data)
	}
}

func TestNewNeedsItsDependencies(t *testing.T) {
	cfg := testConfig(t, []string{"web"}, []config.MaintenanceWindow{testWindow(task("patch", "1", "0"))},
		[]config.ScheduledAction{{Name: "a", Group: "web", Schedule: "@daily", Desired: new(1)}})
	if _, err := New(cfg, Deps{Scale: func(context.Context, string, *int, *int, *int) error { return nil }}); err == nil {
		t.Error("windows without a Runner")
	}
	if _, err := New(cfg, Deps{Runner: &fakeRunner{}}); err == nil {
		t.Error("actions without Scale")
	}
	empty := testConfig(t, []string{"web"}, nil, nil)
	s, err := New(empty, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	s.Run()
	s.Close()
	s.Close()
	if w := s.Windows(); len(w) != 0 {
		t.Errorf("windows %v", w)
	}
}

func TestNext(t *testing.T) {
	f := start(t, setup{
		window: testWindow(task("patch", "1", "0")),
		now:    func() time.Time { return time.Date(2024, 5, 2, 10, 0, 0, 0, time.UTC) },
	})
	ws, err := f.sched.Next("patch", 3)
	if err != nil || len(ws) != 3 || !ws[0].Start.Equal(time.Date(2024, 5, 3, 3, 0, 0, 0, time.UTC)) {
		t.Errorf("Next = %v, %v", ws, err)
	}
	if _, err := f.sched.Next("nope", 1); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown window: %v", err)
	}
	if ws, _ := f.sched.Next("patch", 1000); len(ws) != 100 {
		t.Errorf("n is capped at 100, got %d", len(ws))
	}
}

// TestRunnerPanicFailsTheTarget: a panic in the Runner fails one target
// and leaves the controller running.
func TestRunnerPanicFailsTheTarget(t *testing.T) {
	f := start(t, setup{
		window:  testWindow(task("patch", "1", "1")),
		targets: targets("web", 2),
		end:     func(context.Context, *execution) string { return StatusSuccess },
	})
	r := f.sched.deps.Runner.(*fakeRunner)
	start := r.StartFunc
	r.StartFunc = func(ctx context.Context, id, doc string, params map[string]string, origin string) error {
		if params["Target"] == "i-01" {
			panic("runner bug")
		}
		return start(ctx, id, doc, params, origin)
	}
	_, end := f.run(t)
	if got := statuses(f.j.events("")); got["i-01"] != StatusFailed || got["i-02"] != StatusSuccess {
		t.Errorf("executions %v", got)
	}
	if end.Data.(event.WindowEnd).Outcome != OutcomeFailed {
		t.Errorf("end: %s", end.Message)
	}
}

// taskOf is the task a task start or end event is about.
func taskOf(d event.Data) event.Task {
	switch d := d.(type) {
	case event.TaskStart:
		return d.Task
	case event.TaskEnd:
		return d.Task
	}
	return event.Task{}
}
