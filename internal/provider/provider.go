package provider

import (
	"context"
	"errors"
	"os"
	"strconv"
	"syscall"
	"time"
)

// ErrNotFound means the provider has no live instance with that id.
var ErrNotFound = errors.New("instance not found")

// ErrHostGone means the instance's cluster host is not a member of the
// cluster (its lease lapsed): nothing can run there.
var ErrHostGone = errors.New("the host is not a member of the cluster")

// Provider launches, fences and describes instances. The local provider runs
// them as process trees on this host; a cloud provider would run them as
// virtual machines with the same semantics.
type Provider interface {
	// Launch starts the instance's application and returns once it has a pid
	// (or failed to start). It does not wait for the application to be ready.
	Launch(ctx context.Context, spec Spec) (Process, error)
	// Adopt re-attaches to an instance launched by an earlier controller run,
	// after checking that the process really is that instance (not only a
	// reused pid). An instance that exited while the controller was down is
	// returned as a Process whose Done channel is already closed, with its
	// exit status. ErrNotFound when nothing is known about it.
	Adopt(ctx context.Context, id string) (Process, error)
	// Stop fences an instance: the stop signal to its whole process group,
	// SIGKILL after the timeout, and it returns nil only once every process of
	// the instance is confirmed gone.
	Stop(ctx context.Context, p Process, sig syscall.Signal, timeout time.Duration) error
	// Run runs a script to completion in an instance's context (its
	// environment, working directory, user and volume mounts) and returns its
	// capped output. It is used for user_data, volume init, lifecycle hooks
	// and exec health checks. A non-zero exit is reported in the Result, not as
	// an error; the error means the script could not be run at all.
	Run(ctx context.Context, spec Spec, script string, timeout time.Duration) (Result, error)
	// Sweep kills every process that carries this controller's state dir in
	// its environment and does not belong to one of the keep instance ids:
	// orphans of a launch interrupted by a controller crash. It returns the
	// pids it killed.
	Sweep(ctx context.Context, keep []string) ([]int, error)
}

// HostAdopter is a provider that spans cluster hosts (provider/remote): it
// adopts an instance on the host its record names.
type HostAdopter interface {
	AdoptOn(ctx context.Context, host, id string) (Process, error)
}

// Process is a launched instance's application.
type Process interface {
	// ID is the instance id.
	ID() string
	// Pid of the application (the leader of its process group).
	Pid() int
	// StartedAt is when the application was started.
	StartedAt() time.Time
	// Done is closed once the application has exited and Exit is known.
	Done() <-chan struct{}
	// Exit is the exit status; valid after Done is closed.
	Exit() ExitStatus
}

// ExitStatus describes how an application ended.
type ExitStatus struct {
	// Code is the exit code, or -1 when killed by a signal or unknown.
	Code int `json:"code"`
	// Signal names the signal that killed it, if any ("SIGKILL").
	Signal string `json:"signal,omitempty"`
	// Time is when the exit was observed.
	Time time.Time `json:"time"`
	// Error is set when the application could not be started at all (missing
	// binary, bad workdir, volume lock held) or its status was lost.
	Error string `json:"error,omitempty"`
	// Lost is set when the instance's host left the cluster (its lease
	// lapsed): the instance is gone with it and cannot be restarted there.
	Lost bool `json:"lost,omitempty"`
}

// String renders the status for events: "exit 0", "signal SIGKILL".
func (e ExitStatus) String() string {
	switch {
	case e.Error != "":
		return "failed: " + e.Error
	case e.Signal != "":
		return "killed by " + e.Signal
	default:
		return "exit " + strconv.Itoa(e.Code)
	}
}

// Spec is everything needed to launch one instance.
type Spec struct {
	// ID is the instance id, "i-" and 17 hex digits.
	ID string
	// Group is the instance's group.
	Group string
	// Host is the cluster host that runs the instance ("" for this one).
	// Only a provider that spans hosts (provider/remote) reads it.
	Host string
	// Command is an absolute path to the program.
	Command string
	Args    []string
	// Env is the full environment of the application, KEY=VALUE, including
	// autoheal's identity variables.
	Env []string
	// Workdir is an absolute directory.
	Workdir string
	// User to run as (name or uid), empty for the controller's own user.
	User string
	// Mounts are bind mounts made in a private mount namespace before the
	// application starts (root on Linux only; ignored otherwise).
	Mounts []Mount
	// Locks are files the instance holds an exclusive flock on for as long as
	// any of its processes lives: the volume locks. Launch fails if one is
	// held by anyone else.
	Locks []Lock
	// Listeners are sockets handed to the application as fd 3, 4, ... with
	// LISTEN_FDS, LISTEN_PID and LISTEN_FDNAMES set (systemd style).
	Listeners []Listener
	// LogMaxSize is the size at which stdout.log and stderr.log rotate.
	LogMaxSize int64
	// LogMaxFiles is how many rotated files are kept per stream.
	LogMaxFiles int
}

// Mount is one bind mount.
type Mount struct {
	Source string `json:"source"`
	Target string `json:"target"`
}

// Lock is a volume lock with its fencing token. Before the application
// starts, the holder checks that the token recorded in TokenFile is not newer
// than Token and writes Token there, so a stale holder can never run.
type Lock struct {
	Path      string `json:"path"`
	TokenFile string `json:"token_file"`
	Token     int64  `json:"token"`
}

// Listener is a socket passed to the application.
type Listener struct {
	Name string
	File *os.File
}

// Result is the outcome of Run.
type Result struct {
	ExitCode int           `json:"exit_code"`
	Output   string        `json:"output"` // stdout and stderr interleaved, capped
	TimedOut bool          `json:"timed_out"`
	Duration time.Duration `json:"duration"`
}
