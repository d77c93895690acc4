package group

import (
	"context"
	"fmt"

	"github.com/autoheal/autoheal/internal/event"
	"github.com/autoheal/autoheal/internal/provider"
)

// Instances across cluster hosts (docs/design.md#13-the-cluster): the
// group chooses a new instance's host through Deps.Place before anything
// else is given to it, records it with the instance, and reaches the
// instance at that host's address from then on. A restart in place stays
// on its host; an instance whose host left the cluster is replaced.

// instanceIP is where an instance on host listens and is reached.
func (g *Group) instanceIP(host string) string {
	if host == "" || g.deps.HostAddress == nil {
		return "127.0.0.1"
	}
	return g.deps.HostAddress(host)
}

// place chooses the host of a new instance: "" (this host) without
// Deps.Place. Called off the loop.
func (g *Group) place() (string, error) {
	if g.deps.Place == nil {
		return "", nil
	}
	have := map[string]int{}
	if err := g.onLoop(func() error {
		for _, in := range g.instances {
			if in.rec.State != Terminated && in.rec.Host != "" && !in.fenced {
				have[in.rec.Host]++
			}
		}
		return nil
	}); err != nil {
		return "", err
	}
	return g.deps.Place(g.cfg.Name, have)
}

// placeOrBackOff places a new instance, or records why it cannot be and
// backs the capacity launch off.
func (g *Group) placeOrBackOff() (string, bool) {
	host, err := g.place()
	if err != nil {
		g.log.Warn("cannot place a new instance", "err", err)
		g.record(g.event("", "place instance: "+err.Error(), event.GroupError{Op: "place", Error: err.Error()}))
		g.call(func() { g.notBefore = g.deps.Now().Add(g.policy.BackoffBase) })
		return "", false
	}
	return host, true
}

// adoptOn re-attaches to an instance on its recorded host.
func (g *Group) adoptOn(ctx context.Context, host, id string) (provider.Process, error) {
	if a, ok := g.deps.Provider.(provider.HostAdopter); ok && host != "" {
		return a.AdoptOn(ctx, host, id)
	}
	return g.deps.Provider.Adopt(ctx, id)
}

// hostLostFailure is the failure of an instance whose host left the
// cluster: replaced (rules.go decide), never restarted there.
func hostLostFailure(host string, exit provider.ExitStatus) string {
	return fmt.Sprintf("%shost %s left the cluster: %s", hostLostPrefix, host, exit.Error)
}
