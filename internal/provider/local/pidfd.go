//go:build linux

package local

import (
	"context"
	"errors"
	"os"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// pidFD is a pidfd (Linux 5.3+) registered with Go's network poller: it
// becomes readable when the process exits, for any process, not only our
// children, so a wait costs no thread and no polling loop. A pidfd also
// pins the process it was opened on: signals sent through it can never hit
// a later process that reused the pid.
type pidFD struct {
	f   *os.File
	pid int
}

// openPidFD opens a pidfd on pid. PIDFD_NONBLOCK sets O_NONBLOCK, which is
// what makes os.NewFile hand the descriptor to the poller.
func openPidFD(pid int) (*pidFD, error) {
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return nil, os.NewSyscallError("pidfd_open", err)
	}
	return &pidFD{f: os.NewFile(uintptr(fd), "pidfd:"+strconv.Itoa(pid)), pid: pid}, nil
}

func (p *pidFD) Close() error { return p.f.Close() }

func pollExited(fd int) bool {
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, 0)
		if err == unix.EINTR {
			continue
		}
		return err != nil || n > 0 && fds[0].Revents != 0
	}
}

// signal sends sig to the process through the pidfd. ESRCH (already gone)
// is not an error.
func (p *pidFD) signal(sig syscall.Signal) error {
	rc, err := p.f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.PidfdSendSignal(int(fd), sig, nil, 0)
	}); err != nil {
		return err
	}
	if serr == unix.ESRCH {
		return nil
	}
	return serr
}

// wait blocks until the process exits, ctx ends or the pidfd is closed. It
// may be called once per pidFD: a cancelled wait leaves a past deadline on
// the descriptor.
func (p *pidFD) wait(ctx context.Context) error {
	if ctx.Done() != nil {
		stop := context.AfterFunc(ctx, func() { p.f.SetReadDeadline(time.Unix(1, 0)) })
		defer stop()
	}
	rc, err := p.f.SyscallConn()
	if err != nil {
		return err
	}
	// RawConn.Read calls the function and, while it returns false, parks
	// the goroutine in the poller until the descriptor is readable.
	err = rc.Read(func(fd uintptr) bool { return pollExited(int(fd)) })
	if err != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// waitAll waits for every process to exit.
func waitAll(ctx context.Context, fds []*pidFD) error {
	var first error
	for _, p := range fds {
		if err := p.wait(ctx); err != nil && first == nil && !errors.Is(err, os.ErrClosed) {
			first = err
		}
	}
	return first
}
