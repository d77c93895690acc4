package maintenance

import (
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/autoheal/autoheal/internal/config"
)

func mustLoc(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func window(schedule, zone string, duration, cutoff time.Duration) config.MaintenanceWindow {
	return config.MaintenanceWindow{Name: "w", Schedule: schedule, TimeZone: zone,
		Duration: config.Duration(duration), Cutoff: config.Duration(cutoff)}
}

func TestNextWindows(t *testing.T) {
	utc := func(s string) time.Time {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			panic(err)
		}
		return t
	}
	for _, c := range []struct {
		name     string
		w        config.MaintenanceWindow
		after    string
		n        int
		starts   []string // RFC 3339 in UTC
		wallEnds []string // optional: End as the zone's wall clock, 15:04
	}{
		{
			name: "daily in UTC", w: window("0 3 * * *", "UTC", 2*time.Hour, 30*time.Minute),
			after: "2024-05-01T10:00:00Z", n: 3,
			starts: []string{"2024-05-02T03:00:00Z", "2024-05-03T03:00:00Z", "2024-05-04T03:00:00Z"},
		},
		{
			name: "strictly after a start", w: window("0 3 * * *", "UTC", time.Hour, 0),
			after: "2024-05-02T03:00:00Z", n: 1, starts: []string{"2024-05-03T03:00:00Z"},
		},
		{
			name: "a macro", w: window("@weekly", "UTC", time.Hour, 0),
			after: "2024-05-01T00:00:00Z", n: 2, starts: []string{"2024-05-05T00:00:00Z", "2024-05-12T00:00:00Z"},
		},
		{
			name: "the same wall time on both sides of a DST change", w: window("0 3 * * SUN", "Europe/Paris", time.Hour, 0),
			after: "2024-03-20T00:00:00Z", n: 2,
			starts: []string{"2024-03-24T02:00:00Z", "2024-03-31T01:00:00Z"}, // 03:00 CET, then 03:00 CEST
		},
		{
			name: "a start in the skipped hour opens as late as the clock jumped", w: window("30 2 * * *", "Europe/Paris", time.Hour, 0),
			after: "2024-03-30T12:00:00Z", n: 2,
			// 02:30 does not exist on 31 March: 03:30 CEST; then 02:30 CEST.
			starts:   []string{"2024-03-31T01:30:00Z", "2024-04-01T00:30:00Z"},
			wallEnds: []string{"04:30", "03:30"},
		},
		{
			name: "a start in the repeated hour opens once, at its first occurrence", w: window("30 2 * * *", "Europe/Paris", time.Hour, 0),
			after: "2024-10-26T12:00:00Z", n: 2,
			starts: []string{"2024-10-27T00:30:00Z", "2024-10-28T01:30:00Z"}, // 02:30 CEST, then 02:30 CET
			// An hour of elapsed time from 02:30 CEST is 02:30 CET.
			wallEnds: []string{"02:30", "03:30"},
		},
		{
			name: "from the second occurrence of a repeated hour", w: window("30 2 * * *", "Europe/Paris", time.Hour, 0),
			after: "2024-10-27T01:45:00Z", n: 1, // 02:45 CET: 02:30 already came, in CEST
			starts: []string{"2024-10-28T01:30:00Z"},
		},
		{
			name: "hourly while New York falls back", w: window("0 * * * *", "America/New_York", 30*time.Minute, 0),
			after: "2024-11-03T04:30:00Z", n: 3, // 00:30 EDT
			// 01:00 EDT, then 01:00 EST is the same wall time: skipped; 02:00 EST.
			starts: []string{"2024-11-03T05:00:00Z", "2024-11-03T07:00:00Z", "2024-11-03T08:00:00Z"},
		},
		{
			name: "New York springs forward", w: window("0 2 * * *", "America/New_York", time.Hour, 0),
			after: "2024-03-09T17:00:00Z", n: 2,
			starts: []string{"2024-03-10T07:00:00Z", "2024-03-11T06:00:00Z"}, // 03:00 EDT, then 02:00 EDT
		},
		{
			name: "a half-hour DST gap", w: window("15 2 * * *", "Australia/Lord_Howe", time.Hour, 0),
			after: "2024-10-05T00:00:00Z", n: 2,
			// On 6 October 02:00 becomes 02:30 (+10:30 to +11): 02:15 opens at 02:45.
			starts: []string{"2024-10-05T15:45:00Z", "2024-10-06T15:15:00Z"},
		},
		{
			name: "29 February", w: window("0 0 29 2 *", "UTC", time.Hour, 0),
			after: "2024-03-01T00:00:00Z", n: 1, starts: []string{"2028-02-29T00:00:00Z"},
		},
		{
			name: "the 31st skips short months", w: window("0 0 31 * *", "UTC", time.Hour, 0),
			after: "2024-03-31T12:00:00Z", n: 2, starts: []string{"2024-05-31T00:00:00Z", "2024-07-31T00:00:00Z"},
		},
		{
			name: "an invalid schedule has no window", w: window("61 * * * *", "UTC", time.Hour, 0),
			after: "2024-03-31T12:00:00Z", n: 2,
		},
		{
			name: "an unknown zone has no window", w: window("0 * * * *", "Mars/Olympus", time.Hour, 0),
			after: "2024-03-31T12:00:00Z", n: 2,
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := NextWindows(c.w, utc(c.after), c.n)
			var starts []string
			for _, w := range got {
				starts = append(starts, w.Start.UTC().Format(time.RFC3339))
				if w.End.Sub(w.Start) != c.w.Duration.D() || w.End.Sub(w.Cutoff) != c.w.Cutoff.D() {
					t.Errorf("window %v: end and cutoff do not follow duration %s and cutoff %s", w, c.w.Duration, c.w.Cutoff)
				}
				if loc := w.Start.Location().String(); loc != c.w.TimeZone {
					t.Errorf("start in zone %s, want %s", loc, c.w.TimeZone)
				}
			}
			if !slices.Equal(starts, c.starts) {
				t.Errorf("starts = %v, want %v", starts, c.starts)
			}
			for i, want := range c.wallEnds {
				if i < len(got) {
					if end := got[i].End.Format("15:04"); end != want {
						t.Errorf("window %d ends at %s local, want %s", i, end, want)
					}
				}
			}
		})
	}
}

