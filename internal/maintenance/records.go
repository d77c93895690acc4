package maintenance

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/autoheal/autoheal/internal/config"
	"github.com/autoheal/autoheal/internal/store"
)

// What is recorded when, so that a controller killed at any point neither
// repeats nor loses a window's task or a scheduled action:
//
//   - a run, with its targets and its window's times, before its first
//     task (with the window.start event);
//   - a task on a target, with the id its execution will have, before the
//     execution starts (with the task.start event); the runbook engine
//     starts an id at most once;
//   - a task's end (with the task.end event), and the run's end (it is
//     then dropped, with the window.end event);
//   - a scheduled action's time before Scale is called, and that it was
//     applied after (with the schedule.action event).
//
// A restarted controller resumes each run it finds (resumeRun): inside
// its window the tasks that started are waited for, not started again,
// and the others start as before; past its end it ends with the outcome
// its tasks had. A controller that stops in order leaves its runs to the
// next one the same way.

// RecordsKey is where the scheduler keeps its state in Records.
const RecordsKey = "maintenance/state"

// Records keeps the scheduler's state durably: the store's kv, whose Set
// journals its events in the same write.
type Records interface {
	// Get returns the value under key, or an error wrapping
	// store.ErrNotFound.
	Get(ctx context.Context, key string) (string, error)
	// Set stores value under key and appends evs, in one write.
	Set(ctx context.Context, key, value string, evs ...store.Event) error
}

// state is everything the scheduler records, as one document.
type state struct {
	// Runs are the runs in progress, by window.
	Runs map[string]*runRecord `json:"runs,omitempty"`
	// Windows is the start of each window's last scheduled run: a
	// restarted controller (or a clock set back) never starts the same
	// occurrence twice.
	Windows map[string]time.Time `json:"windows,omitempty"`
	// Actions is each scheduled action's last scheduled time begun.
	Actions map[string]actionRecord `json:"actions,omitempty"`
	// Added are the scheduled actions added at run time (added.go).
	Added map[string]config.ScheduledAction `json:"added,omitempty"`
}

// runRecord is a run in progress.
type runRecord struct {
	ID      string    `json:"id"`
	Window  string    `json:"window"`
	Trigger string    `json:"trigger"`
	Win     Window    `json:"occurrence"`
	Started time.Time `json:"started"`
	// Documents are the window's task documents when the run began: a
	// run whose window changed since is not resumed.
	Documents []string `json:"documents"`
	Targets   []Target `json:"targets"`
	// Tasks are the tasks started, in the order they were.
	Tasks []taskRecord `json:"tasks,omitempty"`
}

// taskRecord is a task on a target, recorded before its execution starts.
type taskRecord struct {
	// Task is the task's index in the window's tasks.
	Task      int    `json:"task"`
	Target    string `json:"target"`
	Execution string `json:"execution"`
	// Status is "" while it runs, then how it ended.
	Status string `json:"status,omitempty"`
	Error  string `json:"error,omitempty"`
}

// actionRecord is the last scheduled time of an action that was begun.
type actionRecord struct {
	Time time.Time `json:"time"`
	// Done: applied (or failed), and journaled.
	Done bool `json:"done"`
}

// StatusNotStarted is journaled for a task recorded as starting whose
// execution had not started when the controller stopped, and that was
// past the cutoff when the next controller found it: it never ran.
const StatusNotStarted = "NotStarted"

// task returns the record of task ti on target, if it started.
func (r *runRecord) task(ti int, target string) (taskRecord, bool) {
	for _, t := range r.Tasks {
		if t.Task == ti && t.Target == target {
			return t, true
		}
	}
	return taskRecord{}, false
}

// setTask replaces the record of task ti on target, or adds it.
func (r *runRecord) setTask(t taskRecord) {
	for i := range r.Tasks {
		if r.Tasks[i].Task == t.Task && r.Tasks[i].Target == t.Target {
			r.Tasks[i] = t
			return
		}
	}
	r.Tasks = append(r.Tasks, t)
}

// counts tallies the recorded ends into st.
func (r *runRecord) counts(st *RunStatus) {
	st.Succeeded, st.Failed, st.Cancelled = 0, 0, 0
	for _, t := range r.Tasks {
		countEnd(st, t.Status)
	}
}

// countEnd counts a task's end into st; "" (running) and NotStarted
// count as not run.
func countEnd(st *RunStatus, status string) {
	switch status {
	case "", StatusNotStarted:
	case StatusSuccess:
		st.Succeeded++
	case StatusCancelled, StatusInterrupted:
		st.Cancelled++
	default:
		st.Failed++
	}
}

// resumeVerdict is what a restarted controller does with a run it finds.
type resumeVerdict int

