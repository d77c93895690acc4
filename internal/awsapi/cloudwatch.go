package awsapi

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/autoheal/autoheal/internal/api"
	"github.com/autoheal/autoheal/internal/api/wire"
	"github.com/autoheal/autoheal/internal/config"
	"github.com/autoheal/autoheal/internal/metrics"
)

// CloudWatch's actions over the metric store and the alarms
// (docs/design.md §14), with the REST API's meaning (internal/api
// metrics.go and alarms.go): the store checks each datum, the namespaces
// under Autoheal/ are the controller's own, and an instance's own
// credentials push its own metrics.
//
// An alarm with a "*" dimension has one state per value; CloudWatch
// shows each as an alarm of its own, named by its key
// ("webapp-down/InstanceId=i-..."). DescribeAlarms and SetAlarmState take
// a key or the configured name (every state of that alarm).
var cloudwatchActions = map[string]action{
	"PutMetricData":       {need: config.RoleOperator, self: true, run: (*Handler).cwPutMetricData},
	"GetMetricStatistics": {need: config.RoleViewer, run: (*Handler).cwGetMetricStatistics},
	"GetMetricData":       {need: config.RoleViewer, run: (*Handler).cwGetMetricData},
	"DescribeAlarms":      {need: config.RoleViewer, run: (*Handler).cwDescribeAlarms},
	"SetAlarmState":       {need: config.RoleOperator, run: (*Handler).cwSetAlarmState},
}

// cwTimeFormat is how CloudWatch writes times.
const cwTimeFormat = "2006-01-02T15:04:05.000Z"

func cwTime(t time.Time) string { return t.UTC().Format(cwTimeFormat) }

// cwMetrics returns the metric store.
func (h *Handler) cwMetrics() (api.Metrics, error) {
	if h.deps.Metrics == nil {
		return nil, &apiError{Status: http.StatusServiceUnavailable, Code: "ServiceUnavailable", Msg: "metrics are not enabled on this controller"}
	}
	return h.deps.Metrics, nil
}

// cwStoreError maps the metric store's errors to CloudWatch's.
func cwStoreError(err error) error {
	msg := strings.TrimPrefix(err.Error(), "invalid: ")
	switch {
	case errors.Is(err, metrics.ErrClosed):
		return &apiError{Status: http.StatusServiceUnavailable, Code: "ServiceUnavailable", Msg: msg}
	case errors.Is(err, metrics.ErrTooManySeries):
		return invalid("LimitExceeded", "%s", msg)
	}
	return invalid("InvalidParameterValue", "%s", msg)
}

// cwFloat parses a number parameter.
func cwFloat(p url.Values, field, name string) (float64, bool, error) {
	s := p.Get(field)
	if s == "" {
		return 0, false, nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, false, invalid("InvalidParameterValue", "the value %s for parameter %s is not a number", s, name)
	}
	return v, true, nil
}

// cwFloats parses a list of numbers (Values.member.N).
func cwFloats(p url.Values, field, name string) ([]float64, error) {
	var out []float64
	for i, s := range list(p, field) {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, invalid("InvalidParameterValue", "the value %s for parameter %s.%s.%d is not a number", s, name, field, i+1)
		}
		out = append(out, v)
	}
	return out, nil
}

// cwDimensions reads PREFIX.member.N.Name and .Value.
func cwDimensions(p url.Values, prefix, name string) ([]metrics.Dimension, error) {
	var out []metrics.Dimension
	for i, m := range members(p, prefix+".member") {
		d := metrics.Dimension{Name: m.Get("Name"), Value: m.Get("Value")}
		if d.Name == "" {
			return nil, invalid("MissingParameter", "%s.%s.member.%d.Name is required", name, prefix, i+1)
		}
		out = append(out, d)
	}
	return out, nil
}

