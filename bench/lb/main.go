// Command lb measures autoheal's load balancer beside HAProxy and nginx in
// the same run, against the same two backends (examples/web/app):
//
//   - direct: wrk straight to one backend, the ceiling;
//   - haproxy-http: HAProxy in http mode, round robin, check inter 1s;
//   - nginx: proxy_pass to an upstream with keepalive;
//   - autoheal-http: autoheal's http listener;
//   - haproxy-tcp: HAProxy in tcp mode, the baseline of autoheal-tcp;
//   - autoheal-tcp: autoheal's tcp listener;
//   - candidate-http, candidate-tcp: the same, served by the binary given
//     with -candidate (a change being measured against the current build
//     in the same alternated run).
//
// Each round runs `wrk -t2 -c50 -d10s --latency` once per variant, rounds
// alternate so that machine noise hits all variants alike, and the table
// shows medians over rounds with each ratio to HAProxy. A variant whose
// server does not start is reported as failed and the others still run.
//
// Run it with bench/lb.sh, which installs haproxy, nginx and wrk and builds
// the binaries first.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/autoheal/autoheal/bench/internal/freeport"
)

var (
	autoheal    = flag.String("autoheal", "bin/autoheal", "autoheal binary")
	web         = flag.String("web", "bin/web", "backend binary (examples/web/app)")
	duration    = flag.Duration("duration", 10*time.Second, "wrk duration of one run, in whole seconds")
	rounds      = flag.Int("rounds", 5, "alternated rounds; the table shows medians")
	connections = flag.Int("connections", 50, "wrk connections")
	threads     = flag.Int("threads", 2, "wrk threads")
	only        = flag.String("only", "", "comma-separated variants to run (default all, candidate-* only with -candidate): "+strings.Join(variantNames(), ","))
	unbuilt     = flag.String("autoheal-unbuilt", "", "why autoheal could not be built (set by bench/lb.sh); its variants are reported failed")
	candidate   = flag.String("candidate", "", "another autoheal binary, measured beside -autoheal as candidate-http and candidate-tcp")
	cpuProfile  = flag.String("cpu-profile-autoheal", "", "write a 5s CPU profile of autoheal, taken during the first autoheal-http round, to this file")
)

// Targets from the issue: autoheal's http listener against HAProxy in http
// mode, its tcp listener against HAProxy in tcp mode.
const (
	httpMinRPS = 0.8
	httpMaxP99 = 1.5
	tcpMinRPS  = 1.0
)

// startTimeout bounds how long a server may take to answer its first 200.
const startTimeout = 15 * time.Second

