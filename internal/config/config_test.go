package config

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
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
			Volumes: []Volume{{Name: "data", MountPath: "/var/lib/pet", Init: `echo init > "$AUTOHEAL_VOLUME_DATA/x"`, Kind: VolumeLocal}},
			Addresses: []Address{
				{Name: "http", Kind: "listen", Listen: "127.0.0.1:18080", Mode: "proxy", Port: 18081, WaitTimeout: Duration(10 * time.Second)},
				{Name: "metrics", Kind: "listen", Listen: "127.0.0.1:18090", Mode: "socket", WaitTimeout: DefaultWaitTimeout},
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
