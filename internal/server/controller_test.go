package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/autoheal/autoheal/internal/api"
	"github.com/autoheal/autoheal/internal/api/wire"
	"github.com/autoheal/autoheal/internal/event"
	"github.com/autoheal/autoheal/internal/provider"
)

func scaleReq(desired *int) wire.ScaleRequest { return wire.ScaleRequest{Desired: desired} }

func TestInstancesOutliveTheControllerAndAreReadopted(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	cfg := writeConfig(t, petConfig(port, fastHeal))
	state := t.TempDir()
	e := startProcess(t, cfg, state)
	in := e.waitInService(1, 20*time.Second)[0]
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	httpPost(base+"/incr", "")

	e.kill9()
	if err := syscall.Kill(in.Pid, 0); err != nil {
		t.Fatalf("instance pid %d died with the controller: %v", in.Pid, err)
	}
	e2 := startProcess(t, cfg, state)
	again := e2.waitInService(1, 20*time.Second)[0]
	if again.ID != in.ID || again.Pid != in.Pid {
		t.Fatalf("re-adopted %s pid %d, want %s pid %d", again.ID, again.Pid, in.ID, in.Pid)
	}
	if p := getPet(t, base); p.Counter != 1 || p.Pid != in.Pid {
		t.Fatalf("pet after re-adoption: %+v", p)
	}

	// The app dies while the controller is down: its exit code is kept and
	// the next controller heals it.
	e2.kill9()
	// The proxy lives in the controller, which is down: reach the pet directly.
	direct := fmt.Sprintf("http://127.0.0.1:%d", in.Ports["http"])
	httpPost(direct+"/crash", "")
	waitFor(t, 10*time.Second, "pet to exit", func() bool { return syscall.Kill(in.Pid, 0) != nil })
	e3 := startProcess(t, cfg, state)
	e3.waitInService(1, 20*time.Second)
	var sawExit bool
	for _, ev := range e3.events() {
		if ev.Type == "instance.adopt" && strings.Contains(ev.Message, "exit 3 while the controller was down") {
			sawExit = true
		}
	}
	if !sawExit {
		t.Fatalf("exit code from while the controller was down not recorded:\n%s", e3.dumpEvents())
	}
	if p := getPet(t, base); p.Counter != 1 {
		t.Fatalf("pet after heal: %+v", p)
	}
	// Logs written while the controller was down are kept.
	var out strings.Builder
	if err := e3.client.Logs(context.Background(), api.LogsQuery{Instance: in.ID, Tail: 1000}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), in.ID) {
		t.Fatalf("logs of %s lack its start line:\n%s", in.ID, out.String())
	}
}

// startAndCrash starts a controller on cfg in a new state dir, waits for
// its one instance and SIGKILLs the application.
func startAndCrash(t *testing.T, cfg string) (*env, string, wire.Instance) {
	t.Helper()
	state := t.TempDir()
	e := startProcess(t, cfg, state)
	first := e.waitInService(1, 30*time.Second)[0]
	syscall.Kill(first.Pid, syscall.SIGKILL)
	return e, state, first
}

func TestControllerKilledMidReplacementConverges(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	// A slow launch hook holds the replacement in Pending:Wait long enough to
	// kill the controller there.
	cfg := writeConfig(t, petConfig(port, `    heal:
      max_restarts: 0
      backoff_base: 10ms
    hooks:
      launch:
        - name: slow
          script: sleep 3
          heartbeat_timeout: 10s
`))
	e, state, first := startAndCrash(t, cfg)
	waitFor(t, 20*time.Second, "replacement in Pending:Wait", func() bool {
		for _, in := range e.live() {
			if in.ID != first.ID && in.State == "Pending:Wait" {
				return true
			}
		}
		return false
	})
	e.kill9()
	e2 := startProcess(t, cfg, state)
	ins := e2.waitInService(1, 40*time.Second)
	st, _ := e2.client.Status(context.Background(), false)
	holders := 0
	for _, a := range st.Groups[0].Attachments {
		if a.Holder != "" {
			holders++
			if a.Holder != ins[0].ID {
				t.Fatalf("attachment %s held by %s, live instance is %s", a.Name, a.Holder, ins[0].ID)
			}
		}
	}
	if holders != 2 { // one volume, one address
		t.Fatalf("want 2 attachments held, got %d: %+v", holders, st.Groups[0].Attachments)
	}
	// No orphan: every process of this state dir belongs to the live instance.
	waitFor(t, 10*time.Second, "no orphan processes", func() bool {
		for _, pid := range processesOf(state) {
			env, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
			if !strings.Contains(string(env), "AUTOHEAL_INSTANCE_ID="+ins[0].ID) {
				return false
			}
		}
		return true
	})
	if p := getPet(t, fmt.Sprintf("http://127.0.0.1:%d", port)); p.Instance != ins[0].ID {
		t.Fatalf("address serves %s, want %s", p.Instance, ins[0].ID)
	}
}

