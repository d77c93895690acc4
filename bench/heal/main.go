// Command heal measures how fast autoheal heals the pet, beside a bare
// baseline measured in the same run:
//
//   - crash: SIGKILL of the pet's process to the first HTTP 200 from the new
//     process at the stable address, over N cycles, for restart in place and
//     for replacement (volume and address re-attached), against a minimal
//     kill, wait, start, poll-for-200 loop without autoheal;
//   - hang: POST /hang to the first 200 from a new process, with an http
//     check every 100ms and unhealthy_threshold 2;
//   - idle: CPU and RSS of the controller with 100 groups of one idle
//     instance, each with an http check every second.
//
// Run it with bench/heal.sh, which builds the binaries first.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/autoheal/autoheal/bench/internal/freeport"
	"github.com/autoheal/autoheal/internal/api"
)

var (
	autoheal = flag.String("autoheal", "bin/autoheal", "autoheal binary")
	pet      = flag.String("pet", "bin/pet", "pet binary")
	web      = flag.String("web", "bin/web", "stateless web app binary (idle benchmark)")
	cycles   = flag.Int("cycles", 50, "crash cycles per variant")
	hangs    = flag.Int("hangs", 10, "hang cycles")
	groups   = flag.Int("groups", 100, "groups in the idle benchmark (0 skips it)")
	idleFor  = flag.Duration("idle", 30*time.Second, "idle measurement time")
)

func main() {
	flag.Parse()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run() error {
	tmp, err := os.MkdirTemp("", "autoheal-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	base, err := newBaseline(tmp)
	if err != nil {
		return err
	}
	defer base.close()
	restart, err := startAutoheal(tmp, "restart", petConfig(freeport.Next(), 1000, "1s"))
	if err != nil {
		return err
	}
	defer restart.close()
	replace, err := startAutoheal(tmp, "replace", petConfig(freeport.Next(), 0, "1s"))
	if err != nil {
		return err
	}
	defer replace.close()

	tb, tr, tp, err := crashRounds(base, restart, replace)
	if err != nil {
		return err
	}
	reportCrash(tb, tr, tp)
	if *hangs > 0 {
		if err := hangBench(tmp, pct(tb, 50)); err != nil {
			return err
		}
	}
	if *groups > 0 {
		if err := idle(tmp); err != nil {
			return fmt.Errorf("idle: %w", err)
		}
	}
	return nil
}

// crashRounds measures the heal times of the baseline (tb), of restart in
// place (tr) and of replacement (tp), *cycles each, in alternate rounds
// of 10 so that machine noise hits all variants alike.
func crashRounds(base *baseline, restart, replace *instanceUnderTest) (tb, tr, tp []time.Duration, err error) {
	for done := 0; done < *cycles; done += 10 {
		n := min(10, *cycles-done)
		for i := 0; i < n; i++ {
			d, err := base.cycle()
			if err != nil {
				return nil, nil, nil, fmt.Errorf("baseline: %w", err)
			}
			tb = append(tb, d)
		}
		for _, v := range []struct {
			a   *instanceUnderTest
			out *[]time.Duration
		}{{restart, &tr}, {replace, &tp}} {
			for i := 0; i < n; i++ {
				d, err := v.a.crashCycle()
				if err != nil {
					return nil, nil, nil, fmt.Errorf("%s: %w", v.a.name, err)
				}
				*v.out = append(*v.out, d)
			}
		}
	}
	return tb, tr, tp, nil
}

// reportCrash prints the crash benchmark's table and its targets' verdicts.
func reportCrash(tb, tr, tp []time.Duration) {
	fmt.Printf("\nheal time: SIGKILL of the pet to the first HTTP 200 from its successor at the stable address (%d cycles each)\n\n", *cycles)
	fmt.Printf("%-34s %9s %9s %9s %9s %9s\n", "variant", "median", "p90", "p99", "max", "Δmedian")
	row := func(name string, ds []time.Duration) {
		fmt.Printf("%-34s %9s %9s %9s %9s %9s\n", name, ms(pct(ds, 50)), ms(pct(ds, 90)), ms(pct(ds, 99)), ms(pct(ds, 100)), ms(pct(ds, 50)-pct(tb, 50)))
	}
	row("baseline (kill, wait, start, poll)", tb)
	row("autoheal restart in place", tr)
	row("autoheal replace (new instance)", tp)
	fmt.Printf("\ntarget: median <= baseline + 10ms (%s), p99 <= baseline p99 + 25ms (%s)\n", ms(pct(tb, 50)+10*time.Millisecond), ms(pct(tb, 99)+25*time.Millisecond))
	for _, v := range []struct {
		name string
		ds   []time.Duration
	}{{"restart", tr}, {"replace", tp}} {
		okm := pct(v.ds, 50) <= pct(tb, 50)+10*time.Millisecond
		okp := pct(v.ds, 99) <= pct(tb, 99)+25*time.Millisecond
		fmt.Printf("  %-8s median %s, p99 %s\n", v.name, verdict(okm), verdict(okp))
	}
}

// hangBench measures hang to replacement over *hangs cycles and prints it
// against its target, which allows for start, the app's start time.
func hangBench(tmp string, start time.Duration) error {
	hang, err := startAutoheal(tmp, "hang", petConfig(freeport.Next(), 0, "100ms"))
	if err != nil {
		return err
	}
	defer hang.close()
	var th []time.Duration
	for i := 0; i < *hangs; i++ {
		d, err := hang.hangCycle()
		if err != nil {
			return fmt.Errorf("hang: %w", err)
		}
		th = append(th, d)
	}
	fmt.Printf("\nhang to replacement (http check every 100ms, unhealthy_threshold 2, timeout 100ms; %d cycles)\n", *hangs)
	fmt.Printf("  median %s, max %s; app start time (baseline median) %s; target <= 400ms + start = %s: %s\n",
		ms(pct(th, 50)), ms(pct(th, 100)), ms(start), ms(400*time.Millisecond+start), verdict(pct(th, 50) <= 400*time.Millisecond+start))
	return nil
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d)/1e6) }

