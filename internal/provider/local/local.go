//go:build linux

package local

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/autoheal/autoheal/internal/provider"
)

// Bounds on waits that depend on another process behaving.
const (
	// launchTimeout bounds the shim's answer to Launch (lock, token,
	// mounts, exec: normally a few milliseconds).
	launchTimeout = time.Minute
	// killTimeout bounds waiting for processes that were sent SIGKILL;
	// only a process stuck in the kernel (D state) takes longer.
	killTimeout = 30 * time.Second
)

// Local runs instances as process trees on this host, each under its own
// shim process. Instances outlive the Local and the controller process;
// a later Local adopts them.
type Local struct {
	stateDir string
	exe      string
	log      *slog.Logger
	hostNS   string      // our mount namespace, which the shim must not mount in
	noUns    atomic.Bool // unshare(CLONE_NEWNS) was refused: mounts are ignored
	fence    Fence       // how shims keep every process of their instance
	deadline string      // Options.Deadline

	noSpare atomic.Bool // spares disabled, by option or because they cannot work here

	mu      sync.Mutex
	closed  bool
	watches map[*pidFD]*os.File // pidfd -> hello pipe (or nil) being followed
	// mustScan names the instances whose processes Stop finds only by
	// scanning /proc, whatever their shim reports: adopted ones (a
	// previous controller may have left a Run behind) and, under the
	// fallback fence, those a Run ran for (a script's setsid'd leftovers
	// are not the shim's).
	mustScan map[string]bool
	// namespaces are the processes whose shim is PID 1 of their
	// instance's namespace, followed by a watcher, by instance id: Run
	// starts scripts inside them until their application has exited.
	namespaces map[string]*process
	scans      atomic.Int64 // /proc scans by Stop, for tests
	spare      *spare       // started, waiting for an instance
	refilling  bool         // the next spare is on its way
	// refillTimer starts it; Close stops it.
	refillTimer *time.Timer
	wg          sync.WaitGroup
}

var _ provider.Provider = (*Local)(nil)

