//go:build linux

package local

import (
	"bytes"
	"os"
	"strconv"
	"unsafe"
)

// A spare shim cannot be started with its instance's identity in its
// environment: the instance does not exist yet. So it starts with entries
// of the same lengths under other names, which make it invisible to every
// scan for the state dir (Stop, Sweep, anyone's), and on assignment
// rewrites them in place into the entries a shim started for the instance
// would have had. /proc/<pid>/environ reads the process's memory, so after
// the rewrite the spare is indistinguishable from such a shim, as
// setproctitle(3) makes a process show another command line.
const (
	envSpareDir = "AUTOHEAL_SPARE_DIR"   // becomes AUTOHEAL_STATE_DIR
	envSpareID  = "AUTOHEAL_ASSIGNED_ID" // becomes AUTOHEAL_INSTANCE_ID
	spareID     = "i-unassigned-------"  // as long as an instance id
	// exitNoSpare is a spare's exit code when it cannot rewrite its
	// environment here; the provider then stops using spares.
	exitNoSpare = 3
)

// Each pair must have the same length; a mismatch fails to compile.
var (
	_ [len(envSpareDir) - len(EnvStateDir)]struct{}
	_ [len(EnvStateDir) - len(envSpareDir)]struct{}
	_ [len(envSpareID) - len(EnvInstanceID)]struct{}
	_ [len(EnvInstanceID) - len(envSpareID)]struct{}
	_ [len(spareID) - len("i-0123456789abcdef0")]struct{}
	_ [len("i-0123456789abcdef0") - len(spareID)]struct{}
)

// spareEnv is a spare shim's environment.
func spareEnv(stateDir string) []string {
	return append([]string{envSpareDir + "=" + stateDir, envSpareID + "=" + spareID}, goDebugEnv()...)
}

// spareEnviron returns this process's initial environment block, the
// memory that /proc/self/environ shows, writable; nil if it cannot be
// found with certainty. The kernel lays out the argument strings and then
// the environment strings at the top of the main thread's stack; Go
// copies the environment but keeps os.Args pointing into that memory,
// which locates it. The kernel's own record of where the block lies
// (fields 50 and 51 of /proc/self/stat) and its content must both agree
// before anything is written.
func spareEnviron() []byte {
	if len(os.Args) == 0 || os.Args[len(os.Args)-1] == "" {
		return nil
	}
	last := os.Args[len(os.Args)-1]
	start := unsafe.Add(unsafe.Pointer(unsafe.StringData(last)), len(last)+1)
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return nil
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 49 {
		return nil
	}
	// Field n of stat is f[n-3] after the command name.
	envStart, err1 := strconv.ParseUint(string(f[50-3]), 10, 64)
	envEnd, err2 := strconv.ParseUint(string(f[51-3]), 10, 64)
	if err1 != nil || err2 != nil || uintptr(envStart) != uintptr(start) || envEnd <= envStart {
		return nil
	}
	want, err := os.ReadFile("/proc/self/environ")
	if err != nil || uint64(len(want)) != envEnd-envStart {
		return nil
	}
	block := unsafe.Slice((*byte)(start), len(want))
	if !bytes.Equal(block, want) {
		return nil
	}
	return block
}

// assignEnviron rewrites the spare's entries into the instance's identity.
func assignEnviron(block []byte, id string) {
	for len(block) > 0 {
		n := bytes.IndexByte(block, 0)
		if n < 0 {
			n = len(block)
		}
		e := block[:n]
		switch {
		case bytes.HasPrefix(e, []byte(envSpareDir+"=")):
			copy(e, EnvStateDir)
		case string(e) == envSpareID+"="+spareID && len(id) == len(spareID):
			copy(e, EnvInstanceID+"="+id)
		}
		block = block[min(n+1, len(block)):]
	}
}
