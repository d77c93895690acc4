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
	"time"

	"github.com/autoheal/autoheal/internal/api"
	"github.com/autoheal/autoheal/internal/config"
	"github.com/autoheal/autoheal/internal/group"
	"github.com/autoheal/autoheal/internal/lb"
	"github.com/autoheal/autoheal/internal/maintenance"
	"github.com/autoheal/autoheal/internal/provider/local"
	"github.com/autoheal/autoheal/internal/runbook"
	"github.com/autoheal/autoheal/internal/store"
	"github.com/autoheal/autoheal/internal/volume"
)

// DefaultListen is where the API listens unless told otherwise.
const DefaultListen = "127.0.0.1:7070"

// Options configure one controller run.
type Options struct {
	// ConfigPath is the YAML file. Required.
	ConfigPath string
	// StateDir holds the store, volumes and instance logs. Default
	// DefaultStateDir().
	StateDir string
	// Listen is the API address. Default DefaultListen.
	Listen string
	// Exe is the binary that contains the shim. Default os.Executable().
	Exe string
	// Version is reported by the API.
	Version string
	Logger  *slog.Logger
	// Ready is called once the API listens, with its address.
	Ready func(addr net.Addr)
	// Pprof serves Go's profiler under /debug/pprof/ on the API address.
	Pprof bool
	// DocumentsDir holds the operator's runbook documents. Default: the
	// "documents" directory beside the config file, when it exists.
	DocumentsDir string
}

// DefaultStateDir is /var/lib/autoheal for root, else
// $XDG_STATE_HOME/autoheal (~/.local/state/autoheal).
func DefaultStateDir() string {
	if os.Geteuid() == 0 {
		return "/var/lib/autoheal"
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "autoheal")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".local", "state", "autoheal")
}

