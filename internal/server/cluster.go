package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/autoheal/autoheal/internal/api"
	"github.com/autoheal/autoheal/internal/atomicfile"
	"github.com/autoheal/autoheal/internal/cluster"
	"github.com/autoheal/autoheal/internal/config"
	"github.com/autoheal/autoheal/internal/event"
	"github.com/autoheal/autoheal/internal/group"
	"github.com/autoheal/autoheal/internal/lb"
	"github.com/autoheal/autoheal/internal/provider/local"
	"github.com/autoheal/autoheal/internal/provider/remote"
	"github.com/autoheal/autoheal/internal/store"
	"github.com/autoheal/autoheal/internal/vip"
	"github.com/autoheal/autoheal/internal/volume"
)

// A cluster host (docs/design.md#13-the-cluster). This first version is
// active/passive: every host joins and campaigns; the leader runs every
// group with the single-host controller, its shims under a deadline it
// renews with its lease, its shared volumes' tokens above any earlier
// leader's. A host that loses its lease removes the deadline (its pets
// die within the shims' poll) and exits, for its supervisor to start it
// again as a follower. A controller that stops or dies leaves the
// deadline: restarted before it passes, it resumes its lease (recorded in
// the state dir) and keeps its pets; otherwise they stop at the deadline
// and the lease lapses after.

// leadership is what the controller needs of its host's leadership.
type leadership struct {
	deadline   string // the shims' deadline file (provider/local)
	tokenFloor int64  // volume.TokenFloor of the election's revision
	peerKey    []byte // accepts the followers' forwarded requests
	// serveAPI hands the API to the peer endpoint, for the followers.
	serveAPI func(*api.Handler)
	// records brings the store to the cluster's records and replicates
	// its later writes to etcd (resumeRecords).
	records func(context.Context, *store.Store) error
	// local is this host's provider, which its agent uses too; client
	// reaches the instances on every host (placed.go); members is which
	// hosts hold a lease now.
	local   *local.Local
	client  *remote.Client
	members *members
	// bal is this host's load balancers (the followers' are fed by
	// serveMembers' function through the peer endpoint).
	bal          *lb.Balancer
	serveMembers func(func() map[string][]lb.Member)
}

// fenceBudget is how long before its lease's SafeUntil a host's pets must
// be gone: the shims' poll (100 ms), the kill, and a margin for the
// clock's rate. A quarter of the TTL: 500 ms at 2 s.
func fenceBudget(ttl time.Duration) time.Duration { return ttl / 4 }

// clusterServable refuses what this version cannot run across hosts.
func clusterServable(cfg *config.Config) error {
	var errs config.Errors
	for _, g := range cfg.Groups {
		for _, a := range g.ListenAddresses() {
			if g.Placement.Set() && a.Mode == "socket" {
				errs = append(errs, config.Error{File: cfg.Path, Msg: fmt.Sprintf("group %s: address %s hands its socket to the instance, which cannot cross hosts: use mode proxy with a placement", g.Name, a.Name)})
			}
		}
		for _, v := range g.Volumes {
			if v.Kind == config.VolumeLocal && !g.Placement.Set() {
				errs = append(errs, config.Error{File: cfg.Path, Msg: fmt.Sprintf("group %s: volume %s is local: it would stay on one host while the group moves with the leader; give the group a placement (it is then pinned to the host its volume lives on), or make the volume kind: shared, with a path every host mounts", g.Name, v.Name)})
			}
		}
	}
	return errs.Err()
}

