package reload

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/autoheal/autoheal/internal/config"
)

const base = `
groups:
  - name: web
    desired: 2
    max: 3
    launch: {command: /bin/true, ports: [http]}
    health_checks: [{type: http, port: http, path: /healthz}]
  - name: db
    launch: {command: /bin/true}
    volumes: [{name: data}]
channels:
  - {name: ops, type: webhook, url: "http://127.0.0.1:1/"}
alarms:
  - {name: cpu, namespace: App, metric: cpu, statistic: Average, period: 1m, evaluation_periods: 1, comparison: GreaterThanThreshold, threshold: 90}
`

// parse reads a config as if it were dir/autoheal.yaml: the same file
// read twice (relative paths are relative to its directory).
func parse(t *testing.T, text string) *config.Config {
	t.Helper()
	c, err := config.Parse(filepath.Join(os.TempDir(), "autoheal.yaml"), []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// summary is a plan in one line per change: KIND OBJECT [FIELDS] [INSTANCES].
func summary(cs []Change) string {
	var lines []string
	for _, c := range cs {
		l := c.Kind + " " + c.Object
		if len(c.Fields) > 0 {
			l += " [" + strings.Join(c.Fields, ",") + "]"
		}
		if len(c.Instances) > 0 {
			l += " (" + strings.Join(c.Instances, ",") + ")"
		}
		if c.HasVolumes {
			l += " volumes"
		}
		lines = append(lines, l)
	}
	return strings.Join(lines, "\n")
}

func TestPlan(t *testing.T) {
	live := map[string][]string{"web": {"i-1", "i-2"}, "db": {"i-3"}}
	cases := []struct {
		name string
		edit func(string) string
		want string
	}{
		{"nothing", func(s string) string { return s }, ""},
		{"a new command replaces the instances",
			func(s string) string {
				return strings.Replace(s, "command: /bin/true, ports", "command: /bin/echo, ports", 1)
			},
			"replace group web [launch] (i-1,i-2)"},
		{"a health check changes in place",
			func(s string) string { return strings.Replace(s, "path: /healthz", "path: /ready", 1) },
			"update group web [health_checks]"},
		{"capacity scales",
			func(s string) string { return strings.Replace(s, "desired: 2", "desired: 3", 1) },
			"scale group web [desired]"},
		{"a parameter is the environment: replaced",
			func(s string) string {
				return strings.Replace(s, "    volumes: [{name: data}]", "    volumes: [{name: data}]\n    parameters: [{name: MODE, value: fast}]", 1)
			},
			"replace group db [parameters] (i-3)"},
		{"a group with volumes removed says so",
			func(s string) string {
				return strings.Replace(s, "  - name: db\n    launch: {command: /bin/true}\n    volumes: [{name: data}]\n", "", 1)
			},
			"remove group db (i-3) volumes"},
		{"a group added",
			func(s string) string {
				return strings.Replace(s, "channels:", "  - name: api\n    launch: {command: /bin/true}\nchannels:", 1)
			},
			"add group api"},
		{"alarm changed, channel removed, alarm added",
			func(s string) string {
				s = strings.Replace(s, "threshold: 90}", "threshold: 80}\n  - {name: mem, namespace: App, metric: mem, statistic: Average, period: 1m, evaluation_periods: 1, comparison: GreaterThanThreshold, threshold: 90}", 1)
				return strings.Replace(s, "channels:\n  - {name: ops, type: webhook, url: \"http://127.0.0.1:1/\"}\n", "", 1)
			},
			"update alarm cpu [threshold]\nadd alarm mem\nremove channel ops"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := summary(Plan(parse(t, base), parse(t, c.edit(base)), live))
			if got != c.want {
				t.Fatalf("plan:\n%s\nwant:\n%s", got, c.want)
			}
		})
	}
}

// A cluster's settings cannot be reloaded.
func TestPlanClusterNeedsRestart(t *testing.T) {
	a := parse(t, base)
	b := parse(t, base)
	b.Cluster.LeaseTTL = config.Duration(5e9)
	cs := Plan(a, b, nil)
	if len(cs) != 1 || cs[0].Kind != Restart || cs[0].Object != "cluster" {
		t.Fatalf("%+v", cs)
	}
}
