package group

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/autoheal/autoheal/internal/event"
	"github.com/autoheal/autoheal/internal/heal"
	"github.com/autoheal/autoheal/internal/health"
	"github.com/autoheal/autoheal/internal/provider"
	"github.com/autoheal/autoheal/internal/store"
)

// Timeouts of scripts that have no configured bound.
const (
	userDataTimeout   = 5 * time.Minute
	volumeInitTimeout = 10 * time.Minute
)

// keepTerminated is how many terminated instances a group keeps in its
// snapshot (the journal keeps all of them).
const keepTerminated = 5

var (
	errFailed    = errors.New("instance failed")
	errTerminate = errors.New("termination requested")
)

// reconcile runs on the loop: when no job is running it starts the most
// urgent one. One job at a time per group is what makes concurrent operator
// requests safe and what replaces instances one at a time.
func (g *Group) reconcile() {
	g.pruneTerminated()
	if g.jobBusy {
		return
	}
	now := g.deps.Now()
	ins := g.sortedInstances()

	// Interrupted operations from an earlier controller run come first.
	for _, in := range ins {
		if in.rec.State == Terminated {
			continue
		}
		switch {
		case in.terminate != "":
			in := in
			relaunch, cause := !in.decrement, in.terminate
			g.startJob(func(ctx context.Context) { g.jobTerminate(ctx, in, cause, relaunch) })
			return
		case in.failure != "":
			in := in
			if g.rec.Status == Impaired {
				cause := "group impaired: " + in.failure
				g.startJob(func(ctx context.Context) {
					g.fence(ctx, in)
					g.runTerminate(ctx, in, cause)
				})
				return
			}
			if !in.inServiceSince.IsZero() {
				// It served long enough before failing: a fresh series.
				g.hist.Healthy(in.id, in.inServiceSince, now, g.policy)
				in.inServiceSince = time.Time{}
			}
			d := g.policy.Decide(g.hist, in.id, now)
			if (d.Delay > 0 || d.Action == heal.Impair) && len(in.pending) > 0 {
				g.appendEvents(in.pending...)
				in.pending = nil
			}
			g.startJob(func(ctx context.Context) { g.jobHeal(ctx, in, d) })
			return
		case in.restartAsked:
			in := in
			g.startJob(func(ctx context.Context) { g.jobRestart(ctx, in) })
			return
		case in.rec.State == Pending || in.rec.State == PendingWait:
			in := in
			g.startJob(func(ctx context.Context) { g.jobResumeLaunch(ctx, in) })
			return
		case in.rec.State == PendingProceed:
			in := in
			g.startJob(func(ctx context.Context) { g.jobWaitHealthy(ctx, in) })
			return
		case in.rec.State == Terminating || in.rec.State == TerminatingWait:
			in := in
			g.startJob(func(ctx context.Context) { g.runTerminate(ctx, in, "resuming termination") })
			return
		}
	}
	if g.rec.Status == Impaired {
		return
	}
	live := 0
	for _, in := range ins {
		if in.rec.State != Terminated {
			live++
		}
	}
	switch {
	case live < g.rec.Desired:
		if now.Before(g.notBefore) {
			g.armTimer(g.notBefore)
			return
		}
		cause := fmt.Sprintf("capacity %d below desired %d", live, g.rec.Desired)
		g.startJob(func(ctx context.Context) { g.jobLaunchNew(ctx, cause, "") })
	case live > g.rec.Desired:
		victim := g.scaleInVictim(ins)
		cause := fmt.Sprintf("capacity %d above desired %d", live, g.rec.Desired)
		g.startJob(func(ctx context.Context) { g.jobTerminate(ctx, victim, cause, false) })
	}
}

// scaleInVictim prefers an instance that is not InService, then the newest.
func (g *Group) scaleInVictim(ins []*instance) *instance {
	var victim *instance
	for _, in := range ins {
		if in.rec.State == Terminated {
			continue
		}
		if victim == nil ||
			(victim.rec.State == InService && in.rec.State != InService) ||
			((victim.rec.State == InService) == (in.rec.State == InService) && in.rec.LaunchedAt.After(victim.rec.LaunchedAt)) {
			victim = in
		}
	}
	return victim
}

