// Command hostile is an application that fights its fence, for the fence
// tests of the local provider and the server. It is built by those tests
// (go build ./internal/provider/local/testdata/hostile).
//
//	hostile app -out FILE -pids FILE -token T [flags]
//
// starts a writer that appends "<CLOCK_MONOTONIC ns> <token> <tag>\n" to
// FILE every millisecond or so, then waits forever. The tag is the
// instance's id (AUTOHEAL_INSTANCE_ID, read by the app before any
// environment is cleared), "-" without one. Every process it starts
// records "<host pid> <start time> <tag>" in the pids file first, and
// carries the token in its command line (a cleared environment hides it
// from /proc/<pid>/environ, not from cmdline). The flags choose the
// weapons:
//
//	-ignore-term  ignore SIGTERM (the app and the writer); the app records
//	              each one it gets in FILE.<tag>.sigterm
//	-setsid       the writer calls setsid: a new session and process group
//	-double-fork  the writer is started by an intermediate that exits at
//	              once, so that the writer is orphaned
//	-env-clear    the writer's environment is empty (env -i)
//	-close-fds    the writer closes every descriptor it inherited, the
//	              volume lock included, before it opens FILE
//	-bomb N       a fork bomb (perl: fork in a loop, retry at once when
//	              refused) with RLIMIT_NPROC N, which binds only non-root
//	-kill-parent  the app SIGKILLs its parent (the shim) once the writer
//	              wrote, then creates FILE.killed-parent
//	-exit-after D the app itself exits after D (its writer stays)
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

type options struct {
	out, pids, token, tag          string
	ignoreTerm, setsid, doubleFork bool
	envClear, closeFDs, killParent bool
	bomb                           int
	exitAfter                      time.Duration
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: hostile app|fork1|writer ...")
		os.Exit(2)
	}
	role := os.Args[1]
	fs := flag.NewFlagSet(role, flag.ExitOnError)
	var o options
	fs.StringVar(&o.out, "out", "", "file the writer appends to")
	fs.StringVar(&o.pids, "pids", "", "file each process records its host pid in")
	fs.StringVar(&o.token, "token", "", "marks every process in its command line")
	fs.StringVar(&o.tag, "tag", "", "the instance id (default $AUTOHEAL_INSTANCE_ID, or -)")
	fs.BoolVar(&o.ignoreTerm, "ignore-term", false, "")
	fs.BoolVar(&o.setsid, "setsid", false, "")
	fs.BoolVar(&o.doubleFork, "double-fork", false, "")
	fs.BoolVar(&o.envClear, "env-clear", false, "")
	fs.BoolVar(&o.closeFDs, "close-fds", false, "")
	fs.BoolVar(&o.killParent, "kill-parent", false, "")
	fs.IntVar(&o.bomb, "bomb", 0, "")
	fs.DurationVar(&o.exitAfter, "exit-after", 0, "")
	fs.Parse(os.Args[2:])
	if o.tag == "" {
		o.tag = os.Getenv("AUTOHEAL_INSTANCE_ID")
	}
	if o.tag == "" {
		o.tag = "-"
	}
	if o.ignoreTerm && role == "app" {
		// Ignored, but seen: the tests know when a stop began.
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGTERM)
		go func() {
			for range c {
				f, err := os.OpenFile(o.out+"."+o.tag+".sigterm", os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o666)
				if err == nil {
					f.Write([]byte("SIGTERM\n"))
					f.Close()
				}
			}
		}()
	} else if o.ignoreTerm {
		signal.Ignore(syscall.SIGTERM)
	}
	var err error
	switch role {
	case "app":
		err = app(o)
	case "fork1":
		err = start(o, "writer", o.setsid)
	case "writer":
		err = writer(o)
	default:
		err = fmt.Errorf("unknown role %q", role)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "hostile %s: %v\n", role, err)
		os.Exit(1)
	}
}

