package group

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/autoheal/autoheal/internal/address"
	"github.com/autoheal/autoheal/internal/config"
	"github.com/autoheal/autoheal/internal/crashpoint"
	"github.com/autoheal/autoheal/internal/event"
	"github.com/autoheal/autoheal/internal/heal"
	"github.com/autoheal/autoheal/internal/health"
	"github.com/autoheal/autoheal/internal/provider"
	"github.com/autoheal/autoheal/internal/store"
	"github.com/autoheal/autoheal/internal/volume"
)

// Lifecycle states, as in docs/design.md §4 and EC2 Auto Scaling.
const (
	Pending         = "Pending"
	PendingWait     = "Pending:Wait"
	PendingProceed  = "Pending:Proceed"
	InService       = "InService"
	Terminating     = "Terminating"
	TerminatingWait = "Terminating:Wait"
	Terminated      = "Terminated"
)

// Group status values.
const (
	Active   = "Active"
	Impaired = "Impaired"
)

// ErrNotFound is returned for an unknown instance.
var ErrNotFound = errors.New("not found")

// ErrInvalid marks a request that cannot be satisfied as asked.
var ErrInvalid = errors.New("invalid request")

// Deps are the components a group works with.
type Deps struct {
	Store    *store.Store
	Provider provider.Provider
	Volumes  *volume.Manager
	Logger   *slog.Logger
	// MetadataURL returns the metadata endpoint URL for an instance id, given
	// to the instance as AUTOHEAL_METADATA_URL. Optional.
	MetadataURL func(id string) string
	// InstanceToken returns an instance's API credential, given to it as
	// AUTOHEAL_INSTANCE_TOKEN. Optional.
	InstanceToken func(id string) string
	// InstanceEnv returns more of an instance's environment (NAME=value):
	// the AWS endpoint's and metadata service's variables. Optional.
	InstanceEnv func(id string) []string
	// Now is the clock; default time.Now.
	Now func() time.Time
	// OnFatal is called when the journal cannot be written for a reason
	// other than a state dir that takes no writes (store.NotWritable: the
	// group then holds still until it does): the controller must stop
	// rather than act without durability.
	OnFatal func(error)
	// OnChange is called on the group's loop with every new snapshot (the
	// load balancer registers Serving from it). It must not block or call
	// back into the group. Optional.
	OnChange func(Snapshot)
	// Place chooses the cluster host of a new instance of group, given
	// how many of the group's live instances each host runs; "" is the
	// controller's own host. Optional: nil places every instance there.
	Place func(group string, have map[string]int) (string, error)
	// HostAddress is the IP address of a cluster host, where its
	// instances listen and are reached (health checks, proxies, load
	// balancers). Required with Place.
	HostAddress func(host string) string
	// Drain is called before a planned stop of a live instance (operator
	// terminate, scale-in): it takes the instance out of every load
	// balancer and returns when its in-flight requests are done or the
	// deregistration delay has passed. Optional.
	Drain func(ctx context.Context, instanceID string)
}

// Group runs one instance group.
type Group struct {
	cfg    config.Group
	deps   Deps
	log    *slog.Logger
	policy heal.Policy
	sig    syscall.Signal

	proxies map[string]*address.Proxy  // by address name, proxy mode
	sockets map[string]*address.Socket // by address name, socket mode

	calls chan func()
	kick  chan struct{}
	done  chan struct{}
	ctx   context.Context
	stop  context.CancelFunc
	wg    sync.WaitGroup

	snap atomic.Pointer[Snapshot]

	// Owned by the loop goroutine.
	rec       store.Group
	hist      heal.History
	scripts   map[string]map[string]string // the ledger's script states (ledger.go)
	dirty     bool                         // the ledger changed and is not written yet
	instances map[string]*instance
	jobBusy   bool
	notBefore time.Time // no capacity launch before this (a failed port allocation backs off)
	timer     *time.Timer
	// hooks are the hook scripts running now, as lifecycle actions
	// (lifecycle_action.go).
	hooks lifecycleTable
}

