package config

import (
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"math"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"
)

// Validate fills the defaults, resolves Launch.Command, Launch.Workdir and
// listeners' TLS files to absolute paths, and checks every value of c,
// reporting every problem, not only the first. Parse calls it; a Config
// built in code should call it too. It is idempotent.
//
// Problems are returned as *Errors: at FILE:LINE:COL for a config that came
// from Parse, else as "FILE: groups[0].launch.command: message".
func (c *Config) Validate() error {
	c.setDefaults()
	v := &validator{c: c}
	v.config()
	return v.errs.Err()
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

// portUse is a TCP port something needs: a listen address (of a group's
// address or of a load balancer's listener), or a fixed instance port
// (bound on loopback).
type portUse struct {
	text  string // as written
	host  string // "" for every interface
	port  int
	at    path
	owner string // "group pet, address http", "an http listener of load balancer web"
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
	v.loadBalancers()
	v.portConflicts()
	v.maintenanceWindows()
	v.scheduledActions()
	v.metrics()
	v.channels()
	v.alarms()
	v.alertmanager()
	v.auth()
	v.api()
}

func (v *validator) group(g *Group, gp path) {
	v.capacity(g, gp)
	v.launch(g, gp.field("launch"))
	v.volumes(g, gp)
	v.addresses(g, gp)
	v.launchPorts(g, gp)
	for hi := range g.HealthChecks {
		v.healthCheck(g, &g.HealthChecks[hi], gp.field("health_checks").index(hi))
	}
	v.heal(&g.Heal, gp.field("heal"))
	v.hooks("launch", g.Hooks.Launch, gp.field("hooks").field("launch"))
	v.hooks("terminate", g.Hooks.Terminate, gp.field("hooks").field("terminate"))
	v.parameters(g, gp)
	if g.APIRole != "" && !slices.Contains(InstanceRoles, g.APIRole) {
		v.errorf(gp.field("api_role"), "api_role %q: use %s, or leave it out (instances get no role)%s",
			g.APIRole, strings.Join(InstanceRoles, " or "), didYouMean(g.APIRole, InstanceRoles...))
	}
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
	// A volume or an address belongs to one instance at a time (docs/design.md §6),
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
			v.listens = append(v.listens, portUse{text: a.Listen, host: host, port: port, at: lp, owner: addressOwner(g, a)})
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
			v.fixed = append(v.fixed, portUse{text: strconv.Itoa(a.Port), host: "127.0.0.1", port: a.Port, at: pp, owner: addressOwner(g, a)})
		}
	}
}

