package awsapi

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/autoheal/autoheal/internal/api"
	"github.com/autoheal/autoheal/internal/awsid"
	"github.com/autoheal/autoheal/internal/config"
	"github.com/autoheal/autoheal/internal/group"
	"github.com/autoheal/autoheal/internal/lb"
	"github.com/autoheal/autoheal/internal/maintenance"
	"github.com/autoheal/autoheal/internal/store"
)

// EC2 Auto Scaling's actions over autoheal's groups (docs/design.md §14):
// an instance group is an Auto Scaling group, its instances the group's
// instances in the same lifecycle states, its lifecycle hooks (scripts)
// the group's lifecycle hooks, and the journal its scaling activities.
var autoscalingActions = map[string]action{
	"DescribeAutoScalingGroups":           {need: config.RoleViewer, run: (*Handler).describeAutoScalingGroups},
	"DescribeAutoScalingInstances":        {need: config.RoleViewer, run: (*Handler).describeAutoScalingInstances},
	"DescribeScalingActivities":           {need: config.RoleViewer, run: (*Handler).describeScalingActivities},
	"SetDesiredCapacity":                  {need: config.RoleOperator, run: (*Handler).setDesiredCapacity},
	"UpdateAutoScalingGroup":              {need: config.RoleOperator, run: (*Handler).updateAutoScalingGroup},
	"SetInstanceHealth":                   {need: config.RoleOperator, run: (*Handler).setInstanceHealth},
	"TerminateInstanceInAutoScalingGroup": {need: config.RoleOperator, run: (*Handler).terminateInstanceInAutoScalingGroup},
	"CompleteLifecycleAction":             {need: config.RoleOperator, run: (*Handler).completeLifecycleAction},
	"RecordLifecycleActionHeartbeat":      {need: config.RoleOperator, run: (*Handler).recordLifecycleActionHeartbeat},
	"PutScheduledUpdateGroupAction":       {need: config.RoleOperator, run: (*Handler).putScheduledUpdateGroupAction},
}

// asgTime is how Auto Scaling writes a time.
func asgTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

type asgLaunchTemplate struct {
	LaunchTemplateID   string `xml:"LaunchTemplateId"`
	LaunchTemplateName string `xml:"LaunchTemplateName"`
	Version            string `xml:"Version"`
}

// asgLaunchTemplateOf is a group's launch template: its launch section, named
// after the group.
func asgLaunchTemplateOf(name string) *asgLaunchTemplate {
	return &asgLaunchTemplate{
		LaunchTemplateID:   awsid.LaunchTemplate(name),
		LaunchTemplateName: name, Version: "$Default",
	}
}

type asgInstance struct {
	InstanceID string `xml:"InstanceId"`
	// AutoScalingGroupName is DescribeAutoScalingInstances's only.
	AutoScalingGroupName string             `xml:"AutoScalingGroupName,omitempty"`
	InstanceType         string             `xml:"InstanceType"`
	AvailabilityZone     string             `xml:"AvailabilityZone"`
	LifecycleState       string             `xml:"LifecycleState"`
	HealthStatus         string             `xml:"HealthStatus"`
	LaunchTemplate       *asgLaunchTemplate `xml:"LaunchTemplate"`
	ProtectedFromScaleIn bool               `xml:"ProtectedFromScaleIn"`
}

type asgTag struct {
	ResourceID        string `xml:"ResourceId"`
	ResourceType      string `xml:"ResourceType"`
	Key               string `xml:"Key"`
	Value             string `xml:"Value"`
	PropagateAtLaunch bool   `xml:"PropagateAtLaunch"`
}