// instance is the in-memory state of one instance, owned by the loop.
type instance struct {
	// id never changes: jobs may read it without the loop.
	id       string
	ports    map[string]int // instance ports by launch port or address name; never change
	rec      store.Instance
	proc     provider.Process
	checkers []*health.Checker
	health   map[int]health.Status // per checker index
	// failure is a failure signal not yet handled ("" when none).
	failure string
	// fenced is true once every process of the instance is confirmed gone.
	fenced bool
	// terminate asks for a planned termination (operator or scale-in).
	terminate string
	// replace: when terminating on request, launch a replacement.
	decrement bool
	// restarting is the cause of an operator's restart in place, from the
	// request until the instance runs again; its exit is then not a
	// failure. restartAsked is true until the restart job starts.
	restarting   string
	restartAsked bool
	// inServiceSince is when it last entered InService.
	inServiceSince time.Time
	// signal is poked (non-blocking) when health or process state changes,
	// for a job waiting on this instance.
	signal chan struct{}
	// pending are events to journal with the instance's next transition.
	pending []store.Event
	// gen increments on each launch of the process (restart in place), so
	// stale exit notifications of an earlier process are ignored.
	gen int
	// replaces is the failed, fenced instance a new one replaces, until
	// the new one's first durable write, which makes it Terminating (with
	// replacesCause) together with the new one's attachments.
	replaces      *instance
	replacesCause string
	// replacesID is the failed instance this one was launched to replace
	// ("" for a launch to reach capacity), for its first state's event.
	replacesID string
}

// Snapshot is a consistent, read-only view of a group for the API.
type Snapshot struct {
	Name        string             `json:"name"`
	Status      string             `json:"status"`
	Reason      string             `json:"reason,omitempty"`
	Min         int                `json:"min"`
	Max         int                `json:"max"`
	Desired     int                `json:"desired"`
	Instances   []store.Instance   `json:"instances"`
	Attachments []store.Attachment `json:"attachments"`
	Addresses   []AddressInfo      `json:"addresses"`
	// Serving are the instances that may receive traffic: InService, with
	// no failure or termination under way. An instance leaves it the
	// moment its process exits or a health check fails.
	Serving []Endpoint `json:"-"`
}

// Endpoint is a serving instance and its ports by name (launch ports and
// addresses).
type Endpoint struct {
	ID string
	// IP is where the instance listens (instanceIP).
	IP    string
	Ports map[string]int
}

// AddressInfo describes one of the group's addresses.
type AddressInfo struct {
	Name   string `json:"name"`
	Listen string `json:"listen"`
	Mode   string `json:"mode"`
	Holder string `json:"holder,omitempty"`
}

// New prepares a group; Start adopts its recorded instances and runs it.
func New(cfg config.Group, deps Deps) (*Group, error) {
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.Logger == nil {
		deps.Logger = slog.Default()
	}
	if deps.OnFatal == nil {
		deps.OnFatal = func(error) {}
	}
	sig, err := config.Signal(cfg.Launch.StopSignal)
	if err != nil {
		return nil, fmt.Errorf("group %s: %w", cfg.Name, err)
	}
	g := &Group{
		cfg:       cfg,
		deps:      deps,
		log:       deps.Logger.With("group", cfg.Name),
		policy:    policyOf(cfg.Heal),
		sig:       sig,
		proxies:   map[string]*address.Proxy{},
		sockets:   map[string]*address.Socket{},
		calls:     make(chan func()),
		kick:      make(chan struct{}, 1),
		done:      make(chan struct{}),
		instances: map[string]*instance{},
	}
	return g, nil
}

