package maintenance

import (
	"context"
	"fmt"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/autoheal/autoheal/internal/config"
	"github.com/autoheal/autoheal/internal/crashpoint"
	"github.com/autoheal/autoheal/internal/event"
	"github.com/autoheal/autoheal/internal/store"
)

// run is one run of a window. status is guarded by Scheduler.mu; the
// other fields never change once it runs, except rec, set by begin and
// guarded by Scheduler.mu (its Targets never change).
type run struct {
	ws      *windowState
	id      string
	trigger string
	win     Window
	status  RunStatus
	rec     *runRecord
	// resumed is when a restarted controller took the run up; zero for a
	// run this controller began.
	resumed time.Time
}

// start begins a run of ws over win, unless one is running.
func (s *Scheduler) start(ws *windowState, win Window, trigger string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return "", ErrClosed
	}
	if ws.running != nil {
		return "", fmt.Errorf("maintenance window %s: %w (run %s)", ws.cfg.Name, ErrRunning, ws.running.status.ID)
	}
	id := newRunID()
	r := &run{ws: ws, id: id, trigger: trigger, win: win, status: RunStatus{
		ID: id, Trigger: trigger, Started: s.deps.Now().In(ws.sched.loc), Window: win,
		Tasks: len(ws.cfg.Tasks),
	}}
	ws.running = r
	// Added under mu while not closed, so never after Close's Wait began.
	s.wg.Add(1)
	go s.execute(r)
	return id, nil
}

// resume takes up a run an earlier controller recorded. Called with s.mu
// held.
func (s *Scheduler) resume(ws *windowState, rec *runRecord, now time.Time) {
	if s.closed {
		return
	}
	r := &run{ws: ws, id: rec.ID, trigger: rec.Trigger, win: rec.Win, rec: rec, resumed: now, status: RunStatus{
		ID: rec.ID, Trigger: rec.Trigger, Started: rec.Started.In(ws.sched.loc), Window: rec.Win,
		Targets: len(rec.Targets), Tasks: len(ws.cfg.Tasks),
	}}
	rec.counts(&r.status)
	ws.running = r
	s.wg.Add(1)
	go s.execute(r)
}

// update changes the run's status under the scheduler's lock.
func (s *Scheduler) update(r *run, f func(st *RunStatus)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(&r.status)
}

// execute runs every task of the window on its targets, then records the
// outcome. It is the run's only goroutine besides its executions, which it
// waits for.
func (s *Scheduler) execute(r *run) {
	defer s.wg.Done()
	ws := r.ws
	name := ws.cfg.Name
	// The window's end, on the scheduler's clock; Close ends it sooner.
	end, cancel := context.WithTimeout(s.ctx, r.win.End.Sub(s.deps.Now()))
	defer cancel()

	var reason string
	var targets []Target
	func() {
		defer func() {
			// A panic ends the run, not the controller; the window can run
			// again.
			if p := recover(); p != nil {
				s.recoverPanicValue("maintenance window "+name, p)
				reason = fmt.Sprintf("internal error: %v", p)
			}
		}()
		if r.rec == nil {
			targets = SelectTargets(ws.cfg, s.deps.Targets())
			if err := s.begin(r, targets); err != nil {
				reason = err.Error()
				return
			}
		} else {
			targets = r.rec.Targets
		}
		s.update(r, func(st *RunStatus) { st.Targets = len(targets) })
		for n, ti := range orderedTasks(ws.cfg.Tasks) {
			s.update(r, func(st *RunStatus) { st.Task = n + 1 })
			if reason = s.runTask(end, r, ti, targets); reason != "" {
				break
			}
		}
	}()
	if reason != "" && !r.resumed.IsZero() && !r.win.End.After(r.resumed) {
		reason = "the window ended while the controller was down"
	}
	s.finish(r, len(targets), reason)
}

// begin records the run, with its targets, before its first task.
func (s *Scheduler) begin(r *run, targets []Target) error {
	ws, win := r.ws, r.win
	name := ws.cfg.Name
	ids := make([]string, len(targets))
	for i, t := range targets {
		ids[i] = t.ID
	}
	rec := &runRecord{ID: r.id, Window: name, Trigger: r.trigger, Win: win, Started: r.status.Started,
		Documents: documents(ws.cfg), Targets: targets}
	err := s.save(func(st *state) {
		st.Runs[name] = rec
		if r.trigger == TriggerSchedule {
			st.Windows[name] = win.Start
		}
		r.rec = rec
	}, store.Event{Type: event.KindWindowStart,
		Message: fmt.Sprintf("maintenance window %s run %s started (%s): %d target(s), %d task(s), cutoff %s, end %s",
			name, r.id, r.trigger, len(targets), len(ws.cfg.Tasks), win.Cutoff.Format(time.RFC3339), win.End.Format(time.RFC3339)),
		Data: event.WindowStart{Window: name, RunID: r.id, Trigger: r.trigger, Targets: ids,
			Start: win.Start, Cutoff: win.Cutoff, End: win.End}})
	if err != nil {
		return fmt.Errorf("the run could not be recorded, so no task started: %w", err)
	}
	crashpoint.Hit("maintenance.run.recorded")
	return nil
}

