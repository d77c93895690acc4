package lb

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/autoheal/autoheal/internal/config"
)

// backend is a real HTTP server that names itself in every answer.
type backend struct {
	name string
	srv  *httptest.Server
	hits atomic.Int64
}

func newBackend(t testing.TB, name string, h http.HandlerFunc) *backend {
	t.Helper()
	b := &backend{name: name}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		if h != nil {
			h(w, r)
			return
		}
		fmt.Fprintf(w, "%s", name)
	})
	b.srv = httptest.NewServer(mux)
	t.Cleanup(b.srv.Close)
	return b
}

func (b *backend) addr() string { return strings.TrimPrefix(b.srv.URL, "http://") }

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// start builds a balancer from a load_balancers YAML section (with
// LISTEN replaced by a free port) and returns it with its listener URL.
func start(t testing.TB, lbYAML string) (*Balancer, string) {
	t.Helper()
	addr := freeAddr(t)
	doc := "groups:\n  - name: none\n    desired: 0\n    launch: {command: /bin/true}\nload_balancers:\n" +
		strings.ReplaceAll(lbYAML, "LISTEN", addr)
	path := filepath.Join(t.TempDir(), "autoheal.yaml")
	os.WriteFile(path, []byte(doc), 0o644)
	cfg, err := config.Parse(path, []byte(doc))
	if err != nil {
		t.Fatalf("config: %v\n%s", err, doc)
	}
	b, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b, "http://" + addr
}

