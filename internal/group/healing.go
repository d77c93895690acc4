package group

import (
	"context"
	"fmt"
	"time"

	"github.com/autoheal/autoheal/internal/crashpoint"
	"github.com/autoheal/autoheal/internal/event"
	"github.com/autoheal/autoheal/internal/heal"
	"github.com/autoheal/autoheal/internal/health"
)

// A heal decision is durable before it acts, without an fsync of its own on
// the fast path: a decision that acts at once is counted in the heal
// history, which the group record carries in the write that starts the
// action (the attachments and Pending:Proceed of a restart in place or a
// replacement), with the decision's event. A decision that must back off
// first, or that impairs the group, is written on its own before the wait
// (stepRecord), with its absolute deadline: a restarted controller finds it
// and waits only the rest (planHeal), instead of deciding again.

// adoptDecision makes a fresh decision the group's: the history it was made
// on, counted, and its event waiting for the instance's next write. The
// instance is unhealthy until its application starts again. Called on the
// loop.
func (g *Group) adoptDecision(in *instance, s step) {
	if s.History != nil {
		g.hist = *s.History
	}
	in.inServiceSince = time.Time{}
	now := g.deps.Now()
	d := s.Decision
	g.hist.Record(in.id, d, now)
	g.dirty = true
	data := event.InstanceHeal{Action: d.Action.String(), DelayMS: d.Delay.Milliseconds(), Failure: d.Failure, Reason: d.Reason}
	if d.Delay > 0 {
		data.NotBefore = now.Add(d.Delay).UTC().Format(time.RFC3339Nano)
	}
	ev := g.event(in.id, fmt.Sprintf("%s: %s (%s)", d.Action, d.Reason, d.Failure), data)
	ev.Time = now // the deadline is counted from it
	in.pending = append(in.pending, ev)
	in.rec.Health = health.Unhealthy.String() // shown with the next change
}

// jobRecord fences a failed instance and makes a decision that must wait
// (or impairs the group) durable, in one write with the failure's events:
// the instance waits out its backoff in the state it will act from, Pending
// for a restart in place and Terminating for a replacement, and an Impair
// decision marks the group Impaired. The loop then waits (stepWait) and
// carries the decision out (stepHeal).
func (g *Group) jobRecord(ctx context.Context, in *instance, s step) {
	g.call(func() { g.adoptDecision(in, s) })
	fenced := g.fence(ctx, in) == nil
	if ctx.Err() != nil {
		return
	}
	g.onLoop(func() error {
		d := s.Decision
		var cs []change
		switch {
		case d.Action == heal.Impair:
			r := g.rec
			r.Status, r.Reason = Impaired, d.Reason
			cs = append(cs, g.withPending(in),
				g.groupChange(r, g.event(in.id, d.Reason, event.GroupImpaired{Reason: d.Reason})))
		case !fenced:
			// Not confirmed gone: it keeps its state; the heal fences again.
			cs = append(cs, g.withPending(in))
		case d.Action == heal.Restart:
			p, _ := g.hist.Recorded(in.id)
			cs = append(cs, g.stateChange(in, Pending, fmt.Sprintf("restart in place at %s: %s", p.NotBefore.Format("15:04:05.000"), d.Reason)))
		default:
			cs = append(cs, g.stateChange(in, Terminating, "replaced: "+d.Failure))
		}
		return g.commit(cs...)
	})
	crashpoint.Hit("heal.recorded")
}

// jobHeal carries a decision out: a fresh one that acts at once, or one
// recorded earlier whose deadline passed.
func (g *Group) jobHeal(ctx context.Context, in *instance, s step) {
	d := s.Decision
	g.call(func() {
		if s.History != nil {
			g.adoptDecision(in, s)
		}
		// Carried out from now on: the write that starts the action
		// records it so.
		g.hist.Acted(in.id)
		g.dirty = true
	})
	g.fence(ctx, in)
	if ctx.Err() != nil {
		return
	}
	switch d.Action {
	case heal.Restart:
		g.onLoop(func() error {
			in.failure = ""
			in.rec.Restarts++
			return nil
		})
		g.runLaunch(ctx, in, "restart in place: "+d.Reason, false)
	case heal.Replace:
		g.replace(ctx, in, "replaced: "+d.Failure)
	default:
		g.log.Error("heal step with a decision that must be recorded first", "action", d.Action)
	}
}

// replace launches a replacement for the failed, fenced instance in and
// terminates in.
func (g *Group) replace(ctx context.Context, in *instance, cause string) {
	if len(g.cfg.Hooks.Terminate) > 0 {
		// Terminate hooks run before the volume moves.
		g.runTerminate(ctx, in, cause)
		if ctx.Err() == nil {
			g.jobLaunchNew(ctx, "replacement for "+in.id, in.id)
		}
		return
	}
	// The failed instance is fenced: its volume and address go straight to
	// the replacement, and it becomes Terminating in the same durable write
	// as the replacement's attachments, right before the replacement
	// starts. The rest of its termination waits until the replacement's
	// launch is over, so as not to take a CPU from the replacement's start.
	g.drain(in)
	next := newInstance()
	next.replaces, next.replacesCause, next.replacesID = in, cause, in.id
	g.launchNew(ctx, next, "replacement for "+in.id)
	if ctx.Err() == nil {
		g.runTerminate(ctx, in, cause)
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
	g.runLaunch(ctx, in, cause, false)
}

// newInstance is an instance not yet launched.
func newInstance() *instance {
	return &instance{signal: make(chan struct{}, 1), health: map[int]health.Status{}}
}

// withPending is in's record, unchanged, with the events waiting on it.
// They are forgotten once the write is durable: a write the state dir
// refused leaves them for the next one. Called on the loop.
func (g *Group) withPending(in *instance) change {
	n := len(in.pending)
	c := g.instanceChange(in, in.rec, in.pending...)
	applied := c.applied
	c.applied = func() {
		in.pending = in.pending[min(n, len(in.pending)):]
		applied()
	}
	return c
}
