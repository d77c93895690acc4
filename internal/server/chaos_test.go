package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/autoheal/autoheal/internal/api"
	"github.com/autoheal/autoheal/internal/api/wire"
	"github.com/autoheal/autoheal/internal/runbook"
)

// chaosFor runs TestChaos longer than CI's short run:
// go test -run TestChaos -chaos.for 10m ./internal/server/
var chaosFor = flag.Duration("chaos.for", 0, "how long TestChaos kills controllers (default: a short run of 3 controller lives)")

// chaosConfig has a pet with a volume, an address, launch and terminate
// hooks; a web group behind nothing; a maintenance window over the web
// instances and an Alertmanager route, both running the "note" document,
// which appends its execution id to a file once per run.
func chaosConfig(port int, notes string) string {
	return fmt.Sprintf(`
groups:
  - name: pet
    launch: {command: {{PET}}, stop_timeout: 2s}
    volumes: [{name: data}]
    addresses: [{name: http, listen: "127.0.0.1:%d", wait_timeout: 30s}]
    health_checks: [{type: http, path: /healthz, interval: 500ms, timeout: 500ms}]
    heal: {max_restarts: 2, backoff_base: 50ms, backoff_cap: 400ms, max_replacements: 1000, replacement_window: 1m}
    hooks:
      launch: [{name: mark, script: 'echo "launch $AUTOHEAL_INSTANCE_ID" >> "$AUTOHEAL_VOLUME_DATA/hooks"', heartbeat_timeout: 10s}]
      terminate: [{name: mark, script: 'echo "terminate $AUTOHEAL_INSTANCE_ID" >> "$AUTOHEAL_VOLUME_DATA/hooks"', heartbeat_timeout: 10s, default_result: continue}]
  - name: web
    desired: 2
    launch: {command: {{WEB}}, ports: [http]}
    health_checks: [{type: http, port: http, interval: 500ms, timeout: 500ms}]
maintenance_windows:
  - name: touch
    schedule: "0 3 1 1 *"
    duration: 1h
    targets: {groups: [web]}
    tasks: [{document: note, parameters: {InstanceId: "{{ TARGET_ID }}", Log: %q}, max_concurrency: "2", max_errors: "100%%"}]
alertmanager:
  routes: [{match: {alertname: PetSlow}, runbook: note, target_label: instance_id}]
`, port, notes)
}

// noteDoc appends its execution id to Log (a side effect that must happen
// at most once per execution), then waits, so that executions are often
// in flight when the controller dies.
const noteDoc = `schemaVersion: "0.3"
parameters:
  InstanceId: {type: String}
  Log: {type: String, default: "%s"}
mainSteps:
  - name: note
    action: runCommand
    inputs:
      InstanceId: "{{ InstanceId }}"
      Env: {EXEC: "{{ automation:EXECUTION_ID }}"}
      Script: 'echo "$EXEC" >> "$Log"'
  - name: settle
    action: sleep
    inputs: {Duration: 700ms}
`

// chaos is one TestChaos run: the controller of the moment, what the
// writer had acknowledged, the executions started.
type chaos struct {
	t     *testing.T
	cfg   string
	state string
	base  string // the pet's address
	notes string
	rnd   *rand.Rand

	mu    sync.Mutex
	acked []string // payloads the pet acknowledged
	execs []string // executions started through the API
	e     *env
}

// TestChaos SIGKILLs the controller at random moments while the pet
// crashes and is healed (its hooks running), documents run, a maintenance
// window and Alertmanager incidents start executions, and a client writes
// to the pet without pause. After each restart it checks what must hold
// whatever the moment of the kill: one live instance per desired slot,
// one volume holder whose token is the volume's, no process of an instance
// that is not live, a gapless journal, every write the pet acknowledged
// still there, every execution's side effect at most once and every
// execution either ended or going on.
func TestChaos(t *testing.T) {
	t.Parallel()
	c := &chaos{t: t, rnd: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))}
	dir := t.TempDir()
	c.notes = filepath.Join(dir, "notes")
	port := freePort(t)
	c.base = fmt.Sprintf("http://127.0.0.1:%d", port)
	c.cfg = writeConfig(t, chaosConfig(port, c.notes))
	writeDoc(t, c.cfg, "note", fmt.Sprintf(noteDoc, c.notes))
	c.state = t.TempDir()

	stop := make(chan struct{})
	var writer sync.WaitGroup
	writer.Add(1)
	go func() { defer writer.Done(); c.write(stop) }()
	defer func() { close(stop); writer.Wait() }()

	lives, deadline := 3, time.Time{}
	if *chaosFor > 0 {
		lives, deadline = 1<<30, time.Now().Add(*chaosFor)
	}
	for life := 0; life < lives && (deadline.IsZero() || time.Now().Before(deadline)); life++ {
		c.e = startProcess(t, c.cfg, c.state)
		c.converged(life)
		c.check(life)
		c.disturb(time.Duration(500+c.rnd.IntN(2500)) * time.Millisecond)
		c.e.kill9()
		t.Logf("life %d: controller killed", life)

	}
	c.e = startProcess(t, c.cfg, c.state)
	c.converged(lives)
	c.check(lives)
	c.finished()
}

