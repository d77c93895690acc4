package runbook

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/autoheal/autoheal/internal/event"
	"github.com/autoheal/autoheal/internal/store"
)

// Execution and step statuses, as SSM Automation names them.
const (
	StatusPending    = "Pending"
	StatusInProgress = "InProgress"
	StatusWaiting    = "Waiting" // an approve step waits for an operator
	StatusSuccess    = "Success"
	StatusFailed     = "Failed"
	StatusCancelled  = "Cancelled"
	StatusTimedOut   = "TimedOut"
	StatusSkipped    = "Skipped"
)

// Execution is one run of a document: what the API shows and the store
// keeps, rewritten durably at every step transition.
type Execution struct {
	ID         string         `json:"id"`
	Document   string         `json:"document"`
	Parameters map[string]any `json:"parameters"`
	Status     string         `json:"status"`
	Error      string         `json:"error,omitempty"`
	// Origin says who started it: "cli", "window:NAME", "alarm:NAME",
	// "execution:ID" for a nested one.
	Origin    string          `json:"origin,omitempty"`
	Parent    string          `json:"parent,omitempty"`
	StartedAt time.Time       `json:"started_at"`
	EndedAt   *time.Time      `json:"ended_at,omitempty"`
	Current   string          `json:"current_step,omitempty"`
	Steps     []StepExecution `json:"steps"`
	Outputs   map[string]any  `json:"outputs,omitempty"` // "Step.Output" -> value
	Approvals []Approval      `json:"approvals,omitempty"`
	// DocumentV is the document as it was when the execution started, so
	// that a resumed execution runs what it began with.
	DocumentV *Document `json:"document_snapshot,omitempty"`
}

// StepExecution is the state of one step of an execution.
type StepExecution struct {
	Name      string         `json:"name"`
	Action    string         `json:"action"`
	Status    string         `json:"status"`
	Attempts  int            `json:"attempts"`
	StartedAt *time.Time     `json:"started_at,omitempty"`
	EndedAt   *time.Time     `json:"ended_at,omitempty"`
	Inputs    any            `json:"inputs,omitempty"` // as rendered for the last attempt
	Outputs   map[string]any `json:"outputs,omitempty"`
	// Result is what the action produced (API status and payload, a
	// command's exit code and output), which output selectors read.
	Result any    `json:"result,omitempty"`
	Error  string `json:"error,omitempty"`
	// Child is the nested execution of an executeAutomation step; its id
	// is recorded with the attempt, before the child starts.
	Child string `json:"child,omitempty"`
	// Deadline is when the attempt under way times out: its start plus
	// timeoutSeconds, recorded before it begins, so that a resumed attempt
	// keeps it.
	Deadline *time.Time `json:"deadline,omitempty"`
	// RetryAt is when the next attempt may start, after a failed one.
	RetryAt *time.Time `json:"retry_at,omitempty"`
}

// Approval is one answer to an approve step.
type Approval struct {
	Step     string    `json:"step"`
	Approver string    `json:"approver"`
	Approved bool      `json:"approved"`
	Comment  string    `json:"comment,omitempty"`
	Time     time.Time `json:"time"`
}

// CommandRequest is a runCommand script for one instance.
type CommandRequest struct {
	InstanceID string
	Script     string
	Env        map[string]string
	Dir        string
	Limit      int
	Timeout    time.Duration
}

// CommandResult is what a script did.
type CommandResult struct {
	ExitCode int
	Stdout   string
	Stderr   string
	TimedOut bool
}

// Deps are what executions act on.
type Deps struct {
	Store *store.Store
	// Documents finds a document by name (built-ins and the documents
	// directory).
	Documents func(name string) (*Document, error)
	// API serves executeApi and the property actions, in process.
	API http.Handler
	// Command runs a script in an instance's context (its environment,
	// working directory and volume).
	Command func(ctx context.Context, req CommandRequest) (CommandResult, error)
	// Restart restarts an instance in place and returns once it is
	// InService again (exit code 194 of a runCommand script).
	Restart func(ctx context.Context, instanceID string) error
	Now     func() time.Time
	Logger  *slog.Logger
}

