//go:build linux

package local_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/autoheal/autoheal/internal/provider"
	"github.com/autoheal/autoheal/internal/provider/local"
	"golang.org/x/sys/unix"
)

// helperArg makes the test binary a tiny application for tests that need
// more than /bin/sh (see helperMain).
const helperArg = "__local_test_helper"

func TestMain(m *testing.M) {
	// The test binary is also the shim and the trampoline.
	if local.Init() {
		return
	}
	if len(os.Args) > 1 && os.Args[1] == helperArg {
		os.Exit(helperMain(os.Args[2:]))
	}
	// Under -race every exiting Go process sleeps a second for late
	// reports; the shims inherit this and report exits at once.
	if _, ok := os.LookupEnv("GORACE"); !ok {
		os.Setenv("GORACE", "atexit_sleep_ms=0")
	}
	os.Exit(m.Run())
}

// helperMain: "listen" checks the systemd socket-passing variables, accepts
// one connection on fd 3 and reports what it saw to the client.
func helperMain(args []string) int {
	if len(args) == 0 || args[0] != "listen" {
		fmt.Fprintln(os.Stderr, "unknown helper", args)
		return 2
	}
	var problems []string
	if got, want := os.Getenv("LISTEN_PID"), strconv.Itoa(os.Getpid()); got != want {
		problems = append(problems, fmt.Sprintf("LISTEN_PID=%q, want %q", got, want))
	}
	if got := os.Getenv("LISTEN_FDS"); got != "1" {
		problems = append(problems, fmt.Sprintf("LISTEN_FDS=%q", got))
	}
	ln, err := net.FileListener(os.NewFile(3, "listener"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "fd 3:", err)
		return 3
	}
	c, err := ln.Accept()
	if err != nil {
		fmt.Fprintln(os.Stderr, "accept:", err)
		return 4
	}
	defer c.Close()
	if len(problems) > 0 {
		fmt.Fprintf(c, "bad %s\n", strings.Join(problems, "; "))
		return 1
	}
	// Inside a PID namespace getpid() is the namespace's number (LISTEN_PID
	// matched it above); /proc/self is the host's, as Process.Pid is.
	self, _ := os.Readlink("/proc/self")
	fmt.Fprintf(c, "ok pid=%s names=%s\n", self, os.Getenv("LISTEN_FDNAMES"))
	return 0
}

// newLocal returns a provider on a fresh state dir, its spare shim started.
// Its cleanup kills every process of that state dir, so no test leaves one
// behind.
func newLocal(t testing.TB) (*local.Local, string) {
	return newLocalMode(t, true)
}

// shimModes are the two ways a Launch gets its shim: started for it, or a
// spare started beforehand.
var shimModes = []struct {
	name  string
	spare bool
}{{"fresh", false}, {"spare", true}}

func newLocalMode(t testing.TB, spare bool) (*local.Local, string) {
	t.Helper()
	return newLocalWith(t, local.Options{NoSpareShim: !spare})
}

// newLocalWith returns a provider on a fresh state dir (opts.StateDir is
// set here), its spare shim started unless opts.NoSpareShim.
func newLocalWith(t testing.TB, opts local.Options) (*local.Local, string) {
	t.Helper()
	dir := t.TempDir()
	opts.StateDir = dir
	l, err := local.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if pids, err := l.Sweep(ctx, nil); err != nil {
			t.Errorf("cleanup sweep: %v", err)
		} else if len(pids) > 0 {
			t.Logf("cleanup killed %v", pids)
		}
		l.Close()
	})
	if !opts.NoSpareShim {
		local.WarmSpare(l)
	}
	return l, dir
}

// fence is one of the fences a test runs under.
type fence struct {
	name string
	noNS bool // Options.NoPIDNamespace
}

// fences are the fences this host allows: the namespaced one (if any) and
// the fallback, forced.
func fences(t testing.TB) []fence {
	t.Helper()
	out := []fence{{"subreaper", true}}
	l, err := local.New(local.Options{StateDir: t.TempDir(), NoSpareShim: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if f := l.Fence(); f != local.FenceSubreaper {
		out = append([]fence{{f.String(), false}}, out...)
	} else {
		t.Log("no PID namespaces here: only the fallback fence is tested")
	}
	return out
}

// bothModes runs f once with each kind of shim.
func bothModes(t *testing.T, f func(t *testing.T, spare bool)) {
	for _, m := range shimModes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			f(t, m.spare)
		})
	}
}

func shSpec(script string) provider.Spec {
	return provider.Spec{
		ID:      provider.NewInstanceID(),
		Command: "/bin/sh",
		Args:    []string{"-c", script},
		Env:     []string{"PATH=/usr/local/bin:/usr/bin:/bin"},
	}
}

func launch(t testing.TB, l *local.Local, spec provider.Spec) provider.Process {
	t.Helper()
	p, err := l.Launch(context.Background(), spec)
	if err != nil {
		t.Fatalf("launch: %v", err)
	}
	return p
}

func stop(t testing.TB, l *local.Local, p provider.Process, sig syscall.Signal, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := l.Stop(ctx, p, sig, timeout); err != nil {
		t.Fatalf("stop: %v", err)
	}
}

func waitDone(t testing.TB, p provider.Process) provider.ExitStatus {
	t.Helper()
	select {
	case <-p.Done():
		return p.Exit()
	case <-time.After(30 * time.Second):
		t.Fatalf("instance %s pid %d did not exit", p.ID(), p.Pid())
		return provider.ExitStatus{}
	}
}

