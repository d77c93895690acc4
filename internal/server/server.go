package server

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"

	"github.com/autoheal/autoheal/internal/config"
	"github.com/autoheal/autoheal/internal/sdnotify"
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
	// Host is this host's name in the config's cluster section. Default:
	// the machine's host name.
	Host string

	loaded *config.Config // the config, when Run read it
	lead   *leadership    // set while this host leads its cluster
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
//
// It builds every part (build.go), starts them in order, and when ctx ends
// or a part fails for good, stops them in the reverse order (parts.go).
func Run(ctx context.Context, opts Options) error {
	if opts.ConfigPath != "" {
		cfg, data, err := config.LoadText(opts.ConfigPath)
		if err != nil {
			return err
		}
		if cfg.Cluster.Enabled() {
			return runCluster(ctx, opts, cfg, data)
		}
		opts.loaded = cfg
	}
	return runController(ctx, opts)
}

// runController runs the controller of every group on this host.
func runController(ctx context.Context, opts Options) error {
	c, err := build(ctx, opts)
	if err != nil {
		return err
	}
	defer c.cancel(nil)
	defer c.parts.stop()
	if err := c.parts.start(c.ctx); err != nil {
		return err
	}
	c.log.Info("autoheal serving", "api", c.ln.Addr().String(), "state_dir", c.stateDir, "groups", len(c.groups), "admin_token", c.creds.TokenFile, "fence", c.prov.Fence().String())
	if opts.Ready != nil {
		opts.Ready(c.ln.Addr())
	}
	// Under systemd (Type=notify, WatchdogSec=): ready now, and alive
	// while the journal answers a read within half the watchdog's time;
	// a controller stuck there is restarted, and resumes its instances.
	_, _ = sdnotify.Notify("READY=1")
	go sdnotify.Watchdog(c.ctx, func() bool {
		ctx, cancel := context.WithTimeout(c.ctx, sdnotify.WatchdogInterval()/2)
		defer cancel()
		_, err := c.st.LastSeq(ctx)
		return err == nil
	})
	<-c.ctx.Done()
	_, _ = sdnotify.Notify("STOPPING=1")
	c.parts.stop()
	if cause := context.Cause(c.ctx); !errors.Is(cause, context.Canceled) {
		return cause
	}
	return nil
}
