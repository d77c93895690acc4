package metrics

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// clock is a settable clock for the store's Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// t0 is a round time: periods of up to an hour start on it.
var t0 = time.Date(2024, 5, 2, 12, 0, 0, 0, time.UTC)

func newStore(t testing.TB, opts Options) (*Store, *clock) {
	t.Helper()
	c := &clock{t: t0}
	if opts.Now == nil {
		opts.Now = c.Now
	}
	opts.Logger = slog.New(slog.DiscardHandler)
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, c
}

func mustPut(t testing.TB, s *Store, ns string, data ...Datum) {
	t.Helper()
	for i, err := range s.Put(ns, data) {
		if err != nil {
			t.Fatalf("datum %d: %v", i, err)
		}
	}
}

func ptr(v float64) *float64 { return &v }

func TestStatistics(t *testing.T) {
	at := func(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }
	web := []Dimension{{"InstanceId", "i-01"}, {"Group", "web"}}
	tests := []struct {
		name string
		data []Datum
		q    Query
		want []Datapoint
	}{
		{
			name: "one value per slot, one period",
			data: []Datum{
				{MetricName: "Latency", Dimensions: web, Timestamp: at(0), Value: 10},
				{MetricName: "Latency", Dimensions: web, Timestamp: at(10), Value: 20},
				{MetricName: "Latency", Dimensions: web, Timestamp: at(59), Value: 60},
			},
			q:    Query{Period: time.Minute, Statistics: []string{Average, Sum, Minimum, Maximum, SampleCount}},
			want: []Datapoint{{Timestamp: at(0), Average: ptr(30), Sum: ptr(90), Minimum: ptr(10), Maximum: ptr(60), SampleCount: ptr(3)}},
		},
		{
			name: "values with counts; a zero count is no sample",
			data: []Datum{{MetricName: "Latency", Dimensions: web, Timestamp: at(5), Values: []float64{1, 2, 3}, Counts: []float64{1, 0, 2}}},
			q:    Query{Period: time.Minute, Statistics: []string{Sum, SampleCount, Minimum, Maximum}, ExtendedStatistics: []string{"p50", "p0", "p100"}},
			want: []Datapoint{{Timestamp: at(0), Sum: ptr(7), SampleCount: ptr(3), Minimum: ptr(1), Maximum: ptr(3),
				ExtendedStatistics: map[string]float64{"p50": 3, "p0": 1, "p100": 3}}},
		},
		{
			name: "periods in time order, empty ones left out, start rounded down",
			data: []Datum{
				{MetricName: "Latency", Dimensions: web, Timestamp: at(130), Value: 3},
				{MetricName: "Latency", Dimensions: web, Timestamp: at(5), Value: 1},
				{MetricName: "Latency", Dimensions: web, Timestamp: at(15), Value: 2},
			},
			q: Query{StartTime: at(7), EndTime: at(180), Period: 10 * time.Second, Statistics: []string{Maximum}},
			want: []Datapoint{
				{Timestamp: at(0), Maximum: ptr(1)},
				{Timestamp: at(10), Maximum: ptr(2)},
				{Timestamp: at(130), Maximum: ptr(3)},
			},
		},
		{
			name: "dimensions in any order, exact match only",
			data: []Datum{
				{MetricName: "Latency", Dimensions: []Dimension{{"Group", "web"}, {"InstanceId", "i-01"}}, Timestamp: at(0), Value: 1},
				{MetricName: "Latency", Dimensions: web[:1], Timestamp: at(0), Value: 100},
			},
			q:    Query{Period: time.Minute, Statistics: []string{Sum}},
			want: []Datapoint{{Timestamp: at(0), Sum: ptr(1)}},
		},
		{
			name: "percentiles of equal samples are exact",
			data: []Datum{{MetricName: "Latency", Dimensions: web, Timestamp: at(0), Values: []float64{7.25}, Counts: []float64{1000}}},
			q:    Query{Period: time.Minute, ExtendedStatistics: []string{"p99.9", "p50"}},
			want: []Datapoint{{Timestamp: at(0), ExtendedStatistics: map[string]float64{"p99.9": 7.25, "p50": 7.25}}},
		},
		{
			name: "unit filter",
			data: []Datum{{MetricName: "Latency", Dimensions: web, Timestamp: at(0), Value: 1, Unit: "Milliseconds"}},
			q:    Query{Period: time.Minute, Statistics: []string{Sum}, Unit: "Seconds"},
			want: []Datapoint{},
		},
		{
			name: "unit carried",
			data: []Datum{{MetricName: "Latency", Dimensions: web, Timestamp: at(0), Value: 1, Unit: "Milliseconds"}},
			q:    Query{Period: time.Minute, Statistics: []string{Sum}, Unit: "Milliseconds"},
			want: []Datapoint{{Timestamp: at(0), Sum: ptr(1), Unit: "Milliseconds"}},
		},
		{
			name: "negative and zero values",
			data: []Datum{{MetricName: "Latency", Dimensions: web, Timestamp: at(0), Values: []float64{-5, 0, 5, -1}}},
			q:    Query{Period: time.Minute, Statistics: []string{Sum, Minimum}, ExtendedStatistics: []string{"p25", "p50"}},
			want: []Datapoint{{Timestamp: at(0), Sum: ptr(-1), Minimum: ptr(-5),
				ExtendedStatistics: map[string]float64{"p25": -5, "p50": -1}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, c := newStore(t, Options{})
			c.Add(time.Hour)
			mustPut(t, s, "App", tt.data...)
			q := tt.q
			q.Namespace, q.MetricName, q.Dimensions = "App", "Latency", web
			if q.StartTime.IsZero() {
				q.StartTime, q.EndTime = t0, t0.Add(time.Hour)
			}
			res, err := s.Statistics(q)
			if err != nil {
				t.Fatal(err)
			}
			if res.Label != "Latency" || len(res.Datapoints) != len(tt.want) {
				t.Fatalf("got %s", dump(res.Datapoints))
			}
			for i, w := range tt.want {
				if g := res.Datapoints[i]; !sameDatapoint(g, w, 0.01) {
					t.Errorf("datapoint %d:\n got %s\nwant %s", i, dump(g), dump(w))
				}
			}
		})
	}
}

func dump(v any) string { return fmt.Sprintf("%+v", deref(v)) }

func deref(v any) any {
	switch v := v.(type) {
	case []Datapoint:
		out := make([]any, len(v))
		for i := range v {
			out[i] = deref(v[i])
		}
		return out
	case Datapoint:
		f := func(p *float64) any {
			if p == nil {
				return nil
			}
			return *p
		}
		return map[string]any{"t": v.Timestamp.Format(time.TimeOnly), "avg": f(v.Average), "sum": f(v.Sum), "min": f(v.Minimum),
			"max": f(v.Maximum), "n": f(v.SampleCount), "ext": v.ExtendedStatistics, "unit": v.Unit}
	}
	return v
}

// sameDatapoint compares two datapoints, percentiles within rel.
func sameDatapoint(g, w Datapoint, rel float64) bool {
	eq := func(a, b *float64) bool { return a == nil && b == nil || a != nil && b != nil && *a == *b }
	if !g.Timestamp.Equal(w.Timestamp) || g.Unit != w.Unit || !eq(g.Average, w.Average) || !eq(g.Sum, w.Sum) ||
		!eq(g.Minimum, w.Minimum) || !eq(g.Maximum, w.Maximum) || !eq(g.SampleCount, w.SampleCount) ||
		len(g.ExtendedStatistics) != len(w.ExtendedStatistics) {
		return false
	}
	for k, wv := range w.ExtendedStatistics {
		gv, ok := g.ExtendedStatistics[k]
		if !ok || math.Abs(gv-wv) > rel*math.Abs(wv) {
			return false
		}
	}
	return true
}

// exact is the nearest-rank percentile of sorted samples.
func exact(sorted []float64, q float64) float64 {
	r := int(math.Ceil(q * float64(len(sorted))))
	return sorted[min(max(r, 1), len(sorted))-1]
}

// TestPercentileError checks percentiles against the bound the sketch
// documents for the spread of the samples of a slot.
func TestPercentileError(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	tests := []struct {
		name  string
		gen   func() float64
		bound float64 // documented relative error
	}{
		{"uniform 100..1000 (10x): level 0", func() float64 { return 100 + 900*rng.Float64() }, AlphaAt(0)},
		{"lognormal, all within 165x: level 1", func() float64 { return math.Exp(3 + rng.NormFloat64()*0.6) }, AlphaAt(1)},
		{"uniform exponent 1e-3..1e3: level 3", func() float64 { return math.Pow(10, -3+6*rng.Float64()) }, AlphaAt(3)},
		{"negative -1000..-100", func() float64 { return -100 - 900*rng.Float64() }, AlphaAt(0)},
		{"integers 1..5 (few buckets)", func() float64 { return float64(1 + rng.IntN(5)) }, AlphaAt(0)},
	}
	qs := []float64{0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, c := newStore(t, Options{})
			c.Add(time.Hour)
			var all []float64
			// 20,000 samples over 6 slots of one minute, in batches of Values.
			for slot := range 6 {
				for range 20 {
					d := Datum{MetricName: "Latency", Timestamp: t0.Add(time.Duration(slot) * 10 * time.Second)}
					for range 150 {
						v := tt.gen()
						d.Values = append(d.Values, v)
						all = append(all, v)
					}
					mustPut(t, s, "App", d)
				}
			}
			slices.Sort(all)
			var names []string
			for _, q := range qs {
				names = append(names, fmt.Sprintf("p%g", q*100))
			}
			res, err := s.Statistics(Query{Namespace: "App", MetricName: "Latency", StartTime: t0, EndTime: t0.Add(time.Minute),
				Period: time.Minute, ExtendedStatistics: names})
			if err != nil || len(res.Datapoints) != 1 {
				t.Fatalf("%v, %v", res, err)
			}
			for i, q := range qs {
				got, want := res.Datapoints[0].ExtendedStatistics[names[i]], exact(all, q)
				if rel := math.Abs(got-want) / math.Abs(want); rel > tt.bound+1e-12 {
					t.Errorf("%s: got %g, want %g: error %.4f > %.4f", names[i], got, want, rel, tt.bound)
				}
			}
		})
	}
}

