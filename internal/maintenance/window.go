package maintenance

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/adhocore/gronx"

	"github.com/autoheal/autoheal/internal/config"
)

// Window is one occurrence of a maintenance window, its times in the
// window's time zone.
type Window struct {
	// Start is when the window opens.
	Start time.Time `json:"start"`
	// End is when it closes: Start plus the duration, in elapsed time (a
	// 2h window across a clock change still lasts two hours). What still
	// runs then is cancelled.
	End time.Time `json:"end"`
	// Cutoff is when tasks stop being started on targets: End minus the
	// window's cutoff.
	Cutoff time.Time `json:"cutoff"`
}

// Contains reports whether t falls in the window: Start <= t < End.
func (w Window) Contains(t time.Time) bool { return !t.Before(w.Start) && t.Before(w.End) }

// Accepts reports whether a task may be started on a target at t:
// Start <= t < Cutoff.
func (w Window) Accepts(t time.Time) bool { return !t.Before(w.Start) && t.Before(w.Cutoff) }

// occurrence is the window of mw that opens at start.
func occurrence(mw config.MaintenanceWindow, start time.Time) Window {
	end := start.Add(mw.Duration.D())
	return Window{Start: start, End: end, Cutoff: end.Add(-mw.Cutoff.D())}
}

// NextWindows returns the next n occurrences of mw that open strictly
// after after. It returns fewer when the schedule ends (it cannot after
// validation) and none when mw's schedule or time zone do not parse (a
// config that was not validated).
//
// Schedules are read in wall-clock time of the window's zone, so a window
// at 03:00 opens at 03:00 local time on both sides of a daylight saving
// change. A start at a wall-clock time that occurs twice (clocks going
// back) opens once, at its first occurrence; one at a time that does not
// occur (clocks going forward) opens as late as the clock jumped: 02:30
// becomes 03:30 when 02:00 jumps to 03:00.
func NextWindows(mw config.MaintenanceWindow, after time.Time, n int) []Window {
	s, err := parseSchedule(mw.Schedule, mw.TimeZone)
	if err != nil {
		return nil
	}
	var out []Window
	for t := after; len(out) < n; {
		start, err := s.next(t)
		if err != nil {
			break
		}
		out = append(out, occurrence(mw, start))
		t = start
	}
	return out
}

// At returns the occurrence of mw that t falls in, if any: the earliest
// one when occurrences overlap.
func At(mw config.MaintenanceWindow, t time.Time) (Window, bool) {
	// Only an occurrence that opened less than a duration before t can
	// still be open at t.
	ws := NextWindows(mw, t.Add(-mw.Duration.D()), 1)
	if len(ws) == 1 && ws[0].Contains(t) {
		return ws[0], true
	}
	return Window{}, false
}

// Limit is how many of targets a max_concurrency or max_errors value
// allows: a count as it is, a percentage of targets rounded up (10% of 5
// targets is 1). A value that does not parse (refused by validation)
// allows 0.
func Limit(spec string, targets int) int {
	n, percent, err := config.ParseLimit(spec)
	if err != nil {
		return 0
	}
	if !percent {
		return n
	}
	return (n*targets + 99) / 100
}

// Concurrency is Limit for max_concurrency: at least 1, so that a
// percentage of few targets still runs.
func Concurrency(spec string, targets int) int { return max(1, Limit(spec, targets)) }

// Target is an instance a window may run tasks on.
type Target struct {
	ID    string `json:"id"`
	Group string `json:"group"`
	// Tags are the instance's group's tags.
	Tags map[string]string `json:"tags,omitempty"`
}

// SelectTargets returns the targets of mw among all, sorted by id: the
// instances of the groups it lists and of the groups whose tags match.
func SelectTargets(mw config.MaintenanceWindow, all []Target) []Target {
	var out []Target
	for _, t := range all {
		if mw.Targets.Matches(t.Group, t.Tags) {
			out = append(out, t)
		}
	}
	slices.SortFunc(out, func(a, b Target) int { return cmp.Compare(a.ID, b.ID) })
	return slices.CompactFunc(out, func(a, b Target) bool { return a.ID == b.ID })
}

