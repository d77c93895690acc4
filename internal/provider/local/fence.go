//go:build linux

package local

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Fence is the mechanism that makes "the shim is gone" mean "every process
// of the instance is gone".
type Fence int

const (
	// FenceSubreaper is the fallback: the shim is the subreaper of
	// everything its application starts and, when the application exits,
	// SIGKILLs every descendant it can find (walking /proc) until none is
	// left; Stop then scans /proc for the instance's identity. A process
	// that kills the shim first (same user, or root) orphans the rest to
	// init, where only the scan can find it.
	FenceSubreaper Fence = iota
	// FencePIDNamespace: each shim is PID 1 of a PID namespace of its own
	// (as root). No process can leave its PID namespace; when its init
	// exits the kernel SIGKILLs every other member and the init's exit
	// completes only once they are all reaped.
	FencePIDNamespace
	// FenceUserNamespace is FencePIDNamespace for a controller that is not
	// root: the PID namespace is owned by a user namespace of its own that
	// maps the controller's uid and gid to themselves and nothing else.
	FenceUserNamespace
)

func (f Fence) String() string {
	switch f {
	case FencePIDNamespace:
		return "pid-namespace"
	case FenceUserNamespace:
		return "user+pid-namespace"
	default:
		return "subreaper"
	}
}

// namespaced reports whether shims are started as PID 1 of their own PID
// namespace.
func (f Fence) namespaced() bool { return f != FenceSubreaper }

// sysProcAttr is how a shim, or a script run in a PID namespace of its own,
// is started: in its own session and, unless the fence is the fallback,
// as PID 1 of a new PID namespace.
func (f Fence) sysProcAttr() *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{Setsid: true}
	switch f {
	case FencePIDNamespace:
		a.Cloneflags = syscall.CLONE_NEWPID
	case FenceUserNamespace:
		a.Cloneflags = syscall.CLONE_NEWPID | syscall.CLONE_NEWUSER
		a.UidMappings = []syscall.SysProcIDMap{{ContainerID: os.Getuid(), HostID: os.Getuid(), Size: 1}}
		a.GidMappings = []syscall.SysProcIDMap{{ContainerID: os.Getgid(), HostID: os.Getgid(), Size: 1}}
		// An unprivileged user namespace may only map its gid once
		// setgroups is denied; the process keeps its supplementary groups.
		a.GidMappingsEnableSetgroups = false
	}
	return a
}

// probeFence returns the strongest fence this host allows: a PID namespace
// as root, a user and PID namespace otherwise, the subreaper fallback if
// the kernel refuses both (a container without CAP_SYS_ADMIN, user
// namespaces disabled by sysctl or a security module). The probe is a
// fork/exec of a path that does not exist: if the clone with the
// namespace flags succeeded, the exec fails with ENOENT; if not, the fork
// fails with the kernel's refusal. No process survives it.
func probeFence() Fence {
	for _, f := range []Fence{FencePIDNamespace, FenceUserNamespace} {
		if f == FencePIDNamespace && os.Geteuid() != 0 {
			continue
		}
		if f == FenceUserNamespace && os.Geteuid() == 0 {
			continue // root needs no user namespace, and loses nothing to one
		}
		cmd := exec.Command("/nonexistent/autoheal-fence-probe")
		cmd.SysProcAttr = f.sysProcAttr()
		if err := cmd.Start(); errors.Is(err, unix.ENOENT) {
			return f
		} else if err == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}
	return FenceSubreaper
}

// selfPid is this process's pid as the host (the /proc mount) numbers it:
// a shim that is PID 1 of its namespace sees 1 from getpid, but records and
// is verified by its pid in /proc.
func selfPid() int {
	if s, err := os.Readlink("/proc/self"); err == nil {
		if pid, err := strconv.Atoi(s); err == nil {
			return pid
		}
	}
	return os.Getpid()
}

// hostPid translates pid, as this process's PID namespace numbers it, into
// the pid /proc shows. A pidfd pins the process, and its fdinfo reports the
// pid in the namespace of the /proc mount, which is the host's: shims run
// in the host's mount namespace.
func hostPid(pid int) (int, error) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return 0, os.NewSyscallError("pidfd_open", err)
	}
	defer unix.Close(fd)
	b, err := os.ReadFile("/proc/self/fdinfo/" + strconv.Itoa(fd))
	if err != nil {
		return 0, err
	}
	for line := range bytes.Lines(b) {
		if v, ok := bytes.CutPrefix(line, []byte("Pid:")); ok {
			n, err := strconv.Atoi(string(bytes.TrimSpace(v)))
			if err != nil || n <= 0 {
				return 0, errors.New("pidfd: process gone or outside /proc's namespace")
			}
			return n, nil
		}
	}
	return 0, errors.New("pidfd: no Pid in fdinfo")
}

// isNamespaceInit reports whether pid is PID 1 of a PID namespace below
// /proc's: its NSpid line ends in 1 after the host's number. A shim that is
// one takes every process of its instance with it when it exits.
func isNamespaceInit(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return false
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "NSpid:"); ok {
			f := strings.Fields(v)
			return len(f) >= 2 && f[len(f)-1] == "1"
		}
	}
	return false
}

// setnsPID makes the calling thread's future children members of the PID
// namespace whose init fd refers to. The thread must be locked and thrown
// away (or leave the namespace) afterwards.
func setnsPID(fd *pidFD) error {
	rc, err := fd.f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.Setns(int(fd), unix.CLONE_NEWPID) }); err != nil {
		return err
	}
	return serr
}

// leavePIDNamespace undoes setnsPID: the calling thread's children go to
// this process's own PID namespace again.
func leavePIDNamespace() error {
	f, err := os.Open("/proc/self/ns/pid")
	if err != nil {
		return err
	}
	defer f.Close()
	return unix.Setns(int(f.Fd()), unix.CLONE_NEWPID)
}
