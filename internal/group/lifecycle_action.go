package group

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/autoheal/autoheal/internal/awsid"
	"github.com/autoheal/autoheal/internal/provider"
)

// Lifecycle actions: a lifecycle hook that is running is, in EC2 Auto
// Scaling's terms, a lifecycle action in progress for its instance. Its
// script is the hook's work; the API may also end it early with a result
// (CompleteLifecycleAction: CONTINUE or ABANDON, the script is then
// killed, its whole process group) or put its heartbeat timeout off
// (RecordLifecycleActionHeartbeat: the timeout starts over), as for an
// Auto Scaling group's hook. As there, a heartbeat cannot keep a hook
// waiting past its global timeout: 100 heartbeat timeouts, at most 48
// hours. A hook completed through the API records its result in the
// ledger like a script's outcome (scriptContinued, scriptAbandoned), so a
// restarted controller takes the result as given.
//
// A hook script is told its action's token and hook name
// (AUTOHEAL_LIFECYCLE_ACTION_TOKEN, AUTOHEAL_LIFECYCLE_HOOK_NAME), which
// RecordLifecycleActionHeartbeat takes, to put its own timeout off. A
// script that is done simply exits (0: continue; otherwise its
// default_result): completing its own action kills it.

// Lifecycle action results, as the API names them.
const (
	ResultContinue = "CONTINUE"
	ResultAbandon  = "ABANDON"
)

// maxGlobalTimeout bounds how long heartbeats may keep a hook running,
// as EC2 Auto Scaling's: 48 hours, or 100 heartbeat timeouts if less.
const maxGlobalTimeout = 48 * time.Hour

// globalTimeout is the most a hook with heartbeat timeout t may run.
func globalTimeout(t time.Duration) time.Duration {
	if t <= 0 || t > maxGlobalTimeout/100 {
		return maxGlobalTimeout
	}
	return 100 * t
}

// LifecycleAction is a running hook, as the API shows it.
type LifecycleAction struct {
	Instance string
	Hook     string
	// Phase is launch or terminate.
	Phase string
	Token string
	// Deadline is when the hook's heartbeat runs out; GlobalDeadline
	// bounds it.
	Deadline, GlobalDeadline time.Time
}

// lifecycleAction is a hook script being run.
type lifecycleAction struct {
	LifecycleAction // guarded by its group's hooks.mu, as the fields below
	heartbeat       time.Duration
	cancel          context.CancelFunc
	timer           *time.Timer
	timedOut        bool   // the heartbeat ran out
	result          string // scriptContinued or scriptAbandoned once completed
	completedAt     time.Time
	startedAt       time.Time
}

// lifecycleTable is a group's running hooks, by instance (an instance
// runs at most one script at a time). It has its own lock, apart from the
// group's loop: the API reaches it from its own goroutines.
type lifecycleTable struct {
	mu sync.Mutex
	m  map[string]*lifecycleAction
}

