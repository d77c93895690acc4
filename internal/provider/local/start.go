//go:build linux

package local

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/autoheal/autoheal/internal/provider"
	"golang.org/x/sys/unix"
)

// execConfig is everything between fork and exec of an application (or of
// a script run by Run).
type execConfig struct {
	Command string   `json:"command"`
	Argv    []string `json:"argv"`
	Env     []string `json:"env"`
	// Workdir is entered after the user switch; "" keeps the inherited
	// working directory.
	Workdir string `json:"workdir,omitempty"`
	Cred    *cred  `json:"cred,omitempty"`
	// Listeners names the sockets at fds 3, 4, ...; the trampoline adds
	// LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES for them.
	Listeners []string `json:"listeners,omitempty"`
}

// startOptions says how to start an execConfig.
type startOptions struct {
	// files become fds 3, 4, ... of the program: listeners, then locks.
	files          []*os.File
	stdout, stderr *os.File
	// trampoline runs the program through `exe __autoheal_exec`, for the
	// one step Go's fork/exec cannot do between fork and exec: LISTEN_PID,
	// which must be the program's own pid and so can only be written
	// after the fork. It costs one more start of a Go binary (milliseconds
	// on a small VM), so it is used only for instances with listeners.
	trampoline bool
	exe        string // binary with the trampoline
	label      string // shown in ps: the instance dir
	// attr is how the program is started (without the trampoline);
	// default: in its own session. The credential is added to it.
	attr *syscall.SysProcAttr
}