func (g *Group) sortedInstances() []*instance {
	ins := make([]*instance, 0, len(g.instances))
	for _, in := range g.instances {
		ins = append(ins, in)
	}
	sort.Slice(ins, func(i, j int) bool { return ins[i].rec.LaunchedAt.Before(ins[j].rec.LaunchedAt) })
	return ins
}

func (g *Group) pruneTerminated() {
	var term []*instance
	for _, in := range g.instances {
		if in.rec.State == Terminated {
			term = append(term, in)
		}
	}
	if len(term) <= keepTerminated {
		return
	}
	sort.Slice(term, func(i, j int) bool { return term[i].rec.UpdatedAt.Before(term[j].rec.UpdatedAt) })
	for _, in := range term[:len(term)-keepTerminated] {
		delete(g.instances, in.id)
	}
	g.publish()
}

func (g *Group) armTimer(at time.Time) {
	d := at.Sub(g.deps.Now())
	if d < 0 {
		d = 0
	}
	if g.timer != nil {
		g.timer.Stop()
	}
	g.timer = time.NewTimer(d)
}

// startJob runs f as the group's one job. Called on the loop.
func (g *Group) startJob(f func(ctx context.Context)) {
	g.jobBusy = true
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		defer func() {
			if r := recover(); r != nil {
				g.log.Error("panic in group job", "panic", r)
			}
			g.call(func() { g.jobBusy = false })
		}()
		f(g.ctx)
	}()
}

// transition moves an instance to a state, durably, with its cause.
func (g *Group) transition(in *instance, state, cause string, extra ...store.Event) error {
	return g.onLoop(func() error { return g.commit(g.stateChange(in, state, cause, extra...)) })
}

// stateChange is a transition as a change, to commit alone or with others.
// Called on the loop.
func (g *Group) stateChange(in *instance, state, cause string, extra ...store.Event) change {
	return g.stateChangeWith(in, event.InstanceState{To: state, Cause: cause}, extra...)
}

// stateChangeWith is stateChange with more of the transition's data (d.To
// and d.Cause set; From is filled in).
func (g *Group) stateChangeWith(in *instance, d event.InstanceState, extra ...store.Event) change {
	state, cause := d.To, d.Cause
	r := in.rec
	from := r.State
	r.State, r.Cause = state, cause
	now := g.deps.Now()
	r.UpdatedAt = now
	if state == Terminated {
		r.TerminatedAt = &now
	}
	ev := g.stateEvent(in, from, d)
	// Journal order: what happened before (pending), then the extra
	// events that lead to this state, then the transition itself.
	n := len(in.pending)
	evs := append(append(slices.Clone(in.pending), extra...), ev)
	return change{store.InstanceChange(r, evs...), func() {
		switch state {
		case InService:
			in.inServiceSince = now
		case Pending, Terminating:
			in.inServiceSince = time.Time{}
		}
		in.rec = r
		in.pending = in.pending[min(n, len(in.pending)):] // what came meanwhile stays
		g.publish()
	}}
}

// stateEvent is the journal event of in's transition from the state from
// to d.To. A replacement's first state names the instance it replaces.
// Called on the loop.
func (g *Group) stateEvent(in *instance, from string, d event.InstanceState) store.Event {
	d.From = from
	if d.To == Pending && d.Replaces == "" {
		d.Replaces = in.replacesID
	}
	msg := fmt.Sprintf("%s -> %s: %s", from, d.To, d.Cause)
	if from == "" {
		msg = fmt.Sprintf("%s: %s", d.To, d.Cause)
	}
	return g.event(in.id, msg, d)
}

// onLoop runs f on the loop and returns its error.
func (g *Group) onLoop(f func() error) error {
	var err error
	if cerr := g.call(func() { err = f() }); cerr != nil {
		return cerr
	}
	return err
}

