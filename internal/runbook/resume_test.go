package runbook

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/autoheal/autoheal/internal/store"
)

// TestResumeStep is the decision a restarted controller takes for the
// current step of an execution it finds unfinished, by action and record.
func TestResumeStep(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	later, earlier := t0.Add(time.Minute), t0.Add(-time.Minute)
	step := func(action string, inputs map[string]any) *Step {
		return &Step{Name: "s", Action: action, Inputs: inputs, MaxAttempts: 3, TimeoutSeconds: 60}
	}
	post := map[string]any{"Method": "POST", "Path": "/v1/x"}
	get := map[string]any{"Method": "GET", "Path": "/v1/x"}
	running := func(attempts int, deadline time.Time) StepExecution {
		return StepExecution{Name: "s", Status: StatusInProgress, Attempts: attempts, Deadline: &deadline}
	}
	with := func(se StepExecution, f func(*StepExecution)) StepExecution { f(&se); return se }
	tests := []struct {
		name    string
		st      *Step
		se      StepExecution
		current string
		want    resumeKind
	}{
		{"no current step: the execution ends", step(ActionRunCommand, nil), StepExecution{Status: StatusSuccess}, "", resumeFinish},
		{"current step unknown to the document: ends", step(ActionRunCommand, nil), StepExecution{}, "gone", resumeFinish},
		{"a step that has not begun runs", step(ActionRunCommand, nil), StepExecution{Status: StatusPending}, "s", resumeRun},
		{"runCommand under way is not repeated", step(ActionRunCommand, nil), running(1, later), "s", resumeInterrupted},
		{"runCommand between two attempts retries", step(ActionRunCommand, nil), with(running(1, earlier), func(s *StepExecution) { s.RetryAt = &later }), "s", resumeRetry},
		{"a retry due already retries", step(ActionRunCommand, nil), with(running(2, earlier), func(s *StepExecution) { s.RetryAt = &earlier; s.Status = StatusTimedOut }), "s", resumeRetry},
		{"executeApi POST under way is not repeated", step(ActionExecuteAPI, post), with(running(1, later), func(s *StepExecution) { s.Inputs = post }), "s", resumeInterrupted},
		{"executeApi GET under way goes on", step(ActionExecuteAPI, get), with(running(1, later), func(s *StepExecution) { s.Inputs = get }), "s", resumeContinue},
		{"executeApi without a method reads", step(ActionExecuteAPI, map[string]any{"Path": "/v1/x"}), running(1, later), "s", resumeContinue},
		{"a rendered method decides over the written one", step(ActionExecuteAPI, map[string]any{"Method": "{{ M }}"}), with(running(1, later), func(s *StepExecution) { s.Inputs = post }), "s", resumeInterrupted},
		{"waitForProperty goes on under its deadline", step(ActionWaitForProperty, get), running(1, later), "s", resumeContinue},
		{"waitForProperty past its deadline timed out", step(ActionWaitForProperty, get), running(1, earlier), "s", resumeTimedOut},
		{"assertProperty with POST is not repeated", step(ActionAssertProperty, post), running(1, later), "s", resumeInterrupted},
		{"sleep goes on", step(ActionSleep, nil), running(1, later), "s", resumeContinue},
		{"approve goes on waiting", step(ActionApprove, nil), with(running(1, later), func(s *StepExecution) { s.Status = StatusWaiting }), "s", resumeContinue},
		{"approve past its timeout timed out", step(ActionApprove, nil), with(running(1, earlier), func(s *StepExecution) { s.Status = StatusWaiting }), "s", resumeTimedOut},
		{"branch goes on", step(ActionBranch, nil), running(1, later), "s", resumeContinue},
		{"executeAutomation with its child recorded waits for it", step(ActionExecuteAutomation, nil), with(running(1, later), func(s *StepExecution) { s.Child = "exec-0000000000000001" }), "s", resumeContinue},
		{"executeAutomation without a recorded child is not repeated", step(ActionExecuteAutomation, nil), running(1, later), "s", resumeInterrupted},
		{"a legacy record with no deadline goes on", step(ActionSleep, nil), StepExecution{Status: StatusInProgress}, "s", resumeContinue},
		{"an ended step not yet advanced applies its outcome", step(ActionRunCommand, nil), StepExecution{Status: StatusSuccess, Attempts: 1}, "s", resumeEnded},
		{"a failed step not yet advanced applies its outcome", step(ActionRunCommand, nil), StepExecution{Status: StatusFailed, Attempts: 3}, "s", resumeEnded},
		{"a timed out step not yet advanced applies its outcome", step(ActionRunCommand, nil), StepExecution{Status: StatusTimedOut, Attempts: 3}, "s", resumeEnded},
		{"a cancelled step not yet advanced applies its outcome", step(ActionRunCommand, nil), StepExecution{Status: StatusCancelled, Attempts: 1}, "s", resumeEnded},
		{"a skipped step not yet advanced applies its outcome", step(ActionRunCommand, nil), StepExecution{Status: StatusSkipped}, "s", resumeEnded},
		{"attempts spent: a recorded retry is not taken", step(ActionRunCommand, nil), with(running(3, earlier), func(s *StepExecution) { s.RetryAt = &later; s.Status = StatusTimedOut }), "s", resumeEnded},
		{"a step of the document the record does not reach: ends", step(ActionRunCommand, nil), StepExecution{Status: StatusSuccess}, "t", resumeFinish},
		{"exactly at its deadline timed out", step(ActionWaitForProperty, get), running(1, t0), "s", resumeTimedOut},
		{"assertProperty with GET goes on", step(ActionAssertProperty, get), running(1, later), "s", resumeContinue},
		{"a rendered method that is null reads", step(ActionExecuteAPI, post), with(running(1, later), func(s *StepExecution) { s.Inputs = map[string]any{"Method": nil} }), "s", resumeContinue},
		{"a method in lower case reads", step(ActionExecuteAPI, nil), with(running(1, later), func(s *StepExecution) { s.Inputs = map[string]any{"Method": "get"} }), "s", resumeContinue},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Step t of the document has no record (an execution recorded
			// before the document had it).
			ex := &Execution{Current: tt.current, Steps: []StepExecution{tt.se}, DocumentV: &Document{MainSteps: []*Step{tt.st, {Name: "t", Action: ActionSleep}}}}
			if _, got := resumeStep(ex, t0); got != tt.want {
				t.Fatalf("resumeStep = %s, want %s", got, tt.want)
			}
		})
	}
}

