//go:build linux

package local_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/autoheal/autoheal/internal/provider"
	"github.com/autoheal/autoheal/internal/provider/local"
	"golang.org/x/sys/unix"
)

// The fence tests launch an application that fights its fence (see
// testdata/hostile): it starts a writer that appends CLOCK_MONOTONIC
// timestamps to a file in the instance's volume, and hides that writer in
// every way a process can. After Stop returns, no process of it may be
// left, and the writer's last write must come before Stop returned.

var hostile struct {
	once sync.Once
	path string
	err  error
}

// hostileBin builds testdata/hostile once, into a directory everyone may
// read, so that an instance running as nobody can execute it.
func hostileBin(t testing.TB) string {
	t.Helper()
	if p := os.Getenv(envHostile); p != "" {
		return p // a test re-run as nobody, which cannot build
	}
	hostile.once.Do(func() {
		dir, err := os.MkdirTemp("", "autoheal-hostile")
		if err != nil {
			hostile.err = err
			return
		}
		os.Chmod(dir, 0o755)
		hostile.path = filepath.Join(dir, "hostile")
		out, err := exec.Command("go", "build", "-o", hostile.path, "./testdata/hostile").CombinedOutput()
		if err != nil {
			hostile.err = errors.New("build testdata/hostile: " + err.Error() + ": " + string(out))
		}
	})
	if hostile.err != nil {
		t.Fatal(hostile.err)
	}
	return hostile.path
}

// bombs serialises the tests that run as nobody with a fork bomb.
var bombs sync.Mutex

// Environment of a test binary re-run as nobody by TestFenceUserNamespace.
const (
	envAsNobody = "AUTOHEAL_TEST_AS_NOBODY"
	envHostile  = "AUTOHEAL_TEST_HOSTILE"
	// Environment of a test binary that is a controller running a script.
	envRunController = "AUTOHEAL_TEST_RUN_CONTROLLER"
	envRunID         = "AUTOHEAL_TEST_RUN_ID"
	envRunScript     = "AUTOHEAL_TEST_RUN_SCRIPT"
)

// hostileVariant is one way of fighting the fence.
type hostileVariant struct {
	name  string
	flags []string
	// nobody: run as nobody, for the fork bomb: RLIMIT_NPROC, its bound,
	// does not bind root.
	nobody bool
}

// reportedBug: each weapon alone was fenced, all together not: the writer
// kept writing into the volume after its replacement was in service.
var reportedBug = hostileVariant{name: "all but the bomb", flags: []string{"-ignore-term", "-double-fork", "-setsid", "-env-clear", "-close-fds"}}

var hostileVariants = []hostileVariant{
	{name: "ignores SIGTERM", flags: []string{"-ignore-term"}},
	{name: "double fork and setsid", flags: []string{"-double-fork", "-setsid"}},
	{name: "cleared environment", flags: []string{"-env-clear"}},
	{name: "closed descriptors", flags: []string{"-close-fds"}},
	{name: "fork bomb", flags: []string{"-bomb", "48"}, nobody: true},
	reportedBug,
	{name: "all", flags: []string{"-ignore-term", "-double-fork", "-setsid", "-env-clear", "-close-fds", "-bomb", "48"}, nobody: true},
}

// hostileRun is one hostile instance and what it records.
type hostileRun struct {
	spec  provider.Spec
	vol   string // the volume directory
	out   string // the writer's timestamps
	pids  string // "<host pid> <start> <tag>" of each process it started
	token string // in the command line of each of its processes
	lock  provider.Lock
	// logPath is the instance's stderr.log, once launched.
	logPath string
}

