package server_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/autoheal/autoheal/internal/awsid"
)

// cloudWatchAlarms are the web example's alarms for the CloudWatch
// tests: latency-high over a metric the test pushes, and quiet, over a
// metric nobody pushes, whose state only SetAlarmState changes (missing
// data is ignored: its evaluations keep the state), with notifications
// on its transitions.
func cloudWatchAlarms(hookURL string) string {
	return fmt.Sprintf(`
metrics: {resolution: 1s, retention: 1h}
channels:
  - {name: pager, type: webhook, url: "%s", max_attempts: 3}
alarms:
  - name: latency-high
    namespace: Web
    metric: Latency
    dimensions: {Service: web}
    statistic: Maximum
    period: 1s
    evaluation_periods: 1
    comparison: GreaterThanThreshold
    threshold: 100
    treat_missing_data: ignore
  - name: quiet
    description: set by hand only
    namespace: Web
    metric: Quiet
    statistic: Average
    period: 10m
    comparison: GreaterThanOrEqualToThreshold
    threshold: 1
    treat_missing_data: ignore
    actions:
      alarm: [{notify: pager}]
      ok: [{notify: pager}]
`, hookURL)
}

// alarmOf is DescribeAlarms' MetricAlarm named name.
func (a *awsEnv) alarmOf(name string) map[string]any {
	a.t.Helper()
	out := a.mustCLI("viewer", "cloudwatch", "describe-alarms", "--alarm-names", name)
	l, _ := dig(out, "MetricAlarms").([]any)
	if len(l) != 1 {
		a.t.Fatalf("describe-alarms --alarm-names %s: %v", name, out)
	}
	return l[0].(map[string]any)
}

