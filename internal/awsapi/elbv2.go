package awsapi

import (
	"cmp"
	"errors"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/autoheal/autoheal/internal/api"
	"github.com/autoheal/autoheal/internal/awsid"
	"github.com/autoheal/autoheal/internal/config"
	"github.com/autoheal/autoheal/internal/lb"
)

// ELBv2's actions over the load balancer's target groups
// (docs/design.md §14), with the same meaning as the runbooks' Service:
// elbv2 calls (internal/runbook/aws.go) and the REST API's
// /v1/target-groups: a target's state is the load balancer's, named as
// ELBv2 names it (awsid.TargetHealthOf); a target asked about that is not
// in the target group is unused, Target.NotRegistered.
var elbv2Actions = map[string]action{
	"DescribeTargetGroups": {need: config.RoleViewer, run: (*Handler).elbDescribeTargetGroups},
	"DescribeTargetHealth": {need: config.RoleViewer, run: (*Handler).elbDescribeTargetHealth},
	"RegisterTargets":      {need: config.RoleOperator, run: (*Handler).elbRegisterTargets},
	"DeregisterTargets":    {need: config.RoleOperator, run: (*Handler).elbDeregisterTargets},
}

// loadBalancerConfigs is what the balancer may tell besides its targets'
// health: the configuration of its load balancers, for DescribeTargetGroups'
// health check settings and load balancer ARNs. Without it (api.Balancer
// does not promise it) those fields are left out.
type loadBalancerConfigs interface {
	LoadBalancers() []config.LoadBalancer
}

// elbTargetGroupConfig returns a target group's configuration and the load
// balancers whose listeners route to it, when the balancer tells them.
func (h *Handler) elbTargetGroupConfig(name string) (tg config.TargetGroup, lbs []string, ok bool) {
	src, has := h.deps.Balancer.(loadBalancerConfigs)
	if !has {
		return tg, nil, false
	}
	for _, l := range src.LoadBalancers() {
		for _, c := range l.TargetGroups {
			if c.Name != name {
				continue
			}
			tg, ok = c, true
			routes := false
			for _, ln := range l.Listeners {
				routes = routes || ln.TargetGroup == name
			}
			if routes {
				lbs = append(lbs, l.Name)
			}
		}
	}
	return tg, lbs, ok
}

// elbTargetGroup finds a target group by ARN (or name, as the runbooks
// accept).
func (h *Handler) elbTargetGroup(arnOrName string) (api.TargetGroup, string, error) {
	if arnOrName == "" {
		return nil, "", invalid("ValidationError", "TargetGroupArn is required")
	}
	name, err := awsid.TargetGroupName(arnOrName)
	if err != nil {
		return nil, "", invalid("ValidationError", "TargetGroupArn: %v", err)
	}
	if h.deps.Balancer == nil {
		return nil, "", invalid("TargetGroupNotFound", "target group '%s' not found: no load balancers are configured", arnOrName)
	}
	tg, err := h.deps.Balancer.TargetGroup(name)
	if err != nil {
		return nil, "", invalid("TargetGroupNotFound", "target group '%s' not found", arnOrName)
	}
	return tg, name, nil
}

type elbMatcher struct {
	HTTPCode string `xml:"HttpCode"`
}

type elbTargetGroupXML struct {
	TargetGroupArn             string
	TargetGroupName            string
	Protocol                   string
	Port                       int    `xml:",omitempty"`
	HealthCheckProtocol        string `xml:",omitempty"`
	HealthCheckPort            string
	HealthCheckEnabled         bool
	HealthCheckIntervalSeconds int    `xml:",omitempty"`
	HealthCheckTimeoutSeconds  int    `xml:",omitempty"`
	HealthyThresholdCount      int    `xml:",omitempty"`
	UnhealthyThresholdCount    int    `xml:",omitempty"`
	HealthCheckPath            string `xml:",omitempty"`
	Matcher                    *elbMatcher
	LoadBalancerArns           queryList[string]
	TargetType                 string
	ProtocolVersion            string `xml:",omitempty"`
	IPAddressType              string `xml:"IpAddressType"`
}

type describeTargetGroupsResult struct {
	TargetGroups queryList[elbTargetGroupXML]
}

// elbProtocol is ELBv2's name of a protocol: HTTP, TCP.
func elbProtocol(p string) string { return strings.ToUpper(p) }

