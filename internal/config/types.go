package config

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Config is the whole autoheal.yaml file. A Config returned by Load or
// Parse has every default filled in (a zero value in the file means "the
// default") and absolute Launch.Command and Launch.Workdir paths.
type Config struct {
	// Groups are the instance groups autoheal keeps alive. At least one.
	Groups []Group `yaml:"groups"`
	// LoadBalancers put listeners in front of groups' instances and static
	// targets. Default none.
	LoadBalancers []LoadBalancer `yaml:"load_balancers"`
	// MaintenanceWindows run documents on the instances of groups on a
	// schedule. Default none.
	MaintenanceWindows []MaintenanceWindow `yaml:"maintenance_windows"`
	// ScheduledActions set a group's capacity on a schedule. Default none.
	ScheduledActions []ScheduledAction `yaml:"scheduled_actions"`
	// Metrics sizes the in-memory metric store that alarms read.
	Metrics Metrics `yaml:"metrics"`
	// Channels are where notifications and escalations go. Default none.
	Channels []Channel `yaml:"channels"`
	// Alarms watch metrics and act when their state changes. Default none.
	Alarms []Alarm `yaml:"alarms"`
	// Alertmanager maps the alerts that Prometheus Alertmanager posts to
	// runbooks. Default: no route; every alert is recorded and escalated
	// to default_escalate (none).
	Alertmanager Alertmanager `yaml:"alertmanager"`
	// Auth lists the tokens the API and the UI accept. Default none: the
	// API is open to anyone who can reach it, and serve then refuses to
	// listen beyond loopback.
	Auth Auth `yaml:"auth"`
	// API configures the names the API answers to. Default: IP addresses,
	// loopback names and the listen address's name.
	API API `yaml:"api"`

	// Path is the file the config was read from (not a YAML field).
	Path string `yaml:"-"`
	// Dir is the directory of Path; relative commands, workdirs and
	// scripts are resolved against it (not a YAML field).
	Dir string `yaml:"-"`

	// src remembers where each value was written, so that Validate can
	// name FILE:LINE:COL. Nil for a Config built in code.
	src *source
}

// Group is a set of instances launched from one template (an Auto Scaling
// group).
type Group struct {
	// Name identifies the group: [a-z0-9][a-z0-9-]*, at most 63 characters. Required.
	Name string `yaml:"name"`
	// Min is the lowest capacity scaling may set. Default 0.
	Min int `yaml:"min"`
	// Max is the highest capacity scaling may set. Default: max(desired, 1).
	Max int `yaml:"max"`
	// Desired is the number of instances to keep running. Default 1; 0 only
	// when written as 0 (a stopped group), which is why it is a pointer.
	// Never nil after Validate.
	Desired *int `yaml:"desired"`
	// Tags are free-form labels (targets for maintenance windows).
	Tags map[string]string `yaml:"tags"`

	// Launch is the launch template. Required (at least its command).
	Launch Launch `yaml:"launch"`
	// Volumes follow the group's instance across replacements. A group
	// with volumes needs max 1. Default none.
	Volumes []Volume `yaml:"volumes"`
	// Addresses are the group's stable endpoints. A group with addresses
	// needs max 1. Default none.
	Addresses []Address `yaml:"addresses"`
	// HealthChecks must all pass for an instance to be InService. Default
	// none: the instance is InService once its process runs.
	HealthChecks []HealthCheck `yaml:"health_checks"`
	// Heal is the restart and replace policy.
	Heal Heal `yaml:"heal"`
	// Hooks are the lifecycle hooks. Default none.
	Hooks Hooks `yaml:"hooks"`
	// Parameters are injected into every instance. Default none.
	Parameters []Parameter `yaml:"parameters"`
	// APIRole is the role of its instances' API credential
	// (AUTOHEAL_INSTANCE_TOKEN): viewer or operator. Default none: an
	// instance may only read its own metadata and push its own metrics.
	APIRole string `yaml:"api_role"`
}

// DesiredCount returns the desired capacity after defaults.
func (g *Group) DesiredCount() int {
	if g.Desired == nil {
		return 1
	}
	return *g.Desired
}

// Address returns the group's address with the given name.
func (g *Group) Address(name string) (Address, bool) {
	for _, a := range g.Addresses {
		if a.Name == name {
			return a, true
		}
	}
	return Address{}, false
}

// PortNames returns the names a target group member may give as its port:
// the launch ports, then the address names, in file order.
func (g *Group) PortNames() []string {
	names := make([]string, 0, len(g.Launch.Ports)+len(g.Addresses))
	names = append(names, g.Launch.Ports...)
	for _, a := range g.Addresses {
		names = append(names, a.Name)
	}
	return names
}

