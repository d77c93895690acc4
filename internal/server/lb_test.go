package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/autoheal/autoheal/internal/api"
	"github.com/autoheal/autoheal/internal/api/wire"
	"github.com/autoheal/autoheal/internal/testutil"
)

// Fault tests of the load balancer: real web app instances behind an
// in-process controller, continuous load through the listener, and a fault
// in the middle. Every request counts: a non-200 answer, a transport error
// or a keep-alive connection the balancer dropped without answering is a
// failure.

// webConfig is examples/web/autoheal.yaml on a test port and with the
// built web app, with the given group size and extra target group
// settings. A new instance is probed at once (the group's startup probes,
// the target group's fast initial checks), so the example's one-second
// intervals cost no time; they keep a controller busy with four of these
// tests under -race from failing a check that was merely slow.
func webConfig(lbPort, desired int, tgExtra string) string {
	return fmt.Sprintf(`
groups:
  - name: web
    desired: %d
    launch:
      command: {{WEB}}
      ports: [http]
      stop_timeout: 5s
    health_checks:
      - type: http
        port: http
        path: /healthz
        interval: 1s
        timeout: 500ms
        unhealthy_threshold: 2
    heal:
      max_restarts: 0
      backoff_base: 10ms

load_balancers:
  - name: web
    listeners:
      - protocol: http
        listen: 127.0.0.1:%d
        target_group: web
    target_groups:
      - name: web
        protocol: http
        groups:
          - group: web
            port: http
        algorithm: round_robin
        health_check:
          path: /healthz
          interval: 1s
          timeout: 500ms
          healthy_threshold: 2
          unhealthy_threshold: 2
        deregistration_delay: 10s
        retries: 2
%s`, desired, lbPort, tgExtra)
}

// targetView is one target as GET /v1/target-groups/{name}/health shows it,
// read from the decoded JSON ($.targets..id, $.targets..state) rather than
// through the Go client's types, so that the test pins the wire format.
type targetView struct {
	ID       string
	State    string
	InFlight float64
}

func (e *env) targets(name string) ([]targetView, error) {
	code, b, err := httpGet("http://" + e.apiAddr + "/v1/target-groups/" + name + "/health")
	if err != nil {
		return nil, err
	}
	if code != 200 {
		return nil, fmt.Errorf("target health: HTTP %d: %s", code, b)
	}
	return decodeTargets(b)
}

func decodeTargets(b []byte) ([]targetView, error) {
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("target health %s: %w", b, err)
	}
	list, ok := doc["targets"].([]any)
	if !ok {
		return nil, fmt.Errorf("target health has no $.targets list: %s", b)
	}
	var out []targetView
	for _, x := range list {
		m, ok := x.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("target is not an object: %s", b)
		}
		id, _ := m["id"].(string)
		state, _ := m["state"].(string)
		if id == "" || state == "" {
			return nil, fmt.Errorf("target without $.targets..id or $.targets..state: %s", b)
		}
		inflight, _ := m["in_flight"].(float64)
		out = append(out, targetView{ID: id, State: state, InFlight: inflight})
	}
	return out, nil
}

func stateOf(ts []targetView, id string) string {
	for _, t := range ts {
		if t.ID == id {
			return t.State
		}
	}
	return ""
}

// waitHealthyTargets waits until the target group has exactly n healthy
// targets and every other target it lists is unused, and returns the
// healthy ones' ids.
func (e *env) waitHealthyTargets(name string, n int, timeout time.Duration) []string {
	e.t.Helper()
	what := fmt.Sprintf("%d healthy targets in %s", n, name)
	return testutil.Eventually(e.t, timeout, what, func() ([]string, error) {
		ts, err := e.targets(name)
		if err != nil {
			return nil, err
		}
		var ids []string
		others := false
		for _, t := range ts {
			switch t.State {
			case "healthy":
				ids = append(ids, t.ID)
			case "unused":
			default:
				others = true
			}
		}
		if len(ids) != n || others {
			return ids, fmt.Errorf("targets %+v", ts)
		}
		return ids, nil
	})
}

