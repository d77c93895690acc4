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
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"regexp"
	"runtime"
	"strings"
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
	vs, err := variantsToRun()
	if err != nil {
		return err
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
	ports := assignURLs(vs, backends)
	sprocs, apiAddrs, err := startServers(ctx, tmp, vs, backends, ports)
	procs = append(procs, sprocs...)
	if err != nil {
		return err
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
			if err := measure(ctx, v, r, apiAddrs["autoheal"]); err != nil {
				return err
			}
		}
	}
	report(vs)
	return nil
}

// variantsToRun are the variants -only selects, without the candidate ones
// when there is no -candidate binary.
func variantsToRun() ([]*variant, error) {
	vs, err := selectVariants(*only)
	if err != nil || *candidate != "" {
		return vs, err
	}
	// Not selectable without a binary: drop them from the default set.
	keep := vs[:0]
	for _, v := range vs {
		if v.server == "candidate" {
			if *only != "" {
				return nil, fmt.Errorf("-only %s: needs -candidate", v.name)
			}
			continue
		}
		keep = append(keep, v)
	}
	return keep, nil
}

// assignURLs gives each variant its URL: the first backend for direct, a
// fresh port of its server for the others, which it returns by variant.
func assignURLs(vs []*variant, backends []string) map[string]int {
	ports := map[string]int{}
	for _, v := range vs {
		if v.name == "direct" {
			v.url = "http://" + backends[0] + "/"
			continue
		}
		ports[v.name] = freeport.Next()
		v.url = fmt.Sprintf("http://127.0.0.1:%d/", ports[v.name])
	}
	return ports
}

// startServers starts each server the variants need, once, and waits for
// each variant to be ready. A server that fails marks its variants failed
// and the others still run; the error is only ctx's. It returns the
// servers started and the API address of each autoheal among them.
func startServers(ctx context.Context, tmp string, vs []*variant, backends []string, ports map[string]int) ([]*proc, map[string]string, error) {
	var procs []*proc
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
		p, err := startServer(server, tmp, backends, ports, apiAddrs)
		if err != nil {
			for _, v := range mine {
				v.failed = fmt.Sprintf("%s: %v", server, err)
			}
			fmt.Fprintf(os.Stderr, "%s did not start: %s\n", server, firstLine(err.Error()))
			continue
		}
		procs = append(procs, p)
		if err := awaitVariants(ctx, p, server, apiAddrs[server], mine); err != nil {
			return procs, apiAddrs, err
		}
	}
	return procs, apiAddrs, nil
}

// startServer starts server with the listeners of every variant, noting
// an autoheal's API address in apiAddrs.
func startServer(server, tmp string, backends []string, ports map[string]int, apiAddrs map[string]string) (*proc, error) {
	switch server {
	case "haproxy":
		return startHAProxy(tmp, backends, ports)
	case "nginx":
		return startNginx(tmp, backends, ports)
	}
	bin := *autoheal
	if server == "candidate" {
		bin = *candidate
	} else if *unbuilt != "" {
		return nil, fmt.Errorf("go build ./cmd/autoheal failed:\n%s", *unbuilt)
	}
	apiAddrs[server] = fmt.Sprintf("127.0.0.1:%d", freeport.Next())
	return startAutoheal(tmp, server, bin, apiAddrs[server], backends, ports)
}

// awaitVariants waits for each variant p serves to answer, and, with an
// autoheal (apiAddr not empty), for both its targets to be healthy. Each
// variant is ready, or failed, on its own: autoheal's tcp listener may
// work while its http one does not. The error is only ctx's.
func awaitVariants(ctx context.Context, p *proc, server, apiAddr string, mine []*variant) error {
	for _, v := range mine {
		v.proc = p
	}
	for _, v := range mine {
		err := waitOK(ctx, p, v.url, startTimeout)
		if err == nil && apiAddr != "" {
			err = waitHealthy(ctx, p, apiAddr, v)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			v.failed = p.failure(fmt.Errorf("%s: %w", server, err))
			fmt.Fprintf(os.Stderr, "%s failed: %s\n", v.name, firstLine(v.failed))
		}
	}
	return nil
}

// measure runs wrk once against v in round r, with its server's CPU time,
// and records the result. In the first round of autoheal-http it takes
// the CPU profile -cpu-profile-autoheal asks for from autoheal's API at
// apiAddr. The error is only ctx's.
func measure(ctx context.Context, v *variant, r int, apiAddr string) error {
	var prof chan error
	if *cpuProfile != "" && r == 0 && v.name == "autoheal-http" {
		prof = make(chan error, 1)
		go func() { prof <- profile(ctx, apiAddr, *cpuProfile) }()
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
