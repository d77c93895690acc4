package server_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/autoheal/autoheal/internal/api/wire"
)

// TestDiffCLI: `autoheal diff` says what reloading a file would do, from
// the running controller: the instances a new launch template replaces,
// a health check changed in place, a channel added; an invalid file is
// refused naming FILE:LINE, and nothing changes.
func TestDiffCLI(t *testing.T) {
	t.Parallel()
	e, _ := startWeb(t, 2, "")
	live := e.live()
	cli := func(wantOK bool, args ...string) string {
		t.Helper()
		out, err := exec.Command(bins.autoheal, append([]string{"--addr", e.apiAddr}, args...)...).CombinedOutput()
		if (err == nil) != wantOK {
			t.Fatalf("autoheal %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	if out := cli(true, "diff"); !strings.Contains(out, "no change") {
		t.Errorf("diff of the running file: %s", out)
	}
	text, err := os.ReadFile(e.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	next := strings.Replace(string(text), "stop_timeout: 5s", "stop_timeout: 6s", 1)
	next = strings.Replace(next, "        interval: 1s\n        timeout: 500ms\n        unhealthy_threshold: 2\n    heal:",
		"        interval: 2s\n        timeout: 500ms\n        unhealthy_threshold: 2\n    heal:", 1)
	next += "\nchannels:\n  - {name: ops, type: webhook, url: \"http://127.0.0.1:1/\"}\n"
	newPath := filepath.Join(filepath.Dir(e.cfgPath), "next.yaml")
	os.WriteFile(newPath, []byte(next), 0o644)
	var p wire.Plan
	if err := json.Unmarshal([]byte(cli(true, "diff", "--config", newPath, "-o", "json")), &p); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range p.Changes {
		got = append(got, c.Kind+" "+c.Object+" "+strings.Join(c.Fields, ","))
		if c.Kind == "replace" {
			for _, in := range live {
				if !slices.Contains(c.Instances, in.ID) {
					t.Errorf("the replace does not list instance %s: %+v", in.ID, c)
				}
			}
		}
	}
	want := []string{"replace group web launch", "update group web health_checks", "add channel ops "}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("plan %q, want %q", got, want)
	}
	table := cli(true, "diff", "--config", newPath)
	t.Logf("diff:\n%s", table)
	if !strings.Contains(table, "replace") || !strings.Contains(table, live[0].ID) {
		t.Errorf("diff's table:\n%s", table)
	}
	bad := filepath.Join(filepath.Dir(e.cfgPath), "bad.yaml")
	os.WriteFile(bad, []byte(strings.Replace(next, "desired: 2", "desired: lots", 1)), 0o644)
	out := cli(false, "diff", "--config", bad)
	t.Logf("an invalid file:\n%s", out)
	if !strings.Contains(out, "bad.yaml:") || !strings.Contains(out, "desired") {
		t.Errorf("an invalid file: %s", out)
	}
	// Nothing was applied: the same instances, the same config.
	if now := e.live(); len(now) != 2 || now[0].ID != live[0].ID && now[0].ID != live[1].ID {
		t.Errorf("instances changed: %+v", now)
	}
}
