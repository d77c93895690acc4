package remediation

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/autoheal/autoheal/internal/notify"
	"github.com/autoheal/autoheal/internal/runbook"
	"github.com/autoheal/autoheal/internal/store"
)

type harness struct {
	t       *testing.T
	dir     string
	st      *store.Store
	eng     *runbook.Engine
	engDeps runbook.Deps
	lib     *runbook.Library
	m       *Manager
	mu      sync.Mutex
	sent    []notify.Message
	to      [][]string
}

// newHarness: real store, real runbook engine running real scripts; the
// alarm is "OK" once the file ok exists in the test dir.
func newHarness(t *testing.T) *harness {
	h := &harness{t: t, dir: t.TempDir()}
	st, err := store.Open(filepath.Join(h.dir, "state"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h.st = st
	os.MkdirAll(filepath.Join(h.dir, "docs"), 0o755)
	h.lib = runbook.NewLibrary(filepath.Join(h.dir, "docs"))
	h.engDeps = runbook.Deps{
		Store: st, Documents: h.lib.Get,
		Command: func(ctx context.Context, req runbook.CommandRequest) (runbook.CommandResult, error) {
			cmd := exec.CommandContext(ctx, "/bin/sh", "-c", req.Script)
			cmd.Env = []string{"PATH=/usr/bin:/bin", "DIR=" + h.dir, "INSTANCE=" + req.InstanceID}
			out, _ := cmd.CombinedOutput()
			return runbook.CommandResult{ExitCode: cmd.ProcessState.ExitCode(), Stdout: string(out)}, nil
		},
	}
	h.eng = runbook.NewEngine(h.engDeps)
	t.Cleanup(h.eng.Close)
	h.m = New(Deps{
		Store: st, Runner: h.eng, Document: h.lib.Get,
		Notify: func(ctx context.Context, channels []string, m notify.Message) error {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.sent = append(h.sent, m)
			h.to = append(h.to, channels)
			return nil
		},
		State: func(key string) string {
			if _, err := os.Stat(filepath.Join(h.dir, "ok")); err == nil {
				return "OK"
			}
			return "ALARM"
		},
	})
	t.Cleanup(h.m.Close)
	return h
}

func (h *harness) doc(name, script string) {
	os.WriteFile(filepath.Join(h.dir, "docs", name+".yaml"), []byte(`schemaVersion: "0.3"
parameters:
  InstanceId: {type: String}
mainSteps:
  - name: fix
    action: runCommand
    inputs:
      InstanceId: "{{ InstanceId }}"
      Script: '`+script+`'
`), 0o644)
}

func (h *harness) waitStatus(id, status string) Incident {
	h.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		inc, err := h.m.Get(context.Background(), id)
		if err == nil && inc.Status == status {
			return inc
		}
		time.Sleep(10 * time.Millisecond)
	}
	inc, _ := h.m.Get(context.Background(), id)
	h.t.Fatalf("incident %s never %s: %+v", id, status, inc)
	return Incident{}
}

func types(inc Incident) string {
	var out []string
	for _, e := range inc.Timeline {
		out = append(out, e.Type)
	}
	return strings.Join(out, " ")
}

var trigger = Trigger{Source: "alarm", Alarm: "webapp-uptime", Key: "webapp-uptime/i-1", Reason: "Threshold Crossed",
	Namespace: "CustomNamespace", Metric: "webapp-uptime", Dimensions: map[string]string{"InstanceId": "i-1"}}

func TestRunbookFixesIt(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.doc("webapp-uptime#CustomNamespace", `echo "restarting service on $INSTANCE"; touch "$DIR/ok"`)
	id, err := h.m.Open(context.Background(), trigger, &Spec{MaxAttempts: 3, VerifyTimeout: 5 * time.Second, RetryPause: 10 * time.Millisecond, Escalate: []string{"ops"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := h.m.Open(context.Background(), trigger, nil, nil); again != id {
		t.Fatalf("a second open for the same key made incident %s beside %s", again, id)
	}
	inc := h.waitStatus(id, StatusResolved)
	if got := types(inc); got != "detected attempt output verified resolved" {
		t.Fatalf("timeline %s", got)
	}
	if inc.Attempts != 1 || inc.TimeToRecover <= 0 || inc.Runbook != "webapp-uptime#CustomNamespace" ||
		!strings.Contains(inc.Timeline[2].Output, "restarting service on i-1") {
		t.Fatalf("incident %+v", inc)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.sent) != 0 {
		t.Fatalf("notified %v although fixed", h.to)
	}
}

func TestRunbookThatDoesNotFixIsRetriedThenEscalated(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.doc("webapp-uptime#CustomNamespace", `echo trying; exit 0`)
	id, _ := h.m.Open(context.Background(), trigger, &Spec{MaxAttempts: 2, VerifyTimeout: 100 * time.Millisecond, RetryPause: 10 * time.Millisecond, Escalate: []string{"ops", "pager"}}, nil)
	inc := h.waitStatus(id, StatusEscalated)
	if inc.Attempts != 2 || types(inc) != "detected attempt output failed attempt output failed escalated" {
		t.Fatalf("%d attempts, timeline %s", inc.Attempts, types(inc))
	}
	// The escalation is recorded first, then sent.
	waitFor(t, "the escalation to be sent", func() bool { h.mu.Lock(); defer h.mu.Unlock(); return len(h.sent) > 0 })
	h.mu.Lock()
	if len(h.sent) != 1 || h.sent[0].Event != notify.EventTrigger || strings.Join(h.to[0], ",") != "ops,pager" || h.sent[0].Key != id {
		t.Fatalf("escalation %+v to %v", h.sent, h.to)
	}
	h.mu.Unlock()
	// A person fixes it: the alarm returns to OK and the incident resolves,
	// telling the same channels.
	h.m.Resolved(trigger.Key, "fixed by hand")
	h.waitStatus(id, StatusResolved)
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.sent) != 2 || h.sent[1].Event != notify.EventResolve || h.sent[1].Key != id {
		t.Fatalf("resolve message %+v", h.sent)
	}
}

func TestNoRunbookEscalatesAtOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	id, _ := h.m.Open(context.Background(), trigger, &Spec{MaxAttempts: 3, VerifyTimeout: time.Second, Escalate: []string{"ops"}}, nil)
	inc := h.waitStatus(id, StatusEscalated)
	if inc.Attempts != 0 || !strings.Contains(types(inc), "escalated") || !strings.Contains(inc.Timeline[len(inc.Timeline)-1].Message, "no runbook") {
		t.Fatalf("%+v", inc)
	}
}

func TestResumeAfterRestart(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.doc("webapp-uptime#CustomNamespace", `echo trying`)
	id, _ := h.m.Open(context.Background(), trigger, &Spec{MaxAttempts: 1, VerifyTimeout: 100 * time.Millisecond, Escalate: []string{"ops"}}, nil)
	h.waitStatus(id, StatusEscalated)
	h.m.Close()
	h.m = New(h.m.deps)
	t.Cleanup(h.m.Close)
	if err := h.m.Resume(context.Background()); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(h.dir, "ok"), nil, 0o644)
	h.m.Resolved(trigger.Key, "ok")
	inc := h.waitStatus(id, StatusResolved)
	if !strings.Contains(types(inc), "note") {
		t.Fatalf("timeline %s", types(inc))
	}
}

// Regression: "Remediation runs twice after a controller restart." An
// incident whose runbook had succeeded and that waited for its alert to
// resolve ran the runbook again at once when the controller restarted,
// without waiting out verify_timeout. The second attempt must come only
// when the first one's verification deadline (recorded before the
// restart) has passed.
func TestRestartDuringVerificationDoesNotRunTheRunbookAgain(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.doc("fix", `echo ran >> "$DIR/runs"`)
	const verify = 3 * time.Second
	tr := trigger
	tr.Source, tr.Metric, tr.Namespace = "alertmanager", "", ""
	id, err := h.m.Open(context.Background(), tr, &Spec{Runbook: "fix", MaxAttempts: 2, VerifyTimeout: verify, Escalate: []string{"ops"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var succeeded time.Time
	waitFor(t, "the runbook to succeed and verification to begin", func() bool {
		inc, err := h.m.Get(context.Background(), id)
		for _, e := range inc.Timeline {
			if err == nil && e.Type == EntryOutput {
				succeeded = e.Time
				return true
			}
		}
		return false
	})
	h.m.Close() // the controller stops during verification
	h.m = New(h.m.deps)
	t.Cleanup(h.m.Close)
	if err := h.m.Resume(context.Background()); err != nil {
		t.Fatal(err)
	}
	inc := h.waitStatus(id, StatusEscalated)
	var second time.Time
	for _, e := range inc.Timeline {
		if e.Type == EntryAttempt && e.Attempt == 2 {
			second = e.Time
		}
	}
	if second.IsZero() || second.Before(succeeded.Add(verify)) {
		t.Fatalf("attempt 2 at %s, %s after attempt 1 succeeded; want it once verify_timeout (%s) has passed:\n%s",
			second.Format(time.RFC3339Nano), second.Sub(succeeded), verify, types(inc))
	}
	if inc.Attempts != 2 || runs(t, h.dir) != 2 {
		t.Fatalf("%d attempts, %d runs of the runbook; want 2 and 2: %s", inc.Attempts, runs(t, h.dir), types(inc))
	}
}

// runs counts the lines the runbook's script appended to dir/runs.
func runs(t *testing.T, dir string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "runs"))
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "\n")
}

// waitFor polls cond until it holds, for at most 20 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// restart stops the manager and the engine as a controller stop does and
// starts new ones on the same store, resuming in the server's order:
// executions first, then incidents.
func (h *harness) restart() {
	h.t.Helper()
	deps := h.m.deps
	h.m.Close()
	h.eng.Close()
	h.eng = runbook.NewEngine(h.engDeps)
	h.t.Cleanup(h.eng.Close)
	if err := h.eng.Resume(context.Background()); err != nil {
		h.t.Fatal(err)
	}
	deps.Runner = h.eng
	h.m = New(deps)
	h.t.Cleanup(h.m.Close)
	if err := h.m.Resume(context.Background()); err != nil {
		h.t.Fatal(err)
	}
}

// put writes an incident record as a killed controller left it.
func (h *harness) put(inc *Incident) {
	h.t.Helper()
	body, err := json.Marshal(inc)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := h.st.PutIncident(context.Background(), store.IncidentRecord{ID: inc.ID, Key: inc.Trigger.Key, Status: inc.Status, OpenedAt: inc.OpenedAt, Body: body}); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) executionsOf(doc string) int {
	h.t.Helper()
	recs, err := h.st.Executions(context.Background(), 100)
	if err != nil {
		h.t.Fatal(err)
	}
	n := 0
	for _, r := range recs {
		if r.Document == doc {
			n++
		}
	}
	return n
}

// TestResumeWaitsForTheRunningAttempt: the controller stops while the
// attempt's runbook runs; the next one waits for that execution (which
// the engine resumes) instead of starting another.
func TestResumeWaitsForTheRunningAttempt(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	os.WriteFile(filepath.Join(h.dir, "docs", "slow.yaml"), []byte(`schemaVersion: "0.3"
mainSteps:
  - {name: nap, action: sleep, inputs: {Duration: 1s}}
  - {name: fix, action: runCommand, inputs: {InstanceId: i-1, Script: 'echo ran >> "$DIR/runs"; touch "$DIR/ok"'}}
`), 0o644)
	id, _ := h.m.Open(context.Background(), trigger, &Spec{Runbook: "slow", MaxAttempts: 3, VerifyTimeout: 5 * time.Second}, nil)
	var exec string
	waitFor(t, "the runbook to sleep", func() bool {
		inc, _ := h.m.Get(context.Background(), id)
		if inc.Current == nil {
			return false
		}
		ex, err := h.eng.Get(context.Background(), inc.Current.Execution)
		exec = inc.Current.Execution
		return err == nil && ex.Current == "nap"
	})
	h.restart()
	inc := h.waitStatus(id, StatusResolved)
	if inc.Attempts != 1 || inc.Current.Execution != exec || runs(t, h.dir) != 1 || h.executionsOf("slow") != 1 {
		t.Fatalf("%d attempts (execution %s, was %s), %d runs, %d executions; want one of each: %s",
			inc.Attempts, inc.Current.Execution, exec, runs(t, h.dir), h.executionsOf("slow"), types(inc))
	}
}

// TestResumeStartsARecordedAttemptOnce: killed between recording an
// attempt and starting its runbook, the next controller starts it under
// the recorded id; restarted again, it does not start it a second time.
func TestResumeStartsARecordedAttemptOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	os.WriteFile(filepath.Join(h.dir, "docs", "fix.yaml"), []byte(`schemaVersion: "0.3"
mainSteps:
  - {name: nap, action: sleep, inputs: {Duration: 1s}}
  - {name: fix, action: runCommand, inputs: {InstanceId: i-1, Script: 'echo ran >> "$DIR/runs"; touch "$DIR/ok"'}}
`), 0o644)
	now := time.Now().UTC()
	exec := runbook.NewExecutionID()
	inc := &Incident{ID: newID(), Status: StatusOpen, Trigger: trigger, Instance: "i-1", Runbook: "fix", Attempts: 1, OpenedAt: now,
		Spec:     &Spec{Runbook: "fix", MaxAttempts: 1, VerifyTimeout: 5 * time.Second},
		Current:  &Attempt{N: 1, Execution: exec, Phase: PhaseRunning, StartedAt: now},
		Timeline: []Entry{{Time: now, Type: EntryDetected}, {Time: now, Type: EntryAttempt, Attempt: 1, Execution: exec}}}
	h.put(inc)
	h.restart()
	waitFor(t, "the recorded execution to start", func() bool {
		ex, err := h.eng.Get(context.Background(), exec)
		return err == nil && ex.Current == "nap"
	})
	h.restart()
	got := h.waitStatus(inc.ID, StatusResolved)
	if got.Attempts != 1 || runs(t, h.dir) != 1 || h.executionsOf("fix") != 1 {
		t.Fatalf("%d attempts, %d runs, %d executions; want 1, 1, 1: %s", got.Attempts, runs(t, h.dir), h.executionsOf("fix"), types(got))
	}
	if ex, err := h.eng.Get(context.Background(), exec); err != nil || ex.Origin != "incident:"+inc.ID {
		t.Fatalf("execution %s: %+v %v", exec, ex, err)
	}
}

