package server_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/autoheal/autoheal/internal/cluster"
	"github.com/autoheal/autoheal/internal/config"
	"github.com/autoheal/autoheal/internal/testutil"
)

// clusterHost is one autoheal serve running on a test host.
type clusterHost struct {
	h     *testutil.TestHost
	cfg   string
	state string
	cmd   *exec.Cmd
	logs  *syncBuffer
}

// startClusterHosts starts autoheal serve on every host of bed with the
// config at cfg, each with its own state dir.
func startClusterHosts(t *testing.T, bed *testutil.TestHosts, cfg string) []*clusterHost {
	t.Helper()
	var out []*clusterHost
	for _, h := range bed.Hosts {
		ch := &clusterHost{h: h, cfg: cfg, state: filepath.Join(t.TempDir(), h.Name)}
		ch.start(t)
		out = append(out, ch)
	}
	return out
}

// start starts (or starts again) the host's autoheal serve, on its state
// dir.
func (ch *clusterHost) start(t *testing.T) {
	t.Helper()
	cmd := ch.h.Command(bins.autoheal, "serve", "--config", ch.cfg, "--state-dir", ch.state, "--host", ch.h.Name, "--listen", "127.0.0.1:7070", "--log-level", "debug")
	logs := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ch.cmd, ch.logs = cmd, logs
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s's log (last 6 KiB):\n%s", ch.h.Name, lastBytes(logs.String(), 6<<10))
			t.Logf("%s's log, without its debug lines (last 6 KiB):\n%s", ch.h.Name, lastBytes(notDebug(logs.String()), 6<<10))
		}
		cmd.Process.Kill()
		cmd.Wait()
		killInstances(t, ch.state)
	})
}

// petClient makes one request per connection: a client of a moving
// address must not keep a connection to a host that is gone.
var petClient = &http.Client{Timeout: 300 * time.Millisecond, Transport: &http.Transport{DisableKeepAlives: true}}

// petAt asks the pet at addr for its counter and instance; ok is false
// when nothing answers there.
func petAt(addr string) (counter int64, ok bool) {
	p, ok := petInfoAt(addr)
	return int64(p.Counter), ok
}

func petInfoAt(addr string) (petInfo, bool) {
	var p petInfo
	resp, err := petClient.Get("http://" + addr + "/")
	if err != nil {
		return p, false
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&p) != nil {
		return p, false
	}
	return p, true
}

func incrAt(addr string) (int64, error) {
	p, err := incrWith(&http.Client{Timeout: 2 * time.Second}, addr)
	return int64(p.Counter), err
}

func incrWith(c *http.Client, addr string) (petInfo, error) {
	var p petInfo
	resp, err := c.Post("http://"+addr+"/incr", "text/plain", nil)
	if err != nil {
		return p, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || json.Unmarshal(b, &p) != nil {
		return p, fmt.Errorf("incr: %d %s", resp.StatusCode, b)
	}
	return p, nil
}

// vipWriter is a client incrementing the pet's counter through its
// virtual IP without pause, one connection per request, as an
// application would keep writing through a failover.
type vipWriter struct {
	stop  chan struct{}
	done  chan struct{}
	acked atomic.Int64 // the highest counter acknowledged
	oks   atomic.Int64
	fails atomic.Int64
}

func startVIPWriter(t *testing.T, addr string) *vipWriter {
	w := &vipWriter{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			select {
			case <-w.stop:
				return
			default:
			}
			if p, err := incrWith(petClient, addr); err == nil {
				w.oks.Add(1)
				for {
					if old := w.acked.Load(); int64(p.Counter) <= old || w.acked.CompareAndSwap(old, int64(p.Counter)) {
						break
					}
				}
			} else {
				w.fails.Add(1)
				// A refused connection fails at once (the address is
				// held, its proxy not yet listening): do not spin.
				time.Sleep(5 * time.Millisecond)
			}
		}
	}()
	t.Cleanup(func() { w.halt() })
	return w
}

// halt stops the writer and returns the highest counter it had
// acknowledged.
func (w *vipWriter) halt() int64 {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
	return w.acked.Load()
}

// petCluster is three hosts running autoheal with one pet on shared
// storage, its leader's pet answering.
type petCluster struct {
	bed    *testutil.TestHosts
	etcd   *testutil.Etcd
	cfg    *config.Config
	hosts  []*clusterHost
	leader *clusterHost
	port   int
	shared string // the pet's volume
	vip    string // the pet's virtual IP and port
	writer *vipWriter
}

func (pc *petCluster) addr(h *testutil.TestHost) string { return fmt.Sprintf("%s:%d", h.Addr, pc.port) }

