package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/autoheal/autoheal/bench/internal/freeport"
	"github.com/autoheal/autoheal/internal/api"
)

// proc is one started server, in its own process group so that stopping it
// also stops its workers (nginx) and so that the terminal's SIGINT reaches
// only us.
type proc struct {
	cmd  *exec.Cmd
	out  *tail
	done chan struct{} // closed when it has exited
	err  error         // its exit status, once done
}

func start(env []string, name string, args ...string) (*proc, error) {
	p := &proc{out: &tail{max: 8 << 10}, done: make(chan struct{})}
	p.cmd = exec.Command(name, args...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	// A worker that keeps the output pipe open must not hang Wait.
	p.cmd.WaitDelay = 2 * time.Second
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// stop asks the process group to terminate, then kills it.
func (p *proc) stop() {
	pgid := p.cmd.Process.Pid
	syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
	}
	// Whatever is left of the group (workers, children) goes now.
	syscall.Kill(-pgid, syscall.SIGKILL)
	<-p.done
}

// failure is err with the tail of the process's output.
func (p *proc) failure(err error) string {
	out := strings.TrimRight(p.out.String(), "\n")
	if out == "" {
		return err.Error() + "\n(no output)"
	}
	return err.Error() + "\noutput, last lines:\n" + out
}

// tail keeps the last max bytes written to it, whole lines.
type tail struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tail) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, b...)
	if len(t.buf) > 2*t.max {
		t.buf = append([]byte(nil), t.buf[len(t.buf)-t.max:]...)
	}
	return len(b), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.buf
	if len(b) > t.max {
		b = b[len(b)-t.max:]
		if i := strings.IndexByte(string(b), '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return strings.Join(lines, "\n") + "\n"
}

var probe = &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// waitOK polls url until it answers 200, p exits or timeout passes.
func waitOK(ctx context.Context, p *proc, url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
		resp, err := probe.Do(req)
		if err == nil {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		last = err
		select {
		case <-p.done:
			return fmt.Errorf("exited (%v) before %s answered", p.err, url)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			if errors.Is(last, syscall.ECONNREFUSED) {
				return fmt.Errorf("runs, but nothing listens on %s after %s", strings.TrimSuffix(strings.TrimPrefix(url, "http://"), "/"), timeout)
			}
			return fmt.Errorf("no 200 from %s within %s: %v", url, timeout, last)
		}
	}
}

// waitHealthy waits until autoheal reports both targets of v's target group
// healthy, so that no round runs on one target. A listener
// answering 200 only says one target is. An API without the endpoint
// (404) is taken at the listener's word.
func waitHealthy(ctx context.Context, p *proc, apiAddr string, v *variant) error {
	tg := "web-" + v.name[strings.LastIndex(v.name, "-")+1:]
	url := "http://" + apiAddr + "/v1/target-groups/" + tg + "/health"
	deadline := time.Now().Add(startTimeout)
	for {
		healthy, status, err := targetHealth(ctx, apiAddr, url)
		if err == nil && (status == http.StatusNotFound || healthy == 2) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of 2 targets healthy after %s (GET %s: status %d, %v)", healthy, startTimeout, url, status, err)
		}
		select {
		case <-p.done:
			return fmt.Errorf("exited (%v) while waiting for healthy targets", p.err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stateDirs maps the API address of each autoheal the benchmark started to
// its state dir, where the controller keeps its local admin token.
var stateDirs sync.Map

// authorize sends the local admin token of the autoheal at apiAddr, which
// every API call needs (an older binary without one ignores it).
func authorize(req *http.Request, apiAddr string) {
	if dir, ok := stateDirs.Load(apiAddr); ok {
		if tok, err := api.LocalToken(apiAddr, dir.(string)); err == nil {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
	}
}

func targetHealth(ctx context.Context, apiAddr, url string) (healthy, status int, err error) {
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	authorize(req, apiAddr)
	resp, err := probe.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	var h struct {
		Targets []struct {
			ID    string `json:"id"`
			State string `json:"state"`
		} `json:"targets"`
	}
	if resp.StatusCode != http.StatusOK {
		return 0, resp.StatusCode, nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&h); err != nil {
		return 0, resp.StatusCode, fmt.Errorf("decode: %w", err)
	}
	for _, t := range h.Targets {
		if t.State == "healthy" {
			healthy++
		}
	}
	return healthy, resp.StatusCode, nil
}

// profile fetches a CPU profile of autoheal while wrk runs: it starts a
// moment into the run and ends before it, 5s when the run is long enough.
func profile(ctx context.Context, apiAddr, file string) error {
	delay := min(time.Second, *duration/5)
	secs := max(1, min(5, int((*duration-2*delay).Seconds())))
	select {
	case <-time.After(delay):
	case <-ctx.Done():
		return ctx.Err()
	}
	c := &http.Client{Timeout: time.Duration(secs)*time.Second + 10*time.Second}
	req, _ := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", apiAddr, secs), nil)
	authorize(req, apiAddr)
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("GET /debug/pprof/profile: %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func startHAProxy(tmp string, backends []string, ports map[string]int) (*proc, error) {
	cfg := fmt.Sprintf(`global
    # Below the container's usual 20000 file limit, far above -c.
    maxconn 4096

defaults
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 60s

frontend fe_http
    mode http
    bind 127.0.0.1:%[3]d
    option http-keep-alive
    default_backend be_http

backend be_http
    mode http
    balance roundrobin
    option http-keep-alive
    option httpchk GET /healthz
    server b1 %[1]s check inter 1s
    server b2 %[2]s check inter 1s

frontend fe_tcp
    mode tcp
    bind 127.0.0.1:%[4]d
    default_backend be_tcp

backend be_tcp
    mode tcp
    balance roundrobin
    server b1 %[1]s check inter 1s
    server b2 %[2]s check inter 1s
`, backends[0], backends[1], portOf(ports, "haproxy-http"), portOf(ports, "haproxy-tcp"))
	path := filepath.Join(tmp, "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	return start(nil, "haproxy", "-f", path, "-db")
}

func startNginx(tmp string, backends []string, ports map[string]int) (*proc, error) {
	dir := filepath.Join(tmp, "nginx")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	// Every path inside dir, so that it needs no system config and no
	// writable /var.
	cfg := fmt.Sprintf(`worker_processes auto;
pid %[1]s/nginx.pid;
error_log stderr warn;

events {
    worker_connections 4096;
}

http {
    access_log off;
    client_body_temp_path %[1]s/client_body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;

    upstream web {
        server %[2]s;
        server %[3]s;
        keepalive 64;
    }

    server {
        listen 127.0.0.1:%[4]d;
        location / {
            proxy_pass http://web;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
`, dir, backends[0], backends[1], portOf(ports, "nginx"))
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	// -p and -e keep nginx away from /var/log/nginx before it reads cfg.
	return start(nil, "nginx", "-p", dir, "-e", "stderr", "-c", path, "-g", "daemon off;")
}

func startAutoheal(tmp, name, bin, apiAddr string, backends []string, ports map[string]int) (*proc, error) {
	dir := filepath.Join(tmp, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	cfg := fmt.Sprintf(`groups:
  - name: idle            # autoheal needs at least one group; keep it trivial
    desired: 0
    launch: {command: /bin/sleep, args: ["infinity"]}
load_balancers:
  - name: bench
    listeners:
      - {protocol: http, listen: 127.0.0.1:%[3]d, target_group: web-http}
      - {protocol: tcp,  listen: 127.0.0.1:%[4]d, target_group: web-tcp}
    target_groups:
      - name: web-http
        protocol: http
        targets: [{address: %[1]s}, {address: %[2]s}]
        health_check: {path: /healthz, interval: 1s}
      - name: web-tcp
        protocol: tcp
        targets: [{address: %[1]s}, {address: %[2]s}]
        health_check: {protocol: tcp, interval: 1s}
`, backends[0], backends[1], portOf(ports, name+"-http"), portOf(ports, name+"-tcp"))
	path := filepath.Join(dir, "autoheal.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	args := []string{"serve", "--config", path, "--state-dir", filepath.Join(dir, "state"), "--listen", apiAddr}
	stateDirs.Store(apiAddr, filepath.Join(dir, "state"))
	if *cpuProfile != "" {
		args = append(args, "--pprof")
	}
	return start(nil, bin, args...)
}

// portOf is the port of a variant, or a fresh one when the variant is not
// measured but its server's config still needs the listener.
func portOf(ports map[string]int, name string) int {
	if p, ok := ports[name]; ok {
		return p
	}
	return freeport.Next()
}

// groupStats calls f with the pid and the fields of /proc/PID/stat after
// the command name (f[0] is field 3, the state) of every process in
// process group pgid: a proxy and its workers.
func groupStats(pgid int, f func(pid string, fields []string)) {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		// pgrp is field 5.
		if len(fields) < 13 || fields[2] != strconv.Itoa(pgid) {
			continue
		}
		f(e.Name(), fields)
	}
}

// groupCPU is the CPU time (user and system) of the processes in process
// group pgid, as /proc/PID/stat counts it (in clock ticks of 10ms).
func groupCPU(pgid int) time.Duration {
	var ticks int64
	groupStats(pgid, func(_ string, f []string) {
		// utime is field 14, stime 15.
		u, _ := strconv.ParseInt(f[11], 10, 64)
		k, _ := strconv.ParseInt(f[12], 10, 64)
		ticks += u + k
	})
	return time.Duration(ticks) * 10 * time.Millisecond
}
