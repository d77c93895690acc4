//go:build linux

package local

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/autoheal/autoheal/internal/provider"
)

// process is a launched or adopted instance's application.
type process struct {
	id        string
	pid       int    // application, leader of its process group; 0 if it never started
	pidStart  uint64 // its start time, against pid reuse
	startedAt time.Time
	shimPid   int
	shimStart uint64
	// nsInit: the shim is PID 1 of the instance's PID namespace, so its
	// exit is the exit of every process of the instance.
	nsInit bool

	done chan struct{}
	// shimGone is closed once the shim has exited and been reaped: it
	// reports the exit (Done) just before it finishes its bookkeeping.
	shimGone chan struct{}
	// unwatched is closed when no watcher will close Done and shimGone
	// (the provider was closed); Stop then watches for itself.
	unwatched chan struct{}
	once      sync.Once // finish may race: the watcher and a Stop that outlived it
	mu        sync.Mutex
	exit      provider.ExitStatus
	fenced    atomic.Bool // a Stop confirmed every process gone
	// alone is set, before Done, when the shim reported that nothing
	// descended from the application outlived it.
	alone atomic.Bool
}

var _ provider.Process = (*process)(nil)

func (p *process) ID() string            { return p.id }
func (p *process) Pid() int              { return p.pid }
func (p *process) StartedAt() time.Time  { return p.startedAt }
func (p *process) Done() <-chan struct{} { return p.done }

func (p *process) Exit() provider.ExitStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exit
}

// finish records the exit and closes Done; only the first call counts.
func (p *process) finish(e provider.ExitStatus) {
	p.once.Do(func() {
		p.mu.Lock()
		p.exit = e
		p.mu.Unlock()
		close(p.done)
	})
}

func (p *process) isDone() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// newProcess returns a running process, to be watched.
func newProcess(id string, st status) *process {
	return &process{
		id: id, pid: st.Pid, pidStart: st.PidStart, startedAt: st.StartedAt,
		shimPid: st.ShimPid, shimStart: st.ShimStart,
		done: make(chan struct{}), shimGone: make(chan struct{}), unwatched: make(chan struct{}),
	}
}

// exited returns a process that is already over, shim included.
func exited(id string, st status) *process {
	p := newProcess(id, st)
	p.shimGone, p.unwatched = closedChan, closedChan
	p.finish(st.Exit)
	return p
}

var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()
