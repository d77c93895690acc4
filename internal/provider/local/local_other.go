//go:build !linux

package local

import (
	"context"
	"errors"
	"path/filepath"
	"syscall"
	"time"

	"github.com/autoheal/autoheal/internal/provider"
)

// errUnsupported: shims, pidfds and /proc are Linux's.
var errUnsupported = errors.New("local provider: only supported on Linux")

// Local is the local provider; on this OS every operation fails.
type Local struct{ stateDir string }

var _ provider.Provider = (*Local)(nil)

// New fails on this OS.
func New(opts Options) (*Local, error) { return nil, errUnsupported }

// Init never has a helper role to run on this OS.
func Init() bool { return false }

// InstanceDir is <StateDir>/instances/<id>.
func (l *Local) InstanceDir(id string) string { return filepath.Join(l.stateDir, "instances", id) }

// LogFiles returns an instance's current log paths.
func (l *Local) LogFiles(id string) (stdout, stderr string) {
	return filepath.Join(l.InstanceDir(id), "stdout.log"), filepath.Join(l.InstanceDir(id), "stderr.log")
}

// Close does nothing.
func (l *Local) Close() error { return nil }

func (l *Local) Launch(context.Context, provider.Spec) (provider.Process, error) {
	return nil, errUnsupported
}

func (l *Local) Adopt(context.Context, string) (provider.Process, error) {
	return nil, errUnsupported
}

func (l *Local) Stop(context.Context, provider.Process, syscall.Signal, time.Duration) error {
	return errUnsupported
}

func (l *Local) Run(context.Context, provider.Spec, string, time.Duration) (provider.Result, error) {
	return provider.Result{}, errUnsupported
}

func (l *Local) Sweep(context.Context, []string) ([]int, error) { return nil, errUnsupported }