// waitContent waits until the file contains want and returns its content.
func waitContent(t testing.TB, path, want string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		if strings.Contains(string(b), want) {
			return string(b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %q does not contain %q", path, b, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// alive reports whether pid is a live process (a zombie is not).
func alive(pid int) bool {
	f := statFields(pid)
	return f != nil && f[0] != "Z" && f[0] != "X"
}

// groupAlive reports whether a live process remains in process group pgid.
func groupAlive(pgid int) bool {
	found := false
	eachProcess(func(pid int, f []string) {
		if f[2] == strconv.Itoa(pgid) && alive(pid) {
			found = true
		}
	})
	return found
}

// statFields are the fields of /proc/PID/stat after the command name, the
// state (field 3) first; nil once the process is gone.
func statFields(pid int) []string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil
	}
	s := string(b)
	return strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
}

// eachProcess calls f with every process and its stat fields.
func eachProcess(f func(pid int, fields []string)) {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			if fs := statFields(pid); fs != nil {
				f(pid, fs)
			}
		}
	}
}

// recordPid is shell that appends the host pid of the shell running it to
// path: inside a PID namespace $$ and $! are the namespace's numbers, but
// /proc is the host's, and `read` is a builtin, so /proc/self is the shell.
func recordPid(path string) string {
	return `{ read -r hostpid _ < /proc/self/stat; echo $hostpid >> ` + path + `; }`
}

func readPid(t testing.TB, path string) int {
	t.Helper()
	s := strings.TrimSpace(waitContent(t, path, "\n"))
	pid, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return pid
}

func TestLaunchLogsAndStop(t *testing.T) {
	t.Parallel()
	bothModes(t, func(t *testing.T, spare bool) {
		l, _ := newLocalMode(t, spare)
		spec := shSpec(`echo hi; echo oops >&2; echo "id=$AUTOHEAL_INSTANCE_ID dir=$(pwd)"; exec sleep 30`)
		spec.Workdir = "/tmp"
		p := launch(t, l, spec)
		if p.Pid() <= 0 || !alive(p.Pid()) {
			t.Fatalf("pid %d not running", p.Pid())
		}
		if p.ID() != spec.ID || p.StartedAt().IsZero() {
			t.Fatalf("id %q started %v", p.ID(), p.StartedAt())
		}
		stdout, stderr := l.LogFiles(spec.ID)
		waitContent(t, stdout, "hi\n")
		waitContent(t, stdout, "id="+spec.ID+" dir=/tmp")
		waitContent(t, stderr, "oops\n")
		if filepath.Dir(stdout) != l.InstanceDir(spec.ID) {
			t.Fatalf("log %s not in %s", stdout, l.InstanceDir(spec.ID))
		}

		stop(t, l, p, syscall.SIGTERM, 10*time.Second)
		select {
		case <-p.Done():
		default:
			t.Fatal("Stop returned before Done")
		}
		if e := p.Exit(); e.Signal != "SIGTERM" || e.Code != -1 || e.Time.IsZero() {
			t.Fatalf("exit %+v, want SIGTERM", e)
		}
		if groupAlive(p.Pid()) {
			t.Fatal("process group still alive after Stop")
		}
		// Idempotent, and logs are kept.
		stop(t, l, p, syscall.SIGTERM, time.Second)
		if _, err := os.Stat(stdout); err != nil {
			t.Fatal(err)
		}
	})
}

func TestStopKillsWhatIgnoresTheSignal(t *testing.T) {
	t.Parallel()
	l, dir := newLocal(t)
	// The ignored disposition is inherited by sleep too.
	mark := filepath.Join(dir, "ready")
	p := launch(t, l, shSpec(`trap "" TERM; echo ready > `+mark+`; sleep 30; sleep 30`))
	waitContent(t, mark, "ready")
	began := time.Now()
	stop(t, l, p, syscall.SIGTERM, 300*time.Millisecond)
	if d := time.Since(began); d < 300*time.Millisecond {
		t.Fatalf("stopped after %s, before the timeout", d)
	}
	if e := p.Exit(); e.Signal != "SIGKILL" {
		t.Fatalf("exit %+v, want SIGKILL", e)
	}
	if groupAlive(p.Pid()) {
		t.Fatal("process group still alive after Stop")
	}
}

func TestStopKillsEscapedDescendant(t *testing.T) {
	t.Parallel()
	l, dir := newLocal(t)
	pidFile := filepath.Join(dir, "escaped.pid")
	// setsid puts the child in a new session and process group: a group
	// kill cannot reach it, only its environment gives it away.
	p := launch(t, l, shSpec(`setsid sh -c '`+recordPid(pidFile)+`; trap "" TERM; exec sleep 60' & sleep 60`))
	escaped := readPid(t, pidFile)
	if !alive(escaped) {
		t.Fatal("escaped child not running")
	}
	stop(t, l, p, syscall.SIGTERM, 5*time.Second)
	if alive(escaped) {
		t.Fatalf("escaped child %d survived Stop", escaped)
	}
}

