package server_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

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

// refreshUnderLoad refreshes the web group of n under load through the
// load balancer, from the CLI, and returns the load and the env: every
// old instance must be replaced, and no request may fail.
func refreshUnderLoad(t *testing.T, n int, tgExtra string, flags ...string) (*loadGen, *env) {
	e, base := startWeb(t, n, tgExtra)
	old := instanceIDs(e.live())
	load := startLoad(t, base, map[string]int{"/": 8})
	load.waitRequests(100, 20*time.Second)
	args := append([]string{"--addr", e.apiAddr, "refresh", "start", "web"}, flags...)
	if out, err := exec.Command(bins.autoheal, args...).CombinedOutput(); err != nil {
		t.Fatalf("refresh start: %v\n%s", err, out)
	}
	var r wire.Refresh
	waitFor(t, 90*time.Second, "the refresh to end", func() bool {
		var err error
		r, err = e.client.Refresh(context.Background(), "web")
		return err == nil && r.Status != "InProgress"
	})
	if r.Status != "Successful" || len(r.Replaced) != n || r.ToReplace != n {
		t.Fatalf("refresh %+v\n%s", r, e.dumpEvents())
	}
	for _, in := range e.live() {
		if slices.Contains(old, in.ID) {
			t.Errorf("instance %s was not replaced", in.ID)
		}
	}
	load.waitRequests(100, 10*time.Second)
	load.check(e)
	return load, e
}

// TestRefreshGroupOfThreeUnderLoad: a group of three is refreshed one
// instance at a time (66 %), each drained by the load balancer first:
// not one request fails.
func TestRefreshGroupOfThreeUnderLoad(t *testing.T) {
	t.Parallel()
	_, e := refreshUnderLoad(t, 3, "", "--min-healthy-percentage", "66")
	out, err := exec.Command(bins.autoheal, "--addr", e.apiAddr, "refresh", "status", "web").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "refresh Successful, 3 of 3 replaced") {
		t.Errorf("refresh status: %v\n%s", err, out)
	}
	// A second refresh cannot start while one runs; a cancel of none is
	// refused.
	if out, err := exec.Command(bins.autoheal, "--addr", e.apiAddr, "refresh", "cancel", "web").CombinedOutput(); err == nil {
		t.Errorf("cancelling no refresh: %s", out)
	}
}

// TestRefreshGroupOfOneUnderLoad: a group of one is replaced as a heal:
// requests wait (the load balancer holds them), none fails.
func TestRefreshGroupOfOneUnderLoad(t *testing.T) {
	t.Parallel()
	load, _ := refreshUnderLoad(t, 1, "        hold_timeout: 10s\n")
	load.mu.Lock()
	defer load.mu.Unlock()
	t.Logf("the longest request waited %s", load.maxLat.Round(time.Millisecond))
}
