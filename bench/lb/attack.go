package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/autoheal/autoheal/bench/internal/freeport"
)

// The attack scenarios (bench/lb.sh -attacks): autoheal's http listener
// and HAProxy in http mode, each with the same limits (10,000 connections,
// a 10 s header timeout), under
//
//   - slowloris: -slowloris connections, each sending a request head one
//     byte every -drip and re-dialled once closed, as slowhttptest does;
//   - idle flood: -idle-conns connections that send nothing, re-dialled
//     once closed;
//
// while a normal client sends -client-rate requests a second, each on a
// new connection (a new visitor, who must get in), answered or not within
// -client-timeout. It prints the client's answered share and latency
// without and under each attack, and the proxy's RSS (all its processes)
// before, during and after.
var (
	attacks       = flag.Bool("attacks", false, "run the attack scenarios (slowloris, idle flood, RSS) instead of the wrk table")
	slowlorisN    = flag.Int("slowloris", 2000, "-attacks: slowloris connections")
	drip          = flag.Duration("drip", 3*time.Second, "-attacks: a slowloris connection sends one byte of its head this often")
	idleConns     = flag.Int("idle-conns", 10000, "-attacks: idle flood connections")
	phase         = flag.Duration("phase", 20*time.Second, "-attacks: how long the client is measured in each scenario")
	clientRate    = flag.Int("client-rate", 100, "-attacks: the normal client's requests a second, each on a new connection")
	clientTimeout = flag.Duration("client-timeout", 2*time.Second, "-attacks: a request not answered within this is counted unanswered")
	afterWait     = flag.Duration("rss-after", 10*time.Second, "-attacks: RSS is read this long after an attack's connections closed")
	scenarios     = flag.String("scenarios", "none,slowloris,idle-flood", "-attacks: the scenarios to run, in this order")
)

// scenarioNames are the scenarios -scenarios may name.
var scenarioNames = []string{"none", "slowloris", "idle-flood"}

// attackTarget is one proxy under attack.
type attackTarget struct {
	name string
	addr string
	api  string // autoheal's API address, for a CPU profile
	proc *proc
	rows []attackRow
}

// attackRow is one scenario's figures for one target.
type attackRow struct {
	scenario string
	client   clientStats
	rss      [4]int64 // before, peak during, right after, rss-after later; bytes
	attack   string   // what the attack achieved (connections held, re-dials)
}

// runAttackMode runs the attack scenarios (attack.go) and prints their
// table; one round unless -rounds says otherwise.
func runAttackMode(ctx context.Context) error {
	roundsSet := false
	flag.Visit(func(f *flag.Flag) { roundsSet = roundsSet || f.Name == "rounds" })
	if !roundsSet {
		*rounds = 1
	}
	for _, sc := range strings.Split(*scenarios, ",") {
		if !contains(scenarioNames, sc) {
			return fmt.Errorf("-scenarios: unknown scenario %q (have %s)", sc, strings.Join(scenarioNames, ", "))
		}
	}
	tmp, err := os.MkdirTemp("", "autoheal-bench-lb")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	backends, procs, err := startBackends(ctx)
	defer func() {
		for i := len(procs) - 1; i >= 0; i-- {
			procs[i].stop()
		}
	}()
	if err != nil {
		return err
	}
	ts, err := runAttacks(ctx, tmp, backends)
	if len(ts) > 0 && ctx.Err() == nil {
		reportAttacks(ts)
	}
	return err
}