// TestStopScans: Stop scans /proc (a millisecond or two on every heal)
// only when something of the instance may be left that its shim did not
// kill. With a PID namespace that is never: the shim's exit is the
// namespace's. With the fallback, the shim kills what the application
// left behind before it reports the exit, so only a Run (whose leftovers
// are not the shim's descendants) makes Stop scan.
func TestStopScans(t *testing.T) {
	t.Parallel()
	for _, f := range fences(t) {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			bothModes(t, func(t *testing.T, spare bool) {
				l, dir := newLocalWith(t, local.Options{NoSpareShim: !spare, NoPIDNamespace: f.noNS})
				scans := local.StopScans(l)
				stopExited := func(p provider.Process) {
					t.Helper()
					waitDone(t, p)
					stop(t, l, p, syscall.SIGTERM, 5*time.Second)
				}

				// Children that ended before the application.
				stopExited(launch(t, l, shSpec(`sleep 0.01 & (sleep 0.01 &); sleep 0.2; exit 3`)))
				if got := local.StopScans(l) - scans; got != 0 {
					t.Fatalf("%d scans for an application that left nothing", got)
				}

				// A daemon that outlived the application is killed by
				// the shim before the exit is reported.
				pidFile := filepath.Join(dir, "daemon.pid")
				p := launch(t, l, shSpec(`setsid sh -c '`+recordPid(pidFile)+`; exec sleep 60' & `+waitFile(pidFile)))
				daemon := readPid(t, pidFile)
				waitDone(t, p)
				if alive(daemon) {
					t.Fatalf("daemon %d alive when the exit was reported", daemon)
				}
				stopExited(p)
				if got := local.StopScans(l) - scans; got != 0 {
					t.Fatalf("%d scans, want none: the shim killed the daemon", got)
				}

				// A Run may leave a process the shim cannot see, unless
				// it ran in the instance's namespace.
				spec := shSpec(`exec sleep 60`)
				p = launch(t, l, spec)
				if _, err := l.Run(context.Background(), spec, `true`, 5*time.Second); err != nil {
					t.Fatal(err)
				}
				stop(t, l, p, syscall.SIGKILL, 0)
				want := int64(1)
				if l.Fence() != local.FenceSubreaper {
					want = 0
				}
				if got := local.StopScans(l) - scans; got != want {
					t.Fatalf("%d scans after a Run, want %d with fence %s", got, want, l.Fence())
				}
			})
		})
	}
}

// waitFile is shell that waits until path is not empty: a condition, where
// a script would otherwise sleep and hope. `[` is a builtin: one fork (the
// sleep) a millisecond.
func waitFile(path string) string {
	return `until [ -s ` + path + ` ]; do sleep 0.001; done`
}

// TestShimReapsOrphans: orphans of the application become the shim's
// children; those that exit while the application runs must not pile up
// as zombies.
func TestShimReapsOrphans(t *testing.T) {
	t.Parallel()
	for _, f := range fences(t) {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			l, dir := newLocalWith(t, local.Options{NoPIDNamespace: f.noNS})
			pidFile := filepath.Join(dir, "orphans")
			p := launch(t, l, shSpec(`for i in 1 2 3 4 5; do (sh -c '`+recordPid(pidFile)+`; exec sleep 0.05' &); done; exec sleep 30`))
			shim := ppid(t, p.Pid())
			var orphans []int
			waitFor(t, "five orphans recorded", func() bool {
				b, _ := os.ReadFile(pidFile)
				orphans = orphans[:0]
				for _, f := range strings.Fields(string(b)) {
					n, _ := strconv.Atoi(f)
					orphans = append(orphans, n)
				}
				return len(orphans) == 5
			})
			// Reaped means gone from the process table, not even a zombie:
			// nobody but their parent, the shim, can do that.
			waitFor(t, "orphans reaped", func() bool {
				for _, pid := range orphans {
					if statFields(pid) != nil {
						return false
					}
				}
				return true
			})
			if n := len(childrenOf(shim)); n != 1 {
				t.Fatalf("shim %d has %d children, want only the application", shim, n)
			}
			stop(t, l, p, syscall.SIGTERM, 5*time.Second)
		})
	}
}

// waitFor polls cond until it holds, failing the test after 20 seconds.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// ppid is the parent of pid.
func ppid(t testing.TB, pid int) int {
	t.Helper()
	f := statFields(pid)
	if f == nil {
		t.Fatalf("process %d is gone", pid)
	}
	n, _ := strconv.Atoi(f[1])
	return n
}

// childrenOf lists the pids whose parent is pid, zombies included.
func childrenOf(pid int) []int {
	var out []int
	eachProcess(func(c int, f []string) {
		if f[1] == strconv.Itoa(pid) {
			out = append(out, c)
		}
	})
	return out
}

func TestExitStatus(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, script string
		want         provider.ExitStatus
	}{
		{"code 0", "exit 0", provider.ExitStatus{Code: 0}},
		{"code 3", "exit 3", provider.ExitStatus{Code: 3}},
		{"signal", "kill -KILL $$", provider.ExitStatus{Code: -1, Signal: "SIGKILL"}},
		{"other signal", "kill -USR1 $$", provider.ExitStatus{Code: -1, Signal: "SIGUSR1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l, _ := newLocal(t)
			p := launch(t, l, shSpec(tc.script))
			e := waitDone(t, p)
			if e.Code != tc.want.Code || e.Signal != tc.want.Signal || e.Error != "" || e.Time.IsZero() {
				t.Fatalf("exit %+v, want %+v", e, tc.want)
			}
			stop(t, l, p, syscall.SIGTERM, time.Second)
		})
	}
}

func TestStartErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		spec      func(provider.Spec) provider.Spec
		listeners bool // through the trampoline
		want      string
	}{
		{"missing binary", func(s provider.Spec) provider.Spec { s.Command = "/x/y"; return s }, false, "exec /x/y: no such file or directory"},
		{"missing binary via trampoline", func(s provider.Spec) provider.Spec { s.Command = "/x/y"; return s }, true, "exec /x/y: no such file or directory"},
		{"not executable", func(s provider.Spec) provider.Spec { s.Command = "/etc/passwd"; return s }, false, "exec /etc/passwd: permission denied"},
		{"bad workdir", func(s provider.Spec) provider.Spec { s.Workdir = "/nope"; return s }, false, "chdir /nope: no such file or directory"},
		{"bad workdir via trampoline", func(s provider.Spec) provider.Spec { s.Workdir = "/nope"; return s }, true, "chdir /nope: no such file or directory"},
		{"unknown user", func(s provider.Spec) provider.Spec { s.User = "no-such-user-here"; return s }, false, "user no-such-user-here: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bothModes(t, func(t *testing.T, spare bool) {
				l, dir := newLocalMode(t, spare)
				spec := tc.spec(shSpec("exit 0"))
				if tc.listeners {
					ln, err := net.Listen("tcp", "127.0.0.1:0")
					if err != nil {
						t.Fatal(err)
					}
					defer ln.Close()
					f, _ := ln.(*net.TCPListener).File()
					defer f.Close()
					spec.Listeners = []provider.Listener{{Name: "http", File: f}}
				}
				p := launch(t, l, spec)
				select {
				case <-p.Done():
				default:
					t.Fatal("Launch of a program that cannot start returned a running process")
				}
				e := p.Exit()
				if !strings.HasPrefix(e.Error, tc.want) || e.Code != -1 || p.Pid() != 0 {
					t.Fatalf("exit %+v pid %d, want error %q", e, p.Pid(), tc.want)
				}
				if !strings.Contains(e.String(), tc.want) {
					t.Fatalf("String() = %q", e.String())
				}
				stop(t, l, p, syscall.SIGTERM, time.Second)
				// The adopted view says the same.
				l2, err := local.New(local.Options{StateDir: dir})
				if err != nil {
					t.Fatal(err)
				}
				defer l2.Close()
				a, err := l2.Adopt(context.Background(), spec.ID)
				if err != nil || a.Exit().Error != e.Error {
					t.Fatalf("adopt: %v, %+v", err, a)
				}
			})
		})
	}
}

func TestLogRotation(t *testing.T) {
	t.Parallel()
	l, _ := newLocal(t)
	spec := shSpec(`i=0; while [ $i -lt 3000 ]; do echo line-$i; i=$((i+1)); done`)
	spec.LogMaxSize = 1000
	spec.LogMaxFiles = 2
	p := launch(t, l, spec)
	if e := waitDone(t, p); e.Code != 0 {
		t.Fatalf("exit %+v", e)
	}
	stdout, _ := l.LogFiles(spec.ID)
	for _, name := range []string{stdout, stdout + ".1", stdout + ".2"} {
		fi, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > 1000 {
			t.Fatalf("%s is %d bytes, cap 1000", name, fi.Size())
		}
	}
	if _, err := os.Stat(stdout + ".3"); !os.IsNotExist(err) {
		t.Fatalf("%s.3 kept: %v", stdout, err)
	}
	cur, _ := os.ReadFile(stdout)
	if !strings.HasSuffix(string(cur), "line-2999\n") {
		t.Fatalf("current log ends %q", cur[max(0, len(cur)-30):])
	}
	// Without loss across the cut: .1 ends where the current file begins.
	prev, _ := os.ReadFile(stdout + ".1")
	all := string(prev) + string(cur)
	if !strings.Contains(all, "\nline-2900\nline-2901\n") {
		t.Fatal("rotated files do not join up")
	}
}

