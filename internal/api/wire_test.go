package api

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/autoheal/autoheal/internal/alarm"
	"github.com/autoheal/autoheal/internal/api/wire"
	"github.com/autoheal/autoheal/internal/group"
	"github.com/autoheal/autoheal/internal/lb"
	"github.com/autoheal/autoheal/internal/maintenance"
	"github.com/autoheal/autoheal/internal/metrics"
	"github.com/autoheal/autoheal/internal/provider"
	"github.com/autoheal/autoheal/internal/remediation"
	"github.com/autoheal/autoheal/internal/runbook"
	"github.com/autoheal/autoheal/internal/store"
)

// TestWireMirrors fills every field of each controller type the API
// encodes, encodes it, decodes that into its wire type, encodes again and
// compares: a field the wire type lacks (one added to a controller type
// later) is lost and named here.
func TestWireMirrors(t *testing.T) {
	pairs := []struct {
		domain, wire any
	}{
		{&statusBody{}, &wire.Status{}},
		{&group.Snapshot{}, &wire.Group{}},
		{&store.Instance{}, &wire.Instance{}},
		{&provider.ExitStatus{}, &wire.ExitStatus{}},
		{&runbook.Summary{}, &wire.DocumentSummary{}},
		{&runbook.Execution{}, &wire.Execution{}},
		{&remediation.Incident{}, &wire.Incident{}},
		{&alarm.Status{}, &wire.Alarm{}},
		{&lb.Health{}, &wire.TargetGroup{}},
		{&maintenance.WindowStatus{}, &wire.WindowStatus{}},
		{&metrics.PutRequest{}, &wire.PutRequest{}},
		{&metrics.Result{}, &wire.Statistics{}},
		{&listMetricsBody{}, &wire.ListMetricsResponse{}},
	}
	for _, p := range pairs {
		name := reflect.TypeOf(p.domain).Elem().String()
		t.Run(name, func(t *testing.T) {
			fill(reflect.ValueOf(p.domain).Elem(), 0)
			sent, err := json.Marshal(p.domain)
			if err != nil {
				t.Fatalf("encode %s: %v", name, err)
			}
			if err := json.Unmarshal(sent, p.wire); err != nil {
				t.Fatalf("decode into %T: %v\n%s", p.wire, err, sent)
			}
			again, err := json.Marshal(p.wire)
			if err != nil {
				t.Fatal(err)
			}
			var a, b any
			json.Unmarshal(sent, &a)
			json.Unmarshal(again, &b)
			if diff := jsonDiff("", a, b); len(diff) > 0 {
				t.Errorf("%T loses or changes what %s sends:\n  %s", p.wire, name, strings.Join(diff, "\n  "))
			}
		})
	}
}

// TestWirePutRequestDecodes: what the client sends is what the store's
// decoder reads.
func TestWirePutRequestDecodes(t *testing.T) {
	ts := time.Date(2024, 5, 2, 12, 0, 0, 0, time.UTC)
	req := wire.PutRequest{Namespace: "App", MetricData: []wire.Datum{
		{MetricName: "a", Value: 1.5, Unit: "Seconds", Timestamp: ts, Dimensions: []wire.Dimension{{Name: "InstanceId", Value: "i-1"}}},
		{MetricName: "b", Values: []float64{1, 2}, Counts: []float64{3, 4}},
	}}
	b, _ := json.Marshal(req)
	got, errs, err := metrics.DecodePut(b, 10)
	if err != nil || errs != nil {
		t.Fatalf("%v %v\n%s", err, errs, b)
	}
	want := metrics.PutRequest{Namespace: "App", MetricData: []metrics.Datum{
		{MetricName: "a", Value: 1.5, Unit: "Seconds", Timestamp: ts, Dimensions: []metrics.Dimension{{Name: "InstanceId", Value: "i-1"}}},
		{MetricName: "b", Values: []float64{1, 2}, Counts: []float64{3, 4}},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("decoded %+v\nwant %+v", got, want)
	}
}

// TestCheckStatisticAgrees keeps the CLI's check of statistic names and
// the store's the same.
func TestCheckStatisticAgrees(t *testing.T) {
	for _, s := range []string{"Average", "Sum", "Minimum", "Maximum", "SampleCount", "average", "Mean", "p0", "p50", "p99", "p99.9",
		"p100", "p100.1", "p-1", "p", "pp", "p1e2", "p0x10", "p99.99999", "p99.999999", "p.5", "p5.", "", "P99", "p 99", "p+1", "pNaN", "p1_0"} {
		werr, merr := wire.CheckStatistic(s), metrics.ParseStatistic(s)
		if (werr == nil) != (merr == nil) {
			t.Errorf("%q: wire %v, metrics %v", s, werr, merr)
		}
	}
}

// fill sets every exported field reachable from v to a value that is not
// its zero value.
func fill(v reflect.Value, depth int) {
	if depth > 6 {
		return
	}
	switch v.Interface().(type) {
	case time.Time:
		v.Set(reflect.ValueOf(time.Date(2024, 5, 2, 12, 30, 0, 123, time.UTC)))
		return
	case time.Duration:
		v.SetInt(int64(3 * time.Second))
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			f := v.Type().Field(i)
			if !f.IsExported() || f.Tag.Get("json") == "-" {
				continue
			}
			fill(v.Field(i), depth+1)
		}
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fill(p.Elem(), depth+1)
		v.Set(p)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 1, 1)
		fill(s.Index(0), depth+1)
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		fill(k, depth+1)
		fill(e, depth+1)
		m.SetMapIndex(k, e)
		v.Set(m)
	case reflect.Interface:
		v.Set(reflect.ValueOf("any value"))
	case reflect.String:
		v.SetString("s-" + fmt.Sprint(depth))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(7)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(7)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(2.5)
	}
}

// jsonDiff lists where two decoded JSON values differ.
func jsonDiff(at string, a, b any) []string {
	switch av := a.(type) {
	case map[string]any:
		bv, ok := b.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: %v, decoded as %v", at, a, b)}
		}
		var out []string
		keys := make([]string, 0, len(av))
		for k := range av {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if _, ok := bv[k]; !ok {
				out = append(out, fmt.Sprintf("%s.%s: lost", at, k))
				continue
			}
			out = append(out, jsonDiff(at+"."+k, av[k], bv[k])...)
		}
		for k := range bv {
			if _, ok := av[k]; !ok {
				out = append(out, fmt.Sprintf("%s.%s: added", at, k))
			}
		}
		return out
	case []any:
		bv, ok := b.([]any)
		if !ok || len(av) != len(bv) {
			return []string{fmt.Sprintf("%s: %v, decoded as %v", at, a, b)}
		}
		var out []string
		for i := range av {
			out = append(out, jsonDiff(fmt.Sprintf("%s[%d]", at, i), av[i], bv[i])...)
		}
		return out
	}
	if !reflect.DeepEqual(a, b) {
		return []string{fmt.Sprintf("%s: %v, decoded as %v", at, a, b)}
	}
	return nil
}
