package alarm

import (
	"fmt"
	"math"
	"strconv"
	"time"
)

// State is the state of an alarm, as in CloudWatch.
type State int

// States. InsufficientData is the zero value: like a CloudWatch alarm, a
// new alarm has not been evaluated yet.
const (
	InsufficientData State = iota
	OK
	Alarm
)

// String returns CloudWatch's name of the state: "OK", "ALARM" or
// "INSUFFICIENT_DATA".
func (s State) String() string {
	switch s {
	case OK:
		return "OK"
	case Alarm:
		return "ALARM"
	case InsufficientData:
		return "INSUFFICIENT_DATA"
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// ParseState parses a state's String form.
func ParseState(s string) (State, error) {
	switch s {
	case "OK":
		return OK, nil
	case "ALARM":
		return Alarm, nil
	case "INSUFFICIENT_DATA":
		return InsufficientData, nil
	}
	return 0, fmt.Errorf("unknown alarm state %q (OK, ALARM or INSUFFICIENT_DATA)", s)
}

// MarshalText writes the state as its String, for JSON and the store.
func (s State) MarshalText() ([]byte, error) {
	if s < InsufficientData || s > Alarm {
		return nil, fmt.Errorf("invalid alarm state %d", int(s))
	}
	return []byte(s.String()), nil
}

// UnmarshalText reads what MarshalText writes.
func (s *State) UnmarshalText(b []byte) error {
	v, err := ParseState(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// Comparison is how a datapoint is compared with the threshold: it
// breaches when "value <comparison> threshold" holds. The zero value
// never breaches.
type Comparison int

// Comparisons, named as in CloudWatch.
const (
	GreaterThanOrEqualToThreshold Comparison = iota + 1
	GreaterThanThreshold
	LessThanThreshold
	LessThanOrEqualToThreshold
)

var comparisons = [...]struct{ name, phrase string }{
	GreaterThanOrEqualToThreshold: {"GreaterThanOrEqualToThreshold", "greater than or equal to"},
	GreaterThanThreshold:          {"GreaterThanThreshold", "greater than"},
	LessThanThreshold:             {"LessThanThreshold", "less than"},
	LessThanOrEqualToThreshold:    {"LessThanOrEqualToThreshold", "less than or equal to"},
}

// ParseComparison parses CloudWatch's name of a comparison.
func ParseComparison(s string) (Comparison, error) {
	for c := GreaterThanOrEqualToThreshold; c <= LessThanOrEqualToThreshold; c++ {
		if comparisons[c].name == s {
			return c, nil
		}
	}
	return 0, fmt.Errorf("unknown comparison %q", s)
}

// String returns CloudWatch's name of the comparison.
func (c Comparison) String() string {
	if c.valid() {
		return comparisons[c].name
	}
	return "Comparison(" + strconv.Itoa(int(c)) + ")"
}

func (c Comparison) valid() bool {
	return c >= GreaterThanOrEqualToThreshold && c <= LessThanOrEqualToThreshold
}

// phrase is how a reason words the comparison: "greater than".
func (c Comparison) phrase() string {
	if c.valid() {
		return comparisons[c].phrase
	}
	return "compared with"
}

// Breaches reports whether value breaches threshold. NaN never does (the
// metric store refuses NaN datapoints anyway).
func (c Comparison) Breaches(value, threshold float64) bool {
	switch c {
	case GreaterThanOrEqualToThreshold:
		return value >= threshold
	case GreaterThanThreshold:
		return value > threshold
	case LessThanThreshold:
		return value < threshold
	case LessThanOrEqualToThreshold:
		return value <= threshold
	}
	return false
}

// TreatMissing is how an alarm treats periods without data when it has
// fewer real datapoints than it evaluates.
type TreatMissing int

// Treatments of missing data, as in CloudWatch. Missing, the zero value,
// is CloudWatch's default.
const (
	// Missing: missing datapoints are neither breaching nor not
	// breaching; with no data at all the alarm is INSUFFICIENT_DATA.
	Missing TreatMissing = iota
	// Breaching: missing datapoints count as breaching the threshold.
	Breaching
	// NotBreaching: missing datapoints count as within the threshold.
	NotBreaching
	// Ignore: the alarm keeps its state when the data it has does not
	// decide it.
	Ignore
)

var treatNames = [...]string{Missing: "missing", Breaching: "breaching", NotBreaching: "notBreaching", Ignore: "ignore"}

// ParseTreatMissing parses CloudWatch's name of a treatment; "" is
// Missing, the default.
func ParseTreatMissing(s string) (TreatMissing, error) {
	if s == "" {
		return Missing, nil
	}
	for t, name := range treatNames {
		if name == s {
			return TreatMissing(t), nil
		}
	}
	return 0, fmt.Errorf("unknown treat_missing_data %q", s)
}

// String returns CloudWatch's name of the treatment: "notBreaching".
func (t TreatMissing) String() string {
	if t >= Missing && t <= Ignore {
		return treatNames[t]
	}
	return "TreatMissing(" + strconv.Itoa(int(t)) + ")"
}

// Spec is what Evaluate needs of an alarm.
type Spec struct {
	// Period is the length of one datapoint; Due and Window use it,
	// Evaluate does not.
	Period time.Duration
	// EvaluationPeriods is N, how many datapoints decide the state. Less
	// than 1 counts as 1.
	EvaluationPeriods int
	// DatapointsToAlarm is M, how many of those N must breach for ALARM.
	// Outside 1..N it counts as N.
	DatapointsToAlarm int
	// Comparison and Threshold say when a datapoint breaches.
	Comparison Comparison
	Threshold  float64
	// TreatMissing is how periods without data are treated.
	TreatMissing TreatMissing
}

// counts returns N and M as Evaluate uses them.
func (s Spec) counts() (n, m int) {
	n = max(s.EvaluationPeriods, 1)
	m = s.DatapointsToAlarm
	if m < 1 || m > n {
		m = n
	}
	return n, m
}

// Point is the value of one period: its statistic, or OK false when the
// period had no datapoint. It has the fields of the metric store's
// aggregates, in the same order, so that one converts to the other.
type Point struct {
	Start time.Time
	Value float64
	OK    bool
}

// Result is the outcome of one evaluation.
type Result struct {
	// State is the state the alarm is in after the evaluation.
	State State
	// Reason says why, worded like CloudWatch's state reasons.
	Reason string
	// Breaching is how many of the Evaluated datapoints breach, filled
	// ones included.
	Breaching int
	// Evaluated is how many datapoints the decision counted: real ones,
	// and missing ones filled in as breaching or not breaching. It is 0
	// when the state was kept or is INSUFFICIENT_DATA for lack of data.
	Evaluated int
	// Filled is how many of the Evaluated datapoints were missing and
	// filled in according to TreatMissing.
	Filled int
	// Missing is how many periods of the evaluation range had no data.
	Missing int
}

// Evaluate decides an alarm's state from its evaluation range: the values
// of its most recent periods, oldest first, normally Range(N) of them
// (fewer count as missing further back). prev is the alarm's current state,
// which treat_missing_data ignore keeps and which the reason's transition
// names.
//
// It follows CloudWatch's documented rules ("Configuring how CloudWatch
// alarms treat missing data", Amazon CloudWatch User Guide, section "How
// alarm state is evaluated when data is missing", and its subsection
// "Avoiding premature transitions to alarm state"):
//
//   - "If no data points in the evaluation range are missing, CloudWatch
//     evaluates the alarm based on the most recent data points collected.
//     The number of data points evaluated is equal to the Evaluation
//     Periods for the alarm."
//   - "If some data points in the evaluation range are missing, but the
//     total number of existing data points that were successfully
//     retrieved from the evaluation range is equal to or more than the
//     alarm's Evaluation Periods, CloudWatch evaluates the alarm state based
//     on the most recent real data points [...]. In this case, the value you
//     set for how to treat missing data is not needed and is ignored."
//   - "If some data points in the evaluation range are missing, and the
//     number of actual data points that were retrieved is lower than the
//     alarm's number of Evaluation Periods, CloudWatch fills in the missing
//     data points with the result you specified for how to treat missing
//     data, and then evaluates the alarm. However, all real data points in
//     the evaluation range are included in the evaluation. CloudWatch uses
//     missing data points only as few times as possible."
//   - With every datapoint missing: missing gives INSUFFICIENT_DATA,
//     ignore keeps the current state, breaching ALARM, notBreaching OK.
//   - Premature alarm state: "alarms are designed to always go into ALARM
//     state when the oldest available breaching datapoint during the
//     Evaluation Periods number of data points is at least as old as the
//     value of Datapoints to Alarm, and all other more recent data points
//     are breaching or missing", even with fewer than M datapoints.
//
// The documentation's tables fix what the prose leaves open, and
// eval_test.go reproduces them row by row. With missing or ignore and
// fewer real datapoints than N, the real ones alone decide: ALARM when M
// of them breach; OK when one of them does not breach ("0 - - - -" is OK
// under missing, and "0 - X - -" is OK for 2 out of 3, although its X is
// three periods old); otherwise, every real datapoint breaching but fewer
// than M, the premature rule gives ALARM when the oldest is at least M
// periods old ("- - X - -" for 3 out of 3, "- - - X -" for 2 out of 3),
// and the state is INSUFFICIENT_DATA when it is younger ("- - - - X").
// ignore keeps the current state wherever missing would give
// INSUFFICIENT_DATA or the premature ALARM (the tables' "Retain current
// state"). The prose of the M out of N paragraph says "at least as old as
// the value of Evaluation Periods", which its own table contradicts
// ("- - - X -" is ALARM for 2 out of 3); the table is followed.
//
// Ages count periods back from the newest of the range, which is 1 old.
func Evaluate(spec Spec, periods []Point, prev State) Result {
	n, m := spec.counts()
	present := 0
	for i := range periods {
		if periods[i].OK {
			present++
		}
	}
	e := evaluation{
		spec: spec, periods: periods, prev: prev, n: n, m: m, present: present,
		r: Result{Missing: len(periods) - present},
		// A buffer that holds most reasons at once, rather than growing.
		rb: reasonBuilder{spec: spec, b: make([]byte, 0, 384)},
	}
	switch {
	case present >= n:
		e.recent()
	case present == 0:
		e.noData()
	default:
		e.partial()
	}
	return e.r
}

// evaluation is one call of Evaluate: its inputs, the counts derived from
// them, and the Result being filled in by one of recent, noData or partial.
type evaluation struct {
	spec    Spec
	periods []Point
	prev    State
	n, m    int // evaluation periods and datapoints to alarm
	present int // real datapoints in periods
	r       Result
	rb      reasonBuilder
}

// recent decides with at least N real datapoints: the N most recent of
// them decide; older ones and the treatment of missing data are not needed.
func (e *evaluation) recent() {
	spec, periods, n, m := e.spec, e.periods, e.n, e.m
	first, breaching := len(periods), 0
	for used := 0; used < n; {
		first--
		if p := periods[first]; p.OK {
			used++
			if spec.Comparison.Breaches(p.Value, spec.Threshold) {
				breaching++
			}
		}
	}
	e.r.Evaluated, e.r.Breaching = n, breaching
	e.r.State = decide(breaching, m)
	e.r.Reason = e.rb.threshold(e.r, periods[first:], n, m, e.prev, spec.TreatMissing)
}

// noData decides with every datapoint of the range missing, from the
// treatment of missing data alone.
func (e *evaluation) noData() {
	r, n := &e.r, e.n
	switch e.spec.TreatMissing {
	case Breaching, NotBreaching:
		r.Evaluated, r.Filled = n, n
		r.State = OK
		if e.spec.TreatMissing == Breaching {
			r.Breaching, r.State = n, Alarm
		}
		r.Reason = e.rb.noData(len(e.periods), n)
	case Ignore:
		r.State = e.prev
		r.Reason = e.rb.ignored(len(e.periods), e.periods, 0, e.m, e.prev)
	default:
		r.State = InsufficientData
		r.Reason = e.rb.unknown(len(e.periods))
	}
}

// partial decides with fewer real datapoints than N but at least one:
// every real one counts, and missing ones fill the rest, only as many as
// needed.
func (e *evaluation) partial() {
	spec, periods, n, m, present := e.spec, e.periods, e.n, e.m, e.present
	r, rb := &e.r, &e.rb
	first, breaching, oldestAge := -1, 0, 0
	for i := range periods {
		if !periods[i].OK {
			continue
		}
		if first < 0 {
			first = i
		}
		if spec.Comparison.Breaches(periods[i].Value, spec.Threshold) {
			breaching++
			if oldestAge == 0 {
				oldestAge = len(periods) - i
			}
		}
	}
	used := periods[first:]
	switch spec.TreatMissing {
	case Breaching, NotBreaching:
		r.Filled = n - present
		r.Evaluated = n
		if spec.TreatMissing == Breaching {
			breaching += r.Filled
		}
		r.Breaching = breaching
		r.State = decide(breaching, m)
		r.Reason = rb.threshold(*r, used, present, m, e.prev, spec.TreatMissing)
		return
	}
	r.Breaching = breaching
	switch {
	case breaching >= m, breaching < present:
		// Enough breach, or one that does not breach shows the metric is
		// not in ALARM.
		r.Evaluated = present
		r.State = decide(breaching, m)
		r.Reason = rb.threshold(*r, used, present, m, e.prev, spec.TreatMissing)
	case spec.TreatMissing == Ignore:
		r.State = e.prev
		r.Reason = rb.ignored(len(periods), used, present, m, e.prev)
	case oldestAge >= m:
		// Premature alarm state: the breach has lasted M periods with
		// nothing to say it ended.
		r.Evaluated = present
		r.State = Alarm
		r.Reason = rb.premature(*r, used, present, oldestAge, m, e.prev)
	default:
		r.State = InsufficientData
		r.Reason = rb.tooFew(len(periods), used, present, m)
	}
}

func decide(breaching, m int) State {
	if breaching >= m {
		return Alarm
	}
	return OK
}

// reasonBuilder words the reasons. Datapoints are listed newest first
// with their period's start in UTC, as CloudWatch lists them: "[0.0
// (01/12/26 12:00:10), 0.0 (01/12/26 12:00:00)]".
type reasonBuilder struct {
	spec Spec
	b    []byte
}

// threshold words an evaluation of datapoints against the threshold:
// "Threshold Crossed: 2 out of the last 2 datapoints [...] were less than
// the threshold (1.0) (minimum 2 datapoints for OK -> ALARM transition)."
// used holds the real datapoints counted (and missing ones between them).
func (rb *reasonBuilder) threshold(r Result, used []Point, present, m int, prev State, treat TreatMissing) string {
	n, _ := rb.spec.counts()
	rb.b = append(rb.b[:0], "Threshold Crossed: "...)
	count, not := r.Breaching, ""
	if r.State == OK {
		count, not = r.Evaluated-r.Breaching, "not "
	}
	rb.b = strconv.AppendInt(rb.b, int64(count), 10)
	rb.b = append(rb.b, " out of the last "...)
	rb.b = strconv.AppendInt(rb.b, int64(r.Evaluated), 10)
	rb.b = append(rb.b, " datapoints "...)
	rb.list(used, present)
	rb.b = append(rb.b, ' ')
	rb.b = append(rb.b, wasWere(count)...)
	rb.b = append(rb.b, ' ')
	rb.b = append(rb.b, not...)
	rb.threshold0()
	if r.Filled > 0 {
		rb.b = append(rb.b, " and "...)
		rb.b = strconv.AppendInt(rb.b, int64(r.Filled), 10)
		rb.b = append(rb.b, " missing "...)
		rb.b = append(rb.b, plural(r.Filled, "datapoint")...)
		rb.b = append(rb.b, ' ')
		rb.b = append(rb.b, wasWere(r.Filled)...)
		rb.b = append(rb.b, " treated as ["...)
		rb.b = append(rb.b, treatedAs(treat)...)
		rb.b = append(rb.b, ']')
	}
	if prev != r.State {
		need := m // for ALARM; OK needs enough datapoints that fewer than M breach
		if r.State == OK {
			need = n - m + 1
		}
		rb.transition(need, "datapoint", prev, r.State)
	}
	return rb.done()
}

// premature words the premature ALARM: breaching datapoints, the oldest
// age periods old, and nothing since that does not breach.
func (rb *reasonBuilder) premature(r Result, used []Point, present, age, m int, prev State) string {
	rb.b = append(rb.b[:0], "Threshold Crossed: "...)
	rb.b = strconv.AppendInt(rb.b, int64(r.Breaching), 10)
	rb.b = append(rb.b, " out of the last "...)
	rb.b = strconv.AppendInt(rb.b, int64(present), 10)
	rb.b = append(rb.b, " datapoints "...)
	rb.list(used, present)
	rb.b = append(rb.b, ' ')
	rb.b = append(rb.b, wasWere(r.Breaching)...)
	rb.b = append(rb.b, ' ')
	rb.threshold0()
	later := age - r.Breaching
	rb.b = append(rb.b, " and "...)
	rb.b = strconv.AppendInt(rb.b, int64(later), 10)
	rb.b = append(rb.b, " later "...)
	rb.b = append(rb.b, plural(later, "period")...)
	rb.b = append(rb.b, " had no data"...)
	if prev != Alarm {
		rb.transition(m, "period", prev, Alarm)
	}
	return rb.done()
}

// tooFew words INSUFFICIENT_DATA when the few datapoints received all
// breach but are too few and too recent to decide.
func (rb *reasonBuilder) tooFew(rangeLen int, used []Point, present, m int) string {
	rb.b = append(rb.b[:0], "Insufficient Data: "...)
	rb.unknownOf(rangeLen, present)
	rb.b = append(rb.b, "; "...)
	rb.fewer(used, present, m)
	return rb.done()
}

// ignored words a state kept by treat_missing_data ignore.
func (rb *reasonBuilder) ignored(rangeLen int, used []Point, present, m int, prev State) string {
	rb.b = append(rb.b[:0], "Missing data ignored: "...)
	if present == 0 {
		rb.b = append(rb.b, "no datapoints were received for "...)
		rb.b = strconv.AppendInt(rb.b, int64(rangeLen), 10)
		rb.b = append(rb.b, ' ')
		rb.b = append(rb.b, plural(rangeLen, "period")...)
	} else {
		rb.unknownOf(rangeLen, present)
		rb.b = append(rb.b, " and "...)
		rb.fewer(used, present, m)
	}
	rb.b = append(rb.b, "; the state stays "...)
	rb.b = append(rb.b, prev.String()...)
	return rb.done()
}

// unknown words INSUFFICIENT_DATA for want of any datapoint, as
// CloudWatch does: "Insufficient Data: 5 datapoints were unknown."
func (rb *reasonBuilder) unknown(rangeLen int) string {
	rb.b = append(rb.b[:0], "Insufficient Data: "...)
	rb.b = strconv.AppendInt(rb.b, int64(rangeLen), 10)
	rb.b = append(rb.b, ' ')
	rb.b = append(rb.b, plural(rangeLen, "datapoint")...)
	rb.b = append(rb.b, ' ')
	rb.b = append(rb.b, wasWere(rangeLen)...)
	rb.b = append(rb.b, " unknown"...)
	return rb.done()
}

// noData words a state decided by filling every datapoint, as CloudWatch
// does: "Threshold Crossed: no datapoints were received for 5 periods and
// 3 missing datapoints were treated as [Breaching]."
func (rb *reasonBuilder) noData(rangeLen, filled int) string {
	rb.b = append(rb.b[:0], "Threshold Crossed: no datapoints were received for "...)
	rb.b = strconv.AppendInt(rb.b, int64(rangeLen), 10)
	rb.b = append(rb.b, ' ')
	rb.b = append(rb.b, plural(rangeLen, "period")...)
	rb.b = append(rb.b, " and "...)
	rb.b = strconv.AppendInt(rb.b, int64(filled), 10)
	rb.b = append(rb.b, " missing "...)
	rb.b = append(rb.b, plural(filled, "datapoint")...)
	rb.b = append(rb.b, ' ')
	rb.b = append(rb.b, wasWere(filled)...)
	rb.b = append(rb.b, " treated as ["...)
	rb.b = append(rb.b, treatedAs(rb.spec.TreatMissing)...)
	rb.b = append(rb.b, ']')
	return rb.done()
}

// unknownOf: "4 out of the last 5 datapoints were unknown".
func (rb *reasonBuilder) unknownOf(rangeLen, present int) {
	missing := rangeLen - present
	rb.b = strconv.AppendInt(rb.b, int64(missing), 10)
	rb.b = append(rb.b, " out of the last "...)
	rb.b = strconv.AppendInt(rb.b, int64(rangeLen), 10)
	rb.b = append(rb.b, " datapoints "...)
	rb.b = append(rb.b, wasWere(missing)...)
	rb.b = append(rb.b, " unknown"...)
}

// fewer: "1 datapoint [5.0 (...)] was greater than the threshold (3.0),
// fewer than the minimum 3 datapoints for ALARM".
func (rb *reasonBuilder) fewer(used []Point, present, m int) {
	rb.b = strconv.AppendInt(rb.b, int64(present), 10)
	rb.b = append(rb.b, ' ')
	rb.b = append(rb.b, plural(present, "datapoint")...)
	rb.b = append(rb.b, ' ')
	rb.list(used, present)
	rb.b = append(rb.b, ' ')
	rb.b = append(rb.b, wasWere(present)...)
	rb.b = append(rb.b, ' ')
	rb.threshold0()
	rb.b = append(rb.b, ", fewer than the minimum "...)
	rb.b = strconv.AppendInt(rb.b, int64(m), 10)
	rb.b = append(rb.b, ' ')
	rb.b = append(rb.b, plural(m, "datapoint")...)
	rb.b = append(rb.b, " for ALARM"...)
}

// threshold0: "greater than the threshold (3.0)".
func (rb *reasonBuilder) threshold0() {
	rb.b = append(rb.b, rb.spec.Comparison.phrase()...)
	rb.b = append(rb.b, " the threshold ("...)
	rb.b = appendValue(rb.b, rb.spec.Threshold)
	rb.b = append(rb.b, ')')
}

// transition: " (minimum 2 datapoints for OK -> ALARM transition)".
func (rb *reasonBuilder) transition(need int, unit string, from, to State) {
	rb.b = append(rb.b, " (minimum "...)
	rb.b = strconv.AppendInt(rb.b, int64(need), 10)
	rb.b = append(rb.b, ' ')
	rb.b = append(rb.b, plural(need, unit)...)
	rb.b = append(rb.b, " for "...)
	rb.b = append(rb.b, from.String()...)
	rb.b = append(rb.b, " -> "...)
	rb.b = append(rb.b, to.String()...)
	rb.b = append(rb.b, " transition)"...)
}

// list appends the real datapoints of pts, newest first, at most limit.
func (rb *reasonBuilder) list(pts []Point, limit int) {
	rb.b = append(rb.b, '[')
	listed := 0
	for i := len(pts) - 1; i >= 0 && listed < limit; i-- {
		p := pts[i]
		if !p.OK {
			continue
		}
		if listed > 0 {
			rb.b = append(rb.b, ", "...)
		}
		listed++
		rb.b = appendValue(rb.b, p.Value)
		rb.b = append(rb.b, " ("...)
		rb.b = p.Start.UTC().AppendFormat(rb.b, "02/01/06 15:04:05")
		rb.b = append(rb.b, ')')
	}
	rb.b = append(rb.b, ']')
}

func (rb *reasonBuilder) done() string {
	rb.b = append(rb.b, '.')
	return string(rb.b)
}

// appendValue formats a value as CloudWatch's reasons do: "1.0", "0.5",
// "66.934".
func appendValue(b []byte, v float64) []byte {
	start := len(b)
	b = strconv.AppendFloat(b, v, 'f', -1, 64)
	if math.IsInf(v, 0) || math.IsNaN(v) {
		return b
	}
	for _, c := range b[start:] {
		if c == '.' {
			return b
		}
	}
	return append(b, ".0"...)
}

func wasWere(n int) string {
	if n == 1 {
		return "was"
	}
	return "were"
}

func plural(n int, unit string) string {
	if n == 1 {
		return unit
	}
	return unit + "s"
}

// treatedAs is CloudWatch's word for a filled datapoint.
func treatedAs(t TreatMissing) string {
	if t == Breaching {
		return "Breaching"
	}
	return "NonBreaching"
}

// Range returns how many periods an evaluation looks at, its evaluation
// range: N and two more. CloudWatch does not document its rule beyond
// "depends on the length of the alarm period" and its example of 5 for N
// = 3, which this reproduces; the two older periods let a gap in the data
// be bridged by real datapoints before treat_missing_data is needed.
func Range(evaluationPeriods int) int { return max(evaluationPeriods, 1) + 2 }

// PeriodStart returns the start of the period of length period that holds
// t. Periods are aligned on the Unix epoch, so that every alarm with the
// same period, and the metric store, agree on where periods begin
// whatever the time zone. A period of 0 or less returns t.
func PeriodStart(t time.Time, period time.Duration) time.Time {
	if period <= 0 {
		return t
	}
	ns := t.UnixNano()
	off := ns % int64(period)
	if off < 0 {
		off += int64(period) // before 1970
	}
	return time.Unix(0, ns-off).UTC()
}

// Window returns the evaluation range of an alarm evaluated at now:
// [start, end) holds Range(N) whole periods, end being the start of the
// period now is in (which is not complete, so not evaluated). A scheduler
// that wants to leave late datapoints a moment to arrive passes now minus
// that moment, here and to Due.
func Window(spec Spec, now time.Time) (start, end time.Time) {
	n, _ := spec.counts()
	end = PeriodStart(now, spec.Period)
	return end.Add(-time.Duration(Range(n)) * spec.Period), end
}

// Due reports whether an alarm last evaluated at lastEval (zero: never)
// is to be evaluated at now: a period has ended since, so its evaluation
// range has moved. A clock that stepped back also makes it due, rather
// than silencing the alarm until the clock catches up.
func Due(spec Spec, lastEval, now time.Time) bool {
	if lastEval.IsZero() {
		return true
	}
	return !PeriodStart(now, spec.Period).Equal(PeriodStart(lastEval, spec.Period))
}