func startPetCluster(t *testing.T) *petCluster { return startPetClusterWith(t, "2s", "") }

func startPetClusterTTL(t *testing.T, ttl string) *petCluster { return startPetClusterWith(t, ttl, "") }

// startPetClusterWith adds extra, YAML at the pet group's indentation, to
// the pet's group.
func startPetClusterWith(t *testing.T, ttl, extra string, setup ...func(cfgPath string)) *petCluster {
	t.Helper()
	bed := testutil.MakeHosts(t, 3)
	etcd := testutil.StartEtcdOn(t, bed)
	shared := filepath.Join(t.TempDir(), "shared", "pet")
	if err := os.MkdirAll(shared, 0o755); err != nil {
		t.Fatal(err)
	}
	pc := &petCluster{bed: bed, etcd: etcd, port: 18770, shared: shared}
	pc.vip = fmt.Sprintf("%s.200:%d", bed.Subnet, pc.port)
	var hosts strings.Builder
	for _, h := range bed.Hosts {
		fmt.Fprintf(&hosts, "    - {name: %s, address: %s}\n", h.Name, h.Addr)
	}
	cfgPath := writeConfig(t, fmt.Sprintf(`
groups:
  - name: pet
    launch:
      # A writer beside the pet appends its instance's id to the volume
      # every 50 ms, for checkOneWriter.
      command: /bin/sh
      args: ["-c", "while :; do echo \"$AUTOHEAL_INSTANCE_ID\" >> \"$AUTOHEAL_VOLUME_DATA/heartbeat\"; sleep 0.05; done & exec {{PET}}"]
      stop_timeout: 2s
    volumes:
      - {name: data, kind: shared, path: %s}
    addresses:
      - {name: http, listen: "0.0.0.0:%d", wait_timeout: 20s}
      - {name: vip, kind: vip, ip: %s.200/24}
    health_checks:
      - {type: http, path: /healthz, interval: 100ms, timeout: 100ms, unhealthy_threshold: 2}
%s
cluster:
  name: %s
  etcd: {endpoints: ["%s"]}
  lease_ttl: %s
  hosts:
%s`, shared, pc.port, bed.Subnet, extra, testutil.UniqueName("e2e"), strings.Join(etcd.Endpoints(), `", "`), ttl, hosts.String()))
	for _, f := range setup {
		f(cfgPath)
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	pc.cfg = cfg
	pc.hosts = startClusterHosts(t, bed, cfgPath)
	cli, err := cluster.Connect(&cfg.Cluster)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	testutil.WaitFor(t, 60*time.Second, "a leader whose pet answers, on its host and at the virtual IP", func() bool {
		l, err := cluster.Leader(t.Context(), cli, &cfg.Cluster)
		if err != nil || l == "" {
			return false
		}
		for _, ch := range pc.hosts {
			if ch.h.Name == l {
				at, ok1 := petInfoAt(pc.addr(ch.h))
				via, ok2 := petInfoAt(pc.vip)
				if ok1 && ok2 && at.Instance == via.Instance {
					pc.leader = ch
					return true
				}
			}
		}
		return false
	})
	// One host runs it and holds its address: the followers' addresses
	// do not answer.
	for _, ch := range pc.hosts {
		if _, ok := petAt(pc.addr(ch.h)); ok && ch != pc.leader {
			t.Fatalf("the pet answers on follower %s as well as on leader %s", ch.h.Name, pc.leader.h.Name)
		}
		if pc.vipHeld(ch.h) != (ch == pc.leader) {
			t.Fatalf("host %s holds the virtual IP: %v (the leader is %s)", ch.h.Name, pc.vipHeld(ch.h), pc.leader.h.Name)
		}
	}
	return pc
}

// incr acknowledges n increments on the leader and returns the counter.
func (pc *petCluster) incr(t *testing.T, n int) int64 {
	t.Helper()
	var acked int64
	for range n {
		c, err := incrAt(pc.addr(pc.leader.h))
		if err != nil {
			t.Fatal(err)
		}
		acked = c
	}
	return acked
}

// fault starts the writer through the virtual IP, acknowledges n
// increments there, and returns the instance that took them: call it just
// before the fault.
func (pc *petCluster) fault(t *testing.T, n int) string {
	t.Helper()
	p, ok := petInfoAt(pc.vip)
	if !ok {
		t.Fatal("the pet does not answer at its virtual IP")
	}
	for range n {
		if _, err := incrWith(petClient, pc.vip); err != nil {
			t.Fatal(err)
		}
	}
	pc.writer = startVIPWriter(t, pc.vip)
	testutil.WaitFor(t, 10*time.Second, "the writer's first acknowledged increment", func() bool { return pc.writer.oks.Load() > 0 })
	return p.Instance
}

// failover waits for the pet to answer at its virtual IP from an instance
// other than old, on a host other than the leader; checks that it kept
// every increment acknowledged before and during the fault (by the
// writer), takes one more, verifies its write log, and returns that host
// and the time from the fault to the first good answer at the virtual
// IP.
func (pc *petCluster) failover(t *testing.T, from time.Time, old string) (*testutil.TestHost, time.Duration) {
	t.Helper()
	var next petInfo
	testutil.WaitFor(t, 60*time.Second, "the pet to answer at its virtual IP from a new instance", func() bool {
		p, ok := petInfoAt(pc.vip)
		if ok && p.Instance != old {
			next = p
			return true
		}
		return false
	})
	took := time.Since(from)
	acked := pc.writer.halt()
	if took > 2*pc.cfg.Cluster.LeaseTTL.D() {
		// Slower than it should be: what the hosts did explains it.
		for _, ch := range pc.hosts {
			t.Logf("slow failover (%v); %s's log (last 3 KiB):\n%s", took, ch.h.Name, lastBytes(ch.logs.String(), 3<<10))
		}
	}
	var host *testutil.TestHost
	for _, ch := range pc.hosts {
		if p, ok := petInfoAt(pc.addr(ch.h)); ok && p.Instance == next.Instance {
			host = ch.h
		}
	}
	switch {
	case host == nil:
		t.Fatalf("instance %s answers at the virtual IP but on no host's own address", next.Instance)
	case host == pc.leader.h:
		t.Fatalf("the pet was replaced on the old leader's host %s", host.Name)
	}
	if c, ok := petAt(pc.vip); !ok || c < acked {
		t.Fatalf("the counter is %d at the virtual IP, %d increments were acknowledged there: lost", c, acked)
	}
	t.Logf("the writer through the virtual IP: %d increments acknowledged, %d requests failed during the failover", pc.writer.oks.Load(), pc.writer.fails.Load())
	p, err := incrWith(petClient, pc.vip)
	if err != nil || int64(p.Counter) <= acked || p.Instance != next.Instance {
		t.Fatalf("incr at the virtual IP after the failover: %+v %v, want more than %d from %s", p, err, acked, next.Instance)
	}
	checkOneWriter(t, filepath.Join(pc.shared, "data", "heartbeat"))
	resp, err := http.Get("http://" + pc.vip + "/verify")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"ok":true`) {
		t.Fatalf("the pet's data does not verify: %s", b)
	}
	return host, took
}

// TestClusterHostCrash: three hosts (network namespaces on a bridge), a
// 3-member etcd across them, a pet whose volume is on storage every host
// mounts, and autoheal serve on each. The leader runs the pet; then every
// process of the leader's host is SIGKILLed and its link cut, as a crashed
// machine. Another host leads and runs the pet on the same volume: it
// answers at its address with every acknowledged increment kept, and the
// pet's write log verifies (no two writers interleaved). The time from the
// crash to the first good answer is logged beside the lease TTL
// (bench/cluster.sh repeats it).
func TestClusterHostCrash(t *testing.T) {
	pc := startPetCluster(t)
	old := pc.fault(t, 20)
	crashed := time.Now()
	if err := pc.leader.h.Crash(); err != nil {
		t.Fatal(err)
	}
	next, took := pc.failover(t, crashed, old)
	t.Logf("host %s crashed; the pet answered on %s after %v (lease TTL %s)", pc.leader.h.Name, next.Name, took.Round(time.Millisecond), pc.cfg.Cluster.LeaseTTL)
}

// TestClusterControllerKilled: only the leader's autoheal is SIGKILLed;
// its pet, which outlives a controller on one host, must not outlive the
// host's lease here: its shim kills it at the deadline the controller no
// longer renews, before the lease can lapse, and then another host runs
// it. Nothing of the pet is left on the old leader's host (only its etcd
// member runs there), and the data shows one writer at a time.
func TestClusterControllerKilled(t *testing.T) {
	pc := startPetCluster(t)
	old := pc.fault(t, 20)
	killed := time.Now()
	if err := pc.leader.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	next, took := pc.failover(t, killed, old)
	t.Logf("host %s's controller killed; the pet answered on %s after %v (lease TTL %s)", pc.leader.h.Name, next.Name, took.Round(time.Millisecond), pc.cfg.Cluster.LeaseTTL)
	if left := petProcesses(pc.leader.h); len(left) > 0 {
		t.Fatalf("processes of the pet left on %s after another host took it: %v", pc.leader.h.Name, left)
	}
}

// petProcesses lists the processes on host h other than etcd, as
// "pid command".
func petProcesses(h *testutil.TestHost) []string {
	out, _ := exec.Command("ip", "netns", "pids", h.NS).Output()
	var left []string
	for _, f := range strings.Fields(string(out)) {
		comm, err := os.ReadFile("/proc/" + f + "/comm")
		if err != nil {
			continue // gone meanwhile
		}
		if c := strings.TrimSpace(string(comm)); c != "etcd" {
			left = append(left, f+" "+c)
		}
	}
	return left
}

// TestClusterLeaderPartitioned: the leader's host is cut off (link down,
// every process alive). Unable to renew its lease, it stops its pet
// before the lease can lapse and steps down; another host runs the pet.
// When the link comes back, the old leader does not run the pet again:
// its controller has exited (a supervisor would start it as a follower)
// and nothing of the pet is left there, and the pet keeps answering on
// the new leader with its data intact.
func TestClusterLeaderPartitioned(t *testing.T) {
	pc := startPetCluster(t)
	old := pc.fault(t, 20)
	cut := time.Now()
	if err := pc.leader.h.LinkDown(); err != nil {
		t.Fatal(err)
	}
	next, took := pc.failover(t, cut, old)
	t.Logf("host %s cut off; the pet answered on %s after %v (lease TTL %s)", pc.leader.h.Name, next.Name, took.Round(time.Millisecond), pc.cfg.Cluster.LeaseTTL)
	exited := make(chan error, 1)
	go func() { exited <- pc.leader.cmd.Wait() }()
	select {
	case err := <-exited:
		if !strings.Contains(pc.leader.logs.String(), "cluster lease lost") {
			t.Fatalf("the old leader exited (%v) without saying it lost its lease:\n%s", err, lastBytes(pc.leader.logs.String(), 4<<10))
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the cut-off leader's controller still runs 30 s after it lost its lease")
	}
	if err := pc.leader.h.LinkUp(); err != nil {
		t.Fatal(err)
	}
	if left := petProcesses(pc.leader.h); len(left) > 0 {
		t.Fatalf("processes of the pet left on the cut-off host: %v", left)
	}
	if pc.vipHeld(pc.leader.h) {
		t.Fatalf("the cut-off host %s still holds the virtual IP", pc.leader.h.Name)
	}
	acked := pc.writer.acked.Load()
	p, err := incrWith(petClient, pc.vip)
	if err != nil || int64(p.Counter) <= acked || !pc.vipHeld(next) {
		t.Fatalf("the pet at the virtual IP after the partition healed: %+v %v (held by %s: %v)", p, err, next.Name, pc.vipHeld(next))
	}
}

// vipHeld reports whether host h has the pet's virtual IP on its
// interface.
func (pc *petCluster) vipHeld(h *testutil.TestHost) bool {
	ip, _, _ := strings.Cut(pc.vip, ":")
	out, _ := exec.Command("ip", "-n", h.NS, "-4", "-o", "addr", "show", "dev", "eth0").Output()
	return strings.Contains(string(out), " "+ip+"/")
}

// petInstance is the instance id the pet at addr answers with.
func petInstance(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var p struct {
		Instance string `json:"instance"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&p); err != nil || p.Instance == "" {
		t.Fatalf("pet answer: %v %+v", err, p)
	}
	return p.Instance
}

