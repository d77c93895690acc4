package server_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/autoheal/autoheal/internal/api/wire"
	"github.com/autoheal/autoheal/internal/notify"
	"github.com/autoheal/autoheal/internal/remediation"
)

// uptimeAlarm is the pet example's alarm and metrics settings, with the
// remediation given.
func uptimeAlarm(remediate string) string {
	return `
metrics: {resolution: 1s, retention: 1h}
channels:
  - {name: ops, type: webhook, url: "{{HOOK}}", secret: s3cret, max_attempts: 3}
alarms:
  - name: webapp-uptime
    namespace: CustomNamespace
    metric: webapp-uptime
    dimensions: {InstanceId: "*"}
    statistic: Minimum
    period: 1s
    evaluation_periods: 2
    datapoints_to_alarm: 2
    comparison: LessThanThreshold
    threshold: 1
    actions:
      alarm:
        - remediate: ` + remediate + `
`
}

func (e *env) waitIncident(status string, timeout time.Duration) wire.Incident {
	e.t.Helper()
	var inc wire.Incident
	waitFor(e.t, timeout, "an incident "+status, func() bool {
		list, err := e.client.Incidents(context.Background(), 10)
		if err != nil || len(list) == 0 {
			return false
		}
		inc = list[0]
		return inc.Status == status
	})
	return inc
}

func timelineTypes(inc wire.Incident) string {
	var out []string
	for _, en := range inc.Timeline {
		out = append(out, en.Type)
	}
	return strings.Join(out, " ")
}

// TestUptimeAlarmRunsRunbookAndResolves is the pet example's loop: the
// service inside the instance stops serving (the process and its health
// check live on), the uptime metric it pushes drops, the alarm fires, the
// runbook webapp-uptime#CustomNamespace starts the service again inside
// the instance, the alarm returns to OK and the incident closes.
func TestUptimeAlarmRunsRunbookAndResolves(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("curl"); err != nil {
		if os.Getenv("AUTOHEAL_REQUIRE_TOOLS") != "" {
			t.Fatal("the pet's runbook needs curl, which test.sh installs; it is missing")
		}
		t.Skip("the pet's runbook needs curl (test.sh installs it)")
	}
	port := freePort(t)
	cfg := writeConfig(t, petConfig(port, `    parameters:
      - {name: PET_UPTIME_INTERVAL, value: 200ms}
`)+strings.Replace(uptimeAlarm("{max_attempts: 2, verify_timeout: 10s, retry_pause: 1s, escalate: [ops]}"), "{{HOOK}}", "http://127.0.0.1:1/", 1))
	docs := filepath.Join(filepath.Dir(cfg), "documents")
	os.MkdirAll(docs, 0o755)
	runbook, err := os.ReadFile(filepath.Join(moduleRoot(), "examples", "pet", "documents", "webapp-uptime#CustomNamespace.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(docs, "webapp-uptime#CustomNamespace.yaml"), runbook, 0o644)
	e := startInProcess(t, cfg, "")
	in := e.waitInService(1, 20*time.Second)[0]
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	waitFor(t, 20*time.Second, "the alarm to be OK", func() bool {
		as, _ := e.client.Alarms(context.Background())
		return len(as) == 1 && as[0].State == "OK" && as[0].Dimensions["InstanceId"] == in.ID
	})
	if code, b, err := httpPost(base+"/service/stop", ""); err != nil || code != 200 {
		t.Fatalf("stop the service: %d %v %s", code, err, b)
	}
	inc := e.waitIncident(remediation.StatusResolved, 30*time.Second)
	if got := timelineTypes(inc); got != "detected attempt output note verified resolved" && got != "detected attempt output verified resolved" {
		t.Fatalf("timeline %s:\n%+v", got, inc.Timeline)
	}
	if inc.Instance != in.ID || inc.Attempts != 1 || inc.Runbook != "webapp-uptime#CustomNamespace" || inc.TimeToRecover <= 0 {
		t.Fatalf("incident %+v", inc)
	}
	if code, _, _ := httpGet(base + "/"); code != 200 {
		t.Fatalf("the service still does not answer: %d", code)
	}
	// Crash healing did not act: same instance, same process.
	if now := e.live()[0]; now.ID != in.ID || now.Pid != in.Pid {
		t.Fatalf("instance %s pid %d became %s pid %d", in.ID, in.Pid, now.ID, now.Pid)
	}
	t.Logf("recovered in %.2fs", inc.TimeToRecover)
}

// TestNoRunbookEscalatesToSignedWebhook: an alarm whose runbook does not
// exist escalates at once; the webhook receives the incident, and its
// HMAC signature verifies with the channel's secret.
func TestNoRunbookEscalatesToSignedWebhook(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got []*http.Request
	var bodies [][]byte
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, r)
		bodies = append(bodies, b)
		mu.Unlock()
	}))
	defer hook.Close()
	port := freePort(t)
	cfg := writeConfig(t, petConfig(port, "")+strings.Replace(uptimeAlarm("{runbook: no-such-runbook, escalate: [ops]}"), "{{HOOK}}", hook.URL, 1))
	e := startInProcess(t, cfg, "")
	in := e.waitInService(1, 20*time.Second)[0]
	// Push zeros for the instance by hand, through the API, as an
	// operator's script would.
	every(t, 200*time.Millisecond, func() {
		e.client.PutMetricData(context.Background(), "", wire.PutRequest{Namespace: "CustomNamespace", MetricData: []wire.Datum{{
			MetricName: "webapp-uptime", Value: 0, Dimensions: []wire.Dimension{{Name: "InstanceId", Value: in.ID}}}}})
	})
	inc := e.waitIncident(remediation.StatusEscalated, 30*time.Second)
	if inc.Attempts != 0 || !strings.Contains(timelineTypes(inc), "escalated") {
		t.Fatalf("incident %+v", inc)
	}
	waitFor(t, 20*time.Second, "the escalation to reach the webhook", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) > 0
	})
	mu.Lock()
	defer mu.Unlock()
	r, body := got[0], bodies[0]
	if !notify.Verify("s3cret", r.Header.Get(notify.HeaderTimestamp), body, r.Header.Get(notify.HeaderSignature)) {
		t.Fatalf("signature %q does not verify over %s", r.Header.Get(notify.HeaderSignature), body)
	}
	if notify.Verify("wrong", r.Header.Get(notify.HeaderTimestamp), body, r.Header.Get(notify.HeaderSignature)) {
		t.Fatal("a wrong secret verified")
	}
	if !strings.Contains(string(body), inc.ID) || !strings.Contains(string(body), "no runbook") {
		t.Fatalf("webhook body lacks the incident: %s", body)
	}
}

