package group

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/autoheal/autoheal/internal/crashpoint"
	"github.com/autoheal/autoheal/internal/event"
	"github.com/autoheal/autoheal/internal/health"
	"github.com/autoheal/autoheal/internal/provider"
	"github.com/autoheal/autoheal/internal/store"
)

// Timeouts of scripts that have no configured bound.
const (
	userDataTimeout   = 5 * time.Minute
	volumeInitTimeout = 10 * time.Minute
)

// keepTerminated is how many terminated instances a group keeps in its
// snapshot (the journal keeps all of them).
const keepTerminated = 5

var (
	errFailed    = errors.New("instance failed")
	errTerminate = errors.New("termination requested")
)

// jobLaunchNew launches a new instance; replaces names the instance it
// replaces, if any (already terminated).
func (g *Group) jobLaunchNew(ctx context.Context, cause, replaces string) {
	in := newInstance()
	in.replacesID = replaces
	g.launchNew(ctx, in, cause)
}

// launchNew launches the new instance in. When in.replaces is set, that
// failed instance becomes Terminating, with in.replacesCause, in the new
// one's first durable write.
func (g *Group) launchNew(ctx context.Context, in *instance, cause string) {
	host, ok := g.placeOrBackOff()
	if !ok {
		return
	}
	ports, err := g.allocatePorts()
	if err != nil {
		g.record(g.event("", "allocate ports: "+err.Error(), event.GroupError{Op: "allocate_ports", Error: err.Error()}))
		g.call(func() { g.notBefore = g.deps.Now().Add(g.policy.BackoffBase) })
		return
	}
	in.id, in.ports = provider.NewInstanceID(), ports
	in.rec = store.Instance{
		ID:         in.id,
		Group:      g.cfg.Name,
		Health:     health.Initial.String(),
		Ports:      ports,
		Host:       host,
		LaunchedAt: g.deps.Now(),
	}
	if err := g.onLoop(func() error {
		g.instances[in.id] = in
		return nil
	}); err != nil {
		return
	}
	g.runLaunch(ctx, in, cause, false)
}

// jobResumeLaunch finishes a launch that a controller restart interrupted:
// the steps that ended are not run again (see scripts.go).
func (g *Group) jobResumeLaunch(ctx context.Context, in *instance) {
	g.fence(ctx, in)
	g.runLaunch(ctx, in, "resuming launch interrupted by a controller restart", true)
}

// runLaunch takes an instance (new, or an existing one restarted in place)
// from Pending to InService. On failure it records the failure on the
// instance; the loop then applies the heal policy.
func (g *Group) runLaunch(ctx context.Context, in *instance, cause string, resume bool) {
	err := g.launch(ctx, in, cause, resume)
	if err == nil || errors.Is(err, errFailed) || errors.Is(err, errTerminate) || ctx.Err() != nil {
		return
	}
	if g.stateDirRefused(ctx, err) {
		// Not the instance's failure: the launch stopped at a write the
		// state dir refused, and resumes from its records once it is
		// writable (plan's resume-launch and wait-healthy steps). A new
		// instance whose first write was refused was never recorded nor
		// started: it does not exist, and capacity launches another.
		g.onLoop(func() error {
			if in.rec.State == "" {
				delete(g.instances, in.id)
				g.publish()
			}
			return nil
		})
		return
	}
	g.onLoop(func() error {
		switch {
		case in.failure != "":
		case errors.Is(err, provider.ErrHostGone):
			// A restart in place on a host that left: replaced.
			in.failure = hostLostFailure(in.rec.Host, provider.ExitStatus{Error: err.Error()})
		default:
			in.failure = err.Error()
		}
		return nil
	})
}

