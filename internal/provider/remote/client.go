package remote

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/autoheal/autoheal/internal/config"
	"github.com/autoheal/autoheal/internal/provider"
	"github.com/autoheal/autoheal/internal/store"
	"github.com/autoheal/autoheal/internal/volume"
)

// Client is the leader's provider.Provider across the cluster: an
// instance whose spec or record names another host goes to that host's
// Agent; one on no host ("") or on this one to Self's local provider.
type Client struct {
	// Host is this host's name.
	Host string
	// Self is this host's agent: instances placed here.
	Self *Agent
	// Cluster names the hosts, their addresses and the peer port.
	Cluster *config.Cluster
	Key     []byte
	// Member reports whether a host holds its lease now. An instance on a
	// host that does not is gone with it: the host's shims stopped it
	// before its lease could lapse.
	Member func(host string) bool
	// Record is an instance's record, sent with its launch so that a
	// later leader finds it on its host (Agent.List).
	Record func(ctx context.Context, id string) (store.Instance, error)
	Log    *slog.Logger
	// Ctx bounds the waits for remote instances' exits (the controller's
	// life).
	Ctx context.Context

	once sync.Once
	http *http.Client
}

var _ provider.Provider = (*Client)(nil)
var _ provider.HostAdopter = (*Client)(nil)

func (c *Client) cli() *http.Client {
	c.once.Do(func() {
		ttl := c.Cluster.LeaseTTL.D()
		c.http = &http.Client{Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: ttl / 2}).DialContext,
			MaxIdleConnsPerHost: 16,
			IdleConnTimeout:     time.Minute,
		}}
	})
	return c.http
}

// remote reports whether host is another host than this one.
func (c *Client) remote(host string) bool { return host != "" && host != c.Host }

func (c *Client) base(host string) (string, error) {
	h := c.Cluster.Host(host)
	if h == nil {
		return "", fmt.Errorf("host %q is not a cluster host", host)
	}
	return "http://" + net.JoinHostPort(h.Address, strconv.Itoa(c.Cluster.PeerPort)), nil
}

func (c *Client) call(ctx context.Context, host, op string, in, out any) error {
	base, err := c.base(host)
	if err != nil {
		return err
	}
	return call(ctx, c.cli(), c.Key, c.Host, host, base, op, in, out)
}

// Launch starts the instance on its host.
func (c *Client) Launch(ctx context.Context, spec provider.Spec) (provider.Process, error) {
	if spec.Host == "" {
		return c.Self.Local.Launch(ctx, spec)
	}
	rec, err := c.Record(ctx, spec.ID)
	if err != nil {
		return nil, fmt.Errorf("instance %s: %w", spec.ID, err)
	}
	rec.Host = spec.Host
	if !c.remote(spec.Host) {
		return c.Self.Launch(ctx, spec, rec)
	}
	if len(spec.Listeners) > 0 {
		return nil, fmt.Errorf("instance %s: a socket cannot be handed to an instance on another host (%s)", spec.ID, spec.Host)
	}
	if !c.Member(spec.Host) {
		return nil, fmt.Errorf("host %s: %w", spec.Host, provider.ErrHostGone)
	}
	var pi procInfo
	if err := c.call(ctx, spec.Host, opLaunch, launchReq{Spec: spec, Record: rec}, &pi); err != nil {
		return nil, err
	}
	return c.follow(spec.Host, pi), nil
}

// Adopt is AdoptOn this host.
func (c *Client) Adopt(ctx context.Context, id string) (provider.Process, error) {
	return c.Self.Local.Adopt(ctx, id)
}

// AdoptOn re-attaches to an instance on host. An instance on a host that
// is not a member is returned exited and Lost; one on a member that does
// not answer now is followed as running until it answers or leaves.
func (c *Client) AdoptOn(ctx context.Context, host, id string) (provider.Process, error) {
	if !c.remote(host) {
		return c.Self.proc(ctx, id)
	}
	if !c.Member(host) {
		return c.follow(host, lostInfo(id, host)), nil
	}
	var pi procInfo
	err := c.call(ctx, host, opAdopt, idReq{ID: id}, &pi)
	switch {
	case errors.Is(err, errUnreachable):
		c.Log.Warn("cluster: a member does not answer; its instance is followed as running until it answers or leaves", "host", host, "instance", id, "err", err)
		return c.follow(host, procInfo{ID: id}), nil
	case err != nil:
		return nil, err
	}
	return c.follow(host, pi), nil
}

