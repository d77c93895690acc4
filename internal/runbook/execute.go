package runbook

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/autoheal/autoheal/internal/crashpoint"
	"github.com/autoheal/autoheal/internal/event"
	"github.com/autoheal/autoheal/internal/store"
)

// errCancelled ends an execution that an operator cancelled.
var errCancelled = errors.New("cancelled")

// retryPause is the pause between two attempts of a step.
const retryPause = time.Second

// What is written when, so that a controller killed at any point neither
// repeats a step with effects nor loses one:
//
//   - an attempt is recorded started (its number, its deadline, its
//     rendered inputs, the id of the child execution it will start) before
//     its action begins;
//   - a failed attempt that will be retried is recorded with the time the
//     next one may start (RetryAt);
//   - a step's end is recorded in the same write as the step the
//     execution goes to next (reset to Pending) or as the execution's end.
//
// So the current step of an unfinished execution is either Pending (it
// has not begun: run it) or InProgress/Waiting (an attempt began: see
// resumeStep).

// execute runs the execution from step i, handled as how says (resumeRun
// for a step that has not begun), until it ends or the engine stops.
func (e *Engine) execute(ctx context.Context, r *run, i int, how resumeKind) {
	ex, doc := r.ex, r.doc
	if how == resumeFinish {
		e.end(ctx, r)
		return
	}
	for i >= 0 && i < len(doc.MainSteps) {
		st := doc.MainSteps[i]
		se := &ex.Steps[i]
		ex.Current = st.Name
		var next int
		var err error
		if how == resumeInterrupted || how == resumeEnded {
			next, err = e.recorded(r, i)
		} else {
			next, err = e.runStep(ctx, r, i, how)
		}
		how = resumeRun
		if e.ctx.Err() != nil {
			// The controller is stopping: leave the execution as it is
			// recorded; the next controller resumes it.
			return
		}
		if errors.Is(err, errCancelled) || (err != nil && ctx.Err() != nil) {
			se.Status = StatusCancelled
			e.endStep(se)
			e.finish(ctx, r, StatusCancelled, "cancelled by operator at step "+st.Name)
			return
		}
		if err == nil {
			ev := store.Event{Type: event.KindExecutionStep, Message: fmt.Sprintf("execution %s: step %s succeeded", ex.ID, st.Name),
				Data: event.ExecutionStep{Execution: ofExecution(ex.ID, ex.Document), Step: st.Name, Status: se.Status}}
			if !e.advance(ctx, r, next, ev) {
				return
			}
			i = next
			continue
		}
		ev := store.Event{Type: event.KindExecutionStep, Message: fmt.Sprintf("execution %s: step %s %s: %v", ex.ID, st.Name, strings.ToLower(se.Status), err),
			Data: event.ExecutionStep{Execution: ofExecution(ex.ID, ex.Document), Step: st.Name, Status: se.Status, Error: err.Error()}}
		critical := st.Critical()
		switch {
		case st.OnFailure == OnFailureContinue:
			next = e.after(r, i)
		case strings.HasPrefix(st.OnFailure, "step:"):
			next = r.index(strings.TrimPrefix(st.OnFailure, "step:"))
		default: // Abort
			if critical {
				e.finish(ctx, r, failStatus(se.Status), fmt.Sprintf("step %s failed: %v", st.Name, err), ev)
			} else {
				e.finish(ctx, r, StatusSuccess, "", ev)
			}
			return
		}
		if critical {
			// A critical step failed and the document goes on: the
			// execution still fails, as in SSM.
			ex.Error = fmt.Sprintf("step %s failed: %v", st.Name, err)
		}
		if !e.advance(ctx, r, next, ev) {
			return
		}
		i = next
	}
	e.end(ctx, r)
}