// New returns the provider for opts.StateDir, creating <StateDir>/instances.
func New(opts Options) (*Local, error) {
	if opts.StateDir == "" {
		return nil, errors.New("local provider: state dir is required")
	}
	dir, err := filepath.Abs(opts.StateDir)
	if err != nil {
		return nil, fmt.Errorf("local provider: state dir: %w", err)
	}
	exe := opts.Exe
	if exe == "" {
		if exe, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("local provider: find own binary: %w", err)
		}
	}
	if exe, err = filepath.Abs(exe); err != nil {
		return nil, fmt.Errorf("local provider: binary: %w", err)
	}
	if _, err := os.Stat(exe); err != nil {
		return nil, fmt.Errorf("local provider: binary: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "instances"), 0o750); err != nil {
		return nil, fmt.Errorf("local provider: %w", err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l := &Local{
		stateDir:   dir,
		exe:        exe,
		log:        log,
		hostNS:     threadMountNS(),
		deadline:   opts.Deadline,
		watches:    map[*pidFD]*os.File{},
		mustScan:   map[string]bool{},
		namespaces: map[string]*process{},
	}
	l.noSpare.Store(opts.NoSpareShim)
	if !opts.NoPIDNamespace {
		l.fence = probeFence()
	}
	if l.fence == FenceSubreaper && !opts.NoPIDNamespace {
		log.Warn("cannot create PID namespaces here; instances are fenced by their shim as subreaper only (a process that kills its shim can escape the fence)")
	}
	if os.Geteuid() == 0 && !canUnshareMountNS() {
		l.noUns.Store(true)
		log.Warn("cannot create mount namespaces; volume mounts are ignored, volumes are reachable through AUTOHEAL_VOLUME_* only")
	}
	return l, nil
}

// Fence is the mechanism in force for the instances this provider
// launches.
func (l *Local) Fence() Fence { return l.fence }

// InstanceDir is <StateDir>/instances/<id>: spec.json, status.json, shim.log
// and the application's logs.
func (l *Local) InstanceDir(id string) string {
	return filepath.Join(l.stateDir, "instances", id)
}

// LogFiles returns the current stdout and stderr log paths of an instance.
// Rotated files are the same paths with .1, .2, ... appended, .1 newest.
func (l *Local) LogFiles(id string) (stdout, stderr string) {
	dir := l.InstanceDir(id)
	return filepath.Join(dir, stdoutLog), filepath.Join(dir, stderrLog)
}

// Close stops following instances (their Done channels no longer close) and
// waits for the goroutines that did. The instances keep running.
func (l *Local) Close() error {
	l.mu.Lock()
	l.closed = true
	for fd, hello := range l.watches {
		fd.Close()
		if hello != nil {
			hello.Close()
		}
	}
	l.watches = nil
	sp := l.spare
	l.spare = nil
	if l.refillTimer != nil && l.refillTimer.Stop() {
		l.wg.Done() // its function will not run
	}
	l.mu.Unlock()
	if sp != nil {
		sp.kill()
	}
	l.wg.Wait()
	return nil
}

var errClosed = errors.New("local provider is closed")

func (l *Local) isClosed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}

// environ is the application's environment: the spec's, with the identity
// variables set to this provider's and systemd's LISTEN_* variables
// removed (they describe the controller's own sockets, if it was socket
// activated; the trampoline sets the instance's).
func (l *Local) environ(spec provider.Spec) []string {
	env := make([]string, 0, len(spec.Env)+2)
	for _, e := range spec.Env {
		k, _, _ := strings.Cut(e, "=")
		switch k {
		case EnvStateDir, EnvInstanceID, "LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES":
			continue
		}
		env = append(env, e)
	}
	return append(env, EnvStateDir+"="+l.stateDir, EnvInstanceID+"="+spec.ID)
}

// useMounts reports whether mounts can be made: as root, unless the kernel
// already refused us a mount namespace.
func (l *Local) useMounts(mounts []provider.Mount) bool {
	return len(mounts) > 0 && os.Geteuid() == 0 && !l.noUns.Load()
}

func checkSpec(spec provider.Spec) error {
	if !provider.ValidInstanceID(spec.ID) {
		return fmt.Errorf("invalid instance id %q", spec.ID)
	}
	if spec.Command == "" {
		return errors.New("no command")
	}
	if spec.Workdir != "" && !filepath.IsAbs(spec.Workdir) {
		return fmt.Errorf("workdir %q is not absolute", spec.Workdir)
	}
	for _, ln := range spec.Listeners {
		if ln.File == nil {
			return fmt.Errorf("listener %q has no file", ln.Name)
		}
	}
	return nil
}

// Launch starts the instance's shim, which starts the application, and
// returns once the application runs. A failure to start inside the
// instance (volume lock held, stale fencing token, missing binary, bad
// working directory, unknown user) is not an error of Launch: the returned
// Process is already done and Exit().Error says why, exactly as status.json
// records it and as Adopt would report it later. The error is for launches
// that could not be attempted (bad spec, state dir unwritable, shim did
// not start or died, ctx ended).
func (l *Local) Launch(ctx context.Context, spec provider.Spec) (provider.Process, error) {
	if err := checkSpec(spec); err != nil {
		return nil, fmt.Errorf("launch %s: %w", spec.ID, err)
	}
	if l.isClosed() {
		return nil, fmt.Errorf("launch %s: %w", spec.ID, errClosed)
	}
	dir := l.InstanceDir(spec.ID)
	if err := l.checkNotRunning(spec.ID, dir); err != nil {
		return nil, fmt.Errorf("launch %s: %w", spec.ID, err)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("launch %s: %w", spec.ID, err)
	}
	// An earlier run of the same instance (restart in place) left its
	// status; it must not be mistaken for this one's.
	if err := os.Remove(filepath.Join(dir, statusFile)); err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("launch %s: %w", spec.ID, err)
	}
	ss := shimSpec{
		ID:          spec.ID,
		Group:       spec.Group,
		Command:     spec.Command,
		Args:        spec.Args,
		Env:         l.environ(spec),
		Workdir:     spec.Workdir,
		User:        spec.User,
		Locks:       spec.Locks,
		LogMaxSize:  spec.LogMaxSize,
		LogMaxFiles: spec.LogMaxFiles,
		HostMountNS: l.hostNS,
		Deadline:    l.deadline,
	}
	if ss.Workdir == "" {
		ss.Workdir = DefaultWorkdir
	}
	if ss.LogMaxSize <= 0 {
		ss.LogMaxSize = DefaultLogMaxSize
	}
	switch {
	case ss.LogMaxFiles == 0:
		ss.LogMaxFiles = DefaultLogMaxFiles
	case ss.LogMaxFiles < 0:
		ss.LogMaxFiles = 0
	}
	for _, ln := range spec.Listeners {
		name := ln.Name
		if name == "" {
			name = "unknown" // what systemd reports for an unnamed socket
		}
		ss.Listeners = append(ss.Listeners, name)
	}
	if l.useMounts(spec.Mounts) {
		ss.Mounts = spec.Mounts
	}
	// 0600: the environment may hold secret parameters.
	if err := writeJSON(filepath.Join(dir, specFile), ss, 0o600, false); err != nil {
		return nil, fmt.Errorf("launch %s: write spec: %w", spec.ID, err)
	}
	began := time.Now()
	how := "spare"
	cmd, helloR, err := l.assignSpare(spec.ID, dir, spec.Listeners)
	if err != nil {
		l.log.Warn("spare shim unusable; starting one", "instance", spec.ID, "err", err)
	}
	if cmd == nil {
		how = "fresh"
		if cmd, helloR, err = l.startShim(spec, dir); err != nil {
			return nil, fmt.Errorf("launch %s: start shim: %w", spec.ID, err)
		}
	}
	defer l.refillSpare()
	p, err := l.handshake(ctx, spec.ID, dir, cmd, helloR)
	if err != nil {
		return nil, fmt.Errorf("launch %s: %w", spec.ID, err)
	}
	l.log.Debug("launched", "instance", spec.ID, "pid", p.pid, "shim", how, "shim_pid", p.shimPid, "took", time.Since(began))
	return p, nil
}

