package runbook

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/autoheal/autoheal/internal/store"
)

// harness is an engine on a real store, with documents from a temp dir,
// scripts run by /bin/sh for real, and a small API.
type harness struct {
	t        *testing.T
	dir      string
	st       *store.Store
	eng      *Engine
	lib      *Library
	restarts atomic.Int64
	api      *http.ServeMux
	scripts  atomic.Int64
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{t: t, dir: t.TempDir(), api: http.NewServeMux()}
	st, err := store.Open(filepath.Join(h.dir, "state"))
	if err != nil {
		t.Fatal(err)
	}
	h.st = st
	t.Cleanup(func() { st.Close() })
	os.MkdirAll(filepath.Join(h.dir, "docs"), 0o755)
	h.lib = NewLibrary(filepath.Join(h.dir, "docs"))
	h.api.HandleFunc("GET /v1/things/{name}", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"name": r.PathValue("name"), "items": []map[string]string{{"state": "ok"}, {"state": "ok"}}})
	})
	h.eng = h.engine()
	return h
}

func (h *harness) engine() *Engine {
	e := NewEngine(Deps{
		Store:     h.st,
		Documents: h.lib.Get,
		API:       h.api,
		Command: func(ctx context.Context, req CommandRequest) (CommandResult, error) {
			h.scripts.Add(1)
			cmd := exec.Command("/bin/sh", "-c", req.Script)
			cmd.Dir = req.Dir // as the server's runs it (the instance's when empty)
			cmd.Env = []string{"PATH=/usr/bin:/bin", "MARKER_DIR=" + h.dir}
			for k, v := range req.Env {
				cmd.Env = append(cmd.Env, k+"="+v)
			}
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			var out strings.Builder
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				return CommandResult{}, err
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case <-done:
			case <-ctx.Done():
				syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				<-done
				return CommandResult{ExitCode: -1, Stdout: out.String(), TimedOut: true}, nil
			}
			return CommandResult{ExitCode: cmd.ProcessState.ExitCode(), Stdout: out.String()}, nil
		},
		Restart: func(ctx context.Context, id string) error {
			h.restarts.Add(1)
			return nil
		},
	})
	h.t.Cleanup(e.Close)
	return e
}

func (h *harness) doc(name, text string) {
	h.t.Helper()
	if err := os.WriteFile(filepath.Join(h.dir, "docs", name+".yaml"), []byte(text), 0o644); err != nil {
		h.t.Fatal(err)
	}
	if _, err := h.lib.Get(name); err != nil {
		h.t.Fatalf("document %s: %v", name, err)
	}
}

func (h *harness) run(name string, params map[string]string) Execution {
	h.t.Helper()
	id, err := h.eng.Start(context.Background(), name, params, "test")
	if err != nil {
		h.t.Fatal(err)
	}
	return h.wait(id)
}

func (h *harness) wait(id string) Execution {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := h.eng.Wait(ctx, id); err != nil {
		h.t.Fatal(err)
	}
	ex, err := h.eng.Get(ctx, id)
	if err != nil {
		h.t.Fatal(err)
	}
	return ex
}

func stepStatus(ex Execution) string {
	var parts []string
	for _, s := range ex.Steps {
		parts = append(parts, s.Name+"="+s.Status)
	}
	return strings.Join(parts, " ")
}

