package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
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
	// renewers are one client per etcd member: each renewal goes to every
	// member at once and the first answer counts, so a member that stopped
	// answering (its link cut: no reset, the request just hangs) costs
	// nothing. A single balanced client sent a third of the renewals to it
	// and lost the lease of a healthy host (TestOneEtcdMemberLost).
	renewers []*clientv3.Client
	id       clientv3.LeaseID
	ttl      time.Duration

	// OnRenew, when set before Run, is called with SafeUntil after every
	// renewal, from Run's goroutine or Probe's (the controller writes its
	// shims' deadline from it).
	OnRenew func(safeUntil time.Time)

	// Persist, when set before Run, makes Run go on renewing once
	// SafeUntil has passed, until etcd answers that the lease is gone:
	// when etcd was out of reach of every host, a lease etcd still holds
	// when it comes back (it extends every lease when it elects a leader)
	// carries on. What SafeUntil's passing means is then the caller's
	// decision (the failsafe: failsafe.go).
	Persist bool

	mu        sync.Mutex
	safeUntil time.Time // with a monotonic reading
	renewed   time.Time // send time of the last successful renewal
	failing   bool      // the last renewal failed

	// fastest is the member that answered the last renewal first: the
	// one the member's other requests go to first (Member.onAnyMember).
	fastest atomic.Int32
}

// grantLease grants a lease of ttl (whole seconds).
func grantLease(ctx context.Context, cli *clientv3.Client, renewers []*clientv3.Client, ttl time.Duration) (*Lease, error) {
	sent := time.Now()
	resp, err := cli.Grant(ctx, int64(ttl/time.Second))
	if err != nil {
		return nil, err
	}
	return &Lease{cli: cli, renewers: renewers, id: resp.ID, ttl: ttl, safeUntil: expiry(sent, resp.TTL), renewed: sent}, nil
}

// resumeLease renews the lease id, when not 0, and returns it if etcd
// still holds it with time left; nil otherwise (grant a new one).
func resumeLease(ctx context.Context, cli *clientv3.Client, renewers []*clientv3.Client, ttl time.Duration, id clientv3.LeaseID) *Lease {
	if id == 0 {
		return nil
	}
	l := &Lease{cli: cli, renewers: renewers, id: id, ttl: ttl}
	sent := time.Now()
	resp, err := l.renewOnce(ctx, sent.Add(ttl))
	if err != nil || resp == nil || resp.TTL <= 0 {
		return nil
	}
	l.safeUntil, l.renewed = expiry(sent, resp.TTL), sent
	return l
}

// TTL is the lease's time to live.
func (l *Lease) TTL() time.Duration { return l.ttl }

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

// Failing reports whether the last renewal failed (none succeeded since).
func (l *Lease) Failing() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.failing
}

// Probe sends one renewal, bounded by within, and reports whether etcd
// (a quorum: a renewal goes through etcd's leader) answered it; a renewal
// that succeeds counts as any other (SafeUntil, OnRenew).
func (l *Lease) Probe(ctx context.Context, within time.Duration) bool {
	sent := time.Now()
	resp, err := l.renewOnce(ctx, sent.Add(within))
	if err != nil || resp == nil || resp.TTL <= 0 {
		return false
	}
	l.recordRenewal(sent, resp.TTL)
	return true
}

// recordRenewal records a successful renewal sent at sent.
func (l *Lease) recordRenewal(sent time.Time, ttl int64) {
	l.mu.Lock()
	if e := expiry(sent, ttl); e.After(l.safeUntil) {
		l.safeUntil = e
	}
	if sent.After(l.renewed) {
		l.renewed = sent
	}
	l.failing = false
	safe := l.safeUntil
	l.mu.Unlock()
	if l.OnRenew != nil {
		l.OnRenew(safe)
	}
}

// Run renews the lease until ctx ends (nil) or the lease is lost
// (ErrLeaseLost). Each renewal is bounded by SafeUntil: one that has not
// answered by then cannot help (unless Persist).
func (l *Lease) Run(ctx context.Context) error {
	failed := false
	var lastErr error
	lost := func() error {
		if lastErr == nil {
			return ErrLeaseLost
		}
		return fmt.Errorf("%w (last renewal: %v)", ErrLeaseLost, lastErr)
	}
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
			if !l.Persist {
				return lost()
			}
			safe = sent.Add(attemptTimeout(l.ttl))
		}
		if failed {
			// gRPC waits longer and longer between reconnections to a
			// member that is down (up to two minutes): etcd back after a
			// long outage must be reached within a TTL.
			for _, c := range l.clients() {
				if cc := c.ActiveConnection(); cc != nil {
					cc.ResetConnectBackoff()
				}
			}
		}
		resp, err := l.renewOnce(ctx, safe)
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, rpctypes.ErrLeaseNotFound), err == nil && resp.TTL <= 0:
			lastErr = err
			if err == nil {
				lastErr = errors.New("etcd answered that the lease has no time left")
			}
			return lost()
		case err != nil:
			failed, lastErr = true, err
			l.mu.Lock()
			l.failing = l.renewed.Before(sent) // a Probe may have renewed meanwhile
			l.mu.Unlock()
		default:
			failed = false
			l.recordRenewal(sent, resp.TTL)
		}
	}
}

// renewOnce sends one renewal to every member and returns the first
// answer that renews the lease, or, when none does by safe, the most
// telling failure (lease not found before any other).
//
// One attempt lasts at most attemptTimeout: a call to a member that died
// waits for its connection to come back (etcd's client waits for ready),
// and must not hold the next attempt, to the members left, until safe.
func (l *Lease) renewOnce(ctx context.Context, safe time.Time) (*clientv3.LeaseKeepAliveResponse, error) {
	deadline := time.Now().Add(attemptTimeout(l.ttl))
	if safe.Before(deadline) {
		deadline = safe
	}
	rctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	renewers := l.clients()
	type result struct {
		resp *clientv3.LeaseKeepAliveResponse
		err  error
		n    int
	}
	results := make(chan result, len(renewers))
	for n, c := range renewers {
		go func() {
			r, err := c.KeepAliveOnce(rctx, l.id)
			results <- result{r, err, n}
		}()
	}
	var last result
	for range renewers {
		r := <-results
		if r.err == nil && r.resp.TTL > 0 {
			l.fastest.Store(int32(r.n))
			return r.resp, nil // the others end with rctx
		}
		if last.err == nil || errors.Is(r.err, rpctypes.ErrLeaseNotFound) || r.err == nil {
			last = r
		}
	}
	return last.resp, last.err
}

// clients are the clients renewals go through.
func (l *Lease) clients() []*clientv3.Client {
	if len(l.renewers) == 0 {
		return []*clientv3.Client{l.cli}
	}
	return l.renewers
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

// attemptTimeout bounds one renewal attempt: a fifth of the TTL, so that
// with the retries a tenth apart, a host gets several attempts at the
// members left before its lease is at risk.
func attemptTimeout(ttl time.Duration) time.Duration { return ttl / 5 }

// FenceAt is when a host must start stopping its pets so that they are
// gone by safeUntil, when stopping takes at most stop: the pets of a host
// that cannot renew its lease are gone before another host may be given
// their volumes. A stop longer than the TTL's margin starts at once.
func FenceAt(safeUntil time.Time, stop time.Duration) time.Time {
	return safeUntil.Add(-stop)
}
