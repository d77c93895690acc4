package config

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml/ast"
)

// Defaults, as documented on each field.
const (
	DefaultStopTimeout      = Duration(10 * time.Second)
	DefaultLogMaxSize       = ByteSize(10 << 20)
	DefaultLogMaxFiles      = 3
	DefaultWaitTimeout      = Duration(30 * time.Second)
	DefaultInterval         = Duration(5 * time.Second)
	DefaultMaxTimeout       = Duration(2 * time.Second)
	DefaultUnhealthy        = 3
	DefaultHealthy          = 1
	DefaultMaxRestarts      = 3
	DefaultRestartWindow    = Duration(5 * time.Minute)
	DefaultBackoffBase      = Duration(time.Second)
	DefaultBackoffCap       = Duration(time.Minute)
	DefaultResetAfter       = Duration(time.Minute)
	DefaultMaxReplacements  = 5
	DefaultReplaceWindow    = Duration(30 * time.Minute)
	DefaultHeartbeatTimeout = Duration(60 * time.Second)
)

// setDefaults fills every zero value that means "use the default".
func (c *Config) setDefaults() {
	for gi := range c.Groups {
		g := &c.Groups[gi]
		if g.Max == 0 {
			g.Max = max(g.DesiredCount(), 1)
		}
		l := &g.Launch
		if l.StopSignal == "" {
			l.StopSignal = "SIGTERM"
		}
		if l.StopTimeout == 0 {
			l.StopTimeout = DefaultStopTimeout
		}
		if l.Logs.MaxSize == 0 {
			l.Logs.MaxSize = DefaultLogMaxSize
		}
		if l.Logs.MaxFiles == 0 {
			l.Logs.MaxFiles = DefaultLogMaxFiles
		}
		if l.Workdir == "" {
			l.Workdir = c.Dir
		} else if !filepath.IsAbs(l.Workdir) {
			l.Workdir = filepath.Join(c.Dir, l.Workdir)
		}
		for ai := range g.Addresses {
			a := &g.Addresses[ai]
			if a.Mode == "" {
				a.Mode = "proxy"
			}
			if a.WaitTimeout == 0 {
				a.WaitTimeout = DefaultWaitTimeout
			}
		}
		for hi := range g.HealthChecks {
			h := &g.HealthChecks[hi]
			if h.Interval == 0 {
				h.Interval = DefaultInterval
			}
			if h.Timeout == 0 {
				h.Timeout = min(h.Interval, DefaultMaxTimeout)
			}
			if h.HealthyThreshold == 0 {
				h.HealthyThreshold = DefaultHealthy
			}
			if h.UnhealthyThreshold == 0 {
				h.UnhealthyThreshold = DefaultUnhealthy
			}
			if h.Path == "" {
				h.Path = "/"
			}
			if h.Port == "" && len(g.Addresses) == 1 && (h.Type == "tcp" || h.Type == "http") {
				h.Port = g.Addresses[0].Name
			}
		}
		hp := &g.Heal
		if hp.MaxRestarts == nil {
			n := DefaultMaxRestarts
			hp.MaxRestarts = &n
		}
		if hp.RestartWindow == 0 {
			hp.RestartWindow = DefaultRestartWindow
		}
		if hp.BackoffBase == 0 {
			hp.BackoffBase = DefaultBackoffBase
		}
		if hp.BackoffCap == 0 {
			hp.BackoffCap = DefaultBackoffCap
		}
		if hp.ResetAfter == 0 {
			hp.ResetAfter = DefaultResetAfter
		}
		if hp.MaxReplacements == nil {
			n := DefaultMaxReplacements
			hp.MaxReplacements = &n
		}
		if hp.ReplacementWindow == 0 {
			hp.ReplacementWindow = DefaultReplaceWindow
		}
		for _, hooks := range [][]Hook{g.Hooks.Launch, g.Hooks.Terminate} {
			for i := range hooks {
				if hooks[i].HeartbeatTimeout == 0 {
					hooks[i].HeartbeatTimeout = DefaultHeartbeatTimeout
				}
				if hooks[i].DefaultResult == "" {
					hooks[i].DefaultResult = "abandon"
				}
			}
		}
	}
}

