package server

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/autoheal/autoheal/internal/api"
	"github.com/autoheal/autoheal/internal/cluster"
	"github.com/autoheal/autoheal/internal/config"
	"github.com/autoheal/autoheal/internal/lb"
	"github.com/autoheal/autoheal/internal/nonce"
	"github.com/autoheal/autoheal/internal/provider/local"
	"github.com/autoheal/autoheal/internal/provider/remote"
)

// failsafe is a cluster host's part in the failsafe (internal/cluster
// failsafe.go, docs/design.md#13-the-cluster): every host answers the
// leader's question on its peer port; the leader, while its renewals fail,
// asks every other host and runs on past its lease's SafeUntil only while
// all of them answer that they do not reach etcd either.
type failsafe struct {
	cfg     *config.Cluster
	m       *cluster.Member
	dl      *deadlineFile
	promise string // the state dir's file: no group runs here before it
	log     *slog.Logger

	mu      sync.Mutex
	leading bool // set before this host runs anything; no "no" after it

	api atomic.Pointer[api.Handler] // the leader's API, for the followers

	agent http.Handler // this host's instances for the leader (provider/remote)

	// members are the leader's groups' serving instances, for the
	// followers' load balancers (balancer.go); nonces are the requests'.
	members atomic.Pointer[func() map[string][]lb.Member]
	nonces  nonce.Set
}

// setAPI serves the leader's API on the peer endpoint.
func (f *failsafe) setAPI(h *api.Handler) { f.api.Store(h) }

// serve answers the other hosts at this host's cluster address and peer
// port, until stop is called: the failsafe's questions, and, while this
// host leads, the requests their APIs forward (api.Forwarding).
func (f *failsafe) serve() (stop func(), err error) {
	h := f.cfg.Host(f.m.Host())
	addr := net.JoinHostPort(h.Address, strconv.Itoa(f.cfg.PeerPort))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("cluster: the peer port: %w (cluster.peer_port)", err)
	}
	peer := &cluster.PeerServer{
		Cluster: f.cfg, Host: f.m.Host(), Key: f.m.PeerKey(),
		Reaches: f.m.Lease().Probe, Promise: f.promiseUntil,
	}
	mux := http.NewServeMux()
	if f.cfg.FailsafeOn() {
		mux.Handle(cluster.FailsafePath, peer)
	}
	mux.Handle(remote.PathPrefix, f.agent)
	mux.HandleFunc("POST "+membersPath, f.serveMembers)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h := f.api.Load()
		if h == nil {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "{\"error\": %q, \"code\": \"unavailable\"}\n", "host "+f.m.Host()+" does not lead the cluster (now)")
			return
		}
		h.ServeHTTP(w, r)
	})
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: f.cfg.LeaseTTL.D(),
		MaxHeaderBytes:    8 << 10,
		ErrorLog:          slog.NewLogLogger(f.log.Handler(), slog.LevelDebug),
	}
	go srv.Serve(ln)
	return func() { srv.Close() }, nil
}

// promiseUntil records that this host runs no group before until, unless
// it leads already: then the question comes from a follower whose pets
// were placed by this host (a deposed leader's deadline ended before this
// one could lead), and no promise is needed: while etcd is out of reach
// this leader records, so does, nothing, and the follower's lease outlives
// what the answer lets it run.
func (f *failsafe) promiseUntil(until time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.leading {
		return nil
	}
	if local.DeadlineLeft(f.promise) >= time.Until(until) {
		return nil
	}
	return local.WriteDeadline(f.promise, until)
}