func TestBadInput(t *testing.T) {
	s, _ := newStore(t, Options{})
	long := strings.Repeat("x", 256)
	tooMany := make([]Dimension, 31)
	for i := range tooMany {
		tooMany[i] = Dimension{fmt.Sprint("d", i), "v"}
	}
	tests := []struct {
		name  string
		datum Datum
		want  string // in the error
	}{
		{"NaN", Datum{MetricName: "m", Value: math.NaN()}, "MetricData[1].Value: invalid: NaN is not a value"},
		{"+Inf in values", Datum{MetricName: "m", Values: []float64{1, math.Inf(1)}}, "MetricData[1].Values[1]: invalid: +Inf is not a value"},
		{"tiny", Datum{MetricName: "m", Value: 1e-200}, "Value: invalid: 1e-200 is out of range"},
		{"negative count", Datum{MetricName: "m", Values: []float64{1}, Counts: []float64{-1}}, "Counts[0]: invalid: -1 is not a count"},
		{"fractional count", Datum{MetricName: "m", Values: []float64{1}, Counts: []float64{0.5}}, "Counts[0]: invalid: 0.5 is not a count"},
		{"counts mismatch", Datum{MetricName: "m", Values: []float64{1, 2}, Counts: []float64{1}}, "Counts: invalid: 1 counts for 2 values"},
		{"counts alone", Datum{MetricName: "m", Counts: []float64{1}}, "Counts: invalid: Counts without Values"},
		{"too many values", Datum{MetricName: "m", Values: make([]float64, 151)}, "Values: invalid: 151 values, at most 150"},
		{"too old", Datum{MetricName: "m", Value: 1, Timestamp: t0.Add(-4 * time.Hour)}, "Timestamp: invalid: 2024-05-02T08:00:00Z is more than 3h0m0s before now"},
		{"too new", Datum{MetricName: "m", Value: 1, Timestamp: t0.Add(3 * time.Hour)}, "Timestamp: invalid: 2024-05-02T15:00:00Z is more than 2h0m0s after now"},
		{"ancient", Datum{MetricName: "m", Value: 1, Timestamp: time.Unix(1, 0)}, "Timestamp: invalid"},
		{"year 9999", Datum{MetricName: "m", Value: 1, Timestamp: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)}, "Timestamp: invalid: 9999-01-01T00:00:00Z is more than 2h0m0s after now"},
		{"year 1", Datum{MetricName: "m", Value: 1, Timestamp: time.Date(1, 1, 2, 0, 0, 0, 0, time.UTC)}, "Timestamp: invalid: 0001-01-02T00:00:00Z is more than 3h0m0s before now"},
		{"unknown unit", Datum{MetricName: "m", Value: 1, Unit: "Parsecs"}, `Unit: invalid: unknown unit "Parsecs"`},
		{"empty name", Datum{Value: 1}, "MetricData[1].MetricName: invalid: MetricName is empty"},
		{"long name", Datum{MetricName: long, Value: 1}, "MetricName is 256 bytes long, at most 255"},
		{"control character", Datum{MetricName: "a\x00b", Value: 1}, "has a control character"},
		{"invalid UTF-8", Datum{MetricName: "a\xffb", Value: 1}, "is not valid UTF-8"},
		{"too many dimensions", Datum{MetricName: "m", Value: 1, Dimensions: tooMany}, "Dimensions: invalid: 31 dimensions, at most 30"},
		{"empty dimension value", Datum{MetricName: "m", Value: 1, Dimensions: []Dimension{{"a", "1"}, {"b", ""}}}, "Dimensions[1].Value: invalid: value is empty"},
		{"long dimension value", Datum{MetricName: "m", Value: 1, Dimensions: []Dimension{{"a", strings.Repeat("v", 1025)}}}, "Dimensions[0].Value: invalid: value is 1025 bytes long"},
		{"duplicate dimension", Datum{MetricName: "m", Value: 1, Dimensions: []Dimension{{"a", "1"}, {"a", "2"}}}, `invalid: dimension "a" given twice`},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			good := Datum{MetricName: "good", Value: float64(i)}
			errs := s.Put("App", []Datum{good, tt.datum, good})
			if len(errs) != 3 || errs[0] != nil || errs[2] != nil || errs[1] == nil {
				t.Fatalf("errs %v", errs)
			}
			if !strings.Contains(errs[1].Error(), tt.want) || !errors.Is(errs[1], ErrInvalid) {
				t.Errorf("error %q, want %q", errs[1], tt.want)
			}
			var de *DatumError
			if !errors.As(errs[1], &de) || de.Index != 1 {
				t.Errorf("not a *DatumError at index 1: %#v", errs[1])
			}
		})
	}
	// The good datums all went in; the bad ones created no series.
	res, err := s.Statistics(Query{Namespace: "App", MetricName: "good", StartTime: t0.Add(-time.Hour), EndTime: t0.Add(time.Hour),
		Period: 2 * time.Hour, Statistics: []string{SampleCount}})
	if err != nil || len(res.Datapoints) != 1 || *res.Datapoints[0].SampleCount != float64(2*len(tests)) {
		t.Errorf("good datums: %s, %v", dump(res.Datapoints), err)
	}
	if n := s.Len(); n != 1 {
		t.Errorf("%d series, want 1: %v", n, s.Series())
	}

	t.Run("unit of a series", func(t *testing.T) {
		errs := s.Put("App", []Datum{{MetricName: "u", Value: 1}, {MetricName: "u", Value: 1, Unit: "Seconds"}, {MetricName: "u", Value: 1, Unit: "Bytes"}, {MetricName: "u", Value: 1}})
		if len(errs) != 4 || errs[0] != nil || errs[1] != nil || errs[3] != nil ||
			errs[2] == nil || !strings.Contains(errs[2].Error(), "Unit: invalid: Bytes, but the series has unit Seconds") {
			t.Errorf("%v", errs)
		}
	})
	t.Run("whole batch", func(t *testing.T) {
		for _, tc := range []struct {
			ns   string
			n    int
			want string
		}{
			{"App", 1001, "invalid: 1001 datums in one batch, at most 1000: split it"},
			{"", 2, "invalid: Namespace is empty"},
			{"App!", 2, `invalid: Namespace "App!": use letters`},
		} {
			data := make([]Datum, tc.n)
			for i := range data {
				data[i] = Datum{MetricName: "whole", Value: 1}
			}
			errs := s.Put(tc.ns, data)
			if len(errs) != tc.n || errs[0] == nil || errs[tc.n-1] == nil || !strings.Contains(errs[0].Error(), tc.want) {
				t.Errorf("%d datums to %q: %v", tc.n, tc.ns, errs[0])
			}
		}
		if slices.ContainsFunc(s.Series(), func(i SeriesInfo) bool { return i.MetricName == "whole" }) {
			t.Error("a refused batch stored something")
		}
	})
}

