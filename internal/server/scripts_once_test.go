package server_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/autoheal/autoheal/internal/api/wire"
	"github.com/autoheal/autoheal/internal/event"
	"github.com/autoheal/autoheal/internal/store"
)

// scriptsConfig runs every kind of script a launch and a termination have;
// each appends "INSTANCE NAME" to runs. Hook b sleeps, so a test can kill
// the controller while it runs.
func scriptsConfig(t *testing.T, runs string) string {
	return writeConfig(t, fmt.Sprintf(`
groups:
  - name: hooked
    min: 0
    launch:
      command: /bin/sh
      args: ["-c", "exec sleep 600"]
      user_data: echo "$AUTOHEAL_INSTANCE_ID user_data" >> '%[1]s'
      stop_timeout: 1s
    volumes:
      - name: data
        init: echo "$AUTOHEAL_INSTANCE_ID init" >> '%[1]s'
    heal:
      backoff_base: 10ms
    hooks:
      launch:
        - name: a
          script: echo "$AUTOHEAL_INSTANCE_ID a" >> '%[1]s'
          default_result: continue
        - name: b
          script: echo "$AUTOHEAL_INSTANCE_ID b" >> '%[1]s'; sleep 0.5
          default_result: abandon
      terminate:
        - name: bye
          script: echo "$AUTOHEAL_INSTANCE_ID bye" >> '%[1]s'
`, runs))
}

// scriptRuns counts the lines of runs by instance ordinal (1: the first
// launched, 2: its replacement) and script: "1 init", "2 a".
func scriptRuns(t *testing.T, runs string, ids []string) map[string]int {
	t.Helper()
	b, err := os.ReadFile(runs)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		id, name, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		n := -1
		for i, x := range ids {
			if x == id {
				n = i + 1
			}
		}
		out[fmt.Sprintf("%d %s", n, name)]++
	}
	return out
}

// launched are the group's instance ids, oldest first, terminated ones
// included.
func launched(t *testing.T, e *env) []wire.Instance {
	st, err := e.client.Status(context.Background(), true)
	if err != nil {
		t.Fatal(err)
	}
	ins := st.Instances
	sort.Slice(ins, func(i, j int) bool { return ins[i].LaunchedAt.Before(ins[j].LaunchedAt) })
	return ins
}

func runsOf(counts ...string) map[string]int {
	m := map[string]int{}
	for _, c := range counts {
		m[c] = 1
	}
	return m
}

