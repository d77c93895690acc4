package config

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Maintenance windows and scheduled actions: what runs, or which capacity
// is set, on a schedule. The syntax of schedules, time zones and limits is
// in schedule.go; the rules on the documents tasks run, in documents.go.

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

// Maintenance window and scheduled action defaults.
const (
	DefaultTimeZone       = "UTC"
	DefaultPriority       = 1
	DefaultMaxConcurrency = "1"
	DefaultMaxErrors      = "0"
)

// setScheduleDefaults fills the defaults of maintenance windows and
// scheduled actions. Schedules are kept as written (CronFields expands
// them), so that messages and listings show what the user wrote.
func (c *Config) setScheduleDefaults() {
	for wi := range c.MaintenanceWindows {
		w := &c.MaintenanceWindows[wi]
		w.TimeZone = cmp.Or(w.TimeZone, DefaultTimeZone)
		for ti := range w.Tasks {
			t := &w.Tasks[ti]
			// A pointer because 0 is a priority (the first).
			if t.Priority == nil {
				t.Priority = ptr(DefaultPriority)
			}
			t.MaxConcurrency = cmp.Or(t.MaxConcurrency, DefaultMaxConcurrency)
			t.MaxErrors = cmp.Or(t.MaxErrors, DefaultMaxErrors)
		}
	}
	for ai := range c.ScheduledActions {
		a := &c.ScheduledActions[ai]
		a.TimeZone = cmp.Or(a.TimeZone, DefaultTimeZone)
	}
}

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
