package config

import (
	"cmp"
	"strings"
	"time"
)

// Healing: a group's restart and replace policy, and its lifecycle hooks.

// Heal is the group's healing policy.
type Heal struct {
	// MaxRestarts is how many in-place restarts are allowed within
	// RestartWindow before the instance is replaced; 0 always replaces.
	// Default 3. Never nil after Validate.
	MaxRestarts *int `yaml:"max_restarts"`
	// RestartWindow. Default 5m.
	RestartWindow Duration `yaml:"restart_window"`
	// BackoffBase is the delay before the second consecutive heal; it doubles
	// with each further failure. The first heal is immediate. Default 1s.
	BackoffBase Duration `yaml:"backoff_base"`
	// BackoffCap caps the delay; at least BackoffBase. Default 1m.
	BackoffCap Duration `yaml:"backoff_cap"`
	// ResetAfter: an instance InService for this long resets the consecutive
	// failure count. Default 1m.
	ResetAfter Duration `yaml:"reset_after"`
	// MaxReplacements within ReplacementWindow; one more marks the group
	// Impaired. Default 5. Never nil after Validate.
	MaxReplacements *int `yaml:"max_replacements"`
	// ReplacementWindow. Default 30m.
	ReplacementWindow Duration `yaml:"replacement_window"`
}

// Hooks are lifecycle hooks.
type Hooks struct {
	// Launch hooks run in Pending:Wait, after volumes and addresses are
	// attached and before the application starts.
	Launch []Hook `yaml:"launch"`
	// Terminate hooks run in Terminating:Wait, after the instance is stopped
	// and before its volumes and addresses are detached.
	Terminate []Hook `yaml:"terminate"`
}

// Hook default results.
const (
	ResultContinue = "continue"
	ResultAbandon  = "abandon"
)

// Hook is one lifecycle hook script.
type Hook struct {
	// Name of the hook. Required, unique per group and kind.
	Name string `yaml:"name"`
	// Script is run with /bin/sh and the instance's environment. Required.
	Script string `yaml:"script"`
	// HeartbeatTimeout bounds the script. Default 60s.
	HeartbeatTimeout Duration `yaml:"heartbeat_timeout"`
	// DefaultResult when the script fails or times out: continue or abandon.
	// Default abandon.
	DefaultResult string `yaml:"default_result"`
}

// Heal policy and lifecycle hook defaults.
const (
	DefaultMaxRestarts       = 3
	DefaultRestartWindow     = Duration(5 * time.Minute)
	DefaultBackoffBase       = Duration(time.Second)
	DefaultBackoffCap        = Duration(time.Minute)
	DefaultResetAfter        = Duration(time.Minute)
	DefaultMaxReplacements   = 5
	DefaultReplacementWindow = Duration(30 * time.Minute)
	DefaultHeartbeatTimeout  = Duration(60 * time.Second)
	DefaultResult            = ResultAbandon
)

// setDefaults fills the heal policy's defaults.
func (hp *Heal) setDefaults() {
	// MaxRestarts and MaxReplacements are pointers because 0 is a
	// meaningful value ("always replace", "never replace").
	if hp.MaxRestarts == nil {
		hp.MaxRestarts = ptr(DefaultMaxRestarts)
	}
	if hp.MaxReplacements == nil {
		hp.MaxReplacements = ptr(DefaultMaxReplacements)
	}
	hp.RestartWindow = cmp.Or(hp.RestartWindow, DefaultRestartWindow)
	hp.BackoffBase = cmp.Or(hp.BackoffBase, DefaultBackoffBase)
	hp.BackoffCap = cmp.Or(hp.BackoffCap, DefaultBackoffCap)
	hp.ResetAfter = cmp.Or(hp.ResetAfter, DefaultResetAfter)
	hp.ReplacementWindow = cmp.Or(hp.ReplacementWindow, DefaultReplacementWindow)
}

// setDefaults fills the defaults of every launch and terminate hook.
func (hs *Hooks) setDefaults() {
	for _, hooks := range [][]Hook{hs.Launch, hs.Terminate} {
		for i := range hooks {
			h := &hooks[i] // the slices share their arrays with hs
			h.HeartbeatTimeout = cmp.Or(h.HeartbeatTimeout, DefaultHeartbeatTimeout)
			h.DefaultResult = cmp.Or(h.DefaultResult, DefaultResult)
		}
	}
}

func (v *validator) heal(h *Heal, hp path) {
	if *h.MaxRestarts < 0 {
		v.errorf(hp.field("max_restarts"), "max_restarts must not be negative, got %d", *h.MaxRestarts)
	}
	if *h.MaxReplacements < 0 {
		v.errorf(hp.field("max_replacements"), "max_replacements must not be negative, got %d", *h.MaxReplacements)
	}
	if h.BackoffCap < h.BackoffBase {
		if capP := hp.field("backoff_cap"); !v.defaulted(capP) {
			v.errorf(capP, "backoff_cap %s is shorter than backoff_base %s", h.BackoffCap, h.BackoffBase)
		} else {
			v.errorf(hp.field("backoff_base"), "backoff_base %s is longer than backoff_cap %s (the default)", h.BackoffBase, h.BackoffCap)
		}
	}
}

func (v *validator) hooks(kind string, hooks []Hook, kp path) {
	names := map[string]path{}
	for i, h := range hooks {
		hp := kp.index(i)
		np := hp.field("name")
		if first, dup := names[h.Name]; h.Name == "" {
			v.errorf(np, "%s hook name is required", kind)
		} else if dup {
			v.errorf(np, "duplicate %s hook name %q (first at %s)", kind, h.Name, v.where(first))
		} else {
			names[h.Name] = np
		}
		if strings.TrimSpace(h.Script) == "" {
			v.errorf(hp.field("script"), "%s hook script is required", kind)
		}
		switch h.DefaultResult {
		case ResultContinue, ResultAbandon:
		default:
			v.errorf(hp.field("default_result"), "default_result %q: must be continue or abandon", h.DefaultResult)
		}
	}
}
