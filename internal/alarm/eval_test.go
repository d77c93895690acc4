package alarm

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/autoheal/autoheal/internal/config"
)

// t0 is when the oldest period of every evaluation range below starts.
var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

const period = 10 * time.Second

// row turns the notation of CloudWatch's tables into an evaluation range,
// oldest first: 0 is a datapoint that does not breach, X one that
// breaches (with GreaterThanThreshold 1), - a period without data.
func row(t *testing.T, s string) []Point {
	t.Helper()
	var pts []Point
	for i, f := range strings.Fields(s) {
		p := Point{Start: t0.Add(time.Duration(i) * period)}
		switch f {
		case "0":
			p.Value, p.OK = 0, true
		case "X":
			p.Value, p.OK = 2, true
		case "-":
		default:
			t.Fatalf("bad row %q", s)
		}
		pts = append(pts, p)
	}
	return pts
}

// retain stands for the tables' "Retain current state".
const retain State = -1

// TestMissingDataTables reproduces, row by row, the two tables of the
// Amazon CloudWatch User Guide, "Configuring how CloudWatch alarms treat
// missing data", section "How alarm state is evaluated when data is
// missing": an evaluation range of 5 datapoints, N = 3, M = 3 in the first
// table and 2 in the second. Rows marked "earlier edition" are the rows
// "- - - - X" and "X - - - -" that an earlier edition of the same page
// had (before its row 5 became "- - X - -").
func TestMissingDataTables(t *testing.T) {
	treatments := []TreatMissing{Missing, Ignore, Breaching, NotBreaching}
	for _, c := range []struct {
		name  string
		m     int
		data  string
		want  [4]State // MISSING, IGNORE, BREACHING, NOT BREACHING
		notes string
	}{
		// First table: 3 out of 3.
		{"3of3 row 1", 3, "0 - X - X", [4]State{OK, OK, OK, OK}, "3 real datapoints: treat_missing_data is not needed"},
		{"3of3 row 2", 3, "0 - - - -", [4]State{OK, OK, OK, OK}, "breaching fills only 2, with the real 0"},
		{"3of3 row 3", 3, "- - - - -", [4]State{InsufficientData, retain, Alarm, OK}, "all missing"},
		{"3of3 row 4", 3, "0 X X - X", [4]State{Alarm, Alarm, Alarm, Alarm}, "the 3 most recent real datapoints breach"},
		{"3of3 row 5", 3, "- - X - -", [4]State{Alarm, retain, Alarm, OK}, "premature alarm state: the breach is 3 periods old"},
		{"3of3 earlier edition", 3, "- - - - X", [4]State{InsufficientData, retain, Alarm, OK}, "a breach 1 period old may end at the next"},
		{"3of3 earlier edition, oldest", 3, "X - - - -", [4]State{Alarm, retain, Alarm, OK}, "the oldest evaluated datapoint breaches and none does not"},
		// Second table: 2 out of 3.
		{"2of3 row 1", 2, "0 - X - X", [4]State{Alarm, Alarm, Alarm, Alarm}, "2 of the 3 most recent real datapoints breach"},
		{"2of3 row 2", 2, "0 0 X 0 X", [4]State{Alarm, Alarm, Alarm, Alarm}, "no missing datapoint among the 3 most recent"},
		{"2of3 row 3", 2, "0 - X - -", [4]State{OK, OK, Alarm, OK}, "one filled breaching datapoint makes 2"},
		{"2of3 row 4", 2, "- - - - 0", [4]State{OK, OK, Alarm, OK}, "two filled breaching datapoints make 2"},
		{"2of3 row 5", 2, "- - - X -", [4]State{Alarm, retain, Alarm, OK}, "premature alarm state: the breach is 2 periods old"},
		{"2of3 earlier edition", 2, "- - - - X", [4]State{InsufficientData, retain, Alarm, OK}, "a breach 1 period old"},
	} {
		for i, treat := range treatments {
			for _, prev := range []State{OK, Alarm, InsufficientData} {
				want := c.want[i]
				if want == retain {
					want = prev
				}
				spec := Spec{Period: period, EvaluationPeriods: 3, DatapointsToAlarm: c.m, Comparison: GreaterThanThreshold, Threshold: 1, TreatMissing: treat}
				got := Evaluate(spec, row(t, c.data), prev)
				if got.State != want {
					t.Errorf("%s %q, %s, from %s: %s, want %s (%s)\n  reason: %s", c.name, c.data, treat, prev, got.State, want, c.notes, got.Reason)
				}
				if got.Reason == "" || !strings.HasSuffix(got.Reason, ".") {
					t.Errorf("%s %q, %s: reason %q", c.name, c.data, treat, got.Reason)
				}
			}
		}
	}
}

