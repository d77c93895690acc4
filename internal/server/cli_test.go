package server_test

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestTargetsAndRunbookCLI drives the load balancer and runbook commands
// of the real binary against a controller.
func TestTargetsAndRunbookCLI(t *testing.T) {
	t.Parallel()
	e, _ := startWeb(t, 2, "")
	ids := e.waitHealthyTargets("web", 2, 30*time.Second)
	cli := func(wantOK bool, args ...string) string {
		t.Helper()
		out, err := exec.Command(bins.autoheal, append([]string{"--addr", e.apiAddr}, args...)...).CombinedOutput()
		if (err == nil) != wantOK {
			t.Fatalf("autoheal %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	var h struct {
		Targets []struct{ ID, State string }
	}
	if err := json.Unmarshal([]byte(cli(true, "targets", "web", "-o", "json")), &h); err != nil || len(h.Targets) != 2 {
		t.Fatalf("targets -o json: %v %+v", err, h)
	}
	if out := cli(true, "targets"); !strings.Contains(out, ids[0]) || !strings.Contains(out, "healthy") {
		t.Fatalf("targets table:\n%s", out)
	}
	out := cli(true, "targets", "deregister", "web", ids[0], "--wait", "-o", "json")
	json.Unmarshal([]byte(out), &h)
	for _, tg := range h.Targets {
		if tg.ID == ids[0] && tg.State != "unused" {
			t.Fatalf("after deregister --wait: %s is %s", tg.ID, tg.State)
		}
	}
	cli(true, "targets", "register", "web", ids[0])
	e.waitHealthyTargets("web", 2, 30*time.Second)
	cli(false, "targets", "deregister", "web", "i-00000000000000000")
	cli(false, "targets", "nope")

	if out := cli(true, "documents", "list"); !strings.Contains(out, "Autoheal-GracefulMaintenance") {
		t.Fatalf("documents list:\n%s", out)
	}
	out = cli(true, "run", "Autoheal-GracefulMaintenance", "--param", "InstanceId="+ids[1])
	if !strings.Contains(out, "Success Autoheal-GracefulMaintenance") || !strings.Contains(out, "runTask") {
		t.Fatalf("run:\n%s", out)
	}
	if out := cli(false, "run", "Autoheal-RestartInstance", "--param", "InstanceId=i-00000000000000000"); !strings.Contains(out, "Failed") {
		t.Fatalf("run on an unknown instance:\n%s", out)
	}
	if out := cli(false, "run", "Autoheal-RestartInstance", "--param", "Nope=1"); !strings.Contains(out, "unknown parameter") {
		t.Fatalf("run with a bad parameter:\n%s", out)
	}
	var exs []struct{ ID, Document, Status string }
	if err := json.Unmarshal([]byte(cli(true, "executions", "list", "-o", "json")), &exs); err != nil || len(exs) < 3 {
		t.Fatalf("executions list: %v %+v", err, exs)
	}
	if out := cli(true, "executions", "show", exs[len(exs)-1].ID); !strings.Contains(out, "STEP") {
		t.Fatalf("executions show:\n%s", out)
	}
}
