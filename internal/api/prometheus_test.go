package api

import (
	"context"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/autoheal/autoheal/internal/alarm"
	"github.com/autoheal/autoheal/internal/config"
	"github.com/autoheal/autoheal/internal/lb"
	"github.com/autoheal/autoheal/internal/metrics"
	"github.com/autoheal/autoheal/internal/store"
)

// prometheusConfig has a load balancer over one static target and an
// alarm: what the collector reports without groups (which need a
// provider; the server tests cover them).
const prometheusConfig = `
groups:
  - name: none
    desired: 0
    launch: {command: /bin/true}
load_balancers:
  - name: front
    listeners:
      - protocol: http
        listen: {{LISTEN}}
        target_group: web
    target_groups:
      - name: web
        protocol: http
        targets:
          - address: {{BACKEND}}
            id: backend
        health_check:
          protocol: http
          path: /
          interval: 1s
alarms:
  - name: cpu-high
    namespace: App
    metric: cpu
    statistic: Average
    period: 10s
    comparison: GreaterThanThreshold
    threshold: 90
`

// scrape GETs /metrics and parses it as Prometheus does.
func scrape(t *testing.T, url string) (string, map[string]*dto.MetricFamily) {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", resp.StatusCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("Content-Type %q, want the text format", ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(b)))
	if err != nil {
		t.Fatalf("parse /metrics: %v\n%s", err, b)
	}
	return string(b), fams
}

// value finds the sample of a family whose labels include want.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, want map[string]string) (*dto.Metric, bool) {
	t.Helper()
	f, ok := fams[name]
	if !ok {
		return nil, false
	}
next:
	for _, m := range f.Metric {
		got := map[string]string{}
		for _, l := range m.Label {
			got[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if got[k] != v {
				continue next
			}
		}
		return m, true
	}
	return nil, false
}