const (
	// resumeGoOn: the window is still open; the run goes on: tasks that
	// started are waited for, the others start if the window accepts.
	resumeGoOn resumeVerdict = iota
	// resumeEnd: the window closed meanwhile; the run ends with the
	// outcome its tasks had (a task still running is cancelled).
	resumeEnd
	// resumeDrop: its window is gone from the config or its tasks
	// changed; the run ends Interrupted, its executions left to the
	// runbook engine.
	resumeDrop
)

// resumeRun decides what a restarted controller does with rec, given the
// window's documents now (nil if the window is gone) and the time.
func resumeRun(rec runRecord, documents []string, now time.Time) resumeVerdict {
	switch {
	case documents == nil || !slices.Equal(documents, rec.Documents):
		return resumeDrop
	case now.Before(rec.Win.End):
		return resumeGoOn
	}
	return resumeEnd
}

// taskVerdict is what a resumed run does with a task recorded as started
// whose end is not recorded.
type taskVerdict int

const (
	// taskWait: its execution exists; wait for it (the runbook engine
	// resumed it).
	taskWait taskVerdict = iota
	// taskStart: its execution never started and the window accepts
	// starts: start it, under its recorded id.
	taskStart
	// taskNotStarted: its execution never started and the cutoff has
	// passed: it does not start.
	taskNotStarted
)

// resumeTask decides a recorded, unfinished task: exists says whether its
// execution exists.
func resumeTask(win Window, exists bool, now time.Time) taskVerdict {
	switch {
	case exists:
		return taskWait
	case win.Accepts(now):
		return taskStart
	}
	return taskNotStarted
}

// actionStart decides, for a scheduled action whose last time begun is
// rec, whether a restarted controller applies that time again, and after
// which time it looks for the next one. A time begun but not known applied
// (the controller stopped between recording it and journaling its result)
// is applied again while it is no later than a late wake-up may be: it
// sets absolute values, so once more is harmless. No time up to rec's is
// ever looked for again, so none is applied twice, even with the clock
// set back.
func actionStart(rec actionRecord, now time.Time) (reapply bool, after time.Time) {
	if rec.Time.IsZero() {
		return false, now
	}
	return !rec.Done && now.Sub(rec.Time) <= lateAction, maxTime(now, rec.Time)
}

// memRecords keeps the state in memory when the scheduler has no
// Records: nothing survives the process, and events go to the journal.
type memRecords struct {
	journal func(ctx context.Context, ev store.Event) error
	mu      sync.Mutex
	m       map[string]string
}

func (m *memRecords) Get(_ context.Context, key string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.m[key]
	if !ok {
		return "", fmt.Errorf("key %s: %w", key, store.ErrNotFound)
	}
	return v, nil
}

func (m *memRecords) Set(ctx context.Context, key, value string, evs ...store.Event) error {
	m.mu.Lock()
	m.m[key] = value
	m.mu.Unlock()
	for _, ev := range evs {
		if err := m.journal(ctx, ev); err != nil {
			return err
		}
	}
	return nil
}

// load reads the recorded state; none recorded is an empty one.
func (s *Scheduler) load(ctx context.Context) error {
	v, err := s.records.Get(ctx, RecordsKey)
	st := state{}
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return fmt.Errorf("maintenance: read %s: %w", RecordsKey, err)
	default:
		if err := json.Unmarshal([]byte(v), &st); err != nil {
			return fmt.Errorf("maintenance: read %s: %w", RecordsKey, err)
		}
	}
	if st.Runs == nil {
		st.Runs = map[string]*runRecord{}
	}
	if st.Windows == nil {
		st.Windows = map[string]time.Time{}
	}
	if st.Actions == nil {
		st.Actions = map[string]actionRecord{}
	}
	s.mu.Lock()
	s.state = st
	s.mu.Unlock()
	return nil
}

// save applies f to the state and records it with evs in one write.
// Writes are made one at a time, each of the state after its own change.
// Events are stamped with the scheduler's clock.
func (s *Scheduler) save(f func(st *state), evs ...store.Event) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.Lock()
	f(&s.state)
	body, err := json.Marshal(s.state)
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("maintenance: record: %w", err)
	}
	for i := range evs {
		if evs[i].Time.IsZero() {
			evs[i].Time = s.deps.Now()
		}
	}
	// Its own deadline: the end of a run at Close is still written.
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	if err := s.records.Set(ctx, RecordsKey, string(body), evs...); err != nil {
		s.log.Warn("record maintenance state", "err", err)
		return fmt.Errorf("maintenance: record: %w", err)
	}
	return nil
}

// newExecutionID is an id for a task's execution, chosen before it starts
// so that it is recorded first. Its form is the runbook engine's
// (runbook.NewExecutionID), which StartAs requires.
func newExecutionID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return "exec-" + hex.EncodeToString(b)
}