// write posts to the pet without pause and keeps what it acknowledged.
func (c *chaos) write(stop <-chan struct{}) {
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		payload := fmt.Sprintf("w-%d", i)
		if code, _, err := httpPost(c.base+"/write", payload); err == nil && code == 200 {
			c.mu.Lock()
			c.acked = append(c.acked, payload)
			c.mu.Unlock()
		}
	}
}

// disturb does random damage for d: kills the pet's process, runs the
// note document, runs the window, fires an alert.
func (c *chaos) disturb(d time.Duration) {
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		switch c.rnd.IntN(4) {
		case 0:
			for _, in := range c.e.live() {
				if in.Group == "pet" && in.Pid > 0 {
					syscall.Kill(in.Pid, syscall.SIGKILL)
				}
			}
		case 1:
			if id := c.instanceOf("web"); id != "" {
				if ex, err := c.e.client.Run(ctx, wire.RunRequest{Document: "note", Parameters: map[string]string{"InstanceId": id}}); err == nil {
					c.mu.Lock()
					c.execs = append(c.execs, ex)
					c.mu.Unlock()
				}
			}
		case 2:
			c.e.client.RunWindow(ctx, "touch")
		case 3:
			if id := c.instanceOf("pet"); id != "" {
				c.e.alert("PetSlow", id, "firing")
			}
		}
		cancel()
		// Pace the damage on the clock, not on the controller: the point
		// is to kill it at moments it does not choose.
		time.Sleep(time.Duration(50+c.rnd.IntN(250)) * time.Millisecond)
	}
}

func (c *chaos) instanceOf(group string) string {
	for _, in := range c.e.live() {
		if in.Group == group && in.State == "InService" {
			return in.ID
		}
	}
	return ""
}

// converged waits until every group has its desired instances InService.
func (c *chaos) converged(life int) {
	c.t.Helper()
	waitFor(c.t, 90*time.Second, fmt.Sprintf("life %d: pet 1 and web 2 InService", life), func() bool {
		n := map[string]int{}
		for _, in := range c.e.live() {
			if in.State != "InService" || in.Pid == 0 {
				return false
			}
			n[in.Group]++
		}
		return n["pet"] == 1 && n["web"] == 2
	})
}

// check verifies the invariants after a restart.
func (c *chaos) check(life int) {
	c.t.Helper()
	st, err := c.e.client.Status(context.Background(), true)
	if err != nil {
		c.t.Fatal(err)
	}
	live := map[string]wire.Instance{}
	var pet wire.Instance
	for _, in := range st.Instances {
		if in.State != "Terminated" {
			live[in.ID] = in
			if in.Group == "pet" {
				pet = in
			}
		}
	}
	// One volume holder, the live pet, whose token is the volume's own.
	for _, g := range st.Groups {
		for _, a := range g.Attachments {
			if a.Kind == "volume" && a.Holder != pet.ID {
				c.t.Fatalf("life %d: volume %s held by %s, the live pet is %s\n%s", life, a.Name, a.Holder, pet.ID, c.e.dumpEvents())
			}
			if a.Kind == "volume" {
				if tok := volumeToken(c.t, c.state, a.Group, a.Name); tok != a.Token {
					c.t.Fatalf("life %d: volume %s token %d in the store, %d in the volume", life, a.Name, a.Token, tok)
				}
			}
		}
	}
	// No process of an instance that is not live.
	for _, pid := range processesOf(c.state) {
		id := envOf(pid, "AUTOHEAL_INSTANCE_ID")
		if _, ok := live[id]; id != "" && !ok {
			c.t.Fatalf("life %d: pid %d of instance %s, which is not live, still runs", life, pid, id)
		}
	}
	// A gapless journal: the store's sequence has no hole.
	evs, err := c.e.client.Events(context.Background(), api.EventsQuery{Limit: 100000})
	if err != nil {
		c.t.Fatal(err)
	}
	for i := 1; i < len(evs); i++ {
		if evs[i].Seq != evs[i-1].Seq+1 {
			c.t.Fatalf("life %d: journal jumps from seq %d to %d", life, evs[i-1].Seq, evs[i].Seq)
		}
	}
	c.lostNothing(life)
	c.onceEach(life)
}

