package lb

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/autoheal/autoheal/internal/awsid"
	"github.com/autoheal/autoheal/internal/config"
)

// TargetGroup is a pool of targets behind one or more listeners. One mutex
// guards target states; the proxy reads the rotation (the healthy targets)
// through an atomic pointer and never takes the lock on the request path.
type TargetGroup struct {
	cfg     config.TargetGroup
	log     *slog.Logger
	now     func() time.Time
	metrics Metrics
	hc      *checker

	mu      sync.Mutex
	targets map[string]*target
	nextSeq uint64 // of the next target made
	// changed is closed and replaced whenever the rotation changes, so that
	// held requests wake up.
	changed chan struct{}
	closed  bool

	rot atomic.Pointer[rotation]
	rr  atomic.Uint64

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// rotation is an immutable view of the targets that receive requests.
type rotation struct {
	targets []*target
	// schedule is a smooth weighted round-robin order of indexes into
	// targets (nginx's algorithm), for weighted_round_robin and slow start.
	schedule []int
	ramping  bool // a target is in slow start: rebuild the rotation soon
}

func newTargetGroup(cfg config.TargetGroup, log *slog.Logger) *TargetGroup {
	ctx, cancel := context.WithCancel(context.Background())
	tg := &TargetGroup{
		cfg:     cfg,
		log:     log.With("target_group", cfg.Name),
		now:     time.Now,
		targets: map[string]*target{},
		changed: make(chan struct{}),
		ctx:     ctx,
		cancel:  cancel,
	}
	tg.hc = newChecker(cfg.HealthCheck)
	tg.rot.Store(&rotation{})
	tg.mu.Lock() // checks start as targets are added
	for _, s := range cfg.Targets {
		tg.add(s.ID, s.Address, "", s.Weight, false)
	}
	tg.mu.Unlock()
	if cfg.SlowStart > 0 {
		tg.wg.Add(1)
		go tg.rampLoop()
	}
	return tg
}

// Name is the target group's name.
func (tg *TargetGroup) Name() string { return tg.cfg.Name }

// close stops the health checks and closes every backend connection.
func (tg *TargetGroup) close() {
	tg.mu.Lock()
	tg.closed = true
	for _, t := range tg.targets {
		tg.stopChecking(t)
	}
	tg.mu.Unlock()
	tg.cancel()
	tg.wg.Wait()
	tg.mu.Lock()
	for _, t := range tg.targets {
		t.pool.closeIdle(true)
	}
	tg.mu.Unlock()
	tg.hc.close()
}

// add registers a target, or re-registers a drained or draining one.
// Called with tg.mu held or before the group is shared.
func (tg *TargetGroup) add(id, addr, group string, weight int, manual bool) *target {
	if id == "" {
		id = addr
	}
	if weight <= 0 {
		weight = 1
	}
	t := tg.targets[id]
	switch {
	case t == nil || (addr != "" && t.addr != addr):
		// A target's address never changes once it exists: the proxy and
		// its checks read it without the lock. A new address is a new
		// target under the same id (the old one finishes its drain alone).
		old := t
		t = &target{tg: tg, id: id, addr: addr, group: group, weight: weight, seq: tg.nextSeq}
		tg.nextSeq++
		tg.targets[id] = t
		if old != nil {
			tg.stopChecking(old)
			if old.state == StateHealthy {
				tg.rebuild() // out of rotation with its address
			}
		}
	case t.state == StateInitial || t.state == StateHealthy || t.state == StateUnhealthy:
		return t
	}
	t.manual = manual
	t.pool.reopen()
	tg.setState(t, StateInitial, "registered")
	t.checkOK, t.checkFail = 0, 0
	tg.startChecking(t)
	return t
}

// setState changes a target's state and, when that changes who is in
// rotation, publishes a new rotation. Called with tg.mu held.
func (tg *TargetGroup) setState(t *target, state, reason string) {
	if t.state == state && t.reason == reason {
		return
	}
	was := t.state
	t.state, t.reason, t.since = state, reason, tg.now()
	if state == StateHealthy && was != StateHealthy {
		t.healthySince = t.since
	}
	if was != state {
		tg.log.Debug("target state", "target", t.id, "from", was, "to", state, "reason", reason)
	}
	if (was == StateHealthy) != (state == StateHealthy) {
		tg.rebuild()
	}
}

// rebuild publishes the rotation from the healthy targets. Called with
// tg.mu held.
func (tg *TargetGroup) rebuild() {
	r := &rotation{}
	for _, t := range tg.targets {
		if t.state == StateHealthy {
			r.targets = append(r.targets, t)
		}
	}
	sort.Slice(r.targets, func(i, j int) bool { return r.targets[i].id < r.targets[j].id })
	weighted := tg.cfg.Algorithm == config.AlgorithmWeightedRoundRobin
	weights := make([]int, len(r.targets))
	now := tg.now()
	for i, t := range r.targets {
		w := 1
		if weighted {
			w = t.weight
		}
		if ss := tg.cfg.SlowStart.D(); ss > 0 && tg.cfg.Algorithm != config.AlgorithmLeastOutstanding {
			if up := now.Sub(t.healthySince); up < ss {
				// Ramp linearly from a tenth of the share to all of it,
				// in steps of a tenth (weights are whole numbers).
				w *= 10
				w = max(w*int(up*10/ss)/10, w/10, 1)
				r.ramping = true
			} else {
				w *= 10
			}
		}
		weights[i] = w
	}
	if weighted || r.ramping {
		r.schedule = smoothSchedule(weights)
	}
	tg.rot.Store(r)
	close(tg.changed)
	tg.changed = make(chan struct{})
}

// smoothSchedule is nginx's smooth weighted round robin, unrolled over one
// period: with weights 5,1,1 it gives a a b a c a a, never five a in a row.
// Weights are divided by their greatest common divisor first; a period
// longer than maxSchedule is scaled down, keeping every target in it.
func smoothSchedule(weights []int) []int {
	const maxSchedule = 4096
	g := 0
	total := 0
	for _, w := range weights {
		g = gcd(g, w)
	}
	if g == 0 {
		return nil
	}
	w := make([]int, len(weights))
	for i := range weights {
		w[i] = weights[i] / g
		total += w[i]
	}
	if total > maxSchedule {
		scaled := 0
		for i := range w {
			w[i] = max(1, w[i]*maxSchedule/total)
			scaled += w[i]
		}
		total = scaled
	}
	cur := make([]int, len(w))
	out := make([]int, 0, total)
	for range total {
		best := 0
		for i := range w {
			cur[i] += w[i]
			if cur[i] > cur[best] {
				best = i
			}
		}
		cur[best] -= total
		out = append(out, best)
	}
	return out
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// rampLoop rebuilds the rotation while targets are in slow start, so their
// share grows.
func (tg *TargetGroup) rampLoop() {
	defer tg.wg.Done()
	step := max(tg.cfg.SlowStart.D()/10, 100*time.Millisecond)
	t := time.NewTicker(step)
	defer t.Stop()
	for {
		select {
		case <-tg.ctx.Done():
			return
		case <-t.C:
		}
		if tg.rot.Load().ramping {
			tg.mu.Lock()
			tg.rebuild()
			tg.mu.Unlock()
		}
	}
}

// pick chooses a target for a request, skipping those already tried. It
// returns nil when no untried target is healthy.
func (tg *TargetGroup) pick(tried []*target) *target {
	r := tg.rot.Load()
	n := len(r.targets)
	if n == 0 {
		return nil
	}
	if tg.cfg.Algorithm == config.AlgorithmLeastOutstanding {
		// The fewest in flight; ties go round robin so that an idle group
		// still spreads its requests.
		start := int(tg.rr.Add(1) % uint64(n))
		var best *target
		var bestN int64
		for i := range n {
			t := r.targets[(start+i)%n]
			if wasTried(tried, t) {
				continue
			}
			if c := t.inflight.Load(); best == nil || c < bestN {
				best, bestN = t, c
			}
		}
		return best
	}
	for range n {
		var t *target
		if len(r.schedule) > 0 {
			t = r.targets[r.schedule[tg.rr.Add(1)%uint64(len(r.schedule))]]
		} else {
			t = r.targets[tg.rr.Add(1)%uint64(n)]
		}
		if !wasTried(tried, t) {
			return t
		}
	}
	for _, t := range r.targets { // the schedule may have skipped one
		if !wasTried(tried, t) {
			return t
		}
	}
	return nil
}

func wasTried(tried []*target, t *target) bool {
	for _, x := range tried {
		if x == t {
			return true
		}
	}
	return false
}

// hold waits until the rotation changes or the deadline passes. It reports
// false at the deadline or when the target group closes.
func (tg *TargetGroup) hold(ctx context.Context, deadline time.Time) bool {
	tg.mu.Lock()
	ch := tg.changed
	tg.mu.Unlock()
	if tg.rot.Load().hasHealthy() {
		// It changed between the failed pick and now.
		return true
	}
	d := time.Until(deadline)
	if d <= 0 {
		return false
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ch:
		return true
	case <-tm.C:
		return false
	case <-ctx.Done():
		return false
	case <-tg.ctx.Done():
		return false
	}
}

func (r *rotation) hasHealthy() bool { return len(r.targets) > 0 }

// inRotation reports whether t still receives requests: a request retried
// on the same target must not reach one that was deregistered meanwhile.
func (tg *TargetGroup) inRotation(t *target) bool {
	for _, x := range tg.rot.Load().targets {
		if x == t {
			return true
		}
	}
	return false
}

// connectFailed is passive health checking: a target that refuses a
// connection leaves the rotation at once; its checks bring it back.
func (tg *TargetGroup) connectFailed(t *target, err error) {
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return
	}
	tg.mu.Lock()
	if t.state == StateHealthy || t.state == StateInitial {
		tg.setState(t, StateUnhealthy, "connection refused")
		t.checkOK, t.checkFail = 0, tg.cfg.HealthCheck.UnhealthyThreshold
	}
	tg.mu.Unlock()
}

// setMembers registers the serving instances of one group and
// deregisters its instances that are no longer serving, at once.
func (tg *TargetGroup) setMembers(group string, port func(Member) (int, bool), weight int, members []Member) {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	if tg.closed {
		return
	}
	want := map[string]string{}
	for _, m := range members {
		if p, ok := port(m); ok {
			want[m.ID] = net.JoinHostPort(cmp.Or(m.IP, "127.0.0.1"), strconv.Itoa(p))
		}
	}
	for id, t := range tg.targets {
		if t.group != group {
			continue
		}
		if _, ok := want[id]; !ok && t.state != StateDraining {
			// The instance is going away (its process exited, a check
			// failed, or it is terminating): out of rotation now. Its
			// in-flight requests finish or fail on their own.
			tg.deregister(t, "instance is not serving", false)
		}
	}
	for id, addr := range want {
		t := tg.targets[id]
		switch {
		case t == nil:
			tg.add(id, addr, group, weight, false)
		case t.manual && (t.state == StateUnused || t.state == StateDraining):
			// An operator took it out; it stays out until registered.
		case t.state == StateDraining || t.state == StateUnused:
			tg.add(id, addr, group, weight, false)
		}
	}
}

// deregister starts draining t; manual ones stay listed as unused after.
// Called with tg.mu held.
func (tg *TargetGroup) deregister(t *target, reason string, manual bool) <-chan struct{} {
	if t.state == StateDraining {
		t.manual = t.manual || manual
		return t.drained
	}
	if t.state == StateUnused {
		ch := make(chan struct{})
		close(ch)
		return ch
	}
	t.manual = manual
	tg.stopChecking(t)
	tg.setState(t, StateDraining, reason)
	t.drained = make(chan struct{})
	tg.wg.Add(1)
	go tg.drain(t, t.drained)
	return t.drained
}

// drain waits for t's in-flight requests, up to the deregistration delay,
// then closes its connections and retires it.
func (tg *TargetGroup) drain(t *target, done chan struct{}) {
	defer tg.wg.Done()
	deadline := time.Now().Add(tg.cfg.DeregistrationDelay.D())
	t.pool.closeIdle(false)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for t.inflight.Load() > 0 && time.Now().Before(deadline) && tg.stillDraining(t, done) {
		select {
		case <-tick.C:
		case <-tg.ctx.Done():
			deadline = time.Now()
		}
		t.pool.closeIdle(false)
	}
	tg.mu.Lock()
	// Only a drain still in force closes the pool: a target registered
	// again meanwhile is in use, and a closed pool would refuse it every
	// connection (its requests all retried elsewhere, for good).
	if t.state == StateDraining && t.drained == done {
		t.pool.closeIdle(true)
		if t.manual {
			tg.setState(t, StateUnused, "deregistered")
		} else if tg.targets[t.id] == t {
			delete(tg.targets, t.id)
		}
	}
	tg.mu.Unlock()
	close(done)
}

// stillDraining reports whether t is still in the drain that done ends,
// not registered again (or in a newer drain) since.
func (tg *TargetGroup) stillDraining(t *target, done chan struct{}) bool {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	return t.state == StateDraining && t.drained == done
}

// Register adds a target by instance id (one this target group already
// knows, or that an operator took out) or by host:port address.
func (tg *TargetGroup) Register(id, addr string, weight int) error {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	if t, ok := tg.targets[id]; ok && addr == "" {
		if t.state == StateUnused || t.state == StateDraining {
			tg.add(t.id, t.addr, t.group, t.weight, false)
		}
		return nil
	}
	if addr == "" {
		if _, _, err := net.SplitHostPort(id); err != nil {
			return fmt.Errorf("%w: target %q is not in target group %s; give an instance id it knows or host:port", ErrNotFound, id, tg.cfg.Name)
		}
		addr = id
	}
	if _, p, err := net.SplitHostPort(addr); err != nil || p == "" {
		return fmt.Errorf("target address %q: want host:port", addr)
	}
	tg.add(id, addr, "", weight, true)
	return nil
}

// Deregister takes a target out of rotation and drains it. It returns at
// once; the target is unused when the drain ends.
func (tg *TargetGroup) Deregister(id string) (<-chan struct{}, error) {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	t, ok := tg.targets[id]
	if !ok {
		return nil, fmt.Errorf("%w: target %q is not in target group %s", ErrNotFound, id, tg.cfg.Name)
	}
	return tg.deregister(t, "deregistered by operator", true), nil
}

// drainInstance deregisters an instance's target (not manually: it
// disappears once drained) and returns when the drain ends, or at once
// when this target group does not have it.
func (tg *TargetGroup) drainInstance(ctx context.Context, id string) {
	tg.mu.Lock()
	t, ok := tg.targets[id]
	var done <-chan struct{}
	if ok && t.group != "" {
		done = tg.deregister(t, "instance is terminating", t.manual)
	}
	tg.mu.Unlock()
	if done == nil {
		return
	}
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// ErrNotFound is returned for an unknown target group or target.
var ErrNotFound = errors.New("not found")

// TargetHealth describes one target for the API, like ELB's
// DescribeTargetHealth.
type TargetHealth struct {
	ID       string    `json:"id"`
	Address  string    `json:"address"`
	Group    string    `json:"group,omitempty"`
	State    string    `json:"state"`
	Reason   string    `json:"reason,omitempty"`
	Since    time.Time `json:"since"`
	Weight   int       `json:"weight"`
	InFlight int64     `json:"in_flight"`
}

// Health is a target group's targets and metrics.
type Health struct {
	Name string `json:"name"`
	// ARN is the target group's AWS-shaped ARN (docs/design.md §14).
	ARN       string          `json:"arn"`
	Protocol  string          `json:"protocol"`
	Algorithm string          `json:"algorithm"`
	Targets   []TargetHealth  `json:"targets"`
	Metrics   MetricsSnapshot `json:"metrics"`
}

// Health returns the targets' states and the target group's metrics.
func (tg *TargetGroup) Health() Health {
	h := Health{Name: tg.cfg.Name, ARN: awsid.TargetGroupARN(tg.cfg.Name), Protocol: tg.cfg.Protocol, Algorithm: tg.cfg.Algorithm, Targets: []TargetHealth{}}
	healthy, unhealthy := 0, 0
	tg.mu.Lock()
	for _, t := range tg.targets {
		h.Targets = append(h.Targets, TargetHealth{
			ID: t.id, Address: t.addr, Group: t.group, State: t.state, Reason: t.reason,
			Since: t.since, Weight: t.weight, InFlight: t.inflight.Load(),
		})
		switch t.state {
		case StateHealthy:
			healthy++
		case StateUnhealthy:
			unhealthy++
		}
	}
	tg.mu.Unlock()
	sort.Slice(h.Targets, func(i, j int) bool { return h.Targets[i].ID < h.Targets[j].ID })
	h.Metrics = tg.metrics.snapshot()
	h.Metrics.HealthyHostCount, h.Metrics.UnHealthyHostCount = healthy, unhealthy
	return h
}