// TestClusterControllerRestarted: the leader's controller stops (SIGTERM,
// an upgrade) or dies (SIGKILL) and is started again at once on its state
// dir, as systemd does: it resumes its lease before its pet's deadline,
// stays the leader, and the pet runs on: same instance, same host, every
// acknowledged increment kept, no other host running it. (The lease TTL is
// 4 s here, so that a restart on a loaded test machine fits before the
// deadline; the rule does not depend on it.)
func TestClusterControllerRestarted(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			pc := startPetClusterTTL(t, "4s")
			before := petInstance(t, pc.addr(pc.leader.h))
			acked := pc.incr(t, 10)
			if err := pc.leader.cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			pc.leader.cmd.Wait()
			pc.leader.start(t)
			testutil.WaitFor(t, 30*time.Second, "the pet to answer on its host again", func() bool {
				_, ok := petAt(pc.addr(pc.leader.h))
				return ok
			})
			if after := petInstance(t, pc.addr(pc.leader.h)); after != before {
				t.Fatalf("the pet was replaced (%s, then %s): the restart did not keep it", before, after)
			}
			if via, ok := petInfoAt(pc.vip); !ok || via.Instance != before || !pc.vipHeld(pc.leader.h) {
				t.Fatalf("at the virtual IP after the restart: %+v %v, held by %s: %v", via, ok, pc.leader.h.Name, pc.vipHeld(pc.leader.h))
			}
			if c, err := incrAt(pc.addr(pc.leader.h)); err != nil || c != acked+1 {
				t.Fatalf("incr after the restart: %d %v, want %d", c, err, acked+1)
			}
			for _, ch := range pc.hosts {
				if _, ok := petAt(pc.addr(ch.h)); ok && ch != pc.leader {
					t.Fatalf("the pet answers on %s too", ch.h.Name)
				}
			}
			if !strings.Contains(pc.leader.logs.String(), "leading the cluster") {
				t.Fatalf("the restarted controller does not lead:\n%s", lastBytes(pc.leader.logs.String(), 3<<10))
			}
		})
	}
}