// TestCounts pins what a Result says it counted: "CloudWatch uses missing
// data points only as few times as possible", and real datapoints beyond
// the N most recent are not needed.
func TestCounts(t *testing.T) {
	for _, c := range []struct {
		data                                 string
		n, m                                 int
		treat                                TreatMissing
		state                                State
		breaching, evaluated, filled, missed int
	}{
		{"0 - X - -", 3, 3, Breaching, OK, 2, 3, 1, 3},
		{"0 - X - -", 3, 3, NotBreaching, OK, 1, 3, 1, 3},
		{"0 - X - -", 3, 3, Missing, OK, 1, 2, 0, 3},
		{"X X 0 X X", 3, 3, Missing, OK, 2, 3, 0, 0},
		{"X X 0 X X", 5, 4, Missing, Alarm, 4, 5, 0, 0},
		{"X - X - X", 3, 3, Ignore, Alarm, 3, 3, 0, 2},
		{"- - - - -", 3, 2, Breaching, Alarm, 3, 3, 3, 5},
		{"- - - - -", 3, 2, NotBreaching, OK, 0, 3, 3, 5},
		{"- - - - -", 3, 2, Missing, InsufficientData, 0, 0, 0, 5},
		{"- - X - -", 3, 3, Missing, Alarm, 1, 1, 0, 4},
	} {
		spec := Spec{EvaluationPeriods: c.n, DatapointsToAlarm: c.m, Comparison: GreaterThanThreshold, Threshold: 1, TreatMissing: c.treat}
		r := Evaluate(spec, row(t, c.data), OK)
		if r.State != c.state || r.Breaching != c.breaching || r.Evaluated != c.evaluated || r.Filled != c.filled || r.Missing != c.missed {
			t.Errorf("%q %d of %d %s: %s breaching %d evaluated %d filled %d missing %d; want %s %d %d %d %d",
				c.data, c.m, c.n, c.treat, r.State, r.Breaching, r.Evaluated, r.Filled, r.Missing,
				c.state, c.breaching, c.evaluated, c.filled, c.missed)
		}
	}
}

// TestMOfN: with every datapoint present, ALARM needs M breaching
// datapoints among the N most recent, consecutive or not (the figure of
// "Evaluating an alarm" in the CloudWatch User Guide).
func TestMOfN(t *testing.T) {
	for _, c := range []struct {
		data string
		n, m int
		want State
	}{
		{"X", 1, 1, Alarm},
		{"0", 1, 1, OK},
		{"0 0 X X X", 3, 3, Alarm},
		{"0 X X X 0", 3, 3, OK}, // the newest dips below: OK at once
		{"X X X X 0", 3, 3, OK},
		{"X 0 X 0 X", 5, 3, Alarm}, // not consecutive
		{"X 0 X 0 0", 5, 3, OK},
		{"X 0 0 0 0 X", 5, 2, OK}, // the oldest X is out of the 5
		{"0 X 0 0 X", 3, 1, Alarm},
		{"0 X 0 0 0", 3, 1, OK},
		{"X X X X", 2, 2, Alarm},
	} {
		spec := Spec{EvaluationPeriods: c.n, DatapointsToAlarm: c.m, Comparison: GreaterThanThreshold, Threshold: 1}
		if got := Evaluate(spec, row(t, c.data), InsufficientData); got.State != c.want {
			t.Errorf("%q %d of %d: %s, want %s (%s)", c.data, c.m, c.n, got.State, c.want, got.Reason)
		}
	}
}