// startShim starts `<exe> __autoheal_shim <dir>` in its own session, so that
// neither a signal to the controller's process group nor its terminal's
// hangup reaches it. It returns the read end of the hello pipe.
func (l *Local) startShim(spec provider.Spec, dir string) (*exec.Cmd, *os.File, error) {
	logf, err := os.OpenFile(filepath.Join(dir, shimLog), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return nil, nil, err
	}
	defer logf.Close()
	helloR, helloW, err := os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	defer helloW.Close()
	files := []*os.File{helloW} // fd 3
	for _, ln := range spec.Listeners {
		files = append(files, ln.File) // fds 4...
	}
	cmd := &exec.Cmd{
		Path: l.exe,
		Args: []string{l.exe, shimArg, dir},
		// The shim needs nothing but its identity, which also makes it
		// visible to Stop and Sweep; the application's environment is
		// in spec.json.
		Env:        shimEnv(l.stateDir, spec.ID),
		Dir:        "/", // pin no directory of the controller's
		Stdout:     logf,
		Stderr:     logf,
		ExtraFiles: files,
		// Its own session and, unless the fence is the fallback, PID 1 of
		// a new PID namespace.
		SysProcAttr: l.fence.sysProcAttr(),
	}
	if err := cmd.Start(); err != nil {
		helloR.Close()
		return nil, nil, err
	}
	return cmd, helloR, nil
}