// TestClusterHostCrashDuringReplacement: the leader is replacing the pet
// (an operator's terminate; a 30 s terminate hook holds the old instance
// in Terminating:Wait, its volume still attached) when its host crashes. The next leader runs the pet
// on the shared volume with every acknowledged increment, one writer.
func TestClusterHostCrashDuringReplacement(t *testing.T) {
	pc := startPetClusterWith(t, "2s", `    hooks:
      terminate: [{name: slow, script: "sleep 30", heartbeat_timeout: 60s, default_result: continue}]`)
	old := pc.fault(t, 10)
	id := petInstance(t, pc.addr(pc.leader.h))
	term := pc.leader.h.Command(bins.autoheal, "--state-dir", pc.leader.state, "--addr", "127.0.0.1:7070", "terminate", id)
	if out, err := term.CombinedOutput(); err != nil {
		t.Fatalf("terminate %s: %v\n%s", id, err, out)
	}
	// The old instance is fenced before its terminate hooks run, and the
	// replacement waits for the volume they hold: the pet goes silent.
	testutil.WaitFor(t, 30*time.Second, "the replacement to be under way", func() bool {
		_, ok := petAt(pc.addr(pc.leader.h))
		return !ok
	})
	crashed := time.Now()
	if err := pc.leader.h.Crash(); err != nil {
		t.Fatal(err)
	}
	next, took := pc.failover(t, crashed, old)
	t.Logf("host %s crashed during a replacement; the pet answered on %s after %v (lease TTL %s)", pc.leader.h.Name, next.Name, took.Round(time.Millisecond), pc.cfg.Cluster.LeaseTTL)
}

