package lb

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/autoheal/autoheal/internal/config"
)

// checker probes targets for one target group.
type checker struct {
	cfg    config.TargetHealthCheck
	client *http.Client
}

func newChecker(cfg config.TargetHealthCheck) *checker {
	c := &checker{cfg: cfg}
	if cfg.Protocol == config.ProtocolHTTP {
		c.client = &http.Client{
			Transport: &http.Transport{
				Proxy:               nil,
				MaxIdleConnsPerHost: 1,
				IdleConnTimeout:     2 * cfg.Interval.D(),
				DisableCompression:  true,
			},
			// A redirect is an answer, judged by the matcher.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	return c
}

// close releases the kept-alive connections of the http checks: targets
// outlive the balancer (instances keep running), and so would they.
func (c *checker) close() {
	if c.client != nil {
		c.client.CloseIdleConnections()
	}
}

// probe checks one target. Like a Kubernetes probe, it returns a verdict
// and what it saw.
func (c *checker) probe(ctx context.Context, addr string) (bool, string) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout.D())
	defer cancel()
	if c.client == nil {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return false, err.Error()
		}
		conn.Close()
		return true, "connected"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+c.cfg.Path, nil)
	if err != nil {
		return false, err.Error()
	}
	req.Header.Set("User-Agent", "autoheal-health-check")
	resp, err := c.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return false, fmt.Sprintf("timed out after %s", c.cfg.Timeout.D())
		}
		return false, err.Error()
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if !c.cfg.Matches(resp.StatusCode) {
		return false, fmt.Sprintf("HTTP %d does not match %s", resp.StatusCode, c.cfg.Matcher)
	}
	return true, fmt.Sprintf("HTTP %d", resp.StatusCode)
}

// startChecking runs t's health checks until stopChecking. Called with
// tg.mu held.
func (tg *TargetGroup) startChecking(t *target) {
	tg.stopChecking(t)
	if tg.closed {
		return
	}
	stop := make(chan struct{})
	t.stopCheck = stop
	tg.wg.Add(1)
	go tg.checkLoop(t, stop, t.since)
}

// stopChecking ends t's checks. Called with tg.mu held.
func (tg *TargetGroup) stopChecking(t *target) {
	if t.stopCheck != nil {
		close(t.stopCheck)
		t.stopCheck = nil
	}
}

// checkLoop probes t at once, then quickly while it is initial (a new
// target should take traffic as soon as it answers), then every interval.
func (tg *TargetGroup) checkLoop(t *target, stop chan struct{}, registered time.Time) {
	defer tg.wg.Done()
	defer func() {
		if r := recover(); r != nil {
			tg.log.Error("health check panicked", "target", t.id, "panic", r)
		}
	}()
	interval := tg.cfg.HealthCheck.Interval.D()
	fast := 20 * time.Millisecond
	var delay time.Duration
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		timer.Reset(delay)
		select {
		case <-stop:
			return
		case <-tg.ctx.Done():
			return
		case <-timer.C:
		}
		ok, out := tg.hc.probe(tg.ctx, t.addr)
		tg.mu.Lock()
		if t.stopCheck != stop {
			tg.mu.Unlock()
			return
		}
		tg.checked(t, ok, out, registered)
		initial := t.state == StateInitial
		tg.mu.Unlock()
		if initial {
			delay, fast = fast, min(2*fast, interval)
		} else {
			delay = interval
		}
	}
}

// checked applies one probe result. Called with tg.mu held.
func (tg *TargetGroup) checked(t *target, ok bool, out string, registered time.Time) {
	hc := tg.cfg.HealthCheck
	if ok {
		t.checkOK++
		t.checkFail = 0
		switch {
		case t.state == StateInitial:
			// A new target needs one passing check, as in ELB.
			tg.setState(t, StateHealthy, "passed its first health check: "+out)
		case t.state == StateUnhealthy && t.checkOK >= hc.HealthyThreshold:
			tg.setState(t, StateHealthy, fmt.Sprintf("passed %d health checks in a row: %s", t.checkOK, out))
		}
		return
	}
	t.checkFail++
	t.checkOK = 0
	switch {
	case t.state == StateHealthy && t.checkFail >= hc.UnhealthyThreshold:
		tg.setState(t, StateUnhealthy, fmt.Sprintf("failed %d health checks in a row: %s", t.checkFail, out))
	case t.state == StateInitial && tg.now().Sub(registered) >= time.Duration(hc.UnhealthyThreshold)*hc.Interval.D():
		// Probed fast while initial, so judged by time rather than count.
		tg.setState(t, StateUnhealthy, "failed its initial health checks: "+out)
	case t.state == StateUnhealthy:
		t.reason = "health check failed: " + out
	}
}
