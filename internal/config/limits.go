package config

import (
	"fmt"

	"github.com/autoheal/autoheal/internal/limits"
)

// The limits of a config file are declared in package limits, beside
// those of runbook documents: the size, UTF-8, depth, scalar and node
// limits are checked on the raw bytes by Load and Parse before the YAML
// parser runs; the counts below are checked on the decoded config, before
// Validate, so that a config of ten thousand alarms is refused at once
// rather than validated and then run.

// count is one list or map of the config and its limit.
type count struct {
	p     path
	n     int
	limit int
	name  string // of the limit, as messages and the README say it
}

// checkCounts checks the number of every list and map of a parsed config
// against its limit, and returns a problem at the first item beyond each
// limit.
func (c *Config) checkCounts() Errors {
	var counts []count
	add := func(p path, n, limit int, name string) {
		if n > limit {
			counts = append(counts, count{p, n, limit, name})
		}
	}
	root := path(nil)
	add(root.field("groups"), len(c.Groups), limits.Groups, "groups")
	add(root.field("load_balancers"), len(c.LoadBalancers), limits.LoadBalancers, "load balancers")
	add(root.field("maintenance_windows"), len(c.MaintenanceWindows), limits.MaintenanceWindows, "maintenance windows")
	add(root.field("scheduled_actions"), len(c.ScheduledActions), limits.ScheduledActions, "scheduled actions")
	add(root.field("channels"), len(c.Channels), limits.Channels, "channels")
	add(root.field("alarms"), len(c.Alarms), limits.Alarms, "alarms")
	add(root.field("alertmanager").field("routes"), len(c.Alertmanager.Routes), limits.AlertRoutes, "alertmanager routes")
	add(root.field("auth").field("API tokens"), len(c.Auth.Tokens), limits.Tokens, "API tokens")
	add(root.field("api").field("hosts"), len(c.API.Hosts), limits.APIHosts, "API hosts")
	add(root.field("cluster").field("hosts"), len(c.Cluster.Hosts), limits.ClusterHosts, "cluster hosts")
	add(root.field("cluster").field("etcd").field("endpoints"), len(c.Cluster.Etcd.Endpoints), limits.EtcdEndpoints, "etcd endpoints")
	for i, g := range c.Groups {
		p := root.field("groups").index(i)
		add(p.field("volumes per group"), len(g.Volumes), limits.Volumes, "volumes per group")
		add(p.field("addresses per group"), len(g.Addresses), limits.Addresses, "addresses per group")
		add(p.field("health_checks"), len(g.HealthChecks), limits.HealthChecks, "health checks per group")
		add(p.field("hooks").field("launch"), len(g.Hooks.Launch), limits.Hooks, "hooks per group and event")
		add(p.field("hooks").field("terminate"), len(g.Hooks.Terminate), limits.Hooks, "hooks per group and event")
		add(p.field("parameters"), len(g.Parameters), limits.Parameters, "parameters per group")
		add(p.field("tags"), len(g.Tags), limits.Tags, "tags per group")
		add(p.field("launch").field("env"), len(g.Launch.Env), limits.EnvVars, "environment variables per group")
		add(p.field("launch").field("args"), len(g.Launch.Args), limits.Args, "arguments per group")
		add(p.field("launch").field("ports per group"), len(g.Launch.Ports), limits.Ports, "ports per group")
	}
	for i, lb := range c.LoadBalancers {
		p := root.field("load_balancers").index(i)
		add(p.field("listeners per load balancer"), len(lb.Listeners), limits.Listeners, "listeners per load balancer")
		add(p.field("target_groups"), len(lb.TargetGroups), limits.TargetGroups, "target groups per load balancer")
		for j, tg := range lb.TargetGroups {
			q := p.field("target_groups").index(j)
			add(q.field("groups"), len(tg.Groups), limits.Targets, "members per target group")
			add(q.field("targets"), len(tg.Targets), limits.Targets, "targets per target group")
		}
	}
	for i, w := range c.MaintenanceWindows {
		p := root.field("maintenance_windows").index(i)
		add(p.field("tasks per window"), len(w.Tasks), limits.WindowTasks, "tasks per window")
		add(p.field("targets").field("tags"), len(w.Targets.Tags), limits.Tags, "tags per window target")
		for j, t := range w.Tasks {
			add(p.field("tasks per window").index(j).field("parameters"), len(t.Parameters), limits.ActionParameters, "parameters per task")
		}
	}
	for i, a := range c.Alarms {
		p := root.field("alarms").index(i).field("actions per alarm state")
		for state, actions := range map[string][]Action{"alarm": a.Actions.Alarm, "ok": a.Actions.OK, "insufficient_data": a.Actions.InsufficientData} {
			add(p.field(state), len(actions), limits.AlarmActions, "actions per alarm state")
			for j, act := range actions {
				if act.Remediate != nil {
					add(p.field(state).index(j).field("remediate").field("parameters"), len(act.Remediate.Parameters), limits.ActionParameters, "parameters per remediation")
				}
			}
		}
	}
	return c.countErrors(counts)
}

// countErrors places each count beyond its limit: at the first list item
// beyond it, or at the key of a map.
func (c *Config) countErrors(counts []count) Errors {
	var errs Errors
	for _, n := range counts {
		e := Error{File: c.Path, Msg: fmt.Sprintf("%s: %d exceeds limit %d (%s)", n.p, n.n, n.limit, n.name)}
		if c.src != nil {
			at := n.p.index(n.limit)
			if !c.src.has(at) {
				at = n.p
			}
			e.File = c.src.file
			e.Line, e.Col = c.src.pos(at, true)
		}
		errs = append(errs, e)
	}
	return errs
}
