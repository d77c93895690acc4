//go:build linux

package local

import "os"

// Init runs the helper role the process was started for, if any, and exits:
// `autoheal __autoheal_shim <dir>` is an instance's shim and `autoheal
// __autoheal_exec <label> <fd>` the trampoline that execs an application
// when Go's fork/exec cannot do every step. Otherwise it returns false.
// Call it first thing in main, and in TestMain of any package whose tests
// launch instances (the test binary then serves as the shim), as with
// docker's pkg/reexec.
func Init() bool {
	if len(os.Args) < 2 {
		return false
	}
	switch os.Args[1] {
	case shimArg:
		os.Exit(runShim(os.Args[2:]))
	case execArg:
		os.Exit(runTrampoline(os.Args[2:]))
	}
	return false
}