func policyOf(h config.Heal) heal.Policy {
	p := heal.Policy{
		RestartWindow:     h.RestartWindow.D(),
		BackoffBase:       h.BackoffBase.D(),
		BackoffCap:        h.BackoffCap.D(),
		ResetAfter:        h.ResetAfter.D(),
		ReplacementWindow: h.ReplacementWindow.D(),
	}
	if h.MaxRestarts != nil {
		p.MaxRestarts = *h.MaxRestarts
	}
	if h.MaxReplacements != nil {
		p.MaxReplacements = *h.MaxReplacements
	}
	return p
}

// Name returns the group's name.
func (g *Group) Name() string { return g.cfg.Name }

// Snapshot returns the latest view of the group.
func (g *Group) Snapshot() Snapshot {
	if s := g.snap.Load(); s != nil {
		return *s
	}
	return Snapshot{Name: g.cfg.Name}
}

// Adopt loads the group's durable state, opens its addresses and re-adopts
// the instances that outlived the previous controller. It returns the ids of
// the instances it adopted alive, for the orphan sweep, which must run
// before any group launches (Run): a sweep after a launch would take the new
// instance for an orphan.
func (g *Group) Adopt(ctx context.Context) ([]string, error) {
	g.ctx, g.stop = context.WithCancel(context.Background())
	if err := g.loadState(ctx); err != nil {
		return nil, err
	}
	alive, err := g.adopt(ctx)
	if err != nil {
		g.closeAddresses()
		return nil, err
	}
	g.publish()
	crashpoint.Hit("group.adopted")
	return alive, nil
}

// Run starts the group's loop. Adopt must have succeeded.
func (g *Group) Run() {
	g.wg.Add(1)
	go g.loop()
}

// Close stops the loop and any running job, closes the addresses and health
// checkers, and waits. Instances keep running: they outlive the controller.
func (g *Group) Close() {
	if g.stop == nil {
		return
	}
	g.stop()
	g.wg.Wait()
	for _, in := range g.instances {
		stopCheckers(in)
	}
	g.closeAddresses()
}

func (g *Group) closeAddresses() {
	for _, p := range g.proxies {
		p.Close()
	}
	for _, s := range g.sockets {
		s.Close()
	}
}

// loop is the goroutine that owns the group's state.
func (g *Group) loop() {
	defer g.wg.Done()
	defer close(g.done)
	for {
		g.safely(g.reconcile)
		var timerC <-chan time.Time
		if g.timer != nil {
			timerC = g.timer.C
		}
		select {
		case f := <-g.calls:
			g.safely(f)
		case <-g.kick:
		case <-timerC:
			g.timer = nil
		case <-g.ctx.Done():
			if g.timer != nil {
				g.timer.Stop()
			}
			return
		}
	}
}

// safely runs f, logging a panic instead of killing the controller.
func (g *Group) safely(f func()) {
	defer func() {
		if r := recover(); r != nil {
			g.log.Error("panic in group loop", "panic", r)
		}
	}()
	f()
}

// call runs f on the loop goroutine and waits for it.
func (g *Group) call(f func()) error {
	done := make(chan struct{})
	select {
	case g.calls <- func() { defer close(done); f() }:
	case <-g.done:
		return context.Canceled
	case <-g.ctx.Done():
		// Stopping (or never run): the loop will not take it.
		return context.Canceled
	}
	<-done
	return nil
}

// Wake makes the group plan again: the server calls it when the state dir
// takes writes again, so that what waited (a heal, a launch) goes on from
// the records.
func (g *Group) Wake() { g.poke() }

// poke wakes the loop.
func (g *Group) poke() {
	select {
	case g.kick <- struct{}{}:
	default:
	}
}

