package alarm

import (
	"context"
	"testing"
	"time"

	"github.com/autoheal/autoheal/internal/config"
	"github.com/autoheal/autoheal/internal/metrics"
	"github.com/autoheal/autoheal/internal/store"
)

// TestManagerTracksEachInstance: an alarm with InstanceId "*" keeps one
// state per instance, reports each transition once, and journals it.
func TestManagerTracksEachInstance(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	ms, err := metrics.New(metrics.Options{Resolution: time.Second, Retention: time.Hour, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer ms.Close()
	th := 1.0
	cfg := &config.Config{Alarms: []config.Alarm{{
		Name: "up", Namespace: "NS", Metric: "uptime", Dimensions: map[string]string{"InstanceId": "*"},
		Statistic: "Minimum", Period: config.Duration(10 * time.Second), EvaluationPeriods: 2, DatapointsToAlarm: 2,
		Comparison: "LessThanThreshold", Threshold: &th, TreatMissingData: "missing",
	}}}
	var trans []Transition
	var journal []store.Event
	m, err := NewManager(cfg, Deps{Metrics: ms, Now: func() time.Time { return now },
		OnChange: func(tr Transition) { trans = append(trans, tr) },
		Journal:  func(_ context.Context, ev store.Event) error { journal = append(journal, ev); return nil }})
	if err != nil {
		t.Fatal(err)
	}
	put := func(id string, v float64) {
		if errs := ms.Put("NS", []metrics.Datum{{MetricName: "uptime", Timestamp: now, Value: v,
			Dimensions: []metrics.Dimension{{Name: "InstanceId", Value: id}}}}); errs != nil {
			t.Fatal(errs)
		}
	}
	step := func(a, b float64) {
		for range 10 {
			put("i-a", a)
			put("i-b", b)
			now = now.Add(time.Second)
		}
		m.Evaluate("up", now)
	}
	step(1, 1)
	step(1, 1)
	if m.State("up/InstanceId=i-a") != "OK" || m.State("up/InstanceId=i-b") != "OK" {
		t.Fatalf("states %v", m.Statuses())
	}
	step(1, 0)
	if m.State("up/InstanceId=i-b") != "OK" {
		t.Fatal("ALARM after one breaching datapoint of the two needed")
	}
	step(1, 0)
	if m.State("up/InstanceId=i-b") != "ALARM" || m.State("up/InstanceId=i-a") != "OK" {
		t.Fatalf("states %+v", m.Statuses())
	}
	last := trans[len(trans)-1]
	if last.Key != "up/InstanceId=i-b" || last.From != OK || last.To != Alarm || last.Dimensions["InstanceId"] != "i-b" {
		t.Fatalf("transition %+v", last)
	}
	n := len(trans)
	step(1, 0)
	if len(trans) != n {
		t.Fatal("a transition reported again while the state did not change")
	}
	step(1, 1)
	if m.State("up/InstanceId=i-b") != "OK" || len(journal) != len(trans) {
		t.Fatalf("state %s, %d journal events for %d transitions", m.State("up/InstanceId=i-b"), len(journal), len(trans))
	}
	if got := len(m.Statuses()); got != 2 {
		t.Fatalf("%d statuses, want one per instance", got)
	}
}
