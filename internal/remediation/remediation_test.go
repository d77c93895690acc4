package remediation

import (
	"context"
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
	t    *testing.T
	dir  string
	st   *store.Store
	eng  *runbook.Engine
	lib  *runbook.Library
	m    *Manager
	mu   sync.Mutex
	sent []notify.Message
	to   [][]string
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
	h.eng = runbook.NewEngine(runbook.Deps{
		Store: st, Documents: h.lib.Get,
		Command: func(ctx context.Context, req runbook.CommandRequest) (runbook.CommandResult, error) {
			cmd := exec.CommandContext(ctx, "/bin/sh", "-c", req.Script)
			cmd.Env = []string{"PATH=/usr/bin:/bin", "DIR=" + h.dir, "INSTANCE=" + req.InstanceID}
			out, _ := cmd.CombinedOutput()
			return runbook.CommandResult{ExitCode: cmd.ProcessState.ExitCode(), Stdout: string(out)}, nil
		},
	})
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