func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := (len(s)*p + 99) / 100
	if i < 1 {
		i = 1
	}
	return s[min(i, len(s))-1]
}

var client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// petPid asks the pet at url for its pid; 0 when it does not answer 200.
func petPid(url string) int {
	resp, err := client.Get(url)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	var p struct {
		Pid int `json:"pid"`
	}
	if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&p) != nil {
		return 0
	}
	return p.Pid
}

// baseline restarts the pet by hand: kill, wait, start, poll.
type baseline struct {
	cmd  *exec.Cmd
	port int
	data string
}

func newBaseline(tmp string) (*baseline, error) {
	b := &baseline{port: freeport.Next(), data: filepath.Join(tmp, "baseline-data")}
	os.MkdirAll(b.data, 0o755)
	if err := b.start(); err != nil {
		return nil, err
	}
	if !b.poll(0, 10*time.Second) {
		return nil, fmt.Errorf("baseline pet did not answer")
	}
	return b, nil
}

func (b *baseline) start() error {
	b.cmd = exec.Command(*pet)
	b.cmd.Env = append(os.Environ(), "AUTOHEAL_VOLUME_DATA="+b.data, "PORT="+strconv.Itoa(b.port), "AUTOHEAL_PORT_HTTP="+strconv.Itoa(b.port))
	return b.cmd.Start()
}

func (b *baseline) poll(old int, timeout time.Duration) bool {
	url := fmt.Sprintf("http://127.0.0.1:%d/", b.port)
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if pid := petPid(url); pid != 0 && pid != old {
			return true
		}
		time.Sleep(time.Millisecond)
	}
	return false
}

func (b *baseline) cycle() (time.Duration, error) {
	time.Sleep(50 * time.Millisecond)
	old := b.cmd.Process.Pid
	t0 := time.Now()
	b.cmd.Process.Kill()
	b.cmd.Wait()
	if err := b.start(); err != nil {
		return 0, err
	}
	if !b.poll(old, 10*time.Second) {
		return 0, fmt.Errorf("pet did not come back")
	}
	return time.Since(t0), nil
}

func (b *baseline) close() {
	b.cmd.Process.Kill()
	b.cmd.Wait()
}

func petConfig(port, maxRestarts int, interval string) string {
	return fmt.Sprintf(`groups:
  - name: pet
    launch:
      command: %s
      stop_timeout: 2s
    volumes:
      - name: data
    addresses:
      - name: http
        listen: 127.0.0.1:%d
    health_checks:
      - type: http
        path: /healthz
        interval: %s
        timeout: 100ms
        unhealthy_threshold: 2
    heal:
      max_restarts: %d
      restart_window: 1m
      backoff_base: 1s
      reset_after: 1ms
      max_replacements: 100000
`, mustAbs(*pet), port, interval, maxRestarts)
}