func TestMaxSeries(t *testing.T) {
	s, _ := newStore(t, Options{MaxSeries: 3})
	var data []Datum
	for i := range 5 {
		data = append(data, Datum{MetricName: "m", Dimensions: []Dimension{{"InstanceId", fmt.Sprint("i-", i)}}, Values: []float64{1, 2, 3}})
	}
	errs := s.Put("App", data)
	for i, err := range errs {
		if (i < 3) != (err == nil) || i >= 3 && !errors.Is(err, ErrTooManySeries) {
			t.Errorf("datum %d: %v", i, err)
		}
	}
	if errs[3] != nil && !strings.Contains(errs[3].Error(), "MetricData[3]: too many series: 3 series kept, at most 3 (MaxSeries)") {
		t.Errorf("message: %v", errs[3])
	}
	// Existing series still take data.
	mustPut(t, s, "App", data[0])
	infos := s.Series()
	if len(infos) != 3 || s.Len() != 3 {
		t.Fatalf("%d series", len(infos))
	}
	for _, in := range infos {
		if in.Bytes <= 0 || in.Bytes > in.MaxBytes {
			t.Errorf("%s: %d bytes, bound %d", in.SeriesKey, in.Bytes, in.MaxBytes)
		}
	}
}

// TestBoundedBytes fills every slot of a series with samples that spread
// over many buckets and checks the bytes reported stay within the bound.
func TestBoundedBytes(t *testing.T) {
	s, c := newStore(t, Options{Resolution: time.Second, Retention: 100 * time.Second, MaxFuture: time.Second})
	rng := rand.New(rand.NewPCG(3, 4))
	vals := make([]float64, 150)
	for range 2 * s.Slots() {
		c.Add(time.Second)
		for range 4 {
			for i := range vals {
				vals[i] = math.Pow(10, -50+100*rng.Float64())
			}
			mustPut(t, s, "App", Datum{MetricName: "wide", Values: vals})
		}
	}
	in := s.Series()[0]
	if in.Bytes > in.MaxBytes || in.Bytes < in.MaxBytes/2 {
		t.Errorf("%d bytes, bound %d", in.Bytes, in.MaxBytes)
	}
	t.Logf("full series: %d bytes, bound %d, %d slots", in.Bytes, in.MaxBytes, s.Slots())
}

