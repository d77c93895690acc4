// Package reload decides what a change of configuration does to a running
// controller (docs/design.md §15): which objects are added, removed or
// changed in place, and which instances must be replaced, and why. The
// decision is a pure function of the two configs and the live instances,
// so that `autoheal diff` shows exactly what a reload would do.
package reload

import (
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"

	"github.com/autoheal/autoheal/internal/config"
)

// Kinds of change.
const (
	// Add: a new object, started by the reload.
	Add = "add"
	// Remove: an object that goes; a group's instances are stopped.
	Remove = "remove"
	// Replace: a group whose instances must be replaced to take the
	// change (an instance refresh).
	Replace = "replace"
	// Scale: a group's capacity is set.
	Scale = "scale"
	// Update: a change that takes effect at once, nothing restarted.
	Update = "update"
	// Restart: a change a reload cannot make; the controller must be
	// restarted (or upgraded) for it.
	Restart = "restart"
)

// Change is one thing a reload does.
type Change struct {
	Kind string `json:"kind"`
	// Object names what changes: "group web", "alarm cpu-high", "auth".
	Object string `json:"object"`
	// Fields are the config keys that differ, as written in the file.
	Fields []string `json:"fields,omitempty"`
	// Why says what the change does and why.
	Why string `json:"why"`
	// Instances are those replaced or stopped.
	Instances []string `json:"instances,omitempty"`
	// HasVolumes: a removed group that holds volumes (a reload removes it
	// only when told to).
	HasVolumes bool `json:"has_volumes,omitempty"`
}

// groupReplaceFields are the group keys whose change reaches an instance
// only through a new one: what it runs and with what (its launch
// template), where its data and addresses are, and its environment
// (parameters are variables of the process).
var groupReplaceFields = []string{"launch", "volumes", "addresses", "parameters"}

// groupScaleFields set the capacity.
var groupScaleFields = []string{"min", "max", "desired"}

// Plan returns what replacing old by next does, in the order a reload
// applies it: removals, then groups, then the rest by section. live are
// each group's live instances.
func Plan(old, next *config.Config, live map[string][]string) []Change {
	var out []Change
	out = append(out, planGroups(old.Groups, next.Groups, live)...)
	out = append(out, named("load balancer", old.LoadBalancers, next.LoadBalancers, func(l config.LoadBalancer) string { return l.Name },
		"its listeners and target groups change at once; open connections stay")...)
	out = append(out, named("alarm", old.Alarms, next.Alarms, func(a config.Alarm) string { return a.Name },
		"evaluated with the new settings from its next evaluation")...)
	out = append(out, named("channel", old.Channels, next.Channels, func(c config.Channel) string { return c.Name },
		"the next notification uses it")...)
	out = append(out, named("maintenance window", old.MaintenanceWindows, next.MaintenanceWindows, func(w config.MaintenanceWindow) string { return w.Name },
		"from its next start; a run in progress goes on as it began")...)
	out = append(out, named("scheduled action", old.ScheduledActions, next.ScheduledActions, func(a config.ScheduledAction) string { return a.Name },
		"from its next time")...)
	for _, s := range []struct {
		name     string
		old, new any
		kind     string
		why      string
	}{
		{"metrics", old.Metrics, next.Metrics, Update, "the metric store keeps its series; new limits apply to what comes"},
		{"alertmanager", old.Alertmanager, next.Alertmanager, Update, "the next alert is routed by the new routes"},
		{"auth", old.Auth, next.Auth, Update, "the next request is checked against the new tokens"},
		{"api", old.API, next.API, Update, "the next request is checked against the new names and keys"},
		{"cluster", old.Cluster, next.Cluster, Restart, "a cluster's membership and etcd are set at start: restart each host's controller (autoheal upgrade keeps the instances)"},
	} {
		if f := changedFields(s.old, s.new); len(f) > 0 {
			out = append(out, Change{Kind: s.kind, Object: s.name, Fields: f, Why: s.why})
		}
	}
	return out
}

