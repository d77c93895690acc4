package server_test

import (
	"bufio"
	"cmp"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/autoheal/autoheal/internal/cluster"
	"github.com/autoheal/autoheal/internal/config"
	"github.com/autoheal/autoheal/internal/testutil"
)

// TestClusterIdleCost measures what an idle cluster costs: three hosts,
// 100 groups (a pet each, on shared storage) running on the leader, and
// over 30 s the requests and bytes etcd served and the CPU of each
// autoheal and etcd. A benchmark, not a check: bench/cluster.sh runs it
// with AUTOHEAL_CLUSTER_IDLE=1.
func TestClusterIdleCost(t *testing.T) {
	if os.Getenv("AUTOHEAL_CLUSTER_IDLE") == "" {
		t.Skip("a benchmark: bench/cluster.sh runs it (AUTOHEAL_CLUSTER_IDLE=1)")
	}
	const groups, window = 100, 30 * time.Second
	bed := testutil.MakeHosts(t, 3)
	etcd := testutil.StartEtcdOn(t, bed)
	root := filepath.Join(t.TempDir(), "shared")
	var cfg strings.Builder
	cfg.WriteString("groups:\n")
	for i := range groups {
		fmt.Fprintf(&cfg, `  - name: g%03d
    launch: {command: {{PET}}}
    volumes: [{name: data, kind: shared, path: %s/g%03d}]
    addresses: [{name: http, listen: "0.0.0.0:%d"}]
    health_checks: [{type: http, path: /healthz}]
`, i, root, i, 19000+i)
	}
	ttl := cmp.Or(os.Getenv("AUTOHEAL_CLUSTER_TTL"), "2s") // bench/cluster.sh -t
	fmt.Fprintf(&cfg, "cluster:\n  name: %s\n  lease_ttl: %s\n  etcd: {endpoints: [\"%s\"]}\n  hosts:\n", testutil.UniqueName("idle"), ttl, strings.Join(etcd.Endpoints(), `", "`))
	for _, h := range bed.Hosts {
		fmt.Fprintf(&cfg, "    - {name: %s, address: %s}\n", h.Name, h.Addr)
	}
	path := writeConfig(t, cfg.String())
	c, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	cli, err := cluster.Connect(&c.Cluster)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	rev := func() int64 {
		resp, err := cli.Get(t.Context(), "/")
		if err != nil {
			t.Fatal(err)
		}
		return resp.Header.Revision
	}
	revStart := rev()
	hosts := startClusterHosts(t, bed, path)
	var leader *testutil.TestHost
	testutil.WaitFor(t, 3*time.Minute, "every pet answering on the leader", func() bool {
		l, err := cluster.Leader(t.Context(), cli, &c.Cluster)
		if err != nil || l == "" {
			return false
		}
		for _, h := range bed.Hosts {
			if h.Name == l {
				leader = h
			}
		}
		for i := range groups {
			if _, ok := petAt(fmt.Sprintf("%s:%d", leader.Addr, 19000+i)); !ok {
				return false
			}
		}
		return true
	})
	etcdPids := etcdProcesses(bed)
	reqs0, in0, out0 := etcdCounters(t, etcd.Endpoints())
	cpu0 := map[string]int64{}
	for _, h := range hosts {
		cpu0[h.h.Name] = cpuTicks(h.cmd.Process.Pid)
	}
	etcdCPU0 := sumTicks(etcdPids)
	rev0 := rev()
	time.Sleep(window) // the measured window: nothing to wait for, it is the time measured
	reqs1, in1, out1 := etcdCounters(t, etcd.Endpoints())
	// Every host measured was a member throughout.
	members, err := cluster.Hosts(t.Context(), cli, &c.Cluster)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range members {
		if !m.Member {
			t.Fatalf("host %s is not a member at the end of the window", m.Name)
		}
	}
	for _, h := range hosts {
		if h.cmd.ProcessState != nil || cpuTicks(h.cmd.Process.Pid) == 0 {
			t.Fatalf("autoheal on %s is not running:\n%s", h.h.Name, lastBytes(h.logs.String(), 3<<10))
		}
	}
	perSec := func(a, b float64) float64 { return (b - a) / window.Seconds() }
	share := func(ticks int64) float64 { return float64(ticks) / 100 / window.Seconds() * 100 } // CLK_TCK 100
	var cpus []string
	for _, h := range hosts {
		role := "follower"
		if h.h == leader {
			role = "leader"
		}
		cpus = append(cpus, fmt.Sprintf("%s (%s) %.2f%%", h.h.Name, role, share(cpuTicks(h.cmd.Process.Pid)-cpu0[h.h.Name])))
	}
	t.Logf("starting the cluster and its %d groups took %d etcd writes (joins, the election, the leader's records)", groups, rev0-revStart)
	t.Logf("idle cluster, 3 hosts, %d groups on the leader, lease TTL %s, over %s:", groups, c.Cluster.LeaseTTL, window)
	t.Logf("  etcd: %.1f requests/s, %.0f bytes/s in, %.0f bytes/s out (all members); %.1f writes/s (the leader's records)", perSec(reqs0, reqs1), perSec(in0, in1), perSec(out0, out1), perSec(float64(rev0), float64(rev())))
	t.Logf("  autoheal CPU (of one core): %s", strings.Join(cpus, ", "))
	t.Logf("  etcd CPU (3 members, of one core): %.2f%%", share(sumTicks(etcdPids)-etcdCPU0))
	// What was written in the window, by record kind.
	if resp, err := cli.Get(t.Context(), cluster.StateKey(&c.Cluster, "rows/"), clientv3.WithPrefix(), clientv3.WithMinModRev(rev0+1)); err == nil {
		kinds := map[string]int{}
		for _, kv := range resp.Kvs {
			k := strings.TrimPrefix(string(kv.Key), cluster.StateKey(&c.Cluster, "rows/"))
			kind, _, _ := strings.Cut(k, "/")
			kinds[kind]++
		}
		t.Logf("  records changed in the window: %v", kinds)
	}
}

