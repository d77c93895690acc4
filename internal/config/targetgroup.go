package config

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Target groups: the pools a load balancer's listeners forward to, their
// members (groups and static targets) and their health checks.

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

// Target group defaults.
const (
	DefaultProtocol            = ProtocolHTTP
	DefaultAlgorithm           = AlgorithmRoundRobin
	DefaultDeregistrationDelay = Duration(30 * time.Second)
	DefaultHoldTimeout         = Duration(10 * time.Second)
	DefaultRetries             = 2
	DefaultConnectTimeout      = Duration(2 * time.Second)
	DefaultResponseTimeout     = Duration(60 * time.Second) // http only
	DefaultWeight              = 1

	// Target health checks. Interval, timeout and path are those of group
	// health checks (DefaultInterval, DefaultMaxTimeout, DefaultPath); the
	// thresholds are ELB's, not the group checks'.
	DefaultMatcher                  = "200-399" // http only
	DefaultTargetHealthyThreshold   = 2
	DefaultTargetUnhealthyThreshold = 2
)

// setDefaults fills the target group's defaults, its members' and its
// health check's; onlyPort maps each group to its only named port ("" for
// none or several).
func (tg *TargetGroup) setDefaults(onlyPort map[string]string) {
	tg.Protocol = cmp.Or(tg.Protocol, DefaultProtocol)
	tg.Algorithm = cmp.Or(tg.Algorithm, DefaultAlgorithm)
	tg.DeregistrationDelay = cmp.Or(tg.DeregistrationDelay, DefaultDeregistrationDelay)
	tg.HoldTimeout = cmp.Or(tg.HoldTimeout, DefaultHoldTimeout)
	// A pointer because 0 is meaningful: never retry.
	if tg.Retries == nil {
		tg.Retries = ptr(DefaultRetries)
	}
	tg.ConnectTimeout = cmp.Or(tg.ConnectTimeout, DefaultConnectTimeout)
	if tg.Protocol == ProtocolHTTP {
		tg.ResponseTimeout = cmp.Or(tg.ResponseTimeout, DefaultResponseTimeout)
	}

	for mi := range tg.Groups {
		m := &tg.Groups[mi]
		m.Weight = cmp.Or(m.Weight, DefaultWeight)
		// A group with one named port leaves no choice; with none or
		// several, validate asks for the port.
		m.Port = cmp.Or(m.Port, onlyPort[m.Group])
	}
	for ti := range tg.Targets {
		t := &tg.Targets[ti]
		t.Weight = cmp.Or(t.Weight, DefaultWeight)
		t.ID = cmp.Or(t.ID, t.Address)
	}
	tg.HealthCheck.setDefaults(tg.Protocol)
}

// setDefaults fills the health check's defaults; protocol is its target
// group's.
func (h *TargetHealthCheck) setDefaults(protocol string) {
	// An unknown target group protocol is reported once, on the target
	// group; copying it would report it again here.
	if h.Protocol == "" && (protocol == ProtocolHTTP || protocol == ProtocolTCP) {
		h.Protocol = protocol
	}
	h.Interval = cmp.Or(h.Interval, DefaultInterval)
	h.Timeout = cmp.Or(h.Timeout, min(h.Interval, DefaultMaxTimeout))
	h.HealthyThreshold = cmp.Or(h.HealthyThreshold, DefaultTargetHealthyThreshold)
	h.UnhealthyThreshold = cmp.Or(h.UnhealthyThreshold, DefaultTargetUnhealthyThreshold)
	if h.Protocol == ProtocolHTTP {
		h.Path = cmp.Or(h.Path, DefaultPath)
		h.Matcher = cmp.Or(h.Matcher, DefaultMatcher)
	}
}

var hostName = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$`)

const (
	maxWeight    = 1000
	maxRetries   = 10
	maxThreshold = 10
	// maxSlowStart is ELB's bound: a longer ramp keeps a recovered target
	// underused for longer than any warm-up needs.
	maxSlowStart = Duration(15 * time.Minute)
)

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

// memberGroup is a group as target groups see it: its port names.
type memberGroup struct {
	g     *Group
	names []string        // PortNames, in order
	ports map[string]bool // the same, for lookups
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
