package group

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/autoheal/autoheal/internal/heal"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// policy is the heal policy of the plan tests: restarts in place up to 2,
// backoff from 1s, reset after 1m in service, 2 replacements.
var policy = heal.Policy{MaxRestarts: 2, RestartWindow: time.Hour, BackoffBase: time.Second, BackoffCap: time.Minute,
	ResetAfter: time.Minute, MaxReplacements: 2, ReplacementWindow: time.Hour}

// iv is an instance view launched at t0+at.
func iv(id, state string, at time.Duration) instanceView {
	return instanceView{ID: id, State: state, LaunchedAt: t0.Add(at)}
}

func with(in instanceView, f func(*instanceView)) instanceView { f(&in); return in }

func started(in instanceView) instanceView {
	return with(in, func(v *instanceView) { v.Started = true })
}

func failed(in instanceView, failure string) instanceView {
	return with(in, func(v *instanceView) { v.Failure = failure })
}

// recorded is a history with a decision recorded for id at t0+at.
func recorded(id string, a heal.Action, at, delay time.Duration) heal.History {
	var h heal.History
	h.Record(id, heal.Decision{Action: a, Delay: delay, Reason: "recorded reason", Failure: "recorded failure"}, t0.Add(at))
	return h
}

func TestPlan(t *testing.T) {
	const s = time.Second
	tests := []struct {
		name string
		v    view
		now  time.Duration // since t0
		want step
		// wantConsecutive checks the history a fresh decision was made on.
		wantConsecutive *int
	}{
		{
			name: "capacity met: nothing to do",
			v:    view{Status: Active, Desired: 1, Instances: []instanceView{iv("i-a", InService, 0)}},
			want: step{},
		},
		{
			name: "state dir not writable: a failed instance waits, running ones keep running",
			v:    view{Status: Active, Desired: 2, Policy: policy, NotWritable: true, Instances: []instanceView{failed(iv("i-a", InService, 0), "application exit 1"), iv("i-b", InService, s)}},
			want: step{},
		},
		{
			name: "state dir not writable: no launch below desired",
			v:    view{Status: Active, Desired: 2, NotWritable: true, Instances: []instanceView{iv("i-a", InService, 0)}},
			want: step{},
		},
		{
			name: "state dir not writable: a recorded decision past its deadline waits",
			v:    view{Status: Active, Desired: 1, Policy: policy, NotWritable: true, History: recorded("i-a", heal.Restart, 0, s), Instances: []instanceView{iv("i-a", Pending, 0)}},
			now:  5 * s,
			want: step{},
		},
		{
			name: "state dir not writable: an operator's termination, restart and an interrupted launch wait",
			v: view{Status: Active, Desired: 3, NotWritable: true, Instances: []instanceView{
				with(iv("i-a", InService, 0), func(v *instanceView) { v.Terminate = "terminated by operator" }),
				with(iv("i-b", InService, s), func(v *instanceView) { v.RestartAsked = true }),
				iv("i-c", PendingWait, 2*s)}},
			want: step{},
		},
		{
			name: "below desired: launch",
			v:    view{Status: Active, Desired: 2, Instances: []instanceView{iv("i-a", InService, 0)}},
			want: step{Kind: stepLaunch, Cause: "capacity 1 below desired 2"},
		},
		{
			name: "terminated instances do not count toward capacity",
			v:    view{Status: Active, Desired: 1, Instances: []instanceView{iv("i-a", Terminated, 0)}},
			want: step{Kind: stepLaunch, Cause: "capacity 0 below desired 1"},
		},
		{
			name: "below desired before NotBefore: wait until it",
			v:    view{Status: Active, Desired: 1, NotBefore: t0.Add(2 * s)},
			now:  2*s - 1,
			want: step{Kind: stepWait, At: t0.Add(2 * s)},
		},
		{
			name: "below desired at NotBefore: launch",
			v:    view{Status: Active, Desired: 1, NotBefore: t0.Add(2 * s)},
			now:  2 * s,
			want: step{Kind: stepLaunch, Cause: "capacity 0 below desired 1"},
		},
		{
			name: "above desired: scale in",
			v:    view{Status: Active, Desired: 1, Instances: []instanceView{iv("i-a", InService, 0), iv("i-b", InService, s)}},
			want: step{Kind: stepScaleIn, Instance: "i-b", Cause: "capacity 2 above desired 1"},
		},
		{
			name: "an Impaired group launches nothing",
			v:    view{Status: Impaired, Desired: 1},
			want: step{},
		},
		{
			name: "an Impaired group does not scale in",
			v:    view{Status: Impaired, Desired: 0, Instances: []instanceView{iv("i-a", InService, 0)}},
			want: step{},
		},
		{
			name: "an operator's termination relaunches",
			v:    view{Status: Active, Desired: 1, Instances: []instanceView{with(iv("i-a", InService, 0), func(v *instanceView) { v.Terminate = "terminated by operator" })}},
			want: step{Kind: stepTerminate, Instance: "i-a", Cause: "terminated by operator", Relaunch: true},
		},
		{
			name: "a termination with decrement does not relaunch",
			v: view{Status: Active, Desired: 0, Instances: []instanceView{with(iv("i-a", InService, 0), func(v *instanceView) {
				v.Terminate, v.Decrement = "terminated by operator", true
			})}},
			want: step{Kind: stepTerminate, Instance: "i-a", Cause: "terminated by operator"},
		},
		{
			name: "a planned termination beats a failure",
			v: view{Status: Active, Desired: 1, Policy: policy, Instances: []instanceView{with(iv("i-a", InService, 0), func(v *instanceView) {
				v.Terminate, v.Failure = "terminated by operator", "application exit 1"
			})}},
			want: step{Kind: stepTerminate, Instance: "i-a", Cause: "terminated by operator", Relaunch: true},
		},
		{
			name: "a planned termination beats a recorded decision",
			v: view{Status: Active, Desired: 1, Policy: policy, History: recorded("i-a", heal.Restart, 0, 10*s),
				Instances: []instanceView{with(iv("i-a", Pending, 0), func(v *instanceView) { v.Terminate = "terminated by operator" })}},
			want: step{Kind: stepTerminate, Instance: "i-a", Cause: "terminated by operator", Relaunch: true},
		},
		{
			name:            "first failure: restart in place at once",
			v:               view{Status: Active, Desired: 1, Policy: policy, Instances: []instanceView{failed(iv("i-a", InService, 0), "application exit 1")}},
			want:            step{Kind: stepHeal, Instance: "i-a", Decision: heal.Decision{Action: heal.Restart, Reason: "restart 1/2 within 1h0m0s", Failure: "application exit 1"}},
			wantConsecutive: ptr(0),
		},
		{
			name: "a failure that must back off is recorded first",
			v: view{Status: Active, Desired: 1, Policy: policy, History: heal.History{Consecutive: 1},
				Instances: []instanceView{failed(iv("i-a", InService, 0), "application exit 1")}},
			want: step{Kind: stepRecord, Instance: "i-a", Decision: heal.Decision{Action: heal.Restart, Delay: s,
				Reason: "restart 1/2 within 1h0m0s (backoff 1s)", Failure: "application exit 1"}},
			wantConsecutive: ptr(1),
		},
		{
			name: "a decision that impairs the group is recorded first",
			v: view{Status: Active, Desired: 1, Policy: heal.Policy{MaxRestarts: 0, MaxReplacements: 0},
				Instances: []instanceView{failed(iv("i-a", InService, 0), "application exit 1")}},
			want: step{Kind: stepRecord, Instance: "i-a", Decision: heal.Decision{Action: heal.Impair,
				Reason: "1 replacement in total exceeds max_replacements 0: group impaired", Failure: "application exit 1"}},
			wantConsecutive: ptr(0),
		},
		{
			name: "an abandoned launch is replaced, not restarted",
			v:    view{Status: Active, Desired: 1, Policy: policy, Instances: []instanceView{failed(iv("i-a", PendingWait, 0), "abandon: user_data failed")}},
			want: step{Kind: stepHeal, Instance: "i-a", Decision: heal.Decision{Action: heal.Replace,
				Reason: "launch abandoned: replacing", Failure: "abandon: user_data failed"}},
			wantConsecutive: ptr(0),
		},
		{
			name: "served reset_after before failing: the series starts over",
			v: view{Status: Active, Desired: 1, Policy: policy, History: heal.History{Consecutive: 3},
				Instances: []instanceView{with(failed(iv("i-a", InService, 0), "application exit 1"), func(v *instanceView) { v.InServiceSince = t0 })}},
			now:             time.Minute,
			want:            step{Kind: stepHeal, Instance: "i-a", Decision: heal.Decision{Action: heal.Restart, Reason: "restart 1/2 within 1h0m0s", Failure: "application exit 1"}},
			wantConsecutive: ptr(0),
		},
		{
			name: "a decision prunes a copy of the history, never the view's",
			v: view{Status: Active, Desired: 1, Policy: policy,
				History:   heal.History{Restarts: map[string][]time.Time{"i-a": {t0.Add(-2 * time.Hour)}}, Replacements: []time.Time{t0.Add(-2 * time.Hour)}},
				Instances: []instanceView{with(failed(iv("i-a", InService, 0), "application exit 1"), func(v *instanceView) { v.InServiceSince = t0 })}},
			now:             time.Minute,
			want:            step{Kind: stepHeal, Instance: "i-a", Decision: heal.Decision{Action: heal.Restart, Reason: "restart 1/2 within 1h0m0s", Failure: "application exit 1"}},
			wantConsecutive: ptr(0),
		},
		{
			name: "served less than reset_after: the backoff goes on",
			v: view{Status: Active, Desired: 1, Policy: policy, History: heal.History{Consecutive: 3},
				Instances: []instanceView{with(failed(iv("i-a", InService, 0), "application exit 1"), func(v *instanceView) { v.InServiceSince = t0 })}},
			now: time.Minute - 1,
			want: step{Kind: stepRecord, Instance: "i-a", Decision: heal.Decision{Action: heal.Restart, Delay: 4 * s,
				Reason: "restart 1/2 within 1h0m0s (backoff 4s)", Failure: "application exit 1"}},
			wantConsecutive: ptr(3),
		},
		{
			name: "a failed instance of an Impaired group is retired",
			v:    view{Status: Impaired, Desired: 1, Policy: policy, Instances: []instanceView{failed(iv("i-a", InService, 0), "application exit 1")}},
			want: step{Kind: stepRetire, Instance: "i-a", Cause: "group impaired: application exit 1"},
		},
		{
			name: "a recorded decision of an Impaired group is retired with its failure",
			v:    view{Status: Impaired, Desired: 1, Policy: policy, History: recorded("i-a", heal.Restart, 0, s), Instances: []instanceView{iv("i-a", Pending, 0)}},
			want: step{Kind: stepRetire, Instance: "i-a", Cause: "group impaired: recorded failure"},
		},
		{
			name: "a recorded decision waits until its deadline",
			v:    view{Status: Active, Desired: 1, Policy: policy, History: recorded("i-a", heal.Restart, 0, 4*s), Instances: []instanceView{iv("i-a", Pending, 0)}},
			now:  4*s - 1,
			want: step{Kind: stepWait, At: t0.Add(4 * s)},
		},
		{
			name: "a recorded decision acts at its deadline, as recorded",
			v:    view{Status: Active, Desired: 1, Policy: policy, History: recorded("i-a", heal.Replace, 0, 4*s), Instances: []instanceView{iv("i-a", Terminating, 0)}},
			now:  4 * s,
			want: step{Kind: stepHeal, Instance: "i-a", Decision: heal.Decision{Action: heal.Replace, Reason: "recorded reason", Failure: "recorded failure"}},
		},
		{
			name: "a recorded decision is not decided again when the failure is seen again",
			v: view{Status: Active, Desired: 1, Policy: policy, History: recorded("i-a", heal.Restart, 0, 4*s),
				Instances: []instanceView{failed(iv("i-a", InService, 0), "instance lost while the controller was down")}},
			now:  s,
			want: step{Kind: stepWait, At: t0.Add(4 * s)},
		},
		{
			name: "an operator's restart",
			v:    view{Status: Active, Desired: 1, Instances: []instanceView{with(iv("i-a", InService, 0), func(v *instanceView) { v.RestartAsked = true })}},
			want: step{Kind: stepRestart, Instance: "i-a"},
		},
		{
			name: "a failure beats an operator's restart",
			v: view{Status: Active, Desired: 1, Policy: policy, Instances: []instanceView{with(failed(iv("i-a", InService, 0), "application exit 1"), func(v *instanceView) {
				v.RestartAsked = true
			})}},
			want:            step{Kind: stepHeal, Instance: "i-a", Decision: heal.Decision{Action: heal.Restart, Reason: "restart 1/2 within 1h0m0s", Failure: "application exit 1"}},
			wantConsecutive: ptr(0),
		},
		{
			name: "a failure beats resuming a launch",
			v:    view{Status: Active, Desired: 1, Policy: policy, Instances: []instanceView{failed(iv("i-a", PendingWait, 0), "abandon: launch hook h failed")}},
			want: step{Kind: stepHeal, Instance: "i-a", Decision: heal.Decision{Action: heal.Replace,
				Reason: "launch abandoned: replacing", Failure: "abandon: launch hook h failed"}},
			wantConsecutive: ptr(0),
		},
		{
			name: "Pending resumes its launch",
			v:    view{Status: Active, Desired: 1, Instances: []instanceView{iv("i-a", Pending, 0)}},
			want: step{Kind: stepResumeLaunch, Instance: "i-a"},
		},
		{
			name: "Pending:Wait resumes its launch",
			v:    view{Status: Active, Desired: 1, Instances: []instanceView{iv("i-a", PendingWait, 0)}},
			want: step{Kind: stepResumeLaunch, Instance: "i-a"},
		},
		{
			name: "Pending:Proceed waits for its checks",
			v:    view{Status: Active, Desired: 1, Instances: []instanceView{started(iv("i-a", PendingProceed, 0))}},
			want: step{Kind: stepWaitHealthy, Instance: "i-a"},
		},
		{
			// !Started qualifies Pending:Proceed only: Pending and
			// Pending:Wait resume their launch whatever Started says.
			name: "Pending:Wait resumes its launch even with an application",
			v:    view{Status: Active, Desired: 1, Instances: []instanceView{started(iv("i-a", PendingWait, 0))}},
			want: step{Kind: stepResumeLaunch, Instance: "i-a"},
		},
		{
			name: "Pending:Proceed that never started resumes its launch",
			v:    view{Status: Active, Desired: 1, Instances: []instanceView{iv("i-a", PendingProceed, 0)}},
			want: step{Kind: stepResumeLaunch, Instance: "i-a"},
		},
		{
			name: "Terminating resumes its termination",
			v:    view{Status: Active, Desired: 1, Instances: []instanceView{iv("i-a", Terminating, 0)}},
			want: step{Kind: stepResumeTermination, Instance: "i-a", Cause: "resuming termination"},
		},
		{
			name: "Terminating:Wait resumes its termination",
			v:    view{Status: Active, Desired: 0, Instances: []instanceView{iv("i-a", TerminatingWait, 0)}},
			want: step{Kind: stepResumeTermination, Instance: "i-a", Cause: "resuming termination"},
		},
		{
			name: "an Impaired group still finishes interrupted work",
			v:    view{Status: Impaired, Desired: 1, Instances: []instanceView{iv("i-a", Terminating, 0)}},
			want: step{Kind: stepResumeTermination, Instance: "i-a", Cause: "resuming termination"},
		},
		{
			name: "instance work comes before capacity",
			v:    view{Status: Active, Desired: 3, Instances: []instanceView{started(iv("i-a", PendingProceed, 0))}},
			want: step{Kind: stepWaitHealthy, Instance: "i-a"},
		},
		{
			name: "the oldest instance's work comes first",
			v:    view{Status: Active, Desired: 2, Instances: []instanceView{iv("i-a", Terminating, 0), iv("i-b", Pending, s)}},
			want: step{Kind: stepResumeTermination, Instance: "i-a", Cause: "resuming termination"},
		},
		{
			name: "a terminated instance has no work",
			v:    view{Status: Active, Desired: 1, Policy: policy, Instances: []instanceView{failed(iv("i-a", Terminated, 0), "application exit 1"), iv("i-b", InService, s)}},
			want: step{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, _ := json.Marshal(tt.v.History)
			got := plan(tt.v, t0.Add(tt.now))
			h := got.History
			got.History = nil
			// The decision's exported fields (heal keeps window horizons
			// of its own).
			d := got.Decision
			got.Decision = heal.Decision{Action: d.Action, Delay: d.Delay, Reason: d.Reason, Failure: d.Failure}
			if got != tt.want {
				t.Fatalf("plan = %+v\n  want %+v", got, tt.want)
			}
			switch {
			case tt.wantConsecutive == nil && h != nil:
				t.Fatalf("step carries a history: a recorded decision must be carried out as recorded")
			case tt.wantConsecutive != nil && h == nil:
				t.Fatalf("fresh decision without the history it was made on")
			case h != nil && h.Consecutive != *tt.wantConsecutive:
				t.Fatalf("decided on a history with %d consecutive failures, want %d", h.Consecutive, *tt.wantConsecutive)
			}
			if after, _ := json.Marshal(tt.v.History); string(after) != string(before) {
				t.Fatalf("plan changed the view's history:\n%s\n%s", before, after)
			}
		})
	}
}