// pseudoParams are the only placeholders substituted in task parameters,
// as SSM writes them and with the spaces documents use.
var pseudoParams = []string{"{{ TARGET_ID }}", "{{TARGET_ID}}", "{{ TARGET_GROUP }}", "{{TARGET_GROUP}}"}

// Params returns a task's parameters for one target, with {{ TARGET_ID }}
// and {{ TARGET_GROUP }} replaced by the target's id and group in every
// value. Nothing else is touched: other {{ ... }} text reaches the document
// as written.
func Params(task config.WindowTask, t Target) map[string]string {
	r := strings.NewReplacer(pseudoParams[0], t.ID, pseudoParams[1], t.ID, pseudoParams[2], t.Group, pseudoParams[3], t.Group)
	out := make(map[string]string, len(task.Parameters))
	for k, v := range task.Parameters {
		out[k] = r.Replace(v)
	}
	return out
}

// schedule is a cron expression read in a time zone.
type schedule struct {
	expr string // five fields
	loc  *time.Location
}

func parseSchedule(spec, zone string) (schedule, error) {
	expr, err := config.CronFields(spec)
	if err != nil {
		return schedule{}, err
	}
	loc, err := config.LoadLocation(zone)
	if err != nil {
		return schedule{}, err
	}
	return schedule{expr: expr, loc: loc}, nil
}

// maxSkips bounds the wall-clock times next passes over because their
// instant is not after the reference (the repeated hour when clocks go
// back): an hour of a schedule that fires every minute.
const maxSkips = 120

// errNever is returned for a schedule that has no time left.
var errNever = errors.New("the schedule never fires again")

// next returns the first time s fires strictly after after, in s's zone.
//
// The cron library steps through wall-clock fields in the zone of the time
// it is given, and time.Date, which it uses, does not say which instant a
// repeated or skipped wall-clock time gives. So the search runs on the
// wall clock written as UTC, where every day has 24 hours, and instant
// maps the result back to the zone by a fixed rule.
func (s schedule) next(after time.Time) (time.Time, error) {
	l := after.In(s.loc)
	wall := time.Date(l.Year(), l.Month(), l.Day(), l.Hour(), l.Minute(), l.Second(), l.Nanosecond(), time.UTC)
	for range maxSkips {
		w, err := gronx.NextTickAfter(s.expr, wall, false)
		if err != nil || !w.After(wall) {
			return time.Time{}, fmt.Errorf("%w: %s", errNever, s.expr)
		}
		if t := s.instant(w); t.After(after) {
			return t, nil
		}
		wall = w
	}
	return time.Time{}, fmt.Errorf("%w: %s", errNever, s.expr)
}

// instant returns the instant at which the clock of s's zone shows wall
// (a wall-clock time written as UTC): its first occurrence when it occurs
// twice, and the instant the clock jumped past it, shifted by the jump,
// when it does not occur.
func (s schedule) instant(wall time.Time) time.Time {
	naive := wall.Unix()
	// The offsets in force around that time: a time zone does not change
	// its offset twice within two days.
	var offsets []int
	for _, probe := range []int64{naive - 86400, naive, naive + 86400} {
		_, off := time.Unix(probe, 0).In(s.loc).Zone()
		if !slices.Contains(offsets, off) {
			offsets = append(offsets, off)
		}
	}
	var first, latest time.Time
	for _, off := range offsets {
		t := time.Unix(naive-int64(off), int64(wall.Nanosecond())).In(s.loc)
		if latest.IsZero() || t.After(latest) {
			latest = t
		}
		if sameWall(t, wall) && (first.IsZero() || t.Before(first)) {
			first = t
		}
	}
	if !first.IsZero() {
		return first
	}
	// In a gap the offset before the jump is the smaller one, so the
	// latest candidate is wall read with it: past the jump by its length.
	return latest
}

func sameWall(t, wall time.Time) bool {
	y1, m1, d1 := t.Date()
	y2, m2, d2 := wall.Date()
	return y1 == y2 && m1 == m2 && d1 == d2 && t.Hour() == wall.Hour() && t.Minute() == wall.Minute() && t.Second() == wall.Second()
}