// served is one answered request of a load run.
type served struct {
	id         string
	start, end time.Time
}

// loadGen sends GET requests through the load balancer from a few
// keep-alive clients, each in a loop, and counts every one.
type loadGen struct {
	t     *testing.T
	base  string
	stopc chan struct{}
	wg    sync.WaitGroup
	once  sync.Once

	total, failed atomic.Int64

	mu     sync.Mutex
	errs   []string // the first few failures
	maxLat time.Duration
	maxReq string // the slowest request
	slow   int    // answers that took over 100ms
	byID   map[string]int
	log    []served
}

// startLoad starts, for each path, that many client loops (for example 8
// on "/" and 2 on "/slow?ms=300"). They stop at test cleanup at the
// latest.
func startLoad(t *testing.T, base string, clients map[string]int) *loadGen {
	l := &loadGen{t: t, base: base, stopc: make(chan struct{}), byID: map[string]int{}}
	for path, n := range clients {
		for range n {
			l.wg.Add(1)
			go l.client(path)
		}
	}
	t.Cleanup(l.stop)
	return l
}

func (l *loadGen) stop() {
	l.once.Do(func() {
		close(l.stopc)
		l.wg.Wait()
	})
}

// waitRequests waits until n more requests than now were answered.
func (l *loadGen) waitRequests(n int64, timeout time.Duration) {
	l.t.Helper()
	want := l.total.Load() + n
	waitFor(l.t, timeout, fmt.Sprintf("%d more requests through the load balancer", n), func() bool {
		return l.total.Load() >= want
	})
}

func (l *loadGen) servedBy(id string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.byID[id]
}

func (l *loadGen) client(path string) {
	defer l.wg.Done()
	tr := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 1, DisableCompression: true}
	defer tr.CloseIdleConnections()
	// Longer than the hold timeout: a held request is slow, not failed.
	c := &http.Client{Transport: tr, Timeout: 20 * time.Second}
	for {
		select {
		case <-l.stopc:
			return
		default:
		}
		l.one(c, path)
	}
}