type asgGroup struct {
	AutoScalingGroupName             string                 `xml:"AutoScalingGroupName"`
	AutoScalingGroupARN              string                 `xml:"AutoScalingGroupARN"`
	LaunchTemplate                   *asgLaunchTemplate     `xml:"LaunchTemplate"`
	MinSize                          int                    `xml:"MinSize"`
	MaxSize                          int                    `xml:"MaxSize"`
	DesiredCapacity                  int                    `xml:"DesiredCapacity"`
	DefaultCooldown                  int                    `xml:"DefaultCooldown"`
	AvailabilityZones                queryList[string]      `xml:"AvailabilityZones"`
	LoadBalancerNames                queryList[string]      `xml:"LoadBalancerNames"`
	TargetGroupARNs                  queryList[string]      `xml:"TargetGroupARNs"`
	HealthCheckType                  string                 `xml:"HealthCheckType"`
	HealthCheckGracePeriod           int                    `xml:"HealthCheckGracePeriod"`
	Instances                        queryList[asgInstance] `xml:"Instances"`
	CreatedTime                      string                 `xml:"CreatedTime,omitempty"`
	SuspendedProcesses               queryList[string]      `xml:"SuspendedProcesses"`
	VPCZoneIdentifier                string                 `xml:"VPCZoneIdentifier"`
	EnabledMetrics                   queryList[string]      `xml:"EnabledMetrics"`
	Tags                             queryList[asgTag]      `xml:"Tags"`
	TerminationPolicies              queryList[string]      `xml:"TerminationPolicies"`
	NewInstancesProtectedFromScaleIn bool                   `xml:"NewInstancesProtectedFromScaleIn"`
	CapacityRebalance                bool                   `xml:"CapacityRebalance"`
}

type describeAutoScalingGroupsResult struct {
	AutoScalingGroups queryList[asgGroup] `xml:"AutoScalingGroups"`
	NextToken         string              `xml:"NextToken,omitempty"`
}

type describeAutoScalingInstancesResult struct {
	AutoScalingInstances queryList[asgInstance] `xml:"AutoScalingInstances"`
	NextToken            string                 `xml:"NextToken,omitempty"`
}

// asgEmpty is the empty result of an action whose response has a result
// element with nothing in it (SDKs expect the element).
type asgEmpty struct{}

type terminateInstanceResult struct {
	Activity asgActivity `xml:"Activity"`
}

// Lifecycle states and health, as Auto Scaling shows them.

// asgLifecycleState is an instance's Auto Scaling lifecycle state: autoheal's
// states are EC2 Auto Scaling's and keep their names; ok is false for an
// instance Auto Scaling no longer lists (Terminated) or a state it does not
// know.
func asgLifecycleState(state string) (string, bool) {
	switch state {
	case group.Pending, group.PendingWait, group.PendingProceed, group.InService,
		group.Terminating, group.TerminatingWait:
		return state, true
	}
	return "", false
}

// asgHealthStatus is an instance's Auto Scaling health: Unhealthy once a
// health check or the process failed (the heal policy is acting on it),
// else Healthy (a Pending instance is Healthy in Auto Scaling too).
// DescribeAutoScalingInstances writes it in capitals.
func asgHealthStatus(health string, upper bool) string {
	s := "Healthy"
	if health == "unhealthy" {
		s = "Unhealthy"
	}
	if upper {
		return strings.ToUpper(s)
	}
	return s
}

// asgInstanceOf is an instance as Auto Scaling shows it; ok false for one it
// does not list.
func asgInstanceOf(g api.Group, in store.Instance, detail bool) (asgInstance, bool) {
	state, ok := asgLifecycleState(in.State)
	if !ok {
		return asgInstance{}, false
	}
	out := asgInstance{
		InstanceID: in.ID, InstanceType: "autoheal.process", AvailabilityZone: awsid.Zone,
		LifecycleState: state, HealthStatus: asgHealthStatus(in.Health, detail),
		LaunchTemplate: asgLaunchTemplateOf(g.Name()),
	}
	if detail {
		out.AutoScalingGroupName = g.Name()
	}
	return out, true
}

// asgHealthCheckType: a group with health checks replaces instances that
// fail them, as a group with ELB health checks does; without, only a
// process that is gone counts, as EC2's status checks.
func asgHealthCheckType(cfg config.Group) string {
	if len(cfg.HealthChecks) > 0 {
		return "ELB"
	}
	return "EC2"
}

