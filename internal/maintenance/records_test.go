package maintenance

import (
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/autoheal/autoheal/internal/config"
	"github.com/autoheal/autoheal/internal/event"
	"github.com/autoheal/autoheal/internal/store"
)

func TestResumeRun(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 3, 0, 0, 0, time.UTC)
	rec := runRecord{Documents: []string{"a", "b"}, Win: Window{Start: t0, Cutoff: t0.Add(30 * time.Minute), End: t0.Add(time.Hour)}}
	tests := []struct {
		name string
		docs []string
		now  time.Time
		want resumeVerdict
	}{
		{"inside its window it goes on", []string{"a", "b"}, t0.Add(10 * time.Minute), resumeGoOn},
		{"past its cutoff it goes on (to wait for its tasks)", []string{"a", "b"}, t0.Add(45 * time.Minute), resumeGoOn},
		{"at its end it ends", []string{"a", "b"}, t0.Add(time.Hour), resumeEnd},
		{"past its end it ends", []string{"a", "b"}, t0.Add(5 * time.Hour), resumeEnd},
		{"its window is gone", nil, t0.Add(10 * time.Minute), resumeDrop},
		{"its tasks changed", []string{"a", "c"}, t0.Add(10 * time.Minute), resumeDrop},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := resumeRun(rec, tt.docs, tt.now); got != tt.want {
				t.Fatalf("resumeRun = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestResumeTask(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 3, 0, 0, 0, time.UTC)
	win := Window{Start: t0, Cutoff: t0.Add(30 * time.Minute), End: t0.Add(time.Hour)}
	tests := []struct {
		name   string
		exists bool
		now    time.Time
		want   taskVerdict
	}{
		{"its execution exists: wait for it", true, t0.Add(10 * time.Minute), taskWait},
		{"its execution exists past the cutoff: wait for it", true, t0.Add(45 * time.Minute), taskWait},
		{"never started, before the cutoff: start it", false, t0.Add(10 * time.Minute), taskStart},
		{"never started, at the cutoff: it does not start", false, t0.Add(30 * time.Minute), taskNotStarted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := resumeTask(win, tt.exists, tt.now); got != tt.want {
				t.Fatalf("resumeTask = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestActionStart(t *testing.T) {
	at := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		rec       actionRecord
		now       time.Time
		reapply   bool
		nextAfter time.Time
	}{
		{"nothing recorded", actionRecord{}, at, false, at},
		{"applied: not again, even with the clock set back", actionRecord{Time: at, Done: true}, at.Add(-time.Hour), false, at},
		{"applied: the next time after now", actionRecord{Time: at, Done: true}, at.Add(time.Hour), false, at.Add(time.Hour)},
		{"begun, not known applied, on time: again", actionRecord{Time: at}, at.Add(20 * time.Second), true, at.Add(20 * time.Second)},
		{"begun, not known applied, a minute late: again", actionRecord{Time: at}, at.Add(lateAction), true, at.Add(lateAction)},
		{"begun, not known applied, too late: not again", actionRecord{Time: at}, at.Add(lateAction + time.Second), false, at.Add(lateAction + time.Second)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reapply, after := actionStart(tt.rec, tt.now)
			if reapply != tt.reapply || !after.Equal(tt.nextAfter) {
				t.Fatalf("actionStart = %v, %s; want %v, %s", reapply, after, tt.reapply, tt.nextAfter)
			}
		})
	}
}

// durable is a scheduler on a real store, with the fake executor of the
// other tests standing for the runbook engine: it outlives the
// scheduler, as the engine's executions outlive a controller.
type durable struct {
	t     *testing.T
	st    *store.Store
	x     *executions
	cfg   *config.Config
	now   func() time.Time
	sched *Scheduler
}

func newDurable(t *testing.T, w config.MaintenanceWindow, now func() time.Time, end func(ctx context.Context, e *execution) string) *durable {
	st, err := store.Open(filepath.Join(t.TempDir(), "state"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	d := &durable{t: t, st: st, x: newExecutions(end), cfg: testConfig(t, []string{"web"}, []config.MaintenanceWindow{w}, nil), now: now}
	d.restart()
	return d
}

// restart stops the scheduler, as a controller stop does, and starts a
// new one on the same store.
func (d *durable) restart() {
	if d.sched != nil {
		d.sched.Close()
	}
	s, err := New(d.cfg, Deps{
		Runner:  d.x.runner(nil),
		Targets: func() []Target { return targets("web", 3) },
		Journal: func(ctx context.Context, ev store.Event) error { _, err := d.st.Append(ctx, ev); return err },
		Records: d.st,
		Now:     d.now,
		Logger:  slog.New(slog.DiscardHandler),
	})
	if err != nil {
		d.t.Fatal(err)
	}
	d.sched = s
	d.t.Cleanup(s.Close)
	s.Run()
}

func (d *durable) events(typ event.Kind) []store.Event {
	evs, err := d.st.Events(context.Background(), store.EventFilter{})
	if err != nil {
		d.t.Fatal(err)
	}
	var out []store.Event
	for _, ev := range evs {
		if ev.Type == typ {
			out = append(out, ev)
		}
	}
	return out
}

func (d *durable) waitEnd() event.WindowEnd {
	d.t.Helper()
	waitFor(d.t, "the run's end", func() bool { return len(d.events(event.KindWindowEnd)) == 1 })
	return d.events(event.KindWindowEnd)[0].Data.(event.WindowEnd)
}

func (d *durable) recorded() state {
	v, err := d.st.Get(context.Background(), RecordsKey)
	if err != nil {
		d.t.Fatal(err)
	}
	var s state
	if err := json.Unmarshal([]byte(v), &s); err != nil {
		d.t.Fatal(err)
	}
	return s
}

// TestStoppedRunIsTakenUp: the controller stops while a window runs a
// task on its second target; the next one waits for that execution
// without starting it again, then does the third target.
func TestStoppedRunIsTakenUp(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	d := newDurable(t, testWindow(task("patch", "1", "0")), nil, func(ctx context.Context, e *execution) string {
		if e.params["Target"] == "i-02" {
			select {
			case <-release:
			case <-ctx.Done():
				return ""
			}
		}
		return StatusSuccess
	})
	defer once.Do(func() { close(release) })
	id, err := d.sched.RunNow(context.Background(), "patch")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the task on i-02", func() bool { return len(d.x.all()) == 2 })
	d.restart()
	if got := d.sched.Windows()[0].Running; got == nil || got.ID != id || got.Succeeded != 1 {
		t.Fatalf("after the restart the run is %+v, want %s taken up with i-01 done", got, id)
	}
	once.Do(func() { close(release) })
	end := d.waitEnd()
	if end.RunID != id || end.Outcome != OutcomeSuccess || end.Succeeded != 3 {
		t.Fatalf("end %+v", end)
	}
	var targets []string
	for _, e := range d.x.all() {
		targets = append(targets, e.params["Target"])
	}
	if !slices.Equal(targets, []string{"i-01", "i-02", "i-03"}) {
		t.Fatalf("executions on %v, want one on each target", targets)
	}
	if n := len(d.events(event.KindTaskStart)); n != 3 {
		t.Fatalf("%d task starts, want 3", n)
	}
	if r := d.events(event.KindWindowResume); len(r) != 1 || r[0].Data.(event.WindowResume).Running != 1 {
		t.Fatalf("resume events %+v", r)
	}
	if s := d.recorded(); len(s.Runs) != 0 {
		t.Fatalf("the ended run is still recorded: %+v", s.Runs)
	}
}

// TestRunPastItsEndEndsHonestly: the next controller comes after the
// window closed; the run ends with its tasks' real outcomes: the one
// still running is cancelled, the one never started is not run.
func TestRunPastItsEndEndsHonestly(t *testing.T) {
	clock := &fakeClock{t: time.Date(2024, 5, 2, 3, 0, 0, 0, time.UTC)}
	d := newDurable(t, testWindow(task("patch", "1", "0")), clock.Now, func(ctx context.Context, e *execution) string {
		if e.params["Target"] == "i-02" {
			<-e.cancel
			return StatusCancelled
		}
		return StatusSuccess
	})
	if _, err := d.sched.RunNow(context.Background(), "patch"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the task on i-02", func() bool { return len(d.x.all()) == 2 })
	d.sched.Close()
	clock.Advance(2 * time.Hour) // the window lasts one
	d.restart()
	end := d.waitEnd()
	if end.Outcome != OutcomeTimedOut || end.Succeeded != 1 || end.Cancelled != 1 || end.NotRun != 1 ||
		!strings.Contains(end.Reason, "ended while the controller was down") {
		t.Fatalf("end %+v", end)
	}
	if len(d.x.all()) != 2 {
		t.Fatalf("%d executions, want none started after the window", len(d.x.all()))
	}
}

// TestRecordedTaskStartsOnce: killed between recording a task and
// starting its execution, the next controller starts it under the
// recorded id while the window accepts starts, and not past its cutoff.
func TestRecordedTaskStartsOnce(t *testing.T) {
	for _, pastCutoff := range []bool{false, true} {
		t.Run(map[bool]string{false: "before the cutoff", true: "past the cutoff"}[pastCutoff], func(t *testing.T) {
			t0 := time.Date(2024, 5, 2, 3, 0, 0, 0, time.UTC)
			clock := &fakeClock{t: t0.Add(10 * time.Minute)}
			w := testWindow(task("patch", "3", "0"))
			w.Cutoff = config.Duration(30 * time.Minute)
			d := newDurable(t, w, clock.Now, func(context.Context, *execution) string { return StatusSuccess })
			d.sched.Close()
			exec := newExecutionID()
			rec := &runRecord{ID: newRunID(), Window: "patch", Trigger: TriggerManual, Started: t0, Documents: []string{"patch"},
				Win:     Window{Start: t0, Cutoff: t0.Add(30 * time.Minute), End: t0.Add(time.Hour)},
				Targets: targets("web", 1), Tasks: []taskRecord{{Task: 0, Target: "i-01", Execution: exec}}}
			body, _ := json.Marshal(state{Runs: map[string]*runRecord{"patch": rec}})
			if err := d.st.Set(context.Background(), RecordsKey, string(body)); err != nil {
				t.Fatal(err)
			}
			if pastCutoff {
				clock.Advance(25 * time.Minute)
			}
			d.restart()
			end := d.waitEnd()
			all := d.x.all()
			if pastCutoff {
				if len(all) != 0 || end.NotRun != 1 || end.Outcome != OutcomeTimedOut {
					t.Fatalf("%d executions, end %+v; want none started and the task not run", len(all), end)
				}
				return
			}
			if len(all) != 1 || all[0].id != exec || end.Succeeded != 1 || end.Outcome != OutcomeSuccess {
				t.Fatalf("executions %v, end %+v; want %s started once", all, end, exec)
			}
		})
	}
}

// TestScheduledActionBegunIsCompletedOnce: an action recorded as begun,
// not known applied, is applied by the next controller when still on
// time, once; too late, it is journaled as unknown and not applied.
func TestScheduledActionBegunIsCompletedOnce(t *testing.T) {
	at := time.Date(2025, 1, 2, 8, 0, 0, 0, time.UTC)
	for _, late := range []time.Duration{10 * time.Second, 5 * time.Minute} {
		t.Run(late.String(), func(t *testing.T) {
			st, err := store.Open(filepath.Join(t.TempDir(), "state"))
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			body, _ := json.Marshal(state{Actions: map[string]actionRecord{"morning": {Time: at}}})
			st.Set(context.Background(), RecordsKey, string(body))
			var mu sync.Mutex
			calls := 0
			cfg := testConfig(t, []string{"web"}, nil, []config.ScheduledAction{{Name: "morning", Group: "web", Schedule: "0 8 * * *", Desired: new(3)}})
			s, err := New(cfg, Deps{
				Scale: func(context.Context, string, *int, *int, *int) error {
					mu.Lock()
					defer mu.Unlock()
					calls++
					return nil
				},
				Records: st,
				Now:     offsetClock(at.Add(late)),
				Logger:  slog.New(slog.DiscardHandler),
			})
			if err != nil {
				t.Fatal(err)
			}
			s.Run()
			var evs []store.Event
			waitFor(t, "the action's event", func() bool {
				all, _ := st.Events(context.Background(), store.EventFilter{})
				evs = evs[:0]
				for _, ev := range all {
					if ev.Type == event.KindScheduledAction {
						evs = append(evs, ev)
					}
				}
				return len(evs) > 0
			})
			s.Close()
			mu.Lock()
			defer mu.Unlock()
			d := evs[0].Data.(event.ScheduledAction)
			onTime := late <= lateAction
			if len(evs) != 1 || !d.Time.Equal(at) || (calls == 1) != onTime || (d.Error == "") != onTime || calls > 1 {
				t.Fatalf("%d Scale call(s), events %+v", calls, evs)
			}
		})
	}
}