// cwStatisticValues turns a StatisticValues set (SampleCount, Sum,
// Minimum, Maximum) into values with counts that have exactly those
// statistics: Minimum once, Maximum once, and the rest of the sum spread
// evenly over the other SampleCount-2 samples. Percentiles of such a
// datum are approximate, as CloudWatch's are of a StatisticSet.
func cwStatisticValues(count, sum, lo, hi float64) (values, counts []float64, err error) {
	tol := 1e-9 * max(1, math.Abs(sum), math.Abs(lo)*count, math.Abs(hi)*count)
	switch {
	case count < 1 || count != math.Trunc(count) || count > metrics.MaxCount:
		return nil, nil, fmt.Errorf("SampleCount %v: give a whole number of samples, at least 1", count)
	case lo > hi:
		return nil, nil, fmt.Errorf("the Minimum %v is more than the Maximum %v", lo, hi)
	case count == 1:
		if lo != hi || math.Abs(sum-lo) > tol {
			return nil, nil, fmt.Errorf("one sample, but Sum %v, Minimum %v and Maximum %v differ", sum, lo, hi)
		}
		return []float64{lo}, []float64{1}, nil
	case count == 2:
		if math.Abs(sum-lo-hi) > tol {
			return nil, nil, fmt.Errorf("two samples, but Sum %v is not Minimum %v + Maximum %v", sum, lo, hi)
		}
		if lo == hi {
			return []float64{lo}, []float64{2}, nil
		}
		return []float64{lo, hi}, []float64{1, 1}, nil
	}
	rest := (sum - lo - hi) / (count - 2)
	if rest < lo-tol || rest > hi+tol {
		return nil, nil, fmt.Errorf("the Sum %v cannot be the sum of %v samples from Minimum %v to Maximum %v", sum, count, lo, hi)
	}
	rest = min(max(rest, lo), hi)
	return []float64{lo, rest, hi}, []float64{1, count - 2, 1}, nil
}

// cwDatum reads MetricData.member.N (its fields in m).
func (h *Handler) cwDatum(m url.Values, n int, now time.Time) (metrics.Datum, error) {
	name := "MetricData.member." + strconv.Itoa(n)
	d := metrics.Datum{MetricName: m.Get("MetricName"), Unit: metrics.Unit(m.Get("Unit"))}
	if d.MetricName == "" {
		return d, invalid("MissingParameter", "%s.MetricName is required", name)
	}
	var err error
	if d.Dimensions, err = cwDimensions(m, "Dimensions", name); err != nil {
		return d, err
	}
	if s := m.Get("Timestamp"); s != "" {
		if d.Timestamp, err = wire.ParseTime(s, now); err != nil {
			return d, invalid("InvalidParameterValue", "%s.Timestamp: %v", name, err)
		}
	}
	if s := m.Get("StorageResolution"); s != "" && s != "1" && s != "60" {
		return d, invalid("InvalidParameterValue", "%s.StorageResolution %s: give 1 or 60", name, s)
	}
	v, hasValue, err := cwFloat(m, "Value", name+".Value")
	if err != nil {
		return d, err
	}
	if d.Values, err = cwFloats(m, "Values.member", name); err != nil {
		return d, err
	}
	if d.Counts, err = cwFloats(m, "Counts.member", name); err != nil {
		return d, err
	}
	stats := map[string]float64{}
	for _, f := range []string{"SampleCount", "Sum", "Minimum", "Maximum"} {
		x, ok, err := cwFloat(m, "StatisticValues."+f, name+".StatisticValues."+f)
		if err != nil {
			return d, err
		}
		if ok {
			stats[f] = x
		}
	}
	kinds := 0
	for _, has := range []bool{hasValue, len(d.Values) > 0, len(stats) > 0} {
		if has {
			kinds++
		}
	}
	switch {
	case kinds > 1:
		return d, invalid("InvalidParameterCombination", "%s: give one of Value, Values and StatisticValues", name)
	case kinds == 0:
		return d, invalid("MissingParameter", "%s: give Value, Values or StatisticValues", name)
	case len(d.Counts) > 0 && len(d.Values) == 0:
		return d, invalid("InvalidParameterCombination", "%s: Counts without Values", name)
	case hasValue:
		d.Value = v
	case len(stats) > 0:
		if len(stats) != 4 {
			return d, invalid("MissingParameter", "%s.StatisticValues: give SampleCount, Sum, Minimum and Maximum", name)
		}
		d.Values, d.Counts, err = cwStatisticValues(stats["SampleCount"], stats["Sum"], stats["Minimum"], stats["Maximum"])
		if err != nil {
			return d, invalid("InvalidParameterValue", "%s.StatisticValues: %v", name, err)
		}
	}
	return d, nil
}

