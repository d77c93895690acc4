package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	// The zone database is embedded so that a time_zone valid on one host
	// is valid on every host, including containers without
	// /usr/share/zoneinfo; the host's database is still used first.
	_ "time/tzdata"

	"github.com/adhocore/gronx"
)

// cronMacros are the @ forms of cron schedules, as Vixie cron has them.
var cronMacros = map[string]string{
	"@yearly":   "0 0 1 1 *",
	"@annually": "0 0 1 1 *",
	"@monthly":  "0 0 1 * *",
	"@weekly":   "0 0 * * 0",
	"@daily":    "0 0 * * *",
	"@midnight": "0 0 * * *",
	"@hourly":   "0 * * * *",
}

// cronFieldNames describe the five fields for messages.
var cronFieldNames = [5]struct{ name, values string }{
	{"minute", "0-59"},
	{"hour", "0-23"},
	{"day-of-month", "1-31, L, W"},
	{"month", "1-12 or JAN-DEC"},
	{"day-of-week", "0-7 or SUN-SAT, L, #"},
}

// CronFields checks a schedule and returns it as five cron fields (minute
// hour day-of-month month day-of-week) separated by single spaces: a macro
// such as @daily is expanded. Fields are those of cron, with names (MON,
// JAN), ranges, steps, lists, and L, W and # in the day fields.
//
// Seconds and years (six or seven fields), which the cron library also
// reads, are refused: a window's smallest unit is the minute, and a year
// field would make a schedule that silently stops.
func CronFields(s string) (string, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return "", errors.New("schedule is required: a cron expression like \"0 3 * * SUN\" or @daily")
	}
	if strings.HasPrefix(t, "@") {
		if f, ok := cronMacros[strings.ToLower(t)]; ok {
			return f, nil
		}
		return "", fmt.Errorf("schedule %q: unknown macro (one of @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly)", s)
	}
	fields := strings.Fields(t)
	if len(fields) != 5 {
		return "", fmt.Errorf("schedule %q: a cron expression has 5 fields (minute hour day-of-month month day-of-week), not %d", s, len(fields))
	}
	expr := strings.Join(fields, " ")
	if !gronx.IsValid(expr) {
		// Name the first field at fault, checked alone among stars.
		for i, f := range fields {
			alone := []string{"*", "*", "*", "*", "*"}
			alone[i] = f
			if !gronx.IsValid(strings.Join(alone, " ")) {
				return "", fmt.Errorf("schedule %q: %s field %q is not valid (%s, *, lists, ranges and steps)", s, cronFieldNames[i].name, f, cronFieldNames[i].values)
			}
		}
		return "", fmt.Errorf("schedule %q is not a valid cron expression", s)
	}
	// A valid expression can still name a day that never comes ("0 0 30 2 *":
	// February 30th); the library then gives up with an error. Asking it
	// once from a leap year's start finds every date that exists.
	if _, err := gronx.NextTickAfter(expr, time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), false); err != nil {
		return "", fmt.Errorf("schedule %q never fires", s)
	}
	return expr, nil
}

// LoadLocation loads an IANA time zone as written in time_zone: "UTC",
// "Europe/Paris". The empty name is UTC (the default); "Local" is refused
// because it would mean a different zone on each host.
func LoadLocation(name string) (*time.Location, error) {
	switch name {
	case "":
		return time.UTC, nil
	case "Local":
		return nil, errors.New("time_zone Local depends on the host: name a zone, like UTC or Europe/Paris")
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("time_zone %q is not a known IANA time zone (like UTC, Europe/Paris or America/New_York)", name)
	}
	return loc, nil
}

// ParseLimit parses a max_concurrency or max_errors value: a count "N", or
// a percentage "N%" of a window's targets (at most 100%).
func ParseLimit(s string) (n int, percent bool, err error) {
	t := strings.TrimSpace(s)
	num, percent := strings.CutSuffix(t, "%")
	num = strings.TrimSpace(num)
	if !allDigits.MatchString(num) {
		return 0, false, fmt.Errorf("%q is neither a count like 2 nor a percentage like 25%%", s)
	}
	n, err = strconv.Atoi(num)
	if err != nil || n > 1<<20 {
		return 0, false, fmt.Errorf("%q is too large", s)
	}
	if percent && n > 100 {
		return 0, false, fmt.Errorf("%q: a percentage is at most 100%%", s)
	}
	return n, percent, nil
}
