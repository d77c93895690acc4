package server_test

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/autoheal/autoheal/internal/cluster"
	"github.com/autoheal/autoheal/internal/testutil"
)

// TestClusterEtcdLost: every etcd member is killed for 30 s, with the
// writer going through the pet's virtual IP. No host reaches etcd, every
// one says so when the leader asks (the failsafe), and the leader keeps
// its pet: the same instance answers at the virtual IP the whole time,
// nothing moves, nothing is lost. When etcd comes back, the leader's
// lease (etcd extends every lease when it elects its leader) carries on,
// and the leader with it.
func TestClusterEtcdLost(t *testing.T) {
	pc := startPetCluster(t)
	old := pc.fault(t, 10)
	for _, m := range pc.etcd.Members {
		m.Kill()
	}
	lost := time.Now()
	outage := 30 * time.Second
	if testing.Short() {
		outage = 10 * time.Second
	}
	var answers, misses int
	for time.Since(lost) < outage {
		p, ok := petInfoAt(pc.vip)
		switch {
		case ok && p.Instance == old:
			answers, misses = answers+1, 0
		case ok:
			t.Fatalf("instance %s answers at the virtual IP %v after etcd was lost, not %s", p.Instance, time.Since(lost), old)
		default:
			// One slow answer on a loaded machine is not an outage; three
			// in a row (a second) are.
			if misses++; misses == 3 {
				t.Fatalf("the pet stopped answering at its virtual IP %v after etcd was lost:\n%s", time.Since(lost), lastBytes(pc.leader.logs.String(), 4<<10))
			}
		}
	}
	if !strings.Contains(pc.leader.logs.String(), "etcd is out of reach of every host") {
		t.Fatalf("the leader kept its pet without the failsafe saying so:\n%s", lastBytes(pc.leader.logs.String(), 4<<10))
	}
	t.Logf("etcd lost for %v: the pet answered %d times at its virtual IP, from %s throughout", outage, answers, old)
	for _, m := range pc.etcd.Members {
		pc.etcd.Start(m)
	}
	pc.etcd.WaitHealthy(60 * time.Second)
	testutil.WaitFor(t, 30*time.Second, "the leader to renew its lease again", func() bool {
		return strings.Contains(pc.leader.logs.String(), "etcd answers again")
	})
	cli, err := cluster.Connect(&pc.cfg.Cluster)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if l, err := cluster.Leader(t.Context(), cli, &pc.cfg.Cluster); err != nil || l != pc.leader.h.Name {
		t.Fatalf("the leader after etcd came back: %q %v, want %s", l, err, pc.leader.h.Name)
	}
	acked := pc.writer.halt()
	p, ok := petInfoAt(pc.vip)
	if !ok || p.Instance != old || int64(p.Counter) < acked {
		t.Fatalf("at the virtual IP after etcd came back: %+v %v; want %s with at least %d", p, ok, old, acked)
	}
	for _, ch := range pc.hosts {
		if ch != pc.leader && (pc.vipHeld(ch.h) || len(petProcesses(ch.h)) > 1) {
			t.Fatalf("host %s holds the virtual IP or runs more than its controller: %v", ch.h.Name, petProcesses(ch.h))
		}
	}
	t.Logf("etcd back: %s still leads, the writer's %d increments kept", pc.leader.h.Name, acked)
}

// TestClusterEtcdLostWithAHost: etcd is lost and a follower's host
// crashes at the same time. The leader cannot hear from every host that
// it is cut off from etcd too (a silent host may be running a new leader
// for all it knows), so the failsafe does not hold: the leader stops its
// pet before its lease could lapse. When etcd comes back, the host left
// runs the pet, after keeping the promise it made to the leader, with
// nothing lost and one writer at a time.
func TestClusterEtcdLostWithAHost(t *testing.T) {
	pc := startPetCluster(t)
	old := pc.fault(t, 10)
	var follower *clusterHost
	for _, ch := range pc.hosts {
		if ch != pc.leader {
			follower = ch
			break
		}
	}
	// The follower's host crashes, and etcd's members go with no host
	// left to reach them.
	if err := follower.h.Crash(); err != nil {
		t.Fatal(err)
	}
	for _, m := range pc.etcd.Members {
		m.Kill()
	}
	lost := time.Now()
	testutil.WaitFor(t, 3*pc.cfg.Cluster.LeaseTTL.D(), "the leader to stop its pet", func() bool {
		_, ok := petAt(pc.addr(pc.leader.h))
		return !ok
	})
	t.Logf("the leader stopped its pet %v after etcd and %s were lost (lease TTL %s)", time.Since(lost).Round(time.Millisecond), follower.h.Name, pc.cfg.Cluster.LeaseTTL)
	testutil.WaitFor(t, 10*time.Second, "the leader to say why the failsafe did not hold", func() bool {
		return strings.Contains(pc.leader.logs.String(), "not every host is cut off from etcd")
	})
	// etcd's members on the crashed host stay down: two of three are a
	// quorum.
	for _, m := range pc.etcd.Members {
		if !strings.Contains(m.ClientURL, follower.h.Addr+":") {
			pc.etcd.Start(m)
		}
	}
	back := time.Now()
	next, took := pc.failover(t, back, old)
	t.Logf("etcd back (2 of 3 members): the pet answered on %s after %v (lease TTL %s)", next.Name, took.Round(time.Millisecond), pc.cfg.Cluster.LeaseTTL)
}

