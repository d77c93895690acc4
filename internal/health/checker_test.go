package health

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

// recorder collects a checker's transitions.
type recorder struct{ ch chan Transition }

func newRecorder() *recorder { return &recorder{ch: make(chan Transition, 100)} }

func (r *recorder) onChange(tr Transition) { r.ch <- tr }

func (r *recorder) next(t *testing.T) Transition {
	t.Helper()
	select {
	case tr := <-r.ch:
		return tr
	case <-time.After(10 * time.Second):
		t.Fatal("no transition")
	}
	return Transition{}
}

func (r *recorder) expect(t *testing.T, want Status) Transition {
	t.Helper()
	tr := r.next(t)
	if tr.Status != want {
		t.Fatalf("transition to %s (%q), want %s", tr.Status, tr.Output, want)
	}
	return tr
}

func (r *recorder) none(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case tr := <-r.ch:
		t.Fatalf("unexpected transition to %s (%q)", tr.Status, tr.Output)
	case <-time.After(d):
	}
}

// logBuffer is a concurrency-safe slog sink.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func fast(cfg Config) Config {
	if cfg.Interval == 0 {
		cfg.Interval = 10 * time.Millisecond
	}
	if cfg.StartupInterval == 0 {
		cfg.StartupInterval = 2 * time.Millisecond
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = time.Second
	}
	return cfg
}

func TestCheckerHTTPEndToEnd(t *testing.T) {
	var healthy atomic.Bool
	healthy.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !healthy.Load() {
			http.Error(w, "sick", http.StatusInternalServerError)
			return
		}
		fmt.Fprint(w, "fine")
	}))
	defer srv.Close()

	rec := newRecorder()
	c := NewChecker("web", fast(Config{HealthyThreshold: 2, UnhealthyThreshold: 2}), HTTP(srv.URL), rec.onChange, nil)
	if c.Status() != Initial {
		t.Fatalf("status before start %s", c.Status())
	}
	c.Start(context.Background())
	defer c.Close()

	tr := rec.expect(t, Healthy)
	if tr.Consecutive != 2 || tr.Output != "HTTP 200 OK: fine" || c.Status() != Healthy {
		t.Fatalf("transition %+v, status %s", tr, c.Status())
	}
	healthy.Store(false)
	tr = rec.expect(t, Unhealthy)
	if tr.Consecutive != 2 || !strings.Contains(tr.Output, "sick") || c.Status() != Unhealthy {
		t.Fatalf("transition %+v, status %s", tr, c.Status())
	}
	healthy.Store(true)
	rec.expect(t, Healthy)
	c.Close()
	rec.none(t, 50*time.Millisecond)
}

func TestCheckerServerDown(t *testing.T) {
	// The target goes away entirely: refused connections are failures.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	rec := newRecorder()
	c := NewChecker("web", fast(Config{UnhealthyThreshold: 3}), HTTP(srv.URL), rec.onChange, nil)
	c.Start(context.Background())
	defer c.Close()
	rec.expect(t, Healthy)
	srv.Close()
	tr := rec.expect(t, Unhealthy)
	if tr.Consecutive != 3 || !strings.Contains(tr.Output, "connection refused") {
		t.Fatalf("transition %+v", tr)
	}
}

func TestCheckerStartupThenInterval(t *testing.T) {
	// With an hour-long interval, the three successes needed can only come
	// from the startup interval; once healthy, no probe follows until the
	// hour is up. In a synctest bubble the clock only moves when every
	// goroutine waits, so "none in 59 minutes" is exact, not a guess.
	synctest.Test(t, func(t *testing.T) {
		var probes atomic.Int32
		p := Process(func() bool { probes.Add(1); return true })
		rec := newRecorder()
		c := NewChecker("p", Config{Interval: time.Hour, StartupInterval: time.Millisecond, HealthyThreshold: 3}, p, rec.onChange, nil)
		c.Start(context.Background())
		defer c.Close()
		rec.expect(t, Healthy)
		time.Sleep(59 * time.Minute)
		synctest.Wait()
		if n := probes.Load(); n != 3 {
			t.Fatalf("%d probes in the first 59 minutes, want 3 then none until the interval", n)
		}
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		if n := probes.Load(); n != 4 {
			t.Fatalf("%d probes after the interval, want 4", n)
		}
	})
}