func app(o options) error {
	if err := record(o.pids, o.tag); err != nil {
		return err
	}
	if o.doubleFork {
		// The intermediate gets its own session too, so that it is not
		// in the app's group either; it exits once the writer started.
		cmd, err := command(o, "fork1", o.setsid)
		if err != nil {
			return err
		}
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("fork1: %w", err)
		}
	} else if err := start(o, "writer", o.setsid); err != nil {
		return err
	}
	if o.bomb > 0 {
		if err := bomb(o); err != nil {
			return err
		}
	}
	if o.killParent {
		// Once the writer writes. In a PID namespace the parent is its
		// init, which ignores SIGKILL from inside; otherwise the shim
		// dies.
		for {
			if fi, err := os.Stat(o.out); err == nil && fi.Size() > 0 {
				break
			}
			time.Sleep(time.Millisecond)
		}
		err := syscall.Kill(os.Getppid(), syscall.SIGKILL)
		if err := os.WriteFile(o.out+".killed-parent", []byte(fmt.Sprintln(err)), 0o666); err != nil {
			return err
		}
	}
	if o.exitAfter > 0 {
		time.Sleep(o.exitAfter)
		return nil
	}
	for {
		time.Sleep(time.Hour) // select{} would be a deadlock to the runtime
	}
}

// command is `hostile ROLE` with o's flags, in a session of its own if
// setsid, with an empty environment if o.envClear and ROLE is the writer.
func command(o options, role string, setsid bool) (*exec.Cmd, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	args := []string{role, "-out", o.out, "-pids", o.pids, "-token", o.token, "-tag", o.tag}
	for name, on := range map[string]bool{"-ignore-term": o.ignoreTerm, "-setsid": o.setsid, "-double-fork": o.doubleFork, "-env-clear": o.envClear, "-close-fds": o.closeFDs} {
		if on {
			args = append(args, name)
		}
	}
	cmd := exec.Command(self, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: setsid}
	if role == "writer" && o.envClear {
		cmd.Env = []string{}
	}
	// Inherited descriptors (the volume lock at fd 3...) are passed on:
	// Go marks its own close-on-exec, not the ones it inherited.
	return cmd, nil
}

func start(o options, role string, setsid bool) error {
	cmd, err := command(o, role, setsid)
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", role, err)
	}
	return nil
}

func writer(o options) error {
	if o.closeFDs {
		unix.CloseRange(0, ^uint(0), 0)
	}
	if err := record(o.pids, o.tag); err != nil {
		return err
	}
	f, err := os.OpenFile(o.out, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o666)
	if err != nil {
		return err
	}
	for {
		var ts unix.Timespec
		unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
		if _, err := fmt.Fprintf(f, "%d %s %s\n", ts.Nano(), o.token, o.tag); err != nil {
			return err
		}
		time.Sleep(time.Millisecond)
	}
}

// bomb starts perl forking in a loop: each process forks for ever and
// retries at once when the kernel refuses, so that a killer that frees one
// slot sees it taken again at once.
func bomb(o options) error {
	lim := &unix.Rlimit{Cur: uint64(o.bomb), Max: uint64(o.bomb)}
	if err := unix.Setrlimit(unix.RLIMIT_NPROC, lim); err != nil {
		return fmt.Errorf("bomb: %w", err)
	}
	cmd := exec.Command("/usr/bin/perl", "-e", "while (1) { fork }", o.token)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: o.setsid}
	if o.envClear {
		cmd.Env = []string{}
	}
	return cmd.Start()
}

// record appends "<host pid> <start time> <tag>" to path. The host pid is what
// /proc/self resolves to: inside a PID namespace getpid() is another
// number.
func record(path, tag string) error {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	pid := strings.Fields(s)[0]
	if _, err := strconv.Atoi(pid); err != nil || len(f) < 20 {
		return fmt.Errorf("bad /proc/self/stat %q", s)
	}
	w, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o666)
	if err != nil {
		return err
	}
	defer w.Close()
	_, err = fmt.Fprintf(w, "%s %s %s\n", pid, f[19], tag)
	return err
}