func TestRetention(t *testing.T) {
	s, c := newStore(t, Options{Resolution: time.Second, Retention: 10 * time.Second, MaxFuture: 5 * time.Second, MaxAge: 10 * time.Second})
	if s.Slots() != 16 {
		t.Fatalf("%d slots", s.Slots())
	}
	q := func(from time.Time) []PeriodValue {
		t.Helper()
		pv, err := s.Aggregate(SeriesKey{Namespace: "App", MetricName: "m"}, from, from.Add(5*time.Second), time.Second, Sum)
		if err != nil {
			t.Fatal(err)
		}
		return pv
	}
	// A value now and one 5s ahead, the farthest ahead allowed.
	mustPut(t, s, "App", Datum{MetricName: "m", Value: 1}, Datum{MetricName: "m", Value: 2, Timestamp: t0.Add(5 * time.Second)})
	if pv := q(t0); !pv[0].OK || pv[0].Value != 1 || pv[1].OK || !pv[5-0-1].Start.Equal(t0.Add(4*time.Second)) || !q(t0.Add(5 * time.Second))[0].OK {
		t.Errorf("now: %+v", pv)
	}
	// 12s later t0 is past the retention, t0+5s is not.
	c.Add(12 * time.Second)
	mustPut(t, s, "App", Datum{MetricName: "m", Value: 3})
	if pv := q(t0); pv[0].OK {
		t.Errorf("expired slot answered: %+v", pv)
	}
	if pv := q(t0.Add(5 * time.Second)); !pv[0].OK || pv[0].Value != 2 {
		t.Errorf("the future slot, now 7s old: %+v", pv)
	}
	// At t0+16s the ring has wrapped: slot t0 is where t0+16s goes.
	c.Add(4 * time.Second)
	mustPut(t, s, "App", Datum{MetricName: "m", Value: 4})
	if pv := q(t0.Add(16 * time.Second)); !pv[0].OK || pv[0].Value != 4 {
		t.Errorf("new slot: %+v", pv)
	}
	if pv := q(t0.Add(12 * time.Second)); !pv[0].OK || pv[0].Value != 3 {
		t.Errorf("slot t0+12s: %+v", pv)
	}
	if errs := s.Put("App", []Datum{{MetricName: "m", Value: 1, Timestamp: t0.Add(5 * time.Second)}}); errs == nil || !strings.Contains(errs[0].Error(), "more than 10s before now") {
		t.Errorf("t0+5s is 11s old, past MaxAge 10s: %v", errs)
	}
	// 20s later nothing is left: the sweep drops the series.
	c.Add(20 * time.Second)
	s.Sweep()
	if s.Len() != 0 {
		t.Errorf("%d series after the sweep: %+v", s.Len(), s.Series())
	}
	mustPut(t, s, "App", Datum{MetricName: "m", Value: 4})
	if pv := q(c.Now()); !pv[0].OK || pv[0].Value != 4 {
		t.Errorf("after the sweep: %+v", pv)
	}
}

