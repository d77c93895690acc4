package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/autoheal/autoheal/internal/cluster"
	"github.com/autoheal/autoheal/internal/config"
	"github.com/autoheal/autoheal/internal/event"
	"github.com/autoheal/autoheal/internal/group"
	"github.com/autoheal/autoheal/internal/health"
	"github.com/autoheal/autoheal/internal/provider/local"
	"github.com/autoheal/autoheal/internal/provider/remote"
	"github.com/autoheal/autoheal/internal/store"
	"github.com/autoheal/autoheal/internal/vip"
)

// Instances on other hosts than the leader (docs/design.md#13-the-cluster):
// every host runs an agent (provider/remote) on its peer endpoint with its
// own local provider, under its own lease's deadline; the leader's groups
// with a placement launch, adopt, stop and check their instances through
// a remote.Client, and a new leader takes over the instances every member
// runs from their agents.

// hostAgent is this host's agent with its local provider, for its whole
// run: the leader's controller, when this host leads, uses the same
// provider for the instances placed here.
func hostAgent(cfg *config.Config, opts Options, m *cluster.Member, stateDir, deadline string) (*remote.Agent, *local.Local, error) {
	l, err := local.New(local.Options{StateDir: stateDir, Exe: opts.Exe, Logger: opts.Logger, Deadline: deadline})
	if err != nil {
		return nil, nil, fmt.Errorf("local provider: %w", err)
	}
	ttl := cfg.Cluster.LeaseTTL.D()
	return &remote.Agent{
		Host: m.Host(), Key: m.PeerKey(), Local: l, Dir: filepath.Join(stateDir, "placed"), Volumes: filepath.Join(stateDir, "volumes"),
		Leader: m.LeaderName, LeaderTTL: ttl / 4, Log: opts.Logger,
		Addresses: func(group string, addrs []string) error { return holdGroupVIPs(stateDir, deadline, group, addrs) },
	}, l, nil
}

// holdGroupVIPs holds a placed group's virtual IPs on this host
// (internal/vip), or releases them when addrs is empty. The group's holder
// follows a link to this host's deadline file: removing the link releases
// the group's addresses alone, and the host's deadline still ends them
// with its pets.
func holdGroupVIPs(stateDir, deadline, group string, addrs []string) error {
	link := filepath.Join(stateDir, "vip-"+group+".deadline")
	if len(addrs) == 0 {
		if err := os.Remove(link); err != nil && !os.IsNotExist(err) {
			return err
		}
		return nil
	}
	var parsed []vip.Addr
	for _, s := range addrs {
		a, err := vip.Parse(s)
		if err != nil {
			return err
		}
		parsed = append(parsed, a)
	}
	if to, err := os.Readlink(link); err != nil || to != deadline {
		os.Remove(link)
		if err := os.Symlink(deadline, link); err != nil {
			return fmt.Errorf("vip: %w", err)
		}
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("vip holder: %w", err)
	}
	return vip.Start(exe, filepath.Join(stateDir, "vip-"+group+".lock"), link, filepath.Join(stateDir, "vip.log"), parsed)
}

// placedVIPs is each placed group's virtual IPs, as vip.Addr strings (the
// agents' wire form).
func placedVIPs(cfg *config.Config) (map[string][]string, error) {
	out := map[string][]string{}
	for i := range cfg.Groups {
		g := &cfg.Groups[i]
		if !g.Placement.Set() {
			continue
		}
		addrs, err := groupVIPs(g)
		if err != nil {
			return nil, err
		}
		for _, a := range addrs {
			out[g.Name] = append(out[g.Name], a.String())
		}
	}
	return out, nil
}