// lostNothing checks that every write the pet acknowledged is in its log.
func (c *chaos) lostNothing(life int) {
	c.t.Helper()
	code, b, err := httpGet(c.base + "/verify")
	if err != nil || code != 200 {
		c.t.Fatalf("life %d: verify: %d %v %s", life, code, err, b)
	}
	c.mu.Lock()
	acked := append([]string(nil), c.acked...)
	c.mu.Unlock()
	code, b, err = httpGet(c.base + "/writes")
	if err != nil || code != 200 {
		c.t.Fatalf("life %d: writes: %d %v", life, code, err)
	}
	var lines []string
	if err := json.Unmarshal(b, &lines); err != nil {
		c.t.Fatal(err)
	}
	have := map[string]bool{}
	for _, l := range lines {
		// SEQ \t TIME \t PAYLOAD \t CHECKSUM (examples/pet/store.go).
		if f := strings.Split(l, "\t"); len(f) == 4 {
			have[f[2]] = true
		}
	}
	for _, p := range acked {
		if !have[p] {
			c.t.Fatalf("life %d: acknowledged write %q lost (%d acknowledged, %d in the log)", life, p, len(acked), len(lines))
		}
	}
	c.t.Logf("life %d: %d acknowledged writes all there", life, len(acked))
}

// onceEach checks that no execution's side effect happened twice, and
// that every execution ended or goes on.
func (c *chaos) onceEach(life int) {
	c.t.Helper()
	seen := map[string]int{}
	if f, err := os.Open(c.notes); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			seen[strings.TrimSpace(sc.Text())]++
		}
		f.Close()
	}
	for id, n := range seen {
		if n > 1 {
			c.t.Fatalf("life %d: execution %s ran its side effect %d times", life, id, n)
		}
	}
	exs, err := c.e.client.Executions(context.Background(), 1000)
	if err != nil {
		c.t.Fatal(err)
	}
	for _, ex := range exs {
		switch ex.Status {
		case runbook.StatusSuccess, runbook.StatusFailed, runbook.StatusCancelled, runbook.StatusTimedOut,
			runbook.StatusInProgress, runbook.StatusPending, runbook.StatusWaiting:
		default:
			c.t.Fatalf("life %d: execution %s is %s", life, ex.ID, ex.Status)
		}
	}
}

// finished waits, on the last controller, for every execution and
// incident to end, once.
func (c *chaos) finished() {
	c.t.Helper()
	waitFor(c.t, 60*time.Second, "every execution to end", func() bool {
		exs, err := c.e.client.Executions(context.Background(), 1000)
		if err != nil {
			return false
		}
		for _, ex := range exs {
			if !ended(ex.Status) {
				return false
			}
		}
		return true
	})
	c.onceEach(-1)
	c.mu.Lock()
	started := append([]string(nil), c.execs...)
	c.mu.Unlock()
	for _, id := range started {
		if _, err := c.e.execution(id); err != nil {
			c.t.Fatalf("execution %s, acknowledged when started, is gone: %v", id, err)
		}
	}
}

// volumeToken reads the fencing token a volume's token file holds.
func volumeToken(t *testing.T, state, group, name string) int64 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(state, "volumes", group, name, "token"))
	if err != nil {
		t.Fatalf("volume token: %v", err)
	}
	var tok int64
	fmt.Sscan(strings.TrimSpace(string(b)), &tok)
	return tok
}

// envOf returns one variable of a process's environment.
func envOf(pid int, name string) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		return ""
	}
	for _, kv := range strings.Split(string(b), "\x00") {
		if v, ok := strings.CutPrefix(kv, name+"="); ok {
			return v
		}
	}
	return ""
}