// ErrNotFound and ErrInvalid are the engine's error kinds.
var (
	ErrNotFound = errors.New("not found")
	ErrInvalid  = errors.New("invalid")
)

// Engine runs executions. Each execution has one goroutine that owns its
// state; the API reads published snapshots.
type Engine struct {
	deps   Deps
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu   sync.Mutex
	runs map[string]*run
	// startMu makes StartAs's look-up and creation one step.
	startMu sync.Mutex
}

// run is a live execution.
type run struct {
	doc     *Document
	ex      *Execution // owned by the run's goroutine
	ctx     context.Context
	cancel  context.CancelFunc
	answers chan Approval
	done    chan struct{}

	mu   sync.Mutex
	snap []byte // JSON of ex as last persisted
	// changed is closed at each new snapshot and replaced, and closed for
	// good when the run ends: Changed hands it to whoever waits.
	changed chan struct{}
}

// notify wakes whoever waits on the run's changes; after the final one
// the channel stays closed.
func (r *run) notify(final bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	close(r.changed)
	if !final {
		r.changed = make(chan struct{})
	}
}

// NewEngine returns an engine; Resume continues interrupted executions.
func NewEngine(deps Deps) *Engine {
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.Logger == nil {
		deps.Logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Engine{deps: deps, log: deps.Logger, ctx: ctx, cancel: cancel, runs: map[string]*run{}}
}

// Close stops running executions where they are (they resume at the next
// start) and waits for their goroutines.
func (e *Engine) Close() {
	e.cancel()
	e.wg.Wait()
}

// NewExecutionID returns a new execution id: "exec-" and 16 hex digits.
// A caller that must record an execution before it starts (an incident's
// attempt, a window's task) takes one and passes it to StartAs.
func NewExecutionID() string {
	var b [8]byte
	rand.Read(b[:])
	return "exec-" + hex.EncodeToString(b[:])
}

// ValidExecutionID reports whether id has the form NewExecutionID gives.
func ValidExecutionID(id string) bool {
	h, ok := strings.CutPrefix(id, "exec-")
	if !ok || len(h) != 16 {
		return false
	}
	_, err := hex.DecodeString(h)
	return err == nil && strings.ToLower(h) == h
}

// Start binds params to the document's parameters and starts an
// execution. It returns once the execution is durably recorded.
func (e *Engine) Start(ctx context.Context, document string, params map[string]string, origin string) (string, error) {
	id := NewExecutionID()
	if err := e.start(ctx, id, document, params, origin, ""); err != nil {
		return "", err
	}
	return id, nil
}

// StartAs is Start under an id the caller chose (NewExecutionID) and
// recorded before calling it. An id that already names an execution
// starts nothing and is not an error: an earlier controller started it
// before it stopped, this engine resumed it, and the caller waits for it
// as for one it started. So a caller that records the id, then calls
// StartAs, starts the execution at most once however often it is killed.
func (e *Engine) StartAs(ctx context.Context, id, document string, params map[string]string, origin string) error {
	if !ValidExecutionID(id) {
		return fmt.Errorf("%w: execution id %q: want exec- and 16 hex digits", ErrInvalid, id)
	}
	e.startMu.Lock()
	defer e.startMu.Unlock()
	if ok, err := e.Exists(ctx, id); err != nil || ok {
		return err
	}
	return e.start(ctx, id, document, params, origin, "")
}

// Exists reports whether an execution has the id, live or finished.
func (e *Engine) Exists(ctx context.Context, id string) (bool, error) {
	e.mu.Lock()
	_, live := e.runs[id]
	e.mu.Unlock()
	if live {
		return true, nil
	}
	_, err := e.deps.Store.Execution(ctx, id)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, store.ErrNotFound):
		return false, nil
	}
	return false, fmt.Errorf("execution %s: %w", id, err)
}

