package group

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/autoheal/autoheal/internal/heal"
	"github.com/autoheal/autoheal/internal/health"
	"github.com/autoheal/autoheal/internal/provider"
)

func TestDecide(t *testing.T) {
	spent := heal.History{Replacements: []time.Time{t0, t0}}
	tests := []struct {
		name    string
		h       heal.History
		failure string
		want    heal.Action
		reason  string
	}{
		{"a crash is restarted in place", heal.History{}, "application exit 1", heal.Restart, "restart 1/2 within 1h0m0s"},
		{"an abandoned launch is replaced", heal.History{}, "abandon: user_data failed", heal.Replace, "launch abandoned: replacing"},
		{"an abandoned launch with the replacement budget spent impairs", spent, "abandon: launch hook h failed", heal.Impair,
			"3 replacements within 1h0m0s exceed max_replacements 2: group impaired"},
		{"only a failure that starts with the mark is an abandon", heal.History{}, "exec health check unhealthy: abandon: no", heal.Restart, "restart 1/2 within 1h0m0s"},
		{"an instance whose host left the cluster is replaced", heal.History{}, hostLostFailure("h2", provider.ExitStatus{Error: "lease lapsed", Lost: true}), heal.Replace, "its host left the cluster: replacing"},
		{"a lost host's instance is replaced without backoff", heal.History{Consecutive: 3}, hostLostFailure("h2", provider.ExitStatus{Lost: true}), heal.Replace, "its host left the cluster: replacing"},
		{"a lost host's instance with the replacement budget spent impairs", spent, hostLostFailure("h2", provider.ExitStatus{Lost: true}), heal.Impair,
			"3 replacements within 1h0m0s exceed max_replacements 2: group impaired"},
		{"only a failure that starts with the mark is a lost host", heal.History{}, "application exit 1: lost: no", heal.Restart, "restart 1/2 within 1h0m0s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := decide(policy, tt.h, "i-a", tt.failure, t0.Add(time.Minute))
			if d.Action != tt.want || d.Reason != tt.reason || d.Failure != tt.failure {
				t.Fatalf("%s %q (failure %q), want %s %q", d.Action, d.Reason, d.Failure, tt.want, tt.reason)
			}
			// The reason names a backoff exactly when there is one.
			if (d.Delay > 0) != strings.Contains(d.Reason, "backoff") {
				t.Fatalf("delay %v with reason %q", d.Delay, d.Reason)
			}
		})
	}
}

