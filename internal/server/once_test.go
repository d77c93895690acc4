package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/autoheal/autoheal/internal/api/wire"
	"github.com/autoheal/autoheal/internal/event"
	"github.com/autoheal/autoheal/internal/remediation"
	"github.com/autoheal/autoheal/internal/runbook"
	"github.com/autoheal/autoheal/internal/store"
)

// End-to-end tests of "exactly once": the controller runs as a process
// built with its crash points and kills itself (SIGKILL) at one of them,
// at every boundary of a runbook step, a remediation attempt and a
// maintenance window's task: before the record, between the record and
// the start, after the end but before its record. A second controller on
// the same state dir then finishes the work. Every side effect is a line
// a script appends to a file, so each is counted: none may happen twice,
// and every execution, incident and window run must end right.

// crashEnv is the environment that kills the controller at point (a
// crash point's name, with @N for its N-th hit).
func crashEnv(point string) string { return "AUTOHEAL_CRASH_AT=" + point }

// pointName is point without its @N.
func pointName(point string) string { name, _, _ := strings.Cut(point, "@"); return name }

// fileLines reads the lines a runbook's scripts appended to path.
func fileLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(strings.ReplaceAll(string(b), " ", "_"))
}

// writeDoc puts a runbook into the documents directory beside cfg.
func writeDoc(t *testing.T, cfg, name, text string) {
	t.Helper()
	docs := filepath.Join(filepath.Dir(cfg), "documents")
	if err := os.MkdirAll(docs, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(docs, name+".yaml"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// onceDoc appends each runCommand step's name to the file Log names.
const onceDoc = `schemaVersion: "0.3"
parameters:
  InstanceId: {type: String}
  Log: {type: String}
mainSteps:
  - name: first
    action: runCommand
    onFailure: step:report
    inputs: {InstanceId: "{{ InstanceId }}", Script: 'echo first >> "$Log"'}
  - name: pause
    action: sleep
    inputs: {Duration: 3s}
  - name: second
    action: runCommand
    isEnd: true
    inputs: {InstanceId: "{{ InstanceId }}", Script: 'echo second >> "$Log"'}
  - name: report
    action: runCommand
    inputs: {InstanceId: "{{ InstanceId }}", Script: 'echo report >> "$Log"'}
`

// onlyExecution returns the one execution of document doc.
func (e *env) onlyExecution(doc string) wire.Execution {
	e.t.Helper()
	var found []wire.Execution
	waitFor(e.t, 10*time.Second, "the execution of "+doc, func() bool {
		list, err := e.client.Executions(context.Background(), 100)
		found = found[:0]
		for _, ex := range list {
			if ex.Document == doc {
				found = append(found, ex)
			}
		}
		return err == nil && len(found) > 0
	})
	if len(found) != 1 {
		e.t.Fatalf("%d executions of %s, want 1", len(found), doc)
	}
	return found[0]
}

// TestRunbookStepsRunOnceAcrossCrashes: killed at each boundary of a
// step, the next controller neither runs a step with effects a second
// time nor loses one, and a sleep keeps its recorded start.
func TestRunbookStepsRunOnceAcrossCrashes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, crash string
		status      string
		log         string
		interrupted bool // first is failed as interrupted
	}{
		{"before the first step is recorded", "runbook.step.before", runbook.StatusSuccess, "first second", false},
		{"between the record and the start", "runbook.step.recorded", runbook.StatusFailed, "report", true},
		{"after the step ended, before its end is recorded", "runbook.step.ended", runbook.StatusFailed, "first report", true},
		{"during the sleep", "runbook.step.recorded@2", runbook.StatusSuccess, "first second", false},
		{"after the sleep ended, before the next step is recorded", "runbook.step.before@3", runbook.StatusSuccess, "first second", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := writeConfig(t, webGroupConfig(1))
			writeDoc(t, cfg, "once", onceDoc)
			state, log := t.TempDir(), filepath.Join(t.TempDir(), "log")
			e := startProcess(t, cfg, state, crashEnv(tc.crash))
			in := e.waitInService(1, 30*time.Second)[0]
			// The answer may not come: the controller may die first.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			e.client.Run(ctx, wire.RunRequest{Document: "once", Parameters: map[string]string{"InstanceId": in.ID, "Log": log}})
			cancel()
			e.waitCrash(pointName(tc.crash), 30*time.Second)

			e2 := startProcess(t, cfg, state)
			ex := e2.waitExecution(e2.onlyExecution("once").ID, 30*time.Second)
			if got := strings.Join(fileLines(t, log), " "); ex.Status != tc.status || got != tc.log {
				t.Fatalf("execution %s, steps ran: %q; want %s, %q:\n%s\nevents:\n%s", ex.Status, got, tc.status, tc.log, showExecution(ex), e2.dumpEvents())
			}
			first := step(t, ex, "first")
			if tc.interrupted != strings.Contains(first.Error, "interrupted by a controller restart") || first.Attempts != 1 {
				t.Fatalf("step first: %s, %d attempt(s), %q", first.Status, first.Attempts, first.Error)
			}
			if p := step(t, ex, "pause"); p.Status == runbook.StatusSuccess {
				// The sleep lasts its three seconds from its recorded
				// start, not three seconds from the restart.
				resumed := resumeTime(t, e2, ex.ID)
				took := p.EndedAt.Sub(*p.StartedAt)
				if took < 3*time.Second || (p.StartedAt.Before(resumed) && !p.EndedAt.Before(resumed.Add(3*time.Second))) {
					t.Fatalf("pause %s..%s (%s), resumed at %s: the sleep did not keep its start", p.StartedAt, p.EndedAt, took, resumed)
				}
			}
		})
	}
}

