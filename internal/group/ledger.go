package group

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/autoheal/autoheal/internal/event"
	"github.com/autoheal/autoheal/internal/heal"
	"github.com/autoheal/autoheal/internal/store"
)

// ledger is the group's durable bookkeeping, stored as JSON in the group
// record (store.Group.Heal, whose first content, the heal history, keeps
// its format): the heal history with the decisions recorded and not yet
// carried out, and the state of each script of the launches and
// terminations under way. The group record rides along with the group's
// next durable write (commit), so the ledger costs no fsync of its own.
type ledger struct {
	heal.History
	// Scripts are the script states of instances being launched or
	// terminated: instance id, then script key (see scripts.go).
	Scripts map[string]map[string]string `json:"scripts,omitempty"`
}

// A change is a store change and what to do on the loop once it is durable.
type change struct {
	store.Change
	applied func()
	// group: the change writes the group record (and so the ledger).
	group bool
}

// commit makes changes durable in one write, with the ledger when it
// changed, then applies them. A state dir that takes no writes (a full
// disk, store.NotWritable) is only returned: nothing is applied, the job
// stops, and the group holds still until the store is writable (plan). Any
// other failed write stops the controller, which must not run without its
// journal; a conflict (an attachment swapped meanwhile) is only returned.
// Called on the loop.
func (g *Group) commit(cs ...change) error {
	if g.dirty && !slices.ContainsFunc(cs, func(c change) bool { return c.group }) {
		cs = append(cs, g.groupChange(g.rec))
	}
	if len(cs) == 0 {
		return nil
	}
	sc := make([]store.Change, len(cs))
	for i, c := range cs {
		sc[i] = c.Change
	}
	if err := g.deps.Store.Commit(context.Background(), sc...); err != nil {
		g.writeFailed(fmt.Errorf("group %s: %w", g.cfg.Name, err))
		return err
	}
	for _, c := range cs {
		c.applied()
	}
	return nil
}

// groupChange is the group record r, with the ledger, as a change.
func (g *Group) groupChange(r store.Group, evs ...store.Event) change {
	b, _ := json.Marshal(ledger{History: g.hist, Scripts: g.scripts})
	r.Heal = string(b)
	r.UpdatedAt = g.deps.Now()
	return change{Change: store.GroupChange(r, evs...), group: true, applied: func() {
		g.rec = r
		g.dirty = false
		g.publish()
	}}
}

// putGroup writes the group record durably, then adopts it in memory.
func (g *Group) putGroup(r store.Group, evs ...store.Event) error {
	return g.commit(g.groupChange(r, evs...))
}

// putInstance writes an instance record durably, then adopts it in memory.
func (g *Group) putInstance(in *instance, r store.Instance, evs ...store.Event) error {
	return g.commit(g.instanceChange(in, r, evs...))
}

// instanceChange is the instance record r as a change.
func (g *Group) instanceChange(in *instance, r store.Instance, evs ...store.Event) change {
	r.UpdatedAt = g.deps.Now()
	return change{Change: store.InstanceChange(r, evs...), applied: func() {
		in.rec = r
		g.publish()
	}}
}

// flush writes the ledger with the events waiting on in (a script's start
// with the previous script's outcome). Called on the loop.
func (g *Group) flush(in *instance) error {
	n := len(in.pending)
	c := g.groupChange(g.rec, in.pending...)
	applied := c.applied
	c.applied = func() {
		in.pending = in.pending[n:]
		applied()
	}
	return g.commit(c)
}

func (g *Group) appendEvents(evs ...store.Event) {
	if _, err := g.deps.Store.Append(context.Background(), evs...); err != nil {
		g.writeFailed(fmt.Errorf("append events: %w", err))
	}
}

// writeFailed handles a failed write: a conflict or a state dir that takes
// no writes is left to the caller (the store reports the latter, and the
// group holds still until it is writable); anything else stops the
// controller.
func (g *Group) writeFailed(err error) {
	switch {
	case errors.Is(err, store.ErrConflict):
	case store.NotWritable(err):
		g.log.Warn("state dir not writable: write not made, group holds", "err", err)
	case errors.Is(err, store.ErrReplicaUnavailable):
		// A cluster's leader with etcd out of reach (the failsafe): what
		// the next leader would not know of is not done.
		g.log.Warn("the cluster's records cannot be written (etcd out of reach): write not made, group holds", "err", err)
	default:
		g.fatal(err)
	}
}