func (g *Group) launch(ctx context.Context, in *instance, cause string, resume bool) error {
	var spec provider.Spec
	var err error
	if g.hasLaunchSteps() {
		spec, err = g.launchWithSteps(ctx, in, cause, resume)
	} else {
		spec, err = g.launchDirect(ctx, in, cause)
	}
	if err != nil {
		return err
	}
	proc, err := g.deps.Provider.Launch(ctx, spec)
	for _, l := range spec.Listeners {
		l.File.Close() // the instance has its own copy now
	}
	if err != nil {
		return fmt.Errorf("start application: %w", err)
	}
	crashpoint.Hit("launch.started")
	if err := g.onLoop(func() error {
		g.watch(in, proc, false)
		r := in.rec
		r.Pid = proc.Pid()
		r.Health = health.Initial.String() // a new process: its checks start over
		// The launch is over: its scripts are forgotten with the pid. A
		// controller that dies before this write finds the instance in
		// Pending:Proceed without a pid and resumes the launch, skipping
		// every script that ran.
		g.clearScripts(in.id, "launch")
		err := g.commit(g.instanceChange(in, r))
		if errors.Is(err, store.ErrNotWritable) {
			// The application runs: its pid is kept in memory for the
			// instance's next write (InService, once the state dir
			// takes writes and its checks pass).
			in.rec.Pid, in.rec.Health = r.Pid, r.Health
			g.publish()
		}
		return err
	}); err != nil {
		return err
	}
	return g.waitHealthy(ctx, in)
}

// launchDirect attaches an instance with nothing to run in Pending:Wait.
// The Pending and Pending:Wait transitions are journaled in the same
// durable write as the attachments, Pending:Proceed and the ledger (the
// heal decision that led here), right before the start: one fsync instead
// of five. A controller that crashes before it finds the instance as the
// previous write left it: absent (a new one) or fenced and failed (a
// restart), with its volumes and addresses where they were.
func (g *Group) launchDirect(ctx context.Context, in *instance, cause string) (provider.Spec, error) {
	var first []change
	var proceed change
	g.call(func() {
		state := in.rec.State
		if state != Pending { // a restart that waited out its backoff is Pending already
			in.pending = append(in.pending, g.stateEvent(in, state, event.InstanceState{To: Pending, Cause: cause}))
		}
		in.rec.State, in.rec.Cause = Pending, cause
		if state == Terminated || state == "" {
			in.rec.TerminatedAt = nil
		}
		// Taken once: if this write fails, the heal that launched this
		// instance terminates the old one itself.
		if old := in.replaces; old != nil {
			if old.rec.State != Terminating { // not already, waiting out a backoff
				first = append(first, g.stateChangeWith(old, event.InstanceState{To: Terminating, Cause: in.replacesCause, ReplacedBy: in.id}))
			}
			in.replaces = nil
		}
		wait := g.stateEvent(in, Pending, event.InstanceState{To: PendingWait, Cause: "volumes and addresses attached; no launch steps"})
		rec := in.rec
		in.rec.State = PendingWait // what Pending:Proceed comes from
		proceed = g.stateChange(in, PendingProceed, "no launch steps; starting application", wait)
		in.rec = rec
		g.publish()
	})
	spec, err := g.attach(ctx, in, first, []change{proceed})
	if err != nil {
		return spec, g.attachFailed(ctx, in, err)
	}
	return spec, nil
}

// launchWithSteps takes an instance through Pending and Pending:Wait, each
// its own write, running the launch's scripts at most once each.
func (g *Group) launchWithSteps(ctx context.Context, in *instance, cause string, resume bool) (provider.Spec, error) {
	if err := g.retireReplaced(in); err != nil {
		return provider.Spec{}, err
	}
	var state string
	g.call(func() {
		state = in.rec.State
		if !resume {
			g.clearScripts(in.id, "launch") // a new launch runs every script again
		}
	})
	if resume || state != Pending { // a restart that waited out its backoff is Pending already
		if err := g.transition(in, Pending, cause); err != nil {
			return provider.Spec{}, err
		}
	}
	spec, err := g.attach(ctx, in, nil, nil)
	if err != nil {
		return spec, g.attachFailed(ctx, in, err)
	}
	if err := g.transition(in, PendingWait, "volumes and addresses attached"); err != nil {
		return spec, err
	}
	if err := g.prepare(ctx, in, spec); err != nil {
		return spec, err
	}
	if err := g.transition(in, PendingProceed, "launch steps done; starting application"); err != nil {
		return spec, err
	}
	crashpoint.Hit("launch.proceed")
	return spec, nil
}