func TestAggregateAndMatch(t *testing.T) {
	s, c := newStore(t, Options{})
	c.Add(10 * time.Minute)
	for i, id := range []string{"i-01", "i-02"} {
		for m := range 5 {
			if m == 2 {
				continue // a period without data
			}
			mustPut(t, s, "Autoheal/Health", Datum{MetricName: "Latency", Timestamp: t0.Add(time.Duration(m) * time.Minute),
				Dimensions: []Dimension{{"InstanceId", id}, {"Group", "web"}}, Values: []float64{float64(10 * (i + 1)), float64(10*(i+1) + 10)}})
		}
	}
	mustPut(t, s, "Autoheal/Health", Datum{MetricName: "Latency", Dimensions: []Dimension{{"Group", "web"}}, Value: 1})
	mustPut(t, s, "Autoheal/Health", Datum{MetricName: "Other", Dimensions: []Dimension{{"Group", "web"}, {"InstanceId", "i-01"}}, Value: 1})

	keys := s.Match("Autoheal/Health", "Latency", map[string]string{"Group": "web", "InstanceId": "*"})
	if len(keys) != 2 || keys[0].String() != "Autoheal/Health Latency{Group=web,InstanceId=i-01}" || keys[1].Dimensions[1].Value != "i-02" {
		t.Fatalf("match: %v", keys)
	}
	if keys := s.Match("Autoheal/Health", "Latency", map[string]string{"Group": "web"}); len(keys) != 1 {
		t.Errorf("exact: %v", keys)
	}
	if keys := s.Match("Autoheal/Health", "Latency", map[string]string{"Group": "db", "InstanceId": "*"}); len(keys) != 0 {
		t.Errorf("no match: %v", keys)
	}
	pv, err := s.Aggregate(keys[1], t0, t0.Add(5*time.Minute), time.Minute, Average)
	if err != nil || len(pv) != 5 {
		t.Fatal(pv, err)
	}
	for m, p := range pv {
		if p.OK != (m != 2) || p.OK && p.Value != 25 || !p.Start.Equal(t0.Add(time.Duration(m)*time.Minute)) {
			t.Errorf("period %d: %+v", m, p)
		}
	}
	// A year-long period reads only the ring's live slots.
	if pv, err := s.Aggregate(keys[1], t0, t0.Add(time.Hour), 365*24*time.Hour, SampleCount); err != nil || len(pv) != 1 || pv[0].Value != 8 {
		t.Errorf("a year-long period: %+v, %v", pv, err)
	}
	pv, _ = s.Aggregate(SeriesKey{Namespace: "Autoheal/Health", MetricName: "None"}, t0, t0.Add(2*time.Minute), time.Minute, "p99")
	if len(pv) != 2 || pv[0].OK || pv[1].OK {
		t.Errorf("missing series: %+v", pv)
	}
	for _, bad := range []struct {
		start, end time.Time
		period     time.Duration
		stat, want string
	}{
		{t0, t0.Add(time.Hour), time.Minute, "Median", `invalid: statistic "Median"`},
		{t0, t0.Add(time.Hour), 15 * time.Second, Sum, "invalid: period 15s: give a multiple of the resolution 10s"},
		{t0, t0, time.Minute, Sum, "is not after start time"},
		{t0, t0.Add(48 * time.Hour), time.Minute, Sum, "2880 periods of 1m0s"},
		{t0, t0.Add(time.Hour), time.Minute, "p101", `invalid: statistic "p101"`},
		{t0, t0.Add(time.Hour), 400 * 24 * time.Hour, Sum, "period 9600h0m0s: at most 8784h0m0s"},
		{time.Time{}.Add(time.Hour), t0, time.Hour, Sum, "time out of range"},
	} {
		if _, err := s.Aggregate(keys[0], bad.start, bad.end, bad.period, bad.stat); err == nil || !strings.Contains(err.Error(), bad.want) || !errors.Is(err, ErrInvalid) {
			t.Errorf("%v: %v, want %q", bad, err, bad.want)
		}
	}
}

