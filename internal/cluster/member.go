package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/autoheal/autoheal/internal/config"
)

// ErrNotLeader is returned by Member.Write on a host that is not the
// leader, or no longer: its write was not applied.
var ErrNotLeader = errors.New("not the cluster's leader: the write was refused")

// HostRecord is the value of a member's key.
type HostRecord struct {
	Name    string    `json:"name"`
	Address string    `json:"address"`
	PID     int       `json:"pid"`
	Started time.Time `json:"started"`
}

// Member is this host in the cluster: its lease, its host key, and its
// part in the election.
type Member struct {
	cfg   *config.Cluster
	host  string
	cli   *clientv3.Client
	lease *Lease
	sess  *concurrency.Session
	elect *concurrency.Election
	// peerKey signs the failsafe's questions and answers (failsafe.go).
	peerKey []byte

	mu        sync.Mutex
	leaderKey string // this host's election key while it leads
	leaderRev int64
}

// Join makes host a member of the cluster c: it checks that data, the
// text of this host's config file, says what the cluster's recorded
// config says, grants the host's lease and writes its host key. A host
// name already held by a live member is refused (two autoheals claiming
// one host). The caller runs Lease().Run and, to lead, Campaign; Leave
// ends the membership.
func Join(ctx context.Context, c *config.Cluster, host string, data []byte) (m *Member, err error) {
	return JoinResuming(ctx, c, host, data, 0)
}

// JoinResuming is Join for a controller that restarted on its host: when
// resume, the lease its previous run held, is still alive, the host goes
// on with it (its host key, its place in the election and its shims'
// deadline stay), so a controller restarted before its pets' deadline
// keeps them running and leading. The caller must make sure the previous
// run is dead (serve holds a lock on its state dir for that).
func JoinResuming(ctx context.Context, c *config.Cluster, host string, data []byte, resume clientv3.LeaseID) (m *Member, err error) {
	h := c.Host(host)
	if h == nil {
		return nil, fmt.Errorf("host %q is not in cluster.hosts (%s): start autoheal with --host NAME, one of them", host, strings.Join(hostNames(c), ", "))
	}
	cli, err := Connect(c)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			cli.Close()
		}
	}()
	// etcd's client waits for a connection that never comes (a wrong
	// endpoint, a refused certificate) without a word: joining is bounded.
	ctx, cancel := context.WithTimeout(ctx, joinTimeout(c))
	defer cancel()
	defer func() {
		if err != nil && ctx.Err() != nil {
			err = fmt.Errorf("etcd at %s did not answer within %s (check the endpoints, the TLS files and the credentials): %w",
				strings.Join(c.Etcd.Endpoints, ", "), joinTimeout(c), err)
		}
	}()
	if err := checkConfig(ctx, cli, c, host, data); err != nil {
		return nil, err
	}
	peerKey, err := ensurePeerKey(ctx, cli, c)
	if err != nil {
		return nil, err
	}
	renewers, err := connectEach(c)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			for _, r := range renewers {
				r.Close()
			}
		}
	}()
	lease := resumeLease(ctx, cli, renewers, c.LeaseTTL.D(), resume)
	if lease == nil {
		if lease, err = grantLease(ctx, cli, renewers, c.LeaseTTL.D()); err != nil {
			return nil, fmt.Errorf("etcd: granting host %s's lease: %w", host, err)
		}
	}
	if err := registerHost(ctx, cli, c, h, lease); err != nil {
		_ = lease.revoke(context.WithoutCancel(ctx))
		return nil, err
	}
	sess, err := concurrency.NewSession(cli, concurrency.WithLease(lease.ID()))
	if err != nil {
		_ = lease.revoke(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("etcd: session: %w", err)
	}
	return &Member{cfg: c, host: host, cli: cli, lease: lease, sess: sess, peerKey: peerKey,
		elect: concurrency.NewElection(sess, electionPrefix(c))}, nil
}

