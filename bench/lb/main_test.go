package main

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

func TestParseWrk(t *testing.T) {
	const head = `Running 1s test @ http://127.0.0.1:18081/
  1 threads and 5 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   485.51us    1.00ms   8.32ms   87.46%
    Req/Sec    46.09k     2.10k   49.00k    63.64%
  Latency Distribution
     50%   79.00us
     75%  153.00us
     90%    1.98ms
`
	for _, tc := range []struct {
		name     string
		out      string
		want     result
		wantFail bool
	}{
		{
			name: "clean",
			out: head + `     99%    4.08ms
  50192 requests in 1.10s, 6.17MB read
Requests/sec:  45633.82
Transfer/sec:      5.61MB
`,
			want: result{rps: 45633.82, p50: 79 * time.Microsecond, p99: 4080 * time.Microsecond},
		},
		{
			name: "errors",
			out: head + `     99%    1.50s
  50192 requests in 1.10s, 6.17MB read
  Socket errors: connect 1, read 2, write 0, timeout 3
  Non-2xx or 3xx responses: 40
Requests/sec:  100.50
Transfer/sec:      5.61MB
`,
			want: result{rps: 100.5, p50: 79 * time.Microsecond, p99: 1500 * time.Millisecond, errors: 46,
				detail: "Socket errors: connect 1, read 2, write 0, timeout 3; Non-2xx or 3xx responses: 40"},
		},
		{name: "refused", out: "unable to connect to 127.0.0.1:1 Connection refused\n", wantFail: true},
		{name: "nothing completed", out: head + "     99%    0.00us\n  0 requests in 1.00s, 0B read\nRequests/sec:      0.00\n", wantFail: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseWrk(tc.out)
			if tc.wantFail {
				if err == nil {
					t.Fatalf("parseWrk = %+v, want an error", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("parseWrk = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{
		{[]float64{3}, 3},
		{[]float64{5, 1, 3}, 3},
		{[]float64{4, 1, 3, 2}, 2.5},
	} {
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// TestPairedRatios: each run is paired with its base's run of the same
// round; a round either failed is left out.
func TestPairedRatios(t *testing.T) {
	runs := func(rps ...float64) []result {
		var rs []result
		for _, r := range rps {
			if r < 0 {
				rs = append(rs, result{errors: -1})
				continue
			}
			rs = append(rs, result{rps: r})
		}
		return rs
	}
	v := &variant{runs: runs(300, 100, -1, 200, 150)}
	base := &variant{runs: runs(100, 100, 100, 100, -1)}
	q, n := pairedRatios(v, base)
	if n != 3 || q != [3]float64{1.5, 2, 2.5} {
		t.Errorf("pairedRatios = %v over %d rounds, want [1.5 2 2.5] over 3", q, n)
	}
	if _, n := pairedRatios(&variant{runs: runs(-1)}, base); n != 0 {
		t.Errorf("no round in common: got %d rounds", n)
	}
}

// TestGroupCPU: the CPU time of a process group grows with what its
// processes burn (in clock ticks of 10ms). The group is a busy shell of its
// own: the test binary's group is shared with whatever runs the tests.
func TestGroupCPU(t *testing.T) {
	cmd := exec.Command("/bin/sh", "-c", "while :; do :; done")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	deadline := time.Now().Add(30 * time.Second)
	for groupCPU(cmd.Process.Pid) < 200*time.Millisecond {
		if time.Now().After(deadline) {
			t.Fatalf("a busy shell's group shows %s of CPU after 30s", groupCPU(cmd.Process.Pid))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := groupCPU(os.Getpid() + 1<<22); got != 0 { // no such group
		t.Fatalf("a group with no process shows %s", got)
	}
}

// TestRoundOrder: every round runs each variant once, and over the rounds
// of a run each variant runs right after each other one and in each place.
func TestRoundOrder(t *testing.T) {
	vs := []*variant{{name: "a"}, {name: "b"}, {name: "c"}}
	after := map[string]map[string]bool{}
	place := map[string]map[int]bool{}
	for r := range 30 {
		order := roundOrder(vs, r)
		seen := map[string]bool{}
		for i, v := range order {
			seen[v.name] = true
			if place[v.name] == nil {
				place[v.name], after[v.name] = map[int]bool{}, map[string]bool{}
			}
			place[v.name][i] = true
			if i > 0 {
				after[order[i-1].name][v.name] = true
			}
		}
		if len(order) != 3 || len(seen) != 3 {
			t.Fatalf("round %d: %v", r, order)
		}
	}
	for _, v := range []string{"a", "b", "c"} {
		if len(after[v]) != 2 || len(place[v]) != 3 {
			t.Errorf("%s: followed by %v, in places %v over 30 rounds", v, after[v], place[v])
		}
	}
}