// Scale sets the group's capacity. Nil values are left unchanged. It also
// clears Impaired: setting capacity is how an operator asks to try again.
func (g *Group) Scale(ctx context.Context, min, max, desired *int) (Snapshot, error) {
	var err error
	cerr := g.call(func() {
		r := g.rec
		if min != nil {
			r.Min = *min
		}
		if max != nil {
			r.Max = *max
		}
		if desired != nil {
			r.Desired = *desired
		}
		if r.Min < 0 || r.Max < 0 || r.Desired < 0 {
			err = fmt.Errorf("%w: capacities must not be negative", ErrInvalid)
			return
		}
		if r.Min > r.Max {
			err = fmt.Errorf("%w: min %d is greater than max %d", ErrInvalid, r.Min, r.Max)
			return
		}
		if r.Desired < r.Min || r.Desired > r.Max {
			err = fmt.Errorf("%w: desired %d is outside min %d and max %d", ErrInvalid, r.Desired, r.Min, r.Max)
			return
		}
		evs := []store.Event{g.event("", fmt.Sprintf("capacity min %d max %d desired %d (was %d/%d/%d)", r.Min, r.Max, r.Desired, g.rec.Min, g.rec.Max, g.rec.Desired),
			scaled(r, &g.rec, "scale"))}
		if r.Status == Impaired {
			r.Status, r.Reason = Active, ""
			g.hist.Reset()
			g.notBefore = time.Time{}
			evs = append(evs, g.event("", "impaired state cleared by scale", event.GroupActive{Reason: "cleared by scale"}))
		}
		err = g.putGroup(r, evs...)
	})
	if cerr != nil {
		return Snapshot{}, cerr
	}
	return g.Snapshot(), err
}

// Terminate terminates an instance. Unless decrement is set, the group
// launches a replacement to keep its desired capacity.
func (g *Group) Terminate(ctx context.Context, id string, decrement bool) error {
	var err error
	cerr := g.call(func() {
		var in *instance
		if in, err = g.known(id); err != nil {
			return
		}
		if decrement {
			if g.rec.Desired-1 < g.rec.Min {
				err = fmt.Errorf("%w: desired %d would fall below min %d", ErrInvalid, g.rec.Desired-1, g.rec.Min)
				return
			}
			r := g.rec
			r.Desired--
			if err = g.putGroup(r, g.event(id, fmt.Sprintf("desired %d -> %d: instance terminated with decrement", g.rec.Desired, r.Desired), scaled(r, &g.rec, "terminate"))); err != nil {
				return
			}
		}
		if in.terminate == "" {
			in.terminate = "terminated by operator"
			in.decrement = decrement
		}
		g.signalInstance(in)
	})
	if cerr != nil {
		return cerr
	}
	return err
}

// Restart asks for a restart in place of a live instance, as an EC2
// reboot: same id, volume and address; its process is stopped with the stop
// signal and started again. It is not a failure and does not count against
// the heal policy. Load balancers take the instance out of rotation for the
// restart but do not drain it first (drain with the graceful maintenance
// document).
func (g *Group) Restart(ctx context.Context, id string) error {
	var err error
	cerr := g.call(func() {
		var in *instance
		if in, err = g.known(id); err != nil {
			return
		}
		if in.terminate != "" {
			err = fmt.Errorf("instance %s: %w", id, ErrNotFound)
			return
		}
		if in.rec.State != InService {
			err = fmt.Errorf("%w: instance %s is %s; only an InService instance can be restarted", ErrInvalid, id, in.rec.State)
			return
		}
		// A restart asked while the previous one is finishing (InService
		// again, its job not yet ended) is a new restart, not part of it.
		if !in.restartAsked {
			in.restarting, in.restartAsked = "restarted by operator", true
			g.publish()
		}
		g.signalInstance(in)
	})
	if cerr != nil {
		return cerr
	}
	return err
}

// known is an instance that is not Terminated, or an error wrapping
// ErrNotFound. Called on the loop.
func (g *Group) known(id string) (*instance, error) {
	in, ok := g.instances[id]
	if !ok || in.rec.State == Terminated {
		return nil, fmt.Errorf("instance %s: %w", id, ErrNotFound)
	}
	return in, nil
}

// Has reports whether the group knows the instance.
func (g *Group) Has(id string) bool {
	for _, in := range g.Snapshot().Instances {
		if in.ID == id {
			return true
		}
	}
	return false
}

