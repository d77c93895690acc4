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
	// resolved too), recorded before they are told.
	Notified []string `json:"notified,omitempty"`
	// Current is the latest attempt: what a restarted controller resumes
	// from (Decide).
	Current *Attempt `json:"current_attempt,omitempty"`
	// OKAt is when the alarm (or the alert) was seen back to OK, recorded
	// when it was: a resolved Alertmanager alert is not sent again.
	OKAt *time.Time `json:"ok_at,omitempty"`
	// Unsent are notifications decided and recorded ("trigger": the
	// escalation) that are not yet known to be in the notify outbox.
	Unsent   []string `json:"unsent,omitempty"`
	Spec     *Spec    `json:"spec,omitempty"`
	Timeline []Entry  `json:"timeline"`
}

// Runner runs documents (the runbook engine).
type Runner interface {
	// StartAs starts document under an execution id the incident recorded
	// first; an id that already has an execution starts nothing.
	StartAs(ctx context.Context, id, document string, params map[string]string, origin string) error
	// Exists reports whether an execution has the id.
	Exists(ctx context.Context, id string) (bool, error)
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
	// wmu orders the incident's writes: each is made of the state at
	// its time, and none overtakes another.
	wmu sync.Mutex
	mu  sync.Mutex // guards inc and okd; held for no I/O
	inc *Incident
	ok  chan struct{} // closed when the alarm returns to OK
	okd bool
}

func newLive(inc *Incident) *live { return &live{inc: inc, ok: make(chan struct{})} }

// signal closes l.ok once. Called with l.mu held.
func (l *live) signal() {
	if !l.okd {
		l.okd = true
		close(l.ok)
	}
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
	l := newLive(inc)
	m.open[t.Key] = l
	m.byID[inc.ID] = l
	m.mu.Unlock()
	if err := m.update(ctx, l, nil, event.New(inc.Group, inc.Instance,
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

// Resolved tells the incident of key that its alarm returned to OK. It is
// recorded before it returns: a restarted controller resolves the
// incident even if no one says it again.
func (m *Manager) Resolved(key, reason string) {
	m.mu.Lock()
	l, ok := m.open[key]
	m.mu.Unlock()
	if !ok {
		return
	}
	m.update(context.Background(), l, func(inc *Incident) {
		if inc.OKAt != nil {
			return
		}
		now := m.deps.Now().UTC()
		inc.OKAt = &now
		msg := reason
		if inc.Trigger.Source == "alarm" {
			msg = "alarm returned to OK: " + reason
		}
		inc.Timeline = append(inc.Timeline, Entry{Time: now, Type: EntryNote, Message: msg})
	})
	l.mu.Lock()
	l.signal()
	l.mu.Unlock()
}

// note appends to the timeline and persists.
func (m *Manager) note(l *live, e Entry, evs ...store.Event) {
	m.update(m.ctx, l, func(inc *Incident) {
		e.Time = m.deps.Now().UTC()
		inc.Timeline = append(inc.Timeline, e)
	}, evs...)
}

// update applies f to the incident under its lock and writes it durably
// with evs, in one write. Writes of one incident are made one at a time,
// each of the state after its own change, so the record never goes back.
func (m *Manager) update(ctx context.Context, l *live, f func(inc *Incident), evs ...store.Event) error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	l.mu.Lock()
	if f != nil {
		f(l.inc)
	}
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
	if _, live := m.byID[inc.ID]; live {
		m.snaps[inc.ID] = body
	}
	m.mu.Unlock()
	return nil
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

// Resume continues the incidents an earlier controller left open, each
// from its record (Decide): an attempt whose runbook runs is waited for, a
// verification or a pause goes on until its recorded deadline, attempts
// already made count.
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
			m.update(ctx, newLive(&inc), nil)
			continue
		}
		upgrade(&inc)
		l := newLive(&inc)
		m.mu.Lock()
		m.open[inc.Trigger.Key] = l
		m.byID[inc.ID] = l
		m.snaps[inc.ID] = r.Body
		m.mu.Unlock()
		m.note(l, Entry{Type: EntryNote, Message: "controller restarted; remediation continues: " + resumeText(&inc, m.deps.Now())})
		m.start(l)
	}
	return nil
}

// resumeText says what a resumed incident does first, for its timeline.
func resumeText(inc *Incident, now time.Time) string {
	d := Decide(inc, inc.OKAt != nil, now)
	switch d.Do {
	case DoWaitExecution:
		return fmt.Sprintf("waiting for attempt %d's runbook (%s), not running it again", inc.Current.N, inc.Current.Execution)
	case DoVerify:
		return fmt.Sprintf("verifying attempt %d until %s", inc.Current.N, d.At.Format(time.RFC3339))
	case DoVerifyFailed:
		return fmt.Sprintf("attempt %d's verification ended at %s", inc.Current.N, inc.Current.VerifyBy.Format(time.RFC3339))
	case DoPause:
		return fmt.Sprintf("next attempt at %s", d.At.Format(time.RFC3339))
	}
	return d.Do.String()
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
	l := newLive(inc)
	m.open[t.Key] = l
	m.byID[inc.ID] = l
	m.mu.Unlock()
	if err := m.update(ctx, l, nil, event.New(group, inc.Instance, fmt.Sprintf("incident %s opened: %s", inc.ID, t.Reason),
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
	if e.Time.IsZero() {
		e.Time = m.deps.Now()
	}
	e.Time = e.Time.UTC()
	m.update(m.ctx, l, func(inc *Incident) { inc.Timeline = append(inc.Timeline, e) })
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