// retireReplaced makes the instance that in replaces Terminating, in a
// write of its own (a launch with launch steps, which is not in a hurry).
func (g *Group) retireReplaced(in *instance) error {
	var old *instance
	var cause, state string
	g.call(func() {
		old, cause, in.replaces = in.replaces, in.replacesCause, nil
		if old != nil {
			state = old.rec.State
		}
	})
	if old == nil || state == Terminating {
		return nil
	}
	return g.transition(old, Terminating, cause)
}

// attachFailed abandons the launch (errFailed) of an instance whose
// volumes or addresses could not be attached, unless the state dir refused
// the write: that is no failure of the instance, and the launch resumes
// from its records once the state dir takes writes.
func (g *Group) attachFailed(ctx context.Context, in *instance, err error) error {
	if g.stateDirRefused(ctx, err) {
		return err
	}
	g.abandon(in, err.Error())
	return errFailed
}

// stateDirRefused reports whether err, a launch's, comes from the state
// dir refusing writes rather than from the instance: a store write that was
// refused, or any error when a probe of the state dir then fails (a full
// disk fails the shim's files and the volumes' tokens too, under errors of
// their own). The probe degrades the store, which holds the group still.
// An error of the instance's own (a command that cannot run, even with
// EACCES) is not taken for the state dir's while the state dir takes
// writes: it is counted by the heal policy.
func (g *Group) stateDirRefused(ctx context.Context, err error) bool {
	if errors.Is(err, store.ErrNotWritable) {
		return true
	}
	return store.NotWritable(g.deps.Store.Probe(ctx))
}

// abandon marks a launch failure that must replace the instance rather than
// restart it.
func (g *Group) abandon(in *instance, why string) {
	g.onLoop(func() error {
		in.failure = abandonPrefix + why
		return nil
	})
}

// prepare runs the Pending:Wait scripts: volume init, user_data, launch
// hooks, each at most once (runOnce).
func (g *Group) prepare(ctx context.Context, in *instance, spec provider.Spec) error {
	runSpec := spec
	runSpec.Listeners, runSpec.Locks = nil, nil
	for _, s := range launchScripts(g.cfg) {
		if s.Kind == kindVolume {
			needs, err := g.deps.Volumes.Prepare(g.cfg.Name, s.Name)
			if err != nil {
				return fmt.Errorf("prepare volume %s: %w", s.Name, err)
			}
			if !needs {
				continue // initialised once, by an earlier launch
			}
			if s.Script == "" {
				if err := g.deps.Volumes.MarkInitialized(g.cfg.Name, s.Name); err != nil {
					return fmt.Errorf("volume %s: %w", s.Name, err)
				}
				continue
			}
		}
		ok, state, err := g.runOnce(ctx, in, runSpec, s)
		if err != nil {
			return err
		}
		if !proceedsAfter(s, ok, state) {
			g.abandon(in, abandonReason(s, state))
			return errFailed
		}
	}
	return ctx.Err()
}

// runOnce runs a launch or terminate script unless the ledger says it
// started before, and reports its outcome and the state recorded for it.
// Its start is durable before it runs (with the previous script's
// outcome); its own outcome rides with the instance's next write.
func (g *Group) runOnce(ctx context.Context, in *instance, spec provider.Spec, s script) (ok bool, state string, err error) {
	g.call(func() { state = g.scriptState(in.id, s.Key) })
	switch resumeScript(state) {
	case actDone:
		return succeeded(state), state, nil
	case actSettle:
		g.call(func() {
			g.setScript(in.id, s.Key, scriptLost)
			in.pending = append(in.pending, g.scriptEvent(in, s, provider.Result{}, nil, scriptLost))
		})
		return false, scriptLost, nil
	}
	if err := g.onLoop(func() error {
		g.setScript(in.id, s.Key, scriptStarted)
		return g.flush(in)
	}); err != nil {
		return false, "", err
	}
	crashpoint.Hit(s.Phase + ".script.started")
	res, completed, rerr := g.runScript(ctx, in.id, spec, s)
	if ctx.Err() != nil {
		// Stopping: the script was cut short. It stays started, and the
		// next controller settles it as after a crash.
		return false, scriptStarted, ctx.Err()
	}
	crashpoint.Hit(s.Phase + ".script.ran")
	ok = rerr == nil && res.ExitCode == 0 && !res.TimedOut
	if ok && s.Kind == kindVolume {
		if err := g.deps.Volumes.MarkInitialized(g.cfg.Name, s.Name); err != nil {
			return false, "", fmt.Errorf("volume %s: %w", s.Name, err)
		}
	}
	state = scriptFailed
	if ok {
		state = scriptOK
	}
	if completed != "" { // through the API (lifecycle_action.go)
		state, ok = completed, succeeded(completed)
	}
	g.call(func() {
		g.setScript(in.id, s.Key, state)
		in.pending = append(in.pending, g.scriptEvent(in, s, res, rerr, state))
	})
	return ok, state, nil
}

