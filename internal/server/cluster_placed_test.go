//go:build linux

package server_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/autoheal/autoheal/internal/cluster"
	"github.com/autoheal/autoheal/internal/config"
	"github.com/autoheal/autoheal/internal/store"
	"github.com/autoheal/autoheal/internal/testutil"
)

// placedCluster is three hosts running a group of three web instances
// placed across them, behind a load balancer on the leader's host.
type placedCluster struct {
	bed   *testutil.TestHosts
	etcd  *testutil.Etcd
	hosts []*clusterHost
	cfg   *config.Config
	lb    int // the load balancer's port (on the leader's host)
}

func startPlacedCluster(t *testing.T) *placedCluster {
	t.Helper()
	return startPlacedClusterWith(t, "")
}

// startPlacedClusterWith adds groups, YAML at the groups' indentation.
func startPlacedClusterWith(t *testing.T, groups string) *placedCluster {
	t.Helper()
	bed := testutil.MakeHosts(t, 3)
	etcd := testutil.StartEtcdOn(t, bed)
	pc := &placedCluster{bed: bed, etcd: etcd, lb: 18781}
	var hosts strings.Builder
	for _, h := range bed.Hosts {
		fmt.Fprintf(&hosts, "    - {name: %s, address: %s, labels: {zone: %s}}\n", h.Name, h.Addr, h.Name)
	}
	cfgPath := writeConfig(t, fmt.Sprintf(`
groups:
  - name: web
    desired: 3
    launch: {command: {{WEB}}, ports: [http], stop_timeout: 2s}
    placement: {hosts: [h1, h2, h3]}
    health_checks:
      - {type: http, port: http, path: /healthz, interval: 200ms, timeout: 200ms, unhealthy_threshold: 2}
%s
load_balancers:
  - name: web
    listeners:
      - {protocol: http, listen: "0.0.0.0:%d", target_group: web}
    target_groups:
      - name: web
        protocol: http
        groups: [{group: web, port: http}]
        health_check: {path: /healthz, interval: 200ms, timeout: 200ms, healthy_threshold: 1, unhealthy_threshold: 2}
cluster:
  name: %s
  etcd: {endpoints: ["%s"]}
  lease_ttl: 2s
  hosts:
%s`, groups, pc.lb, testutil.UniqueName("placed"), strings.Join(etcd.Endpoints(), `", "`), hosts.String()))
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	pc.cfg = cfg
	pc.hosts = startClusterHosts(t, bed, cfgPath)
	return pc
}

// instances is the web group's live instances by id, as the API of the
// host ch shows them (forwarded to the leader when ch follows).
func (pc *placedCluster) instances(t *testing.T, ch *clusterHost) map[string]store.Instance {
	return groupInstances(t, ch, "web")
}

// groupInstances is group's healthy InService instances by id, as the
// API of the host ch shows them.
func groupInstances(t *testing.T, ch *clusterHost, group string) map[string]store.Instance {
	t.Helper()
	out, err := ch.h.Command(bins.autoheal, "--state-dir", ch.state, "--addr", "127.0.0.1:7070", "-o", "json", "status").Output()
	if err != nil {
		return nil
	}
	var st struct {
		Instances []store.Instance `json:"instances"`
	}
	if json.Unmarshal(out, &st) != nil {
		return nil
	}
	ins := map[string]store.Instance{}
	for _, in := range st.Instances {
		if in.Group == group && in.State == "InService" && in.Health == "healthy" {
			ins[in.ID] = in
		}
	}
	return ins
}

// webAt is the instance that answers at addr, or "".
func webAt(addr string) string {
	resp, err := petClient.Get("http://" + addr + "/")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	id, ok := strings.CutPrefix(strings.TrimSpace(string(b)), "hello from ")
	if !ok || resp.StatusCode != http.StatusOK {
		return ""
	}
	return id
}