// cwBind applies the pushing instance's identity, as POST /v1/metrics
// does: an instance's datums without InstanceId get its id; one whose
// group is not granted operator may push its own metrics only, and a
// datum naming another instance refuses the push whole.
func cwBind(c api.Caller, data []metrics.Datum) error {
	if c.Instance == "" {
		return nil
	}
	bound := !c.Allows(config.RoleOperator)
	for i := range data {
		has := false
		for _, dim := range data[i].Dimensions {
			if dim.Name != config.DimensionInstanceID {
				continue
			}
			has = true
			if bound && dim.Value != c.Instance {
				return &apiError{Status: http.StatusForbidden, Code: "AccessDenied",
					Msg: fmt.Sprintf("MetricData.member.%d: InstanceId=%s: these credentials are instance %s's, and an instance pushes its own metrics only", i+1, dim.Value, c.Instance)}
			}
		}
		if !has {
			data[i].Dimensions = append(data[i].Dimensions, metrics.Dimension{Name: config.DimensionInstanceID, Value: c.Instance})
		}
	}
	return nil
}

func (h *Handler) cwPutMetricData(c *call) (any, error) {
	st, err := h.cwMetrics()
	if err != nil {
		return nil, err
	}
	ns := c.params.Get("Namespace")
	if ns == "" {
		return nil, invalid("MissingParameter", "Namespace is required")
	}
	if err := metrics.CheckNamespace(ns); err != nil {
		return nil, cwStoreError(err)
	}
	if strings.HasPrefix(ns, api.ReservedNamespace) {
		return nil, invalid("InvalidParameterValue", "namespace %q: %s is reserved for autoheal's own metrics", ns, api.ReservedNamespace)
	}
	ms := members(c.params, "MetricData.member")
	if len(ms) == 0 {
		return nil, invalid("MissingParameter", "MetricData is required: give at least one datum")
	}
	if limit := st.Limits().MaxBatch; limit > 0 && len(ms) > limit {
		return nil, invalid("InvalidParameterValue", "%d datums in MetricData, at most %d: split the batch", len(ms), limit)
	}
	// As on CloudWatch, a datum that does not parse refuses the whole
	// request: nothing is stored.
	now := h.now()
	data := make([]metrics.Datum, len(ms))
	for i, m := range ms {
		if data[i], err = h.cwDatum(m, i+1, now); err != nil {
			return nil, err
		}
	}
	if err := cwBind(c.caller, data); err != nil {
		return nil, err
	}
	return nil, cwPutErrors(st.Put(ns, data))
}

// cwPutErrors is the store's answer to a Put as CloudWatch's error: nil
// when every datum was stored; else which were refused, and that the
// others were stored (the store checks each datum on its own).
func cwPutErrors(errs []error) error {
	var refused []error
	var idx []int
	for i, e := range errs {
		if e != nil {
			refused, idx = append(refused, e), append(idx, i)
		}
	}
	if len(refused) == 0 {
		return nil
	}
	var de *metrics.DatumError
	if !errors.As(refused[0], &de) {
		return cwStoreError(refused[0]) // the batch as a whole
	}
	kept := "the others are stored"
	if len(refused) == len(errs) {
		kept = "none stored"
	}
	first := "MetricData.member." + strconv.Itoa(idx[0]+1)
	if de.Field != "" {
		first += "." + cwField(de.Field)
	}
	first += ": " + strings.TrimPrefix(de.Err.Error(), "invalid: ")
	msg := fmt.Sprintf("%d of %d datums refused (%s): %s", len(refused), len(errs), kept, first)
	if len(refused) > 1 {
		msg += fmt.Sprintf(" (and %d more)", len(refused)-1)
	}
	code := "InvalidParameterValue"
	if errors.Is(refused[0], metrics.ErrTooManySeries) {
		code = "LimitExceeded"
	}
	if errors.Is(refused[0], metrics.ErrClosed) {
		return &apiError{Status: http.StatusServiceUnavailable, Code: "ServiceUnavailable", Msg: msg}
	}
	return invalid(code, "%s", msg)
}