// moveVIPs keeps each placed group's virtual IPs on the host of its first
// serving instance, until ctx ends: released on every other member
// first (at the leader's start, where it was is not known), then held
// there, announced at once. Before a replacement serves on another host,
// the old one has left the cluster (its fence waits for that), and its
// holder released the addresses at its deadline.
func (c *controller) moveVIPs(ctx context.Context) {
	addrs, err := placedVIPs(c.cfg)
	if err != nil {
		c.log.Error("cluster: placed groups' virtual IPs", "err", err)
		return
	}
	if len(addrs) == 0 {
		return
	}
	l := c.opts.lead
	ttl := c.cfg.Cluster.LeaseTTL.D()
	held := map[string]string{} // group: host; "" not known
	t := time.NewTicker(ttl / 10)
	defer t.Stop()
	for {
		for _, g := range c.groups {
			a, ok := addrs[g.Name()]
			if !ok {
				continue
			}
			host := servingHost(g.Snapshot())
			if host == "" || held[g.Name()] == host {
				continue
			}
			for _, h := range c.cfg.Cluster.Hosts {
				if h.Name == host || !l.members.has(h.Name) || (held[g.Name()] != "" && h.Name != held[g.Name()]) {
					continue
				}
				cctx, cancel := context.WithTimeout(ctx, ttl)
				if err := l.client.HoldAddresses(cctx, h.Name, g.Name(), nil); err != nil {
					c.log.Warn("cluster: cannot release a group's virtual IPs on a host", "group", g.Name(), "host", h.Name, "err", err)
				}
				cancel()
			}
			cctx, cancel := context.WithTimeout(ctx, ttl)
			err := l.client.HoldAddresses(cctx, host, g.Name(), a)
			cancel()
			if err != nil {
				c.log.Warn("cluster: cannot hold a group's virtual IPs on its instance's host", "group", g.Name(), "host", host, "err", err)
				continue
			}
			c.log.Info("cluster: a group's virtual IPs go to its instance's host", "group", g.Name(), "host", host, "addrs", a)
			held[g.Name()] = host
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// servingHost is the host of a group's first serving instance, or "".
func servingHost(s group.Snapshot) string {
	for _, e := range s.Serving {
		for _, in := range s.Instances {
			if in.ID == e.ID {
				return in.Host
			}
		}
	}
	return ""
}

// members is the leader's view of which hosts hold a live lease, read
// from etcd every eighth of the TTL. A read that fails keeps the last
// view: a host is taken for gone only when etcd says its key is gone, so
// etcd out of reach (the failsafe) moves nothing.
type members struct {
	mu   sync.Mutex
	live map[string]bool
}

func (s *members) has(host string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.live[host]
}

func (s *members) snapshot() map[string]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.live)
}

// watch reads the members now, then every eighth of the TTL until ctx
// ends.
func (s *members) watch(ctx context.Context, m *cluster.Member, ttl time.Duration, log *slog.Logger) error {
	read := func() error {
		rctx, cancel := context.WithTimeout(ctx, ttl/2)
		defer cancel()
		live, err := m.Members(rctx)
		if err != nil {
			return err
		}
		s.mu.Lock()
		gone := []string{}
		for h := range s.live {
			if !live[h] {
				gone = append(gone, h)
			}
		}
		s.live = live
		s.mu.Unlock()
		if len(gone) > 0 {
			log.Warn("cluster: hosts left the cluster (their leases lapsed); their instances are gone with them", "hosts", gone)
		}
		return nil
	}
	if err := read(); err != nil {
		return err
	}
	go func() {
		t := time.NewTicker(ttl / 8)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				read()
			}
		}
	}()
	return nil
}

// settle waits, at the cluster's first start, up to a lease TTL for every
// configured host to join, so that the first placements spread over them
// (instances are not moved once placed). Later leaders do not wait: a host
// missing then is down.
func (s *members) settle(ctx context.Context, c *config.Cluster, log *slog.Logger) {
	ttl := c.LeaseTTL.D()
	end := time.Now().Add(ttl)
	for {
		var missing []string
		for _, h := range c.Hosts {
			if !s.has(h.Name) {
				missing = append(missing, h.Name)
			}
		}
		if len(missing) == 0 {
			return
		}
		if !time.Now().Before(end) {
			log.Warn("cluster: the first start goes on without hosts that have not joined; placed groups spread over the others", "missing", missing)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(ttl / 10):
		}
	}
}

// placer is a placed group's Deps.Place: cluster.Place with the live
// members and every group's instances by host. A group with local volumes
// is pinned to the host its first instance was placed on, where they
// live: it waits for that host while it is not a member, as an EBS volume
// waits in its zone.
func (c *controller) placer(gc *config.Group) func(string, map[string]int) (string, error) {
	return func(_ string, have map[string]int) (string, error) {
		load := map[string]int{}
		for _, g := range c.groups {
			for _, in := range g.Snapshot().Instances {
				if in.State != group.Terminated && in.Host != "" {
					load[in.Host]++
				}
			}
		}
		live := c.opts.lead.members.snapshot()
		if !hasLocalVolumes(gc) {
			return cluster.Place(&c.cfg.Cluster, &gc.Placement, live, have, load)
		}
		ctx, cancel := context.WithTimeout(c.ctx, c.cfg.Cluster.LeaseTTL.D())
		defer cancel()
		pinned, err := c.st.Get(ctx, pinKey(gc.Name))
		switch {
		case err == nil:
			if !live[pinned] {
				return "", fmt.Errorf("waiting for host %s, where the group's local volumes live: it is not a member of the cluster now", pinned)
			}
			return pinned, nil
		case !errors.Is(err, store.ErrNotFound):
			return "", err
		}
		host, err := cluster.Place(&c.cfg.Cluster, &gc.Placement, live, have, load)
		if err != nil {
			return "", err
		}
		msg := fmt.Sprintf("local volumes of %s pinned to host %s", gc.Name, host)
		if err := c.st.Set(ctx, pinKey(gc.Name), host, event.New(gc.Name, "", msg, event.VolumePin{Host: host})); err != nil {
			return "", err
		}
		c.volumesOn(gc, host)
		return host, nil
	}
}

