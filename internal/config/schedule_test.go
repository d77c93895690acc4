package config

import (
	"strings"
	"testing"
)

func TestCronFields(t *testing.T) {
	for in, want := range map[string]string{
		"@daily":            "0 0 * * *",
		"@MIDNIGHT":         "0 0 * * *",
		"@hourly":           "0 * * * *",
		"@weekly":           "0 0 * * 0",
		"@monthly":          "0 0 1 * *",
		"@yearly":           "0 0 1 1 *",
		" 0  3 * *  SUN ":   "0 3 * * SUN",
		"*/15 9-17 * * 1-5": "*/15 9-17 * * 1-5",
		"0 0 29 2 *":        "0 0 29 2 *", // fires every four years
		"0 3 L * *":         "0 3 L * *",
		"0 3 * * 1#2":       "0 3 * * 1#2",
		"0 3 * * 7":         "0 3 * * 7",
	} {
		if got, err := CronFields(in); err != nil || got != want {
			t.Errorf("CronFields(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for in, msg := range map[string]string{
		"":               "schedule is required",
		"@fortnightly":   "unknown macro",
		"0 3 * *":        "has 5 fields",
		"0 0 3 * * *":    "has 5 fields",
		"0 3 * * * 2030": "has 5 fields",
		"60 * * * *":     `minute field "60"`,
		"0 24 * * *":     `hour field "24"`,
		"0 0 0 * *":      `day-of-month field "0"`,
		"0 0 * 13 *":     `month field "13"`,
		"0 0 * * 8":      `day-of-week field "8"`,
		"*/0 * * * *":    `minute field "*/0"`,
		"0 0 31 4 *":     "never fires",
	} {
		if _, err := CronFields(in); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("CronFields(%q): %v, want an error with %q", in, err, msg)
		}
	}
}

func TestParseLimit(t *testing.T) {
	for _, c := range []struct {
		in      string
		n       int
		percent bool
	}{
		{"0", 0, false}, {"1", 1, false}, {"25", 25, false}, {" 3 ", 3, false},
		{"0%", 0, true}, {"10%", 10, true}, {"100%", 100, true}, {"50 %", 50, true},
	} {
		n, pct, err := ParseLimit(c.in)
		if err != nil || n != c.n || pct != c.percent {
			t.Errorf("ParseLimit(%q) = %d, %v, %v; want %d, %v", c.in, n, pct, err, c.n, c.percent)
		}
	}
	for _, bad := range []string{"", "%", "-1", "1.5", "101%", "x", "1e3", "99999999999", "+1"} {
		if n, _, err := ParseLimit(bad); err == nil {
			t.Errorf("ParseLimit(%q) = %d, want an error", bad, n)
		}
	}
}

func TestLoadLocation(t *testing.T) {
	for name, want := range map[string]string{"": "UTC", "UTC": "UTC", "Europe/Paris": "Europe/Paris", "America/New_York": "America/New_York"} {
		if loc, err := LoadLocation(name); err != nil || loc.String() != want {
			t.Errorf("LoadLocation(%q) = %v, %v; want %s", name, loc, err, want)
		}
	}
	for _, bad := range []string{"Local", "Mars/Olympus", "../etc/passwd", "/etc/localtime", "europe/paris"} {
		if _, err := LoadLocation(bad); err == nil {
			t.Errorf("LoadLocation(%q) succeeded", bad)
		}
	}
}
