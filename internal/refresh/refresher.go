package refresh

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/autoheal/autoheal/internal/event"
	"github.com/autoheal/autoheal/internal/group"
	"github.com/autoheal/autoheal/internal/store"
)

// Refresh statuses, as AWS names them.
const (
	InProgress = "InProgress"
	Successful = "Successful"
	Cancelled  = "Cancelled"
	Failed     = "Failed"
)

// Errors of Start and Cancel.
var (
	ErrInProgress = errors.New("a refresh of the group is in progress")
	ErrNone       = errors.New("no refresh of the group is in progress")
	ErrNoGroup    = errors.New("no such group")
	ErrInvalid    = errors.New("invalid refresh settings")
)

// Status is a refresh as recorded.
type Status struct {
	Group     string     `json:"group"`
	Status    string     `json:"status"`
	Settings  Settings   `json:"settings"`
	StartedAt time.Time  `json:"started_at"`
	EndedAt   *time.Time `json:"ended_at,omitempty"`
	// Replaced are the old instances terminated so far.
	Replaced []string `json:"replaced"`
	// ToReplace is how many old instances there were at the start.
	ToReplace int `json:"to_replace"`
	// Waiting says what it waits for now.
	Waiting string `json:"waiting,omitempty"`
	Reason  string `json:"reason,omitempty"`
}

// Group is the group being refreshed (*group.Group).
type Group interface {
	Name() string
	Snapshot() group.Snapshot
	Terminate(ctx context.Context, id string, decrement bool) error
}

// Records keeps the refreshes (*store.Store): they outlive the
// controller.
type Records interface {
	Get(ctx context.Context, key string) (string, error)
	Set(ctx context.Context, key, value string, evs ...store.Event) error
}

// Deps are what a Refresher works with.
type Deps struct {
	Groups  []Group
	Records Records
	// TargetHealthy reports whether an instance is healthy in every target
	// group it is in (true when in none).
	TargetHealthy func(id string) bool
	Logger        *slog.Logger
	// Tick is how often a refresh looks at its group (default 100 ms).
	Tick time.Duration
}

// Refresher runs instance refreshes.
type Refresher struct {
	deps    Deps
	groups  map[string]Group
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	mu      sync.Mutex
	running map[string]*run
}

type run struct {
	st     Status
	cancel chan struct{}
	// done is closed when its loop has returned.
	done chan struct{}
}

// recordKey is where a group's last refresh is kept.
func recordKey(group string) string { return "refresh/" + group }

