package config

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestDefaultsAreFilled(t *testing.T) {
	cfg, err := Parse("mem.yaml", []byte(`
groups:
  - name: g
    launch:
      command: sh
    addresses:
      - name: http
        listen: 127.0.0.1:9
    health_checks:
      - type: http
        interval: 1s
      - type: tcp
      - type: exec
        command: "true"
      - type: process
        grace_period: 10m
    hooks:
      launch:
        - name: h
          script: "true"
      terminate:
        - name: h
          script: "true"
`))
	if err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	g := cfg.Groups[0]
	checks := []struct {
		name      string
		got, want any
	}{
		{"Dir", cfg.Dir, wd},
		{"desired", *g.Desired, 1},
		{"min", g.Min, 0},
		{"max", g.Max, 1},
		{"stop_signal", g.Launch.StopSignal, "SIGTERM"},
		{"stop_timeout", g.Launch.StopTimeout.D(), 10 * time.Second},
		{"logs.max_size", g.Launch.Logs.MaxSize, ByteSize(10 << 20)},
		{"logs.max_files", g.Launch.Logs.MaxFiles, 3},
		{"command resolved from PATH", filepath.IsAbs(g.Launch.Command) && filepath.Base(g.Launch.Command) == "sh", true},
		{"workdir", g.Launch.Workdir, wd},
		{"mode", g.Addresses[0].Mode, "proxy"},
		{"wait_timeout", g.Addresses[0].WaitTimeout.D(), 30 * time.Second},
		{"http check port: the only address", g.HealthChecks[0].Port, "http"},
		{"http check path", g.HealthChecks[0].Path, "/"},
		{"http check timeout: min(interval, 2s)", g.HealthChecks[0].Timeout.D(), time.Second},
		{"tcp check port: the only address", g.HealthChecks[1].Port, "http"},
		{"tcp check interval", g.HealthChecks[1].Interval.D(), 5 * time.Second},
		{"tcp check timeout: min(interval, 2s)", g.HealthChecks[1].Timeout.D(), 2 * time.Second},
		{"tcp check path is not http's", g.HealthChecks[1].Path, ""},
		{"exec check port is not tcp's", g.HealthChecks[2].Port, ""},
		{"healthy_threshold", g.HealthChecks[0].HealthyThreshold, 1},
		{"unhealthy_threshold", g.HealthChecks[0].UnhealthyThreshold, 3},
		{"grace_period", g.HealthChecks[0].GracePeriod.D(), time.Duration(0)},
		{"startup_timeout", g.HealthChecks[0].StartupTimeout.D(), 5 * time.Minute},
		{"startup_timeout: grace_period when longer", g.HealthChecks[3].StartupTimeout.D(), 10 * time.Minute},
		{"max_restarts", *g.Heal.MaxRestarts, 3},
		{"restart_window", g.Heal.RestartWindow.D(), 5 * time.Minute},
		{"backoff_base", g.Heal.BackoffBase.D(), time.Second},
		{"backoff_cap", g.Heal.BackoffCap.D(), time.Minute},
		{"reset_after", g.Heal.ResetAfter.D(), time.Minute},
		{"max_replacements", *g.Heal.MaxReplacements, 5},
		{"replacement_window", g.Heal.ReplacementWindow.D(), 30 * time.Minute},
		{"launch heartbeat_timeout", g.Hooks.Launch[0].HeartbeatTimeout.D(), time.Minute},
		{"launch default_result", g.Hooks.Launch[0].DefaultResult, "abandon"},
		{"terminate heartbeat_timeout", g.Hooks.Terminate[0].HeartbeatTimeout.D(), time.Minute},
		{"terminate default_result", g.Hooks.Terminate[0].DefaultResult, "abandon"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestCapacityDefaults(t *testing.T) {
	for _, c := range []struct {
		name              string
		yaml              string
		min, max, desired int
	}{
		{"none", "", 0, 1, 1},
		{"desired 3", "desired: 3", 0, 3, 3},
		{"desired 0", "desired: 0", 0, 1, 0},
		{"max 5", "max: 5", 0, 5, 1},
		{"min 1", "min: 1", 1, 1, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := Parse("mem.yaml", []byte("groups:\n  - name: g\n    launch: {command: sh}\n    "+c.yaml+"\n"))
			if err != nil {
				t.Fatal(err)
			}
			g := cfg.Groups[0]
			if g.Min != c.min || g.Max != c.max || g.DesiredCount() != c.desired {
				t.Errorf("min/max/desired = %d/%d/%d, want %d/%d/%d", g.Min, g.Max, g.DesiredCount(), c.min, c.max, c.desired)
			}
		})
	}
}

func TestGroupPorts(t *testing.T) {
	for _, c := range []struct {
		name    string
		g       Group
		names   []string
		portVar string
	}{
		{"none", Group{}, []string{}, ""},
		{"one launch port", Group{Launch: Launch{Ports: []string{"http"}}}, []string{"http"}, "http"},
		{"one proxy address", Group{Addresses: []Address{{Name: "web", Mode: ModeProxy}}}, []string{"web"}, "web"},
		{"one socket address", Group{Addresses: []Address{{Name: "web", Mode: ModeSocket}}}, []string{"web"}, ""},
		{"ports then addresses", Group{Launch: Launch{Ports: []string{"a", "b"}}, Addresses: []Address{{Name: "c"}}}, []string{"a", "b", "c"}, ""},
		{"a port and an address", Group{Launch: Launch{Ports: []string{"a"}}, Addresses: []Address{{Name: "c", Mode: ModeProxy}}}, []string{"a", "c"}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := c.g.PortNames(); !slices.Equal(got, c.names) {
				t.Errorf("PortNames = %q, want %q", got, c.names)
			}
			if got, ok := c.g.PortVar(); got != c.portVar || ok != (c.portVar != "") {
				t.Errorf("PortVar = %q, %v; want %q", got, ok, c.portVar)
			}
		})
	}
}