func waitHealthy(t testing.TB, b *Balancer, tgName string, n int) {
	t.Helper()
	tg, err := b.TargetGroup(tgName)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if tg.Health().Metrics.HealthyHostCount == n {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("target group %s: want %d healthy targets: %+v", tgName, n, tg.Health().Targets)
}

func get(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func tgYAML(algorithm string, targets ...string) string {
	var ts []string
	for _, t := range targets {
		ts = append(ts, "{"+t+"}")
	}
	return fmt.Sprintf(`  - name: lb
    listeners: [{protocol: http, listen: LISTEN, target_group: tg}]
    target_groups:
      - name: tg
        algorithm: %s
        targets: [%s]
        health_check: {path: /healthz, interval: 100ms}
        deregistration_delay: 2s
        hold_timeout: 2s
`, algorithm, strings.Join(ts, ", "))
}

func TestAlgorithms(t *testing.T) {
	t.Parallel()
	a, b2, c := newBackend(t, "a", nil), newBackend(t, "b", nil), newBackend(t, "c", nil)
	tests := []struct {
		name      string
		algorithm string
		weights   [3]int
		want      [3]int64 // hits out of 60
	}{
		{"round robin spreads evenly", "round_robin", [3]int{1, 1, 1}, [3]int64{20, 20, 20}},
		{"weights are ignored by round robin", "round_robin", [3]int{4, 1, 1}, [3]int64{20, 20, 20}},
		{"weighted round robin follows weights", "weighted_round_robin", [3]int{4, 1, 1}, [3]int64{40, 10, 10}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, x := range []*backend{a, b2, c} {
				x.hits.Store(0)
			}
			bal, url := start(t, tgYAML(tt.algorithm,
				fmt.Sprintf("address: %s, weight: %d", a.addr(), tt.weights[0]),
				fmt.Sprintf("address: %s, weight: %d", b2.addr(), tt.weights[1]),
				fmt.Sprintf("address: %s, weight: %d", c.addr(), tt.weights[2])))
			waitHealthy(t, bal, "tg", 3)
			client := &http.Client{}
			for range 60 {
				if code, _ := get(t, client, url+"/"); code != 200 {
					t.Fatalf("status %d", code)
				}
			}
			got := [3]int64{a.hits.Load(), b2.hits.Load(), c.hits.Load()}
			if got != tt.want {
				t.Fatalf("hits %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSmoothScheduleInterleaves(t *testing.T) {
	s := smoothSchedule([]int{5, 1, 1})
	want := []int{0, 0, 1, 0, 2, 0, 0}
	if fmt.Sprint(s) != fmt.Sprint(want) {
		t.Fatalf("schedule %v, want %v", s, want)
	}
	if s := smoothSchedule([]int{1000, 999, 1}); len(s) > 4096 {
		t.Fatalf("schedule of %d entries", len(s))
	}
}

func TestLeastOutstandingAvoidsBusyTarget(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var parked atomic.Int64 // requests held on slow (its health checks are not)
	slow := newBackend(t, "slow", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/block" {
			parked.Add(1)
			<-release
		}
		io.WriteString(w, "slow")
	})
	fast := newBackend(t, "fast", nil)
	bal, url := start(t, tgYAML("least_outstanding_requests", "address: "+slow.addr(), "address: "+fast.addr()))
	waitHealthy(t, bal, "tg", 2)
	// Send requests that block on slow (fast answers them at once) until
	// slow holds one: then it has one outstanding and fast none.
	var wg sync.WaitGroup
	defer func() { close(release); wg.Wait() }()
	tg, _ := bal.TargetGroup("tg")
	deadline := time.Now().Add(5 * time.Second)
	for parked.Load() < 1 && time.Now().Before(deadline) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if resp, err := http.Get(url + "/block"); err == nil {
				resp.Body.Close()
			}
		}()
		time.Sleep(20 * time.Millisecond)
	}
	if parked.Load() < 1 {
		t.Fatal("no request parked on slow")
	}
	before := fast.hits.Load()
	for range 10 {
		if _, body := get(t, http.DefaultClient, url+"/"); body != "fast" {
			t.Fatalf("request went to %q while slow had %v in flight", body, tg.Health().Targets)
		}
	}
	// At least: the target group's health checks hit fast meanwhile too.
	if fast.hits.Load()-before < 10 {
		t.Fatal("fast target did not serve the requests")
	}
}

// TestTargetKilledUnderLoad: a target that dies (its socket closed, so new
// connections are refused and kept-alive ones break) costs no request.
func TestTargetKilledUnderLoad(t *testing.T) {
	t.Parallel()
	a, b2, c := newBackend(t, "a", nil), newBackend(t, "b", nil), newBackend(t, "c", nil)
	bal, url := start(t, tgYAML("round_robin", "address: "+a.addr(), "address: "+b2.addr(), "address: "+c.addr()))
	waitHealthy(t, bal, "tg", 3)
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := client.Get(url + "/")
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, resp.Status)
					continue
				}
				ok.Add(1)
			}
		}()
	}
	// Count requests, not time: the machine may be slow.
	waitCount := func(n int64) {
		deadline := time.Now().Add(30 * time.Second)
		for ok.Load()+failed.Load() < n && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitCount(100)
	b2.srv.CloseClientConnections()
	b2.srv.Listener.Close()
	b2.srv.CloseClientConnections()
	waitCount(ok.Load() + failed.Load() + 300)
	close(stop)
	wg.Wait()
	if failed.Load() > 0 {
		t.Fatalf("%d of %d requests failed; first: %v", failed.Load(), ok.Load()+failed.Load(), firstErr.Load())
	}
	if ok.Load() < 400 {
		t.Fatalf("only %d requests in 30s", ok.Load())
	}
	tg, _ := bal.TargetGroup("tg")
	for _, th := range tg.Health().Targets {
		if th.Address == b2.addr() && th.State != StateUnhealthy {
			t.Fatalf("dead target is %s", th.State)
		}
	}
	t.Logf("%d requests, none failed", ok.Load())
}