func (e *Engine) start(ctx context.Context, id, document string, params map[string]string, origin, parent string) error {
	doc, err := e.deps.Documents(document)
	if err != nil {
		return err
	}
	return e.startDoc(ctx, id, doc, params, origin, parent)
}

// startDoc starts an execution of doc, found by name or built in code
// (command.go).
func (e *Engine) startDoc(ctx context.Context, id string, doc *Document, params map[string]string, origin, parent string) error {
	values, err := doc.Bind(params)
	if err != nil {
		return fmt.Errorf("%w: document %s: %v", ErrInvalid, doc.Name, err)
	}
	ex := &Execution{
		ID: id, Document: doc.Name, Parameters: values, Status: StatusInProgress,
		Origin: origin, Parent: parent, StartedAt: e.deps.Now().UTC(), Outputs: map[string]any{},
		DocumentV: doc,
	}
	for _, st := range doc.MainSteps {
		ex.Steps = append(ex.Steps, StepExecution{Name: st.Name, Action: st.Action, Status: StatusPending})
	}
	ex.Current = doc.MainSteps[0].Name
	r := e.newRun(doc, ex)
	if err := e.persist(ctx, r, store.Event{Type: event.KindExecutionStart, Message: fmt.Sprintf("execution %s of %s started (%s)", ex.ID, doc.Name, originOr(origin)),
		Data: event.ExecutionStart{Execution: ofExecution(ex.ID, ex.Document), Origin: originOr(origin)}}); err != nil {
		return err
	}
	e.register(r)
	e.launch(r, 0, resumeRun)
	return nil
}

func originOr(o string) string {
	if o == "" {
		return "api"
	}
	return o
}

func (e *Engine) newRun(doc *Document, ex *Execution) *run {
	return &run{doc: doc, ex: ex, answers: make(chan Approval, 4), done: make(chan struct{}), changed: make(chan struct{})}
}

// register makes r live: Get, Wait, Cancel and Approve find it.
func (e *Engine) register(r *run) {
	ctx, cancel := context.WithCancel(e.ctx)
	r.ctx, r.cancel = ctx, cancel
	e.mu.Lock()
	e.runs[r.ex.ID] = r
	e.mu.Unlock()
}

// launch runs a registered execution from step from, handled as how says.
func (e *Engine) launch(r *run, from int, how resumeKind) {
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		defer r.cancel()
		defer func() {
			if p := recover(); p != nil {
				e.log.Error("execution panicked", "execution", r.ex.ID, "panic", p)
			}
			e.mu.Lock()
			delete(e.runs, r.ex.ID)
			e.mu.Unlock()
			r.notify(true)
			close(r.done)
		}()
		e.execute(r.ctx, r, from, how)
	}()
}

// persist writes the execution durably and publishes its snapshot.
func (e *Engine) persist(ctx context.Context, r *run, evs ...store.Event) error {
	ex := r.ex
	body, err := json.Marshal(ex)
	if err != nil {
		return fmt.Errorf("execution %s: %w", ex.ID, err)
	}
	for i := range evs {
		if evs[i].Time.IsZero() {
			evs[i].Time = e.deps.Now()
		}
	}
	rec := store.ExecutionRecord{ID: ex.ID, Document: ex.Document, Status: ex.Status, Parent: ex.Parent, StartedAt: ex.StartedAt, UpdatedAt: e.deps.Now(), Body: body}
	// Written even when the execution's own context is cancelled: its
	// final state must be recorded.
	if err := e.deps.Store.PutExecution(context.WithoutCancel(ctx), rec, evs...); err != nil {
		return err
	}
	r.mu.Lock()
	r.snap = body
	r.mu.Unlock()
	r.notify(false)
	return nil
}

// ofExecution names ex in its events' data.
func ofExecution(id, document string) event.Execution {
	return event.Execution{Execution: id, Document: document}
}