func TestCheckerGracePeriod(t *testing.T) {
	rec := newRecorder()
	start := time.Now()
	const grace = 150 * time.Millisecond
	c := NewChecker("p", fast(Config{UnhealthyThreshold: 1, GracePeriod: grace, StartHealthy: true}), Process(func() bool { return false }), rec.onChange, nil)
	c.Start(context.Background())
	defer c.Close()
	tr := rec.expect(t, Unhealthy)
	if tr.At.Sub(start) < grace {
		t.Fatalf("unhealthy %s after start, inside the grace period", tr.At.Sub(start))
	}
}

func TestCheckerProbeErrorCountsAsFailure(t *testing.T) {
	rec := newRecorder()
	p := Exec(func(ctx context.Context) (int, string, error) { return -1, "", errors.New("exec format error") })
	c := NewChecker("e", fast(Config{UnhealthyThreshold: 2, StartHealthy: true}), p, rec.onChange, nil)
	c.Start(context.Background())
	defer c.Close()
	tr := rec.expect(t, Unhealthy)
	if !strings.HasPrefix(tr.Output, "probe error: ") || !strings.Contains(tr.Output, "exec format error") {
		t.Fatalf("output %q does not say the probe could not run", tr.Output)
	}
}

func TestCheckerTimeoutBoundsProbe(t *testing.T) {
	// The exec command hangs until its context ends: Timeout ends it.
	rec := newRecorder()
	p := Exec(func(ctx context.Context) (int, string, error) {
		<-ctx.Done()
		return -1, "killed", ctx.Err()
	})
	c := NewChecker("e", fast(Config{Timeout: 20 * time.Millisecond, UnhealthyThreshold: 2, StartHealthy: true}), p, rec.onChange, nil)
	c.Start(context.Background())
	defer c.Close()
	tr := rec.expect(t, Unhealthy)
	if !strings.Contains(tr.Output, "deadline exceeded") {
		t.Fatalf("output %q", tr.Output)
	}
}

func TestCheckerNeverOverlapsProbes(t *testing.T) {
	// Probes take longer than the interval and ignore their timeout: the
	// next one still waits for the previous to return.
	var running, maxRunning, probes atomic.Int32
	p := Exec(func(ctx context.Context) (int, string, error) {
		n := running.Add(1)
		for {
			m := maxRunning.Load()
			if n <= m || maxRunning.CompareAndSwap(m, n) {
				break
			}
		}
		time.Sleep(5 * time.Millisecond)
		running.Add(-1)
		probes.Add(1)
		return 0, "", nil
	})
	c := NewChecker("e", Config{Interval: time.Microsecond, StartupInterval: time.Microsecond, Timeout: time.Microsecond}, p, nil, nil)
	c.Start(context.Background())
	for probes.Load() < 20 {
		time.Sleep(time.Millisecond)
	}
	c.Close()
	if m := maxRunning.Load(); m != 1 {
		t.Fatalf("%d probes ran at once", m)
	}
	if running.Load() != 0 {
		t.Fatal("Close returned with a probe still running")
	}
}