// PortVar returns the name of the port that instances also get as PORT:
// the group's only port, when it is a launch port or a proxy-mode address
// (a socket-mode address hands over a socket, not a port to listen on).
func (g *Group) PortVar() (string, bool) {
	switch {
	case len(g.Launch.Ports) == 1 && len(g.Addresses) == 0:
		return g.Launch.Ports[0], true
	case len(g.Launch.Ports) == 0 && len(g.Addresses) == 1 && g.Addresses[0].Mode != ModeSocket:
		return g.Addresses[0].Name, true
	}
	return "", false
}

// Group returns the group with the given name.
func (c *Config) Group(name string) (*Group, bool) {
	for i := range c.Groups {
		if c.Groups[i].Name == name {
			return &c.Groups[i], true
		}
	}
	return nil, false
}

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

// Volume is persistent storage owned by the group, attached to exactly one
// instance at a time.
type Volume struct {
	// Name identifies the volume in the group: [a-z0-9][a-z0-9_-]*. Required.
	Name string `yaml:"name"`
	// MountPath is where the instance sees the volume (bind mount in a private
	// mount namespace, root only): absolute, not "/", unique in the group.
	// Optional; AUTOHEAL_VOLUME_<NAME> is always set.
	MountPath string `yaml:"mount_path"`
	// Init is a shell script run once, when the volume is empty, with
	// AUTOHEAL_VOLUME_<NAME> set (like mkfs on a new EBS volume). Default none.
	Init string `yaml:"init"`
}

// Address is a stable endpoint owned by the group (an Elastic IP).
type Address struct {
	// Name identifies the address in the group: [a-z0-9][a-z0-9_-]*, at
	// most 63 characters, not all digits (a health check's port may be a
	// number or an address name). Required.
	Name string `yaml:"name"`
	// Listen is the host:port the controller listens on: an IP address,
	// localhost or nothing (every interface), and a fixed port 1-65535,
	// unique on the host across all groups. Required.
	Listen string `yaml:"listen"`
	// Mode is "proxy" (the controller forwards connections to the instance's
	// port) or "socket" (the listening socket is handed to the instance with
	// LISTEN_FDS). Default proxy.
	Mode string `yaml:"mode"`
	// Port is the instance port in proxy mode; 0 picks a free port per
	// instance, given as AUTOHEAL_PORT_<NAME>. Must be 0 in socket mode.
	// Default 0.
	Port int `yaml:"port"`
	// WaitTimeout bounds how long a connection that arrives while no instance
	// holds the address waits for one before it is closed. Default 30s.
	WaitTimeout Duration `yaml:"wait_timeout"`
}

// Address modes.
const (
	ModeProxy  = "proxy"
	ModeSocket = "socket"
)

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

// Duration is a time.Duration written as "10s", "1m30s" in YAML.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// ByteSize is a size written as 1048576, "512KiB", "10MiB", "1GiB" or "10MB".
type ByteSize int64

// EnvName is the environment variable suffix for a volume or address name,
// as in AUTOHEAL_VOLUME_<NAME> and AUTOHEAL_PORT_<NAME>: upper case, with
// '-' and '.' turned into '_'. Validation rejects two names of a group that
// map to the same variable.
func EnvName(name string) string {
	return strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(name))
}

// LoadBalancer is a set of listeners and the target groups they forward to
// (an Application or Network Load Balancer).
type LoadBalancer struct {
	// Name identifies the load balancer, like a group name. Required, unique.
	Name string `yaml:"name"`
	// Listeners accept connections. At least one.
	Listeners []Listener `yaml:"listeners"`
	// TargetGroups are the pools of targets listeners forward to. Names are
	// unique across all load balancers. At least one.
	TargetGroups []TargetGroup `yaml:"target_groups"`
}

// Listener protocols; also target group and health check protocols.
const (
	ProtocolHTTP = "http"
	ProtocolTCP  = "tcp"
)

