package store

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/autoheal/autoheal/internal/event"
)

// The benchmarks below measure Append end to end: one durable transaction
// per call. The fsync baseline writes and fsyncs the same bytes with the
// raw file API on the same dir, so the ratio shows the store's overhead over
// the one fsync per commit that durability costs anyway; each Append
// benchmark reports it as x-fsync.

func benchEvents(n int) []Event {
	evs := make([]Event, n)
	for i := range evs {
		evs[i] = Event{
			Type: event.KindInstanceState, Group: "web", Instance: "i-0123456789abcdef0",
			Message: "Pending:Wait -> InService (health check passed 3 times)",
			Data:    event.InstanceState{From: "Pending:Wait", To: "InService"},
		}
	}
	return evs
}

func eventBytes(b *testing.B, evs []Event) []byte {
	var out []byte
	for _, ev := range evs {
		ev.Time = time.Now()
		j, err := json.Marshal(ev)
		if err != nil {
			b.Fatal(err)
		}
		out = append(append(out, j...), '\n')
	}
	return out
}

// fsyncPerOp is the mean time of one write+fsync of p appended to a file
// in dir, measured before the benchmark's timer starts.
func fsyncPerOp(b *testing.B, dir string, p []byte) time.Duration {
	f, err := os.OpenFile(filepath.Join(dir, "baseline"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		b.Fatal(err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	// At least 100 rounds and 200ms: fsync latency is noisy.
	start := time.Now()
	n := 0
	for ; n < 100 || time.Since(start) < 200*time.Millisecond; n++ {
		if _, err := f.Write(p); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
	}
	return time.Since(start) / time.Duration(n)
}

func benchAppend(b *testing.B, batch int) {
	dir := b.TempDir()
	evs := benchEvents(batch)
	base := fsyncPerOp(b, dir, eventBytes(b, evs))
	s := open(b, dir)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := s.Append(ctx, evs...); err != nil {
			b.Fatal(err)
		}
	}
	perOp := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	b.ReportMetric(perOp/float64(batch), "ns/event")
	b.ReportMetric(perOp/float64(base.Nanoseconds()), "x-fsync")
}

// BenchmarkAppend is one event per Append call.
func BenchmarkAppend(b *testing.B) { benchAppend(b, 1) }

// BenchmarkAppendBatch is ten events per Append call: one transaction,
// one fsync.
func BenchmarkAppendBatch(b *testing.B) { benchAppend(b, 10) }

// BenchmarkFsyncBaseline is the floor: write the bytes of the events and
// fsync, with nothing else, on the same filesystem.
func BenchmarkFsyncBaseline(b *testing.B) {
	for _, bc := range []struct {
		name  string
		batch int
	}{{"single", 1}, {"batch10", 10}} {
		b.Run(bc.name, func(b *testing.B) {
			p := eventBytes(b, benchEvents(bc.batch))
			f, err := os.OpenFile(filepath.Join(b.TempDir(), "baseline"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			b.SetBytes(int64(len(p)))
			for b.Loop() {
				if _, err := f.Write(p); err != nil {
					b.Fatal(err)
				}
				if err := f.Sync(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