// cwField names a datum's field as the Query protocol does: "Values[3]"
// is Values.member.4.
var cwIndexed = regexp.MustCompile(`\[(\d+)\]`)

func cwField(f string) string {
	return cwIndexed.ReplaceAllStringFunc(f, func(s string) string {
		n, _ := strconv.Atoi(s[1 : len(s)-1])
		return ".member." + strconv.Itoa(n+1)
	})
}

// cwTimeParam parses a required time parameter.
func cwTimeParam(p url.Values, name string, now time.Time) (time.Time, error) {
	s := p.Get(name)
	if s == "" {
		return time.Time{}, invalid("MissingParameter", "%s is required", name)
	}
	t, err := wire.ParseTime(s, now)
	if err != nil {
		return time.Time{}, invalid("InvalidParameterValue", "%s: %v", name, err)
	}
	return t, nil
}

// cwPeriod parses a Period in seconds.
func cwPeriod(s, name string) (time.Duration, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, invalid("InvalidParameterValue", "%s %q: give a number of seconds, at least 1", name, s)
	}
	return time.Duration(n) * time.Second, nil
}

type cwEntry struct {
	Key   string  `xml:"key"`
	Value float64 `xml:"value"`
}

type cwStatMap struct {
	Entry []cwEntry `xml:"entry"`
}

type cwDatapoint struct {
	Timestamp          string
	SampleCount        *float64
	Average            *float64
	Sum                *float64
	Minimum            *float64
	Maximum            *float64
	Unit               string
	ExtendedStatistics *cwStatMap
}

type getMetricStatisticsResult struct {
	Label      string
	Datapoints queryList[cwDatapoint]
}

// cwUnit is a series' unit as CloudWatch shows it: None when it has none.
func cwUnit(u metrics.Unit) string {
	if u == "" {
		return "None"
	}
	return string(u)
}

func cwDatapointOf(dp metrics.Datapoint) cwDatapoint {
	out := cwDatapoint{Timestamp: cwTime(dp.Timestamp), SampleCount: dp.SampleCount, Average: dp.Average, Sum: dp.Sum,
		Minimum: dp.Minimum, Maximum: dp.Maximum, Unit: cwUnit(dp.Unit)}
	if len(dp.ExtendedStatistics) > 0 {
		out.ExtendedStatistics = &cwStatMap{}
		for _, k := range slices.Sorted(maps.Keys(dp.ExtendedStatistics)) {
			out.ExtendedStatistics.Entry = append(out.ExtendedStatistics.Entry, cwEntry{k, dp.ExtendedStatistics[k]})
		}
	}
	return out
}

