package cluster

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/autoheal/autoheal/internal/config"
	"github.com/autoheal/autoheal/internal/testutil"
)

const testConfig = "groups:\n  - name: g\n    launch: {command: sh}\n"

func testCluster(t *testing.T, endpoints []string, hosts ...string) *config.Cluster {
	t.Helper()
	c := &config.Cluster{Name: testutil.UniqueName("c"), Etcd: config.Etcd{Endpoints: endpoints}}
	for i, h := range hosts {
		c.Hosts = append(c.Hosts, config.ClusterHost{Name: h, Address: "10.9.0." + string(rune('1'+i))})
	}
	cfg := &config.Config{Groups: []config.Group{{Name: "g", Launch: config.Launch{Command: "/bin/sh"}}}, Cluster: *c}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return &cfg.Cluster
}

func joinHost(t *testing.T, c *config.Cluster, host, cfg string) *Member {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := Join(ctx, c, host, []byte(cfg))
	if err != nil {
		t.Fatalf("join %s: %v", host, err)
	}
	t.Cleanup(func() { _ = m.Leave(context.Background()) })
	return m
}

// TestJoinLeadAndFencedWrites: one leader among three hosts; only its
// writes apply; once deposed (its lease gone, another elected), its late
// write is refused by etcd and the new leader's applies.
func TestJoinLeadAndFencedWrites(t *testing.T) {
	e := testutil.StartEtcd(t, 1)
	c := testCluster(t, e.Endpoints(), "h1", "h2", "h3")
	ctx := t.Context()
	h1, h2, h3 := joinHost(t, c, "h1", testConfig), joinHost(t, c, "h2", testConfig), joinHost(t, c, "h3", testConfig)
	if err := h1.Campaign(ctx); err != nil {
		t.Fatal(err)
	}
	won := make(chan *Member, 2)
	for _, m := range []*Member{h2, h3} {
		go func() {
			if m.Campaign(ctx) == nil {
				won <- m
			}
		}()
	}
	key := StateKey(c, "x")
	if err := h1.Write(ctx, clientv3.OpPut(key, "1")); err != nil {
		t.Fatalf("leader's write: %v", err)
	}
	if err := h2.Write(ctx, clientv3.OpPut(key, "2")); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("a follower's write: %v, want ErrNotLeader", err)
	}
	if l, _ := Leader(ctx, h2.Client(), c); l != "h1" {
		t.Fatalf("leader = %q, want h1", l)
	}
	if l, err := h3.Leader(ctx); l != "h1" || err != nil {
		t.Fatalf("h3's election says the leader is %q (%v), want h1", l, err)
	}
	// h1's lease goes (as when it cannot renew for a TTL): another leads.
	if _, err := h2.Client().Revoke(ctx, h1.Lease().ID()); err != nil {
		t.Fatal(err)
	}
	next := <-won
	if err := h1.Write(ctx, clientv3.OpPut(key, "late")); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("the deposed leader's late write: %v, want ErrNotLeader", err)
	}
	if err := next.Write(ctx, clientv3.OpPut(key, "3")); err != nil {
		t.Fatalf("the new leader's write: %v", err)
	}
	resp, err := h3.Client().Get(ctx, key)
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "3" {
		t.Fatalf("value = %v %v, want 3", resp.Kvs, err)
	}
	hosts, err := Hosts(ctx, h3.Client(), c)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hosts {
		wantMember := h.Name != "h1"
		if h.Member != wantMember || h.Leader != (h.Name == next.Host()) {
			t.Errorf("host %s: member %v leader %v (leader is %s)", h.Name, h.Member, h.Leader, next.Host())
		}
		if h.Member && (h.LeaseLeft <= 0 || h.LeaseLeft > c.LeaseTTL.D()) {
			t.Errorf("host %s: lease left %v", h.Name, h.LeaseLeft)
		}
	}
}

// TestConfigMustMatch: the first host records its config; another with a
// different one is refused, the differences named; the same config laid
// out differently joins.
func TestConfigMustMatch(t *testing.T) {
	e := testutil.StartEtcd(t, 1)
	c := testCluster(t, e.Endpoints(), "h1", "h2", "h3")
	joinHost(t, c, "h1", testConfig)
	_, err := Join(t.Context(), c, "h2", []byte("groups:\n  - name: g\n    launch: {command: bash}\n    max: 2\n"))
	var me *ConfigMismatchError
	if !errors.As(err, &me) {
		t.Fatalf("got %v, want a ConfigMismatchError", err)
	}
	want := []string{`groups[0].launch.command: the cluster has "sh", this host has "bash"`, "groups[0].max: the cluster has none, this host has 2"}
	if strings.Join(me.Diffs, "\n") != strings.Join(want, "\n") || me.By != "h1" || me.Host != "h2" {
		t.Fatalf("mismatch %+v", me)
	}
	if !strings.Contains(err.Error(), "host h2's config differs from the cluster's (recorded by host h1") {
		t.Fatalf("message: %v", err)
	}
	joinHost(t, c, "h3", "# same\ngroups:\n- launch:\n    command: sh\n  name: g\n")
	// The refused host holds no key.
	hosts, err := Hosts(t.Context(), mustClient(t, c), c)
	if err != nil {
		t.Fatal(err)
	}
	if hosts[1].Member {
		t.Fatal("the refused host is a member")
	}
}