// New makes a Refresher; Run takes up the recorded refreshes.
func New(deps Deps) *Refresher {
	if deps.Logger == nil {
		deps.Logger = slog.Default()
	}
	if deps.Tick == 0 {
		deps.Tick = 100 * time.Millisecond
	}
	if deps.TargetHealthy == nil {
		deps.TargetHealthy = func(string) bool { return true }
	}
	r := &Refresher{deps: deps, groups: map[string]Group{}, running: map[string]*run{}}
	for _, g := range deps.Groups {
		r.groups[g.Name()] = g
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	return r
}

// Run takes up the refreshes in progress when the last controller
// stopped.
func (r *Refresher) Run() {
	for name := range r.groups {
		st, err := r.Get(r.ctx, name)
		if err == nil && st.Status == InProgress {
			r.deps.Logger.Info("instance refresh taken up", "group", name, "started", st.StartedAt)
			r.start(st)
		}
	}
}

// Close stops the refreshes where they are (recorded in progress: the
// next controller takes them up).
func (r *Refresher) Close() {
	r.cancel()
	r.wg.Wait()
}

// Get returns a group's last refresh; Status is "" when it has had none.
func (r *Refresher) Get(ctx context.Context, name string) (Status, error) {
	if _, ok := r.groups[name]; !ok {
		return Status{}, fmt.Errorf("group %s: %w", name, ErrNoGroup)
	}
	r.mu.Lock()
	if ru, ok := r.running[name]; ok {
		st := ru.st
		r.mu.Unlock()
		return st, nil
	}
	r.mu.Unlock()
	v, err := r.deps.Records.Get(ctx, recordKey(name))
	if errors.Is(err, store.ErrNotFound) {
		// Never refreshed: a status without one (Status "").
		return Status{Group: name, Replaced: []string{}}, nil
	}
	if err != nil {
		return Status{}, fmt.Errorf("group %s: %w", name, err)
	}
	var st Status
	if err := json.Unmarshal([]byte(v), &st); err != nil {
		return Status{}, fmt.Errorf("group %s: refresh record: %w", name, err)
	}
	return st, nil
}

// Start begins a refresh of a group: every instance launched before now
// is replaced.
func (r *Refresher) Start(ctx context.Context, name string, s Settings) (Status, error) {
	g, ok := r.groups[name]
	if !ok {
		return Status{}, fmt.Errorf("group %s: %w", name, ErrNoGroup)
	}
	if s.MinHealthyPercentage == 0 {
		s.MinHealthyPercentage = 90
	}
	if s.MaxUnavailable == 0 {
		s.MaxUnavailable = 1
	}
	if s.MinHealthyPercentage < 0 || s.MinHealthyPercentage > 100 || s.MaxUnavailable < 0 {
		return Status{}, fmt.Errorf("%w: min_healthy_percentage %d must be 0-100 and max_unavailable %d at least 1", ErrInvalid, s.MinHealthyPercentage, s.MaxUnavailable)
	}
	r.mu.Lock()
	_, busy := r.running[name]
	r.mu.Unlock()
	if busy {
		return Status{}, fmt.Errorf("group %s: %w", name, ErrInProgress)
	}
	now := time.Now()
	st := Status{Group: name, Status: InProgress, Settings: s, StartedAt: now, Replaced: []string{}}
	for _, in := range g.Snapshot().Instances {
		if in.State != group.Terminated {
			st.ToReplace++
		}
	}
	if err := r.save(ctx, st, fmt.Sprintf("instance refresh begun: %d instance(s) to replace, min_healthy_percentage %d, max_unavailable %d",
		st.ToReplace, s.MinHealthyPercentage, s.MaxUnavailable), ""); err != nil {
		return Status{}, err
	}
	r.start(st)
	return st, nil
}

// Cancel stops a refresh in progress: instances being replaced go on,
// none more is.
func (r *Refresher) Cancel(ctx context.Context, name string) (Status, error) {
	r.mu.Lock()
	ru, ok := r.running[name]
	if ok {
		delete(r.running, name)
		close(ru.cancel)
	}
	r.mu.Unlock()
	if !ok {
		return Status{}, fmt.Errorf("group %s: %w", name, ErrNone)
	}
	// Once the loop has returned, nothing more is terminated.
	<-ru.done
	r.mu.Lock()
	st := ru.st
	r.mu.Unlock()
	return r.end(ctx, st, Cancelled, "cancelled by the operator")
}

func (r *Refresher) start(st Status) {
	ru := &run{st: st, cancel: make(chan struct{}), done: make(chan struct{})}
	r.mu.Lock()
	r.running[st.Group] = ru
	r.mu.Unlock()
	r.wg.Add(1)
	go r.loop(ru)
}

// loop applies Decide until the refresh ends.
func (r *Refresher) loop(ru *run) {
	defer r.wg.Done()
	defer close(ru.done)
	g := r.groups[ru.st.Group]
	t := time.NewTicker(r.deps.Tick)
	defer t.Stop()
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-ru.cancel:
			return
		case <-t.C:
		}
		snap := g.Snapshot()
		if snap.Status == "Impaired" {
			r.finish(ru, Failed, "the group is impaired: "+snap.Reason)
			return
		}
		step := Decide(snap.Desired, ru.st.Settings, r.instances(snap, ru.st.StartedAt))
		if step.Done {
			r.finish(ru, Successful, "")
			return
		}
		r.mu.Lock()
		ru.st.Waiting = step.Waiting
		r.mu.Unlock()
		for _, id := range step.Terminate {
			if err := g.Terminate(r.ctx, id, false); err != nil {
				r.deps.Logger.Warn("instance refresh: terminate", "group", g.Name(), "instance", id, "err", err)
				continue
			}
			r.mu.Lock()
			ru.st.Replaced = append(ru.st.Replaced, id)
			st := ru.st
			r.mu.Unlock()
			r.save(r.ctx, st, fmt.Sprintf("instance refresh: replacing %s (%d of %d)", id, len(st.Replaced), st.ToReplace), id)
		}
	}
}

// instances maps a snapshot for Decide: an instance is old when launched
// before the refresh, healthy when in service, passing its checks and
// healthy in its target groups.
func (r *Refresher) instances(snap group.Snapshot, started time.Time) []Instance {
	serving := map[string]bool{}
	for _, e := range snap.Serving {
		serving[e.ID] = true
	}
	var out []Instance
	for _, in := range snap.Instances {
		if in.State == group.Terminated {
			continue
		}
		out = append(out, Instance{ID: in.ID, Old: in.LaunchedAt.Before(started),
			Terminating: strings.HasPrefix(in.State, "Terminating"),
			Healthy:     serving[in.ID] && in.Health == "healthy" && r.deps.TargetHealthy(in.ID)})
	}
	return out
}

func (r *Refresher) finish(ru *run, status, reason string) {
	r.mu.Lock()
	if r.running[ru.st.Group] != ru {
		r.mu.Unlock()
		return
	}
	delete(r.running, ru.st.Group)
	st := ru.st
	r.mu.Unlock()
	r.end(r.ctx, st, status, reason)
}

func (r *Refresher) end(ctx context.Context, st Status, status, reason string) (Status, error) {
	now := time.Now()
	st.Status, st.EndedAt, st.Reason, st.Waiting = status, &now, reason, ""
	msg := fmt.Sprintf("instance refresh %s: %d of %d instance(s) replaced", strings.ToLower(status), len(st.Replaced), st.ToReplace)
	if reason != "" {
		msg += ": " + reason
	}
	return st, r.save(context.WithoutCancel(ctx), st, msg, "")
}

// save records a refresh with its event.
func (r *Refresher) save(ctx context.Context, st Status, msg, instance string) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	ev := store.Event{Type: event.KindGroupRefresh, Group: st.Group, Instance: instance, Message: msg,
		Data: event.GroupRefresh{Status: st.Status, Instance: instance, Reason: st.Reason}}
	return r.deps.Records.Set(ctx, recordKey(st.Group), string(b), ev)
}