func TestPersistence(t *testing.T) {
	path := filepath.Join(t.TempDir(), "metrics.snap")
	c := &clock{t: t0}
	rng := rand.New(rand.NewPCG(5, 6))
	open := func(res time.Duration) *Store {
		s, err := New(Options{Path: path, Now: c.Now, Resolution: res, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := open(0)
	for m := range 30 {
		for _, id := range []string{"i-01", "i-02", "i-03"} {
			vals := make([]float64, 100)
			for i := range vals {
				vals[i] = math.Exp(rng.NormFloat64())
			}
			mustPut(t, s, "App", Datum{MetricName: "Latency", Timestamp: t0.Add(time.Duration(m) * 10 * time.Second),
				Dimensions: []Dimension{{"InstanceId", id}}, Values: vals, Unit: "Seconds"})
		}
	}
	mustPut(t, s, "App", Datum{MetricName: "Gauge", Value: 42})
	q := Query{Namespace: "App", MetricName: "Latency", Dimensions: []Dimension{{"InstanceId", "i-02"}}, StartTime: t0, EndTime: t0.Add(5 * time.Minute),
		Period: time.Minute, Statistics: []string{Average, Sum, Minimum, Maximum, SampleCount}, ExtendedStatistics: []string{"p50", "p99"}}
	before, err := s.Statistics(q)
	if err != nil || len(before.Datapoints) != 5 {
		t.Fatal(before, err)
	}
	seriesBefore := s.Series()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}
	if errs := s.Put("App", []Datum{{MetricName: "m", Value: 1}}); errs == nil || !errors.Is(errs[0], ErrClosed) {
		t.Errorf("put after close: %v", errs)
	}
	if m, _ := filepath.Glob(path + ".tmp-*"); len(m) != 0 {
		t.Errorf("temporary files left: %v", m)
	}

	c.Add(time.Minute)
	s = open(0)
	after, err := s.Statistics(q)
	if err != nil || len(after.Datapoints) != 5 {
		t.Fatal(after, err)
	}
	for i := range before.Datapoints {
		if !sameDatapoint(after.Datapoints[i], before.Datapoints[i], 0) {
			t.Errorf("period %d: %s after, %s before", i, dump(after.Datapoints[i]), dump(before.Datapoints[i]))
		}
	}
	seriesAfter := s.Series()
	if len(seriesAfter) != len(seriesBefore) {
		t.Fatalf("%d series after, %d before", len(seriesAfter), len(seriesBefore))
	}
	for i := range seriesAfter {
		a, b := seriesAfter[i], seriesBefore[i]
		if a.SeriesKey.String() != b.SeriesKey.String() || a.Unit != b.Unit || !a.Last.Equal(b.Last) {
			t.Errorf("series %d: %+v after, %+v before", i, a, b)
		}
	}
	s.Close()

	// A coarser resolution merges the slots: the minute statistics hold.
	s = open(time.Minute)
	q.ExtendedStatistics = nil
	coarse, err := s.Statistics(q)
	if err != nil || len(coarse.Datapoints) != 5 {
		t.Fatalf("resolution 1m: %s, %v", dump(coarse.Datapoints), err)
	}
	for i, dp := range coarse.Datapoints {
		want := before.Datapoints[i]
		want.ExtendedStatistics = nil
		if !dp.Timestamp.Equal(want.Timestamp) || *dp.SampleCount != *want.SampleCount || *dp.Minimum != *want.Minimum ||
			*dp.Maximum != *want.Maximum || math.Abs(*dp.Sum-*want.Sum) > 1e-9*math.Abs(*want.Sum) {
			t.Errorf("resolution 1m, period %d: %s, want %s", i, dump(dp), dump(want))
		}
	}
	s.Close()

	// A corrupt snapshot is moved aside and the store starts empty.
	b, _ := os.ReadFile(path)
	b[len(b)/2] ^= 0xff
	os.WriteFile(path, b, 0o600)
	s = open(0)
	if s.Len() != 0 {
		t.Errorf("%d series from a corrupt snapshot", s.Len())
	}
	if _, err := os.Stat(path + ".corrupt"); err != nil {
		t.Errorf("not moved aside: %v", err)
	}
	s.Close()
	for _, junk := range [][]byte{nil, []byte("AHMETRC1"), []byte("not a snapshot at all")} {
		os.WriteFile(path, junk, 0o600)
		s = open(0)
		if s.Len() != 0 {
			t.Errorf("%q: %d series", junk, s.Len())
		}
		s.Close()
	}
}

// TestConcurrent runs every operation at once, for the race detector.
// Rounds, not time, bound it: each goroutine goes on until every one has
// done its share, so all of them overlap however the machine schedules
// them.
func TestConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "metrics.snap")
	s, c := newStore(t, Options{Path: path, Resolution: time.Second, Retention: time.Minute, MaxSeries: 50})
	const writers = 4
	var wg sync.WaitGroup
	var done atomic.Int32 // goroutines that have done their share
	// until runs round until all writers+1 goroutines have done their
	// rounds, counting this one's when it has.
	until := func(rounds int, round func()) {
		for i := 1; ; i++ {
			round()
			if i == rounds {
				done.Add(1)
			}
			if i >= rounds && done.Load() == writers+1 {
				return
			}
		}
	}
	for w := range writers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 0))
			until(100, func() {
				data := make([]Datum, 20)
				for j := range data {
					data[j] = Datum{MetricName: "m", Dimensions: []Dimension{{"InstanceId", fmt.Sprint("i-", rng.IntN(60))}}, Values: []float64{rng.Float64() + 1, 2}}
				}
				s.Put("App", data)
			})
		})
	}
	wg.Go(func() {
		until(5, func() {
			c.Add(100 * time.Millisecond)
			s.Sweep()
			s.Series()
			s.Match("App", "m", map[string]string{"InstanceId": "*"})
			s.Statistics(Query{Namespace: "App", MetricName: "m", Dimensions: []Dimension{{"InstanceId", "i-1"}}, StartTime: c.Now().Add(-time.Minute),
				EndTime: c.Now(), Period: time.Second, Statistics: []string{Sum}, ExtendedStatistics: []string{"p90"}})
			if err := s.Snapshot(); err != nil {
				t.Error(err)
			}
		})
	})
	wg.Wait()
	if s.Len() > 50 {
		t.Errorf("%d series, at most 50", s.Len())
	}
}

func TestOptions(t *testing.T) {
	for _, tc := range []struct {
		opts Options
		want string
	}{
		{Options{Resolution: 1500 * time.Millisecond}, "resolution 1.5s: give a whole number of seconds"},
		{Options{Resolution: time.Minute, Retention: time.Second}, "retention 1s is shorter than the resolution 1m0s"},
		{Options{MaxAge: 4 * time.Hour}, "max age 4h0m0s: give at most the retention 3h0m0s"},
		{Options{Resolution: time.Second, Retention: 400 * time.Hour}, "slots per series, at most"},
	} {
		if _, err := New(tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.opts, err, tc.want)
		}
	}
	s, _ := newStore(t, Options{})
	if s.Slots() != 1801 || s.Resolution() != 10*time.Second {
		t.Errorf("%d slots", s.Slots())
	}
}