// put writes an execution record as a killed controller would have left
// it, for Resume to find.
func (h *harness) put(ex *Execution) {
	h.t.Helper()
	body, err := json.Marshal(ex)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := h.st.PutExecution(context.Background(), store.ExecutionRecord{ID: ex.ID, Document: ex.Document, Status: ex.Status,
		Parent: ex.Parent, StartedAt: ex.StartedAt, Body: body}); err != nil {
		h.t.Fatal(err)
	}
}

// unfinished is an execution of document name at step current, as the
// engine records it; mutate sets the current step's record.
func (h *harness) unfinished(name, current string, mutate func(se *StepExecution)) *Execution {
	h.t.Helper()
	doc, err := h.lib.Get(name)
	if err != nil {
		h.t.Fatal(err)
	}
	now := time.Now().UTC()
	ex := &Execution{ID: NewExecutionID(), Document: name, Status: StatusInProgress, Origin: "test", StartedAt: now,
		Parameters: map[string]any{}, Outputs: map[string]any{}, Current: current, DocumentV: doc}
	for _, st := range doc.MainSteps {
		se := StepExecution{Name: st.Name, Action: st.Action, Status: StatusPending}
		if st.Name == current {
			se.StartedAt = &now
			mutate(&se)
		}
		ex.Steps = append(ex.Steps, se)
	}
	h.put(ex)
	return ex
}

