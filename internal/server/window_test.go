package server_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/autoheal/autoheal/internal/api/wire"
	"github.com/autoheal/autoheal/internal/event"
)

// windowConfig is the web example with a maintenance window that runs doc
// on every instance of the group, one at a time, never on a schedule of
// its own during the test (it is started with RunNow).
func windowConfig(lbPort int, doc, maxErrors string) string {
	return webConfig(lbPort, 3, "") + fmt.Sprintf(`
maintenance_windows:
  - name: rolling
    schedule: "0 3 1 1 *"
    duration: 1h
    targets: {groups: [web]}
    tasks:
      - document: %s
        parameters: {InstanceId: "{{ TARGET_ID }}"}
        max_concurrency: "1"
        max_errors: "%s"
`, doc, maxErrors)
}

// windowRun waits for the window's run to end and returns the journal's
// task events of that run.
func (e *env) windowRun(name string, timeout time.Duration) (starts, ends []wire.Event) {
	e.t.Helper()
	waitFor(e.t, timeout, "the window run to end", func() bool {
		for _, ev := range e.events() {
			if ev.Type == "maintenance.window.end" {
				return true
			}
		}
		return false
	})
	for _, ev := range e.events() {
		switch ev.Type {
		case "maintenance.task.start":
			starts = append(starts, ev)
		case "maintenance.task.end":
			ends = append(ends, ev)
		}
	}
	return starts, ends
}

// maxConcurrent replays task start and end events in journal order.
func maxConcurrent(evs []wire.Event) int {
	running, most := 0, 0
	for _, ev := range evs {
		switch ev.Type {
		case "maintenance.task.start":
			running++
		case "maintenance.task.end":
			running--
		}
		most = max(most, running)
	}
	return most
}

// TestMaintenanceWindowRollsGracefullyUnderLoad: a window restarts each of
// three instances through the graceful document, one at a time, under load
// that includes slow requests, and no request fails.
func TestMaintenanceWindowRollsGracefullyUnderLoad(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	e := startInProcess(t, writeConfig(t, windowConfig(port, "Autoheal-GracefulMaintenance", "0")), "")
	e.waitInService(3, 20*time.Second)
	before := map[string]int{}
	for _, in := range e.live() {
		before[in.ID] = in.Pid
	}
	e.waitHealthyTargets("web", 3, 20*time.Second)
	load := startLoad(t, fmt.Sprintf("http://127.0.0.1:%d", port), map[string]int{"/": 6, "/slow?ms=1500": 2})
	load.waitRequests(50, 20*time.Second)
	if _, err := e.client.RunWindow(context.Background(), "rolling"); err != nil {
		t.Fatal(err)
	}
	starts, ends := e.windowRun("rolling", 120*time.Second)
	load.check(e)
	if len(starts) != 3 || len(ends) != 3 {
		t.Fatalf("%d task starts and %d ends, want 3 each:\n%s", len(starts), len(ends), e.dumpEvents())
	}
	var all []wire.Event
	for _, ev := range e.events() {
		if ev.Type == "maintenance.task.start" || ev.Type == "maintenance.task.end" {
			all = append(all, ev)
		}
	}
	if n := maxConcurrent(all); n != 1 {
		t.Fatalf("%d tasks ran at once, max_concurrency is 1", n)
	}
	for _, ev := range ends {
		if st := ev.Data.(event.TaskEnd).Status; st != "Success" {
			t.Fatalf("task on %s ended %v: %s", ev.Instance, st, ev.Message)
		}
	}
	for _, in := range e.live() {
		if pid, ok := before[in.ID]; !ok || pid == in.Pid {
			t.Fatalf("instance %s: pid %d before, %d after: want the same instance restarted", in.ID, pid, in.Pid)
		}
	}
}

// TestMaintenanceWindowStopsAtFirstError: with max_errors 0 the window
// stops after the first target whose task fails.
func TestMaintenanceWindowStopsAtFirstError(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	cfg := writeConfig(t, windowConfig(port, "fail", "0"))
	docs := filepath.Join(filepath.Dir(cfg), "documents")
	os.MkdirAll(docs, 0o755)
	os.WriteFile(filepath.Join(docs, "fail.yaml"), []byte(`schemaVersion: "0.3"
parameters:
  InstanceId: {type: String}
mainSteps:
  - name: fail
    action: runCommand
    inputs: {InstanceId: "{{ InstanceId }}", Script: "echo broken >&2; exit 1"}
`), 0o644)
	e := startInProcess(t, cfg, "")
	e.waitInService(3, 20*time.Second)
	if _, err := e.client.RunWindow(context.Background(), "rolling"); err != nil {
		t.Fatal(err)
	}
	starts, ends := e.windowRun("rolling", 60*time.Second)
	if len(starts) != 1 || len(ends) != 1 || ends[0].Data.(event.TaskEnd).Status != "Failed" {
		t.Fatalf("%d starts, %d ends; want the window to stop after one failure:\n%s", len(starts), len(ends), e.dumpEvents())
	}
}