func lostInfo(id, host string) procInfo {
	return procInfo{ID: id, Exited: true, Exit: provider.ExitStatus{
		Code: -1, Time: time.Now(), Lost: true,
		Error: fmt.Sprintf("host %s is not a member of the cluster: its lease lapsed, and its shims stopped the instance before", host),
	}}
}

// Stop fences the instance on its host. An instance on a host that left
// the cluster is gone already; one on a member that does not answer is
// asked again until it answers or leaves.
func (c *Client) Stop(ctx context.Context, p provider.Process, sig syscall.Signal, timeout time.Duration) error {
	rp, ok := p.(*proc)
	if !ok {
		return c.Self.Local.Stop(ctx, p, sig, timeout)
	}
	retry := c.Cluster.LeaseTTL.D() / 10
	for {
		if isDone(rp) && rp.Exit().Lost {
			return nil
		}
		if !c.Member(rp.host) {
			return nil
		}
		ctx2, cancel := c.whileMember(ctx, rp.host, timeout+c.Cluster.LeaseTTL.D())
		err := c.call(ctx2, rp.host, opStop, stopReq{ID: rp.id, Signal: int(sig), Timeout: timeout}, nil)
		cancel()
		if err == nil || errors.Is(err, provider.ErrNotFound) {
			return nil
		}
		if !errors.Is(err, errUnreachable) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(retry):
		}
	}
}

// Run runs a script in the instance's context on its host.
func (c *Client) Run(ctx context.Context, spec provider.Spec, script string, timeout time.Duration) (provider.Result, error) {
	if !c.remote(spec.Host) {
		return c.Self.Local.Run(ctx, spec, script, timeout)
	}
	spec.Listeners = nil
	var res provider.Result
	err := c.call(ctx, spec.Host, opRun, runReq{Spec: spec, Script: script, Timeout: timeout}, &res)
	return res, err
}

// Sweep kills the orphans on this host and on every member that answers.
func (c *Client) Sweep(ctx context.Context, keep []string) ([]int, error) {
	killed, err := c.Self.Local.Sweep(ctx, keep)
	for _, h := range c.Cluster.Hosts {
		if !c.remote(h.Name) || !c.Member(h.Name) {
			continue
		}
		var r sweepResp
		if err := c.call(ctx, h.Name, opSweep, sweepReq{Keep: keep}, &r); err != nil {
			c.Log.Warn("cluster: cannot sweep a host's orphans", "host", h.Name, "err", err)
			continue
		}
		killed = append(killed, r.Killed...)
	}
	return killed, err
}

// Members names the hosts that are members now.
func (c *Client) Members() []string {
	var out []string
	for _, h := range c.Cluster.Hosts {
		if c.Member(h.Name) {
			out = append(out, h.Name)
		}
	}
	return out
}

// Collect lists the instances every member runs for the cluster: this
// host's and the others', from their agents. A member that does not
// answer is an error: a new leader must not take its instances for lost.
func (c *Client) Collect(ctx context.Context) ([]Placed, error) {
	out, err := c.Self.List(ctx)
	if err != nil {
		return nil, err
	}
	c.Log.Debug("cluster: this host's instances", "placed", out, "members", c.Members())
	for _, h := range c.Cluster.Hosts {
		if !c.remote(h.Name) || !c.Member(h.Name) {
			continue
		}
		var pl []Placed
		if err := c.call(ctx, h.Name, opList, struct{}{}, &pl); err != nil {
			return nil, err
		}
		c.Log.Debug("cluster: a member's instances", "host", h.Name, "placed", pl)
		for i := range pl {
			pl[i].Record.Host = h.Name
		}
		out = append(out, pl...)
	}
	return out, nil
}

