package maintenance

import (
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/autoheal/autoheal/internal/config"
	"github.com/autoheal/autoheal/internal/event"
	"github.com/autoheal/autoheal/internal/store"
)

// Scheduled actions added at run time (the AWS endpoint's
// PutScheduledUpdateGroupAction), beside the config's: recorded with the
// scheduler's state, so they outlive the controller (and, in a cluster,
// the leader), and run by the same loop. Putting one again with the same
// name replaces it; the config's own cannot be replaced.

// ErrConfigAction refuses to replace a scheduled action of the config.
var ErrConfigAction = errors.New("scheduled action is defined in the config")

// PutAction adds or replaces a run-time scheduled action. a is checked
// as the config checks its actions; its group is the caller's to check.
func (s *Scheduler) PutAction(a config.ScheduledAction) error {
	if a.TimeZone == "" {
		a.TimeZone = config.DefaultTimeZone
	}
	if a.Name == "" || a.Group == "" {
		return errors.New("a scheduled action needs a name and a group")
	}
	if a.Min == nil && a.Max == nil && a.Desired == nil {
		return fmt.Errorf("scheduled action %s sets no capacity: give min, max or desired", a.Name)
	}
	sc, err := parseSchedule(a.Schedule, a.TimeZone)
	if err != nil {
		return fmt.Errorf("scheduled action %s: %w", a.Name, err)
	}
	if s.deps.Scale == nil {
		return errors.New("maintenance: scheduled actions need Scale")
	}
	s.mu.Lock()
	if slices.ContainsFunc(s.actions, func(as *actionState) bool { return as.cfg.Name == a.Name && !as.added }) {
		s.mu.Unlock()
		return fmt.Errorf("%s: %w: change it there", a.Name, ErrConfigAction)
	}
	s.mu.Unlock()
	msg := fmt.Sprintf("scheduled action %s added: %s of group %s at %q (%s)", a.Name, capacities(a), a.Group, a.Schedule, a.TimeZone)
	if err := s.save(func(st *state) {
		if st.Added == nil {
			st.Added = map[string]config.ScheduledAction{}
		}
		st.Added[a.Name] = a
		// A replaced action starts afresh: its times are its new schedule's.
		delete(st.Actions, a.Name)
	}, store.Event{Type: event.KindScheduledAction, Group: a.Group, Message: msg,
		Data: event.ScheduledAction{Action: a.Name, Schedule: a.Schedule, Min: a.Min, Max: a.Max, Desired: a.Desired}}); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.startAdded(&actionState{cfg: a, sched: sc, added: true, stop: make(chan struct{})})
	return nil
}

// Actions are the scheduled actions, the config's and the added ones, by
// name.
func (s *Scheduler) Actions() []config.ScheduledAction {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []config.ScheduledAction
	for _, as := range s.actions {
		out = append(out, as.cfg)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// startAdded puts an added action in the list, stopping the one it
// replaces, and starts its loop once the scheduler runs (Run starts the
// recorded ones). s.mu is held.
func (s *Scheduler) startAdded(as *actionState) {
	if i := slices.IndexFunc(s.actions, func(x *actionState) bool { return x.cfg.Name == as.cfg.Name }); i >= 0 {
		if old := s.actions[i]; old.stop != nil {
			close(old.stop)
		}
		s.actions = slices.Delete(s.actions, i, i+1)
	}
	s.actions = append(s.actions, as)
	if s.started && !s.closed {
		s.wg.Add(1)
		go s.actionLoop(as, s.state.Actions[as.cfg.Name])
	}
}

// loadAdded turns the recorded added actions into actions, before Run
// starts the loops; one whose schedule no longer parses is journaled and
// left out. s.mu is held.
func (s *Scheduler) loadAdded() {
	names := make([]string, 0, len(s.state.Added))
	for n := range s.state.Added {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		a := s.state.Added[n]
		if slices.ContainsFunc(s.actions, func(as *actionState) bool { return as.cfg.Name == n }) {
			// The config now has one of that name: it wins.
			continue
		}
		sc, err := parseSchedule(a.Schedule, a.TimeZone)
		if err != nil {
			s.log.Warn("added scheduled action left out", "action", n, "err", err)
			continue
		}
		s.actions = append(s.actions, &actionState{cfg: a, sched: sc, added: true, stop: make(chan struct{})})
	}
}
