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
	"testing"
	"time"

	"github.com/autoheal/autoheal/internal/cluster"
	"github.com/autoheal/autoheal/internal/config"
	"github.com/autoheal/autoheal/internal/testutil"
)

// clusterHost is one autoheal serve running on a test host.
type clusterHost struct {
	h    *testutil.TestHost
	cmd  *exec.Cmd
	logs *syncBuffer
}

// startClusterHosts starts autoheal serve on every host of bed with the
// config at cfg, each with its own state dir.
func startClusterHosts(t *testing.T, bed *testutil.TestHosts, cfg string) []*clusterHost {
	t.Helper()
	var out []*clusterHost
	for _, h := range bed.Hosts {
		state := filepath.Join(t.TempDir(), h.Name)
		cmd := h.Command(bins.autoheal, "serve", "--config", cfg, "--state-dir", state, "--host", h.Name, "--listen", "127.0.0.1:7070", "--log-level", "debug")
		logs := &syncBuffer{}
		cmd.Stdout, cmd.Stderr = logs, logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		ch := &clusterHost{h: h, cmd: cmd, logs: logs}
		out = append(out, ch)
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("%s's log (last 6 KiB):\n%s", h.Name, lastBytes(logs.String(), 6<<10))
			}
			cmd.Process.Kill()
			cmd.Wait()
			killInstances(t, state)
		})
	}
	return out
}

// petAt asks the pet at addr for its counter; ok is false when nothing
// answers there.
func petAt(addr string) (counter int64, ok bool) {
	c := &http.Client{Timeout: 300 * time.Millisecond}
	resp, err := c.Get("http://" + addr + "/")
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	var p struct {
		Counter int64 `json:"counter"`
	}
	if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&p) != nil {
		return 0, false
	}
	return p.Counter, true
}

func incrAt(addr string) (int64, error) {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Post("http://"+addr+"/incr", "text/plain", nil)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var p struct {
		Counter int64 `json:"counter"`
	}
	if resp.StatusCode != 200 || json.Unmarshal(b, &p) != nil {
		return 0, fmt.Errorf("incr: %d %s", resp.StatusCode, b)
	}
	return p.Counter, nil
}

// TestClusterHostCrash: three hosts (network namespaces on a bridge), a
// 3-member etcd across them, a pet whose volume is on storage every host
// mounts, and autoheal serve on each. The leader runs the pet; then every
// process of the leader's host is SIGKILLed and its link cut, as a crashed
// machine. Another host leads and runs the pet on the same volume: it
// answers at its address with every acknowledged increment kept, and the
// pet's write log verifies (no two writers interleaved). The time from the
// crash to the first good answer is logged beside the lease TTL.
func TestClusterHostCrash(t *testing.T) {
	bed := testutil.MakeHosts(t, 3)
	etcd := testutil.StartEtcdOn(t, bed)
	shared := filepath.Join(t.TempDir(), "shared", "pet")
	if err := os.MkdirAll(shared, 0o755); err != nil {
		t.Fatal(err)
	}
	const port = 18770
	name := testutil.UniqueName("e2e")
	var hosts strings.Builder
	for _, h := range bed.Hosts {
		fmt.Fprintf(&hosts, "    - {name: %s, address: %s}\n", h.Name, h.Addr)
	}
	cfgPath := writeConfig(t, fmt.Sprintf(`
groups:
  - name: pet
    launch:
      command: {{PET}}
      stop_timeout: 2s
    volumes:
      - {name: data, kind: shared, path: %s}
    addresses:
      - {name: http, listen: "0.0.0.0:%d", wait_timeout: 20s}
    health_checks:
      - {type: http, path: /healthz, interval: 100ms, timeout: 100ms, unhealthy_threshold: 2}
cluster:
  name: %s
  etcd: {endpoints: ["%s"]}
  lease_ttl: 2s
  hosts:
%s`, shared, port, name, strings.Join(etcd.Endpoints(), `", "`), hosts.String()))
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	startClusterHosts(t, bed, cfgPath)
	cli, err := cluster.Connect(&cfg.Cluster)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()

	// The leader runs the pet.
	var leader *testutil.TestHost
	testutil.WaitFor(t, 60*time.Second, "a leader whose pet answers", func() bool {
		l, err := cluster.Leader(t.Context(), cli, &cfg.Cluster)
		if err != nil || l == "" {
			return false
		}
		for _, h := range bed.Hosts {
			if h.Name == l {
				if _, ok := petAt(fmt.Sprintf("%s:%d", h.Addr, port)); ok {
					leader = h
					return true
				}
			}
		}
		return false
	})
	// One host runs it: the followers' addresses do not answer.
	for _, h := range bed.Hosts {
		if _, ok := petAt(fmt.Sprintf("%s:%d", h.Addr, port)); ok && h != leader {
			t.Fatalf("the pet answers on follower %s as well as on leader %s", h.Name, leader.Name)
		}
	}
	var acked int64
	for range 20 {
		n, err := incrAt(fmt.Sprintf("%s:%d", leader.Addr, port))
		if err != nil {
			t.Fatal(err)
		}
		acked = n
	}
	// The crash.
	crashed := time.Now()
	leader.KillAll()
	if err := leader.LinkDown(); err != nil {
		t.Fatal(err)
	}
	var next *testutil.TestHost
	var counter int64
	testutil.WaitFor(t, 60*time.Second, "the pet to answer on another host", func() bool {
		for _, h := range bed.Hosts {
			if h == leader {
				continue
			}
			if c, ok := petAt(fmt.Sprintf("%s:%d", h.Addr, port)); ok {
				next, counter = h, c
				return true
			}
		}
		return false
	})
	took := time.Since(crashed)
	t.Logf("host %s crashed; the pet answered on %s after %v (lease TTL %s)", leader.Name, next.Name, took.Round(time.Millisecond), cfg.Cluster.LeaseTTL)
	if counter < acked {
		t.Fatalf("the counter is %d on %s, %d increments were acknowledged on %s: lost", counter, next.Name, acked, leader.Name)
	}
	if n, err := incrAt(fmt.Sprintf("%s:%d", next.Addr, port)); err != nil || n != counter+1 {
		t.Fatalf("incr on the new host: %d %v, want %d", n, err, counter+1)
	}
	resp, err := http.Get(fmt.Sprintf("http://%s:%d/verify", next.Addr, port))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"ok":true`) {
		t.Fatalf("the pet's data does not verify: %s", b)
	}
}