// TestMaxAttemptsHoldAcrossRestarts: stopped during the pause after a
// failed attempt, the next controller makes the remaining attempts only,
// the next one no sooner than its recorded time.
func TestMaxAttemptsHoldAcrossRestarts(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.doc("fix", `echo ran >> "$DIR/runs"; exit 1`)
	id, _ := h.m.Open(context.Background(), trigger, &Spec{Runbook: "fix", MaxAttempts: 2, RetryPause: 2 * time.Second, Escalate: []string{"ops"}}, nil)
	var retryAt time.Time
	waitFor(t, "the first attempt to fail", func() bool {
		inc, _ := h.m.Get(context.Background(), id)
		if inc.Current != nil && inc.Current.RetryAt != nil {
			retryAt = *inc.Current.RetryAt
			return true
		}
		return false
	})
	h.restart()
	inc := h.waitStatus(id, StatusEscalated)
	var second time.Time
	for _, e := range inc.Timeline {
		if e.Type == EntryAttempt && e.Attempt == 2 {
			second = e.Time
		}
	}
	if inc.Attempts != 2 || runs(t, h.dir) != 2 || second.Before(retryAt) {
		t.Fatalf("%d attempts, %d runs, attempt 2 at %s (due %s); want 2, 2, not early: %s",
			inc.Attempts, runs(t, h.dir), second.Format(time.RFC3339Nano), retryAt.Format(time.RFC3339Nano), types(inc))
	}
}

