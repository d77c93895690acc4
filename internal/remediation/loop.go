package remediation

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/autoheal/autoheal/internal/crashpoint"
	"github.com/autoheal/autoheal/internal/event"
	"github.com/autoheal/autoheal/internal/notify"
	"github.com/autoheal/autoheal/internal/runbook"
	"github.com/autoheal/autoheal/internal/store"
)

// What is recorded when, so that a controller killed at any point neither
// repeats nor loses a step of an incident:
//
//   - an attempt (its number and its execution id) before its runbook
//     starts; the runbook engine starts an id at most once, so a
//     restarted controller starts it if it never started and otherwise
//     waits for it;
//   - its outcome, with an absolute deadline: VerifyBy (verification) or
//     RetryAt (the next attempt);
//   - an escalation (status, channels told, the notification as Unsent)
//     before the notification is enqueued; it is enqueued only if the
//     notify outbox does not hold it yet, so it is sent once;
//   - the alarm's return to OK as it is told (Resolved).
//
// The loop below and a restarted controller both follow Decide.

// pollOK is how often the alarm's state is read while waiting for OK.
const pollOK = 250 * time.Millisecond

// remediate runs the incident until it is resolved or the manager stops.
func (m *Manager) remediate(l *live) {
	ctx := m.ctx
	doc := m.runbook(l)
	for ctx.Err() == nil {
		ok := m.isOK(l)
		l.mu.Lock()
		d := Decide(l.inc, ok, m.deps.Now())
		l.mu.Unlock()
		switch d.Do {
		case DoDone:
			return
		case DoNotify:
			m.flush(ctx, l)
		case DoWaitExecution:
			m.waitAttempt(ctx, l, doc, ok)
		case DoResolve:
			m.resolve(ctx, l)
		case DoAwaitOK:
			m.waitOK(ctx, l, time.Time{})
		case DoEscalate:
			m.escalate(l)
		case DoAttempt:
			m.beginAttempt(l)
		case DoVerify, DoPause:
			m.waitOK(ctx, l, d.At)
		case DoVerifyFailed:
			m.update(ctx, l, func(inc *Incident) {
				cur := inc.Current
				at := d.At
				cur.Phase, cur.RetryAt = PhaseFailed, &at
				inc.Timeline = append(inc.Timeline, Entry{Time: m.deps.Now().UTC(), Type: EntryFailed, Attempt: cur.N,
					Message: fmt.Sprintf("attempt %d: alarm still not OK %s after the runbook", cur.N, inc.Spec.VerifyTimeout)})
			})
		}
	}
}

// runbook finds the incident's runbook and records its name (or why
// there is none); nil when there is none.
func (m *Manager) runbook(l *live) *runbook.Document {
	l.mu.Lock()
	inc := l.inc
	spec := inc.Spec
	name := inc.Runbook
	if name == "" {
		name = spec.Runbook
	}
	if name == "" && inc.Trigger.Metric != "" {
		name = inc.Trigger.Metric + "#" + inc.Trigger.Namespace
	}
	wanted := spec.MaxAttempts > 0 && name != ""
	known := inc.Runbook != ""
	l.mu.Unlock()
	if !wanted {
		return nil
	}
	d, err := m.deps.Document(name)
	switch {
	case err != nil && !known:
		m.note(l, Entry{Type: EntryNote, Message: fmt.Sprintf("no runbook: %v", err)})
		return nil
	case err != nil:
		// Deleted since the incident began: its attempts fail to start.
		return nil
	case !known:
		m.update(m.ctx, l, func(inc *Incident) { inc.Runbook = d.Name })
	}
	return d
}

// isOK reports whether the alarm is OK: told so (recorded), or its state
// says so now (then recorded too). The state is read outside the
// incident's lock: the alarm manager calls Resolved holding its own.
func (m *Manager) isOK(l *live) bool {
	l.mu.Lock()
	ok, key := l.okd || l.inc.OKAt != nil, l.inc.Trigger.Key
	if ok {
		l.signal()
	}
	l.mu.Unlock()
	if ok {
		return true
	}
	if m.deps.State == nil || m.deps.State(key) != "OK" {
		return false
	}
	m.update(m.ctx, l, func(inc *Incident) {
		if inc.OKAt == nil {
			now := m.deps.Now().UTC()
			inc.OKAt = &now
		}
	})
	l.mu.Lock()
	l.signal()
	l.mu.Unlock()
	return true
}

// waitOK waits until the alarm is OK or the time until (zero: no limit).
func (m *Manager) waitOK(ctx context.Context, l *live, until time.Time) {
	var deadline <-chan time.Time
	if !until.IsZero() {
		t := time.NewTimer(until.Sub(m.deps.Now()))
		defer t.Stop()
		deadline = t.C
	}
	poll := time.NewTicker(pollOK)
	defer poll.Stop()
	for !m.isOK(l) {
		select {
		case <-l.ok:
		case <-poll.C:
		case <-deadline:
			return
		case <-ctx.Done():
			return
		}
	}
}