// TestClusterViewsFromAnyHost: on a follower, the CLI with that host's own
// local admin token shows the leader's groups and instances and changes
// them (its API forwards, signed, to the leader's peer endpoint), and the
// leader's journal names the caller and the host it came through. A
// follower's API without a credential refuses, as any API does.
func TestClusterViewsFromAnyHost(t *testing.T) {
	needAWSClients(t)
	keys := writeAWSKeys(t)
	pc := startPetClusterWith(t, "2s", "", func(cfgPath string) {
		f, err := os.OpenFile(cfgPath, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		fmt.Fprintf(f, "api:\n  aws_credentials_file: %s\n", keys)
	})
	id := petInstance(t, pc.vip)
	home := t.TempDir()
	for _, ch := range pc.hosts {
		if ch == pc.leader {
			continue
		}
		cli := func(args ...string) string {
			cmd := ch.h.Command(bins.autoheal, append([]string{"--state-dir", ch.state, "--addr", "127.0.0.1:7070"}, args...)...)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("on %s: autoheal %v: %v\n%s", ch.h.Name, args, err, out)
			}
			return string(out)
		}
		if out := cli("status"); !strings.Contains(out, id) || !strings.Contains(out, "pet") {
			t.Fatalf("status on follower %s does not show the leader's pet %s:\n%s", ch.h.Name, id, out)
		}
		cli("scale", "pet", "--desired", "1")
		var hosts struct {
			Hosts []cluster.HostStatus `json:"hosts"`
		}
		if err := json.Unmarshal([]byte(cli("-o", "json", "hosts", "-c", ch.cfg)), &hosts); err != nil {
			t.Fatal(err)
		}
		for _, h := range hosts.Hosts {
			want := 0
			if h.Name == pc.leader.h.Name {
				want = 1
			}
			if !h.Member || h.Leader != (want == 1) || h.Instances != want {
				t.Fatalf("hosts on %s: %+v, want member, %d instance(s), leader %s", ch.h.Name, h, want, pc.leader.h.Name)
			}
		}
		if out := cli("events", "-o", "json"); !strings.Contains(out, "local-admin via "+ch.h.Name) {
			t.Fatalf("the journal does not name the caller through %s:\n%s", ch.h.Name, lastBytes(out, 3<<10))
		}
		// The AWS endpoint too: a follower checks the signature and the
		// leader answers (and journals the change as the key's profile).
		aws := ch.h.Command(awsCLI, "--endpoint-url", "http://127.0.0.1:7070/aws", "--output", "json",
			"autoscaling", "describe-auto-scaling-instances")
		aws.Env = (&awsEnv{keysFile: keys, home: home}).clientEnv("viewer")
		if out, err := aws.CombinedOutput(); err != nil || !strings.Contains(string(out), id) {
			t.Fatalf("aws autoscaling describe-auto-scaling-instances on follower %s: %v\n%s", ch.h.Name, err, out)
		}
		aws = ch.h.Command(awsCLI, "--endpoint-url", "http://127.0.0.1:7070/aws", "autoscaling", "set-desired-capacity",
			"--auto-scaling-group-name", "pet", "--desired-capacity", "1")
		aws.Env = (&awsEnv{keysFile: keys, home: home}).clientEnv("operator")
		if out, err := aws.CombinedOutput(); err != nil {
			t.Fatalf("aws autoscaling set-desired-capacity on follower %s: %v\n%s", ch.h.Name, err, out)
		}
		if out := cli("events", "-o", "json"); !strings.Contains(out, "operator via "+ch.h.Name+" aws autoscaling:SetDesiredCapacity") {
			t.Fatalf("the journal does not name the AWS caller through %s:\n%s", ch.h.Name, lastBytes(out, 3<<10))
		}
		out, err := ch.h.Command("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:7070/v1/status").Output()
		if err != nil || string(out) != "401" {
			t.Fatalf("a follower's API without a token: %s %v", out, err)
		}
	}
}