// Run runs the controller until ctx is done or a fatal error. Instances keep
// running after it returns. Config errors are returned as *config.Errors
// before anything is started or written.
func Run(ctx context.Context, opts Options) error {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Listen == "" {
		opts.Listen = DefaultListen
	}
	if opts.StateDir == "" {
		opts.StateDir = DefaultStateDir()
	}
	log := opts.Logger
	cfg, err := config.Load(opts.ConfigPath)
	if err != nil {
		return err
	}
	if err := checkListen(cfg, opts.Listen); err != nil {
		return err
	}
	stateDir, err := filepath.Abs(opts.StateDir)
	if err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	if err := store.CheckWritable(stateDir); err != nil {
		return err
	}
	if err := privateStateDir(stateDir, log); err != nil {
		return err
	}
	// Before any instance starts: each gets its credential from it.
	creds, err := api.LoadCredentials(stateDir)
	if err != nil {
		return fmt.Errorf("api credentials: %w", err)
	}
	st, err := store.Open(stateDir)
	if err != nil {
		return err
	}
	defer st.Close()

	prov, err := local.New(local.Options{StateDir: stateDir, Exe: opts.Exe, Logger: log})
	if err != nil {
		return fmt.Errorf("local provider: %w", err)
	}
	// Closed after the groups (deferred first, so it runs last): it stops
	// the idle spare shim; instances keep running.
	defer prov.Close()
	ln, err := net.Listen("tcp", opts.Listen)
	if err != nil {
		return fmt.Errorf("api: listen %s: %w", opts.Listen, err)
	}
	defer ln.Close()
	apiURL := "http://" + ln.Addr().String()

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var fatalOnce sync.Once
	onFatal := func(err error) {
		fatalOnce.Do(func() { cancel(fmt.Errorf("state dir %s: %w", stateDir, err)) })
	}

	// Listeners open before any instance starts: a port that is taken
	// fails the start, as an address does.
	bal, err := lb.New(cfg, log)
	if err != nil {
		return err
	}
	defer bal.Close()

	vols := volume.NewManager(stateDir, st)
	var groups []*group.Group
	defer func() {
		for _, g := range groups {
			g.Close()
		}
	}()
	st.Append(ctx, store.Event{Type: "controller.start", Message: fmt.Sprintf("autoheal %s starting with %s (pid %d)", opts.Version, cfg.Path, os.Getpid())})
	var alive []string
	for _, gc := range cfg.Groups {
		g, err := group.New(gc, group.Deps{
			Store:    st,
			Provider: prov,
			Volumes:  vols,
			Logger:   log,
			MetadataURL: func(id string) string {
				return apiURL + "/v1/instances/" + id + "/metadata"
			},
			InstanceToken: creds.InstanceToken,
			OnFatal:       onFatal,
			OnChange: func(s group.Snapshot) {
				members := make([]lb.Member, len(s.Serving))
				for i, e := range s.Serving {
					members[i] = lb.Member{ID: e.ID, Ports: e.Ports}
				}
				bal.SetMembers(s.Name, members)
			},
			Drain: bal.Drain,
		})
		if err != nil {
			return err
		}
		ids, err := g.Adopt(ctx)
		if err != nil {
			return fmt.Errorf("start group %s: %w", gc.Name, err)
		}
		groups = append(groups, g)
		alive = append(alive, ids...)
	}
	if err := retireRemovedGroups(ctx, st, cfg, &alive); err != nil {
		log.Warn("instances of groups removed from the config", "err", err)
	}
	if killed, err := prov.Sweep(ctx, alive); err != nil {
		log.Warn("orphan sweep failed", "err", err)
	} else if len(killed) > 0 {
		st.Append(ctx, store.Event{Type: "controller.sweep", Message: fmt.Sprintf("killed %d orphan process(es) of interrupted launches: %v", len(killed), killed)})
	}
	// Only now may groups launch: the sweep above would take a new
	// instance for an orphan.
	for _, g := range groups {
		g.Run()
	}

	docDir := opts.DocumentsDir
	if docDir == "" {
		if d := filepath.Join(cfg.Dir, "documents"); isDir(d) {
			docDir = d
		}
	}
	lib := runbook.NewLibrary(docDir)
	apiRef := &handlerRef{}
	eng := runbook.NewEngine(runbook.Deps{
		Store:     st,
		Documents: lib.Get,
		API:       apiRef,
		Command: func(ctx context.Context, req runbook.CommandRequest) (runbook.CommandResult, error) {
			g := groupOf(groups, req.InstanceID)
			if g == nil {
				return runbook.CommandResult{}, fmt.Errorf("instance %s: %w", req.InstanceID, runbook.ErrNotFound)
			}
			res, err := g.RunCommand(ctx, req.InstanceID, req.Script, req.Env, req.Dir, req.Timeout)
			out := res.Output
			if req.Limit > 0 && len(out) > req.Limit {
				out = "…" + out[len(out)-req.Limit:]
			}
			return runbook.CommandResult{ExitCode: res.ExitCode, Stdout: out, TimedOut: res.TimedOut}, err
		},
		Restart: func(ctx context.Context, id string) error {
			g := groupOf(groups, id)
			if g == nil {
				return fmt.Errorf("instance %s: %w", id, runbook.ErrNotFound)
			}
			return restartAndWait(ctx, g, id)
		},
		Logger: log,
	})
	// Stopped before the groups: an execution stops where it is and the
	// next controller resumes it.
	defer eng.Close()

	var sched *maintenance.Scheduler
	if len(cfg.MaintenanceWindows) > 0 || len(cfg.ScheduledActions) > 0 {
		sched, err = maintenance.New(cfg, maintenance.Deps{
			Runner: eng,
			Targets: func() []maintenance.Target {
				var out []maintenance.Target
				for _, g := range groups {
					s, tags := g.Snapshot(), g.Config().Tags
					for _, in := range s.Instances {
						if in.State == group.InService {
							out = append(out, maintenance.Target{ID: in.ID, Group: s.Name, Tags: tags})
						}
					}
				}
				return out
			},
			Scale: func(ctx context.Context, name string, min, max, desired *int) error {
				for _, g := range groups {
					if g.Name() == name {
						_, err := g.Scale(ctx, min, max, desired)
						return err
					}
				}
				return fmt.Errorf("group %s: %w", name, group.ErrNotFound)
			},
			Journal: func(ctx context.Context, ev store.Event) error { _, err := st.Append(ctx, ev); return err },
			Logger:  log,
		})
		if err != nil {
			return err
		}
		// Deferred after eng.Close, so it runs before it: a window's runs
		// end Interrupted rather than seeing their executions vanish.
		defer sched.Close()
	}

	al, err := newAlerting(cfg, st, stateDir, eng, lib, groups, bal, log)
	if err != nil {
		return err
	}
	if sched != nil {
		// Alarm-driven restarts and replacements wait for a maintenance
		// window working on the instance; crash healing never does.
		al.busy = sched.Busy
	}
	// Deferred after eng.Close, so it runs first: incidents stop waiting
	// on executions before the engine goes.
	defer al.close()

	h := api.New(apiDeps(cfg, opts, creds, st, groups, prov.LogFiles, bal, eng, lib, sched, al, ln.Addr()))
	// Runbook steps call the API in process, past its auth: whoever
	// started the execution was authorized then.
	apiRef.set(h.InProcess())
	if err := eng.Resume(ctx); err != nil {
		log.Warn("resume executions", "err", err)
	}
	if sched != nil {
		sched.Run()
	}
	al.run(ctx)
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	retention := make(chan struct{})
	go func() {
		defer close(retention)
		prune(ctx, st, log)
	}()
	defer func() { cancel(nil); <-retention }()
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	log.Info("autoheal serving", "api", ln.Addr().String(), "state_dir", stateDir, "groups", len(groups), "admin_token", creds.TokenFile)
	if opts.Ready != nil {
		opts.Ready(ln.Addr())
	}

	select {
	case <-ctx.Done():
	case err := <-serveErr:
		cancel(fmt.Errorf("api: %w", err))
	}
	shutdownCtx, stop := context.WithTimeout(context.Background(), 5*time.Second)
	defer stop()
	h.Close()
	if sched != nil {
		sched.Close()
	}
	al.close()
	eng.Close()
	srv.Shutdown(shutdownCtx)
	bal.Close()
	for _, g := range groups {
		g.Close()
	}
	groups = nil
	cause := context.Cause(ctx)
	st.Append(context.Background(), store.Event{Type: "controller.stop", Message: "controller stopping; instances keep running"})
	if errors.Is(cause, context.Canceled) {
		return nil
	}
	return cause
}