// asgTargetGroups are the target groups that take the group's instances,
// as their ARNs: from the load balancers' config (target_groups[].groups),
// or, from a balancer that does not tell it, those that have one of the
// group's instances as a target.
func (h *Handler) asgTargetGroups(name string) []string {
	out := []string{}
	if src, ok := h.deps.Balancer.(loadBalancerConfigs); ok {
		for _, l := range src.LoadBalancers() {
			for _, tg := range l.TargetGroups {
				if slices.ContainsFunc(tg.Groups, func(m config.TargetGroupMember) bool { return m.Group == name }) {
					out = append(out, awsid.TargetGroupARN(tg.Name))
				}
			}
		}
		return out
	}
	if h.deps.Balancer == nil {
		return out
	}
	for _, tg := range h.deps.Balancer.TargetGroups() {
		if slices.ContainsFunc(tg.Targets, func(t lb.TargetHealth) bool { return t.Group == name }) {
			out = append(out, awsid.TargetGroupARN(tg.Name))
		}
	}
	return out
}

// asgCreatedTime is when the group was created: its first journal event.
func (h *Handler) asgCreatedTime(ctx context.Context, name string) time.Time {
	if h.deps.Journal == nil {
		return time.Time{}
	}
	evs, err := h.deps.Journal.Events(ctx, store.EventFilter{Group: name, Limit: 1})
	if err != nil || len(evs) == 0 {
		return time.Time{}
	}
	return evs[0].Time
}

func (h *Handler) asgGroupOf(ctx context.Context, g api.Group) asgGroup {
	cfg, snap := g.Config(), g.Snapshot()
	out := asgGroup{
		AutoScalingGroupName: g.Name(), AutoScalingGroupARN: awsid.GroupARN(g.Name()),
		LaunchTemplate: asgLaunchTemplateOf(g.Name()),
		MinSize:        snap.Min, MaxSize: snap.Max, DesiredCapacity: snap.Desired,
		DefaultCooldown:     300,
		AvailabilityZones:   listOf([]string{awsid.Zone}),
		TargetGroupARNs:     listOf(h.asgTargetGroups(g.Name())),
		HealthCheckType:     asgHealthCheckType(cfg),
		CreatedTime:         asgTime(h.asgCreatedTime(ctx, g.Name())),
		TerminationPolicies: listOf([]string{"Default"}),
	}
	for _, in := range snap.Instances {
		if ai, ok := asgInstanceOf(g, in, false); ok {
			out.Instances.Member = append(out.Instances.Member, ai)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(cfg.Tags)) {
		out.Tags.Member = append(out.Tags.Member, asgTag{ResourceID: g.Name(), ResourceType: "auto-scaling-group", Key: k, Value: cfg.Tags[k], PropagateAtLaunch: true})
	}
	return out
}

// Parameters.

// asgMaxRecords is the MaxRecords parameter: def when absent, 1 to max.
func asgMaxRecords(p url.Values, def, max int) (int, error) {
	n, err := intParam(p, "MaxRecords")
	if err != nil {
		return 0, err
	}
	if n == nil {
		return def, nil
	}
	if *n < 1 || *n > max {
		return 0, invalid("ValidationError", "MaxRecords %d is out of range: it must be 1 to %d", *n, max)
	}
	return *n, nil
}

// asgPage cuts a list at NextToken (an offset, opaque to clients) and returns
// the next page's token, "" on the last page.
func asgPage[T any](p url.Values, all []T, max int) ([]T, string, error) {
	from := 0
	if tok := p.Get("NextToken"); tok != "" {
		b, err := base64.RawURLEncoding.DecodeString(tok)
		n, cerr := strconv.Atoi(strings.TrimPrefix(string(b), "offset:"))
		if err != nil || cerr != nil || !strings.HasPrefix(string(b), "offset:") || n < 0 || n > len(all) {
			return nil, "", invalid("InvalidNextToken", "NextToken %q is not one this endpoint gave", tok)
		}
		from = n
	}
	to := min(from+max, len(all))
	next := ""
	if to < len(all) {
		next = base64.RawURLEncoding.EncodeToString([]byte("offset:" + strconv.Itoa(to)))
	}
	return all[from:to], next, nil
}

// asgBool parses an optional boolean parameter.
func asgBool(p url.Values, name string) (*bool, error) {
	v := p.Get(name)
	if v == "" {
		return nil, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return nil, invalid("ValidationError", "%s %q is not a boolean (true or false)", name, v)
	}
	return &b, nil
}

// asgRequired is a parameter that must be given.
func asgRequired(p url.Values, name string) (string, error) {
	v := p.Get(name)
	if v == "" {
		return "", invalid("ValidationError", "1 validation error detected: Value null at '%s' failed to satisfy constraint: Member must not be null", asgLowerFirst(name))
	}
	return v, nil
}

func asgLowerFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}

