package awsapi

import (
	"errors"
	"math"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/autoheal/autoheal/internal/alarm"
	"github.com/autoheal/autoheal/internal/api"
	"github.com/autoheal/autoheal/internal/awsid"
	"github.com/autoheal/autoheal/internal/config"
	"github.com/autoheal/autoheal/internal/metrics"
)

func TestCWComparison(t *testing.T) {
	for in, want := range map[string]string{
		"GreaterThanThreshold":          "GreaterThanThreshold",
		"GreaterThanOrEqualToThreshold": "GreaterThanOrEqualToThreshold",
		"LessThanThreshold":             "LessThanThreshold",
		"LessThanOrEqualToThreshold":    "LessThanOrEqualToThreshold",
		"Bogus":                         "Bogus",
	} {
		if got := cwComparison(in); got != want {
			t.Errorf("cwComparison(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCWState(t *testing.T) {
	for in, want := range map[string]alarm.State{"OK": alarm.OK, "ALARM": alarm.Alarm, "INSUFFICIENT_DATA": alarm.InsufficientData} {
		got, err := cwState(in)
		if err != nil || got != want || got.String() != in {
			t.Errorf("cwState(%q) = %v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "ok", "Alarm", "INSUFFICIENT"} {
		if _, err := cwState(bad); err == nil || asAPIError(err).Code != "ValidationError" {
			t.Errorf("cwState(%q) = %v, want a ValidationError", bad, err)
		}
	}
}

// TestCWStatisticValues checks that a StatisticSet becomes samples with
// exactly its count, sum, minimum and maximum.
func TestCWStatisticValues(t *testing.T) {
	for _, tc := range []struct{ n, sum, lo, hi float64 }{
		{1, 5, 5, 5}, {2, 3, 1, 2}, {2, 4, 2, 2}, {10, 55, 1, 10}, {3, 0, -1, 1}, {100, 100, 1, 1},
	} {
		vs, cs, err := cwStatisticValues(tc.n, tc.sum, tc.lo, tc.hi)
		if err != nil {
			t.Errorf("%+v: %v", tc, err)
			continue
		}
		var n, sum float64
		lo, hi := math.Inf(1), math.Inf(-1)
		for i, v := range vs {
			if cs[i] == 0 {
				continue
			}
			n += cs[i]
			sum += v * cs[i]
			lo, hi = min(lo, v), max(hi, v)
		}
		if n != tc.n || math.Abs(sum-tc.sum) > 1e-9 || lo != tc.lo || hi != tc.hi {
			t.Errorf("%+v: values %v counts %v give n %v sum %v min %v max %v", tc, vs, cs, n, sum, lo, hi)
		}
	}
	for _, tc := range []struct{ n, sum, lo, hi float64 }{
		{0, 0, 0, 0}, {1.5, 1, 1, 1}, {1, 5, 4, 5}, {2, 10, 1, 2}, {3, 100, 1, 2}, {3, 4, 2, 1},
	} {
		if _, _, err := cwStatisticValues(tc.n, tc.sum, tc.lo, tc.hi); err == nil {
			t.Errorf("%+v: accepted", tc)
		}
	}
}

func TestCWDatum(t *testing.T) {
	h := &Handler{}
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	got, err := h.cwDatum(url.Values{
		"MetricName": {"latency"}, "Unit": {"Milliseconds"}, "Timestamp": {"2024-05-01T11:59:00Z"},
		"Dimensions.member.1.Name": {"Service"}, "Dimensions.member.1.Value": {"web"},
		"Values.member.1": {"1.5"}, "Values.member.2": {"3"}, "Counts.member.1": {"2"}, "Counts.member.2": {"1"},
	}, 1, now)
	want := metrics.Datum{MetricName: "latency", Unit: "Milliseconds", Timestamp: now.Add(-time.Minute),
		Dimensions: []metrics.Dimension{{Name: "Service", Value: "web"}}, Values: []float64{1.5, 3}, Counts: []float64{2, 1}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("values datum = %+v, %v", got, err)
	}
	got, err = h.cwDatum(url.Values{"MetricName": {"m"}, "StatisticValues.SampleCount": {"2"}, "StatisticValues.Sum": {"3"},
		"StatisticValues.Minimum": {"1"}, "StatisticValues.Maximum": {"2"}}, 1, now)
	if err != nil || !reflect.DeepEqual(got.Values, []float64{1, 2}) || !reflect.DeepEqual(got.Counts, []float64{1, 1}) {
		t.Errorf("statistic values datum = %+v, %v", got, err)
	}
	for _, tc := range []struct {
		p    url.Values
		code string
	}{
		{url.Values{"Value": {"1"}}, "MissingParameter"},
		{url.Values{"MetricName": {"m"}}, "MissingParameter"},
		{url.Values{"MetricName": {"m"}, "Value": {"x"}}, "InvalidParameterValue"},
		{url.Values{"MetricName": {"m"}, "Value": {"1"}, "Values.member.1": {"1"}}, "InvalidParameterCombination"},
		{url.Values{"MetricName": {"m"}, "Value": {"1"}, "Counts.member.1": {"1"}}, "InvalidParameterCombination"},
		{url.Values{"MetricName": {"m"}, "StatisticValues.Sum": {"1"}}, "MissingParameter"},
		{url.Values{"MetricName": {"m"}, "Value": {"1"}, "Timestamp": {"yesterday"}}, "InvalidParameterValue"},
		{url.Values{"MetricName": {"m"}, "Value": {"1"}, "StorageResolution": {"5"}}, "InvalidParameterValue"},
		{url.Values{"MetricName": {"m"}, "Value": {"1"}, "Dimensions.member.1.Value": {"v"}}, "MissingParameter"},
	} {
		if _, err := h.cwDatum(tc.p, 3, now); err == nil || asAPIError(err).Code != tc.code {
			t.Errorf("cwDatum(%v) = %v, want %s", tc.p, err, tc.code)
		} else if !strings.Contains(err.Error(), "MetricData.member.3") {
			t.Errorf("cwDatum(%v): %v does not name the datum", tc.p, err)
		}
	}
}

func TestCWBind(t *testing.T) {
	data := func() []metrics.Datum {
		return []metrics.Datum{{MetricName: "a"}, {MetricName: "b", Dimensions: []metrics.Dimension{{Name: "InstanceId", Value: "i-1"}}}}
	}
	// An instance without operator: its own metrics only, bound to it.
	d := data()
	if err := cwBind(api.Caller{Instance: "i-1", Role: config.RoleViewer}, d); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(d[0].Dimensions, []metrics.Dimension{{Name: "InstanceId", Value: "i-1"}}) || len(d[1].Dimensions) != 1 {
		t.Errorf("bound: %+v", d)
	}
	if err := cwBind(api.Caller{Instance: "i-2"}, data()); err == nil || asAPIError(err).Code != "AccessDenied" || !strings.Contains(err.Error(), "member.2") {
		t.Errorf("another instance's datum: %v", err)
	}
	// An operator instance may name another; its own id still fills in.
	d = data()
	if err := cwBind(api.Caller{Instance: "i-2", Role: config.RoleOperator}, d); err != nil || d[0].Dimensions[0].Value != "i-2" || d[1].Dimensions[0].Value != "i-1" {
		t.Errorf("operator instance: %+v %v", d, err)
	}
	// A key's caller: nothing added.
	d = data()
	if err := cwBind(api.Caller{Name: "admin", Role: config.RoleAdmin}, d); err != nil || len(d[0].Dimensions) != 0 {
		t.Errorf("key: %+v %v", d, err)
	}
}

func TestCWPutErrors(t *testing.T) {
	if err := cwPutErrors(nil); err != nil {
		t.Fatal(err)
	}
	if err := cwPutErrors([]error{nil, nil}); err != nil {
		t.Fatal(err)
	}
	derr := &metrics.DatumError{Field: "Values[2]", Err: errors.Join(metrics.ErrInvalid, errors.New("NaN is not a value"))}
	err := cwPutErrors([]error{nil, derr})
	if e := asAPIError(err); e.Code != "InvalidParameterValue" || !strings.Contains(e.Msg, "1 of 2 datums refused (the others are stored): MetricData.member.2.Values.member.3") {
		t.Errorf("datum error: %v", err)
	}
	whole := metrics.ErrClosed
	if e := asAPIError(cwPutErrors([]error{whole, whole})); e.Code != "ServiceUnavailable" || e.Status != 503 {
		t.Errorf("closed: %v", e)
	}
	tooMany := &metrics.DatumError{Err: metrics.ErrTooManySeries}
	if e := asAPIError(cwPutErrors([]error{tooMany})); e.Code != "LimitExceeded" || !strings.Contains(e.Msg, "none stored") {
		t.Errorf("too many series: %v", e)
	}
}

func TestCWAlarmOf(t *testing.T) {
	since := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	th := 1.0
	cfg := config.Alarm{Name: "webapp-down", Description: "down", Namespace: "Custom", Metric: "up", Dimensions: map[string]string{"InstanceId": "*"},
		Statistic: "p99", Comparison: "LessThanThreshold", Threshold: &th, TreatMissingData: "breaching",
		Actions: config.AlarmActions{Alarm: []config.Action{{Notify: "ops"}, {Restart: "instance"}, {Remediate: &config.Remediate{}}}}}
	s := alarm.Status{Name: "webapp-down", Key: "webapp-down/InstanceId=i-1", Dimensions: map[string]string{"InstanceId": "i-1"},
		State: "ALARM", Reason: "Threshold Crossed", Since: since, Namespace: "Custom", Metric: "up", Statistic: "p99",
		Comparison: "LessThanThreshold", Threshold: 1, Period: "10s", EvaluationPeriods: 2, DatapointsToAlarm: 2}
	got := cwAlarmOf(s, &cfg)
	if got.AlarmName != s.Key || got.AlarmArn != awsid.AlarmARN(s.Key) || got.StateValue != "ALARM" || got.StateUpdatedTimestamp != "2024-05-01T12:00:00.000Z" ||
		got.Statistic != "" || got.ExtendedStatistic != "p99" || got.Period != 10 || got.ComparisonOperator != "LessThanThreshold" ||
		got.TreatMissingData != "breaching" || !got.ActionsEnabled || got.AlarmDescription != "down" ||
		!reflect.DeepEqual(got.Dimensions.Member, []cwDimension{{"InstanceId", "i-1"}}) {
		t.Errorf("alarm: %+v", got)
	}
	wantActions := []string{"arn:aws:sns:local:000000000000:ops", "arn:aws:automate:local:ec2:reboot",
		"arn:aws:ssm:local:000000000000:automation-definition/up#Custom"}
	if !reflect.DeepEqual(got.AlarmActions.Member, wantActions) || len(got.OKActions.Member) != 0 {
		t.Errorf("actions: %v %v", got.AlarmActions.Member, got.OKActions.Member)
	}
	// Without a "*" dimension, the alarm has one state, named as the
	// alarm.
	one := cfg
	one.Dimensions = map[string]string{"Service": "web"}
	s1 := s
	s1.Key, s1.Dimensions = "webapp-down/Service=web", map[string]string{"Service": "web"}
	if got := cwAlarmOf(s1, &one); got.AlarmName != "webapp-down" || got.AlarmArn != awsid.AlarmARN("webapp-down") ||
		!reflect.DeepEqual(got.Dimensions.Member, []cwDimension{{"Service", "web"}}) {
		t.Errorf("single-state alarm: %+v", got)
	}
	for name, want := range map[string]bool{"webapp-down": true, "webapp-down/InstanceId=i-1": true, "webapp": false, "webapp-down/InstanceId=i-2": false} {
		if cwAlarmNamed(got, name) != want {
			t.Errorf("cwAlarmNamed(%q) = %v", name, !want)
		}
	}
}

func TestCWField(t *testing.T) {
	for in, want := range map[string]string{"Values[0]": "Values.member.1", "Dimensions[2].Name": "Dimensions.member.3.Name", "Unit": "Unit"} {
		if got := cwField(in); got != want {
			t.Errorf("cwField(%q) = %q, want %q", in, got, want)
		}
	}
}
