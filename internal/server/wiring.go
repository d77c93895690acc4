package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/autoheal/autoheal/internal/config"
	"github.com/autoheal/autoheal/internal/event"
	"github.com/autoheal/autoheal/internal/group"
	"github.com/autoheal/autoheal/internal/store"
)

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
		st.Append(ctx, event.New(in.Group, in.ID,
			fmt.Sprintf("group %s is not in the config any more; instance %s left as it was (%s)", in.Group, in.ID, in.State),
			event.ControllerOrphanGroup{State: in.State}))
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