// elbSeconds is a duration in whole seconds, at least 1 when it is not 0.
func elbSeconds(d config.Duration) int {
	if d <= 0 {
		return 0
	}
	return max(1, int(d.D().Seconds()+0.5))
}

// elbTargetGroupOf is a target group as DescribeTargetGroups shows it.
func (h *Handler) elbTargetGroupOf(health lb.Health) elbTargetGroupXML {
	out := elbTargetGroupXML{
		TargetGroupArn: awsid.TargetGroupARN(health.Name), TargetGroupName: health.Name,
		Protocol: elbProtocol(health.Protocol), HealthCheckPort: "traffic-port", HealthCheckEnabled: true,
		TargetType: "instance", IPAddressType: "ipv4",
	}
	if out.Protocol == "HTTP" {
		out.ProtocolVersion = "HTTP1"
	}
	// The targets' port: a fixed member port, else the first target's
	// (instances' ports are their own).
	for _, t := range health.Targets {
		if _, p, err := net.SplitHostPort(t.Address); err == nil {
			out.Port, _ = strconv.Atoi(p)
			break
		}
	}
	cfg, lbs, ok := h.elbTargetGroupConfig(health.Name)
	if !ok {
		return out
	}
	for _, m := range cfg.Groups {
		if n, isNum := m.PortNumber(); isNum {
			out.Port = n
			break
		}
	}
	hc := cfg.HealthCheck
	out.HealthCheckProtocol = elbProtocol(cmp.Or(hc.Protocol, cfg.Protocol))
	out.HealthCheckIntervalSeconds = elbSeconds(hc.Interval)
	out.HealthCheckTimeoutSeconds = elbSeconds(hc.Timeout)
	out.HealthyThresholdCount, out.UnhealthyThresholdCount = hc.HealthyThreshold, hc.UnhealthyThreshold
	if out.HealthCheckProtocol == "HTTP" {
		out.HealthCheckPath = cmp.Or(hc.Path, "/")
		out.Matcher = &elbMatcher{HTTPCode: cmp.Or(hc.Matcher, "200-399")}
	}
	for _, l := range lbs {
		out.LoadBalancerArns.Member = append(out.LoadBalancerArns.Member, awsid.LoadBalancerARN(l))
	}
	return out
}

func (h *Handler) elbDescribeTargetGroups(c *call) (any, error) {
	arns, names := list(c.params, "TargetGroupArns.member"), list(c.params, "Names.member")
	lbArn := c.params.Get("LoadBalancerArn")
	if n := elbCount(len(arns) > 0) + elbCount(len(names) > 0) + elbCount(lbArn != ""); n > 1 {
		return nil, invalid("ValidationError", "give at most one of TargetGroupArns, Names and LoadBalancerArn")
	}
	var all []lb.Health
	if h.deps.Balancer != nil {
		all = h.deps.Balancer.TargetGroups()
	}
	res := &describeTargetGroupsResult{TargetGroups: queryList[elbTargetGroupXML]{Member: []elbTargetGroupXML{}}}
	byName := func(name string) (lb.Health, bool) {
		i := slices.IndexFunc(all, func(h lb.Health) bool { return h.Name == name })
		if i < 0 {
			return lb.Health{}, false
		}
		return all[i], true
	}
	switch {
	case len(arns) > 0 || len(names) > 0:
		for _, a := range append(arns, names...) {
			name, err := awsid.TargetGroupName(a)
			if err != nil {
				return nil, invalid("ValidationError", "%v", err)
			}
			hl, ok := byName(name)
			if !ok {
				return nil, invalid("TargetGroupNotFound", "one or more target groups not found: '%s'", a)
			}
			res.TargetGroups.Member = append(res.TargetGroups.Member, h.elbTargetGroupOf(hl))
		}
	case lbArn != "":
		if _, ok := h.deps.Balancer.(loadBalancerConfigs); !ok {
			return nil, invalid("ValidationError", "LoadBalancerArn: this controller cannot tell which load balancer routes to which target group; give TargetGroupArns or Names")
		}
		found := false
		for _, hl := range all {
			tg := h.elbTargetGroupOf(hl)
			if slices.Contains(tg.LoadBalancerArns.Member, lbArn) {
				found = true
				res.TargetGroups.Member = append(res.TargetGroups.Member, tg)
			}
		}
		if !found && !h.elbLoadBalancerExists(lbArn) {
			return nil, invalid("LoadBalancerNotFound", "load balancer '%s' not found", lbArn)
		}
	default:
		for _, hl := range all {
			res.TargetGroups.Member = append(res.TargetGroups.Member, h.elbTargetGroupOf(hl))
		}
	}
	return res, nil
}

