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
	"sync"
	"sync/atomic"
	"time"

	"github.com/autoheal/autoheal/internal/api"
	"github.com/autoheal/autoheal/internal/config"
	"github.com/autoheal/autoheal/internal/event"
	"github.com/autoheal/autoheal/internal/group"
	"github.com/autoheal/autoheal/internal/lb"
	"github.com/autoheal/autoheal/internal/maintenance"
	"github.com/autoheal/autoheal/internal/provider"
	"github.com/autoheal/autoheal/internal/provider/local"
	"github.com/autoheal/autoheal/internal/refresh"
	"github.com/autoheal/autoheal/internal/runbook"
	"github.com/autoheal/autoheal/internal/store"
	"github.com/autoheal/autoheal/internal/volume"
)

// controller is one run of autoheal: every part, built from the config.
type controller struct {
	opts     Options
	log      *slog.Logger
	cfg      *config.Config
	stateDir string
	// ctx ends the run: the caller's context, or a fatal error (its cause).
	ctx    context.Context
	cancel context.CancelCauseFunc
	parts  parts
	// creds are the API's local admin token and the key of the
	// instances' credentials.
	creds *api.Credentials

	st   *store.Store
	prov *local.Local
	// provider runs the groups' instances: prov, or, in a cluster, a
	// remote.Client over prov and the other hosts' agents.
	provider provider.Provider
	vols     *volume.Manager
	ln       net.Listener
	apiURL   string
	bal      *lb.Balancer
	groups   []*group.Group
	lib      *runbook.Library
	apiRef   *handlerRef
	eng      *runbook.Engine
	sched    *maintenance.Scheduler
	refresh  *refresh.Refresher
	al       *alerting
	api      *api.Handler
}