// TestAlarmRestartsTheInstanceItNames: an alarm whose action is
// `restart: instance` restarts the instance of its InstanceId dimension in
// place; the metric is pushed by `autoheal agent`, as from cron.
func TestAlarmRestartsTheInstanceItNames(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	cfg := writeConfig(t, petConfig(port, "")+probeAlarm(2))
	e := startInProcess(t, cfg, "")
	in := e.waitInService(1, 20*time.Second)[0]
	// A URL nothing answers: the agent pushes 0 for the instance.
	dead := fmt.Sprintf("http://127.0.0.1:%d/", freePort(t))
	every(t, 200*time.Millisecond, func() {
		exec.Command(bins.autoheal, "--addr", e.apiAddr, "agent", "--check", dead, "--namespace", "Probes",
			"--metric", "up", "--instance", in.ID, "--once", "--timeout", "200ms").Run()
	})
	waitFor(t, 30*time.Second, "the alarm to restart the instance", func() bool {
		l := e.live()
		return len(l) == 1 && l[0].ID == in.ID && l[0].Pid > 0 && l[0].Pid != in.Pid && l[0].State == "InService"
	})
	found := false
	for _, ev := range e.events() {
		found = found || (ev.Type == "alarm.state" && strings.Contains(ev.Message, "ALARM") && ev.Instance == in.ID)
	}
	if !found {
		t.Fatalf("no alarm.state event for %s:\n%s", in.ID, e.dumpEvents())
	}
}

