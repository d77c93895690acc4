// Package remediation owns incidents: when an alarm enters ALARM (or an
// Alertmanager alert fires) it opens an incident, runs the runbook on the
// instances the alarm names, waits for the alarm to return to OK, retries
// with a pause, and escalates to people with the whole record when it
// cannot fix it. Every step, with the runbook's output, is on the
// incident's timeline, kept durably.
//
// It does not evaluate alarms (internal/alarm), run documents
// (internal/runbook) or deliver messages (internal/notify): it is given
// functions for those.
package remediation

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/autoheal/autoheal/internal/event"
	"github.com/autoheal/autoheal/internal/notify"
	"github.com/autoheal/autoheal/internal/runbook"
	"github.com/autoheal/autoheal/internal/store"
)

// Incident statuses.
const (
	StatusOpen      = "open"      // detected; remediation under way
	StatusEscalated = "escalated" // remediation gave up or there is none; people were told
	StatusResolved  = "resolved"  // the alarm returned to OK
)

// Timeline entry types.
const (
	EntryDetected  = "detected"
	EntryAttempt   = "attempt"
	EntryOutput    = "output"
	EntryFailed    = "failed"
	EntryVerifying = "verifying"
	EntryVerified  = "verified"
	EntryEscalated = "escalated"
	EntryResolved  = "resolved"
	EntryNote      = "note"
)

// Spec is how an alarm remediates.
type Spec struct {
	// Runbook is the document; "" means the convention <metric>#<namespace>.
	Runbook       string
	MaxAttempts   int
	VerifyTimeout time.Duration
	RetryPause    time.Duration
	// Escalate are the channels told when remediation fails or there is
	// no runbook.
	Escalate []string
	// Parameters for the runbook; InstanceId is added from the alarm's
	// dimensions when the document takes it.
	Parameters map[string]string
}

// Trigger is what opened an incident.
type Trigger struct {
	Source     string            `json:"source"` // "alarm" or "alertmanager"
	Alarm      string            `json:"alarm"`
	Key        string            `json:"key"` // one incident per key at a time
	Reason     string            `json:"reason"`
	Namespace  string            `json:"namespace,omitempty"`
	Metric     string            `json:"metric,omitempty"`
	Dimensions map[string]string `json:"dimensions,omitempty"`
}

// Entry is one line of an incident's timeline.
type Entry struct {
	Time      time.Time `json:"time"`
	Type      string    `json:"type"`
	Message   string    `json:"message"`
	Attempt   int       `json:"attempt,omitempty"`
	Execution string    `json:"execution,omitempty"`
	Output    string    `json:"output,omitempty"`
}

// Incident is one problem from detection to resolution.
type Incident struct {
	ID         string     `json:"id"`
	Status     string     `json:"status"`
	Trigger    Trigger    `json:"trigger"`
	Group      string     `json:"group,omitempty"`
	Instance   string     `json:"instance,omitempty"`
	Runbook    string     `json:"runbook,omitempty"`
	Attempts   int        `json:"attempts"`
	OpenedAt   time.Time  `json:"opened_at"`
	ResolvedAt *time.Time `json:"resolved_at,omitempty"`
	// TimeToRecover is from detection to resolution, in seconds.
	TimeToRecover float64 `json:"time_to_recover_seconds,omitempty"`
	// Notified are the channels told about it (they are told when it is
	// resolved too).
	Notified []string `json:"notified,omitempty"`
	Spec     *Spec    `json:"spec,omitempty"`
	Timeline []Entry  `json:"timeline"`
}

// Runner runs documents (the runbook engine).
type Runner interface {
	Start(ctx context.Context, document string, params map[string]string, origin string) (string, error)
	Wait(ctx context.Context, id string) (string, error)
	Get(ctx context.Context, id string) (runbook.Execution, error)
}

