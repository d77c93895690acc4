package maintenance

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/autoheal/autoheal/internal/config"
	"github.com/autoheal/autoheal/internal/crashpoint"
	"github.com/autoheal/autoheal/internal/event"
	"github.com/autoheal/autoheal/internal/store"
)

// Runner runs documents. The runbook executor implements it.
type Runner interface {
	// StartAs runs a document with string parameters under an execution
	// id the scheduler chose and recorded first; an id that already has
	// an execution starts nothing. origin says who asked (see Origin).
	StartAs(ctx context.Context, id, document string, params map[string]string, origin string) error
	// Exists reports whether an execution has the id.
	Exists(ctx context.Context, id string) (bool, error)
	// Wait blocks until the execution ends and returns its final status:
	// "Success", "Failed", "Cancelled" or "TimedOut".
	Wait(ctx context.Context, id string) (string, error)
	// Cancel asks a running execution to stop.
	Cancel(ctx context.Context, id string) error
}

// Execution statuses a Runner's Wait returns.
const (
	StatusSuccess   = "Success"
	StatusFailed    = "Failed"
	StatusCancelled = "Cancelled"
	StatusTimedOut  = "TimedOut"
	// StatusInterrupted is journaled, never returned by a Runner: the
	// controller stopped while the execution ran, and the window stopped
	// following it.
	StatusInterrupted = "Interrupted"
)

// Outcomes of a window run.
const (
	// OutcomeSuccess: every task ran on every target and succeeded (or the
	// window had no target).
	OutcomeSuccess = "Success"
	// OutcomeFailed: a task failed on at least one target.
	OutcomeFailed = "Failed"
	// OutcomeTimedOut: none failed, but the cutoff or the end of the
	// window left targets without a task, or cancelled a running one.
	OutcomeTimedOut = "TimedOut"
	// OutcomeInterrupted: the controller stopped during the run.
	OutcomeInterrupted = "Interrupted"
)

// Triggers of a window run.
const (
	TriggerSchedule = "schedule"
	TriggerManual   = "manual"
)

// Errors. The API maps them to status codes.
var (
	// ErrNotFound: no window has that name.
	ErrNotFound = errors.New("not found")
	// ErrRunning: the window is already running.
	ErrRunning = errors.New("already running")
	// ErrClosed: the scheduler is stopping.
	ErrClosed = errors.New("scheduler closed")
)

// Deps are what the scheduler acts through.
type Deps struct {
	// Runner runs documents. Required when the config has windows.
	Runner Runner
	// Targets returns every live instance, with its group's tags.
	Targets func() []Target
	// Scale sets a group's capacity; nil arguments are left unchanged.
	// Required when the config has scheduled actions.
	Scale func(ctx context.Context, group string, min, max, desired *int) error
	// Journal appends an event to the durable journal. Default: none.
	Journal func(ctx context.Context, ev store.Event) error
	// Records keeps the runs in progress and the last scheduled times
	// durably (the store), with their events: a restarted controller
	// takes them up. Default: kept in memory, events to Journal, and a
	// run the controller stops in the middle of ends Interrupted.
	Records Records
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger. Default slog.Default().
	Logger *slog.Logger
}

// Timing bounds.
const (
	// maxSleep bounds one sleep, so that a wall clock that jumps (the host
	// slept, NTP stepped it) is noticed within this long: timers run on the
	// monotonic clock, schedules on the wall clock.
	maxSleep = time.Minute
	// lateAction is how late a scheduled action may still run: past it
	// the host was asleep or the controller stalled, and a missed action
	// is not replayed.
	lateAction = time.Minute
	// callTimeout bounds Runner.Start, Scale and journal writes.
	callTimeout = 30 * time.Second
	// cancelGrace is how long a cancelled execution is given to report
	// its final status.
	cancelGrace = time.Minute
)

// Scheduler runs the maintenance windows and scheduled actions of a
// config. Its goroutines start with Run and stop with Close.
type Scheduler struct {
	deps    Deps
	log     *slog.Logger
	windows []*windowState // in file order
	byName  map[string]*windowState
	actions []*actionState

	// ctx ends with Close; every goroutine watches it.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// records keeps state; durable when it is the caller's.
	records Records
	durable bool
	// wmu orders the writes of state.
	wmu sync.Mutex

	// mu guards the fields below and the state of every run. It is held
	// only for short reads and updates, never across a call out.
	mu      sync.Mutex
	started bool
	closed  bool
	// busy counts the executions running on each instance.
	busy map[string]int
	// state is what is recorded (records.go).
	state state
}

