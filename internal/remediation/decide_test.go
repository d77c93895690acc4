package remediation

import (
	"testing"
	"time"
)

// TestDecide is an incident's next move from its record, whether the
// alarm is OK, and the time: what the live loop does, and what a
// restarted controller does with the record it finds.
func TestDecide(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *time.Time { x := t0.Add(d); return &x }
	spec := &Spec{Runbook: "fix", MaxAttempts: 2, VerifyTimeout: 2 * time.Minute, RetryPause: 30 * time.Second}
	inc := func(f func(*Incident)) *Incident {
		i := &Incident{Status: StatusOpen, Runbook: "fix", Spec: spec}
		f(i)
		return i
	}
	attempt := func(n int, phase string, verifyBy, retryAt *time.Time) func(*Incident) {
		return func(i *Incident) {
			i.Attempts = n
			i.Current = &Attempt{N: n, Execution: "exec-0000000000000001", Phase: phase, VerifyBy: verifyBy, RetryAt: retryAt}
		}
	}
	tests := []struct {
		name string
		inc  *Incident
		ok   bool
		now  time.Time
		want Decision
	}{
		{"a new incident makes its first attempt", inc(func(*Incident) {}), false, t0, Decision{Do: DoAttempt}},
		{"OK before any attempt resolves", inc(func(*Incident) {}), true, t0, Decision{Do: DoResolve}},
		{"no runbook escalates", inc(func(i *Incident) { i.Runbook = "" }), false, t0, Decision{Do: DoEscalate}},
		{"no attempts allowed escalates", inc(func(i *Incident) { i.Spec = &Spec{Runbook: "fix"} }), false, t0, Decision{Do: DoEscalate}},
		{"a running attempt is waited for, not started again", inc(attempt(1, PhaseRunning, nil, nil)), false, t0, Decision{Do: DoWaitExecution}},
		{"a running attempt is waited for even once OK", inc(attempt(1, PhaseRunning, nil, nil)), true, t0, Decision{Do: DoWaitExecution}},
		// The bug: after a restart during verification the runbook ran
		// again at once.
		{"verification goes on until its recorded deadline", inc(attempt(1, PhaseVerifying, at(90*time.Second), nil)), false, t0, Decision{Do: DoVerify, At: t0.Add(90 * time.Second)}},
		{"verification verified when OK", inc(attempt(1, PhaseVerifying, at(90*time.Second), nil)), true, t0, Decision{Do: DoResolve}},
		{"verification past its deadline fails, next attempt a pause after the deadline", inc(attempt(1, PhaseVerifying, at(-10*time.Second), nil)), false, t0, Decision{Do: DoVerifyFailed, At: t0.Add(20 * time.Second)}},
		{"verification ends exactly at its deadline", inc(attempt(1, PhaseVerifying, at(0), nil)), false, t0, Decision{Do: DoVerifyFailed, At: t0.Add(30 * time.Second)}},
		{"a failed attempt waits the rest of the pause", inc(attempt(1, PhaseFailed, nil, at(12*time.Second))), false, t0, Decision{Do: DoPause, At: t0.Add(12 * time.Second)}},
		{"a failed attempt whose pause is over retries", inc(attempt(1, PhaseFailed, nil, at(-time.Second))), false, t0, Decision{Do: DoAttempt}},
		{"the last attempt failed: escalate at once", inc(attempt(2, PhaseFailed, nil, at(12*time.Second))), false, t0, Decision{Do: DoEscalate}},
		{"attempts count from the record", inc(attempt(2, PhaseVerifying, at(-time.Second), nil)), false, t0, Decision{Do: DoVerifyFailed, At: t0.Add(29 * time.Second)}},
		{"escalated waits for OK", inc(func(i *Incident) { attempt(2, PhaseFailed, nil, nil)(i); i.Status = StatusEscalated }), false, t0, Decision{Do: DoAwaitOK}},
		{"escalated resolves when OK", inc(func(i *Incident) { i.Status = StatusEscalated }), true, t0, Decision{Do: DoResolve}},
		{"a recorded escalation not known sent is sent first", inc(func(i *Incident) { i.Status, i.Unsent = StatusEscalated, []string{"trigger"} }), true, t0, Decision{Do: DoNotify}},
		{"resolved is done", inc(func(i *Incident) { i.Status = StatusResolved }), true, t0, Decision{Do: DoDone}},
		{"a notification recorded before the incident was resolved is still sent", inc(func(i *Incident) { i.Status, i.Unsent = StatusResolved, []string{"trigger"} }), true, t0, Decision{Do: DoNotify}},
		{"no spec recorded: no attempt allowed, escalate", inc(func(i *Incident) { i.Spec = nil }), false, t0, Decision{Do: DoEscalate}},
		{"without an attempt record, spent attempts escalate", inc(func(i *Incident) { i.Attempts = 2 }), false, t0, Decision{Do: DoEscalate}},
		{"without an attempt record, an attempt left is made", inc(func(i *Incident) { i.Attempts = 1 }), false, t0, Decision{Do: DoAttempt}},
		{"verifying without its deadline retries now", inc(attempt(1, PhaseVerifying, nil, nil)), false, t0, Decision{Do: DoAttempt}},
		{"a failed attempt without its retry time retries now", inc(attempt(1, PhaseFailed, nil, nil)), false, t0, Decision{Do: DoAttempt}},
		{"a failed attempt retries exactly at its retry time", inc(attempt(1, PhaseFailed, nil, at(0))), false, t0, Decision{Do: DoAttempt}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Decide(tt.inc, tt.ok, tt.now); got != tt.want {
				t.Fatalf("Decide = %s %s, want %s %s", got.Do, got.At.Format(time.RFC3339), tt.want.Do, tt.want.At.Format(time.RFC3339))
			}
		})
	}
}

