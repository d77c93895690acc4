package config

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Health checks: the probes of a group's instances. A load balancer's
// target health checks are in targetgroup.go.

// HealthCheck is one probe of an instance.
type HealthCheck struct {
	// Type is process, tcp, http or exec. Required.
	Type string `yaml:"type"`
	// Port is the port to probe for tcp and http: a number, or the name of
	// one of the group's addresses (its instance port). Default: the group's
	// only address. Use PortNumber and AddressName to tell them apart.
	Port string `yaml:"port"`
	// Path is the HTTP path, for http only. Default "/".
	Path string `yaml:"path"`
	// Command is the exec check's shell script (exit 0 = healthy); required
	// for exec, refused for the other types.
	Command string `yaml:"command"`
	// Interval between probes. Default 5s.
	Interval Duration `yaml:"interval"`
	// Timeout of one probe; at most Interval. Default: min(interval, 2s).
	Timeout Duration `yaml:"timeout"`
	// HealthyThreshold is how many consecutive successes make an instance
	// healthy. Default 1.
	HealthyThreshold int `yaml:"healthy_threshold"`
	// UnhealthyThreshold is how many consecutive failures make it unhealthy.
	// Default 3.
	UnhealthyThreshold int `yaml:"unhealthy_threshold"`
	// GracePeriod after launch during which failures are not counted, even
	// after a first healthy result. Default 0.
	GracePeriod Duration `yaml:"grace_period"`
	// StartupTimeout is how long a launched instance may take to pass this
	// check for the first time: until then failures do not count toward
	// UnhealthyThreshold, and the first failure at the deadline makes it
	// unhealthy. At least Timeout and GracePeriod. Default 5m, or
	// GracePeriod when that is longer.
	StartupTimeout Duration `yaml:"startup_timeout"`
}

// Health check types.
const (
	CheckProcess = "process"
	CheckTCP     = "tcp"
	CheckHTTP    = "http"
	CheckExec    = "exec"
)

// PortNumber returns the port a tcp or http check probes when Port is a
// number. Validation guarantees that an address name is never all digits,
// so a Port is either a number or an address name, never both.
func (h HealthCheck) PortNumber() (int, bool) {
	n, err := strconv.Atoi(h.Port)
	return n, err == nil
}

// AddressName returns the name of the group address whose instance port a
// tcp or http check probes, when Port names one.
func (h HealthCheck) AddressName() (string, bool) {
	if _, isNum := h.PortNumber(); isNum || h.Port == "" {
		return "", false
	}
	return h.Port, true
}

// Health check defaults. Target health checks (targetgroup.go) share the
// interval, the timeout and the path.
const (
	DefaultInterval           = Duration(5 * time.Second)
	DefaultMaxTimeout         = Duration(2 * time.Second) // the timeout is min(interval, this)
	DefaultPath               = "/"
	DefaultHealthyThreshold   = 1
	DefaultUnhealthyThreshold = 3
	DefaultStartupTimeout     = Duration(5 * time.Minute)
)

// setDefaults fills the check's defaults; g is the group it probes, whose
// only named port a tcp or http check without a port probes.
func (h *HealthCheck) setDefaults(g *Group) {
	h.Interval = cmp.Or(h.Interval, DefaultInterval)
	h.Timeout = cmp.Or(h.Timeout, min(h.Interval, DefaultMaxTimeout))
	h.HealthyThreshold = cmp.Or(h.HealthyThreshold, DefaultHealthyThreshold)
	h.UnhealthyThreshold = cmp.Or(h.UnhealthyThreshold, DefaultUnhealthyThreshold)
	h.StartupTimeout = cmp.Or(h.StartupTimeout, max(DefaultStartupTimeout, h.GracePeriod))
	// Path and port mean something only to the checks that use
	// them; filling them elsewhere would make validate reject a
	// field the user never wrote.
	if h.Type == CheckHTTP {
		h.Path = cmp.Or(h.Path, DefaultPath)
	}
	if names := g.PortNames(); (h.Type == CheckTCP || h.Type == CheckHTTP) && h.Port == "" && len(names) == 1 {
		h.Port = names[0]
	}
}