// resumeTime is when the second controller resumed execution id.
func resumeTime(t *testing.T, e *env, id string) time.Time {
	t.Helper()
	for _, ev := range e.events() {
		if d, ok := ev.Data.(event.ExecutionResume); ok && d.Execution.Execution == id {
			return ev.Time
		}
	}
	t.Fatalf("no execution.resume event for %s:\n%s", id, e.dumpEvents())
	return time.Time{}
}

// hook is a webhook channel's receiver that counts the notifications by
// event (trigger, resolve), each delivery once, as a receiver that drops
// repeats of an X-Autoheal-Delivery would.
type hook struct {
	srv *httptest.Server
	mu  sync.Mutex
	got map[string]int
	ids map[string]bool // deliveries heard
}

func newHook(t *testing.T) *hook {
	h := &hook{got: map[string]int{}, ids: map[string]bool{}}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var m struct {
			Event string `json:"event"`
		}
		json.Unmarshal(b, &m)
		h.mu.Lock()
		// A delivery cut short by a crash is sent again with the same
		// X-Autoheal-Delivery, for the receiver to drop: counted once.
		// (A second escalation would be a new delivery, with a new id.)
		if id := r.Header.Get("X-Autoheal-Delivery"); id == "" || !h.ids[id] {
			h.ids[id] = true
			h.got[m.Event]++
		}
		h.mu.Unlock()
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hook) count(ev string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.got[ev]
}

// remediationConfig routes alert Broken to runbook fix, which appends its
// execution's id to log, and alert Unfixable to a runbook that does not
// exist; both escalate to a webhook.
func remediationConfig(t *testing.T, hookURL, log string) string {
	cfg := writeConfig(t, webGroupConfig(1)+fmt.Sprintf(`
channels:
  - {name: ops, type: webhook, url: "%s", max_attempts: 3}
alertmanager:
  routes:
    - {match: {alertname: Broken}, runbook: fix, target_label: instance_id, escalate: [ops]}
    - {match: {alertname: Unfixable}, runbook: no-such-runbook, target_label: instance_id, escalate: [ops]}
`, hookURL))
	writeDoc(t, cfg, "fix", fmt.Sprintf(`schemaVersion: "0.3"
parameters:
  InstanceId: {type: String}
  Log: {type: String, default: %q}
mainSteps:
  - {name: nap, action: sleep, inputs: {Duration: 1s}}
  - name: fix
    action: runCommand
    inputs:
      InstanceId: "{{ InstanceId }}"
      Env: {EXEC: "{{ automation:EXECUTION_ID }}"}
      Script: 'echo "$EXEC" >> "$Log"'
`, log))
	return cfg
}

// alert posts an Alertmanager webhook for alert name on instance; the
// answer may not come when the controller dies meanwhile.
func (e *env) alert(name, instance, status string) {
	payload := map[string]any{"version": "4", "status": status, "receiver": "autoheal", "groupKey": "{}:{alertname=\"" + name + "\"}",
		"alerts": []map[string]any{{"status": status, "labels": map[string]string{"alertname": name, "instance_id": instance},
			"annotations": map[string]string{"summary": name}, "startsAt": time.Now().Add(-time.Minute).UTC(), "fingerprint": name + instance}}}
	httpPostJSON("http://"+e.apiAddr+"/v1/alertmanager", payload, 5*time.Second)
}

// onlyIncident waits for the one incident and for cond on it.
func (e *env) onlyIncident(what string, cond func(wire.Incident) bool) wire.Incident {
	e.t.Helper()
	var inc wire.Incident
	waitFor(e.t, 30*time.Second, what, func() bool {
		list, err := e.client.Incidents(context.Background(), 10)
		if err != nil || len(list) != 1 {
			return false
		}
		inc = list[0]
		return cond(inc)
	})
	return inc
}

