// Command change measures what changing a group's instances costs its
// clients: requests through the load balancer from keep-alive clients,
// every one counted, while the group's instances are all replaced
//
//   - by an instance refresh (autoheal refresh start), and
//   - the old way, by hand: autoheal terminate of each instance in turn,
//     as an operator's loop does, without waiting,
//
// for a group of three and for a group of one (whose load balancer holds
// requests while the new instance starts). It prints, for each, the failed
// requests and the longest request wait, side by side, measured in the
// same run. Run it with bench/change.sh, which builds the binaries first.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/autoheal/autoheal/bench/internal/freeport"
)

var (
	autoheal = flag.String("autoheal", "bin/autoheal", "autoheal binary")
	web      = flag.String("web", "bin/web", "web app binary")
	clients  = flag.Int("clients", 8, "keep-alive clients")
	rounds   = flag.Int("rounds", 3, "rounds of each operation")
)

func main() {
	flag.Parse()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// result is one operation's cost to the clients.
type result struct {
	requests, failed int64
	longest          time.Duration
	took             time.Duration
	firstErr         string
}

func run() error {
	tmp, err := os.MkdirTemp("", "autoheal-bench-change")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	fmt.Printf("%-8s %-14s %6s %9s %7s %12s %9s\n", "group", "operation", "round", "requests", "failed", "longest wait", "took")
	for _, n := range []int{3, 1} {
		for _, op := range []string{"refresh", "by hand"} {
			for r := 1; r <= *rounds; r++ {
				res, err := measure(tmp, n, op)
				if err != nil {
					return fmt.Errorf("group of %d, %s: %w", n, op, err)
				}
				fmt.Printf("%-8s %-14s %6d %9d %7d %12s %9s", fmt.Sprintf("of %d", n), op, r, res.requests, res.failed,
					res.longest.Round(time.Millisecond), res.took.Round(time.Millisecond))
				if res.firstErr != "" {
					fmt.Printf("  first failure: %s", res.firstErr)
				}
				fmt.Println()
			}
		}
	}
	return nil
}

// measure starts a controller with the web group of n behind a load
// balancer, puts load on it, replaces every instance the given way, and
// counts the clients' requests until the group is whole again.
func measure(tmp string, n int, op string) (result, error) {
	dir, err := os.MkdirTemp(tmp, "run")
	if err != nil {
		return result{}, err
	}
	lbPort, apiPort := freeport.Next(), freeport.Next()
	cfg := filepath.Join(dir, "autoheal.yaml")
	bin, err := filepath.Abs(*web)
	if err != nil {
		return result{}, err
	}
	if err := os.WriteFile(cfg, []byte(webConfig(bin, lbPort, n)), 0o644); err != nil {
		return result{}, err
	}
	api := fmt.Sprintf("127.0.0.1:%d", apiPort)
	srv := exec.Command(*autoheal, "serve", "--config", cfg, "--state-dir", filepath.Join(dir, "state"), "--listen", api)
	srv.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	logf, err := os.Create(filepath.Join(dir, "serve.log"))
	if err != nil {
		return result{}, err
	}
	defer logf.Close()
	srv.Stdout, srv.Stderr = logf, logf
	if err := srv.Start(); err != nil {
		return result{}, err
	}
	cli := func(args ...string) ([]byte, error) {
		return exec.Command(*autoheal, append([]string{"--addr", api, "--state-dir", filepath.Join(dir, "state")}, args...)...).Output()
	}
	defer func() {
		// The instances outlive the controller by design: stop them
		// (their process groups), then the controller and the shims.
		if out, err := cli("-o", "json", "status"); err == nil {
			var st struct{ Instances []struct{ Pid int } }
			json.Unmarshal(out, &st)
			for _, in := range st.Instances {
				if in.Pid > 0 {
					syscall.Kill(-in.Pid, syscall.SIGKILL)
					syscall.Kill(in.Pid, syscall.SIGKILL)
				}
			}
		}
		srv.Process.Signal(syscall.SIGTERM)
		srv.Wait()
		exec.Command("pkill", "-f", filepath.Join(dir, "state")).Run()
	}()
	old, err := waitHealthy(cli, n, nil, 30*time.Second)
	if err != nil {
		b, _ := os.ReadFile(filepath.Join(dir, "serve.log"))
		return result{}, fmt.Errorf("%w; the controller said:\n%s", err, b)
	}
	load := startLoad(fmt.Sprintf("http://127.0.0.1:%d/", lbPort), *clients)
	time.Sleep(500 * time.Millisecond) // load before the change, as in production
	start := time.Now()
	switch op {
	case "refresh":
		if out, err := cli("refresh", "start", "web", "--min-healthy-percentage", "66"); err != nil {
			return result{}, fmt.Errorf("refresh start: %v: %s", err, out)
		}
	default:
		for _, id := range old {
			if out, err := cli("terminate", id); err != nil {
				return result{}, fmt.Errorf("terminate %s: %v: %s", id, err, out)
			}
		}
	}
	if _, err := waitHealthy(cli, n, old, 90*time.Second); err != nil {
		load.stop()
		return result{}, err
	}
	took := time.Since(start)
	time.Sleep(500 * time.Millisecond)
	res := load.stop()
	res.took = took
	return res, nil
}

// waitHealthy waits until the target group has n healthy targets, none of
// them in old, and returns their ids.
func waitHealthy(cli func(...string) ([]byte, error), n int, old []string, timeout time.Duration) ([]string, error) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		out, err := cli("-o", "json", "targets", "web")
		if err == nil {
			var tg struct {
				Targets []struct{ ID, State string }
			}
			json.Unmarshal(out, &tg)
			var ids []string
			for _, t := range tg.Targets {
				if t.State == "healthy" && !contains(old, t.ID) {
					ids = append(ids, t.ID)
				}
			}
			if len(ids) == n && len(tg.Targets) == n {
				return ids, nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil, fmt.Errorf("no %d new healthy targets in %s", n, timeout)
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// load is the clients: each sends GETs in a loop on its own keep-alive
// connection; a transport error, a non-200 or a resent request counts as
// failed.
type load struct {
	stopc    chan struct{}
	wg       sync.WaitGroup
	requests atomic.Int64
	failed   atomic.Int64
	mu       sync.Mutex
	longest  time.Duration
	firstErr string
}

func startLoad(url string, n int) *load {
	l := &load{stopc: make(chan struct{})}
	for range n {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			tr := &http.Transport{MaxIdleConnsPerHost: 1}
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr, Timeout: 30 * time.Second}
			for {
				select {
				case <-l.stopc:
					return
				default:
				}
				l.one(c, url)
			}
		}()
	}
	return l
}

func (l *load) one(c *http.Client, url string) {
	start := time.Now()
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
	resp, err := c.Do(req)
	var why string
	if err != nil {
		why = err.Error()
	} else {
		body, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case rerr != nil:
			why = rerr.Error()
		case resp.StatusCode != http.StatusOK:
			why = fmt.Sprintf("HTTP %d %s", resp.StatusCode, strings.TrimSpace(string(body)))
		}
	}
	d := time.Since(start)
	l.requests.Add(1)
	l.mu.Lock()
	defer l.mu.Unlock()
	if why != "" {
		l.failed.Add(1)
		if l.firstErr == "" {
			l.firstErr = why
		}
		return
	}
	l.longest = max(l.longest, d)
}

func (l *load) stop() result {
	close(l.stopc)
	l.wg.Wait()
	return result{requests: l.requests.Load(), failed: l.failed.Load(), longest: l.longest, firstErr: l.firstErr}
}

// webConfig is the web example of n instances on an LB port.
func webConfig(bin string, port, n int) string {
	return fmt.Sprintf(`
groups:
  - name: web
    desired: %d
    launch:
      command: %s
      ports: [http]
      stop_timeout: 5s
    health_checks:
      - {type: http, port: http, path: /healthz, interval: 1s, timeout: 500ms, unhealthy_threshold: 2}
    heal: {max_restarts: 0, backoff_base: 100ms}
load_balancers:
  - name: web
    listeners:
      - {protocol: http, listen: "127.0.0.1:%d", target_group: web}
    target_groups:
      - name: web
        protocol: http
        groups: [{group: web, port: http}]
        health_check: {path: /healthz, interval: 1s, timeout: 500ms, healthy_threshold: 2, unhealthy_threshold: 2}
        deregistration_delay: 5s
        hold_timeout: 10s
        retries: 2
`, n, bin, port)
}