func (h *Handler) cwGetMetricStatistics(c *call) (any, error) {
	st, err := h.cwMetrics()
	if err != nil {
		return nil, err
	}
	p := c.params
	now := h.now()
	q := metrics.Query{Namespace: p.Get("Namespace"), MetricName: p.Get("MetricName"), Unit: metrics.Unit(p.Get("Unit"))}
	if q.Namespace == "" || q.MetricName == "" {
		return nil, invalid("MissingParameter", "Namespace and MetricName are required")
	}
	if q.Dimensions, err = cwDimensions(p, "Dimensions", "GetMetricStatistics"); err != nil {
		return nil, err
	}
	if q.StartTime, err = cwTimeParam(p, "StartTime", now); err != nil {
		return nil, err
	}
	if q.EndTime, err = cwTimeParam(p, "EndTime", now); err != nil {
		return nil, err
	}
	if !q.StartTime.Before(q.EndTime) {
		return nil, invalid("InvalidParameterValue", "StartTime %s must be before EndTime %s", cwTime(q.StartTime), cwTime(q.EndTime))
	}
	if p.Get("Period") == "" {
		return nil, invalid("MissingParameter", "Period is required")
	}
	if q.Period, err = cwPeriod(p.Get("Period"), "Period"); err != nil {
		return nil, err
	}
	q.Statistics, q.ExtendedStatistics = list(p, "Statistics.member"), list(p, "ExtendedStatistics.member")
	if len(q.Statistics)+len(q.ExtendedStatistics) == 0 {
		return nil, invalid("MissingParameter", "give Statistics or ExtendedStatistics")
	}
	for _, s := range q.Statistics {
		switch s {
		case metrics.Average, metrics.Sum, metrics.Minimum, metrics.Maximum, metrics.SampleCount:
		default:
			return nil, invalid("InvalidParameterValue", "Statistics: %q is not one of Average, Sum, Minimum, Maximum, SampleCount (percentiles go in ExtendedStatistics)", s)
		}
	}
	res, err := st.Statistics(q)
	if err != nil {
		return nil, cwStoreError(err)
	}
	out := &getMetricStatisticsResult{Label: res.Label, Datapoints: queryList[cwDatapoint]{Member: []cwDatapoint{}}}
	for _, dp := range res.Datapoints {
		out.Datapoints.Member = append(out.Datapoints.Member, cwDatapointOf(dp))
	}
	return out, nil
}

// cwQueryID is a MetricDataQuery's Id, as CloudWatch allows it.
var cwQueryID = regexp.MustCompile(`^[a-z][a-zA-Z0-9_]{0,254}$`)

// cwDataQuery is one MetricDataQuery with a MetricStat.
type cwDataQuery struct {
	id, label  string
	returnData bool
	stat       string
	q          metrics.Query
}

type cwDataResult struct {
	ID         string `xml:"Id"`
	Label      string
	Timestamps queryList[string]
	Values     queryList[float64]
	StatusCode string
}

type getMetricDataResult struct {
	MetricDataResults queryList[cwDataResult]
	Messages          queryList[string]
}

// cwDataQueries reads MetricDataQueries.member.N.
func cwDataQueries(p url.Values, start, end time.Time) ([]cwDataQuery, error) {
	var out []cwDataQuery
	seen := map[string]bool{}
	for i, m := range members(p, "MetricDataQueries.member") {
		name := "MetricDataQueries.member." + strconv.Itoa(i+1)
		dq := cwDataQuery{id: m.Get("Id"), label: m.Get("Label"), returnData: m.Get("ReturnData") != "false"}
		if !cwQueryID.MatchString(dq.id) {
			return nil, invalid("ValidationError", "%s.Id %q: give a lowercase letter then letters, digits or _", name, dq.id)
		}
		if seen[dq.id] {
			return nil, invalid("ValidationError", "%s.Id %q is given twice", name, dq.id)
		}
		seen[dq.id] = true
		if e := m.Get("Expression"); e != "" {
			return nil, invalid("ValidationError", "%s (Id %s): metric math expressions are not supported here (%q); give a MetricStat", name, dq.id, e)
		}
		if m.Get("MetricStat.Metric.MetricName") == "" {
			return nil, invalid("ValidationError", "%s (Id %s): give a MetricStat with its Metric", name, dq.id)
		}
		dq.q = metrics.Query{Namespace: m.Get("MetricStat.Metric.Namespace"), MetricName: m.Get("MetricStat.Metric.MetricName"),
			Unit: metrics.Unit(m.Get("MetricStat.Unit")), StartTime: start, EndTime: end}
		if dq.q.Namespace == "" {
			return nil, invalid("ValidationError", "%s.MetricStat.Metric.Namespace is required", name)
		}
		var err error
		if dq.q.Dimensions, err = cwDimensions(m, "MetricStat.Metric.Dimensions", name); err != nil {
			return nil, err
		}
		ps := m.Get("MetricStat.Period")
		if ps == "" {
			return nil, invalid("ValidationError", "%s.MetricStat.Period is required", name)
		}
		if dq.q.Period, err = cwPeriod(ps, name+".MetricStat.Period"); err != nil {
			return nil, err
		}
		dq.stat = m.Get("MetricStat.Stat")
		if err := metrics.ParseStatistic(dq.stat); err != nil {
			return nil, invalid("ValidationError", "%s.MetricStat.Stat: %v", name, strings.TrimPrefix(err.Error(), "invalid: "))
		}
		dq.q.Statistics = []string{dq.stat}
		if dq.label == "" {
			dq.label = dq.q.MetricName
		}
		out = append(out, dq)
	}
	if len(out) == 0 {
		return nil, invalid("ValidationError", "MetricDataQueries is required: give at least one query")
	}
	return out, nil
}