// asgNamedGroup is the group AutoScalingGroupName names (a name or an ARN).
func (h *Handler) asgNamedGroup(p url.Values) (api.Group, error) {
	name, err := asgRequired(p, "AutoScalingGroupName")
	if err != nil {
		return nil, err
	}
	g, ok := h.groups[awsid.GroupName(name)]
	if !ok {
		return nil, invalid("ValidationError", "AutoScalingGroup name not found - AutoScalingGroup '%s' not found", name)
	}
	return g, nil
}

// asgInstanceGroup is the group of a live instance, or Auto Scaling's error
// for an instance it does not manage.
func (h *Handler) asgInstanceGroup(id string) (api.Group, error) {
	if g, ok := h.groupOf(id); ok {
		return g, nil
	}
	return nil, invalid("ValidationError", "Instance Id not found - No managed instance found for instance ID: %s", id)
}

// asgError maps a group's errors to Auto Scaling's.
func asgError(err error) error {
	var e *apiError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &e):
		return e
	case errors.Is(err, group.ErrInvalid):
		return invalid("ValidationError", "%s", strings.TrimPrefix(err.Error(), group.ErrInvalid.Error()+": "))
	case errors.Is(err, group.ErrNotFound):
		return invalid("ValidationError", "%s", err.Error())
	}
	return err
}

// Actions.

func (h *Handler) describeAutoScalingGroups(c *call) (any, error) {
	max, err := asgMaxRecords(c.params, 50, 100)
	if err != nil {
		return nil, err
	}
	names := list(c.params, "AutoScalingGroupNames.member")
	filters := members(c.params, "Filters.member")
	var all []api.Group
	for _, g := range h.sortedGroups() {
		// Unknown names are left out, not an error, as on AWS.
		if len(names) > 0 && !slices.ContainsFunc(names, func(n string) bool { return awsid.GroupName(n) == g.Name() }) {
			continue
		}
		ok, err := asgFiltersMatch(filters, g.Config())
		if err != nil {
			return nil, err
		}
		if ok {
			all = append(all, g)
		}
	}
	gs, next, err := asgPage(c.params, all, max)
	if err != nil {
		return nil, err
	}
	res := &describeAutoScalingGroupsResult{NextToken: next}
	for _, g := range gs {
		res.AutoScalingGroups.Member = append(res.AutoScalingGroups.Member, h.asgGroupOf(c.ctx, g))
	}
	return res, nil
}