func TestHoldUntilATargetIsHealthy(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t) // nothing listens yet
	bal, url := start(t, tgYAML("round_robin", "address: "+addr))
	tg, _ := bal.TargetGroup("tg")
	go func() {
		// Once the request is in and no target can take it: it is held.
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) && tg.Health().Metrics.RequestCount == 0 {
			time.Sleep(2 * time.Millisecond)
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "late") })}
		go srv.Serve(l)
		t.Cleanup(func() { srv.Close() })
	}()
	start := time.Now()
	code, body := get(t, http.DefaultClient, url+"/")
	if code != 200 || body != "late" {
		t.Fatalf("held request: %d %q", code, body)
	}
	t.Logf("held %v", time.Since(start))
	_ = bal
}

func TestHoldEndsIn503WithRetryAfter(t *testing.T) {
	t.Parallel()
	_, url := start(t, tgYAML("round_robin", "address: "+freeAddr(t)))
	start := time.Now()
	resp, err := http.Get(url + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("got %s, Retry-After %q", resp.Status, resp.Header.Get("Retry-After"))
	}
	if d := time.Since(start); d < 2*time.Second {
		t.Fatalf("answered after %v, before the 2s hold", d)
	}
}

// TestNonIdempotentIsNotRetried: a POST whose connection breaks after it
// was sent gets 502 and reaches one target only; a GET is retried.
func TestNonIdempotentIsNotRetried(t *testing.T) {
	t.Parallel()
	var posts atomic.Int64
	breaker := func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			posts.Add(1)
		}
		io.ReadAll(r.Body)
		// Drop the connection without answering.
		hj, _ := w.(http.Hijacker)
		c, _, _ := hj.Hijack()
		c.Close()
	}
	a := newBackend(t, "a", breaker)
	b2 := newBackend(t, "b", breaker)
	good := newBackend(t, "good", nil)
	bal, url := start(t, tgYAML("round_robin", "address: "+a.addr(), "address: "+b2.addr()))
	waitHealthy(t, bal, "tg", 2)
	resp, err := http.Post(url+"/", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 502 || posts.Load() != 1 {
		t.Fatalf("POST: %s after %d attempts, want 502 after 1", resp.Status, posts.Load())
	}

	bal2, url2 := start(t, tgYAML("round_robin", "address: "+a.addr(), "address: "+good.addr()))
	waitHealthy(t, bal2, "tg", 2)
	for range 4 {
		if code, body := get(t, http.DefaultClient, url2+"/"); code != 200 || body != "good" {
			t.Fatalf("GET: %d %q, want a retry on the good target", code, body)
		}
	}
}

func TestDeregisterDrainsInFlight(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	a := newBackend(t, "a", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-release
		}
		io.WriteString(w, "a")
	})
	b2 := newBackend(t, "b", nil)
	bal, url := start(t, tgYAML("round_robin", "address: "+a.addr(), "address: "+b2.addr()))
	waitHealthy(t, bal, "tg", 2)
	tg, _ := bal.TargetGroup("tg")
	// Get a slow request onto a: b answers its /slow at once, so send
	// them one at a time until one stays on a.
	slowDone := make(chan string, 1)
	for a.hits.Load() == 0 {
		go func() {
			resp, err := http.Get(url + "/slow")
			if err != nil {
				slowDone <- err.Error()
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			slowDone <- resp.Status + " " + string(b)
		}()
		waitFor(t, "a /slow request on a, or answered by b", func() bool { return a.hits.Load() > 0 || len(slowDone) > 0 })
		if a.hits.Load() == 0 {
			<-slowDone
		}
	}
	done, err := tg.Deregister(a.addr())
	if err != nil {
		t.Fatal(err)
	}
	if s := stateOf(tg, a.addr()); s != StateDraining {
		t.Fatalf("state %s, want draining", s)
	}
	before := a.hits.Load()
	for range 20 {
		if code, body := get(t, http.DefaultClient, url+"/"); code != 200 || body != "b" {
			t.Fatalf("during drain: %d %q", code, body)
		}
	}
	if a.hits.Load() != before {
		t.Fatal("a draining target got a new request")
	}
	close(release)
	if got := <-slowDone; got != "200 OK a" {
		t.Fatalf("in-flight request: %s", got)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("drain did not end")
	}
	if s := stateOf(tg, a.addr()); s != StateUnused {
		t.Fatalf("state %s, want unused", s)
	}
	if err := tg.Register(a.addr(), "", 0); err != nil {
		t.Fatal(err)
	}
	waitHealthy(t, bal, "tg", 2)
}