// documents are a window's task documents, in file order.
func documents(mw config.MaintenanceWindow) []string {
	out := make([]string, len(mw.Tasks))
	for i, t := range mw.Tasks {
		out[i] = t.Document
	}
	return out
}

// runTask runs task ti on every target, at most max_concurrency at once,
// and returns why it stopped starting executions early ("" if it did not):
// the error budget was spent, the cutoff was reached, the window ended.
// Targets the task started on before a restart are taken up first and not
// started again.
func (s *Scheduler) runTask(end context.Context, r *run, ti int, targets []Target) (reason string) {
	task := r.ws.cfg.Tasks[ti]
	conc := Concurrency(task.MaxConcurrency, len(targets))
	budget := Limit(task.MaxErrors, len(targets))
	label := fmt.Sprintf("task %d (%s)", ti+1, task.Document)

	p := &pool{slots: make(chan struct{}, conc)}
	s.mu.Lock()
	var resumed []taskRecord
	for _, t := range r.rec.Tasks {
		if t.Task != ti {
			continue
		}
		if t.Status == "" {
			resumed = append(resumed, t)
		} else if failure(t.Status) {
			p.failed++ // failures before the restart spend the budget
		}
	}
	s.mu.Unlock()
	for _, tr := range resumed {
		// A slot each while there is one: they were within
		// max_concurrency when they started.
		held := false
		select {
		case p.slots <- struct{}{}:
			held = true
		default:
		}
		s.launch(end, r, ti, targetOf(targets, tr.Target), tr.Execution, held, p)
	}
	for _, t := range targets {
		s.mu.Lock()
		_, started := r.rec.task(ti, t.ID)
		s.mu.Unlock()
		if started {
			continue
		}
		// A slot frees when an execution ends, after its failure is
		// counted: the budget is checked with every earlier result in.
		select {
		case p.slots <- struct{}{}:
		case <-end.Done():
		}
		if end.Err() != nil {
			reason = s.endReason(label)
			break
		}
		if p.spent(budget) {
			reason = fmt.Sprintf("%s failed on more targets than max_errors %s allows", label, task.MaxErrors)
			<-p.slots
			break
		}
		if now := s.deps.Now(); !r.win.Accepts(now) {
			reason = fmt.Sprintf("%s: cutoff reached at %s", label, r.win.Cutoff.Format(time.RFC3339))
			<-p.slots
			break
		}
		s.launch(end, r, ti, t, "", true, p)
	}
	p.wg.Wait()
	if reason == "" && p.spent(budget) {
		// The last executions failed: no later task runs.
		reason = fmt.Sprintf("%s failed on more targets than max_errors %s allows", label, task.MaxErrors)
	}
	return reason
}

// pool is one task's executions: their slots, their failures and their
// goroutines.
type pool struct {
	slots  chan struct{}
	wg     sync.WaitGroup
	mu     sync.Mutex
	failed int
}

func (p *pool) spent(budget int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.failed > budget
}

func failure(status string) bool {
	switch status {
	case StatusSuccess, StatusCancelled, StatusInterrupted, StatusNotStarted, "":
		return false
	}
	return true
}

// targetOf is the target with id among targets (only its id when it is
// not: a record the config no longer matches).
func targetOf(targets []Target, id string) Target {
	for _, t := range targets {
		if t.ID == id {
			return t
		}
	}
	return Target{ID: id}
}

// launch runs task ti on t in its own goroutine; execID is the recorded
// execution of a task taken up after a restart ("" to start one). held
// says whether it holds a slot.
func (s *Scheduler) launch(end context.Context, r *run, ti int, t Target, execID string, held bool, p *pool) {
	p.wg.Add(1)
	s.update(r, func(st *RunStatus) { st.Running++ })
	s.setBusy(t.ID, 1)
	go func() {
		defer p.wg.Done()
		if held {
			defer func() { <-p.slots }()
		}
		defer s.setBusy(t.ID, -1)
		if failure(s.invoke(end, r, ti, t, execID)) {
			p.mu.Lock()
			p.failed++
			p.mu.Unlock()
		}
	}()
}