func mustAbs(p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		panic(err)
	}
	return a
}

// instanceUnderTest is one autoheal controller running the pet.
type instanceUnderTest struct {
	name  string
	cmd   *exec.Cmd
	api   *api.Client
	url   string
	state string
}

var apiLine = regexp.MustCompile(`api=(127\.0\.0\.1:\d+)`)

func startAutoheal(tmp, name, cfg string) (*instanceUnderTest, error) {
	dir := filepath.Join(tmp, name)
	os.MkdirAll(dir, 0o755)
	cfgPath := filepath.Join(dir, "autoheal.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	m := regexp.MustCompile(`listen: (127\.0\.0\.1:\d+)`).FindStringSubmatch(cfg)
	a := &instanceUnderTest{name: name, state: filepath.Join(dir, "state"), url: "http://" + m[1] + "/"}
	a.cmd = exec.Command(*autoheal, "serve", "--config", cfgPath, "--state-dir", a.state, "--listen", "127.0.0.1:0", "--log-level", "info")
	stderr, _ := a.cmd.StderrPipe()
	if err := a.cmd.Start(); err != nil {
		return nil, err
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := apiLine.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			} else if strings.Contains(sc.Text(), "level=ERROR") || strings.Contains(sc.Text(), "level=WARN") {
				fmt.Fprintf(os.Stderr, "[%s] %s\n", name, sc.Text())
			}
		}
	}()
	// serve logs its address at info level; ask for it via a second line.
	select {
	case ad := <-addr:
		a.api = api.NewClient(ad)
	case <-time.After(5 * time.Second):
		a.close()
		return nil, fmt.Errorf("%s: controller did not report its API address", name)
	}
	if _, err := a.waitInService(0, 30*time.Second); err != nil {
		a.close()
		return nil, err
	}
	return a, nil
}

// waitInService waits for one InService instance whose pid is not old.
func (a *instanceUnderTest) waitInService(old int, timeout time.Duration) (int, error) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		st, err := a.api.Status(context.Background(), false)
		if err == nil && len(st.Instances) == 1 && st.Instances[0].State == "InService" && st.Instances[0].Pid != old && st.Instances[0].Pid != 0 {
			return st.Instances[0].Pid, nil
		}
		time.Sleep(5 * time.Millisecond)
	}
	return 0, fmt.Errorf("%s: no InService instance after %s", a.name, timeout)
}

func (a *instanceUnderTest) crashCycle() (time.Duration, error) {
	pid, err := a.waitInService(0, 30*time.Second)
	if err != nil {
		return 0, err
	}
	time.Sleep(50 * time.Millisecond)
	t0 := time.Now()
	syscall.Kill(pid, syscall.SIGKILL)
	deadline := t0.Add(30 * time.Second)
	for time.Now().Before(deadline) {
		// Through the proxy a request waits for the successor; it is not
		// refused, so no sleep is needed between attempts.
		if p := petPid(a.url); p != 0 && p != pid {
			d := time.Since(t0)
			_, err := a.waitInService(pid, 30*time.Second)
			return d, err
		}
	}
	return 0, fmt.Errorf("no answer from a new process within 30s")
}

func (a *instanceUnderTest) hangCycle() (time.Duration, error) {
	pid, err := a.waitInService(0, 30*time.Second)
	if err != nil {
		return 0, err
	}
	time.Sleep(200 * time.Millisecond)
	t0 := time.Now()
	resp, err := client.Post(a.url+"hang", "text/plain", nil)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	deadline := t0.Add(30 * time.Second)
	hc := &http.Client{Timeout: 50 * time.Millisecond, Transport: &http.Transport{DisableKeepAlives: true}}
	for time.Now().Before(deadline) {
		r, err := hc.Get(a.url)
		if err == nil {
			var p struct {
				Pid int `json:"pid"`
			}
			json.NewDecoder(r.Body).Decode(&p)
			r.Body.Close()
			if r.StatusCode == 200 && p.Pid != pid && p.Pid != 0 {
				d := time.Since(t0)
				_, err := a.waitInService(pid, 30*time.Second)
				return d, err
			}
		}
	}
	return 0, fmt.Errorf("hung pet not replaced within 30s")
}

