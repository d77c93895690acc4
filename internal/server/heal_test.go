package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/autoheal/autoheal/internal/api/wire"
	"github.com/autoheal/autoheal/internal/event"
)

func newLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// petConfig is the pet example with a test port and tunable policy.
func petConfig(port int, extra string) string {
	return fmt.Sprintf(`
groups:
  - name: pet
    launch:
      command: {{PET}}
      stop_timeout: 2s
    volumes:
      - name: data
        init: echo initialised > "$AUTOHEAL_VOLUME_DATA/CREATED"
    addresses:
      - name: http
        listen: 127.0.0.1:%d
        wait_timeout: 20s
    health_checks:
      - type: http
        path: /healthz
        interval: 100ms
        timeout: 100ms
        unhealthy_threshold: 2
%s`, port, extra)
}

const fastHeal = `    heal:
      max_restarts: 2
      backoff_base: 10ms
      backoff_cap: 50ms
      max_replacements: 10
`

func TestCrashIsHealedWithDataIntactAtSameAddress(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	e := startInProcess(t, writeConfig(t, petConfig(port, fastHeal)), "")
	first := e.waitInService(1, 20*time.Second)[0]
	base := fmt.Sprintf("http://127.0.0.1:%d", port)

	for i := 0; i < 50; i++ {
		if code, b, err := httpPost(base+"/write", fmt.Sprintf("entry-%d", i)); err != nil || code != 200 {
			t.Fatalf("write %d: %d %v %s", i, code, err, b)
		}
		if code, _, err := httpPost(base+"/incr", ""); err != nil || code != 200 {
			t.Fatalf("incr: %d %v", code, err)
		}
	}
	before := getPet(t, base)
	if before.Counter != 50 || before.Writes != 50 {
		t.Fatalf("before crash: %+v", before)
	}

	// Three crashes: two restarts in place (max_restarts 2), then a replacement.
	ids := map[string]bool{first.ID: true}
	for round := 0; round < 3; round++ {
		pid := e.live()[0].Pid
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatalf("kill %d: %v", pid, err)
		}
		var after petInfo
		waitFor(t, 20*time.Second, "pet to answer with a new pid", func() bool {
			code, b, err := httpGet(base + "/")
			if err != nil || code != 200 {
				return false
			}
			json.Unmarshal(b, &after)
			return after.Pid != pid
		})
		if after.Counter != 50 || after.Writes != 50 {
			t.Fatalf("round %d: data lost: %+v\n%s", round, after, e.dumpEvents())
		}
		if code, b, _ := httpGet(base + "/verify"); code != 200 {
			t.Fatalf("round %d: verify: %s", round, b)
		}
		in := e.waitInService(1, 20*time.Second)[0]
		ids[in.ID] = true
		if round < 2 && in.ID != first.ID {
			t.Fatalf("round %d: restart in place must keep the id %s, got %s", round, first.ID, in.ID)
		}
	}
	if len(ids) != 2 {
		t.Fatalf("expected the third crash to replace the instance, ids: %v\n%s", ids, e.dumpEvents())
	}
	// Restarts in place keep the volume; the replacement took it over with a
	// higher fencing token.
	st, _ := e.client.Status(context.Background(), false)
	var vol wire.Attachment
	for _, a := range st.Groups[0].Attachments {
		if a.Kind == "volume" {
			vol = a
		}
	}
	if vol.Holder != e.live()[0].ID || vol.Token != 2 {
		t.Fatalf("volume attachment %+v, want held by %s with token 2", vol, e.live()[0].ID)
	}
	// Every transition is in the journal with its cause.
	var sawExit, sawRestart, sawReplace bool
	for _, ev := range e.events() {
		switch d := ev.Data.(type) {
		case event.InstanceExit:
			sawExit = sawExit || d.Signal == "SIGKILL"
		case event.InstanceHeal:
			sawRestart = sawRestart || d.Action == "restart"
			sawReplace = sawReplace || d.Action == "replace"
		}
	}
	if !sawExit || !sawRestart || !sawReplace {
		t.Fatalf("journal misses exit/restart/replace events:\n%s", e.dumpEvents())
	}
}