// whileMember bounds a call to host by d and by the host's membership: a
// host that crashed with its link down answers nothing, not even a reset,
// and its leaving is the answer.
func (c *Client) whileMember(ctx context.Context, host string, d time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(ctx, d)
	go func() {
		t := time.NewTicker(c.Cluster.LeaseTTL.D() / 10)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if !c.Member(host) {
					cancel()
					return
				}
			}
		}
	}()
	return ctx, cancel
}

// HoldAddresses has host hold group's virtual IPs (none: release them).
func (c *Client) HoldAddresses(ctx context.Context, host, group string, addrs []string) error {
	if !c.remote(host) {
		return c.Self.hold(group, addrs)
	}
	return c.call(ctx, host, opVIP, vipReq{Group: group, Addrs: addrs}, nil)
}

// VolumeHost is host's local volumes, through its agent (volume.Host).
func (c *Client) VolumeHost(host string) volume.Host { return volumeHost{c, host} }

type volumeHost struct {
	c    *Client
	host string
}

// volumeTimeout bounds a volume's preparation on another host (a mkdir, a
// flock, an fsync).
const volumeTimeout = 30 * time.Second

func (v volumeHost) call(op, group, name string, out any) error {
	ctx, cancel := v.c.whileMember(v.c.Ctx, v.host, volumeTimeout)
	defer cancel()
	if !v.c.Member(v.host) {
		return fmt.Errorf("host %s: %w", v.host, provider.ErrHostGone)
	}
	return v.c.call(ctx, v.host, op, volReq{Group: group, Name: name}, out)
}

func (v volumeHost) Prepare(group, name string) (string, bool, error) {
	var r volPrepared
	err := v.call(opVolPrepare, group, name, &r)
	return r.Dir, r.NeedsInit, err
}

func (v volumeHost) ProbeLock(group, name string) error { return v.call(opVolProbe, group, name, nil) }

func (v volumeHost) MarkInitialized(group, name string) error {
	return v.call(opVolMark, group, name, nil)
}

// proc is an instance on another host, followed by waits on its agent.
type proc struct {
	id, host string
	pid      int
	started  time.Time
	done     chan struct{}
	exit     provider.ExitStatus
}

func (p *proc) ID() string                { return p.id }
func (p *proc) Pid() int                  { return p.pid }
func (p *proc) StartedAt() time.Time      { return p.started }
func (p *proc) Done() <-chan struct{}     { return p.done }
func (p *proc) Exit() provider.ExitStatus { return p.exit }

// follow returns the process described by pi, and waits for its exit
// until the controller stops: an answer from its host, or the host's
// leaving the cluster.
func (c *Client) follow(host string, pi procInfo) *proc {
	p := &proc{id: pi.ID, host: host, pid: pi.Pid, started: pi.Started, done: make(chan struct{})}
	if pi.Exited {
		p.exit = pi.Exit
		close(p.done)
		return p
	}
	go c.waitFor(p)
	return p
}

func (c *Client) waitFor(p *proc) {
	retry := c.Cluster.LeaseTTL.D() / 10
	for c.Ctx.Err() == nil {
		if !c.Member(p.host) {
			p.exit = lostInfo(p.id, p.host).Exit
			close(p.done)
			return
		}
		ctx, cancel := c.whileMember(c.Ctx, p.host, waitFor+c.Cluster.LeaseTTL.D())
		var pi procInfo
		err := c.call(ctx, p.host, opWait, idReq{ID: p.id}, &pi)
		cancel()
		switch {
		case err == nil && pi.Exited:
			p.exit = pi.Exit
			close(p.done)
			return
		case err == nil:
			continue
		case errors.Is(err, provider.ErrNotFound):
			p.exit = provider.ExitStatus{Code: -1, Time: time.Now(), Error: "host " + p.host + " knows no such instance"}
			close(p.done)
			return
		}
		select {
		case <-c.Ctx.Done():
		case <-time.After(retry):
		}
	}
}