// TestControllerKilledBeforeTheOldInstanceIsTerminated kills the controller
// while a replacement runs but is not yet in service: the failed instance it
// replaces is then Terminating in the store (written with the replacement's
// attachments) but not yet Terminated (that waits until the replacement's
// launch is over). The next controller must finish terminating it, not heal
// it: exactly one instance, holding the volume and the address, and no
// further launch.
func TestControllerKilledBeforeTheOldInstanceIsTerminated(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	// A second check that needs 3s of successes keeps the replacement in
	// Pending:Proceed long enough to kill the controller there.
	cfg := writeConfig(t, petConfig(port, `      - type: tcp
        interval: 100ms
        healthy_threshold: 30
    heal:
      max_restarts: 0
      backoff_base: 10ms
`))
	e, state, first := startAndCrash(t, cfg)
	var second wire.Instance
	waitFor(t, 20*time.Second, "replacement running in Pending:Proceed, failed instance Terminating", func() bool {
		var old bool
		for _, in := range e.live() {
			switch {
			case in.ID == first.ID:
				old = in.State == "Terminating"
			case in.State == "Pending:Proceed" && in.Pid != 0:
				second = in
			}
		}
		return old && second.ID != ""
	})
	e.kill9()

	e2 := startProcess(t, cfg, state)
	ins := e2.waitInService(1, 40*time.Second)
	if ins[0].ID != second.ID {
		t.Fatalf("in service: %s; want the replacement %s (first %s)", ins[0].ID, second.ID, first.ID)
	}
	st, err := e2.client.Status(context.Background(), true)
	if err != nil {
		t.Fatal(err)
	}
	if g := st.Groups[0]; g.Status != "Active" {
		t.Fatalf("group %s (%s), want Active", g.Status, g.Reason)
	}
	for _, in := range st.Instances {
		switch in.ID {
		case first.ID:
			if in.State != "Terminated" {
				t.Fatalf("failed instance %s is %s, want Terminated", in.ID, in.State)
			}
		case second.ID:
		default:
			t.Fatalf("unexpected launch %s (%s): %s", in.ID, in.State, in.Cause)
		}
	}
	for _, a := range st.Groups[0].Attachments {
		if a.Holder != second.ID {
			t.Fatalf("attachment %s held by %q, want %s", a.Name, a.Holder, second.ID)
		}
	}
	if p := getPet(t, fmt.Sprintf("http://127.0.0.1:%d", port)); p.Instance != second.ID {
		t.Fatalf("address serves %s, want %s", p.Instance, second.ID)
	}
}