// asgFiltersMatch applies DescribeAutoScalingGroups's filters: tag:KEY,
// tag-key, tag-value.
func asgFiltersMatch(filters []url.Values, cfg config.Group) (bool, error) {
	for _, f := range filters {
		name, values := f.Get("Name"), list(f, "Values.member")
		var have []string
		switch {
		case strings.HasPrefix(name, "tag:"):
			if v, ok := cfg.Tags[strings.TrimPrefix(name, "tag:")]; ok {
				have = []string{v}
			}
		case name == "tag-key":
			have = slices.Sorted(maps.Keys(cfg.Tags))
		case name == "tag-value":
			for _, k := range slices.Sorted(maps.Keys(cfg.Tags)) {
				have = append(have, cfg.Tags[k])
			}
		default:
			return false, invalid("ValidationError", "Filter name '%s' is not supported here: tag:KEY, tag-key, tag-value", name)
		}
		if !slices.ContainsFunc(values, func(v string) bool { return slices.Contains(have, v) }) {
			return false, nil
		}
	}
	return true, nil
}

func (h *Handler) describeAutoScalingInstances(c *call) (any, error) {
	max, err := asgMaxRecords(c.params, 50, 50)
	if err != nil {
		return nil, err
	}
	ids := list(c.params, "InstanceIds.member")
	var all []asgInstance
	for _, r := range h.liveInstances() {
		if len(ids) > 0 && !slices.Contains(ids, r.in.ID) {
			continue // unknown ids are left out, as on AWS
		}
		if ai, ok := asgInstanceOf(r.group, r.in, true); ok {
			all = append(all, ai)
		}
	}
	ins, next, err := asgPage(c.params, all, max)
	if err != nil {
		return nil, err
	}
	return &describeAutoScalingInstancesResult{AutoScalingInstances: listOf(ins), NextToken: next}, nil
}

func (h *Handler) setDesiredCapacity(c *call) (any, error) {
	g, err := h.asgNamedGroup(c.params)
	if err != nil {
		return nil, err
	}
	if _, err := asgRequired(c.params, "DesiredCapacity"); err != nil {
		return nil, err
	}
	desired, err := intParam(c.params, "DesiredCapacity")
	if err != nil {
		return nil, err
	}
	// HonorCooldown: autoheal has no cooldown to honour.
	if _, err := asgBool(c.params, "HonorCooldown"); err != nil {
		return nil, err
	}
	snap := g.Snapshot()
	switch {
	case *desired > snap.Max:
		return nil, invalid("ValidationError", "New SetDesiredCapacity value %d is above max value %d for the AutoScalingGroup.", *desired, snap.Max)
	case *desired < snap.Min:
		return nil, invalid("ValidationError", "New SetDesiredCapacity value %d is below min value %d for the AutoScalingGroup.", *desired, snap.Min)
	}
	_, err = g.Scale(c.ctx, nil, nil, desired)
	return nil, asgError(err)
}

// asgHarmlessUpdate says whether one of UpdateAutoScalingGroup's parameters
// other than the capacities is harmless to accept and ignore, given its
// value and the group, and if not why: a parameter autoheal has nothing to apply to
// (no scaling policies use a cooldown or a warm-up, no IAM role signs
// anything), or that asks for what the group already is. Any other one is
// refused, naming it: changing the launch template, the placement, the
// health checks or termination behaviour is the config's business, and
// accepting it would leave the caller believing it took effect.
func asgHarmlessUpdate(name string, vals []string, g api.Group) (bool, string) {
	v := ""
	if len(vals) > 0 {
		v = vals[0]
	}
	switch name {
	case "DefaultCooldown", "DefaultInstanceWarmup", "ServiceLinkedRoleARN", "Context", "HonorCooldown":
		return true, ""
	case "AvailabilityZones":
		return v == awsid.Zone, "the only availability zone is " + awsid.Zone
	case "HealthCheckType":
		want := asgHealthCheckType(g.Config())
		return v == want, "the group's health checks are its config's health_checks (" + want + ")"
	case "HealthCheckGracePeriod":
		return v == "0", "autoheal has no health check grace period (0): a health check's thresholds say when it counts"
	case "TerminationPolicies":
		return v == "Default", "the termination policy is Default"
	case "NewInstancesProtectedFromScaleIn", "CapacityRebalance":
		return v == "false", "autoheal has no scale-in protection or Spot rebalancing"
	case "MaxInstanceLifetime":
		return v == "0", "autoheal has no maximum instance lifetime"
	case "DesiredCapacityType":
		return v == "units", "capacity is counted in units (instances)"
	case "LaunchTemplate":
		return false, "the launch template is the group's launch section in the config"
	}
	return false, "autoheal has no " + name + " to change"
}

