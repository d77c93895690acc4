package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/autoheal/autoheal/internal/api"
	"github.com/autoheal/autoheal/internal/api/wire"
	"github.com/autoheal/autoheal/internal/provider/local"
	"github.com/autoheal/autoheal/internal/server"
	"github.com/autoheal/autoheal/internal/testutil"
)

// bins holds the binaries the tests build once: the pet app, the stateless
// web app (behind the load balancer) and autoheal itself (for tests that
// must kill the controller process).
var bins struct {
	dir, pet, web, autoheal string
}

func TestMain(m *testing.M) {
	// The test binary is also the shim: in-process servers launch instances
	// through it, as the real binary does.
	if local.Init() {
		return
	}
	// Shims are this race-enabled test binary re-executed: without this
	// each one's exit sleeps a second for the race detector's report, and
	// every stop and heal of the tests waits for it. The provider passes
	// GORACE on to its shims.
	if os.Getenv("GORACE") == "" {
		os.Setenv("GORACE", "atexit_sleep_ms=0")
	}
	dir, err := os.MkdirTemp("", "autoheal-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bins.dir = dir
	bins.pet = filepath.Join(dir, "pet")
	bins.web = filepath.Join(dir, "web")
	bins.autoheal = filepath.Join(dir, "autoheal")
	root := moduleRoot()
	for out, pkg := range map[string]string{bins.pet: "./examples/pet", bins.web: "./examples/web/app", bins.autoheal: "./cmd/autoheal"} {
		// autoheal is built with its crash points, so that tests can kill
		// it between two steps (AUTOHEAL_CRASH_AT, package crashpoint).
		cmd := exec.Command("go", "build", "-tags", "crashpoints", "-o", out, pkg)
		cmd.Dir = root
		cmd.Stderr = os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build", pkg, err)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func moduleRoot() string {
	wd, _ := os.Getwd()
	for d := wd; d != "/"; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
	}
	return wd
}

// freePort returns a loopback port that was free a moment ago.
//
// The port is taken below the kernel's ephemeral range: tests that restart
// a controller leave its address port free for a moment, and a port the
// kernel may hand to any connection or `listen :0` of another test meanwhile
// would make the restart fail with "address already in use".
func freePort(t *testing.T) int {
	t.Helper()
	lo, hi := 10000, ephemeralLow()
	for range 1000 {
		p := lo + int(nextPort.Add(1))%(hi-lo)
		if l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p)); err == nil {
			l.Close()
			return p
		}
	}
	t.Fatal("no free port below the ephemeral range")
	return 0
}

// nextPort starts where this test binary's pid says, so that packages
// tested in parallel start far apart.
var nextPort = func() *atomic.Int32 {
	var n atomic.Int32
	n.Store(int32(os.Getpid() * 7919 % 20000))
	return &n
}()

// ephemeralLow is the first port the kernel hands out for `listen :0` and
// outgoing connections.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if f := strings.Fields(string(b)); err == nil && len(f) == 2 {
		if n, err := strconv.Atoi(f[0]); err == nil && n > 12000 {
			return n
		}
	}
	return 32768
}

// env is one running controller under test.
type env struct {
	t        *testing.T
	stateDir string
	cfgPath  string
	client   *api.Client
	apiAddr  string
	// token is the controller's local admin token.
	token string
	stop  func()
	// proc is set when the controller runs as a separate process.
	proc *exec.Cmd
	logs *bytes.Buffer
	// logMu guards logs, which the process's output fills.
	logMu *sync.Mutex
}

