package heal

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// step is one event in a sequence replayed against a History.
type step struct {
	at   time.Duration // since t0
	op   string        // fail (Decide then Record), healthy, never-in-service, forget, reset
	inst string
	// healthy only: InService since t0+since.
	since time.Duration
	// fail only: the expected decision.
	action Action
	delay  time.Duration
	reason string
}

func fail(at time.Duration, inst string, a Action, delay time.Duration, reason string) step {
	return step{at: at, op: "fail", inst: inst, action: a, delay: delay, reason: reason}
}

func TestDecideSequences(t *testing.T) {
	const s, m = time.Second, time.Minute
	tests := []struct {
		name   string
		policy Policy
		steps  []step
	}{
		{
			name:   "restarts in place then replaces",
			policy: Policy{MaxRestarts: 3, RestartWindow: 5 * m, BackoffBase: s, BackoffCap: m, MaxReplacements: 5, ReplacementWindow: 30 * m},
			steps: []step{
				fail(0, "i-a", Restart, 0, "restart 1/3 within 5m0s"),
				fail(10*s, "i-a", Restart, s, "restart 2/3 within 5m0s (backoff 1s)"),
				fail(20*s, "i-a", Restart, 2*s, "restart 3/3 within 5m0s (backoff 2s)"),
				fail(30*s, "i-a", Replace, 4*s, "3 restarts within 5m0s: replacing (backoff 4s)"),
				// The replacement is a new instance: it gets its own restarts,
				// but the series (and so the backoff) goes on.
				fail(40*s, "i-b", Restart, 8*s, "restart 1/3 within 5m0s (backoff 8s)"),
			},
		},
		{
			name:   "max restarts 0 always replaces",
			policy: Policy{MaxRestarts: 0, RestartWindow: 5 * m, MaxReplacements: 5, ReplacementWindow: 30 * m},
			steps: []step{
				fail(0, "i-a", Replace, 0, "max_restarts 0: replacing"),
				fail(s, "i-b", Replace, 0, "max_restarts 0: replacing"),
			},
		},
		{
			name:   "replacements exhausted impair the group",
			policy: Policy{MaxRestarts: 0, MaxReplacements: 2, ReplacementWindow: 30 * m, BackoffBase: s, BackoffCap: m},
			steps: []step{
				fail(0, "i-a", Replace, 0, "max_restarts 0: replacing"),
				fail(m, "i-b", Replace, s, "max_restarts 0: replacing (backoff 1s)"),
				fail(2*m, "i-c", Impair, 0, "3 replacements within 30m0s exceed max_replacements 2: group impaired"),
			},
		},
		{
			name:   "max replacements 0 impairs at the first replacement",
			policy: Policy{MaxRestarts: 1, RestartWindow: 5 * m, MaxReplacements: 0, ReplacementWindow: 30 * m},
			steps: []step{
				fail(0, "i-a", Restart, 0, "restart 1/1 within 5m0s"),
				fail(s, "i-a", Impair, 0, "1 replacement within 30m0s exceeds max_replacements 0: group impaired"),
			},
		},
		{
			name:   "restart still allowed when replacements are exhausted",
			policy: Policy{MaxRestarts: 2, RestartWindow: 5 * m, MaxReplacements: 1, ReplacementWindow: 30 * m},
			steps: []step{
				fail(0, "i-a", Restart, 0, "restart 1/2 within 5m0s"),
				fail(s, "i-a", Restart, 0, "restart 2/2 within 5m0s"),
				fail(2*s, "i-a", Replace, 0, "2 restarts within 5m0s: replacing"),
				fail(3*s, "i-b", Restart, 0, "restart 1/2 within 5m0s"),
				fail(4*s, "i-b", Restart, 0, "restart 2/2 within 5m0s"),
				fail(5*s, "i-b", Impair, 0, "2 replacements within 30m0s exceed max_replacements 1: group impaired"),
			},
		},
		{
			name:   "crash loop backoff grows then caps",
			policy: Policy{MaxRestarts: 100, RestartWindow: time.Hour, BackoffBase: s, BackoffCap: 10 * s, MaxReplacements: 5, ReplacementWindow: time.Hour},
			steps: []step{
				fail(0, "i-a", Restart, 0, "restart 1/100 within 1h0m0s"),
				fail(1*s, "i-a", Restart, 1*s, "restart 2/100 within 1h0m0s (backoff 1s)"),
				fail(3*s, "i-a", Restart, 2*s, "restart 3/100 within 1h0m0s (backoff 2s)"),
				fail(6*s, "i-a", Restart, 4*s, "restart 4/100 within 1h0m0s (backoff 4s)"),
				fail(11*s, "i-a", Restart, 8*s, "restart 5/100 within 1h0m0s (backoff 8s)"),
				fail(20*s, "i-a", Restart, 10*s, "restart 6/100 within 1h0m0s (backoff 10s)"),
				fail(31*s, "i-a", Restart, 10*s, "restart 7/100 within 1h0m0s (backoff 10s)"),
				fail(42*s, "i-a", Restart, 10*s, "restart 8/100 within 1h0m0s (backoff 10s)"),
			},
		},
		{
			name:   "restart window slides",
			policy: Policy{MaxRestarts: 2, RestartWindow: m, MaxReplacements: 5, ReplacementWindow: 30 * m},
			steps: []step{
				fail(0, "i-a", Restart, 0, "restart 1/2 within 1m0s"),
				fail(30*s, "i-a", Restart, 0, "restart 2/2 within 1m0s"),
				// The restart at 0 is exactly one window old at 60s: it has
				// left the window.
				fail(60*s, "i-a", Restart, 0, "restart 2/2 within 1m0s"),
				// 30s and 60s are both inside (31s..91s].
				fail(61*s, "i-a", Replace, 0, "2 restarts within 1m0s: replacing"),
			},
		},
		{
			name:   "replacement window slides",
			policy: Policy{MaxRestarts: 0, MaxReplacements: 1, ReplacementWindow: 10 * m},
			steps: []step{
				fail(0, "i-a", Replace, 0, "max_restarts 0: replacing"),
				fail(10*m, "i-b", Replace, 0, "max_restarts 0: replacing"),
				fail(10*m+s, "i-c", Impair, 0, "2 replacements within 10m0s exceed max_replacements 1: group impaired"),
			},
		},
		{
			name:   "no windows count everything",
			policy: Policy{MaxRestarts: 1, MaxReplacements: 1},
			steps: []step{
				fail(0, "i-a", Restart, 0, "restart 1/1 in total"),
				fail(24*time.Hour, "i-a", Replace, 0, "1 restart in total: replacing"),
				fail(48*time.Hour, "i-b", Restart, 0, "restart 1/1 in total"),
				fail(72*time.Hour, "i-b", Impair, 0, "2 replacements in total exceed max_replacements 1: group impaired"),
			},
		},
		{
			name:   "serving for reset_after ends the series",
			policy: Policy{MaxRestarts: 10, RestartWindow: time.Hour, BackoffBase: s, BackoffCap: m, ResetAfter: m, MaxReplacements: 5, ReplacementWindow: time.Hour},
			steps: []step{
				fail(0, "i-a", Restart, 0, "restart 1/10 within 1h0m0s"),
				fail(10*s, "i-a", Restart, s, "restart 2/10 within 1h0m0s (backoff 1s)"),
				// InService from 20s to 79s: one second short.
				{at: 79 * s, op: "healthy", inst: "i-a", since: 20 * s},
				fail(79*s, "i-a", Restart, 2*s, "restart 3/10 within 1h0m0s (backoff 2s)"),
				// InService from 90s to 150s: exactly ResetAfter.
				{at: 150 * s, op: "healthy", inst: "i-a", since: 90 * s},
				fail(150*s, "i-a", Restart, 0, "restart 4/10 within 1h0m0s"),
				fail(151*s, "i-a", Restart, s, "restart 5/10 within 1h0m0s (backoff 1s)"),
			},
		},
		{
			name:   "never InService does not end the series",
			policy: Policy{MaxRestarts: 10, RestartWindow: time.Hour, BackoffBase: s, BackoffCap: m, ResetAfter: m, MaxReplacements: 5, ReplacementWindow: time.Hour},
			steps: []step{
				fail(0, "i-a", Restart, 0, "restart 1/10 within 1h0m0s"),
				fail(10*s, "i-a", Restart, s, "restart 2/10 within 1h0m0s (backoff 1s)"),
				// Healthy with the zero time: it never went InService.
				{at: 10 * m, op: "never-in-service", inst: "i-a"},
				fail(10*m, "i-a", Restart, 2*s, "restart 3/10 within 1h0m0s (backoff 2s)"),
			},
		},
		{
			name:   "a replacement drops the replaced instance's restarts",
			policy: Policy{MaxRestarts: 1, RestartWindow: time.Hour, MaxReplacements: 5, ReplacementWindow: time.Hour},
			steps: []step{
				fail(0, "i-a", Restart, 0, "restart 1/1 within 1h0m0s"),
				fail(s, "i-a", Replace, 0, "1 restart within 1h0m0s: replacing"),
				// Were the id seen again, it would start with no restarts.
				fail(2*s, "i-a", Restart, 0, "restart 1/1 within 1h0m0s"),
			},
		},
		{
			name:   "forget drops a terminated instance's restarts",
			policy: Policy{MaxRestarts: 1, RestartWindow: time.Hour, MaxReplacements: 5, ReplacementWindow: time.Hour},
			steps: []step{
				fail(0, "i-a", Restart, 0, "restart 1/1 within 1h0m0s"),
				{at: s, op: "forget", inst: "i-a"},
				fail(2*s, "i-a", Restart, 0, "restart 1/1 within 1h0m0s"),
			},
		},
		{
			name:   "reset after impaired starts afresh",
			policy: Policy{MaxRestarts: 0, BackoffBase: s, BackoffCap: m, MaxReplacements: 1, ReplacementWindow: time.Hour},
			steps: []step{
				fail(0, "i-a", Replace, 0, "max_restarts 0: replacing"),
				fail(s, "i-b", Impair, 0, "2 replacements within 1h0m0s exceed max_replacements 1: group impaired"),
				{at: 2 * s, op: "reset"},
				fail(3*s, "i-b", Replace, 0, "max_restarts 0: replacing"),
			},
		},
		{
			name:   "uncapped backoff saturates instead of overflowing",
			policy: Policy{MaxRestarts: 1000, BackoffBase: time.Hour},
			steps: func() []step {
				var st []step
				for i := 0; i < 80; i++ {
					st = append(st, step{at: time.Duration(i) * s, op: "fail", inst: "i-a", action: Restart, delay: -1})
				}
				return st
			}(),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h History
			var last time.Duration
			for i, st := range tt.steps {
				now := t0.Add(st.at)
				switch st.op {
				case "fail":
					d := tt.policy.Decide(h, st.inst, now)
					if d.Action != st.action {
						t.Fatalf("step %d (%s at %s): action %s, want %s (%q)", i, st.inst, st.at, d.Action, st.action, d.Reason)
					}
					if st.delay >= 0 && d.Delay != st.delay {
						t.Fatalf("step %d: delay %s, want %s", i, d.Delay, st.delay)
					}
					if st.delay < 0 && d.Delay < last {
						t.Fatalf("step %d: delay %s shrank from %s", i, d.Delay, last)
					}
					last = d.Delay
					if st.reason != "" && d.Reason != st.reason {
						t.Fatalf("step %d: reason %q, want %q", i, d.Reason, st.reason)
					}
					h.Record(st.inst, d, now)
				case "healthy":
					h.Healthy(st.inst, t0.Add(st.since), now, tt.policy)
				case "never-in-service":
					h.Healthy(st.inst, time.Time{}, now, tt.policy)
				case "forget":
					h.Forget(st.inst)
				case "reset":
					h.Reset()
				default:
					t.Fatalf("bad op %q", st.op)
				}
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	const s = time.Second
	tests := []struct {
		name      string
		base, cap time.Duration
		n         int
		want      time.Duration
	}{
		{"first failure is immediate", s, time.Minute, 1, 0},
		{"second waits base", s, time.Minute, 2, s},
		{"third doubles", s, time.Minute, 3, 2 * s},
		{"tenth", s, time.Hour, 10, 256 * s},
		{"capped", s, time.Minute, 10, time.Minute},
		{"cap below base", 10 * s, s, 2, s},
		{"no base no backoff", 0, time.Minute, 5, 0},
		{"a negative base is no backoff", -s, time.Minute, 5, 0},
		// BackoffBase * 2^(n-2) exactly, up to the cap: with a cap of 3ns,
		// 1ns doubles to 2ns (not yet the cap), then 4ns is capped.
		{"an odd cap: doubling below it is not capped", 1, 3, 3, 2},
		{"an odd cap: doubling past it is capped", 1, 3, 4, 3},
		{"no cap saturates", time.Hour, 0, 200, time.Duration(1<<63 - 1)},
		{"huge n with cap", s, time.Minute, 1 << 30, time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Policy{BackoffBase: tt.base, BackoffCap: tt.cap}
			if got := p.backoff(tt.n); got != tt.want {
				t.Fatalf("backoff(%d) = %s, want %s", tt.n, got, tt.want)
			}
		})
	}
}

func TestDecideDoesNotChangeHistory(t *testing.T) {
	p := DefaultPolicy
	h := History{Restarts: map[string][]time.Time{"i-a": {t0, t0.Add(time.Second)}}, Replacements: []time.Time{t0}, Consecutive: 2}
	before, _ := json.Marshal(h)
	p.Decide(h, "i-a", t0.Add(time.Hour))
	after, _ := json.Marshal(h)
	if string(before) != string(after) {
		t.Fatalf("Decide changed the history:\n%s\n%s", before, after)
	}
}

func TestHistoryStaysSmall(t *testing.T) {
	p := Policy{MaxRestarts: 3, RestartWindow: time.Minute, BackoffBase: time.Second, BackoffCap: time.Second,
		MaxReplacements: 1 << 20, ReplacementWindow: 10 * time.Minute}
	var h History
	now := t0
	for i := 0; i < 10000; i++ {
		inst := fmt.Sprintf("i-%d", i/4) // each instance fails 4 times: 3 restarts then replace
		d := p.Decide(h, inst, now)
		h.Record(inst, d, now)
		if d.Action == Replace {
			h.Forget(inst)
		}
		now = now.Add(5 * time.Second)
	}
	// 10 minutes of replacements at one per 20s, nothing older.
	if n := len(h.Replacements); n > 30 {
		t.Fatalf("%d replacements kept, want at most 30", n)
	}
	if n := len(h.Restarts); n > 1 {
		t.Fatalf("restarts of %d instances kept, want at most 1", n)
	}
}

func TestHistoryKeepMaxWithoutWindows(t *testing.T) {
	p := Policy{MaxRestarts: 0, MaxReplacements: 1 << 30}
	var h History
	for i := 0; i < 3*keepMax; i++ {
		now := t0.Add(time.Duration(i) * time.Second)
		h.Record("i-a", p.Decide(h, "i-a", now), now)
	}
	if n := len(h.Replacements); n != keepMax {
		t.Fatalf("%d replacements kept, want %d", n, keepMax)
	}
	if last := h.Replacements[len(h.Replacements)-1]; !last.Equal(t0.Add(time.Duration(3*keepMax-1) * time.Second)) {
		t.Fatalf("newest replacement dropped: last is %s", last)
	}
}

func TestHistoryJSONRoundTrip(t *testing.T) {
	p := DefaultPolicy
	var h History
	now := t0
	for _, inst := range []string{"i-a", "i-a", "i-a", "i-a", "i-b"} {
		h.Record(inst, p.Decide(h, inst, now), now)
		now = now.Add(time.Second)
	}
	b, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	var back History
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	// The restored record decides exactly as the original.
	for _, inst := range []string{"i-a", "i-b", "i-c"} {
		if a, b := p.Decide(h, inst, now), p.Decide(back, inst, now); a != b {
			t.Fatalf("%s: decision %+v after round trip, want %+v", inst, b, a)
		}
	}
	if back.Consecutive != 5 || len(back.Replacements) != 1 || len(back.Restarts["i-b"]) != 1 {
		t.Fatalf("round trip lost data: %s", b)
	}
}

func TestRecordAmendedDecision(t *testing.T) {
	// The group replaces an abandoned launch even when the policy said
	// restart: the replacement, not the restart, is what counts.
	p := DefaultPolicy
	var h History
	d := p.Decide(h, "i-a", t0)
	d.Action = Replace
	h.Record("i-a", d, t0)
	if len(h.Replacements) != 1 || len(h.Restarts) != 0 || h.Consecutive != 1 {
		t.Fatalf("history %+v, want one replacement and no restart", h)
	}
}

func TestActionString(t *testing.T) {
	for a, want := range map[Action]string{Restart: "restart", Replace: "replace", Impair: "impair", Action(9): "Action(9)"} {
		if got := a.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int(a), got, want)
		}
	}
}