type windowState struct {
	cfg   config.MaintenanceWindow
	sched schedule
	// running is the run in progress; last the one before. Guarded by
	// Scheduler.mu.
	running *run
	last    *RunStatus
}

type actionState struct {
	cfg   config.ScheduledAction
	sched schedule
	// added: put at run time (added.go); stop ends its loop when it is
	// replaced (nil for the config's).
	added bool
	stop  chan struct{}
}

// New builds a scheduler for cfg's windows and actions. cfg must be
// validated; an error means it was not, or a dependency is missing.
func New(cfg *config.Config, deps Deps) (*Scheduler, error) {
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.Logger == nil {
		deps.Logger = slog.Default()
	}
	if deps.Targets == nil {
		deps.Targets = func() []Target { return nil }
	}
	if deps.Journal == nil {
		deps.Journal = func(context.Context, store.Event) error { return nil }
	}
	if len(cfg.MaintenanceWindows) > 0 && deps.Runner == nil {
		return nil, errors.New("maintenance: windows need a Runner")
	}
	if len(cfg.ScheduledActions) > 0 && deps.Scale == nil {
		return nil, errors.New("maintenance: scheduled actions need Scale")
	}
	s := &Scheduler{deps: deps, log: deps.Logger, byName: map[string]*windowState{}, busy: map[string]int{},
		records: deps.Records, durable: deps.Records != nil,
		state: state{Runs: map[string]*runRecord{}, Windows: map[string]time.Time{}, Actions: map[string]actionRecord{}}}
	if s.records == nil {
		s.records = &memRecords{journal: deps.Journal, m: map[string]string{}}
	}
	for _, w := range cfg.MaintenanceWindows {
		sc, err := parseSchedule(w.Schedule, w.TimeZone)
		if err != nil {
			return nil, fmt.Errorf("maintenance window %s: %w", w.Name, err)
		}
		if _, dup := s.byName[w.Name]; dup {
			return nil, fmt.Errorf("maintenance window %s: duplicate name", w.Name)
		}
		ws := &windowState{cfg: w, sched: sc}
		s.windows = append(s.windows, ws)
		s.byName[w.Name] = ws
	}
	for _, a := range cfg.ScheduledActions {
		sc, err := parseSchedule(a.Schedule, a.TimeZone)
		if err != nil {
			return nil, fmt.Errorf("scheduled action %s: %w", a.Name, err)
		}
		s.actions = append(s.actions, &actionState{cfg: a, sched: sc})
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// Run takes up the runs an earlier controller recorded (resumeRun) and
// starts following the schedules. Starts that passed before Run are not
// run, even when their window is still open, except a scheduled action
// begun but not known applied within a minute (actionStart). It returns
// at once; a second call does nothing.
func (s *Scheduler) Run() {
	s.mu.Lock()
	if s.started || s.closed {
		s.mu.Unlock()
		return
	}
	s.started = true
	s.mu.Unlock()
	if err := s.load(s.ctx); err != nil {
		s.log.Error("maintenance runs cannot be taken up", "err", err)
	}
	s.resumeRuns()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.loadAdded()
	for _, ws := range s.windows {
		s.wg.Add(1)
		go s.windowLoop(ws, s.state.Windows[ws.cfg.Name])
	}
	for _, as := range s.actions {
		s.wg.Add(1)
		go s.actionLoop(as, s.state.Actions[as.cfg.Name])
	}
}

// resumeRuns takes up each recorded run, or ends it when its window is
// gone from the config.
func (s *Scheduler) resumeRuns() {
	now := s.deps.Now()
	s.mu.Lock()
	recs := make([]*runRecord, 0, len(s.state.Runs))
	for _, rec := range s.state.Runs {
		recs = append(recs, rec)
	}
	s.mu.Unlock()
	slices.SortFunc(recs, func(a, b *runRecord) int { return strings.Compare(a.Window, b.Window) })
	for _, rec := range recs {
		ws := s.byName[rec.Window]
		var docs []string
		if ws != nil {
			docs = documents(ws.cfg)
		}
		verdict := resumeRun(*rec, docs, now)
		running := 0
		for _, t := range rec.Tasks {
			if t.Status == "" {
				running++
			}
		}
		if verdict == resumeDrop {
			final := RunStatus{ID: rec.ID, Outcome: OutcomeInterrupted,
				Reason: "its window is no longer in the config, or its tasks changed; executions still running are left to the runbook executor"}
			rec.counts(&final)
			final.NotRun = max(0, len(rec.Targets)*len(rec.Documents)-final.Succeeded-final.Failed-final.Cancelled-running)
			s.ended(rec.Window, rec, final, len(rec.Targets), len(rec.Documents))
			continue
		}
		action := map[resumeVerdict]string{resumeGoOn: "continue", resumeEnd: "end"}[verdict]
		s.save(func(*state) {}, store.Event{Type: event.KindWindowResume,
			Message: fmt.Sprintf("maintenance window %s run %s taken up after a controller restart (%s): %d task(s) recorded, %d of them running; the window ends at %s",
				rec.Window, rec.ID, action, len(rec.Tasks), running, rec.Win.End.Format(time.RFC3339)),
			Data: event.WindowResume{Window: rec.Window, RunID: rec.ID, Action: action, Tasks: len(rec.Tasks), Running: running, End: rec.Win.End}})
		s.mu.Lock()
		s.resume(ws, rec, now)
		s.mu.Unlock()
	}
}

// Close stops the schedules and every run, and waits for them. Executions
// that are still running are not cancelled: they belong to the runbook
// executor, which stops or resumes them; their runs stay recorded for the
// next controller to take up (without Records they end Interrupted).
func (s *Scheduler) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
}

// Busy reports whether a window is running a task on the instance now, so
// that alarm-driven replacement can wait for it.
func (s *Scheduler) Busy(instanceID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.busy[instanceID] > 0
}

// RunNow starts a run of the named window at once, whatever its schedule:
// it lasts the window's duration from now, with its cutoff. It fails with
// ErrNotFound, ErrRunning or ErrClosed. ctx only bounds the call: the run
// belongs to the scheduler.
func (s *Scheduler) RunNow(ctx context.Context, name string) (runID string, err error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	ws, ok := s.byName[name]
	if !ok {
		return "", fmt.Errorf("maintenance window %q: %w", name, ErrNotFound)
	}
	now := s.deps.Now()
	return s.start(ws, occurrence(ws.cfg, now.In(ws.sched.loc)), TriggerManual)
}

// Next returns the next n occurrences of the named window (1 to 100).
func (s *Scheduler) Next(name string, n int) ([]Window, error) {
	ws, ok := s.byName[name]
	if !ok {
		return nil, fmt.Errorf("maintenance window %q: %w", name, ErrNotFound)
	}
	return NextWindows(ws.cfg, s.deps.Now(), min(max(n, 1), 100)), nil
}

// WindowStatus describes a window for listings.
type WindowStatus struct {
	Name     string `json:"name"`
	Schedule string `json:"schedule"`
	TimeZone string `json:"time_zone"`
	Duration string `json:"duration"`
	Cutoff   string `json:"cutoff"`
	Tasks    int    `json:"tasks"`
	// Next is the next scheduled occurrence; nil if there is none.
	Next *Window `json:"next,omitempty"`
	// Running is the run in progress, if any.
	Running *RunStatus `json:"running,omitempty"`
	// Last is the last finished run since the controller started.
	Last *RunStatus `json:"last,omitempty"`
}

// RunStatus describes one run of a window. Counts are of executions: a
// task on a target.
type RunStatus struct {
	ID      string    `json:"id"`
	Trigger string    `json:"trigger"`
	Started time.Time `json:"started"`
	Window  Window    `json:"window"`
	Targets int       `json:"targets"`
	// Task is the task being run, from 1 to Tasks.
	Task      int `json:"task"`
	Tasks     int `json:"tasks"`
	Succeeded int `json:"succeeded"`
	Failed    int `json:"failed"`
	Cancelled int `json:"cancelled"`
	Running   int `json:"running"`
	// NotRun counts the executions the run never started (error budget,
	// cutoff, end); set when the run ended.
	NotRun  int        `json:"not_run"`
	Ended   *time.Time `json:"ended,omitempty"`
	Outcome string     `json:"outcome,omitempty"`
	// Reason says why executions were left unstarted, if they were.
	Reason string `json:"reason,omitempty"`
}

// Windows describes every window, in file order.
func (s *Scheduler) Windows() []WindowStatus {
	now := s.deps.Now()
	out := make([]WindowStatus, 0, len(s.windows))
	for _, ws := range s.windows {
		st := WindowStatus{
			Name: ws.cfg.Name, Schedule: ws.cfg.Schedule, TimeZone: ws.cfg.TimeZone,
			Duration: ws.cfg.Duration.String(), Cutoff: ws.cfg.Cutoff.String(), Tasks: len(ws.cfg.Tasks),
		}
		if next := NextWindows(ws.cfg, now, 1); len(next) == 1 {
			st.Next = &next[0]
		}
		s.mu.Lock()
		if ws.running != nil {
			r := ws.running.status
			st.Running = &r
		}
		if ws.last != nil {
			l := *ws.last
			st.Last = &l
		}
		s.mu.Unlock()
		out = append(out, st)
	}
	return out
}

// Origin is the origin a window run gives the Runner for its executions.
func Origin(window, runID string) string { return "maintenance-window/" + window + "/" + runID }

// windowLoop starts the window at each scheduled start after last (the
// last one begun, recorded) until Close.
func (s *Scheduler) windowLoop(ws *windowState, last time.Time) {
	defer s.wg.Done()
	defer s.recoverPanic("maintenance window " + ws.cfg.Name)
	after := maxTime(s.deps.Now(), last)
	for {
		next, err := ws.sched.next(after)
		if err != nil {
			s.log.Warn("maintenance window will not open again", "window", ws.cfg.Name, "err", err)
			return
		}
		win := occurrence(ws.cfg, next)
		if !s.sleepUntil(win.Start, nil) {
			return
		}
		now := s.deps.Now()
		if win.Accepts(now) {
			if _, err := s.start(ws, win, TriggerSchedule); errors.Is(err, ErrRunning) {
				s.skip(ws, win, "the previous run is still running")
			}
		} else if s.ctx.Err() == nil {
			s.skip(ws, win, fmt.Sprintf("its start came %s late, past the cutoff (was the host asleep?)", now.Sub(win.Start).Round(time.Second)))
		}
		// A late wake-up skips the starts it overslept, which the
		// controller was not there to run.
		after = maxTime(win.Start, now)
	}
}

func (s *Scheduler) skip(ws *windowState, win Window, why string) {
	// A skip: a scheduled start found the previous run still running, or
	// came too late (the host slept past the cutoff).
	s.journal(store.Event{Type: event.KindWindowSkip,
		Message: fmt.Sprintf("maintenance window %s: start at %s skipped: %s", ws.cfg.Name, win.Start.Format(time.RFC3339), why),
		Data:    event.WindowSkip{Window: ws.cfg.Name, Start: win.Start, Reason: why}})
}

// actionLoop applies a scheduled action at each scheduled time until
// Close. rec is the last time begun, recorded: one begun but not known
// applied is applied again if still on time (actionStart), and no time
// is applied twice.
func (s *Scheduler) actionLoop(as *actionState, rec actionRecord) {
	defer s.wg.Done()
	defer s.recoverPanic("scheduled action " + as.cfg.Name)
	reapply, after := actionStart(rec, s.deps.Now())
	switch {
	case reapply:
		s.apply(as, rec.Time)
	case !rec.Time.IsZero() && !rec.Done:
		s.unknown(as, rec.Time)
	}
	for {
		next, err := as.sched.next(after)
		if err != nil {
			s.log.Warn("scheduled action will not run again", "action", as.cfg.Name, "err", err)
			return
		}
		if !s.sleepUntil(next, as.stop) {
			return
		}
		now := s.deps.Now()
		if late := now.Sub(next); late <= lateAction {
			s.apply(as, next)
		} else {
			s.log.Warn("scheduled action missed", "action", as.cfg.Name, "at", next, "late", late)
		}
		after = maxTime(next, now)
	}
}

// apply records the scheduled time, sets the group's capacity, and
// records and journals the result.
func (s *Scheduler) apply(as *actionState, at time.Time) {
	a := as.cfg
	if err := s.save(func(st *state) { st.Actions[a.Name] = actionRecord{Time: at} }); err != nil {
		s.log.Warn("scheduled action not applied: it could not be recorded first", "action", a.Name, "err", err)
		return
	}
	crashpoint.Hit("maintenance.action.recorded")
	ctx, cancel := context.WithTimeout(s.ctx, callTimeout)
	defer cancel()
	err := s.deps.Scale(ctx, a.Group, a.Min, a.Max, a.Desired)
	crashpoint.Hit("maintenance.action.applied")
	caps := capacities(a)
	data := event.ScheduledAction{Action: a.Name, Schedule: a.Schedule, Time: at, Min: a.Min, Max: a.Max, Desired: a.Desired}
	msg := fmt.Sprintf("scheduled action %s set %s of group %s", a.Name, caps, a.Group)
	if err != nil {
		msg = fmt.Sprintf("scheduled action %s could not set %s of group %s: %v", a.Name, caps, a.Group, err)
		data.Error = err.Error()
		s.log.Warn("scheduled action failed", "action", a.Name, "group", a.Group, "err", err)
	}
	s.save(func(st *state) { st.Actions[a.Name] = actionRecord{Time: at, Done: true} },
		store.Event{Type: event.KindScheduledAction, Group: a.Group, Message: msg, Data: data})
}

// unknown journals a scheduled time begun by an earlier controller that
// stopped before its result was recorded, too long ago to apply it again.
func (s *Scheduler) unknown(as *actionState, at time.Time) {
	a := as.cfg
	why := "the controller stopped while applying it; too late to apply it again, it may or may not have been applied"
	s.save(func(st *state) { st.Actions[a.Name] = actionRecord{Time: at, Done: true} },
		store.Event{Type: event.KindScheduledAction, Group: a.Group,
			Message: fmt.Sprintf("scheduled action %s of %s: %s", a.Name, at.Format(time.RFC3339), why),
			Data:    event.ScheduledAction{Action: a.Name, Schedule: a.Schedule, Time: at, Min: a.Min, Max: a.Max, Desired: a.Desired, Error: why}})
}

func capacities(a config.ScheduledAction) string {
	var parts []byte
	for _, c := range []struct {
		k string
		v *int
	}{{"min", a.Min}, {"max", a.Max}, {"desired", a.Desired}} {
		if c.v != nil {
			if len(parts) > 0 {
				parts = append(parts, ' ')
			}
			parts = fmt.Appendf(parts, "%s %d", c.k, *c.v)
		}
	}
	return string(parts)
}

// sleepUntil waits until the clock reads t or later; false when Close
// or stop (nil: never) came first.
func (s *Scheduler) sleepUntil(t time.Time, stop <-chan struct{}) bool {
	for {
		d := t.Sub(s.deps.Now())
		if d <= 0 {
			select {
			case <-stop:
				return false
			default:
			}
			return s.ctx.Err() == nil
		}
		timer := time.NewTimer(min(d, maxSleep))
		select {
		case <-s.ctx.Done():
			timer.Stop()
			return false
		case <-stop:
			timer.Stop()
			return false
		case <-timer.C:
		}
	}
}

// journal appends an event, stamped with the scheduler's clock. A failed
// write is logged: the run goes on. It uses its own deadline so that the
// events of runs that end at Close are still written.
func (s *Scheduler) journal(ev store.Event) {
	if ev.Time.IsZero() {
		ev.Time = s.deps.Now()
	}
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	if err := s.deps.Journal(ctx, ev); err != nil {
		s.log.Warn("journal maintenance event", "type", ev.Type, "err", err)
	}
}

func (s *Scheduler) recoverPanic(what string) {
	if p := recover(); p != nil {
		s.log.Error("panic in "+what, "panic", p, "stack", string(debug.Stack()))
	}
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// newRunID returns a window run id: "mw-" and 16 hex digits.
func newRunID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return "mw-" + hex.EncodeToString(b)
}

// orderedTasks returns the tasks by priority, equal ones in file order,
// with their index in the file.
func orderedTasks(tasks []config.WindowTask) []int {
	idx := make([]int, len(tasks))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return tasks[a].PriorityValue() - tasks[b].PriorityValue() })
	return idx
}