type validator struct {
	path string
	file *ast.File
	errs Errors
}

func (v *validator) errorf(path, format string, args ...any) {
	line, col := v.pos(path)
	v.errs = append(v.errs, Error{File: v.path, Line: line, Col: col, Msg: fmt.Sprintf(format, args...)})
}

var (
	groupName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
	itemName  = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
	envVar    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

func (v *validator) validate(c *Config) {
	if len(c.Groups) == 0 {
		v.errorf("$.groups", "at least one group is required")
	}
	groups := map[string]int{}
	listens := map[string]string{}
	for gi := range c.Groups {
		g := &c.Groups[gi]
		gp := fmt.Sprintf("$.groups[%d]", gi)
		switch {
		case g.Name == "":
			v.errorf(gp, "group %d: name is required", gi+1)
		case !groupName.MatchString(g.Name):
			v.errorf(gp+".name", "group name %q: use lowercase letters, digits and '-', at most 63 characters", g.Name)
		}
		if prev, dup := groups[g.Name]; dup && g.Name != "" {
			v.errorf(gp+".name", "duplicate group name %q (first defined as group %d)", g.Name, prev+1)
		}
		groups[g.Name] = gi
		v.capacity(g, gp)
		v.launch(c, g, gp+".launch")

		names := map[string]bool{}
		for vi, vol := range g.Volumes {
			vp := fmt.Sprintf("%s.volumes[%d]", gp, vi)
			switch {
			case vol.Name == "":
				v.errorf(vp, "volume name is required")
			case !itemName.MatchString(vol.Name):
				v.errorf(vp+".name", "volume name %q: use lowercase letters, digits, '-' and '_'", vol.Name)
			case names[vol.Name]:
				v.errorf(vp+".name", "duplicate volume name %q", vol.Name)
			}
			names[vol.Name] = true
			if vol.MountPath != "" && !filepath.IsAbs(vol.MountPath) {
				v.errorf(vp+".mount_path", "mount_path %q must be absolute", vol.MountPath)
			}
		}
		if len(g.Volumes) > 0 && g.Max > 1 {
			v.errorf(gp+".volumes", "a volume is attached to one instance at a time: a group with volumes needs max 1, not %d", g.Max)
		}

		addrs := map[string]bool{}
		for ai, a := range g.Addresses {
			ap := fmt.Sprintf("%s.addresses[%d]", gp, ai)
			switch {
			case a.Name == "":
				v.errorf(ap, "address name is required")
			case !itemName.MatchString(a.Name):
				v.errorf(ap+".name", "address name %q: use lowercase letters, digits, '-' and '_'", a.Name)
			case addrs[a.Name]:
				v.errorf(ap+".name", "duplicate address name %q", a.Name)
			}
			addrs[a.Name] = true
			if a.Listen == "" {
				v.errorf(ap, "address %s: listen is required (host:port)", a.Name)
			} else if host, port, err := net.SplitHostPort(a.Listen); err != nil {
				v.errorf(ap+".listen", "listen %q: %v", a.Listen, err)
			} else if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
				v.errorf(ap+".listen", "listen %q: port must be a number from 1 to 65535 (a stable address needs a fixed port)", a.Listen)
			} else if host != "" && net.ParseIP(host) == nil && host != "localhost" {
				v.errorf(ap+".listen", "listen %q: host must be an IP address", a.Listen)
			} else {
				key := net.JoinHostPort(host, port)
				if prev, dup := listens[key]; dup {
					v.errorf(ap+".listen", "listen %s is already used by %s", a.Listen, prev)
				}
				listens[key] = fmt.Sprintf("group %s address %s", g.Name, a.Name)
			}
			switch a.Mode {
			case "proxy", "socket":
			default:
				v.errorf(ap+".mode", "mode %q: must be proxy or socket", a.Mode)
			}
			if a.Port < 0 || a.Port > 65535 {
				v.errorf(ap+".port", "port %d: must be 0 (pick a free port) or 1 to 65535", a.Port)
			}
			if a.Mode == "socket" && a.Port != 0 {
				v.errorf(ap+".port", "port is for proxy mode; in socket mode the instance receives the listening socket itself")
			}
		}
		if len(g.Addresses) > 0 && g.Max > 1 {
			v.errorf(gp+".addresses", "an address is associated with one instance at a time: a group with addresses needs max 1, not %d", g.Max)
		}

		for hi, h := range g.HealthChecks {
			hp := fmt.Sprintf("%s.health_checks[%d]", gp, hi)
			switch h.Type {
			case "process":
			case "tcp", "http":
				v.checkPort(g, h, hp)
				if h.Type == "http" && !strings.HasPrefix(h.Path, "/") {
					v.errorf(hp+".path", "path %q must start with /", h.Path)
				}
			case "exec":
				if strings.TrimSpace(h.Command) == "" {
					v.errorf(hp, "exec health check needs a command")
				}
			case "":
				v.errorf(hp, "health check type is required: process, tcp, http or exec")
			default:
				v.errorf(hp+".type", "health check type %q: must be process, tcp, http or exec", h.Type)
			}
			if h.Timeout > h.Interval {
				v.errorf(hp+".timeout", "timeout %s is longer than interval %s", h.Timeout.D(), h.Interval.D())
			}
			if h.HealthyThreshold < 1 {
				v.errorf(hp+".healthy_threshold", "healthy_threshold must be at least 1")
			}
			if h.UnhealthyThreshold < 1 {
				v.errorf(hp+".unhealthy_threshold", "unhealthy_threshold must be at least 1")
			}
		}

		if *g.Heal.MaxRestarts < 0 {
			v.errorf(gp+".heal.max_restarts", "max_restarts must not be negative")
		}
		if *g.Heal.MaxReplacements < 0 {
			v.errorf(gp+".heal.max_replacements", "max_replacements must not be negative")
		}
		if g.Heal.BackoffCap < g.Heal.BackoffBase {
			v.errorf(gp+".heal.backoff_cap", "backoff_cap %s is below backoff_base %s", g.Heal.BackoffCap.D(), g.Heal.BackoffBase.D())
		}

		for kind, hooks := range map[string][]Hook{"launch": g.Hooks.Launch, "terminate": g.Hooks.Terminate} {
			seen := map[string]bool{}
			for hi, h := range hooks {
				hp := fmt.Sprintf("%s.hooks.%s[%d]", gp, kind, hi)
				if h.Name == "" {
					v.errorf(hp, "%s hook name is required", kind)
				} else if seen[h.Name] {
					v.errorf(hp+".name", "duplicate %s hook name %q", kind, h.Name)
				}
				seen[h.Name] = true
				if strings.TrimSpace(h.Script) == "" {
					v.errorf(hp, "%s hook %s: script is required", kind, h.Name)
				}
				if h.DefaultResult != "continue" && h.DefaultResult != "abandon" {
					v.errorf(hp+".default_result", "default_result %q: must be continue or abandon", h.DefaultResult)
				}
			}
		}

		params := map[string]bool{}
		for pi, p := range g.Parameters {
			pp := fmt.Sprintf("%s.parameters[%d]", gp, pi)
			switch {
			case p.Name == "":
				v.errorf(pp, "parameter name is required")
			case !envVar.MatchString(p.Name):
				v.errorf(pp+".name", "parameter name %q must be an environment variable name ([A-Za-z_][A-Za-z0-9_]*)", p.Name)
			case params[p.Name]:
				v.errorf(pp+".name", "duplicate parameter %q", p.Name)
			}
			params[p.Name] = true
		}
	}
}