func TestOnFailureBranches(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	tests := []struct {
		name, doc string
		status    string
		steps     string
	}{
		{"abort stops and fails", `
mainSteps:
  - {name: a, action: runCommand, inputs: {InstanceId: i-1, Script: "exit 3"}}
  - {name: b, action: runCommand, inputs: {InstanceId: i-1, Script: "true"}}
`, StatusFailed, "a=Failed b=Skipped"},
		{"continue goes on and still fails", `
mainSteps:
  - {name: a, action: runCommand, onFailure: Continue, inputs: {InstanceId: i-1, Script: "exit 3"}}
  - {name: b, action: runCommand, inputs: {InstanceId: i-1, Script: "true"}}
`, StatusFailed, "a=Failed b=Success"},
		{"a non-critical failure does not fail the execution", `
mainSteps:
  - {name: a, action: runCommand, onFailure: Continue, isCritical: false, inputs: {InstanceId: i-1, Script: "exit 3"}}
  - {name: b, action: runCommand, inputs: {InstanceId: i-1, Script: "true"}}
`, StatusSuccess, "a=Failed b=Success"},
		{"step:NAME jumps to the cleanup", `
mainSteps:
  - {name: a, action: runCommand, onFailure: "step:cleanup", inputs: {InstanceId: i-1, Script: "exit 3"}}
  - {name: b, action: runCommand, isEnd: true, inputs: {InstanceId: i-1, Script: "true"}}
  - {name: cleanup, action: runCommand, inputs: {InstanceId: i-1, Script: "true"}}
`, StatusFailed, "a=Failed b=Skipped cleanup=Success"},
		{"maxAttempts retries", `
mainSteps:
  - {name: a, action: runCommand, maxAttempts: 3, inputs: {InstanceId: i-1, Script: "n=$(cat $MARKER_DIR/n 2>/dev/null || echo 0); echo $((n+1)) > $MARKER_DIR/n; test $n -ge 2"}}
`, StatusSuccess, "a=Success"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := fmt.Sprintf("doc%d", i)
			h.doc(name, "schemaVersion: \"0.3\"\n"+tt.doc)
			os.Remove(filepath.Join(h.dir, "n"))
			ex := h.run(name, nil)
			if ex.Status != tt.status || stepStatus(ex) != tt.steps {
				t.Fatalf("%s (%s): %s; want %s (%s)", ex.Status, ex.Error, stepStatus(ex), tt.status, tt.steps)
			}
		})
	}
}

func TestTimeoutKillsScript(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.doc("slow", `schemaVersion: "0.3"
mainSteps:
  - {name: a, action: runCommand, timeoutSeconds: 1, inputs: {InstanceId: i-1, Script: "sleep 30 & sleep 30"}}
`)
	start := time.Now()
	ex := h.run("slow", nil)
	if ex.Status != StatusTimedOut || ex.Steps[0].Status != StatusTimedOut {
		t.Fatalf("%s %s", ex.Status, stepStatus(ex))
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("took %v", d)
	}
}

func TestExit194RestartsAndRunsAgain(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.doc("reboot", `schemaVersion: "0.3"
mainSteps:
  - name: patch
    action: runCommand
    inputs:
      InstanceId: i-1
      Commands:
        - 'if [ ! -f "$MARKER_DIR/rebooted" ]; then touch "$MARKER_DIR/rebooted"; exit 194; fi'
        - echo patched
`)
	ex := h.run("reboot", nil)
	if ex.Status != StatusSuccess || h.restarts.Load() != 1 || h.scripts.Load() != 2 {
		t.Fatalf("%s: %d restarts, %d runs; want success after 1 restart and 2 runs", ex.Status, h.restarts.Load(), h.scripts.Load())
	}
}

func TestOutputsNestedAndBranch(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.doc("child", `schemaVersion: "0.3"
parameters:
  Word: {type: String}
mainSteps:
  - name: shout
    action: runCommand
    inputs: {InstanceId: i-1, Script: 'printf "%s!" "$Word"'}
    outputs: [{Name: Text, Selector: $.Stdout, Type: String}]
outputs: [shout.Text]
`)
	h.doc("parent", `schemaVersion: "0.3"
parameters:
  Word: {type: String, default: hello}
mainSteps:
  - name: look
    action: executeApi
    inputs: {Path: "/v1/things/{{ Word }}"}
    outputs:
      - {Name: Name, Selector: $.Payload.name, Type: String}
      - {Name: States, Selector: "$.Payload.items[*].state", Type: StringList}
  - name: assert
    action: assertProperty
    inputs: {Path: "/v1/things/x", PropertySelector: "$.items..state", DesiredValues: [ok]}
  - name: nested
    action: executeAutomation
    inputs: {DocumentName: child, RuntimeParameters: {Word: "{{ look.Name }}"}}
    outputs: [{Name: Text, Selector: "$.Output['shout.Text']", Type: String}]
  - name: choose
    action: branch
    inputs:
      Choices:
        - {NextStep: yes, Variable: "{{ nested.Text }}", StringEquals: "hello!"}
      Default: no
  - {name: no, action: runCommand, isEnd: true, inputs: {InstanceId: i-1, Script: "exit 1"}}
  - {name: yes, action: sleep, inputs: {Duration: PT0.1S}}
`)
	ex := h.run("parent", nil)
	if ex.Status != StatusSuccess || stepStatus(ex) != "look=Success assert=Success nested=Success choose=Success no=Skipped yes=Success" {
		t.Fatalf("%s (%s): %s", ex.Status, ex.Error, stepStatus(ex))
	}
	if ex.Outputs["nested.Text"] != "hello!" || fmt.Sprint(ex.Outputs["look.States"]) != "[ok ok]" {
		t.Fatalf("outputs %v", ex.Outputs)
	}
	child, _ := h.eng.Get(context.Background(), ex.Steps[2].Child)
	if child.Parent != ex.ID || child.Status != StatusSuccess {
		t.Fatalf("child %+v", child)
	}
}