// startProgram starts cfg in its own session and process group and returns
// once the program runs (its exec succeeded) or with the reason it could
// not start, worded "exec /x: no such file or directory", "chdir /nope: no
// such file or directory" and the like.
func startProgram(ctx context.Context, cfg execConfig, o startOptions) (*exec.Cmd, error) {
	if o.trampoline {
		return startTrampoline(ctx, cfg, o)
	}
	if cfg.Workdir != "" {
		// Go's child reports a failed chdir as "fork/exec <program>", which
		// would blame the program; check first to name the directory.
		if fi, err := os.Stat(cfg.Workdir); err != nil {
			return nil, fmt.Errorf("chdir %s: %w", cfg.Workdir, unwrapPath(err))
		} else if !fi.IsDir() {
			return nil, fmt.Errorf("chdir %s: %w", cfg.Workdir, syscall.ENOTDIR)
		}
	}
	attr := &syscall.SysProcAttr{Setsid: true}
	if o.attr != nil {
		a := *o.attr
		attr = &a
	}
	attr.Credential = cfg.Cred.sys()
	cmd := &exec.Cmd{
		Path:        cfg.Command,
		Args:        cfg.Argv,
		Env:         cfg.Env,
		Dir:         cfg.Workdir,
		Stdout:      o.stdout,
		Stderr:      o.stderr,
		ExtraFiles:  o.files,
		SysProcAttr: attr,
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("exec %s: %w", cfg.Command, unwrapPath(err))
	}
	return cmd, nil
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func (c *cred) sys() *syscall.Credential {
	if c == nil {
		return nil
	}
	return &syscall.Credential{Uid: c.Uid, Gid: c.Gid, Groups: c.Groups}
}

// startTrampoline starts `exe __autoheal_exec <label> <ctl fd>`. The control
// socket is the descriptor after the program's files. Through it the
// trampoline reads cfg (so that no secret from the environment shows in
// ps) and writes back why it could not exec; it is close-on-exec in the
// trampoline, so EOF with no message means the exec succeeded.
func startTrampoline(ctx context.Context, cfg execConfig, o startOptions) (*exec.Cmd, error) {
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("exec trampoline: %w", os.NewSyscallError("socketpair", err))
	}
	parent := os.NewFile(uintptr(pair[0]), "exec-ctl")
	child := os.NewFile(uintptr(pair[1]), "exec-ctl")
	// No Credential here: the user may not be allowed to execute the
	// autoheal binary (say, under /root); the trampoline switches itself.
	sys := &syscall.SysProcAttr{Setsid: true}
	cmd := &exec.Cmd{
		Path:        o.exe,
		Args:        []string{o.exe, execArg, o.label, strconv.Itoa(3 + len(o.files))},
		Env:         cfg.Env,
		Stdout:      o.stdout,
		Stderr:      o.stderr,
		ExtraFiles:  append(append([]*os.File(nil), o.files...), child),
		SysProcAttr: sys,
	}
	err = cmd.Start()
	child.Close()
	if err != nil {
		parent.Close()
		return nil, fmt.Errorf("exec trampoline %s: %w", o.exe, err)
	}
	conn, err := net.FileConn(parent)
	parent.Close()
	if err != nil {
		killWait(cmd)
		return nil, fmt.Errorf("exec trampoline: %w", err)
	}
	uc := conn.(*net.UnixConn)
	defer uc.Close()
	stop := context.AfterFunc(ctx, func() { uc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	encErr := json.NewEncoder(uc).Encode(cfg)
	if encErr == nil {
		uc.CloseWrite()
	}
	// Whatever happened to the write, the trampoline's answer (or its
	// death) closes the socket.
	msg, err := io.ReadAll(io.LimitReader(uc, 64<<10))
	if err == nil {
		err = encErr
	}
	switch {
	case len(msg) > 0:
		cmd.Wait()
		return nil, errors.New(strings.TrimSpace(string(msg)))
	case err != nil:
		killWait(cmd)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("exec trampoline: %w", err)
	}
	return cmd, nil
}

// killWait kills a just-started program's process group and reaps it.
func killWait(cmd *exec.Cmd) {
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	cmd.Process.Kill()
	cmd.Wait()
}

// runTrampoline is the `__autoheal_exec <label> <ctl fd>` role. It runs in
// the program's new session with the program's files already at fds 3, 4,
// ...: it reads the config, switches user, enters the working directory,
// sets LISTEN_* with its own pid and execs, which keeps the pid.
func runTrampoline(args []string) int {
	if len(args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: autoheal "+execArg+" <label> <fd>")
		return 127
	}
	fd, err := strconv.Atoi(args[1])
	if err != nil || fd < 3 {
		fmt.Fprintln(os.Stderr, "autoheal "+execArg+": bad control fd "+args[1])
		return 127
	}
	// The control socket must not reach the program: its closing on exec
	// is what tells the parent that the exec succeeded.
	unix.CloseOnExec(fd)
	ctl := os.NewFile(uintptr(fd), "exec-ctl")
	fail := func(err error) int {
		ctl.Write([]byte(err.Error()))
		return 127
	}
	var cfg execConfig
	if err := json.NewDecoder(ctl).Decode(&cfg); err != nil {
		return fail(fmt.Errorf("exec trampoline: read config: %w", err))
	}
	if c := cfg.Cred; c != nil {
		// Supplementary groups, then group, then user: once the uid is
		// dropped the others can no longer be changed. Go applies each to
		// every thread of the process.
		groups := make([]int, len(c.Groups))
		for i, g := range c.Groups {
			groups[i] = int(g)
		}
		if err := syscall.Setgroups(groups); err != nil {
			return fail(fmt.Errorf("setgroups: %w", err))
		}
		if err := syscall.Setgid(int(c.Gid)); err != nil {
			return fail(fmt.Errorf("setgid %d: %w", c.Gid, err))
		}
		if err := syscall.Setuid(int(c.Uid)); err != nil {
			return fail(fmt.Errorf("setuid %d: %w", c.Uid, err))
		}
	}
	if cfg.Workdir != "" {
		if err := syscall.Chdir(cfg.Workdir); err != nil {
			return fail(fmt.Errorf("chdir %s: %w", cfg.Workdir, err))
		}
	}
	env := cfg.Env
	if n := len(cfg.Listeners); n > 0 {
		env = append(env[:len(env):len(env)],
			"LISTEN_PID="+strconv.Itoa(os.Getpid()),
			"LISTEN_FDS="+strconv.Itoa(n),
			"LISTEN_FDNAMES="+strings.Join(cfg.Listeners, ":"))
	}
	err = syscall.Exec(cfg.Command, cfg.Argv, env)
	return fail(fmt.Errorf("exec %s: %w", cfg.Command, err))
}

// startInMountNS starts cfg in a new private mount namespace holding the
// bind mounts, without a helper process: on a thread of its own it
// unshares that thread's mount namespace, mounts, and forks from there,
// since Go's fork/exec forks from the calling thread and the child
// inherits that thread's namespace. The rest of the process stays in the
// host's namespace.
func startInMountNS(ctx context.Context, cfg execConfig, o startOptions, mounts []provider.Mount, hostNS string) (cmd *exec.Cmd, err error) {
	onThrowawayThread(func() {
		// unshare(CLONE_NEWNS) implies CLONE_FS, which a thread may
		// unshare from the rest of its process (setns could not do this).
		if uerr := unix.Unshare(unix.CLONE_NEWNS); uerr != nil {
			err = &unshareError{uerr}
			return
		}
		if err = makeMounts(mounts, hostNS); err != nil {
			return
		}
		cmd, err = startProgram(ctx, cfg, o)
	})
	return cmd, err
}

// canUnshareMountNS reports whether this process may create mount
// namespaces (root, and not in a container that forbids it).
func canUnshareMountNS() bool {
	var err error
	onThrowawayThread(func() { err = unix.Unshare(unix.CLONE_NEWNS) })
	return err == nil
}

// onThrowawayThread runs f on a goroutine locked to an OS thread that is
// destroyed afterwards, so that f may change the thread's namespaces: a
// goroutine that exits locked takes its thread with it. Never the main
// thread, which the runtime keeps (namespace and all, and /proc/self shows
// its view): if the goroutine lands there, it holds it while a second one,
// which must land elsewhere, does the work.
func onThrowawayThread(f func()) {
	done := make(chan struct{})
	var run func()
	run = func() {
		runtime.LockOSThread()
		if unix.Gettid() == unix.Getpid() {
			again := make(chan struct{})
			go func() {
				defer close(again)
				run()
			}()
			<-again
			runtime.UnlockOSThread()
			return
		}
		defer close(done)
		f()
	}
	go run()
	<-done
}

// makeMounts bind-mounts each Mount, creating its target. It refuses to run
// in hostNS: a mount made there would be the host's.
func makeMounts(mounts []provider.Mount, hostNS string) error {
	if len(mounts) == 0 {
		return nil
	}
	if ns := threadMountNS(); ns == "" || ns == hostNS {
		return errors.New("bind mounts: not in a private mount namespace")
	}
	// Mounts made under a shared / would propagate back to the host
	// (systemd mounts / shared). Go's fork/exec already did this after
	// its unshare; a thread that unshared itself must do it.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make / private: %w", err)
	}
	for _, m := range mounts {
		if err := os.MkdirAll(m.Target, 0o755); err != nil {
			return fmt.Errorf("bind mount %s on %s: %w", m.Source, m.Target, unwrapPath(err))
		}
		if err := unix.Mount(m.Source, m.Target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind mount %s on %s: %w", m.Source, m.Target, err)
		}
	}
	return nil
}

// unshareError is a refused mount namespace, as opposed to a failed mount.
type unshareError struct{ err error }

func (e *unshareError) Error() string { return "unshare mount namespace: " + e.err.Error() }
func (e *unshareError) Unwrap() error { return e.err }
