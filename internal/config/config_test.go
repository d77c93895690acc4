package config

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/*.bad.yaml.err from the current output")

// TestBadConfigs loads every testdata/*.bad.yaml and compares the errors with
// the golden FILE.err, which lists FILE:LINE:COL: message lines.
func TestBadConfigs(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.bad.yaml")
	if len(files) == 0 {
		t.Fatal("no bad configs")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			_, err := Load(f)
			var errs *Errors
			if !errors.As(err, &errs) {
				t.Fatalf("want *Errors, got %v", err)
			}
			got := errs.Error()
			if *update {
				os.WriteFile(f+".err", []byte(got), 0o644)
				return
			}
			want, err := os.ReadFile(f + ".err")
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("errors differ\n got:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func TestGoodConfigs(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.good.yaml")
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			if _, err := Load(f); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestDefaultsAreFilled(t *testing.T) {
	cfg, err := Parse("mem.yaml", []byte("groups:\n  - name: g\n    launch:\n      command: sh\n    addresses:\n      - name: http\n        listen: 127.0.0.1:9\n    health_checks:\n      - type: http\n        interval: 1s\n    hooks:\n      launch:\n        - name: h\n          script: 'true'\n"))
	if err != nil {
		t.Fatal(err)
	}
	g := cfg.Groups[0]
	checks := []struct {
		name      string
		got, want any
	}{
		{"desired", g.DesiredCount(), 1},
		{"max", g.Max, 1},
		{"stop_signal", g.Launch.StopSignal, "SIGTERM"},
		{"stop_timeout", g.Launch.StopTimeout.D(), 10 * time.Second},
		{"logs.max_size", int64(g.Launch.Logs.MaxSize), int64(10 << 20)},
		{"logs.max_files", g.Launch.Logs.MaxFiles, 3},
		{"command resolved from PATH", filepath.IsAbs(g.Launch.Command), true},
		{"mode", g.Addresses[0].Mode, "proxy"},
		{"wait_timeout", g.Addresses[0].WaitTimeout.D(), 30 * time.Second},
		{"check port", g.HealthChecks[0].Port, "http"},
		{"check path", g.HealthChecks[0].Path, "/"},
		{"check timeout", g.HealthChecks[0].Timeout.D(), time.Second},
		{"healthy_threshold", g.HealthChecks[0].HealthyThreshold, 1},
		{"unhealthy_threshold", g.HealthChecks[0].UnhealthyThreshold, 3},
		{"max_restarts", *g.Heal.MaxRestarts, 3},
		{"restart_window", g.Heal.RestartWindow.D(), 5 * time.Minute},
		{"backoff_base", g.Heal.BackoffBase.D(), time.Second},
		{"backoff_cap", g.Heal.BackoffCap.D(), time.Minute},
		{"reset_after", g.Heal.ResetAfter.D(), time.Minute},
		{"max_replacements", *g.Heal.MaxReplacements, 5},
		{"replacement_window", g.Heal.ReplacementWindow.D(), 30 * time.Minute},
		{"heartbeat_timeout", g.Hooks.Launch[0].HeartbeatTimeout.D(), time.Minute},
		{"default_result", g.Hooks.Launch[0].DefaultResult, "abandon"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestRelativeCommandIsResolvedAgainstTheConfigDir(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "app"), []byte("#!/bin/sh\n"), 0o755)
	p := filepath.Join(dir, "autoheal.yaml")
	os.WriteFile(p, []byte("groups:\n  - name: g\n    launch:\n      command: ./app\n"), 0o644)
	cfg, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Groups[0].Launch.Command; got != filepath.Join(dir, "app") {
		t.Fatalf("command = %s", got)
	}
	if got := cfg.Groups[0].Launch.Workdir; got != dir {
		t.Fatalf("workdir = %s", got)
	}
}

func TestByteSizeAndSignal(t *testing.T) {
	for in, want := range map[string]int64{"100": 100, "1KiB": 1024, "10MiB": 10 << 20, "1GiB": 1 << 30, "10MB": 10e6, "1.5KiB": 1536} {
		if got, err := ParseByteSize(in); err != nil || got != want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "x", "-1", "10XB"} {
		if _, err := ParseByteSize(bad); err == nil {
			t.Errorf("ParseByteSize(%q) accepted", bad)
		}
	}
	for _, ok := range []string{"SIGTERM", "term", "INT", "sigkill"} {
		if _, err := Signal(ok); err != nil {
			t.Errorf("Signal(%q): %v", ok, err)
		}
	}
	if _, err := Signal("SIGFOO"); err == nil || !strings.Contains(err.Error(), "SIGTERM") {
		t.Errorf("Signal(SIGFOO) = %v", err)
	}
}

func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yaml")
	for _, p := range files {
		b, _ := os.ReadFile(p)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("fuzz.yaml", data)
		if err == nil && cfg == nil {
			t.Fatal("nil config without error")
		}
		var errs *Errors
		if err != nil && (!errors.As(err, &errs) || len(*errs) == 0) {
			t.Fatalf("error is not a positioned *Errors: %v", err)
		}
	})
}