// cwStatValue is one statistic of a datapoint.
func cwStatValue(dp metrics.Datapoint, stat string) (float64, bool) {
	var v *float64
	switch stat {
	case metrics.Average:
		v = dp.Average
	case metrics.Sum:
		v = dp.Sum
	case metrics.Minimum:
		v = dp.Minimum
	case metrics.Maximum:
		v = dp.Maximum
	case metrics.SampleCount:
		v = dp.SampleCount
	default:
		x, ok := dp.ExtendedStatistics[stat]
		return x, ok
	}
	if v == nil {
		return 0, false
	}
	return *v, true
}

func (h *Handler) cwGetMetricData(c *call) (any, error) {
	st, err := h.cwMetrics()
	if err != nil {
		return nil, err
	}
	p := c.params
	now := h.now()
	start, err := cwTimeParam(p, "StartTime", now)
	if err != nil {
		return nil, err
	}
	end, err := cwTimeParam(p, "EndTime", now)
	if err != nil {
		return nil, err
	}
	if !start.Before(end) {
		return nil, invalid("ValidationError", "StartTime %s must be before EndTime %s", cwTime(start), cwTime(end))
	}
	descending := true
	switch s := p.Get("ScanBy"); s {
	case "", "TimestampDescending":
	case "TimestampAscending":
		descending = false
	default:
		return nil, invalid("ValidationError", "ScanBy %q: give TimestampDescending or TimestampAscending", s)
	}
	maxPoints := 100800
	if n, err := intParam(p, "MaxDatapoints"); err != nil {
		return nil, err
	} else if n != nil && *n > 0 {
		maxPoints = *n
	}
	queries, err := cwDataQueries(p, start, end)
	if err != nil {
		return nil, err
	}
	out := &getMetricDataResult{MetricDataResults: queryList[cwDataResult]{Member: []cwDataResult{}}, Messages: queryList[string]{Member: []string{}}}
	for _, dq := range queries {
		res, err := st.Statistics(dq.q)
		if err != nil {
			return nil, invalid("ValidationError", "query %s: %s", dq.id, strings.TrimPrefix(err.Error(), "invalid: "))
		}
		if !dq.returnData {
			continue
		}
		r := cwDataResult{ID: dq.id, Label: dq.label, StatusCode: "Complete",
			Timestamps: queryList[string]{Member: []string{}}, Values: queryList[float64]{Member: []float64{}}}
		dps := res.Datapoints
		if descending {
			dps = slices.Clone(dps)
			slices.Reverse(dps)
		}
		for _, dp := range dps {
			v, ok := cwStatValue(dp, dq.stat)
			if !ok {
				continue
			}
			if maxPoints == 0 {
				r.StatusCode = "PartialData"
				break
			}
			maxPoints--
			r.Timestamps.Member = append(r.Timestamps.Member, cwTime(dp.Timestamp))
			r.Values.Member = append(r.Values.Member, v)
		}
		out.MetricDataResults.Member = append(out.MetricDataResults.Member, r)
	}
	return out, nil
}