func TestSocketModeRefusesNoConnectionAcrossReplacement(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	cfg := writeConfig(t, fmt.Sprintf(`
groups:
  - name: pet
    launch:
      command: {{PET}}
      stop_timeout: 2s
    volumes:
      - name: data
    addresses:
      - name: http
        listen: 127.0.0.1:%d
        mode: socket
    health_checks:
      - type: http
        path: /healthz
        interval: 100ms
        timeout: 100ms
    heal:
      max_restarts: 1
      backoff_base: 10ms
`, port))
	e := startInProcess(t, cfg, "")
	e.waitInService(1, 20*time.Second)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)

	var ok, refused, other atomic.Int64
	var lastErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				code, _, err := httpGet(base + "/")
				switch {
				case err == nil && code == 200:
					ok.Add(1)
				case err != nil && errors.Is(err, syscall.ECONNREFUSED):
					refused.Add(1)
				default:
					other.Add(1)
					lastErr.Store(fmt.Sprint(code, err))
				}
			}
		}()
	}
	for i := 0; i < 3; i++ { // restart in place, replace, restart
		// The kill comes while the clients are being served: in flight,
		// and dialling again at once.
		served := ok.Load()
		waitFor(t, 20*time.Second, "requests served by the instance", func() bool { return ok.Load() >= served+20 })
		pid := e.waitInService(1, 20*time.Second)[0].Pid
		syscall.Kill(pid, syscall.SIGKILL)
		waitFor(t, 20*time.Second, "new pid", func() bool {
			l := e.live()
			return len(l) == 1 && l[0].Pid > 0 && l[0].Pid != pid && l[0].State == "InService"
		})
	}
	close(stop)
	wg.Wait()
	if refused.Load() != 0 {
		t.Fatalf("%d connections refused (ok %d)", refused.Load(), ok.Load())
	}
	if ok.Load() == 0 {
		t.Fatal("no request succeeded")
	}
	t.Logf("socket mode: %d ok, %d refused, %d other errors (last: %v)", ok.Load(), refused.Load(), other.Load(), lastErr.Load())
}

func TestLaunchFailuresAreClearEvents(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, group, want string
		prepare           func(dir string)
	}{
		{
			name: "missing binary",
			group: `
    launch:
      command: ./app
`,
			prepare: func(dir string) {}, // ./app is deleted after validation
			want:    "no such file or directory",
		},
		{
			name: "failing init",
			group: `
    launch:
      command: /bin/sleep
      args: ["60"]
    volumes:
      - name: data
        init: echo cannot format >&2; exit 7
`,
			want: "volume data init failed with exit 7",
		},
		{
			name: "failing launch hook abandons",
			group: `
    launch:
      command: /bin/sleep
      args: ["60"]
    hooks:
      launch:
        - name: check
          script: exit 3
`,
			want: "launch hook check failed (exit 3): default_result abandon",
		},
		{
			name: "hook timeout continues",
			group: `
    launch:
      command: /bin/sleep
      args: ["60"]
    hooks:
      launch:
        - name: slow
          script: sleep 30
          heartbeat_timeout: 200ms
          default_result: continue
`,
			want: "heartbeat timeout 200ms exceeded): default_result continue",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			app := filepath.Join(dir, "app")
			os.WriteFile(app, []byte("#!/bin/sh\nexec sleep 60\n"), 0o755)
			cfg := filepath.Join(dir, "autoheal.yaml")
			os.WriteFile(cfg, []byte("groups:\n  - name: g\n    heal: {backoff_base: 50ms, backoff_cap: 100ms, max_replacements: 1}"+c.group), 0o644)
			if c.name == "missing binary" {
				defer os.Remove(app)
			}
			e := startInProcess(t, cfg, "")
			if c.name == "missing binary" {
				// The binary disappears after validation: the relaunch after
				// a crash hits the missing file.
				waitFor(t, 10*time.Second, "instance", func() bool { return len(e.live()) == 1 && e.live()[0].Pid > 0 })
				os.Remove(app)
				syscall.Kill(e.live()[0].Pid, syscall.SIGKILL)
			}
			waitFor(t, 20*time.Second, fmt.Sprintf("event containing %q", c.want), func() bool {
				for _, ev := range e.events() {
					if strings.Contains(ev.Message, c.want) {
						return true
					}
				}
				return false
			})
		})
	}
}