func newHostile(t *testing.T, v hostileVariant, extra ...string) *hostileRun {
	t.Helper()
	if v.nobody && os.Geteuid() != 0 {
		t.Skip("running as nobody needs root")
	}
	// Not under t.TempDir, whose parent only root may enter: nobody
	// writes here.
	vol, err := os.MkdirTemp("", "autoheal-hostile-vol")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(vol) })
	os.Chmod(vol, 0o777)
	h := &hostileRun{
		vol:   vol,
		out:   filepath.Join(vol, "writes"),
		pids:  filepath.Join(vol, "pids"),
		token: "hostile-" + provider.NewInstanceID(),
	}
	h.lock = provider.Lock{Path: filepath.Join(vol, "lock"), TokenFile: filepath.Join(vol, "token"), Token: 1}
	args := append([]string{"app", "-out", h.out, "-pids", h.pids, "-token", h.token}, v.flags...)
	h.spec = provider.Spec{
		ID:      provider.NewInstanceID(),
		Command: hostileBin(t),
		Args:    append(args, extra...),
		Env:     []string{"PATH=/usr/bin:/bin"},
		Locks:   []provider.Lock{h.lock},
	}
	if v.nobody {
		h.spec.User = "nobody"
	}
	// Whatever happens to the fence, nothing is left on the machine.
	t.Cleanup(func() {
		for range 100 {
			pids := tokenProcs(h.token)
			if len(pids) == 0 {
				return
			}
			for _, pid := range pids {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		t.Errorf("cleanup: processes of %s keep appearing", h.token)
	})
	return h
}

func isDone(p provider.Process) bool {
	select {
	case <-p.Done():
		return true
	default:
		return false
	}
}

// log is the instance's stderr, for failures.
func (h *hostileRun) log() string {
	b, _ := os.ReadFile(h.logPath)
	return string(b)
}

// running waits until the writer has written a few lines, and for the
// bomb until it has a few processes.
func (h *hostileRun) running(t *testing.T, p provider.Process, bomb bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for len(stamps(t, h.out)) < 20 {
		if time.Now().After(deadline) || isDone(p) {
			b, _ := os.ReadFile(h.pids)
			w, _ := os.ReadFile(h.out)
			t.Fatalf("the writer did not write: pids %q, %d bytes written; instance log %s", b, len(w), h.log())
		}
		time.Sleep(2 * time.Millisecond)
	}
	if bomb {
		waitFor(t, "the fork bomb", func() bool { return len(tokenProcs(h.token)) >= 10 })
	}
}

// checkFenced fails unless nothing of the instance is alive and its last
// write came before stopped (CLOCK_MONOTONIC), and the volume is free.
func (h *hostileRun) checkFenced(t *testing.T, stopped int64) {
	t.Helper()
	for _, r := range recorded(t, h.pids) {
		if f := statFields(r.pid); f != nil && f[0] != "Z" && f[0] != "X" && f[19] == r.start {
			t.Errorf("process %d (started %s) of the instance alive after Stop", r.pid, r.start)
		}
	}
	if left := tokenProcs(h.token); len(left) > 0 {
		t.Errorf("%d processes of the instance alive after Stop: %v", len(left), left[:min(len(left), 10)])
	}
	ts := stamps(t, h.out)
	if len(ts) == 0 {
		t.Fatal("the writer never wrote")
	}
	if last := ts[len(ts)-1]; last >= stopped {
		t.Errorf("the writer wrote %v after Stop returned", time.Duration(last-stopped))
	}
	if _, err := os.Stat(h.lock.Path); err == nil {
		if err := tryLock(t, h.lock.Path); err != nil {
			t.Errorf("volume lock after Stop: %v", err)
		}
	}
}

// TestFenceHostile: every variant, under each fence, stopped by the
// provider that launched it (terminate) or by a new one after the first
// was abandoned without stopping it (a controller killed in the middle):
// after Stop, nothing of the instance is left and its writer wrote nothing
// after Stop returned.
func TestFenceHostile(t *testing.T) {
	t.Parallel()
	for _, f := range fences(t) {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			for _, v := range hostileVariants {
				for _, end := range []string{"terminate", "controller killed"} {
					t.Run(v.name+"/"+end, func(t *testing.T) {
						// Bombs one at a time: they share nobody's process
						// limit and the machine's two CPUs.
						t.Parallel()
						if v.nobody {
							bombs.Lock()
							// After the cleanup that kills what is left.
							t.Cleanup(bombs.Unlock)
						}
						testHostile(t, f, v, end == "controller killed")
					})
				}
			}
		})
	}
}

func testHostile(t *testing.T, f fence, v hostileVariant, abandon bool) {
	l, dir := newLocalWith(t, local.Options{NoPIDNamespace: f.noNS})
	h := newHostile(t, v)
	p := launch(t, l, h.spec)
	_, h.logPath = l.LogFiles(h.spec.ID)
	h.running(t, p, slices.Contains(v.flags, "-bomb"))
	if abandon {
		l.Close()
		l2, err := local.New(local.Options{StateDir: dir, NoPIDNamespace: f.noNS})
		if err != nil {
			t.Fatal(err)
		}
		defer l2.Close()
		if p, err = l2.Adopt(context.Background(), h.spec.ID); err != nil {
			t.Fatal(err)
		}
		l = l2
	}
	stop(t, l, p, syscall.SIGTERM, 100*time.Millisecond)
	h.checkFenced(t, monotonic())
}

