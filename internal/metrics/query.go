package metrics

import (
	"cmp"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// SeriesKey names a series: a namespace, a metric name and dimensions
// sorted by name. Treat it as read-only.
type SeriesKey struct {
	Namespace  string      `json:"Namespace"`
	MetricName string      `json:"MetricName"`
	Dimensions []Dimension `json:"Dimensions"`
}

// String is "Namespace MetricName{Name=Value,...}".
func (k SeriesKey) String() string {
	var b strings.Builder
	b.WriteString(k.Namespace + " " + k.MetricName)
	if len(k.Dimensions) > 0 {
		b.WriteByte('{')
		for i, d := range k.Dimensions {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(d.Name + "=" + d.Value)
		}
		b.WriteByte('}')
	}
	return b.String()
}

func compareKeys(a, b SeriesKey) int {
	if c := cmp.Compare(a.Namespace, b.Namespace); c != 0 {
		return c
	}
	if c := cmp.Compare(a.MetricName, b.MetricName); c != 0 {
		return c
	}
	return slices.CompareFunc(a.Dimensions, b.Dimensions, func(x, y Dimension) int {
		return cmp.Or(cmp.Compare(x.Name, y.Name), cmp.Compare(x.Value, y.Value))
	})
}

// Statistic names, as GetMetricStatistics spells them. Percentiles are
// "p" and a number from 0 to 100: p50, p99, p99.9.
const (
	Average     = "Average"
	Sum         = "Sum"
	Minimum     = "Minimum"
	Maximum     = "Maximum"
	SampleCount = "SampleCount"
)

// Query limits, as CloudWatch sets them.
const (
	MaxDatapoints        = 1440 // periods in one Statistics query
	MaxExtendedStatistic = 10
)

// stat is a parsed statistic.
type stat struct {
	name string
	q    float64 // percentile in [0, 1]; -1 for the basic ones
}

// ParseStatistic checks a statistic name: a basic one or a percentile.
func ParseStatistic(name string) error {
	_, err := parseStat(name)
	return err
}

func parseStat(name string) (stat, error) {
	switch name {
	case Average, Sum, Minimum, Maximum, SampleCount:
		return stat{name: name, q: -1}, nil
	}
	if len(name) > 1 && len(name) <= 10 && name[0] == 'p' && name[1] >= '0' && name[1] <= '9' {
		if v, err := strconv.ParseFloat(name[1:], 64); err == nil && v >= 0 && v <= 100 {
			return stat{name: name, q: v / 100}, nil
		}
	}
	return stat{}, invalid("statistic %q: give Average, Sum, Minimum, Maximum, SampleCount or a percentile p0 to p100 (p99, p99.9)", name)
}

// Query is GetMetricStatistics' input.
type Query struct {
	Namespace  string
	MetricName string
	// Dimensions select one series: all of its dimensions, in any order.
	Dimensions []Dimension
	// Periods start at multiples of Period since the Unix epoch; those
	// that start in [StartTime rounded down, EndTime) are answered.
	StartTime, EndTime time.Time
	// Period is a multiple of the store's resolution.
	Period time.Duration
	// Statistics are basic statistics (Average, Sum, Minimum, Maximum,
	// SampleCount); ExtendedStatistics are percentiles (p99). Either may
	// hold either kind.
	Statistics         []string
	ExtendedStatistics []string
	// Unit, when set, answers only a series with that unit.
	Unit Unit
}

// Datapoint is the statistics of one period. Only the statistics asked
// for are set.
type Datapoint struct {
	Timestamp          time.Time          `json:"Timestamp"`
	SampleCount        *float64           `json:"SampleCount,omitempty"`
	Average            *float64           `json:"Average,omitempty"`
	Sum                *float64           `json:"Sum,omitempty"`
	Minimum            *float64           `json:"Minimum,omitempty"`
	Maximum            *float64           `json:"Maximum,omitempty"`
	ExtendedStatistics map[string]float64 `json:"ExtendedStatistics,omitempty"`
	Unit               Unit               `json:"Unit,omitempty"`
}

// Result is GetMetricStatistics' output: the periods with data, in time
// order.
type Result struct {
	Label      string      `json:"Label"`
	Datapoints []Datapoint `json:"Datapoints"`
}

// agg accumulates the slots of one period.
type agg struct {
	count, sum, min, max float64
	sketch               bool // collect buckets
	b                    []uint64
	level                uint8
	scratch              []uint64
}

func (a *agg) reset() {
	a.count, a.sum, a.min, a.max = 0, 0, math.Inf(1), math.Inf(-1)
	a.b, a.level = a.b[:0], 0
}

func (a *agg) addSlot(sl *slot) {
	a.count += sl.count
	a.sum += sl.sum
	a.min = math.Min(a.min, sl.min)
	a.max = math.Max(a.max, sl.max)
	if !a.sketch {
		return
	}
	bs, l := sl.buckets(a.scratch[:0])
	if l > a.level {
		for i, w := range a.b {
			a.b[i] = relevel(w>>countBits, a.level, l)<<countBits | w&countMask
		}
		a.level = l
	}
	for _, w := range bs {
		a.b = append(a.b, relevel(w>>countBits, l, a.level)<<countBits|w&countMask)
	}
}

// value is statistic st of the period; ok is false when it had no data.
func (a *agg) value(st stat) (float64, bool) {
	if a.count == 0 {
		return 0, false
	}
	switch {
	case st.q < 0:
		switch st.name {
		case Average:
			return a.sum / a.count, true
		case Sum:
			return a.sum, true
		case Minimum:
			return a.min, true
		case Maximum:
			return a.max, true
		}
		return a.count, true
	case st.q == 0:
		return a.min, true
	case st.q == 1:
		return a.max, true
	}
	slices.Sort(a.b) // by key; a key's several counts are summed on the way
	var n uint64
	for _, w := range a.b {
		n += w & countMask
	}
	v := quantile(a.b, a.level, n, st.q)
	// The true value lies within [min, max], which are exact.
	return math.Min(math.Max(v, a.min), a.max), true
}

// find returns the series of key, or nil.
func (s *Store) find(ns, metric string, dims []Dimension) *series {
	if len(dims) > MaxDimensions {
		return nil
	}
	var order [MaxDimensions]uint8
	o := order[:len(dims)]
	sortDims(dims, o)
	key := appendKey(make([]byte, 0, 128), ns, metric, dims, o)
	sh := s.shard(key)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	return sh.m[string(key)]
}

// periods checks a time range and period and returns the first period's
// start and the number of periods, in ns.
func (s *Store) periods(start, end time.Time, period time.Duration) (first, n int64, err error) {
	switch {
	case period <= 0 || int64(period)%s.res != 0:
		return 0, 0, invalid("period %s: give a multiple of the resolution %s", period, s.opts.Resolution)
	case period > maxPeriod:
		return 0, 0, invalid("period %s: at most %s", period, maxPeriod)
	case start.IsZero() || end.IsZero():
		return 0, 0, invalid("give a start and an end time")
	case start.Year() < 1971 || end.Year() > 2200:
		return 0, 0, invalid("time out of range: give times from 1971 to 2200")
	case !end.After(start):
		return 0, 0, invalid("end time %s is not after start time %s", end.Format(time.RFC3339), start.Format(time.RFC3339))
	}
	p := int64(period)
	first = floorDiv(start.UnixNano(), p) * p
	n = (end.UnixNano() - first + p - 1) / p
	if n > MaxDatapoints {
		return 0, 0, invalid("%d periods of %s from %s to %s, at most %d: narrow the range or widen the period",
			n, period, start.Format(time.RFC3339), end.Format(time.RFC3339), MaxDatapoints)
	}
	return first, n, nil
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// maxPeriod bounds a query's period.
const maxPeriod = 366 * 24 * time.Hour

// fold accumulates the slots of [from, from+period) of sr into a (reset
// first). Only the ring's live window is read, however long the period.
// sr.mu is held.
func (s *Store) fold(sr *series, a *agg, from, period, horizon int64) {
	a.reset()
	for e := max(from/s.res, horizon); e < min((from+period)/s.res, horizon+s.nslots); e++ {
		if sl := s.slotAt(sr, e, false); sl != nil && sl.epoch == e && sl.count > 0 {
			a.addSlot(sl)
		}
	}
}

func (s *Store) horizon() int64 { return s.opts.Now().UnixNano()/s.res - s.retSlots }

// Statistics answers a GetMetricStatistics query. A series that does not
// exist, or has another unit than q.Unit, has no datapoints.
func (s *Store) Statistics(q Query) (Result, error) {
	res := Result{Label: q.MetricName, Datapoints: []Datapoint{}}
	if q.Namespace == "" || q.MetricName == "" {
		return res, invalid("give a namespace and a metric name")
	}
	if !q.Unit.Valid() {
		return res, invalid("unknown unit %q", q.Unit)
	}
	var stats []stat
	for _, name := range append(slices.Clip(q.Statistics), q.ExtendedStatistics...) {
		st, err := parseStat(name)
		if err != nil {
			return res, err
		}
		if !slices.ContainsFunc(stats, func(o stat) bool { return o.name == name }) {
			stats = append(stats, st)
		}
	}
	if len(stats) == 0 {
		return res, invalid("give at least one statistic")
	}
	if n := len(stats) - len(slices.DeleteFunc(slices.Clone(stats), func(st stat) bool { return st.q >= 0 })); n > MaxExtendedStatistic {
		return res, invalid("%d percentiles, at most %d", n, MaxExtendedStatistic)
	}
	first, n, err := s.periods(q.StartTime, q.EndTime, q.Period)
	if err != nil {
		return res, err
	}
	sr := s.find(q.Namespace, q.MetricName, q.Dimensions)
	if sr == nil {
		return res, nil
	}
	a := &agg{sketch: slices.ContainsFunc(stats, func(st stat) bool { return st.q > 0 && st.q < 1 })}
	horizon := s.horizon()
	sr.mu.Lock()
	defer sr.mu.Unlock()
	if q.Unit != "" && q.Unit != sr.unit {
		return res, nil
	}
	p := int64(q.Period)
	for i := range n {
		from := first + i*p
		s.fold(sr, a, from, p, horizon)
		if a.count == 0 {
			continue
		}
		dp := Datapoint{Timestamp: time.Unix(0, from).UTC(), Unit: sr.unit}
		for _, st := range stats {
			v, _ := a.value(st)
			switch st.name {
			case Average:
				dp.Average = &v
			case Sum:
				dp.Sum = &v
			case Minimum:
				dp.Minimum = &v
			case Maximum:
				dp.Maximum = &v
			case SampleCount:
				dp.SampleCount = &v
			default:
				if dp.ExtendedStatistics == nil {
					dp.ExtendedStatistics = map[string]float64{}
				}
				dp.ExtendedStatistics[st.name] = v
			}
		}
		res.Datapoints = append(res.Datapoints, dp)
	}
	return res, nil
}

// PeriodValue is a statistic over one period; OK is false when the period
// had no data.
type PeriodValue struct {
	Start time.Time
	Value float64
	OK    bool
}

// Aggregate returns statistic over every period of [start, end) of one
// series, periods aligned as in Statistics, with OK false for periods
// without data (and for all of them when the series does not exist). It
// is what an alarm evaluates.
func (s *Store) Aggregate(key SeriesKey, start, end time.Time, period time.Duration, statistic string) ([]PeriodValue, error) {
	st, err := parseStat(statistic)
	if err != nil {
		return nil, err
	}
	first, n, err := s.periods(start, end, period)
	if err != nil {
		return nil, err
	}
	out := make([]PeriodValue, n)
	p := int64(period)
	for i := range out {
		out[i].Start = time.Unix(0, first+int64(i)*p).UTC()
	}
	sr := s.find(key.Namespace, key.MetricName, key.Dimensions)
	if sr == nil {
		return out, nil
	}
	a := &agg{sketch: st.q > 0 && st.q < 1}
	horizon := s.horizon()
	sr.mu.Lock()
	defer sr.mu.Unlock()
	for i := range out {
		s.fold(sr, a, first+int64(i)*p, p, horizon)
		out[i].Value, out[i].OK = a.value(st)
	}
	return out, nil
}

// Match returns the series of namespace and metric whose dimensions have
// exactly the names in dims, with equal values or any value where dims
// has "*". Sorted.
func (s *Store) Match(namespace, metric string, dims map[string]string) []SeriesKey {
	var out []SeriesKey
	s.each(func(sr *series) {
		k := sr.key
		if k.Namespace != namespace || k.MetricName != metric || len(k.Dimensions) != len(dims) {
			return
		}
		for _, d := range k.Dimensions {
			if v, ok := dims[d.Name]; !ok || v != "*" && v != d.Value {
				return
			}
		}
		out = append(out, SeriesKey{k.Namespace, k.MetricName, slices.Clone(k.Dimensions)})
	})
	slices.SortFunc(out, compareKeys)
	return out
}

// each calls fn on every series, holding no lock; a series' key never
// changes.
func (s *Store) each(fn func(*series)) {
	for i := range s.shards {
		for _, sr := range s.shards[i].snapshot() {
			fn(sr)
		}
	}
}

// snapshot lists the shard's series, holding its lock only meanwhile.
func (sh *shard) snapshot() []*series {
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	all := make([]*series, 0, len(sh.m))
	for _, sr := range sh.m {
		all = append(all, sr)
	}
	return all
}

// SeriesInfo describes one series.
type SeriesInfo struct {
	SeriesKey
	Unit Unit `json:"Unit,omitempty"`
	// Last is the start of the newest slot written.
	Last time.Time `json:"Last"`
	// Bytes is the series' memory now; MaxBytes bounds it (a full ring,
	// every slot's sketch at its largest), apart from its names.
	Bytes    int64 `json:"Bytes"`
	MaxBytes int64 `json:"MaxBytes"`
}

// Series lists every series, sorted.
func (s *Store) Series() []SeriesInfo {
	out := []SeriesInfo{}
	maxb := s.maxSeriesBytes()
	s.each(func(sr *series) {
		sr.mu.Lock()
		info := SeriesInfo{SeriesKey: sr.key, Unit: sr.unit, Last: time.Unix(0, sr.last*s.res).UTC(), Bytes: sr.bytes}
		sr.mu.Unlock()
		info.MaxBytes = maxb + sr.names
		out = append(out, info)
	})
	slices.SortFunc(out, func(a, b SeriesInfo) int { return compareKeys(a.SeriesKey, b.SeriesKey) })
	return out
}

// Len is the number of series.
func (s *Store) Len() int { return int(s.count.Load()) }