// spread waits for three healthy instances, one on each host of want,
// each answering at its host's address, and returns them.
func (pc *placedCluster) spread(t *testing.T, via *clusterHost, want []string, what string) map[string]store.Instance {
	t.Helper()
	var ins map[string]store.Instance
	testutil.WaitFor(t, 60*time.Second, what, func() bool {
		ins = pc.instances(t, via)
		per := map[string]int{}
		for _, in := range ins {
			per[in.Host]++
			h := pc.host(in.Host)
			if h == nil || webAt(fmt.Sprintf("%s:%d", h.Addr, in.Ports["http"])) != in.ID {
				return false
			}
		}
		if len(ins) != 3 {
			return false
		}
		for _, h := range want {
			if per[h] == 0 {
				return false
			}
		}
		return true
	})
	return ins
}

// TestClusterPlacement: a group of three with a placement runs one
// instance on each host (spread), each reached at its host's address by
// the leader's health checks and load balancer. A follower's crash takes
// its instance with it: the leader replaces it on a live host once the
// host's lease lapsed, and the other instances do not move. Then the
// leader's host crashes: the new leader takes over the instances that run
// on the surviving hosts (same ids, same processes: none restarted) and
// replaces only the one that died with the old leader.
func TestClusterPlacement(t *testing.T) {
	pc := startPlacedCluster(t)
	all := []string{"h1", "h2", "h3"}
	first := pc.spread(t, pc.hosts[0], all, "one healthy instance of web on each host")
	leader := pc.leaderHost(t)
	// autoheal hosts, from a follower, counts one instance on each.
	for _, ch := range pc.hosts {
		if ch == leader {
			continue
		}
		out, err := ch.h.Command(bins.autoheal, "--state-dir", ch.state, "--addr", "127.0.0.1:7070", "-o", "json", "hosts", "-c", ch.cfg).Output()
		var hs struct {
			Hosts []cluster.HostStatus `json:"hosts"`
		}
		if err != nil || json.Unmarshal(out, &hs) != nil {
			t.Fatalf("autoheal hosts on %s: %v\n%s", ch.h.Name, err, out)
		}
		for _, h := range hs.Hosts {
			if h.Instances != 1 {
				t.Fatalf("autoheal hosts on %s: %s runs %d instances, want 1 (%s)", ch.h.Name, h.Name, h.Instances, out)
			}
		}
		break
	}
	// The load balancer's listener on every host reaches every host's
	// instance (a follower's targets come from the leader).
	for _, ch := range pc.hosts {
		pc.lbServes(t, ch, first)
	}

	// A follower crashes.
	var follower *clusterHost
	for _, ch := range pc.hosts {
		if ch != leader {
			follower = ch
			break
		}
	}
	crashed := time.Now()
	if err := follower.h.Crash(); err != nil {
		t.Fatal(err)
	}
	var rest []string
	for _, h := range all {
		if h != follower.h.Name {
			rest = append(rest, h)
		}
	}
	second := pc.spread(t, leader, rest, "the crashed follower's instance replaced on a live host")
	t.Logf("follower %s crashed; its instance was replaced after %v (lease TTL %s)", follower.h.Name, time.Since(crashed).Round(time.Millisecond), pc.cfg.Cluster.LeaseTTL)
	kept := 0
	for id, in := range first {
		if in.Host == follower.h.Name {
			if _, ok := second[id]; ok {
				t.Fatalf("instance %s of crashed host %s is still counted healthy", id, in.Host)
			}
			continue
		}
		if now, ok := second[id]; !ok || !keptAsItRan(t, in, now) {
			t.Fatalf("instance %s on live host %s moved or restarted: was %+v, now %+v", id, in.Host, in, now)
		}
		kept++
	}
	if kept != 2 {
		t.Fatalf("%d instances kept, want the two on live hosts", kept)
	}
	// The other hosts' listeners serve the new set.
	for _, ch := range pc.hosts {
		if ch != follower {
			pc.lbServes(t, ch, second)
		}
	}
}