// planGroups plans the groups' changes.
func planGroups(old, next []config.Group, live map[string][]string) []Change {
	var out []Change
	byName := map[string]config.Group{}
	for _, g := range next {
		byName[g.Name] = g
	}
	for _, g := range old {
		if _, ok := byName[g.Name]; !ok {
			c := Change{Kind: Remove, Object: "group " + g.Name, Instances: live[g.Name], HasVolumes: len(g.Volumes) > 0,
				Why: "not in the new config: its instances drain and stop"}
			if c.HasVolumes {
				c.Why += "; it holds volumes, so a reload removes it only when told to (its data stays on disk)"
			}
			out = append(out, c)
		}
	}
	for _, g := range next {
		prev, ok := find(old, g.Name)
		if !ok {
			out = append(out, Change{Kind: Add, Object: "group " + g.Name, Why: "new: its instances are launched"})
			continue
		}
		f := changedFields(prev, g)
		if len(f) == 0 {
			continue
		}
		var replace, scale, update []string
		for _, k := range f {
			switch {
			case slices.Contains(groupReplaceFields, k):
				replace = append(replace, k)
			case slices.Contains(groupScaleFields, k):
				scale = append(scale, k)
			default:
				update = append(update, k)
			}
		}
		obj := "group " + g.Name
		if len(replace) > 0 {
			out = append(out, Change{Kind: Replace, Object: obj, Fields: replace, Instances: live[g.Name],
				Why: fmt.Sprintf("a change of %s reaches an instance only through a new one: each is replaced, one at a time (an instance refresh)", strings.Join(replace, ", "))})
		}
		if len(scale) > 0 {
			out = append(out, Change{Kind: Scale, Object: obj, Fields: scale, Why: capacityWhy(prev, g)})
		}
		if len(update) > 0 {
			out = append(out, Change{Kind: Update, Object: obj, Fields: update,
				Why: "takes effect at once on the running instances (health checks, heal policy, hooks, tags, role, placement of the next launch)"})
		}
	}
	return out
}

func capacityWhy(prev, g config.Group) string {
	d := func(p *int) string {
		if p == nil {
			return "unset"
		}
		return fmt.Sprint(*p)
	}
	return fmt.Sprintf("capacity min %d max %d desired %s -> min %d max %d desired %s", prev.Min, prev.Max, d(prev.Desired), g.Min, g.Max, d(g.Desired))
}

func find(gs []config.Group, name string) (config.Group, bool) {
	for _, g := range gs {
		if g.Name == name {
			return g, true
		}
	}
	return config.Group{}, false
}

// named plans a list of named objects: added, removed, changed in place.
func named[T any](what string, old, next []T, name func(T) string, why string) []Change {
	var out []Change
	prev := map[string]T{}
	for _, o := range old {
		prev[name(o)] = o
	}
	seen := map[string]bool{}
	for _, n := range next {
		seen[name(n)] = true
		p, ok := prev[name(n)]
		switch {
		case !ok:
			out = append(out, Change{Kind: Add, Object: what + " " + name(n), Why: "new"})
		default:
			if f := changedFields(p, n); len(f) > 0 {
				out = append(out, Change{Kind: Update, Object: what + " " + name(n), Fields: f, Why: why})
			}
		}
	}
	var removed []string
	for _, o := range old {
		if !seen[name(o)] {
			removed = append(removed, name(o))
		}
	}
	sort.Strings(removed)
	for _, n := range removed {
		out = append(out, Change{Kind: Remove, Object: what + " " + n, Why: "not in the new config"})
	}
	return out
}

// changedFields lists the yaml keys of two values of one struct type
// whose values differ.
func changedFields(a, b any) []string {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	var out []string
	for i := 0; i < va.NumField(); i++ {
		f := va.Type().Field(i)
		key, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if key == "" || key == "-" || !f.IsExported() {
			continue
		}
		if !reflect.DeepEqual(va.Field(i).Interface(), vb.Field(i).Interface()) {
			out = append(out, key)
		}
	}
	return out
}