func TestDrainClosesAfterDelay(t *testing.T) {
	t.Parallel()
	a := newBackend(t, "a", func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // never answers
	})
	bal, url := start(t, strings.Replace(tgYAML("round_robin", "address: "+a.addr()), "deregistration_delay: 2s", "deregistration_delay: 300ms", 1))
	waitHealthy(t, bal, "tg", 1)
	tg, _ := bal.TargetGroup("tg")
	errc := make(chan error, 1)
	go func() {
		resp, err := http.Get(url + "/")
		if err == nil {
			resp.Body.Close()
			err = fmt.Errorf("status %s", resp.Status)
		}
		errc <- err
	}()
	waitFor(t, "the request to reach the target", func() bool { return a.hits.Load() > 0 })
	done, _ := tg.Deregister(a.addr())
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("drain did not end after the delay")
	}
	select {
	case err := <-errc:
		t.Logf("request cut after the delay: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("the request outlived the drain")
	}
}

func stateOf(tg *TargetGroup, id string) string {
	for _, th := range tg.Health().Targets {
		if th.ID == id {
			return th.State
		}
	}
	return ""
}

func TestForwardedHeadersAndHopByHop(t *testing.T) {
	t.Parallel()
	seen := make(chan http.Header, 1)
	a := newBackend(t, "a", func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Clone()
		h.Set("X-Host", r.Host)
		seen <- h
		w.Header().Set("Keep-Alive", "timeout=5")
		w.Header().Set("X-Answer", "yes")
		io.WriteString(w, "ok")
	})
	bal, url := start(t, tgYAML("round_robin", "address: "+a.addr()))
	waitHealthy(t, bal, "tg", 1)
	req, _ := http.NewRequest("GET", url+"/x", nil)
	req.Host = "example.test"
	req.Header.Set("X-Forwarded-For", "203.0.113.7")
	req.Header.Set("X-Forwarded-Proto", "spoofed")
	req.Header.Set("Connection", "X-Secret")
	req.Header.Set("X-Secret", "hop")
	req.Header.Set("Proxy-Authorization", "Basic x")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	h := <-seen
	checks := map[string]string{
		"X-Forwarded-For":     "203.0.113.7, 127.0.0.1",
		"X-Forwarded-Proto":   "http",
		"X-Forwarded-Host":    "example.test",
		"X-Host":              "example.test",
		"X-Secret":            "",
		"Proxy-Authorization": "",
	}
	for k, want := range checks {
		if got := h.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if resp.Header.Get("X-Answer") != "yes" || resp.Header.Get("Keep-Alive") != "" {
		t.Errorf("response headers %v", resp.Header)
	}
}

func TestStreamedResponse(t *testing.T) {
	t.Parallel()
	next := make(chan struct{})
	a := newBackend(t, "a", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "first\n")
		w.(http.Flusher).Flush()
		<-next
		io.WriteString(w, "second\n")
	})
	bal, url := start(t, tgYAML("round_robin", "address: "+a.addr()))
	waitHealthy(t, bal, "tg", 1)
	resp, err := http.Get(url + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	if err != nil || line != "first\n" {
		t.Fatalf("first line %q %v: the response was buffered", line, err)
	}
	close(next)
	if line, _ := br.ReadString('\n'); line != "second\n" {
		t.Fatalf("second line %q", line)
	}
}