// lbServes waits for the load balancer's listener on host ch to answer
// from every instance of ins, and from no other once it has.
func (pc *placedCluster) lbServes(t *testing.T, ch *clusterHost, ins map[string]store.Instance) {
	t.Helper()
	seen := map[string]bool{}
	lbAddr := fmt.Sprintf("%s:%d", ch.h.Addr, pc.lb)
	testutil.WaitFor(t, 20*time.Second, fmt.Sprintf("the load balancer on %s to answer from the %d live instances", ch.h.Name, len(ins)), func() bool {
		if id := webAt(lbAddr); id != "" {
			if _, ok := ins[id]; ok {
				seen[id] = true
			} else {
				// A target gone before the listener saw it go (its
				// requests fail over); start counting again.
				clear(seen)
			}
		}
		return len(seen) == len(ins)
	})
}

func (pc *placedCluster) host(name string) *testutil.TestHost {
	for _, h := range pc.bed.Hosts {
		if h.Name == name {
			return h
		}
	}
	return nil
}

// leaderHost waits for a leader other than not and returns it.
func (pc *placedCluster) leaderHost(t *testing.T, not ...*clusterHost) *clusterHost {
	t.Helper()
	cli, err := cluster.Connect(&pc.cfg.Cluster)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	var l *clusterHost
	testutil.WaitFor(t, 30*time.Second, "a leader", func() bool {
		name, err := cluster.Leader(t.Context(), cli, &pc.cfg.Cluster)
		if err != nil {
			return false
		}
		for _, ch := range pc.hosts {
			if ch.h.Name == name && !slices.Contains(not, ch) {
				l = ch
				return true
			}
		}
		return false
	})
	return l
}

// TestClusterPlacementLeaderCrash: the leader's host crashes; the new
// leader takes over the instances that run on the surviving hosts (same
// ids, same processes: none restarted) and replaces only the one that
// died with the old leader's host.
func TestClusterPlacementLeaderCrash(t *testing.T) {
	pc := startPlacedCluster(t)
	all := []string{"h1", "h2", "h3"}
	first := pc.spread(t, pc.hosts[0], all, "one healthy instance of web on each host")
	leader := pc.leaderHost(t)
	crashed := time.Now()
	if err := leader.h.Crash(); err != nil {
		t.Fatal(err)
	}
	next := pc.leaderHost(t, leader)
	var rest []string
	for _, h := range all {
		if h != leader.h.Name {
			rest = append(rest, h)
		}
	}
	second := pc.spread(t, next, rest, "the instances taken over by the new leader, the old leader's replaced")
	t.Logf("leader %s crashed; %s leads, and web is whole again after %v (lease TTL %s)", leader.h.Name, next.h.Name, time.Since(crashed).Round(time.Millisecond), pc.cfg.Cluster.LeaseTTL)
	kept := 0
	for id, in := range first {
		if in.Host == leader.h.Name {
			continue
		}
		if now, ok := second[id]; !ok || !keptAsItRan(t, in, now) {
			t.Fatalf("instance %s on surviving host %s was not kept as it ran: was %+v, now %+v", id, in.Host, in, now)
		}
		kept++
	}
	if kept != 2 {
		t.Fatalf("%d instances kept, want the two on surviving hosts", kept)
	}
	if !strings.Contains(next.logs.String(), "taken over") && !strings.Contains(next.logs.String(), "the members' instances are this leader's") {
		t.Fatalf("the new leader's log does not show the take-over")
	}
	// The surviving hosts' listeners (the new leader's kept open from
	// when it followed) serve the group as it is now.
	for _, ch := range pc.hosts {
		if ch != leader {
			pc.lbServes(t, ch, second)
		}
	}
}