func hasEntry(inc wire.Incident, typ string) bool {
	return slices.ContainsFunc(inc.Timeline, func(en wire.TimelineEntry) bool { return en.Type == typ })
}

// TestRemediationAttemptRunsOnceAcrossCrashes: an Alertmanager alert
// whose runbook succeeds; the controller is killed at each boundary of
// the attempt, or (the reported bug) during verification. The runbook
// runs once, under the execution id recorded for the attempt, the
// verification deadline recorded before the crash holds after it, and
// the resolved alert closes the incident after one attempt.
func TestRemediationAttemptRunsOnceAcrossCrashes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, crash string }{
		{"between the record and the start", "remediation.attempt.recorded"},
		{"right after the start", "remediation.attempt.started"},
		{"after the runbook ended, before its outcome is recorded", "remediation.attempt.ended"},
		{"after verification began", "remediation.attempt.recorded_end"},
		{"killed during verification", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			log := filepath.Join(t.TempDir(), "log")
			h := newHook(t)
			cfg := remediationConfig(t, h.srv.URL, log)
			state := t.TempDir()
			var e *env
			if tc.crash != "" {
				e = startProcess(t, cfg, state, crashEnv(tc.crash))
			} else {
				e = startProcess(t, cfg, state)
			}
			in := e.waitInService(1, 30*time.Second)[0]
			e.alert("Broken", in.ID, "firing")
			if tc.crash != "" {
				e.waitCrash(tc.crash, 30*time.Second)
			} else {
				e.onlyIncident("verification to begin", func(inc wire.Incident) bool { return hasEntry(inc, remediation.EntryOutput) })
				e.kill9()
			}

			e2 := startProcess(t, cfg, state)
			inc := e2.onlyIncident("verification after the restart", func(inc wire.Incident) bool {
				return hasEntry(inc, remediation.EntryOutput) && slices.ContainsFunc(inc.Timeline, func(en wire.TimelineEntry) bool {
					return strings.HasPrefix(en.Message, "controller restarted")
				})
			})
			var output wire.TimelineEntry
			for _, en := range inc.Timeline {
				if en.Type == remediation.EntryOutput {
					output = en
				}
			}
			// Verification ends verify_timeout (2m) after the runbook
			// succeeded, as recorded then, whenever the restart came.
			if c := inc.Current; c == nil || c.Phase != remediation.PhaseVerifying || c.VerifyBy == nil ||
				c.VerifyBy.Sub(output.Time) != 2*time.Minute {
				t.Fatalf("after the restart the attempt is %+v (runbook succeeded at %s):\n%s", c, output.Time, timelineTypes(inc))
			}
			e2.alert("Broken", in.ID, "resolved")
			inc = e2.onlyIncident("the incident to be resolved", func(inc wire.Incident) bool { return inc.Status == remediation.StatusResolved })
			runs := fileLines(t, log)
			if inc.Attempts != 1 || len(runs) != 1 || runs[0] != inc.Current.Execution || e2.executionsOf("fix") != 1 {
				t.Fatalf("%d attempt(s), runbook runs %v (attempt's execution %s), %d executions; want one of each:\n%+v",
					inc.Attempts, runs, inc.Current.Execution, e2.executionsOf("fix"), inc.Timeline)
			}
			if n := h.count("trigger") + h.count("resolve"); n != 0 {
				t.Fatalf("%d notifications for an incident the runbook fixed", n)
			}
		})
	}
}

// executionsOf counts the executions of document doc.
func (e *env) executionsOf(doc string) int {
	list, err := e.client.Executions(context.Background(), 100)
	if err != nil {
		e.t.Fatal(err)
	}
	n := 0
	for _, ex := range list {
		if ex.Document == doc {
			n++
		}
	}
	return n
}

