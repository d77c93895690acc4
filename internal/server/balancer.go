package server

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/autoheal/autoheal/internal/lb"
	"github.com/autoheal/autoheal/internal/provider/remote"
)

// Load balancers on every host of a cluster (docs/design.md#13-the-cluster):
// each host runs the config's listeners and target groups for its whole
// run. The leader registers its groups' serving instances as on one host;
// a follower reads them from the leader's peer endpoint every quarter of
// the TTL and health-checks the targets itself, as every node of an ALB
// does. A listener on any host reaches instances on every host.

// membersPath is where the leader answers with its groups' serving
// instances.
const membersPath = "/peer/v1/members"

// servingMembers is every group's serving instances, as the load
// balancers take them.
func (c *controller) servingMembers() map[string][]lb.Member {
	out := map[string][]lb.Member{}
	for _, g := range c.groups {
		s := g.Snapshot()
		ms := make([]lb.Member, len(s.Serving))
		for i, e := range s.Serving {
			ms[i] = lb.Member{ID: e.ID, IP: e.IP, Ports: e.Ports}
		}
		out[s.Name] = ms
	}
	return out
}

// setMembers answers the followers with the leader's serving instances.
func (f *failsafe) setMembers(fn func() map[string][]lb.Member) { f.members.Store(&fn) }

// serveMembers answers a member host's signed request for the serving
// instances, while this host leads.
func (f *failsafe) serveMembers(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<10))
	if err == nil {
		_, err = remote.Verify(r, f.m.PeerKey(), f.m.Host(), &f.nonces, body)
	}
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		w.WriteHeader(http.StatusForbidden)
		json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
		return
	}
	fn := f.members.Load()
	if fn == nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		json.NewEncoder(w).Encode(map[string]string{"error": "host " + f.m.Host() + " does not lead the cluster (now)"})
		return
	}
	json.NewEncoder(w).Encode((*fn)())
}

// feedBalancer keeps this follower's load balancers' targets those the
// leader's groups serve, read from the leader every quarter of the TTL,
// until ctx ends (this host leads, or stops). A read that fails keeps the
// targets: their health checks here still take a dead one out.
func (h *hostRun) feedBalancer(ctx context.Context) {
	if len(h.cfg.LoadBalancers) == 0 {
		return
	}
	groups := map[string]bool{}
	for _, lbc := range h.cfg.LoadBalancers {
		for _, tg := range lbc.TargetGroups {
			for _, m := range tg.Groups {
				groups[m.Group] = true
			}
		}
	}
	c := &h.cfg.Cluster
	ttl := c.LeaseTTL.D()
	cli := &http.Client{Timeout: ttl / 2}
	leader := ""
	t := time.NewTicker(ttl / 4)
	defer t.Stop()
	for {
		if leader == "" {
			lctx, cancel := context.WithTimeout(ctx, ttl/2)
			leader, _ = h.m.LeaderName(lctx)
			cancel()
		}
		if lh := c.Host(leader); lh != nil && leader != h.m.Host() {
			base := "http://" + net.JoinHostPort(lh.Address, strconv.Itoa(c.PeerPort))
			var got map[string][]lb.Member
			if err := remote.Call(ctx, cli, h.m.PeerKey(), h.m.Host(), leader, base, membersPath, struct{}{}, &got); err != nil {
				leader = "" // ask etcd again: it may have changed
			} else {
				for g := range groups {
					h.bal.SetMembers(g, got[g])
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