// Changed returns a channel closed at the next change of a running
// execution (its next persisted state, or its end), or nil when it is not
// running in this engine: then it will not change. Take the channel
// before reading the execution, so that no change falls between.
func (e *Engine) Changed(id string) <-chan struct{} {
	e.mu.Lock()
	r := e.runs[id]
	e.mu.Unlock()
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.changed
}

// Get returns an execution, live or finished.
func (e *Engine) Get(ctx context.Context, id string) (Execution, error) {
	e.mu.Lock()
	r := e.runs[id]
	e.mu.Unlock()
	var body []byte
	if r != nil {
		r.mu.Lock()
		body = r.snap
		r.mu.Unlock()
	} else {
		rec, err := e.deps.Store.Execution(ctx, id)
		if err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return Execution{}, fmt.Errorf("%w: execution %s", ErrNotFound, id)
			}
			return Execution{}, err
		}
		body = rec.Body
	}
	var ex Execution
	if err := json.Unmarshal(body, &ex); err != nil {
		return Execution{}, fmt.Errorf("execution %s: %w", id, err)
	}
	return ex, nil
}

// List returns the newest executions first.
func (e *Engine) List(ctx context.Context, limit int) ([]Execution, error) {
	recs, err := e.deps.Store.Executions(ctx, limit)
	if err != nil {
		return nil, err
	}
	out := make([]Execution, 0, len(recs))
	for _, rec := range recs {
		var ex Execution
		if err := json.Unmarshal(rec.Body, &ex); err != nil {
			continue
		}
		ex.DocumentV = nil
		out = append(out, ex)
	}
	return out, nil
}

// Wait blocks until the execution ends and returns its final status.
func (e *Engine) Wait(ctx context.Context, id string) (string, error) {
	e.mu.Lock()
	r := e.runs[id]
	e.mu.Unlock()
	if r != nil {
		select {
		case <-r.done:
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	ex, err := e.Get(ctx, id)
	if err != nil {
		return "", err
	}
	if !ended(ex.Status) {
		return ex.Status, fmt.Errorf("execution %s is %s and not running in this controller", id, ex.Status)
	}
	return ex.Status, nil
}

func ended(status string) bool {
	switch status {
	case StatusSuccess, StatusFailed, StatusCancelled, StatusTimedOut:
		return true
	}
	return false
}

// Cancel stops a running execution; it ends Cancelled.
func (e *Engine) Cancel(ctx context.Context, id string) error {
	r, err := e.running(ctx, id)
	if err != nil {
		return err
	}
	r.cancel()
	return nil
}

// running is the run of a running execution; an execution that is not
// running is an error wrapping ErrInvalid, an unknown one ErrNotFound.
func (e *Engine) running(ctx context.Context, id string) (*run, error) {
	e.mu.Lock()
	r := e.runs[id]
	e.mu.Unlock()
	if r == nil {
		if _, err := e.Get(ctx, id); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%w: execution %s is not running", ErrInvalid, id)
	}
	return r, nil
}

// Approve answers the approve step an execution waits at.
func (e *Engine) Approve(ctx context.Context, id string, a Approval) error {
	r, err := e.running(ctx, id)
	if err != nil {
		return err
	}
	ex, err := e.Get(ctx, id)
	if err != nil {
		return err
	}
	if ex.Status != StatusWaiting {
		return fmt.Errorf("%w: execution %s is %s, not waiting for an approval", ErrInvalid, id, ex.Status)
	}
	a.Step, a.Time = ex.Current, e.deps.Now().UTC()
	select {
	case r.answers <- a:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *run) index(name string) int {
	for i, st := range r.doc.MainSteps {
		if st.Name == name {
			return i
		}
	}
	return -1
}

func (e *Engine) endStep(se *StepExecution) {
	t := e.deps.Now().UTC()
	se.EndedAt = &t
}
