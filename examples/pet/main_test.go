package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// petBin is the pet built once for these tests.
var petBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pet-test")
	if err != nil {
		panic(err)
	}
	petBin = filepath.Join(dir, "pet")
	if out, err := exec.Command("go", "build", "-o", petBin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build pet: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// start runs the pet on data and waits until it answers.
func start(t *testing.T, data string, port int) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(petBin)
	cmd.Env = append(os.Environ(), "AUTOHEAL_VOLUME_DATA="+data, fmt.Sprintf("PORT=%d", port), "AUTOHEAL_PORT_HTTP=", "LISTEN_FDS=", "LISTEN_PID=")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waitUp(t, fmt.Sprintf("http://127.0.0.1:%d/healthz", port))
	return cmd
}

func waitUp(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("%s did not answer", url)
}

func post(t *testing.T, url, body string) map[string]any {
	t.Helper()
	resp, err := http.Post(url, "text/plain", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	if resp.StatusCode != 200 {
		t.Fatalf("POST %s: %d %v", url, resp.StatusCode, out)
	}
	return out
}

func get(t *testing.T, url string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func TestDataSurvivesKill9(t *testing.T) {
	data, port := t.TempDir(), freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	cmd := start(t, data, port)
	for i := 0; i < 100; i++ {
		post(t, base+"/write", fmt.Sprintf("entry %d", i))
	}
	for i := 0; i < 50; i++ {
		post(t, base+"/incr", "")
	}
	cmd.Process.Kill()
	cmd.Wait()
	start(t, data, port)
	_, info := get(t, base+"/")
	if info["counter"] != 50.0 || info["writes"] != 100.0 {
		t.Fatalf("after kill -9: %v", info)
	}
	if code, v := get(t, base+"/verify"); code != 200 || v["lines"] != 100.0 {
		t.Fatalf("verify: %d %v", code, v)
	}
}

func TestTornLastLineIsRepairedAndCorruptionReported(t *testing.T) {
	data, port := t.TempDir(), freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	cmd := start(t, data, port)
	for i := 0; i < 3; i++ {
		post(t, base+"/write", fmt.Sprintf("entry %d", i))
	}
	cmd.Process.Kill()
	cmd.Wait()
	log := filepath.Join(data, "writes.log")
	f, _ := os.OpenFile(log, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("4\t123\thalf a li") // a crash mid-append
	f.Close()
	cmd = start(t, data, port)
	if code, v := get(t, base+"/verify"); code != 200 || v["lines"] != 3.0 {
		t.Fatalf("torn line not repaired: %d %v", code, v)
	}
	if got := post(t, base+"/write", "after repair"); got["seq"] != 4.0 {
		t.Fatalf("seq after repair = %v", got["seq"])
	}
	cmd.Process.Kill()
	cmd.Wait()
	b, _ := os.ReadFile(log)
	os.WriteFile(log, []byte(strings.Replace(string(b), "entry 1", "entry X", 1)), 0o644)
	start(t, data, port)
	if code, v := get(t, base+"/verify"); code != 500 || !strings.Contains(fmt.Sprint(v["error"]), "line 2: checksum mismatch") {
		t.Fatalf("corruption not reported: %d %v", code, v)
	}
}

func TestHangStopsAnswering(t *testing.T) {
	data, port := t.TempDir(), freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	start(t, data, port)
	resp, err := http.Post(base+"/hang", "", nil)
	if err != nil || resp.StatusCode != 202 {
		t.Fatalf("hang: %v %v", resp, err)
	}
	resp.Body.Close()
	c := http.Client{Timeout: 300 * time.Millisecond}
	if _, err := c.Get(base + "/healthz"); err == nil {
		t.Fatal("healthz answered while hung")
	}
}

func TestSocketActivation(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f, _ := l.(*net.TCPListener).File()
	l.Close()
	// LISTEN_PID must name the pet itself: set it in the shell that execs it.
	cmd := exec.Command("/bin/sh", "-c", "LISTEN_PID=$$ LISTEN_FDS=1 exec "+petBin)
	cmd.Env = append(os.Environ(), "AUTOHEAL_VOLUME_DATA="+t.TempDir())
	cmd.ExtraFiles = []*os.File{f}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	f.Close()
	waitUp(t, "http://"+l.Addr().String()+"/healthz")
	resp, err := http.Get("http://" + l.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), fmt.Sprintf(`"pid":%d`, cmd.Process.Pid)) {
		t.Fatalf("answer not from the socket-activated pet: %s", b)
	}
}