// scriptEvent is the journal event of a script's outcome.
func (g *Group) scriptEvent(in *instance, s script, res provider.Result, err error, state string) store.Event {
	ok, lost := succeeded(state), state == scriptLost
	var msg string
	switch {
	case lost:
		msg = "interrupted by a controller restart: not run again"
	case state == scriptContinued || state == scriptAbandoned:
		msg = fmt.Sprintf("completed through the API with %s after %s", resultName(state), res.Duration.Round(time.Millisecond))
	case s.Kind == kindHook && ok:
		msg = fmt.Sprintf("succeeded in %s", res.Duration.Round(time.Millisecond))
	case s.Kind == kindHook:
		msg = fmt.Sprintf("failed (%s)", hookFailure(res, err, s.Timeout))
	default:
		msg = outcome(ok, res, err)
	}
	switch s.Kind {
	case kindVolume:
		return g.event(in.id, fmt.Sprintf("volume %s init %s", s.Name, msg),
			event.VolumeInit{Volume: s.Name, ExitCode: res.ExitCode, TimedOut: res.TimedOut, OK: ok, Output: res.Output, Interrupted: lost})
	case kindUserData:
		return g.event(in.id, "user_data "+msg,
			event.InstanceUserData{ExitCode: res.ExitCode, TimedOut: res.TimedOut, OK: ok, Output: res.Output, Interrupted: lost})
	}
	if !ok && state != scriptAbandoned {
		msg += ": default_result " + s.DefaultResult
	}
	return g.event(in.id, fmt.Sprintf("%s hook %s %s", s.Phase, s.Name, msg),
		event.InstanceHook{Hook: s.Name, Phase: s.Phase, ExitCode: res.ExitCode, TimedOut: res.TimedOut, OK: ok, Output: res.Output, Interrupted: lost})
}

// hookFailure says why a hook failed.
func hookFailure(res provider.Result, err error, timeout time.Duration) string {
	switch {
	case err != nil:
		return err.Error()
	case res.TimedOut:
		return fmt.Sprintf("heartbeat timeout %s exceeded", timeout)
	}
	return fmt.Sprintf("exit %d", res.ExitCode)
}

func outcome(ok bool, res provider.Result, err error) string {
	switch {
	case err != nil:
		return "could not run: " + err.Error()
	case res.TimedOut:
		return "timed out"
	case !ok:
		return fmt.Sprintf("failed with exit %d", res.ExitCode)
	}
	return fmt.Sprintf("succeeded in %s", res.Duration.Round(time.Millisecond))
}

// waitHealthy waits until every health check of the instance passed its
// healthy threshold (or, with no checks, the process is running), then moves
// it to InService.
func (g *Group) waitHealthy(ctx context.Context, in *instance) error {
	for {
		var failure, terminate string
		var ok bool
		if err := g.call(func() {
			failure, terminate = in.failure, in.terminate
			ok = ready(in.proc != nil && !isDone(in.proc), in.health, len(g.cfg.HealthChecks))
		}); err != nil {
			return err
		}
		switch {
		case failure != "":
			return errFailed
		case terminate != "":
			return errTerminate
		case ok:
			return g.transition(in, InService, "health checks passed")
		}
		select {
		case <-in.signal:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// hasLaunchSteps reports whether Pending:Wait has anything to run.
func (g *Group) hasLaunchSteps() bool {
	if g.cfg.Launch.UserData != "" || len(g.cfg.Hooks.Launch) > 0 {
		return true
	}
	for _, v := range g.cfg.Volumes {
		if needs, err := g.deps.Volumes.Prepare(g.cfg.Name, v.Name); err != nil || needs {
			return true
		}
	}
	return false
}
