package group

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"

	"github.com/autoheal/autoheal/internal/address"
	"github.com/autoheal/autoheal/internal/event"
	"github.com/autoheal/autoheal/internal/health"
	"github.com/autoheal/autoheal/internal/provider"
	"github.com/autoheal/autoheal/internal/store"
)

// adopt re-attaches to the instances an earlier controller run left behind,
// opens the group's addresses and returns the ids of the live instances.
// It runs before the loop starts, so it may touch the state directly.
func (g *Group) adopt(ctx context.Context) ([]string, error) {
	recs, err := g.deps.Store.Instances(ctx, g.cfg.Name, false)
	if err != nil {
		return nil, fmt.Errorf("load instances of %s: %w", g.cfg.Name, err)
	}
	var alive []string
	for _, r := range recs {
		if r.State == Terminated {
			continue
		}
		in := newInstance()
		in.id, in.ports, in.rec = r.ID, r.Ports, r
		g.instances[r.ID] = in
		proc, err := g.adoptOn(ctx, r.Host, r.ID)
		switch {
		case errors.Is(err, provider.ErrNotFound):
			g.adoptDead(in, provider.ExitStatus{}, false)
			continue
		case err != nil:
			return nil, fmt.Errorf("adopt %s: %w", r.ID, err)
		}
		in.proc = proc
		if isDone(proc) {
			g.adoptDead(in, proc.Exit(), true)
			continue
		}
		alive = append(alive, r.ID)
		g.appendEvents(g.event(r.ID, fmt.Sprintf("re-adopted %s pid %d", r.State, proc.Pid()), event.InstanceAdopt{State: r.State, Alive: true, Pid: proc.Pid()}))
	}
	g.forgetUnknownScripts()
	if err := g.openAddresses(ctx); err != nil {
		return nil, err
	}
	// Watch the live ones only now that sockets and proxies exist.
	for _, id := range alive {
		in := g.instances[id]
		switch in.rec.State {
		case InService, PendingProceed:
			g.watchAdopted(in)
		}
	}
	return alive, nil
}

// adoptDead records an instance whose application is gone (exited, with
// its status, or not found at all): fenced, no pid, and, if it was started
// (InService, or Pending:Proceed with a pid or an exit), failed and
// unhealthy, durably, so status never shows a dead instance healthy while
// the heal waits or a controller restarts. The heal decides next.
func (g *Group) adoptDead(in *instance, exit provider.ExitStatus, exited bool) {
	in.fenced = true
	r := in.rec
	was := r.State
	r.Pid = 0
	msg := fmt.Sprintf("not running (was %s)", was)
	data := event.InstanceAdopt{State: was}
	if exited {
		if b, err := json.Marshal(exit); err == nil {
			r.LastExit = string(b)
		}
		msg = fmt.Sprintf("application %s while the controller was down (was %s)", exit, was)
		data.Exit = exit.String()
	}
	// A Pending:Proceed instance that was never started (no pid recorded,
	// no process found) had its launch interrupted: it is resumed, not
	// healed. One whose application ran and exited failed, pid or not.
	// One whose host left the cluster is replaced, whatever its state
	// but Terminating (whose job ends it anyway).
	switch {
	case exit.Lost && was != Terminating && was != TerminatingWait:
		r.Health = health.Unhealthy.String()
		in.failure = hostLostFailure(r.Host, exit)
	case was == InService || was == PendingProceed && (exited || in.rec.Pid != 0):
		r.Health = health.Unhealthy.String()
		in.failure = "instance lost while the controller was down"
		if exited {
			in.failure = "application " + exit.String() + " while the controller was down"
		}
	}
	g.putInstance(in, r, g.event(r.ID, msg, data))
}

// forgetUnknownScripts drops ledger entries of instances that are not
// known any more (terminated and pruned). Called before the loop runs.
func (g *Group) forgetUnknownScripts() {
	for id := range g.scripts {
		if _, ok := g.instances[id]; !ok {
			g.clearScripts(id, "")
		}
	}
}

// watchAdopted follows an adopted process; the loop is not running yet, so
// checkers and watchers are started directly. An InService instance was
// proven healthy before: its checks start healthy and its failures count
// at once.
func (g *Group) watchAdopted(in *instance) {
	proven := in.rec.State == InService
	g.watch(in, in.proc, proven)
	if proven {
		in.inServiceSince = g.deps.Now()
	}
}

// openAddresses binds the group's stable endpoints. A socket-mode listener
// still held by a live instance is taken back from that process rather than
// bound again (which would fail, or split the traffic).
func (g *Group) openAddresses(ctx context.Context) error {
	socketIdx := 0
	for _, a := range g.cfg.ListenAddresses() {
		att, err := g.deps.Store.Attachment(ctx, "address", g.cfg.Name, a.Name)
		if err != nil {
			return fmt.Errorf("address %s: %w", a.Name, err)
		}
		holder := g.instances[att.Holder]
		live := holder != nil && holder.proc != nil && !holder.fenced
		switch a.Mode {
		case "socket":
			fd := 3 + socketIdx
			socketIdx++
			var s *address.Socket
			if live {
				if f, err := address.RecoverListener(holder.proc.Pid(), fd); err == nil {
					s, err = address.SocketFromFile(f)
					f.Close()
					if err == nil {
						if verr := s.Verify(a.Listen); verr != nil {
							s.Close()
							s, err = nil, verr
						}
					}
					if err != nil {
						g.log.Warn("recovered listener unusable", "address", a.Name, "err", err)
					}
				} else {
					g.log.Warn("could not recover listener from instance", "address", a.Name, "instance", att.Holder, "err", err)
				}
			}
			if s == nil {
				s, err = address.ListenSocket(a.Listen)
				if err != nil {
					g.closeAddresses()
					return fmt.Errorf("address %s: listen %s: %w", a.Name, a.Listen, err)
				}
			}
			g.sockets[a.Name] = s
		default:
			p, err := address.ListenProxy(a.Listen, a.WaitTimeout.D(), g.log.With("address", a.Name))
			if err != nil {
				g.closeAddresses()
				return fmt.Errorf("address %s: listen %s: %w", a.Name, a.Listen, err)
			}
			g.proxies[a.Name] = p
			if live && (holder.rec.State == InService || holder.rec.State == PendingProceed) {
				p.Associate(holder.rec.ID, net.JoinHostPort(g.instanceIP(holder.rec.Host), strconv.Itoa(holder.ports[a.Name])))
			}
		}
	}
	return nil
}

// Instances returns the records of the group's instances (for tests).
func (g *Group) Instances() []store.Instance { return g.Snapshot().Instances }