func TestAt(t *testing.T) {
	w := window("0 3 * * *", "Europe/Paris", 2*time.Hour, 30*time.Minute)
	paris := mustLoc(t, "Europe/Paris")
	at := func(h, m int) time.Time { return time.Date(2024, 5, 2, h, m, 0, 0, paris) }
	for _, c := range []struct {
		name        string
		t           time.Time
		in, accepts bool
		start       time.Time
	}{
		{name: "before", t: at(2, 59)},
		{name: "at the start", t: at(3, 0), in: true, accepts: true, start: at(3, 0)},
		{name: "before the cutoff", t: at(4, 29), in: true, accepts: true, start: at(3, 0)},
		{name: "at the cutoff", t: at(4, 30), in: true, start: at(3, 0)},
		{name: "before the end", t: at(4, 59), in: true, start: at(3, 0)},
		{name: "at the end", t: at(5, 0)},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, ok := At(w, c.t)
			if ok != c.in {
				t.Fatalf("At(%s) = %v, %v; want in=%v", c.t, got, ok, c.in)
			}
			if !ok {
				return
			}
			if !got.Start.Equal(c.start) {
				t.Errorf("start %s, want %s", got.Start, c.start)
			}
			if !got.Contains(c.t) || got.Accepts(c.t) != c.accepts {
				t.Errorf("Contains %v, Accepts %v; want true, %v", got.Contains(c.t), got.Accepts(c.t), c.accepts)
			}
		})
	}
	// Occurrences that overlap: the earliest that contains the time.
	hourly := window("0 * * * *", "UTC", 90*time.Minute, 0)
	got, ok := At(hourly, time.Date(2024, 5, 2, 1, 15, 0, 0, time.UTC))
	if want := time.Date(2024, 5, 2, 0, 0, 0, 0, time.UTC); !ok || !got.Start.Equal(want) {
		t.Errorf("overlapping: At = %v, %v; want the window of %s", got, ok, want)
	}
}

