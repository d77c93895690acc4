package config

import "testing"

func TestScheduleDefaults(t *testing.T) {
	cfg, err := Parse("mem.yaml", []byte(`
groups:
  - name: web
    launch: {command: sh}
maintenance_windows:
  - name: patch
    schedule: "@weekly"
    duration: 1h
    targets: {groups: [web]}
    tasks:
      - document: restart
      - document: restart
        priority: 0
        max_concurrency: 2
        max_errors: 0
scheduled_actions:
  - name: night
    group: web
    schedule: "0 20 * * *"
    desired: 0
`))
	if err != nil {
		t.Fatal(err)
	}
	w, a := cfg.MaintenanceWindows[0], cfg.ScheduledActions[0]
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"window time_zone", w.TimeZone, "UTC"},
		{"schedule is kept as written", w.Schedule, "@weekly"},
		{"cutoff", w.Cutoff, Duration(0)},
		{"priority", *w.Tasks[0].Priority, 1},
		{"priority 0 stays 0", w.Tasks[1].PriorityValue(), 0},
		{"max_concurrency", w.Tasks[0].MaxConcurrency, "1"},
		{"max_concurrency written as a number", w.Tasks[1].MaxConcurrency, "2"},
		{"max_errors", w.Tasks[0].MaxErrors, "0"},
		{"action time_zone", a.TimeZone, "UTC"},
		{"action min is left alone", a.Min == nil, true},
		{"action desired", *a.Desired, 0},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestWindowTargetsMatches(t *testing.T) {
	tags := map[string]string{"env": "prod", "team": "web"}
	for _, c := range []struct {
		name    string
		targets WindowTargets
		group   string
		tags    map[string]string
		want    bool
	}{
		{"listed group", WindowTargets{Groups: []string{"a", "web"}}, "web", nil, true},
		{"unlisted group", WindowTargets{Groups: []string{"a"}}, "web", tags, false},
		{"every tag matches", WindowTargets{Tags: map[string]string{"env": "prod", "team": "web"}}, "web", tags, true},
		{"a subset of the tags", WindowTargets{Tags: map[string]string{"env": "prod"}}, "web", tags, true},
		{"a tag differs", WindowTargets{Tags: map[string]string{"env": "dev"}}, "web", tags, false},
		{"a tag is missing", WindowTargets{Tags: map[string]string{"env": "prod", "tier": "1"}}, "web", tags, false},
		{"an empty value is a value", WindowTargets{Tags: map[string]string{"env": ""}}, "web", map[string]string{}, false},
		{"groups or tags", WindowTargets{Groups: []string{"db"}, Tags: map[string]string{"env": "prod"}}, "web", tags, true},
		{"nothing selected", WindowTargets{}, "web", tags, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := c.targets.Matches(c.group, c.tags); got != c.want {
				t.Errorf("Matches(%s, %v) = %v, want %v", c.group, c.tags, got, c.want)
			}
		})
	}
}