// Deps are what remediation acts through.
type Deps struct {
	Store  *store.Store
	Runner Runner
	// Document finds a runbook by name.
	Document func(name string) (*runbook.Document, error)
	// Notify enqueues a message on channels; it never waits for delivery.
	Notify func(ctx context.Context, channels []string, m notify.Message) error
	// State is the alarm state ("OK", "ALARM", "INSUFFICIENT_DATA") for a
	// trigger key, for verification.
	State func(key string) string
	// GroupOf names the group of an instance ("" if unknown).
	GroupOf func(instanceID string) string
	Now     func() time.Time
	Logger  *slog.Logger
}

// ErrNotFound is returned for an unknown incident.
var ErrNotFound = errors.New("not found")

// Manager runs incidents; one goroutine per open incident owns it.
type Manager struct {
	deps   Deps
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu    sync.Mutex
	open  map[string]*live // by trigger key
	byID  map[string]*live
	snaps map[string][]byte // last persisted JSON by id, for live ones
}

type live struct {
	mu  sync.Mutex // guards inc against the API reading it
	inc *Incident
	ok  chan struct{} // closed when the alarm returns to OK
	okd bool
}

// New returns a manager; Resume continues open incidents.
func New(deps Deps) *Manager {
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.Logger == nil {
		deps.Logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Manager{deps: deps, log: deps.Logger, ctx: ctx, cancel: cancel,
		open: map[string]*live{}, byID: map[string]*live{}, snaps: map[string][]byte{}}
}

// Close stops the incidents' goroutines where they are; Resume continues
// them in the next controller.
func (m *Manager) Close() {
	m.cancel()
	m.wg.Wait()
}

func newID() string {
	var b [6]byte
	rand.Read(b[:])
	return "inc-" + hex.EncodeToString(b[:])
}

// Open starts an incident for t, unless one is open for its key (then it
// returns that one). spec nil means: no remediation, escalate at once to
// escalate.
func (m *Manager) Open(ctx context.Context, t Trigger, spec *Spec, escalate []string) (string, error) {
	m.mu.Lock()
	if l, ok := m.open[t.Key]; ok {
		m.mu.Unlock()
		return l.inc.ID, nil
	}
	now := m.deps.Now().UTC()
	if spec == nil {
		spec = &Spec{Escalate: escalate}
	}
	inc := &Incident{ID: newID(), Status: StatusOpen, Trigger: t, OpenedAt: now, Spec: spec}
	if id := t.Dimensions["InstanceId"]; id != "" {
		inc.Instance = id
		if m.deps.GroupOf != nil {
			inc.Group = m.deps.GroupOf(id)
		}
	}
	inc.Timeline = append(inc.Timeline, Entry{Time: now, Type: EntryDetected, Message: fmt.Sprintf("%s %s: %s", t.Source, t.Alarm, t.Reason)})
	l := &live{inc: inc, ok: make(chan struct{})}
	m.open[t.Key] = l
	m.byID[inc.ID] = l
	m.mu.Unlock()
	if err := m.persist(ctx, l, event.New(inc.Group, inc.Instance,
		fmt.Sprintf("incident %s opened: %s %s: %s", inc.ID, t.Source, t.Alarm, t.Reason),
		event.IncidentOpen{Source: t.Source, Alarm: t.Alarm, Reason: t.Reason})); err != nil {
		m.mu.Lock()
		delete(m.open, t.Key)
		delete(m.byID, inc.ID)
		m.mu.Unlock()
		return "", err
	}
	m.start(l)
	return inc.ID, nil
}

func (m *Manager) start(l *live) {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer func() {
			if p := recover(); p != nil {
				m.log.Error("incident panicked", "incident", l.inc.ID, "panic", p)
			}
		}()
		m.remediate(l)
	}()
}