// TestClusterLocalVolumePinned: a group with a local volume is pinned to
// the host its first instance was placed on, where the volume lives (under
// that host's state dir, prepared there through its agent). When that host
// crashes, the group waits for it rather than start empty elsewhere, as an
// EBS volume waits in its zone; when the host comes back, the pet runs
// there again with every increment acknowledged before.
func TestClusterLocalVolumePinned(t *testing.T) {
	pc := startPlacedClusterWith(t, `
  - name: db
    launch: {command: {{PET}}, ports: [http], stop_timeout: 2s}
    volumes: [{name: data}]
    placement: {hosts: [h1, h2, h3]}
    health_checks:
      - {type: http, port: http, path: /healthz, interval: 200ms, timeout: 200ms, unhealthy_threshold: 2}`)
	var db store.Instance
	testutil.WaitFor(t, 60*time.Second, "the db pet healthy", func() bool {
		for _, in := range groupInstances(t, pc.hosts[0], "db") {
			db = in
			return true
		}
		return false
	})
	var pinned *clusterHost
	for _, ch := range pc.hosts {
		if ch.h.Name == db.Host {
			pinned = ch
		}
	}
	addr := fmt.Sprintf("%s:%d", pinned.h.Addr, db.Ports["http"])
	var acked int64
	for range 5 {
		c, err := incrAt(addr)
		if err != nil {
			t.Fatal(err)
		}
		acked = c
	}
	// The volume lives under the pinned host's state dir only.
	for _, ch := range pc.hosts {
		_, err := os.Stat(filepath.Join(ch.state, "volumes", "db", "data", "data"))
		if (err == nil) != (ch == pinned) {
			t.Fatalf("volume data under %s's state dir: %v (pinned to %s)", ch.h.Name, err == nil, pinned.h.Name)
		}
	}
	if err := pinned.h.Crash(); err != nil {
		t.Fatal(err)
	}
	var other *clusterHost
	for _, ch := range pc.hosts {
		if ch != pinned {
			other = ch
			break
		}
	}
	// The next leader, or the same one, waits for the pinned host: no
	// db instance anywhere meanwhile.
	leader := pc.leaderHost(t, pinned)
	testutil.WaitFor(t, 30*time.Second, "the leader to say it waits for the pinned host", func() bool {
		return strings.Contains(leader.logs.String(), "waiting for host "+pinned.h.Name)
	})
	if ins := groupInstances(t, other, "db"); len(ins) != 0 {
		t.Fatalf("db runs away from its volume: %+v", ins)
	}
	// The host comes back: its etcd member, then its autoheal.
	if err := pinned.h.LinkUp(); err != nil {
		t.Fatal(err)
	}
	for _, m := range pc.etcd.Members {
		if strings.Contains(m.ClientURL, "//"+pinned.h.Addr+":") {
			pc.etcd.Start(m)
		}
	}
	pinned.start(t)
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := other.h.Command(bins.autoheal, "--state-dir", other.state, "--addr", "127.0.0.1:7070", "events", "--group", "db").CombinedOutput()
			t.Logf("db's events:\n%s", lastBytes(string(out), 6<<10))
		}
	})
	testutil.WaitFor(t, 60*time.Second, "the db pet back on its host with its data", func() bool {
		for _, in := range groupInstances(t, other, "db") {
			if in.Host != pinned.h.Name {
				t.Fatalf("db came back on %s, not on its volume's host %s", in.Host, pinned.h.Name)
			}
			c, ok := petAt(fmt.Sprintf("%s:%d", pinned.h.Addr, in.Ports["http"]))
			if ok && c < acked {
				t.Fatalf("db lost acknowledged increments: counter %d, %d acknowledged", c, acked)
			}
			return ok
		}
		return false
	})
}

// followerPet is a pet with a shared volume placed on h2 or h3 while h1,
// started first, leads; clients reach it at its virtual IP, which goes
// with it.
type followerPet struct {
	hosts  []*clusterHost
	etcd   *testutil.Etcd
	cfg    *config.Config
	leader *clusterHost
	shared string
	vip    string // the pet's virtual IP and port
}

// vipHolder is the host that has the pet's virtual IP, or nil.
func (fp *followerPet) vipHolder() *clusterHost {
	ip, _, _ := strings.Cut(fp.vip, ":")
	var holder *clusterHost
	for _, ch := range fp.hosts {
		out, _ := exec.Command("ip", "-n", ch.h.NS, "-4", "-o", "addr", "show", "dev", "eth0").Output()
		if strings.Contains(string(out), " "+ip+"/") {
			holder = ch
		}
	}
	return holder
}

