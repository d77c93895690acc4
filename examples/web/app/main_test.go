package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestHandler(t *testing.T) {
	srv := httptest.NewServer(handler("i-0123456789abcdef0"))
	defer srv.Close()
	for path, want := range map[string]string{"/": "hello from i-0123456789abcdef0\n", "/healthz": "ok\n"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != want {
			t.Errorf("GET %s = %d %q, want 200 %q", path, resp.StatusCode, b, want)
		}
	}
}

// TestSlow checks that GET /slow names the instance at once, while the
// request is still in flight, and ends after the delay.
func TestSlow(t *testing.T) {
	srv := httptest.NewServer(handler("i-0123456789abcdef0"))
	defer srv.Close()
	start := time.Now()
	resp, err := http.Get(srv.URL + "/slow?ms=1000")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	first, err := br.ReadString('\n')
	if err != nil || first != "hello from i-0123456789abcdef0\n" {
		t.Fatalf("first line %q, %v", first, err)
	}
	headAt := time.Since(start)
	rest, err := io.ReadAll(br)
	if err != nil || string(rest) != "done after 1000 ms\n" || resp.StatusCode != 200 {
		t.Fatalf("rest = %d %q, %v", resp.StatusCode, rest, err)
	}
	// Ordering rather than timing: the first line came before the delay
	// ran out, the end after it.
	if total := time.Since(start); headAt >= time.Second || total < time.Second {
		t.Fatalf("first line after %s, end after %s; want the line before 1s and the end after", headAt, total)
	}

	for _, q := range []string{"", "?ms=x", "?ms=-1", "?ms=3600000"} {
		resp, err := http.Get(srv.URL + "/slow" + q)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Errorf("GET /slow%s = %d, want 400", q, resp.StatusCode)
		}
	}
}

// TestSocketActivatedProcess runs the real binary on a socket passed as fd 3,
// started through sh so that LISTEN_PID is its own pid, and stops it.
func TestSocketActivatedProcess(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "web")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f, _ := l.(*net.TCPListener).File()
	l.Close()
	cmd := exec.Command("/bin/sh", "-c", `LISTEN_PID=$$ LISTEN_FDS=1 exec "$0"`, bin)
	cmd.Env = append(os.Environ(), "AUTOHEAL_INSTANCE_ID=i-00000000000000042")
	cmd.ExtraFiles = []*os.File{f}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	defer cmd.Process.Kill()

	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + l.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), "hello from i-00000000000000042") {
		t.Fatalf("GET / = %q", b)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
}