// Resolved tells the incident of key that its alarm returned to OK.
func (m *Manager) Resolved(key, reason string) {
	m.mu.Lock()
	l, ok := m.open[key]
	m.mu.Unlock()
	if !ok {
		return
	}
	l.mu.Lock()
	if !l.okd {
		l.okd = true
		close(l.ok)
		msg := reason
		if l.inc.Trigger.Source == "alarm" {
			msg = "alarm returned to OK: " + reason
		}
		l.inc.Timeline = append(l.inc.Timeline, Entry{Time: m.deps.Now().UTC(), Type: EntryNote, Message: msg})
	}
	l.mu.Unlock()
}

// note appends to the timeline and persists.
func (m *Manager) note(l *live, e Entry, evs ...store.Event) {
	l.mu.Lock()
	e.Time = m.deps.Now().UTC()
	l.inc.Timeline = append(l.inc.Timeline, e)
	l.mu.Unlock()
	m.persist(m.ctx, l, evs...)
}

func (m *Manager) persist(ctx context.Context, l *live, evs ...store.Event) error {
	l.mu.Lock()
	body, err := json.Marshal(l.inc)
	inc := *l.inc
	l.mu.Unlock()
	if err != nil {
		return err
	}
	about := event.Incident{Incident: inc.ID, Status: inc.Status}
	for i := range evs {
		evs[i].Time = m.deps.Now()
		evs[i].Data = withIncident(evs[i].Data, about)
	}
	rec := store.IncidentRecord{ID: inc.ID, Key: inc.Trigger.Key, Status: inc.Status, OpenedAt: inc.OpenedAt, Body: body}
	if err := m.deps.Store.PutIncident(context.WithoutCancel(ctx), rec, evs...); err != nil {
		m.log.Error("persist incident", "incident", inc.ID, "err", err)
		return err
	}
	m.mu.Lock()
	m.snaps[inc.ID] = body
	m.mu.Unlock()
	return nil
}

// remediate runs the incident's loop: attempts, verification, escalation,
// then waits for the alarm to return to OK.
func (m *Manager) remediate(l *live) {
	ctx := m.ctx
	inc := l.inc
	spec := inc.Spec
	if spec.Runbook == "" && inc.Trigger.Metric != "" {
		spec.Runbook = inc.Trigger.Metric + "#" + inc.Trigger.Namespace
	}
	var doc *runbook.Document
	if spec.MaxAttempts > 0 && spec.Runbook != "" {
		d, err := m.deps.Document(spec.Runbook)
		if err != nil {
			m.note(l, Entry{Type: EntryNote, Message: fmt.Sprintf("no runbook: %v", err)})
		} else {
			doc = d
			l.mu.Lock()
			inc.Runbook = d.Name
			l.mu.Unlock()
		}
	}
	fixed := false
	for doc != nil && inc.Attempts < spec.MaxAttempts && ctx.Err() == nil {
		if m.isOK(l) {
			fixed = true
			break
		}
		fixed = m.attempt(ctx, l, doc)
		if fixed || ctx.Err() != nil {
			break
		}
		if inc.Attempts < spec.MaxAttempts {
			select {
			case <-time.After(spec.RetryPause):
			case <-l.ok:
			case <-ctx.Done():
			}
		}
	}
	if ctx.Err() != nil {
		return // the controller stops; the next one resumes
	}
	if !fixed && !m.isOK(l) && inc.Status != StatusEscalated {
		m.escalate(ctx, l)
	}
	// Open until the alarm says OK (at once when it already does).
	select {
	case <-l.ok:
	case <-ctx.Done():
		return
	}
	m.resolve(ctx, l)
}

func (m *Manager) isOK(l *live) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.okd {
		return true
	}
	if m.deps.State != nil && m.deps.State(l.inc.Trigger.Key) == "OK" {
		l.okd = true
		close(l.ok)
		return true
	}
	return false
}

