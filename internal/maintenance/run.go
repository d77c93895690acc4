package maintenance

import (
	"context"
	"fmt"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/autoheal/autoheal/internal/event"
	"github.com/autoheal/autoheal/internal/store"
)

// run is one run of a window. status is guarded by Scheduler.mu; the
// other fields never change.
type run struct {
	ws      *windowState
	id      string
	trigger string
	win     Window
	status  RunStatus
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
	name, id, trigger := ws.cfg.Name, r.id, r.trigger
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
		targets = SelectTargets(ws.cfg, s.deps.Targets())
		ids := make([]string, len(targets))
		for i, t := range targets {
			ids[i] = t.ID
		}
		s.update(r, func(st *RunStatus) { st.Targets = len(targets) })
		win := r.win
		s.journal(store.Event{Type: event.KindWindowStart,
			Message: fmt.Sprintf("maintenance window %s run %s started (%s): %d target(s), %d task(s), cutoff %s, end %s",
				name, id, trigger, len(targets), len(ws.cfg.Tasks), win.Cutoff.Format(time.RFC3339), win.End.Format(time.RFC3339)),
			Data: event.WindowStart{Window: name, RunID: id, Trigger: trigger, Targets: ids,
				Start: win.Start, Cutoff: win.Cutoff, End: win.End}})
		for n, ti := range orderedTasks(ws.cfg.Tasks) {
			s.update(r, func(st *RunStatus) { st.Task = n + 1 })
			if reason = s.runTask(end, r, ti, targets); reason != "" {
				break
			}
		}
	}()
	s.finish(r, len(targets), reason)
}

// runTask runs task ti on every target, at most max_concurrency at once,
// and returns why it stopped starting executions early ("" if it did not):
// the error budget was spent, the cutoff was reached, the window ended.
func (s *Scheduler) runTask(end context.Context, r *run, ti int, targets []Target) (reason string) {
	task := r.ws.cfg.Tasks[ti]
	conc := Concurrency(task.MaxConcurrency, len(targets))
	budget := Limit(task.MaxErrors, len(targets))
	label := fmt.Sprintf("task %d (%s)", ti+1, task.Document)

	slots := make(chan struct{}, conc)
	var wg sync.WaitGroup
	var mu sync.Mutex
	failed := 0
	spent := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return failed > budget
	}
	for _, t := range targets {
		// A slot frees when an execution ends, after its failure is
		// counted: the budget is checked with every earlier result in.
		select {
		case slots <- struct{}{}:
		case <-end.Done():
		}
		if end.Err() != nil {
			reason = s.endReason(label)
			break
		}
		if spent() {
			reason = fmt.Sprintf("%s failed on more targets than max_errors %s allows", label, task.MaxErrors)
			<-slots
			break
		}
		if now := s.deps.Now(); !r.win.Accepts(now) {
			reason = fmt.Sprintf("%s: cutoff reached at %s", label, r.win.Cutoff.Format(time.RFC3339))
			<-slots
			break
		}
		wg.Add(1)
		s.update(r, func(st *RunStatus) { st.Running++ })
		s.setBusy(t.ID, 1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			defer s.setBusy(t.ID, -1)
			status := s.invoke(end, r, ti, t)
			if status != StatusSuccess && status != StatusCancelled && status != StatusInterrupted {
				mu.Lock()
				failed++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if reason == "" && spent() {
		// The last executions failed: no later task runs.
		reason = fmt.Sprintf("%s failed on more targets than max_errors %s allows", label, task.MaxErrors)
	}
	return reason
}

func (s *Scheduler) endReason(label string) string {
	if s.ctx.Err() != nil {
		return "the controller stopped"
	}
	return label + ": the window ended"
}

// invoke runs task ti on target t and returns the execution's final
// status. At the end of the window it cancels the execution; at Close it
// stops following it.
func (s *Scheduler) invoke(end context.Context, r *run, ti int, t Target) (status string) {
	ws := r.ws
	task := ws.cfg.Tasks[ti]
	name, runID := ws.cfg.Name, r.id
	about := event.Task{Window: name, RunID: runID, Task: ti + 1, Document: task.Document}
	var execID, errText string
	defer func() {
		s.update(r, func(st *RunStatus) {
			st.Running--
			switch status {
			case StatusSuccess:
				st.Succeeded++
			case StatusCancelled, StatusInterrupted:
				st.Cancelled++
			default:
				st.Failed++
			}
		})
		msg := fmt.Sprintf("maintenance window %s run %s: %s on %s: %s", name, runID, task.Document, t.ID, status)
		d := event.TaskEnd{Task: about, Status: status, Error: errText}
		d.Execution = execID
		if execID != "" {
			msg += " (execution " + execID + ")"
		}
		if errText != "" {
			msg += ": " + errText
		}
		s.journal(store.Event{Type: event.KindTaskEnd, Group: t.Group, Instance: t.ID, Message: msg, Data: d})
	}()
	// Runs before the journaling above: a panic in the Runner fails this
	// target, not the controller.
	defer func() {
		if p := recover(); p != nil {
			s.recoverPanicValue("maintenance window "+name+" on "+t.ID, p)
			status, errText = StatusFailed, fmt.Sprintf("internal error: %v", p)
		}
	}()

	startCtx, cancel := context.WithTimeout(end, callTimeout)
	id, err := s.deps.Runner.Start(startCtx, task.Document, Params(task, t), Origin(name, runID))
	cancel()
	if err != nil {
		errText = err.Error()
		switch {
		case s.ctx.Err() != nil:
			return StatusInterrupted
		case end.Err() != nil:
			return StatusCancelled
		}
		return StatusFailed
	}
	execID = id
	s.journal(store.Event{Type: event.KindTaskStart, Group: t.Group, Instance: t.ID,
		Message: fmt.Sprintf("maintenance window %s run %s: %s started on %s (execution %s)", name, runID, task.Document, t.ID, id),
		Data:    event.TaskStart{Task: with(about, id)}})

	status, err = s.deps.Runner.Wait(end, id)
	switch {
	case err == nil:
		return status
	case s.ctx.Err() != nil:
		// The controller is stopping: the executor keeps or resumes the
		// execution; the window no longer follows it.
		errText = "the controller stopped; the execution is left to the runbook executor"
		return StatusInterrupted
	case end.Err() != nil:
		return s.cancelExecution(id, &errText)
	default:
		errText = err.Error()
		return StatusFailed
	}
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
func (s *Scheduler) finish(r *run, targets int, reason string) {
	ws := r.ws
	now := s.deps.Now().In(ws.sched.loc)
	s.mu.Lock()
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

	msg := fmt.Sprintf("maintenance window %s run %s ended: %s; %d target(s), %d task(s): %d succeeded, %d failed, %d cancelled, %d not run",
		ws.cfg.Name, final.ID, final.Outcome, targets, len(ws.cfg.Tasks), final.Succeeded, final.Failed, final.Cancelled, final.NotRun)
	if reason != "" {
		msg += " (" + reason + ")"
	}
	s.journal(store.Event{Type: event.KindWindowEnd, Message: msg, Data: event.WindowEnd{
		Window: ws.cfg.Name, RunID: final.ID, Outcome: final.Outcome, Targets: targets,
		Succeeded: final.Succeeded, Failed: final.Failed, Cancelled: final.Cancelled, NotRun: final.NotRun,
		Reason: reason,
	}})
}

// with is the task t with its execution.
func with(t event.Task, execution string) event.Task {
	t.Execution = execution
	return t
}

func (s *Scheduler) recoverPanicValue(what string, p any) {
	s.log.Error("panic in "+what, "panic", p, "stack", string(debug.Stack()))
}