func startFollowerPet(t *testing.T) *followerPet {
	t.Helper()
	bed := testutil.MakeHosts(t, 3)
	etcd := testutil.StartEtcdOn(t, bed)
	shared := filepath.Join(t.TempDir(), "shared", "pet")
	if err := os.MkdirAll(shared, 0o755); err != nil {
		t.Fatal(err)
	}
	var hosts strings.Builder
	for _, h := range bed.Hosts {
		fmt.Fprintf(&hosts, "    - {name: %s, address: %s}\n", h.Name, h.Addr)
	}
	fp := &followerPet{etcd: etcd, shared: shared, vip: bed.Subnet + ".201:18791"}
	cfgPath := writeConfig(t, fmt.Sprintf(`
groups:
  - name: pet
    launch:
      # A writer beside the pet appends its instance's id to the volume
      # every 50 ms, for checkOneWriter.
      command: /bin/sh
      args: ["-c", "while :; do echo \"$AUTOHEAL_INSTANCE_ID\" >> \"$AUTOHEAL_VOLUME_DATA/heartbeat\"; sleep 0.05; done & exec {{PET}} --listen 0.0.0.0:18791"]
      stop_timeout: 2s
    volumes:
      - {name: data, kind: shared, path: %s}
    addresses:
      - {name: vip, kind: vip, ip: %s.201/24}
    placement: {hosts: [h2, h3]}
    health_checks:
      - {type: http, port: "18791", path: /healthz, interval: 100ms, timeout: 100ms, unhealthy_threshold: 2}
cluster:
  name: %s
  etcd: {endpoints: ["%s"]}
  lease_ttl: 2s
  hosts:
%s`, shared, bed.Subnet, testutil.UniqueName("fpet"), strings.Join(etcd.Endpoints(), `", "`), hosts.String()))
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	fp.cfg = cfg
	// h1 first, so that it leads and the pet runs on a follower.
	for i, h := range bed.Hosts {
		ch := &clusterHost{h: h, cfg: cfgPath, state: filepath.Join(t.TempDir(), h.Name)}
		ch.start(t)
		fp.hosts = append(fp.hosts, ch)
		if i == 0 {
			testutil.WaitFor(t, 30*time.Second, "h1 to lead", func() bool { return strings.Contains(ch.logs.String(), "leading the cluster") })
			fp.leader = ch
		}
	}
	testutil.WaitFor(t, 60*time.Second, "the pet answering at its virtual IP", func() bool {
		_, ok := petInfoAt(fp.vip)
		return ok
	})
	return fp
}

// on is the host whose own address serves instance id.
func (fp *followerPet) on(t *testing.T, id string) *clusterHost {
	for _, ch := range fp.hosts {
		for _, in := range groupInstances(t, fp.leader, "pet") {
			if in.ID == id && in.Host == ch.h.Name {
				return ch
			}
		}
	}
	return nil
}

// TestClusterFollowerPartitioned: the host of a pet placed on a follower
// is cut off (link down, processes alive). It cannot renew its lease, so
// its shims stop the pet before the lease can lapse; the leader replaces
// the pet on the other allowed host once the lease is gone. One writer at
// a time in the volume, every acknowledged increment kept; after the
// partition heals nothing of the pet is left on the cut-off host.
func TestClusterFollowerPartitioned(t *testing.T) {
	fp := startFollowerPet(t)
	first, _ := petInfoAt(fp.vip)
	host := fp.on(t, first.Instance)
	if host == nil || host == fp.leader {
		t.Fatalf("the pet %s runs on %v, want a follower", first.Instance, host)
	}
	if h := fp.vipHolder(); h != host {
		t.Fatalf("the virtual IP is on %v, not with the pet on %s", h, host.h.Name)
	}
	w := startVIPWriter(t, fp.vip)
	testutil.WaitFor(t, 10*time.Second, "the writer's first acknowledged increment", func() bool { return w.oks.Load() > 0 })
	cut := time.Now()
	if err := host.h.LinkDown(); err != nil {
		t.Fatal(err)
	}
	var next petInfo
	testutil.WaitFor(t, 60*time.Second, "the pet answering from another instance", func() bool {
		p, ok := petInfoAt(fp.vip)
		next = p
		return ok && p.Instance != first.Instance
	})
	took := time.Since(cut)
	acked := w.halt()
	t.Logf("%s cut off; the pet answered from %s after %v (lease TTL %s)", host.h.Name, next.Instance, took.Round(time.Millisecond), fp.cfg.Cluster.LeaseTTL)
	if p, err := incrWith(petClient, fp.vip); err != nil || int64(p.Counter) <= acked {
		t.Fatalf("an increment after the failover: %+v %v; want a counter above the %d acknowledged", p, err, acked)
	}
	if err := host.h.LinkUp(); err != nil {
		t.Fatal(err)
	}
	// Its serve (and its spare shim) may still run, until it hears its
	// lease is gone; nothing of the pet may.
	for _, p := range petProcesses(host.h) {
		if !strings.HasSuffix(p, " autoheal") {
			t.Fatalf("processes of the pet left on the cut-off host: %v", petProcesses(host.h))
		}
	}
	checkOneWriter(t, filepath.Join(fp.shared, "data", "heartbeat"))
	if h := fp.vipHolder(); h == nil || h == host || h.h.Name != fp.on(t, next.Instance).h.Name {
		t.Fatalf("after the failover the virtual IP is on %v, not with the pet", h)
	}
}