// build reads the config and builds every part in the order they start,
// each with its stop (parts.go). Config errors come back as *config.Errors
// before anything is opened. On any error, what was built is released.
func build(ctx context.Context, opts Options) (_ *controller, err error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Listen == "" {
		opts.Listen = DefaultListen
	}
	if opts.StateDir == "" {
		opts.StateDir = DefaultStateDir()
	}
	cfg := opts.loaded
	if cfg == nil {
		var err error
		if cfg, err = config.Load(opts.ConfigPath); err != nil {
			return nil, err
		}
	}
	if err := checkListen(cfg, opts.Listen); err != nil {
		return nil, err
	}
	if cfg.Cluster.Enabled() && opts.lead == nil {
		// Only runCluster runs a cluster's groups, on the leader.
		return nil, errors.New("a config with a cluster section is run by Run, as the cluster's leader")
	}
	stateDir, err := filepath.Abs(opts.StateDir)
	if err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	if err := store.CheckWritable(stateDir); err != nil {
		return nil, err
	}
	if err := privateStateDir(stateDir, opts.Logger); err != nil {
		return nil, err
	}
	// Before any instance starts: each gets its credential from them.
	creds, err := api.LoadCredentials(stateDir)
	if err != nil {
		return nil, fmt.Errorf("api credentials: %w", err)
	}
	c := &controller{opts: opts, log: opts.Logger, cfg: cfg, stateDir: stateDir, creds: creds}
	c.parts.log = c.log
	c.ctx, c.cancel = context.WithCancelCause(ctx)
	defer func() {
		if err != nil {
			c.parts.stop()
			c.cancel(nil)
		}
	}()
	for _, b := range []func() error{
		c.buildStore, c.buildProvider, c.buildAPIListener, c.buildBalancer, c.buildGroups, c.buildStateWatch,
		c.buildRunbooks, c.buildMaintenance, c.buildAlerting, c.buildRetention, c.buildRefresh, c.buildAPI,
	} {
		if err := b(); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// fatal ends the run: the store cannot be written, and the controller must
// not act without durability.
func (c *controller) fatal(err error) {
	c.cancel(fmt.Errorf("state dir %s: %w", c.stateDir, err))
}

func (c *controller) buildStore() error {
	st, err := store.Open(c.stateDir)
	if err != nil {
		return err
	}
	c.st = st
	if c.opts.lead != nil && c.opts.lead.records != nil {
		// The cluster's records first: this leader goes on from them.
		if err := c.opts.lead.records(c.ctx, st); err != nil {
			return err
		}
	}
	c.parts.add("store", func(ctx context.Context) error {
		_, err := st.Append(ctx, event.New("", "", fmt.Sprintf("autoheal %s starting with %s (pid %d)", c.opts.Version, c.cfg.Path, os.Getpid()),
			event.ControllerStart{Version: c.opts.Version, Config: c.cfg.Path, Pid: os.Getpid()}))
		return err
	}, func() {
		st.Append(context.Background(), event.New("", "", "controller stopping; instances keep running", event.ControllerStop{}))
		st.Close()
	})
	return nil
}

// buildProvider makes the local provider. Its stop ends the idle spare
// shim; instances keep running.
func (c *controller) buildProvider() error {
	if l := c.opts.lead; l != nil && l.local != nil {
		// This host's provider, which its agent uses too: it outlives
		// the controller's run.
		c.prov, c.provider = l.local, l.client
		l.client.Record = c.st.Instance
		return nil
	}
	provOpts := local.Options{StateDir: c.stateDir, Exe: c.opts.Exe, Logger: c.log}
	if c.opts.lead != nil {
		provOpts.Deadline = c.opts.lead.deadline
	}
	prov, err := local.New(provOpts)
	if err != nil {
		return fmt.Errorf("local provider: %w", err)
	}
	c.prov, c.provider = prov, prov
	c.parts.add("provider", nil, func() { prov.Close() })
	return nil
}

// buildAPIListener binds the API's address first of the listeners: the
// metadata URL given to instances names it.
func (c *controller) buildAPIListener() error {
	ln, err := net.Listen("tcp", c.opts.Listen)
	if err != nil {
		return fmt.Errorf("api: listen %s: %w", c.opts.Listen, err)
	}
	c.ln, c.apiURL = ln, "http://"+ln.Addr().String()
	c.parts.add("api listener", nil, func() { ln.Close() })
	return nil
}

// buildBalancer opens the load balancers' listeners before any instance
// starts: a port that is taken fails the start, as an address does.
func (c *controller) buildBalancer() error {
	if l := c.opts.lead; l != nil && l.bal != nil {
		// The host's, which outlives this run: its listeners stay open
		// from following to leading.
		c.bal = l.bal
		return nil
	}
	bal, err := lb.New(c.cfg, c.log)
	if err != nil {
		return err
	}
	c.bal = bal
	c.parts.add("load balancers", nil, bal.Close)
	return nil
}

func (c *controller) buildGroups() error {
	vols := volume.NewManager(c.stateDir, c.st)
	c.vols = vols
	if c.opts.lead != nil {
		vols.SetTokenFloor(c.opts.lead.tokenFloor)
		for _, g := range c.cfg.Groups {
			for _, v := range g.Volumes {
				if v.Kind == config.VolumeShared {
					vols.SetDir(g.Name, v.Name, v.Path)
				}
			}
		}
	}
	if l := c.opts.lead; l != nil && l.client != nil {
		if err := c.pinVolumes(c.ctx); err != nil {
			return fmt.Errorf("pinned volumes: %w", err)
		}
	}
	for _, gc := range c.cfg.Groups {
		deps := group.Deps{
			Store:    c.st,
			Provider: c.provider,
			Volumes:  vols,
			Logger:   c.log,
			MetadataURL: func(id string) string {
				return c.apiURL + "/v1/instances/" + id + "/metadata"
			},
			InstanceToken: c.creds.InstanceToken,
			InstanceEnv:   c.awsEnv,
			OnFatal:       c.fatal,
			OnChange: func(s group.Snapshot) {
				members := make([]lb.Member, len(s.Serving))
				for i, e := range s.Serving {
					members[i] = lb.Member{ID: e.ID, IP: e.IP, Ports: e.Ports}
				}
				c.bal.SetMembers(s.Name, members)
			},
			Drain: c.bal.Drain,
		}
		if l := c.opts.lead; l != nil && l.members != nil {
			deps.HostAddress = func(h string) string {
				if ch := c.cfg.Cluster.Host(h); ch != nil {
					return ch.Address
				}
				return "127.0.0.1"
			}
			if gc.Placement.Set() {
				deps.Place = c.placer(&gc)
			}
		}
		g, err := group.New(gc, deps)
		if err != nil {
			return err
		}
		c.groups = append(c.groups, g)
	}
	c.parts.add("groups", c.startGroups, func() {
		for _, g := range c.groups {
			g.Close()
		}
	})
	if l := c.opts.lead; l != nil && l.serveMembers != nil {
		l.serveMembers(c.servingMembers)
	}
	if l := c.opts.lead; l != nil && l.client != nil {
		ctx, cancel := context.WithCancel(c.ctx)
		done := make(chan struct{})
		var started atomic.Bool
		c.parts.add("placed virtual IPs", func(context.Context) error {
			started.Store(true)
			go func() { defer close(done); c.moveVIPs(ctx) }()
			return nil
		}, func() {
			cancel()
			if started.Load() {
				<-done
			}
		})
	}
	return nil
}

// startGroups re-adopts every group's instances, kills the orphans of
// interrupted launches, and only then lets the groups act: the sweep would
// take a newly launched instance for an orphan.
func (c *controller) startGroups(ctx context.Context) error {
	var alive []string
	for _, g := range c.groups {
		ids, err := g.Adopt(ctx)
		if err != nil {
			return fmt.Errorf("group %s: %w", g.Name(), err)
		}
		alive = append(alive, ids...)
	}
	if err := retireRemovedGroups(ctx, c.st, c.cfg, &alive); err != nil {
		c.log.Warn("instances of groups removed from the config", "err", err)
	}
	if killed, err := c.provider.Sweep(ctx, alive); err != nil {
		c.log.Warn("orphan sweep failed", "err", err)
	} else if len(killed) > 0 {
		c.st.Append(ctx, event.New("", "", fmt.Sprintf("killed %d orphan process(es) of interrupted launches: %v", len(killed), killed),
			event.ControllerSweep{Pids: killed}))
	}
	for _, g := range c.groups {
		g.Run()
	}
	return nil
}

// buildRunbooks makes the document library and the execution engine. The
// engine's steps call the API in process (handlerRef, set by buildAPI).
// Its stop leaves executions where they are: the next controller resumes
// them.
func (c *controller) buildRunbooks() error {
	docDir := c.opts.DocumentsDir
	if docDir == "" {
		if d := filepath.Join(c.cfg.Dir, "documents"); isDir(d) {
			docDir = d
		}
	}
	c.lib = runbook.NewLibrary(docDir)
	c.apiRef = &handlerRef{}
	c.eng = runbook.NewEngine(runbook.Deps{
		Store:     c.st,
		Documents: c.lib.Get,
		API:       c.apiRef,
		Command:   c.runCommand,
		Restart: func(ctx context.Context, id string) error {
			g := groupOf(c.groups, id)
			if g == nil {
				return fmt.Errorf("instance %s: %w", id, runbook.ErrNotFound)
			}
			return restartAndWait(ctx, g, id)
		},
		Logger: c.log,
	})
	c.parts.add("runbooks", func(ctx context.Context) error {
		if err := c.eng.Resume(ctx); err != nil {
			c.log.Warn("resume executions", "err", err)
		}
		return nil
	}, c.eng.Close)
	return nil
}

// runCommand runs a runbook's script in an instance (aws:runCommand).
func (c *controller) runCommand(ctx context.Context, req runbook.CommandRequest) (runbook.CommandResult, error) {
	g := groupOf(c.groups, req.InstanceID)
	if g == nil {
		return runbook.CommandResult{}, fmt.Errorf("instance %s: %w", req.InstanceID, runbook.ErrNotFound)
	}
	res, err := g.RunCommand(ctx, req.InstanceID, req.Script, req.Env, req.Dir, req.Timeout)
	out := res.Output
	if req.Limit > 0 && len(out) > req.Limit {
		out = "…" + out[len(out)-req.Limit:]
	}
	return runbook.CommandResult{ExitCode: res.ExitCode, Stdout: out, TimedOut: res.TimedOut}, err
}

// buildMaintenance makes the scheduler of maintenance windows and
// scheduled actions (also without any: the AWS endpoint may add actions).
// It stops before the engine,
// leaving a window's run where it is for the next controller, as the
// engine leaves executions.
func (c *controller) buildMaintenance() error {
	// Built without windows or actions too: the AWS endpoint adds
	// scheduled actions at run time.
	sched, err := maintenance.New(c.cfg, maintenance.Deps{
		Runner:  c.eng,
		Targets: c.windowTargets,
		Scale: func(ctx context.Context, name string, min, max, desired *int) error {
			for _, g := range c.groups {
				if g.Name() == name {
					_, err := g.Scale(ctx, min, max, desired)
					return err
				}
			}
			return fmt.Errorf("group %s: %w", name, group.ErrNotFound)
		},
		Journal: func(ctx context.Context, ev store.Event) error { _, err := c.st.Append(ctx, ev); return err },
		Records: c.st,
		Logger:  c.log,
	})
	if err != nil {
		return err
	}
	c.sched = sched
	c.parts.add("maintenance", func(context.Context) error { sched.Run(); return nil }, sched.Close)
	return nil
}

// windowTargets are the InService instances with their groups' tags.
func (c *controller) windowTargets() []maintenance.Target {
	var out []maintenance.Target
	for _, g := range c.groups {
		s, tags := g.Snapshot(), g.Config().Tags
		for _, in := range s.Instances {
			if in.State == group.InService {
				out = append(out, maintenance.Target{ID: in.ID, Group: s.Name, Tags: tags})
			}
		}
	}
	return out
}

// buildAlerting makes metrics, alarms, incidents and channels. It stops
// before the engine: incidents stop waiting on executions first.
func (c *controller) buildAlerting() error {
	al, err := newAlerting(c.cfg, c.st, c.stateDir, c.eng, c.lib, c.groups, c.bal, c.log)
	if err != nil {
		return err
	}
	if c.sched != nil {
		// Alarm-driven restarts and replacements wait for a maintenance
		// window working on the instance; crash healing never does.
		al.busy = c.sched.Busy
	}
	c.al = al
	c.parts.add("alerting", func(ctx context.Context) error { al.run(ctx); return nil }, al.close)
	return nil
}

// buildRetention prunes the journal at start and then hourly.
func (c *controller) buildRetention() error {
	ctx, cancel := context.WithCancel(c.ctx)
	var running sync.WaitGroup
	c.parts.add("retention", func(context.Context) error {
		running.Add(1)
		go func() {
			defer running.Done()
			prune(ctx, c.st, c.log)
		}()
		return nil
	}, func() {
		cancel()
		running.Wait()
	})
	return nil
}

// buildAPI makes the API handler and its HTTP server; it starts last, so
// nothing is served before every part runs, and stops first.
func (c *controller) buildAPI() error {
	deps := apiDeps(c.cfg, c.opts, c.creds, c.st, c.groups, c.prov.LogFiles, c.bal, c.eng, c.lib, c.sched, c.al, c.ln.Addr())
	if c.opts.lead != nil {
		// The followers' APIs forward here, through the peer endpoint.
		deps.PeerKey = c.opts.lead.peerKey
	}
	deps.Plan = c.plan
	deps.Refresh = c.refresh
	if err := c.buildAWS(&deps); err != nil {
		return err
	}
	c.api = api.New(deps)
	if c.opts.lead != nil && c.opts.lead.serveAPI != nil {
		c.opts.lead.serveAPI(c.api)
	}
	// Runbook steps call the API in process, past its auth: whoever
	// started the execution was authorized then.
	c.apiRef.set(c.api.InProcess())
	srv := &http.Server{
		Handler:           c.api,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(c.log.Handler(), slog.LevelWarn),
	}
	var serving sync.WaitGroup
	c.parts.add("api", func(context.Context) error {
		serving.Add(1)
		go func() {
			defer serving.Done()
			if err := srv.Serve(c.ln); !errors.Is(err, http.ErrServerClosed) {
				c.cancel(fmt.Errorf("api: %w", err))
			}
		}()
		return nil
	}, func() {
		c.api.Close() // ends the event streams, which Shutdown would wait for
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		serving.Wait()
	})
	return nil
}
