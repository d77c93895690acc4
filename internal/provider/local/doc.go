// Package local is the provider that runs instances as process trees on
// this host.
//
// Each instance has a directory, <StateDir>/instances/<id>, and a shim: a
// small supervisor process (`autoheal __autoheal_shim <dir>`, the same
// binary, see Init) that is the application's parent for its whole life,
// in its own session so that signals to the controller or its terminal do
// not reach it. The shim takes the volume locks and checks their fencing
// tokens, makes the bind mounts in a private mount namespace (as root),
// starts the application in its own session and process group, copies its
// stdout and stderr into size-capped, rotated log files, and records every
// step and finally the exit in status.json. Instances therefore outlive the
// controller, and an exit that happens while no controller runs is kept.
//
// The controller follows a shim through a pidfd in Go's poller, for its own
// children as for shims adopted after a restart, so an exit is seen as soon
// as the shim has recorded it, with no polling. Identity is never a bare
// pid: a process is the one recorded only if its start time (field 22 of
// /proc/<pid>/stat) matches and, for shims, its environment carries the
// instance's AUTOHEAL_STATE_DIR and AUTOHEAL_INSTANCE_ID, which every
// process of an instance inherits. That environment is also how Stop finds
// descendants that left the process group and how Sweep finds orphans.
//
// The package owns processes, their files under the instance directory,
// and the mechanics of locks and tokens. It knows nothing of groups,
// health, volumes' placement or the store: callers hand it a provider.Spec.
//
// Deployment note: under systemd, the controller's unit needs
// KillMode=process (or the shims must be moved out of its cgroup), or
// stopping the controller kills every instance with it.
package local