// registerHost writes h's host key on lease, unless another member holds
// it (two autoheals claiming one host); its own key, from the run whose
// lease was resumed, is rewritten.
func registerHost(ctx context.Context, cli *clientv3.Client, c *config.Cluster, h *config.ClusterHost, lease *Lease) error {
	rec, _ := json.Marshal(HostRecord{Name: h.Name, Address: h.Address, PID: os.Getpid(), Started: time.Now().UTC()})
	key := hostKey(c, h.Name)
	resp, err := cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, string(rec), clientv3.WithLease(lease.ID()))).
		Else(clientv3.OpGet(key)).Commit()
	if err != nil {
		return fmt.Errorf("etcd: registering host %s: %w", h.Name, err)
	}
	if resp.Succeeded {
		return nil
	}
	kvs := resp.Responses[0].GetResponseRange().Kvs
	if len(kvs) > 0 && clientv3.LeaseID(kvs[0].Lease) == lease.ID() {
		if _, err := cli.Put(ctx, key, string(rec), clientv3.WithLease(lease.ID())); err != nil {
			return fmt.Errorf("etcd: registering host %s: %w", h.Name, err)
		}
		return nil
	}
	var other HostRecord
	if len(kvs) > 0 {
		_ = json.Unmarshal(kvs[0].Value, &other)
	}
	return fmt.Errorf("host %s is already a member (pid %d, since %s): is another autoheal running with --host %s? A host that died leaves when its lease lapses (%s)",
		h.Name, other.PID, other.Started.Format(time.RFC3339), h.Name, c.LeaseTTL)
}

// joinTimeout bounds joining: five connection attempts' worth.
func joinTimeout(c *config.Cluster) time.Duration { return 5 * c.Etcd.DialTimeout.D() }

// Host is this member's host name.
func (m *Member) Host() string { return m.host }

// Lease is this member's lease.
func (m *Member) Lease() *Lease { return m.lease }

// PeerKey is the cluster's failsafe signing key, read from etcd at join.
func (m *Member) PeerKey() []byte { return m.peerKey }

// Client is the member's etcd client.
func (m *Member) Client() *clientv3.Client { return m.cli }

// Campaign blocks until this host is the leader (nil), its lease is gone
// (ErrLeaseLost) or ctx ends. It is concurrency.Election's campaign — a
// key under the election prefix on this host's lease; the leader is the
// oldest key — except that it waits by reading rather than by watching: a
// watch stays on the member it was opened on, and one whose link is cut
// held it for 12 s (gRPC checks a silent connection no sooner than every
// 10 s) where a read bounded by a fifth of the TTL goes to another member
// at the next try. Once first, the leadership is the package's Election
// (ResumeElection), so that Leader, Observe and Resign work as usual.
func (m *Member) Campaign(ctx context.Context) error {
	pfx := electionPrefix(m.cfg)
	key := fmt.Sprintf("%s/%x", pfx, m.lease.ID())
	ttl := m.cfg.LeaseTTL.D()
	var rev int64
	for rev == 0 {
		actx, cancel := context.WithTimeout(ctx, attemptTimeout(ttl))
		resp, err := m.cli.Txn(actx).
			If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
			Then(clientv3.OpPut(key, m.host, clientv3.WithLease(m.lease.ID()))).
			Else(clientv3.OpGet(key)).Commit()
		cancel()
		switch {
		case err == nil && resp.Succeeded:
			rev = resp.Header.Revision
		case err == nil:
			if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 {
				rev = kvs[0].CreateRevision
			}
		case errors.Is(err, rpctypes.ErrLeaseNotFound):
			return ErrLeaseLost
		}
		if rev == 0 && !sleepCtx(ctx, campaignPoll(ttl)) {
			return ctx.Err()
		}
	}
	for {
		actx, cancel := context.WithTimeout(ctx, attemptTimeout(ttl))
		resp, err := m.cli.Get(actx, pfx+"/", clientv3.WithFirstCreate()...)
		cancel()
		if err == nil {
			if len(resp.Kvs) == 0 {
				return ErrLeaseLost // even our own key is gone
			}
			if string(resp.Kvs[0].Key) == key {
				break
			}
		}
		if !sleepCtx(ctx, campaignPoll(ttl)) {
			return ctx.Err()
		}
	}
	m.mu.Lock()
	m.elect = concurrency.ResumeElection(m.sess, pfx, key, rev)
	m.leaderKey, m.leaderRev = key, rev
	m.mu.Unlock()
	return nil
}