// beginAttempt records the next attempt, with the id its execution will
// have, before anything runs.
func (m *Manager) beginAttempt(l *live) {
	id := runbook.NewExecutionID()
	// Only this goroutine changes these fields; they are read here
	// without the lock, written below under it.
	inc := l.inc
	n := inc.Attempts + 1
	err := m.update(m.ctx, l, func(inc *Incident) {
		now := m.deps.Now().UTC()
		inc.Attempts = n
		inc.Current = &Attempt{N: n, Execution: id, Phase: PhaseRunning, StartedAt: now}
		inc.Timeline = append(inc.Timeline, Entry{Time: now, Type: EntryAttempt, Attempt: n, Execution: id,
			Message: fmt.Sprintf("attempt %d of %d: running runbook %s", n, inc.Spec.MaxAttempts, inc.Runbook)})
	}, event.New(inc.Group, inc.Instance, fmt.Sprintf("incident %s: attempt %d: runbook %s (%s)", inc.ID, n, inc.Runbook, id),
		event.IncidentAttempt{Attempt: n, Runbook: inc.Runbook, Execution: id}))
	if err != nil {
		// Not recorded, so not started: undo and try again after a pause
		// (a store that fails stops the controller soon).
		l.mu.Lock()
		inc.Attempts, inc.Current = n-1, nil
		l.mu.Unlock()
		m.pause(m.ctx)
		return
	}
	crashpoint.Hit("remediation.attempt.recorded")
}

