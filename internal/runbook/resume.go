package runbook

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/autoheal/autoheal/internal/event"
	"github.com/autoheal/autoheal/internal/store"
)

// resumeKind is what a restarted controller does with the current step of
// an execution it found unfinished.
type resumeKind int

const (
	// resumeRun: the step has not begun; run it.
	resumeRun resumeKind = iota
	// resumeContinue: an attempt of a step that is safe to repeat (or
	// whose effect is recorded: a child execution's id) was under way; go
	// on with it under its recorded deadline.
	resumeContinue
	// resumeRetry: an attempt failed and the next one was to start at
	// RetryAt; start it then.
	resumeRetry
	// resumeTimedOut: an attempt safe to repeat was under way and its
	// deadline passed meanwhile: it timed out (retried if attempts remain).
	resumeTimedOut
	// resumeInterrupted: an attempt with effects was under way (it may
	// have had them, or be half done): it is not run again; the step
	// fails and its onFailure applies.
	resumeInterrupted
	// resumeEnded: the step had ended but the step after it was not
	// recorded (a record an older controller wrote): apply its outcome.
	resumeEnded
	// resumeFinish: no step is left; record the execution's end.
	resumeFinish
)

var resumeNames = [...]string{"run", "continue", "retry", "timed_out", "interrupted", "ended", "finish"}

func (k resumeKind) String() string { return resumeNames[k] }

// interruptedError is the error of a step that a controller restart
// interrupted and that is not run again.
const interruptedError = "interrupted by a controller restart; not repeated (it may already have had effects)"

// resumeStep decides, from the record alone and the time, what a
// restarted controller does with the execution ex: which step (index into
// its document's steps, -1 for none) and how.
func resumeStep(ex *Execution, now time.Time) (int, resumeKind) {
	doc := ex.DocumentV
	if ex.Current == "" {
		return -1, resumeFinish
	}
	i := -1
	for j, st := range doc.MainSteps {
		if st.Name == ex.Current {
			i = j
		}
	}
	if i < 0 || i >= len(ex.Steps) {
		return -1, resumeFinish
	}
	st, se := doc.MainSteps[i], ex.Steps[i]
	switch {
	case se.Status == StatusPending:
		return i, resumeRun
	case se.RetryAt != nil && se.Attempts < st.MaxAttempts:
		return i, resumeRetry
	case se.Status == StatusSuccess, se.Status == StatusFailed, se.Status == StatusTimedOut,
		se.Status == StatusCancelled, se.Status == StatusSkipped:
		return i, resumeEnded
	case !Repeatable(st, se):
		return i, resumeInterrupted
	case se.Deadline != nil && !now.Before(*se.Deadline):
		return i, resumeTimedOut
	}
	return i, resumeContinue
}

// Repeatable reports whether an attempt of step st (recorded as se) that
// a controller restart interrupted may be taken up again: its action has
// no effect outside the execution, or its effect is recorded before it
// happens. sleep, branch and approve (answers are recorded as they come)
// are; an API call or a property action is when its method is GET (a
// read); executeAutomation is once its child's id is recorded (the child
// starts at most once and is waited for). runCommand, and any other
// method, are not: they may have had their effect already.
func Repeatable(st *Step, se StepExecution) bool {
	switch st.Action {
	case ActionSleep, ActionBranch, ActionApprove:
		return true
	case ActionExecuteAPI, ActionAssertProperty, ActionWaitForProperty:
		return readOnly(st, se)
	case ActionExecuteAutomation:
		return se.Child != ""
	}
	return false
}

// readOnly reports whether the API call of a step reads: its method, as
// rendered for the attempt (or as written), is GET.
func readOnly(st *Step, se StepExecution) bool {
	method := "GET"
	if in, ok := se.Inputs.(map[string]any); ok {
		if v, ok := in["Method"]; ok && v != nil {
			method = stringOf(v)
		}
	} else if v, ok := st.Inputs["Method"]; ok && v != nil {
		method = stringOf(v)
	}
	return strings.EqualFold(method, "GET")
}

// Resume continues the executions an earlier controller left unfinished,
// each as resumeStep decides. Every one is registered before any runs, so
// that a parent waiting for its child finds it live.
func (e *Engine) Resume(ctx context.Context) error {
	recs, err := e.deps.Store.Executions(ctx, 1000, StatusInProgress, StatusWaiting, StatusPending)
	if err != nil {
		return err
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].StartedAt.Before(recs[j].StartedAt) })
	type resumed struct {
		r    *run
		from int
		how  resumeKind
	}
	var todo []resumed
	now := e.deps.Now()
	for _, rec := range recs {
		var ex Execution
		if err := json.Unmarshal(rec.Body, &ex); err != nil || ex.DocumentV == nil {
			e.log.Warn("execution cannot be resumed", "execution", rec.ID, "err", err)
			continue
		}
		if ex.Outputs == nil {
			ex.Outputs = map[string]any{}
		}
		r := e.newRun(ex.DocumentV, &ex)
		from, how := resumeStep(&ex, now)
		if how == resumeInterrupted {
			se := &ex.Steps[from]
			se.Status, se.Error, se.RetryAt = StatusFailed, interruptedError, nil
			e.endStep(se)
		}
		if ex.Status == StatusWaiting {
			ex.Status = StatusInProgress
		}
		at := ex.Current
		if at == "" {
			at = "its end"
		}
		if err := e.persist(ctx, r, store.Event{Type: event.KindExecutionResume,
			Message: fmt.Sprintf("execution %s of %s resumed at step %s (%s) after a controller restart", ex.ID, ex.Document, at, how),
			Data:    event.ExecutionResume{Execution: ofExecution(ex.ID, ex.Document), Step: ex.Current, Action: how.String()}}); err != nil {
			e.log.Error("execution cannot be resumed", "execution", rec.ID, "err", err)
			continue
		}
		e.register(r)
		todo = append(todo, resumed{r, from, how})
	}
	for _, t := range todo {
		e.launch(t.r, t.from, t.how)
	}
	return nil
}