func TestPrometheusMetrics(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/fail" {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	defer backend.Close()
	dir := t.TempDir()
	path := filepath.Join(dir, "autoheal.yaml")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	listen := l.Addr().String()
	l.Close()
	doc := strings.NewReplacer("{{BACKEND}}", backend.Listener.Addr().String(), "{{LISTEN}}", listen).Replace(prometheusConfig)
	os.WriteFile(path, []byte(doc), 0o644)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	bal, err := lb.New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	defer bal.Close()
	ms, err := metrics.New(metrics.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer ms.Close()
	alarms, err := alarm.NewManager(cfg, alarm.Deps{Metrics: ms, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	// Never Run, so never Closed (Close would wait 10s for a loop that
	// never started): its one alarm stays INSUFFICIENT_DATA.
	st, err := store.Open(filepath.Join(dir, "state"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	for id, status := range map[string]string{"inc-1": "open", "inc-2": "resolved", "inc-3": "resolved"} {
		if err := st.PutIncident(ctx, store.IncidentRecord{ID: id, Key: id, Status: status, OpenedAt: time.Now(), Body: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.PutExecution(ctx, store.ExecutionRecord{ID: "ex-1", Document: "d", Status: "Success", StartedAt: time.Now(), Body: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}

	srv := adminServer(t, Deps{Journal: st, Balancer: TargetGroupsOf(bal), Alarms: alarms, Version: "1.2.3", Logger: log})
	defer srv.Close()

	// Traffic through the balancer, once the target passed its check: two
	// 200s and a 500.
	front := "http://" + listen
	deadline := time.Now().Add(10 * time.Second)
	for bal.TargetGroups()[0].Targets[0].State != lb.StateHealthy {
		if time.Now().After(deadline) {
			t.Fatalf("target not healthy: %+v", bal.TargetGroups()[0].Targets)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, p := range []string{"/", "/", "/fail"} {
		resp, err := http.Get(front + p)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}

	text, fams := scrape(t, srv.URL)

	// Names, units, HELP and TYPE as Prometheus's own linter wants them.
	problems, err := promlint.New(strings.NewReader(text)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "autoheal_") {
			t.Errorf("promlint: %s: %s", p.Metric, p.Text)
		}
	}
	for name, f := range fams {
		if f.GetHelp() == "" {
			t.Errorf("%s has no HELP", name)
		}
	}

	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"autoheal_build_info", map[string]string{"version": "1.2.3"}, 1},
		{"autoheal_target_health", map[string]string{"target_group": "web", "target": "backend", "state": "healthy"}, 1},
		{"autoheal_lb_requests_total", map[string]string{"target_group": "web"}, 3},
		{"autoheal_lb_target_responses_total", map[string]string{"target_group": "web", "code_class": "2xx"}, 2},
		{"autoheal_lb_target_responses_total", map[string]string{"target_group": "web", "code_class": "5xx"}, 1},
		{"autoheal_lb_elb_5xx_total", map[string]string{"target_group": "web"}, 0},
		{"autoheal_alarm_state", map[string]string{"alarm": "cpu-high", "state": "INSUFFICIENT_DATA"}, 1},
		{"autoheal_alarm_state", map[string]string{"alarm": "cpu-high", "state": "ALARM"}, 0},
		{"autoheal_incidents", map[string]string{"status": "open"}, 1},
		{"autoheal_incidents", map[string]string{"status": "resolved"}, 2},
		{"autoheal_incidents", map[string]string{"status": "escalated"}, 0},
		{"autoheal_executions", map[string]string{"status": "Success"}, 1},
		{"autoheal_executions", map[string]string{"status": "Failed"}, 0},
	}
	for _, c := range checks {
		m, ok := value(t, fams, c.name, c.labels)
		if !ok {
			t.Errorf("%s%v missing", c.name, c.labels)
			continue
		}
		var got float64
		switch {
		case m.Gauge != nil:
			got = m.Gauge.GetValue()
		case m.Counter != nil:
			got = m.Counter.GetValue()
		}
		if got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if _, ok := value(t, fams, "go_goroutines", nil); !ok {
		t.Error("go collector missing")
	}
	if _, ok := value(t, fams, "process_start_time_seconds", nil); !ok {
		t.Error("process collector missing")
	}

	// The histogram: every response counted, buckets cumulative with the
	// lb's bounds, the sum the lb's mean times the count.
	m, ok := value(t, fams, "autoheal_lb_target_response_seconds", map[string]string{"target_group": "web"})
	if !ok || m.Histogram == nil {
		t.Fatalf("autoheal_lb_target_response_seconds missing or not a histogram:\n%s", text)
	}
	h := m.Histogram
	if h.GetSampleCount() != 3 {
		t.Errorf("histogram count %d, want 3", h.GetSampleCount())
	}
	snap := bal.TargetGroups()[0].Metrics
	if want := snap.TargetResponseTime * 3; h.GetSampleSum() <= 0 || h.GetSampleSum() > want*1.01+1e-9 || h.GetSampleSum() < want*0.99 {
		t.Errorf("histogram sum %v, want about %v", h.GetSampleSum(), want)
	}
	// The parser lists +Inf as the last bucket, as the lb does (le 0).
	if len(h.Bucket) != len(snap.ResponseTimeBuckets) {
		t.Fatalf("%d buckets, want the lb's %d", len(h.Bucket), len(snap.ResponseTimeBuckets))
	}
	prev := uint64(0)
	for i, b := range h.Bucket {
		if b.GetCumulativeCount() < prev {
			t.Errorf("bucket le=%v count %d below the previous %d", b.GetUpperBound(), b.GetCumulativeCount(), prev)
		}
		prev = b.GetCumulativeCount()
		want := snap.ResponseTimeBuckets[i].Le
		if want == 0 {
			want = math.Inf(1)
		}
		if b.GetUpperBound() != want {
			t.Errorf("bucket %d le=%v, want %v", i, b.GetUpperBound(), want)
		}
	}
	if prev != 3 {
		t.Errorf("+Inf bucket %d, want the count 3", prev)
	}
}

// The collector must cope with a controller that has none of the optional
// parts: no groups, balancer, alarms or store.
func TestPrometheusMetricsEmptyController(t *testing.T) {
	srv := adminServer(t, Deps{Version: "v0", Logger: slog.New(slog.DiscardHandler)})
	defer srv.Close()
	_, fams := scrape(t, srv.URL)
	if _, ok := value(t, fams, "autoheal_build_info", map[string]string{"version": "v0"}); !ok {
		t.Error("autoheal_build_info missing")
	}
	for _, name := range []string{"autoheal_group_desired", "autoheal_lb_requests_total", "autoheal_incidents"} {
		if _, ok := fams[name]; ok {
			t.Errorf("%s present without its part", name)
		}
	}
	// POST is not a scrape; the API's catch-all answers it.
	resp, err := http.Post(srv.URL+"/metrics", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		t.Errorf("POST /metrics: %d", resp.StatusCode)
	}
}