// writeConfig writes cfg (with the {{PET}} and {{WEB}} placeholders filled)
// into a temp dir and returns its path.
func writeConfig(t *testing.T, cfg string) string {
	t.Helper()
	dir := t.TempDir()
	cfg = strings.ReplaceAll(cfg, "{{PET}}", bins.pet)
	cfg = strings.ReplaceAll(cfg, "{{WEB}}", bins.web)
	p := filepath.Join(dir, "autoheal.yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// startInProcess runs server.Run in this process.
func startInProcess(t *testing.T, cfgPath, stateDir string) *env {
	t.Helper()
	if stateDir == "" {
		stateDir = t.TempDir()
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan net.Addr, 1)
	done := make(chan error, 1)
	var logs syncBuffer
	go func() {
		done <- server.Run(ctx, server.Options{
			ConfigPath: cfgPath,
			StateDir:   stateDir,
			Listen:     "127.0.0.1:0",
			Version:    "test",
			Logger:     newLogger(&logs),
			Ready:      func(a net.Addr) { ready <- a },
		})
	}()
	var addr net.Addr
	select {
	case addr = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("server did not start: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("server did not start in 30s")
	}
	e := &env{t: t, stateDir: stateDir, cfgPath: cfgPath, apiAddr: addr.String()}
	e.useAdminToken()
	var once sync.Once
	e.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				t.Error("server did not stop in 20s")
			}
		})
	}
	t.Cleanup(func() {
		e.stop()
		killInstances(t, stateDir)
	})
	return e
}

var apiLine = regexp.MustCompile(`api=(127\.0\.0\.1:\d+)`)

// startProcess runs the real autoheal binary as a child process, with
// environ (NAME=value) added to its environment: AUTOHEAL_CRASH_AT=point
// kills it at a crash point (package crashpoint).
func startProcess(t *testing.T, cfgPath, stateDir string, environ ...string) *env {
	t.Helper()
	cmd := exec.Command(bins.autoheal, "serve", "--config", cfgPath, "--state-dir", stateDir, "--listen", "127.0.0.1:0", "--log-level", "debug")
	if len(environ) > 0 {
		cmd.Env = append(os.Environ(), environ...)
	}
	pr, pw := io.Pipe()
	logs := &bytes.Buffer{}
	mu := &sync.Mutex{}
	cmd.Stderr = pw
	cmd.Stdout = pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			mu.Lock()
			logs.WriteString(sc.Text() + "\n")
			mu.Unlock()
			if m := apiLine.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case addrc <- m[1]:
				default:
				}
			}
		}
	}()
	var addr string
	select {
	case addr = <-addrc:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("autoheal serve did not start:\n%s", logs.String())
	}
	e := &env{t: t, stateDir: stateDir, cfgPath: cfgPath, apiAddr: addr, proc: cmd, logs: logs, logMu: mu}
	e.useAdminToken()
	e.stop = func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		pw.Close()
	}
	t.Cleanup(func() {
		if t.Failed() {
			// What the controller saw is what explains a failure.
			t.Logf("journal at failure:\n%s\ncontroller log (last 8 KiB):\n%s", lastBytes(e.dumpEvents(), 16<<10), lastBytes(e.procLogs(), 8<<10))
		}
		cmd.Process.Kill()
		cmd.Wait()
		pw.Close()
		killInstances(t, stateDir)
	})
	return e
}

// lastBytes is the tail of s, at most n bytes.
func lastBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

// procLogs is what the controller process wrote so far.
func (e *env) procLogs() string {
	e.logMu.Lock()
	defer e.logMu.Unlock()
	return e.logs.String()
}

// waitCrash waits until the controller process killed itself at the
// crash point (its AUTOHEAL_CRASH_AT), and reaps it.
func (e *env) waitCrash(point string, timeout time.Duration) {
	e.t.Helper()
	pid := e.proc.Process.Pid
	waitFor(e.t, timeout, "the controller to crash at "+point, func() bool {
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		return err != nil || isZombie(st)
	})
	e.proc.Wait()
	if ws, ok := e.proc.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		e.t.Fatalf("the controller ended %v, not killed at %s:\n%s", e.proc.ProcessState, point, e.procLogs())
	}
	waitFor(e.t, 5*time.Second, "the crash point's line", func() bool {
		return strings.Contains(e.procLogs(), "crashpoint "+point+"\n")
	})
}

// useAdminToken makes the env's client, and the raw HTTP helpers when
// they call this API, send the controller's local admin token, as the
// operator's CLI on the host does.
func (e *env) useAdminToken() {
	e.t.Helper()
	tok, err := api.ReadTokenFile(filepath.Join(e.stateDir, api.TokenFile))
	if err != nil {
		e.t.Fatalf("the controller's admin token: %v", err)
	}
	e.token = tok
	e.client = api.NewClientWithToken(e.apiAddr, tok)
	apiTokens.Store(e.apiAddr, tok)
	e.t.Cleanup(func() { apiTokens.CompareAndDelete(e.apiAddr, tok) })
}

