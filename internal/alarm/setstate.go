package alarm

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/autoheal/autoheal/internal/config"
	"github.com/autoheal/autoheal/internal/event"
	"github.com/autoheal/autoheal/internal/metrics"
	"github.com/autoheal/autoheal/internal/store"
)

// Errors of SetState.
var (
	// ErrUnknownAlarm: the name is neither an alarm nor one of its states.
	ErrUnknownAlarm = errors.New("no such alarm")
	// ErrNoState: the alarm tracks one state per value of a "*"
	// dimension, and no series has given it one yet.
	ErrNoState = errors.New("the alarm has no state yet")
)

// SetState sets alarm states by hand, as CloudWatch's SetAlarmState
// does: name is a state's key (Key: "webapp-down/InstanceId=i-...") or an
// alarm's name, which sets every state of that alarm. Each takes the
// state and reason until its next evaluation, which decides again from
// the data with the set state as the previous one. A state that changes
// is journaled and its actions run (Deps.OnChange), as for an evaluated
// transition; one that does not change only takes the reason. It returns
// the keys set, sorted.
func (m *Manager) SetState(name string, to State, reason string) ([]string, error) {
	if to < InsufficientData || to > Alarm {
		return nil, fmt.Errorf("unknown alarm state %d", to)
	}
	now := m.deps.Now()
	type change struct {
		a    *compiled
		key  string
		dims map[string]string
		from State
	}
	var changes []change
	var keys []string
	m.mu.Lock()
	set := func(a *compiled, key string, st *keyState) {
		keys = append(keys, key)
		from := st.state
		st.state, st.reason = to, reason
		if from != to {
			st.since = now
			changes = append(changes, change{a, key, st.dims, from})
		}
	}
	if st, ok := m.states[name]; ok {
		set(m.compiled(st.alarm), name, st)
	} else if a := m.compiled(name); a != nil {
		for k, st := range m.states {
			if st.alarm == name {
				set(a, k, st)
			}
		}
		if len(keys) == 0 {
			// Not evaluated yet: the state the first evaluation would
			// make, when the alarm has only one.
			dims, sk, ok := a.single()
			if !ok {
				m.mu.Unlock()
				return nil, fmt.Errorf("%w: alarm %s tracks one state per value of its \"*\" dimensions, and no series matches it yet", ErrNoState, name)
			}
			k := Key(name, dims)
			st := &keyState{alarm: name, dims: dims, series: sk, state: InsufficientData, since: now, reason: "Unchecked: initial alarm creation"}
			m.states[k] = st
			set(a, k, st)
		}
	} else {
		m.mu.Unlock()
		return nil, fmt.Errorf("%w: %q", ErrUnknownAlarm, name)
	}
	m.mu.Unlock()
	for _, c := range changes {
		inst := c.dims[config.DimensionInstanceID]
		if m.deps.Journal != nil {
			m.deps.Journal(context.Background(), store.Event{Time: now, Type: event.KindAlarmState, Instance: inst,
				Message: fmt.Sprintf("alarm %s %s -> %s (set by hand): %s", c.key, c.from, to, reason),
				Data: event.AlarmState{Alarm: c.a.cfg.Name, Key: c.key, From: c.from.String(), To: to.String(),
					Reason: reason, Dimensions: c.dims}})
		}
		if m.deps.OnChange != nil {
			m.deps.OnChange(Transition{Alarm: c.a.cfg, Key: c.key, Dimensions: c.dims, From: c.from, To: to, Reason: reason, Time: now})
		}
	}
	sort.Strings(keys)
	return keys, nil
}

// compiled returns the alarm named name, or nil.
func (m *Manager) compiled(name string) *compiled {
	for i := range m.alarms {
		if m.alarms[i].cfg.Name == name {
			return &m.alarms[i]
		}
	}
	return nil
}

// single returns the dimensions and series of an alarm without a "*"
// dimension (its one state), and false for the others.
func (a *compiled) single() (map[string]string, metrics.SeriesKey, bool) {
	dims := map[string]string{}
	sk := metrics.SeriesKey{Namespace: a.cfg.Namespace, MetricName: a.cfg.Metric}
	for n, v := range a.cfg.Dimensions {
		if v == config.DimensionAny {
			return nil, sk, false
		}
		dims[n] = v
		sk.Dimensions = append(sk.Dimensions, metrics.Dimension{Name: n, Value: v})
	}
	sort.Slice(sk.Dimensions, func(i, j int) bool { return sk.Dimensions[i].Name < sk.Dimensions[j].Name })
	return dims, sk, true
}

// Configs returns the configuration of every alarm, in config order: what
// Statuses does not repeat (description, missing data treatment,
// actions).
func (m *Manager) Configs() []config.Alarm {
	out := make([]config.Alarm, len(m.alarms))
	for i, a := range m.alarms {
		out[i] = a.cfg
	}
	return out
}