func runAttacks(ctx context.Context, tmp string, backends []string) ([]*attackTarget, error) {
	var targets []*attackTarget
	var procs []*proc
	defer func() {
		for _, p := range procs {
			p.stop()
		}
	}()
	type server struct {
		name  string
		start func(port int, api string) (*proc, error)
	}
	servers := []server{
		{"haproxy", func(port int, _ string) (*proc, error) { return startHAProxyAttack(tmp, backends, port) }},
	}
	if *unbuilt == "" {
		servers = append(servers, server{"autoheal", func(port int, api string) (*proc, error) {
			return startAutohealAttack(tmp, "autoheal", *autoheal, backends, port, api)
		}})
	} else {
		fmt.Fprintln(os.Stderr, "autoheal does not build; only HAProxy is measured")
	}
	if *candidate != "" {
		servers = append(servers, server{"candidate", func(port int, api string) (*proc, error) {
			return startAutohealAttack(tmp, "candidate", *candidate, backends, port, api)
		}})
	}
	for _, s := range servers {
		port := freeport.Next()
		api := fmt.Sprintf("127.0.0.1:%d", freeport.Next())
		p, err := s.start(port, api)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.name, err)
		}
		procs = append(procs, p)
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		if err := waitOK(ctx, p, "http://"+addr+"/", startTimeout); err != nil {
			return nil, fmt.Errorf("%s: %s", s.name, p.failure(err))
		}
		targets = append(targets, &attackTarget{name: s.name, addr: addr, api: api, proc: p})
	}
	fmt.Printf("attacks: client %d req/s on new connections (timeout %s), %s per scenario; slowloris %d connections (a byte every %s); idle flood %d connections; %d CPUs, load average %s\n",
		*clientRate, *clientTimeout, *phase, *slowlorisN, *drip, *idleConns, runtime.NumCPU(), loadAverage())
	fmt.Printf("%s\n", versions())
	// One target at a time, so that an attack on one does not slow the
	// other; the order alternates between rounds.
	for r := 0; r < *rounds; r++ {
		for i := range targets {
			t := targets[(i+r)%len(targets)]
			for _, sc := range strings.Split(*scenarios, ",") {
				row, err := runScenario(ctx, t, sc, r)
				if err != nil {
					return targets, err
				}
				t.rows = append(t.rows, row)
				fmt.Fprintf(os.Stderr, "round %d/%d %-9s %-10s %s; RSS %s%s\n", r+1, *rounds, t.name, sc, row.client, rssLine(row.rss), row.attack)
			}
		}
	}
	return targets, nil
}

// runScenario measures the client against t without attack, or under one.
// With -cpu-profile-autoheal, autoheal's first slowloris is profiled.
func runScenario(ctx context.Context, t *attackTarget, scenario string, round int) (attackRow, error) {
	row := attackRow{scenario: scenario}
	pgid := t.proc.cmd.Process.Pid
	row.rss[0] = groupRSS(pgid)
	var a *attacker
	switch scenario {
	case "slowloris":
		a = newAttacker(t.addr, *slowlorisN, true)
	case "idle-flood":
		a = newAttacker(t.addr, *idleConns, false)
	}
	var prof chan error
	if *cpuProfile != "" && t.name == "autoheal" && scenario == "slowloris" && round == 0 {
		prof = make(chan error, 1)
		go func() { prof <- profile(ctx, t.api, *cpuProfile) }()
	}
	if a != nil {
		if err := a.start(ctx); err != nil {
			a.stop()
			return row, err
		}
	}
	peak := newPeakRSS(pgid)
	row.client = measureClient(ctx, t.addr, *phase)
	row.rss[1] = peak.stop()
	if prof != nil {
		if err := <-prof; err != nil {
			fmt.Fprintf(os.Stderr, "cpu profile: %v\n", err)
		} else {
			fmt.Fprintf(os.Stderr, "cpu profile of autoheal under slowloris written to %s\n", *cpuProfile)
		}
	}
	if a != nil {
		row.attack = "; attack: " + a.summary()
		a.stop()
		row.rss[2] = groupRSS(pgid)
		select {
		case <-time.After(*afterWait):
		case <-ctx.Done():
			return row, ctx.Err()
		}
	}
	row.rss[3] = groupRSS(pgid)
	return row, ctx.Err()
}

// attacker holds n connections to addr, re-dialling those the server
// closes; with slow set, each sends a request head one byte every drip,
// never finishing it.
type attacker struct {
	addr   string
	n      int
	slow   bool
	mu     sync.Mutex
	conns  []net.Conn // nil: closed, to re-dial
	sent   []int      // slow: bytes of the head sent on each
	dials  atomic.Int64
	closed atomic.Int64
	stopc  chan struct{}
	wg     sync.WaitGroup
}