func (h *Handler) elbLoadBalancerExists(arn string) bool {
	src, ok := h.deps.Balancer.(loadBalancerConfigs)
	if !ok {
		return false
	}
	for _, l := range src.LoadBalancers() {
		if awsid.LoadBalancerARN(l.Name) == arn {
			return true
		}
	}
	return false
}

func elbCount(b bool) int {
	if b {
		return 1
	}
	return 0
}

// elbTargetRef is one target of a request's Targets.member.N.
type elbTargetRef struct {
	ID   string
	Port int // 0: not given
}

// elbTargets reads Targets.member.N.Id and .Port.
func elbTargets(p url.Values, required bool) ([]elbTargetRef, error) {
	var out []elbTargetRef
	for i, m := range members(p, "Targets.member") {
		t := elbTargetRef{ID: m.Get("Id")}
		if t.ID == "" {
			return nil, invalid("ValidationError", "Targets.member.%d.Id is required", i+1)
		}
		if s := m.Get("Port"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 || n > 65535 {
				return nil, invalid("ValidationError", "Targets.member.%d.Port %q: give a port from 1 to 65535", i+1, s)
			}
			t.Port = n
		}
		out = append(out, t)
	}
	if required && len(out) == 0 {
		return nil, invalid("ValidationError", "Targets is required: give at least one target (Id=...)")
	}
	return out, nil
}

func (t elbTargetRef) String() string {
	if t.Port != 0 {
		return "Id=" + t.ID + ",Port=" + strconv.Itoa(t.Port)
	}
	return "Id=" + t.ID
}

// elbTargetID is a target as ELBv2 names it: an instance by its id and
// the port of its address; a target added by address (an IP target) by
// the address's host and port.
func elbTargetID(t lb.TargetHealth) (id string, port int) {
	host, p, err := net.SplitHostPort(t.Address)
	if err == nil {
		port, _ = strconv.Atoi(p)
	}
	if t.ID == t.Address && err == nil {
		return host, port
	}
	return t.ID, port
}

// elbFind returns the index of the target that ref names, or -1.
func elbFind(ts []lb.TargetHealth, ref elbTargetRef) int {
	return slices.IndexFunc(ts, func(t lb.TargetHealth) bool {
		id, port := elbTargetID(t)
		return (id == ref.ID || t.ID == ref.ID) && (ref.Port == 0 || ref.Port == port)
	})
}

type elbTarget struct {
	ID   string `xml:"Id"`
	Port int    `xml:",omitempty"`
}

type elbTargetHealth struct {
	State       string
	Reason      string `xml:",omitempty"`
	Description string `xml:",omitempty"`
}

type elbTargetHealthDescription struct {
	Target          elbTarget
	HealthCheckPort string `xml:",omitempty"`
	TargetHealth    elbTargetHealth
}

type describeTargetHealthResult struct {
	TargetHealthDescriptions queryList[elbTargetHealthDescription]
}

// elbDescribe is a target's health as DescribeTargetHealth shows it.
func elbDescribe(t lb.TargetHealth) elbTargetHealthDescription {
	id, port := elbTargetID(t)
	th := awsid.TargetHealthOf(t.State, t.Reason)
	d := elbTargetHealthDescription{Target: elbTarget{ID: id, Port: port},
		TargetHealth: elbTargetHealth{State: th.State, Reason: th.Reason, Description: th.Description}}
	if port != 0 {
		d.HealthCheckPort = strconv.Itoa(port)
	}
	return d
}

// elbNotRegistered describes a target asked about that the target group
// does not have.
func elbNotRegistered(ref elbTargetRef) elbTargetHealthDescription {
	th := awsid.TargetNotRegistered()
	return elbTargetHealthDescription{Target: elbTarget(ref),
		TargetHealth: elbTargetHealth{State: th.State, Reason: th.Reason, Description: th.Description}}
}