func TestHungInstanceIsReplacedByHealthCheck(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	e := startInProcess(t, writeConfig(t, petConfig(port, `    heal:
      max_restarts: 0
      backoff_base: 10ms
`)), "")
	first := e.waitInService(1, 20*time.Second)[0]
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	httpPost(base+"/incr", "")
	if code, _, _ := httpPost(base+"/hang", ""); code != 202 {
		t.Fatalf("hang: %d", code)
	}
	var after petInfo
	waitFor(t, 20*time.Second, "a replacement to answer", func() bool {
		code, b, err := httpGet(base + "/")
		if err != nil || code != 200 {
			return false
		}
		json.Unmarshal(b, &after)
		return after.Instance != first.ID
	})
	if after.Counter != 1 {
		t.Fatalf("counter after hang replacement = %d, want 1", after.Counter)
	}
	// The old instance's decision is journaled with its termination, just
	// after the replacement's application started: possibly a moment after
	// the replacement first answers.
	waitFor(t, 10*time.Second, "a heal decision caused by the health check", func() bool {
		for _, ev := range e.events() {
			if d, ok := ev.Data.(event.InstanceHeal); ok && ev.Instance == first.ID && d.Action == "replace" &&
				strings.HasPrefix(d.Failure, "http health check unhealthy") {
				return true
			}
		}
		return false
	})
}

func TestStubbornInstanceIsKilledBeforeTheVolumeMoves(t *testing.T) {
	t.Parallel()
	// The app ignores SIGTERM and writes heartbeats into its volume. If two
	// instances ever held the volume at once, their lines would interleave.
	cfg := writeConfig(t, `
groups:
  - name: stubborn
    launch:
      command: /bin/sh
      args: ["-c", "trap '' TERM; while :; do echo \"$AUTOHEAL_INSTANCE_ID\" >> \"$AUTOHEAL_VOLUME_DATA/beats\"; sleep 0.01; done"]
      stop_timeout: 500ms
    volumes:
      - name: data
`)
	e := startInProcess(t, cfg, "")
	first := e.waitInService(1, 20*time.Second)[0]
	beats := filepath.Join(e.stateDir, "volumes", "stubborn", "data", "data", "beats")
	// beatsBy counts the heartbeats id wrote.
	beatsBy := func(id string) int {
		b, _ := os.ReadFile(beats)
		n := 0
		for _, l := range strings.Fields(string(b)) {
			if l == id {
				n++
			}
		}
		return n
	}
	waitFor(t, 10*time.Second, "the first instance to write heartbeats", func() bool { return beatsBy(first.ID) >= 5 })
	if _, err := e.client.Terminate(context.Background(), first.ID, false); err != nil {
		t.Fatal(err)
	}
	var second string
	waitFor(t, 20*time.Second, "a replacement", func() bool {
		for _, in := range e.live() {
			if in.ID != first.ID && in.State == "InService" {
				second = in.ID
				return true
			}
		}
		return false
	})
	waitFor(t, 10*time.Second, "the replacement to write heartbeats", func() bool { return beatsBy(second) >= 5 })
	b, err := os.ReadFile(beats)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Fields(string(b))
	switchedAt := -1
	for i, l := range lines {
		if l == second && switchedAt < 0 {
			switchedAt = i
		}
		if switchedAt >= 0 && l != second {
			t.Fatalf("line %d: %s wrote after %s took the volume: two holders", i, l, second)
		}
	}
	if switchedAt <= 0 {
		t.Fatalf("beats do not show the old then the new instance: %d lines", len(lines))
	}
	var killed bool
	for _, ev := range e.events() {
		if ev.Type == "instance.exit" && ev.Instance == first.ID && strings.Contains(ev.Message, "SIGKILL") {
			killed = true
		}
	}
	if !killed {
		t.Fatalf("old instance was not SIGKILLed after ignoring SIGTERM:\n%s", e.dumpEvents())
	}
}