// TestOneHostNameOneMember: a second autoheal with the same --host is
// refused while the first lives; a name not in cluster.hosts is refused.
func TestOneHostNameOneMember(t *testing.T) {
	e := testutil.StartEtcd(t, 1)
	c := testCluster(t, e.Endpoints(), "h1", "h2")
	joinHost(t, c, "h1", testConfig)
	if _, err := Join(t.Context(), c, "h1", []byte(testConfig)); err == nil || !strings.Contains(err.Error(), "host h1 is already a member") {
		t.Fatalf("second h1: %v", err)
	}
	if _, err := Join(t.Context(), c, "h9", []byte(testConfig)); err == nil || !strings.Contains(err.Error(), `host "h9" is not in cluster.hosts (h1, h2)`) {
		t.Fatalf("h9: %v", err)
	}
}

func mustClient(t *testing.T, c *config.Cluster) *clientv3.Client {
	t.Helper()
	cli, err := Connect(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// TestSafeUntilIsALowerBound is the promise fencing rests on: the moment
// etcd deletes a host's key because its lease lapsed is never before the
// SafeUntil the host computed. h1 renews, then stops (its process frozen,
// its link cut); h2 watches h1's key go and takes the lead; both happen
// after h1's SafeUntil. Rounds with a 3-member etcd whose leader is also
// killed in one round (a lease is extended, never shortened, across an
// etcd leader change).
func TestSafeUntilIsALowerBound(t *testing.T) {
	e := testutil.StartEtcd(t, 3)
	for round := range 3 {
		c := testCluster(t, e.Endpoints(), "h1", "h2")
		h1, h2 := joinHost(t, c, "h1", testConfig), joinHost(t, c, "h2", testConfig)
		ctx, stop := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- h1.Lease().Run(ctx) }()
		h2done := make(chan error, 1)
		go func() { h2done <- h2.Lease().Run(t.Context()) }()
		if err := h1.Campaign(t.Context()); err != nil {
			t.Fatal(err)
		}
		// A few renewals, then h1 stops renewing, as a frozen host.
		r0 := h1.Lease().Renewed()
		testutil.WaitFor(t, 10*time.Second, "h1 renewed twice", func() bool {
			return h1.Lease().Renewed().Sub(r0) > c.LeaseTTL.D()/2
		})
		watch := h2.Client().Watch(t.Context(), hostKey(c, "h1"))
		h1.sess.Orphan()
		stop()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		safe := h1.Lease().SafeUntil()
		if round == 2 {
			killEtcdLeader(t, e, h2.Client())
		}
		var gone time.Time
		for wr := range watch {
			if len(wr.Events) > 0 && wr.Events[0].Type == clientv3.EventTypeDelete {
				gone = time.Now()
				break
			}
		}
		if err := h2.Campaign(t.Context()); err != nil {
			select {
			case lerr := <-h2done:
				t.Fatalf("round %d: h2's lease: %v (campaign: %v)", round, lerr, err)
			default:
			}
			t.Fatal(err)
		}
		led := time.Now()
		if gone.Before(safe) || led.Before(safe) {
			t.Fatalf("round %d: h1's key went %v and h2 led %v after h1's SafeUntil (negative: before it)", round, gone.Sub(safe), led.Sub(safe))
		}
		t.Logf("round %d: h1's key went %v after its SafeUntil, h2 led %v after", round, gone.Sub(safe).Round(time.Millisecond), led.Sub(safe).Round(time.Millisecond))
		if round == 2 {
			restartStopped(t, e)
		}
	}
}

func killEtcdLeader(t *testing.T, e *testutil.Etcd, cli *clientv3.Client) {
	t.Helper()
	for _, m := range e.Members {
		st, err := cli.Status(t.Context(), m.ClientURL)
		if err == nil && st.Leader == st.Header.MemberId {
			m.Kill()
			return
		}
	}
	t.Fatal("no etcd leader found")
}

func restartStopped(t *testing.T, e *testutil.Etcd) {
	t.Helper()
	for _, m := range e.Members {
		if !m.Running() {
			e.Start(m)
		}
	}
	e.WaitHealthy(30 * time.Second)
}

// TestLeaseLostWithoutEtcd: with etcd gone, Run reports the lease lost
// once SafeUntil has passed, not before, and not much after.
func TestLeaseLostWithoutEtcd(t *testing.T) {
	e := testutil.StartEtcd(t, 1)
	c := testCluster(t, e.Endpoints(), "h1")
	m := joinHost(t, c, "h1", testConfig)
	done := make(chan error, 1)
	go func() { done <- m.Lease().Run(t.Context()) }()
	r0 := m.Lease().Renewed()
	testutil.WaitFor(t, 10*time.Second, "a renewal", func() bool { return m.Lease().Renewed().After(r0) })
	e.Members[0].Kill()
	err := <-done
	lost := time.Now()
	if !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("Run = %v, want ErrLeaseLost", err)
	}
	if safe := m.Lease().SafeUntil(); lost.Before(safe) {
		t.Fatalf("lost %v before SafeUntil", safe.Sub(lost))
	}
}
