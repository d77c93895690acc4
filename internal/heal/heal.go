package heal

import (
	"fmt"
	"slices"
	"time"
)

// Policy is a group's healing policy. Fields are used as given: defaults are
// the configuration's business (see DefaultPolicy for the documented ones).
type Policy struct {
	// MaxRestarts is how many in-place restarts an instance may have within
	// RestartWindow; the next failure replaces it. 0 means always replace.
	MaxRestarts int
	// RestartWindow is the sliding window restarts are counted in. 0 means
	// no window: every restart of the instance counts.
	RestartWindow time.Duration
	// BackoffBase is the delay before the second consecutive heal; it doubles
	// with each further consecutive failure. The first heal is immediate.
	BackoffBase time.Duration
	// BackoffCap caps the delay. 0 means no cap (the delay saturates instead
	// of overflowing).
	BackoffCap time.Duration
	// ResetAfter is how long an instance must stay InService for the series
	// of consecutive failures to start afresh.
	ResetAfter time.Duration
	// MaxReplacements is how many replacements the group may make within
	// ReplacementWindow; a failure that needs one more marks the group
	// Impaired. 0 means a failure that needs a replacement impairs at once.
	MaxReplacements int
	// ReplacementWindow is the sliding window replacements are counted in.
	// 0 means no window: every replacement since the last Reset counts.
	ReplacementWindow time.Duration
}

// DefaultPolicy holds the defaults the configuration documents.
var DefaultPolicy = Policy{
	MaxRestarts:       3,
	RestartWindow:     5 * time.Minute,
	BackoffBase:       time.Second,
	BackoffCap:        time.Minute,
	ResetAfter:        time.Minute,
	MaxReplacements:   5,
	ReplacementWindow: 30 * time.Minute,
}

// Action is what to do with a failed instance.
type Action int

const (
	// Restart restarts the instance in place, keeping its id (like an EC2
	// reboot or recover).
	Restart Action = iota
	// Replace terminates the instance and launches a new one.
	Replace
	// Impair stops healing: the group is marked Impaired and a human is
	// called, instead of flapping forever.
	Impair
)

// String returns the action's name as it appears in events.
func (a Action) String() string {
	switch a {
	case Restart:
		return "restart"
	case Replace:
		return "replace"
	case Impair:
		return "impair"
	}
	return fmt.Sprintf("Action(%d)", int(a))
}

// MarshalText stores an action by name, so a stored History reads the same
// whatever the order of the constants.
func (a Action) MarshalText() ([]byte, error) {
	if a < Restart || a > Impair {
		return nil, fmt.Errorf("heal: no such action %d", int(a))
	}
	return []byte(a.String()), nil
}

// UnmarshalText reads an action's name.
func (a *Action) UnmarshalText(b []byte) error {
	for _, x := range []Action{Restart, Replace, Impair} {
		if string(b) == x.String() {
			*a = x
			return nil
		}
	}
	return fmt.Errorf("heal: unknown action %q", b)
}

// Decision is the outcome of Policy.Decide.
type Decision struct {
	Action Action
	// Delay is the backoff to wait before acting.
	Delay time.Duration
	// Reason is a human sentence for the event journal.
	Reason string
	// Failure is the failure signal the decision answers. Decide leaves it
	// empty; the caller sets it before Record, which keeps it with a
	// pending decision.
	Failure string

	// The horizons Decide counted from, so that Record can prune History
	// without being handed the policy again. Zero means "keep everything".
	restartSince, replaceSince time.Time
}

// History is a group's healing record. The group persists it as JSON and
// hands it back to Decide; it is kept small by pruning timestamps that have
// left their window.
type History struct {
	// Restarts are the in-place restart times of each live instance, by
	// instance id.
	Restarts map[string][]time.Time `json:"restarts,omitempty"`
	// Replacements are the group's replacement times.
	Replacements []time.Time `json:"replacements,omitempty"`
	// Consecutive counts the heals of the current failure series; it is
	// reset by an instance staying InService for ResetAfter.
	Consecutive int `json:"consecutive,omitempty"`
	// Pending are the restarts and replacements recorded but not yet
	// carried out, by instance. A decision is recorded before its backoff
	// starts, so a controller that restarts meanwhile resumes it (see
	// Pending.Wait) instead of deciding again, which would count the
	// failure twice and start the backoff over.
	Pending map[string]Pending `json:"pending,omitempty"`
}