func TestScaleInVictim(t *testing.T) {
	const s = time.Second
	tests := []struct {
		name string
		ins  []instanceView
		want string
	}{
		{"none", nil, ""},
		{"only terminated instances: none", []instanceView{iv("i-a", Terminated, 0)}, ""},
		{"the newest of those in service", []instanceView{iv("i-a", InService, 0), iv("i-c", InService, 2*s), iv("i-b", InService, s)}, "i-c"},
		{"one not in service before a newer one in service", []instanceView{iv("i-a", Pending, 0), iv("i-b", InService, s)}, "i-a"},
		{"one not in service before an older one in service", []instanceView{iv("i-a", InService, 0), iv("i-b", PendingProceed, s)}, "i-b"},
		{"the newest of those not in service", []instanceView{iv("i-a", Pending, 0), iv("i-b", PendingWait, s), iv("i-c", InService, 2*s)}, "i-b"},
		{"never a terminated one, however new", []instanceView{iv("i-a", InService, 0), iv("i-b", Terminated, s)}, "i-a"},
		{"the newest, whatever its id", []instanceView{iv("i-b", InService, 0), iv("i-a", InService, s)}, "i-a"},
		{"same launch time: the greatest id", []instanceView{iv("i-b", InService, 0), iv("i-c", InService, 0), iv("i-a", InService, 0)}, "i-c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Whatever order the instances come in.
			for _, ins := range [][]instanceView{tt.ins, reversed(tt.ins)} {
				if got := scaleInVictim(ins); got != tt.want {
					t.Fatalf("victim %q, want %q", got, tt.want)
				}
			}
		})
	}
}

func TestSortViews(t *testing.T) {
	// i-0 is the newest although its id is the least: launch time first.
	ins := []instanceView{iv("i-0", InService, 2*time.Second), iv("i-c", InService, time.Second), iv("i-b", InService, 0), iv("i-a", InService, 0)}
	sortViews(ins)
	var got []string
	for _, in := range ins {
		got = append(got, in.ID)
	}
	if strings.Join(got, " ") != "i-a i-b i-c i-0" {
		t.Fatalf("order %v, want oldest first, then by id", got)
	}
}

func TestStepKindString(t *testing.T) {
	if stepResumeTermination.String() != "resume-termination" || stepKind(99).String() != "stepKind(99)" {
		t.Fatal(stepResumeTermination.String(), stepKind(99).String())
	}
}

func reversed[T any](s []T) []T {
	out := make([]T, len(s))
	for i, x := range s {
		out[len(s)-1-i] = x
	}
	return out
}

func ptr[T any](v T) *T { return &v }
