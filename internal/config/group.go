package config

import (
	"cmp"
	"slices"
	"strings"
)

// Groups: a group, its capacity (min, max, desired), and the order in which
// its parts are checked. Each part has its own file: launch.go (launch
// template, environment, parameters, ports), volume.go, address.go,
// healthcheck.go and heal.go (heal policy and lifecycle hooks).

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
	// Placement says which hosts of a cluster may run the group's
	// instances (cluster.go). Default: any host.
	Placement Placement `yaml:"placement"`

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

// ListenAddresses returns the group's addresses of kind listen: the
// sockets the controller keeps, in file order.
func (g *Group) ListenAddresses() []Address {
	return g.addressesOf(KindListen)
}

// VIPs returns the group's addresses of kind vip, in file order.
func (g *Group) VIPs() []Address { return g.addressesOf(KindVIP) }

func (g *Group) addressesOf(kind string) []Address {
	var out []Address
	for _, a := range g.Addresses {
		// Kind is "" before defaults are filled: a listen address.
		if cmp.Or(a.Kind, KindListen) == kind {
			out = append(out, a)
		}
	}
	return out
}

// Address returns the group's listen address with the given name.
func (g *Group) Address(name string) (Address, bool) {
	for _, a := range g.ListenAddresses() {
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
	for _, a := range g.ListenAddresses() {
		names = append(names, a.Name)
	}
	return names
}

// PortVar returns the name of the port that instances also get as PORT:
// the group's only port, when it is a launch port or a proxy-mode address
// (a socket-mode address hands over a socket, not a port to listen on).
func (g *Group) PortVar() (string, bool) {
	addrs := g.ListenAddresses()
	switch {
	case len(g.Launch.Ports) == 1 && len(addrs) == 0:
		return g.Launch.Ports[0], true
	case len(g.Launch.Ports) == 0 && len(addrs) == 1 && addrs[0].Mode != ModeSocket:
		return addrs[0].Name, true
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

// DefaultDesired is a group's desired capacity when the file gives none
// (max then defaults to max(desired, 1)).
const DefaultDesired = 1

// setDefaults fills the group's defaults and those of its launch template,
// addresses, health checks, heal policy and hooks; dir is the config
// file's directory.
func (g *Group) setDefaults(dir string) {
	if g.Desired == nil {
		g.Desired = ptr(DefaultDesired)
	}
	if g.Max == 0 {
		g.Max = max(*g.Desired, 1)
	}
	g.Launch.setDefaults(dir)
	for vi := range g.Volumes {
		g.Volumes[vi].setDefaults()
	}
	for ai := range g.Addresses {
		g.Addresses[ai].setDefaults()
	}
	for hi := range g.HealthChecks {
		g.HealthChecks[hi].setDefaults(g)
	}
	g.Heal.setDefaults()
	g.Hooks.setDefaults()
}

// groups checks that there is at least one group, that each has a unique
// name, and each group in turn.
func (v *validator) groups() {
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
	v.placement(g, gp.field("placement"))
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
