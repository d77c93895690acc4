package health

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// Checker runs one prober on its own goroutine and reports transitions.
//
// The first probe runs at once when Start is called, then one every
// StartupInterval until the first healthy transition (or from the start
// with StartHealthy), then one every Interval. Probes of one checker never overlap: the next starts only after
// the previous returned, so a slow target is never probed twice at once.
type Checker struct {
	name     string
	cfg      Config
	prober   Prober
	onChange func(Transition)
	log      *slog.Logger

	status atomic.Int32

	mu      sync.Mutex // guards started, closed, cancel
	started bool
	closed  bool
	cancel  context.CancelFunc
	done    chan struct{}
}

// NewChecker returns a checker that is not running yet. onChange is called on
// the checker's goroutine, once per transition, in order; a slow onChange
// delays the next probe and nothing else. A nil logger discards.
func NewChecker(name string, cfg Config, p Prober, onChange func(Transition), logger *slog.Logger) *Checker {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if onChange == nil {
		onChange = func(Transition) {}
	}
	c := &Checker{
		name:     name,
		cfg:      cfg.WithDefaults(),
		prober:   p,
		onChange: onChange,
		log:      logger.With("check", name),
		done:     make(chan struct{}),
	}
	if cfg.StartHealthy {
		c.status.Store(int32(Healthy))
	}
	return c
}

// Start starts probing until ctx is done or Close is called. Calls after the
// first, or after Close, do nothing.
func (c *Checker) Start(ctx context.Context) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.started || c.closed {
		return
	}
	c.started = true
	ctx, c.cancel = context.WithCancel(ctx)
	go c.run(ctx)
}

// Close stops the checker and waits for its goroutine, including a probe in
// flight (which sees its context cancelled). No onChange call happens after
// Close returns.
func (c *Checker) Close() {
	c.mu.Lock()
	c.closed = true
	started, cancel := c.started, c.cancel
	c.mu.Unlock()
	if !started {
		return
	}
	cancel()
	<-c.done
	if p, ok := c.prober.(interface{ CloseIdleConnections() }); ok {
		p.CloseIdleConnections()
	}
}

// Status returns the latest status.
func (c *Checker) Status() Status { return Status(c.status.Load()) }

func (c *Checker) run(ctx context.Context) {
	defer close(c.done)
	counter := NewCounter(c.cfg, time.Now())
	timer := time.NewTimer(0) // the first probe runs at once
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		start := time.Now()
		c.step(ctx, counter)
		if ctx.Err() != nil {
			return
		}
		period := c.cfg.StartupInterval
		if counter.BeenHealthy() {
			period = c.cfg.Interval
		}
		// Periods run start to start; a probe that took longer than the
		// period is followed at once by the next, never overlapped.
		timer.Reset(max(0, period-time.Since(start)))
	}
}

// step runs one probe and reports a transition. A panic in the prober or in
// onChange is logged and the loop goes on: a buggy check must not take the
// controller down, nor silently stop checking.
func (c *Checker) step(ctx context.Context, counter *Counter) (tr Transition, changed bool) {
	res, out := c.probe(ctx)
	if ctx.Err() != nil {
		// Closing: the probe was cut short by us, not by the target.
		return Transition{}, false
	}
	tr, changed = counter.Observe(res, out, time.Now())
	if !changed {
		return tr, false
	}
	c.status.Store(int32(tr.Status))
	c.log.Debug("health transition", "status", tr.Status, "consecutive", tr.Consecutive, "output", tr.Output)
	defer func() {
		if v := recover(); v != nil {
			c.log.Error("health transition callback panicked", "panic", v, "stack", string(debug.Stack()))
		}
	}()
	c.onChange(tr)
	return tr, true
}

// probe runs the prober once within Timeout. A probe that could not run, or
// panicked, counts as a failure whose output says so.
func (c *Checker) probe(ctx context.Context) (res Result, out string) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	defer func() {
		if v := recover(); v != nil {
			c.log.Error("health probe panicked", "panic", v, "stack", string(debug.Stack()))
			res, out = Failure, fmt.Sprintf("probe error: panic: %v", v)
		}
	}()
	res, out, err := c.prober.Probe(ctx)
	if err != nil {
		out = truncate("probe error: " + err.Error() + suffix(out))
		return Failure, out
	}
	return res, truncate(out)
}

func suffix(out string) string {
	if out == "" {
		return ""
	}
	return ": " + out
}