func TestWebSocketUpgradePassesThrough(t *testing.T) {
	t.Parallel()
	a := newBackend(t, "a", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "echo" {
			http.Error(w, "want upgrade", 400)
			return
		}
		c, brw, _ := w.(http.Hijacker).Hijack()
		defer c.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		io.Copy(c, brw) // echo until the client half-closes
	})
	bal, url := start(t, tgYAML("round_robin", "address: "+a.addr()))
	waitHealthy(t, bal, "tg", 1)
	c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	fmt.Fprintf(c, "ping")
	c.(*net.TCPConn).CloseWrite()
	got, _ := io.ReadAll(br)
	if string(got) != "ping" {
		t.Fatalf("echo %q", got)
	}
}

func TestLimitsAndTimeouts(t *testing.T) {
	t.Parallel()
	a := newBackend(t, "a", func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "%d", n)
	})
	yaml := strings.Replace(tgYAML("round_robin", "address: "+a.addr()),
		"target_group: tg}", "target_group: tg, header_timeout: 300ms, max_header_bytes: 1KiB, max_body_bytes: 1KiB}", 1)
	bal, url := start(t, yaml)
	waitHealthy(t, bal, "tg", 1)
	host := strings.TrimPrefix(url, "http://")
	raw := func(req string) string {
		c, err := net.Dial("tcp", host)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, req)
		b, _ := io.ReadAll(c)
		line, _, _ := strings.Cut(string(b), "\r\n")
		return line
	}
	tests := []struct{ name, req, want string }{
		{"head too large", "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 2000) + "\r\n\r\n", "HTTP/1.1 431 Request Header Fields Too Large"},
		{"body too large", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n", "HTTP/1.1 413 Request Entity Too Large"},
		{"chunked body too large", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n" + strings.Repeat("a", 2048) + "\r\n0\r\n\r\n", "HTTP/1.1 413 Request Entity Too Large"},
		{"smuggling: both framings", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "HTTP/1.1 400 Bad Request"},
		{"smuggling: space before colon", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length : 3\r\n\r\nabc", "HTTP/1.1 400 Bad Request"},
		{"smuggling: folded header", "GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n Content-Length: 3\r\n\r\nabc", "HTTP/1.1 400 Bad Request"},
		// Found by FuzzRequestHead: a bare CR was forwarded to the target,
		// which may take it for a line end (testdata/fuzz/FuzzRequestHead/bare-cr).
		{"smuggling: bare CR in a header", "GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\rContent-Length: 3\r\n\r\nabc", "HTTP/1.1 400 Bad Request"},
		{"NUL in a header", "GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\x00\r\n\r\n", "HTTP/1.1 400 Bad Request"},
		// Found by FuzzRequestHead: net/http (a target) ignores
		// Transfer-Encoding in HTTP/1.0 and would read the body as the next
		// request (testdata/fuzz/FuzzRequestHead/http10-transfer-encoding).
		{"smuggling: HTTP/1.0 with Transfer-Encoding", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "HTTP/1.1 400 Bad Request"},
		{"no host", "GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 400 Bad Request"},
		{"slow head", "GET / HTTP/1.1\r\nHost: x\r\n", "HTTP/1.1 408 Request Timeout"},
		{"chunked body forwarded", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", "HTTP/1.1 200 OK"},
		{"HTTP/1.0", "GET / HTTP/1.0\r\n\r\n", "HTTP/1.1 200 OK"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := raw(tt.req); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestTCPListener(t *testing.T) {
	t.Parallel()
	a := newBackend(t, "a", nil)
	dead := freeAddr(t)
	yaml := fmt.Sprintf(`  - name: lb
    listeners: [{protocol: tcp, listen: LISTEN, target_group: tg}]
    target_groups:
      - name: tg
        protocol: tcp
        targets: [{address: %s}, {address: %s}]
        health_check: {protocol: tcp, interval: 5s}
`, a.addr(), dead)
	_, url := start(t, yaml)
	// The dead target starts initial like the other and refuses: every
	// connection still gets through, by retry and then by rotation.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	for range 10 {
		if code, body := get(t, client, url+"/"); code != 200 || body != "a" {
			t.Fatalf("%d %q", code, body)
		}
	}
}

func TestChunkSize(t *testing.T) {
	tests := []struct {
		line string
		want int64
		ok   bool
	}{
		{"0\r\n", 0, true},
		{"1a\r\n", 26, true},
		{"FF;ext=1\r\n", 255, true},
		{"\r\n", 0, false},
		{"zz\r\n", 0, false},
		{"1234567890abcdef0\r\n", 0, false},
	}
	for _, tt := range tests {
		n, ok := chunkSize([]byte(tt.line))
		if n != tt.want || ok != tt.ok {
			t.Errorf("chunkSize(%q) = %d %v, want %d %v", tt.line, n, ok, tt.want, tt.ok)
		}
	}
}

func TestTLSListener(t *testing.T) {
	t.Parallel()
	a := newBackend(t, "a", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Header.Get("X-Forwarded-Proto"))
	})
	// A self-signed certificate for 127.0.0.1, made for this test.
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	cert := srv.TLS.Certificates[0]
	srv.Close()
	dir := t.TempDir()
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]})
	keyDER, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	os.WriteFile(filepath.Join(dir, "cert.pem"), certPEM, 0o600)
	os.WriteFile(filepath.Join(dir, "key.pem"), keyPEM, 0o600)
	yaml := strings.Replace(tgYAML("round_robin", "address: "+a.addr()), "target_group: tg}",
		fmt.Sprintf("target_group: tg, tls: {cert_file: %s, key_file: %s}}", filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")), 1)
	bal, url := start(t, yaml)
	waitHealthy(t, bal, "tg", 1)
	pool := x509.NewCertPool()
	leaf, _ := x509.ParseCertificate(cert.Certificate[0])
	pool.AddCert(leaf)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	httpsURL := "https://" + strings.TrimPrefix(url, "http://")
	if code, body := get(t, client, httpsURL+"/"); code != 200 || body != "https" {
		t.Fatalf("over TLS: %d %q", code, body)
	}
	// Plain HTTP on the TLS port is not served.
	if resp, err := http.Get(url + "/"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatal("plain HTTP answered 200 on a TLS listener")
		}
	}
}

func TestSlowStartRampsShare(t *testing.T) {
	tg := newTargetGroup(config.TargetGroup{
		Name: "tg", Algorithm: config.AlgorithmRoundRobin, SlowStart: config.Duration(10 * time.Second),
		HealthCheck: config.TargetHealthCheck{Interval: config.Duration(time.Hour), Timeout: config.Duration(time.Second), HealthyThreshold: 1, UnhealthyThreshold: 1},
	}, slog.Default())
	defer tg.close()
	now := time.Unix(1000, 0)
	tg.now = func() time.Time { return now }
	tg.mu.Lock()
	old := &target{tg: tg, id: "old", weight: 1}
	tg.targets["old"] = old
	tg.setState(old, StateHealthy, "test")
	old.healthySince = now.Add(-time.Hour)
	fresh := &target{tg: tg, id: "new", weight: 1}
	tg.targets["new"] = fresh
	tg.setState(fresh, StateHealthy, "test") // healthy since now
	share := func() float64 {
		tg.rebuild()
		r := tg.rot.Load()
		if len(r.schedule) == 0 {
			return 1 / float64(len(r.targets)) // plain round robin
		}
		n := 0
		for _, i := range r.schedule {
			if r.targets[i] == fresh {
				n++
			}
		}
		return float64(n) / float64(len(r.schedule))
	}
	start := share()
	now = now.Add(5 * time.Second)
	mid := share()
	now = now.Add(6 * time.Second)
	end := share()
	tg.mu.Unlock()
	if !(start < 0.15 && mid > 0.25 && mid < 0.45 && end == 0.5) {
		t.Fatalf("new target's share: %.2f at 0s, %.2f at 5s, %.2f at 11s; want ~0.09, ~0.33, 0.5", start, mid, end)
	}
}
