package runbook

import (
	"context"
	"strings"
	"testing"
)

// TestShellCommand: a SendCommand runs as a one-step aws:runCommand
// execution; its text is never read as a document, and a second start
// under the same id starts nothing.
func TestShellCommand(t *testing.T) {
	h := newHarness(t)
	id := NewExecutionID()
	c := ShellCommand{InstanceID: "i-0123456789abcdef0", Commands: []string{"cd /", `echo "{{ not_a_ref }} $(pwd)"`, "exit 4"},
		WorkingDirectory: "/tmp", ExecutionTimeout: 30, Delivery: map[string]any{"OutputS3BucketName": "b"}}
	if err := h.eng.StartShellCommand(context.Background(), id, c, "test"); err != nil {
		t.Fatal(err)
	}
	if err := h.eng.StartShellCommand(context.Background(), id, c, "test"); err != nil {
		t.Fatalf("second start under the same id: %v", err)
	}
	ex := h.wait(id)
	se := ex.Steps[0]
	res, _ := se.Result.(map[string]any)
	inst, _ := res[c.InstanceID].(map[string]any)
	if ex.Document != SSMShellDocument || ex.Status != StatusFailed || se.Name != ShellCommandStep || se.Action != ActionRunCommand ||
		!strings.Contains(stringOf(inst["Stdout"]), "{{ not_a_ref }} /") || stringOf(inst["ExitCode"]) != "4" {
		t.Fatalf("execution: %+v\nstep: %+v", ex, se)
	}
	if n := h.scripts.Load(); n != 1 {
		t.Errorf("%d scripts ran, want 1", n)
	}
	if ex.DocumentV == nil || ex.DocumentV.MainSteps[0].TimeoutSeconds != 30 {
		t.Errorf("the step's timeout is not executionTimeout: %+v", ex.DocumentV)
	}
	if _, _, err := ShellCommandDocument(ShellCommand{InstanceID: c.InstanceID}); err == nil {
		t.Error("a command without commands was accepted")
	}
}
