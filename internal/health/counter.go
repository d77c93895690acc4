package health

import (
	"fmt"
	"time"
)

// Config is how one check runs. The zero value of each field means its
// default.
type Config struct {
	// Interval between probes once the check has been healthy. Default 5s.
	Interval time.Duration
	// Timeout bounds one probe. Default min(Interval, 2s).
	Timeout time.Duration
	// HealthyThreshold is how many consecutive successes make the target
	// healthy. Default 1.
	HealthyThreshold int
	// UnhealthyThreshold is how many consecutive failures make it
	// unhealthy. Default 3.
	UnhealthyThreshold int
	// GracePeriod after Start during which failures are not counted, even
	// after a first healthy result. Default 0.
	GracePeriod time.Duration
	// StartupTimeout is how long a target that has never been healthy may
	// fail: until its first healthy transition failures do not count
	// toward UnhealthyThreshold (a database replaying its log is slow, not
	// broken), and the first failure at or after Start+StartupTimeout makes
	// it Unhealthy at once. Time, not a number of probes, so the fast
	// start-up cadence never shortens it. Default 5m.
	StartupTimeout time.Duration
	// StartHealthy starts the check as if it had already been healthy (a
	// target proven healthy before this check existed, such as an instance
	// re-adopted by a restarted controller): failures count at once, and
	// probes run every Interval.
	StartHealthy bool
	// StartupInterval is the probe period until the first healthy
	// transition, short so a (re)started instance is noticed healthy, and so
	// put back in service, as soon as it answers. Default min(Interval,
	// 100ms).
	StartupInterval time.Duration
}

// Defaults, as documented on Config.
const (
	DefaultInterval           = 5 * time.Second
	DefaultTimeout            = 2 * time.Second
	DefaultHealthyThreshold   = 1
	DefaultUnhealthyThreshold = 3
	DefaultStartupInterval    = 100 * time.Millisecond
	DefaultStartupTimeout     = 5 * time.Minute
)

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.Interval <= 0 {
		c.Interval = DefaultInterval
	}
	if c.Timeout <= 0 {
		c.Timeout = min(c.Interval, DefaultTimeout)
	}
	if c.HealthyThreshold <= 0 {
		c.HealthyThreshold = DefaultHealthyThreshold
	}
	if c.UnhealthyThreshold <= 0 {
		c.UnhealthyThreshold = DefaultUnhealthyThreshold
	}
	if c.StartupInterval <= 0 {
		c.StartupInterval = min(c.Interval, DefaultStartupInterval)
	}
	if c.StartupTimeout <= 0 {
		c.StartupTimeout = DefaultStartupTimeout
	}
	return c
}

// Status is a check's view of its target, named as ELB target states.
type Status int

const (
	// Initial: not enough results yet to say.
	Initial Status = iota
	// Healthy: HealthyThreshold consecutive successes.
	Healthy
	// Unhealthy: UnhealthyThreshold consecutive counted failures.
	Unhealthy
)

// String returns "initial", "healthy" or "unhealthy".
func (s Status) String() string {
	switch s {
	case Initial:
		return "initial"
	case Healthy:
		return "healthy"
	case Unhealthy:
		return "unhealthy"
	}
	return fmt.Sprintf("Status(%d)", int(s))
}

// Transition is a change of Status, with the output of the probe that
// caused it.
type Transition struct {
	Status Status
	Output string
	At     time.Time
	// Consecutive is the number of consecutive results that made it.
	Consecutive int
}

// Counter counts consecutive probe results and says when they cross a
// threshold. It is pure: time is passed in, and it does no I/O, so the
// threshold rules are tested without goroutines or sleeps. Not safe for
// concurrent use; a Checker owns one.
//
// The rules, in the order Observe applies them:
//
//  1. a success ends a run of failures; HealthyThreshold successes in a row
//     make the target Healthy;
//  2. a failure ends a run of successes, always;
//  3. a failure before Start+GracePeriod is not counted;
//  4. before the first Healthy, a failure is not counted either, until
//     Start+StartupTimeout: from then on the first failure is Unhealthy
//     ("not healthy within startup_timeout");
//  5. after a first Healthy, UnhealthyThreshold failures in a row make the
//     target Unhealthy.
type Counter struct {
	healthy, unhealthy int
	graceUntil         time.Time
	startupTimeout     time.Duration
	startupUntil       time.Time
	status             Status
	beenHealthy        bool
	successes          int
	failures           int
}

// NewCounter returns a counter for a check started at start: Initial, or
// Healthy with cfg.StartHealthy.
func NewCounter(cfg Config, start time.Time) *Counter {
	cfg = cfg.WithDefaults()
	c := &Counter{
		healthy:        cfg.HealthyThreshold,
		unhealthy:      cfg.UnhealthyThreshold,
		graceUntil:     start.Add(cfg.GracePeriod),
		startupTimeout: cfg.StartupTimeout,
		startupUntil:   start.Add(cfg.StartupTimeout),
	}
	if cfg.StartHealthy {
		c.status, c.beenHealthy = Healthy, true
	}
	return c
}

// Status returns the current status.
func (c *Counter) Status() Status { return c.status }

// BeenHealthy reports whether the target was ever Healthy: until then the
// check is starting up.
func (c *Counter) BeenHealthy() bool { return c.beenHealthy }

// Observe counts one probe result at now and returns the transition it
// causes, if any. Results that repeat the current status are counted but
// not reported (Kubernetes results.Manager style), so callers act on
// changes only.
func (c *Counter) Observe(r Result, output string, now time.Time) (Transition, bool) {
	if r == Success {
		c.failures = 0
		c.successes++
		if c.status != Healthy && c.successes >= c.healthy {
			c.status, c.beenHealthy = Healthy, true
			return Transition{Status: Healthy, Output: output, At: now, Consecutive: c.successes}, true
		}
		return Transition{}, false
	}
	// Any failure breaks a run of successes, even in the grace period: a
	// target that flaps while starting is not yet healthy.
	c.successes = 0
	if now.Before(c.graceUntil) {
		return Transition{}, false
	}
	c.failures++
	if !c.beenHealthy {
		// Starting up: slow is not failed, until the deadline.
		if now.Before(c.startupUntil) || c.status == Unhealthy {
			return Transition{}, false
		}
		c.status = Unhealthy
		out := fmt.Sprintf("not healthy within startup_timeout %s: %s", c.startupTimeout, output)
		return Transition{Status: Unhealthy, Output: out, At: now, Consecutive: c.failures}, true
	}
	if c.status != Unhealthy && c.failures >= c.unhealthy {
		c.status = Unhealthy
		return Transition{Status: Unhealthy, Output: output, At: now, Consecutive: c.failures}, true
	}
	return Transition{}, false
}