// Listener is one listening socket of a load balancer.
type Listener struct {
	// Protocol is http (an HTTP/1.1 reverse proxy, TLS when TLS is set) or
	// tcp (connections forwarded as they are). Required.
	Protocol string `yaml:"protocol"`
	// Listen is host:port, with a fixed port, unique on the host across
	// listeners and group addresses. Required.
	Listen string `yaml:"listen"`
	// TargetGroup is the name of the target group of this load balancer that
	// receives the traffic; its protocol must match. Required.
	TargetGroup string `yaml:"target_group"`
	// TLS terminates TLS on an http listener. Default none (plain HTTP).
	TLS *TLS `yaml:"tls"`
	// IdleTimeout closes a client connection idle for this long (http:
	// between requests; tcp: no byte either way). Default 60s.
	IdleTimeout Duration `yaml:"idle_timeout"`
	// FirstByteTimeout closes a client connection that sends nothing for
	// this long after it was accepted (http: no byte of a first request, or
	// of the TLS handshake; tcp: no byte either way, so that a target's
	// greeting counts). Such connections are also the first closed when a
	// listener nears max_connections. Default 10s.
	FirstByteTimeout Duration `yaml:"first_byte_timeout"`
	// HeaderTimeout bounds how long a client may take to send a request's
	// headers from their first byte (http only), so slow clients cannot
	// hold connections. Default 10s.
	HeaderTimeout Duration `yaml:"header_timeout"`
	// MaxHeaderBytes caps a request's request line and headers (http only).
	// Default 64KiB.
	MaxHeaderBytes ByteSize `yaml:"max_header_bytes"`
	// MaxBodyBytes caps a request body (http only); larger ones get 413.
	// Default 100MiB.
	MaxBodyBytes ByteSize `yaml:"max_body_bytes"`
	// MaxConnections caps concurrent client connections; more wait in the
	// kernel's accept queue. From 99% of it on (all but max(1, 1%)), each
	// new connection closes the connection idle longest (http: before its
	// first request or between requests; tcp: no byte yet either way), so
	// that new clients are served. Default 10000.
	MaxConnections int `yaml:"max_connections"`
}

// TLS is a certificate and key in PEM files, paths relative to the config
// file's directory (absolute after Validate).
type TLS struct {
	// CertFile is the certificate chain. Required.
	CertFile string `yaml:"cert_file"`
	// KeyFile is the private key. Required.
	KeyFile string `yaml:"key_file"`
}

// Target group algorithms.
const (
	AlgorithmRoundRobin         = "round_robin"
	AlgorithmWeightedRoundRobin = "weighted_round_robin"
	AlgorithmLeastOutstanding   = "least_outstanding_requests"
)

// TargetGroup is a pool of targets with a health check and a balancing
// algorithm.
type TargetGroup struct {
	// Name identifies the target group, like a group name; unique across
	// load balancers. Required.
	Name string `yaml:"name"`
	// Protocol is http or tcp, the listeners' protocol. Default http.
	Protocol string `yaml:"protocol"`
	// Groups register their InService instances as targets automatically.
	Groups []TargetGroupMember `yaml:"groups"`
	// Targets are static targets (host:port). Default none. A target group
	// needs groups or targets.
	Targets []StaticTarget `yaml:"targets"`
	// Algorithm is round_robin, weighted_round_robin or
	// least_outstanding_requests. Default round_robin.
	Algorithm string `yaml:"algorithm"`
	// HealthCheck probes every target.
	HealthCheck TargetHealthCheck `yaml:"health_check"`
	// DeregistrationDelay is how long a deregistered target keeps serving
	// its in-flight requests (draining) before its connections are closed.
	// Default 30s.
	DeregistrationDelay Duration `yaml:"deregistration_delay"`
	// SlowStart ramps a newly healthy target's share of requests up
	// linearly over this long (round robin algorithms). Default 0 (off).
	SlowStart Duration `yaml:"slow_start"`
	// HoldTimeout is how long a request waits for a healthy target when
	// there is none (a single instance being replaced) before it is
	// answered 503 with Retry-After. Default 10s.
	HoldTimeout Duration `yaml:"hold_timeout"`
	// Retries is how many other targets a failed attempt may be retried on:
	// a connection that could not be made, or an idempotent request whose
	// connection broke before any response byte. Default 2.
	Retries *int `yaml:"retries"`
	// ConnectTimeout bounds connecting to a target. Default 2s.
	ConnectTimeout Duration `yaml:"connect_timeout"`
	// ResponseTimeout bounds the wait for a target's response headers
	// (http); past it the client gets 504. Default 60s.
	ResponseTimeout Duration `yaml:"response_timeout"`
}

// TargetGroupMember registers the instances of a group.
type TargetGroupMember struct {
	// Group is the name of a group in this config. Required.
	Group string `yaml:"group"`
	// Port is the instance port: a number, or the name of one of the
	// group's launch ports or addresses. Default: the group's only named
	// port.
	Port string `yaml:"port"`
	// Weight for weighted_round_robin, 1-1000. Default 1.
	Weight int `yaml:"weight"`
}

