package wire

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The syntax of the API's query parameters, shared by the handlers that
// read them and the clients that write them.

// ParseTime reads a time of the metric endpoints: RFC 3339, Unix seconds,
// "now", or a duration before (-10m) or after (+10m) now.
func ParseTime(s string, now time.Time) (time.Time, error) {
	switch {
	case s == "now":
		return now, nil
	case strings.HasPrefix(s, "-") || strings.HasPrefix(s, "+"):
		d, err := time.ParseDuration(s[1:])
		if err != nil {
			return time.Time{}, fmt.Errorf("time %q: give RFC 3339, Unix seconds, now, or -DURATION like -10m", s)
		}
		if s[0] == '-' {
			d = -d
		}
		return now.Add(d), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if sec, err := strconv.ParseFloat(s, 64); err == nil && sec > 0 && sec < 1e11 {
		return time.Unix(0, int64(sec*1e9)).UTC(), nil
	}
	return time.Time{}, fmt.Errorf("time %q: give RFC 3339, Unix seconds, now, or -DURATION like -10m", s)
}

// ParsePeriod reads a period: seconds (60) or a duration (1m).
func ParsePeriod(s string) (time.Duration, error) {
	if n, err := strconv.Atoi(s); err == nil && n > 0 {
		return time.Duration(n) * time.Second, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return d, nil
	}
	return 0, fmt.Errorf("period %q: give seconds (60) or a duration (1m)", s)
}

// ParseDimension reads Name=Value.
func ParseDimension(s string) (Dimension, error) {
	name, value, ok := strings.Cut(s, "=")
	if !ok || name == "" {
		return Dimension{}, fmt.Errorf("dimension %q: give Name=Value", s)
	}
	return Dimension{Name: name, Value: value}, nil
}

// DefaultStatistics are answered when a query names none.
var DefaultStatistics = []string{SampleCount, Average, Minimum, Maximum}

// CheckStatistic reports whether name is a statistic the store answers:
// Average, Sum, Minimum, Maximum, SampleCount, or a percentile p0 to p100.
// (The store's own rule; a test in package api keeps the two agreeing.)
func CheckStatistic(name string) error {
	switch name {
	case Average, Sum, Minimum, Maximum, SampleCount:
		return nil
	}
	if len(name) > 1 && len(name) <= 10 && name[0] == 'p' && name[1] >= '0' && name[1] <= '9' {
		if v, err := strconv.ParseFloat(name[1:], 64); err == nil && v >= 0 && v <= 100 {
			return nil
		}
	}
	return fmt.Errorf("statistic %q: give Average, Sum, Minimum, Maximum, SampleCount or a percentile p0 to p100 (p99, p99.9)", name)
}
