package group

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strconv"

	"github.com/autoheal/autoheal/internal/event"
	"github.com/autoheal/autoheal/internal/health"
	"github.com/autoheal/autoheal/internal/provider"
	"github.com/autoheal/autoheal/internal/store"
)

// watch starts following a process's exit and health; proven: it was
// InService before this controller (adopted). Called on the loop.
func (g *Group) watch(in *instance, proc provider.Process, proven bool) {
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
	g.startCheckers(in, gen, proven)
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
	failure, planned := exitFailure(in.view(), exit.String())
	if failure != "" && exit.Lost {
		failure = hostLostFailure(r.Host, exit)
	}
	ev := g.event(r.ID, "application "+exit.String(), event.InstanceExit{Code: exit.Code, Signal: exit.Signal, Error: exit.Error, Planned: planned})
	if failure != "" {
		// The heal that follows journals this with its first write.
		in.failure = failure
		r.Health = health.Unhealthy.String()
		in.rec = r
		in.pending = append(in.pending, ev)
		g.publish()
		g.signalInstance(in)
		return
	}
	g.putOrObserve(in, r, ev)
	g.signalInstance(in)
	g.poke()
}

// putOrObserve writes an observation of an instance (its health, its last
// exit). When the state dir takes no writes the observation is kept in
// memory, without its event, so that status and the load balancers still
// see it; the instance's next durable write carries it. Called on the
// loop.
func (g *Group) putOrObserve(in *instance, r store.Instance, ev store.Event) {
	if err := g.putInstance(in, r, ev); err != nil && store.NotWritable(err) {
		in.rec.Health, in.rec.LastExit = r.Health, r.LastExit
		g.publish()
	}
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
	r := in.rec
	r.Health = aggregate(in.health, len(g.cfg.HealthChecks)).String()
	hc := g.cfg.HealthChecks[idx]
	ev := g.event(r.ID, fmt.Sprintf("%s check %s after %d in a row: %s", hc.Type, tr.Status, tr.Consecutive, truncate(tr.Output, 200)),
		event.InstanceHealth{Check: idx, Type: hc.Type, Status: tr.Status.String(), Consecutive: tr.Consecutive, Output: tr.Output})
	if f := checkFailure(in.view(), hc.Type, tr); f != "" {
		in.failure = f
	}
	g.putOrObserve(in, r, ev)
	g.signalInstance(in)
}

// startCheckers starts the instance's health checkers; proven starts them
// healthy (an adopted InService instance: its failures count at once).
// Called on the loop; checkers are closed by jobs, never by the loop,
// because a checker's callback waits for the loop.
func (g *Group) startCheckers(in *instance, gen int, proven bool) {
	spec := g.spec(in, nil)
	for i, hc := range g.cfg.HealthChecks {
		i, hc := i, hc
		var p health.Prober
		switch hc.Type {
		case "process":
			proc := in.proc
			p = health.Process(func() bool {
				select {
				case <-proc.Done():
					return false
				default:
					return true
				}
			})
		case "tcp":
			p = health.TCP(g.checkAddr(in, hc.Port))
		case "http":
			p = health.HTTP("http://" + g.checkAddr(in, hc.Port) + hc.Path)
		case "exec":
			cmd, timeout := hc.Command, hc.Timeout.D()
			p = health.Exec(func(ctx context.Context) (int, string, error) {
				res, err := g.deps.Provider.Run(ctx, spec, cmd, timeout)
				if res.TimedOut {
					return -1, "timed out: " + res.Output, err
				}
				return res.ExitCode, res.Output, err
			})
		default:
			continue
		}
		cfg := health.Config{
			Interval:           hc.Interval.D(),
			Timeout:            hc.Timeout.D(),
			HealthyThreshold:   hc.HealthyThreshold,
			UnhealthyThreshold: hc.UnhealthyThreshold,
			GracePeriod:        hc.GracePeriod.D(),
			StartupTimeout:     hc.StartupTimeout.D(),
			StartHealthy:       proven,
		}
		name := fmt.Sprintf("%s/%s/%s", g.cfg.Name, in.id, hc.Type)
		c := health.NewChecker(name, cfg, p, func(tr health.Transition) {
			g.call(func() { g.onHealth(in, gen, i, tr) })
		}, g.log)
		in.health[i] = c.Status()
		in.checkers = append(in.checkers, c)
		c.Start(g.ctx)
	}
}

// checkAddr resolves a health check's port: a number, or an address name.
func (g *Group) checkAddr(in *instance, port string) string {
	for _, a := range g.cfg.ListenAddresses() {
		if a.Name == port {
			if a.Mode == "socket" {
				return a.Listen
			}
			return net.JoinHostPort(g.instanceIP(in.rec.Host), strconv.Itoa(in.ports[a.Name]))
		}
	}
	if p, ok := in.ports[port]; ok {
		return net.JoinHostPort(g.instanceIP(in.rec.Host), strconv.Itoa(p)) // a launch port
	}
	return net.JoinHostPort(g.instanceIP(in.rec.Host), port)
}