func (h *harness) restart() {
	h.t.Helper()
	h.eng.Close()
	h.eng = h.engine()
	if err := h.eng.Resume(context.Background()); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) lines(name string) int {
	b, _ := os.ReadFile(filepath.Join(h.dir, name))
	return strings.Count(string(b), "\n")
}

func (h *harness) waitUntil(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestResumedStepWithEffectsIsNotRepeated: an API call that changes
// something, found under way, fails with the restart as its reason and
// its onFailure applies; the same call as a read is made again.
func TestResumedStepWithEffectsIsNotRepeated(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	var posts, gets atomic.Int64
	h.api.HandleFunc("POST /v1/effect", func(w http.ResponseWriter, r *http.Request) { posts.Add(1); w.Write([]byte("{}")) })
	h.api.HandleFunc("GET /v1/effect", func(w http.ResponseWriter, r *http.Request) { gets.Add(1); w.Write([]byte("{}")) })
	h.doc("effects", `schemaVersion: "0.3"
mainSteps:
  - {name: change, action: executeApi, onFailure: "step:report", inputs: {Method: POST, Path: /v1/effect}}
  - {name: done, action: sleep, isEnd: true, inputs: {Duration: 1ms}}
  - {name: report, action: executeApi, inputs: {Method: GET, Path: /v1/effect}}
`)
	deadline := time.Now().Add(time.Hour)
	change := h.unfinished("effects", "change", func(se *StepExecution) {
		se.Status, se.Attempts, se.Deadline = StatusInProgress, 1, &deadline
		se.Inputs = map[string]any{"Method": "POST", "Path": "/v1/effect"}
	})
	report := h.unfinished("effects", "report", func(se *StepExecution) {
		se.Status, se.Attempts, se.Deadline = StatusInProgress, 1, &deadline
		se.Inputs = map[string]any{"Method": "GET", "Path": "/v1/effect"}
	})
	h.restart()
	ex := h.wait(change.ID)
	if ex.Status != StatusFailed || stepStatus(ex) != "change=Failed done=Skipped report=Success" || ex.Steps[0].Error != interruptedError {
		t.Fatalf("%s %s: %q", ex.Status, stepStatus(ex), ex.Steps[0].Error)
	}
	if ex := h.wait(report.ID); ex.Status != StatusSuccess || ex.Steps[2].Attempts != 1 {
		t.Fatalf("report: %s %s, %d attempts", ex.Status, stepStatus(ex), ex.Steps[2].Attempts)
	}
	if posts.Load() != 0 || gets.Load() != 2 {
		t.Fatalf("%d POSTs and %d GETs; want the POST never made again and both reports read", posts.Load(), gets.Load())
	}
}

// TestResumedRetriesCountFromTheRecord: a failing step stopped between
// two attempts makes its remaining attempts only: maxAttempts holds
// across the restart.
func TestResumedRetriesCountFromTheRecord(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.doc("flaky", `schemaVersion: "0.3"
mainSteps:
  - {name: try, action: runCommand, maxAttempts: 3, inputs: {InstanceId: i-1, Script: 'date +%s%N >> "$MARKER_DIR/runs"; exit 1'}}
`)
	id, err := h.eng.Start(context.Background(), "flaky", nil, "test")
	if err != nil {
		t.Fatal(err)
	}
	var retryAt time.Time
	h.waitUntil("the first attempt to fail and the second to be due", func() bool {
		ex, err := h.eng.Get(context.Background(), id)
		if err == nil && ex.Steps[0].RetryAt != nil && ex.Steps[0].Attempts == 1 {
			retryAt = *ex.Steps[0].RetryAt
			return true
		}
		return false
	})
	h.restart()
	ex := h.wait(id)
	if ex.Status != StatusFailed || ex.Steps[0].Attempts != 3 || h.lines("runs") != 3 {
		t.Fatalf("%s after %d attempts and %d runs; want Failed after 3 and 3", ex.Status, ex.Steps[0].Attempts, h.lines("runs"))
	}
	// The second attempt waited for the time recorded before the restart.
	b, _ := os.ReadFile(filepath.Join(h.dir, "runs"))
	ns, err := strconv.ParseInt(strings.Split(string(b), "\n")[1], 10, 64)
	if err != nil {
		t.Fatalf("runs %q: %v", b, err)
	}
	if second := time.Unix(0, ns); second.Before(retryAt) {
		t.Fatalf("attempt 2 ran at %s, before its recorded time %s", second.Format(time.RFC3339Nano), retryAt.Format(time.RFC3339Nano))
	}
}

// TestResumedWaitKeepsItsDeadline: a waitForProperty stopped half-way
// times out at the deadline recorded when its attempt began, not a full
// timeout after the restart.
func TestResumedWaitKeepsItsDeadline(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.doc("wait", `schemaVersion: "0.3"
mainSteps:
  - name: wait
    action: waitForProperty
    timeoutSeconds: 3
    inputs: {Path: /v1/things/x, PropertySelector: "$.items..state", DesiredValues: [never], PollIntervalSeconds: 0.05}
`)
	id, err := h.eng.Start(context.Background(), "wait", nil, "test")
	if err != nil {
		t.Fatal(err)
	}
	var deadline time.Time
	h.waitUntil("the wait to begin", func() bool {
		ex, err := h.eng.Get(context.Background(), id)
		if err == nil && ex.Steps[0].Deadline != nil {
			deadline = *ex.Steps[0].Deadline
			return true
		}
		return false
	})
	h.restart()
	resumed := time.Now()
	ex := h.wait(id)
	se := ex.Steps[0]
	if ex.Status != StatusTimedOut || se.Attempts != 1 || !se.Deadline.Equal(deadline) {
		t.Fatalf("%s, %d attempt(s), deadline %s (was %s)", ex.Status, se.Attempts, se.Deadline, deadline)
	}
	// A wait restarted from zero would end three seconds after the
	// restart; this one ends at its recorded deadline.
	if se.EndedAt.After(resumed.Add(3 * time.Second)) {
		t.Fatalf("the wait ended at %s, %s after the restart: its deadline %s was not kept", se.EndedAt, se.EndedAt.Sub(resumed), deadline)
	}
}

// TestResumedChildIsStartedOnce: a nested execution whose id was recorded
// is waited for after a restart, never started a second time; one whose
// id was recorded but that had not started yet starts, once.
func TestResumedChildIsStartedOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.doc("child", `schemaVersion: "0.3"
mainSteps:
  - {name: effect, action: runCommand, inputs: {InstanceId: i-1, Script: 'echo child >> "$MARKER_DIR/runs"'}}
  - {name: nap, action: sleep, inputs: {Duration: 500ms}}
`)
	h.doc("parent", `schemaVersion: "0.3"
mainSteps:
  - {name: nested, action: executeAutomation, inputs: {DocumentName: child}}
`)
	ctx := context.Background()
	id, err := h.eng.Start(ctx, "parent", nil, "test")
	if err != nil {
		t.Fatal(err)
	}
	h.waitUntil("the child to sleep", func() bool {
		ex, _ := h.eng.Get(ctx, id)
		if ex.Steps[0].Child == "" {
			return false
		}
		c, err := h.eng.Get(ctx, ex.Steps[0].Child)
		return err == nil && c.Current == "nap"
	})
	h.restart()
	if ex := h.wait(id); ex.Status != StatusSuccess {
		t.Fatalf("parent %s: %s", ex.Status, ex.Error)
	}

	// Killed between recording the child's id and starting it.
	deadline := time.Now().Add(time.Hour)
	child := NewExecutionID()
	ex := h.unfinished("parent", "nested", func(se *StepExecution) {
		se.Status, se.Attempts, se.Deadline, se.Child = StatusInProgress, 1, &deadline, child
	})
	h.restart()
	if got := h.wait(ex.ID); got.Status != StatusSuccess || got.Steps[0].Child != child {
		t.Fatalf("parent %s with child %s, want Success with %s", got.Status, got.Steps[0].Child, child)
	}
	recs, _ := h.st.Executions(ctx, 100)
	children := 0
	for _, r := range recs {
		if r.Document == "child" {
			children++
		}
	}
	if children != 2 || h.lines("runs") != 2 {
		t.Fatalf("%d child executions and %d runs for two parents, want 2 and 2", children, h.lines("runs"))
	}
}