// TestFenceShimKilled: an application that SIGKILLs its shim. In a PID
// namespace it cannot (the shim is the namespace's init, which ignores
// SIGKILL from inside). With the fallback it can, and then a writer that
// left the process group and cleared its environment escapes the fence:
// the limit the README states. The test pins both.
func TestFenceShimKilled(t *testing.T) {
	t.Parallel()
	for _, f := range fences(t) {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			l, _ := newLocalWith(t, local.Options{NoPIDNamespace: f.noNS})
			h := newHostile(t, hostileVariant{flags: []string{"-double-fork", "-setsid", "-env-clear", "-close-fds"}}, "-kill-parent")
			p := launch(t, l, h.spec)
			// The shim dies once the writer wrote: Done may come first.
			waitFor(t, "the writer writing", func() bool { return len(stamps(t, h.out)) >= 20 })
			waitContent(t, h.out+".killed-parent", "\n")
			stop(t, l, p, syscall.SIGTERM, 100*time.Millisecond)
			stopped := monotonic()
			if !f.noNS {
				if e := p.Exit(); e.Error == "shim lost" {
					t.Fatalf("the application killed its namespace's init: %+v", e)
				}
				h.checkFenced(t, stopped)
				return
			}
			if e := p.Exit(); e.Error != "shim lost" {
				t.Fatalf("exit %+v, want the shim lost", e)
			}
			left := 0
			for _, r := range recorded(t, h.pids) {
				if f := statFields(r.pid); f != nil && f[0] != "Z" && f[19] == r.start {
					left++
				}
			}
			if left == 0 {
				t.Fatal("the fallback fenced an application that killed its shim: update the README's statement of its limits")
			}
			t.Logf("as documented, %d process(es) escaped the fallback fence once the shim was killed", left)
		})
	}
}

// TestFenceRunLeftovers: what a script run for an instance leaves behind
// (setsid, cleared environment, closed descriptors) dies with the
// instance when its namespace is alive, and when the script ends
// otherwise.
func TestFenceRunLeftovers(t *testing.T) {
	t.Parallel()
	l, _ := newLocal(t)
	if l.Fence() == local.FenceSubreaper {
		t.Skip("no PID namespaces here")
	}
	h := newHostile(t, hostileVariant{})
	leave := `setsid env -i ` + hostileBin(t) + ` writer -close-fds -out ` + h.out + ` -pids ` + h.pids + ` -token ` + h.token +
		` & ` + waitFile(h.pids) + `; ` + waitFile(h.out)
	// No instance running: the script's own namespace ends with it.
	res, err := l.Run(context.Background(), h.spec, leave, 10*time.Second)
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("run: %v %+v", err, res)
	}
	h.checkFenced(t, monotonic())

	// Inside the running instance's namespace, it dies with the instance.
	spec := shSpec(`exec sleep 60`)
	spec.ID = h.spec.ID
	p := launch(t, l, spec)
	os.Remove(h.pids)
	res, err = l.Run(context.Background(), h.spec, leave, 10*time.Second)
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("run: %v %+v", err, res)
	}
	w := recorded(t, h.pids)[0]
	if f := statFields(w.pid); f == nil || f[0] == "Z" {
		t.Fatal("the script's leftover died with the script, not with the instance")
	}
	if !inNamespaceOf(w.pid, p.Pid()) {
		t.Fatalf("leftover %d is not in the instance's PID namespace", w.pid)
	}
	stop(t, l, p, syscall.SIGKILL, 0)
	h.checkFenced(t, monotonic())
}