func runCluster(ctx context.Context, opts Options, cfg *config.Config, data []byte) error {
	if err := clusterServable(cfg); err != nil {
		return err
	}
	opts, stateDir, lock, err := clusterStateDir(opts)
	if err != nil {
		return err
	}
	defer lock.Close()
	log := opts.Logger
	m, dl, err := joinCluster(ctx, cfg, opts.Host, stateDir, data, log)
	if err != nil {
		return err
	}
	agent, prov, err := hostAgent(cfg, opts, m, stateDir, dl.path)
	if err != nil {
		return err
	}
	defer prov.Close()
	fs := &failsafe{cfg: &cfg.Cluster, m: m, dl: dl, promise: filepath.Join(stateDir, "cluster-promise"), log: log, agent: agent}
	m.Lease().Persist = cfg.Cluster.FailsafeOn()
	stopPeers, err := fs.serve()
	if err != nil {
		return err
	}
	defer stopPeers()
	// When this run ends without losing its lease (stopped, or failed),
	// the deadline stays: the pets run until it passes, before the lease
	// can lapse, and a controller restarted before then resumes the lease
	// and keeps them (an upgrade does not move the pets).
	leaseCtx, stopLease := context.WithCancel(context.WithoutCancel(ctx))
	defer stopLease()
	lost := make(chan error, 1)
	go func() { lost <- m.Lease().Run(leaseCtx) }()
	// This host's load balancers, for the whole run: fed by the leader's
	// groups while it follows, by its own when it leads (balancer.go).
	bal, err := lb.New(cfg, log)
	if err != nil {
		return err
	}
	defer bal.Close()
	h := &hostRun{opts: opts, cfg: cfg, stateDir: stateDir, m: m, dl: dl, fs: fs, agent: agent, prov: prov, bal: bal, log: log, lost: lost}
	if leads, err := h.follow(ctx); !leads {
		return err
	}
	return h.lead(ctx)
}

// hostRun is one serve's part in the cluster: it follows, then, once
// elected, leads.
type hostRun struct {
	opts     Options
	cfg      *config.Config
	stateDir string
	m        *cluster.Member
	dl       *deadlineFile
	fs       *failsafe
	agent    *remote.Agent
	prov     *local.Local
	bal      *lb.Balancer
	log      *slog.Logger
	lost     <-chan error // the lease's end
}

// follow campaigns until this host leads (leads true), or the run ends
// first (its error, if any).
func (h *hostRun) follow(ctx context.Context) (leads bool, err error) {
	campaign, stopCampaign := context.WithCancel(ctx)
	defer stopCampaign()
	won := make(chan error, 1)
	go func() { won <- h.m.Campaign(campaign) }()
	stopped := func() { stopCampaign(); <-won }
	// Until it leads, the failsafe holds the pets placed here while etcd
	// is out of everyone's reach, and this host's API forwards to the
	// leader's.
	holdCtx, stopHold := context.WithCancel(ctx)
	defer stopHold()
	go h.fs.hold(holdCtx)
	go h.feedBalancer(holdCtx)
	stopFollowing, err := serveFollower(h.opts, h.cfg, h.stateDir, h.m)
	if err != nil {
		stopped()
		return false, err
	}
	defer stopFollowing()
	select {
	case <-ctx.Done():
		stopped()
		// A follower that runs no pet leaves at once. One that runs
		// pets placed here keeps its lease, as a leader does: they run
		// until their deadline, before the lease can lapse, and a serve
		// restarted before then resumes it and keeps them.
		if placed, err := h.agent.List(context.WithoutCancel(ctx)); err != nil || slices.ContainsFunc(placed, func(p remote.Placed) bool { return p.Alive }) {
			h.log.Info("stopping: the pets placed here run until this host's deadline unless a restarted serve resumes its lease")
			return false, nil
		}
		return false, h.m.Leave(context.WithoutCancel(ctx))
	case err := <-h.lost:
		stopped()
		h.dl.remove() // the pets placed here go first
		return false, fmt.Errorf("cluster: %w; the pets placed here were stopped", err)
	case err := <-won:
		if err != nil {
			return false, fmt.Errorf("cluster: campaign: %w", err)
		}
		return true, nil
	}
}