func (s *Scheduler) endReason(label string) string {
	if s.ctx.Err() != nil {
		return "the controller stopped"
	}
	return label + ": the window ended"
}

// outcome is how one task on one target went.
type outcome struct {
	status, errText string
	// left: the controller stops and the next one takes the task up: its
	// end is not recorded.
	left bool
}

// invoke runs task ti on target t (taking up its recorded execution
// execID after a restart) and returns how it ended. At the end of the
// window it cancels the execution; at Close it stops following it.
func (s *Scheduler) invoke(end context.Context, r *run, ti int, t Target, execID string) (status string) {
	var o outcome
	defer func() {
		s.update(r, func(st *RunStatus) {
			st.Running--
			if !o.left {
				countEnd(st, o.status)
			}
		})
		if !o.left {
			s.taskEnded(r, ti, t, execID, o)
		}
		status = o.status
	}()
	// Runs before the recording above: a panic in the Runner fails this
	// target, not the controller.
	defer func() {
		if p := recover(); p != nil {
			s.recoverPanicValue("maintenance window "+r.ws.cfg.Name+" on "+t.ID, p)
			o = outcome{status: StatusFailed, errText: fmt.Sprintf("internal error: %v", p)}
		}
	}()
	start := true
	if execID == "" {
		execID = newExecutionID()
		if err := s.taskBegins(r, ti, t, execID); err != nil {
			o = outcome{status: StatusFailed, errText: err.Error()}
			return
		}
	} else {
		exists, err := s.deps.Runner.Exists(end, execID)
		if err != nil {
			o = s.lost(end, err)
			return
		}
		switch resumeTask(r.win, exists, s.deps.Now()) {
		case taskWait:
			start = false
		case taskNotStarted:
			o = outcome{status: StatusNotStarted, errText: "its execution had not started when the controller stopped, and the cutoff has passed"}
			return
		}
	}
	if start {
		task := r.ws.cfg.Tasks[ti]
		startCtx, cancel := context.WithTimeout(end, callTimeout)
		err := s.deps.Runner.StartAs(startCtx, execID, task.Document, Params(task, t), Origin(r.ws.cfg.Name, r.id))
		cancel()
		if err != nil {
			o = s.lost(end, err)
			return
		}
		crashpoint.Hit("maintenance.task.started")
	}
	o = s.follow(end, execID)
	return
}

// taskBegins records task ti on t, with its execution's id, before the
// execution starts.
func (s *Scheduler) taskBegins(r *run, ti int, t Target, execID string) error {
	task := r.ws.cfg.Tasks[ti]
	name := r.ws.cfg.Name
	about := event.Task{Window: name, RunID: r.id, Task: ti + 1, Document: task.Document, Execution: execID}
	err := s.save(func(st *state) {
		r.rec.setTask(taskRecord{Task: ti, Target: t.ID, Execution: execID})
	}, store.Event{Type: event.KindTaskStart, Group: t.Group, Instance: t.ID,
		Message: fmt.Sprintf("maintenance window %s run %s: %s started on %s (execution %s)", name, r.id, task.Document, t.ID, execID),
		Data:    event.TaskStart{Task: about}})
	if err != nil {
		return fmt.Errorf("not started: %w", err)
	}
	crashpoint.Hit("maintenance.task.recorded")
	return nil
}

// lost is the outcome of a task whose execution could not be started or
// looked up: err's, or the window's end, or the controller's stop.
func (s *Scheduler) lost(end context.Context, err error) outcome {
	switch {
	case s.ctx.Err() != nil && s.durable:
		return outcome{left: true}
	case s.ctx.Err() != nil:
		return outcome{status: StatusInterrupted, errText: err.Error()}
	case end.Err() != nil:
		return outcome{status: StatusCancelled, errText: err.Error()}
	}
	return outcome{status: StatusFailed, errText: err.Error()}
}

// follow waits for an execution's end.
func (s *Scheduler) follow(end context.Context, execID string) outcome {
	status, err := s.deps.Runner.Wait(end, execID)
	switch {
	case err == nil:
		crashpoint.Hit("maintenance.task.ended")
		return outcome{status: status}
	case s.ctx.Err() != nil && s.durable:
		// The controller is stopping: the executor keeps or resumes the
		// execution, and the next controller takes the task up.
		return outcome{left: true}
	case s.ctx.Err() != nil:
		return outcome{status: StatusInterrupted, errText: "the controller stopped; the execution is left to the runbook executor"}
	case end.Err() != nil:
		var errText string
		status := s.cancelExecution(execID, &errText)
		return outcome{status: status, errText: errText}
	}
	return outcome{status: StatusFailed, errText: err.Error()}
}