// TestEscalationIsSentOnceAcrossCrashes: an alert with no runbook
// escalates; the controller is killed after recording the escalation,
// after enqueueing it, and after enqueueing the resolution. The webhook
// hears of the incident once and of its resolution once.
func TestEscalationIsSentOnceAcrossCrashes(t *testing.T) {
	t.Parallel()
	for _, crash := range []string{"remediation.escalate.recorded", "remediation.notify.sent", "remediation.resolve.sent"} {
		t.Run(crash, func(t *testing.T) {
			t.Parallel()
			h := newHook(t)
			cfg := remediationConfig(t, h.srv.URL, filepath.Join(t.TempDir(), "log"))
			state := t.TempDir()
			e := startProcess(t, cfg, state, crashEnv(crash))
			in := e.waitInService(1, 30*time.Second)[0]
			e.alert("Unfixable", in.ID, "firing")
			if crash == "remediation.resolve.sent" {
				e.onlyIncident("the escalation", func(inc wire.Incident) bool {
					return inc.Status == remediation.StatusEscalated && len(inc.Unsent) == 0
				})
				e.alert("Unfixable", in.ID, "resolved")
			}
			e.waitCrash(crash, 30*time.Second)

			e2 := startProcess(t, cfg, state)
			if crash != "remediation.resolve.sent" {
				e2.onlyIncident("the escalation", func(inc wire.Incident) bool {
					return inc.Status == remediation.StatusEscalated && len(inc.Unsent) == 0
				})
				e2.alert("Unfixable", in.ID, "resolved")
			}
			inc := e2.onlyIncident("the incident to be resolved", func(inc wire.Incident) bool { return inc.Status == remediation.StatusResolved })
			// The resolution is delivered after the escalation, in their
			// lane's order: a second escalation would have come first.
			waitFor(t, 30*time.Second, "the notifications", func() bool { return h.count("resolve") >= 1 })
			e2.stop()
			st, err := store.Open(state)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			recs, err := st.Notifications(context.Background(), store.NotificationFilter{Key: inc.ID})
			if err != nil {
				t.Fatal(err)
			}
			outbox := map[string]int{}
			for _, r := range recs {
				outbox[r.Event]++
			}
			if h.count("trigger") != 1 || outbox["trigger"] != 1 || outbox["resolve"] != 1 {
				t.Fatalf("webhook heard %d escalation(s); the outbox holds %v; want one escalation and one resolution", h.count("trigger"), outbox)
			}
		})
	}
}

// windowOnceConfig is a window that runs document touch on each of two
// instances, one at a time; touch appends its target and execution to
// log.
func windowOnceConfig(t *testing.T, log string) string {
	cfg := writeConfig(t, webGroupConfig(2)+fmt.Sprintf(`
maintenance_windows:
  - name: rolling
    schedule: "0 3 1 1 *"
    duration: 1h
    targets: {groups: [web]}
    tasks:
      - document: touch
        parameters: {InstanceId: "{{ TARGET_ID }}", Log: %q}
        max_concurrency: "1"
`, log))
	writeDoc(t, cfg, "touch", `schemaVersion: "0.3"
parameters:
  InstanceId: {type: String}
  Log: {type: String}
mainSteps:
  - {name: nap, action: sleep, inputs: {Duration: 1s}}
  - name: touch
    action: runCommand
    inputs:
      InstanceId: "{{ InstanceId }}"
      Env: {EXEC: "{{ automation:EXECUTION_ID }}"}
      Script: 'echo "$InstanceId/$EXEC" >> "$Log"'
`)
	return cfg
}

// TestWindowTasksRunOnceAcrossCrashes: a window run is killed at each
// boundary of its tasks; the next controller takes the run up: each
// target's task runs once, under the execution recorded for it, and the
// run ends Success.
func TestWindowTasksRunOnceAcrossCrashes(t *testing.T) {
	t.Parallel()
	for _, crash := range []string{
		"maintenance.run.recorded",
		"maintenance.task.recorded",
		"maintenance.task.started",
		"maintenance.task.ended",
		"maintenance.task.recorded@2",
	} {
		t.Run(crash, func(t *testing.T) {
			t.Parallel()
			log := filepath.Join(t.TempDir(), "log")
			cfg := windowOnceConfig(t, log)
			state := t.TempDir()
			e := startProcess(t, cfg, state, crashEnv(crash))
			e.waitInService(2, 30*time.Second)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			e.client.RunWindow(ctx, "rolling")
			cancel()
			e.waitCrash(pointName(crash), 30*time.Second)

			e2 := startProcess(t, cfg, state)
			var end event.WindowEnd
			waitFor(t, 60*time.Second, "the window run to end", func() bool {
				for _, ev := range e2.events() {
					if d, ok := ev.Data.(event.WindowEnd); ok {
						end = d
						return true
					}
				}
				return false
			})
			runs := fileLines(t, log)
			targets := map[string]int{}
			var starts []string
			for _, r := range runs {
				target, _, _ := strings.Cut(r, "/")
				targets[target]++
			}
			for _, ev := range e2.events() {
				if d, ok := ev.Data.(event.TaskStart); ok {
					starts = append(starts, ev.Instance+"/"+d.Execution)
				}
			}
			slices.Sort(runs)
			slices.Sort(starts)
			if end.Outcome != "Success" || end.Succeeded != 2 || len(targets) != 2 || len(runs) != 2 || !slices.Equal(runs, starts) {
				t.Fatalf("run ended %+v; tasks ran %v, recorded as started %v; want each target once, as recorded\n%s", end, runs, starts, e2.dumpEvents())
			}
			resumed := 0
			for _, ev := range e2.events() {
				if _, ok := ev.Data.(event.WindowResume); ok {
					resumed++
				}
			}
			if resumed != 1 {
				t.Fatalf("%d window resume events, want 1", resumed)
			}
		})
	}
}