// apiTokens are the admin tokens of the controllers under test, by API
// address: httpGet and httpPostJSON send one to its API.
var apiTokens sync.Map

// withToken adds the admin token of the controller a request goes to.
func withToken(req *http.Request) {
	if tok, ok := apiTokens.Load(req.URL.Host); ok {
		req.Header.Set("Authorization", "Bearer "+tok.(string))
	}
}

// kill9 SIGKILLs the controller process (instances must survive).
func (e *env) kill9() {
	e.t.Helper()
	e.proc.Process.Kill()
	e.proc.Wait()
}

// killInstances kills every process launched for this state dir, so no test
// leaves a process behind.
func killInstances(t *testing.T, stateDir string) {
	for _, pid := range processesOf(stateDir) {
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

// processesOf lists the pids whose environment carries this state dir.
func processesOf(stateDir string) []int {
	abs, _ := filepath.Abs(stateDir)
	want := []byte("AUTOHEAL_STATE_DIR=" + abs + "\x00")
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil {
			continue
		}
		if bytes.Contains(append(b, 0), want) {
			if st, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); err == nil && isZombie(st) {
				continue
			}
			pids = append(pids, pid)
		}
	}
	return pids
}

func isZombie(stat []byte) bool {
	i := bytes.LastIndexByte(stat, ')')
	return i > 0 && i+2 < len(stat) && stat[i+2] == 'Z'
}

// waitFor polls cond until it is true, and fails the test naming what if
// the timeout passes first (testutil.WaitFor, under the name every test of
// this package calls).
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	testutil.WaitFor(t, timeout, what, cond)
}

// live returns the non-terminated instances.
func (e *env) live() []wire.Instance {
	st, err := e.client.Status(context.Background(), false)
	if err != nil {
		return nil
	}
	return st.Instances
}

// waitInService waits until the group has n InService instances and returns them.
func (e *env) waitInService(n int, timeout time.Duration) []wire.Instance {
	e.t.Helper()
	var got []wire.Instance
	e.t.Cleanup(func() {
		if e.t.Failed() && len(got) != n {
			e.t.Logf("events:\n%s", e.dumpEvents())
		}
	})
	waitFor(e.t, timeout, fmt.Sprintf("%d InService instance(s)", n), func() bool {
		got = got[:0]
		for _, in := range e.live() {
			if in.State == "InService" {
				got = append(got, in)
			}
		}
		return len(got) == n && len(e.live()) == n
	})
	return got
}

func (e *env) events() []wire.Event {
	evs, _ := e.client.Events(context.Background(), api.EventsQuery{Limit: 10000})
	return evs
}

func (e *env) dumpEvents() string {
	var b strings.Builder
	for _, ev := range e.events() {
		fmt.Fprintf(&b, "%s %-20s %s %s\n", ev.Time.Format("15:04:05.000"), ev.Type, ev.Instance, ev.Message)
		if ev.Type == "instance.user_data" || ev.Type == "instance.hook" {
			// What the script said is what explains it.
			fmt.Fprintf(&b, "    %+v\n", ev.Data)
		}
	}
	return b.String()
}

// httpGet fetches a URL with a short timeout.
func httpGet(url string) (int, []byte, error) {
	c := http.Client{Timeout: 2 * time.Second}
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, err
	}
	withToken(req)
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

func httpPost(url, body string) (int, []byte, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Post(url, "text/plain", strings.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// petInfo is the pet's GET / answer.
type petInfo struct {
	Instance string `json:"instance"`
	Counter  int    `json:"counter"`
	Writes   int    `json:"writes"`
	Pid      int    `json:"pid"`
}

func getPet(t *testing.T, base string) petInfo {
	t.Helper()
	code, b, err := httpGet(base + "/")
	if err != nil || code != 200 {
		t.Fatalf("GET %s/: %d %v %s", base, code, err, b)
	}
	var p petInfo
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatalf("pet answer %s: %v", b, err)
	}
	return p
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
