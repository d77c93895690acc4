package server_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/autoheal/autoheal/internal/api"
	"github.com/autoheal/autoheal/internal/api/wire"
	"github.com/autoheal/autoheal/internal/store"
)

// everyPart is a config that builds every part of the controller: a group
// with a volume, an address and a check, a load balancer over a second
// group, a maintenance window and a scheduled action, a channel, an alarm
// that remediates and an Alertmanager route.
func everyPart(petPort, lbPort int) string {
	return fmt.Sprintf(`
groups:
  - name: pet
    launch: {command: {{PET}}, stop_timeout: 2s}
    volumes: [{name: data}]
    addresses: [{name: http, listen: "127.0.0.1:%d"}]
    health_checks: [{type: http, path: /healthz, interval: 100ms}]
  - name: web
    desired: 2
    launch: {command: {{WEB}}, ports: [http]}
    health_checks: [{type: http, port: http, interval: 100ms}]
load_balancers:
  - name: front
    listeners: [{protocol: http, listen: "127.0.0.1:%d", target_group: web}]
    target_groups: [{name: web, groups: [{group: web, port: http}]}]
maintenance_windows:
  - name: nightly
    schedule: "0 3 1 1 *"
    duration: 1h
    targets: {groups: [web]}
    tasks: [{document: Autoheal-RestartInstance, parameters: {InstanceId: "{{ TARGET_ID }}"}}]
scheduled_actions:
  - {name: morning, group: web, schedule: "0 8 1 1 *", desired: 2}
channels:
  - {name: ops, type: webhook, url: "http://127.0.0.1:9/hook", secret: s}
alarms:
  - name: uptime
    namespace: Custom
    metric: up
    dimensions: {InstanceId: "*"}
    statistic: Minimum
    period: 10s
    evaluation_periods: 1
    comparison: LessThanThreshold
    threshold: 1
    actions: {alarm: [{remediate: {escalate: [ops]}}]}
alertmanager:
  routes: [{match: {alertname: Down}, runbook: Autoheal-RestartInstance, target_label: instance_id}]
`, petPort, lbPort)
}

// TestServerStopsEveryGoroutineItStarts starts and stops a controller with
// every part several times on one state dir (each run re-adopts the
// instances of the last) and checks that no goroutine is left: every
// goroutine has an owner that waits for it on stop.
func TestServerStopsEveryGoroutineItStarts(t *testing.T) {
	// Not parallel: the check counts every goroutine of this process, and
	// parallel tests wait until the sequential ones are done.
	before := goleak.IgnoreCurrent()
	cfg := writeConfig(t, everyPart(freePort(t), freePort(t)))
	state := t.TempDir()
	for run := 0; run < 4; run++ {
		e := startInProcess(t, cfg, state)
		e.waitInService(3, 30*time.Second)
		// Traffic through the API (an event stream) and a state change, so
		// that request goroutines exist when the controller stops.
		ctx, cancel := context.WithCancel(context.Background())
		following := make(chan error, 1)
		go func() {
			following <- e.client.FollowEvents(ctx, api.EventsQuery{}, func(store.Event) error { return nil })
		}()
		two := 2
		if _, err := e.client.Scale(ctx, "web", wire.ScaleRequest{Desired: &two}); err != nil {
			t.Fatal(err)
		}
		e.stop()
		<-following // the stream ends with the controller
		cancel()
	}
	goleak.VerifyNone(t, before)
}
