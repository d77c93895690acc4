package group

import (
	"fmt"
	"sort"
	"time"

	"github.com/autoheal/autoheal/internal/heal"
)

// The group's decisions are pure functions of a view of its state, its
// policy and the time: plan says what to do next, as one step, and the
// executor (exec.go) carries the step out as the group's one job, through
// the provider, the volumes and the addresses. The loop is the only caller
// of plan and the only place where steps start; a job changes state only
// through the loop, and the loop plans again when it ends. A cluster would
// keep the same seam: the elected leader plans, each host applies.

// view is what plan reads: plain values copied from the group's state on
// the loop, nothing that points into live goroutine state.
type view struct {
	Status  string // Active or Impaired
	Desired int
	// NotBefore holds back launches to reach capacity (a failed port
	// allocation backs off).
	NotBefore time.Time
	Policy    heal.Policy
	// History is the heal history with its recorded decisions; plan does
	// not change it.
	History heal.History
	// Instances in launch order (oldest first, then by id).
	Instances []instanceView
	// NotWritable: the state dir takes no writes (a full disk, a
	// read-only file system). Every step records before it acts, so the
	// group holds still until the store is writable again.
	NotWritable bool
}

// instanceView is one instance as plan and the rules see it.
type instanceView struct {
	ID         string
	State      string
	LaunchedAt time.Time
	// Failure is a failure signal not yet handled ("" when none).
	Failure string
	// Terminate is the cause of a planned termination asked for.
	Terminate string
	// Decrement: the termination lowers desired (no replacement).
	Decrement bool
	// RestartAsked: an operator's restart in place waits to start.
	RestartAsked bool
	// Restarting: an operator's restart in place is under way.
	Restarting bool
	// Fenced: every process of the instance is confirmed gone.
	Fenced bool
	// Started: this controller started or adopted its application.
	Started bool
	// InServiceSince is when it last entered InService (zero when not).
	InServiceSince time.Time
}

// stepKind is what a step does.
type stepKind int

const (
	stepIdle              stepKind = iota // nothing to do
	stepWait                              // nothing to do until At
	stepLaunch                            // launch a new instance to reach desired
	stepScaleIn                           // terminate Instance to come down to desired
	stepTerminate                         // an operator's termination of Instance; Relaunch unless decremented
	stepRetire                            // terminate the failed Instance of an Impaired group
	stepRecord                            // make Decision durable before it waits (or impairs the group)
	stepHeal                              // carry out Decision on Instance now
	stepRestart                           // an operator's restart in place of Instance
	stepResumeLaunch                      // finish a launch a controller restart interrupted
	stepWaitHealthy                       // wait for a started Instance to pass its checks
	stepResumeTermination                 // finish a termination a controller restart interrupted
)

func (k stepKind) String() string {
	names := [...]string{"idle", "wait", "launch", "scale-in", "terminate", "retire", "record", "heal",
		"restart", "resume-launch", "wait-healthy", "resume-termination"}
	if k < 0 || int(k) >= len(names) {
		return fmt.Sprintf("stepKind(%d)", int(k))
	}
	return names[k]
}

// step is what the group does next.
type step struct {
	Kind     stepKind
	Instance string
	Cause    string
	// Relaunch: a terminated instance is replaced to keep desired.
	Relaunch bool
	// Decision is the heal decision of a record or heal step.
	Decision heal.Decision
	// History is the heal history a fresh Decision was made on (a served
	// instance may have ended the failure series), to adopt with it. Nil
	// for a decision recorded earlier, which is carried out as recorded.
	History *heal.History
	// At is when a wait ends.
	At time.Time
}

// plan returns the group's next step at now. Unfinished work on an instance
// comes first, oldest instance first (one at a time is what serializes
// concurrent requests and replaces instances one by one); then capacity.
func plan(v view, now time.Time) step {
	if v.NotWritable {
		// Acting without the record would break the exactly-once
		// guarantees (a heal counted, a script run, a volume moved):
		// instances keep running, and the loop plans again when the
		// store is writable (Wake).
		return step{}
	}
	for _, in := range v.Instances {
		if in.State == Terminated {
			continue
		}
		if s, ok := planInstance(v, in, now); ok {
			return s
		}
	}
	return planCapacity(v, now)
}

