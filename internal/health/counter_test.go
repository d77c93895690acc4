package health

import (
	"fmt"
	"testing"
	"time"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func TestCounter(t *testing.T) {
	const S, F = Success, Failure
	type obs struct {
		at   time.Duration // since start
		r    Result
		want Status // status reported by a transition; -1 = no transition
		n    int    // Consecutive of the transition
	}
	none := Status(-1)
	tests := []struct {
		name string
		cfg  Config
		seq  []obs
	}{
		{
			name: "defaults: one success is healthy, three failures unhealthy",
			cfg:  Config{},
			seq: []obs{
				{0, S, Healthy, 1},
				{1, S, none, 0},
				{2, F, none, 0},
				{3, F, none, 0},
				{4, F, Unhealthy, 3},
				{5, F, none, 0},
				{6, S, Healthy, 1},
			},
		},
		{
			name: "healthy threshold needs consecutive successes",
			cfg:  Config{HealthyThreshold: 3, UnhealthyThreshold: 2},
			seq: []obs{
				{0, S, none, 0},
				{1, S, none, 0},
				{2, F, none, 0}, // breaks the run
				{3, S, none, 0},
				{4, S, none, 0},
				{5, S, Healthy, 3},
			},
		},
		{
			name: "before the first healthy, failures do not count",
			cfg:  Config{UnhealthyThreshold: 2, StartupTimeout: time.Minute},
			seq: []obs{
				{0, F, none, 0},
				{1, F, none, 0},
				{2, F, none, 0},
				{59 * time.Second, F, none, 0},
			},
		},
		{
			name: "the fast start-up cadence never shortens the start-up deadline",
			cfg:  Config{UnhealthyThreshold: 1, StartupTimeout: 5 * time.Minute},
			seq: func() []obs {
				var o []obs
				for at := time.Duration(0); at < 5*time.Minute; at += 100 * time.Millisecond {
					o = append(o, obs{at, F, none, 0})
				}
				return append(o, obs{5 * time.Minute, F, Unhealthy, 3001})
			}(),
		},
		{
			name: "start-up deadline: the first failure at it is unhealthy",
			cfg:  Config{UnhealthyThreshold: 3, StartupTimeout: 10 * time.Second},
			seq: []obs{
				{0, F, none, 0},
				{10*time.Second - 1, F, none, 0},
				// Exactly at start+startup_timeout, one failure is enough.
				{10 * time.Second, F, Unhealthy, 3},
				{11 * time.Second, F, none, 0},
			},
		},
		{
			name: "start-up deadline passed without a failure: the next failure is unhealthy",
			cfg:  Config{HealthyThreshold: 3, UnhealthyThreshold: 3, StartupTimeout: 10 * time.Second},
			seq: []obs{
				{9 * time.Second, S, none, 0},
				{11 * time.Second, S, none, 0},
				{12 * time.Second, F, Unhealthy, 1},
			},
		},
		{
			name: "a success after the start-up deadline can still make it healthy",
			cfg:  Config{StartupTimeout: 10 * time.Second},
			seq: []obs{
				{0, F, none, 0},
				{20 * time.Second, S, Healthy, 1},
				{21 * time.Second, F, none, 0},
				{22 * time.Second, F, none, 0},
				{23 * time.Second, F, Unhealthy, 3},
			},
		},
		{
			name: "unhealthy at the start-up deadline, then healthy, then counted",
			cfg:  Config{UnhealthyThreshold: 2, StartupTimeout: time.Second},
			seq: []obs{
				{time.Second, F, Unhealthy, 1},
				{2 * time.Second, S, Healthy, 1},
				{3 * time.Second, F, none, 0},
				{4 * time.Second, F, Unhealthy, 2},
			},
		},
		{
			name: "after the first healthy, failures count at once",
			cfg:  Config{UnhealthyThreshold: 2, StartupTimeout: time.Hour},
			seq: []obs{
				{0, S, Healthy, 1},
				{1, F, none, 0},
				{2, F, Unhealthy, 2},
			},
		},
		{
			name: "start healthy: failures count from the first probe",
			cfg:  Config{UnhealthyThreshold: 2, StartHealthy: true},
			seq: []obs{
				{0, S, none, 0}, // already healthy: no transition
				{1, F, none, 0},
				{2, F, Unhealthy, 2},
				{3, F, none, 0},
			},
		},
		{
			name: "a success resets the failure run",
			cfg:  Config{UnhealthyThreshold: 2},
			seq: []obs{
				{0, S, Healthy, 1},
				{1, F, none, 0},
				{2, S, none, 0},
				{3, F, none, 0},
				{4, F, Unhealthy, 2},
			},
		},
		{
			name: "failures in the grace period are not counted",
			cfg:  Config{UnhealthyThreshold: 2, GracePeriod: 10 * time.Second, StartHealthy: true},
			seq: []obs{
				{0, F, none, 0},
				{5 * time.Second, F, none, 0},
				{9 * time.Second, F, none, 0},
				// Grace ends at exactly 10s: from then on failures count.
				{10 * time.Second, F, none, 0},
				{11 * time.Second, F, Unhealthy, 2},
			},
		},
		{
			name: "the grace period outlasts a shorter start-up deadline",
			cfg:  Config{UnhealthyThreshold: 2, GracePeriod: 10 * time.Second, StartupTimeout: 5 * time.Second},
			seq: []obs{
				{5 * time.Second, F, none, 0},
				{10 * time.Second, F, Unhealthy, 1},
			},
		},
		{
			name: "a failure in the grace period still breaks a success run",
			cfg:  Config{HealthyThreshold: 2, GracePeriod: time.Minute},
			seq: []obs{
				{0, S, none, 0},
				{1, F, none, 0},
				{2, S, none, 0},
				{3, S, Healthy, 2},
			},
		},
		{
			name: "healthy in the grace period, failures ignored until it ends",
			cfg:  Config{UnhealthyThreshold: 1, GracePeriod: time.Minute},
			seq: []obs{
				{0, S, Healthy, 1},
				{30 * time.Second, F, none, 0},
				{time.Minute, F, Unhealthy, 1},
			},
		},
		{
			name: "flapping below both thresholds reports nothing",
			cfg:  Config{HealthyThreshold: 2, UnhealthyThreshold: 2},
			seq: []obs{
				{0, S, none, 0}, {1, F, none, 0}, {2, S, none, 0}, {3, F, none, 0}, {4, S, none, 0},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewCounter(tt.cfg, t0)
			if want := map[bool]Status{false: Initial, true: Healthy}[tt.cfg.StartHealthy]; c.Status() != want {
				t.Fatalf("new counter status %s, want %s", c.Status(), want)
			}
			for i, o := range tt.seq {
				out := o.r.String()
				tr, ok := c.Observe(o.r, out, t0.Add(o.at))
				if ok && tr.Status == Unhealthy && !c.BeenHealthy() {
					// The start-up deadline says which deadline it was.
					want := fmt.Sprintf("not healthy within startup_timeout %s: %s", tt.cfg.WithDefaults().StartupTimeout, out)
					if tr.Output != want {
						t.Fatalf("obs %d: output %q, want %q", i, tr.Output, want)
					}
					out = want
				}
				switch {
				case o.want == none && ok:
					t.Fatalf("obs %d (%s): unexpected transition to %s", i, o.r, tr.Status)
				case o.want != none && !ok:
					t.Fatalf("obs %d (%s): no transition, want %s", i, o.r, o.want)
				case ok:
					if tr.Status != o.want || tr.Consecutive != o.n || tr.Output != out || !tr.At.Equal(t0.Add(o.at)) {
						t.Fatalf("obs %d: transition %+v, want %s after %d", i, tr, o.want, o.n)
					}
					if c.Status() != o.want {
						t.Fatalf("obs %d: status %s after transition to %s", i, c.Status(), o.want)
					}
				}
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	tests := []struct {
		name string
		in   Config
		want Config
	}{
		{"zero", Config{}, Config{Interval: 5 * time.Second, Timeout: 2 * time.Second, HealthyThreshold: 1, UnhealthyThreshold: 3, StartupInterval: 100 * time.Millisecond, StartupTimeout: 5 * time.Minute}},
		{"short interval bounds timeout and startup interval",
			Config{Interval: 50 * time.Millisecond},
			Config{Interval: 50 * time.Millisecond, Timeout: 50 * time.Millisecond, HealthyThreshold: 1, UnhealthyThreshold: 3, StartupInterval: 50 * time.Millisecond, StartupTimeout: 5 * time.Minute}},
		{"explicit values kept",
			Config{Interval: time.Second, Timeout: 3 * time.Second, HealthyThreshold: 2, UnhealthyThreshold: 5, GracePeriod: time.Minute, StartupInterval: 10 * time.Millisecond, StartupTimeout: time.Hour},
			Config{Interval: time.Second, Timeout: 3 * time.Second, HealthyThreshold: 2, UnhealthyThreshold: 5, GracePeriod: time.Minute, StartupInterval: 10 * time.Millisecond, StartupTimeout: time.Hour}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.in.WithDefaults(); got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestStrings(t *testing.T) {
	for s, want := range map[Status]string{Initial: "initial", Healthy: "healthy", Unhealthy: "unhealthy", Status(7): "Status(7)"} {
		if s.String() != want {
			t.Errorf("%d: %q, want %q", int(s), s.String(), want)
		}
	}
	for r, want := range map[Result]string{Success: "success", Failure: "failure", Result(7): "Result(7)"} {
		if r.String() != want {
			t.Errorf("%d: %q, want %q", int(r), r.String(), want)
		}
	}
}