// lead runs the controller while this host leads.
func (h *hostRun) lead(ctx context.Context) error {
	// A promise made to a leader cut off from etcd with everyone (the
	// failsafe) is kept before this host runs anything.
	if err := h.fs.lead(ctx); err != nil {
		return err
	}
	cfg, m, log := h.cfg, h.m, h.log
	log.Info("leading the cluster: this host decides for every group (and runs those without placement)", "cluster", cfg.Cluster.Name, "host", h.opts.Host, "since_revision", m.LeaderRev())
	run, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go h.fs.guard(run, h.lost, cancel)
	if err := holdVIPs(cfg, h.stateDir, h.dl.path, log); err != nil {
		return err
	}
	hosts := &members{}
	if err := hosts.watch(run, m, cfg.Cluster.LeaseTTL.D(), log); err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	rc := &remote.Client{Host: m.Host(), Self: h.agent, Cluster: &cfg.Cluster, Key: m.PeerKey(), Member: hosts.has, Log: log, Ctx: run}
	opts := h.opts
	opts.StateDir, opts.loaded = h.stateDir, cfg
	opts.lead = &leadership{deadline: h.dl.path, tokenFloor: volume.TokenFloor(m.LeaderRev()), peerKey: m.PeerKey(), serveAPI: h.fs.setAPI,
		local: h.prov, client: rc, members: hosts, bal: h.bal, serveMembers: h.fs.setMembers,
		records: func(ctx context.Context, st *store.Store) error {
			first, err := resumeRecords(ctx, m, st, log)
			if err != nil {
				return err
			}
			if first {
				// The cluster's first start: the other hosts are
				// joining; placed groups spread over them, not all
				// on this one.
				hosts.settle(ctx, &cfg.Cluster, log)
			}
			return takeOverPlaced(ctx, rc, st, log)
		}}
	// The lease is not revoked when the run ends: it lapses after the
	// deadline has stopped the pets, and only then may another host be
	// given their volumes.
	return runController(run, opts)
}

// resumeRecords makes the leader's store the cluster's records: those in
// etcd, or, for the cluster's first leader, its own, which it puts there;
// then every later write that must survive the leader goes to etcd first
// (store/replica.go), fenced by the election.
func resumeRecords(ctx context.Context, m *cluster.Member, st *store.Store, log *slog.Logger) (first bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, 5*m.Lease().TTL())
	defer cancel()
	recs, seeded, last, err := m.LoadState(ctx)
	first = !seeded
	if err != nil {
		return first, err
	}
	if seeded {
		if err := st.Import(ctx, recs); err != nil {
			return first, fmt.Errorf("cluster records: %w", err)
		}
		log.Info("resumed the cluster's records", "records", len(recs))
	} else {
		own, err := st.Replicated(ctx)
		if err != nil {
			return first, err
		}
		if err := m.SeedState(ctx, own); err != nil {
			return first, fmt.Errorf("cluster records: %w", err)
		}
		log.Info("the cluster's records start from this host's", "records", len(own))
	}
	st.SetReplica(m.Replica())
	if last != "" && last != m.Host() {
		// Another host led since this one did, if it ever did: the
		// instances this host's store knows of stopped at their deadline
		// when it last lost the lead. They are recorded terminated, and
		// the groups launch new ones here, as an Auto Scaling group
		// replaces the instances of a lost host. (Instances are not in
		// the cluster's records: those of the last leader went with it.)
		if err := terminateLost(ctx, st, last); err != nil {
			return first, err
		}
	}
	return first, m.MarkLeader(ctx)
}

// terminateLost records every live instance of this host's store
// terminated: another host, last, led since.
func terminateLost(ctx context.Context, st *store.Store, host string) error {
	ins, err := st.Instances(ctx, "", false)
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	for _, in := range ins {
		if in.Host != "" {
			continue // placed: takeOverPlaced asks its host
		}
		was := in.State
		in.State, in.Pid, in.TerminatedAt, in.UpdatedAt = group.Terminated, 0, &now, now
		in.Cause = fmt.Sprintf("this host lost the lead (to %s) since it ran it (was %s)", host, was)
		ev := event.New(in.Group, in.ID, "terminated: "+in.Cause, event.InstanceState{From: was, To: group.Terminated, Cause: in.Cause})
		if err := st.PutInstance(ctx, in, ev); err != nil {
			return fmt.Errorf("cluster records: %w", err)
		}
	}
	return nil
}