func (h *Handler) elbDescribeTargetHealth(c *call) (any, error) {
	tg, _, err := h.elbTargetGroup(c.params.Get("TargetGroupArn"))
	if err != nil {
		return nil, err
	}
	refs, err := elbTargets(c.params, false)
	if err != nil {
		return nil, err
	}
	ts := tg.Health().Targets
	res := &describeTargetHealthResult{TargetHealthDescriptions: queryList[elbTargetHealthDescription]{Member: []elbTargetHealthDescription{}}}
	if len(refs) == 0 {
		for _, t := range ts {
			res.TargetHealthDescriptions.Member = append(res.TargetHealthDescriptions.Member, elbDescribe(t))
		}
		return res, nil
	}
	for _, ref := range refs {
		d := elbNotRegistered(ref)
		if i := elbFind(ts, ref); i >= 0 {
			d = elbDescribe(ts[i])
		}
		res.TargetHealthDescriptions.Member = append(res.TargetHealthDescriptions.Member, d)
	}
	return res, nil
}

// elbEmpty is the empty result of RegisterTargets and DeregisterTargets.
type elbEmpty struct{}

// elbRegistration is what RegisterTargets does for one target: id and
// addr as lb.TargetGroup.Register takes them.
type elbRegistration struct {
	id, addr string
}

func (h *Handler) elbRegisterTargets(c *call) (any, error) {
	tg, name, err := h.elbTargetGroup(c.params.Get("TargetGroupArn"))
	if err != nil {
		return nil, err
	}
	refs, err := elbTargets(c.params, true)
	if err != nil {
		return nil, err
	}
	// Every target is checked before any is registered.
	ts := tg.Health().Targets
	var regs []elbRegistration
	var bad []string
	for _, ref := range refs {
		switch i := elbFind(ts, ref); {
		case i >= 0:
			// A target the group has (an instance of its groups, or one
			// taken out): back in with its address.
			regs = append(regs, elbRegistration{id: ts[i].ID})
		case slices.ContainsFunc(ts, func(t lb.TargetHealth) bool { return t.ID == ref.ID }):
			// The load balancer keeps one target per instance.
			return nil, invalid("InvalidTarget", "target %s: instance %s is already a target of %s on another port; deregister it first, or register it without Port", ref, ref.ID, name)
		case net.ParseIP(ref.ID) != nil && ref.Port != 0:
			// An IP target: the address is its id, as in the config's
			// static targets.
			addr := net.JoinHostPort(ref.ID, strconv.Itoa(ref.Port))
			regs = append(regs, elbRegistration{addr: addr})
		case ref.Port != 0 && h.elbLiveInstance(ref.ID):
			// Another instance, on the port given.
			g, _ := h.groupOf(ref.ID)
			regs = append(regs, elbRegistration{id: ref.ID, addr: net.JoinHostPort(instanceIP(g, ref.ID), strconv.Itoa(ref.Port))})
		default:
			bad = append(bad, ref.String())
		}
	}
	if len(bad) > 0 {
		return nil, invalid("InvalidTarget", "the following targets are not valid for target group %s: %s: give an instance it serves (or served), an instance id with a Port, or an IP address with a Port", name, strings.Join(bad, "; "))
	}
	for _, r := range regs {
		if err := tg.Register(r.id, r.addr, 0); err != nil {
			return nil, elbError(err)
		}
	}
	return &elbEmpty{}, nil
}

// elbLiveInstance reports whether id is a live instance of a group.
func (h *Handler) elbLiveInstance(id string) bool {
	_, ok := h.groupOf(id)
	return ok
}

func (h *Handler) elbDeregisterTargets(c *call) (any, error) {
	tg, name, err := h.elbTargetGroup(c.params.Get("TargetGroupArn"))
	if err != nil {
		return nil, err
	}
	refs, err := elbTargets(c.params, true)
	if err != nil {
		return nil, err
	}
	ts := tg.Health().Targets
	var ids, bad []string
	for _, ref := range refs {
		if i := elbFind(ts, ref); i >= 0 {
			ids = append(ids, ts[i].ID)
		} else {
			bad = append(bad, ref.String())
		}
	}
	if len(bad) > 0 {
		return nil, invalid("InvalidTarget", "the following targets are not registered to target group %s: %s", name, strings.Join(bad, "; "))
	}
	// Draining starts now; the call does not wait for it (the target is
	// draining, then unused).
	for _, id := range ids {
		if _, err := tg.Deregister(id); err != nil {
			return nil, elbError(err)
		}
	}
	return &elbEmpty{}, nil
}

// elbError maps the load balancer's errors to ELBv2's.
func elbError(err error) error {
	if errors.Is(err, lb.ErrNotFound) {
		return invalid("InvalidTarget", "%v", err)
	}
	return invalid("ValidationError", "%v", err)
}
