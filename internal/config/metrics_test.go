package config

import "testing"

func TestMetricsBounds(t *testing.T) {
	for _, c := range []struct{ yaml, want string }{
		{"metrics: {resolution: 1m, retention: 30s}", "mem.yaml:4:38: retention 30s is shorter than resolution 1m"},
		{"metrics: {resolution: 0.5s}", "mem.yaml:4:23: resolution 500ms: use a whole number of seconds, at least 1s"},
		{"metrics: {resolution: 1m, retention: 166h40m}", ""}, // 10,000 minutes
		{"metrics: {resolution: 1m, retention: 166h41m}", "mem.yaml:4:38: retention 166h41m is 10001 intervals of resolution 1m: at most 10000, so that a series' memory stays bounded (raise resolution or lower retention)"},
	} {
		_, err := Parse("mem.yaml", []byte(alarmBase+c.yaml+"\n"))
		if got := errString(err); got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.yaml, got, c.want)
		}
	}
}
