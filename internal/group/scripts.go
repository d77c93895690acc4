package group

import (
	"fmt"
	"time"

	"github.com/autoheal/autoheal/internal/config"
)

// A launch runs its scripts in Pending:Wait (each volume's init when the
// volume is new, user_data, the launch hooks) and a termination runs its
// terminate hooks in Terminating:Wait. Each script runs at most once per
// launch or termination, whatever the controller does: its start is
// recorded durably (in the group's ledger) before it runs, and a
// controller that finds a script started with no recorded outcome does not
// run it again. It settles it as lifecycle hooks settle when their
// heartbeat runs out in EC2 Auto Scaling: a hook takes its default_result;
// user_data and a volume's init, which have none, fail the launch (it is
// abandoned and the instance replaced; the volume stays uninitialised and
// its init runs on the next launch).

// script is one step of a launch or a termination.
type script struct {
	// Key names it in the ledger, unique within the instance.
	Key string
	// Kind is volume, user_data or hook.
	Kind string
	// Phase is launch or terminate.
	Phase   string
	Name    string
	Script  string
	Timeout time.Duration
	// DefaultResult is a hook's continue or abandon; empty for user_data
	// and volume init, whose failure abandons the launch.
	DefaultResult string
}

// Script kinds.
const (
	kindVolume   = "volume"
	kindUserData = "user_data"
	kindHook     = "hook"
)

// Ledger states of a script.
const (
	scriptStarted = "started" // recorded before it runs
	scriptOK      = "ok"
	scriptFailed  = "failed"
	// scriptLost: started by a controller that died before recording its
	// outcome; settled as a failure.
	scriptLost = "lost"
	// scriptContinued and scriptAbandoned: a hook ended through the API
	// (CompleteLifecycleAction, lifecycle_action.go) with CONTINUE or
	// ABANDON, its script stopped.
	scriptContinued = "continue"
	scriptAbandoned = "abandon"
)

// launchScripts are a launch's scripts in the order they run. A volume
// without an init script is still a step: a new volume is marked
// initialised there.
func launchScripts(cfg config.Group) []script {
	var out []script
	for _, v := range cfg.Volumes {
		out = append(out, script{Key: "volume/" + v.Name, Kind: kindVolume, Phase: "launch", Name: v.Name, Script: v.Init, Timeout: volumeInitTimeout})
	}
	if cfg.Launch.UserData != "" {
		out = append(out, script{Key: "user_data", Kind: kindUserData, Phase: "launch", Name: "user_data", Script: cfg.Launch.UserData, Timeout: userDataTimeout})
	}
	for _, h := range cfg.Hooks.Launch {
		out = append(out, script{Key: "launch/" + h.Name, Kind: kindHook, Phase: "launch", Name: h.Name, Script: h.Script, Timeout: h.HeartbeatTimeout.D(), DefaultResult: h.DefaultResult})
	}
	return out
}

// terminateScripts are a termination's hooks in order.
func terminateScripts(cfg config.Group) []script {
	var out []script
	for _, h := range cfg.Hooks.Terminate {
		out = append(out, script{Key: "terminate/" + h.Name, Kind: kindHook, Phase: "terminate", Name: h.Name, Script: h.Script, Timeout: h.HeartbeatTimeout.D(), DefaultResult: h.DefaultResult})
	}
	return out
}

// scriptAct is what a launch or termination does with one script.
type scriptAct int

const (
	// actRun: never started; record it started, then run it.
	actRun scriptAct = iota
	// actSettle: started by an earlier controller with no outcome; record
	// it lost (a failure) without running it again.
	actSettle
	// actDone: it has an outcome; take it as recorded.
	actDone
)

func (a scriptAct) String() string {
	switch a {
	case actRun:
		return "run"
	case actSettle:
		return "settle"
	case actDone:
		return "done"
	}
	return fmt.Sprintf("scriptAct(%d)", int(a))
}

// resumeScript says what to do with a script recorded in state ("" when it
// never started).
func resumeScript(state string) scriptAct {
	switch state {
	case "":
		return actRun
	case scriptStarted:
		return actSettle
	}
	return actDone
}

// succeeded is the outcome a recorded state stands for.
func succeeded(state string) bool { return state == scriptOK || state == scriptContinued }

// proceeds reports whether the launch or termination goes on after s ended
// (ok false: failed, timed out, or lost). Terminate hooks always go on: the
// instance is going away whatever they say. A launch hook goes on when it
// succeeded or its default_result is continue; user_data and volume init
// only when they succeeded. (A launch hook abandoned through the API does
// not go on whatever its default_result: see proceedsAfter.)
func proceeds(s script, ok bool) bool {
	switch {
	case ok, s.Phase == "terminate":
		return true
	case s.Kind == kindHook:
		return s.DefaultResult == config.ResultContinue
	}
	return false
}

// proceedsAfter is proceeds for a script that ended in state: a launch
// hook abandoned through the API (CompleteLifecycleAction ABANDON) stops
// the launch whatever its default_result.
func proceedsAfter(s script, ok bool, state string) bool {
	if state == scriptAbandoned && s.Phase != "terminate" {
		return false
	}
	return proceeds(s, ok)
}

// abandonReason says why a launch stops at s.
func abandonReason(s script, state string) string {
	what := map[string]string{
		kindVolume:   fmt.Sprintf("volume %s init", s.Name),
		kindUserData: "user_data",
		kindHook:     fmt.Sprintf("%s hook %s", s.Phase, s.Name),
	}[s.Kind]
	switch state {
	case scriptLost:
		return what + " interrupted by a controller restart"
	case scriptAbandoned:
		return what + " abandoned through the API (CompleteLifecycleAction ABANDON)"
	}
	return what + " failed"
}