func (g *Group) fatal(err error) {
	g.log.Error("journal write failed; stopping", "err", err)
	g.deps.OnFatal(err)
}

// scriptState is a script's recorded state ("" when it never started).
// Called on the loop.
func (g *Group) scriptState(id, key string) string { return g.scripts[id][key] }

// setScript records a script's state in memory; it is written with the
// group's next write. Called on the loop.
func (g *Group) setScript(id, key, state string) {
	if g.scripts == nil {
		g.scripts = map[string]map[string]string{}
	}
	if g.scripts[id] == nil {
		g.scripts[id] = map[string]string{}
	}
	g.scripts[id][key] = state
	g.dirty = true
}

// clearScripts forgets an instance's scripts of one phase ("" for all):
// its launch is over (or starts afresh), or it is terminated. Called on
// the loop.
func (g *Group) clearScripts(id, phase string) {
	m, ok := g.scripts[id]
	if !ok {
		return
	}
	for key := range m {
		if phase == "" || scriptPhase(key) == phase {
			delete(m, key)
		}
	}
	if len(m) == 0 {
		delete(g.scripts, id)
	}
	if len(g.scripts) == 0 {
		g.scripts = nil
	}
	g.dirty = true
}

// scriptPhase is the phase of a script key: terminate hooks are
// "terminate/NAME"; everything else belongs to a launch.
func scriptPhase(key string) string {
	if len(key) > len("terminate/") && key[:len("terminate/")] == "terminate/" {
		return "terminate"
	}
	return "launch"
}

// loadState reads the group record and its ledger, or creates the record
// from the config. The capacity is the config's or the stored one, as
// capacityOnLoad says.
func (g *Group) loadState(ctx context.Context) error {
	key := "group/" + g.cfg.Name + "/config_desired"
	file := capacity{Min: g.cfg.Min, Max: g.cfg.Max, Desired: g.cfg.DesiredCount()}
	r, err := g.deps.Store.Group(ctx, g.cfg.Name)
	switch {
	case errors.Is(err, store.ErrNotFound):
		r = store.Group{Name: g.cfg.Name, Status: Active, Min: file.Min, Max: file.Max, Desired: file.Desired}
		if err := g.putGroup(r, g.event("", fmt.Sprintf("group created with min %d max %d desired %d", r.Min, r.Max, r.Desired), scaled(r, nil, "created"))); err != nil {
			return err
		}
	case err != nil:
		return fmt.Errorf("load group %s: %w", g.cfg.Name, err)
	default:
		if r.Heal != "" {
			var l ledger
			if err := json.Unmarshal([]byte(r.Heal), &l); err != nil {
				g.log.Warn("heal history unreadable; starting afresh", "err", err)
			} else {
				g.hist, g.scripts = l.History, l.Scripts
			}
		}
		last, _ := g.deps.Store.Get(ctx, key) // unknown: the stored capacity stands
		prev := r
		c, changed := capacityOnLoad(capacity{Min: r.Min, Max: r.Max, Desired: r.Desired}, file, last)
		r.Min, r.Max, r.Desired = c.Min, c.Max, c.Desired
		g.rec = r
		if changed {
			if err := g.putGroup(r, g.event("", fmt.Sprintf("capacity bounds from config: min %d max %d desired %d", r.Min, r.Max, r.Desired), scaled(r, &prev, "config"))); err != nil {
				return err
			}
		}
	}
	return g.deps.Store.Set(ctx, key, fmt.Sprint(file.Desired))
}

// scaled is the data of a capacity change to r from prev (nil: created).
func scaled(r store.Group, prev *store.Group, cause string) event.GroupScale {
	d := event.GroupScale{Min: r.Min, Max: r.Max, Desired: r.Desired, Cause: cause}
	if prev != nil {
		d.Prev = &event.Capacity{Min: prev.Min, Max: prev.Max, Desired: prev.Desired}
	}
	return d
}