// TestEscalationIsEnqueuedOnce: an escalation recorded before a crash is
// enqueued by the next controller unless the notify outbox holds it (the
// crash came after enqueueing it); either way it is there once.
func TestEscalationIsEnqueuedOnce(t *testing.T) {
	t.Parallel()
	for _, enqueued := range []bool{false, true} {
		t.Run(fmt.Sprintf("enqueued before the crash %v", enqueued), func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
			defer hook.Close()
			n, err := notify.New(h.st, []notify.ChannelSpec{{Name: "ops", Type: notify.TypeWebhook, URL: hook.URL}}, notify.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer n.Close()
			h.m.deps.Notify = n.SendAll
			now := time.Now().UTC()
			inc := &Incident{ID: newID(), Status: StatusEscalated, Trigger: trigger, OpenedAt: now, Notified: []string{"ops"},
				Unsent: []string{notify.EventTrigger}, Spec: &Spec{Escalate: []string{"ops"}},
				Timeline: []Entry{{Time: now, Type: EntryDetected}, {Time: now, Type: EntryEscalated}}}
			h.put(inc)
			if enqueued {
				if err := n.SendAll(context.Background(), []string{"ops"}, h.m.message(*inc, notify.EventTrigger)); err != nil {
					t.Fatal(err)
				}
			}
			h.restart()
			waitFor(t, "the escalation to be recorded sent", func() bool {
				got, err := h.m.Get(context.Background(), inc.ID)
				return err == nil && len(got.Unsent) == 0
			})
			recs, err := h.st.Notifications(context.Background(), store.NotificationFilter{Key: inc.ID})
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != 1 || recs[0].Event != notify.EventTrigger {
				t.Fatalf("%d notifications in the outbox, want the escalation once: %+v", len(recs), recs)
			}
		})
	}
}

// TestRecordedOKResolvesAfterRestart: an alert resolved while the
// controller ran is not sent again; the next controller resolves the
// incident from its record.
func TestRecordedOKResolvesAfterRestart(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	now := time.Now().UTC()
	inc := &Incident{ID: newID(), Status: StatusEscalated, Trigger: trigger, OpenedAt: now, OKAt: &now, Spec: &Spec{},
		Timeline: []Entry{{Time: now, Type: EntryDetected}, {Time: now, Type: EntryEscalated}}}
	h.put(inc)
	h.restart()
	h.waitStatus(inc.ID, StatusResolved)
}