// Pending is a recorded decision that has not been carried out yet.
type Pending struct {
	Action    Action    `json:"action"`
	Reason    string    `json:"reason,omitempty"`
	Failure   string    `json:"failure,omitempty"`
	DecidedAt time.Time `json:"decided_at"`
	// NotBefore is when the decision may act: DecidedAt plus its backoff.
	NotBefore time.Time `json:"not_before"`
}

// Wait is how long a decision still waits at now: the rest of its backoff
// counted from the recorded deadline, never from when a controller
// started, and never less than zero.
func (p Pending) Wait(now time.Time) time.Duration {
	return max(0, p.NotBefore.Sub(now))
}

// Decision is the recorded decision to act on at now (Delay is what is
// left of the backoff).
func (p Pending) Decision(now time.Time) Decision {
	return Decision{Action: p.Action, Reason: p.Reason, Failure: p.Failure, Delay: p.Wait(now)}
}

// keepMax bounds every list of timestamps whatever the windows are, so a
// policy without windows cannot grow History without limit. Decide never
// needs to count past max_restarts or max_replacements, so this only matters
// for absurd limits.
const keepMax = 1024

// Decide returns what to do with the failed instance at now. It does not
// change h: the caller records the action it actually takes with Record.
func (p Policy) Decide(h History, instance string, now time.Time) Decision {
	d := Decision{
		Delay:        p.backoff(h.Consecutive + 1),
		restartSince: since(now, p.RestartWindow),
		replaceSince: since(now, p.ReplacementWindow),
	}
	restarts := countAfter(h.Restarts[instance], d.restartSince)
	if restarts < p.MaxRestarts {
		d.Action = Restart
		d.Reason = fmt.Sprintf("restart %d/%d %s", restarts+1, p.MaxRestarts, within(p.RestartWindow))
		return d.withDelay()
	}
	why := "max_restarts 0: replacing"
	if p.MaxRestarts > 0 {
		why = fmt.Sprintf("%s %s: replacing", count(restarts, "restart"), within(p.RestartWindow))
	}
	return p.replaceOrImpair(h, d, why)
}

// DecideReplace is Decide for an instance that must not be restarted in
// place (its launch was abandoned by a failed step): it is replaced, within
// the same replacement budget and backoff as any replacement, so a launch
// step that always fails ends in Impaired like any other crash loop.
func (p Policy) DecideReplace(h History, instance, why string, now time.Time) Decision {
	d := Decision{
		Delay:        p.backoff(h.Consecutive + 1),
		restartSince: since(now, p.RestartWindow),
		replaceSince: since(now, p.ReplacementWindow),
	}
	return p.replaceOrImpair(h, d, why)
}

// replaceOrImpair completes d as a replacement, or as Impair when the
// replacement budget is spent.
func (p Policy) replaceOrImpair(h History, d Decision, why string) Decision {
	replacements := countAfter(h.Replacements, d.replaceSince)
	if replacements >= p.MaxReplacements {
		// The decision stops the loop: there is nothing to wait for.
		d.Action, d.Delay = Impair, 0
		verb := "exceed"
		if replacements == 0 {
			verb = "exceeds"
		}
		d.Reason = fmt.Sprintf("%s %s %s max_replacements %d: group impaired",
			count(replacements+1, "replacement"), within(p.ReplacementWindow), verb, p.MaxReplacements)
		return d
	}
	d.Action, d.Reason = Replace, why
	return d.withDelay()
}

func (d Decision) withDelay() Decision {
	if d.Delay > 0 {
		d.Reason += fmt.Sprintf(" (backoff %s)", d.Delay)
	}
	return d
}

// backoff is the delay before the n-th consecutive heal (n counts from 1):
// none for the first, then BackoffBase * 2^(n-2), capped.
func (p Policy) backoff(n int) time.Duration {
	if n <= 1 || p.BackoffBase <= 0 {
		return 0
	}
	limit := p.BackoffCap
	if limit <= 0 {
		limit = time.Duration(1<<63 - 1)
	}
	d := p.BackoffBase
	for i := 2; i < n; i++ {
		if d > limit/2 {
			// Doubling again would pass the cap (or overflow). At d ==
			// limit/2 it does not: 2d is at most limit (an odd limit in
			// nanoseconds is rounded down by the division).
			return limit
		}
		d *= 2
	}
	return min(d, limit)
}