// pause waits a second, or less if ctx ends: after a failed write, before
// trying again.
func (m *Manager) pause(ctx context.Context) {
	t := time.NewTimer(time.Second)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// waitAttempt starts the recorded attempt's execution if it never
// started, waits for it, and records its outcome with the deadline that
// follows.
func (m *Manager) waitAttempt(ctx context.Context, l *live, doc *runbook.Document, ok bool) {
	l.mu.Lock()
	inc, cur := l.inc, *l.inc.Current
	params := m.params(inc, doc)
	runbookName := inc.Runbook
	l.mu.Unlock()
	started, err := m.deps.Runner.Exists(ctx, cur.Execution)
	if err != nil {
		m.log.Warn("incident: look up its execution", "incident", inc.ID, "execution", cur.Execution, "err", err)
		m.pause(ctx)
		return
	}
	if !started {
		if ok {
			m.attemptEnded(l, cur, false, "", "not started: the alarm was OK by then")
			return
		}
		if err := m.deps.Runner.StartAs(ctx, cur.Execution, runbookName, params, "incident:"+inc.ID); err != nil {
			if ctx.Err() == nil {
				m.attemptEnded(l, cur, false, "", fmt.Sprintf("runbook %s did not start: %v", runbookName, err))
			}
			return
		}
		crashpoint.Hit("remediation.attempt.started")
	}
	status, err := m.deps.Runner.Wait(ctx, cur.Execution)
	if ctx.Err() != nil {
		return // the controller stops; the next one waits again
	}
	crashpoint.Hit("remediation.attempt.ended")
	ex, _ := m.deps.Runner.Get(ctx, cur.Execution)
	if err != nil || status != runbook.StatusSuccess {
		why := ex.Error
		if err != nil {
			why = err.Error()
		}
		m.attemptEnded(l, cur, false, summarize(ex), fmt.Sprintf("runbook %s ended %s: %s", runbookName, status, why))
		return
	}
	m.attemptEnded(l, cur, true, summarize(ex), "")
}

// attemptEnded records an attempt's outcome: verifying until its
// deadline, or failed with the time of the next attempt.
func (m *Manager) attemptEnded(l *live, cur Attempt, succeeded bool, out, why string) {
	m.update(m.ctx, l, func(inc *Incident) {
		now := m.deps.Now().UTC()
		c := inc.Current
		if succeeded {
			by := now.Add(inc.Spec.VerifyTimeout)
			c.Phase, c.VerifyBy = PhaseVerifying, &by
			inc.Timeline = append(inc.Timeline, Entry{Time: now, Type: EntryOutput, Attempt: cur.N, Execution: cur.Execution, Output: out,
				Message: fmt.Sprintf("attempt %d: runbook %s succeeded; verifying until %s (%s)", cur.N, inc.Runbook, by.Format(time.RFC3339), inc.Spec.VerifyTimeout)})
			return
		}
		at := now.Add(inc.Spec.RetryPause)
		c.Phase, c.RetryAt = PhaseFailed, &at
		inc.Timeline = append(inc.Timeline, Entry{Time: now, Type: EntryFailed, Attempt: cur.N, Execution: cur.Execution, Output: out,
			Message: fmt.Sprintf("attempt %d: %s", cur.N, why)})
	})
	crashpoint.Hit("remediation.attempt.recorded_end")
}

// params are the runbook's parameters: the spec's, and InstanceId from
// the alarm when the document takes it. Called with l.mu held.
func (m *Manager) params(inc *Incident, doc *runbook.Document) map[string]string {
	params := map[string]string{}
	for k, v := range inc.Spec.Parameters {
		params[k] = v
	}
	if doc == nil {
		return params
	}
	if _, takes := doc.Parameters["InstanceId"]; takes && inc.Instance != "" {
		if _, set := params["InstanceId"]; !set {
			params["InstanceId"] = inc.Instance
		}
	}
	return params
}

// escalate records that the incident goes to people, with the channels
// told and the notification to send, before it is sent (flush).
func (m *Manager) escalate(l *live) {
	l.mu.Lock()
	inc := l.inc
	channels := slices.Clone(inc.Spec.Escalate)
	why := "no runbook"
	if inc.Runbook != "" {
		why = fmt.Sprintf("runbook %s did not fix it in %d attempt(s)", inc.Runbook, inc.Attempts)
	}
	group, instance, id := inc.Group, inc.Instance, inc.ID
	l.mu.Unlock()
	msg := fmt.Sprintf("escalated (%s) to %s", why, strings.Join(channels, ", "))
	if len(channels) == 0 {
		msg = fmt.Sprintf("needs a person (%s), and no escalation channel is configured", why)
	}
	err := m.update(m.ctx, l, func(inc *Incident) {
		inc.Status = StatusEscalated
		inc.Notified = channels
		if len(channels) > 0 && m.deps.Notify != nil {
			inc.Unsent = append(inc.Unsent, notify.EventTrigger)
		}
		inc.Timeline = append(inc.Timeline, Entry{Time: m.deps.Now().UTC(), Type: EntryEscalated, Message: msg})
	}, event.New(group, instance, fmt.Sprintf("incident %s %s", id, msg), event.IncidentEscalated{Reason: msg}))
	if err != nil {
		m.pause(m.ctx)
		return
	}
	crashpoint.Hit("remediation.escalate.recorded")
}

// flush enqueues the notifications recorded as decided, each unless the
// outbox already holds it (a controller killed after enqueueing it and
// before recording so), and records them sent.
func (m *Manager) flush(ctx context.Context, l *live) {
	l.mu.Lock()
	inc := *l.inc
	l.mu.Unlock()
	var failed []string
	for _, ev := range inc.Unsent {
		if err := m.sendOnce(ctx, inc, ev, inc.Notified); err != nil {
			if ctx.Err() != nil {
				return // the next controller sends it
			}
			failed = append(failed, fmt.Sprintf("%s: %v", ev, err))
		}
	}
	crashpoint.Hit("remediation.notify.sent")
	m.update(ctx, l, func(inc *Incident) {
		inc.Unsent = nil
		for _, f := range failed {
			inc.Timeline = append(inc.Timeline, Entry{Time: m.deps.Now().UTC(), Type: EntryNote, Message: "notification not sent: " + f})
		}
	})
}

// sendOnce enqueues the incident's notification of kind ev on channels,
// unless the notify outbox holds one already.
func (m *Manager) sendOnce(ctx context.Context, inc Incident, ev string, channels []string) error {
	if len(channels) == 0 || m.deps.Notify == nil {
		return nil
	}
	recs, err := m.deps.Store.Notifications(ctx, store.NotificationFilter{Key: inc.ID, Limit: 1000})
	if err != nil {
		return err
	}
	for _, r := range recs {
		if r.Event == ev {
			return nil
		}
	}
	return m.deps.Notify(ctx, channels, m.message(inc, ev))
}

// resolve closes the incident: the channels told of it hear it resolved
// (once: the outbox is checked first), then it is recorded resolved.
func (m *Manager) resolve(ctx context.Context, l *live) {
	now := m.deps.Now().UTC()
	l.mu.Lock()
	snap := *l.inc
	l.mu.Unlock()
	snap.Status, snap.ResolvedAt, snap.TimeToRecover = StatusResolved, &now, now.Sub(snap.OpenedAt).Seconds()
	if err := m.sendOnce(ctx, snap, notify.EventResolve, snap.Notified); err != nil {
		if ctx.Err() != nil {
			return
		}
		m.log.Warn("incident resolve notification", "incident", snap.ID, "err", err)
	}
	crashpoint.Hit("remediation.resolve.sent")
	took := now.Sub(snap.OpenedAt)
	err := m.update(ctx, l, func(inc *Incident) {
		if c := inc.Current; c != nil && c.Phase == PhaseVerifying {
			inc.Timeline = append(inc.Timeline, Entry{Time: now, Type: EntryVerified, Attempt: c.N, Message: fmt.Sprintf("verified: alarm back to OK after attempt %d", c.N)})
		}
		inc.Status, inc.ResolvedAt, inc.TimeToRecover = StatusResolved, &now, took.Seconds()
		inc.Timeline = append(inc.Timeline, Entry{Time: now, Type: EntryResolved, Message: fmt.Sprintf("resolved: time to recover %s", took.Round(time.Millisecond))})
	}, event.New(snap.Group, snap.Instance, fmt.Sprintf("incident %s resolved in %s", snap.ID, took.Round(time.Millisecond)),
		event.IncidentResolved{RecoverMS: took.Milliseconds()}))
	if err != nil {
		m.pause(ctx)
		return
	}
	m.mu.Lock()
	if m.open[snap.Trigger.Key] == l {
		delete(m.open, snap.Trigger.Key)
	}
	delete(m.byID, snap.ID)
	delete(m.snaps, snap.ID)
	m.mu.Unlock()
}
