package config

import (
	"cmp"
	"os"
	"path/filepath"
	"time"
)

// Defaults, as documented on each field in types.go and in
// docs/config-reference.md. A zero value in the file means "the default".
const (
	DefaultDesired            = 1
	DefaultStopSignal         = "SIGTERM"
	DefaultStopTimeout        = Duration(10 * time.Second)
	DefaultLogMaxSize         = ByteSize(10 << 20)
	DefaultLogMaxFiles        = 3
	DefaultMode               = ModeProxy
	DefaultWaitTimeout        = Duration(30 * time.Second)
	DefaultInterval           = Duration(5 * time.Second)
	DefaultMaxTimeout         = Duration(2 * time.Second) // the timeout is min(interval, this)
	DefaultPath               = "/"
	DefaultHealthyThreshold   = 1
	DefaultUnhealthyThreshold = 3
	DefaultMaxRestarts        = 3
	DefaultRestartWindow      = Duration(5 * time.Minute)
	DefaultBackoffBase        = Duration(time.Second)
	DefaultBackoffCap         = Duration(time.Minute)
	DefaultResetAfter         = Duration(time.Minute)
	DefaultMaxReplacements    = 5
	DefaultReplacementWindow  = Duration(30 * time.Minute)
	DefaultHeartbeatTimeout   = Duration(60 * time.Second)
	DefaultResult             = ResultAbandon
)

// setDefaults fills every zero value that means "use the default". It runs
// before validation, so that validation sees the values that will be used
// (a timeout is compared with the interval in force, not with zero), and it
// is idempotent, so Validate may run on a config that already has them.
// It does not resolve Launch.Command: that can fail, so validate does it.
func (c *Config) setDefaults() {
	if c.Dir == "" {
		// A Config built in code: relative paths are relative to the file
		// it names, else to the working directory, as on a command line.
		if c.Path != "" {
			if abs, err := filepath.Abs(c.Path); err == nil {
				c.Dir = filepath.Dir(abs)
			}
		} else if wd, err := os.Getwd(); err == nil {
			c.Dir = wd
		}
	}
	for gi := range c.Groups {
		g := &c.Groups[gi]
		if g.Desired == nil {
			g.Desired = ptr(DefaultDesired)
		}
		if g.Max == 0 {
			g.Max = max(*g.Desired, 1)
		}

		l := &g.Launch
		// Stored in canonical form so that the rest of the program compares
		// and prints one spelling; an unknown name is left for validate.
		if _, err := Signal(l.StopSignal); err == nil {
			l.StopSignal = canonicalSignal(l.StopSignal)
		}
		l.StopTimeout = cmp.Or(l.StopTimeout, DefaultStopTimeout)
		l.Logs.MaxSize = cmp.Or(l.Logs.MaxSize, DefaultLogMaxSize)
		l.Logs.MaxFiles = cmp.Or(l.Logs.MaxFiles, DefaultLogMaxFiles)
		switch {
		case l.Workdir == "":
			l.Workdir = c.Dir
		case !filepath.IsAbs(l.Workdir):
			l.Workdir = filepath.Join(c.Dir, l.Workdir)
		}

		for ai := range g.Addresses {
			a := &g.Addresses[ai]
			a.Mode = cmp.Or(a.Mode, DefaultMode)
			a.WaitTimeout = cmp.Or(a.WaitTimeout, DefaultWaitTimeout)
		}

		for hi := range g.HealthChecks {
			h := &g.HealthChecks[hi]
			h.Interval = cmp.Or(h.Interval, DefaultInterval)
			h.Timeout = cmp.Or(h.Timeout, min(h.Interval, DefaultMaxTimeout))
			h.HealthyThreshold = cmp.Or(h.HealthyThreshold, DefaultHealthyThreshold)
			h.UnhealthyThreshold = cmp.Or(h.UnhealthyThreshold, DefaultUnhealthyThreshold)
			// Path and port mean something only to the checks that use
			// them; filling them elsewhere would make validate reject a
			// field the user never wrote.
			if h.Type == CheckHTTP {
				h.Path = cmp.Or(h.Path, DefaultPath)
			}
			if (h.Type == CheckTCP || h.Type == CheckHTTP) && h.Port == "" && len(g.Addresses) == 1 {
				h.Port = g.Addresses[0].Name
			}
		}

		hp := &g.Heal
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

		for _, hooks := range [][]Hook{g.Hooks.Launch, g.Hooks.Terminate} {
			for i := range hooks {
				h := &hooks[i] // the slices share their arrays with g.Hooks
				h.HeartbeatTimeout = cmp.Or(h.HeartbeatTimeout, DefaultHeartbeatTimeout)
				h.DefaultResult = cmp.Or(h.DefaultResult, DefaultResult)
			}
		}
	}
}

func ptr[T any](v T) *T { return &v }