// serveFollower serves this host's API while it follows: the browser
// rules and the callers' credentials are checked here, and every request
// goes on to the leader's peer endpoint (api.Forwarding). stop closes it
// (at once: the controller's API takes the address when this host leads).
func serveFollower(opts Options, cfg *config.Config, stateDir string, m *cluster.Member) (stop func(), err error) {
	if err := checkListen(cfg, opts.Listen); err != nil {
		return nil, err
	}
	creds, err := api.LoadCredentials(stateDir)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", opts.Listen)
	if err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	c := &cfg.Cluster
	deps := api.Deps{
		Version: opts.Version, Logger: opts.Logger,
		Tokens: cfg.Auth.Tokens, Credentials: creds, Hosts: apiHosts(cfg, opts.Listen, ln.Addr()),
		Forward: &api.Forwarding{Host: m.Host(), Key: m.PeerKey(), Leader: func(ctx context.Context) (string, error) {
			ctx, cancel := context.WithTimeout(ctx, c.LeaseTTL.D())
			defer cancel()
			name, err := m.LeaderName(ctx)
			if err != nil {
				return "", err
			}
			lh := c.Host(name)
			if lh == nil {
				return "", errors.New("no host leads the cluster now")
			}
			return "http://" + net.JoinHostPort(lh.Address, strconv.Itoa(c.PeerPort)), nil
		}},
	}
	if deps.AWS, err = awsEndpoint(cfg, deps, nil); err != nil {
		ln.Close()
		return nil, err
	}
	h := api.New(deps)
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(opts.Logger.Handler(), slog.LevelWarn)}
	go srv.Serve(ln)
	opts.Logger.Info("following: this host's API forwards to the leader's", "api", ln.Addr().String(), "admin_token", creds.TokenFile)
	var once sync.Once
	return func() {
		once.Do(func() {
			h.Close()
			srv.Close()
		})
	}, nil
}

// clusterStateDir fills opts' defaults and takes the state dir's lock.
func clusterStateDir(opts Options) (Options, string, *os.File, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Host == "" {
		opts.Host, _ = os.Hostname()
	}
	if opts.StateDir == "" {
		opts.StateDir = DefaultStateDir()
	}
	stateDir, err := filepath.Abs(opts.StateDir)
	if err != nil {
		return opts, "", nil, fmt.Errorf("state dir: %w", err)
	}
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return opts, "", nil, fmt.Errorf("state dir: %w", err)
	}
	lock, err := lockClusterState(stateDir)
	return opts, stateDir, lock, err
}

// holdVIPs starts the holder of every group's virtual IPs on this host
// (internal/vip): it adds and announces them now and removes them when the
// deadline passes or its file is removed, with the pets, whether this
// process lives or not.
func holdVIPs(cfg *config.Config, stateDir, deadline string, log *slog.Logger) error {
	var addrs []vip.Addr
	for i := range cfg.Groups {
		g := &cfg.Groups[i]
		if g.Placement.Set() {
			continue // with its instance's host (moveVIPs)
		}
		va, err := groupVIPs(g)
		if err != nil {
			return err
		}
		addrs = append(addrs, va...)
	}
	if len(addrs) == 0 {
		return nil
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("vip holder: %w", err)
	}
	logPath := filepath.Join(stateDir, "vip.log")
	if err := vip.Start(exe, filepath.Join(stateDir, "vip.lock"), deadline, logPath, addrs); err != nil {
		return err
	}
	log.Info("virtual IPs go to this host", "addrs", addrs, "holder_log", logPath)
	return nil
}

// groupVIPs are a group's virtual IPs as the holder takes them.
func groupVIPs(g *config.Group) ([]vip.Addr, error) {
	var out []vip.Addr
	for _, a := range g.VIPs() {
		va, err := vip.Parse(a.IP)
		if err != nil {
			return nil, fmt.Errorf("group %s: %w", g.Name, err)
		}
		va.Interface = a.Interface
		out = append(out, va)
	}
	return out, nil
}

