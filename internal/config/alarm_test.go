package config

import (
	"strings"
	"testing"
	"time"
)

const alarmBase = "groups:\n  - name: g\n    launch: {command: sh}\n"

func TestAlarmDefaults(t *testing.T) {
	cfg, err := Parse("mem.yaml", []byte(alarmBase+`
channels:
  - {name: hook, type: webhook, url: "http://127.0.0.1:9/"}
  - {name: pd, type: pagerduty, routing_key: k}
alarms:
  - name: up
    namespace: CustomNamespace
    metric: webapp-uptime
    dimensions: {InstanceId: "*"}
    statistic: Minimum
    period: 10s
    evaluation_periods: 2
    comparison: LessThanThreshold
    threshold: 1
    actions:
      alarm: [{remediate: {escalate: [pd]}}]
alertmanager:
  routes:
    - {match: {alertname: DiskFull}, runbook: clean-disk}
  default_escalate: [hook]
`))
	if err != nil {
		t.Fatal(err)
	}
	a := cfg.Alarms[0]
	r := a.Actions.Alarm[0].Remediate
	route := cfg.Alertmanager.Routes[0]
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"metrics.resolution", cfg.Metrics.Resolution.D(), 10 * time.Second},
		{"metrics.retention", cfg.Metrics.Retention.D(), 3 * time.Hour},
		{"metrics.max_series", cfg.Metrics.MaxSeries, 10000},
		{"buckets", cfg.Metrics.Buckets(), 1080},
		{"webhook timeout", cfg.Channels[0].Timeout.D(), 5 * time.Second},
		{"webhook max_attempts", cfg.Channels[0].MaxAttempts, 10},
		{"webhook url is not pagerduty's", cfg.Channels[0].URL, "http://127.0.0.1:9/"},
		{"pagerduty url", cfg.Channels[1].URL, "https://events.pagerduty.com/v2/enqueue"},
		{"datapoints_to_alarm: evaluation_periods", a.DatapointsToAlarm, 2},
		{"treat_missing_data", a.TreatMissingData, "missing"},
		{"threshold", a.ThresholdValue(), 1.0},
		{"runbook: <metric>#<namespace>", r.Runbook, "webapp-uptime#CustomNamespace"},
		{"remediate max_attempts", r.MaxAttempts, 3},
		{"verify_timeout", r.VerifyTimeout.D(), 2 * time.Minute},
		{"retry_pause", r.RetryPause.D(), 30 * time.Second},
		{"route target_label", route.TargetLabel, "instance_id"},
		{"route escalate: default_escalate", strings.Join(route.Escalate, ","), "hook"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	// The evaluation periods default to 1, and M to N.
	cfg, err = Parse("mem.yaml", []byte(alarmBase+`
alarms:
  - {name: a, namespace: N, metric: m, statistic: Sum, period: 1m, comparison: GreaterThanThreshold, threshold: 0}
`))
	if err != nil {
		t.Fatal(err)
	}
	if a := cfg.Alarms[0]; a.EvaluationPeriods != 1 || a.DatapointsToAlarm != 1 || a.Threshold == nil || *a.Threshold != 0 {
		t.Errorf("N, M, threshold = %d, %d, %v; want 1, 1, 0 (written)", a.EvaluationPeriods, a.DatapointsToAlarm, a.Threshold)
	}
}

func TestPercentile(t *testing.T) {
	for in, want := range map[string]float64{"p0": 0, "p50": 50, "p99": 99, "p99.9": 99.9, "p99.99": 99.99, "p100": 100, "p100.0": 100, "p9": 9} {
		if got, ok := Percentile(in); !ok || got != want {
			t.Errorf("Percentile(%q) = %v, %v; want %v", in, got, ok, want)
		}
	}
	for _, bad := range []string{"", "p", "P99", "p101", "p100.5", "p99.999", "p-1", "p 99", "99", "Average", "p99.", "p1e2", "p099"} {
		if got, ok := Percentile(bad); ok {
			t.Errorf("Percentile(%q) = %v, want not a percentile", bad, got)
		}
	}
}

// TestAlarmsBuiltInCode: values the parser refuses still reach Validate
// from code, and are named by path.
func TestAlarmsBuiltInCode(t *testing.T) {
	c := &Config{
		Groups:   []Group{{Name: "g", Launch: Launch{Command: "sh"}}},
		Channels: []Channel{{Name: "hook", Type: ChannelWebhook, URL: "http://127.0.0.1:9/", Timeout: -1}},
		Alarms: []Alarm{{
			Name: "a", Namespace: "N", Metric: "m", Statistic: StatSum, Period: Duration(time.Minute),
			Comparison: GreaterThanThreshold, Threshold: ptr(1.0),
			Actions: AlarmActions{Alarm: []Action{{Remediate: &Remediate{RetryPause: -1}}}},
		}},
	}
	err := c.Validate()
	want := `channels[0].timeout: timeout must not be negative, got -1ns
alarms[0].actions.alarm[0].remediate.retry_pause: retry_pause must not be negative, got -1ns`
	if errString(err) != want {
		t.Errorf("got\n%v\nwant\n%s", err, want)
	}
	if r := c.Alarms[0].Actions.Alarm[0].Remediate; r.Runbook != "m#N" || r.VerifyTimeout != DefaultVerifyTimeout {
		t.Errorf("Validate did not fill the remediation's defaults: %+v", r)
	}
}