// checkOneWriter reads the heartbeat file the pets' writers append their
// instance id to and fails if two instances wrote at once (oneWriter), or
// if no failover shows in it.
func checkOneWriter(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	order, err := oneWriter(strings.Split(strings.TrimSpace(string(b)), "\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(order) < 2 {
		t.Fatalf("the heartbeat shows %d writer(s) (%v): the failover did not happen on the volume", len(order), order)
	}
	t.Logf("one writer at a time on the volume: %v", order)
}

// oneWriter returns the writers of lines in the order they started, or an
// error if one wrote again after a later one had started: two writers on
// the volume at once.
func oneWriter(lines []string) ([]string, error) {
	var order []string
	done := map[string]bool{}
	for i, line := range lines {
		if len(order) > 0 && order[len(order)-1] == line {
			continue
		}
		if done[line] {
			return order, fmt.Errorf("two writers on the volume: %s wrote again at line %d, after %s had started (instances in order %v)", line, i+1, order[len(order)-1], order)
		}
		if len(order) > 0 {
			done[order[len(order)-1]] = true
		}
		order = append(order, line)
	}
	return order, nil
}

// TestOneWriter: the check catches an earlier writer writing again.
func TestOneWriter(t *testing.T) {
	for _, tc := range []struct {
		lines []string
		bad   bool
	}{
		{[]string{"a", "a", "b", "b"}, false},
		{[]string{"a", "b", "c"}, false},
		{[]string{"a", "b", "a"}, true},
		{[]string{"a", "a", "b", "c", "b"}, true},
	} {
		if _, err := oneWriter(tc.lines); (err != nil) != tc.bad {
			t.Errorf("%v: %v", tc.lines, err)
		}
	}
}

// notDebug is a log without its debug lines.
func notDebug(log string) string {
	var b strings.Builder
	for _, line := range strings.SplitAfter(log, "\n") {
		if !strings.Contains(line, " level=DEBUG ") {
			b.WriteString(line)
		}
	}
	return b.String()
}