func TestPendingWait(t *testing.T) {
	const s = time.Second
	tests := []struct {
		name      string
		decidedAt time.Duration // since t0
		delay     time.Duration
		now       time.Duration
		want      time.Duration
	}{
		{"no backoff acts at once", 0, 0, 0, 0},
		{"waits the whole backoff when nothing passed", 0, 4 * s, 0, 4 * s},
		// A controller that restarted 1.5s after the decision waits only
		// the rest, not the whole backoff again.
		{"a restart waits only the rest", 0, 4 * s, 1500 * time.Millisecond, 2500 * time.Millisecond},
		{"exactly at the deadline acts", 0, 4 * s, 4 * s, 0},
		{"past the deadline acts at once, never a negative wait", 0, 4 * s, 10 * s, 0},
		{"counted from the decision, not from t0", 10 * s, 2 * s, 11 * s, s},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h History
			d := Decision{Action: Restart, Delay: tt.delay, Reason: "r", Failure: "f"}
			h.Record("i-a", d, t0.Add(tt.decidedAt))
			p, ok := h.Recorded("i-a")
			if !ok {
				t.Fatal("decision not pending after Record")
			}
			if !p.NotBefore.Equal(t0.Add(tt.decidedAt + tt.delay)) {
				t.Fatalf("NotBefore %s, want decided at + delay", p.NotBefore)
			}
			if got := p.Wait(t0.Add(tt.now)); got != tt.want {
				t.Fatalf("Wait = %s, want %s", got, tt.want)
			}
			got := p.Decision(t0.Add(tt.now))
			want := Decision{Action: Restart, Delay: tt.want, Reason: "r", Failure: "f"}
			if got != want {
				t.Fatalf("Decision = %+v, want %+v", got, want)
			}
		})
	}
}