// runScript runs a launch or terminate script through the provider. A
// hook runs as a lifecycle action: under its heartbeat timeout, which the
// API may put off, and until its script ends or the API completes it.
// result is "" when the script's own outcome stands, else the ledger
// state the API's result is recorded as (scriptContinued,
// scriptAbandoned).
func (g *Group) runScript(ctx context.Context, id string, spec provider.Spec, s script) (res provider.Result, result string, err error) {
	if s.Kind != kindHook || s.Timeout <= 0 {
		res, err = g.deps.Provider.Run(ctx, spec, s.Script, s.Timeout)
		return res, "", err
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	now := time.Now()
	a := &lifecycleAction{
		heartbeat: s.Timeout, cancel: cancel, startedAt: now,
		LifecycleAction: LifecycleAction{
			Instance: id, Hook: s.Name, Phase: s.Phase, Token: newToken(),
			Deadline: now.Add(s.Timeout), GlobalDeadline: now.Add(globalTimeout(s.Timeout)),
		},
	}
	g.hooks.mu.Lock()
	if g.hooks.m == nil {
		g.hooks.m = map[string]*lifecycleAction{}
	}
	g.hooks.m[id] = a
	a.timer = time.AfterFunc(s.Timeout, func() {
		g.hooks.mu.Lock()
		if a.result == "" {
			a.timedOut = true
		}
		g.hooks.mu.Unlock()
		cancel()
	})
	g.hooks.mu.Unlock()
	spec.Env = append(slices.Clip(spec.Env),
		"AUTOHEAL_LIFECYCLE_HOOK_NAME="+s.Name, "AUTOHEAL_LIFECYCLE_ACTION_TOKEN="+a.Token)
	// The provider's own bound is the global timeout: heartbeats cannot
	// keep the hook past it.
	res, err = g.deps.Provider.Run(rctx, spec, s.Script, globalTimeout(s.Timeout))

	// Read the result and forget the action at once: an API call either
	// came before (its result stands) or finds no action.
	g.hooks.mu.Lock()
	a.timer.Stop()
	if g.hooks.m[id] == a {
		delete(g.hooks.m, id)
	}
	result, timedOut, completedAt := a.result, a.timedOut, a.completedAt
	g.hooks.mu.Unlock()
	switch {
	case ctx.Err() != nil:
		// Stopping: the caller leaves the script started.
		return res, "", err
	case result != "":
		res.TimedOut, res.ExitCode = false, -1
		res.Duration = completedAt.Sub(a.startedAt)
		res.Output = fmt.Sprintf("%s\n[completed through the API with %s: the script was stopped]", res.Output, resultName(result))
		return res, result, nil
	case timedOut:
		res.TimedOut, res.ExitCode = true, -1
		return res, "", nil
	}
	return res, "", err
}

func newToken() string { return awsid.NewUUID() }

// resultName is the API's name of a completed action's ledger state.
func resultName(state string) string {
	if state == scriptAbandoned {
		return ResultAbandon
	}
	return ResultContinue
}

// findAction returns the running hook of the group that matches: by
// token when given (instance, if given too, must match), else by
// instance. hook, when given, must be the hook's name. Called with
// g.hooks.mu held.
func (g *Group) findAction(instance, hook, token string) (*lifecycleAction, error) {
	var found *lifecycleAction
	for id, a := range g.hooks.m {
		if (token != "" && a.Token == token) || (token == "" && id == instance) {
			found = a
			break
		}
	}
	what := "instance " + instance
	if token != "" {
		what = "token " + token
	}
	switch {
	case found == nil:
		return nil, fmt.Errorf("no lifecycle action in progress for %s in group %s: %w", what, g.cfg.Name, ErrNotFound)
	case instance != "" && found.Instance != instance:
		return nil, fmt.Errorf("%w: lifecycle action token %s is instance %s's, not %s", ErrInvalid, token, found.Instance, instance)
	case hook != "" && found.Hook != hook:
		return nil, fmt.Errorf("no lifecycle action of hook %s in progress for %s in group %s (its %s hook %s is running): %w",
			hook, what, g.cfg.Name, found.Phase, found.Hook, ErrNotFound)
	case found.result != "":
		return nil, fmt.Errorf("the lifecycle action of hook %s for instance %s was already completed with %s: %w",
			found.Hook, found.Instance, resultName(found.result), ErrNotFound)
	}
	return found, nil
}

// LifecycleActions returns the group's hooks running now.
func (g *Group) LifecycleActions() []LifecycleAction {
	g.hooks.mu.Lock()
	defer g.hooks.mu.Unlock()
	var out []LifecycleAction
	for _, a := range g.hooks.m {
		if a.result == "" {
			out = append(out, a.LifecycleAction)
		}
	}
	slices.SortFunc(out, func(x, y LifecycleAction) int {
		switch {
		case x.Instance < y.Instance:
			return -1
		case x.Instance > y.Instance:
			return 1
		}
		return 0
	})
	return out
}

// CompleteLifecycleAction ends the running hook of an instance (found by
// instance id, or by the token its script was given) with result:
// CONTINUE or ABANDON. Its script is killed and the launch or termination
// goes on as the result says: a launch hook that is abandoned abandons the
// launch (the instance is replaced), whatever the hook's default_result; a
// terminate hook's result changes nothing but that the termination goes on
// now. It returns the action completed. An instance that runs no hook (or
// another hook than hook, when given) is ErrNotFound.
func (g *Group) CompleteLifecycleAction(ctx context.Context, instance, hook, token, result string) (LifecycleAction, error) {
	var state string
	switch result {
	case ResultContinue:
		state = scriptContinued
	case ResultAbandon:
		state = scriptAbandoned
	default:
		return LifecycleAction{}, fmt.Errorf("%w: lifecycle action result %q is not %s or %s", ErrInvalid, result, ResultContinue, ResultAbandon)
	}
	g.hooks.mu.Lock()
	a, err := g.findAction(instance, hook, token)
	if err != nil {
		g.hooks.mu.Unlock()
		return LifecycleAction{}, err
	}
	a.result, a.completedAt = state, time.Now()
	a.timer.Stop()
	out := a.LifecycleAction
	g.hooks.mu.Unlock()
	a.cancel()
	return out, nil
}

// RecordLifecycleActionHeartbeat starts the heartbeat timeout of an
// instance's running hook over, up to its global timeout, and returns the
// action with its new deadline.
func (g *Group) RecordLifecycleActionHeartbeat(ctx context.Context, instance, hook, token string) (LifecycleAction, error) {
	g.hooks.mu.Lock()
	defer g.hooks.mu.Unlock()
	a, err := g.findAction(instance, hook, token)
	if err != nil {
		return LifecycleAction{}, err
	}
	if a.timedOut {
		return LifecycleAction{}, fmt.Errorf("the heartbeat of hook %s for instance %s already ran out: %w", a.Hook, a.Instance, ErrNotFound)
	}
	deadline := time.Now().Add(a.heartbeat)
	if deadline.After(a.GlobalDeadline) {
		deadline = a.GlobalDeadline
	}
	if !a.timer.Stop() {
		// It fired: the hook is being stopped.
		return LifecycleAction{}, fmt.Errorf("the heartbeat of hook %s for instance %s already ran out: %w", a.Hook, a.Instance, ErrNotFound)
	}
	a.timer.Reset(time.Until(deadline))
	a.Deadline = deadline
	return a.LifecycleAction, nil
}