// StaticTarget is a target that is not an instance of a group.
type StaticTarget struct {
	// Address is host:port. Required.
	Address string `yaml:"address"`
	// ID names the target in the API. Default: its address.
	ID string `yaml:"id"`
	// Weight for weighted_round_robin, 1-1000. Default 1.
	Weight int `yaml:"weight"`
}

// TargetHealthCheck is a target group's active health check.
type TargetHealthCheck struct {
	// Protocol is http or tcp. Default: the target group's protocol.
	Protocol string `yaml:"protocol"`
	// Path for http. Default "/".
	Path string `yaml:"path"`
	// Matcher is the HTTP codes that mean healthy: "200", "200,204",
	// "200-299". Default "200-399".
	Matcher string `yaml:"matcher"`
	// Interval between probes of one target. Default 5s.
	Interval Duration `yaml:"interval"`
	// Timeout of one probe; at most Interval. Default: min(interval, 2s).
	Timeout Duration `yaml:"timeout"`
	// HealthyThreshold consecutive successes make a target healthy.
	// Default 2.
	HealthyThreshold int `yaml:"healthy_threshold"`
	// UnhealthyThreshold consecutive failures make it unhealthy. Default 2.
	UnhealthyThreshold int `yaml:"unhealthy_threshold"`
}

// TargetGroup returns the load balancer's target group with the given name.
func (lb *LoadBalancer) TargetGroup(name string) (*TargetGroup, bool) {
	for i := range lb.TargetGroups {
		if lb.TargetGroups[i].Name == name {
			return &lb.TargetGroups[i], true
		}
	}
	return nil, false
}

// RetryCount returns Retries after defaults.
func (tg *TargetGroup) RetryCount() int {
	if tg.Retries == nil {
		return DefaultRetries
	}
	return *tg.Retries
}

// PortNumber returns the instance port when Port is a number. Validation
// guarantees that port names are never all digits, so a Port is either a
// number or a name, never both.
func (m TargetGroupMember) PortNumber() (int, bool) {
	n, err := strconv.Atoi(m.Port)
	return n, err == nil
}

// PortName returns the name of the group's launch port or address whose
// instance port the member's targets are reached on, when Port names one.
func (m TargetGroupMember) PortName() (string, bool) {
	if _, isNum := m.PortNumber(); isNum || m.Port == "" {
		return "", false
	}
	return m.Port, true
}

// Matches reports whether an HTTP status code means healthy under Matcher
// (after defaults). It is false for a Matcher that does not parse, which
// validation refuses.
func (h TargetHealthCheck) Matches(code int) bool {
	ranges, err := parseMatcher(h.Matcher)
	if err != nil {
		return false
	}
	for _, r := range ranges {
		if code >= r[0] && code <= r[1] {
			return true
		}
	}
	return false
}

// parseMatcher parses a health check matcher, "200", "200,204" or
// "200-299" or a mix, into inclusive ranges of HTTP status codes.
func parseMatcher(s string) ([][2]int, error) {
	bad := fmt.Errorf("matcher %q: use codes from 100 to 599, like \"200\", \"200,204\" or \"200-299\"", s)
	var ranges [][2]int
	for item := range strings.SplitSeq(s, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(item), "-")
		if !isRange {
			hi = lo
		}
		lo, hi = strings.TrimSpace(lo), strings.TrimSpace(hi)
		if !allDigits.MatchString(lo) || !allDigits.MatchString(hi) {
			return nil, bad
		}
		l, errL := strconv.Atoi(lo)
		h, errH := strconv.Atoi(hi)
		if errL != nil || errH != nil || l < 100 || h > 599 {
			return nil, bad
		}
		if l > h {
			return nil, fmt.Errorf("matcher %q: range %d-%d is backwards", s, l, h)
		}
		ranges = append(ranges, [2]int{l, h})
	}
	return ranges, nil
}

// MaintenanceWindow runs documents on the instances of groups on a schedule,
// with a concurrency and an error budget (an SSM maintenance window).
type MaintenanceWindow struct {
	// Name identifies the window, like a group name. Required, unique
	// among windows.
	Name string `yaml:"name"`
	// Schedule is when the window opens: a cron expression of five fields
	// (minute hour day-of-month month day-of-week) or a macro (@yearly,
	// @annually, @monthly, @weekly, @daily, @midnight, @hourly), read in
	// TimeZone. Required. CronFields gives the five-field form.
	Schedule string `yaml:"schedule"`
	// TimeZone is the IANA name of the zone Schedule is read in, like
	// "Europe/Paris". Default UTC.
	TimeZone string `yaml:"time_zone"`
	// Duration is how long the window stays open after each start, in
	// elapsed time. Required, more than 0.
	Duration Duration `yaml:"duration"`
	// Cutoff: no task is started on a target this long before the window
	// ends; what runs then may finish until the end. Default 0 (tasks may
	// start until the end). Shorter than Duration.
	Cutoff Duration `yaml:"cutoff"`
	// Targets select the instances the tasks run on. Required: groups,
	// tags or both.
	Targets WindowTargets `yaml:"targets"`
	// Tasks run one after another, lowest Priority first. At least one.
	Tasks []WindowTask `yaml:"tasks"`
}