// one sends a request and records it. A request the client transport had
// to send twice (a reused connection closed before any answer) is a
// failure too: the balancer must not drop a client connection it owes an
// answer, and http.Transport would otherwise hide that by retrying a GET.
func (l *loadGen) one(c *http.Client, path string) {
	var conns atomic.Int32
	trace := &httptrace.ClientTrace{GotConn: func(httptrace.GotConnInfo) { conns.Add(1) }}
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", l.base+path, nil)
	start := time.Now()
	resp, err := c.Do(req)
	var body []byte
	if err == nil {
		body, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	end := time.Now()
	l.total.Add(1)
	var why string
	switch {
	case err != nil:
		why = err.Error()
	case resp.StatusCode != 200:
		why = fmt.Sprintf("HTTP %d: %q", resp.StatusCode, body)
	case !strings.HasPrefix(string(body), "hello from "):
		why = fmt.Sprintf("unexpected body %q", body)
	case strings.HasPrefix(path, "/slow") && !strings.Contains(string(body), "done after"):
		why = fmt.Sprintf("slow answer cut short: %q", body)
	case conns.Load() > 1:
		why = fmt.Sprintf("sent %d times: the balancer closed a keep-alive connection without answering", conns.Load())
	}
	id, _, _ := strings.Cut(strings.TrimPrefix(string(body), "hello from "), "\n")
	l.mu.Lock()
	defer l.mu.Unlock()
	if why != "" {
		l.failed.Add(1)
		if len(l.errs) < 5 {
			l.errs = append(l.errs, fmt.Sprintf("%s GET %s after %s: %s", start.Format("15:04:05.000"), path, end.Sub(start).Round(time.Millisecond), why))
		}
		return
	}
	l.byID[id]++
	l.log = append(l.log, served{id: id, start: start, end: end})
	if d := end.Sub(start); d > l.maxLat {
		l.maxLat = d
		l.maxReq = fmt.Sprintf("GET %s at %s by %s", path, start.Format("15:04:05.000"), id)
	}
	if end.Sub(start) > 100*time.Millisecond {
		l.slow++
	}
}

// check stops the load and fails the test on any failed request or too
// few requests, logging the counts.
func (l *loadGen) check(e *env) {
	l.t.Helper()
	l.stop()
	l.mu.Lock()
	defer l.mu.Unlock()
	ids := make([]string, 0, len(l.byID))
	for id := range l.byID {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var per []string
	for _, id := range ids {
		per = append(per, fmt.Sprintf("%s:%d", id, l.byID[id]))
	}
	var m string
	if h, err := e.client.TargetHealth(context.Background(), "web"); err == nil {
		m = fmt.Sprintf("lb metrics: requests %d, 2xx %d, elb 5xx %d, retries %d",
			h.Metrics.RequestCount, h.Metrics.HTTPCodeTarget2XX, h.Metrics.HTTPCodeELB5XX, h.Metrics.RetryCount)
	}
	l.t.Logf("load: %d requests, %d failed, max latency %s (%s), %d over 100ms; served by %s; %s",
		l.total.Load(), l.failed.Load(), l.maxLat.Round(time.Millisecond), l.maxReq, l.slow, strings.Join(per, " "), m)
	if n := l.failed.Load(); n > 0 {
		l.t.Errorf("%d of %d requests failed; first ones:\n  %s\nevents:\n%s", n, l.total.Load(), strings.Join(l.errs, "\n  "), e.dumpEvents())
	}
	if n := l.total.Load(); n <= 100 {
		l.t.Errorf("only %d requests went through: the load did not run", n)
	}
}

// startWeb starts the controller with the web group behind the load
// balancer and waits until n instances are InService and n targets
// healthy. It returns the env and the listener's base URL.
func startWeb(t *testing.T, n int, tgExtra string) (*env, string) {
	t.Helper()
	port := freePort(t)
	e := startInProcess(t, writeConfig(t, webConfig(port, n, tgExtra)), "")
	e.waitInService(n, 20*time.Second)
	e.waitHealthyTargets("web", n, 20*time.Second)
	return e, fmt.Sprintf("http://127.0.0.1:%d", port)
}

// waitReplaced waits until the group has n InService instances, none of
// them old, and the target group has n healthy targets (and nothing else
// but unused ones). It returns the healthy targets' ids.
func (e *env) waitReplaced(n int, old string, timeout time.Duration) []string {
	e.t.Helper()
	waitFor(e.t, timeout, fmt.Sprintf("%s replaced by a new InService instance", old), func() bool {
		live := e.live()
		inService := 0
		for _, in := range live {
			if in.ID == old {
				return false
			}
			if in.State == "InService" {
				inService++
			}
		}
		return inService == n && len(live) == n
	})
	healthy := e.waitHealthyTargets("web", n, timeout)
	if slices.Contains(healthy, old) {
		e.t.Fatalf("target %s of a replaced instance is still healthy: %v", old, healthy)
	}
	return healthy
}

func instanceIDs(ins []wire.Instance) []string {
	var ids []string
	for _, in := range ins {
		ids = append(ids, in.ID)
	}
	return ids
}

// assertLaunched checks how many instances the group ever launched: a
// test that causes one replacement must see exactly one more than it
// started with, else something else (a check failing under load) replaced
// an instance and the test did not test what it means to.
func (e *env) assertLaunched(want int) {
	e.t.Helper()
	st, err := e.client.Status(context.Background(), true)
	if err != nil {
		e.t.Fatal(err)
	}
	if len(st.Instances) != want {
		var ins, evs strings.Builder
		for _, in := range st.Instances {
			fmt.Fprintf(&ins, "  %s %s: %s\n", in.ID, in.State, in.Cause)
		}
		list, err := e.client.Events(context.Background(), api.EventsQuery{Limit: 10000})
		for _, ev := range list {
			fmt.Fprintf(&evs, "%s %-20s %s %s\n", ev.Time.Format("15:04:05.000"), ev.Type, ev.Instance, ev.Message)
		}
		e.t.Fatalf("%d instances launched, want %d:\n%sevents (%v):\n%s", len(st.Instances), want, ins.String(), err, evs.String())
	}
}

func TestLBKillOneOfThreeUnderLoad(t *testing.T) {
	t.Parallel()
	e, base := startWeb(t, 3, "")
	before := instanceIDs(e.live())
	load := startLoad(t, base, map[string]int{"/": 8})
	load.waitRequests(100, 20*time.Second)

	victim := e.live()[0]
	if err := syscall.Kill(victim.Pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill %d: %v", victim.Pid, err)
	}
	healthy := e.waitReplaced(3, victim.ID, 20*time.Second)
	var replacement string
	for _, id := range healthy {
		if !slices.Contains(before, id) {
			replacement = id
		}
	}
	if replacement == "" {
		t.Fatalf("no new target among %v (before %v)", healthy, before)
	}
	waitFor(t, 10*time.Second, "the replacement to serve requests", func() bool { return load.servedBy(replacement) > 0 })
	load.check(e)
	e.assertLaunched(4)
}

func TestLBSingleInstanceReplacedWithoutErrors(t *testing.T) {
	t.Parallel()
	e, base := startWeb(t, 1, "        hold_timeout: 10s\n")
	load := startLoad(t, base, map[string]int{"/": 8})
	load.waitRequests(100, 20*time.Second)

	victim := e.live()[0]
	if err := syscall.Kill(victim.Pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill %d: %v", victim.Pid, err)
	}
	killed := time.Now()
	healthy := e.waitReplaced(1, victim.ID, 20*time.Second)
	waitFor(t, 10*time.Second, "the replacement to serve requests", func() bool { return load.servedBy(healthy[0]) > 0 })
	load.waitRequests(100, 10*time.Second)
	load.check(e)
	e.assertLaunched(2)

	// Requests during the gap were held, not failed: they only took
	// longer. The gap runs from the kill to the replacement's first answer.
	load.mu.Lock()
	var firstAnswer time.Time
	for _, s := range load.log {
		if s.id == healthy[0] && (firstAnswer.IsZero() || s.end.Before(firstAnswer)) {
			firstAnswer = s.end
		}
	}
	var gapMax time.Duration
	held := 0
	for _, s := range load.log {
		if s.end.After(killed) && !s.start.After(firstAnswer) {
			held++
			gapMax = max(gapMax, s.end.Sub(s.start))
		}
	}
	load.mu.Unlock()
	t.Logf("gap of %s from the kill to the replacement's first answer: %d requests spanned it, the slowest took %s",
		firstAnswer.Sub(killed).Round(time.Millisecond), held, gapMax.Round(time.Millisecond))
	if held == 0 {
		t.Fatal("no request was in flight during the gap: the test did not exercise holding")
	}
}

func TestLBDeregisterUnderLoad(t *testing.T) {
	t.Parallel()
	e, base := startWeb(t, 3, "")
	load := startLoad(t, base, map[string]int{"/": 8, "/slow?ms=300": 2})
	load.waitRequests(100, 20*time.Second)

	// A slow request names its target at once and is then in flight for
	// three seconds.
	resp, err := http.Get(base + "/slow?ms=3000")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	first, err := br.ReadString('\n')
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("slow request: %d %q %v", resp.StatusCode, first, err)
	}
	victim := strings.TrimSuffix(strings.TrimPrefix(first, "hello from "), "\n")

	type result struct {
		body []byte
		err  error
	}
	dereg := make(chan result, 1)
	go func() {
		code, b, err := httpPostJSON("http://"+e.apiAddr+"/v1/target-groups/web/deregister", map[string]any{"id": victim, "wait": true}, 30*time.Second)
		if err == nil && code != 200 {
			err = fmt.Errorf("deregister: HTTP %d: %s", code, b)
		}
		dereg <- result{b, err}
	}()

	// Draining while the slow request is still in flight.
	var out []targetView
	var drainingAt time.Time
	waitFor(t, 5*time.Second, victim+" draining", func() bool {
		ts, err := e.targets("web")
		if err != nil {
			return false
		}
		out = ts
		drainingAt = time.Now()
		return stateOf(ts, victim) == "draining"
	})
	for _, tv := range out {
		if tv.ID == victim && tv.InFlight < 1 {
			t.Fatalf("%s draining with %v requests in flight, want the slow one", victim, tv.InFlight)
		}
	}
	select {
	case r := <-dereg:
		t.Fatalf("deregister with wait answered while the slow request was in flight: %s %v", r.body, r.err)
	default:
	}

	// The slow request completes; then the drain ends.
	rest, err := io.ReadAll(br)
	if err != nil || string(rest) != "done after 3000 ms\n" {
		t.Fatalf("in-flight request to the deregistered target: %q %v", rest, err)
	}
	var r result
	select {
	case r = <-dereg:
	case <-time.After(10 * time.Second):
		t.Fatal("deregister with wait did not answer after the drain")
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	ts, err := decodeTargets(r.body)
	if err != nil {
		t.Fatal(err)
	}
	if s := stateOf(ts, victim); s != "unused" {
		t.Fatalf("after the drain %s is %q, want unused: %+v", victim, s, ts)
	}
	// Unused it stays, though its instance is still InService.
	load.waitRequests(300, 20*time.Second)
	if ts, err := e.targets("web"); err != nil || stateOf(ts, victim) != "unused" {
		t.Fatalf("%s after more load: %+v %v", victim, ts, err)
	}
	reregistered := time.Now()
	load.mu.Lock()
	after, late := 0, 0
	for _, s := range load.log {
		if s.start.After(drainingAt) && s.start.Before(reregistered) {
			after++
			if s.id == victim {
				late++
			}
		}
	}
	load.mu.Unlock()
	if late > 0 {
		t.Errorf("%d of %d requests sent after %s was draining reached it", late, after, victim)
	}
	t.Logf("%d requests between deregistration and registration, none to %s", after, victim)

	// Registered again, it is healthy and takes requests again.
	if code, b, err := httpPostJSON("http://"+e.apiAddr+"/v1/target-groups/web/register", map[string]any{"id": victim}, 5*time.Second); err != nil || code != 200 {
		t.Fatalf("register: %d %s %v", code, b, err)
	}
	e.waitHealthyTargets("web", 3, 10*time.Second)
	before := load.servedBy(victim)
	waitFor(t, 10*time.Second, victim+" to serve again", func() bool { return load.servedBy(victim) > before })
	load.check(e)
	e.assertLaunched(3)
}

func TestLBInstanceTerminateDrains(t *testing.T) {
	t.Parallel()
	e, base := startWeb(t, 3, "")
	load := startLoad(t, base, map[string]int{"/": 8, "/slow?ms=300": 2})
	load.waitRequests(100, 20*time.Second)

	// A request in flight on the instance for longer than the app's own
	// one second of shutdown grace: it completes only if the group waits
	// for the load balancer's drain before it stops the instance.
	resp, err := http.Get(base + "/slow?ms=1500")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	first, err := br.ReadString('\n')
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("slow request: %d %q %v", resp.StatusCode, first, err)
	}
	victim := strings.TrimSuffix(strings.TrimPrefix(first, "hello from "), "\n")
	if _, err := e.client.Terminate(context.Background(), victim, false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, victim+" draining", func() bool {
		ts, err := e.targets("web")
		return err == nil && stateOf(ts, victim) == "draining"
	})
	rest, err := io.ReadAll(br)
	if err != nil || string(rest) != "done after 1500 ms\n" {
		t.Fatalf("in-flight request to the terminated instance: %q %v\n%s", rest, err, e.dumpEvents())
	}
	e.waitReplaced(3, victim, 20*time.Second)
	load.waitRequests(100, 10*time.Second)
	load.check(e)
	e.assertLaunched(4)
}

// httpPostJSON posts v as JSON.
func httpPostJSON(url string, v any, timeout time.Duration) (int, []byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return 0, nil, err
	}
	c := http.Client{Timeout: timeout}
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(string(b)))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	withToken(req)
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return resp.StatusCode, out, err
}