func addressOwner(g *Group, a *Address) string {
	return fmt.Sprintf("group %s, address %s", g.Name, a.Name)
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
// bind twice, across all groups' addresses and load balancers' listeners:
// the same port on the same host, or on every interface and any host. It
// also reports fixed instance ports that a listen address or another
// instance already needs.
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
				v.errorf(a.at, "listen %s %s %s (%s)", a.text, how, b.owner, v.where(b.at))
				break
			}
		}
		listens[a.port] = append(listens[a.port], a)
	}
	fixed := map[int]portUse{}
	for _, a := range v.fixed {
		for _, b := range listens[a.port] {
			if overlaps(a, b) {
				v.errorf(a.at, "port %d is the listen port of %s: the instance could not bind it", a.port, b.owner)
				break
			}
		}
		if b, dup := fixed[a.port]; dup {
			v.errorf(a.at, "port %d is also the instance port of %s (%s)", a.port, b.owner, v.where(b.at))
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

// Load balancers.

var hostName = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$`)

const (
	maxWeight    = 1000
	maxRetries   = 10
	maxThreshold = 10
	// maxSlowStart is ELB's bound: a longer ramp keeps a recovered target
	// underused for longer than any warm-up needs.
	maxSlowStart = Duration(15 * time.Minute)
)

func (v *validator) loadBalancers() {
	// Which load balancer each target group belongs to, so that a listener
	// naming another load balancer's target group can be told so.
	owner := map[string]string{}
	for _, lb := range v.c.LoadBalancers {
		for _, tg := range lb.TargetGroups {
			if _, seen := owner[tg.Name]; !seen {
				owner[tg.Name] = lb.Name
			}
		}
	}
	// Indexes, so that a file with many targets is not checked in
	// quadratic time.
	groups := map[string]*memberGroup{}
	for gi := range v.c.Groups {
		g := &v.c.Groups[gi]
		if _, dup := groups[g.Name]; !dup {
			mg := &memberGroup{g: g, names: g.PortNames(), ports: map[string]bool{}}
			for _, n := range mg.names {
				mg.ports[n] = true
			}
			groups[g.Name] = mg
		}
	}
	lbNames := map[string]path{}
	tgNames := map[string]path{} // across all load balancers
	for li := range v.c.LoadBalancers {
		lb := &v.c.LoadBalancers[li]
		tgs := map[string]*TargetGroup{}
		for i := range lb.TargetGroups {
			if _, dup := tgs[lb.TargetGroups[i].Name]; !dup {
				tgs[lb.TargetGroups[i].Name] = &lb.TargetGroups[i]
			}
		}
		lp := path{}.field("load_balancers").index(li)
		np := lp.field("name")
		v.uniqueName("load balancer", lb.Name, np, lbNames)
		if len(lb.Listeners) == 0 {
			v.errorf(lp.field("listeners"), "a load balancer needs at least one listener")
		}
		if len(lb.TargetGroups) == 0 {
			v.errorf(lp.field("target_groups"), "a load balancer needs at least one target group")
		}
		for i := range lb.Listeners {
			v.listener(lb, &lb.Listeners[i], lp.field("listeners").index(i), tgs, owner)
		}
		for i := range lb.TargetGroups {
			tg := &lb.TargetGroups[i]
			tp := lp.field("target_groups").index(i)
			np := tp.field("name")
			// Unique across load balancers: the API and the metrics name a
			// target group by its name alone.
			v.uniqueName("target group", tg.Name, np, tgNames)
			v.targetGroup(tg, tp, groups)
		}
	}
}

// memberGroup is a group as target groups see it: its port names.
type memberGroup struct {
	g     *Group
	names []string        // PortNames, in order
	ports map[string]bool // the same, for lookups
}

func (v *validator) listener(lb *LoadBalancer, l *Listener, p path, tgs map[string]*TargetGroup, owner map[string]string) {
	known := l.Protocol == ProtocolHTTP || l.Protocol == ProtocolTCP
	switch {
	case l.Protocol == "":
		v.errorf(p.field("protocol"), "listener protocol is required: http or tcp")
	case !known:
		v.errorf(p.field("protocol"), "protocol %q: must be http or tcp", l.Protocol)
	}

	lp := p.field("listen")
	if l.Listen == "" {
		v.errorf(lp, "listener listen is required (host:port)")
	} else if host, port, err := parseListen(l.Listen); err != nil {
		v.errorf(lp, "listen %q: %v", l.Listen, err)
	} else {
		who := "a listener"
		switch l.Protocol {
		case ProtocolHTTP:
			who = "an http listener"
		case ProtocolTCP:
			who = "a tcp listener"
		}
		who += " of load balancer " + lb.Name
		v.listens = append(v.listens, portUse{text: l.Listen, host: host, port: port, at: lp, owner: who})
	}

	tp := p.field("target_group")
	if l.TargetGroup == "" {
		v.errorf(tp, "listener target_group is required: the name of one of this load balancer's target groups")
	} else if tg, ok := tgs[l.TargetGroup]; !ok {
		if other, elsewhere := owner[l.TargetGroup]; elsewhere {
			v.errorf(tp, "target group %q belongs to load balancer %s: a listener forwards to its own load balancer's target groups", l.TargetGroup, other)
		} else {
			v.errorf(tp, "target_group %q is not a target group of load balancer %s (%s)", l.TargetGroup, lb.Name, itHas(targetGroupNames(lb)))
		}
	} else if known && tg.Protocol != l.Protocol && (tg.Protocol == ProtocolHTTP || tg.Protocol == ProtocolTCP) {
		// An http listener speaks HTTP to its targets and a tcp listener
		// copies bytes: neither can use the other's target group.
		v.errorf(tp, "target group %q has protocol %s: a listener needs a target group of its own protocol, %s", tg.Name, tg.Protocol, l.Protocol)
	}

	if l.TLS != nil {
		if l.Protocol == ProtocolTCP {
			v.keyErrorf(p.field("tls"), "tls is used only by http listeners, not tcp")
		} else {
			v.tlsFiles(l.TLS, p.field("tls"))
		}
	}
	if l.Protocol == ProtocolTCP {
		for _, f := range []struct {
			name string
			set  bool
		}{{"header_timeout", l.HeaderTimeout != 0}, {"max_header_bytes", l.MaxHeaderBytes != 0}, {"max_body_bytes", l.MaxBodyBytes != 0}} {
			if f.set {
				v.keyErrorf(p.field(f.name), "%s is used only by http listeners, not tcp", f.name)
			}
		}
	}
	v.nonNegative(p.field("idle_timeout"), l.IdleTimeout)
	v.nonNegative(p.field("first_byte_timeout"), l.FirstByteTimeout)
	v.nonNegative(p.field("header_timeout"), l.HeaderTimeout)
	if l.MaxHeaderBytes < 0 {
		v.errorf(p.field("max_header_bytes"), "max_header_bytes must not be negative, got %d", l.MaxHeaderBytes)
	}
	if l.MaxBodyBytes < 0 {
		v.errorf(p.field("max_body_bytes"), "max_body_bytes must not be negative, got %d", l.MaxBodyBytes)
	}
	if l.MaxConnections < 0 {
		v.errorf(p.field("max_connections"), "max_connections must not be negative, got %d", l.MaxConnections)
	}
}

// tlsFiles checks that the certificate and key files exist and load as a pair,
// so that a listener does not fail at start, or worse at its first
// handshake.
func (v *validator) tlsFiles(t *TLS, p path) {
	certOK := v.pemFile(p.field("cert_file"), "cert_file", t.CertFile)
	keyOK := v.pemFile(p.field("key_file"), "key_file", t.KeyFile)
	if certOK && keyOK {
		if _, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile); err != nil {
			v.errorf(p.field("cert_file"), "cert_file and key_file do not load as a certificate and its key: %v", pathErr(err))
		}
	}
}

// maxPEMFile bounds a certificate or key file: a chain is a few KiB, and
// validation must not read a huge file into memory.
const maxPEMFile = 1 << 20

// pemFile reports whether the file named by field is a regular file that
// is small enough to load.
func (v *validator) pemFile(p path, field, name string) bool {
	if name == "" {
		v.errorf(p, "tls needs a %s (a PEM file)", field)
		return false
	}
	fi, err := os.Stat(name)
	switch {
	case err != nil:
		v.errorf(p, "%s %s: %v", field, name, pathErr(err))
	case fi.IsDir():
		v.errorf(p, "%s %s is a directory", field, name)
	case !fi.Mode().IsRegular():
		// A device or a FIFO could block validation, or never end.
		v.errorf(p, "%s %s is not a regular file", field, name)
	case fi.Size() > maxPEMFile:
		v.errorf(p, "%s %s is too large for a PEM file (%s, at most %s)", field, name, ByteSize(fi.Size()), ByteSize(maxPEMFile))
	default:
		return true
	}
	return false
}

func (v *validator) targetGroup(tg *TargetGroup, p path, groups map[string]*memberGroup) {
	switch tg.Protocol {
	case ProtocolHTTP, ProtocolTCP:
	default:
		v.errorf(p.field("protocol"), "protocol %q: must be http or tcp", tg.Protocol)
	}
	switch tg.Algorithm {
	case AlgorithmRoundRobin, AlgorithmWeightedRoundRobin, AlgorithmLeastOutstanding:
	default:
		v.errorf(p.field("algorithm"), "algorithm %q: must be %s, %s or %s", tg.Algorithm,
			AlgorithmRoundRobin, AlgorithmWeightedRoundRobin, AlgorithmLeastOutstanding)
	}
	if len(tg.Groups) == 0 && len(tg.Targets) == 0 {
		v.errorf(p, "a target group needs groups or targets")
	}

	members := map[string]path{} // by group and port
	for i := range tg.Groups {
		v.member(&tg.Groups[i], p.field("groups").index(i), groups, members)
	}
	ids := map[string]path{}
	for i := range tg.Targets {
		v.staticTarget(&tg.Targets[i], p.field("targets").index(i), ids)
	}
	v.targetHealthCheck(&tg.HealthCheck, p.field("health_check"))

	for _, d := range []struct {
		name string
		d    Duration
	}{
		{"deregistration_delay", tg.DeregistrationDelay}, {"slow_start", tg.SlowStart}, {"hold_timeout", tg.HoldTimeout},
		{"connect_timeout", tg.ConnectTimeout}, {"response_timeout", tg.ResponseTimeout},
	} {
		v.nonNegative(p.field(d.name), d.d)
	}
	sp := p.field("slow_start")
	switch {
	case tg.SlowStart > maxSlowStart:
		v.errorf(sp, "slow_start %s is longer than %s", tg.SlowStart, maxSlowStart)
	case tg.SlowStart != 0 && tg.Algorithm == AlgorithmLeastOutstanding:
		// A new target has no outstanding requests, so this algorithm
		// sends it everything at once: there is no share to ramp up.
		v.keyErrorf(sp, "slow_start is used only by the round robin algorithms, not %s", tg.Algorithm)
	}
	if r := tg.RetryCount(); r < 0 || r > maxRetries {
		v.errorf(p.field("retries"), "retries %d: must be from 0 to %d", r, maxRetries)
	}
	if tg.Protocol == ProtocolTCP && tg.ResponseTimeout != 0 {
		v.keyErrorf(p.field("response_timeout"), "response_timeout is used only by http target groups, not tcp")
	}
}

// member checks a group registered in a target group, and that its port
// names something the group's instances listen on.
func (v *validator) member(m *TargetGroupMember, p path, groups map[string]*memberGroup, seen map[string]path) {
	v.weight(p.field("weight"), m.Weight)
	if m.Group == "" {
		v.errorf(p.field("group"), "target group member needs a group: the name of a group in this file")
		return
	}
	mg, ok := groups[m.Group]
	if !ok {
		v.errorf(p.field("group"), "group %q is not defined in this file", m.Group)
		return
	}
	g, names := mg.g, mg.names
	pp := p.field("port")
	switch n, isNum := m.PortNumber(); {
	case m.Port == "" && len(names) == 0:
		v.errorf(pp, "port is required: group %s has no named port (launch.ports or addresses); give a number or add a launch port", g.Name)
		return
	case m.Port == "":
		v.errorf(pp, "port is required: group %s has %d named ports (%s), name one of them", g.Name, len(names), strings.Join(names, ", "))
		return
	case isNum && (n < 1 || n > 65535):
		v.errorf(pp, "port %d: must be from 1 to 65535", n)
		return
	case !isNum && !mg.ports[m.Port]:
		v.errorf(pp, "port %q is neither a port number nor a named port of group %s (%s)", m.Port, g.Name, itHas(names))
		return
	}
	key := m.Group + "\x00" + m.Port
	if first, dup := seen[key]; dup {
		v.errorf(p.field("group"), "group %s on port %s is already a member of this target group (%s)", m.Group, m.Port, v.where(first))
	} else {
		seen[key] = p
	}
}

func (v *validator) staticTarget(t *StaticTarget, p path, ids map[string]path) {
	v.weight(p.field("weight"), t.Weight)
	ap := p.field("address")
	if t.Address == "" {
		v.errorf(ap, "target address is required (host:port)")
	} else if err := checkTargetAddress(t.Address); err != nil {
		v.errorf(ap, "address %q: %v", t.Address, err)
	}
	ip := p.field("id")
	written := !v.defaulted(ip)
	if written && strings.ContainsAny(t.ID, " \t\r\n/") {
		// The id is a path segment of the API and a column of the CLI.
		v.errorf(ip, "id %q must not contain spaces or /", t.ID)
	}
	if t.ID == "" {
		return // no address either, reported above
	}
	if first, dup := ids[t.ID]; dup {
		msg := fmt.Sprintf("duplicate target id %q (first at %s)", t.ID, v.where(first))
		if !written {
			msg += ": a target's id defaults to its address; set id"
		}
		v.errorf(ip, "%s", msg)
	} else {
		ids[t.ID] = p
	}
}

// checkTargetAddress checks a static target's host:port: unlike a listen
// address it is dialed, so it needs a host, which may be a name.
func checkTargetAddress(s string) error {
	host, port, err := net.SplitHostPort(s)
	switch {
	case err != nil:
		return errors.New("must be host:port, like 10.0.0.5:8080 or db.internal:5432")
	case host == "":
		return errors.New("a target needs a host: an IP address or a host name")
	case net.ParseIP(host) == nil && !hostName.MatchString(host):
		return fmt.Errorf("host %q is neither an IP address nor a host name", host)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return errors.New("port must be a number from 1 to 65535")
	}
	return nil
}

func (v *validator) weight(p path, w int) {
	if w < 1 || w > maxWeight {
		v.errorf(p, "weight %d: must be from 1 to %d", w, maxWeight)
	}
}

func (v *validator) targetHealthCheck(h *TargetHealthCheck, p path) {
	switch h.Protocol {
	case ProtocolHTTP:
		if !strings.HasPrefix(h.Path, "/") {
			v.errorf(p.field("path"), "path %q must start with /", h.Path)
		}
		if _, err := parseMatcher(h.Matcher); err != nil {
			v.errorf(p.field("matcher"), "%v", err)
		}
	case ProtocolTCP:
		// As for group health checks: a field the protocol ignores is
		// almost always a mistake in the protocol.
		if h.Path != "" {
			v.keyErrorf(p.field("path"), "path is used only by http health checks, not tcp")
		}
		if h.Matcher != "" {
			v.keyErrorf(p.field("matcher"), "matcher is used only by http health checks, not tcp")
		}
	case "":
		// Defaulted from a target group protocol that is invalid, which
		// is reported on the target group.
	default:
		v.errorf(p.field("protocol"), "health check protocol %q: must be http or tcp", h.Protocol)
	}
	v.nonNegative(p.field("interval"), h.Interval)
	v.nonNegative(p.field("timeout"), h.Timeout)
	if h.Timeout > h.Interval {
		note := ""
		if v.defaulted(p.field("interval")) {
			note = " (the default)"
		}
		v.errorf(p.field("timeout"), "timeout %s is longer than interval %s%s", h.Timeout, h.Interval, note)
	}
	for _, t := range []struct {
		name string
		n    int
	}{{"healthy_threshold", h.HealthyThreshold}, {"unhealthy_threshold", h.UnhealthyThreshold}} {
		if t.n < 1 || t.n > maxThreshold {
			v.errorf(p.field(t.name), "%s %d: must be from 1 to %d", t.name, t.n, maxThreshold)
		}
	}
}

// nonNegative reports a negative duration. Only a Config built in code can
// hold one: the parser refuses them.
func (v *validator) nonNegative(p path, d Duration) {
	if d < 0 {
		v.errorf(p, "%s must not be negative, got %s", p[len(p)-1][1:], d)
	}
}

func targetGroupNames(lb *LoadBalancer) []string {
	names := make([]string, len(lb.TargetGroups))
	for i, tg := range lb.TargetGroups {
		names[i] = tg.Name
	}
	return names
}

// itHas lists names for a message: "it has a, b" or "it has none".
func itHas(names []string) string {
	if len(names) == 0 {
		return "it has none"
	}
	return "it has " + strings.Join(names, ", ")
}

// Maintenance windows and scheduled actions.

// pseudoParam finds {{ NAME }} in a task's parameter values.
var pseudoParam = regexp.MustCompile(`\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}`)

func (v *validator) maintenanceWindows() {
	names := map[string]path{}
	for wi := range v.c.MaintenanceWindows {
		w := &v.c.MaintenanceWindows[wi]
		wp := path{}.field("maintenance_windows").index(wi)
		v.uniqueName("maintenance window", w.Name, wp.field("name"), names)
		v.schedule(w.Schedule, wp.field("schedule"))
		v.timeZone(w.TimeZone, wp.field("time_zone"))
		dp, cp := wp.field("duration"), wp.field("cutoff")
		switch {
		case w.Duration == 0:
			v.errorf(dp, "duration is required: how long the window stays open, like 2h")
		case w.Duration < 0:
			v.nonNegative(dp, w.Duration)
		}
		v.nonNegative(cp, w.Cutoff)
		if w.Duration > 0 && w.Cutoff >= w.Duration {
			v.errorf(cp, "cutoff %s must be shorter than duration %s, or no task could start", w.Cutoff, w.Duration)
		}
		v.windowTargets(&w.Targets, wp.field("targets"))
		if len(w.Tasks) == 0 {
			v.errorf(wp.field("tasks"), "a maintenance window needs at least one task")
		}
		for ti := range w.Tasks {
			v.windowTask(&w.Tasks[ti], wp.field("tasks").index(ti))
		}
	}
}

// uniqueName checks the name of a load balancer, target group, window or
// scheduled action: like a group name, as it is a path segment of the API
// and a column of the CLI, and unique among those of its kind.
func (v *validator) uniqueName(kind, name string, p path, names map[string]path) {
	switch first, dup := names[name]; {
	case name == "":
		v.errorf(p, "%s name is required", kind)
	case !groupName.MatchString(name):
		v.errorf(p, "%s name %q: use lowercase letters, digits and '-', starting with a letter or digit, at most 63 characters", kind, name)
	case dup:
		v.errorf(p, "duplicate %s name %q (first at %s)", kind, name, v.where(first))
	default:
		names[name] = p
	}
}

func (v *validator) schedule(s string, p path) {
	if _, err := CronFields(s); err != nil {
		v.errorf(p, "%v", err)
	}
}

func (v *validator) timeZone(tz string, p path) {
	if _, err := LoadLocation(tz); err != nil {
		v.errorf(p, "%v", err)
	}
}

func (v *validator) windowTargets(t *WindowTargets, p path) {
	if len(t.Groups) == 0 && len(t.Tags) == 0 {
		v.errorf(p, "a maintenance window needs targets: groups, tags or both")
		return
	}
	seen := map[string]path{}
	for i, name := range t.Groups {
		gp := p.field("groups").index(i)
		_, known := v.c.Group(name)
		switch first, dup := seen[name]; {
		case name == "":
			v.errorf(gp, "group name must not be empty")
		case !known:
			v.errorf(gp, "group %q is not defined in this file", name)
		case dup:
			v.errorf(gp, "group %q is listed twice (first at %s)", name, v.where(first))
		default:
			seen[name] = gp
		}
	}
	if len(t.Tags) == 0 {
		return
	}
	// The file holds every group's tags, so a selector that matches none
	// is a typo, not a window waiting for its groups.
	tagsOnly := WindowTargets{Tags: t.Tags}
	for _, g := range v.c.Groups {
		if tagsOnly.Matches(g.Name, g.Tags) {
			return
		}
	}
	pairs := make([]string, 0, len(t.Tags))
	for _, k := range slices.Sorted(maps.Keys(t.Tags)) {
		pairs = append(pairs, k+": "+t.Tags[k])
	}
	v.keyErrorf(p.field("tags"), "tags {%s} match no group: a group matches when its tags include every one of them", strings.Join(pairs, ", "))
}

// documentParameters checks the parameters a window task or a remediation
// passes to its document.
func (v *validator) documentParameters(params map[string]string, p path) {
	for _, k := range slices.Sorted(maps.Keys(params)) {
		kp := p.key(k)
		if strings.TrimSpace(k) == "" {
			v.keyErrorf(kp, "parameter name must not be empty")
			continue
		}
		// Only two pseudo-parameters are substituted; a misspelt one
		// would reach the document as literal text.
		for _, m := range pseudoParam.FindAllStringSubmatch(params[k], -1) {
			if name := m[1]; strings.HasPrefix(strings.ToUpper(name), "TARGET_") && name != "TARGET_ID" && name != "TARGET_GROUP" {
				v.errorf(kp, "parameter %s: unknown %s: use {{ TARGET_ID }} or {{ TARGET_GROUP }}", k, m[0])
			}
		}
	}
}

func (v *validator) windowTask(t *WindowTask, p path) {
	if strings.TrimSpace(t.Document) == "" {
		v.errorf(p.field("document"), "task document is required: the name of the document to run")
	}
	v.documentParameters(t.Parameters, p.field("parameters"))
	if pr := t.PriorityValue(); pr < 0 {
		v.errorf(p.field("priority"), "priority must not be negative, got %d", pr)
	}
	cp := p.field("max_concurrency")
	if n, _, err := ParseLimit(t.MaxConcurrency); err != nil {
		v.errorf(cp, "max_concurrency %v", err)
	} else if n == 0 {
		v.errorf(cp, "max_concurrency must be at least 1 (or 1%%), got %q", t.MaxConcurrency)
	}
	if _, _, err := ParseLimit(t.MaxErrors); err != nil {
		v.errorf(p.field("max_errors"), "max_errors %v", err)
	}
}

func (v *validator) scheduledActions() {
	// The capacities some scheduled action sets, by group: one that none
	// sets stays the file's (unless an operator scales by hand), so the
	// others can be checked against it.
	sets := map[string]*[3]bool{}
	for _, a := range v.c.ScheduledActions {
		if sets[a.Group] == nil {
			sets[a.Group] = &[3]bool{}
		}
		s := sets[a.Group]
		s[0], s[1], s[2] = s[0] || a.Min != nil, s[1] || a.Max != nil, s[2] || a.Desired != nil
	}
	names := map[string]path{}
	for ai := range v.c.ScheduledActions {
		a := &v.c.ScheduledActions[ai]
		ap := path{}.field("scheduled_actions").index(ai)
		v.uniqueName("scheduled action", a.Name, ap.field("name"), names)
		g, known := v.c.Group(a.Group)
		switch {
		case a.Group == "":
			v.errorf(ap.field("group"), "scheduled action group is required: the name of the group whose capacity it sets")
		case !known:
			v.errorf(ap.field("group"), "group %q is not defined in this file", a.Group)
		}
		v.schedule(a.Schedule, ap.field("schedule"))
		v.timeZone(a.TimeZone, ap.field("time_zone"))
		if a.Min == nil && a.Max == nil && a.Desired == nil {
			v.errorf(ap, "a scheduled action sets at least one of min, max and desired")
			continue
		}
		if !known {
			g = nil
		}
		v.actionCapacity(a, ap, g, sets[a.Group])
	}
}

// actionCapacity reports the first capacity of a scheduled action that
// the group could not take, as capacity does for a group.
func (v *validator) actionCapacity(a *ScheduledAction, ap path, g *Group, othersSet *[3]bool) {
	type bound struct {
		name  string
		val   int
		mine  bool // set by this action
		known bool // set by this action, or the file's and set by no action
	}
	b := [3]bound{{name: "min"}, {name: "max"}, {name: "desired"}}
	for i, p := range []*int{a.Min, a.Max, a.Desired} {
		switch {
		case p != nil:
			b[i].val, b[i].mine, b[i].known = *p, true, true
			if *p < 0 {
				v.errorf(ap.field(b[i].name), "%s must not be negative, got %d", b[i].name, *p)
				return
			}
		case g != nil && !othersSet[i]:
			b[i].val, b[i].known = []int{g.Min, g.Max, g.DesiredCount()}[i], true
		}
	}
	if g != nil && (len(g.Volumes) > 0 || len(g.Addresses) > 0) {
		what := "a volume is attached to"
		if len(g.Volumes) == 0 {
			what = "an address is associated with"
		}
		for _, x := range b {
			if x.mine && x.val > 1 {
				v.errorf(ap.field(x.name), "%s one instance at a time: group %s runs at most one, so %s cannot be %d", what, g.Name, x.name, x.val)
				return
			}
		}
	}
	desc := func(x bound) string {
		if x.mine {
			return fmt.Sprintf("%s %d", x.name, x.val)
		}
		return fmt.Sprintf("group %s's %s %d (from the file; no scheduled action sets it)", g.Name, x.name, x.val)
	}
	// min <= max, min <= desired, desired <= max.
	for _, pair := range [][2]int{{0, 1}, {0, 2}, {2, 1}} {
		lo, hi := b[pair[0]], b[pair[1]]
		if !lo.known || !hi.known || (!lo.mine && !hi.mine) || lo.val <= hi.val {
			continue
		}
		if lo.mine {
			v.errorf(ap.field(lo.name), "%s is greater than %s", desc(lo), desc(hi))
		} else {
			v.errorf(ap.field(hi.name), "%s is less than %s", desc(hi), desc(lo))
		}
		return
	}
}

// Metrics, channels, alarms and the Alertmanager receiver.

const (
	// maxBuckets bounds what one series keeps (retention / resolution),
	// so that max_series bounds the store's memory.
	maxBuckets           = 10000
	maxSeriesLimit       = 1_000_000
	maxChannelAttempts   = 100
	maxEvaluationPeriods = 100
	maxRemediateAttempts = 10
	// maxDimensions and maxNameLen are CloudWatch's limits.
	maxDimensions = 30
	maxNameLen    = 255
)

var (
	// namespaceChars are the characters CloudWatch allows in a namespace.
	namespaceChars = regexp.MustCompile(`^[A-Za-z0-9._/#: -]+$`)
	// labelName is a Prometheus label name.
	labelName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

func (v *validator) metrics() {
	m := &v.c.Metrics
	p := path{}.field("metrics")
	rp := p.field("resolution")
	resOK := m.Resolution >= Duration(time.Second) && m.Resolution%Duration(time.Second) == 0
	if !resOK {
		// Datapoints are timestamped to the second, as in CloudWatch;
		// finer buckets would only split them arbitrarily.
		v.errorf(rp, "resolution %s: use a whole number of seconds, at least 1s", m.Resolution)
	}
	switch tp := p.field("retention"); {
	case !resOK:
	case m.Retention < m.Resolution:
		v.errorf(tp, "retention %s is shorter than resolution %s", m.Retention, m.Resolution)
	case m.Buckets() > maxBuckets:
		v.errorf(tp, "retention %s is %d intervals of resolution %s: at most %d, so that a series' memory stays bounded (raise resolution or lower retention)",
			m.Retention, m.Buckets(), m.Resolution, maxBuckets)
	}
	if m.MaxSeries < 1 || m.MaxSeries > maxSeriesLimit {
		v.errorf(p.field("max_series"), "max_series %d: must be from 1 to %d", m.MaxSeries, maxSeriesLimit)
	}
}

func (v *validator) channels() {
	names := map[string]path{}
	for ci := range v.c.Channels {
		ch := &v.c.Channels[ci]
		p := path{}.field("channels").index(ci)
		v.uniqueName("channel", ch.Name, p.field("name"), names)

		tp := p.field("type")
		known := true
		switch ch.Type {
		case ChannelWebhook, ChannelSlack, ChannelPagerDuty:
		case "":
			known = false
			v.errorf(tp, "channel type is required: webhook, slack or pagerduty")
		default:
			known = false
			v.errorf(tp, "channel type %q: must be webhook, slack or pagerduty", ch.Type)
		}

		if v.secretPair(p, "url", ch.URL, ch.URLEnv) {
			if ch.URL != "" {
				if err := checkChannelURL(ch.URL); err != nil {
					v.errorf(p.field("url"), "url %q: %v", ch.URL, err)
				}
			} else if u := ch.URLValue(); u != "" {
				if err := checkChannelURL(u); err != nil {
					// Not quoted: the URL may be a secret.
					v.errorf(p.field("url_env"), "url_env %s: the URL it holds: %v", ch.URLEnv, err)
				}
			} else if known && ch.Type != ChannelPagerDuty {
				v.errorf(p, "a %s channel needs url (or url_env): where to POST", ch.Type)
			}
		}

		// A field the type does not use is reported as such, before
		// anything about its value.
		if known && ch.Type != ChannelWebhook {
			v.notUsedBy(p, ch.Type, "webhook channels (to sign the body)", map[string]string{"secret": ch.Secret, "secret_env": ch.SecretEnv})
		} else {
			v.secretPair(p, "secret", ch.Secret, ch.SecretEnv)
		}
		if known && ch.Type != ChannelPagerDuty {
			v.notUsedBy(p, ch.Type, "pagerduty channels", map[string]string{"routing_key": ch.RoutingKey, "routing_key_env": ch.RoutingKeyEnv})
		} else if v.secretPair(p, "routing_key", ch.RoutingKey, ch.RoutingKeyEnv) && known && ch.RoutingKey == "" && ch.RoutingKeyEnv == "" {
			v.errorf(p, "a pagerduty channel needs routing_key (or routing_key_env): the integration key of a PagerDuty service")
		}

		v.nonNegative(p.field("timeout"), ch.Timeout)
		if ch.MaxAttempts < 1 || ch.MaxAttempts > maxChannelAttempts {
			v.errorf(p.field("max_attempts"), "max_attempts %d: must be from 1 to %d", ch.MaxAttempts, maxChannelAttempts)
		}
	}
}

// notUsedBy reports each of fields that is set although a channel of type
// typ does not use it.
func (v *validator) notUsedBy(p path, typ, users string, fields map[string]string) {
	for _, name := range slices.Sorted(maps.Keys(fields)) {
		if fields[name] != "" {
			v.keyErrorf(p.field(name), "%s is used only by %s, not %s", name, users, typ)
		}
	}
}

// secretPair checks a value that may be written in the file (name) or
// read from the environment (name_env): not both, and the variable set.
// It reports whether the pair is usable as far as that goes.
func (v *validator) secretPair(p path, name, value, env string) bool {
	envName := name + "_env"
	ep := p.field(envName)
	switch {
	case value != "" && env != "":
		v.keyErrorf(ep, "%s and %s are both set: give one", name, envName)
		return false
	case env == "":
		return true
	case !envVar.MatchString(env):
		v.errorf(ep, "%s %q is not a valid environment variable name ([A-Za-z_][A-Za-z0-9_]*)", envName, env)
		return false
	case os.Getenv(env) == "":
		// Checked now rather than when the first incident needs the
		// channel, which is the worst time to find out.
		v.errorf(ep, "%s: environment variable %s is not set (or is empty)", envName, env)
		return false
	}
	return true
}

// checkChannelURL checks a channel's URL; the error does not repeat it.
func checkChannelURL(s string) error {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return errors.New("not a URL")
	case u.Scheme != "http" && u.Scheme != "https":
		return errors.New("must be an http or https URL")
	case u.Host == "":
		return errors.New("needs a host")
	}
	return nil
}

// channelRefs checks a list of channel names: each defined, and listed
// once.
func (v *validator) channelRefs(names []string, p path) {
	seen := map[string]bool{}
	for i, name := range names {
		v.channelRef(name, p.index(i))
		if seen[name] && name != "" {
			v.errorf(p.index(i), "channel %q is listed twice", name)
		}
		seen[name] = true
	}
}

func (v *validator) channelRef(name string, p path) {
	if name == "" {
		v.errorf(p, "channel name must not be empty")
		return
	}
	if _, ok := v.c.Channel(name); ok {
		return
	}
	defined := make([]string, 0, len(v.c.Channels))
	for _, ch := range v.c.Channels {
		if ch.Name != "" {
			defined = append(defined, ch.Name)
		}
	}
	if len(defined) == 0 {
		v.errorf(p, "channel %q is not defined: this file has no channels", name)
		return
	}
	v.errorf(p, "channel %q is not defined in channels (%s)", name, strings.Join(defined, ", "))
}

func (v *validator) alarms() {
	names := map[string]path{}
	for ai := range v.c.Alarms {
		a := &v.c.Alarms[ai]
		p := path{}.field("alarms").index(ai)
		v.uniqueName("alarm", a.Name, p.field("name"), names)
		v.alarmMetric(a, p)
		v.alarmRule(a, p)
		for _, kind := range actionKinds(&a.Actions) {
			kp := p.field("actions").field(kind.name)
			for i := range kind.actions {
				v.action(a, kind, &kind.actions[i], kp.index(i))
			}
		}
	}
}

// alarmMetric checks what an alarm watches: namespace, metric, dimensions
// and statistic.
func (v *validator) alarmMetric(a *Alarm, p path) {
	np := p.field("namespace")
	switch {
	case strings.TrimSpace(a.Namespace) == "":
		v.errorf(np, "namespace is required: the namespace of the metric, like CustomNamespace")
	case len(a.Namespace) > maxNameLen || !namespaceChars.MatchString(a.Namespace):
		v.errorf(np, "namespace %q: use letters, digits, spaces and . - _ / # :, at most %d characters", a.Namespace, maxNameLen)
	}
	mp := p.field("metric")
	switch {
	case strings.TrimSpace(a.Metric) == "":
		v.errorf(mp, "metric is required: the name of the metric, like webapp-uptime")
	case len(a.Metric) > maxNameLen || strings.ContainsFunc(a.Metric, unicode.IsControl):
		v.errorf(mp, "metric %q: at most %d printable characters", a.Metric, maxNameLen)
	}

	dp := p.field("dimensions")
	if len(a.Dimensions) > maxDimensions {
		v.keyErrorf(dp, "an alarm has at most %d dimensions, not %d", maxDimensions, len(a.Dimensions))
	}
	for _, k := range slices.Sorted(maps.Keys(a.Dimensions)) {
		kp, val := dp.key(k), a.Dimensions[k]
		switch {
		case strings.TrimSpace(k) == "":
			v.keyErrorf(kp, "dimension name must not be empty")
		case len(k) > maxNameLen:
			v.keyErrorf(kp, "dimension name %.20q...: at most %d characters", k, maxNameLen)
		case val == "":
			v.errorf(kp, "dimension %s needs a value, or \"*\" for one alarm state per value", k)
		case len(val) > maxNameLen:
			v.errorf(kp, "dimension %s: its value has at most %d characters", k, maxNameLen)
		}
	}

	sp := p.field("statistic")
	switch _, isPct := Percentile(a.Statistic); {
	case isPct:
	case a.Statistic == "":
		v.errorf(sp, "statistic is required: Average, Sum, Minimum, Maximum, SampleCount or a percentile like p99")
	case slices.Contains([]string{StatAverage, StatSum, StatMinimum, StatMaximum, StatSampleCount}, a.Statistic):
	default:
		v.errorf(sp, "statistic %q: must be Average, Sum, Minimum, Maximum, SampleCount or a percentile from p0 to p100, like p99 or p99.9%s",
			a.Statistic, didYouMean(a.Statistic, StatAverage, StatSum, StatMinimum, StatMaximum, StatSampleCount))
	}
}

// alarmRule checks when an alarm breaches: period, evaluation periods,
// comparison, threshold and the treatment of missing data.
func (v *validator) alarmRule(a *Alarm, p path) {
	res := v.c.Metrics.Resolution
	resOK := res >= Duration(time.Second) && res%Duration(time.Second) == 0
	resNote := ""
	if v.defaulted(path{}.field("metrics").field("resolution")) {
		resNote = " (the default)"
	}
	pp := p.field("period")
	periodOK := false
	switch {
	case a.Period == 0:
		v.errorf(pp, "period is required: the length of each datapoint the alarm evaluates, a multiple of metrics.resolution (%s), like 1m", res)
	case a.Period < 0:
		v.nonNegative(pp, a.Period)
	case !resOK:
		// Reported on metrics.resolution.
	case a.Period%res != 0:
		v.errorf(pp, "period %s is not a multiple of metrics.resolution %s%s", a.Period, res, resNote)
	default:
		periodOK = true
	}

	ep, mp := p.field("evaluation_periods"), p.field("datapoints_to_alarm")
	nOK := a.EvaluationPeriods >= 1 && a.EvaluationPeriods <= maxEvaluationPeriods
	if !nOK {
		v.errorf(ep, "evaluation_periods %d: must be from 1 to %d", a.EvaluationPeriods, maxEvaluationPeriods)
	}
	switch {
	case a.DatapointsToAlarm < 1:
		v.errorf(mp, "datapoints_to_alarm must be at least 1, got %d", a.DatapointsToAlarm)
	case nOK && a.DatapointsToAlarm > a.EvaluationPeriods:
		note := ""
		if v.defaulted(ep) {
			note = " (the default)"
		}
		v.errorf(mp, "datapoints_to_alarm %d is greater than evaluation_periods %d%s: M of N needs M <= N", a.DatapointsToAlarm, a.EvaluationPeriods, note)
	}
	if ret := v.c.Metrics.Retention; periodOK && nOK && a.Period*Duration(a.EvaluationPeriods) > ret {
		note := ""
		if v.defaulted(path{}.field("metrics").field("retention")) {
			note = " (the default)"
		}
		v.errorf(pp, "period %s × evaluation_periods %d is longer than metrics.retention %s%s: the alarm could never see all its datapoints",
			a.Period, a.EvaluationPeriods, ret, note)
	}

	cp := p.field("comparison")
	switch a.Comparison {
	case GreaterThanOrEqualToThreshold, GreaterThanThreshold, LessThanThreshold, LessThanOrEqualToThreshold:
	case "":
		v.errorf(cp, "comparison is required: GreaterThanOrEqualToThreshold, GreaterThanThreshold, LessThanThreshold or LessThanOrEqualToThreshold")
	default:
		hint := didYouMean(a.Comparison, GreaterThanOrEqualToThreshold, GreaterThanThreshold, LessThanThreshold, LessThanOrEqualToThreshold)
		if name, ok := map[string]string{">=": GreaterThanOrEqualToThreshold, ">": GreaterThanThreshold, "<": LessThanThreshold, "<=": LessThanOrEqualToThreshold}[strings.TrimSpace(a.Comparison)]; ok {
			hint = fmt.Sprintf(" (write %s)", name)
		}
		v.errorf(cp, "comparison %q: must be GreaterThanOrEqualToThreshold, GreaterThanThreshold, LessThanThreshold or LessThanOrEqualToThreshold%s", a.Comparison, hint)
	}
	if a.Threshold == nil {
		v.errorf(p.field("threshold"), "threshold is required: the value each datapoint is compared with")
	} else if math.IsNaN(*a.Threshold) || math.IsInf(*a.Threshold, 0) {
		v.errorf(p.field("threshold"), "threshold must be a finite number, got %v", *a.Threshold)
	}
	switch a.TreatMissingData {
	case TreatMissing, TreatBreaching, TreatNotBreaching, TreatIgnore:
	default:
		v.errorf(p.field("treat_missing_data"), "treat_missing_data %q: must be missing, breaching, notBreaching or ignore%s",
			a.TreatMissingData, didYouMean(a.TreatMissingData, TreatMissing, TreatBreaching, TreatNotBreaching, TreatIgnore))
	}
}

// didYouMean suggests the known name that differs from s only in case.
func didYouMean(s string, known ...string) string {
	for _, k := range known {
		if strings.EqualFold(s, k) {
			return fmt.Sprintf(" (did you mean %q?)", k)
		}
	}
	return ""
}

// action checks one action of an alarm.
func (v *validator) action(a *Alarm, kind actionKind, act *Action, p path) {
	var set []string
	for _, f := range []struct {
		name string
		set  bool
	}{{"notify", act.Notify != ""}, {"remediate", act.Remediate != nil}, {"restart", act.Restart != ""}, {"replace", act.Replace != ""}} {
		if f.set || (v.c.src.has(p.field(f.name)) && f.name != "remediate") {
			set = append(set, f.name)
		}
	}
	switch len(set) {
	case 0:
		v.errorf(p, "an action needs one of notify, remediate, restart or replace")
		return
	case 1:
	default:
		v.errorf(p, "an action is one of notify, remediate, restart or replace, not %s: write each as its own list item", strings.Join(set, " and "))
		return
	}
	switch set[0] {
	case "notify":
		v.channelRef(act.Notify, p.field("notify"))
	case "remediate":
		v.remediate(a, kind, act.Remediate, p.field("remediate"))
	case "restart", "replace":
		what, target := set[0], act.Restart
		if what == "replace" {
			target = act.Replace
		}
		tp := p.field(what)
		switch _, hasID := a.Dimensions[DimensionInstanceID]; {
		case target != ActionTargetInstance:
			v.errorf(tp, "%s %q: the only target is instance (the instance the alarm's InstanceId dimension names)", what, target)
		case kind.name == "ok":
			v.keyErrorf(tp, "%s runs when the alarm enters ALARM or INSUFFICIENT_DATA, not OK: there is nothing to repair", what)
		case !hasID:
			v.keyErrorf(tp, "%s needs the alarm's InstanceId dimension: it acts on the instance that dimension names", what)
		}
	}
}

func (v *validator) remediate(a *Alarm, kind actionKind, r *Remediate, p path) {
	if kind.name == "ok" {
		v.keyErrorf(p, "remediate runs when the alarm enters ALARM or INSUFFICIENT_DATA, not OK: there is nothing to repair")
		return
	}
	rp := p.field("runbook")
	switch {
	case r.Runbook == "":
		// Only when the metric or the namespace is missing, which is
		// reported on them.
		if !v.defaulted(rp) {
			v.errorf(rp, "runbook must not be empty")
		}
	case !documentName(r.Runbook) && v.defaulted(rp):
		v.errorf(rp, "the default runbook %q (<metric>#<namespace>) cannot name a document: %s; set runbook", r.Runbook, documentNameRule)
	case !documentName(r.Runbook):
		v.errorf(rp, "runbook %q cannot name a document: %s", r.Runbook, documentNameRule)
	}
	if r.MaxAttempts < 1 || r.MaxAttempts > maxRemediateAttempts {
		v.errorf(p.field("max_attempts"), "max_attempts %d: must be from 1 to %d", r.MaxAttempts, maxRemediateAttempts)
	}
	v.nonNegative(p.field("retry_pause"), r.RetryPause)
	vp := p.field("verify_timeout")
	// To return to OK the alarm needs N-M+1 periods that do not breach:
	// until then M of its N datapoints still do, whatever the runbook did.
	need := a.EvaluationPeriods - a.DatapointsToAlarm + 1
	switch {
	case r.VerifyTimeout < 0:
		v.nonNegative(vp, r.VerifyTimeout)
	case a.Period > 0 && need >= 1 && r.VerifyTimeout < a.Period*Duration(need):
		note, fix := "", ""
		if v.defaulted(vp) {
			note, fix = " (the default)", "; set verify_timeout"
		}
		periods := "1 period"
		if need > 1 {
			periods = fmt.Sprintf("%d periods", need)
		}
		v.errorf(vp, "verify_timeout %s%s is shorter than the %s the alarm needs to return to OK: %s of %s without a breach (evaluation_periods - datapoints_to_alarm + 1)%s",
			r.VerifyTimeout, note, a.Period*Duration(need), periods, a.Period, fix)
	}
	v.channelRefs(r.Escalate, p.field("escalate"))
	v.documentParameters(r.Parameters, p.field("parameters"))
}

func (v *validator) alertmanager() {
	am := &v.c.Alertmanager
	p := path{}.field("alertmanager")
	v.channelRefs(am.DefaultEscalate, p.field("default_escalate"))
	for ri := range am.Routes {
		r := &am.Routes[ri]
		rp := p.field("routes").index(ri)
		mp := rp.field("match")
		if len(r.Match) == 0 {
			v.errorf(mp, "a route needs match: at least one label and its value")
		}
		for _, k := range slices.Sorted(maps.Keys(r.Match)) {
			kp := mp.key(k)
			switch {
			case !labelName.MatchString(k):
				v.keyErrorf(kp, "label name %q: use letters, digits and _, not starting with a digit", k)
			case r.Match[k] == "":
				// Alertmanager drops labels with an empty value.
				v.errorf(kp, "label %s: an empty value never matches (Alertmanager sends no empty label)", k)
			}
		}
		// Routes are tried in order: one whose labels include all of an
		// earlier route's is never reached.
		for ei := range ri {
			earlier := am.Routes[ei].Match
			if len(earlier) == 0 || len(r.Match) == 0 {
				continue
			}
			if includes(r.Match, earlier) {
				v.keyErrorf(mp, "this route is never used: the route at %s matches every alert it matches (routes are tried in order; put the more specific one first)",
					v.where(p.field("routes").index(ei)))
				break
			}
		}
		bp := rp.field("runbook")
		switch {
		case strings.TrimSpace(r.Runbook) == "":
			v.errorf(bp, "route runbook is required: the name of the document to run")
		case !documentName(r.Runbook):
			v.errorf(bp, "runbook %q cannot name a document: %s", r.Runbook, documentNameRule)
		}
		if !labelName.MatchString(r.TargetLabel) {
			v.errorf(rp.field("target_label"), "target_label %q: use letters, digits and _, not starting with a digit", r.TargetLabel)
		}
		// A route's escalate defaults to default_escalate, whose
		// problems are reported there.
		if !slices.Equal(r.Escalate, am.DefaultEscalate) {
			v.channelRefs(r.Escalate, rp.field("escalate"))
		}
	}
}

// documentName reports whether a runbook name can name a document: the
// runbook library finds one by its file name in a directory.
func documentName(name string) bool {
	return !strings.ContainsAny(name, `/\`) && !strings.HasPrefix(name, ".")
}

const documentNameRule = `a document name has no / or \ and does not start with "."`

// includes reports whether m has every label of sub with the same value.
func includes(m, sub map[string]string) bool {
	for k, want := range sub {
		if got, ok := m[k]; !ok || got != want {
			return false
		}
	}
	return true
}

var sha256Hex = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)

// auth checks the API tokens: unique names, known roles, and hashes that
// are hashes (a token pasted in clear is the mistake to catch).
func (v *validator) auth() {
	p := path{}.field("auth").field("tokens")
	names := map[string]path{}
	for ti := range v.c.Auth.Tokens {
		t := &v.c.Auth.Tokens[ti]
		tp := p.index(ti)
		np := tp.field("name")
		switch {
		case t.Name == "":
			v.errorf(np, "token name is required: it names the token in audit events")
		case !itemName.MatchString(t.Name):
			v.errorf(np, "token name %q: use lowercase letters, digits, '_' and '-', starting with a letter or digit, at most 63 characters", t.Name)
		}
		if first, dup := names[t.Name]; dup && t.Name != "" {
			v.errorf(np, "duplicate token name %q (first at %s)", t.Name, v.where(first))
		} else {
			names[t.Name] = np
		}
		rp := tp.field("role")
		switch {
		case t.Role == "":
			v.errorf(rp, "token role is required: one of %s", strings.Join(Roles, ", "))
		case !slices.Contains(Roles, t.Role):
			v.errorf(rp, "token role %q: use one of %s%s", t.Role, strings.Join(Roles, ", "), didYouMean(t.Role, Roles...))
		}
		hp := tp.field("sha256")
		switch {
		case t.SHA256 == "":
			v.errorf(hp, "token sha256 is required: the SHA-256 of the token (autoheal token new, autoheal token hash)")
		case strings.HasPrefix(t.SHA256, "ah_"):
			v.errorf(hp, "this is a token in clear, not its hash: never write a token in the config; put the output of `autoheal token hash` here and revoke this token")
		case !sha256Hex.MatchString(t.SHA256):
			what := fmt.Sprintf("%d characters", len(t.SHA256))
			if len(t.SHA256) == 64 {
				what = "characters that are not hex digits"
			}
			v.errorf(hp, "token sha256: want 64 hex digits (the SHA-256 of the token), got %s", what)
		}
	}
}

// apiHost is a DNS name as clients write it in a URL, with an optional
// port.
var apiHost = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*\.?(:[0-9]{1,5})?$`)

// api checks the names the API answers to.
func (v *validator) api() {
	p := path{}.field("api").field("hosts")
	for i, h := range v.c.API.Hosts {
		if !apiHost.MatchString(h) || len(h) > 253 {
			v.errorf(p.index(i), "api host %q: give a name as clients write it in the API's URL, like autoheal.example.com (no scheme, no path)", h)
		}
	}
}
