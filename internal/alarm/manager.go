package alarm

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/autoheal/autoheal/internal/config"
	"github.com/autoheal/autoheal/internal/event"
	"github.com/autoheal/autoheal/internal/metrics"
	"github.com/autoheal/autoheal/internal/store"
)

// Source is where alarms read their metric (the metrics store).
type Source interface {
	Match(namespace, metric string, dims map[string]string) []metrics.SeriesKey
	Aggregate(key metrics.SeriesKey, start, end time.Time, period time.Duration, statistic string) ([]metrics.PeriodValue, error)
}

// Transition is an alarm state change, for the actions.
type Transition struct {
	Alarm      config.Alarm
	Key        string            // the alarm and its dimension values
	Dimensions map[string]string // concrete values (a "*" resolved)
	From, To   State
	Reason     string
	Time       time.Time
}

// Deps are what the manager reads and tells.
type Deps struct {
	Metrics Source
	// Journal records state changes as events.
	Journal func(ctx context.Context, ev store.Event) error
	// OnChange runs the actions of a transition; it must not block long.
	OnChange func(Transition)
	Now      func() time.Time
	Logger   *slog.Logger
	// Tick is how often alarms are checked for a due evaluation. Default 1s.
	Tick time.Duration
}

// Status is one alarm state (per dimension value set for a "*" alarm).
type Status struct {
	Name       string            `json:"name"`
	Key        string            `json:"key"`
	Dimensions map[string]string `json:"dimensions,omitempty"`
	State      string            `json:"state"`
	Reason     string            `json:"reason"`
	Since      time.Time         `json:"since"`
	Namespace  string            `json:"namespace"`
	Metric     string            `json:"metric"`
	Statistic  string            `json:"statistic"`
	Comparison string            `json:"comparison"`
	Threshold  float64           `json:"threshold"`
	Period     string            `json:"period"`
	// EvaluationPeriods and DatapointsToAlarm are N and M.
	EvaluationPeriods int       `json:"evaluation_periods"`
	DatapointsToAlarm int       `json:"datapoints_to_alarm"`
	Evaluated         time.Time `json:"evaluated,omitempty"`
}

// Manager evaluates every alarm at each of its period boundaries, keeps
// its states and reports transitions. One goroutine evaluates; reads take
// a short lock.
type Manager struct {
	deps   Deps
	alarms []compiled  // immutable after NewManager
	last   []time.Time // last evaluation per alarm; the loop's only
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
	// running: Run started the loop, so Close waits for it.
	running atomic.Bool

	mu     sync.Mutex
	states map[string]*keyState
}

type compiled struct {
	cfg  config.Alarm
	spec Spec
}

type keyState struct {
	alarm     string
	dims      map[string]string
	series    metrics.SeriesKey
	state     State
	reason    string
	since     time.Time
	evaluated time.Time
}

// NewManager compiles the config's alarms (validated: their names parse).
func NewManager(cfg *config.Config, deps Deps) (*Manager, error) {
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.Logger == nil {
		deps.Logger = slog.Default()
	}
	if deps.Tick <= 0 {
		deps.Tick = time.Second
	}
	m := &Manager{deps: deps, states: map[string]*keyState{}, stop: make(chan struct{}), done: make(chan struct{})}
	for _, a := range cfg.Alarms {
		cmp, err := ParseComparison(a.Comparison)
		if err != nil {
			return nil, fmt.Errorf("alarm %s: %w", a.Name, err)
		}
		treat, err := ParseTreatMissing(a.TreatMissingData)
		if err != nil {
			return nil, fmt.Errorf("alarm %s: %w", a.Name, err)
		}
		m.alarms = append(m.alarms, compiled{cfg: a, spec: Spec{
			Period: a.Period.D(), EvaluationPeriods: a.EvaluationPeriods, DatapointsToAlarm: a.DatapointsToAlarm,
			Comparison: cmp, Threshold: a.ThresholdValue(), TreatMissing: treat,
		}})
	}
	return m, nil
}

// Run starts the evaluation loop.
func (m *Manager) Run() {
	m.running.Store(true)
	go func() {
		defer close(m.done)
		t := time.NewTicker(m.deps.Tick)
		defer t.Stop()
		for {
			m.evaluateDue(m.deps.Now())
			select {
			case <-m.stop:
				return
			case <-t.C:
			}
		}
	}()
}

// Close stops the loop and waits for it.
func (m *Manager) Close() {
	m.once.Do(func() { close(m.stop) })
	if m.running.Load() {
		<-m.done
	}
}

func (m *Manager) evaluateDue(now time.Time) {
	defer func() {
		if p := recover(); p != nil {
			m.deps.Logger.Error("alarm evaluation panicked", "panic", p)
		}
	}()
	if len(m.last) != len(m.alarms) {
		m.last = make([]time.Time, len(m.alarms))
	}
	for i := range m.alarms {
		a := &m.alarms[i]
		if !Due(a.spec, m.last[i], now) {
			continue
		}
		m.last[i] = now
		m.Evaluate(a.cfg.Name, now)
	}
}

