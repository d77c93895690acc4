package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/autoheal/autoheal/internal/config"
)

// HostStatus is one configured host as the cluster sees it.
type HostStatus struct {
	Name    string `json:"name"`
	Address string `json:"address"`
	// Member is whether the host holds a live lease.
	Member bool `json:"member"`
	// LeaseLeft is how long its lease has left without a renewal, as etcd
	// counts (a healthy member's is between two thirds of the TTL and
	// the TTL).
	LeaseLeft time.Duration `json:"lease_left_ns"`
	Leader    bool          `json:"leader"`
	// Instances is how many instances the host runs (not terminated); -1
	// when the API did not say (autoheal hosts fills it).
	Instances int       `json:"instances"`
	PID       int       `json:"pid,omitempty"`
	Started   time.Time `json:"started,omitzero"`
}

// Hosts lists every configured host with its membership and the leader.
func Hosts(ctx context.Context, cli *clientv3.Client, c *config.Cluster) ([]HostStatus, error) {
	resp, err := cli.Get(ctx, hostsPrefix(c), clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("etcd: %w", err)
	}
	members := map[string]HostRecord{}
	leases := map[string]clientv3.LeaseID{}
	for _, kv := range resp.Kvs {
		var r HostRecord
		if json.Unmarshal(kv.Value, &r) == nil {
			name := strings.TrimPrefix(string(kv.Key), hostsPrefix(c))
			members[name], leases[name] = r, clientv3.LeaseID(kv.Lease)
		}
	}
	leader, err := Leader(ctx, cli, c)
	if err != nil {
		return nil, err
	}
	out := make([]HostStatus, 0, len(c.Hosts))
	for _, h := range c.Hosts {
		s := HostStatus{Name: h.Name, Address: h.Address, Leader: h.Name == leader}
		if r, ok := members[h.Name]; ok {
			s.Member, s.PID, s.Started = true, r.PID, r.Started
			if ttl, err := cli.TimeToLive(ctx, leases[h.Name]); err == nil && ttl.TTL > 0 {
				s.LeaseLeft = time.Duration(ttl.TTL) * time.Second
			}
		}
		out = append(out, s)
	}
	return out, nil
}

// Leader is the name of the leading host, or "" when none leads.
func Leader(ctx context.Context, cli *clientv3.Client, c *config.Cluster) (string, error) {
	resp, err := cli.Get(ctx, electionPrefix(c)+"/", clientv3.WithFirstCreate()...)
	if err != nil {
		return "", fmt.Errorf("etcd: %w", err)
	}
	return leaderIn(resp), nil
}

// leaderIn is the leader's name in a read of the election's first key.
func leaderIn(resp *clientv3.GetResponse) string {
	if len(resp.Kvs) == 0 {
		return ""
	}
	return string(resp.Kvs[0].Value)
}

// LeaderName is Leader for a member: read from one etcd member at a time
// (onAnyMember), so a member cut off does not hold the answer.
func (m *Member) LeaderName(ctx context.Context) (string, error) {
	var resp *clientv3.GetResponse
	err := m.onAnyMember(ctx, func(ctx context.Context, c *clientv3.Client) (err error) {
		resp, err = c.Get(ctx, electionPrefix(m.cfg)+"/", clientv3.WithFirstCreate()...)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("etcd: %w", err)
	}
	return leaderIn(resp), nil
}

// Members is the set of hosts that hold a live lease now, read from one
// etcd member at a time (onAnyMember).
func (m *Member) Members(ctx context.Context) (map[string]bool, error) {
	var resp *clientv3.GetResponse
	err := m.onAnyMember(ctx, func(ctx context.Context, c *clientv3.Client) (err error) {
		resp, err = c.Get(ctx, hostsPrefix(m.cfg), clientv3.WithPrefix(), clientv3.WithKeysOnly())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("etcd: %w", err)
	}
	out := make(map[string]bool, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		out[strings.TrimPrefix(string(kv.Key), hostsPrefix(m.cfg))] = true
	}
	return out, nil
}