func (h *Handler) updateAutoScalingGroup(c *call) (any, error) {
	g, err := h.asgNamedGroup(c.params)
	if err != nil {
		return nil, err
	}
	var minSize, maxSize, desired *int
	for _, p := range []struct {
		name string
		v    **int
	}{{"MinSize", &minSize}, {"MaxSize", &maxSize}, {"DesiredCapacity", &desired}} {
		if *p.v, err = intParam(c.params, p.name); err != nil {
			return nil, err
		}
	}
	// The other parameters, by top-level name (LaunchTemplate.Version is
	// LaunchTemplate; AvailabilityZones.member.1 is AvailabilityZones).
	others := map[string][]string{}
	for k, vs := range c.params {
		switch k {
		case "Action", "Version", "AutoScalingGroupName", "MinSize", "MaxSize", "DesiredCapacity":
			continue
		}
		top, _, _ := strings.Cut(k, ".")
		others[top] = append(others[top], vs...)
	}
	var refused, names []string
	for n := range others {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if ok, why := asgHarmlessUpdate(n, others[n], g); !ok {
			refused = append(refused, fmt.Sprintf("%s (%s)", n, why))
		}
	}
	if len(refused) > 0 {
		return nil, invalid("ValidationError", "UpdateAutoScalingGroup can change MinSize, MaxSize and DesiredCapacity here; these parameters cannot be applied: %s", strings.Join(refused, "; "))
	}
	if minSize == nil && maxSize == nil && desired == nil {
		return nil, nil
	}
	// As on AWS: a new MinSize above the desired capacity, or MaxSize
	// below it, without a DesiredCapacity, moves the desired capacity
	// with it.
	snap := g.Snapshot()
	if desired == nil {
		d := snap.Desired
		if minSize != nil && *minSize > d {
			d = *minSize
		}
		if maxSize != nil && *maxSize < d {
			d = *maxSize
		}
		if d != snap.Desired {
			desired = &d
		}
	}
	_, err = g.Scale(c.ctx, minSize, maxSize, desired)
	return nil, asgError(err)
}

func (h *Handler) setInstanceHealth(c *call) (any, error) {
	id, err := asgRequired(c.params, "InstanceId")
	if err != nil {
		return nil, err
	}
	status, err := asgRequired(c.params, "HealthStatus")
	if err != nil {
		return nil, err
	}
	// ShouldRespectGracePeriod: autoheal has no grace period to respect.
	if _, err := asgBool(c.params, "ShouldRespectGracePeriod"); err != nil {
		return nil, err
	}
	if status != "Healthy" && status != "Unhealthy" {
		return nil, invalid("ValidationError", "HealthStatus %q is not Healthy or Unhealthy", status)
	}
	g, err := h.asgInstanceGroup(id)
	if err != nil {
		return nil, err
	}
	if status == "Healthy" {
		// Healthy: nothing to do. autoheal's own checks keep judging the
		// instance, as Auto Scaling's do after a SetInstanceHealth.
		return nil, nil
	}
	// Unhealthy: the instance is replaced, as EC2 Auto Scaling replaces an
	// instance set Unhealthy, and as autoheal's heal policy does with a
	// failed instance it does not restart in place. Not Group.Restart:
	// that is an operator's reboot, which is no failure and does not count
	// against the heal policy, so an instance reported Unhealthy again and
	// again would be rebooted forever and never escalate to a replacement
	// or impair the group. Terminate without decrement keeps the desired
	// capacity: a replacement is launched. (Handing the failure to the heal
	// policy itself, to restart in place within max_restarts, would need a
	// group method that records a failure signal; none exists.)
	return nil, asgError(g.Terminate(c.ctx, id, false))
}