// record appends events from a job.
func (g *Group) record(evs ...store.Event) {
	g.call(func() { g.appendEvents(evs...) })
}

// jobLaunchNew launches a new instance; replaces names the instance it
// replaces, if any (already terminated).
func (g *Group) jobLaunchNew(ctx context.Context, cause, replaces string) {
	in := &instance{signal: make(chan struct{}, 1), health: map[int]health.Status{}, replacesID: replaces}
	g.launchNew(ctx, in, cause)
}

// launchNew launches the new instance in. When in.replaces is set, that
// failed instance becomes Terminating, with in.replacesCause, in the new
// one's first durable write.
func (g *Group) launchNew(ctx context.Context, in *instance, cause string) {
	ports, err := g.allocatePorts()
	if err != nil {
		g.record(g.event("", "allocate ports: "+err.Error(), event.GroupError{Op: "allocate_ports", Error: err.Error()}))
		g.call(func() { g.notBefore = g.deps.Now().Add(g.policy.BackoffBase) })
		return
	}
	now := g.deps.Now()
	in.id, in.ports = provider.NewInstanceID(), ports
	in.rec = store.Instance{
		ID:         in.id,
		Group:      g.cfg.Name,
		Health:     health.Initial.String(),
		Ports:      ports,
		LaunchedAt: now,
	}
	if err := g.onLoop(func() error {
		g.instances[in.id] = in
		return nil
	}); err != nil {
		return
	}
	g.runLaunch(ctx, in, cause)
}

// jobResumeLaunch restarts a launch that a controller restart interrupted.
func (g *Group) jobResumeLaunch(ctx context.Context, in *instance) {
	g.fence(ctx, in)
	g.runLaunch(ctx, in, "resuming launch interrupted by a controller restart")
}

// runLaunch takes an instance (new, or an existing one restarted in place)
// from Pending to InService. On failure it records the failure on the
// instance; the loop then applies the heal policy.
func (g *Group) runLaunch(ctx context.Context, in *instance, cause string) {
	err := g.launch(ctx, in, cause)
	if err == nil || errors.Is(err, errFailed) || errors.Is(err, errTerminate) || ctx.Err() != nil {
		return
	}
	g.onLoop(func() error {
		if in.failure == "" {
			in.failure = err.Error()
		}
		return nil
	})
}

func (g *Group) launch(ctx context.Context, in *instance, cause string) error {
	// With nothing to run in Pending:Wait, the Pending and Pending:Wait
	// transitions are journaled in the same durable write as the
	// attachments and Pending:Proceed, right before the start: one fsync
	// instead of five. A controller that crashes before it finds the
	// instance as the previous write left it: absent (a new one) or fenced
	// and failed (a restart), with its volumes and addresses where they
	// were.
	var state string
	g.call(func() { state = in.rec.State })
	if !g.hasLaunchSteps() {
		ev := g.stateEvent(in, state, event.InstanceState{To: Pending, Cause: cause})
		g.call(func() {
			in.pending = append(in.pending, ev)
			in.rec.State, in.rec.Cause = Pending, cause
			if state == Terminated || state == "" {
				in.rec.TerminatedAt = nil
			}
			g.publish()
		})
	} else {
		if err := g.retireReplaced(in); err != nil {
			return err
		}
		if err := g.transition(in, Pending, cause); err != nil {
			return err
		}
	}
	var spec provider.Spec
	var err error
	if g.hasLaunchSteps() {
		if spec, err = g.attach(ctx, in, nil, nil); err != nil {
			g.abandon(in, err.Error())
			return errFailed
		}
		if err := g.transition(in, PendingWait, "volumes and addresses attached"); err != nil {
			return err
		}
		if err := g.prepare(ctx, in, spec); err != nil {
			return err
		}
		if err := g.transition(in, PendingProceed, "launch steps done; starting application"); err != nil {
			return err
		}
	} else {
		// Nothing to run in Pending:Wait: the attachments, Pending:Wait
		// and Pending:Proceed are one durable write.
		var first []change
		var proceed change
		g.call(func() {
			// Taken once: if this write fails, the heal that launched
			// this instance terminates the old one itself.
			if old := in.replaces; old != nil {
				first = append(first, g.stateChangeWith(old, event.InstanceState{To: Terminating, Cause: in.replacesCause, ReplacedBy: in.id}))
				in.replaces = nil
			}
			wait := g.stateEvent(in, Pending, event.InstanceState{To: PendingWait, Cause: "volumes and addresses attached; no launch steps"})
			rec := in.rec
			in.rec.State = PendingWait // what Pending:Proceed comes from
			proceed = g.stateChange(in, PendingProceed, "no launch steps; starting application", wait)
			in.rec = rec
		})
		if spec, err = g.attach(ctx, in, first, []change{proceed}); err != nil {
			g.abandon(in, err.Error())
			return errFailed
		}
	}
	proc, err := g.deps.Provider.Launch(ctx, spec)
	for _, l := range spec.Listeners {
		l.File.Close() // the instance has its own copy now
	}
	if err != nil {
		return fmt.Errorf("start application: %w", err)
	}
	if err := g.onLoop(func() error {
		g.watch(in, proc)
		r := in.rec
		r.Pid = proc.Pid()
		// The pid, with the heal history if it changed: one write.
		cs := []change{g.instanceChange(in, r)}
		if g.histDirty {
			g.histDirty = false
			cs = append(cs, g.groupChange(g.rec))
		}
		return g.commit(cs...)
	}); err != nil {
		return err
	}
	return g.waitHealthy(ctx, in)
}