// TestAlarmReplacementWaitsForMaintenanceWindow: while a maintenance
// window works on an instance, an alarm's restart of it waits for the
// window's task to end.
func TestAlarmReplacementWaitsForMaintenanceWindow(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	cfg := writeConfig(t, petConfig(port, "")+probeAlarm(1)+`
maintenance_windows:
  - name: hold
    schedule: "0 3 1 1 *"
    duration: 1h
    targets: {groups: [pet]}
    tasks:
      - document: hold
        parameters: {InstanceId: "{{ TARGET_ID }}"}
`)
	docs := filepath.Join(filepath.Dir(cfg), "documents")
	os.MkdirAll(docs, 0o755)
	os.WriteFile(filepath.Join(docs, "hold.yaml"), []byte(`schemaVersion: "0.3"
parameters:
  InstanceId: {type: String}
mainSteps:
  - {name: hold, action: sleep, inputs: {Duration: 4s}}
`), 0o644)
	e := startInProcess(t, cfg, "")
	in := e.waitInService(1, 20*time.Second)[0]
	if _, err := e.client.RunWindow(context.Background(), "hold"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the window's task to start", func() bool {
		for _, ev := range e.events() {
			if ev.Type == "maintenance.task.start" {
				return true
			}
		}
		return false
	})
	every(t, 200*time.Millisecond, func() {
		e.client.PutMetricData(context.Background(), in.ID, wire.PutRequest{Namespace: "Probes", MetricData: []wire.Datum{{MetricName: "up", Value: 0}}})
	})
	waitFor(t, 30*time.Second, "the instance to be restarted", func() bool {
		l := e.live()
		// A fenced instance keeps its state with pid 0 until its restart
		// is recorded: the restart is done once a new pid serves.
		return len(l) == 1 && l[0].Pid != 0 && l[0].Pid != in.Pid && l[0].State == "InService"
	})
	var alarmAt, taskEnd, restartAt time.Time
	for _, ev := range e.events() {
		switch {
		case ev.Type == "alarm.state" && strings.Contains(ev.Message, "-> ALARM") && alarmAt.IsZero():
			alarmAt = ev.Time
		case ev.Type == "maintenance.task.end":
			taskEnd = ev.Time
		case ev.Type == "instance.state" && strings.Contains(ev.Message, "restarted by operator") && restartAt.IsZero():
			restartAt = ev.Time
		}
	}
	if alarmAt.IsZero() || taskEnd.IsZero() || restartAt.IsZero() || !alarmAt.Before(taskEnd) || restartAt.Before(taskEnd) {
		t.Fatalf("alarm %v, window task end %v, restart %v: want the restart after the task although the alarm came first\n%s",
			alarmAt, taskEnd, restartAt, e.dumpEvents())
	}
}

// TestCrashHealOpensIncidentWithTimeline: killing the pet's process opens
// an incident whose timeline is the heal's steps, resolved with its time
// to recover once the instance is back InService.
func TestCrashHealOpensIncidentWithTimeline(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	e := startInProcess(t, writeConfig(t, petConfig(port, fastHeal)), "")
	in := e.waitInService(1, 20*time.Second)[0]
	if err := syscall.Kill(in.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	inc := e.waitIncident(remediation.StatusResolved, 30*time.Second)
	if inc.Trigger.Source != "heal" || inc.Instance != in.ID || inc.TimeToRecover <= 0 {
		t.Fatalf("incident %+v", inc)
	}
	got := timelineTypes(inc)
	for _, want := range []string{"detected", "fenced", "launched", "healthy", "resolved"} {
		if !strings.Contains(got, want) {
			t.Fatalf("timeline %q lacks %s:\n%+v", got, want, inc.Timeline)
		}
	}
	t.Logf("healed in %.3fs: %s", inc.TimeToRecover, got)
}

// TestReplacementHealIncidentFollowsTheNewInstance: with max_restarts 0
// the crash is healed by a replacement; the incident follows it, from the
// volume taken over to the new instance InService.
func TestReplacementHealIncidentFollowsTheNewInstance(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	e := startInProcess(t, writeConfig(t, petConfig(port, "    heal:\n      max_restarts: 0\n      backoff_base: 10ms\n")), "")
	in := e.waitInService(1, 20*time.Second)[0]
	syscall.Kill(in.Pid, syscall.SIGKILL)
	inc := e.waitIncident(remediation.StatusResolved, 30*time.Second)
	got := timelineTypes(inc)
	for _, want := range []string{"detected", "fenced", "attached", "launched", "healthy", "resolved"} {
		if !strings.Contains(got, want) {
			t.Fatalf("timeline %q lacks %s:\n%+v", got, want, inc.Timeline)
		}
	}
	// The replaced instance finishes terminating just after its
	// replacement is in service.
	if now := e.waitInService(1, 10*time.Second)[0]; now.ID == in.ID {
		t.Fatal("not replaced")
	}
}

// probeAlarm restarts the instance whose Probes/up stays below 1 for n
// one-second periods.
func probeAlarm(n int) string {
	return fmt.Sprintf(`
metrics: {resolution: 1s, retention: 1h}
alarms:
  - name: probe
    namespace: Probes
    metric: up
    dimensions: {InstanceId: "*"}
    statistic: Maximum
    period: 1s
    evaluation_periods: %d
    comparison: LessThanThreshold
    threshold: 1
    actions:
      alarm: [{restart: instance}]
`, n)
}

// every runs fn now and then every d until the test ends.
func every(t *testing.T, d time.Duration, fn func()) {
	stop := make(chan struct{})
	done := make(chan struct{})
	t.Cleanup(func() { close(stop); <-done })
	go func() {
		defer close(done)
		for {
			fn()
			select {
			case <-stop:
				return
			case <-time.After(d):
			}
		}
	}()
}