// TestFewerThanN pins the rules for fewer real datapoints than N under
// missing and ignore, beyond the documentation's tables.
func TestFewerThanN(t *testing.T) {
	for _, c := range []struct {
		name  string
		data  string
		m     int
		treat TreatMissing
		want  State
	}{
		{"M real breaching datapoints decide, even fewer than N", "- - - X X", 2, Ignore, Alarm},
		{"M real breaching datapoints decide under missing too", "- - - X X", 2, Missing, Alarm},
		{"the oldest breach gives the premature age, not the newest", "- X - X -", 3, Missing, Alarm},
		{"a breach younger than M is too recent", "- - - X X", 3, Missing, InsufficientData},
	} {
		spec := Spec{EvaluationPeriods: 3, DatapointsToAlarm: c.m, Comparison: GreaterThanThreshold, Threshold: 1, TreatMissing: c.treat}
		if got := Evaluate(spec, row(t, c.data), OK); got.State != c.want {
			t.Errorf("%s: %q %d of 3 %s: %s, want %s (%s)", c.name, c.data, c.m, c.treat, got.State, c.want, got.Reason)
		}
	}
}

// TestShortRange: a range shorter than Range(N), as right after an alarm is
// created, counts as missing further back.
func TestShortRange(t *testing.T) {
	spec := Spec{EvaluationPeriods: 3, DatapointsToAlarm: 3, Comparison: GreaterThanThreshold, Threshold: 1}
	short := Evaluate(spec, row(t, "- X"), OK)
	long := Evaluate(spec, row(t, "- - - - X"), OK)
	if short.State != InsufficientData || long.State != InsufficientData {
		t.Errorf("short %s, long %s, want INSUFFICIENT_DATA", short.State, long.State)
	}
	if r := Evaluate(spec, nil, OK); r.State != InsufficientData || r.Reason != "Insufficient Data: 0 datapoints were unknown." {
		t.Errorf("no range: %s %q", r.State, r.Reason)
	}
}

// TestSpecBounds: N below 1 counts as 1, and M outside 1..N as N.
func TestSpecBounds(t *testing.T) {
	for _, c := range []struct {
		n, m           int
		wantN, wantM   int
		data           string
		want           State
		wantEvaluation int
	}{
		{0, 0, 1, 1, "0 X", Alarm, 1},
		{3, 0, 3, 3, "X X 0", OK, 3},
		{3, 5, 3, 3, "X X 0", OK, 3},
		{3, -1, 3, 3, "X X X", Alarm, 3},
	} {
		spec := Spec{EvaluationPeriods: c.n, DatapointsToAlarm: c.m, Comparison: GreaterThanThreshold, Threshold: 1}
		if n, m := spec.counts(); n != c.wantN || m != c.wantM {
			t.Errorf("N %d M %d counted as %d %d, want %d %d", c.n, c.m, n, m, c.wantN, c.wantM)
		}
		if r := Evaluate(spec, row(t, c.data), OK); r.State != c.want || r.Evaluated != c.wantEvaluation {
			t.Errorf("N %d M %d %q: %s evaluated %d, want %s %d", c.n, c.m, c.data, r.State, r.Evaluated, c.want, c.wantEvaluation)
		}
	}
}