// TestAWSCloudWatch drives CloudWatch's actions with the AWS CLI and
// boto3: pushed metrics are read back by GetMetricStatistics and
// GetMetricData, an alarm over them goes to ALARM, and SetAlarmState
// sets an alarm's state and runs its actions.
func TestAWSCloudWatch(t *testing.T) {
	t.Parallel()
	hook := newHook(t)
	a := startAWS(t, webConfig(freePort(t), 1, "")+cloudWatchAlarms(hook.srv.URL))
	a.waitInService(1, 30*time.Second)

	start := time.Now().Add(-5 * time.Minute).UTC().Format(time.RFC3339)
	end := time.Now().Add(5 * time.Minute).UTC().Format(time.RFC3339)
	a.mustCLI("operator", "cloudwatch", "put-metric-data", "--namespace", "Web", "--metric-data",
		`[{"MetricName": "Latency", "Dimensions": [{"Name": "Service", "Value": "web"}], "Value": 250, "Unit": "Milliseconds"},
		  {"MetricName": "Latency", "Dimensions": [{"Name": "Service", "Value": "web"}], "Values": [10, 20], "Counts": [1, 2], "Unit": "Milliseconds"},
		  {"MetricName": "Latency", "Dimensions": [{"Name": "Service", "Value": "web"}], "StatisticValues": {"SampleCount": 2, "Sum": 60, "Minimum": 20, "Maximum": 40}, "Unit": "Milliseconds"}]`)

	// GetMetricStatistics: every sample, over the periods that hold them.
	out := a.mustCLI("viewer", "cloudwatch", "get-metric-statistics", "--namespace", "Web", "--metric-name", "Latency",
		"--dimensions", "Name=Service,Value=web", "--start-time", start, "--end-time", end, "--period", "600",
		"--statistics", "Maximum", "Minimum", "SampleCount", "Sum")
	var n, sum, hi float64
	lo := 1e9
	dps, _ := dig(out, "Datapoints").([]any)
	for _, dp := range dps {
		n += dig(dp, "SampleCount").(float64)
		sum += dig(dp, "Sum").(float64)
		hi = max(hi, dig(dp, "Maximum").(float64))
		lo = min(lo, dig(dp, "Minimum").(float64))
		if dig(dp, "Unit") != "Milliseconds" {
			t.Errorf("datapoint unit: %v", dp)
		}
	}
	if len(dps) == 0 || n != 6 || sum != 360 || hi != 250 || lo != 10 || dig(out, "Label") != "Latency" {
		t.Errorf("get-metric-statistics: n %v sum %v max %v min %v: %v", n, sum, hi, lo, out)
	}

	// GetMetricData: the same, as a MetricStat query; expressions are
	// refused.
	out = a.mustCLI("viewer", "cloudwatch", "get-metric-data", "--start-time", start, "--end-time", end, "--metric-data-queries",
		`[{"Id": "lat", "Label": "latency max", "MetricStat": {"Metric": {"Namespace": "Web", "MetricName": "Latency",
		   "Dimensions": [{"Name": "Service", "Value": "web"}]}, "Period": 600, "Stat": "Maximum"}},
		  {"Id": "count", "MetricStat": {"Metric": {"Namespace": "Web", "MetricName": "Latency",
		   "Dimensions": [{"Name": "Service", "Value": "web"}]}, "Period": 600, "Stat": "SampleCount"}, "ReturnData": false}]`)
	res, _ := dig(out, "MetricDataResults").([]any)
	if len(res) != 1 || dig(res[0], "Id") != "lat" || dig(res[0], "Label") != "latency max" || dig(res[0], "StatusCode") != "Complete" {
		t.Errorf("get-metric-data: %v", out)
	} else {
		vals, _ := dig(res[0], "Values").([]any)
		ts, _ := dig(res[0], "Timestamps").([]any)
		top := 0.0
		for _, v := range vals {
			top = max(top, v.(float64))
		}
		if len(vals) == 0 || len(vals) != len(ts) || top != 250 {
			t.Errorf("get-metric-data values: %v", out)
		}
	}
	if _, err := a.cli("viewer", "cloudwatch", "get-metric-data", "--start-time", start, "--end-time", end, "--metric-data-queries",
		`[{"Id": "e1", "Expression": "SUM(METRICS())"}]`); err == nil || !strings.Contains(err.Error(), "ValidationError") || !strings.Contains(err.Error(), "expression") {
		t.Errorf("get-metric-data with an expression: %v, want a ValidationError", err)
	}

	// boto3 reads the percentiles.
	bres, err := a.boto("viewer", `
import datetime
c = boto3.client('cloudwatch', endpoint_url=ENDPOINT)
now = datetime.datetime.now(datetime.timezone.utc)
r = c.get_metric_statistics(Namespace='Web', MetricName='Latency', Dimensions=[{'Name': 'Service', 'Value': 'web'}],
    StartTime=now - datetime.timedelta(minutes=5), EndTime=now + datetime.timedelta(minutes=5), Period=600, ExtendedStatistics=['p100'])
print(json.dumps([dp['ExtendedStatistics']['p100'] for dp in r['Datapoints']]))
`)
	if err != nil {
		t.Errorf("boto3 get_metric_statistics: %v", err)
	} else if l, _ := bres.([]any); len(l) == 0 {
		t.Errorf("boto3 get_metric_statistics p100: %v", bres)
	}

	// The alarm over the pushed metric goes to ALARM.
	waitFor(t, 20*time.Second, "latency-high in ALARM", func() bool {
		out, err := a.cli("viewer", "cloudwatch", "describe-alarms", "--alarm-names", "latency-high")
		return err == nil && dig(out, "MetricAlarms", 0, "StateValue") == "ALARM"
	})
	al := a.alarmOf("latency-high")
	for k, want := range map[string]any{
		"AlarmArn": awsid.AlarmARN("latency-high"), "MetricName": "Latency", "Namespace": "Web", "Statistic": "Maximum",
		"Period": 1.0, "EvaluationPeriods": 1.0, "Threshold": 100.0, "ComparisonOperator": "GreaterThanThreshold",
		"ActionsEnabled": true, "TreatMissingData": "ignore",
	} {
		if al[k] != want {
			t.Errorf("latency-high %s = %v, want %v: %v", k, al[k], want, al)
		}
	}
	if dig(al, "Dimensions", 0, "Name") != "Service" || dig(al, "Dimensions", 0, "Value") != "web" ||
		al["StateReason"] == "" || al["StateUpdatedTimestamp"] == nil {
		t.Errorf("latency-high: %v", al)
	}
	if ev := a.dumpEvents(); !strings.Contains(ev, "INSUFFICIENT_DATA -> ALARM: Threshold Crossed") {
		t.Errorf("no alarm event for latency-high's transition:\n%s", ev)
	}
	out = a.mustCLI("viewer", "cloudwatch", "describe-alarms", "--state-value", "ALARM")
	if l, _ := dig(out, "MetricAlarms").([]any); len(l) != 1 || dig(l[0], "AlarmName") != "latency-high" {
		t.Errorf("describe-alarms --state-value ALARM: %v", out)
	}

	// SetAlarmState: the state holds, and the alarm's actions run.
	if _, err := a.cli("viewer", "cloudwatch", "set-alarm-state", "--alarm-name", "quiet", "--state-value", "ALARM", "--state-reason", "x"); err == nil || !strings.Contains(err.Error(), "AccessDenied") {
		t.Errorf("a viewer's set-alarm-state: %v, want AccessDenied", err)
	}
	a.mustCLI("operator", "cloudwatch", "set-alarm-state", "--alarm-name", "quiet", "--state-value", "ALARM", "--state-reason", "testing the pager")
	al = a.alarmOf("quiet")
	if al["StateValue"] != "ALARM" || al["StateReason"] != "testing the pager" || al["AlarmDescription"] != "set by hand only" {
		t.Errorf("quiet after set-alarm-state: %v", al)
	}
	if acts := toStrings(al["AlarmActions"]); len(acts) != 1 || acts[0] != "arn:aws:sns:local:000000000000:pager" {
		t.Errorf("quiet's alarm actions: %v", al["AlarmActions"])
	}
	waitFor(t, 10*time.Second, "the pager's trigger", func() bool { return hook.count("trigger") == 1 })
	if _, err := a.boto("operator", `
c = boto3.client('cloudwatch', endpoint_url=ENDPOINT)
c.set_alarm_state(AlarmName='quiet', StateValue='OK', StateReason='all clear')
print(json.dumps(c.describe_alarms(AlarmNames=['quiet'])['MetricAlarms'][0]['StateValue']))
`); err != nil {
		t.Errorf("boto3 set_alarm_state: %v", err)
	}
	if al = a.alarmOf("quiet"); al["StateValue"] != "OK" || al["StateReason"] != "all clear" {
		t.Errorf("quiet after set_alarm_state OK: %v", al)
	}
	waitFor(t, 10*time.Second, "the pager's resolve", func() bool { return hook.count("resolve") == 1 })
	if ev := a.dumpEvents(); !strings.Contains(ev, "alarm quiet INSUFFICIENT_DATA -> ALARM (set by hand): testing the pager") ||
		!strings.Contains(ev, "operator aws monitoring:SetAlarmState -> 200") {
		t.Errorf("no alarm or audit event for set-alarm-state:\n%s", ev)
	}

	// Refusals and bad input.
	if _, err := a.cli("viewer", "cloudwatch", "put-metric-data", "--namespace", "Web", "--metric-name", "Latency", "--value", "1"); err == nil || !strings.Contains(err.Error(), "AccessDenied") {
		t.Errorf("a viewer's put-metric-data: %v, want AccessDenied", err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"cloudwatch", "put-metric-data", "--namespace", "Autoheal/LB", "--metric-name", "x", "--value", "1"}, "reserved"},
		{[]string{"cloudwatch", "put-metric-data", "--namespace", "Web", "--metric-name", "x", "--value", "1", "--unit", "Parsecs"}, "unknown unit"},
		{[]string{"cloudwatch", "put-metric-data", "--namespace", "Web", "--metric-data",
			`[{"MetricName": "x", "StatisticValues": {"SampleCount": 1, "Sum": 5, "Minimum": 1, "Maximum": 2}}]`}, "InvalidParameterValue"},
		{[]string{"cloudwatch", "get-metric-statistics", "--namespace", "Web", "--metric-name", "Latency", "--start-time", start,
			"--end-time", end, "--period", "60", "--statistics", "Median"}, "InvalidParameterValue"},
		{[]string{"cloudwatch", "set-alarm-state", "--alarm-name", "nope", "--state-value", "OK", "--state-reason", "x"}, "ResourceNotFound"},
		{[]string{"cloudwatch", "set-alarm-state", "--alarm-name", "quiet", "--state-value", "BROKEN", "--state-reason", "x"}, "ValidationError"},
	} {
		if _, err := a.cli("operator", tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("aws %s: %v, want %s", strings.Join(tc.args, " "), err, tc.want)
		}
	}
}