// TestUpgrade: an incident recorded by a controller that kept only its
// timeline resumes from its last attempt's entries.
func TestUpgrade(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	spec := &Spec{MaxAttempts: 3, VerifyTimeout: time.Minute, RetryPause: 10 * time.Second}
	entries := func(es ...Entry) []Entry { return append([]Entry{{Time: t0, Type: EntryDetected}}, es...) }
	recorded := &Attempt{N: 1, Execution: "exec-9", Phase: PhaseVerifying, StartedAt: t0, VerifyBy: ptr(t0.Add(time.Hour))}
	tests := []struct {
		name     string
		attempts int
		current  *Attempt // the record already there
		timeline []Entry
		want     *Attempt // nil: none
	}{
		{"running", 1, nil, entries(Entry{Time: t0, Type: EntryAttempt, Attempt: 1, Execution: "exec-1"}),
			&Attempt{N: 1, Execution: "exec-1", Phase: PhaseRunning, StartedAt: t0}},
		{"verifying from when the runbook succeeded", 1, nil, entries(
			Entry{Time: t0, Type: EntryAttempt, Attempt: 1, Execution: "exec-1"},
			Entry{Time: t0.Add(5 * time.Second), Type: EntryOutput, Attempt: 1}),
			&Attempt{N: 1, Execution: "exec-1", Phase: PhaseVerifying, StartedAt: t0, VerifyBy: ptr(t0.Add(65 * time.Second))}},
		{"failed, second attempt", 2, nil, entries(
			Entry{Time: t0, Type: EntryAttempt, Attempt: 1, Execution: "exec-1"},
			Entry{Time: t0.Add(time.Second), Type: EntryFailed, Attempt: 1},
			Entry{Time: t0.Add(20 * time.Second), Type: EntryAttempt, Attempt: 2, Execution: "exec-2"},
			Entry{Time: t0.Add(21 * time.Second), Type: EntryFailed, Attempt: 2}),
			&Attempt{N: 2, Execution: "exec-2", Phase: PhaseFailed, StartedAt: t0.Add(20 * time.Second), RetryAt: ptr(t0.Add(31 * time.Second))}},
		{"did not start", 1, nil, entries(Entry{Time: t0, Type: EntryFailed, Attempt: 1}),
			&Attempt{N: 1, Phase: PhaseFailed, RetryAt: ptr(t0.Add(10 * time.Second))}},
		{"an incident with its record is left as recorded", 1, recorded, entries(Entry{Time: t0, Type: EntryFailed, Attempt: 1}), recorded},
		{"no attempt yet: no record", 0, nil, entries(Entry{Time: t0, Type: EntryFailed, Attempt: 0}), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inc := &Incident{Attempts: tt.attempts, Spec: spec, Timeline: tt.timeline, Current: tt.current}
			upgrade(inc)
			if tt.want == nil || inc.Current == nil {
				if inc.Current != tt.want {
					t.Fatalf("upgrade = %+v, want %+v", inc.Current, tt.want)
				}
				return
			}
			got, want := *inc.Current, *tt.want
			if got.N != tt.want.N || got.Execution != tt.want.Execution || got.Phase != tt.want.Phase || !got.StartedAt.Equal(tt.want.StartedAt) ||
				!sameTime(got.VerifyBy, tt.want.VerifyBy) || !sameTime(got.RetryAt, tt.want.RetryAt) {
				t.Fatalf("upgrade = %+v, want %+v", got, want)
			}
		})
	}
}

func ptr(t time.Time) *time.Time { return &t }

func sameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}