func TestComparisons(t *testing.T) {
	for _, c := range []struct {
		cmp              Comparison
		below, eq, above bool
	}{
		{GreaterThanOrEqualToThreshold, false, true, true},
		{GreaterThanThreshold, false, false, true},
		{LessThanThreshold, true, false, false},
		{LessThanOrEqualToThreshold, true, true, false},
		{0, false, false, false},
	} {
		got := [3]bool{c.cmp.Breaches(0.5, 1), c.cmp.Breaches(1, 1), c.cmp.Breaches(1.5, 1)}
		if got != [3]bool{c.below, c.eq, c.above} {
			t.Errorf("%s: below, equal, above = %v", c.cmp, got)
		}
	}
}

// TestReasons pins the wording, modelled on CloudWatch's state reasons.
func TestReasons(t *testing.T) {
	// The pet example: Minimum < 1 over 10s periods, 2 out of 2.
	pet := Spec{Period: period, EvaluationPeriods: 2, DatapointsToAlarm: 2, Comparison: LessThanThreshold, Threshold: 1}
	at := func(s string, vals ...float64) []Point {
		var pts []Point
		for i, f := range strings.Fields(s) {
			p := Point{Start: t0.Add(time.Duration(i) * period)}
			if f != "-" {
				p.Value, p.OK, vals = vals[0], true, vals[1:]
			}
			pts = append(pts, p)
		}
		return pts
	}
	for _, c := range []struct {
		name string
		spec Spec
		pts  []Point
		prev State
		want string
	}{
		{"pet down", pet, at("v v v v", 1, 1, 0, 0), OK,
			"Threshold Crossed: 2 out of the last 2 datapoints [0.0 (01/12/26 12:00:30), 0.0 (01/12/26 12:00:20)] were less than the threshold (1.0) (minimum 2 datapoints for OK -> ALARM transition)."},
		{"pet back", pet, at("v v v v", 0, 0, 0, 1), Alarm,
			"Threshold Crossed: 1 out of the last 2 datapoints [1.0 (01/12/26 12:00:30), 0.0 (01/12/26 12:00:20)] was not less than the threshold (1.0) (minimum 1 datapoint for ALARM -> OK transition)."},
		{"no transition", pet, at("v v v v", 1, 1, 1, 1.25), OK,
			"Threshold Crossed: 2 out of the last 2 datapoints [1.25 (01/12/26 12:00:30), 1.0 (01/12/26 12:00:20)] were not less than the threshold (1.0)."},
		{"first evaluation", pet, at("- - v v", 3, 0.5), InsufficientData,
			"Threshold Crossed: 1 out of the last 2 datapoints [0.5 (01/12/26 12:00:30), 3.0 (01/12/26 12:00:20)] was not less than the threshold (1.0) (minimum 1 datapoint for INSUFFICIENT_DATA -> OK transition)."},
		{"all missing", pet, at("- - - -"), OK,
			"Insufficient Data: 4 datapoints were unknown."},
		{"all missing, breaching", withTreat(pet, Breaching), at("- - - -"), OK,
			"Threshold Crossed: no datapoints were received for 4 periods and 2 missing datapoints were treated as [Breaching]."},
		{"all missing, not breaching", withTreat(pet, NotBreaching), at("-"), Alarm,
			"Threshold Crossed: no datapoints were received for 1 period and 2 missing datapoints were treated as [NonBreaching]."},
		{"filled", withTreat(pet, Breaching), at("- - - v", 0), OK,
			"Threshold Crossed: 2 out of the last 2 datapoints [0.0 (01/12/26 12:00:30)] were less than the threshold (1.0) and 1 missing datapoint was treated as [Breaching] (minimum 2 datapoints for OK -> ALARM transition)."},
		{"too few", pet, at("- - - v", 0), OK,
			"Insufficient Data: 3 out of the last 4 datapoints were unknown; 1 datapoint [0.0 (01/12/26 12:00:30)] was less than the threshold (1.0), fewer than the minimum 2 datapoints for ALARM."},
		{"ignored", withTreat(pet, Ignore), at("- - - v", 0), OK,
			"Missing data ignored: 3 out of the last 4 datapoints were unknown and 1 datapoint [0.0 (01/12/26 12:00:30)] was less than the threshold (1.0), fewer than the minimum 2 datapoints for ALARM; the state stays OK."},
		{"ignored, none", withTreat(pet, Ignore), at("- - - -"), InsufficientData,
			"Missing data ignored: no datapoints were received for 4 periods; the state stays INSUFFICIENT_DATA."},
		{"premature", pet, at("- - v -", -2), OK,
			"Threshold Crossed: 1 out of the last 1 datapoints [-2.0 (01/12/26 12:00:20)] was less than the threshold (1.0) and 1 later period had no data (minimum 2 periods for OK -> ALARM transition)."},
		{"greater or equal", Spec{EvaluationPeriods: 1, Comparison: GreaterThanOrEqualToThreshold, Threshold: 0.125}, at("v", 1e6), OK,
			"Threshold Crossed: 1 out of the last 1 datapoints [1000000.0 (01/12/26 12:00:00)] was greater than or equal to the threshold (0.125) (minimum 1 datapoint for OK -> ALARM transition)."},
	} {
		if got := Evaluate(c.spec, c.pts, c.prev).Reason; got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.name, got, c.want)
		}
	}
}

