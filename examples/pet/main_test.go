package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/autoheal/autoheal/internal/testutil"
)

// petBin is the pet, built once for all the tests: they run it as a real
// process, because kill -9, exit codes and socket passing are the point.
var petBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pet-test")
	if err != nil {
		panic(err)
	}
	petBin = filepath.Join(dir, "pet")
	if out, err := exec.Command("go", "build", "-o", petBin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build pet: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// lockedBuffer collects a child's output while it runs.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// proc is one running pet.
type proc struct {
	cmd    *exec.Cmd
	base   string // http://127.0.0.1:port
	out    *lockedBuffer
	exited chan struct{}
	err    error // of Wait, once exited is closed
}

// cleanEnv is the test's environment without anything that would change
// where the pet listens or keeps its data.
func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "AUTOHEAL_VOLUME_DATA", "AUTOHEAL_PORT_HTTP", "PORT", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "AUTOHEAL_INSTANCE_ID":
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

// launch starts cmd (the pet, or a shell that execs it) without waiting.
func launch(t *testing.T, cmd *exec.Cmd, base string) *proc {
	t.Helper()
	p := &proc{cmd: cmd, base: base, out: &lockedBuffer{}, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			t.Logf("pet output:\n%s", p.out)
		}
	})
	return p
}

// start runs the pet on data and port and waits until it answers.
func start(t *testing.T, data string, port int, env ...string) *proc {
	t.Helper()
	cmd := exec.Command(petBin)
	cmd.Env = cleanEnv(append([]string{"AUTOHEAL_VOLUME_DATA=" + data, fmt.Sprintf("PORT=%d", port)}, env...)...)
	p := launch(t, cmd, fmt.Sprintf("http://127.0.0.1:%d", port))
	p.waitUp(t)
	return p
}

func (p *proc) waitUp(t *testing.T) {
	t.Helper()
	testutil.WaitFor(t, testutil.Timeout, "the pet at "+p.base+" to answer", func() bool {
		select {
		case <-p.exited:
			t.Fatalf("pet exited: %v\n%s", p.err, p.out)
		default:
		}
		code, _ := get(p.base + "/healthz")
		return code == 200
	})
}

// kill9 kills the pet the hard way and waits until it is gone.
func (p *proc) kill9(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.exited
}

// exitCode waits up to d for the pet to exit and returns its exit code.
func (p *proc) exitCode(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(d):
		t.Fatalf("pet still running %v later\n%s", d, p.out)
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode()
	}
	if p.err != nil {
		t.Fatal(p.err)
	}
	return 0
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

var client = &http.Client{Timeout: 5 * time.Second}