// shimEnv is the shim's whole environment: its identity, and the Go
// runtime's debugging knobs if the controller has them (GORACE matters to
// race-enabled test binaries, whose exit otherwise sleeps a second).
func shimEnv(stateDir, id string) []string {
	return append([]string{EnvStateDir + "=" + stateDir, EnvInstanceID + "=" + id}, goDebugEnv()...)
}

func goDebugEnv() []string {
	var env []string
	for _, k := range []string{"GOTRACEBACK", "GORACE"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// handshake waits for the shim's hello and returns the running (or failed)
// application.
func (l *Local) handshake(ctx context.Context, id, dir string, cmd *exec.Cmd, helloR *os.File) (*process, error) {
	shimPid := cmd.Process.Pid
	// Our child is not reaped before we Wait, so neither its pid nor its
	// stat can belong to another process yet.
	shimStart, _ := startTime(shimPid)
	pfd, err := openPidFD(shimPid)
	if err != nil {
		helloR.Close()
		killWait(cmd)
		return nil, err
	}
	h, br, err := readHello(ctx, helloR)
	if err != nil {
		helloR.Close()
		// The shim is stuck or died before answering; it may already
		// have started the application, which carries the instance id.
		pfd.signal(syscall.SIGKILL)
		kctx, cancel := context.WithTimeout(context.Background(), killTimeout)
		kerr := l.killAll(kctx, id, 0, 0, shimStart, 0)
		cancel()
		cmd.Wait()
		pfd.Close()
		if kerr != nil {
			l.log.Error("launch failed and its processes could not be killed", "instance", id, "err", kerr)
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if errors.Is(err, errNoHello) {
			return nil, fmt.Errorf("shim exited before starting the application: %s", lastLine(filepath.Join(dir, shimLog)))
		}
		return nil, fmt.Errorf("shim: %w", err)
	}
	p := newProcess(id, status{Pid: h.Pid, PidStart: h.PidStart, StartedAt: h.StartedAt, ShimPid: shimPid, ShimStart: shimStart})
	p.nsInit = h.NS
	if h.Error != "" {
		helloR.Close()
		// The shim exits right after saying so, its status recorded.
		wctx, cancel := context.WithTimeout(context.Background(), killTimeout)
		if pfd.wait(wctx) != nil {
			pfd.signal(syscall.SIGKILL)
		}
		cancel()
		cmd.Wait()
		pfd.Close()
		st, err := readStatus(dir)
		if err != nil || !st.Exited {
			st.Exit = provider.ExitStatus{Code: -1, Time: time.Now(), Error: h.Error}
		}
		p.shimGone, p.unwatched = closedChan, closedChan
		p.finish(st.Exit)
		return p, nil
	}
	// helloR stays open while we follow the shim: that is how it knows
	// someone will record its application's exit.
	l.watch(p, pfd, cmd, helloR, br)
	return p, nil
}

var errNoHello = errors.New("no answer")

// readHello reads the shim's first line. The reader it returns holds what
// followed (the exit line, from a quick application) and the pipe stays
// open for it.
func readHello(ctx context.Context, r *os.File) (hello, *bufio.Reader, error) {
	// The bound first: the AfterFunc below may move the deadline to the
	// past at once if ctx is already done.
	r.SetReadDeadline(time.Now().Add(launchTimeout))
	stop := context.AfterFunc(ctx, func() { r.SetReadDeadline(time.Unix(1, 0)) })
	br := bufio.NewReader(r)
	b, err := br.ReadBytes('\n')
	if !stop() || ctx.Err() != nil {
		// The AfterFunc ran, or may still run: the deadline is not ours
		// to clear, and the launch is abandoned anyway.
		return hello{}, nil, context.Cause(ctx)
	}
	if err != nil && err != io.EOF {
		return hello{}, nil, err
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return hello{}, nil, errNoHello
	}
	r.SetReadDeadline(time.Time{})
	var h hello
	if err := json.Unmarshal(b, &h); err != nil {
		return hello{}, nil, fmt.Errorf("bad answer %q: %w", b, err)
	}
	if h.Error == "" && h.Pid <= 0 {
		return hello{}, nil, fmt.Errorf("bad answer %q", b)
	}
	return h, br, nil
}

// lastLine returns the last non-empty line of a small log file, for errors.
func lastLine(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(b) > 4096 {
		b = b[len(b)-4096:]
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if s := lines[len(lines)-1]; s != "" {
		return s
	}
	return "no message in " + path
}

// checkNotRunning refuses a second shim in an instance directory: two would
// write the same status and logs.
func (l *Local) checkNotRunning(id, dir string) error {
	st, err := readStatus(dir)
	if err != nil || st.Exited {
		return nil
	}
	if fd, ok := l.openVerified(st.ShimPid, st.ShimStart, id, true); ok {
		fd.Close()
		return fmt.Errorf("instance is still running (shim pid %d)", st.ShimPid)
	}
	return nil
}

// openVerified opens a pidfd on pid if it is still the process that started
// at start (and, with withEnv, carries this instance's identity in its
// environment). The pidfd is opened first: if the checks then pass, it
// refers to that process, since a process that reused the pid would have
// started later.
func (l *Local) openVerified(pid int, start uint64, id string, withEnv bool) (*pidFD, bool) {
	if pid <= 0 {
		return nil, false
	}
	fd, err := openPidFD(pid)
	if err != nil {
		return nil, false
	}
	st, err := readStat(pid)
	ok := err == nil && !st.zombie() && st.Start == start
	if ok && withEnv {
		env, err := readEnviron(pid)
		dir, ok1 := envLookup(env, EnvStateDir)
		iid, ok2 := envLookup(env, EnvInstanceID)
		ok = err == nil && ok1 && ok2 && dir == l.stateDir && iid == id
	}
	if !ok {
		fd.Close()
		return nil, false
	}
	return fd, true
}

// watch follows a shim until it exits. Readiness of its pidfd comes from the
// poller, so exit detection costs no thread and no polling. cmd is set for
// our own children, which must be reaped. helloR, set for shims we
// launched (br reads it), brings the exit line the shim writes before it
// finishes; for
// adopted shims the exit is read from status.json once they are gone.
func (l *Local) watch(p *process, pfd *pidFD, cmd *exec.Cmd, helloR *os.File, br *bufio.Reader) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		pfd.Close()
		if helloR != nil {
			helloR.Close()
		}
		close(p.unwatched)
		return
	}
	l.watches[pfd] = helloR
	if p.nsInit {
		l.namespaces[p.id] = p
	}
	l.wg.Add(2)
	l.mu.Unlock()
	reading := make(chan struct{})
	if helloR != nil {
		go func() {
			defer l.wg.Done()
			defer close(reading)
			readExit(p, br)
		}()
	} else {
		close(reading)
		l.wg.Done()
	}
	go func() {
		defer l.wg.Done()
		err := pfd.wait(context.Background())
		l.mu.Lock()
		closed := l.closed
		delete(l.watches, pfd)
		if l.namespaces[p.id] == p {
			delete(l.namespaces, p.id)
		}
		l.mu.Unlock()
		if helloR != nil {
			// The shim's end is closed now, so the reader is at EOF; the
			// deadline only guards against a stray copy of the write end.
			helloR.SetReadDeadline(time.Now().Add(drainTimeout))
			<-reading
			helloR.Close()
		}
		pfd.Close()
		if err != nil || closed {
			close(p.unwatched) // Close
			return
		}
		if cmd != nil {
			cmd.Wait()
		}
		if !p.isDone() {
			l.shimExited(p)
		}
		close(p.shimGone)
	}()
}

// readExit waits for the shim's exit line and closes Done with it.
func readExit(p *process, br *bufio.Reader) {
	for {
		line, err := br.ReadBytes('\n')
		var m hello
		if json.Unmarshal(line, &m) == nil && m.Exit != nil {
			p.alone.Store(m.Alone)
			p.finish(*m.Exit)
			return
		}
		if err != nil {
			return
		}
	}
}

// shimExited reads the exit the shim recorded and closes Done. A shim that
// died without recording one was killed: its application, if alive, has
// nobody left to read its output or record its exit, and is killed.
func (l *Local) shimExited(p *process) {
	st, err := readStatus(l.InstanceDir(p.id))
	if err == nil && st.Exited && st.ShimPid == p.shimPid {
		p.finish(st.Exit)
		return
	}
	l.log.Warn("instance shim lost; killing its application", "instance", p.id, "shim_pid", p.shimPid, "pid", p.pid)
	l.killApp(p)
	p.finish(provider.ExitStatus{Code: -1, Time: time.Now(), Error: "shim lost"})
}

// killApp kills the application's process group and waits for its leader,
// if the leader is still the process that was started.
func (l *Local) killApp(p *process) {
	if ancestry()[p.pid] {
		return // a forged record; never kill the caller
	}
	// Its environment is not checked: applications that set their process
	// title (postgres, nginx) overwrite it. Pid and start time suffice.
	fd, ok := l.openVerified(p.pid, p.pidStart, p.id, false)
	if !ok {
		return
	}
	defer fd.Close()
	// While the verified leader lives its pid names its group: the group
	// signal cannot reach a stranger.
	syscall.Kill(-p.pid, syscall.SIGKILL)
	fd.signal(syscall.SIGKILL)
	ctx, cancel := context.WithTimeout(context.Background(), killTimeout)
	defer cancel()
	fd.wait(ctx)
}

// Adopt re-attaches to an instance launched by an earlier controller. It
// trusts the recorded shim only if that pid still is the process that
// started at the recorded time and carries the instance's identity in its
// environment, so a reused pid cannot pass for it. An instance whose shim
// is gone without a recorded exit comes back done with Exit().Error "shim
// lost" (its application, if still alive, is killed first); one whose
// status.json is unreadable comes back done with the reason.
func (l *Local) Adopt(ctx context.Context, id string) (provider.Process, error) {
	if !provider.ValidInstanceID(id) {
		return nil, fmt.Errorf("adopt %s: %w", id, provider.ErrNotFound)
	}
	if l.isClosed() {
		return nil, fmt.Errorf("adopt %s: %w", id, errClosed)
	}
	l.markScan(id)
	dir := l.InstanceDir(id)
	st, err := readStatus(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("adopt %s: %w", id, provider.ErrNotFound)
	}
	if err != nil {
		return exited(id, status{Exit: provider.ExitStatus{Code: -1, Time: time.Now(), Error: "status lost: " + err.Error()}}), nil
	}
	if st.Exited {
		return exited(id, st), nil
	}
	if fd, ok := l.openVerified(st.ShimPid, st.ShimStart, id, true); ok {
		p := newProcess(id, st)
		// Asked of the kernel, not of a record: the shim may be an older
		// binary's, without a namespace.
		p.nsInit = isNamespaceInit(st.ShimPid)
		l.watch(p, fd, nil, nil, nil)
		// A controller that restarts adopts before anything fails: have a
		// spare ready for the first heal.
		l.refillSpare()
		return p, nil
	}
	// The shim is gone, or its pid is now someone else's. It may have
	// recorded the exit just before going.
	if st2, err := readStatus(dir); err == nil && st2.Exited {
		return exited(id, st2), nil
	}
	p := newProcess(id, st)
	p.shimGone, p.unwatched = closedChan, closedChan
	l.log.Warn("instance shim lost while the controller was down", "instance", id, "shim_pid", st.ShimPid, "pid", st.Pid)
	l.killApp(p)
	p.finish(provider.ExitStatus{Code: -1, Time: time.Now(), Error: "shim lost"})
	return p, nil
}

// markScan makes the next Stop of the instance scan /proc.
func (l *Local) markScan(id string) {
	l.mu.Lock()
	l.mustScan[id] = true
	l.mu.Unlock()
}