func withTreat(s Spec, t TreatMissing) Spec {
	s.TreatMissing = t
	return s
}

// TestEvaluateIsPure: the same inputs give the same result, and the
// periods are not modified.
func TestEvaluateIsPure(t *testing.T) {
	spec := Spec{EvaluationPeriods: 3, DatapointsToAlarm: 2, Comparison: GreaterThanThreshold, Threshold: 1}
	pts := row(t, "0 - X - X")
	before := append([]Point(nil), pts...)
	a, b := Evaluate(spec, pts, OK), Evaluate(spec, pts, OK)
	if a != b {
		t.Errorf("two evaluations differ: %+v %+v", a, b)
	}
	for i := range pts {
		if pts[i] != before[i] {
			t.Fatalf("Evaluate modified its periods")
		}
	}
}

func TestStateText(t *testing.T) {
	for _, s := range []State{OK, Alarm, InsufficientData} {
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		var back State
		if err := json.Unmarshal(b, &back); err != nil || back != s {
			t.Errorf("%s -> %s -> %v, %v", s, b, back, err)
		}
	}
	if got := [3]string{OK.String(), Alarm.String(), InsufficientData.String()}; got != [3]string{"OK", "ALARM", "INSUFFICIENT_DATA"} {
		t.Errorf("names %q", got)
	}
	var zero State
	if zero != InsufficientData {
		t.Error("a new alarm is not INSUFFICIENT_DATA")
	}
	if _, err := ParseState("ok"); err == nil {
		t.Error(`ParseState("ok") succeeded`)
	}
	if _, err := json.Marshal(State(7)); err == nil {
		t.Error("an invalid state marshalled")
	}
}

// TestConfigNames: every name the config accepts parses here, to the
// value of the same name.
func TestConfigNames(t *testing.T) {
	for _, name := range []string{config.GreaterThanOrEqualToThreshold, config.GreaterThanThreshold, config.LessThanThreshold, config.LessThanOrEqualToThreshold} {
		c, err := ParseComparison(name)
		if err != nil || c.String() != name {
			t.Errorf("comparison %s: %v, %v", name, c, err)
		}
	}
	for _, name := range []string{config.TreatMissing, config.TreatBreaching, config.TreatNotBreaching, config.TreatIgnore} {
		tm, err := ParseTreatMissing(name)
		if err != nil || tm.String() != name {
			t.Errorf("treat_missing_data %s: %v, %v", name, tm, err)
		}
	}
	if tm, err := ParseTreatMissing(""); err != nil || tm != Missing {
		t.Errorf(`ParseTreatMissing("") = %v, %v; want the default, missing`, tm, err)
	}
	for _, bad := range []string{"", "GreaterThan", "greaterthanthreshold"} {
		if _, err := ParseComparison(bad); err == nil {
			t.Errorf("ParseComparison(%q) succeeded", bad)
		}
	}
	if _, err := ParseTreatMissing("notbreaching"); err == nil {
		t.Error(`ParseTreatMissing("notbreaching") succeeded`)
	}
}