// retireRemovedGroups reports instances of groups that are no longer in the
// config. They are left running and recorded: stopping an operator's pet
// because a group was renamed would be worse than an extra process.
func retireRemovedGroups(ctx context.Context, st *store.Store, cfg *config.Config, alive *[]string) error {
	known := map[string]bool{}
	for _, g := range cfg.Groups {
		known[g.Name] = true
	}
	ins, err := st.Instances(ctx, "", false)
	if err != nil {
		return err
	}
	for _, in := range ins {
		if known[in.Group] || in.State == group.Terminated {
			continue
		}
		// Keep them out of the sweep; say so loudly.
		*alive = append(*alive, in.ID)
		st.Append(ctx, store.Event{Type: "controller.orphan_group", Group: in.Group, Instance: in.ID,
			Message: fmt.Sprintf("group %s is not in the config any more; instance %s left as it was (%s)", in.Group, in.ID, in.State)})
	}
	return nil
}

// Journal retention: the newest events and terminated instance records are
// kept, so the state dir stays bounded on a controller that runs for years.
const (
	keepEvents     = 100000
	keepTerminated = 100 // per group
	// keepNotifications delivered or failed notifications are kept; pending
	// ones always are.
	keepNotifications = 10000
	pruneEvery        = time.Hour
)

// prune applies the retention at start and then every hour until ctx ends.
func prune(ctx context.Context, st *store.Store, log *slog.Logger) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := st.PruneEvents(ctx, keepEvents); err != nil && ctx.Err() == nil {
			log.Warn("prune events", "err", err)
		}
		if err := st.PruneInstances(ctx, keepTerminated); err != nil && ctx.Err() == nil {
			log.Warn("prune instances", "err", err)
		}
		if err := st.PruneNotifications(ctx, keepNotifications); err != nil && ctx.Err() == nil {
			log.Warn("prune notifications", "err", err)
		}
		t.Reset(pruneEvery)
	}
}

// handlerRef lets the runbook engine call the API handler, which is built
// after the engine (the handler serves the engine's executions).
type handlerRef struct {
	mu sync.RWMutex
	h  http.Handler
}

func (r *handlerRef) set(h http.Handler) { r.mu.Lock(); r.h = h; r.mu.Unlock() }

func (r *handlerRef) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.RLock()
	h := r.h
	r.mu.RUnlock()
	if h == nil {
		http.Error(w, "api not ready", http.StatusServiceUnavailable)
		return
	}
	h.ServeHTTP(w, req)
}

func groupOf(groups []*group.Group, id string) *group.Group {
	for _, g := range groups {
		if g.Has(id) {
			return g
		}
	}
	return nil
}

// restartAndWait restarts an instance in place and returns once it runs
// again (a new process) and is InService.
func restartAndWait(ctx context.Context, g *group.Group, id string) error {
	before, _ := g.Instance(id)
	if err := g.Restart(ctx, id); err != nil {
		return err
	}
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		in, ok := g.Instance(id)
		if !ok || in.State == group.Terminated {
			return fmt.Errorf("instance %s was terminated while restarting", id)
		}
		if in.State == group.InService && in.Pid != 0 && in.Pid != before.Pid {
			return nil
		}
	}
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}