func TestConcurrentOperationsAreSerialized(t *testing.T) {
	t.Parallel()
	cfg := writeConfig(t, `
groups:
  - name: web
    max: 5
    desired: 2
    launch:
      command: /bin/sleep
      args: ["600"]
      stop_timeout: 1s
    addresses: []
    heal:
      backoff_base: 10ms
`)
	e := startInProcess(t, cfg, "")
	ins := e.waitInService(2, 20*time.Second)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for _, d := range []int{4, 3} {
		d := d
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := e.client.Scale(ctx, "web", scaleReq(&d)); err != nil {
				errs <- err
			}
		}()
	}
	for _, in := range ins {
		in := in
		wg.Add(2)
		go func() {
			defer wg.Done()
			if _, err := e.client.Terminate(ctx, in.ID, false); err != nil {
				errs <- err
			}
		}()
		go func() { // the same instance twice at once
			defer wg.Done()
			e.client.Terminate(ctx, in.ID, false)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	g, _ := e.client.Group(ctx, "web")
	// Both terminations were accepted; the group converges to its desired
	// capacity with neither old instance left.
	waitFor(t, 30*time.Second, "convergence without the terminated instances", func() bool {
		live := e.live()
		if len(live) != g.Desired {
			return false
		}
		for _, in := range live {
			if in.State != "InService" || in.ID == ins[0].ID || in.ID == ins[1].ID {
				return false
			}
		}
		return true
	})
	// At most one lifecycle operation at a time: a Pending never starts
	// while another instance is Pending or Terminating.
	busy := map[string]string{}
	for _, ev := range e.events() {
		if ev.Type != "instance.state" {
			continue
		}
		to := ev.Data.(event.InstanceState).To
		switch to {
		case "Pending", "Terminating":
			for id, st := range busy {
				if id != ev.Instance {
					t.Fatalf("%s entered %s while %s was %s:\n%s", ev.Instance, to, id, st, e.dumpEvents())
				}
			}
			busy[ev.Instance] = to
		case "InService", "Terminated":
			delete(busy, ev.Instance)
		}
	}
	if len(processesOf(e.stateDir)) < g.Desired {
		t.Fatalf("fewer processes than instances")
	}
}

func TestUnwritableStateDirIsRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	os.WriteFile(file, nil, 0o644)
	cfg := writeConfig(t, "groups:\n  - name: g\n    launch:\n      command: /bin/true\n")
	out, err := exec.Command(bins.autoheal, "serve", "--config", cfg, "--state-dir", filepath.Join(file, "state"), "--listen", "127.0.0.1:0").CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() == 0 {
		t.Fatalf("serve with an unusable state dir: err %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "state dir") {
		t.Fatalf("error does not name the state dir:\n%s", out)
	}
}

func TestInvalidConfigStartsNothing(t *testing.T) {
	t.Parallel()
	cfg := writeConfig(t, "groups:\n  - name: g\n    launch:\n      command: /bin/true\n      stop_timeout: 10x\n    bogus: 1\n")
	state := filepath.Join(t.TempDir(), "state")
	for _, args := range [][]string{{"validate", "--config", cfg}, {"serve", "--config", cfg, "--state-dir", state}} {
		out, err := exec.Command(bins.autoheal, args...).CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 {
			t.Fatalf("%v: want exit 2, got %v\n%s", args, err, out)
		}
		if !strings.Contains(string(out), cfg+":") {
			t.Fatalf("%v: errors must name %s:LINE:COL:\n%s", args, cfg, out)
		}
	}
	if _, err := os.Stat(state); !os.IsNotExist(err) {
		t.Fatalf("serve wrote %s for an invalid config", state)
	}
}

func TestStatusEventsLogsAndMetadata(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	cfg := writeConfig(t, petConfig(port, `    parameters:
      - name: GREETING
        value: hi
      - name: TOKEN
        value: s3cret
        secret: true
`))
	e := startProcess(t, cfg, t.TempDir())
	in := e.waitInService(1, 20*time.Second)[0]

	run := func(args ...string) string {
		out, err := exec.Command(bins.autoheal, append([]string{"--addr", e.apiAddr}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("autoheal %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	var st struct {
		Instances []map[string]any `json:"instances"`
	}
	if err := json.Unmarshal([]byte(run("status", "-o", "json")), &st); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"id", "group", "state", "health", "pid"} {
		if _, ok := st.Instances[0][k]; !ok {
			t.Fatalf("status -o json lacks %q: %v", k, st.Instances[0])
		}
	}
	if !strings.Contains(run("status"), in.ID) {
		t.Fatal("status table lacks the instance")
	}
	var evs []map[string]any
	if err := json.Unmarshal([]byte(run("events", "-o", "json")), &evs); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"time", "type", "group", "instance", "message"} {
		found := false
		for _, ev := range evs {
			if _, ok := ev[k]; ok {
				found = true
			}
		}
		if !found {
			t.Fatalf("events -o json lacks %q", k)
		}
	}
	if out := run("logs", in.ID); !strings.Contains(out, in.ID) {
		t.Fatalf("logs lack the pet's start line:\n%s", out)
	}
	if out := run("logs", "pet"); !strings.Contains(out, in.ID) {
		t.Fatalf("group logs lack the pet's start line:\n%s", out)
	}
	// events --follow sees a new event live.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	follow := exec.CommandContext(ctx, bins.autoheal, "--addr", e.apiAddr, "events", "--follow", "-o", "json")
	pipe, _ := follow.StdoutPipe()
	follow.Start()
	syscall.Kill(in.Pid, syscall.SIGKILL)
	buf := make([]byte, 64<<10)
	var seen strings.Builder
	for !strings.Contains(seen.String(), "SIGKILL") {
		n, err := pipe.Read(buf)
		if err != nil {
			t.Fatalf("events --follow ended before the exit event: %v\n%s", err, seen.String())
		}
		seen.Write(buf[:n])
	}
	cancel()
	follow.Wait()

	// Metadata endpoint: the instance's identity, secrets hidden.
	in = e.waitInService(1, 20*time.Second)[0]
	var md wire.Metadata
	code, b, _ := httpGet("http://" + e.apiAddr + "/v1/instances/" + in.ID + "/metadata")
	if code != 200 || json.Unmarshal(b, &md) != nil || md.InstanceID != in.ID || md.Parameters["GREETING"] != "hi" || md.Parameters["TOKEN"] == "s3cret" {
		t.Fatalf("metadata %d %s", code, b)
	}
	// The instance sees its identity in its environment.
	env, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", in.Pid))
	for _, want := range []string{"AUTOHEAL_INSTANCE_ID=" + in.ID, "AUTOHEAL_GROUP=pet", "AUTOHEAL_METADATA_URL=", "AUTOHEAL_VOLUME_DATA=", "AUTOHEAL_PORT_HTTP=", "GREETING=hi"} {
		if !strings.Contains(string(env), want) {
			t.Fatalf("instance environment lacks %s", want)
		}
	}
	if !provider.ValidInstanceID(in.ID) {
		t.Fatalf("instance id %q is not i- and 17 hex digits", in.ID)
	}
}

// Regression: the orphan sweep once ran after the groups had started
// launching, and killed the new instances as orphans (seen with 100 groups).
func TestSweepDoesNotKillNewInstances(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString("groups:\n")
	for i := 0; i < 20; i++ {
		fmt.Fprintf(&b, "  - name: g%02d\n    launch:\n      command: /bin/sleep\n      args: [\"600\"]\n", i)
	}
	e := startInProcess(t, writeConfig(t, b.String()), "")
	e.waitInService(20, 60*time.Second)
	for _, ev := range e.events() {
		if ev.Type == "instance.exit" || ev.Type == "controller.sweep" || ev.Type == "instance.heal" {
			t.Fatalf("a new instance was killed at start: %s %s", ev.Type, ev.Message)
		}
	}
}

// TestServeNotifiesSystemd: under systemd (NOTIFY_SOCKET), serve says
// READY=1 once it serves, and pings the watchdog (WATCHDOG_USEC) while its
// journal answers; STOPPING=1 when it stops.
func TestServeNotifiesSystemd(t *testing.T) {
	t.Parallel()
	sock := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cfg := writeConfig(t, petConfig(freePort(t), fastHeal))
	// WATCHDOG_PID is the controller's own pid under systemd; without it
	// the interval is for whichever process reads it.
	e := startProcess(t, cfg, t.TempDir(), "NOTIFY_SOCKET="+sock, "WATCHDOG_USEC=200000")
	got := map[string]bool{}
	buf := make([]byte, 256)
	for !got["READY=1"] || !got["WATCHDOG=1"] {
		conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("systemd got %v, then: %v", got, err)
		}
		got[string(buf[:n])] = true
	}
	e.stop()
	for !got["STOPPING=1"] {
		conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("no STOPPING=1 (got %v): %v", got, err)
		}
		got[string(buf[:n])] = true
	}
}