// retireReplaced makes the instance that in replaces Terminating, in a
// write of its own (a launch with launch steps, which is not in a hurry).
func (g *Group) retireReplaced(in *instance) error {
	var old *instance
	var cause string
	g.call(func() { old, cause, in.replaces = in.replaces, in.replacesCause, nil })
	if old == nil {
		return nil
	}
	return g.transition(old, Terminating, cause)
}

// abandon marks a launch failure that must replace the instance rather than
// restart it.
func (g *Group) abandon(in *instance, why string) {
	g.onLoop(func() error {
		in.failure = "abandon: " + why
		return nil
	})
}

// jobWaitHealthy resumes waiting for an adopted Pending:Proceed instance.
func (g *Group) jobWaitHealthy(ctx context.Context, in *instance) {
	g.waitHealthy(ctx, in)
}

// waitHealthy waits until every health check of the instance passed its
// healthy threshold (or, with no checks, the process is running), then moves
// it to InService.
func (g *Group) waitHealthy(ctx context.Context, in *instance) error {
	for {
		var failure, terminate string
		var ready bool
		if err := g.call(func() {
			failure, terminate = in.failure, in.terminate
			ready = allHealthy(in, len(g.cfg.HealthChecks))
		}); err != nil {
			return err
		}
		switch {
		case failure != "":
			return errFailed
		case terminate != "":
			return errTerminate
		case ready:
			return g.transition(in, InService, "health checks passed")
		}
		select {
		case <-in.signal:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func allHealthy(in *instance, checks int) bool {
	if in.proc == nil {
		return false
	}
	select {
	case <-in.proc.Done():
		return false
	default:
	}
	for i := 0; i < checks; i++ {
		if in.health[i] != health.Healthy {
			return false
		}
	}
	return true
}

// jobHeal applies a heal decision to a failed instance.
func (g *Group) jobHeal(ctx context.Context, in *instance, d heal.Decision) {
	var failure string
	var abandon bool
	g.call(func() {
		failure = in.failure
		abandon = len(failure) > 8 && failure[:8] == "abandon:"
		if abandon && d.Action == heal.Restart {
			d.Action = heal.Replace
			d.Reason = "launch abandoned: replacing"
		}
		g.hist.Record(in.id, d, g.deps.Now())
		ev := g.event(in.id, fmt.Sprintf("%s: %s (%s)", d.Action, d.Reason, failure),
			event.InstanceHeal{Action: d.Action.String(), DelayMS: d.Delay.Milliseconds(), Failure: failure, Reason: d.Reason})
		// The decision is journaled with the instance's next durable write
		// and the history once the application is started again (or the
		// launch failed): neither is needed to act safely, and a restart or
		// a replacement is faster without two fsyncs in front of it. A
		// controller crash in between only forgets that one decision.
		in.pending = append(in.pending, ev)
		g.histDirty = true
		if d.Action != heal.Restart && d.Action != heal.Replace {
			g.flushHistory()
		}
	})
	g.fence(ctx, in)
	if d.Delay > 0 {
		t := time.NewTimer(d.Delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
	}
	switch d.Action {
	case heal.Restart:
		g.onLoop(func() error {
			in.failure = ""
			r := in.rec
			r.Restarts++
			in.rec = r
			return nil
		})
		g.runLaunch(ctx, in, "restart in place: "+d.Reason)
	case heal.Replace:
		if len(g.cfg.Hooks.Terminate) > 0 {
			// Terminate hooks run before the volume moves.
			g.runTerminate(ctx, in, "replaced: "+failure)
			if ctx.Err() == nil {
				g.jobLaunchNew(ctx, "replacement for "+in.id, in.id)
			}
			g.call(func() { g.flushHistory() }) // if the launch failed before
			return
		}
		// The failed instance is fenced: its volume and address go straight
		// to the replacement, and it becomes Terminating in the same
		// durable write as the replacement's attachments, right before the
		// replacement starts. The rest of its termination waits until the
		// replacement's launch is over, so as not to take a CPU from the
		// replacement's start.
		cause := "replaced: " + failure
		g.drain(in)
		next := &instance{signal: make(chan struct{}, 1), health: map[int]health.Status{},
			replaces: in, replacesCause: cause, replacesID: in.id}
		g.launchNew(ctx, next, "replacement for "+in.id)
		if ctx.Err() == nil {
			g.runTerminate(ctx, in, cause)
		}
		g.call(func() { g.flushHistory() }) // if the launch failed before
	default: // Impair
		g.runTerminate(ctx, in, "group impaired: "+failure)
		g.call(func() {
			r := g.rec
			r.Status, r.Reason = Impaired, d.Reason
			g.putGroup(r, g.event(in.id, d.Reason, event.GroupImpaired{Reason: d.Reason}))
		})
	}
}

// jobRestart is an operator's restart in place.
func (g *Group) jobRestart(ctx context.Context, in *instance) {
	var cause string
	g.call(func() { cause, in.restartAsked = in.restarting, false })
	defer g.call(func() {
		if !in.restartAsked { // else another restart was asked meanwhile
			in.restarting = ""
		}
		g.publish()
	})
	if err := g.fence(ctx, in); err != nil {
		return
	}
	g.runLaunch(ctx, in, cause)
}

// jobTerminate is a planned termination (operator or scale-in).
func (g *Group) jobTerminate(ctx context.Context, in *instance, cause string, relaunch bool) {
	g.runTerminate(ctx, in, cause)
	if relaunch && ctx.Err() == nil {
		var launch bool
		g.call(func() {
			live := 0
			for _, x := range g.instances {
				if x.rec.State != Terminated {
					live++
				}
			}
			launch = live < g.rec.Desired && g.rec.Status != Impaired
		})
		if launch {
			g.jobLaunchNew(ctx, "replacement for "+in.id, in.id)
		}
	}
}

// runTerminate drains, fences, runs the terminate hooks and detaches.
func (g *Group) runTerminate(ctx context.Context, in *instance, cause string) {
	var state string
	g.call(func() { state = in.rec.State })
	if state != Terminating && state != TerminatingWait {
		if err := g.transition(in, Terminating, cause); err != nil {
			return
		}
	}
	g.drain(in)
	if g.deps.Drain != nil {
		var proc provider.Process
		g.call(func() { proc = in.proc })
		if proc != nil && !isDone(proc) {
			// A planned stop of a live instance: load balancers finish its
			// in-flight requests first, as an ASG waits for ELB draining.
			g.deps.Drain(ctx, in.id)
		}
	}
	if err := g.fence(ctx, in); err != nil {
		return
	}
	if err := g.transition(in, TerminatingWait, "application stopped; running terminate hooks"); err != nil {
		return
	}
	spec := g.spec(in, nil)
	for _, h := range g.cfg.Hooks.Terminate {
		g.runHook(ctx, in, spec, "terminate", h.Name, h.Script, h.HeartbeatTimeout.D(), h.DefaultResult)
	}
	g.detach(ctx, in)
	g.onLoop(func() error {
		in.failure, in.terminate = "", ""
		g.hist.Forget(in.id)
		return nil
	})
	g.transition(in, Terminated, cause)
}

// fence stops every process of the instance and confirms they are gone.
// Until it returns nil the instance's volume may not move.
func (g *Group) fence(ctx context.Context, in *instance) error {
	var proc provider.Process
	var checkers []*health.Checker
	var fenced bool
	g.call(func() {
		proc, fenced = in.proc, in.fenced
		checkers, in.checkers = in.checkers, nil
	})
	for _, c := range checkers {
		c.Close()
	}
	if fenced {
		return nil
	}
	if proc == nil {
		// Never started (or lost before this controller ran, and swept).
		return g.onLoop(func() error { in.fenced = true; return nil })
	}
	start := g.deps.Now()
	exited := isDone(proc)
	if err := g.deps.Provider.Stop(ctx, proc, g.sig, g.cfg.Launch.StopTimeout.D()); err != nil {
		g.record(g.event(in.id, "fence: "+err.Error(), event.GroupError{Op: "fence", Error: err.Error()}))
		return err
	}
	exit := proc.Exit()
	return g.onLoop(func() error {
		in.fenced = true
		r := in.rec
		r.Pid = 0
		if b, err := json.Marshal(exit); err == nil {
			r.LastExit = string(b)
		}
		took := g.deps.Now().Sub(start)
		ev := g.event(in.id, fmt.Sprintf("fenced in %s: %s", took.Round(time.Millisecond), exit),
			event.InstanceFenced{Code: exit.Code, Signal: exit.Signal, Error: exit.Error, DurationMS: took.Milliseconds()})
		if exited {
			// Its exit is already in the journal; the confirmation rides
			// along with the next transition.
			in.rec = r
			in.pending = append(in.pending, ev)
			g.publish()
			return nil
		}
		return g.putInstance(in, r, ev)
	})
}

// drain stops routing new connections to the instance. The event rides
// along with the instance's next durable write: the address record itself
// does not change here, and a replacement is not kept waiting for an fsync.
func (g *Group) drain(in *instance) {
	g.call(func() {
		for name, p := range g.proxies {
			if h, _ := p.Holder(); h == in.id {
				p.Disassociate(in.id)
				in.pending = append(in.pending, g.event(in.id, fmt.Sprintf("address %s drained from %s", name, in.id), event.AddressDisassociate{Address: name, Drained: true}))
			}
		}
	})
}

// runHook runs one lifecycle hook and reports whether the launch may go on.
func (g *Group) runHook(ctx context.Context, in *instance, spec provider.Spec, kind, name, script string, timeout time.Duration, def string) bool {
	res, err := g.deps.Provider.Run(ctx, spec, script, timeout)
	ok := err == nil && res.ExitCode == 0 && !res.TimedOut
	var why string
	switch {
	case err != nil:
		why = err.Error()
	case res.TimedOut:
		why = fmt.Sprintf("heartbeat timeout %s exceeded", timeout)
	case res.ExitCode != 0:
		why = fmt.Sprintf("exit %d", res.ExitCode)
	}
	msg := fmt.Sprintf("%s hook %s succeeded in %s", kind, name, res.Duration.Round(time.Millisecond))
	if !ok {
		msg = fmt.Sprintf("%s hook %s failed (%s): default_result %s", kind, name, why, def)
	}
	ev := g.event(in.id, msg, event.InstanceHook{Hook: name, Phase: kind, ExitCode: res.ExitCode, TimedOut: res.TimedOut, OK: ok, Output: res.Output})
	g.record(ev)
	return ok || def == "continue"
}

// watch starts following a process's exit. Called on the loop.
func (g *Group) watch(in *instance, proc provider.Process) {
	in.gen++
	gen := in.gen
	in.proc, in.fenced = proc, false
	in.health = map[int]health.Status{}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		select {
		case <-proc.Done():
		case <-g.ctx.Done():
			return
		}
		g.call(func() { g.onExit(in, gen) })
	}()
	g.startCheckers(in, gen)
}

// onExit handles an application exit. Called on the loop.
func (g *Group) onExit(in *instance, gen int) {
	if gen != in.gen {
		return
	}
	exit := in.proc.Exit()
	r := in.rec
	if b, err := json.Marshal(exit); err == nil {
		r.LastExit = string(b)
	}
	planned := r.State == Terminating || r.State == TerminatingWait || r.State == Terminated
	ev := g.event(r.ID, "application "+exit.String(), event.InstanceExit{Code: exit.Code, Signal: exit.Signal, Error: exit.Error,
		Planned: planned || in.terminate != "" || in.restarting != ""})
	if !planned && in.failure == "" && in.terminate == "" && in.restarting == "" {
		in.failure = "application " + exit.String()
		// The heal that follows journals this with its first transition,
		// at once (or right away when it has to wait: see reconcile).
		in.rec = r
		in.pending = append(in.pending, ev)
		g.publish()
		g.signalInstance(in)
		return
	}
	g.putInstance(in, r, ev)
	g.signalInstance(in)
	g.poke()
}

func (g *Group) signalInstance(in *instance) {
	select {
	case in.signal <- struct{}{}:
	default:
	}
	g.poke()
}

// onHealth handles a health check transition. Called on the loop.
func (g *Group) onHealth(in *instance, gen, idx int, tr health.Transition) {
	if gen != in.gen || in.fenced {
		return
	}
	in.health[idx] = tr.Status
	agg := health.Healthy
	for i := range g.cfg.HealthChecks {
		switch in.health[i] {
		case health.Unhealthy:
			agg = health.Unhealthy
		case health.Initial:
			if agg == health.Healthy {
				agg = health.Initial
			}
		}
	}
	r := in.rec
	r.Health = agg.String()
	hc := g.cfg.HealthChecks[idx]
	ev := g.event(r.ID, fmt.Sprintf("%s check %s after %d in a row: %s", hc.Type, tr.Status, tr.Consecutive, truncate(tr.Output, 200)),
		event.InstanceHealth{Check: idx, Type: hc.Type, Status: tr.Status.String(), Consecutive: tr.Consecutive, Output: tr.Output})
	if tr.Status == health.Unhealthy && in.failure == "" && in.terminate == "" && in.restarting == "" &&
		(r.State == InService || r.State == PendingProceed) {
		in.failure = fmt.Sprintf("%s health check unhealthy: %s", hc.Type, truncate(tr.Output, 200))
	}
	g.putInstance(in, r, ev)
	g.signalInstance(in)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func isDone(p interface{ Done() <-chan struct{} }) bool {
	select {
	case <-p.Done():
		return true
	default:
		return false
	}
}

// hasLaunchSteps reports whether Pending:Wait has anything to run.
func (g *Group) hasLaunchSteps() bool {
	if g.cfg.Launch.UserData != "" || len(g.cfg.Hooks.Launch) > 0 {
		return true
	}
	for _, v := range g.cfg.Volumes {
		if needs, err := g.deps.Volumes.Prepare(g.cfg.Name, v.Name); err != nil || needs {
			return true
		}
	}
	return false
}

// flushHistory writes the heal history if it changed. Called on the loop.
func (g *Group) flushHistory() error {
	if !g.histDirty {
		return nil
	}
	g.histDirty = false
	return g.putGroup(g.rec)
}