// slowHead is what a slowloris connection sends, a byte at a time: a head
// that never ends.
const slowHead = "GET / HTTP/1.1\r\nHost: bench\r\nUser-Agent: slowloris\r\nX-a: " +
	"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

func newAttacker(addr string, n int, slow bool) *attacker {
	return &attacker{addr: addr, n: n, slow: slow, conns: make([]net.Conn, n), sent: make([]int, n), stopc: make(chan struct{})}
}

// start dials every connection (64 at a time) and starts the loop that
// re-dials closed ones and, for slowloris, drips.
func (a *attacker) start(ctx context.Context) error {
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	var failed atomic.Int64
	var firstErr atomic.Value
	for i := range a.n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := a.dial(i); err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
			}
		}()
	}
	wg.Wait()
	if f := failed.Load(); f > int64(a.n)/10 {
		return fmt.Errorf("attack on %s: %d of %d connections could not be dialled (raise ulimit -n?): %v", a.addr, f, a.n, firstErr.Load())
	}
	a.wg.Add(1)
	go a.loop()
	return ctx.Err()
}

// dial opens connection i and watches it: a goroutine reads until the
// server closes it (nothing is ever sent back to a head never finished, or
// to nothing; a 408 or 400 is read and discarded).
func (a *attacker) dial(i int) error {
	c, err := net.DialTimeout("tcp", a.addr, 5*time.Second)
	if err != nil {
		return err
	}
	a.dials.Add(1)
	a.mu.Lock()
	a.conns[i], a.sent[i] = c, 0
	a.mu.Unlock()
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		io.Copy(io.Discard, c)
		c.Close()
		a.mu.Lock()
		if a.conns[i] == c {
			a.conns[i] = nil
			a.closed.Add(1)
		}
		a.mu.Unlock()
	}()
	return nil
}

// loop drips a byte on every slowloris connection each drip (spread over
// the interval), and once a second re-dials closed connections, as
// attack tools do on each round.
func (a *attacker) loop() {
	defer a.wg.Done()
	tick := time.Second
	if a.slow {
		tick = max(time.Millisecond, *drip/time.Duration(max(1, a.n)))
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	next, lastRedial := 0, time.Now()
	for {
		select {
		case <-a.stopc:
			return
		case <-t.C:
		}
		if a.slow {
			// Enough connections per tick to visit each once per drip.
			per := max(1, int(int64(a.n)*int64(tick)/int64(*drip)))
			for range per {
				a.drip(next)
				next = (next + 1) % a.n
			}
		}
		if time.Since(lastRedial) >= time.Second {
			lastRedial = time.Now()
			for i := range a.n {
				a.mu.Lock()
				dead := a.conns[i] == nil
				a.mu.Unlock()
				if dead {
					select {
					case <-a.stopc:
						return
					default:
					}
					a.dial(i)
				}
			}
		}
	}
}

func (a *attacker) drip(i int) {
	a.mu.Lock()
	c, k := a.conns[i], a.sent[i]
	a.sent[i]++
	a.mu.Unlock()
	if c == nil {
		return
	}
	b := byte('b') // past slowHead, the last header's value goes on
	if k < len(slowHead) {
		b = slowHead[k]
	}
	c.SetWriteDeadline(time.Now().Add(time.Second))
	c.Write([]byte{b})
}

// stop closes every connection and waits for the watchers.
func (a *attacker) stop() {
	close(a.stopc)
	a.mu.Lock()
	for i, c := range a.conns {
		if c != nil {
			c.Close()
			a.conns[i] = nil
		}
	}
	a.mu.Unlock()
	a.wg.Wait()
}

func (a *attacker) summary() string {
	return fmt.Sprintf("%d dials, %d closed by the server", a.dials.Load(), a.closed.Load())
}

// clientStats is what the normal client saw.
type clientStats struct {
	sent, answered int
	p50, p99       time.Duration
	firstErr       string
}

func (s clientStats) share() float64 {
	if s.sent == 0 {
		return 0
	}
	return float64(s.answered) / float64(s.sent)
}

func (s clientStats) String() string {
	out := fmt.Sprintf("%d/%d answered (%.1f%%), p50 %s, p99 %s", s.answered, s.sent, 100*s.share(), ms(s.p50), ms(s.p99))
	if s.firstErr != "" {
		out += " (first failure: " + clip(s.firstErr, 60) + ")"
	}
	return out
}

// measureClient sends clientRate requests a second to addr for d, each on
// a new connection, and returns how many were answered 200 within
// clientTimeout and how fast.
func measureClient(ctx context.Context, addr string, d time.Duration) clientStats {
	var mu sync.Mutex
	var lat []float64
	var st clientStats
	var wg sync.WaitGroup
	t := time.NewTicker(time.Second / time.Duration(max(1, *clientRate)))
	defer t.Stop()
	end := time.Now().Add(d)
	for time.Now().Before(end) && ctx.Err() == nil {
		<-t.C
		st.sent++
		wg.Add(1)
		go func() {
			defer wg.Done()
			took, err := oneRequest(addr)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if st.firstErr == "" {
					st.firstErr = err.Error()
				}
				return
			}
			st.answered++
			lat = append(lat, float64(took))
		}()
	}
	wg.Wait()
	if len(lat) > 0 {
		sort.Float64s(lat)
		st.p50 = time.Duration(quantile(lat, 0.5))
		st.p99 = time.Duration(quantile(lat, 0.99))
	}
	return st
}