func main() {
	flag.Parse()
	// Output piped into `head` must not kill us before we stop the servers:
	// with SIGPIPE caught, a write to the closed pipe fails instead.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	go func() {
		// A second interrupt while cleaning up kills us at once.
		<-ctx.Done()
		stop()
	}()
	if err := run(ctx); err != nil {
		if ctx.Err() != nil {
			fmt.Fprintln(os.Stderr, "bench: interrupted")
			os.Exit(130)
		}
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// variant is one way to reach the backends.
type variant struct {
	name   string
	server string // "" (none), haproxy, nginx or autoheal
	base   string // the variant its ratios are to
	url    string
	runs   []result
	failed string // why it was not measured, with its server's output
	proc   *proc  // its server, whose CPU time is measured
}

// result is one wrk run.
type result struct {
	rps      float64
	p50, p99 time.Duration
	errors   int // non-2xx/3xx responses and socket errors
	detail   string
	// cpuPerReq is the CPU time the server (all its processes) spent
	// per request during the run: on a machine that wrk and the
	// backends share, what a proxy costs decides what is left for them.
	cpuPerReq time.Duration
}

func allVariants() []*variant {
	return []*variant{
		{name: "direct", base: "haproxy-http"},
		{name: "haproxy-http", server: "haproxy", base: "haproxy-http"},
		{name: "nginx", server: "nginx", base: "haproxy-http"},
		{name: "autoheal-http", server: "autoheal", base: "haproxy-http"},
		{name: "haproxy-tcp", server: "haproxy", base: "haproxy-tcp"},
		{name: "autoheal-tcp", server: "autoheal", base: "haproxy-tcp"},
		{name: "candidate-http", server: "candidate", base: "haproxy-http"},
		{name: "candidate-tcp", server: "candidate", base: "haproxy-tcp"},
	}
}

func variantNames() []string { return variantNamesOf(allVariants()) }

func variantNamesOf(vs []*variant) []string {
	var names []string
	for _, v := range vs {
		names = append(names, v.name)
	}
	return names
}

// failed says whether the variant called name could not start.
func failed(vs []*variant, name string) bool {
	for _, v := range vs {
		if v.name == name {
			return v.failed != ""
		}
	}
	return false
}

func selectVariants(list string) ([]*variant, error) {
	all := allVariants()
	if list == "" {
		return all, nil
	}
	want := map[string]bool{}
	for _, n := range strings.Split(list, ",") {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		if !contains(variantNames(), n) {
			return nil, fmt.Errorf("-only: unknown variant %q (have %s)", n, strings.Join(variantNames(), ", "))
		}
		want[n] = true
	}
	var vs []*variant
	for _, v := range all {
		if want[v.name] {
			vs = append(vs, v)
		}
	}
	if len(vs) == 0 {
		return nil, fmt.Errorf("-only: no variant selected")
	}
	return vs, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func run(ctx context.Context) error {
	if *rounds < 1 || *duration < time.Second {
		return fmt.Errorf("want -rounds >= 1 and -duration >= 1s")
	}
	if *attacks {
		return runAttackMode(ctx)
	}
	vs, err := selectVariants(*only)
	if err != nil {
		return err
	}
	if *candidate == "" {
		// Not selectable without a binary: drop them from the default set.
		keep := vs[:0]
		for _, v := range vs {
			if v.server == "candidate" {
				if *only != "" {
					return fmt.Errorf("-only %s: needs -candidate", v.name)
				}
				continue
			}
			keep = append(keep, v)
		}
		vs = keep
	}
	if _, err := exec.LookPath("wrk"); err != nil {
		return fmt.Errorf("wrk not found (bench/lb.sh installs it): %w", err)
	}
	tmp, err := os.MkdirTemp("", "autoheal-bench-lb")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	var procs []*proc
	defer func() {
		// Stop in reverse order: front ends before the backends they use.
		for i := len(procs) - 1; i >= 0; i-- {
			procs[i].stop()
		}
	}()

	backends, bprocs, err := startBackends(ctx)
	procs = append(procs, bprocs...)
	if err != nil {
		return err
	}

	ports := map[string]int{}
	for _, v := range vs {
		if v.name == "direct" {
			v.url = "http://" + backends[0] + "/"
			continue
		}
		ports[v.name] = freeport.Next()
		v.url = fmt.Sprintf("http://127.0.0.1:%d/", ports[v.name])
	}

	// Start each server the selected variants need, once; a server that
	// fails marks its variants failed and the others still run.
	apiAddrs := map[string]string{}
	for _, server := range []string{"haproxy", "nginx", "autoheal", "candidate"} {
		var mine []*variant
		for _, v := range vs {
			if v.server == server {
				mine = append(mine, v)
			}
		}
		if len(mine) == 0 {
			continue
		}
		var p *proc
		var err error
		switch server {
		case "haproxy":
			p, err = startHAProxy(tmp, backends, ports)
		case "nginx":
			p, err = startNginx(tmp, backends, ports)
		case "autoheal", "candidate":
			bin := *autoheal
			if server == "candidate" {
				bin = *candidate
			} else if *unbuilt != "" {
				err = fmt.Errorf("go build ./cmd/autoheal failed:\n%s", *unbuilt)
				break
			}
			apiAddrs[server] = fmt.Sprintf("127.0.0.1:%d", freeport.Next())
			p, err = startAutoheal(tmp, server, bin, apiAddrs[server], backends, ports)
		}
		if err != nil {
			for _, v := range mine {
				v.failed = fmt.Sprintf("%s: %v", server, err)
			}
			fmt.Fprintf(os.Stderr, "%s did not start: %s\n", server, firstLine(err.Error()))
			continue
		}
		procs = append(procs, p)
		for _, v := range mine {
			v.proc = p
		}
		// Each variant is ready, or failed, on its own: autoheal's tcp
		// listener may work while its http one does not.
		for _, v := range mine {
			err := waitOK(ctx, p, v.url, startTimeout)
			if err == nil && apiAddrs[server] != "" {
				err = waitHealthy(ctx, p, apiAddrs[server], v)
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err != nil {
				v.failed = p.failure(fmt.Errorf("%s: %w", server, err))
				fmt.Fprintf(os.Stderr, "%s failed: %s\n", v.name, firstLine(v.failed))
			}
		}
	}

	fmt.Printf("load balancer: wrk -t%d -c%d -d%s --latency, %d alternated round(s), backends %s and %s, %d CPUs, load average %s\n",
		*threads, *connections, *duration, *rounds, backends[0], backends[1], runtime.NumCPU(), loadAverage())
	fmt.Printf("%s\n", versions())
	if *cpuProfile != "" && (!contains(variantNamesOf(vs), "autoheal-http") || failed(vs, "autoheal-http")) {
		fmt.Fprintln(os.Stderr, "cpu profile: not taken, autoheal-http is not measured")
	}
	for r := 0; r < *rounds; r++ {
		for _, v := range roundOrder(vs, r) {
			if v.failed != "" {
				continue
			}
			var prof chan error
			if *cpuProfile != "" && r == 0 && v.name == "autoheal-http" {
				prof = make(chan error, 1)
				go func() { prof <- profile(ctx, apiAddrs["autoheal"], *cpuProfile) }()
			}
			var cpu0 time.Duration
			if v.proc != nil {
				cpu0 = groupCPU(v.proc.cmd.Process.Pid)
			}
			res, err := runWrk(ctx, v.url)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if v.proc != nil && res.rps > 0 {
				res.cpuPerReq = (groupCPU(v.proc.cmd.Process.Pid) - cpu0) / time.Duration(res.rps*duration.Seconds())
			}
			if err != nil {
				res.detail = err.Error()
				res.errors = -1
			}
			v.runs = append(v.runs, res)
			fmt.Fprintf(os.Stderr, "round %d/%d %-14s %s\n", r+1, *rounds, v.name, res.summary())
			if prof != nil {
				if err := <-prof; err != nil {
					fmt.Fprintf(os.Stderr, "cpu profile: %v\n", err)
				} else {
					fmt.Fprintf(os.Stderr, "cpu profile of autoheal written to %s; view it with: go tool pprof -http=:8000 %s %s\n", *cpuProfile, *autoheal, *cpuProfile)
				}
			}
		}
	}
	report(vs)
	return nil
}

// startBackends starts the two backends every variant reaches.
func startBackends(ctx context.Context) ([]string, []*proc, error) {
	var backends []string
	var procs []*proc
	for _, id := range []string{"b1", "b2"} {
		addr := fmt.Sprintf("127.0.0.1:%d", freeport.Next())
		p, err := start([]string{"AUTOHEAL_INSTANCE_ID=" + id}, *web, "--listen", addr)
		if err != nil {
			return nil, procs, fmt.Errorf("backend %s: %w", id, err)
		}
		procs = append(procs, p)
		if err := waitOK(ctx, p, "http://"+addr+"/", startTimeout); err != nil {
			return nil, procs, fmt.Errorf("backend %s: %s", id, p.failure(err))
		}
		backends = append(backends, addr)
	}
	return backends, procs, nil
}

// summary is one line of progress.
func (r result) summary() string {
	if r.errors < 0 {
		return "failed: " + firstLine(r.detail)
	}
	s := fmt.Sprintf("%.0f req/s, p50 %s, p99 %s", r.rps, ms(r.p50), ms(r.p99))
	if r.cpuPerReq > 0 {
		s += fmt.Sprintf(", server CPU %.1fµs/req", float64(r.cpuPerReq)/1e3)
	}
	if r.errors > 0 {
		s += fmt.Sprintf(", %d errors (%s)", r.errors, r.detail)
	}
	return s
}

// stats are a variant's medians over its successful runs.
type stats struct {
	ok       bool
	rps      float64
	p50, p99 time.Duration
	cpu      time.Duration // server CPU per request; 0 when not measured
	errors   int           // summed over rounds
	failed   int           // runs wrk could not complete
}

func (v *variant) stats() stats {
	var s stats
	var rps, p50, p99, cpu []float64
	for _, r := range v.runs {
		if r.errors < 0 {
			s.failed++
			continue
		}
		if r.cpuPerReq > 0 {
			cpu = append(cpu, float64(r.cpuPerReq))
		}
		rps = append(rps, r.rps)
		p50 = append(p50, float64(r.p50))
		p99 = append(p99, float64(r.p99))
		s.errors += r.errors
	}
	if len(rps) == 0 {
		return s
	}
	s.ok = true
	s.rps = median(rps)
	s.p50 = time.Duration(median(p50))
	s.p99 = time.Duration(median(p99))
	if len(cpu) > 0 {
		s.cpu = time.Duration(median(cpu))
	}
	return s
}

func report(vs []*variant) {
	byName := map[string]*variant{}
	for _, v := range vs {
		byName[v.name] = v
	}
	fmt.Printf("\n%-14s %10s %9s %9s %7s %10s %10s %12s\n", "variant", "RPS", "p50", "p99", "errors", "RPS ratio", "p99 ratio", "CPU µs/req")
	var failures []*variant
	for _, v := range vs {
		if v.failed != "" {
			fmt.Printf("%-14s failed (below): %s\n", v.name, clip(strings.TrimSuffix(firstLine(v.failed), ":"), 80))
			failures = append(failures, v)
			continue
		}
		s := v.stats()
		if !s.ok {
			fmt.Printf("%-14s every wrk run failed (below): %s\n", v.name, clip(firstLine(v.runs[0].detail), 60))
			failures = append(failures, v)
			continue
		}
		errs := strconv.Itoa(s.errors)
		if s.failed > 0 {
			errs += fmt.Sprintf("+%d failed runs", s.failed)
		}
		rr, pr := "-", "-"
		if b := byName[v.base]; b != nil {
			if bs := b.stats(); bs.ok {
				rr = fmt.Sprintf("%.2fx", s.rps/bs.rps)
				pr = fmt.Sprintf("%.2fx", float64(s.p99)/float64(bs.p99))
			}
		}
		cpu := "-"
		if s.cpu > 0 {
			cpu = fmt.Sprintf("%.1f", float64(s.cpu)/1e3)
		}
		fmt.Printf("%-14s %10.0f %9s %9s %7s %10s %10s %12s\n", v.name, s.rps, ms(s.p50), ms(s.p99), errs, rr, pr, cpu)
	}
	fmt.Println("\nratios are to haproxy-http, for the tcp rows to haproxy-tcp; errors are non-2xx/3xx responses and socket errors summed over rounds;")
	fmt.Println("CPU µs/req is the proxy's own CPU time (all its processes, user and system) per request, median over rounds")
	// Per-round ratios pair each run with its base's run of the same
	// round, seconds apart: the machine's drift over a long run (±15%
	// within minutes here) cancels out of them, not out of the medians.
	var pairs [][2]*variant
	for _, v := range vs {
		if b := byName[v.base]; b != nil && b != v {
			pairs = append(pairs, [2]*variant{v, b})
		}
		if cur := byName["autoheal-"+strings.TrimPrefix(v.name, "candidate-")]; v.server == "candidate" && cur != nil {
			pairs = append(pairs, [2]*variant{v, cur})
		}
	}
	if len(pairs) > 0 && *rounds > 1 {
		fmt.Println("\nper-round RPS ratios (each run over its base's run in the same round): median [quartiles]")
		for _, p := range pairs {
			if q, n := pairedRatios(p[0], p[1]); n > 0 {
				fmt.Printf("  %-14s / %-14s %.3f [%.3f–%.3f] over %d rounds\n", p[0].name, p[1].name, q[1], q[0], q[2], n)
			}
		}
	}
	for _, v := range failures {
		fmt.Printf("\n%s failed:\n", v.name)
		msg := v.failed
		if msg == "" {
			msg = v.runs[0].detail
		}
		for _, l := range strings.Split(strings.TrimRight(msg, "\n"), "\n") {
			fmt.Printf("  %s\n", l)
		}
	}

	if byName["autoheal-http"] == nil && byName["autoheal-tcp"] == nil {
		return
	}
	fmt.Printf("\ntarget: autoheal http >= %.1fx HAProxy's RPS with p99 <= %.1fx HAProxy's; autoheal tcp >= %.1fx HAProxy tcp's RPS; no errors\n",
		httpMinRPS, httpMaxP99, tcpMinRPS)
	if v := byName["autoheal-http"]; v != nil {
		fmt.Printf("  %-5s %s\n", "http", judge(v, byName["haproxy-http"], httpMinRPS, httpMaxP99))
	}
	if v := byName["autoheal-tcp"]; v != nil {
		fmt.Printf("  %-5s %s\n", "tcp", judge(v, byName["haproxy-tcp"], tcpMinRPS, 0))
	}
}

// pairedRatios are the quartiles of v's RPS over base's, round by round,
// over the rounds both completed.
func pairedRatios(v, base *variant) (q [3]float64, n int) {
	var rs []float64
	for i := range min(len(v.runs), len(base.runs)) {
		a, b := v.runs[i], base.runs[i]
		if a.errors < 0 || b.errors < 0 || b.rps == 0 {
			continue
		}
		rs = append(rs, a.rps/b.rps)
	}
	if len(rs) == 0 {
		return q, 0
	}
	sort.Float64s(rs)
	return [3]float64{quantile(rs, 0.25), quantile(rs, 0.5), quantile(rs, 0.75)}, len(rs)
}

// quantile of sorted xs, interpolating between neighbours.
func quantile(xs []float64, f float64) float64 {
	pos := f * float64(len(xs)-1)
	lo := int(pos)
	if lo+1 >= len(xs) {
		return xs[len(xs)-1]
	}
	return xs[lo] + (xs[lo+1]-xs[lo])*(pos-float64(lo))
}

// judge says whether v meets its target against base; maxP99 0 means no
// latency target.
func judge(v, base *variant, minRPS, maxP99 float64) string {
	if base == nil {
		return "not measured (run its HAProxy baseline too)"
	}
	s, bs := v.stats(), base.stats()
	if !s.ok {
		return fmt.Sprintf("NOT met (%s was not measured)", v.name)
	}
	if !bs.ok {
		return fmt.Sprintf("not measured (%s was not measured)", base.name)
	}
	rr := s.rps / bs.rps
	out := fmt.Sprintf("RPS %.2fx %s", rr, verdict(rr >= minRPS))
	if maxP99 > 0 {
		pr := float64(s.p99) / float64(bs.p99)
		out += fmt.Sprintf(", p99 %.2fx %s", pr, verdict(pr <= maxP99))
	}
	out += fmt.Sprintf(", errors %d %s", s.errors, verdict(s.errors == 0 && s.failed == 0))
	return out
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/1e6) }

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return quantile(s, 0.5)
}

// clip shortens s to n runes for a table cell.
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// roundOrder is the order of round r, a shuffle seeded by r: in a fixed
// order each variant would always run right after the same other one, and
// what a run leaves behind (sockets in TIME_WAIT, a backend's garbage)
// would always fall on it.
func roundOrder(vs []*variant, r int) []*variant {
	out := append([]*variant(nil), vs...)
	rand.New(rand.NewPCG(uint64(r), 0x6175746f6865616c)).Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// loadAverage is the 1-minute load average: other work on the machine
// makes every figure noisier.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(b))[0]
}

// versions names the servers measured, for the record.
func versions() string {
	v := func(pattern string, argv ...string) string {
		out, _ := exec.Command(argv[0], argv[1:]...).CombinedOutput()
		if m := regexp.MustCompile(pattern).FindString(string(out)); m != "" {
			return m
		}
		return argv[0] + " ?"
	}
	return strings.Join([]string{
		v(`HAProxy version \S+`, "haproxy", "-v"),
		v(`nginx/\S+`, "nginx", "-v"),
		v(`wrk \S+`, "wrk", "-v"),
		runtime.Version() + " (this benchmark; autoheal's is in its binary)",
	}, ", ")
}

// wrk output lines this parses.
var (
	rpsLine     = regexp.MustCompile(`(?m)^Requests/sec:\s+([\d.]+)`)
	latencyLine = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([\d.]+)(us|ms|s|m)\s*$`)
	socketLine  = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
	non2xxLine  = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
)

func runWrk(ctx context.Context, url string) (result, error) {
	var res result
	cmd := exec.CommandContext(ctx, "wrk",
		"-t"+strconv.Itoa(*threads), "-c"+strconv.Itoa(*connections), "-d"+strconv.Itoa(int(duration.Seconds()))+"s",
		"--latency", url)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return res, fmt.Errorf("wrk %s: %w\n%s", url, err, out)
	}
	return parseWrk(string(out))
}

func parseWrk(out string) (result, error) {
	var res result
	m := rpsLine.FindStringSubmatch(out)
	if m == nil {
		return res, fmt.Errorf("no Requests/sec in wrk's output:\n%s", out)
	}
	res.rps, _ = strconv.ParseFloat(m[1], 64)
	for _, m := range latencyLine.FindAllStringSubmatch(out, -1) {
		f, _ := strconv.ParseFloat(m[2], 64)
		unit := map[string]float64{"us": 1e3, "ms": 1e6, "s": 1e9, "m": 60e9}[m[3]]
		d := time.Duration(f * unit)
		if m[1] == "50" {
			res.p50 = d
		} else {
			res.p99 = d
		}
	}
	if res.p50 == 0 || res.p99 == 0 {
		return res, fmt.Errorf("no latency distribution in wrk's output:\n%s", out)
	}
	var details []string
	if m := socketLine.FindStringSubmatch(out); m != nil {
		for _, s := range m[1:] {
			n, _ := strconv.Atoi(s)
			res.errors += n
		}
		details = append(details, strings.TrimSpace(m[0]))
	}
	if m := non2xxLine.FindStringSubmatch(out); m != nil {
		n, _ := strconv.Atoi(m[1])
		res.errors += n
		details = append(details, m[0])
	}
	if res.rps == 0 {
		return res, fmt.Errorf("no request completed:\n%s", out)
	}
	res.detail = strings.Join(details, "; ")
	return res, nil
}

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
		healthy, status, err := targetHealth(ctx, url)
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

func targetHealth(ctx context.Context, url string) (healthy, status int, err error) {
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
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

// groupCPU is the CPU time (user and system) of the processes in process
// group pgid, as /proc/PID/stat counts it (in clock ticks of 10ms).
func groupCPU(pgid int) time.Duration {
	ents, _ := os.ReadDir("/proc")
	var ticks int64
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		// f[0] is field 3 (state): pgrp is field 5, utime 14, stime 15.
		if len(f) < 13 || f[2] != strconv.Itoa(pgid) {
			continue
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		k, _ := strconv.ParseInt(f[12], 10, 64)
		ticks += u + k
	}
	return time.Duration(ticks) * 10 * time.Millisecond
}