func TestLimit(t *testing.T) {
	for _, c := range []struct {
		spec              string
		targets           int
		limit, concurrent int
	}{
		{"1", 10, 1, 1},
		{"0", 10, 0, 1},
		{"5", 3, 5, 5},
		{"10%", 5, 1, 1}, // 0.5 rounds up
		{"50%", 5, 3, 3}, // 2.5 rounds up
		{"33%", 3, 1, 1}, // 0.99
		{"34%", 3, 2, 2}, // 1.02
		{"100%", 7, 7, 7},
		{"0%", 7, 0, 1},
		{"25%", 0, 0, 1},
		{"x", 10, 0, 1}, // refused by validation; the strictest reading
	} {
		if got := Limit(c.spec, c.targets); got != c.limit {
			t.Errorf("Limit(%q, %d) = %d, want %d", c.spec, c.targets, got, c.limit)
		}
		if got := Concurrency(c.spec, c.targets); got != c.concurrent {
			t.Errorf("Concurrency(%q, %d) = %d, want %d", c.spec, c.targets, got, c.concurrent)
		}
	}
}

func TestSelectTargets(t *testing.T) {
	all := []Target{
		{ID: "i-3", Group: "web", Tags: map[string]string{"env": "prod"}},
		{ID: "i-1", Group: "db", Tags: map[string]string{"env": "prod", "tier": "data"}},
		{ID: "i-2", Group: "dev", Tags: map[string]string{"env": "dev"}},
		{ID: "i-4", Group: "web", Tags: map[string]string{"env": "prod"}},
	}
	ids := func(ts []Target) []string {
		var out []string
		for _, t := range ts {
			out = append(out, t.ID)
		}
		return out
	}
	for _, c := range []struct {
		name    string
		targets config.WindowTargets
		want    []string
	}{
		{"a group, sorted by id", config.WindowTargets{Groups: []string{"web"}}, []string{"i-3", "i-4"}},
		{"tags", config.WindowTargets{Tags: map[string]string{"env": "prod"}}, []string{"i-1", "i-3", "i-4"}},
		{"every tag must match", config.WindowTargets{Tags: map[string]string{"env": "prod", "tier": "data"}}, []string{"i-1"}},
		{"groups and tags add up, once each", config.WindowTargets{Groups: []string{"dev", "web"}, Tags: map[string]string{"env": "prod"}}, []string{"i-1", "i-2", "i-3", "i-4"}},
		{"none", config.WindowTargets{Groups: []string{"nope"}}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := config.MaintenanceWindow{Targets: c.targets}
			if got := ids(SelectTargets(w, all)); !slices.Equal(got, c.want) {
				t.Errorf("got %v, want %v", got, c.want)
			}
		})
	}
}

func TestParams(t *testing.T) {
	task := config.WindowTask{Parameters: map[string]string{
		"InstanceId": "{{ TARGET_ID }}",
		"Compact":    "{{TARGET_ID}}/{{TARGET_GROUP}}",
		"Message":    "patching {{ TARGET_ID }} of {{ TARGET_GROUP }}",
		"Other":      "{{ step.output }} {{ TARGET_NAME }} $(rm -rf /)",
		"Plain":      "as is",
	}}
	before := maps.Clone(task.Parameters)
	got := Params(task, Target{ID: "i-0123", Group: "web"})
	want := map[string]string{
		"InstanceId": "i-0123",
		"Compact":    "i-0123/web",
		"Message":    "patching i-0123 of web",
		"Other":      "{{ step.output }} {{ TARGET_NAME }} $(rm -rf /)",
		"Plain":      "as is",
	}
	if !maps.Equal(got, want) {
		t.Errorf("Params = %v, want %v", got, want)
	}
	if !maps.Equal(task.Parameters, before) {
		t.Errorf("Params changed the task's parameters: %v", task.Parameters)
	}
}