// attempt runs the runbook once and waits for verification.
func (m *Manager) attempt(ctx context.Context, l *live, doc *runbook.Document) bool {
	inc, spec := l.inc, l.inc.Spec
	l.mu.Lock()
	inc.Attempts++
	n := inc.Attempts
	l.mu.Unlock()
	params := map[string]string{}
	for k, v := range spec.Parameters {
		params[k] = v
	}
	if _, takes := doc.Parameters["InstanceId"]; takes && inc.Instance != "" {
		if _, set := params["InstanceId"]; !set {
			params["InstanceId"] = inc.Instance
		}
	}
	id, err := m.deps.Runner.Start(ctx, doc.Name, params, "incident:"+inc.ID)
	if err != nil {
		m.note(l, Entry{Type: EntryFailed, Attempt: n, Message: fmt.Sprintf("attempt %d of %d: runbook %s did not start: %v", n, spec.MaxAttempts, doc.Name, err)})
		return false
	}
	m.note(l, Entry{Type: EntryAttempt, Attempt: n, Execution: id, Message: fmt.Sprintf("attempt %d of %d: running runbook %s", n, spec.MaxAttempts, doc.Name)},
		event.New(inc.Group, inc.Instance, fmt.Sprintf("incident %s: attempt %d: runbook %s (%s)", inc.ID, n, doc.Name, id),
			event.IncidentAttempt{Attempt: n, Runbook: doc.Name, Execution: id}))
	status, err := m.deps.Runner.Wait(ctx, id)
	if ctx.Err() != nil {
		return false
	}
	ex, _ := m.deps.Runner.Get(ctx, id)
	out := summarize(ex)
	if err != nil || status != runbook.StatusSuccess {
		why := ex.Error
		if err != nil {
			why = err.Error()
		}
		m.note(l, Entry{Type: EntryFailed, Attempt: n, Execution: id, Output: out, Message: fmt.Sprintf("attempt %d: runbook %s ended %s: %s", n, doc.Name, status, why)})
		return false
	}
	m.note(l, Entry{Type: EntryOutput, Attempt: n, Execution: id, Output: out, Message: fmt.Sprintf("attempt %d: runbook %s succeeded; verifying for up to %s", n, doc.Name, spec.VerifyTimeout)})
	t := time.NewTimer(spec.VerifyTimeout)
	defer t.Stop()
	poll := time.NewTicker(250 * time.Millisecond)
	defer poll.Stop()
	for {
		if m.isOK(l) {
			m.note(l, Entry{Type: EntryVerified, Attempt: n, Message: fmt.Sprintf("verified: alarm back to OK after attempt %d", n)})
			return true
		}
		select {
		case <-l.ok:
		case <-poll.C:
		case <-t.C:
			m.note(l, Entry{Type: EntryFailed, Attempt: n, Message: fmt.Sprintf("attempt %d: alarm still not OK %s after the runbook", n, spec.VerifyTimeout)})
			return false
		case <-ctx.Done():
			return false
		}
	}
}

// summarize is what a timeline keeps of an execution: each step's status
// and its output or error, capped.
func summarize(ex runbook.Execution) string {
	var b strings.Builder
	for _, s := range ex.Steps {
		if s.Status == runbook.StatusSkipped || s.Status == runbook.StatusPending {
			continue
		}
		fmt.Fprintf(&b, "%s %s", s.Name, s.Status)
		if s.Error != "" {
			fmt.Fprintf(&b, ": %s", s.Error)
		}
		if r, ok := s.Result.(map[string]any); ok {
			if o, ok := r["Stdout"].(string); ok && strings.TrimSpace(o) != "" {
				fmt.Fprintf(&b, "\n  %s", strings.ReplaceAll(strings.TrimSpace(o), "\n", "\n  "))
			}
		}
		b.WriteByte('\n')
	}
	s := b.String()
	if len(s) > 8000 {
		s = s[:8000] + "…"
	}
	return s
}