func (h *Handler) terminateInstanceInAutoScalingGroup(c *call) (any, error) {
	id, err := asgRequired(c.params, "InstanceId")
	if err != nil {
		return nil, err
	}
	if _, err := asgRequired(c.params, "ShouldDecrementDesiredCapacity"); err != nil {
		return nil, err
	}
	decrement, err := asgBool(c.params, "ShouldDecrementDesiredCapacity")
	if err != nil {
		return nil, err
	}
	g, err := h.asgInstanceGroup(id)
	if err != nil {
		return nil, err
	}
	before := g.Snapshot().Desired
	now := h.now()
	if err := g.Terminate(c.ctx, id, *decrement); err != nil {
		return nil, asgError(err)
	}
	cause := fmt.Sprintf("At %s instance %s was taken out of service in response to a user request.", now.UTC().Format(time.RFC3339), id)
	if *decrement {
		cause = fmt.Sprintf("At %s instance %s was taken out of service in response to a user request, shrinking the capacity from %d to %d.",
			now.UTC().Format(time.RFC3339), id, before, before-1)
	}
	return &terminateInstanceResult{Activity: asgActivity{
		ActivityID: activityID(g.Name(), id, activityTerminate, 0), AutoScalingGroupName: g.Name(), AutoScalingGroupARN: awsid.GroupARN(g.Name()),
		Description: "Terminating EC2 instance: " + id, Cause: cause,
		StartTime: asgTime(now), StatusCode: "InProgress", Progress: 0, Details: activityDetails,
	}}, nil
}

// Lifecycle actions: a running hook script of the group (package group,
// lifecycle_action.go).

// asgLifecycleGroup is a group whose running hooks can be completed or put
// off (*group.Group).
type asgLifecycleGroup interface {
	CompleteLifecycleAction(ctx context.Context, instance, hook, token, result string) (group.LifecycleAction, error)
	RecordLifecycleActionHeartbeat(ctx context.Context, instance, hook, token string) (group.LifecycleAction, error)
}

var _ asgLifecycleGroup = (*group.Group)(nil)

// asgLifecycleTarget reads the parameters both lifecycle actions take: the
// group, its hook (which must be configured) and the instance or token.
func (h *Handler) asgLifecycleTarget(p url.Values) (asgLifecycleGroup, string, string, string, error) {
	hook, err := asgRequired(p, "LifecycleHookName")
	if err != nil {
		return nil, "", "", "", err
	}
	g, err := h.asgNamedGroup(p)
	if err != nil {
		return nil, "", "", "", err
	}
	id, token := p.Get("InstanceId"), p.Get("LifecycleActionToken")
	if id == "" && token == "" {
		return nil, "", "", "", invalid("ValidationError", "Either InstanceId or LifecycleActionToken must be specified")
	}
	cfg := g.Config()
	if !slices.ContainsFunc(append(slices.Clip(cfg.Hooks.Launch), cfg.Hooks.Terminate...), func(hk config.Hook) bool { return hk.Name == hook }) {
		return nil, "", "", "", invalid("ValidationError", "No Lifecycle Hook found with name %s for AutoScalingGroup %s (its hooks are the config's groups[].hooks)", hook, g.Name())
	}
	lg, ok := g.(asgLifecycleGroup)
	if !ok {
		return nil, "", "", "", &apiError{Status: 500, Code: "InternalFailure", Msg: "group " + g.Name() + " does not run lifecycle actions here"}
	}
	return lg, hook, id, token, nil
}

// asgLifecycleError maps a group's lifecycle action errors to Auto Scaling's.
func asgLifecycleError(err error, id, token string) error {
	if errors.Is(err, group.ErrNotFound) {
		what := "instance ID " + id
		if token != "" {
			what = "token " + token
		}
		return invalid("ValidationError", "No active Lifecycle Action found with %s (%v)", what, err)
	}
	return asgError(err)
}