// WindowTargets select a window's target instances: the live instances of
// the listed groups, and those of every group whose tags include all of
// Tags.
type WindowTargets struct {
	// Groups are names of groups in this config. Default none.
	Groups []string `yaml:"groups"`
	// Tags select the groups whose tags include every one of these keys
	// with the same value; they must match at least one group. Default
	// none.
	Tags map[string]string `yaml:"tags"`
}

// Matches reports whether the instances of a group with the given name and
// tags are targets: the group is listed, or its tags include every one of
// Tags (with the same value).
func (t WindowTargets) Matches(group string, tags map[string]string) bool {
	if slices.Contains(t.Groups, group) {
		return true
	}
	if len(t.Tags) == 0 {
		return false
	}
	for k, want := range t.Tags {
		if got, ok := tags[k]; !ok || got != want {
			return false
		}
	}
	return true
}

// WindowTask runs one document on every target of a window.
type WindowTask struct {
	// Document is the name of the document (runbook) to run. Required;
	// whether it exists is checked when the window runs.
	Document string `yaml:"document"`
	// Parameters are passed to the document. In values, {{ TARGET_ID }}
	// and {{ TARGET_GROUP }} (also written without the spaces) stand for
	// the target instance's id and group. Default none.
	Parameters map[string]string `yaml:"parameters"`
	// Priority orders the tasks of a window: lower runs first, equal ones
	// in the order written. 0 or more. Default 1; a pointer because 0 is a
	// priority. Never nil after Validate; see PriorityValue.
	Priority *int `yaml:"priority"`
	// MaxConcurrency is how many targets the task runs on at once: a count
	// ("2") or a percentage of the targets ("25%", rounded up), at least 1
	// either way. Default "1".
	MaxConcurrency string `yaml:"max_concurrency"`
	// MaxErrors is how many targets may fail before the window stops
	// starting the task on more targets (and runs no later task): a count
	// ("0") or a percentage of the targets ("10%", rounded up). Default
	// "0": the first failure stops the window.
	MaxErrors string `yaml:"max_errors"`
}

// PriorityValue returns Priority after defaults.
func (t WindowTask) PriorityValue() int {
	if t.Priority == nil {
		return DefaultPriority
	}
	return *t.Priority
}

// ScheduledAction sets a group's capacity on a schedule (an Auto Scaling
// scheduled action): stop a dev environment at night, start it in the
// morning.
type ScheduledAction struct {
	// Name identifies the action, like a group name. Required, unique
	// among scheduled actions.
	Name string `yaml:"name"`
	// Group is the name of the group whose capacity is set. Required.
	Group string `yaml:"group"`
	// Schedule is when the action runs, as MaintenanceWindow.Schedule.
	// Required.
	Schedule string `yaml:"schedule"`
	// TimeZone is the IANA zone Schedule is read in. Default UTC.
	TimeZone string `yaml:"time_zone"`
	// Min, Max and Desired are the capacities to set; a nil one is left
	// as it is. At least one is required; pointers because 0 is a
	// capacity.
	Min     *int `yaml:"min"`
	Max     *int `yaml:"max"`
	Desired *int `yaml:"desired"`
}

// Metrics sizes the in-memory store of metric datapoints (CloudWatch
// metrics): what is kept, for how long, and how finely.
type Metrics struct {
	// Resolution is the width of the store's time buckets: datapoints are
	// aggregated per resolution interval, and an alarm's period is a
	// multiple of it. A whole number of seconds, at least 1s. Default 10s.
	Resolution Duration `yaml:"resolution"`
	// Retention is how long datapoints are kept; at least Resolution and
	// at most 10,000 resolution intervals, and at least every alarm's
	// period × evaluation_periods. Default 3h.
	Retention Duration `yaml:"retention"`
	// MaxSeries caps the number of series (a namespace, a metric name and
	// a set of dimensions); a datum for a new series past it is refused.
	// At least 1. Default 10000.
	MaxSeries int `yaml:"max_series"`
}

// Buckets returns how many resolution intervals a series keeps.
func (m Metrics) Buckets() int {
	if m.Resolution <= 0 {
		return 0
	}
	return int(m.Retention / m.Resolution)
}

