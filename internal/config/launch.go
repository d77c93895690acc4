package config

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Launch templates: how an instance's process is started, the environment
// it gets (launch.env, parameters, AUTOHEAL_PORT_* of its launch ports) and
// what the file may and may not set there.

// Launch is the launch template: how one instance's process is started.
type Launch struct {
	// Command is the program to run: an absolute path, a path relative to
	// the config file's directory (when it contains a slash) or a name looked
	// up in PATH. It must be executable. Required; absolute after Validate.
	Command string `yaml:"command"`
	// Args are passed to Command. Default none.
	Args []string `yaml:"args"`
	// Ports are named instance ports: each instance gets a free loopback
	// port per name, as AUTOHEAL_PORT_<NAME> (and PORT when the instance
	// has exactly one port), for groups of more than one instance that
	// have no address. Names follow Address.Name and must not repeat an
	// address name. A target group reaches an instance on one of them.
	// Default none.
	Ports []string `yaml:"ports"`
	// Env is added to the instance's environment; names follow the rules
	// of Parameter.Name. Default none.
	Env map[string]string `yaml:"env"`
	// Workdir is the working directory, relative to the config file's
	// directory; it must exist. Default: the config file's directory.
	// Absolute after Validate.
	Workdir string `yaml:"workdir"`
	// User runs the instance as this user (name or uid); only when autoheal
	// runs as root. Default: autoheal's own user.
	User string `yaml:"user"`
	// UserData is a shell script run with /bin/sh before the application
	// starts, on every launch, with the instance's environment. Default none.
	UserData string `yaml:"user_data"`
	// StopSignal is sent to the instance's process group to stop it:
	// "SIGTERM", "TERM" or "term" in the file, always the canonical
	// "SIGTERM" form after Validate; Signal converts it. Default SIGTERM.
	StopSignal string `yaml:"stop_signal"`
	// StopTimeout is how long to wait after StopSignal before SIGKILL.
	// Default 10s.
	StopTimeout Duration `yaml:"stop_timeout"`
	// Logs caps the per-instance log files.
	Logs Logs `yaml:"logs"`
}

// Logs caps an instance's captured stdout and stderr.
type Logs struct {
	// MaxSize is the size at which a log file is rotated, e.g. "10MiB"; at
	// least 4KiB. Default 10MiB.
	MaxSize ByteSize `yaml:"max_size"`
	// MaxFiles is how many rotated files are kept per stream. Default 3.
	MaxFiles int `yaml:"max_files"`
}

// Parameter is a named value injected into every instance as an environment
// variable.
type Parameter struct {
	// Name is the environment variable name: [A-Za-z_][A-Za-z0-9_]*, unique
	// in the group, not also in Launch.Env, and not one autoheal sets
	// (AUTOHEAL_*, LISTEN_*, PORT for a single proxy address). Required.
	Name string `yaml:"name"`
	// Value of the parameter.
	Value string `yaml:"value"`
	// Secret values are never shown by the API or CLI. Default false.
	Secret bool `yaml:"secret"`
}

// EnvName is the environment variable suffix for a volume or address name,
// as in AUTOHEAL_VOLUME_<NAME> and AUTOHEAL_PORT_<NAME>: upper case, with
// '-' and '.' turned into '_'. Validation rejects two names of a group that
// map to the same variable.
func EnvName(name string) string {
	return strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(name))
}

// Launch template defaults.
const (
	DefaultStopSignal  = "SIGTERM"
	DefaultStopTimeout = Duration(10 * time.Second)
	DefaultLogMaxSize  = ByteSize(10 << 20)
	DefaultLogMaxFiles = 3
)

// setDefaults fills the launch template's defaults and makes its workdir
// absolute, relative to dir, the config file's directory.
func (l *Launch) setDefaults(dir string) {
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
		l.Workdir = dir
	case !filepath.IsAbs(l.Workdir):
		l.Workdir = filepath.Join(dir, l.Workdir)
	}
}

func (v *validator) launch(g *Group, lp path) {
	l := &g.Launch
	if strings.TrimSpace(l.Command) == "" {
		v.errorf(lp.field("command"), "launch.command is required")
	} else if resolved, err := resolveCommand(v.c.Dir, l.Command); err != nil {
		v.errorf(lp.field("command"), "%v", err)
	} else {
		l.Command = resolved
	}

	wp := lp.field("workdir")
	if fi, err := os.Stat(l.Workdir); err != nil {
		v.errorf(wp, "workdir %s: %v", l.Workdir, pathErr(err))
	} else if !fi.IsDir() {
		v.errorf(wp, "workdir %s is not a directory", l.Workdir)
	}

	if l.User != "" {
		up := lp.field("user")
		if uid, err := lookupUser(l.User); err != nil {
			v.errorf(up, "%v", err)
		} else if euid := os.Geteuid(); euid != 0 && uid != euid {
			v.errorf(up, "user %q: autoheal must run as root to run instances as another user", l.User)
		}
	}

	if _, err := Signal(l.StopSignal); err != nil {
		v.errorf(lp.field("stop_signal"), "%v", err)
	}

	for _, k := range slices.Sorted(maps.Keys(l.Env)) {
		if msg := v.envNameProblem(g, k); msg != "" {
			v.keyErrorf(lp.field("env").key(k), "env name %q %s", k, msg)
		}
	}

	if l.Logs.MaxFiles < 0 {
		v.errorf(lp.field("logs").field("max_files"), "max_files must not be negative, got %d", l.Logs.MaxFiles)
	}
	// Below a few KiB rotation would churn files for every burst of output.
	if l.Logs.MaxSize < 4<<10 {
		v.errorf(lp.field("logs").field("max_size"), "max_size %s is too small: at least 4KiB", l.Logs.MaxSize)
	}
}

