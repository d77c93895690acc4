package remediation

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

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
	if ev.Type == "instance.heal" {
		h.mu.Lock()
		_, open := h.byInstance[ev.Instance]
		h.mu.Unlock()
		if open {
			return // a second heal of one failure series: same incident
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
		return
	}
	h.mu.Lock()
	key, ok := h.byInstance[ev.Instance]
	if !ok {
		// The replacement joins the failed instance's incident: its
		// volume is "taken over from i-…" (journaled first), its state
		// "Pending: replacement for i-…".
		marker := ""
		switch ev.Type {
		case "volume.attach":
			marker = "taken over from "
		case "instance.state":
			marker = "replacement for "
		}
		if _, old, found := strings.Cut(ev.Message, marker); marker != "" && found {
			if f := strings.Fields(old); len(f) > 0 {
				if key, ok = h.byInstance[f[0]]; ok {
					h.byInstance[ev.Instance] = key
				} else {
					h.remember(f[0], ev.Instance, ev)
				}
			}
		} else if failed := h.replacing(ev.Instance); failed != "" {
			h.remember(failed, ev.Instance, ev)
		}
	}
	h.mu.Unlock()
	if !ok {
		return
	}
	var typ string
	resolve := false
	switch {
	case ev.Type == "instance.exit" && strings.HasPrefix(ev.Message, "fenced"):
		typ = EntryFenced
	case ev.Type == "instance.state" && strings.Contains(ev.Message, "-> InService"):
		typ, resolve = EntryHealthy, true
	case ev.Type == "instance.state" && (strings.HasPrefix(ev.Message, "Pending") || strings.Contains(ev.Message, "-> Pending")):
		typ = EntryLaunched
	case ev.Type == "volume.attach" || ev.Type == "address.associate":
		typ = EntryAttached
	case ev.Type == "group.impaired":
		typ = EntryNote
	default:
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