// advance records the end of the current step (ev) and the step the
// execution goes to next in one write: the next step is reset to Pending
// (a loop may visit it again), so that a restarted controller finds
// either a step that has not begun or one that has, never an ended one.
// Past the last step it ends the execution instead and returns false.
func (e *Engine) advance(ctx context.Context, r *run, next int, ev store.Event) bool {
	if next < 0 || next >= len(r.doc.MainSteps) {
		e.end(ctx, r, ev)
		return false
	}
	st := r.doc.MainSteps[next]
	r.ex.Current = st.Name
	r.ex.Steps[next] = StepExecution{Name: st.Name, Action: st.Action, Status: StatusPending}
	e.persist(ctx, r, ev)
	return true
}

// end finishes an execution whose steps are done: Failed when a critical
// step failed on the way, else Success.
func (e *Engine) end(ctx context.Context, r *run, evs ...store.Event) {
	if r.ex.Error != "" {
		e.finish(ctx, r, StatusFailed, r.ex.Error, evs...)
		return
	}
	e.finish(ctx, r, StatusSuccess, "", evs...)
}

// recorded is the outcome of step i as Resume found it: failed by it
// (interrupted), or ended before the step that follows was recorded (a
// record written before steps and their successors were written together).
func (e *Engine) recorded(r *run, i int) (int, error) {
	se := &r.ex.Steps[i]
	if se.Status != StatusSuccess {
		return 0, errors.New(se.Error)
	}
	if res, ok := se.Result.(map[string]any); ok && r.doc.MainSteps[i].Action == ActionBranch {
		if name, ok := res["NextStep"].(string); ok {
			return r.index(name), nil
		}
	}
	return e.after(r, i), nil
}

func failStatus(stepStatus string) string {
	if stepStatus == StatusTimedOut {
		return StatusTimedOut
	}
	return StatusFailed
}

// after is the step that follows step i when it does not choose one.
func (e *Engine) after(r *run, i int) int {
	st := r.doc.MainSteps[i]
	switch {
	case st.IsEnd:
		return -1
	case st.NextStep != "":
		return r.index(st.NextStep)
	}
	return i + 1
}

// finish records the end of the execution, with evs (the last step's end)
// in the same write.
func (e *Engine) finish(ctx context.Context, r *run, status, why string, evs ...store.Event) {
	ex := r.ex
	ex.Status, ex.Error = status, why
	t := e.deps.Now().UTC()
	ex.EndedAt = &t
	ex.Current = ""
	for i := range ex.Steps {
		if ex.Steps[i].Status == StatusPending {
			ex.Steps[i].Status = StatusSkipped
		}
	}
	msg := fmt.Sprintf("execution %s of %s ended %s in %s", ex.ID, ex.Document, status, t.Sub(ex.StartedAt).Round(time.Millisecond))
	if why != "" {
		msg += ": " + why
	}
	evs = append(evs, store.Event{Type: event.KindExecutionEnd, Message: msg,
		Data: event.ExecutionEnd{Execution: ofExecution(ex.ID, ex.Document), Status: status, Error: why}})
	e.persist(ctx, r, evs...)
}

// errNoRetry marks an attempt's error that another attempt cannot cure.
type errNoRetry struct{ err error }

func (e errNoRetry) Error() string { return e.err.Error() }
func (e errNoRetry) Unwrap() error { return e.err }