// TestAWSCloudWatchInstance pushes metrics with an instance's own
// credentials, from its user data, as an EC2 instance with an instance
// profile would: its group's role is only viewer, yet it may push its own
// metrics, which are bound to it (InstanceId), and not another
// instance's.
func TestAWSCloudWatchInstance(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	cli := "aws --endpoint-url $AWS_ENDPOINT_URL --region us-east-1 cloudwatch put-metric-data --namespace Agent --metric-name up --value 1"
	a := startAWS(t, fmt.Sprintf(`
metrics: {resolution: 1s, retention: 1h}
groups:
  - name: agent
    api_role: viewer
    launch:
      command: /bin/sleep
      args: ["600"]
      stop_timeout: 1s
      env:
        PATH: /usr/bin:/bin
        HOME: %s
      user_data: |
        %s > "$HOME/own.txt" 2>&1
        %s --dimensions InstanceId=i-00000000000000000 > "$HOME/other.txt" 2>&1 || true
`, home, cli, cli))
	live := a.waitInService(1, 60*time.Second)
	id := live[0].ID
	if b, err := os.ReadFile(filepath.Join(home, "own.txt")); err != nil || len(strings.TrimSpace(string(b))) != 0 {
		t.Errorf("the instance's own push: %q %v", b, err)
	}
	if b, err := os.ReadFile(filepath.Join(home, "other.txt")); err != nil || !strings.Contains(string(b), "AccessDenied") {
		t.Errorf("the instance's push for another instance: %q %v, want AccessDenied", b, err)
	}
	start := time.Now().Add(-10 * time.Minute).UTC().Format(time.RFC3339)
	end := time.Now().Add(5 * time.Minute).UTC().Format(time.RFC3339)
	out := a.mustCLI("viewer", "cloudwatch", "get-metric-statistics", "--namespace", "Agent", "--metric-name", "up",
		"--dimensions", "Name=InstanceId,Value="+id, "--start-time", start, "--end-time", end, "--period", "900", "--statistics", "SampleCount")
	if dig(out, "Datapoints", 0, "SampleCount") != 1.0 {
		t.Errorf("the instance's metric, bound to %s: %v", id, out)
	}
	if ev := a.dumpEvents(); !strings.Contains(ev, "instance:"+id+" aws monitoring:PutMetricData -> 403") {
		t.Errorf("no audit event for the refused push:\n%s", ev)
	}
}