func TestCheckerRecoversPanics(t *testing.T) {
	tests := []struct {
		name    string
		probe   func(n int32) bool // alive, or panic
		onPanic bool
		want    []Status
		// startHealthy counts failures at once.
		startHealthy bool
	}{
		{
			name: "prober panics then recovers",
			probe: func(n int32) bool {
				if n <= 2 {
					panic("boom")
				}
				return true
			},
			want: []Status{Unhealthy, Healthy},
			// Failures count from the first probe.
			startHealthy: true,
		},
		{
			name:    "callback panics",
			probe:   func(n int32) bool { return n <= 1 },
			onPanic: true,
			want:    []Status{Healthy, Unhealthy},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs logBuffer
			logger := slog.New(slog.NewTextHandler(&logs, nil))
			var n atomic.Int32
			rec := newRecorder()
			onChange := rec.onChange
			if tt.onPanic {
				onChange = func(tr Transition) { rec.onChange(tr); panic("callback boom") }
			}
			c := NewChecker("p", fast(Config{UnhealthyThreshold: 2, StartHealthy: tt.startHealthy}), Process(func() bool { return tt.probe(n.Add(1)) }), onChange, logger)
			c.Start(context.Background())
			defer c.Close()
			for _, want := range tt.want {
				tr := rec.expect(t, want)
				if want == Unhealthy && !tt.onPanic && !strings.Contains(tr.Output, "panic: boom") {
					t.Fatalf("output %q", tr.Output)
				}
			}
			if !strings.Contains(logs.String(), "panicked") {
				t.Fatalf("panic not logged: %s", logs.String())
			}
		})
	}
}

func TestCheckerClose(t *testing.T) {
	t.Run("waits for the probe in flight", func(t *testing.T) {
		entered := make(chan struct{})
		var returned atomic.Bool
		p := Exec(func(ctx context.Context) (int, string, error) {
			close(entered)
			<-ctx.Done()
			time.Sleep(20 * time.Millisecond) // a slow kill
			returned.Store(true)
			return -1, "", ctx.Err()
		})
		rec := newRecorder()
		c := NewChecker("e", Config{Timeout: time.Hour, UnhealthyThreshold: 1}, p, rec.onChange, nil)
		c.Start(context.Background())
		<-entered
		c.Close()
		if !returned.Load() {
			t.Fatal("Close returned before the probe")
		}
		// The probe was cut short by Close, not failed by the target.
		rec.none(t, 20*time.Millisecond)
		if c.Status() != Initial {
			t.Fatalf("status %s", c.Status())
		}
	})
	// In a synctest bubble the clock moves only when every goroutine
	// waits: an hour of "no probe" is exact, not a guess.
	t.Run("cancelled start context stops the loop", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var probes atomic.Int32
			ctx, cancel := context.WithCancel(context.Background())
			c := NewChecker("p", fast(Config{}), Process(func() bool { probes.Add(1); return false }), nil, nil)
			c.Start(ctx)
			for probes.Load() == 0 {
				time.Sleep(time.Millisecond)
			}
			cancel()
			c.Close()
			n := probes.Load()
			time.Sleep(time.Hour)
			synctest.Wait()
			if probes.Load() != n {
				t.Fatal("probing after Close")
			}
		})
	})
	t.Run("close without start, twice, start after close", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var probes atomic.Int32
			c := NewChecker("p", fast(Config{}), Process(func() bool { probes.Add(1); return true }), nil, nil)
			c.Close()
			c.Close()
			c.Start(context.Background())
			time.Sleep(time.Hour)
			synctest.Wait()
			c.Close()
			if probes.Load() != 0 {
				t.Fatal("a closed checker probed")
			}
		})
	})
	t.Run("concurrent close", func(t *testing.T) {
		c := NewChecker("p", fast(Config{}), Process(func() bool { return true }), nil, nil)
		c.Start(context.Background())
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(c.Close)
		}
		wg.Wait()
	})
}

