package cluster

import (
	"context"
	"errors"
	"fmt"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/autoheal/autoheal/internal/config"
	"github.com/autoheal/autoheal/internal/store"
)

// The leader's records in etcd (docs/design.md#13-the-cluster): the rows
// of the store that must survive the leader (store/replica.go), each under
// state/rows/TABLE/PK, written by the leader's fenced transactions
// (Member.Write) before its own store commits them. state/seeded says that
// a leader has put its rows there: until then, the first leader's own
// store is the cluster's state.

// maxTxnOps stays under etcd's default limit of operations in one
// transaction (--max-txn-ops 128).
const maxTxnOps = 100

func rowsPrefix(c *config.Cluster) string  { return StateKey(c, "rows/") }
func seededKey(c *config.Cluster) string   { return StateKey(c, "seeded") }
func leaderKeyOf(c *config.Cluster) string { return StateKey(c, "leader") }

// Replica is the store's replica in etcd for this member while it leads.
type Replica struct{ m *Member }

// Replica returns the member's replica: the leader's store writes go
// through it (store.SetReplica).
func (m *Member) Replica() *Replica { return &Replica{m: m} }

// Replicate writes recs with the leader's fence, at most maxTxnOps in one
// transaction; an error (ErrNotLeader, etcd out of reach within half the
// TTL) refuses the store's write.
func (r *Replica) Replicate(ctx context.Context, recs []store.Record) error {
	ctx, cancel := context.WithTimeout(ctx, r.m.cfg.LeaseTTL.D()/2)
	defer cancel()
	err := r.m.writeChunked(ctx, recordOps(r.m.cfg, recs))
	if err != nil && !errors.Is(err, ErrNotLeader) {
		return fmt.Errorf("%w: %w", store.ErrReplicaUnavailable, err)
	}
	return err
}

func recordOps(c *config.Cluster, recs []store.Record) []clientv3.Op {
	ops := make([]clientv3.Op, 0, len(recs))
	for _, rec := range recs {
		k := rowsPrefix(c) + rec.Key
		if rec.Value == nil {
			ops = append(ops, clientv3.OpDelete(k))
		} else {
			ops = append(ops, clientv3.OpPut(k, string(rec.Value)))
		}
	}
	return ops
}

func (m *Member) writeChunked(ctx context.Context, ops []clientv3.Op) error {
	for len(ops) > 0 {
		n := min(len(ops), maxTxnOps)
		if err := m.Write(ctx, ops[:n]...); err != nil {
			return err
		}
		ops = ops[n:]
	}
	return nil
}

// LoadState returns the records in etcd, whether a leader has seeded
// them, and the host that led last (MarkLeader).
func (m *Member) LoadState(ctx context.Context) (recs []store.Record, seeded bool, last string, err error) {
	var resp *clientv3.GetResponse
	err = m.onAnyMember(ctx, func(ctx context.Context, c *clientv3.Client) (err error) {
		resp, err = c.Get(ctx, StateKey(m.cfg, ""), clientv3.WithPrefix())
		return err
	})
	if err != nil {
		return nil, false, "", fmt.Errorf("etcd: reading the cluster's records: %w", err)
	}
	for _, kv := range resp.Kvs {
		k := string(kv.Key)
		switch {
		case k == leaderKeyOf(m.cfg):
			last = string(kv.Value)
		case k == seededKey(m.cfg):
			seeded = true
		case strings.HasPrefix(k, rowsPrefix(m.cfg)):
			recs = append(recs, store.Record{Key: strings.TrimPrefix(k, rowsPrefix(m.cfg)), Value: kv.Value})
		}
	}
	return recs, seeded, last, nil
}

// MarkLeader records that this host leads now: the next leader knows
// whether the instances in the records ran on it or on another host.
func (m *Member) MarkLeader(ctx context.Context) error {
	return m.Write(ctx, clientv3.OpPut(leaderKeyOf(m.cfg), m.host))
}

// SeedState puts recs in etcd as the cluster's records, then marks them
// seeded: the first leader's store becomes the cluster's state.
func (m *Member) SeedState(ctx context.Context, recs []store.Record) error {
	// Rows of a seeding cut short (no mark) go first.
	ops := []clientv3.Op{clientv3.OpDelete(rowsPrefix(m.cfg), clientv3.WithPrefix())}
	ops = append(ops, recordOps(m.cfg, recs)...)
	ops = append(ops, clientv3.OpPut(seededKey(m.cfg), m.host))
	return m.writeChunked(ctx, ops)
}
