package server

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/autoheal/autoheal/internal/event"
	"github.com/autoheal/autoheal/internal/store"
)

// The state dir watch: the store degrades itself when a write meets a disk
// that refuses it (store.NotWritable), and groups then hold still (no
// launch, heal or termination: each records before it acts). This part
// probes the state dir, says so when it changes (a log line; status and
// /metrics read the store's health), and when a durable write works again
// journals how long it did not and wakes the groups, which go on from
// their records: a failed instance is healed then.

const (
	// probeDegraded is how often a degraded state dir is tried again.
	probeDegraded = time.Second
	// probeHealthy is how often a writable one is checked, so that a
	// read-only or full state dir is said before a heal needs it.
	probeHealthy = 5 * time.Second
)

// buildStateWatch starts after the groups (it wakes them) and stops
// before them.
func (c *controller) buildStateWatch() error {
	ctx, cancel := context.WithCancel(c.ctx)
	var running sync.WaitGroup
	c.parts.add("state dir watch", func(context.Context) error {
		running.Add(1)
		go func() {
			defer running.Done()
			c.watchStateDir(ctx)
		}()
		return nil
	}, func() {
		cancel()
		running.Wait()
	})
	return nil
}

// watchStateDir probes the state dir (every probeDegraded while it takes
// no writes, else every probeHealthy) and acts on every change of the
// store's health, whoever found it.
func (c *controller) watchStateDir(ctx context.Context) {
	prev := c.st.Health()
	for {
		every := probeHealthy
		if !prev.Writable {
			every = probeDegraded
		}
		t := time.NewTimer(every)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-c.st.HealthChanged():
			t.Stop()
		case <-t.C:
			pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			c.st.Probe(pctx)
			cancel()
		}
		cur := c.st.Health()
		if cur.Writable != prev.Writable {
			c.stateDirChanged(ctx, prev, cur)
		}
		prev = cur
	}
}

// stateDirChanged says the change; on recovery it journals the time the
// state dir took no writes and wakes the groups.
func (c *controller) stateDirChanged(ctx context.Context, prev, cur store.Health) {
	if !cur.Writable {
		c.log.Error("state dir not writable: groups hold still (no launch, heal or termination); instances keep running and are served",
			"state_dir", c.stateDir, "reason", store.Reason(cur.Err), "err", cur.Err)
		return
	}
	down := cur.Since.Sub(prev.Since)
	c.log.Info("state dir writable again: groups go on", "state_dir", c.stateDir, "was", store.Reason(prev.Err), "for", down.Round(time.Millisecond).String())
	ev := event.New("", "", fmt.Sprintf("state dir %s took no writes for %s (%s); groups held still meanwhile", c.stateDir, down.Round(time.Millisecond), store.Reason(prev.Err)),
		event.ControllerStateDir{Dir: c.stateDir, Error: store.Reason(prev.Err), Since: prev.Since, DownMS: down.Milliseconds()})
	if _, err := c.st.Append(ctx, ev); err != nil {
		c.log.Warn("journal the state dir's recovery", "err", err)
	}
	for _, g := range c.groups {
		g.Wake()
	}
}