// Channel types.
const (
	ChannelWebhook   = "webhook"
	ChannelSlack     = "slack"
	ChannelPagerDuty = "pagerduty"
)

// Channel is a destination for notifications and escalations (an SNS
// topic with one subscription).
type Channel struct {
	// Name identifies the channel in actions and escalations, like a group
	// name. Required, unique among channels.
	Name string `yaml:"name"`
	// Type is webhook (a JSON POST, signed with Secret), slack (a Slack
	// incoming webhook) or pagerduty (PagerDuty Events API v2: trigger and
	// resolve with a dedup key). Required.
	Type string `yaml:"type"`
	// URL receives the POST: an http or https URL. Required for webhook
	// and slack (or URLEnv); for pagerduty it defaults to
	// DefaultPagerDutyURL (set it for PagerDuty's EU service region).
	URL string `yaml:"url"`
	// URLEnv names an environment variable of autoheal's that holds the
	// URL instead, for URLs that are themselves secrets (a Slack webhook
	// URL is). It must be set when the config is validated. Not with URL.
	URLEnv string `yaml:"url_env"`
	// Secret is the HMAC-SHA256 key a webhook body is signed with
	// (webhook only). Default none: the body is sent unsigned.
	Secret string `yaml:"secret"`
	// SecretEnv names an environment variable that holds Secret instead,
	// set when the config is validated. Not with Secret.
	SecretEnv string `yaml:"secret_env"`
	// RoutingKey is the PagerDuty integration (routing) key. Required for
	// pagerduty (or RoutingKeyEnv); pagerduty only.
	RoutingKey string `yaml:"routing_key"`
	// RoutingKeyEnv names an environment variable that holds RoutingKey
	// instead, set when the config is validated. Not with RoutingKey.
	RoutingKeyEnv string `yaml:"routing_key_env"`
	// Timeout bounds one delivery attempt. Default 5s.
	Timeout Duration `yaml:"timeout"`
	// MaxAttempts is how many times a message is tried, with backoff,
	// before its delivery is marked failed; 1 to 100. Default 10.
	MaxAttempts int `yaml:"max_attempts"`
}

// URLValue returns the URL, read from URLEnv when that is set.
func (c Channel) URLValue() string { return valueOrEnv(c.URL, c.URLEnv) }

// SecretValue returns the webhook signing key, read from SecretEnv when
// that is set; "" means unsigned.
func (c Channel) SecretValue() string { return valueOrEnv(c.Secret, c.SecretEnv) }

// RoutingKeyValue returns the PagerDuty routing key, read from
// RoutingKeyEnv when that is set.
func (c Channel) RoutingKeyValue() string { return valueOrEnv(c.RoutingKey, c.RoutingKeyEnv) }

// valueOrEnv reads a value given in the file or through the environment.
// The environment is read when asked, not kept in the Config, so that a
// Config printed or compared never holds the secret.
func valueOrEnv(value, env string) string {
	if env != "" {
		return os.Getenv(env)
	}
	return value
}

// Channel returns the channel with the given name.
func (c *Config) Channel(name string) (*Channel, bool) {
	for i := range c.Channels {
		if c.Channels[i].Name == name {
			return &c.Channels[i], true
		}
	}
	return nil, false
}

// Alarm comparison operators, as CloudWatch names them.
const (
	GreaterThanOrEqualToThreshold = "GreaterThanOrEqualToThreshold"
	GreaterThanThreshold          = "GreaterThanThreshold"
	LessThanThreshold             = "LessThanThreshold"
	LessThanOrEqualToThreshold    = "LessThanOrEqualToThreshold"
)

// How an alarm treats missing datapoints, as CloudWatch names it.
const (
	TreatMissing      = "missing"
	TreatBreaching    = "breaching"
	TreatNotBreaching = "notBreaching"
	TreatIgnore       = "ignore"
)

// Statistics, as CloudWatch names them; a percentile is written pNN,
// like p99 or p99.9 (see Percentile).
const (
	StatAverage     = "Average"
	StatSum         = "Sum"
	StatMinimum     = "Minimum"
	StatMaximum     = "Maximum"
	StatSampleCount = "SampleCount"
)

// DimensionAny as a dimension's value makes an alarm track one state per
// distinct value of that dimension among the series that match the rest.
const DimensionAny = "*"

// DimensionInstanceID is the dimension that names an instance, as in
// CloudWatch's EC2 metrics: restart, replace and remediate act on the
// instance it names.
const DimensionInstanceID = "InstanceId"

