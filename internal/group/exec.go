package group

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/autoheal/autoheal/internal/event"
	"github.com/autoheal/autoheal/internal/store"
)

// This file is the executor's side of the seam (see plan.go): the loop
// builds the view, asks plan for a step and starts it as the group's one
// job.

// reconcile runs on the loop: when no job is running it plans and starts
// the next step. One job at a time per group is what makes concurrent
// operator requests safe and what replaces instances one at a time.
func (g *Group) reconcile() {
	g.pruneTerminated()
	if g.jobBusy {
		return
	}
	g.apply(plan(g.view(), g.deps.Now()))
}

// view copies the group's state for plan. Called on the loop.
func (g *Group) view() view {
	v := view{
		Status:    g.rec.Status,
		Desired:   g.rec.Desired,
		NotBefore: g.notBefore,
		Policy:    g.policy,
		History:   g.hist.Clone(),
		Instances: make([]instanceView, 0, len(g.instances)),
		// Read on every plan, not cached: Wake follows a recovery.
		NotWritable: !g.deps.Store.Health().Writable,
	}
	for _, in := range g.instances {
		v.Instances = append(v.Instances, in.view())
	}
	sortViews(v.Instances)
	return v
}

// view is the instance as plan and the rules see it. Called on the loop.
func (in *instance) view() instanceView {
	return instanceView{
		ID:             in.id,
		State:          in.rec.State,
		LaunchedAt:     in.rec.LaunchedAt,
		Failure:        in.failure,
		Terminate:      in.terminate,
		Decrement:      in.decrement,
		RestartAsked:   in.restartAsked,
		Restarting:     in.restarting != "",
		Fenced:         in.fenced,
		Started:        in.proc != nil,
		InServiceSince: in.inServiceSince,
	}
}

// apply starts a step: a wait arms the loop's timer, anything else runs as
// the group's job. Called on the loop.
func (g *Group) apply(s step) {
	in := g.instances[s.Instance]
	var job func(ctx context.Context)
	switch s.Kind {
	case stepIdle:
		return
	case stepWait:
		g.armTimer(s.At)
		return
	case stepLaunch:
		job = func(ctx context.Context) { g.jobLaunchNew(ctx, s.Cause, "") }
	case stepScaleIn, stepTerminate:
		job = func(ctx context.Context) { g.jobTerminate(ctx, in, s.Cause, s.Relaunch) }
	case stepRetire:
		job = func(ctx context.Context) {
			g.fence(ctx, in)
			g.runTerminate(ctx, in, s.Cause)
		}
	case stepRecord:
		job = func(ctx context.Context) { g.jobRecord(ctx, in, s) }
	case stepHeal:
		job = func(ctx context.Context) { g.jobHeal(ctx, in, s) }
	case stepRestart:
		job = func(ctx context.Context) { g.jobRestart(ctx, in) }
	case stepResumeLaunch:
		job = func(ctx context.Context) { g.jobResumeLaunch(ctx, in) }
	case stepWaitHealthy:
		job = func(ctx context.Context) { g.waitHealthy(ctx, in) }
	case stepResumeTermination:
		job = func(ctx context.Context) { g.runTerminate(ctx, in, s.Cause) }
	default:
		g.log.Error("unknown step", "step", s.Kind)
		return
	}
	if in == nil && s.Instance != "" {
		g.log.Error("step for an unknown instance", "step", s.Kind, "instance", s.Instance)
		return
	}
	g.startJob(job)
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
	d := max(0, at.Sub(g.deps.Now()))
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
	return change{Change: store.InstanceChange(r, evs...), applied: func() {
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

func isDone(p interface{ Done() <-chan struct{} }) bool {
	select {
	case <-p.Done():
		return true
	default:
		return false
	}
}
