package local

import "log/slog"

// Options configures New.
type Options struct {
	// StateDir is the controller's state directory; instances live in
	// <StateDir>/instances/<id>. Required.
	StateDir string
	// Exe is the autoheal binary, which contains the shim and the exec
	// trampoline (see Init). Default: os.Executable().
	Exe string
	// Logger receives what the provider notices on its own (a lost shim, a
	// mount namespace that could not be made). Default: discard.
	Logger *slog.Logger
	// NoSpareShim starts every shim when its instance is launched, paying
	// the start-up of the autoheal binary inside Launch. By default one
	// spare shim is kept started, so that the next Launch only hands it
	// the instance.
	NoSpareShim bool
	// NoPIDNamespace forces the fallback fence (FenceSubreaper) even where
	// the host allows a PID namespace per instance. By default the
	// strongest fence the host allows is used; see Local.Fence.
	NoPIDNamespace bool
	// Deadline is the file of a cluster host's dead man's switch
	// (WriteDeadline): every instance launched is killed by its own shim
	// once the deadline it holds passes, and none starts after it. Empty:
	// none (one host, where instances outlive their controller for good).
	Deadline string
}

// Defaults for a Spec's zero values.
const (
	// DefaultLogMaxSize is the rotation size of stdout.log and stderr.log
	// when Spec.LogMaxSize is 0.
	DefaultLogMaxSize = 10 << 20
	// DefaultLogMaxFiles is how many rotated files of each stream are kept
	// when Spec.LogMaxFiles is 0; a negative LogMaxFiles keeps none.
	DefaultLogMaxFiles = 3
	// DefaultWorkdir is the working directory when Spec.Workdir is empty,
	// as for a systemd service.
	DefaultWorkdir = "/"
	// RunOutputMax caps Run's output; the tail is kept.
	RunOutputMax = 64 << 10
)

// Environment variables that mark every process of an instance: the shim,
// the trampoline, the application and its descendants, and scripts started
// by Run. The kernel keeps a process's initial environment in
// /proc/<pid>/environ whatever the process does with its process group or
// session, which is how Stop finds processes that left the group and how
// Sweep finds orphans.
const (
	EnvStateDir   = "AUTOHEAL_STATE_DIR"
	EnvInstanceID = "AUTOHEAL_INSTANCE_ID"
)

// Arguments that make the autoheal binary one of its helper roles (Init).
const (
	shimArg  = "__autoheal_shim"
	spareArg = "--spare"
	execArg  = "__autoheal_exec"
)
