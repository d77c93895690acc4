package metrics

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Batched ingest through the in-process path, in datapoints per second,
// beside a baseline measured in the same run: the same datums added to a
// plain map[string]float64 per goroutine, keys built in advance (no
// locks, no key building, no validation, no percentiles). Each goroutine
// (GOMAXPROCS of them) writes its own 1000 series; bytes/series is the
// store's memory per series at the end.
//
//	go test -run '^$' -bench BenchmarkPut -benchtime 3s ./internal/metrics/
func BenchmarkPut(b *testing.B) {
	for _, shape := range []struct {
		name           string
		datums, values int // per batch, per datum (0: Value)
	}{
		{"1000-datums-x-1-value", 1000, 0},
		{"100-datums-x-150-values", 100, 150},
	} {
		b.Run(shape.name, func(b *testing.B) {
			s, err := New(Options{Logger: slog.New(slog.DiscardHandler), MaxSeries: 100000})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			var gid atomic.Int64
			mk := func() ([]Datum, []string) { return batch(int(gid.Add(1)), shape.datums, shape.values) }
			base := baseline(mk)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				data, _ := mk()
				for pb.Next() {
					if errs := s.Put("Bench", data); errs != nil {
						b.Error(errs)
						return
					}
				}
			})
			dp := float64(b.N) * float64(shape.datums*max(shape.values, 1))
			b.ReportMetric(dp/b.Elapsed().Seconds(), "datapoints/s")
			b.ReportMetric(base, "baseline-datapoints/s")
			var bytes int64
			infos := s.Series()
			for _, in := range infos {
				bytes += in.Bytes
			}
			b.ReportMetric(float64(bytes)/float64(len(infos)), "bytes/series")
		})
	}
}

// batch makes goroutine g's batch: n datums over n series, each with
// one value or with values Values, latency-like, and the baseline's keys.
func batch(g, n, values int) ([]Datum, []string) {
	rng := rand.New(rand.NewPCG(uint64(g), 1))
	data := make([]Datum, n)
	keys := make([]string, n)
	for i := range data {
		d := Datum{MetricName: "Latency", Unit: "Milliseconds", Dimensions: []Dimension{
			{"Group", "web"}, {"InstanceId", fmt.Sprintf("i-%03d-%04d", g, i)}}}
		if values == 0 {
			d.Value = 1 + rng.ExpFloat64()*20
		}
		for range values {
			d.Values = append(d.Values, 1+rng.ExpFloat64()*20)
		}
		data[i], keys[i] = d, "Bench\x00Latency\x00Group\x01web\x00InstanceId\x01"+d.Dimensions[1].Value
	}
	return data, keys
}

// baseline is the datapoints per second of a map update loop over the
// same batches, with as many goroutines as RunParallel uses.
func baseline(mk func() ([]Datum, []string)) float64 {
	var wg sync.WaitGroup
	var total atomic.Int64
	const d = 300 * time.Millisecond
	start := time.Now()
	for range runtime.GOMAXPROCS(0) {
		data, keys := mk()
		wg.Go(func() {
			m := map[string]float64{}
			n := 0
			for time.Since(start) < d {
				for i := range data {
					if len(data[i].Values) == 0 {
						m[keys[i]] += data[i].Value
						n++
						continue
					}
					for _, v := range data[i].Values {
						m[keys[i]] += v
					}
					n += len(data[i].Values)
				}
			}
			total.Add(int64(n))
		})
	}
	wg.Wait()
	return float64(total.Load()) / time.Since(start).Seconds()
}

// The PutMetricData decoder alone, beside encoding/json decoding the
// same body into the same types.
//
//	go test -run '^$' -bench BenchmarkDecodePut ./internal/metrics/
func BenchmarkDecodePut(b *testing.B) {
	data, _ := batch(1, 1000, 0)
	body, err := json.Marshal(PutRequest{Namespace: "Bench", MetricData: data})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("autoheal", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			if _, errs, err := DecodePut(body, 1000); err != nil || errs != nil {
				b.Fatal(err, errs)
			}
		}
		b.ReportMetric(float64(b.N)*1000/b.Elapsed().Seconds(), "datums/s")
	})
	b.Run("baseline-encoding-json", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			var req PutRequest
			if err := json.Unmarshal(body, &req); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)*1000/b.Elapsed().Seconds(), "datums/s")
	})
}