// Instance returns one instance's record.
func (g *Group) Instance(id string) (store.Instance, bool) {
	for _, in := range g.Snapshot().Instances {
		if in.ID == id {
			return in, true
		}
	}
	return store.Instance{}, false
}

// Parameters returns the group's parameters for the metadata endpoint, with
// secret values hidden.
func (g *Group) Parameters() map[string]string {
	out := map[string]string{}
	for _, p := range g.cfg.Parameters {
		if p.Secret {
			out[p.Name] = "(secret)"
		} else {
			out[p.Name] = p.Value
		}
	}
	return out
}

// Config returns the group's configuration.
func (g *Group) Config() config.Group { return g.cfg }

// publish stores a fresh snapshot. Called on the loop after every change.
func (g *Group) publish() {
	s := &Snapshot{
		Name:    g.cfg.Name,
		Status:  g.rec.Status,
		Reason:  g.rec.Reason,
		Min:     g.rec.Min,
		Max:     g.rec.Max,
		Desired: g.rec.Desired,
	}
	for _, in := range g.instances {
		s.Instances = append(s.Instances, in.rec)
	}
	sort.Slice(s.Instances, func(i, j int) bool {
		return s.Instances[i].LaunchedAt.Before(s.Instances[j].LaunchedAt)
	})
	if atts, err := g.deps.Store.Attachments(context.Background(), g.cfg.Name); err == nil {
		s.Attachments = atts
	}
	for _, a := range g.cfg.Addresses {
		ai := AddressInfo{Name: a.Name, Listen: a.Listen, Mode: a.Mode}
		if a.Kind == config.KindVIP {
			ai.Listen, ai.Mode = a.IP, config.KindVIP // held by the host that runs the group
		}
		for _, at := range s.Attachments {
			if at.Kind == "address" && at.Name == a.Name {
				ai.Holder = at.Holder
			}
		}
		s.Addresses = append(s.Addresses, ai)
	}
	for _, in := range g.instances {
		if serving(in.view()) {
			s.Serving = append(s.Serving, Endpoint{ID: in.id, IP: g.instanceIP(in.rec.Host), Ports: in.ports})
		}
	}
	sort.Slice(s.Serving, func(i, j int) bool { return s.Serving[i].ID < s.Serving[j].ID })
	g.snap.Store(s)
	if g.deps.OnChange != nil {
		g.deps.OnChange(*s)
	}
}

// event is a journal event of the group about inst ("" for the group).
func (g *Group) event(inst, msg string, d event.Data) store.Event {
	ev := event.New(g.cfg.Name, inst, msg, d)
	ev.Time = g.deps.Now()
	return ev
}

// stopCheckers closes an instance's health checkers. Only for use when the
// loop is not running (see startCheckers).
func stopCheckers(in *instance) {
	for _, c := range in.checkers {
		c.Close()
	}
	in.checkers = nil
}

// RunCommand runs a shell script in a live instance's context: its
// environment (with extra added), working directory (or dir) and volume,
// as an SSM Run Command does. The script runs beside the application, not
// inside its process group, and is killed with its whole process group at
// the timeout.
func (g *Group) RunCommand(ctx context.Context, id, script string, extra map[string]string, dir string, timeout time.Duration) (provider.Result, error) {
	var spec provider.Spec
	var err error
	cerr := g.call(func() {
		var in *instance
		if in, err = g.known(id); err != nil {
			return
		}
		spec = g.spec(in, nil)
	})
	if cerr != nil {
		return provider.Result{}, cerr
	}
	if err != nil {
		return provider.Result{}, err
	}
	keys := make([]string, 0, len(extra))
	for k := range extra {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		spec.Env = append(spec.Env, k+"="+extra[k])
	}
	if dir != "" {
		spec.Workdir = dir
	}
	return g.deps.Provider.Run(ctx, spec, script, timeout)
}
