// Package local is the provider that runs instances as process trees on
// this host.
//
// Each instance has a directory, <StateDir>/instances/<id>, and a shim: a
// small supervisor process (`autoheal __autoheal_shim`, the same binary,
// see Init) that is the application's parent for its whole life, in its
// own session so that signals to the controller or its terminal do not
// reach it. The shim takes the volume locks and checks their fencing
// tokens, starts the application in its own session and process group (as
// root, in a private mount namespace holding the bind mounts), copies its
// stdout and stderr into size-capped, rotated log files, and records the
// start and then the exit in status.json. Instances therefore outlive the
// controller, and an exit that happens while no controller runs is kept.
// A spare shim, started ahead, takes the next Launch, so that the start-up
// of the autoheal binary is not paid on the heal path (spare.go).
//
// The fence (fence.go): where the host allows it, each shim is PID 1 of a
// PID namespace of its own (a user namespace too when the controller is
// not root), created when the shim starts, which for a spare is before
// its Launch. No process can leave its PID namespace, and the kernel
// SIGKILLs every member when the init exits and completes the init's exit
// only once all are reaped: "the shim is gone" means "every process of
// the instance is gone", whatever the application did (double fork,
// setsid, a cleared environment, closed descriptors, a fork bomb). The
// shim also kills the rest of the namespace as soon as its application
// exits, before it reports the exit. Without namespaces (FenceSubreaper)
// the shim, the subreaper of everything its application starts, walks and
// kills that tree instead, and Stop also scans /proc; a process that kills
// the shim first escapes that fallback. Scripts (Run) start inside the
// instance's namespace while it lives, else in one of their own that ends
// with them.
//
// Pids: inside a namespace getpid() is the namespace's number, but the
// shim runs in the host's mount namespace and /proc is the host's. Every
// pid this package records, verifies or signals (status.json,
// Process.Pid, the process group) is the host's: the shim reads its own
// from /proc/self and its application's from the fdinfo of a pidfd.
//
// Exit detection costs no polling and no thread: the shim tells its
// launching controller on a pipe as soon as the application is gone, and
// the controller also follows every shim, child or adopted after a
// restart, through a pidfd in Go's poller. Identity is never a bare pid: a
// process is the one recorded only if its start time (field 22 of
// /proc/<pid>/stat) matches and, for shims, its environment carries the
// instance's AUTOHEAL_STATE_DIR and AUTOHEAL_INSTANCE_ID, which every
// process of an instance inherits unless it clears its environment. That
// environment is also how Stop finds leftovers under the fallback fence
// and how Sweep finds orphans.
//
// Descriptors: a shim started for its instance gets the hello pipe at fd 3
// and the listeners at fds 4, ...; a spare gets a control socket at fd 3
// and the listeners with its assignment. The application gets /dev/null,
// the stdout and stderr pipes, the listeners at fds 3, 4, ... (LISTEN_FDS,
// LISTEN_PID and LISTEN_FDNAMES set, systemd style; LISTEN_PID needs the
// exec trampoline, `autoheal __autoheal_exec`, since it is only known
// after the fork) and then the volume lock files, which keep their flocks
// for as long as any process of the instance holds them.
//
// The package owns processes, their files under the instance directory,
// and the mechanics of locks and tokens. It knows nothing of groups,
// health, volumes' placement or the store: callers hand it a provider.Spec.
//
// Deployment note: under systemd, the controller's unit needs
// KillMode=process (or the shims must be moved out of its cgroup), or
// stopping the controller kills every instance with it.
package local