// envNameProblem says what is wrong with k as the name of a variable the
// user sets for an instance (launch.env or a parameter), or "".
func (v *validator) envNameProblem(g *Group, k string) string {
	switch {
	case !envVar.MatchString(k):
		return "is not a valid environment variable name ([A-Za-z_][A-Za-z0-9_]*)"
	case strings.HasPrefix(k, "AUTOHEAL_"), k == "LISTEN_FDS", k == "LISTEN_PID", k == "LISTEN_FDNAMES":
		// autoheal's own values would silently win, and an instance
		// whose AUTOHEAL_INSTANCE_ID differed could not be re-adopted.
		return "is reserved: autoheal sets AUTOHEAL_* and LISTEN_* itself"
	case k == "PORT":
		if name, ok := g.PortVar(); ok {
			if _, isAddr := g.Address(name); isAddr {
				return "is reserved: autoheal sets PORT to the instance port of the group's only address"
			}
			return "is reserved: autoheal sets PORT to the group's only launch port"
		}
	}
	return ""
}

// resolveCommand turns a command into the absolute path of an executable:
// relative to the config's directory when it contains a slash (so a config
// and its scripts can move together), else looked up in PATH.
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
	// The message names both the command as written and the path it
	// resolved to: "./app" alone does not say which directory was meant.
	name := p
	if filepath.Clean(cmd) != p {
		name = fmt.Sprintf("%q (%s)", cmd, p)
	}
	fi, err := os.Stat(p)
	switch {
	case err != nil:
		return "", fmt.Errorf("command %s: %v", name, pathErr(err))
	case fi.IsDir():
		return "", fmt.Errorf("command %s is a directory", name)
	case syscall.Access(p, 0x1 /* X_OK */) != nil:
		return "", fmt.Errorf("command %s is not executable", name)
	}
	return p, nil
}

// lookupUser returns the uid of a user given by name or uid.
func lookupUser(name string) (int, error) {
	var u *user.User
	var err error
	if _, convErr := strconv.Atoi(name); convErr == nil {
		u, err = user.LookupId(name)
	} else {
		u, err = user.Lookup(name)
	}
	var unknownName user.UnknownUserError
	var unknownID user.UnknownUserIdError
	switch {
	case errors.As(err, &unknownName), errors.As(err, &unknownID):
		return 0, fmt.Errorf("user %q does not exist", name)
	case err != nil:
		return 0, fmt.Errorf("user %q: %v", name, err)
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return 0, fmt.Errorf("user %q: uid %q is not a number", name, u.Uid)
	}
	return uid, nil
}

func (v *validator) parameters(g *Group, gp path) {
	names := map[string]path{}
	for pi, p := range g.Parameters {
		pp := gp.field("parameters").index(pi)
		np := pp.field("name")
		first, dup := names[p.Name]
		_, inEnv := g.Launch.Env[p.Name]
		switch msg := v.envNameProblem(g, p.Name); {
		case p.Name == "":
			v.errorf(np, "parameter name is required")
		case msg != "":
			v.errorf(np, "parameter name %q %s", p.Name, msg)
		case dup:
			v.errorf(np, "duplicate parameter %q (first at %s)", p.Name, v.where(first))
		case inEnv:
			// Both end up in the same environment; one would silently win.
			v.errorf(np, "parameter %q is also set in launch.env: set it in one place", p.Name)
		default:
			names[p.Name] = np
		}
	}
}

// launchPorts checks the names of the group's launch ports. Ports and
// addresses both give the instance AUTOHEAL_PORT_<NAME>, and a target group
// member names either kind as its port, so their names share the rules of
// address names and must not collide.
func (v *validator) launchPorts(g *Group, gp path) {
	pp := gp.field("launch").field("ports")
	names := map[string]path{}
	vars := map[string]string{} // environment variable -> what sets it
	addrs := map[string]int{}   // address name -> index
	for ai, a := range g.Addresses {
		if _, dup := addrs[a.Name]; !dup {
			addrs[a.Name] = ai
		}
		if itemName.MatchString(a.Name) {
			vars["AUTOHEAL_PORT_"+EnvName(a.Name)] = "address name " + strconv.Quote(a.Name)
		}
	}
	for i, name := range g.Launch.Ports {
		np := pp.index(i)
		first, dup := names[name]
		switch {
		case name == "":
			v.errorf(np, "port name must not be empty")
		case !itemName.MatchString(name):
			v.errorf(np, "port name %q: use lowercase letters, digits, '-' and '_', starting with a letter or digit, at most 63 characters", name)
		case allDigits.MatchString(name):
			// A target group member's port is a number or a name.
			v.errorf(np, "port name %q must not be a number", name)
		case dup:
			v.errorf(np, "duplicate port name %q (first at %s)", name, v.where(first))
		default:
			names[name] = np
			if ai, isAddr := addrs[name]; isAddr {
				// The address already gives the instance a port of that name.
				v.errorf(np, "port name %q is also the name of an address of the group (%s)", name, v.where(gp.field("addresses").index(ai)))
				continue
			}
			vr := "AUTOHEAL_PORT_" + EnvName(name)
			if other, clash := vars[vr]; clash {
				v.errorf(np, "port name %q and %s both set %s", name, other, vr)
				continue
			}
			vars[vr] = "port name " + strconv.Quote(name)
		}
	}
}