func (m *Manager) message(inc Incident, event string) notify.Message {
	sev := notify.SeverityCritical
	if event == notify.EventResolve {
		sev = notify.SeverityInfo
	}
	details := map[string]any{}
	b, _ := json.Marshal(inc)
	json.Unmarshal(b, &details)
	return notify.Message{
		Key: inc.ID, Event: event, Severity: sev, Source: "autoheal",
		Summary: fmt.Sprintf("%s: %s (%s)", inc.Trigger.Alarm, inc.Trigger.Reason, inc.Status),
		Group:   inc.Group, Instance: inc.Instance, Details: details, Time: m.deps.Now(),
	}
}

func (m *Manager) escalate(ctx context.Context, l *live) {
	l.mu.Lock()
	inc := l.inc
	inc.Status = StatusEscalated
	channels := inc.Spec.Escalate
	inc.Notified = append([]string(nil), channels...)
	why := "no runbook"
	if inc.Runbook != "" {
		why = fmt.Sprintf("runbook %s did not fix it in %d attempt(s)", inc.Runbook, inc.Attempts)
	}
	snap := *inc
	l.mu.Unlock()
	msg := fmt.Sprintf("escalated (%s) to %s", why, strings.Join(channels, ", "))
	if len(channels) == 0 {
		msg = fmt.Sprintf("needs a person (%s), and no escalation channel is configured", why)
	}
	snap.Status = StatusEscalated
	if len(channels) > 0 && m.deps.Notify != nil {
		if err := m.deps.Notify(ctx, channels, m.message(snap, notify.EventTrigger)); err != nil {
			msg += ": " + err.Error()
		}
	}
	m.note(l, Entry{Type: EntryEscalated, Message: msg},
		event.New(inc.Group, inc.Instance, fmt.Sprintf("incident %s %s", inc.ID, msg), event.IncidentEscalated{Reason: msg}))
}

func (m *Manager) resolve(ctx context.Context, l *live) {
	now := m.deps.Now().UTC()
	l.mu.Lock()
	inc := l.inc
	inc.Status = StatusResolved
	inc.ResolvedAt = &now
	inc.TimeToRecover = now.Sub(inc.OpenedAt).Seconds()
	snap := *inc
	l.mu.Unlock()
	if len(snap.Notified) > 0 && m.deps.Notify != nil {
		m.deps.Notify(ctx, snap.Notified, m.message(snap, notify.EventResolve))
	}
	m.note(l, Entry{Type: EntryResolved, Message: fmt.Sprintf("resolved: time to recover %s", now.Sub(snap.OpenedAt).Round(time.Millisecond))},
		event.New(inc.Group, inc.Instance, fmt.Sprintf("incident %s resolved in %s", inc.ID, now.Sub(snap.OpenedAt).Round(time.Millisecond)),
			event.IncidentResolved{RecoverMS: now.Sub(snap.OpenedAt).Milliseconds()}))
	m.mu.Lock()
	delete(m.open, inc.Trigger.Key)
	delete(m.byID, inc.ID)
	delete(m.snaps, inc.ID)
	m.mu.Unlock()
}

// Get returns an incident.
func (m *Manager) Get(ctx context.Context, id string) (Incident, error) {
	m.mu.Lock()
	body, ok := m.snaps[id]
	m.mu.Unlock()
	if !ok {
		rec, err := m.deps.Store.Incident(ctx, id)
		if err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return Incident{}, fmt.Errorf("%w: incident %s", ErrNotFound, id)
			}
			return Incident{}, err
		}
		body = rec.Body
	}
	var inc Incident
	return inc, json.Unmarshal(body, &inc)
}

// List returns the newest incidents first.
func (m *Manager) List(ctx context.Context, limit int) ([]Incident, error) {
	recs, err := m.deps.Store.Incidents(ctx, limit)
	if err != nil {
		return nil, err
	}
	out := make([]Incident, 0, len(recs))
	for _, r := range recs {
		var inc Incident
		if json.Unmarshal(r.Body, &inc) == nil {
			out = append(out, inc)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].OpenedAt.After(out[j].OpenedAt) })
	return out, nil
}