// Record counts the action decided on instance at now, and keeps a restart
// or replacement Pending until Acted. Record counts what d says, whoever
// made it.
func (h *History) Record(instance string, d Decision, now time.Time) {
	switch d.Action {
	case Restart:
		if h.Restarts == nil {
			h.Restarts = map[string][]time.Time{}
		}
		h.Restarts[instance] = append(h.Restarts[instance], now)
	case Replace:
		h.Replacements = append(h.Replacements, now)
		// The instance is going away; its restarts no longer matter.
		delete(h.Restarts, instance)
	case Impair:
		// Nothing is launched; the group stops until Reset.
	}
	if d.Action == Restart || d.Action == Replace {
		if h.Pending == nil {
			h.Pending = map[string]Pending{}
		}
		h.Pending[instance] = Pending{Action: d.Action, Reason: d.Reason, Failure: d.Failure, DecidedAt: now, NotBefore: now.Add(d.Delay)}
	}
	h.Consecutive++
	h.prune(d.restartSince, d.replaceSince)
}

// Recorded returns the decision pending for instance, if any.
func (h History) Recorded(instance string) (Pending, bool) {
	p, ok := h.Pending[instance]
	return p, ok
}

// Acted notes that instance's pending decision is being carried out: a
// restarted controller must not carry it out again.
func (h *History) Acted(instance string) {
	delete(h.Pending, instance)
	if len(h.Pending) == 0 {
		h.Pending = nil
	}
}

// Clone returns a deep copy, for deciding on a copy without changing h.
func (h History) Clone() History {
	c := History{Consecutive: h.Consecutive, Replacements: slices.Clone(h.Replacements)}
	if h.Restarts != nil {
		c.Restarts = make(map[string][]time.Time, len(h.Restarts))
		for id, ts := range h.Restarts {
			c.Restarts[id] = slices.Clone(ts)
		}
	}
	if h.Pending != nil {
		c.Pending = make(map[string]Pending, len(h.Pending))
		for id, p := range h.Pending {
			c.Pending[id] = p
		}
	}
	return c
}

// Healthy notes that instance has been InService since inServiceSince. If
// it stayed so for ResetAfter, the failure series is over and the next
// failure acts at once again. The series belongs to the group rather than
// to the instance, because a crash loop that goes through replacements (new
// instance ids) must keep backing off. Healthy also prunes timestamps that
// have left their windows.
func (h *History) Healthy(instance string, inServiceSince, now time.Time, p Policy) {
	if !inServiceSince.IsZero() && now.Sub(inServiceSince) >= p.ResetAfter {
		h.Consecutive = 0
	}
	h.prune(since(now, p.RestartWindow), since(now, p.ReplacementWindow))
}

// Forget drops what is known about a terminated instance, its pending
// decision included.
func (h *History) Forget(instance string) {
	delete(h.Restarts, instance)
	if len(h.Restarts) == 0 {
		h.Restarts = nil
	}
	h.Acted(instance)
}

// Reset clears the whole record: an operator cleared Impaired and wants a
// fresh start rather than an immediate relapse into Impaired.
func (h *History) Reset() { *h = History{} }

// prune drops restarts before restartSince and replacements before
// replaceSince (a zero horizon keeps everything), and bounds every list.
func (h *History) prune(restartSince, replaceSince time.Time) {
	for id, ts := range h.Restarts {
		ts = dropBefore(ts, restartSince)
		if len(ts) == 0 {
			delete(h.Restarts, id)
			continue
		}
		h.Restarts[id] = ts
	}
	if len(h.Restarts) == 0 {
		h.Restarts = nil
	}
	h.Replacements = dropBefore(h.Replacements, replaceSince)
	if len(h.Replacements) == 0 {
		h.Replacements = nil
	}
}

// dropBefore keeps the timestamps at or after horizon (all of them if the
// horizon is zero), at most keepMax of the newest.
func dropBefore(ts []time.Time, horizon time.Time) []time.Time {
	kept := ts[:0]
	for _, t := range ts {
		if horizon.IsZero() || inWindow(t, horizon) {
			kept = append(kept, t)
		}
	}
	if len(kept) > keepMax {
		kept = slices.Clone(kept[len(kept)-keepMax:])
	}
	return kept
}

// since is the start of a window ending at now; the zero time stands for
// "no window" and counts everything.
func since(now time.Time, window time.Duration) time.Time {
	if window <= 0 {
		return time.Time{}
	}
	return now.Add(-window)
}

// inWindow reports whether t is inside a window starting at horizon: a
// timestamp exactly window old has left it.
func inWindow(t, horizon time.Time) bool { return t.After(horizon) }

func countAfter(ts []time.Time, horizon time.Time) int {
	n := 0
	for _, t := range ts {
		if horizon.IsZero() || inWindow(t, horizon) {
			n++
		}
	}
	return n
}

func within(window time.Duration) string {
	if window <= 0 {
		return "in total"
	}
	return "within " + window.String()
}

func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
