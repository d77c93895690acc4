package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/*.bad.yaml.err from the current output")

// dirPlaceholder stands for the absolute path of testdata in golden files,
// so that they do not depend on where the repository is checked out.
const dirPlaceholder = "{{DIR}}"

// TestBadConfigs loads every testdata/*.bad.yaml and compares the problems
// with the golden FILE.err: one FILE:LINE:COL: message line each, in file
// order, as `autoheal validate` prints them.
func TestBadConfigs(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.bad.yaml")
	if len(files) == 0 {
		t.Fatal("no bad configs")
	}
	absDir, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			cfg, err := Load(f)
			if cfg != nil {
				t.Error("Load returned a config with its errors")
			}
			errs, ok := errors.AsType[*Errors](err)
			if !ok || len(*errs) == 0 {
				t.Fatalf("want *Errors, got %#v", err)
			}
			got := strings.ReplaceAll(errs.Error(), absDir, dirPlaceholder) + "\n"
			if *update {
				if err := os.WriteFile(f+".err", []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
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

// loadGood loads a good config. The one field whose validity depends on
// the test's own privileges, launch.user (root only), is dropped when the
// test does not run as root; TestUserNeedsRoot covers that case.
func loadGood(t *testing.T, file string) *Config {
	t.Helper()
	// The channels of full.good.yaml read these; validation wants them set.
	t.Setenv("AUTOHEAL_TEST_WEBHOOK_SECRET", "from-env")
	t.Setenv("AUTOHEAL_TEST_SLACK_URL", "https://hooks.slack.com/services/T0/B0/x")
	t.Setenv("AUTOHEAL_TEST_ROUTING_KEY", "fedcba9876543210fedcba9876543210")
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() != 0 {
		data = regexp.MustCompile(`(?m)^\s*user: .*\n`).ReplaceAll(data, nil)
	}
	cfg, err := Parse(file, data)
	if err != nil {
		t.Fatalf("%s:\n%v", file, err)
	}
	return cfg
}

func TestGoodConfigs(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.good.yaml")
	if len(files) == 0 {
		t.Fatal("no good configs")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			cfg := loadGood(t, f)
			// Validation is idempotent: the server may validate a loaded
			// config again without changing or rejecting it.
			before := clone(t, cfg)
			if err := cfg.Validate(); err != nil {
				t.Fatalf("second Validate: %v", err)
			}
			if !reflect.DeepEqual(before, cfg) {
				t.Errorf("second Validate changed the config:\n%+v\n%+v", before, cfg)
			}
		})
	}
}

// clone deep-copies a config by parsing its file again.
func clone(t *testing.T, c *Config) *Config {
	t.Helper()
	return loadGood(t, c.Path)
}

// TestFullConfig checks that every field of full.good.yaml reaches the
// Config: a field the decoder silently dropped would be set to its default
// here, and full.good.yaml sets every field to something else.
func TestFullConfig(t *testing.T) {
	cfg := loadGood(t, "testdata/full.good.yaml")
	dir, _ := filepath.Abs("testdata")
	user := ""
	if os.Geteuid() == 0 {
		user = "root"
	}
	want := &Config{
		Path: "testdata/full.good.yaml",
		Dir:  dir,
		Groups: []Group{{
			Name: "pet", Min: 0, Max: 1, Desired: ptr(1),
			Tags: map[string]string{"env": "dev", "team": "storage"},
			Launch: Launch{
				Command:     "/bin/sh",
				Args:        []string{"-c", "exec sleep 60"},
				Ports:       []string{"debug"},
				Env:         map[string]string{"GREETING": "hello"},
				Workdir:     "/tmp",
				User:        user,
				UserData:    "echo booting",
				StopSignal:  "SIGINT",
				StopTimeout: Duration(5 * time.Second),
				Logs:        Logs{MaxSize: 1 << 20, MaxFiles: 2},
			},
			Volumes: []Volume{{Name: "data", MountPath: "/var/lib/pet", Init: `echo init > "$AUTOHEAL_VOLUME_DATA/x"`}},
			Addresses: []Address{
				{Name: "http", Listen: "127.0.0.1:18080", Mode: "proxy", Port: 18081, WaitTimeout: Duration(10 * time.Second)},
				{Name: "metrics", Listen: "127.0.0.1:18090", Mode: "socket", WaitTimeout: DefaultWaitTimeout},
			},
			HealthChecks: []HealthCheck{
				{Type: "http", Port: "http", Path: "/healthz", Interval: Duration(time.Second), Timeout: Duration(500 * time.Millisecond),
					HealthyThreshold: 2, UnhealthyThreshold: 4, GracePeriod: Duration(5 * time.Second), StartupTimeout: Duration(2 * time.Minute)},
				{Type: "tcp", Port: "18081", Interval: DefaultInterval, Timeout: DefaultMaxTimeout, HealthyThreshold: 1, UnhealthyThreshold: 3, StartupTimeout: DefaultStartupTimeout},
				{Type: "process", Interval: DefaultInterval, Timeout: DefaultMaxTimeout, HealthyThreshold: 1, UnhealthyThreshold: 3, StartupTimeout: DefaultStartupTimeout},
				{Type: "exec", Command: `test -w "$AUTOHEAL_VOLUME_DATA"`, Interval: DefaultInterval, Timeout: DefaultMaxTimeout, HealthyThreshold: 1, UnhealthyThreshold: 3, StartupTimeout: DefaultStartupTimeout},
			},
			Heal: Heal{
				MaxRestarts: ptr(2), RestartWindow: Duration(time.Minute),
				BackoffBase: Duration(100 * time.Millisecond), BackoffCap: Duration(10 * time.Second),
				ResetAfter: Duration(30 * time.Second), MaxReplacements: ptr(3), ReplacementWindow: Duration(10 * time.Minute),
			},
			Hooks: Hooks{
				Launch:    []Hook{{Name: "check", Script: "true", HeartbeatTimeout: Duration(5 * time.Second), DefaultResult: "continue"}},
				Terminate: []Hook{{Name: "note", Script: "echo bye", HeartbeatTimeout: Duration(2 * time.Second), DefaultResult: "abandon"}},
			},
			Parameters: []Parameter{{Name: "DB_PASSWORD", Value: "s3cret", Secret: true}},
		}, {
			Name: "web", Max: 3, Desired: ptr(2), APIRole: RoleViewer,
			Launch: Launch{
				Command: "/bin/sh", Ports: []string{"http"}, Workdir: dir, StopSignal: DefaultStopSignal, StopTimeout: DefaultStopTimeout,
				Logs: Logs{MaxSize: DefaultLogMaxSize, MaxFiles: DefaultLogMaxFiles},
			},
			Heal: Heal{
				MaxRestarts: ptr(DefaultMaxRestarts), RestartWindow: DefaultRestartWindow,
				BackoffBase: DefaultBackoffBase, BackoffCap: DefaultBackoffCap,
				ResetAfter: DefaultResetAfter, MaxReplacements: ptr(DefaultMaxReplacements), ReplacementWindow: DefaultReplacementWindow,
			},
		}},
		LoadBalancers: []LoadBalancer{{
			Name: "front",
			Listeners: []Listener{
				{
					Protocol: "http", Listen: "127.0.0.1:18443", TargetGroup: "web",
					TLS:         &TLS{CertFile: filepath.Join(dir, "lb-cert.pem"), KeyFile: filepath.Join(dir, "lb-key.pem")},
					IdleTimeout: Duration(30 * time.Second), FirstByteTimeout: Duration(3 * time.Second), HeaderTimeout: Duration(5 * time.Second),
					MaxHeaderBytes: 32 << 10, MaxBodyBytes: 10 << 20, MaxConnections: 500,
				},
				// The http-only fields stay zero on a tcp listener.
				{Protocol: "tcp", Listen: ":18432", TargetGroup: "raw", IdleTimeout: DefaultIdleTimeout, FirstByteTimeout: DefaultFirstByteTimeout, MaxConnections: DefaultMaxConnections},
			},
			TargetGroups: []TargetGroup{{
				Name: "web", Protocol: "http",
				Groups:    []TargetGroupMember{{Group: "web", Port: "http", Weight: 3}, {Group: "pet", Port: "18081", Weight: 1}},
				Targets:   []StaticTarget{{Address: "127.0.0.1:18500", ID: "legacy", Weight: 2}},
				Algorithm: "weighted_round_robin",
				HealthCheck: TargetHealthCheck{
					Protocol: "http", Path: "/healthz", Matcher: "200,204", Interval: Duration(10 * time.Second),
					Timeout: Duration(3 * time.Second), HealthyThreshold: 3, UnhealthyThreshold: 4,
				},
				DeregistrationDelay: Duration(5 * time.Second), SlowStart: Duration(30 * time.Second),
				HoldTimeout: Duration(3 * time.Second), Retries: ptr(0),
				ConnectTimeout: Duration(time.Second), ResponseTimeout: Duration(20 * time.Second),
			}, {
				Name: "raw", Protocol: "tcp",
				// The port is the group's only named port.
				Groups:    []TargetGroupMember{{Group: "web", Port: "http", Weight: DefaultWeight}},
				Targets:   []StaticTarget{{Address: "localhost:18501", ID: "localhost:18501", Weight: DefaultWeight}},
				Algorithm: "least_outstanding_requests",
				// An http check on a tcp target group has http's defaults.
				HealthCheck: TargetHealthCheck{
					Protocol: "http", Path: DefaultPath, Matcher: DefaultMatcher, Interval: DefaultInterval, Timeout: DefaultMaxTimeout,
					HealthyThreshold: DefaultTargetHealthyThreshold, UnhealthyThreshold: DefaultTargetUnhealthyThreshold,
				},
				DeregistrationDelay: DefaultDeregistrationDelay, HoldTimeout: DefaultHoldTimeout, Retries: ptr(DefaultRetries),
				ConnectTimeout: DefaultConnectTimeout,
			}},
		}},
		MaintenanceWindows: []MaintenanceWindow{{
			Name: "patch", Schedule: "0 3 * * SUN", TimeZone: "Europe/Paris",
			Duration: Duration(2 * time.Hour), Cutoff: Duration(30 * time.Minute),
			Targets: WindowTargets{Groups: []string{"web"}, Tags: map[string]string{"env": "dev"}},
			Tasks: []WindowTask{{
				Document:   "graceful-maintenance",
				Parameters: map[string]string{"InstanceId": "{{ TARGET_ID }}", "Group": "{{TARGET_GROUP}}"},
				Priority:   ptr(0), MaxConcurrency: "50%", MaxErrors: "1",
			}},
		}},
		ScheduledActions: []ScheduledAction{{
			Name: "web-night", Group: "web", Schedule: "0 20 * * MON-FRI", TimeZone: "America/New_York",
			Min: ptr(0), Max: ptr(3), Desired: ptr(0),
		}},
	}
	want.Metrics = Metrics{Resolution: Duration(5 * time.Second), Retention: Duration(time.Hour), MaxSeries: 500}
	want.Channels = []Channel{
		{Name: "ops-webhook", Type: "webhook", URL: "http://127.0.0.1:18600/hook", Secret: "hmac-key", Timeout: Duration(2 * time.Second), MaxAttempts: 4},
		{Name: "signed-by-env", Type: "webhook", URL: "https://hooks.example.com/autoheal", SecretEnv: "AUTOHEAL_TEST_WEBHOOK_SECRET",
			Timeout: DefaultChannelTimeout, MaxAttempts: DefaultChannelMaxAttempts},
		// The URL stays in the environment: a Config never holds it.
		{Name: "team-slack", Type: "slack", URLEnv: "AUTOHEAL_TEST_SLACK_URL", Timeout: DefaultChannelTimeout, MaxAttempts: DefaultChannelMaxAttempts},
		{Name: "oncall", Type: "pagerduty", URL: "https://events.eu.pagerduty.com/v2/enqueue", RoutingKeyEnv: "AUTOHEAL_TEST_ROUTING_KEY",
			Timeout: DefaultChannelTimeout, MaxAttempts: DefaultChannelMaxAttempts},
		{Name: "pager-inline", Type: "pagerduty", URL: DefaultPagerDutyURL, RoutingKey: "0123456789abcdef0123456789abcdef",
			Timeout: DefaultChannelTimeout, MaxAttempts: DefaultChannelMaxAttempts},
	}
	defaultRemediate := func(runbook string) *Remediate {
		return &Remediate{Runbook: runbook, MaxAttempts: DefaultRemediateAttempts, VerifyTimeout: DefaultVerifyTimeout, RetryPause: DefaultRetryPause}
	}
	want.Alarms = []Alarm{{
		Name: "webapp-down", Description: "the pet stopped answering", Namespace: "CustomNamespace", Metric: "webapp-uptime",
		Dimensions: map[string]string{"InstanceId": "*", "Group": "pet"}, Statistic: "p99.9", Period: Duration(20 * time.Second),
		EvaluationPeriods: 3, DatapointsToAlarm: 2, Comparison: LessThanThreshold, Threshold: ptr(0.5), TreatMissingData: TreatBreaching,
		Actions: AlarmActions{
			Alarm: []Action{
				{Notify: "team-slack"},
				{Remediate: &Remediate{
					Runbook: "restart-webapp", MaxAttempts: 2, VerifyTimeout: Duration(time.Minute), RetryPause: Duration(10 * time.Second),
					Escalate: []string{"oncall", "ops-webhook"}, Parameters: map[string]string{"InstanceId": "{{ TARGET_ID }}", "Mode": "fast"},
				}},
				{Restart: "instance"},
				{Replace: "instance"},
			},
			OK:               []Action{{Notify: "team-slack"}},
			InsufficientData: []Action{{Notify: "ops-webhook"}, {Restart: "instance"}},
		},
	}, {
		Name: "errors-high", Namespace: "Autoheal", Metric: "http_5xx", Statistic: "Sum", Period: Duration(time.Minute),
		EvaluationPeriods: 1, DatapointsToAlarm: 1, Comparison: GreaterThanOrEqualToThreshold, Threshold: ptr(10.0), TreatMissingData: TreatMissing,
		Actions: AlarmActions{
			// "remediate: {}" and a bare "remediate:" both take every default.
			Alarm:            []Action{{Remediate: defaultRemediate("http_5xx#Autoheal")}},
			InsufficientData: []Action{{Remediate: defaultRemediate("http_5xx#Autoheal")}},
		},
	}}
	want.Alertmanager = Alertmanager{
		Routes: []AlertRoute{
			{Match: map[string]string{"alertname": "DiskFull", "severity": "critical"}, Runbook: "clean-disk", TargetLabel: "instance", Escalate: []string{"oncall"}},
			{Match: map[string]string{"alertname": "HighLoad"}, Runbook: "shed-load", TargetLabel: DefaultAlertTargetLabel, Escalate: []string{"team-slack", "signed-by-env"}},
		},
		DefaultEscalate: []string{"team-slack", "signed-by-env"},
	}
	want.Auth = Auth{Tokens: []Token{
		{Name: "ops-laptop", Role: RoleOperator, SHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"},
		{Name: "metrics-agent", Role: RoleViewer, SHA256: "60303AE22B998861BCE3B28F33EEC1BE758A213C86C93C076DBE9F558C11C752"},
	}}
	want.API = API{Hosts: []string{"autoheal.example.com", "ops.example.com:7070"}}
	cfg.src = nil
	if !reflect.DeepEqual(cfg.Auth, want.Auth) {
		t.Errorf("auth decoded as\n%+v\nwant\n%+v", cfg.Auth, want.Auth)
	}
	if !reflect.DeepEqual(cfg.Metrics, want.Metrics) {
		t.Errorf("metrics decoded as\n%+v\nwant\n%+v", cfg.Metrics, want.Metrics)
	}
	if !reflect.DeepEqual(cfg.Channels, want.Channels) {
		t.Errorf("channels decoded as\n%+v\nwant\n%+v", cfg.Channels, want.Channels)
	}
	if !reflect.DeepEqual(cfg.Alarms, want.Alarms) {
		t.Errorf("alarms decoded as\n%+v\nwant\n%+v", cfg.Alarms, want.Alarms)
	}
	if !reflect.DeepEqual(cfg.Alertmanager, want.Alertmanager) {
		t.Errorf("alertmanager decoded as\n%+v\nwant\n%+v", cfg.Alertmanager, want.Alertmanager)
	}
	if !reflect.DeepEqual(cfg.Groups, want.Groups) {
		t.Errorf("groups decoded as\n%+v\nwant\n%+v", cfg.Groups, want.Groups)
	}
	if !reflect.DeepEqual(cfg.LoadBalancers, want.LoadBalancers) {
		t.Errorf("load_balancers decoded as\n%+v\nwant\n%+v", cfg.LoadBalancers, want.LoadBalancers)
	}
	if !reflect.DeepEqual(cfg.MaintenanceWindows, want.MaintenanceWindows) {
		t.Errorf("maintenance_windows decoded as\n%+v\nwant\n%+v", cfg.MaintenanceWindows, want.MaintenanceWindows)
	}
	if !reflect.DeepEqual(cfg.ScheduledActions, want.ScheduledActions) {
		t.Errorf("scheduled_actions decoded as\n%+v\nwant\n%+v", cfg.ScheduledActions, want.ScheduledActions)
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("full.good.yaml decoded as\n%+v\nwant\n%+v", *cfg, *want)
	}
}

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

func TestAnchorsAndMergeKeys(t *testing.T) {
	cfg := loadGood(t, "testdata/anchors.good.yaml")
	first, second := cfg.Groups[0], cfg.Groups[1]
	if got := second.Launch.Args; !slices.Equal(got, []string{"-c", "exec sleep 60"}) {
		t.Errorf("merged args = %q", got)
	}
	if got := second.Launch.StopTimeout.D(); got != 20*time.Second {
		t.Errorf("overriding stop_timeout = %v, want 20s", got)
	}
	if first.Launch.StopTimeout.D() != 5*time.Second {
		t.Errorf("the anchor's own stop_timeout changed: %v", first.Launch.StopTimeout)
	}
	if *second.Heal.MaxRestarts != 0 || second.Heal.BackoffBase.D() != 100*time.Millisecond {
		t.Errorf("aliased heal = %+v", second.Heal)
	}
	if len(second.HealthChecks) != 1 || second.HealthChecks[0].Interval.D() != 2*time.Second {
		t.Errorf("aliased health check = %+v", second.HealthChecks)
	}
}

// TestAliasedValuesAreChecked pins that the schema check follows aliases and
// merge keys: an unknown field in a merged mapping is an error, at its place.
func TestAliasedValuesAreChecked(t *testing.T) {
	_, err := Parse("mem.yaml", []byte(`groups:
  - name: a
    launch: &l
      command: sh
      comand: typo
  - name: b
    launch:
      <<: *l
      stop_timeout: 10x
`))
	want := `mem.yaml:5:7: unknown field "comand" (did you mean "command"?)
mem.yaml:9:21: stop_timeout: invalid duration "10x": use a number with a unit, like 500ms, 10s or 1m30s`
	if err == nil || err.Error() != want {
		t.Errorf("got\n%v\nwant\n%s", err, want)
	}
}

// TestMergeOrder pins the one place where go-yaml's merge keys differ from
// the YAML spec: a key written before a << that also sets it would be
// replaced by the merged value, so it is refused.
func TestMergeOrder(t *testing.T) {
	base := "groups:\n  - name: a\n    launch: &l {command: sh, stop_timeout: 5s}\n  - name: b\n    launch:\n"
	cfg, err := Parse("mem.yaml", []byte(base+"      <<: *l\n      stop_timeout: 7s\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Groups[1].Launch.StopTimeout.D(); got != 7*time.Second {
		t.Errorf("a key after << = %v, want 7s", got)
	}
	_, err = Parse("mem.yaml", []byte(base+"      stop_timeout: 7s\n      <<: *l\n"))
	want := `mem.yaml:6:7: "stop_timeout" is replaced by the << merge after it: put << before the keys that override it`
	if errString(err) != want {
		t.Errorf("a key before <<: got %v, want %s", err, want)
	}
	// A merged mapping is checked against the schema of the mapping it is
	// merged into.
	_, err = Parse("mem.yaml", []byte("groups:\n  - name: a\n    heal: &h {backoff_base: 1s}\n    launch:\n      <<: *h\n"))
	if want := `mem.yaml:3:15: unknown field "backoff_base" (known fields: `; !strings.HasPrefix(errString(err), want) {
		t.Errorf("merging a heal into a launch: got %v, want %s...", err, want)
	}
	// go-yaml merges one mapping, not a list of them.
	_, err = Parse("mem.yaml", []byte(base+"      <<: [*l]\n"))
	if want := `mem.yaml:6:7: << must merge one mapping, like <<: *defaults`; errString(err) != want {
		t.Errorf("merging a list: got %v, want %s", err, want)
	}
}

func TestRelativePathsAreResolvedAgainstTheConfigDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "app"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "work"), 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "autoheal.yaml")
	if err := os.WriteFile(p, []byte("groups:\n  - name: g\n    launch:\n      command: ./app\n  - name: h\n    launch:\n      command: app\n      workdir: work\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A command without a slash is looked up in PATH, never in the
	// config's directory.
	t.Setenv("PATH", dir)
	cfg, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []struct{ command, workdir string }{
		{filepath.Join(dir, "app"), dir},
		{filepath.Join(dir, "app"), filepath.Join(dir, "work")},
	} {
		l := cfg.Groups[i].Launch
		if l.Command != want.command || l.Workdir != want.workdir {
			t.Errorf("group %d: command %s workdir %s, want %s %s", i, l.Command, l.Workdir, want.command, want.workdir)
		}
	}
}

func TestUserNeedsRoot(t *testing.T) {
	cfg := "groups:\n  - name: g\n    launch:\n      command: sh\n      user: %s\n"
	if euid := os.Geteuid(); euid != 0 {
		_, err := Parse("mem.yaml", []byte(strings.Replace(cfg, "%s", "root", 1)))
		want := `mem.yaml:5:13: user "root": autoheal must run as root to run instances as another user`
		if err == nil || err.Error() != want {
			t.Errorf("got %v, want %s", err, want)
		}
		// Naming oneself needs no privilege.
		if _, err := Parse("mem.yaml", []byte(strings.Replace(cfg, "%s", strconv.Itoa(euid), 1))); err != nil {
			t.Errorf("user %d (ourselves): %v", euid, err)
		}
		return
	}
	for name, want := range map[string]string{
		"root":            "",
		"0":               "",
		"no-such-user-xy": `mem.yaml:5:13: user "no-such-user-xy" does not exist`,
		"4000000000":      `mem.yaml:5:13: user "4000000000" does not exist`,
	} {
		_, err := Parse("mem.yaml", []byte(strings.Replace(cfg, "%s", name, 1)))
		if got := errString(err); got != want {
			t.Errorf("user %s: got %q, want %q", name, got, want)
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestValidateBuiltInCode: a Config that did not come from a file has no
// positions, so its problems name the field instead.
func TestValidateBuiltInCode(t *testing.T) {
	c := &Config{Groups: []Group{
		{Name: "a", Launch: Launch{Command: "sh", Env: map[string]string{"1X": "y"}}},
		{Name: "a", Launch: Launch{Command: "sh"}, HealthChecks: []HealthCheck{{Type: "tcp"}}},
	}}
	err := c.Validate()
	want := `groups[0].launch.env["1X"]: env name "1X" is not a valid environment variable name ([A-Za-z_][A-Za-z0-9_]*)
groups[1].name: duplicate group name "a" (first at groups[0].name)
groups[1].health_checks[0].port: tcp health check needs a port: a number, or the name of one of the group's ports or addresses`
	if errString(err) != want {
		t.Errorf("got\n%v\nwant\n%s", err, want)
	}
	if _, ok := errors.AsType[*Errors](err); !ok {
		t.Errorf("want *Errors, got %T", err)
	}
	ok := &Config{Groups: []Group{{Name: "a", Launch: Launch{Command: "sh"}}}}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	if ok.Groups[0].Launch.StopTimeout != DefaultStopTimeout || !filepath.IsAbs(ok.Groups[0].Launch.Command) {
		t.Errorf("Validate did not fill defaults: %+v", ok.Groups[0].Launch)
	}
}

func TestLoadMissingFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "nope.yaml")
	_, err := Load(p)
	if want := p + ": cannot read config: no such file or directory"; errString(err) != want {
		t.Errorf("got %v, want %s", err, want)
	}
}

func TestErrorFormat(t *testing.T) {
	es := &Errors{
		{File: "a.yaml", Line: 3, Col: 7, Msg: "first"},
		{File: "a.yaml", Msg: "no position"},
		{Msg: "no file"},
	}
	if got, want := es.Error(), "a.yaml:3:7: first\na.yaml: no position\nno file"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"10s": 10 * time.Second, "1m30s": 90 * time.Second, "250ms": 250 * time.Millisecond, "0": 0, "": 0, "1h": time.Hour,
	} {
		if got, err := ParseDuration(in); err != nil || got.D() != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for in, msg := range map[string]string{
		"10x": `invalid duration "10x": use a number with a unit, like 500ms, 10s or 1m30s`,
		"10":  `invalid duration "10": use a number with a unit, like 500ms, 10s or 1m30s`,
		"-1s": `invalid duration "-1s": must not be negative`,
	} {
		if _, err := ParseDuration(in); errString(err) != msg {
			t.Errorf("ParseDuration(%q): %v, want %s", in, err, msg)
		}
	}
}

func TestDurationString(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", 250 * time.Millisecond: "250ms", 10 * time.Second: "10s", 2 * time.Minute: "2m",
		90 * time.Second: "1m30s", time.Hour: "1h", time.Hour + time.Second: "1h0m1s", 90 * time.Minute: "1h30m",
	} {
		got := Duration(d).String()
		if got != want {
			t.Errorf("Duration(%v).String() = %q, want %q", d, got, want)
		}
		if back, err := ParseDuration(got); err != nil || back.D() != d {
			t.Errorf("%q reads back as %v, %v", got, back, err)
		}
	}
}

func TestParseByteSize(t *testing.T) {
	for in, want := range map[string]int64{
		"100": 100, "0": 0, "100B": 100, "1KiB": 1024, "512KiB": 512 << 10, "10MiB": 10 << 20, "1GiB": 1 << 30,
		"10MB": 10e6, "1KB": 1000, "1.5KiB": 1536, " 2 MiB ": 2 << 20,
	} {
		if got, err := ParseByteSize(in); err != nil || got != want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "x", "-1", "-1KiB", "10XB", "10mib", "1e3", "1.5", "Inf", "NaN", "KiB", "99999999TiB"} {
		if n, err := ParseByteSize(bad); err == nil {
			t.Errorf("ParseByteSize(%q) = %d, want an error", bad, n)
		}
	}
	for _, s := range []ByteSize{0, 100, 1536, 1 << 20, 10 << 20, 1 << 30, 3 << 40} {
		if back, err := ParseByteSize(s.String()); err != nil || ByteSize(back) != s {
			t.Errorf("%d -> %q -> %d, %v", s, s.String(), back, err)
		}
	}
}

func TestSignal(t *testing.T) {
	for in, want := range map[string]syscall.Signal{
		"SIGTERM": syscall.SIGTERM, "term": syscall.SIGTERM, "": syscall.SIGTERM, "INT": syscall.SIGINT,
		"sigkill": syscall.SIGKILL, "HUP": syscall.SIGHUP, "SIGUSR1": syscall.SIGUSR1, "usr2": syscall.SIGUSR2, "QUIT": syscall.SIGQUIT,
	} {
		if got, err := Signal(in); err != nil || got != want {
			t.Errorf("Signal(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"SIGFOO", "SIGSTOP", "15", "SIG"} {
		if _, err := Signal(bad); err == nil || !strings.Contains(err.Error(), "SIGTERM") {
			t.Errorf("Signal(%q) = %v, want an error listing the signals", bad, err)
		}
	}
}

func TestHealthCheckPort(t *testing.T) {
	for _, c := range []struct {
		port   string
		num    int
		isNum  bool
		addr   string
		isAddr bool
	}{
		{"8080", 8080, true, "", false},
		{"http", 0, false, "http", true},
		{"", 0, false, "", false},
	} {
		h := HealthCheck{Port: c.port}
		n, isNum := h.PortNumber()
		a, isAddr := h.AddressName()
		if n != c.num || isNum != c.isNum || a != c.addr || isAddr != c.isAddr {
			t.Errorf("Port %q: PortNumber %d %v, AddressName %q %v", c.port, n, isNum, a, isAddr)
		}
	}
}

func TestEnvName(t *testing.T) {
	for in, want := range map[string]string{"data": "DATA", "my-vol": "MY_VOL", "a_b": "A_B", "v1.2": "V1_2"} {
		if got := EnvName(in); got != want {
			t.Errorf("EnvName(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestAliasBomb pins that a small file whose aliases expand to a huge tree
// (here about a million nodes) is refused instead of being expanded.
func TestAliasBomb(t *testing.T) {
	checks := "[&c {type: process}" + strings.Repeat(", *c", 999) + "]"
	group := "&g {name: g, launch: {command: sh}, health_checks: " + checks + "}"
	data := "groups: [" + group + strings.Repeat(", *g", 999) + "]\n"
	_, err := Parse("bomb.yaml", []byte(data))
	if want := "bomb.yaml:1:"; err == nil || !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), "too large") {
		t.Fatalf("got %.300v, want a single %s... too large error", err, want)
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
		if err != nil {
			errs, ok := errors.AsType[*Errors](err)
			if !ok || len(*errs) == 0 {
				t.Fatalf("error is not a positioned *Errors: %v", err)
			}
			for _, e := range *errs {
				if e.Line < 1 || e.Col < 1 {
					t.Fatalf("problem without a position: %v", e)
				}
			}
		}
	})
}

func TestLoadBalancerDefaults(t *testing.T) {
	cfg, err := Parse("mem.yaml", []byte(`
groups:
  - name: web
    max: 3
    launch:
      command: sh
      ports: [http]
load_balancers:
  - name: front
    listeners:
      - {protocol: http, listen: "127.0.0.1:9", target_group: web}
      - {protocol: tcp, listen: "127.0.0.1:10", target_group: raw}
    target_groups:
      - name: web
        groups: [{group: web}]
        targets: [{address: "127.0.0.1:11"}]
        health_check: {interval: 1s}
      - name: raw
        protocol: tcp
        groups: [{group: web, port: 8080}]
        retries: 0
`))
	if err != nil {
		t.Fatal(err)
	}
	lb := cfg.LoadBalancers[0]
	h, tcp := lb.Listeners[0], lb.Listeners[1]
	web, raw := lb.TargetGroups[0], lb.TargetGroups[1]
	checks := []struct {
		name      string
		got, want any
	}{
		{"idle_timeout", h.IdleTimeout.D(), 60 * time.Second},
		{"first_byte_timeout", h.FirstByteTimeout.D(), 10 * time.Second},
		{"tcp first_byte_timeout", tcp.FirstByteTimeout.D(), 10 * time.Second},
		{"header_timeout", h.HeaderTimeout.D(), 10 * time.Second},
		{"max_header_bytes", h.MaxHeaderBytes, ByteSize(64 << 10)},
		{"max_body_bytes", h.MaxBodyBytes, ByteSize(100 << 20)},
		{"max_connections", h.MaxConnections, 10000},
		{"tls", h.TLS, (*TLS)(nil)},
		{"tcp idle_timeout", tcp.IdleTimeout.D(), 60 * time.Second},
		{"tcp max_connections", tcp.MaxConnections, 10000},
		{"tcp header_timeout is http's", tcp.HeaderTimeout, Duration(0)},
		{"tcp max_header_bytes is http's", tcp.MaxHeaderBytes, ByteSize(0)},
		{"tcp max_body_bytes is http's", tcp.MaxBodyBytes, ByteSize(0)},
		{"protocol", web.Protocol, "http"},
		{"algorithm", web.Algorithm, "round_robin"},
		{"deregistration_delay", web.DeregistrationDelay.D(), 30 * time.Second},
		{"slow_start", web.SlowStart.D(), time.Duration(0)},
		{"hold_timeout", web.HoldTimeout.D(), 10 * time.Second},
		{"retries", *web.Retries, 2},
		{"retries 0 stays 0", raw.RetryCount(), 0},
		{"connect_timeout", web.ConnectTimeout.D(), 2 * time.Second},
		{"response_timeout", web.ResponseTimeout.D(), 60 * time.Second},
		{"tcp response_timeout is http's", raw.ResponseTimeout, Duration(0)},
		{"member port: the group's only named port", web.Groups[0].Port, "http"},
		{"member port as written", raw.Groups[0].Port, "8080"},
		{"member weight", web.Groups[0].Weight, 1},
		{"target weight", web.Targets[0].Weight, 1},
		{"target id: its address", web.Targets[0].ID, "127.0.0.1:11"},
		{"check protocol: the target group's", web.HealthCheck.Protocol, "http"},
		{"check path", web.HealthCheck.Path, "/"},
		{"check matcher", web.HealthCheck.Matcher, "200-399"},
		{"check timeout: min(interval, 2s)", web.HealthCheck.Timeout.D(), time.Second},
		{"check healthy_threshold", web.HealthCheck.HealthyThreshold, 2},
		{"check unhealthy_threshold", web.HealthCheck.UnhealthyThreshold, 2},
		{"tcp check protocol", raw.HealthCheck.Protocol, "tcp"},
		{"tcp check interval", raw.HealthCheck.Interval.D(), 5 * time.Second},
		{"tcp check timeout", raw.HealthCheck.Timeout.D(), 2 * time.Second},
		{"tcp check path is http's", raw.HealthCheck.Path, ""},
		{"tcp check matcher is http's", raw.HealthCheck.Matcher, ""},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

// TestTLSKeyMismatch: a key that is not the certificate's is refused when
// the config is validated, not at the listener's first handshake.
func TestTLSKeyMismatch(t *testing.T) {
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "other-key.pem")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := filepath.Abs("testdata/lb-cert.pem")
	_, err = Parse("mem.yaml", []byte(`groups:
  - name: web
    launch: {command: sh, ports: [http]}
load_balancers:
  - name: front
    listeners:
      - protocol: http
        listen: 127.0.0.1:9
        target_group: web
        tls: {cert_file: `+cert+`, key_file: `+keyFile+`}
    target_groups:
      - {name: web, groups: [{group: web}]}
`))
	want := "mem.yaml:10:26: cert_file and key_file do not load as a certificate and its key: tls: private key does not match public key"
	if errString(err) != want {
		t.Errorf("got %v, want %s", err, want)
	}
}

// TestLoadBalancerBuiltInCode: values the parser refuses (negative
// durations) can still reach Validate from code, and are named by path.
func TestLoadBalancerBuiltInCode(t *testing.T) {
	c := &Config{
		Groups: []Group{{Name: "web", Launch: Launch{Command: "sh", Ports: []string{"http"}}}},
		LoadBalancers: []LoadBalancer{{
			Name:      "front",
			Listeners: []Listener{{Protocol: ProtocolHTTP, Listen: "127.0.0.1:9", TargetGroup: "web", IdleTimeout: -1}},
			TargetGroups: []TargetGroup{{
				Name: "web", Groups: []TargetGroupMember{{Group: "web"}}, HoldTimeout: Duration(-time.Second),
				HealthCheck: TargetHealthCheck{Interval: Duration(-time.Second)},
			}},
		}},
	}
	err := c.Validate()
	want := `load_balancers[0].listeners[0].idle_timeout: idle_timeout must not be negative, got -1ns
load_balancers[0].target_groups[0].health_check.interval: interval must not be negative, got -1s
load_balancers[0].target_groups[0].health_check.timeout: timeout must not be negative, got -1s
load_balancers[0].target_groups[0].hold_timeout: hold_timeout must not be negative, got -1s`
	if errString(err) != want {
		t.Errorf("got\n%v\nwant\n%s", err, want)
	}
}

func TestMatcher(t *testing.T) {
	for _, c := range []struct {
		matcher string
		yes, no []int
	}{
		{"200", []int{200}, []int{199, 201, 404}},
		{"200,204", []int{200, 204}, []int{201, 203, 205}},
		{"200-299", []int{200, 250, 299}, []int{199, 300}},
		{"200, 204-206, 302", []int{200, 204, 205, 206, 302}, []int{201, 207, 301}},
		{DefaultMatcher, []int{200, 301, 399}, []int{199, 400, 503}},
		{"", nil, []int{200}},
		{"2xx", nil, []int{200}},
	} {
		h := TargetHealthCheck{Matcher: c.matcher}
		for _, code := range c.yes {
			if !h.Matches(code) {
				t.Errorf("%q does not match %d", c.matcher, code)
			}
		}
		for _, code := range c.no {
			if h.Matches(code) {
				t.Errorf("%q matches %d", c.matcher, code)
			}
		}
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

func TestTargetGroupMemberPort(t *testing.T) {
	for _, c := range []struct {
		port   string
		num    int
		isNum  bool
		name   string
		isName bool
	}{
		{"8080", 8080, true, "", false},
		{"http", 0, false, "http", true},
		{"", 0, false, "", false},
	} {
		m := TargetGroupMember{Port: c.port}
		n, isNum := m.PortNumber()
		name, isName := m.PortName()
		if n != c.num || isNum != c.isNum || name != c.name || isName != c.isName {
			t.Errorf("Port %q: PortNumber %d %v, PortName %q %v", c.port, n, isNum, name, isName)
		}
	}
}