func TestAdoptRunningFromAnotherController(t *testing.T) {
	t.Parallel()
	bothModes(t, func(t *testing.T, spare bool) {
		l, dir := newLocalMode(t, spare)
		spec := shSpec(`sleep 60`)
		p := launch(t, l, spec)

		// A second provider on the same state dir is a restarted controller.
		l2, err := local.New(local.Options{StateDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		defer l2.Close()
		a, err := l2.Adopt(context.Background(), spec.ID)
		if err != nil {
			t.Fatal(err)
		}
		if a.Pid() != p.Pid() || !a.StartedAt().Equal(p.StartedAt()) {
			t.Fatalf("adopted pid %d started %v, launched %d %v", a.Pid(), a.StartedAt(), p.Pid(), p.StartedAt())
		}
		select {
		case <-a.Done():
			t.Fatalf("adopted instance done: %+v", a.Exit())
		default:
		}
		// Not our child: exit detection goes through the pidfd.
		syscall.Kill(p.Pid(), syscall.SIGTERM)
		if e := waitDone(t, a); e.Signal != "SIGTERM" {
			t.Fatalf("adopted exit %+v", e)
		}
		if e := waitDone(t, p); e.Signal != "SIGTERM" {
			t.Fatalf("launched exit %+v", e)
		}
		stop(t, l2, a, syscall.SIGTERM, time.Second)

		if _, err := l2.Adopt(context.Background(), provider.NewInstanceID()); !errors.Is(err, provider.ErrNotFound) {
			t.Fatalf("unknown id: %v", err)
		}
		if _, err := l2.Adopt(context.Background(), "../../etc"); !errors.Is(err, provider.ErrNotFound) {
			t.Fatalf("bad id: %v", err)
		}
	})
}

func TestAdoptAfterExitWhileDown(t *testing.T) {
	t.Parallel()
	l, dir := newLocal(t)
	spec := shSpec(`sleep 0.2; exit 7`)
	launch(t, l, spec)
	// The controller goes away without seeing the exit.
	l.Close()
	status := filepath.Join(l.InstanceDir(spec.ID), "status.json")
	waitContent(t, status, `"exited":true`)

	l2, err := local.New(local.Options{StateDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	a, err := l2.Adopt(context.Background(), spec.ID)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-a.Done():
	default:
		t.Fatal("an instance that exited while down is not done")
	}
	if e := a.Exit(); e.Code != 7 || e.Time.IsZero() {
		t.Fatalf("exit %+v, want 7", e)
	}
	stop(t, l2, a, syscall.SIGTERM, time.Second)
}

// tamper rewrites fields of an instance's status.json.
func tamper(t *testing.T, path string, set map[string]any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for k, v := range set {
		m[k] = v
	}
	b, _ = json.Marshal(m)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestAdoptRejectsReusedPid(t *testing.T) {
	t.Parallel()
	ownStart := func() uint64 {
		b, _ := os.ReadFile("/proc/self/stat")
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		n, _ := strconv.ParseUint(f[19], 10, 64)
		return n
	}
	for _, tc := range []struct {
		name string
		set  func(st map[string]any) map[string]any
	}{
		{"start times differ", func(st map[string]any) map[string]any {
			return map[string]any{"shim_start": st["shim_start"].(float64) + 1, "pid_start": st["pid_start"].(float64) + 1}
		}},
		// The recorded pids now belong to a live process with the right
		// start time but not the instance's environment (this test).
		{"pid is another live process", func(map[string]any) map[string]any {
			return map[string]any{"shim_pid": os.Getpid(), "shim_start": ownStart(), "pid": os.Getpid(), "pid_start": ownStart()}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bothModes(t, func(t *testing.T, spare bool) {
				l, dir := newLocalMode(t, spare)
				spec := shSpec(`sleep 60`)
				p := launch(t, l, spec)
				l.Close() // only the tampered record speaks now

				path := filepath.Join(l.InstanceDir(spec.ID), "status.json")
				b, _ := os.ReadFile(path)
				var st map[string]any
				json.Unmarshal(b, &st)
				tamper(t, path, tc.set(st))

				l2, err := local.New(local.Options{StateDir: dir})
				if err != nil {
					t.Fatal(err)
				}
				defer l2.Close()
				a, err := l2.Adopt(context.Background(), spec.ID)
				if err == nil {
					select {
					case <-a.Done():
						if a.Exit().Error == "" {
							t.Fatalf("adopted as exited normally: %+v", a.Exit())
						}
					default:
						t.Fatalf("adopted pid %d through a reused pid", a.Pid())
					}
				}
				// Neither the real instance nor this process was killed.
				if !alive(p.Pid()) {
					t.Fatal("the real application was killed on a mismatched record")
				}
				// Sweep recovers: the instance is not kept.
				pids, err := l2.Sweep(context.Background(), nil)
				if err != nil || len(pids) < 2 {
					t.Fatalf("sweep %v %v", pids, err)
				}
				if alive(p.Pid()) {
					t.Fatal("sweep left the application")
				}
			})
		})
	}
}

func TestListenerPassing(t *testing.T) {
	t.Parallel()
	bothModes(t, func(t *testing.T, spare bool) {
		l, _ := newLocalMode(t, spare)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		f, err := ln.(*net.TCPListener).File()
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		self, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		spec := provider.Spec{
			ID:        provider.NewInstanceID(),
			Command:   self,
			Args:      []string{helperArg, "listen"},
			Listeners: []provider.Listener{{Name: "http", File: f}},
			// The controller's own socket activation must not leak through.
			Env: []string{"LISTEN_FDS=7", "LISTEN_PID=1", "GORACE=atexit_sleep_ms=0"},
		}
		p := launch(t, l, spec)
		c, err := net.DialTimeout("tcp", ln.Addr().String(), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			t.Fatalf("read: %v (stderr: %s)", err, readLog(l, spec.ID))
		}
		if want := fmt.Sprintf("ok pid=%d names=http\n", p.Pid()); line != want {
			t.Fatalf("app said %q, want %q", line, want)
		}
		if e := waitDone(t, p); e.Code != 0 {
			t.Fatalf("exit %+v", e)
		}
		stop(t, l, p, syscall.SIGTERM, time.Second)
	})
}

func readLog(l *local.Local, id string) string {
	_, stderr := l.LogFiles(id)
	b, _ := os.ReadFile(stderr)
	return string(b)
}

// tryLock attempts the flock the instance should hold.
func tryLock(t *testing.T, path string) error {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
}

func TestVolumeLock(t *testing.T) {
	t.Parallel()
	l, dir := newLocal(t)
	lock := provider.Lock{Path: filepath.Join(dir, "vol.lock"), TokenFile: filepath.Join(dir, "vol.token"), Token: 5}
	spec := shSpec(`exec sleep 60`)
	spec.Locks = []provider.Lock{lock}
	p := launch(t, l, spec)
	if err := tryLock(t, lock.Path); !errors.Is(err, unix.EWOULDBLOCK) {
		t.Fatalf("second flock while the instance runs: %v", err)
	}
	if b, _ := os.ReadFile(lock.TokenFile); strings.TrimSpace(string(b)) != "5" {
		t.Fatalf("token file %q", b)
	}
	// A second instance on the same volume is refused.
	other := shSpec(`exec sleep 60`)
	other.Locks = []provider.Lock{{Path: lock.Path, TokenFile: lock.TokenFile, Token: 6}}
	q := launch(t, l, other)
	if e := q.Exit(); !strings.Contains(e.Error, "volume lock "+lock.Path+" held by another process") {
		t.Fatalf("second instance: %+v", e)
	}
	stop(t, l, p, syscall.SIGTERM, 5*time.Second)
	if err := tryLock(t, lock.Path); err != nil {
		t.Fatalf("flock after Stop: %v", err)
	}
}

func TestStaleTokenRefused(t *testing.T) {
	t.Parallel()
	l, dir := newLocal(t)
	lock := provider.Lock{Path: filepath.Join(dir, "vol.lock"), TokenFile: filepath.Join(dir, "vol.token"), Token: 5}
	if err := os.WriteFile(lock.TokenFile, []byte("9\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ran := filepath.Join(dir, "ran")
	spec := shSpec(`touch ` + ran)
	spec.Locks = []provider.Lock{lock}
	p := launch(t, l, spec)
	if e := waitDone(t, p); !strings.Contains(e.Error, "is stale") {
		t.Fatalf("exit %+v", e)
	}
	if _, err := os.Stat(ran); !os.IsNotExist(err) {
		t.Fatal("the application ran with a stale token")
	}
	if b, _ := os.ReadFile(lock.TokenFile); string(b) != "9\n" {
		t.Fatalf("token file rewritten: %q", b)
	}
	if err := tryLock(t, lock.Path); err != nil {
		t.Fatalf("lock kept after refusal: %v", err)
	}
}

// canUnshare reports whether this process may create mount namespaces.
func canUnshare(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("bind mounts need root")
	}
	cmd := exec.Command("/bin/true")
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	if err := cmd.Run(); err != nil {
		t.Skipf("cannot create a mount namespace here: %v", err)
	}
}

func TestBindMountPrivate(t *testing.T) {
	t.Parallel()
	bothModes(t, func(t *testing.T, spare bool) {
		canUnshare(t)
		l, dir := newLocalMode(t, spare)
		src := filepath.Join(dir, "volume")
		os.MkdirAll(src, 0o755)
		os.WriteFile(filepath.Join(src, "marker"), []byte("from the volume\n"), 0o644)
		target := filepath.Join(dir, "mnt", "data") // created by the shim
		spec := shSpec(`cat marker; grep -c " ` + target + ` " /proc/self/mountinfo; exec sleep 60`)
		spec.Mounts = []provider.Mount{{Source: src, Target: target}}
		spec.Workdir = target // entered after the mounts
		p := launch(t, l, spec)
		stdout, _ := l.LogFiles(spec.ID)
		waitContent(t, stdout, "from the volume\n1\n")
		host, _ := os.ReadFile("/proc/self/mountinfo")
		if strings.Contains(string(host), " "+target+" ") {
			t.Fatal("instance mount visible in the host mount table")
		}
		// Run sees the same mounts, through the trampoline.
		res, err := l.Run(context.Background(), spec, `cat `+target+`/marker; pwd`, 10*time.Second)
		if err != nil || res.ExitCode != 0 || res.Output != "from the volume\n"+target+"\n" {
			t.Fatalf("run: %v %+v", err, res)
		}
		host, _ = os.ReadFile("/proc/self/mountinfo")
		if strings.Contains(string(host), " "+target+" ") {
			t.Fatal("run's mount visible in the host mount table")
		}
		stop(t, l, p, syscall.SIGTERM, 5*time.Second)
	})
}

func TestUser(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("switching user needs root")
	}
	l, _ := newLocal(t)
	spec := shSpec(`id -u; id -g`)
	spec.User = "65534:65534"
	p := launch(t, l, spec)
	if e := waitDone(t, p); e.Code != 0 {
		t.Fatalf("exit %+v: %s", e, readLog(l, spec.ID))
	}
	stdout, _ := l.LogFiles(spec.ID)
	waitContent(t, stdout, "65534\n65534\n")
	res, err := l.Run(context.Background(), spec, `id -u`, 10*time.Second)
	if err != nil || res.Output != "65534\n" {
		t.Fatalf("run: %v %+v", err, res)
	}

	// Through the trampoline, which switches user itself.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	f, _ := ln.(*net.TCPListener).File()
	defer f.Close()
	spec2 := shSpec(`read -r host _ < /proc/self/stat; echo "fds=$LISTEN_FDS pid=$LISTEN_PID self=$$ host=$host uid=$(id -u)"`)
	spec2.User = "nobody"
	spec2.Listeners = []provider.Listener{{Name: "web", File: f}}
	q := launch(t, l, spec2)
	if e := waitDone(t, q); e.Code != 0 {
		t.Fatalf("exit %+v: %s", e, readLog(l, spec2.ID))
	}
	stdout2, _ := l.LogFiles(spec2.ID)
	// LISTEN_PID is the pid the application sees; Pid is the host's.
	out := waitContent(t, stdout2, "uid=65534\n")
	var lpid, self, host int
	if _, err := fmt.Sscanf(out, "fds=1 pid=%d self=%d host=%d uid=65534\n", &lpid, &self, &host); err != nil || lpid != self || host != q.Pid() {
		t.Fatalf("app said %q (%v), want LISTEN_PID = $$ and host pid %d", out, err, q.Pid())
	}
}

func TestRun(t *testing.T) {
	t.Parallel()
	l, dir := newLocal(t)
	spec := shSpec("")
	spec.Env = append(spec.Env, "GREETING=hello there")
	spec.Workdir = dir
	res, err := l.Run(context.Background(), spec, `echo "$GREETING"; echo err >&2; echo "$AUTOHEAL_INSTANCE_ID"; pwd; exit 4`, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	want := "hello there\nerr\n" + spec.ID + "\n" + dir + "\n"
	if res.ExitCode != 4 || res.TimedOut || res.Output != want || res.Duration <= 0 {
		t.Fatalf("result %+v, want exit 4 and %q", res, want)
	}

	t.Run("output keeps the tail", func(t *testing.T) {
		res, err := l.Run(context.Background(), spec, `head -c 200000 /dev/zero | tr '\0' a; echo END`, 10*time.Second)
		if err != nil || len(res.Output) != local.RunOutputMax || !strings.HasSuffix(res.Output, "aaaEND\n") {
			t.Fatalf("%v: %d bytes ending %q", err, len(res.Output), res.Output[max(0, len(res.Output)-10):])
		}
	})
	t.Run("bad workdir is an error", func(t *testing.T) {
		s := spec
		s.Workdir = "/nope"
		if _, err := l.Run(context.Background(), s, `true`, time.Second); err == nil || !strings.Contains(err.Error(), "chdir /nope: no such file or directory") {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("timeout kills the group", func(t *testing.T) {
		pidFile := filepath.Join(dir, "bg.pid")
		began := time.Now()
		res, err := l.Run(context.Background(), spec, `sh -c '`+recordPid(pidFile)+`; exec sleep 60' & `+waitFile(pidFile)+`; echo started; wait`, time.Second)
		if err != nil || !res.TimedOut || res.ExitCode != -1 || res.Output != "started\n" {
			t.Fatalf("%v %+v", err, res)
		}
		if time.Since(began) > 10*time.Second {
			t.Fatal("timeout not enforced")
		}
		if bg := readPid(t, pidFile); alive(bg) {
			t.Fatalf("background child %d survived the timeout", bg)
		}
	})
	t.Run("leftovers are killed", func(t *testing.T) {
		pidFile := filepath.Join(dir, "left.pid")
		res, err := l.Run(context.Background(), spec, `sh -c '`+recordPid(pidFile)+`; exec sleep 60' >/dev/null 2>&1 & `+waitFile(pidFile), 10*time.Second)
		if err != nil || res.ExitCode != 0 {
			t.Fatalf("%v %+v", err, res)
		}
		if bg := readPid(t, pidFile); alive(bg) {
			t.Fatalf("background child %d outlived the script", bg)
		}
	})
	t.Run("context", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		if _, err := l.Run(ctx, spec, `sleep 60`, 0); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err %v", err)
		}
	})
}

func TestSweep(t *testing.T) {
	t.Parallel()
	l, dir := newLocal(t)
	start := func(stateDir, id string) *exec.Cmd {
		cmd := exec.Command("/bin/sleep", "60")
		cmd.Env = []string{local.EnvStateDir + "=" + stateDir, local.EnvInstanceID + "=" + id}
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill() })
		go cmd.Wait() // reap
		return cmd
	}
	orphan := start(dir, provider.NewInstanceID())
	keptID := provider.NewInstanceID()
	kept := start(dir, keptID)
	foreign := start(dir+"-other", provider.NewInstanceID()) // a prefix is not a match
	// A launched instance not in keep goes too, shim and all; one in keep
	// stays, though its shim, started as a spare, does not name it in its
	// environment.
	p := launch(t, l, shSpec(`exec sleep 60`))
	local.WarmSpare(l)
	keptSpec := shSpec(`exec sleep 60`)
	k := launch(t, l, keptSpec)
	local.WarmSpare(l)
	idle := local.SparePid(l)

	pids, err := l.Sweep(context.Background(), []string{keptID, keptSpec.ID})
	if err != nil {
		t.Fatal(err)
	}
	for _, pid := range []int{orphan.Process.Pid, p.Pid()} {
		found := false
		for _, k := range pids {
			found = found || k == pid
		}
		if !found {
			t.Fatalf("sweep killed %v, not %d", pids, pid)
		}
	}
	if alive(orphan.Process.Pid) || alive(p.Pid()) {
		t.Fatal("swept processes alive")
	}
	if !alive(kept.Process.Pid) || !alive(foreign.Process.Pid) || !alive(os.Getpid()) || !alive(k.Pid()) || !alive(idle) {
		t.Fatal("sweep killed what it must keep")
	}
	// Sweep returns once what it killed is gone: the kept shim is alive
	// now or was never touched.
	var kst struct {
		ShimPid int `json:"shim_pid"`
	}
	b, _ := os.ReadFile(filepath.Join(l.InstanceDir(keptSpec.ID), "status.json"))
	json.Unmarshal(b, &kst)
	if kst.ShimPid == 0 || !alive(kst.ShimPid) {
		t.Fatalf("kept instance's shim %d killed", kst.ShimPid)
	}
	waitDone(t, p)
}

func TestLaunchRefusesSecondShim(t *testing.T) {
	t.Parallel()
	l, _ := newLocal(t)
	spec := shSpec(`exec sleep 60`)
	p := launch(t, l, spec)
	if _, err := l.Launch(context.Background(), spec); err == nil || !strings.Contains(err.Error(), "still running") {
		t.Fatalf("second launch of a running instance: %v", err)
	}
	stop(t, l, p, syscall.SIGKILL, 0)
	// Restart in place: same id, same logs.
	spec.Args = []string{"-c", "echo second; exit 0"}
	q := launch(t, l, spec)
	if e := waitDone(t, q); e.Code != 0 {
		t.Fatalf("restart: %+v", e)
	}
}

func TestShimLost(t *testing.T) {
	t.Parallel()
	bothModes(t, func(t *testing.T, spare bool) {
		l, dir := newLocalMode(t, spare)
		spec := shSpec(`exec sleep 60`)
		p := launch(t, l, spec)
		b, _ := os.ReadFile(filepath.Join(l.InstanceDir(spec.ID), "status.json"))
		var st struct {
			ShimPid int `json:"shim_pid"`
		}
		json.Unmarshal(b, &st)
		l.Close()
		syscall.Kill(st.ShimPid, syscall.SIGKILL)

		l2, err := local.New(local.Options{StateDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		defer l2.Close()
		// The shim stays our unreaped child (l was closed): a zombie.
		deadline := time.Now().Add(10 * time.Second)
		for alive(st.ShimPid) && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		a, err := l2.Adopt(context.Background(), spec.ID)
		if err != nil {
			t.Fatal(err)
		}
		if e := waitDone(t, a); e.Error != "shim lost" {
			t.Fatalf("exit %+v", e)
		}
		if alive(p.Pid()) {
			t.Fatal("application of a lost shim still alive")
		}
	})
}

func TestLaunchContextCancelled(t *testing.T) {
	t.Parallel()
	l, _ := newLocal(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.Launch(ctx, shSpec(`exec sleep 60`)); !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v", err)
	}
}

func TestLaunchBadSpec(t *testing.T) {
	t.Parallel()
	l, _ := newLocal(t)
	for _, s := range []provider.Spec{
		{ID: "x", Command: "/bin/true"},
		{ID: provider.NewInstanceID()},
		{ID: provider.NewInstanceID(), Command: "/bin/true", Workdir: "relative"},
	} {
		if _, err := l.Launch(context.Background(), s); err == nil {
			t.Errorf("launch %+v: no error", s)
		}
	}
}

// A descendant that keeps stdout open is killed when the application
// exits, before the exit is reported, and what the application wrote is in
// the log by then.
func TestExitWhileDescendantHoldsPipe(t *testing.T) {
	t.Parallel()
	for _, f := range fences(t) {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			l, dir := newLocalWith(t, local.Options{NoPIDNamespace: f.noNS})
			pidFile := filepath.Join(dir, "bg.pid")
			spec := shSpec(`sh -c '` + recordPid(pidFile) + `; exec sleep 60' & ` + waitFile(pidFile) + `; echo bye; exit 5`)
			p := launch(t, l, spec)
			if e := waitDone(t, p); e.Code != 5 {
				t.Fatalf("exit %+v", e)
			}
			stdout, _ := l.LogFiles(spec.ID)
			if b, _ := os.ReadFile(stdout); string(b) != "bye\n" {
				t.Fatalf("log %q at Done", b)
			}
			if bg := readPid(t, pidFile); alive(bg) {
				t.Fatalf("descendant %d alive when the exit was reported", bg)
			}
			stop(t, l, p, syscall.SIGTERM, time.Second)
		})
	}
}

// Stop works without a watcher (the provider was closed): it finds and
// kills the processes itself and reads the exit from status.json.
func TestStopAfterClose(t *testing.T) {
	t.Parallel()
	l, _ := newLocal(t)
	p := launch(t, l, shSpec(`exec sleep 60`))
	l.Close()
	stop(t, l, p, syscall.SIGTERM, 5*time.Second)
	if alive(p.Pid()) {
		t.Fatal("application alive after Stop")
	}
	select {
	case <-p.Done():
	default:
		t.Fatal("Stop returned nil but Done is open")
	}
	if _, err := l.Launch(context.Background(), shSpec("true")); err == nil {
		t.Fatal("launch on a closed provider")
	}
}

// A spare shim is invisible to scans of the state dir while idle, and once
// assigned carries exactly the identity a shim started for its instance
// has.
func TestSpareShimIdentity(t *testing.T) {
	t.Parallel()
	l, dir := newLocalMode(t, true)
	idle := local.SparePid(l)
	if idle == 0 {
		t.Fatal("no spare shim")
	}
	environ := func(pid int) string {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		return string(b)
	}
	// Until its exec, a forked child shows its parent's environment.
	waitFor := func(cond func() bool) {
		deadline := time.Now().Add(20 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatal("condition not met")
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitFor(func() bool { return strings.Contains(environ(idle), "AUTOHEAL_SPARE_DIR=") })
	if env := environ(idle); strings.Contains(env, local.EnvStateDir+"=") || strings.Contains(env, local.EnvInstanceID+"=") {
		t.Fatalf("idle spare visible: %q", env)
	}
	spec := shSpec(`exec sleep 60`)
	p := launch(t, l, spec)
	var st struct {
		ShimPid int `json:"shim_pid"`
	}
	b, _ := os.ReadFile(filepath.Join(l.InstanceDir(spec.ID), "status.json"))
	json.Unmarshal(b, &st)
	if st.ShimPid != idle {
		t.Fatalf("shim %d, spare was %d", st.ShimPid, idle)
	}
	env := strings.Split(strings.TrimRight(environ(idle), "\x00"), "\x00")
	want := map[string]bool{local.EnvStateDir + "=" + dir: true, local.EnvInstanceID + "=" + spec.ID: true}
	for _, e := range env {
		if strings.HasPrefix(e, "AUTOHEAL_") && !want[e] {
			t.Errorf("unexpected %q", e)
		}
		delete(want, e)
	}
	if len(want) > 0 {
		t.Fatalf("assigned spare lacks %v: %q", want, env)
	}
	stop(t, l, p, syscall.SIGTERM, 5*time.Second)
	if alive(idle) {
		t.Fatal("shim alive after Stop")
	}
}

// TestStopKillsAnOrphanWithoutGroupOrEnvironment: what PostgreSQL's
// children do (setsid, then overwrite their environment with their title)
// leaves neither the application's process group nor the instance's
// environment to find them by once the postmaster is killed. The shim,
// their subreaper and so their parent by then, kills them when the
// application exits: nothing of it is left after Stop.
func TestStopKillsAnOrphanWithoutGroupOrEnvironment(t *testing.T) {
	t.Parallel()
	bothModes(t, func(t *testing.T, spare bool) {
		l, dir := newLocalMode(t, spare)
		pidFile := filepath.Join(dir, "orphan.pid")
		// The application waits until the orphan has dropped its
		// environment, then exits.
		// The orphan records its host pid (/proc is the host's, and the
		// instance may run in a PID namespace of its own).
		p := launch(t, l, shSpec(`setsid sh -c 'read pid _ < /proc/self/stat; echo $pid > `+pidFile+`; exec env -i sleep 60' & `+waitFile(pidFile)+
			`; while tr '\0' '\n' < /proc/$(cat `+pidFile+`)/environ | grep -q .; do sleep 0.01; done`))
		orphan := readPid(t, pidFile)
		waitDone(t, p)
		stop(t, l, p, syscall.SIGTERM, 5*time.Second)
		if alive(orphan) {
			t.Fatalf("orphan %d without group or environment survived Stop", orphan)
		}
	})
}