func (v *validator) capacity(g *Group, gp string) {
	d := g.DesiredCount()
	switch {
	case g.Min < 0:
		v.errorf(gp+".min", "min must not be negative")
	case g.Max < 0:
		v.errorf(gp+".max", "max must not be negative")
	case d < 0:
		v.errorf(gp+".desired", "desired must not be negative")
	case g.Min > g.Max:
		v.errorf(gp+".min", "min %d is greater than max %d", g.Min, g.Max)
	case d > g.Max:
		v.errorf(gp+".desired", "desired %d is greater than max %d", d, g.Max)
	case d < g.Min:
		v.errorf(gp+".desired", "desired %d is less than min %d", d, g.Min)
	}
}

func (v *validator) launch(c *Config, g *Group, lp string) {
	l := &g.Launch
	if strings.TrimSpace(l.Command) == "" {
		v.errorf(lp, "launch.command is required")
	} else {
		resolved, err := resolveCommand(c.Dir, l.Command)
		if err != nil {
			v.errorf(lp+".command", "%v", err)
		} else {
			l.Command = resolved
		}
	}
	if fi, err := os.Stat(l.Workdir); err != nil {
		v.errorf(lp+".workdir", "workdir %s: %v", l.Workdir, unwrapPathErr(err))
	} else if !fi.IsDir() {
		v.errorf(lp+".workdir", "workdir %s is not a directory", l.Workdir)
	}
	if l.User != "" {
		if os.Geteuid() != 0 {
			v.errorf(lp+".user", "user %q: autoheal must run as root to switch users", l.User)
		} else if _, err := lookupUser(l.User); err != nil {
			v.errorf(lp+".user", "user %q: %v", l.User, err)
		}
	}
	if _, err := Signal(l.StopSignal); err != nil {
		v.errorf(lp+".stop_signal", "%v", err)
	}
	for k := range l.Env {
		if !envVar.MatchString(k) {
			v.errorf(lp+".env", "env name %q is not a valid environment variable name", k)
		}
	}
	if l.Logs.MaxFiles < 0 {
		v.errorf(lp+".logs.max_files", "max_files must not be negative")
	}
	if l.Logs.MaxSize < 4096 {
		v.errorf(lp+".logs.max_size", "max_size %d is too small (at least 4KiB)", l.Logs.MaxSize)
	}
}