func TestPendingLifecycle(t *testing.T) {
	p := DefaultPolicy
	tests := []struct {
		name   string
		action Action
		after  func(h *History)
		want   bool // still pending
	}{
		{"a restart is pending until acted", Restart, func(*History) {}, true},
		{"a replacement is pending until acted", Replace, func(*History) {}, true},
		{"an impairment is never pending: it acts at once", Impair, func(*History) {}, false},
		{"acted", Restart, func(h *History) { h.Acted("i-a") }, false},
		{"forgotten with the instance", Replace, func(h *History) { h.Forget("i-a") }, false},
		{"reset", Restart, func(h *History) { h.Reset() }, false},
		{"another instance acted", Restart, func(h *History) { h.Acted("i-b") }, true},
		{"survives pruning by the windows", Restart, func(h *History) { h.Healthy("i-a", t0, t0.Add(24*time.Hour), p) }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h History
			h.Record("i-a", Decision{Action: tt.action, Delay: time.Second}, t0)
			tt.after(&h)
			if _, ok := h.Recorded("i-a"); ok != tt.want {
				t.Fatalf("pending %v, want %v (%+v)", ok, tt.want, h)
			}
		})
	}
}

func TestPendingJSONRoundTrip(t *testing.T) {
	var h History
	h.Record("i-a", Decision{Action: Replace, Delay: 3 * time.Second, Reason: "3 restarts", Failure: "application exit 1"}, t0)
	b, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"action":"replace"`) {
		t.Fatalf("action not stored by name: %s", b)
	}
	var back History
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	p, ok := back.Recorded("i-a")
	want, _ := h.Recorded("i-a")
	if !ok || p.Action != want.Action || p.Reason != want.Reason || p.Failure != want.Failure ||
		!p.DecidedAt.Equal(want.DecidedAt) || !p.NotBefore.Equal(want.NotBefore) {
		t.Fatalf("round trip: %+v, want %+v", p, want)
	}
	var bad History
	if err := json.Unmarshal([]byte(`{"pending":{"i-a":{"action":"explode"}}}`), &bad); err == nil {
		t.Fatal("an unknown action was accepted")
	}
}

func TestCloneIsDeep(t *testing.T) {
	var h History
	h.Record("i-a", Decision{Action: Restart}, t0)
	h.Record("i-b", Decision{Action: Replace}, t0)
	c := h.Clone()
	c.Restarts["i-a"][0] = t0.Add(time.Hour)
	c.Replacements[0] = t0.Add(time.Hour)
	c.Record("i-a", Decision{Action: Restart}, t0.Add(time.Second))
	c.Acted("i-b")
	if len(h.Restarts["i-a"]) != 1 || !h.Restarts["i-a"][0].Equal(t0) || h.Consecutive != 2 || !h.Replacements[0].Equal(t0) {
		t.Fatalf("clone shares state with the original: %+v", h)
	}
	if _, ok := h.Recorded("i-b"); !ok {
		t.Fatal("acting on the clone acted on the original")
	}
}

func TestDecideReplace(t *testing.T) {
	const s = time.Second
	p := Policy{MaxRestarts: 3, RestartWindow: time.Hour, BackoffBase: s, BackoffCap: time.Minute, MaxReplacements: 2, ReplacementWindow: time.Hour}
	var h History
	// A launch step that always fails: every instance is abandoned at
	// once. Restarts are never tried, and the replacement budget ends it.
	want := []struct {
		action Action
		delay  time.Duration
		reason string
	}{
		{Replace, 0, "launch abandoned: replacing"},
		{Replace, s, "launch abandoned: replacing (backoff 1s)"},
		{Impair, 0, "3 replacements within 1h0m0s exceed max_replacements 2: group impaired"},
	}
	for i, w := range want {
		inst := fmt.Sprintf("i-%d", i)
		now := t0.Add(time.Duration(i) * time.Minute)
		d := p.DecideReplace(h, inst, "launch abandoned: replacing", now)
		if d.Action != w.action || d.Delay != w.delay || d.Reason != w.reason {
			t.Fatalf("failure %d: %s after %s (%q), want %s after %s (%q)", i, d.Action, d.Delay, d.Reason, w.action, w.delay, w.reason)
		}
		h.Record(inst, d, now)
	}
	// Restarts the instance had do not matter: it cannot be restarted.
	h = History{Restarts: map[string][]time.Time{"i-x": {t0}}}
	if d := p.DecideReplace(h, "i-x", "why", t0.Add(s)); d.Action != Replace {
		t.Fatalf("%s, want replace", d.Action)
	}
}

func TestActionText(t *testing.T) {
	for _, a := range []Action{Restart, Replace, Impair} {
		b, err := a.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var back Action
		if err := back.UnmarshalText(b); err != nil || back != a {
			t.Fatalf("%s: round trip gave %s, %v", a, back, err)
		}
	}
	if _, err := Action(9).MarshalText(); err == nil {
		t.Fatal("Action(9) marshalled")
	}
}
