package main

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

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

// report prints the table of medians, the per-round ratios, why each
// failed variant failed, and the verdicts on the targets.
func report(vs []*variant) {
	byName := map[string]*variant{}
	for _, v := range vs {
		byName[v.name] = v
	}
	fmt.Printf("\n%-14s %10s %9s %9s %7s %10s %10s %12s\n", "variant", "RPS", "p50", "p99", "errors", "RPS ratio", "p99 ratio", "CPU µs/req")
	var failures []*variant
	for _, v := range vs {
		if !reportRow(v, byName[v.base]) {
			failures = append(failures, v)
		}
	}
	fmt.Println("\nratios are to haproxy-http, for the tcp rows to haproxy-tcp; errors are non-2xx/3xx responses and socket errors summed over rounds;")
	fmt.Println("CPU µs/req is the proxy's own CPU time (all its processes, user and system) per request, median over rounds")
	reportPairs(vs, byName)
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

// reportRow prints v's row of the table, with its ratios to base (nil when
// not measured); false when v failed, its row then saying so.
func reportRow(v, base *variant) bool {
	if v.failed != "" {
		fmt.Printf("%-14s failed (below): %s\n", v.name, clip(strings.TrimSuffix(firstLine(v.failed), ":"), 80))
		return false
	}
	s := v.stats()
	if !s.ok {
		fmt.Printf("%-14s every wrk run failed (below): %s\n", v.name, clip(firstLine(v.runs[0].detail), 60))
		return false
	}
	errs := strconv.Itoa(s.errors)
	if s.failed > 0 {
		errs += fmt.Sprintf("+%d failed runs", s.failed)
	}
	rr, pr := "-", "-"
	if base != nil {
		if bs := base.stats(); bs.ok {
			rr = fmt.Sprintf("%.2fx", s.rps/bs.rps)
			pr = fmt.Sprintf("%.2fx", float64(s.p99)/float64(bs.p99))
		}
	}
	cpu := "-"
	if s.cpu > 0 {
		cpu = fmt.Sprintf("%.1f", float64(s.cpu)/1e3)
	}
	fmt.Printf("%-14s %10.0f %9s %9s %7s %10s %10s %12s\n", v.name, s.rps, ms(s.p50), ms(s.p99), errs, rr, pr, cpu)
	return true
}

// reportPairs prints the per-round RPS ratios of each variant to its base,
// and of each candidate variant to the current autoheal's.
func reportPairs(vs []*variant, byName map[string]*variant) {
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
	if len(pairs) == 0 || *rounds <= 1 {
		return
	}
	fmt.Println("\nper-round RPS ratios (each run over its base's run in the same round): median [quartiles]")
	for _, p := range pairs {
		if q, n := pairedRatios(p[0], p[1]); n > 0 {
			fmt.Printf("  %-14s / %-14s %.3f [%.3f–%.3f] over %d rounds\n", p[0].name, p[1].name, q[1], q[0], q[2], n)
		}
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