// etcdCounters sums, over every member, the gRPC requests handled and the
// client bytes received and sent, from its /metrics.
func etcdCounters(t *testing.T, endpoints []string) (reqs, in, out float64) {
	t.Helper()
	for _, ep := range endpoints {
		resp, err := http.Get(ep + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			f := strings.Fields(line)
			if len(f) != 2 || strings.HasPrefix(line, "#") {
				continue
			}
			v, _ := strconv.ParseFloat(f[1], 64)
			switch {
			case strings.HasPrefix(f[0], "grpc_server_handled_total{"):
				reqs += v
			case f[0] == "etcd_network_client_grpc_received_bytes_total":
				in += v
			case f[0] == "etcd_network_client_grpc_sent_bytes_total":
				out += v
			}
		}
		resp.Body.Close()
	}
	return reqs, in, out
}

// cpuTicks is a process's user and system CPU time, in clock ticks.
func cpuTicks(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	u, _ := strconv.ParseInt(f[11], 10, 64)
	k, _ := strconv.ParseInt(f[12], 10, 64)
	return u + k
}

func sumTicks(pids []int) int64 {
	var n int64
	for _, p := range pids {
		n += cpuTicks(p)
	}
	return n
}

// etcdProcesses are the pids of the etcd members on the hosts.
func etcdProcesses(bed *testutil.TestHosts) []int {
	var pids []int
	for _, h := range bed.Hosts {
		out, _ := exec.Command("ip", "netns", "pids", h.NS).Output()
		for _, f := range strings.Fields(string(out)) {
			if comm, err := os.ReadFile("/proc/" + f + "/comm"); err == nil && strings.TrimSpace(string(comm)) == "etcd" {
				p, _ := strconv.Atoi(f)
				pids = append(pids, p)
			}
		}
	}
	return pids
}