func get(url string) (int, []byte) {
	resp, err := client.Get(url)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func post(url, body string) (int, []byte) {
	resp, err := client.Post(url, "text/plain", strings.NewReader(body))
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// mustJSON decodes a 2xx JSON answer into v.
func mustJSON(t *testing.T, what string, code int, b []byte, v any) {
	t.Helper()
	if code < 200 || code > 299 {
		t.Fatalf("%s: %d %s", what, code, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v: %s", what, err, b)
	}
}

type info struct {
	Instance string `json:"instance"`
	Counter  int64  `json:"counter"`
	Writes   int64  `json:"writes"`
	Started  string `json:"started"`
	Pid      int    `json:"pid"`
}

func getInfo(t *testing.T, base string) info {
	t.Helper()
	var i info
	code, b := get(base + "/")
	mustJSON(t, "GET /", code, b, &i)
	return i
}

type verdict struct {
	OK    bool   `json:"ok"`
	Lines int64  `json:"lines"`
	Error string `json:"error"`
}

func verify(t *testing.T, base string) (int, verdict) {
	t.Helper()
	code, b := get(base + "/verify")
	var v verdict
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("GET /verify: %d %s", code, b)
	}
	return code, v
}

func writeN(t *testing.T, base, prefix string, n int) {
	t.Helper()
	for i := range n {
		var r struct{ Seq int64 }
		code, b := post(base+"/write", fmt.Sprintf("%s %d", prefix, i))
		mustJSON(t, "POST /write", code, b, &r)
	}
}

// payloads returns the payload field of every line GET /writes returns.
func payloads(t *testing.T, base string, query string) []string {
	t.Helper()
	var lines []string
	code, b := get(base + "/writes" + query)
	mustJSON(t, "GET /writes", code, b, &lines)
	var out []string
	for i, l := range lines {
		f := strings.Split(l, "\t")
		if len(f) < 4 {
			t.Fatalf("line %d %q: not seq, time, payload, crc", i+1, l)
		}
		out = append(out, strings.Join(f[2:len(f)-1], "\t"))
	}
	return out
}

func TestDataSurvivesKill9(t *testing.T) {
	t.Parallel()
	data, port := t.TempDir(), freePort(t)
	p := start(t, data, port, "AUTOHEAL_INSTANCE_ID=i-0123456789abcdef0")
	base := p.base
	first := getInfo(t, base)
	if first.Instance != "i-0123456789abcdef0" || first.Pid != p.cmd.Process.Pid {
		t.Fatalf("GET / = %+v", first)
	}
	if _, err := time.Parse(time.RFC3339, first.Started); err != nil {
		t.Fatalf("started %q: %v", first.Started, err)
	}

	// 100 writes and 50 increments from concurrent clients: the mutex must
	// keep seqs dense and every acknowledged change must survive.
	var wg sync.WaitGroup
	var mu sync.Mutex
	seqs := map[int64]bool{}
	for w := range 10 {
		wg.Go(func() {
			for i := range 10 {
				code, b := post(base+"/write", fmt.Sprintf("entry %02d", w*10+i))
				var r struct{ Seq int64 }
				if json.Unmarshal(b, &r) != nil || code != 200 {
					t.Errorf("write: %d %s", code, b)
					return
				}
				mu.Lock()
				seqs[r.Seq] = true
				mu.Unlock()
			}
			for range 5 {
				if code, b := post(base+"/incr", ""); code != 200 {
					t.Errorf("incr: %d %s", code, b)
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	for s := int64(1); s <= 100; s++ {
		if !seqs[s] {
			t.Fatalf("seq %d never returned; got %v", s, seqs)
		}
	}

	p.kill9(t)
	p = start(t, data, port)
	if !strings.Contains(p.out.String(), "counter 50, 100 log lines") {
		t.Errorf("start-up line does not report the data: %q", p.out)
	}
	after := getInfo(t, base)
	if after.Counter != 50 || after.Writes != 100 || after.Pid == first.Pid {
		t.Fatalf("after kill -9: %+v (before %+v)", after, first)
	}
	got := payloads(t, base, "")
	slices.Sort(got)
	for i, g := range got {
		if want := fmt.Sprintf("entry %02d", i); g != want {
			t.Fatalf("entry %d = %q, want %q (all: %q)", i, g, want, got)
		}
	}
	if len(got) != 100 {
		t.Fatalf("%d entries after kill -9, want 100", len(got))
	}
	if code, v := verify(t, base); code != 200 || !v.OK || v.Lines != 100 {
		t.Fatalf("verify: %d %+v", code, v)
	}
	// And the next write carries on the sequence.
	var r struct{ Seq int64 }
	code, b := post(base+"/write", "after restart")
	mustJSON(t, "write", code, b, &r)
	if r.Seq != 101 {
		t.Fatalf("seq after restart = %d, want 101", r.Seq)
	}
}

func TestTornLastLineIsCutOnStart(t *testing.T) {
	t.Parallel()
	data, port := t.TempDir(), freePort(t)
	p := start(t, data, port)
	writeN(t, p.base, "entry", 3)
	p.kill9(t)

	log := filepath.Join(data, "writes.log")
	good, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(log, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	torn := "4\t1700000000000000000\thalf a li" // a crash mid-append
	f.WriteString(torn)
	f.Close()

	p = start(t, data, port)
	if !strings.Contains(p.out.String(), fmt.Sprintf("cut a torn last line (%d bytes)", len(torn))) {
		t.Errorf("start-up line does not report the repair: %q", p.out)
	}
	if now, _ := os.ReadFile(log); !bytes.Equal(now, good) {
		t.Fatalf("writes.log after repair:\n%q\nwant\n%q", now, good)
	}
	if code, v := verify(t, p.base); code != 200 || v.Lines != 3 {
		t.Fatalf("verify after repair: %d %+v", code, v)
	}
	var r struct{ Seq int64 }
	code, b := post(p.base+"/write", "after repair")
	mustJSON(t, "write", code, b, &r)
	if r.Seq != 4 {
		t.Fatalf("seq after repair = %d, want 4", r.Seq)
	}
	if code, v := verify(t, p.base); code != 200 || v.Lines != 4 {
		t.Fatalf("verify after a write: %d %+v", code, v)
	}
}

func TestCorruptMiddleLineIsReported(t *testing.T) {
	t.Parallel()
	data, port := t.TempDir(), freePort(t)
	p := start(t, data, port)
	writeN(t, p.base, "entry", 20)
	p.kill9(t)

	// Flip one payload byte of line 17: bit rot the checksum must catch.
	log := filepath.Join(data, "writes.log")
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	b = bytes.Replace(b, []byte("\tentry 16\t"), []byte("\tentry X6\t"), 1)
	if err := os.WriteFile(log, b, 0o644); err != nil {
		t.Fatal(err)
	}

	// A damaged middle line does not stop the pet: it starts, serves, and
	// /verify names the line.
	p = start(t, data, port)
	code, v := verify(t, p.base)
	if code != 500 || v.OK || v.Error != "line 17: checksum mismatch" {
		t.Fatalf("verify: %d %+v", code, v)
	}
	if i := getInfo(t, p.base); i.Writes != 20 {
		t.Fatalf("writes = %d, want 20", i.Writes)
	}
}

func TestVerifyReportsOutOfOrderLines(t *testing.T) {
	t.Parallel()
	data, port := t.TempDir(), freePort(t)
	p := start(t, data, port)
	writeN(t, p.base, "entry", 3)
	p.kill9(t)
	// Drop line 2: every remaining line is intact, but line 2 is now seq 3.
	log := filepath.Join(data, "writes.log")
	b, _ := os.ReadFile(log)
	lines := strings.SplitAfter(string(b), "\n")
	os.WriteFile(log, []byte(lines[0]+lines[2]), 0o644)
	p = start(t, data, port)
	if code, v := verify(t, p.base); code != 500 || v.Error != `line 2: seq "3", want 2` {
		t.Fatalf("verify: %d %+v", code, v)
	}
}

func TestWriteValidationAndPaging(t *testing.T) {
	t.Parallel()
	p := start(t, t.TempDir(), freePort(t))
	cases := []struct {
		body string
		code int
	}{
		{"two\nlines", 400},
		{strings.Repeat("x", maxPayload+1), 413},
		{strings.Repeat("x", maxPayload), 200},
		{"tabs\tare\tfine\r", 200},
		{"", 200},
	}
	for _, c := range cases {
		if code, b := post(p.base+"/write", c.body); code != c.code {
			t.Errorf("POST /write (%d bytes): %d %s, want %d", len(c.body), code, b, c.code)
		}
	}
	if got := payloads(t, p.base, "?after=1&limit=1"); !slices.Equal(got, []string{"tabs\tare\tfine\r"}) {
		t.Errorf("GET /writes?after=1&limit=1 = %q", got)
	}
	if got := payloads(t, p.base, "?after=3"); len(got) != 0 {
		t.Errorf("GET /writes?after=3 = %q, want []", got)
	}
	if code, _ := get(p.base + "/writes?after=x"); code != 400 {
		t.Errorf("GET /writes?after=x: %d, want 400", code)
	}
	if code, v := verify(t, p.base); code != 200 || v.Lines != 3 {
		t.Errorf("verify: %d %+v", code, v)
	}
}

func TestHangStopsAnsweringAndSIGTERMStillExits(t *testing.T) {
	t.Parallel()
	p := start(t, t.TempDir(), freePort(t))
	if code, b := post(p.base+"/hang", ""); code != 202 {
		t.Fatalf("POST /hang: %d %s", code, b)
	}
	short := http.Client{Timeout: 300 * time.Millisecond}
	for _, path := range []string{"/healthz", "/"} {
		if resp, err := short.Get(p.base + path); err == nil {
			resp.Body.Close()
			t.Fatalf("GET %s answered %d while hung", path, resp.StatusCode)
		}
	}
	// It still accepts connections, as a deadlocked app does.
	c, err := net.DialTimeout("tcp", strings.TrimPrefix(p.base, "http://"), time.Second)
	if err != nil {
		t.Fatalf("connect while hung: %v", err)
	}
	c.Close()

	// A hung request is in flight, from a client that never gives up;
	// SIGTERM must release it rather than wait out the shutdown grace.
	hung, err := net.Dial("tcp", strings.TrimPrefix(p.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer hung.Close()
	io.WriteString(hung, "GET /healthz HTTP/1.1\r\nHost: pet\r\n\r\n")
	testutil.WaitRead(t, testutil.Timeout, hung) // the pet has the request
	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.exitCode(t, testutil.Timeout); code != 0 {
		t.Fatalf("exit code after SIGTERM = %d, want 0", code)
	}
	if out := p.out.String(); strings.Contains(out, "still running") {
		t.Errorf("SIGTERM waited for the hung request:\n%s", out)
	}
	// And the hung request got no answer: its connection was dropped.
	hung.SetReadDeadline(time.Now().Add(testutil.Timeout))
	if b, err := io.ReadAll(hung); len(b) != 0 {
		t.Errorf("the hung request was answered: %q (%v)", b, err)
	}
}

func TestSIGTERMExitsZero(t *testing.T) {
	t.Parallel()
	p := start(t, t.TempDir(), freePort(t))
	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.exitCode(t, 3*time.Second); code != 0 {
		t.Fatalf("exit code = %d, want 0", code)
	}
}

func TestSIGTERMLetsAnInFlightWriteFinish(t *testing.T) {
	t.Parallel()
	data, port := t.TempDir(), freePort(t)
	p := start(t, data, port)
	// A write whose body is still arriving when SIGTERM comes: the pet must
	// stop accepting but finish it, durably, before it exits.
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "POST /write HTTP/1.1\r\nHost: pet\r\nContent-Length: 9\r\n\r\nin-f")
	testutil.WaitRead(t, testutil.Timeout, c) // the request is in flight, its body half read
	p.cmd.Process.Signal(syscall.SIGTERM)
	// The pet stops accepting at once. (This must be seen within the
	// pet's one-second shutdown grace, or the write would be cut short.)
	testutil.WaitFor(t, testutil.Timeout, "the pet to stop accepting connections", func() bool {
		d, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			d.Close()
		}
		return errors.Is(err, syscall.ECONNREFUSED)
	})
	io.WriteString(c, "light")
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	resp, err := io.ReadAll(c)
	if !strings.HasPrefix(string(resp), "HTTP/1.1 200") || !strings.Contains(string(resp), `{"seq":1}`) {
		t.Fatalf("in-flight write: %v %q", err, resp)
	}
	if code := p.exitCode(t, 3*time.Second); code != 0 {
		t.Fatalf("exit code = %d, want 0", code)
	}
	p = start(t, data, port)
	if got := payloads(t, p.base, ""); !slices.Equal(got, []string{"in-flight"}) {
		t.Fatalf("after restart: %q", got)
	}
}

func TestCrashExits3AfterAnswering(t *testing.T) {
	t.Parallel()
	data, port := t.TempDir(), freePort(t)
	p := start(t, data, port)
	code, b := post(p.base+"/crash", "")
	var r struct{ Crashing bool }
	mustJSON(t, "POST /crash", code, b, &r)
	if code := p.exitCode(t, 3*time.Second); code != 3 {
		t.Fatalf("exit code = %d, want 3", code)
	}
	start(t, data, port) // and the lock died with it
}

func TestSecondPetOnSameDataIsRefused(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	start(t, data, freePort(t))
	cmd := exec.Command(petBin, "--data", data, "--listen", "127.0.0.1:0")
	cmd.Env = cleanEnv()
	p := launch(t, cmd, "")
	if code := p.exitCode(t, 5*time.Second); code != 1 || !strings.Contains(p.out.String(), "locked by another live process") {
		t.Fatalf("second pet: exit %d, output %q", code, p.out)
	}
}

func TestStartErrors(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "missing")
	for _, c := range []struct {
		name string
		env  []string
		want string
	}{
		{"no data", []string{"PORT=1"}, "no data directory"},
		{"missing data", []string{"AUTOHEAL_VOLUME_DATA=" + missing, "PORT=1"}, "no such file or directory"},
		{"no port", []string{"AUTOHEAL_VOLUME_DATA=" + t.TempDir()}, "nowhere to listen"},
	} {
		cmd := exec.Command(petBin)
		cmd.Env = cleanEnv(c.env...)
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), c.want) {
			t.Errorf("%s: %v %q, want exit 1 and %q", c.name, err, out, c.want)
		}
	}
}

// passListener gives a new listening socket to a pet started through sh, so
// that LISTEN_PID can be the pet's own pid ($$ survives exec).
func passListener(t *testing.T, listenPID string, env ...string) (*proc, net.Addr) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f, err := l.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	l.Close() // f keeps the socket open
	cmd := exec.Command("/bin/sh", "-c", "LISTEN_PID="+listenPID+" LISTEN_FDS=1 exec \"$0\"", petBin)
	cmd.Env = cleanEnv(append([]string{"AUTOHEAL_VOLUME_DATA=" + t.TempDir()}, env...)...)
	cmd.ExtraFiles = []*os.File{f} // fd 3
	p := launch(t, cmd, "http://"+l.Addr().String())
	f.Close()
	return p, l.Addr()
}

func TestSocketActivation(t *testing.T) {
	t.Parallel()
	p, _ := passListener(t, "$$")
	// No waiting needed: the socket already listens, so the kernel queues
	// the connection until the pet accepts it.
	i := getInfo(t, p.base)
	if i.Pid != p.cmd.Process.Pid {
		t.Fatalf("answer from pid %d, want the pet, %d", i.Pid, p.cmd.Process.Pid)
	}
	// The line may reach the test's copy of the output after the answer.
	testutil.WaitFor(t, testutil.Timeout, "the start-up line to say socket activation", func() bool {
		return strings.Contains(p.out.String(), "socket activation (fd 3)")
	})
}

func TestSocketActivationForAnotherPidIsIgnored(t *testing.T) {
	t.Parallel()
	// LISTEN_PID names some other process: the variables leaked from a
	// parent, so the pet must not touch fd 3 and listens on its port.
	port := freePort(t)
	p, _ := passListener(t, "1", fmt.Sprintf("PORT=%d", port))
	p.base = fmt.Sprintf("http://127.0.0.1:%d", port)
	p.waitUp(t)
	if !strings.Contains(p.out.String(), "listening on 127.0.0.1:") {
		t.Errorf("start-up line: %q", p.out)
	}
}

func TestCheckLine(t *testing.T) {
	line := formatLine(7, time.Unix(0, 42), []byte("a\tb"))
	if want := "7\t42\ta\tb\t"; !strings.HasPrefix(string(line), want) || line[len(line)-1] != '\n' || len(line) != len(want)+9 {
		t.Fatalf("formatLine = %q", line)
	}
	line = line[:len(line)-1]
	if err := checkLine(7, line); err != nil {
		t.Fatalf("checkLine of a good line: %v", err)
	}
	if err := checkLine(8, line); err == nil {
		t.Fatal("wrong seq not caught")
	}
	bad := bytes.Replace(line, []byte("a\tb"), []byte("a\tc"), 1)
	if err := checkLine(7, bad); err == nil || err.Error() != "checksum mismatch" {
		t.Fatalf("checkLine of a damaged line: %v", err)
	}
	if err := checkLine(1, []byte("garbage")); err == nil {
		t.Fatal("garbage accepted")
	}
}