// Resume continues the incidents an earlier controller left open.
func (m *Manager) Resume(ctx context.Context) error {
	recs, err := m.deps.Store.Incidents(ctx, 1000, StatusOpen, StatusEscalated)
	if err != nil {
		return err
	}
	for _, r := range recs {
		var inc Incident
		if json.Unmarshal(r.Body, &inc) != nil || inc.Spec == nil {
			continue
		}
		if inc.Trigger.Source == "heal" {
			// Its steps were being followed in the journal by the
			// controller that stopped; healing goes on regardless, but
			// this incident cannot know when it ends: close it, saying so.
			now := m.deps.Now().UTC()
			inc.Status, inc.ResolvedAt = StatusResolved, &now
			inc.TimeToRecover = now.Sub(inc.OpenedAt).Seconds()
			inc.Timeline = append(inc.Timeline, Entry{Time: now, Type: EntryResolved,
				Message: "closed at a controller restart before the heal was confirmed; the instance's events tell the rest"})
			l := &live{inc: &inc, ok: make(chan struct{})}
			m.persist(ctx, l)
			continue
		}
		l := &live{inc: &inc, ok: make(chan struct{})}
		m.mu.Lock()
		m.open[inc.Trigger.Key] = l
		m.byID[inc.ID] = l
		m.snaps[inc.ID] = r.Body
		m.mu.Unlock()
		m.note(l, Entry{Type: EntryNote, Message: "controller restarted; remediation continues"})
		m.start(l)
	}
	return nil
}

// track opens an incident that needs no remediation (the group heals it
// by itself): it only records the steps noted on it and resolves when
// Resolved is called for its key.
func (m *Manager) track(ctx context.Context, t Trigger, group string, at time.Time) (string, error) {
	m.mu.Lock()
	if l, ok := m.open[t.Key]; ok {
		m.mu.Unlock()
		return l.inc.ID, nil
	}
	if at.IsZero() {
		at = m.deps.Now()
	}
	inc := &Incident{ID: newID(), Status: StatusOpen, Trigger: t, Group: group, Instance: t.Dimensions["InstanceId"],
		OpenedAt: at.UTC(), Spec: &Spec{}, Timeline: []Entry{{Time: at.UTC(), Type: EntryDetected, Message: t.Reason}}}
	l := &live{inc: inc, ok: make(chan struct{})}
	m.open[t.Key] = l
	m.byID[inc.ID] = l
	m.mu.Unlock()
	if err := m.persist(ctx, l, event.New(group, inc.Instance, fmt.Sprintf("incident %s opened: %s", inc.ID, t.Reason),
		event.IncidentOpen{Source: t.Source, Alarm: t.Alarm, Reason: t.Reason})); err != nil {
		return "", err
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		select {
		case <-l.ok:
			m.resolve(m.ctx, l)
		case <-m.ctx.Done():
		}
	}()
	return inc.ID, nil
}

// noteKey appends an entry to the open incident of key, if any.
func (m *Manager) noteKey(key string, e Entry) {
	m.mu.Lock()
	l, ok := m.open[key]
	m.mu.Unlock()
	if !ok {
		return
	}
	l.mu.Lock()
	if e.Time.IsZero() {
		e.Time = m.deps.Now()
	}
	e.Time = e.Time.UTC()
	l.inc.Timeline = append(l.inc.Timeline, e)
	l.mu.Unlock()
	m.persist(m.ctx, l)
}

// withIncident is d with the incident it is about filled in.
func withIncident(d event.Data, about event.Incident) event.Data {
	switch d := d.(type) {
	case event.IncidentOpen:
		d.Incident = about
		return d
	case event.IncidentAttempt:
		d.Incident = about
		return d
	case event.IncidentEscalated:
		d.Incident = about
		return d
	case event.IncidentResolved:
		d.Incident = about
		return d
	}
	return d
}