// TestLaunchScriptsRunAtMostOnce (issue 15, "Exactly once"): the controller
// is killed before, during and after each of a launch's scripts (volume
// init, user_data, hooks a with default_result continue and b with
// abandon). A restarted controller never runs a script of that launch
// again: a script recorded as started with no outcome takes its hook's
// default_result, or fails the launch for user_data and volume init (the
// instance is replaced and the replacement runs its own scripts once).
func TestLaunchScriptsRunAtMostOnce(t *testing.T) {
	t.Parallel()
	all := []string{"init", "user_data", "a", "b"}
	cases := []struct {
		name  string
		point string // crash point; "" kills the controller while b runs
		// lost names the script settled as interrupted ("" for none).
		lost     string
		replaced bool
		want     map[string]int
	}{
		{"before volume init", "launch.script.started@1", "init", true,
			runsOf("2 init", "2 user_data", "2 a", "2 b", "1 bye")},
		// The init ran but the volume was never marked initialised: the
		// replacement's launch runs it again, as on any volume that is not
		// initialised.
		{"after volume init, unrecorded", "launch.script.ran@1", "init", true,
			runsOf("1 init", "2 init", "2 user_data", "2 a", "2 b", "1 bye")},
		{"before user_data", "launch.script.started@2", "user_data", true,
			runsOf("1 init", "2 user_data", "2 a", "2 b", "1 bye")},
		{"after user_data, unrecorded", "launch.script.ran@2", "user_data", true,
			runsOf("1 init", "1 user_data", "2 user_data", "2 a", "2 b", "1 bye")},
		{"before hook a (continue)", "launch.script.started@3", "a", false,
			runsOf("1 init", "1 user_data", "1 b")},
		{"after hook a (continue), unrecorded", "launch.script.ran@3", "a", false,
			runsOf("1 init", "1 user_data", "1 a", "1 b")},
		{"before hook b (abandon)", "launch.script.started@4", "b", true,
			runsOf("1 init", "1 user_data", "1 a", "2 user_data", "2 a", "2 b", "1 bye")},
		{"during hook b (abandon)", "", "b", true,
			runsOf("1 init", "1 user_data", "1 a", "1 b", "2 user_data", "2 a", "2 b", "1 bye")},
		{"after hook b (abandon), unrecorded", "launch.script.ran@4", "b", true,
			runsOf("1 init", "1 user_data", "1 a", "1 b", "2 user_data", "2 a", "2 b", "1 bye")},
		{"after every script recorded", "launch.proceed", "", false,
			runsOf("1 init", "1 user_data", "1 a", "1 b")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			runs := filepath.Join(t.TempDir(), "runs")
			cfg := scriptsConfig(t, runs)
			state := t.TempDir()
			if c.point != "" {
				crashAt(t, cfg, state, c.point, time.Minute)
			} else {
				e := startProcess(t, cfg, state)
				waitFor(t, 30*time.Second, "hook b to run", func() bool {
					b, _ := os.ReadFile(runs)
					return strings.HasSuffix(strings.TrimSpace(string(b)), " b")
				})
				e.kill9()
			}
			e := startProcess(t, cfg, state)
			defer func() {
				if t.Failed() {
					t.Logf("journal:\n%s", e.dumpEvents())
				}
			}()
			in := e.waitInService(1, 30*time.Second)[0]
			ins := launched(t, e)
			var ids []string
			for _, x := range ins {
				ids = append(ids, x.ID)
			}
			switch {
			case !c.replaced && (len(ins) != 1 || ins[0].ID != in.ID):
				t.Fatalf("instances %v, want the first one in service and no other:\n%s", ids, e.dumpEvents())
			case c.replaced && (len(ins) != 2 || ins[1].ID != in.ID):
				t.Fatalf("instances %v, want the first replaced by a second one in service:\n%s", ids, e.dumpEvents())
			case c.replaced:
				waitFor(t, 30*time.Second, "the first instance terminated", func() bool { return launched(t, e)[0].State == "Terminated" })
			}
			got := scriptRuns(t, runs, ids)
			for _, s := range all {
				for n := 1; n <= len(ids); n++ {
					k := fmt.Sprintf("%d %s", n, s)
					if got[k] != c.want[k] {
						t.Fatalf("%q ran %d times, want %d; all runs %v:\n%s", k, got[k], c.want[k], got, e.dumpEvents())
					}
				}
			}
			if got["1 bye"] != c.want["1 bye"] || len(got) != len(c.want) {
				t.Fatalf("runs %v, want %v", got, c.want)
			}
			if c.lost != "" && !interrupted(e.events(), ids[0], c.lost) {
				t.Fatalf("no event says %s of %s was interrupted:\n%s", c.lost, ids[0], e.dumpEvents())
			}
		})
	}
}

// interrupted reports whether the journal settles script name of instance
// id as interrupted by a controller restart.
func interrupted(evs []store.Event, id, name string) bool {
	for _, ev := range evs {
		if ev.Instance != id {
			continue
		}
		switch d := ev.Data.(type) {
		case event.InstanceHook:
			if d.Hook == name && d.Interrupted {
				return true
			}
		case event.InstanceUserData:
			if name == "user_data" && d.Interrupted {
				return true
			}
		case event.VolumeInit:
			if name == "init" && d.Interrupted {
				return true
			}
		}
	}
	return false
}

// TestTerminateHookRunsAtMostOnce: the controller is killed before and
// after a terminate hook of an operator's termination; the restarted
// controller finishes the termination without running the hook again.
func TestTerminateHookRunsAtMostOnce(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		point string
		runs  int
	}{{"terminate.script.started", 0}, {"terminate.script.ran", 1}} {
		t.Run(c.point, func(t *testing.T) {
			t.Parallel()
			runs := filepath.Join(t.TempDir(), "runs")
			cfg := scriptsConfig(t, runs)
			state := t.TempDir()
			ctl := startCrashing(t, cfg, state, c.point)
			client := ctl.client()
			var id string
			waitFor(t, 30*time.Second, "an instance in service", func() bool {
				st, err := client.Status(context.Background(), false)
				if err == nil && len(st.Instances) == 1 && st.Instances[0].State == "InService" {
					id = st.Instances[0].ID
					return true
				}
				return false
			})
			if _, err := client.Terminate(context.Background(), id, true); err != nil {
				t.Fatal(err)
			}
			ctl.wait(time.Minute)
			e := startProcess(t, cfg, state)
			waitFor(t, 30*time.Second, "the instance terminated", func() bool {
				ins := launched(t, e)
				return len(ins) == 1 && ins[0].State == "Terminated"
			})
			if got := scriptRuns(t, runs, []string{id})["1 bye"]; got != c.runs {
				t.Fatalf("terminate hook ran %d times, want %d:\n%s", got, c.runs, e.dumpEvents())
			}
			if !interrupted(e.events(), id, "bye") {
				t.Fatalf("no event says the terminate hook was interrupted:\n%s", e.dumpEvents())
			}
		})
	}
}