func TestServing(t *testing.T) {
	base := iv("i-a", InService, 0)
	tests := []struct {
		name string
		in   instanceView
		want bool
	}{
		{"InService serves", base, true},
		{"Pending:Proceed does not serve yet", iv("i-a", PendingProceed, 0), false},
		{"Terminating does not serve", iv("i-a", Terminating, 0), false},
		{"a failure stops it at once", failed(base, "application exit 1"), false},
		{"a termination asked stops it", with(base, func(v *instanceView) { v.Terminate = "terminated by operator" }), false},
		{"an operator's restart stops it", with(base, func(v *instanceView) { v.Restarting = true }), false},
		{"a fenced process serves nobody", with(base, func(v *instanceView) { v.Fenced = true }), false},
		{"a restart asked but not begun still serves", with(base, func(v *instanceView) { v.RestartAsked = true }), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := serving(tt.in); got != tt.want {
				t.Fatalf("serving = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestAggregate(t *testing.T) {
	H, U, I := health.Healthy, health.Unhealthy, health.Initial
	tests := []struct {
		name     string
		statuses map[int]health.Status
		checks   int
		want     health.Status
	}{
		{"no checks: healthy", nil, 0, H},
		{"all healthy", map[int]health.Status{0: H, 1: H}, 2, H},
		{"one initial: initial", map[int]health.Status{0: H, 1: I}, 2, I},
		{"a check without a status yet is initial", map[int]health.Status{0: H}, 2, I},
		{"one unhealthy: unhealthy", map[int]health.Status{0: H, 1: U}, 2, U},
		{"unhealthy beats initial, whatever the order", map[int]health.Status{0: U, 1: I}, 2, U},
		{"unhealthy beats initial after it", map[int]health.Status{0: I, 1: U}, 2, U},
		{"statuses of checks no longer configured are ignored", map[int]health.Status{0: H, 1: U}, 1, H},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := aggregate(tt.statuses, tt.checks); got != tt.want {
				t.Fatalf("aggregate = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestReady(t *testing.T) {
	H, I := health.Healthy, health.Initial
	tests := []struct {
		name     string
		running  bool
		statuses map[int]health.Status
		checks   int
		want     bool
	}{
		{"running without checks", true, nil, 0, true},
		{"not running without checks", false, nil, 0, false},
		{"running and every check healthy", true, map[int]health.Status{0: H, 1: H}, 2, true},
		{"running, one check not yet healthy", true, map[int]health.Status{0: H, 1: I}, 2, false},
		{"healthy checks but the process is gone", false, map[int]health.Status{0: H}, 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ready(tt.running, tt.statuses, tt.checks); got != tt.want {
				t.Fatalf("ready = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCheckFailure(t *testing.T) {
	unhealthy := health.Transition{Status: health.Unhealthy, Output: "HTTP 500"}
	healthy := health.Transition{Status: health.Healthy, Output: "HTTP 200"}
	const want = "http health check unhealthy: HTTP 500"
	tests := []struct {
		name string
		in   instanceView
		tr   health.Transition
		want string
	}{
		{"InService fails", iv("i-a", InService, 0), unhealthy, want},
		{"Pending:Proceed fails", iv("i-a", PendingProceed, 0), unhealthy, want},
		{"a healthy transition is no failure", iv("i-a", InService, 0), healthy, ""},
		{"Pending:Wait cannot fail by a check", iv("i-a", PendingWait, 0), unhealthy, ""},
		{"Terminating cannot fail by a check", iv("i-a", Terminating, 0), unhealthy, ""},
		{"a failure being handled is not replaced", failed(iv("i-a", InService, 0), "application exit 1"), unhealthy, ""},
		{"not while terminating on request", with(iv("i-a", InService, 0), func(v *instanceView) { v.Terminate = "x" }), unhealthy, ""},
		{"not while an operator restarts it", with(iv("i-a", InService, 0), func(v *instanceView) { v.Restarting = true }), unhealthy, ""},
		{"an output of exactly 200 bytes is kept whole", iv("i-a", InService, 0), health.Transition{Status: health.Unhealthy, Output: string(make([]byte, 200))},
			"http health check unhealthy: " + string(make([]byte, 200))},
		{"the output is cut at 200 bytes", iv("i-a", InService, 0), health.Transition{Status: health.Unhealthy, Output: string(make([]byte, 300))},
			"http health check unhealthy: " + string(make([]byte, 200)) + "…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := checkFailure(tt.in, "http", tt.tr); got != tt.want {
				t.Fatalf("checkFailure = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestExitFailure(t *testing.T) {
	tests := []struct {
		name        string
		in          instanceView
		wantFailure string
		wantPlanned bool
	}{
		{"an InService exit is a failure", iv("i-a", InService, 0), "application exit 1", false},
		{"a Pending:Proceed exit is a failure", iv("i-a", PendingProceed, 0), "application exit 1", false},
		{"stopped while Terminating: planned", iv("i-a", Terminating, 0), "", true},
		{"stopped while Terminating:Wait: planned", iv("i-a", TerminatingWait, 0), "", true},
		{"after Terminated: planned", iv("i-a", Terminated, 0), "", true},
		{"a termination asked: planned", with(iv("i-a", InService, 0), func(v *instanceView) { v.Terminate = "x" }), "", true},
		{"an operator's restart: planned", with(iv("i-a", InService, 0), func(v *instanceView) { v.Restarting = true }), "", true},
		{"a failure being handled is kept", failed(iv("i-a", InService, 0), "http health check unhealthy: x"), "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, planned := exitFailure(tt.in, "exit 1")
			if f != tt.wantFailure || planned != tt.wantPlanned {
				t.Fatalf("exitFailure = %q planned %v, want %q planned %v", f, planned, tt.wantFailure, tt.wantPlanned)
			}
		})
	}
}

func TestCapacityOnLoad(t *testing.T) {
	c := func(min, max, desired int) capacity { return capacity{Min: min, Max: max, Desired: desired} }
	tests := []struct {
		name        string
		stored      capacity
		file        capacity
		lastFile    string
		want        capacity
		wantChanged bool
	}{
		{"nothing changed", c(0, 3, 2), c(0, 3, 2), "2", c(0, 3, 2), false},
		{"a scaled desired survives a restart", c(0, 3, 3), c(0, 3, 2), "2", c(0, 3, 3), false},
		{"the file's desired changed: the file wins", c(0, 3, 3), c(0, 3, 1), "2", c(0, 3, 1), true},
		{"the file's desired changed to the stored one: nothing to write", c(0, 3, 1), c(0, 3, 1), "2", c(0, 3, 1), false},
		{"no record of the file's desired: the stored one stands", c(0, 3, 3), c(0, 3, 1), "", c(0, 3, 3), false},
		{"min and max always come from the file", c(0, 3, 2), c(1, 5, 2), "2", c(1, 5, 2), true},
		{"a stored desired below the file's min is raised", c(0, 5, 1), c(2, 5, 1), "1", c(2, 5, 2), true},
		{"a stored desired above the file's max is lowered", c(0, 5, 5), c(0, 3, 1), "1", c(0, 3, 3), true},
		{"the file's new desired is clamped too", c(0, 5, 1), c(1, 3, 3), "1", c(1, 3, 3), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, changed := capacityOnLoad(tt.stored, tt.file, tt.lastFile)
			if got != tt.want || changed != tt.wantChanged {
				t.Fatalf("capacityOnLoad = %+v changed %v, want %+v changed %v", got, changed, tt.want, tt.wantChanged)
			}
		})
	}
}

// TestLedgerReadsTheOldFormat: a group record written before the ledger
// (the heal history alone) still loads, and the ledger keeps that format
// for the history.
func TestLedgerReadsTheOldFormat(t *testing.T) {
	old := fmt.Sprintf(`{"replacements":[%q],"consecutive":2}`, t0.Format(time.RFC3339Nano))
	var l ledger
	if err := json.Unmarshal([]byte(old), &l); err != nil {
		t.Fatal(err)
	}
	if l.Consecutive != 2 || len(l.Replacements) != 1 || !l.Replacements[0].Equal(t0) {
		t.Fatalf("ledger %+v from %s", l, old)
	}
	l.Scripts = map[string]map[string]string{"i-a": {"user_data": scriptStarted}}
	b, _ := json.Marshal(l)
	var h heal.History
	if err := json.Unmarshal(b, &h); err != nil || h.Consecutive != 2 {
		t.Fatalf("history from %s: %+v %v", b, h, err)
	}
}