// taskEnded records how task ti on t ended, with its task.end event.
func (s *Scheduler) taskEnded(r *run, ti int, t Target, execID string, o outcome) {
	task := r.ws.cfg.Tasks[ti]
	name := r.ws.cfg.Name
	msg := fmt.Sprintf("maintenance window %s run %s: %s on %s: %s", name, r.id, task.Document, t.ID, o.status)
	if execID != "" {
		msg += " (execution " + execID + ")"
	}
	if o.errText != "" {
		msg += ": " + o.errText
	}
	about := event.Task{Window: name, RunID: r.id, Task: ti + 1, Document: task.Document, Execution: execID}
	s.save(func(st *state) {
		if r.rec != nil {
			r.rec.setTask(taskRecord{Task: ti, Target: t.ID, Execution: execID, Status: o.status, Error: o.errText})
		}
	}, store.Event{Type: event.KindTaskEnd, Group: t.Group, Instance: t.ID, Message: msg,
		Data: event.TaskEnd{Task: about, Status: o.status, Error: o.errText}})
}

// cancelExecution cancels an execution at the end of its window and
// waits a little for its final status.
func (s *Scheduler) cancelExecution(id string, errText *string) string {
	ctx, cancel := context.WithTimeout(s.ctx, cancelGrace)
	defer cancel()
	if err := s.deps.Runner.Cancel(ctx, id); err != nil {
		s.log.Warn("cancel execution at the end of its maintenance window", "execution", id, "err", err)
	}
	status, err := s.deps.Runner.Wait(ctx, id)
	if err != nil {
		*errText = "the window ended; cancelled, final status unknown: " + err.Error()
		return StatusCancelled
	}
	*errText = "the window ended"
	return status
}

func (s *Scheduler) setBusy(id string, delta int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.busy[id] += delta; s.busy[id] <= 0 {
		delete(s.busy, id)
	}
}

// finish records the run's outcome and frees the window for its next run.
// A run the controller stops in the middle of is left recorded: the next
// controller takes it up (without Records it ends Interrupted).
func (s *Scheduler) finish(r *run, targets int, reason string) {
	ws := r.ws
	now := s.deps.Now().In(ws.sched.loc)
	s.mu.Lock()
	if s.ctx.Err() != nil && s.durable && r.rec != nil {
		ws.running = nil
		s.mu.Unlock()
		s.log.Info("maintenance window run left to the next controller", "window", ws.cfg.Name, "run", r.id)
		return
	}
	st := &r.status
	st.Ended = &now
	st.NotRun = max(0, targets*len(ws.cfg.Tasks)-st.Succeeded-st.Failed-st.Cancelled-st.Running)
	st.Reason = reason
	switch {
	case s.ctx.Err() != nil:
		st.Outcome = OutcomeInterrupted
	case st.Failed > 0 || strings.HasPrefix(reason, "internal error"):
		st.Outcome = OutcomeFailed
	case st.Cancelled > 0 || st.NotRun > 0:
		st.Outcome = OutcomeTimedOut
	default:
		st.Outcome = OutcomeSuccess
	}
	final := *st
	ws.running, ws.last = nil, &final
	s.mu.Unlock()
	s.ended(ws.cfg.Name, r.rec, final, targets, len(ws.cfg.Tasks))
}

// ended drops the record of a finished run and journals its end, in one
// write.
func (s *Scheduler) ended(window string, rec *runRecord, final RunStatus, targets, tasks int) {
	msg := fmt.Sprintf("maintenance window %s run %s ended: %s; %d target(s), %d task(s): %d succeeded, %d failed, %d cancelled, %d not run",
		window, final.ID, final.Outcome, targets, tasks, final.Succeeded, final.Failed, final.Cancelled, final.NotRun)
	if final.Reason != "" {
		msg += " (" + final.Reason + ")"
	}
	s.save(func(st *state) {
		if rec != nil && st.Runs[window] == rec {
			delete(st.Runs, window)
		}
	}, store.Event{Type: event.KindWindowEnd, Message: msg, Data: event.WindowEnd{
		Window: window, RunID: final.ID, Outcome: final.Outcome, Targets: targets,
		Succeeded: final.Succeeded, Failed: final.Failed, Cancelled: final.Cancelled, NotRun: final.NotRun,
		Reason: final.Reason,
	}})
}

func (s *Scheduler) recoverPanicValue(what string, p any) {
	s.log.Error("panic in "+what, "panic", p, "stack", string(debug.Stack()))
}