// runStep runs step i's attempts, from the point how says, and returns
// the next step.
func (e *Engine) runStep(ctx context.Context, r *run, i int, how resumeKind) (int, error) {
	st := r.doc.MainSteps[i]
	se := &r.ex.Steps[i]
	if how == resumeRun {
		crashpoint.Hit("runbook.step.before")
		now := e.deps.Now().UTC()
		*se = StepExecution{Name: st.Name, Action: st.Action, Status: StatusInProgress, StartedAt: &now}
	}
	for {
		var res any
		next, err := -2, error(nil)
		if how == resumeTimedOut {
			// The attempt's deadline passed while no controller ran it.
			se.Status = StatusTimedOut
			err = fmt.Errorf("timed out after %ds: its deadline passed while the controller was down", st.TimeoutSeconds)
		} else {
			if how == resumeRetry && !e.sleepUntil(ctx, *se.RetryAt) {
				return 0, errCancelled
			}
			res, next, err = e.attempt(ctx, r, i, how == resumeContinue)
			crashpoint.Hit("runbook.step.ended")
		}
		if err == nil {
			return e.succeed(r, i, res, next)
		}
		if ctx.Err() != nil {
			return 0, errCancelled
		}
		var final errNoRetry
		if se.Attempts >= st.MaxAttempts || errors.As(err, &final) {
			return e.fail(se, res, err)
		}
		se.Error = fmt.Sprintf("attempt %d: %v", se.Attempts, err)
		at := e.deps.Now().UTC().Add(retryPause)
		se.RetryAt = &at
		e.persist(ctx, r)
		crashpoint.Hit("runbook.step.retry")
		how = resumeRetry
	}
}

// attempt runs one attempt of step i: a new one, recorded started before
// its action begins, or (resumed) the one under way, under its recorded
// deadline.
func (e *Engine) attempt(ctx context.Context, r *run, i int, resumed bool) (any, int, error) {
	st, se := r.doc.MainSteps[i], &r.ex.Steps[i]
	inputs, err := Render(st.Inputs, r.lookup)
	if err != nil {
		// A reference that cannot be resolved: retrying will not help.
		return nil, -2, errNoRetry{err}
	}
	if !resumed || se.Deadline == nil {
		now := e.deps.Now().UTC()
		deadline := now.Add(time.Duration(st.TimeoutSeconds) * time.Second)
		se.Attempts++
		se.Status, se.Error, se.Inputs, se.Deadline, se.RetryAt, se.EndedAt = StatusInProgress, "", inputs, &deadline, nil, nil
		se.Child = ""
		if st.Action == ActionExecuteAutomation {
			// The child's id is recorded before it starts: a resumed
			// step waits for that child, started at most once.
			se.Child = NewExecutionID()
		}
		if err := e.persist(ctx, r); err != nil {
			return nil, -2, errNoRetry{fmt.Errorf("record the attempt before it starts: %w", err)}
		}
		crashpoint.Hit("runbook.step.recorded")
	}
	in, _ := inputs.(map[string]any)
	actx, cancel := context.WithDeadline(ctx, *se.Deadline)
	defer cancel()
	res, next, err := e.action(actx, r, i, in)
	if err != nil && actx.Err() == context.DeadlineExceeded && ctx.Err() == nil {
		se.Status = StatusTimedOut
		err = fmt.Errorf("timed out after %ds: %w", st.TimeoutSeconds, err)
	}
	return res, next, err
}

// succeed ends step i with its result and returns the next step.
func (e *Engine) succeed(r *run, i int, res any, next int) (int, error) {
	st, se := r.doc.MainSteps[i], &r.ex.Steps[i]
	se.Result, se.RetryAt = res, nil
	e.endStep(se)
	se.Status, se.Error = StatusSuccess, ""
	if err := e.outputs(r, st, se, res); err != nil {
		se.Status, se.Error = StatusFailed, err.Error()
		return 0, err
	}
	if next == -2 {
		next = e.after(r, i)
	}
	return next, nil
}

// fail ends a step with its last attempt's error.
func (e *Engine) fail(se *StepExecution, res any, err error) (int, error) {
	se.Result, se.RetryAt = res, nil
	e.endStep(se)
	if se.Status != StatusTimedOut {
		se.Status = StatusFailed
	}
	se.Error = err.Error()
	return 0, err
}

// sleepUntil waits until the engine's clock reads t; false when ctx ended
// first.
func (e *Engine) sleepUntil(ctx context.Context, t time.Time) bool {
	d := t.Sub(e.deps.Now())
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}