// TestCrashLoopBacksOffAndImpairsTheGroup: an application that always
// exits is restarted in place max_restarts times, then replaced, with the
// documented backoff between consecutive heals, measured between each
// decision and the action it delays; one replacement more than
// max_replacements impairs the group, which then launches nothing until
// an operator scales it, and starts a fresh series then.
func TestCrashLoopBacksOffAndImpairsTheGroup(t *testing.T) {
	t.Parallel()
	cfg := writeConfig(t, `
groups:
  - name: loop
    launch:
      command: /bin/sh
      args: ["-c", "echo starting; exit 1"]
    heal:
      max_restarts: 2
      backoff_base: 20ms
      backoff_cap: 160ms
      max_replacements: 2
`)
	e := startInProcess(t, cfg, "")
	waitFor(t, 30*time.Second, "group Impaired with its last instance terminated", func() bool {
		st, err := e.client.Status(context.Background(), false)
		return err == nil && len(st.Groups) == 1 && st.Groups[0].Status == "Impaired" && len(st.Instances) == 0
	})
	type decision struct {
		seq           int64
		instance      string
		action        string
		delay         time.Duration
		at, notBefore time.Time
		actedAt       time.Time // the restart's Pending:Proceed, the replacement's Pending
	}
	var ds []*decision
	var impairedSeq, lastPendingSeq int64
	launches := 0
	byInstance := map[string]*decision{} // the decision waiting for its action
	for _, ev := range e.events() {
		switch d := ev.Data.(type) {
		case event.InstanceHeal:
			x := &decision{seq: ev.Seq, instance: ev.Instance, action: d.Action, delay: time.Duration(d.DelayMS) * time.Millisecond, at: ev.Time}
			if d.NotBefore != "" {
				x.notBefore, _ = time.Parse(time.RFC3339Nano, d.NotBefore)
			}
			ds = append(ds, x)
			byInstance[ev.Instance] = x
		case event.InstanceState:
			switch {
			case d.To == "Pending:Proceed":
				launches++
				if x := byInstance[ev.Instance]; x != nil && x.action == "restart" && x.actedAt.IsZero() {
					x.actedAt = ev.Time
				}
			case d.To == "Pending" && d.From == "":
				lastPendingSeq = ev.Seq
				if x := byInstance[d.Replaces]; x != nil && x.action == "replace" && x.actedAt.IsZero() {
					x.actedAt = ev.Time
				}
			}
		case event.GroupImpaired:
			impairedSeq = ev.Seq
		}
	}
	// Three instances, each restarted twice then replaced; the third
	// replacement would exceed max_replacements 2.
	const ms = time.Millisecond
	want := []struct {
		action string
		delay  time.Duration
	}{
		{"restart", 0}, {"restart", 20 * ms}, {"replace", 40 * ms},
		{"restart", 80 * ms}, {"restart", 160 * ms}, {"replace", 160 * ms},
		{"restart", 160 * ms}, {"restart", 160 * ms}, {"impair", 0},
	}
	if len(ds) != len(want) {
		t.Fatalf("%d heal decisions, want %d:\n%s", len(ds), len(want), e.dumpEvents())
	}
	instances := map[string]bool{}
	for i, w := range want {
		d := ds[i]
		instances[d.instance] = true
		if d.action != w.action || d.delay != w.delay {
			t.Fatalf("decision %d: %s after %s, want %s after %s:\n%s", i+1, d.action, d.delay, w.action, w.delay, e.dumpEvents())
		}
		if w.action == "impair" {
			continue
		}
		if d.actedAt.IsZero() {
			t.Fatalf("decision %d (%s) was never carried out:\n%s", i+1, d.action, e.dumpEvents())
		}
		// The action waited out the backoff, counted from the decision.
		if waited := d.actedAt.Sub(d.at); waited < w.delay {
			t.Fatalf("decision %d: %s after %s, want at least the backoff %s", i+1, d.action, waited, w.delay)
		}
		if w.delay > 0 && !d.notBefore.Equal(d.at.Add(w.delay)) {
			t.Fatalf("decision %d: not_before %s, want %s", i+1, d.notBefore, d.at.Add(w.delay))
		}
	}
	if len(instances) != 3 {
		t.Fatalf("decisions on %d instances, want 3", len(instances))
	}
	// 3 instances x (1 launch + 2 restarts) = 9 launches: bounded.
	if launches != 9 {
		t.Fatalf("launches = %d, want 9 (bounded, no fork storm):\n%s", launches, e.dumpEvents())
	}
	if impairedSeq == 0 || impairedSeq < ds[8].seq || lastPendingSeq > impairedSeq {
		t.Fatalf("group.impaired at seq %d, last launch at %d, last decision at %d: want the group impaired by the last decision and nothing launched after:\n%s",
			impairedSeq, lastPendingSeq, ds[8].seq, e.dumpEvents())
	}
	// Scale clears Impaired and tries again with a fresh series: the next
	// failure is restarted at once.
	one := 1
	if g, err := e.client.Scale(context.Background(), "loop", scaleReq(&one)); err != nil || g.Status != "Active" {
		t.Fatalf("scale: %+v %v", g, err)
	}
	waitFor(t, 10*time.Second, "a new heal after the scale", func() bool {
		for _, ev := range e.events() {
			if d, ok := ev.Data.(event.InstanceHeal); ok && ev.Seq > impairedSeq {
				if d.Action != "restart" || d.DelayMS != 0 {
					t.Fatalf("first heal after the scale: %s after %dms, want an immediate restart", d.Action, d.DelayMS)
				}
				return true
			}
		}
		return false
	})
}
