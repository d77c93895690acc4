package config

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// Validate fills the defaults, resolves Launch.Command and Launch.Workdir to
// absolute paths, and checks every value of c, reporting every problem, not
// only the first. Parse calls it; a Config built in code should call it too.
// It is idempotent.
//
// Problems are returned as *Errors: at FILE:LINE:COL for a config that came
// from Parse, else as "FILE: groups[0].launch.command: message".
func (c *Config) Validate() error {
	c.setDefaults()
	v := &validator{c: c}
	v.config()
	return v.errs.orNil()
}

var (
	groupName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
	itemName  = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
	envVar    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	allDigits = regexp.MustCompile(`^[0-9]+$`)
)

type validator struct {
	c    *Config
	errs Errors
	// ports in use on this host, across all groups, for conflicts.
	listens []portUse
	fixed   []portUse
}

// portUse is a TCP port some address needs: a listen address, or a fixed
// instance port (bound on loopback).
type portUse struct {
	text  string // as written
	host  string // "" for every interface
	port  int
	at    path
	group string
	name  string
}

// errorf reports a problem with the value at p (or with the mapping that
// lacks it, when it is absent).
func (v *validator) errorf(p path, format string, args ...any) {
	v.report(p, false, fmt.Sprintf(format, args...))
}

// keyErrorf reports a problem with a map key rather than its value.
func (v *validator) keyErrorf(p path, format string, args ...any) {
	v.report(p, true, fmt.Sprintf(format, args...))
}

func (v *validator) report(p path, atKey bool, msg string) {
	if v.c.src == nil {
		if s := p.String(); s != "" {
			msg = s + ": " + msg
		}
		v.errs = append(v.errs, Error{File: v.c.Path, Msg: msg})
		return
	}
	line, col := v.c.src.pos(p, atKey)
	v.errs = append(v.errs, Error{File: v.c.src.file, Line: line, Col: col, Msg: msg})
}

// where names the place of an earlier value in a message about a
// duplicate: "line 3", or its path for a Config built in code.
func (v *validator) where(p path) string {
	if v.c.src == nil {
		return p.String()
	}
	line, _ := v.c.src.pos(p, true)
	return "line " + strconv.Itoa(line)
}

// defaulted reports whether the value at p was filled in by default rather
// than written, so that a message about it can say so.
func (v *validator) defaulted(p path) bool { return v.c.src != nil && !v.c.src.has(p) }

func (v *validator) config() {
	root := path{}
	if len(v.c.Groups) == 0 {
		v.errorf(root.field("groups"), "at least one group is required")
	}
	names := map[string]path{}
	for gi := range v.c.Groups {
		g := &v.c.Groups[gi]
		gp := root.field("groups").index(gi)
		np := gp.field("name")
		switch {
		case g.Name == "":
			v.errorf(np, "group name is required")
		case !groupName.MatchString(g.Name):
			v.errorf(np, "group name %q: use lowercase letters, digits and '-', starting with a letter or digit, at most 63 characters", g.Name)
		}
		if first, dup := names[g.Name]; dup && g.Name != "" {
			v.errorf(np, "duplicate group name %q (first at %s)", g.Name, v.where(first))
		} else {
			names[g.Name] = np
		}
		v.group(g, gp)
	}
	v.portConflicts()
}

func (v *validator) group(g *Group, gp path) {
	v.capacity(g, gp)
	v.launch(g, gp.field("launch"))
	v.volumes(g, gp)
	v.addresses(g, gp)
	for hi := range g.HealthChecks {
		v.healthCheck(g, &g.HealthChecks[hi], gp.field("health_checks").index(hi))
	}
	v.heal(&g.Heal, gp.field("heal"))
	v.hooks("launch", g.Hooks.Launch, gp.field("hooks").field("launch"))
	v.hooks("terminate", g.Hooks.Terminate, gp.field("hooks").field("terminate"))
	v.parameters(g, gp)
}

