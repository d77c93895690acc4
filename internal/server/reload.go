package server

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/autoheal/autoheal/internal/api"
	"github.com/autoheal/autoheal/internal/api/wire"
	"github.com/autoheal/autoheal/internal/config"
	"github.com/autoheal/autoheal/internal/group"
	"github.com/autoheal/autoheal/internal/refresh"
	"github.com/autoheal/autoheal/internal/reload"
)

// plan says what reloading the config file at path ("" for the one this
// controller runs) would do (docs/design.md §15): the file is loaded and
// checked as at start, then compared with the running config and the live
// instances.
func (c *controller) plan(_ context.Context, path string) (wire.Plan, error) {
	if path == "" {
		path = c.opts.ConfigPath
	}
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	next, err := config.Load(path)
	if err != nil {
		return wire.Plan{}, fmt.Errorf("%w: %w", api.ErrBadConfig, err)
	}
	live := map[string][]string{}
	for _, g := range c.groups {
		for _, in := range g.Snapshot().Instances {
			if in.State != group.Terminated {
				live[g.Name()] = append(live[g.Name()], in.ID)
			}
		}
	}
	p := wire.Plan{Path: path, Changes: []wire.PlanChange{}}
	for _, ch := range reload.Plan(c.cfg, next, live) {
		p.Changes = append(p.Changes, wire.PlanChange(ch))
	}
	return p, nil
}

// buildRefresh makes the instance refreshes' runner; it takes up the
// recorded ones once the groups run.
func (c *controller) buildRefresh() error {
	deps := refresh.Deps{Records: c.st, Logger: c.log, TargetHealthy: c.targetHealthy}
	for _, g := range c.groups {
		deps.Groups = append(deps.Groups, g)
	}
	c.refresh = refresh.New(deps)
	c.parts.add("instance refreshes", func(context.Context) error { c.refresh.Run(); return nil }, c.refresh.Close)
	return nil
}

// targetHealthy reports whether an instance is healthy in every target
// group that has it as a target.
func (c *controller) targetHealthy(id string) bool {
	if c.bal == nil {
		return true
	}
	for _, tg := range c.bal.TargetGroups() {
		for _, t := range tg.Targets {
			if t.ID == id && t.State != "healthy" {
				return false
			}
		}
	}
	return true
}