// TestResumedApprovalKeepsItsAnswers: answers given before a restart
// count after it; a recorded rejection ends the step.
func TestResumedApprovalKeepsItsAnswers(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.doc("two", `schemaVersion: "0.3"
mainSteps:
  - {name: ask, action: approve, inputs: {Message: go?, MinRequiredApprovals: 2}}
`)
	ctx := context.Background()
	id, _ := h.eng.Start(ctx, "two", nil, "test")
	waiting := func(id string) func() bool {
		return func() bool { ex, _ := h.eng.Get(ctx, id); return ex.Status == StatusWaiting }
	}
	h.waitUntil("the approval wait", waiting(id))
	if err := h.eng.Approve(ctx, id, Approval{Approver: "alice", Approved: true}); err != nil {
		t.Fatal(err)
	}
	h.waitUntil("alice's answer to be recorded", func() bool { ex, _ := h.eng.Get(ctx, id); return len(ex.Approvals) == 1 })
	h.restart()
	h.waitUntil("the approval wait after the restart", waiting(id))
	if err := h.eng.Approve(ctx, id, Approval{Approver: "bob", Approved: true}); err != nil {
		t.Fatal(err)
	}
	if ex := h.wait(id); ex.Status != StatusSuccess || len(ex.Approvals) != 2 {
		t.Fatalf("%s with %d approvals, want Success with alice's and bob's", ex.Status, len(ex.Approvals))
	}

	deadline := time.Now().Add(time.Hour)
	ex := h.unfinished("two", "ask", func(se *StepExecution) {
		se.Status, se.Attempts, se.Deadline = StatusWaiting, 1, &deadline
	})
	ex.Status = StatusWaiting
	ex.Approvals = []Approval{{Step: "ask", Approver: "carol", Approved: false, Comment: "no", Time: time.Now().UTC()}}
	h.put(ex)
	h.restart()
	if got := h.wait(ex.ID); got.Status != StatusFailed || !strings.Contains(got.Error, "rejected by carol") {
		t.Fatalf("%s: %s; want Failed, rejected by carol", got.Status, got.Error)
	}
}

// TestResumeOfAnEndedStepDoesNotRunItAgain: a record where the current
// step had ended (written before steps and their successors were written
// together) goes on with the next step.
func TestResumeOfAnEndedStepDoesNotRunItAgain(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.doc("two-effects", `schemaVersion: "0.3"
mainSteps:
  - {name: one, action: runCommand, inputs: {InstanceId: i-1, Script: 'echo one >> "$MARKER_DIR/runs"'}}
  - {name: two, action: runCommand, inputs: {InstanceId: i-1, Script: 'echo two >> "$MARKER_DIR/runs"'}}
`)
	ex := h.unfinished("two-effects", "one", func(se *StepExecution) {
		se.Status, se.Attempts = StatusSuccess, 1
	})
	h.restart()
	got := h.wait(ex.ID)
	b, _ := os.ReadFile(filepath.Join(h.dir, "runs"))
	if got.Status != StatusSuccess || string(b) != "two\n" {
		t.Fatalf("%s %s, scripts ran %q; want only step two", got.Status, stepStatus(got), b)
	}
}