func (v *validator) healthCheck(g *Group, h *HealthCheck, hp path) {
	switch h.Type {
	case CheckProcess, CheckExec:
	case CheckTCP, CheckHTTP:
		v.checkPort(g, h, hp)
		if h.Type == CheckHTTP && !strings.HasPrefix(h.Path, "/") {
			v.errorf(hp.field("path"), "path %q must start with /", h.Path)
		}
	case "":
		v.errorf(hp.field("type"), "health check type is required: process, tcp, http or exec")
	default:
		v.errorf(hp.field("type"), "health check type %q: must be process, tcp, http or exec", h.Type)
	}
	if h.Type == CheckExec && strings.TrimSpace(h.Command) == "" {
		v.errorf(hp.field("command"), "exec health check needs a command")
	}
	// A field that the check's type ignores is almost always a mistake in
	// the type; saying so beats probing something else than meant.
	if slices.Contains([]string{CheckProcess, CheckTCP, CheckHTTP, CheckExec}, h.Type) {
		if h.Port != "" && h.Type != CheckTCP && h.Type != CheckHTTP {
			v.keyErrorf(hp.field("port"), "port is used only by tcp and http checks, not %s", h.Type)
		}
		if h.Path != "" && h.Type != CheckHTTP {
			v.keyErrorf(hp.field("path"), "path is used only by http checks, not %s", h.Type)
		}
		if h.Command != "" && h.Type != CheckExec {
			v.keyErrorf(hp.field("command"), "command is used only by exec checks, not %s", h.Type)
		}
	}
	if h.Timeout > h.Interval {
		v.errorf(hp.field("timeout"), "timeout %s is longer than interval %s", h.Timeout, h.Interval)
	}
	if h.HealthyThreshold < 1 {
		v.errorf(hp.field("healthy_threshold"), "healthy_threshold must be at least 1, got %d", h.HealthyThreshold)
	}
	if h.UnhealthyThreshold < 1 {
		v.errorf(hp.field("unhealthy_threshold"), "unhealthy_threshold must be at least 1, got %d", h.UnhealthyThreshold)
	}
	// A deadline no probe can meet, or one inside the grace period, would
	// fail every launch while it starts.
	switch {
	case h.StartupTimeout < h.Timeout:
		v.errorf(hp.field("startup_timeout"), "startup_timeout %s is shorter than timeout %s: no probe could pass in time", h.StartupTimeout, h.Timeout)
	case h.StartupTimeout < h.GracePeriod:
		v.errorf(hp.field("startup_timeout"), "startup_timeout %s is shorter than grace_period %s", h.StartupTimeout, h.GracePeriod)
	}
}

// checkPort validates a tcp or http check's port: a number, or the name of
// one of the group's addresses.
func (v *validator) checkPort(g *Group, h *HealthCheck, hp path) {
	pp := hp.field("port")
	if h.Port == "" {
		if names := g.PortNames(); len(names) == 0 {
			v.errorf(pp, "%s health check needs a port: a number, or the name of one of the group's ports or addresses", h.Type)
		} else {
			v.errorf(pp, "%s health check needs a port: the group has %d named ports, name one of them", h.Type, len(names))
		}
		return
	}
	if n, isNum := h.PortNumber(); isNum {
		if n < 1 || n > 65535 {
			v.errorf(pp, "port %d: must be from 1 to 65535", n)
		}
		return
	}
	if slices.Contains(g.Launch.Ports, h.Port) {
		return // a launch port
	}
	a, ok := g.Address(h.Port)
	if !ok {
		v.errorf(pp, "port %q is neither a port number nor a port or address of group %s (%s)", h.Port, g.Name, itHas(g.PortNames()))
		return
	}
	if h.Type == CheckTCP && a.Mode == ModeSocket {
		// The controller holds a socket-mode listener, so the kernel
		// accepts connections into its backlog whether or not the
		// instance is alive: the check could never fail.
		v.errorf(pp, "a tcp check on socket-mode address %q always succeeds: use an http or exec check", a.Name)
	}
}