// joinCluster joins as host, resuming the lease an earlier run recorded in
// stateDir when etcd still holds it, records the lease, and keeps the
// shims' deadline file renewed with it (returned).
func joinCluster(ctx context.Context, cfg *config.Config, host, stateDir string, data []byte, log *slog.Logger) (*cluster.Member, *deadlineFile, error) {
	leaseFile := filepath.Join(stateDir, "cluster-lease")
	m, err := cluster.JoinResuming(ctx, &cfg.Cluster, host, data, readLeaseID(leaseFile))
	if err != nil {
		return nil, nil, err
	}
	lease := m.Lease()
	if err := atomicfile.WriteFile(leaseFile, []byte(strconv.FormatInt(int64(lease.ID()), 16)+"\n"), 0o600); err != nil {
		return nil, nil, fmt.Errorf("state dir: %w", err)
	}
	dl := &deadlineFile{
		path:   filepath.Join(stateDir, fmt.Sprintf("cluster-deadline-%x", int64(lease.ID()))),
		budget: fenceBudget(cfg.Cluster.LeaseTTL.D()),
		log:    log,
	}
	// Pets an earlier run of this host started under another lease (one
	// that lapsed, so not resumed) stop now; those of the lease resumed
	// keep their deadline file and run on.
	removeDeadlines(stateDir, dl.path)
	dl.extend(lease.SafeUntil())
	lease.OnRenew = dl.extend
	log.Info("joined the cluster", "cluster", cfg.Cluster.Name, "host", host, "lease", fmt.Sprintf("%x", int64(lease.ID())), "lease_ttl", cfg.Cluster.LeaseTTL, "fence_budget", dl.budget)
	return m, dl, nil
}

// deadlineFile is the shims' deadline (provider/local): the fence budget
// before the latest time this host's pets may run to, its lease's
// SafeUntil or the failsafe's extension. It never goes back.
type deadlineFile struct {
	path   string
	budget time.Duration
	log    *slog.Logger

	mu    sync.Mutex
	until time.Time
}

// extend moves the pets' end to until, less the budget, if that is later.
func (d *deadlineFile) extend(until time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !until.After(d.until) {
		return
	}
	d.until = until
	if err := local.WriteDeadline(d.path, cluster.FenceAt(until, d.budget)); err != nil {
		d.log.Error("cluster: cannot renew the shims' deadline; this host's pets stop at the last one", "file", d.path, "err", err)
	}
}

// end is the latest time the pets may run to: past it, the lease may
// have lapsed.
func (d *deadlineFile) end() time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.until
}

// fence is when the pets stop unless extended.
func (d *deadlineFile) fence() time.Time { return cluster.FenceAt(d.end(), d.budget) }

// remove stops the pets now.
func (d *deadlineFile) remove() { os.Remove(d.path) }

// lockClusterState takes the lock that makes one serve per state dir, held
// for the life of the process: a restarted controller resumes its
// predecessor's lease only once that one is dead.
func lockClusterState(stateDir string) (*os.File, error) {
	lock, err := os.OpenFile(filepath.Join(stateDir, "cluster.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		return nil, fmt.Errorf("state dir %s: another autoheal serve runs on it (%v)", stateDir, err)
	}
	return lock, nil
}

// readLeaseID is the lease an earlier run of this host recorded, or 0.
func readLeaseID(path string) clientv3.LeaseID {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	id, err := strconv.ParseInt(strings.TrimSpace(string(b)), 16, 64)
	if err != nil {
		return 0
	}
	return clientv3.LeaseID(id)
}

// removeDeadlines removes the deadline files in dir but keep.
func removeDeadlines(dir, keep string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if p := filepath.Join(dir, e.Name()); strings.HasPrefix(e.Name(), "cluster-deadline-") && p != keep {
			os.Remove(p)
		}
	}
}
