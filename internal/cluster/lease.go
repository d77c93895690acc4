package cluster

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// ErrLeaseLost is returned by Lease.Run when the lease is gone (etcd says
// so) or could not be renewed before SafeUntil: the cluster may already
// count this host dead and give its volumes and addresses to another.
var ErrLeaseLost = errors.New("cluster lease lost: this host may no longer count as a member")

// Lease is this host's membership: an etcd lease it renews itself, so that
// it knows, from its own clock, a time before which the lease cannot have
// expired in etcd (SafeUntil). etcd counts a renewal's TTL from when it
// processed it, which is after this host sent it; so the send time plus
// the TTL is a lower bound of the lease's expiry, whatever the network's
// delays. A host that stops its pets before SafeUntil has stopped them
// before any other host can be given their volumes.
type Lease struct {
	cli *clientv3.Client
	id  clientv3.LeaseID
	ttl time.Duration

	mu        sync.Mutex
	safeUntil time.Time // with a monotonic reading
	renewed   time.Time // send time of the last successful renewal
}

// grantLease grants a lease of ttl (whole seconds).
func grantLease(ctx context.Context, cli *clientv3.Client, ttl time.Duration) (*Lease, error) {
	sent := time.Now()
	resp, err := cli.Grant(ctx, int64(ttl/time.Second))
	if err != nil {
		return nil, err
	}
	return &Lease{cli: cli, id: resp.ID, ttl: ttl, safeUntil: expiry(sent, resp.TTL), renewed: sent}, nil
}

// ID is the lease's etcd id.
func (l *Lease) ID() clientv3.LeaseID { return l.id }

// SafeUntil is the time before which the lease cannot have expired in etcd.
func (l *Lease) SafeUntil() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.safeUntil
}

// Renewed is when the last successful renewal was sent.
func (l *Lease) Renewed() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.renewed
}

// Run renews the lease until ctx ends (nil) or the lease is lost
// (ErrLeaseLost). Each renewal is bounded by SafeUntil: one that has not
// answered by then cannot help.
func (l *Lease) Run(ctx context.Context) error {
	failed := false
	for {
		t := time.NewTimer(renewalWait(l.ttl, failed))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		safe := l.SafeUntil()
		sent := time.Now()
		if !sent.Before(safe) {
			return ErrLeaseLost
		}
		rctx, cancel := context.WithDeadline(ctx, safe)
		resp, err := l.cli.KeepAliveOnce(rctx, l.id)
		cancel()
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, rpctypes.ErrLeaseNotFound), err == nil && resp.TTL <= 0:
			return ErrLeaseLost
		case err != nil:
			failed = true
		default:
			failed = false
			l.mu.Lock()
			if e := expiry(sent, resp.TTL); e.After(l.safeUntil) {
				l.safeUntil = e
			}
			l.renewed = sent
			l.mu.Unlock()
		}
	}
}

// revoke ends the lease now: a host that leaves on purpose does not make
// the others wait for its TTL.
func (l *Lease) revoke(ctx context.Context) error {
	_, err := l.cli.Revoke(ctx, l.id)
	return err
}

// expiry is the earliest time etcd may expire a lease renewed (or granted)
// by a request sent at sent and answered with ttlSeconds left.
func expiry(sent time.Time, ttlSeconds int64) time.Time {
	return sent.Add(time.Duration(ttlSeconds) * time.Second)
}

// renewalWait is the time to the next renewal: a third of the TTL, so that
// two renewals may be lost before the lease is at risk; a tenth after a
// failed one, so that a failover of etcd's leader or a lost connection
// costs little of the margin.
func renewalWait(ttl time.Duration, failed bool) time.Duration {
	if failed {
		return ttl / 10
	}
	return ttl / 3
}

// FenceAt is when a host must start stopping its pets so that they are
// gone by safeUntil, when stopping takes at most stop: the pets of a host
// that cannot renew its lease are gone before another host may be given
// their volumes. A stop longer than the TTL's margin starts at once.
func FenceAt(safeUntil time.Time, stop time.Duration) time.Time {
	return safeUntil.Add(-stop)
}
