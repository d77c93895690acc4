package group

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/autoheal/autoheal/internal/event"
	"github.com/autoheal/autoheal/internal/health"
	"github.com/autoheal/autoheal/internal/provider"
)

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

// runTerminate drains, fences, runs the terminate hooks (each at most
// once, see scripts.go) and detaches.
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
	if state != TerminatingWait {
		if err := g.transition(in, TerminatingWait, "application stopped; running terminate hooks"); err != nil {
			return
		}
	}
	spec := g.spec(in, nil)
	for _, s := range terminateScripts(g.cfg) {
		if _, _, err := g.runOnce(ctx, in, spec, s); err != nil {
			return
		}
	}
	if len(g.cfg.Hooks.Terminate) > 0 {
		// The last hook's outcome goes to the journal before the detach.
		if err := g.onLoop(func() error { return g.flush(in) }); err != nil {
			return
		}
	}
	g.detach(ctx, in)
	g.onLoop(func() error {
		in.failure, in.terminate = "", ""
		g.hist.Forget(in.id)
		g.clearScripts(in.id, "")
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