// BenchmarkHTTPProbe measures one HTTP probe against a local server, with
// keep-alive off (what HTTP uses) and on (for comparison). cpu-us/op is the
// process CPU time per probe, client and server together.
func BenchmarkHTTPProbe(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") }))
	defer srv.Close()
	for _, keepAlive := range []bool{false, true} {
		b.Run(fmt.Sprintf("keepalive=%v", keepAlive), func(b *testing.B) {
			p := newHTTPProber(srv.URL, keepAlive)
			defer p.CloseIdleConnections()
			ctx := context.Background()
			b.ReportAllocs()
			cpu0 := cpuTime(b)
			b.ResetTimer()
			for b.Loop() {
				if res, out, err := p.Probe(ctx); res != Success || err != nil {
					b.Fatalf("%s %q %v", res, out, err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/float64(b.N), "cpu-us/op")
		})
	}
}

// BenchmarkCheckerFleet runs 100 HTTP checkers, each probing every 100ms
// (ten times the 1s target rate, to measure in less time), for b.N periods,
// and reports the CPU they cost at a 1s interval as a percentage of one
// core (client and server together).
func BenchmarkCheckerFleet(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") }))
	defer srv.Close()
	for _, keepAlive := range []bool{false, true} {
		b.Run(fmt.Sprintf("keepalive=%v", keepAlive), func(b *testing.B) {
			const n, period = 100, 100 * time.Millisecond
			var probes atomic.Int64
			checkers := make([]*Checker, n)
			for i := range checkers {
				p := newHTTPProber(srv.URL, keepAlive)
				counting := Exec(func(ctx context.Context) (int, string, error) {
					probes.Add(1)
					res, out, err := p.Probe(ctx)
					return int(res), out, err
				})
				checkers[i] = NewChecker("fleet", Config{Interval: period, StartupInterval: period}, counting, nil, nil)
			}
			cpu0, wall0 := cpuTime(b), time.Now()
			for _, c := range checkers {
				c.Start(context.Background())
			}
			time.Sleep(time.Duration(b.N) * period)
			for _, c := range checkers {
				c.Close()
			}
			cpu, wall := cpuTime(b)-cpu0, time.Since(wall0)
			// At a 1s interval the same probes take ten times the wall time.
			b.ReportMetric(100*cpu.Seconds()/(wall.Seconds()*float64(time.Second/period)), "%core@1s")
			b.ReportMetric(float64(probes.Load())/wall.Seconds(), "probes/s")
		})
	}
}

func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestCheckerSlowStartIsNotFailure is the database in crash recovery: it
// fails every probe at the fast start-up cadence for longer than
// unhealthy_threshold probes take, then answers. It becomes healthy and
// is never reported unhealthy.
func TestCheckerSlowStartIsNotFailure(t *testing.T) {
	var n atomic.Int32
	p := Process(func() bool { return n.Add(1) > 20 })
	rec := newRecorder()
	c := NewChecker("db", fast(Config{UnhealthyThreshold: 3, StartupInterval: time.Millisecond}), p, rec.onChange, nil)
	c.Start(context.Background())
	defer c.Close()
	tr := rec.expect(t, Healthy)
	if got := n.Load(); got != 21 {
		t.Fatalf("healthy after %d probes, want 21 (20 failures then a success)", got)
	}
	if tr.Consecutive != 1 {
		t.Fatalf("transition %+v", tr)
	}
}

// TestCheckerStartupTimeout: a target that never answers is unhealthy once
// the start-up deadline passed, with the last probe's output.
func TestCheckerStartupTimeout(t *testing.T) {
	rec := newRecorder()
	start := time.Now()
	const startup = 100 * time.Millisecond
	p := Exec(func(ctx context.Context) (int, string, error) { return 2, "no response", nil })
	c := NewChecker("db", fast(Config{UnhealthyThreshold: 1, StartupTimeout: startup}), p, rec.onChange, nil)
	c.Start(context.Background())
	defer c.Close()
	tr := rec.expect(t, Unhealthy)
	if tr.At.Sub(start) < startup {
		t.Fatalf("unhealthy %s after start, before startup_timeout %s", tr.At.Sub(start), startup)
	}
	if want := "not healthy within startup_timeout 100ms: exit code 2: no response"; tr.Output != want {
		t.Fatalf("output %q, want %q", tr.Output, want)
	}
}