// Alarm watches one statistic of one metric over fixed periods and moves
// between OK, ALARM and INSUFFICIENT_DATA (a CloudWatch metric alarm).
type Alarm struct {
	// Name identifies the alarm, like a group name. Required, unique among
	// alarms.
	Name string `yaml:"name"`
	// Description is free text, shown with the alarm and in its
	// notifications. Default "".
	Description string `yaml:"description"`
	// Namespace of the metric, like "CustomNamespace" or "Autoheal/LB":
	// letters, digits and . - _ / # : or space, at most 255 characters.
	// Required.
	Namespace string `yaml:"namespace"`
	// Metric is the metric name, like "webapp-uptime": at most 255
	// printable characters. Required.
	Metric string `yaml:"metric"`
	// Dimensions select the series: every one must match. A value of "*"
	// (DimensionAny) matches any value and gives the alarm one state per
	// distinct value, as for InstanceId: "*" (one state per instance).
	// At most 30. Default none: the series without dimensions.
	Dimensions map[string]string `yaml:"dimensions"`
	// Statistic aggregates the datapoints of a period: Average, Sum,
	// Minimum, Maximum, SampleCount, or a percentile pNN (p0 to p100, up
	// to two decimals, like p99 or p99.9). Required.
	Statistic string `yaml:"statistic"`
	// Period is the length of each datapoint the alarm evaluates; a
	// multiple of metrics.resolution. Required.
	Period Duration `yaml:"period"`
	// EvaluationPeriods is N, how many of the most recent periods are
	// evaluated; 1 to 100. Default 1.
	EvaluationPeriods int `yaml:"evaluation_periods"`
	// DatapointsToAlarm is M, how many of those N must breach for ALARM;
	// 1 to EvaluationPeriods. Default: EvaluationPeriods.
	DatapointsToAlarm int `yaml:"datapoints_to_alarm"`
	// Comparison is GreaterThanOrEqualToThreshold, GreaterThanThreshold,
	// LessThanThreshold or LessThanOrEqualToThreshold: a datapoint
	// breaches when "statistic <comparison> threshold". Required.
	Comparison string `yaml:"comparison"`
	// Threshold is compared with each datapoint. Required; a pointer
	// because 0 is a threshold. See ThresholdValue.
	Threshold *float64 `yaml:"threshold"`
	// TreatMissingData is missing, breaching, notBreaching or ignore, as in
	// CloudWatch. Default missing.
	TreatMissingData string `yaml:"treat_missing_data"`
	// Actions run when the alarm enters each state. Default none.
	Actions AlarmActions `yaml:"actions"`
}

// ThresholdValue returns Threshold, 0 when it is nil (which validation
// refuses).
func (a Alarm) ThresholdValue() float64 {
	if a.Threshold == nil {
		return 0
	}
	return *a.Threshold
}

// Percentile returns the percentile a pNN statistic names (99.9 for
// "p99.9"), and false for the other statistics and for a malformed one.
func Percentile(stat string) (float64, bool) {
	if !percentileStat.MatchString(stat) {
		return 0, false
	}
	p, err := strconv.ParseFloat(stat[1:], 64)
	if err != nil || p > 100 {
		return 0, false
	}
	return p, true
}

// percentileStat is the syntax of a percentile statistic: p0 to p100 with
// at most two decimals.
var percentileStat = regexp.MustCompile(`^p(100(\.0{1,2})?|[0-9]{1,2}(\.[0-9]{1,2})?)$`)

// AlarmActions are the actions run when an alarm enters each state.
type AlarmActions struct {
	// Alarm actions run when the alarm enters ALARM.
	Alarm []Action `yaml:"alarm"`
	// OK actions run when it enters OK: notify only.
	OK []Action `yaml:"ok"`
	// InsufficientData actions run when it enters INSUFFICIENT_DATA.
	InsufficientData []Action `yaml:"insufficient_data"`
}

// Action is one action of an alarm: exactly one of its fields is set.
type Action struct {
	// Notify names a channel that is sent the state change.
	Notify string `yaml:"notify"`
	// Remediate runs a runbook on the instances the alarm's dimensions
	// name and checks that the alarm returns to OK, retrying and then
	// escalating. "remediate: {}" takes every default.
	Remediate *Remediate `yaml:"remediate"`
	// Restart restarts in place the instance the alarm's InstanceId
	// dimension names; the only value is "instance".
	Restart string `yaml:"restart"`
	// Replace replaces that instance; the only value is "instance".
	Replace string `yaml:"replace"`
}

// The value of restart and replace actions: the instance the alarm's
// InstanceId dimension names.
const ActionTargetInstance = "instance"

