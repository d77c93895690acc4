package cluster

import (
	"context"
	"testing"
	"time"

	"github.com/autoheal/autoheal/internal/testutil"
)

// TestOneEtcdMemberLost: a 3-member etcd on three hosts (network
// namespaces on a bridge). Cutting one host's link, then killing every
// process of another host (one of them etcd's leader, in one of the two
// faults), costs no member its lease and the leader its leadership: the
// hosts' renewals go on through the members left, as long as two of three
// answer.
func TestOneEtcdMemberLost(t *testing.T) {
	bed := testutil.MakeHosts(t, 3)
	e := testutil.StartEtcdOn(t, bed)
	c := testCluster(t, e.Endpoints(), "h1", "h2")
	h1, h2 := joinHost(t, c, "h1", testConfig), joinHost(t, c, "h2", testConfig)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	errs := make(chan error, 2)
	for _, m := range []*Member{h1, h2} {
		go func() { errs <- m.Lease().Run(ctx) }()
	}
	if err := h1.Campaign(t.Context()); err != nil {
		t.Fatal(err)
	}
	healthy := func(what string) {
		t.Helper()
		from := time.Now()
		// Three TTLs of renewals after the fault: a lost lease would have
		// ended Run by then.
		testutil.WaitFor(t, 30*time.Second, what+": renewals for 3 TTLs", func() bool {
			select {
			case err := <-errs:
				t.Fatalf("%s: a lease was lost: %v", what, err)
			default:
			}
			return h1.Lease().Renewed().Sub(from) > 3*c.LeaseTTL.D() && h2.Lease().Renewed().Sub(from) > 3*c.LeaseTTL.D()
		})
		if l, err := Leader(t.Context(), h2.Client(), c); err != nil || l != "h1" {
			t.Fatalf("%s: leader %q %v, want h1", what, l, err)
		}
	}
	if err := bed.Hosts[2].LinkDown(); err != nil {
		t.Fatal(err)
	}
	healthy("host 3 cut off")
	if err := bed.Hosts[2].LinkUp(); err != nil {
		t.Fatal(err)
	}
	e.WaitHealthy(30 * time.Second)
	killEtcdLeader(t, e, h2.Client())
	healthy("etcd's leader killed")
}