// Leader is the name of the leading host as this member's election sees
// it, or "" when none leads.
func (m *Member) Leader(ctx context.Context) (string, error) {
	m.mu.Lock()
	e := m.elect
	m.mu.Unlock()
	resp, err := e.Leader(ctx)
	if errors.Is(err, concurrency.ErrElectionNoLeader) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return string(resp.Kvs[0].Value), nil
}

// campaignPoll is how often a candidate reads whether it leads: a tenth
// of the TTL, which a failover waits for at most once (200 ms at 2 s).
func campaignPoll(ttl time.Duration) time.Duration { return ttl / 10 }

// sleepCtx waits d, or returns false when ctx ends first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// LeaderRev is the etcd revision at which this host's leadership began,
// or 0 when it does not lead: greater for every later leader.
func (m *Member) LeaderRev() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.leaderRev
}

// Write applies ops in one transaction if, and only if, this host still
// holds the leadership it won: the transaction compares the election key's
// creation revision, so a deposed leader's late write (its lease lapsed,
// another won) is refused by etcd itself, with ErrNotLeader.
func (m *Member) Write(ctx context.Context, ops ...clientv3.Op) error {
	m.mu.Lock()
	key, rev := m.leaderKey, m.leaderRev
	m.mu.Unlock()
	if key == "" {
		return ErrNotLeader
	}
	var resp *clientv3.TxnResponse
	err := m.onAnyMember(ctx, func(ctx context.Context, c *clientv3.Client) (err error) {
		resp, err = c.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(key), "=", rev)).Then(ops...).Commit()
		return err
	})
	if err != nil {
		return err
	}
	if !resp.Succeeded {
		m.mu.Lock()
		m.leaderKey, m.leaderRev = "", 0
		m.mu.Unlock()
		return ErrNotLeader
	}
	return nil
}

// onAnyMember runs call on one etcd member at a time, each attempt bounded
// to a fifth of the TTL, starting with the member that answered the lease's last renewal first and
// going on to the next when one does not answer: through the balanced
// client, a request sent to a member whose link was cut waits for the
// connection to time out, seconds after the lease it serves lapsed
// (TestClusterLeaderPartitioned). An answer that is an error from etcd
// itself (not a connection's) is final. A write that timed out on a cut
// member is not applied later: a member that cannot reach etcd's leader
// drops the proposals it holds.
func (m *Member) onAnyMember(ctx context.Context, call func(context.Context, *clientv3.Client) error) error {
	clients := m.lease.clients()
	start := int(m.lease.fastest.Load())
	var err error
	for i := range clients {
		n := (start + i) % len(clients)
		actx, cancel := context.WithTimeout(ctx, attemptTimeout(m.cfg.LeaseTTL.D()))
		err = call(actx, clients[n])
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || !unreachable(err) {
			return err
		}
	}
	return err
}

// unreachable reports an error that says the member did not answer in
// time, rather than that etcd refused the request.
func unreachable(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return true
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled:
		return true
	}
	return false
}

// Leave ends the membership at once: it revokes the lease, which removes
// the host key and, if this host leads, its election key, so another host
// takes over without waiting for the TTL.
// With etcd unreachable it gives up after the TTL, by when the lease has
// lapsed anyway.
func (m *Member) Leave(ctx context.Context) error {
	m.sess.Orphan() // the lease is revoked below, not by the session
	ctx, cancel := context.WithTimeout(ctx, m.cfg.LeaseTTL.D())
	defer cancel()
	err := m.lease.revoke(ctx)
	m.cli.Close()
	for _, r := range m.lease.renewers {
		r.Close()
	}
	return err
}

func hostNames(c *config.Cluster) []string {
	n := make([]string, len(c.Hosts))
	for i, h := range c.Hosts {
		n[i] = h.Name
	}
	return n
}
