package alarm

import (
	"math/rand/v2"
	"testing"
	"time"
)

// The speed target: 10,000 alarms evaluated every 10s using less than 10%
// of one core, that is under 10µs per alarm and evaluation.
const (
	benchAlarms   = 10_000
	benchInterval = 10 * time.Second
)

// benchFleet returns 10,000 alarms of N = 5 (M = 3) with their evaluation
// ranges (Range(5) = 7 periods): a mix of healthy, breaching, flapping and
// silent metrics under every treatment of missing data, the same mix at
// every run.
func benchFleet() ([]Spec, [][]Point) {
	rng := rand.New(rand.NewPCG(1, 2))
	specs := make([]Spec, benchAlarms)
	ranges := make([][]Point, benchAlarms)
	start := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for i := range specs {
		specs[i] = Spec{
			Period: 10 * time.Second, EvaluationPeriods: 5, DatapointsToAlarm: 3,
			Comparison: Comparison(1 + i%4), Threshold: 50, TreatMissing: TreatMissing(i % 4),
		}
		pts := make([]Point, Range(5))
		for j := range pts {
			pts[j].Start = start.Add(time.Duration(j) * 10 * time.Second)
			switch kind := i % 10; {
			case kind < 5: // healthy: values well below the threshold
				pts[j].Value, pts[j].OK = rng.Float64()*40, true
			case kind < 7: // breaching
				pts[j].Value, pts[j].OK = 60+rng.Float64()*40, true
			case kind < 9: // flapping, with gaps
				pts[j].Value, pts[j].OK = rng.Float64()*100, rng.IntN(4) != 0
			default: // silent
			}
		}
		ranges[i] = pts
	}
	return specs, ranges
}

var sink int

// BenchmarkEvaluate10k evaluates 10,000 alarms per iteration, beside a
// baseline loop over the same datapoints that only counts breaches (the
// least any evaluator must do), and reports the time per alarm and the
// share of one core that evaluating them all every 10s would take.
func BenchmarkEvaluate10k(b *testing.B) {
	specs, ranges := benchFleet()
	report := func(b *testing.B) {
		perAlarm := float64(b.Elapsed().Nanoseconds()) / float64(b.N) / benchAlarms
		b.ReportMetric(perAlarm, "ns/alarm")
		b.ReportMetric(perAlarm*benchAlarms/float64(benchInterval.Nanoseconds())*100, "%core@10s")
		b.ReportMetric(0, "ns/op") // an op is 10,000 alarms: per alarm says more
	}
	b.Run("baseline", func(b *testing.B) {
		n := 0
		for b.Loop() {
			for i := range specs {
				for _, p := range ranges[i] {
					if p.OK && specs[i].Comparison.Breaches(p.Value, specs[i].Threshold) {
						n++
					}
				}
			}
		}
		sink += n
		report(b)
	})
	b.Run("evaluate", func(b *testing.B) {
		b.ReportAllocs()
		n := 0
		prev := make([]State, benchAlarms)
		for b.Loop() {
			for i := range specs {
				r := Evaluate(specs[i], ranges[i], prev[i])
				prev[i] = r.State
				n += len(r.Reason)
			}
		}
		sink += n
		report(b)
	})
}