func (h *Handler) completeLifecycleAction(c *call) (any, error) {
	lg, hook, id, token, err := h.asgLifecycleTarget(c.params)
	if err != nil {
		return nil, err
	}
	result, err := asgRequired(c.params, "LifecycleActionResult")
	if err != nil {
		return nil, err
	}
	if result != group.ResultContinue && result != group.ResultAbandon {
		return nil, invalid("ValidationError", "LifecycleActionResult %q is not CONTINUE or ABANDON", result)
	}
	if _, err := lg.CompleteLifecycleAction(c.ctx, id, hook, token, result); err != nil {
		return nil, asgLifecycleError(err, id, token)
	}
	return &asgEmpty{}, nil
}

func (h *Handler) recordLifecycleActionHeartbeat(c *call) (any, error) {
	lg, hook, id, token, err := h.asgLifecycleTarget(c.params)
	if err != nil {
		return nil, err
	}
	if _, err := lg.RecordLifecycleActionHeartbeat(c.ctx, id, hook, token); err != nil {
		return nil, asgLifecycleError(err, id, token)
	}
	return &asgEmpty{}, nil
}

// putScheduledUpdateGroupAction checks a scheduled action as Auto Scaling
// would and adds it to the scheduler (maintenance.Scheduler.PutAction):
// durable, run beside the config's scheduled_actions, replaced when put
// again. It recurs (Recurrence, cron); one-time actions and StartTime or
// EndTime bounds are refused, as the config's actions have none. A
// config's action of the same name cannot be replaced here.
func (h *Handler) putScheduledUpdateGroupAction(c *call) (any, error) {
	g, err := h.asgNamedGroup(c.params)
	if err != nil {
		return nil, err
	}
	name, err := asgRequired(c.params, "ScheduledActionName")
	if err != nil {
		return nil, err
	}
	var caps [3]*int
	for i, n := range []string{"MinSize", "MaxSize", "DesiredCapacity"} {
		if caps[i], err = intParam(c.params, n); err != nil {
			return nil, err
		}
		if caps[i] != nil && *caps[i] < 0 {
			return nil, invalid("ValidationError", "%s %d must not be negative", n, *caps[i])
		}
	}
	if caps[0] == nil && caps[1] == nil && caps[2] == nil {
		return nil, invalid("ValidationError", "At least one of MinSize, MaxSize or DesiredCapacity must be specified")
	}
	recurrence, tz := c.params.Get("Recurrence"), c.params.Get("TimeZone")
	if recurrence == "" {
		return nil, invalid("UnsupportedOperation", "scheduled action %s: a one-time action (StartTime or Time without Recurrence) is not supported here: autoheal's scheduled actions recur (a cron Recurrence)", name)
	}
	if _, err := config.CronFields(recurrence); err != nil {
		return nil, invalid("ValidationError", "Recurrence %q: %v", recurrence, err)
	}
	if tz == "" {
		tz = config.DefaultTimeZone
	}
	if _, err := config.LoadLocation(tz); err != nil {
		return nil, invalid("ValidationError", "TimeZone %q: %v", tz, err)
	}
	if c.params.Get("StartTime") != "" || c.params.Get("EndTime") != "" {
		return nil, invalid("ValidationError", "scheduled action %s: StartTime and EndTime are not supported with a Recurrence here: autoheal's scheduled actions recur without bounds", name)
	}
	if h.actions == nil {
		return nil, &apiError{Status: 503, Code: "ServiceUnavailable", Msg: "this controller runs no scheduler"}
	}
	err = h.actions.PutAction(config.ScheduledAction{Name: name, Group: g.Name(), Schedule: recurrence, TimeZone: tz,
		Min: caps[0], Max: caps[1], Desired: caps[2]})
	if errors.Is(err, maintenance.ErrConfigAction) {
		return nil, invalid("ValidationError", "%v", err)
	}
	return nil, err
}