// oneRequest is a new visitor: connect, GET, read the answer, close.
func oneRequest(addr string) (time.Duration, error) {
	began := time.Now()
	deadline := began.Add(*clientTimeout)
	c, err := net.DialTimeout("tcp", addr, *clientTimeout)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(deadline)
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, errors.New(resp.Status)
	}
	return time.Since(began), nil
}

// peakRSS samples a process group's RSS every 200ms until stopped.
type peakRSS struct {
	peak  atomic.Int64
	stopc chan struct{}
	done  chan struct{}
}

func newPeakRSS(pgid int) *peakRSS {
	p := &peakRSS{stopc: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			if r := groupRSS(pgid); r > p.peak.Load() {
				p.peak.Store(r)
			}
			select {
			case <-p.stopc:
				return
			case <-t.C:
			}
		}
	}()
	return p
}

func (p *peakRSS) stop() int64 {
	close(p.stopc)
	<-p.done
	return p.peak.Load()
}

// groupRSS is the resident memory of the processes in process group pgid
// (a proxy and its workers), from /proc/PID/statm.
func groupRSS(pgid int) int64 {
	var pages int64
	groupStats(pgid, func(pid string, _ []string) {
		m, err := os.ReadFile("/proc/" + pid + "/statm")
		if err != nil {
			return
		}
		if mf := strings.Fields(string(m)); len(mf) > 1 {
			n, _ := strconv.ParseInt(mf[1], 10, 64)
			pages += n
		}
	})
	return pages * int64(os.Getpagesize())
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func rssLine(r [4]int64) string {
	return fmt.Sprintf("before %s, peak %s, at the end %s, %s later %s", mib(r[0]), mib(r[1]), mib(r[2]), *afterWait, mib(r[3]))
}

// reportAttacks prints each scenario beside HAProxy's: medians over
// rounds.
func reportAttacks(ts []*attackTarget) {
	fmt.Printf("\n%-10s %-10s %9s %9s %9s %9s %11s %11s %11s %11s\n", "scenario", "proxy", "answered", "p50", "p99", "p99 ratio", "RSS before", "RSS peak", "RSS end", "RSS +"+afterWait.String())
	base := map[string]time.Duration{}
	for _, sc := range strings.Split(*scenarios, ",") {
		for _, t := range ts {
			s, ok := t.medians(sc)
			if !ok {
				continue
			}
			if sc == "none" {
				base[t.name] = s.p99
			}
			p50, p99, ratio := "-", "-", "-"
			if s.p99 > 0 {
				p50, p99 = ms(s.p50), ms(s.p99)
				if b := base[t.name]; b > 0 && sc != "none" {
					ratio = fmt.Sprintf("%.2fx", float64(s.p99)/float64(b))
				}
			}
			end := mib(s.rss[2])
			if sc == "none" {
				end = "-"
			}
			fmt.Printf("%-10s %-10s %8.1f%% %9s %9s %9s %11s %11s %11s %11s\n", sc, t.name, 100*s.share, p50, p99, ratio,
				mib(s.rss[0]), mib(s.rss[1]), end, mib(s.rss[3]))
		}
	}
	fmt.Println("\nanswered: the normal client's requests (each on a new connection) answered 200 within -client-timeout; p50/p99 of those")
	fmt.Println("answered; p99 ratio: over the same proxy's p99 without attack; RSS of the proxy's processes: before the attack, its peak,")
	fmt.Println("when the attack's connections closed, and -rss-after later; medians over rounds")
	fmt.Println("target: under slowloris, autoheal's p99 within 2x of its p99 without attack; under the idle flood, more answered than")
	fmt.Println("HAProxy; RSS after the attack back near RSS before it")
}

// scenarioMedians are a target's medians over rounds in one scenario.
type scenarioMedians struct {
	share    float64
	p50, p99 time.Duration // 0 when nothing was answered
	rss      [4]int64
}

func (t *attackTarget) medians(sc string) (scenarioMedians, bool) {
	var s scenarioMedians
	var share, p50, p99 []float64
	var rss [4][]float64
	for _, r := range t.rows {
		if r.scenario != sc {
			continue
		}
		share = append(share, r.client.share())
		if r.client.answered > 0 {
			p50 = append(p50, float64(r.client.p50))
			p99 = append(p99, float64(r.client.p99))
		}
		for i := range rss {
			rss[i] = append(rss[i], float64(r.rss[i]))
		}
	}
	if len(share) == 0 {
		return s, false
	}
	s.share = median(share)
	s.p50, s.p99 = time.Duration(medianOr0(p50)), time.Duration(medianOr0(p99))
	for i := range rss {
		s.rss[i] = int64(median(rss[i]))
	}
	return s, true
}

func medianOr0(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	return median(xs)
}

// startHAProxyAttack runs HAProxy in http mode with autoheal's defaults:
// 10,000 connections on the frontend (fewer when the descriptor limit
// does not allow them), a request head within 10 s (also the wait for the
// first one), keep-alive idle 60 s.
func startHAProxyAttack(tmp string, backends []string, port int) (*proc, error) {
	// No global maxconn: HAProxy derives it from the descriptor limit
	// (two per proxied connection), as many as that allows.
	cfg := fmt.Sprintf(`global

defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout http-request 10s
    timeout http-keep-alive 60s

frontend fe_http
    bind 127.0.0.1:%[3]d
    maxconn 10000
    option http-keep-alive
    default_backend be_http

backend be_http
    balance roundrobin
    option http-keep-alive
    option httpchk GET /healthz
    server b1 %[1]s check inter 1s
    server b2 %[2]s check inter 1s
`, backends[0], backends[1], port)
	path := filepath.Join(tmp, "haproxy-attack.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	return start(nil, "haproxy", "-f", path, "-db")
}

// startAutohealAttack runs autoheal with an http listener of default
// limits (max_connections 10000, first_byte_timeout and header_timeout
// 10s).
func startAutohealAttack(tmp, name, bin string, backends []string, port int, api string) (*proc, error) {
	dir := filepath.Join(tmp, name+"-attack")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	cfg := fmt.Sprintf(`groups:
  - name: idle
    desired: 0
    launch: {command: /bin/sleep, args: ["infinity"]}
load_balancers:
  - name: bench
    listeners:
      - {protocol: http, listen: 127.0.0.1:%[3]d, target_group: web-http}
    target_groups:
      - name: web-http
        protocol: http
        targets: [{address: %[1]s}, {address: %[2]s}]
        health_check: {path: /healthz, interval: 1s}
`, backends[0], backends[1], port)
	path := filepath.Join(dir, "autoheal.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	args := []string{"serve", "--config", path, "--state-dir", filepath.Join(dir, "state"), "--listen", api}
	if *cpuProfile != "" {
		args = append(args, "--pprof")
	}
	return start(nil, bin, args...)
}