func lookupUser(name string) (*user.User, error) {
	if _, err := strconv.Atoi(name); err == nil {
		return user.LookupId(name)
	}
	return user.Lookup(name)
}

// resolveCommand turns a command into an absolute executable path: relative
// to the config's directory when it contains a slash, else from PATH.
func resolveCommand(dir, cmd string) (string, error) {
	if !strings.Contains(cmd, "/") {
		p, err := exec.LookPath(cmd)
		if err != nil {
			return "", fmt.Errorf("command %q not found in PATH", cmd)
		}
		return filepath.Abs(p)
	}
	p := cmd
	if !filepath.IsAbs(p) {
		p = filepath.Join(dir, p)
	}
	// Messages name the command as written: a relative one is relative to
	// the config file's directory, which the reader knows.
	fi, err := os.Stat(p)
	if err != nil {
		return "", fmt.Errorf("command %q: %v", cmd, unwrapPathErr(err))
	}
	if fi.IsDir() {
		return "", fmt.Errorf("command %q is a directory", cmd)
	}
	if fi.Mode()&0o111 == 0 {
		return "", fmt.Errorf("command %q is not executable", cmd)
	}
	return p, nil
}

func unwrapPathErr(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

// checkPort validates a tcp or http check's port reference.
func (v *validator) checkPort(g *Group, h HealthCheck, hp string) {
	if h.Port == "" {
		if len(g.Addresses) == 0 {
			v.errorf(hp, "%s health check needs a port: a number, or the name of one of the group's addresses", h.Type)
		} else {
			v.errorf(hp, "%s health check needs a port: the group has %d addresses, name one", h.Type, len(g.Addresses))
		}
		return
	}
	if n, err := strconv.Atoi(h.Port); err == nil {
		if n < 1 || n > 65535 {
			v.errorf(hp+".port", "port %d out of range", n)
		}
		return
	}
	for _, a := range g.Addresses {
		if a.Name == h.Port {
			return
		}
	}
	v.errorf(hp+".port", "port %q is neither a number nor an address of group %s", h.Port, g.Name)
}