// Remediate runs a runbook when an alarm fires, waits for the alarm to
// return to OK, retries, and escalates when it does not.
type Remediate struct {
	// Runbook is the name of the document to run. Default: the convention
	// "<metric>#<namespace>", like "webapp-uptime#CustomNamespace".
	// Whether it exists is checked when the alarm fires: a missing
	// runbook escalates at once.
	Runbook string `yaml:"runbook"`
	// MaxAttempts is how many times the runbook is run before escalating;
	// 1 to 10. Default 3.
	MaxAttempts int `yaml:"max_attempts"`
	// VerifyTimeout is how long, after each run, the alarm has to return
	// to OK before the attempt counts as failed. Default 2m.
	VerifyTimeout Duration `yaml:"verify_timeout"`
	// RetryPause is the wait between a failed attempt and the next.
	// Default 30s.
	RetryPause Duration `yaml:"retry_pause"`
	// Escalate names the channels told, with the incident record, when
	// every attempt failed or there is no runbook. Default none (the
	// incident is only recorded).
	Escalate []string `yaml:"escalate"`
	// Parameters are passed to the runbook. In values, {{ TARGET_ID }} and
	// {{ TARGET_GROUP }} stand for the target instance's id and group, as
	// in maintenance window tasks. Default none.
	Parameters map[string]string `yaml:"parameters"`
}

// Alertmanager configures the receiver of Prometheus Alertmanager's
// webhook (POST /v1/alertmanager): each firing alert is matched against
// Routes in order, and the first that matches says which runbook to run
// on which instance.
type Alertmanager struct {
	// Routes are tried in order; the first whose match an alert satisfies
	// handles it. Default none.
	Routes []AlertRoute `yaml:"routes"`
	// DefaultEscalate names the channels an alert that no route matches is
	// escalated to, and those of routes that name none. Default none.
	DefaultEscalate []string `yaml:"default_escalate"`
}

// AlertRoute maps the alerts whose labels match to a runbook.
type AlertRoute struct {
	// Match is a set of label names and values; an alert matches when it
	// has every one of these labels with exactly that value. At least one.
	Match map[string]string `yaml:"match"`
	// Runbook is the name of the document to run. Required; whether it
	// exists is checked when an alert arrives.
	Runbook string `yaml:"runbook"`
	// TargetLabel is the label whose value is the id of the instance the
	// runbook runs on. Default "instance_id".
	TargetLabel string `yaml:"target_label"`
	// Escalate names the channels told when the runbook fails, does not
	// exist, or the alert names no instance. Default: DefaultEscalate.
	Escalate []string `yaml:"escalate"`
}

// Auth configures who may call the API. Tokens are never written in clear:
// the file holds the SHA-256 of each (see `autoheal token new`).
type Auth struct {
	// Tokens are the accepted bearer tokens. Default none (the API is open,
	// loopback only).
	Tokens []Token `yaml:"tokens"`
}

// API configures the HTTP API beyond its credentials.
type API struct {
	// Hosts are the names clients reach the API by, as sent in Host
	// ("autoheal.example.com"; a port is ignored). Requests whose Host is
	// none of these, an IP address, localhost or the listen address's name
	// are refused (421), so that a web page on a name pointed at this host
	// (DNS rebinding) reads nothing. Default none.
	Hosts []string `yaml:"hosts"`
}

// InstanceRoles are the roles a group may grant its instances
// (groups[].api_role).
var InstanceRoles = []string{RoleViewer, RoleOperator}

// Token roles, from least to most privileged; each may do what the ones
// before it may.
const (
	// RoleViewer may read: GET and HEAD on every endpoint.
	RoleViewer = "viewer"
	// RoleOperator may also change state: POST, PUT and DELETE (scale,
	// terminate, run documents, push metrics, the Alertmanager webhook).
	RoleOperator = "operator"
	// RoleAdmin may do everything, including future admin endpoints.
	RoleAdmin = "admin"
)

// Roles are the valid token roles, from least to most privileged.
var Roles = []string{RoleViewer, RoleOperator, RoleAdmin}

// Token is one accepted API token, known by the SHA-256 of its text.
type Token struct {
	// Name identifies the token in audit events: [a-z0-9][a-z0-9_-]*, at
	// most 63 characters, unique. Required.
	Name string `yaml:"name"`
	// Role is viewer, operator or admin. Required.
	Role string `yaml:"role"`
	// SHA256 is the hex SHA-256 of the token (64 hex digits), as printed
	// by `autoheal token new` and `autoheal token hash`. Required.
	SHA256 string `yaml:"sha256"`
}
