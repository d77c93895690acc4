package server

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// A part is one component of a running controller. Building the
// controller (build.go) makes the parts in dependency order: a part may use
// every part before it. Run starts them in that order and stops them in
// the reverse order; the order is written once, here, as the list.
type part struct {
	name string
	// start runs the part once every part before it runs. Nil for a part
	// that building already made ready (a store, a listening socket).
	start func(ctx context.Context) error
	// stop stops the part and returns only when every goroutine the part
	// started has ended. It must work whether or not start ran: it also
	// releases what building the part acquired.
	stop func()
}

// parts runs a controller's parts in order and stops them in reverse.
type parts struct {
	list []part
	log  *slog.Logger
	// stopped counts from the end: list[len-stopped:] are stopped.
	stopped int
}

// add appends a part; start may be nil.
func (p *parts) add(name string, start func(context.Context) error, stop func()) {
	p.list = append(p.list, part{name: name, start: start, stop: stop})
}

// start starts every part in order. On the first error it returns that
// error, naming the part; the caller stops everything (stop), which also
// releases the parts that never started.
func (p *parts) start(ctx context.Context) error {
	for _, pt := range p.list {
		if pt.start == nil {
			continue
		}
		if err := pt.start(ctx); err != nil {
			return fmt.Errorf("start %s: %w", pt.name, err)
		}
	}
	return nil
}

// stop stops every part not stopped yet, the last one first. It may be
// called more than once; each part is stopped once.
func (p *parts) stop() {
	for i := len(p.list) - 1 - p.stopped; i >= 0; i-- {
		pt := p.list[i]
		p.stopped++
		if pt.stop == nil {
			continue
		}
		began := time.Now()
		pt.stop()
		if p.log != nil {
			p.log.Debug("stopped", "part", pt.name, "took", time.Since(began).Round(time.Microsecond))
		}
	}
}