// lead marks this host leading, so that it promises nothing more, and
// waits out the promises it made: a leader that was cut off from etcd
// with everyone may run its pets up to then.
func (f *failsafe) lead(ctx context.Context) error {
	f.mu.Lock()
	f.leading = true
	// A promise is never more than a TTL ahead; more is a file from
	// before the machine's reboot (its clock started again).
	left := min(local.DeadlineLeft(f.promise), f.cfg.LeaseTTL.D())
	f.mu.Unlock()
	if left <= 0 {
		return nil
	}
	f.log.Info("cluster: keeping this host's failsafe promise before leading", "wait", left.Round(time.Millisecond))
	t := time.NewTimer(left)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// atRisk reports whether the pets' deadline needs the failsafe: a renewal
// failed, or the deadline is less than a third of the TTL away (renewals
// keep it at least twice that far). A round asks the other hosts only
// then; one that starts at the first failed renewal has the time to end
// before the deadline even when a renewal hangs to its timeout.
func (f *failsafe) atRisk() bool {
	return atRisk(f.m.Lease().Failing(), time.Until(f.dl.fence()), f.cfg.LeaseTTL.D())
}

// atRisk is the rule: a failed renewal, or the fence less than a third of
// the TTL away (renewals every third keep it further).
func atRisk(failing bool, toFence, ttl time.Duration) bool {
	return failing || toFence < ttl/3
}

// hold is a follower's failsafe, for the pets placed on it, until ctx
// ends (it leads, or stops): while its renewals fail, it asks every other
// host, the leader included, and extends its deadline only while all of
// them answer that they do not reach etcd either. Otherwise its pets stop
// at the deadline, before its lease can lapse, as without the failsafe.
func (f *failsafe) hold(ctx context.Context) {
	if !f.cfg.FailsafeOn() {
		return
	}
	ttl := f.cfg.LeaseTTL.D()
	peers := &cluster.Peers{Cluster: f.cfg, Host: f.m.Host(), Key: f.m.PeerKey()}
	tick := time.NewTicker(ttl / 10)
	defer tick.Stop()
	holding := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if !f.atRisk() {
			holding = false
			continue
		}
		sent := time.Now()
		if err := peers.NoneReachesEtcd(ctx, ttl/5); err != nil {
			continue
		}
		f.dl.extend(sent.Add(ttl))
		if !holding {
			holding = true
			f.log.Warn("cluster: etcd is out of reach of every host; the failsafe keeps the pets placed here running while that lasts", "until", f.dl.fence().Format(time.RFC3339Nano))
		}
	}
}

// guard ends the leader's run when its lease could have lapsed (neither a
// renewal nor the failsafe extended it in time) or etcd says it is gone
// (lost), and runs the failsafe's rounds while renewals fail.
func (f *failsafe) guard(run context.Context, lost <-chan error, cancel context.CancelCauseFunc) {
	ttl := f.cfg.LeaseTTL.D()
	peers := &cluster.Peers{Cluster: f.cfg, Host: f.m.Host(), Key: f.m.PeerKey()}
	tick := time.NewTicker(ttl / 10)
	defer tick.Stop()
	holding := false // the failsafe holds the pets past SafeUntil
	var refused error
	for {
		select {
		case <-run.Done():
			return
		case err := <-lost:
			f.dl.remove() // the pets go first
			cancel(fmt.Errorf("cluster: %w; this host's pets were stopped and it stands down", err))
			return
		case <-tick.C:
		}
		switch {
		case f.cfg.FailsafeOn() && f.atRisk():
			sent := time.Now()
			if err := peers.NoneReachesEtcd(run, ttl/5); err != nil {
				refused = err
				break
			}
			f.dl.extend(sent.Add(ttl))
			if !holding {
				holding = true
				f.log.Warn("cluster: etcd is out of reach of every host; the failsafe keeps this host's pets running while that lasts", "until", f.dl.fence().Format(time.RFC3339Nano))
			}
		case holding:
			holding = false
			f.log.Info("cluster: etcd answers again; the failsafe stands down")
		}
		// At the fence the shims stop the pets; a renewal that comes
		// before the end still proves the lease alive (it was sent
		// before SafeUntil), and the group heals them. Past the end,
		// another host may lead.
		if !time.Now().Before(f.dl.end()) {
			f.dl.remove()
			why := "renewals failed"
			if refused != nil {
				why = refused.Error()
			}
			cancel(fmt.Errorf("cluster: %w (%s); this host's pets were stopped and it stands down", cluster.ErrLeaseLost, why))
			return
		}
	}
}