// TestClusterEtcdLostFollowerPet: etcd is lost by every host while a pet
// runs on a follower. The follower's failsafe asks every other host, the
// leader included, and keeps its pet running while all of them answer
// that etcd is out of their reach too: the pet answers throughout, the
// same instance, and once etcd is back nothing moved.
func TestClusterEtcdLostFollowerPet(t *testing.T) {
	fp := startFollowerPet(t)
	first, _ := petInfoAt(fp.vip)
	host := fp.on(t, first.Instance)
	if host == nil || host == fp.leader {
		t.Fatalf("the pet %s runs on %v, want a follower", first.Instance, host)
	}
	for _, m := range fp.etcd.Members {
		m.Kill()
	}
	lost := time.Now()
	misses := 0
	for time.Since(lost) < 10*time.Second {
		p, ok := petInfoAt(fp.vip)
		switch {
		case ok && p.Instance == first.Instance:
			misses = 0
		case ok:
			t.Fatalf("instance %s answers %v after etcd was lost, not %s", p.Instance, time.Since(lost), first.Instance)
		default:
			if misses++; misses == 3 {
				t.Fatalf("the pet stopped answering %v after etcd was lost:\n%s", time.Since(lost), lastBytes(host.logs.String(), 4<<10))
			}
		}
	}
	if !strings.Contains(host.logs.String(), "keeps the pets placed here running") {
		t.Fatalf("the follower kept its pet without the failsafe saying so:\n%s", lastBytes(host.logs.String(), 4<<10))
	}
	for _, m := range fp.etcd.Members {
		fp.etcd.Start(m)
	}
	fp.etcd.WaitHealthy(60 * time.Second)
	testutil.WaitFor(t, 30*time.Second, "the pet still the same instance once etcd is back", func() bool {
		p, ok := petInfoAt(fp.vip)
		if ok && p.Instance != first.Instance {
			t.Fatalf("the pet moved after etcd came back: %s, was %s", p.Instance, first.Instance)
		}
		return ok && len(groupInstances(t, fp.leader, "pet")) == 1
	})
}

// keptAsItRan reports whether an instance on a surviving host is the same
// after a fault: same id and host, same process, unless the process was
// restarted in place because its host's renewals stalled past the shims'
// deadline (the fault's etcd member may have been etcd's leader: its
// election can hold renewals up; the fence then stops the pets, and the
// group restarts them where they are, as docs/design.md#13 says).
func keptAsItRan(t *testing.T, was, now store.Instance) bool {
	if now.ID != was.ID || now.Host != was.Host {
		return false
	}
	if now.Pid == was.Pid {
		return true
	}
	if strings.Contains(now.LastExit, "deadline passed without renewal") {
		t.Logf("instance %s on %s was restarted in place by its host's fence (renewals held up by etcd's election): %s", now.ID, now.Host, now.LastExit)
		return true
	}
	return false
}
