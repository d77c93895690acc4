package lb

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/autoheal/autoheal/internal/config"
)

// Member is a serving instance of a group: its id and its ports by name.
type Member struct {
	ID string
	// IP is the address the instance listens on: 127.0.0.1, or its
	// cluster host's address. Empty means 127.0.0.1.
	IP    string
	Ports map[string]int
}

// Balancer runs every load balancer of a config.
type Balancer struct {
	log       *slog.Logger
	listeners []*listener
	groups    map[string]*TargetGroup // by name
	order     []string
	// members: which target groups take instances of which group.
	members map[string][]membership
	mu      sync.Mutex
	closed  bool
	// configs are the load balancers as configured.
	configs []config.LoadBalancer
}

// LoadBalancers returns the load balancers as configured (the AWS
// endpoint's DescribeTargetGroups shows their settings).
func (b *Balancer) LoadBalancers() []config.LoadBalancer { return b.configs }

type membership struct {
	tg     *TargetGroup
	port   func(Member) (int, bool)
	weight int
}

// New opens every listener of cfg (failing if any cannot listen) and
// starts the health checks of static targets. Instances are registered by
// SetMembers.
func New(cfg *config.Config, log *slog.Logger) (*Balancer, error) {
	if log == nil {
		log = slog.Default()
	}
	b := &Balancer{log: log, groups: map[string]*TargetGroup{}, members: map[string][]membership{}, configs: cfg.LoadBalancers}
	for _, lbc := range cfg.LoadBalancers {
		for _, tgc := range lbc.TargetGroups {
			tg := newTargetGroup(tgc, log.With("load_balancer", lbc.Name))
			b.groups[tgc.Name] = tg
			b.order = append(b.order, tgc.Name)
			for _, m := range tgc.Groups {
				b.members[m.Group] = append(b.members[m.Group], membership{tg: tg, port: portOf(m.Port), weight: m.Weight})
			}
		}
		for _, lc := range lbc.Listeners {
			l, err := newListener(lc, b.groups[lc.TargetGroup], log.With("load_balancer", lbc.Name))
			if err != nil {
				b.Close()
				return nil, fmt.Errorf("load balancer %s: %w", lbc.Name, err)
			}
			b.listeners = append(b.listeners, l)
		}
	}
	for _, l := range b.listeners {
		l.run()
	}
	return b, nil
}

// portOf resolves a target group member's port: a number, or a name of
// the instance's ports.
func portOf(p string) func(Member) (int, bool) {
	if n, err := strconv.Atoi(p); err == nil {
		return func(Member) (int, bool) { return n, true }
	}
	return func(m Member) (int, bool) {
		n, ok := m.Ports[p]
		return n, ok && n > 0
	}
}

// SetMembers registers the serving instances of a group in the target
// groups that take it, and deregisters those that stopped serving. It does
// not block: call it from the group's loop.
func (b *Balancer) SetMembers(group string, members []Member) {
	if b == nil {
		return
	}
	for _, m := range b.members[group] {
		m.tg.setMembers(group, m.port, m.weight, members)
	}
}

// Drain takes an instance out of every target group that has it and
// returns when its requests are done or every deregistration delay ran
// out.
func (b *Balancer) Drain(ctx context.Context, instanceID string) {
	if b == nil {
		return
	}
	var wg sync.WaitGroup
	for _, tg := range b.groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tg.drainInstance(ctx, instanceID)
		}()
	}
	wg.Wait()
}

// TargetGroup returns a target group by name.
func (b *Balancer) TargetGroup(name string) (*TargetGroup, error) {
	if b != nil {
		if tg, ok := b.groups[name]; ok {
			return tg, nil
		}
	}
	return nil, fmt.Errorf("%w: target group %q", ErrNotFound, name)
}

// TargetGroups lists every target group's health, in config order.
func (b *Balancer) TargetGroups() []Health {
	out := []Health{}
	if b == nil {
		return out
	}
	for _, name := range b.order {
		out = append(out, b.groups[name].Health())
	}
	return out
}

// ListenerAddrs returns where each listener listens, by config listen.
func (b *Balancer) ListenerAddrs() map[string]net.Addr {
	out := map[string]net.Addr{}
	for _, l := range b.listeners {
		out[l.cfg.Listen] = l.Addr()
	}
	return out
}

// Close stops the listeners (requests in flight get up to five seconds)
// and the health checks.
func (b *Balancer) Close() {
	if b == nil {
		return
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	b.closed = true
	b.mu.Unlock()
	var wg sync.WaitGroup
	for _, l := range b.listeners {
		wg.Add(1)
		go func() { defer wg.Done(); l.close(5 * time.Second) }()
	}
	wg.Wait()
	names := make([]string, 0, len(b.groups))
	for n := range b.groups {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		b.groups[n].close()
	}
}
