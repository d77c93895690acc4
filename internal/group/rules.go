package group

import (
	"fmt"
	"strings"
	"time"

	"github.com/autoheal/autoheal/internal/heal"
	"github.com/autoheal/autoheal/internal/health"
)

// The rules below are the group's small decisions, pure functions of
// values, each tested by name in rules_test.go.

// abandonPrefix marks the failure of a launch abandoned by a failed step
// (volume init, user_data, a launch hook with default_result abandon).
const abandonPrefix = "abandon: "

// hostLostPrefix marks the failure of an instance whose host left the
// cluster (place.go).
const hostLostPrefix = "lost: "

// decide is the heal policy's decision on a failed instance, with the
// group's amendments: an abandoned launch is replaced, never restarted in
// place (it would run the step that failed again on the same instance),
// and so is an instance whose host left the cluster (there is nowhere to
// restart it); those replacements count against max_replacements like any
// other.
func decide(p heal.Policy, h heal.History, id, failure string, now time.Time) heal.Decision {
	var d heal.Decision
	switch {
	case strings.HasPrefix(failure, abandonPrefix):
		d = p.DecideReplace(h, id, "launch abandoned: replacing", now)
	case strings.HasPrefix(failure, hostLostPrefix):
		// Not the application's crash loop: no backoff, but the
		// replacement budget counts.
		d = p.DecideReplace(h, id, "its host left the cluster: replacing", now)
		if d.Action == heal.Replace {
			d.Delay, d.Reason = 0, "its host left the cluster: replacing"
		}
	default:
		d = p.Decide(h, id, now)
	}
	d.Failure = failure
	return d
}

// serving reports whether an instance may receive traffic: InService with
// no failure, termination or restart under way and its process not fenced.
// An instance leaves it the moment its process exits or a check fails.
func serving(in instanceView) bool {
	return in.State == InService && in.Failure == "" && in.Terminate == "" && !in.Restarting && !in.Fenced
}

// aggregate is an instance's health from its checks' statuses (a check
// without a status yet is Initial): unhealthy if any check is, else
// initial if any check is, else healthy.
func aggregate(statuses map[int]health.Status, checks int) health.Status {
	agg := health.Healthy
	for i := 0; i < checks; i++ {
		switch statuses[i] {
		case health.Unhealthy:
			return health.Unhealthy
		case health.Initial:
			agg = health.Initial
		}
	}
	return agg
}

// ready reports whether a started instance may go InService: its process
// runs and every check is healthy (with no checks, running is enough).
func ready(running bool, statuses map[int]health.Status, checks int) bool {
	return running && aggregate(statuses, checks) == health.Healthy
}

// checkFailure is the failure an unhealthy transition of a check means for
// in ("" for none): only a started instance (Pending:Proceed or InService)
// fails by its checks, and not while a failure, a termination or an
// operator's restart is already under way.
func checkFailure(in instanceView, checkType string, tr health.Transition) string {
	if tr.Status != health.Unhealthy || in.Failure != "" || in.Terminate != "" || in.Restarting {
		return ""
	}
	if in.State != InService && in.State != PendingProceed {
		return ""
	}
	return fmt.Sprintf("%s health check unhealthy: %s", checkType, truncate(tr.Output, 200))
}

// exitFailure is what an application exit means for in: planned when it
// was asked for (a termination or an operator's restart), and a failure
// ("" for none) when it was not and no failure is being handled yet.
func exitFailure(in instanceView, exit string) (failure string, planned bool) {
	stopping := in.State == Terminating || in.State == TerminatingWait || in.State == Terminated
	planned = stopping || in.Terminate != "" || in.Restarting
	if planned || in.Failure != "" {
		return "", planned
	}
	return "application " + exit, false
}

// capacity is a group's min, max and desired.
type capacity struct{ Min, Max, Desired int }

// capacityOnLoad is the capacity a starting controller runs with. min and
// max always come from the config file. desired is the stored one (it may
// have been scaled), unless the file's desired changed since the previous
// start (lastFile, "" when unknown), in which case the file wins; then it
// is clamped to [min, max]. changed reports a capacity that differs from
// the stored one and must be written.
func capacityOnLoad(stored, file capacity, lastFile string) (c capacity, changed bool) {
	c = capacity{Min: file.Min, Max: file.Max, Desired: stored.Desired}
	if lastFile != "" && lastFile != fmt.Sprint(file.Desired) {
		c.Desired = file.Desired
	}
	c.Desired = max(c.Desired, c.Min)
	c.Desired = min(c.Desired, c.Max)
	return c, c != stored
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