func TestPeriodStart(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Skip(err)
	}
	for _, c := range []struct {
		t      time.Time
		period time.Duration
		want   time.Time
	}{
		{t0.Add(25 * time.Second), 10 * time.Second, t0.Add(20 * time.Second)},
		{t0.Add(20 * time.Second), 10 * time.Second, t0.Add(20 * time.Second)},
		{t0.Add(20*time.Second - 1), 10 * time.Second, t0.Add(10 * time.Second)},
		{t0.Add(59 * time.Minute), time.Hour, t0},
		// Aligned on the epoch, not on the wall clock of a zone: Paris is
		// UTC+1 in December, and an hour starts on the hour either way.
		{t0.Add(30 * time.Minute).In(paris), time.Hour, t0},
		// 7s periods do not divide a day: aligned on the epoch still.
		{time.Unix(20, 0), 7 * time.Second, time.Unix(14, 0)},
		{time.Unix(-1, 0), 10 * time.Second, time.Unix(-10, 0)},
		{t0.Add(3), 0, t0.Add(3)},
	} {
		if got := PeriodStart(c.t, c.period); !got.Equal(c.want) {
			t.Errorf("PeriodStart(%v, %v) = %v, want %v", c.t, c.period, got, c.want)
		}
	}
}

func TestWindow(t *testing.T) {
	spec := Spec{Period: 10 * time.Second, EvaluationPeriods: 2}
	start, end := Window(spec, t0.Add(25*time.Second))
	if !end.Equal(t0.Add(20*time.Second)) || !start.Equal(t0.Add(-20*time.Second)) {
		t.Errorf("Window = [%v, %v), want [%v, %v)", start, end, t0.Add(-20*time.Second), t0.Add(20*time.Second))
	}
	if got := int(end.Sub(start) / spec.Period); got != Range(2) {
		t.Errorf("the window holds %d periods, want Range(2) = %d", got, Range(2))
	}
	if Range(3) != 5 {
		t.Errorf("Range(3) = %d, want CloudWatch's 5", Range(3))
	}
	if Range(0) != 3 {
		t.Errorf("Range(0) = %d, want Range(1)", Range(0))
	}
}

func TestDue(t *testing.T) {
	spec := Spec{Period: 10 * time.Second}
	for _, c := range []struct {
		name      string
		last, now time.Duration // after t0; last < 0: never evaluated
		want      bool
	}{
		{"never evaluated", -1, 0, true},
		{"same period", 1 * time.Second, 9 * time.Second, false},
		{"next period", 9 * time.Second, 10 * time.Second, true},
		{"periods later", 1 * time.Second, 35 * time.Second, true},
		{"just evaluated", 10 * time.Second, 10 * time.Second, false},
		{"clock stepped back", 30 * time.Second, 5 * time.Second, true},
	} {
		var last time.Time
		if c.last >= 0 {
			last = t0.Add(c.last)
		}
		if got := Due(spec, last, t0.Add(c.now)); got != c.want {
			t.Errorf("%s: Due = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestAppendValue(t *testing.T) {
	for v, want := range map[float64]string{0: "0.0", 1: "1.0", -2: "-2.0", 0.5: "0.5", 66.934: "66.934", 20000: "20000.0", 1e21: "1000000000000000000000.0"} {
		if got := string(appendValue(nil, v)); got != want {
			t.Errorf("appendValue(%v) = %q, want %q", v, got, want)
		}
	}
}