func (a *instanceUnderTest) close() {
	if a.cmd.Process != nil {
		a.cmd.Process.Signal(syscall.SIGTERM)
		a.cmd.Wait()
	}
	killByState(a.state)
}

// killByState kills every process started for a state dir.
func killByState(state string) {
	want := "AUTOHEAL_STATE_DIR=" + state + "\x00"
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, _ := os.ReadFile("/proc/" + e.Name() + "/environ")
		if strings.Contains(string(b)+"\x00", want) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// idle measures the controller's CPU and RSS with many idle groups.
func idle(tmp string) error {
	dir := filepath.Join(tmp, "idle")
	os.MkdirAll(dir, 0o755)
	cfgPath := filepath.Join(dir, "autoheal.yaml")
	os.WriteFile(cfgPath, []byte(idleConfig(*groups)), 0o644)
	state := filepath.Join(dir, "state")
	cmd := exec.Command(*autoheal, "serve", "--config", cfgPath, "--state-dir", state, "--listen", "127.0.0.1:0", "--log-level", "info")
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		killByState(state)
	}()
	addr, err := apiAddr(stderr, 60*time.Second)
	if err != nil {
		return err
	}
	if err := allInService(api.NewClient(addr), *groups, 120*time.Second); err != nil {
		return err
	}
	time.Sleep(2 * time.Second)
	pid := cmd.Process.Pid
	c0, w0 := cpuTicks(pid), time.Now()
	time.Sleep(*idleFor)
	c1, w1 := cpuTicks(pid), time.Now()
	cpu := float64(c1-c0) / 100 / w1.Sub(w0).Seconds() // USER_HZ is 100 on Linux
	rss := rssKiB(pid)
	fmt.Printf("\nidle controller: %d groups of one instance, http check every 1s, measured over %s\n", *groups, *idleFor)
	fmt.Printf("  controller CPU %.2f%% of one core (target < 5%%: %s), RSS %.1f MiB (target < 100 MiB: %s)\n",
		cpu*100, verdict(cpu < 0.05), float64(rss)/1024, verdict(rss < 100*1024))
	return nil
}

// idleConfig is the idle benchmark's configuration: n groups of one
// instance of the web app, each with an http check every second.
func idleConfig(n int) string {
	var b strings.Builder
	b.WriteString("groups:\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, `  - name: g%03d
    launch:
      command: %s
    addresses:
      - name: http
        listen: 127.0.0.1:%d
    health_checks:
      - type: http
        path: /healthz
        interval: 1s
`, i, mustAbs(*web), freeport.Next())
	}
	return b.String()
}

// apiAddr reads a controller's log from stderr until it reports its API
// address, for up to timeout; the error quotes the log's last lines.
func apiAddr(stderr io.Reader, timeout time.Duration) (string, error) {
	addr := make(chan string, 1)
	var mu sync.Mutex
	var tail []string
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			mu.Lock()
			tail = append(tail, sc.Text())
			if len(tail) > 10 {
				tail = tail[1:]
			}
			mu.Unlock()
			if m := apiLine.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
	}()
	select {
	case a := <-addr:
		return a, nil
	case <-time.After(timeout):
		mu.Lock()
		defer mu.Unlock()
		return "", fmt.Errorf("controller did not report its API address in %.0fs; its last lines:\n%s", timeout.Seconds(), strings.Join(tail, "\n"))
	}
}

// allInService polls the controller until n instances are InService, for
// up to timeout.
func allInService(c *api.Client, n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		st, err := c.Status(context.Background(), false)
		in := 0
		if err == nil {
			for _, i := range st.Instances {
				if i.State == "InService" {
					in++
				}
			}
		}
		if in == n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d instances InService after %.0fs", in, n, timeout.Seconds())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func cpuTicks(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	u, _ := strconv.ParseInt(f[11], 10, 64)
	k, _ := strconv.ParseInt(f[12], 10, 64)
	return u + k
}

func rssKiB(pid int) int64 {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			f := strings.Fields(l)
			n, _ := strconv.ParseInt(f[1], 10, 64)
			return n
		}
	}
	return 0
}
