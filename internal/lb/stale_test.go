package lb

import (
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"
)

// TestOnlyTargetDiesWithPooledConnections pins a bug: when the only target
// died while the balancer held several idle keep-alive connections to it,
// a request spent its whole retry budget on those dead connections (the
// target was still in rotation, so holding returned at once and the same
// target was picked again) and was answered 502 in a few milliseconds,
// instead of being held until a target was healthy again. Seen end to end
// as a 502 "target closed the connection" when the single instance of a
// group is SIGKILLed under load (server.TestLBSingleInstanceReplacedWithoutErrors).
func TestOnlyTargetDiesWithPooledConnections(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	// The four warm-up requests are answered together, once all four are
	// in: each has had its own connection.
	var inFlight sync.WaitGroup
	inFlight.Add(4)
	serve := func(name string) *http.Server {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/" && name == "first" {
				inFlight.Done()
				inFlight.Wait()
			}
			io.WriteString(w, name)
		})}
		go srv.Serve(l)
		t.Cleanup(func() { srv.Close() })
		return srv
	}
	first := serve("first")
	bal, url := start(t, `  - name: lb
    listeners: [{protocol: http, listen: LISTEN, target_group: tg}]
    target_groups:
      - name: tg
        targets: [{address: `+addr+`}]
        health_check: {path: /healthz, interval: 100ms, healthy_threshold: 2, unhealthy_threshold: 2}
        hold_timeout: 5s
        retries: 2
`)
	waitHealthy(t, bal, "tg", 1)

	// Four requests at once leave four idle connections to the target in
	// the balancer's pool: more than the retry budget.
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Transport: &http.Transport{}}
			defer c.CloseIdleConnections()
			if code, body := get(t, c, url+"/"); code != 200 || body != "first" {
				t.Errorf("warm up: %d %q", code, body)
			}
		}()
	}
	wg.Wait()

	// The target dies: its pooled connections are closed by the peer and
	// new ones are refused. It comes back a little later, as a replaced
	// instance would (on the same address here).
	first.Close()
	tg, _ := bal.TargetGroup("tg")
	before := tg.Health().Metrics.RequestCount
	back := make(chan struct{})
	go func() {
		defer close(back)
		// Once the request has found the target gone (its pooled
		// connections dead, a new one refused: no target in rotation),
		// the target comes back.
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			h := tg.Health()
			if h.Metrics.RequestCount > before && h.Metrics.HealthyHostCount == 0 {
				break
			}
			time.Sleep(2 * time.Millisecond)
		}
		serve("second")
	}()
	c := &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}
	defer c.CloseIdleConnections()
	began := time.Now()
	code, body := get(t, c, url+"/")
	took := time.Since(began).Round(time.Millisecond)
	<-back
	if code != 200 || body != "second" {
		t.Fatalf("request while the only target was down: %d %q after %s; want it held until the target is back", code, body, took)
	}
	t.Logf("held %s", took)
}