// TestParameterInjectionStaysInert: a parameter is data in the script's
// environment, never shell text.
func TestParameterInjectionStaysInert(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.doc("inject", `schemaVersion: "0.3"
parameters:
  Name: {type: String}
mainSteps:
  - name: greet
    action: runCommand
    inputs: {InstanceId: i-1, Script: 'printf "hello %s" "$Name"'}
    outputs: [{Name: Out, Selector: $.Stdout, Type: String}]
`)
	evil := `x"; touch "$MARKER_DIR/pwned"; echo "` + "`touch $MARKER_DIR/pwned2`$(touch $MARKER_DIR/pwned3)"
	ex := h.run("inject", map[string]string{"Name": evil})
	if ex.Status != StatusSuccess || ex.Outputs["greet.Out"] != "hello "+evil {
		t.Fatalf("%s: output %q", ex.Status, ex.Outputs["greet.Out"])
	}
	for _, f := range []string{"pwned", "pwned2", "pwned3"} {
		if _, err := os.Stat(filepath.Join(h.dir, f)); err == nil {
			t.Fatalf("the parameter ran as shell: %s exists", f)
		}
	}
}

func TestApproveRejectAndCancel(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.doc("gate", `schemaVersion: "0.3"
mainSteps:
  - {name: ask, action: approve, inputs: {Message: go?}}
  - {name: act, action: sleep, inputs: {Duration: 10ms}}
`)
	ctx := context.Background()
	waitStatus := func(id, status string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			if ex, _ := h.eng.Get(ctx, id); ex.Status == status {
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
		t.Fatalf("execution %s never %s", id, status)
	}
	var wg sync.WaitGroup
	for _, tc := range []struct {
		approve bool
		want    string
	}{{true, StatusSuccess}, {false, StatusFailed}} {
		id, _ := h.eng.Start(ctx, "gate", nil, "test")
		waitStatus(id, StatusWaiting)
		if err := h.eng.Approve(ctx, id, Approval{Approver: "alice", Approved: tc.approve}); err != nil {
			t.Fatal(err)
		}
		if ex := h.wait(id); ex.Status != tc.want || len(ex.Approvals) != 1 || ex.Approvals[0].Approver != "alice" {
			t.Fatalf("approve=%v: %s %+v", tc.approve, ex.Status, ex.Approvals)
		}
	}
	wg.Wait()
	id, _ := h.eng.Start(ctx, "gate", nil, "test")
	waitStatus(id, StatusWaiting)
	if err := h.eng.Cancel(ctx, id); err != nil {
		t.Fatal(err)
	}
	if ex := h.wait(id); ex.Status != StatusCancelled || ex.Steps[0].Status != StatusCancelled {
		t.Fatalf("cancel: %s %s", ex.Status, stepStatus(ex))
	}
}

// TestResumeAfterControllerRestart: an execution resumes at its step after
// the engine stops; a runCommand that was running is failed, not re-run.
func TestResumeAfterControllerRestart(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.doc("long", `schemaVersion: "0.3"
mainSteps:
  - {name: first, action: runCommand, inputs: {InstanceId: i-1, Script: "true"}}
  - {name: nap, action: sleep, inputs: {Duration: 1s}}
  - {name: last, action: runCommand, inputs: {InstanceId: i-1, Script: "true"}}
`)
	h.doc("busy", `schemaVersion: "0.3"
mainSteps:
  - {name: work, action: runCommand, onFailure: "step:report", inputs: {InstanceId: i-1, Script: "sleep 30"}}
  - {name: never, action: sleep, isEnd: true, inputs: {Duration: 1ms}}
  - {name: report, action: sleep, inputs: {Duration: 1ms}}
`)
	ctx := context.Background()
	long, _ := h.eng.Start(ctx, "long", nil, "test")
	busy, _ := h.eng.Start(ctx, "busy", nil, "test")
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		a, _ := h.eng.Get(ctx, long)
		b, _ := h.eng.Get(ctx, busy)
		if a.Current == "nap" && b.Steps[0].Status == StatusInProgress {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	h.eng.Close() // the controller stops
	h.eng = h.engine()
	if err := h.eng.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	if ex := h.wait(long); ex.Status != StatusSuccess || stepStatus(ex) != "first=Success nap=Success last=Success" {
		t.Fatalf("long: %s %s", ex.Status, stepStatus(ex))
	}
	ex := h.wait(busy)
	if ex.Status != StatusFailed || stepStatus(ex) != "work=Failed never=Skipped report=Success" ||
		!strings.Contains(ex.Steps[0].Error, "controller restart") {
		t.Fatalf("busy: %s %s: %q", ex.Status, stepStatus(ex), ex.Steps[0].Error)
	}
}

// TestSSMShellScriptRuns: an aws:runCommand step written as SSM writes it
// runs its commands in its working directory, reboots on exit 194 as SSM
// does, and its result says where the output went.
func TestSSMShellScriptRuns(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.doc("ssm", `schemaVersion: "0.3"
mainSteps:
  - name: patch
    description: Patch, rebooting once
    action: aws:runCommand
    inputs:
      DocumentName: AWS-RunShellScript
      InstanceIds: [i-1]
      OutputS3BucketName: logs
      Parameters:
        workingDirectory: ["/"]
        executionTimeout: ["60"]
        commands:
          - 'if [ ! -f "$MARKER_DIR/rebooted" ]; then touch "$MARKER_DIR/rebooted"; exit 194; fi'
          - 'printf "patched in %s" "$PWD"'
    outputs: [{Name: Where, Selector: $.OutputLocation, Type: String}, {Name: Said, Selector: $.Stdout, Type: String}]
`)
	ex := h.run("ssm", nil)
	if ex.Status != StatusSuccess || h.restarts.Load() != 1 || h.scripts.Load() != 2 {
		t.Fatalf("%s (%s): %d restarts, %d runs; want success after 1 restart and 2 runs", ex.Status, ex.Error, h.restarts.Load(), h.scripts.Load())
	}
	if ex.Outputs["patch.Said"] != "patched in /" || !strings.Contains(fmt.Sprint(ex.Outputs["patch.Where"]), "kept in this execution") {
		t.Fatalf("outputs %v", ex.Outputs)
	}
}

// TestSeedGracefulReboot: the AWS design's graceful reboot document (seed
// 002, testdata/good/RebootInstanceGraceful.yaml), unchanged, against a
// target group behind autoheal's API: it asserts the group healthy,
// deregisters the instance and waits until it is unused, reboots it
// through the nested document (exit 194 once), registers it again and
// waits until the group is healthy, with AWS's ARN and response shapes.
func TestSeedGracefulReboot(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	var mu sync.Mutex
	targets := map[string]string{"i-1": "healthy", "i-2": "healthy"}
	var calls []string
	health := func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		var out []map[string]any
		for _, id := range slices.Sorted(maps.Keys(targets)) {
			out = append(out, map[string]any{"id": id, "address": "127.0.0.1:8080", "state": targets[id]})
			// A target registered again passes its first check now.
			if targets[id] == "initial" {
				targets[id] = "healthy"
			}
		}
		json.NewEncoder(w).Encode(map[string]any{"name": r.PathValue("name"), "targets": out})
	}
	change := func(w http.ResponseWriter, r *http.Request) {
		var req struct{ ID string }
		json.NewDecoder(r.Body).Decode(&req)
		mu.Lock()
		defer mu.Unlock()
		op := r.PathValue("op")
		calls = append(calls, op+" "+r.PathValue("name")+" "+req.ID)
		if op == "register" {
			targets[req.ID] = "initial"
		} else {
			delete(targets, req.ID) // drained at once
		}
		json.NewEncoder(w).Encode(map[string]any{})
	}
	h.api.HandleFunc("GET /v1/target-groups/{name}/health", health)
	h.api.HandleFunc("POST /v1/target-groups/{name}/{op}", change)
	graceful, err := os.ReadFile("testdata/good/RebootInstanceGraceful.yaml")
	if err != nil {
		t.Fatal(err)
	}
	h.doc("RebootInstanceGraceful", string(graceful))
	// The nested document, as the seed's but without its 60 s wait.
	h.doc("RebootWithHealthcheck", `schemaVersion: "0.3"
parameters:
  InstanceIds: {type: StringList}
mainSteps:
  - name: InvokeReboot
    action: aws:runCommand
    inputs:
      DocumentName: AWS-RunShellScript
      InstanceIds: "{{ InstanceIds }}"
      Parameters:
        commands: |
          if [ ! -f "$MARKER_DIR/rebooted" ]; then touch "$MARKER_DIR/rebooted"; exit 194; fi
`)
	ex := h.run("RebootInstanceGraceful", map[string]string{
		"InstanceId": "i-1", "TargetGroupArn": "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/web/0123456789abcdef"})
	if ex.Status != StatusSuccess {
		t.Fatalf("%s (%s): %s", ex.Status, ex.Error, stepStatus(ex))
	}
	if got := strings.Join(calls, "; "); got != "deregister web i-1; register web i-1" {
		t.Fatalf("calls: %s", got)
	}
	if h.restarts.Load() != 1 {
		t.Fatalf("%d restarts, want the reboot's one", h.restarts.Load())
	}
}

func TestTargetHealthDescriptions(t *testing.T) {
	payload := map[string]any{"targets": []any{
		map[string]any{"id": "i-1", "address": "10.0.0.1:8080", "state": "healthy"},
		map[string]any{"id": "i-2", "address": "10.0.0.2:8081", "state": "draining", "reason": "deregistered"},
	}}
	all, _ := json.Marshal(targetHealthDescriptions(payload, nil))
	if want := `{"TargetHealthDescriptions":[{"HealthCheckPort":"8080","Target":{"Id":"i-1","Port":8080},"TargetHealth":{"State":"healthy"}},{"HealthCheckPort":"8081","Target":{"Id":"i-2","Port":8081},"TargetHealth":{"Description":"deregistered","State":"draining"}}]}`; string(all) != want {
		t.Fatalf("all:\n%s\nwant\n%s", all, want)
	}
	asked, _ := json.Marshal(targetHealthDescriptions(payload, []string{"i-9", "i-2"}))
	if want := `{"TargetHealthDescriptions":[{"Target":{"Id":"i-9"},"TargetHealth":{"Description":"Target is not registered to the target group","Reason":"Target.NotRegistered","State":"unused"}},{"HealthCheckPort":"8081","Target":{"Id":"i-2","Port":8081},"TargetHealth":{"Description":"deregistered","State":"draining"}}]}`; string(asked) != want {
		t.Fatalf("asked:\n%s\nwant\n%s", asked, want)
	}
	for arn, want := range map[string]string{
		"arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/web/abc": "web",
		"web": "web",
		"arn:aws:ec2:eu-west-1:123456789012:instance/i-1": "",
	} {
		got, err := targetGroupName(arn)
		if got != want || (err != nil) != (want == "") {
			t.Errorf("targetGroupName(%q) = %q, %v; want %q", arn, got, err, want)
		}
	}
}