// pinKey records the host a group with local volumes is pinned to (in the
// replicated kv table: the next leader keeps the pin).
func pinKey(group string) string { return "placement/pin/" + group }

func hasLocalVolumes(gc *config.Group) bool {
	for _, v := range gc.Volumes {
		if v.Kind == config.VolumeLocal {
			return true
		}
	}
	return false
}

// volumesOn keeps the group's local volumes on host: this host's own
// (under the state dir), or another's, through its agent.
func (c *controller) volumesOn(gc *config.Group, host string) {
	for _, v := range gc.Volumes {
		if v.Kind != config.VolumeLocal {
			continue
		}
		if host == c.opts.lead.client.Host {
			c.vols.SetHost(gc.Name, v.Name, nil)
		} else {
			c.vols.SetHost(gc.Name, v.Name, c.opts.lead.client.VolumeHost(host))
		}
	}
}

// pinVolumes applies the recorded pins at the controller's start.
func (c *controller) pinVolumes(ctx context.Context) error {
	for i := range c.cfg.Groups {
		gc := &c.cfg.Groups[i]
		if !hasLocalVolumes(gc) {
			continue
		}
		host, err := c.st.Get(ctx, pinKey(gc.Name))
		switch {
		case errors.Is(err, store.ErrNotFound):
			continue
		case err != nil:
			return err
		}
		c.volumesOn(gc, host)
	}
	return nil
}

// takeOverPlaced makes the store's placed instances those the members
// run: each live one is recorded (a new leader's store may not know it),
// InService, its health to be proven again by its checks; each recorded
// one that no member runs is recorded terminated (its host left, or it
// stopped). A member that does not answer is asked again until it does
// or leaves: its instances are neither taken for lost nor forgotten.
func takeOverPlaced(ctx context.Context, rc *remote.Client, st *store.Store, log *slog.Logger) error {
	var placed []remote.Placed
	for {
		var err error
		if placed, err = rc.Collect(ctx); err == nil {
			break
		}
		log.Warn("cluster: asking the members for their instances again", "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster: the members' instances: %w", errors.Join(err, ctx.Err()))
		case <-time.After(rc.Cluster.LeaseTTL.D() / 10):
		}
	}
	running := map[string]remote.Placed{}
	byHost := map[string][]string{}
	for _, p := range placed {
		if p.Alive {
			running[p.Record.ID] = p
			byHost[p.Record.Host] = append(byHost[p.Record.Host], p.Record.ID)
		}
	}
	recs, err := st.Instances(ctx, "", false)
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	known := map[string]bool{}
	for _, in := range recs {
		known[in.ID] = true
		if in.Host == "" || in.State == group.Terminated {
			continue
		}
		if p, ok := running[in.ID]; ok {
			if in.Pid != p.Pid {
				in.Pid, in.UpdatedAt = p.Pid, now
				if err := st.PutInstance(ctx, in); err != nil {
					return err
				}
			}
			continue
		}
		was := in.State
		in.State, in.Pid, in.TerminatedAt, in.UpdatedAt = group.Terminated, 0, &now, now
		in.Cause = fmt.Sprintf("no member of the cluster runs it (host %s, was %s)", in.Host, was)
		ev := event.New(in.Group, in.ID, "terminated: "+in.Cause, event.InstanceState{From: was, To: group.Terminated, Cause: in.Cause})
		if err := st.PutInstance(ctx, in, ev); err != nil {
			return err
		}
	}
	for id, p := range running {
		if known[id] {
			continue
		}
		in := p.Record
		// InService and proven healthy under the leader that launched it
		// (its checks start healthy on adoption and count failures at
		// once).
		in.State, in.Health, in.Pid, in.UpdatedAt = group.InService, health.Healthy.String(), p.Pid, now
		in.Cause = "taken over by a new leader from host " + in.Host
		ev := event.New(in.Group, in.ID, fmt.Sprintf("taken over on host %s, pid %d", in.Host, p.Pid), event.InstanceState{To: group.InService, Cause: in.Cause})
		if err := st.PutInstance(ctx, in, ev); err != nil {
			return err
		}
	}
	log.Info("cluster: the members' instances are this leader's", "running", len(running), "by_host", byHost, "members", rc.Members())
	return nil
}