// capacity reports the first impossible capacity of a group: once one
// bound is wrong, messages about the others would only add noise.
func (v *validator) capacity(g *Group, gp path) {
	d := g.DesiredCount()
	minP, maxP, desP := gp.field("min"), gp.field("max"), gp.field("desired")
	maxNote := ""
	if v.defaulted(maxP) {
		maxNote = " (the default, max(desired, 1)): set max"
	}
	switch {
	case g.Min < 0:
		v.errorf(minP, "min must not be negative, got %d", g.Min)
	case g.Max < 0:
		v.errorf(maxP, "max must not be negative, got %d", g.Max)
	case d < 0:
		v.errorf(desP, "desired must not be negative, got %d", d)
	case g.Min > g.Max:
		v.errorf(minP, "min %d is greater than max %d%s", g.Min, g.Max, maxNote)
	case d > g.Max:
		v.errorf(desP, "desired %d is greater than max %d", d, g.Max)
	case d < g.Min && v.defaulted(desP):
		v.errorf(minP, "min %d is greater than desired %d (the default): set desired", g.Min, d)
	case d < g.Min:
		v.errorf(desP, "desired %d is less than min %d", d, g.Min)
	}
	// A volume or an address belongs to one instance at a time (DESIGN.md),
	// so a group that could run two instances could not give both of them
	// the volume or the address.
	if len(g.Volumes) > 0 && g.Max > 1 {
		v.keyErrorf(gp.field("volumes"), "a volume is attached to one instance at a time: a group with volumes needs max 1, not %d", g.Max)
	}
	if len(g.Addresses) > 0 && g.Max > 1 {
		v.keyErrorf(gp.field("addresses"), "an address is associated with one instance at a time: a group with addresses needs max 1, not %d", g.Max)
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
	case k == "PORT" && len(g.Addresses) == 1 && g.Addresses[0].Mode == ModeProxy:
		return "is reserved: autoheal sets PORT to the instance port of the group's only address"
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

// pathErr strips the operation and path from an *fs.PathError: messages
// name the path themselves.
func pathErr(err error) error {
	if pe, ok := errors.AsType[*os.PathError](err); ok {
		return pe.Err
	}
	return err
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

func (v *validator) volumes(g *Group, gp path) {
	names := map[string]path{}  // by name
	vars := map[string]string{} // environment variable -> volume name
	mounts := map[string]path{} // by cleaned mount path
	for vi, vol := range g.Volumes {
		vp := gp.field("volumes").index(vi)
		np := vp.field("name")
		switch first, dup := names[vol.Name]; {
		case vol.Name == "":
			v.errorf(np, "volume name is required")
		case !itemName.MatchString(vol.Name):
			v.errorf(np, "volume name %q: use lowercase letters, digits, '-' and '_', starting with a letter or digit, at most 63 characters", vol.Name)
		case dup:
			v.errorf(np, "duplicate volume name %q (first at %s)", vol.Name, v.where(first))
		default:
			names[vol.Name] = np
			// The instance finds each volume through AUTOHEAL_VOLUME_<NAME>
			// and its fencing token through ..._TOKEN; "a-b" and "a_b", or
			// "a" and "a-token", would overwrite each other's variables.
			base := "AUTOHEAL_VOLUME_" + EnvName(vol.Name)
			for _, vr := range []string{base, base + "_TOKEN"} {
				if other, clash := vars[vr]; clash {
					v.errorf(np, "volume names %q and %q both set %s", other, vol.Name, vr)
					break
				}
			}
			vars[base], vars[base+"_TOKEN"] = vol.Name, vol.Name
		}
		if vol.MountPath != "" {
			mp := vp.field("mount_path")
			clean := filepath.Clean(vol.MountPath)
			switch first, dup := mounts[clean]; {
			case !filepath.IsAbs(vol.MountPath):
				v.errorf(mp, "mount_path %q must be absolute", vol.MountPath)
			case clean == "/":
				v.errorf(mp, "mount_path must not be /")
			case dup:
				v.errorf(mp, "mount_path %s is also used at %s", vol.MountPath, v.where(first))
			default:
				mounts[clean] = mp
			}
		}
	}
}

func (v *validator) addresses(g *Group, gp path) {
	names := map[string]path{}
	vars := map[string]string{}
	for ai := range g.Addresses {
		a := &g.Addresses[ai]
		ap := gp.field("addresses").index(ai)
		np := ap.field("name")
		switch first, dup := names[a.Name]; {
		case a.Name == "":
			v.errorf(np, "address name is required")
		case !itemName.MatchString(a.Name):
			v.errorf(np, "address name %q: use lowercase letters, digits, '-' and '_', starting with a letter or digit, at most 63 characters", a.Name)
		case allDigits.MatchString(a.Name):
			// A health check's port is a number or an address name; a
			// numeric name would make "8080" ambiguous.
			v.errorf(np, "address name %q must not be a number", a.Name)
		case dup:
			v.errorf(np, "duplicate address name %q (first at %s)", a.Name, v.where(first))
		default:
			names[a.Name] = np
			vr := "AUTOHEAL_PORT_" + EnvName(a.Name)
			if other, clash := vars[vr]; clash {
				v.errorf(np, "address names %q and %q both set %s", other, a.Name, vr)
			}
			vars[vr] = a.Name
		}

		lp := ap.field("listen")
		if a.Listen == "" {
			v.errorf(lp, "address listen is required (host:port)")
		} else if host, port, err := parseListen(a.Listen); err != nil {
			v.errorf(lp, "listen %q: %v", a.Listen, err)
		} else {
			v.listens = append(v.listens, portUse{text: a.Listen, host: host, port: port, at: lp, group: g.Name, name: a.Name})
		}

		switch a.Mode {
		case ModeProxy, ModeSocket:
		default:
			v.errorf(ap.field("mode"), "mode %q: must be proxy or socket", a.Mode)
		}
		pp := ap.field("port")
		switch {
		case a.Port < 0 || a.Port > 65535:
			v.errorf(pp, "port %d: must be 0 (a free port per instance) or 1 to 65535", a.Port)
		case a.Mode == ModeSocket && a.Port != 0:
			v.errorf(pp, "port is for proxy mode: in socket mode the instance receives the listening socket itself")
		case a.Port != 0:
			v.fixed = append(v.fixed, portUse{text: strconv.Itoa(a.Port), host: "127.0.0.1", port: a.Port, at: pp, group: g.Name, name: a.Name})
		}
	}
}

// parseListen checks a listen address and returns its host, normalised for
// comparison ("" for every interface), and its port.
func parseListen(s string) (string, int, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, errors.New("must be host:port, like 127.0.0.1:8080 or :8080")
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		// Port 0 would pick a new port at every start: clients could not
		// find the address again, which is the point of having one.
		return "", 0, errors.New("port must be a number from 1 to 65535 (a stable address needs a fixed port)")
	}
	switch host {
	case "", "0.0.0.0", "::":
		return "", n, nil
	case "localhost":
		// net.Listen binds the first address localhost resolves to.
		return "127.0.0.1", n, nil
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return "", 0, errors.New("host must be an IP address, localhost, or empty for every interface")
	}
	return ip.String(), n, nil
}

// portConflicts reports listen addresses that the kernel would refuse to
// bind twice, across all groups: the same port on the same host, or on
// every interface and any host. It also reports fixed instance ports that
// another address or instance already needs.
func (v *validator) portConflicts() {
	overlaps := func(a, b portUse) bool {
		return a.port == b.port && (a.host == b.host || a.host == "" || b.host == "")
	}
	// By port, so that a file with many addresses is not checked in
	// quadratic time.
	listens := map[int][]portUse{}
	for _, a := range v.listens {
		for _, b := range listens[a.port] {
			if overlaps(a, b) {
				how := "is already used by"
				if a.host != b.host {
					how = fmt.Sprintf("overlaps %s of", b.text)
				}
				v.errorf(a.at, "listen %s %s group %s, address %s (%s)", a.text, how, b.group, b.name, v.where(b.at))
				break
			}
		}
		listens[a.port] = append(listens[a.port], a)
	}
	fixed := map[int]portUse{}
	for _, a := range v.fixed {
		for _, b := range listens[a.port] {
			if overlaps(a, b) {
				v.errorf(a.at, "port %d is the listen port of group %s, address %s: the instance could not bind it", a.port, b.group, b.name)
				break
			}
		}
		if b, dup := fixed[a.port]; dup {
			v.errorf(a.at, "port %d is also the instance port of group %s, address %s (%s)", a.port, b.group, b.name, v.where(b.at))
		} else {
			fixed[a.port] = a
		}
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
}

// checkPort validates a tcp or http check's port: a number, or the name of
// one of the group's addresses.
func (v *validator) checkPort(g *Group, h *HealthCheck, hp path) {
	pp := hp.field("port")
	if h.Port == "" {
		if len(g.Addresses) == 0 {
			v.errorf(pp, "%s health check needs a port: a number, or the name of one of the group's addresses", h.Type)
		} else {
			v.errorf(pp, "%s health check needs a port: the group has %d addresses, name one of them", h.Type, len(g.Addresses))
		}
		return
	}
	if n, isNum := h.PortNumber(); isNum {
		if n < 1 || n > 65535 {
			v.errorf(pp, "port %d: must be from 1 to 65535", n)
		}
		return
	}
	a, ok := g.Address(h.Port)
	if !ok {
		names := make([]string, len(g.Addresses))
		for i, a := range g.Addresses {
			names[i] = a.Name
		}
		known := "it has none"
		if len(names) > 0 {
			known = "it has " + strings.Join(names, ", ")
		}
		v.errorf(pp, "port %q is neither a port number nor an address of group %s (%s)", h.Port, g.Name, known)
		return
	}
	if h.Type == CheckTCP && a.Mode == ModeSocket {
		// The controller holds a socket-mode listener, so the kernel
		// accepts connections into its backlog whether or not the
		// instance is alive: the check could never fail.
		v.errorf(pp, "a tcp check on socket-mode address %q always succeeds: use an http or exec check", a.Name)
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