// Key names one state of an alarm: its name, and the values of its "*"
// dimensions in name order.
func Key(alarm string, dims map[string]string) string {
	if len(dims) == 0 {
		return alarm
	}
	names := make([]string, 0, len(dims))
	for n := range dims {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString(alarm)
	for i, n := range names {
		if i == 0 {
			b.WriteByte('/')
		} else {
			b.WriteByte(',')
		}
		b.WriteString(n + "=" + dims[n])
	}
	return b.String()
}

// Evaluate evaluates one alarm now, for every series it matches (every
// value of a "*" dimension), and reports its transitions.
func (m *Manager) Evaluate(name string, now time.Time) {
	var a *compiled
	for i := range m.alarms {
		if m.alarms[i].cfg.Name == name {
			a = &m.alarms[i]
		}
	}
	if a == nil {
		return
	}
	wild := false
	exact := map[string]string{}
	for k, v := range a.cfg.Dimensions {
		if v == config.DimensionAny {
			wild = true
		} else {
			exact[k] = v
		}
	}
	var keys []metrics.SeriesKey
	if wild {
		keys = m.deps.Metrics.Match(a.cfg.Namespace, a.cfg.Metric, a.cfg.Dimensions)
	} else {
		k := metrics.SeriesKey{Namespace: a.cfg.Namespace, MetricName: a.cfg.Metric}
		for n, v := range exact {
			k.Dimensions = append(k.Dimensions, metrics.Dimension{Name: n, Value: v})
		}
		sort.Slice(k.Dimensions, func(i, j int) bool { return k.Dimensions[i].Name < k.Dimensions[j].Name })
		keys = []metrics.SeriesKey{k}
	}
	// Series seen before but gone from the store (expired) are evaluated
	// too: their missing data counts.
	seen := map[string]bool{}
	type job struct {
		key  string
		dims map[string]string
		sk   metrics.SeriesKey
	}
	var jobs []job
	for _, sk := range keys {
		dims := map[string]string{}
		for _, d := range sk.Dimensions {
			dims[d.Name] = d.Value
		}
		k := Key(a.cfg.Name, dims)
		seen[k] = true
		jobs = append(jobs, job{k, dims, sk})
	}
	m.mu.Lock()
	for k, st := range m.states {
		if st.alarm == a.cfg.Name && !seen[k] {
			jobs = append(jobs, job{k, st.dims, st.series})
		}
	}
	m.mu.Unlock()
	start, end := Window(a.spec, now)
	for _, j := range jobs {
		pvs, err := m.deps.Metrics.Aggregate(j.sk, start, end, a.spec.Period, a.cfg.Statistic)
		if err != nil {
			m.deps.Logger.Warn("alarm query", "alarm", a.cfg.Name, "err", err)
			continue
		}
		pts := make([]Point, len(pvs))
		for i, pv := range pvs {
			pts[i] = Point(pv)
		}
		m.apply(a, j.key, j.dims, j.sk, pts, now)
	}
}

func (m *Manager) apply(a *compiled, key string, dims map[string]string, sk metrics.SeriesKey, pts []Point, now time.Time) {
	m.mu.Lock()
	st, ok := m.states[key]
	if !ok {
		st = &keyState{alarm: a.cfg.Name, dims: dims, series: sk, state: InsufficientData, since: now, reason: "Unchecked: initial alarm creation"}
		m.states[key] = st
	}
	prev := st.state
	res := Evaluate(a.spec, pts, prev)
	st.evaluated = now
	changed := res.State != prev
	if changed {
		st.state, st.reason, st.since = res.State, res.Reason, now
	} else if res.Reason != "" {
		st.reason = res.Reason
	}
	m.mu.Unlock()
	if !changed {
		return
	}
	inst := dims[config.DimensionInstanceID]
	if m.deps.Journal != nil {
		m.deps.Journal(context.Background(), store.Event{Time: now, Type: event.KindAlarmState, Instance: inst,
			Message: fmt.Sprintf("alarm %s %s -> %s: %s", key, prev, res.State, res.Reason),
			Data: event.AlarmState{Alarm: a.cfg.Name, Key: key, From: prev.String(), To: res.State.String(),
				Reason: res.Reason, Dimensions: dims}})
	}
	if m.deps.OnChange != nil {
		m.deps.OnChange(Transition{Alarm: a.cfg, Key: key, Dimensions: dims, From: prev, To: res.State, Reason: res.Reason, Time: now})
	}
}

// State returns the state of one alarm key ("" if unknown).
func (m *Manager) State(key string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if st, ok := m.states[key]; ok {
		return st.state.String()
	}
	return ""
}

// Statuses lists every alarm state: one per configured alarm without a
// "*" dimension (INSUFFICIENT_DATA before its first evaluation), one per
// value set for the others.
func (m *Manager) Statuses() []Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []Status{}
	for _, a := range m.alarms {
		found := false
		for k, st := range m.states {
			if st.alarm != a.cfg.Name {
				continue
			}
			found = true
			out = append(out, status(a, k, st))
		}
		if !found {
			out = append(out, status(a, Key(a.cfg.Name, nil), &keyState{state: InsufficientData, reason: "Unchecked: initial alarm creation"}))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

func status(a compiled, key string, st *keyState) Status {
	return Status{
		Name: a.cfg.Name, Key: key, Dimensions: st.dims, State: st.state.String(), Reason: st.reason, Since: st.since,
		Namespace: a.cfg.Namespace, Metric: a.cfg.Metric, Statistic: a.cfg.Statistic, Comparison: a.cfg.Comparison,
		Threshold: a.cfg.ThresholdValue(), Period: a.cfg.Period.D().String(),
		EvaluationPeriods: a.spec.EvaluationPeriods, DatapointsToAlarm: a.spec.DatapointsToAlarm, Evaluated: st.evaluated,
	}
}