// TestFenceUserNamespace: a controller that is not root fences each
// instance with a user and PID namespace of its own, where the kernel lets
// unprivileged users create them. The test binary runs itself again as
// nobody for that.
func TestFenceUserNamespace(t *testing.T) {
	if os.Getenv(envAsNobody) != "" {
		testUserNamespace(t)
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("runs itself as nobody, which needs root")
	}
	t.Parallel()
	bin := hostileBin(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// A copy nobody may execute, beside the hostile binary.
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	copyPath := filepath.Join(filepath.Dir(bin), "local.test")
	if err := os.WriteFile(copyPath, b, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(copyPath, "-test.run=^TestFenceUserNamespace$", "-test.v", "-test.count=1")
	cmd.Dir = "/"
	cmd.Env = append(os.Environ(), envAsNobody+"=1", envHostile+"="+bin)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if bytes.Contains(out, []byte("--- SKIP")) {
		t.Skipf("as nobody:\n%s", out)
	}
	if err != nil {
		t.Fatalf("as nobody: %v\n%s", err, out)
	}
	t.Logf("as nobody:\n%s", out)
}

// testUserNamespace is TestFenceUserNamespace as nobody.
func testUserNamespace(t *testing.T) {
	for _, end := range []string{"terminate", "controller killed"} {
		t.Run(end, func(t *testing.T) {
			l, _ := newLocalWith(t, local.Options{})
			if f := l.Fence(); f != local.FenceUserNamespace {
				t.Skipf("fence %s: this kernel does not let unprivileged users create namespaces", f)
			}
			testHostile(t, fence{name: "user+pid-namespace"}, reportedBug, end == "controller killed")
		})
	}
	// A script's leftovers die with the script.
	l, _ := newLocalWith(t, local.Options{})
	h := newHostile(t, hostileVariant{})
	res, err := l.Run(context.Background(), h.spec, `setsid env -i `+hostileBin(t)+` writer -close-fds -out `+h.out+` -pids `+h.pids+` -token `+h.token+
		` & `+waitFile(h.pids)+`; `+waitFile(h.out), 10*time.Second)
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("run: %v %+v", err, res)
	}
	h.checkFenced(t, monotonic())
}

// TestFenceRunControllerKilled: a controller SIGKILLed while a script it
// runs for an instance (no instance running: the script is PID 1 of a
// namespace of its own) has left a hidden writer behind: the kernel kills
// the script (its parent-death signal), and its namespace with it.
func TestFenceRunControllerKilled(t *testing.T) {
	if dir := os.Getenv(envRunController); dir != "" {
		// The controller: run the script, which never ends.
		l, err := local.New(local.Options{StateDir: dir, NoSpareShim: true})
		if err != nil {
			t.Fatal(err)
		}
		spec := provider.Spec{ID: os.Getenv(envRunID), Env: []string{"PATH=/usr/bin:/bin"}}
		res, err := l.Run(context.Background(), spec, os.Getenv(envRunScript), 0)
		t.Fatalf("the script ended: %v %+v", err, res)
	}
	t.Parallel()
	l, dir := newLocal(t)
	if l.Fence() == local.FenceSubreaper {
		t.Skip("no PID namespaces here")
	}
	h := newHostile(t, hostileVariant{})
	script := `setsid env -i ` + hostileBin(t) + ` writer -close-fds -out ` + h.out + ` -pids ` + h.pids + ` -token ` + h.token +
		` & ` + waitFile(h.pids) + `; exec sleep 600`
	cmd := exec.Command(os.Args[0], "-test.run=^TestFenceRunControllerKilled$")
	cmd.Env = append(os.Environ(), envRunController+"="+dir, envRunID+"="+h.spec.ID, envRunScript+"="+script)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	waitFor(t, "the script's writer writing", func() bool { return len(stamps(t, h.out)) >= 20 || cmd.ProcessState != nil })
	cmd.Process.Kill()
	cmd.Wait()
	killed := monotonic()
	// The kernel acts on the controller's death at once, but not before
	// Kill returns: wait for it.
	waitFor(t, "the script's processes to die", func() bool { return len(tokenProcs(h.token)) == 0 })
	ts := stamps(t, h.out)
	if len(ts) < 20 {
		t.Fatalf("the writer did not write; controller said:\n%s", out.String())
	}
	for _, r := range recorded(t, h.pids) {
		if f := statFields(r.pid); f != nil && f[0] != "Z" && f[19] == r.start {
			t.Fatalf("the script's writer %d outlived the controller", r.pid)
		}
	}
	t.Logf("last write %v after the controller was killed", time.Duration(ts[len(ts)-1]-killed))
}

// inNamespaceOf reports whether a and b are in the same PID namespace.
func inNamespaceOf(a, b int) bool {
	na, err1 := os.Readlink("/proc/" + strconv.Itoa(a) + "/ns/pid")
	nb, err2 := os.Readlink("/proc/" + strconv.Itoa(b) + "/ns/pid")
	return err1 == nil && err2 == nil && na == nb
}

// monotonic is CLOCK_MONOTONIC in nanoseconds, the writer's clock.
func monotonic() int64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}

// stamps are the complete lines' timestamps in the writer's file.
func stamps(t testing.TB, path string) []int64 {
	t.Helper()
	b, _ := os.ReadFile(path)
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		b = b[:i+1]
	} else {
		return nil
	}
	var out []int64
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			t.Fatalf("%s: bad line %q", path, sc.Text())
		}
		out = append(out, n)
	}
	return out
}

type procRecord struct {
	pid   int
	start string
}

// recorded reads the pids file: "<host pid> <start time> <tag>" per line.
func recorded(t testing.TB, path string) []procRecord {
	t.Helper()
	b, _ := os.ReadFile(path)
	var out []procRecord
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		pid, err := strconv.Atoi(f[0])
		if err != nil {
			t.Fatalf("%s: bad line %q", path, line)
		}
		out = append(out, procRecord{pid, f[1]})
	}
	return out
}

// tokenProcs lists the live processes whose command line holds token.
func tokenProcs(token string) []int {
	var out []int
	eachProcess(func(pid int, f []string) {
		if f[0] == "Z" || f[0] == "X" || pid == os.Getpid() {
			return
		}
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
		if err == nil && bytes.Contains(b, []byte(token)) {
			out = append(out, pid)
		}
	})
	return out
}