// planInstance is the step an instance needs, if any. Its rules in order:
// a planned termination beats everything (an operator may terminate a
// failed instance or one waiting out its backoff); a failure, or a decision
// recorded by an earlier controller, is healed; an operator's restart; then
// work a controller restart interrupted.
func planInstance(v view, in instanceView, now time.Time) (step, bool) {
	_, recorded := v.History.Recorded(in.ID)
	switch {
	case in.Terminate != "":
		return step{Kind: stepTerminate, Instance: in.ID, Cause: in.Terminate, Relaunch: !in.Decrement}, true
	case in.Failure != "" || recorded:
		return planHeal(v, in, now), true
	case in.RestartAsked:
		return step{Kind: stepRestart, Instance: in.ID}, true
	case in.State == Pending || in.State == PendingWait || in.State == PendingProceed && !in.Started:
		// Pending:Proceed without an application: a controller died
		// between the launch's last write and the start.
		return step{Kind: stepResumeLaunch, Instance: in.ID}, true
	case in.State == PendingProceed:
		return step{Kind: stepWaitHealthy, Instance: in.ID}, true
	case in.State == Terminating || in.State == TerminatingWait:
		return step{Kind: stepResumeTermination, Instance: in.ID, Cause: "resuming termination"}, true
	}
	return step{}, false
}

// planHeal is the step of a failed instance. An Impaired group heals
// nothing: the instance is terminated. A decision recorded earlier is
// carried out as recorded once its deadline passed (a restarted controller
// waits only the rest of the backoff). Otherwise the policy decides; a
// decision that must wait, or that impairs the group, is first recorded
// durably, so a controller restart neither forgets it nor counts the
// failure twice. A decision that acts at once rides in the write that
// starts the action.
func planHeal(v view, in instanceView, now time.Time) step {
	p, recorded := v.History.Recorded(in.ID)
	if v.Status == Impaired {
		failure := in.Failure
		if failure == "" {
			failure = p.Failure
		}
		return step{Kind: stepRetire, Instance: in.ID, Cause: "group impaired: " + failure}
	}
	if recorded {
		if p.Wait(now) > 0 {
			return step{Kind: stepWait, At: p.NotBefore}
		}
		return step{Kind: stepHeal, Instance: in.ID, Decision: p.Decision(now)}
	}
	h := v.History.Clone()
	if !in.InServiceSince.IsZero() {
		// It served before failing: long enough, and this is a new series.
		h.Healthy(in.ID, in.InServiceSince, now, v.Policy)
	}
	d := decide(v.Policy, h, in.ID, in.Failure, now)
	kind := stepHeal
	if d.Delay > 0 || d.Action == heal.Impair {
		kind = stepRecord
	}
	return step{Kind: kind, Instance: in.ID, Decision: d, History: &h}
}

// planCapacity launches up to desired or scales in down to it. An Impaired
// group does neither until an operator scales it.
func planCapacity(v view, now time.Time) step {
	if v.Status == Impaired {
		return step{}
	}
	live := 0
	for _, in := range v.Instances {
		if in.State != Terminated {
			live++
		}
	}
	switch {
	case live < v.Desired:
		if now.Before(v.NotBefore) {
			return step{Kind: stepWait, At: v.NotBefore}
		}
		return step{Kind: stepLaunch, Cause: fmt.Sprintf("capacity %d below desired %d", live, v.Desired)}
	case live > v.Desired:
		return step{Kind: stepScaleIn, Instance: scaleInVictim(v.Instances),
			Cause: fmt.Sprintf("capacity %d above desired %d", live, v.Desired)}
	}
	return step{}
}

// scaleInVictim is the instance a scale-in terminates: one that is not
// InService (it serves nobody yet) before one that is, then the newest (the
// oldest has proven itself longest), then the greatest id so the choice
// never depends on map order.
func scaleInVictim(ins []instanceView) string {
	var victim *instanceView
	for i := range ins {
		in := &ins[i]
		if in.State == Terminated {
			continue
		}
		if victim == nil || before(*victim, *in) {
			victim = in
		}
	}
	if victim == nil {
		return ""
	}
	return victim.ID
}

// before reports whether a is a worse scale-in victim than b.
func before(a, b instanceView) bool {
	if aIn, bIn := a.State == InService, b.State == InService; aIn != bIn {
		return aIn
	}
	if !a.LaunchedAt.Equal(b.LaunchedAt) {
		return a.LaunchedAt.Before(b.LaunchedAt)
	}
	return a.ID < b.ID
}

// sortViews orders instances as plan walks them: oldest first, then by id.
func sortViews(ins []instanceView) {
	sort.Slice(ins, func(i, j int) bool {
		if !ins[i].LaunchedAt.Equal(ins[j].LaunchedAt) {
			return ins[i].LaunchedAt.Before(ins[j].LaunchedAt)
		}
		return ins[i].ID < ins[j].ID
	})
}
