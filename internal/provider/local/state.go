//go:build linux

package local

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/autoheal/autoheal/internal/atomicfile"
	"github.com/autoheal/autoheal/internal/provider"
)

// Files of an instance directory, <StateDir>/instances/<id>/.
const (
	specFile   = "spec.json"   // written by Launch, read by the shim
	statusFile = "status.json" // written by the shim only
	shimLog    = "shim.log"    // the shim's own stdout and stderr
	stdoutLog  = "stdout.log"
	stderrLog  = "stderr.log"
)

// shimSpec is spec.json: the provider.Spec minus its open files, plus what
// the shim needs to know about its launcher.
//
// Descriptors the shim inherits from Launch:
//
//	0        /dev/null
//	1, 2     shim.log
//	3        write end of the hello pipe: a JSON line (hello) once the
//	         application runs or failed to, and one when it exited
//	4 ...    the listeners, in Listeners order
//
// A spare shim (spare.go) instead has .spare-shim.log at 1 and 2 until it
// is assigned (then shim.log), and at 3 a socket on which it receives its
// assignment, a JSON line with the listeners as SCM_RIGHTS, and then
// writes the same lines as on the hello pipe.
//
// Descriptors of the exec trampoline: the application's, then its control
// socket (config in, error out; close-on-exec, so EOF means exec worked).
//
// Descriptors the application inherits from the shim (directly or through
// the trampoline, which keeps them in place):
//
//	0        /dev/null
//	1        pipe to stdout.log
//	2        pipe to stderr.log
//	3 ...    the listeners, in Listeners order (LISTEN_FDS of them)
//	then     the volume lock files, in Locks order, each holding its flock
type shimSpec struct {
	ID          string           `json:"id"`
	Group       string           `json:"group,omitempty"`
	Command     string           `json:"command"`
	Args        []string         `json:"args,omitempty"`
	Env         []string         `json:"env"` // final: identity variables set, LISTEN_* removed
	Workdir     string           `json:"workdir"`
	User        string           `json:"user,omitempty"`
	Mounts      []provider.Mount `json:"mounts,omitempty"`
	Locks       []provider.Lock  `json:"locks,omitempty"`
	Listeners   []string         `json:"listeners,omitempty"` // names; fds 4... in the shim
	LogMaxSize  int64            `json:"log_max_size"`
	LogMaxFiles int              `json:"log_max_files"` // rotated files kept; 0 keeps none
	// HostMountNS is the launcher's mount namespace. The shim makes the
	// bind mounts only when its own namespace differs, so that a failed
	// unshare can never put an instance's mounts on the host.
	HostMountNS string `json:"host_mount_ns"`
	// Deadline is the host's dead man's switch file (deadline.go): the
	// application is killed once it passes. Empty: none (one host).
	Deadline string `json:"deadline,omitempty"`
}

// Descriptor numbers in the shim.
const (
	shimHelloFD     = 3
	shimListenersFD = 4
)

// hello is a line the shim writes on the hello pipe: first the answer to
// Launch (the application runs, Pid, or it could not start, Error), and
// at the end its exit (Exit).
type hello struct {
	Pid       int                  `json:"pid,omitempty"`
	PidStart  uint64               `json:"pid_start,omitempty"`
	StartedAt time.Time            `json:"started_at,omitzero"`
	Error     string               `json:"error,omitempty"`
	Exit      *provider.ExitStatus `json:"exit,omitempty"`
	// NS, with Pid, says that the shim is PID 1 of the instance's own PID
	// namespace: every process of the instance dies with it.
	NS bool `json:"ns,omitempty"`
	// Alone, with Exit, says that no process descended from the
	// application outlived it: the shim killed and reaped every one.
	Alone bool `json:"alone,omitempty"`
}

// status is status.json. The shim rewrites it atomically at each step, so a
// controller that was down reads the instance's whole story there.
type status struct {
	ID        string `json:"id"`
	ShimPid   int    `json:"shim_pid"`
	ShimStart uint64 `json:"shim_start"` // field 22 of /proc/<shim_pid>/stat
	// Pid is the application, leader of its own session and process
	// group; 0 until it started.
	Pid       int       `json:"pid,omitempty"`
	PidStart  uint64    `json:"pid_start,omitempty"`
	StartedAt time.Time `json:"started_at,omitzero"`
	// Exited is set once the application is gone (or never started, with
	// Exit.Error saying why).
	Exited bool                `json:"exited"`
	Exit   provider.ExitStatus `json:"exit"`
}

func readStatus(dir string) (status, error) {
	var st status
	b, err := os.ReadFile(filepath.Join(dir, statusFile))
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("%s: %w", filepath.Join(dir, statusFile), err)
	}
	return st, nil
}

// writeJSON replaces path with v as JSON, atomically: a reader sees the old
// or the new content, never a mix. durable also makes it survive a power
// loss (atomicfile.WriteFile). Without it, after a crash the file may hold
// the old content or nothing: spec.json is written again by every Launch,
// and status.json records a running instance that a crash kills anyway;
// the exit record a controller has not read is written durably (see the
// shim's save).
func writeJSON(path string, v any, perm os.FileMode, durable bool) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if durable {
		return atomicfile.WriteFile(path, b, perm)
	}
	return atomicfile.WriteFileNoSync(path, b, perm)
}
