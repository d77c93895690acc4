package remediation

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/autoheal/autoheal/internal/event"
	"github.com/autoheal/autoheal/internal/store"
)

// Timeline entry types of a self-healed incident.
const (
	EntryFenced   = "fenced"
	EntryLaunched = "launched"
	EntryAttached = "attached"
	EntryHealthy  = "healthy"
)

// HealTracker turns crash healing into incidents: when a group heals an
// instance (it exited or failed its checks), an incident opens, collects
// the journal's steps (fenced, launched, attached, healthy) of that
// instance and of its replacement, and resolves when one of them is back
// InService, with the time to recover. Healing itself needs no one; the
// incident is the record operators look at.
type HealTracker struct {
	m *Manager

	mu sync.Mutex
	// byInstance maps an instance (the failed one and its replacement)
	// to the incident's trigger key.
	byInstance map[string]string
	// A replacement's steps are journaled before the failed instance's
	// heal decision (that one rides on its termination, after the
	// replacement started): they are remembered here, by the failed
	// instance, until its incident opens.
	early map[string][]store.Event
}

// Heals returns a tracker on m.
func (m *Manager) Heals() *HealTracker {
	return &HealTracker{m: m, byInstance: map[string]string{}, early: map[string][]store.Event{}}
}

// Run follows the journal until ctx ends; sub is a store subscription.
// When the subscription is dropped (a burst overflowed it), it subscribes
// again: an incident may then miss a step, never heal twice.
func (h *HealTracker) Run(ctx context.Context, st *store.Store) {
	for ctx.Err() == nil {
		ch, stop := st.Subscribe(1024)
	follow:
		for {
			select {
			case ev, ok := <-ch:
				if !ok {
					break follow
				}
				h.Observe(ctx, ev)
			case <-ctx.Done():
				break follow
			}
		}
		stop()
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Observe applies one journal event.
func (h *HealTracker) Observe(ctx context.Context, ev store.Event) {
	if ev.Instance == "" {
		return
	}
	if _, ok := ev.Data.(event.InstanceHeal); ok {
		h.open(ctx, ev)
		return
	}
	key, ok := h.incidentOf(ev)
	if !ok {
		return
	}
	typ, resolve := entryType(ev.Data)
	if typ == "" {
		return
	}
	h.m.noteKey(key, Entry{Time: ev.Time, Type: typ, Message: ev.Message})
	if resolve {
		h.m.Resolved(key, fmt.Sprintf("%s is InService", ev.Instance))
		h.mu.Lock()
		for inst, k := range h.byInstance {
			if k == key {
				delete(h.byInstance, inst)
			}
		}
		h.mu.Unlock()
	}
}

// open opens the incident of a heal decision, unless one is open for the
// instance (a second heal of one failure series is the same incident),
// and replays the replacement's steps journaled before it.
func (h *HealTracker) open(ctx context.Context, ev store.Event) {
	h.mu.Lock()
	_, open := h.byInstance[ev.Instance]
	h.mu.Unlock()
	if open {
		return
	}
	key := "heal/" + ev.Instance
	t := Trigger{Source: "heal", Alarm: "instance " + ev.Instance, Key: key, Reason: ev.Message,
		Dimensions: map[string]string{"InstanceId": ev.Instance}}
	if _, err := h.m.track(ctx, t, ev.Group, ev.Time); err != nil {
		return
	}
	h.mu.Lock()
	h.byInstance[ev.Instance] = key
	early := h.early[ev.Instance]
	delete(h.early, ev.Instance)
	h.mu.Unlock()
	for _, e := range early {
		h.Observe(ctx, e)
	}
}

// incidentOf returns the incident key ev belongs to. A replacement joins
// the failed instance's incident: its volume or address names the failed
// instance as previous holder (journaled first), its first state names
// the instance it replaces. Steps of a replacement whose failed
// instance's incident is not open yet are remembered until it opens.
func (h *HealTracker) incidentOf(ev store.Event) (string, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if key, ok := h.byInstance[ev.Instance]; ok {
		return key, true
	}
	var old string
	switch d := ev.Data.(type) {
	case event.VolumeAttach:
		old = d.PreviousHolder
	case event.AddressAssociate:
		old = d.PreviousHolder
	case event.InstanceState:
		old = d.Replaces
	}
	if old == "" {
		if failed := h.replacing(ev.Instance); failed != "" {
			h.remember(failed, ev.Instance, ev)
		}
		return "", false
	}
	if key, ok := h.byInstance[old]; ok {
		h.byInstance[ev.Instance] = key
		return key, true
	}
	h.remember(old, ev.Instance, ev)
	return "", false
}

// entryType is the timeline entry a journal event makes in a heal
// incident ("" for none), and whether it resolves the incident.
func entryType(d event.Data) (typ string, resolve bool) {
	switch d := d.(type) {
	case event.InstanceFenced:
		return EntryFenced, false
	case event.InstanceState:
		switch d.To {
		case "InService":
			return EntryHealthy, true
		case "Pending":
			return EntryLaunched, false
		}
	case event.VolumeAttach, event.AddressAssociate:
		return EntryAttached, false
	case event.GroupImpaired:
		return EntryNote, false
	}
	return "", false
}

// remember keeps an early event of the replacement of failed. Called with
// h.mu held. Bounded: an instance whose heal never comes is forgotten.
func (h *HealTracker) remember(failed, replacement string, ev store.Event) {
	if len(h.early) > 1000 {
		clear(h.early)
	}
	h.early[failed] = append(h.early[failed], ev)
}

// replacing names the failed instance whose replacement inst is, when its
// early events are being remembered. Called with h.mu held.
func (h *HealTracker) replacing(inst string) string {
	for failed, evs := range h.early {
		for _, e := range evs {
			if e.Instance == inst {
				return failed
			}
		}
	}
	return ""
}