// TestClusterEtcdLostPetCrashes: with etcd out of reach of every host,
// the leader keeps its pet (the failsafe) but records nothing, so it does
// nothing the next leader would not know of: a pet that crashes then is
// not restarted, and the group says it holds. Once etcd is back, the
// group records the crash and restarts the pet, on the same host.
func TestClusterEtcdLostPetCrashes(t *testing.T) {
	pc := startPetCluster(t)
	for _, m := range pc.etcd.Members {
		m.Kill()
	}
	testutil.WaitFor(t, 10*time.Second, "the failsafe to hold", func() bool {
		return strings.Contains(pc.leader.logs.String(), "etcd is out of reach of every host")
	})
	crashed := time.Now()
	petClient.Post("http://"+pc.vip+"/crash", "text/plain", nil)
	testutil.WaitFor(t, 10*time.Second, "the group to hold", func() bool {
		return strings.Contains(pc.leader.logs.String(), "the cluster's records cannot be written (etcd out of reach): write not made, group holds")
	})
	if _, ok := petAt(pc.vip); ok {
		t.Fatal("the pet answers: it was restarted while nothing could be recorded")
	}
	for _, m := range pc.etcd.Members {
		pc.etcd.Start(m)
	}
	testutil.WaitFor(t, 60*time.Second, "the pet to be restarted once etcd is back", func() bool {
		_, ok := petAt(pc.vip)
		return ok
	})
	t.Logf("the pet crashed during the outage and answered again %v later, after etcd came back", time.Since(crashed).Round(time.Millisecond))
	if !pc.vipHeld(pc.leader.h) {
		t.Fatalf("the pet came back elsewhere than on the leader %s", pc.leader.h.Name)
	}
}

// approveDoc waits for an operator, then writes that it ran.
const approveDoc = `schemaVersion: "0.3"
description: waits for an approval across a failover
mainSteps:
  - name: wait
    action: aws:approve
    inputs: {Message: go on?}
  - name: done
    action: aws:sleep
    inputs: {Duration: PT0.1S}
`

// TestClusterExecutionResumed: an execution waiting for an approval on the
// leader survives the leader's host: the next leader resumes it from the
// cluster's records (same id, still waiting), takes the approval and runs
// it to the end; the instance of the lost host is not live there.
func TestClusterExecutionResumed(t *testing.T) {
	pc := startPetClusterWith(t, "2s", "", func(cfg string) { writeDoc(t, cfg, "approve-me", approveDoc) })
	cliOn := func(ch *clusterHost, args ...string) string {
		t.Helper()
		out, err := ch.h.Command(bins.autoheal, append([]string{"--state-dir", ch.state, "--addr", "127.0.0.1:7070"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("on %s: autoheal %v: %v\n%s", ch.h.Name, args, err, out)
		}
		return string(out)
	}
	id := strings.TrimSpace(cliOn(pc.leader, "run", "approve-me", "--detach"))
	status := func(ch *clusterHost) string {
		var ex struct {
			Status string `json:"status"`
		}
		json.Unmarshal([]byte(cliOn(ch, "-o", "json", "executions", "show", id)), &ex)
		return ex.Status
	}
	testutil.WaitFor(t, 10*time.Second, "the execution to wait for its approval", func() bool { return status(pc.leader) == "Waiting" })
	old := pc.fault(t, 5)
	crashed := time.Now()
	if err := pc.leader.h.Crash(); err != nil {
		t.Fatal(err)
	}
	next, took := pc.failover(t, crashed, old)
	t.Logf("host %s crashed; the pet answered on %s after %v", pc.leader.h.Name, next.Name, took.Round(time.Millisecond))
	var nh *clusterHost
	for _, ch := range pc.hosts {
		if ch.h == next {
			nh = ch
		}
	}
	if s := status(nh); s != "Waiting" {
		t.Fatalf("the execution on the new leader: %q, want Waiting (resumed)", s)
	}
	cliOn(nh, "executions", "approve", id, "--approver", "ops")
	testutil.WaitFor(t, 10*time.Second, "the resumed execution to succeed", func() bool { return status(nh) == "Success" })
	if out := cliOn(nh, "status"); strings.Contains(out, old) {
		t.Fatalf("the lost host's instance %s is live on the new leader:\n%s", old, out)
	}
}
