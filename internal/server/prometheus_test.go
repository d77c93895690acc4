package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/autoheal/autoheal/internal/api"

	"github.com/autoheal/autoheal/internal/api/wire"
	"github.com/autoheal/autoheal/internal/remediation"
)

// Tests of the controller against the real Prometheus tools from Debian's
// packages: promtool checks GET /metrics, a prometheus server scrapes it,
// and a prometheus-alertmanager delivers its webhook to POST
// /v1/alertmanager. A missing binary skips its test, unless
// AUTOHEAL_REQUIRE_TOOLS is set (test.sh sets it once it installed the
// packages): then it fails, so a CI run cannot pass by skipping.

// externalTool returns the path of the first of names found on PATH or in
// /usr/bin.
func externalTool(t *testing.T, pkg string, names ...string) string {
	t.Helper()
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
		if p := filepath.Join("/usr/bin", n); isExecutable(p) {
			return p
		}
	}
	msg := fmt.Sprintf("%s not installed (Debian package %s: apt-get install %s; test.sh installs it)", names[0], pkg, pkg)
	if os.Getenv("AUTOHEAL_REQUIRE_TOOLS") != "" {
		t.Fatalf("%s, and AUTOHEAL_REQUIRE_TOOLS is set", msg)
	}
	t.Skipf("%s; set AUTOHEAL_REQUIRE_TOOLS=1 to make this a failure", msg)
	return ""
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// promConfig is the web example (one instance behind a load balancer) with
// an alarm, an Alertmanager route to the fix-service runbook on the
// instance named by the alert's instance_id label, and that runbook.
// The tokens Prometheus and Alertmanager call the API with, as an
// operator would give them: a viewer to scrape, an operator to deliver
// alerts (files beside the config, from promConfig).
const (
	promToken = "ah_prometheus-scrapes-autoheal-with-this"
	amToken   = "ah_alertmanager-posts-alerts-with-this"
)

// promConfig is the web example with an alarm, an Alertmanager route and
// the tokens of Prometheus and Alertmanager, whose files are
// tokenFile(cfg, "prometheus") and tokenFile(cfg, "alertmanager").
func promConfig(t *testing.T) string {
	t.Helper()
	cfg := writeConfig(t, webConfig(freePort(t), 1, "")+`
auth:
  tokens:
    - {name: prometheus, role: viewer, sha256: `+api.HashToken(promToken)+`}
    - {name: alertmanager, role: operator, sha256: `+api.HashToken(amToken)+`}
alarms:
  - name: errors-high
    namespace: App
    metric: errors
    statistic: Sum
    period: 10s
    comparison: GreaterThanThreshold
    threshold: 5
alertmanager:
  routes:
    - match: {alertname: ServiceDown}
      runbook: fix-service
      target_label: instance_id
`)
	for name, tok := range map[string]string{"prometheus": promToken, "alertmanager": amToken} {
		if err := os.WriteFile(tokenFile(cfg, name), []byte(tok+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	docs := filepath.Join(filepath.Dir(cfg), "documents")
	os.MkdirAll(docs, 0o755)
	const fixService = `schemaVersion: "0.3"
description: Says what it would fix, on the instance the alert names.
parameters:
  InstanceId:
    type: String
mainSteps:
  - name: fix
    action: runCommand
    timeoutSeconds: 30
    inputs:
      InstanceId: "{{ InstanceId }}"
      Commands:
        - echo fixing "$InstanceId"
`
	if err := os.WriteFile(filepath.Join(docs, "fix-service.yaml"), []byte(fixService), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// tokenFile is where promConfig put a client's token.
func tokenFile(cfg, name string) string { return filepath.Join(filepath.Dir(cfg), name+".token") }

// getMetrics returns the controller's GET /metrics body.
func getMetrics(t *testing.T, e *env) []byte {
	t.Helper()
	code, b, err := httpGet("http://" + e.apiAddr + "/metrics")
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %v\n%s", code, err, b)
	}
	return b
}

// TestPrometheusMetricsPromtool: GET /metrics of a controller with a
// group, a load balancer and an alarm passes promtool check metrics (the
// text format parses and the names follow Prometheus's conventions).
func TestPrometheusMetricsPromtool(t *testing.T) {
	t.Parallel()
	promtool := externalTool(t, "prometheus", "promtool")
	e := startInProcess(t, promConfig(t), "")
	in := e.waitInService(1, 30*time.Second)[0]
	// Every family this test's controller has is present.
	var body []byte
	waitFor(t, 20*time.Second, "the target to be healthy in /metrics", func() bool {
		body = getMetrics(t, e)
		return bytes.Contains(body, []byte(`autoheal_target_health{state="healthy",target="`+in.ID+`",target_group="web"} 1`))
	})
	for _, want := range []string{
		`autoheal_build_info{version="test"} 1`,
		`autoheal_group_desired{group="web"} 1`,
		`autoheal_group_min{group="web"} 0`,
		`autoheal_group_max{group="web"} `,
		`autoheal_group_impaired{group="web"} 0`,
		`autoheal_instances{group="web",state="InService"} 1`,
		`autoheal_instances{group="web",state="Pending"} 0`,
		`autoheal_instance_healthy{group="web",instance_id="` + in.ID + `"} 1`,
		`autoheal_instance_restarts_total{group="web",instance_id="` + in.ID + `"} 0`,
		`autoheal_lb_requests_total{target_group="web"} `,
		`autoheal_lb_target_responses_total{code_class="2xx",target_group="web"} `,
		`autoheal_lb_elb_5xx_total{target_group="web"} 0`,
		`autoheal_lb_target_response_seconds_bucket{target_group="web",le="+Inf"} `,
		`autoheal_lb_target_response_seconds_count{target_group="web"} `,
		`autoheal_alarm_state{alarm="errors-high",key="errors-high",state="INSUFFICIENT_DATA"} 1`,
		`autoheal_incidents{status="open"} 0`,
		`autoheal_executions{status="Success"} `,
		"# HELP autoheal_lb_target_response_seconds ",
		"# TYPE autoheal_lb_target_response_seconds histogram",
		"# TYPE autoheal_lb_requests_total counter",
		"go_goroutines ",
		"process_start_time_seconds ",
	} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if t.Failed() {
		t.Fatalf("/metrics:\n%s", body)
	}

	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check metrics: %v\n%s\n/metrics:\n%s", err, out, body)
	}
	if s := strings.TrimSpace(string(out)); s != "" {
		t.Logf("promtool: %s", s)
	}
}

// startPrometheus runs a real prometheus scraping target every second
// and returns its URL. It is killed when the test ends.
func startPrometheus(t *testing.T, target, tokenFile string) string {
	t.Helper()
	bin := externalTool(t, "prometheus", "prometheus")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: autoheal
    authorization:
      credentials_file: %s
    static_configs:
      - targets: ['%s']
`, tokenFile, target)), 0o644)
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	return startDaemon(t, "prometheus", bin, addr,
		"--config.file="+cfg,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--log.level=warn",
	)
}

// startDaemon starts a Prometheus-family server listening on addr and
// waits for its /-/ready. Its output is shown if the test fails.
func startDaemon(t *testing.T, name, bin, addr string, args ...string) string {
	t.Helper()
	var logs syncBuffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("%s output:\n%s", name, logs.String())
		}
	})
	base := "http://" + addr
	deadline := time.Now().Add(30 * time.Second)
	for {
		if code, _, err := httpGet(base + "/-/ready"); err == nil && code == http.StatusOK {
			return base
		}
		select {
		case <-exited:
			t.Fatalf("%s exited before it was ready:\n%s", name, logs.String())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready on %s in 30s:\n%s", name, addr, logs.String())
		}
	}
}

// promSample is one series of a Prometheus instant query's answer.
type promSample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"` // [unix time, "value"]
}

func promQuery(base, query string) ([]promSample, error) {
	code, b, err := httpGet(base + "/api/v1/query?query=" + url.QueryEscape(query))
	if err != nil {
		return nil, err
	}
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []promSample `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("query %s: %d %s", query, code, b)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("query %s: %s", query, r.Error)
	}
	return r.Data.Result, nil
}

// TestPrometheusScrape: a real prometheus scrapes the controller and
// answers queries on its metrics.
func TestPrometheusScrape(t *testing.T) {
	t.Parallel()
	externalTool(t, "prometheus", "prometheus")
	e := startInProcess(t, promConfig(t), "")
	in := e.waitInService(1, 30*time.Second)[0]
	prom := startPrometheus(t, e.apiAddr, tokenFile(e.cfgPath, "prometheus"))

	var got []promSample
	var qerr error
	waitFor(t, 30*time.Second, "prometheus to have scraped autoheal_group_desired", func() bool {
		got, qerr = promQuery(prom, "autoheal_group_desired")
		return qerr == nil && len(got) == 1
	})
	s := got[0]
	if s.Metric["group"] != "web" || s.Metric["job"] != "autoheal" || s.Metric["instance"] != e.apiAddr || s.Value[1] != "1" {
		t.Fatalf("autoheal_group_desired = %+v", s)
	}
	// Our instance label is instance_id, so Prometheus's own instance
	// label (the target) stays as it is: no exported_instance.
	got, qerr = promQuery(prom, "autoheal_instance_healthy")
	if qerr != nil || len(got) != 1 || got[0].Metric["instance_id"] != in.ID || got[0].Metric["exported_instance"] != "" || got[0].Value[1] != "1" {
		t.Fatalf("autoheal_instance_healthy = %+v %v", got, qerr)
	}
	// The scrape itself was clean: up, and no sample was refused.
	for q, want := range map[string]string{
		`up{job="autoheal"}`: "1",
		`scrape_samples_post_metric_relabeling{job="autoheal"} - scrape_samples_scraped{job="autoheal"}`: "0",
		`count(autoheal_lb_target_response_seconds_bucket{target_group="web",le="+Inf"})`:                "1",
	} {
		got, qerr = promQuery(prom, q)
		if qerr != nil || len(got) != 1 || got[0].Value[1] != want {
			t.Errorf("%s = %+v %v, want %s", q, got, qerr, want)
		}
	}
}

// startAlertmanager runs a real prometheus-alertmanager whose only
// receiver is the controller's webhook, and returns its URL.
func startAlertmanager(t *testing.T, controller, tokenFile string) string {
	t.Helper()
	bin := externalTool(t, "prometheus-alertmanager", "prometheus-alertmanager", "alertmanager")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "alertmanager.yml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`route:
  receiver: autoheal
  group_by: [alertname, instance_id]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: autoheal
    webhook_configs:
      - url: http://%s/v1/alertmanager
        send_resolved: true
        http_config:
          authorization:
            credentials_file: %s
`, controller, tokenFile)), 0o644)
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	return startDaemon(t, "prometheus-alertmanager", bin, addr,
		"--config.file="+cfg,
		"--storage.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--cluster.listen-address=", // no gossip: a single test instance
		"--log.level=warn",
	)
}

// postAlert posts one alert to Alertmanager's API; endsAt in the past
// resolves it.
func postAlert(t *testing.T, am string, labels map[string]string, startsAt time.Time, endsAt *time.Time) {
	t.Helper()
	a := map[string]any{
		"labels":       labels,
		"annotations":  map[string]string{"summary": "the service stopped answering"},
		"startsAt":     startsAt.Format(time.RFC3339Nano),
		"generatorURL": "http://example.invalid/graph",
	}
	if endsAt != nil {
		a["endsAt"] = endsAt.Format(time.RFC3339Nano)
	}
	b, _ := json.Marshal([]any{a})
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Post(am+"/api/v2/alerts", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /api/v2/alerts: %d %s", resp.StatusCode, body)
	}
}

// alertmanagerIncident returns the incident Alertmanager opened for
// instance id, if any.
func alertmanagerIncident(e *env, id string) (wire.Incident, bool) {
	list, err := e.client.Incidents(context.Background(), 100)
	if err != nil {
		return wire.Incident{}, false
	}
	for _, inc := range list {
		if inc.Trigger.Source == "alertmanager" && inc.Instance == id {
			return inc, true
		}
	}
	return wire.Incident{}, false
}

// TestAlertmanagerReceiver: an alert posted to a real Alertmanager reaches
// the controller through its webhook (payload version 4), opens an
// incident that runs the route's runbook on the instance the alert names,
// and its resolution closes the incident.
func TestAlertmanagerReceiver(t *testing.T) {
	t.Parallel()
	externalTool(t, "prometheus-alertmanager", "prometheus-alertmanager", "alertmanager")
	e := startInProcess(t, promConfig(t), "")
	in := e.waitInService(1, 30*time.Second)[0]
	am := startAlertmanager(t, e.apiAddr, tokenFile(e.cfgPath, "alertmanager"))

	labels := map[string]string{"alertname": "ServiceDown", "instance_id": in.ID, "severity": "critical"}
	startsAt := time.Now().Add(-time.Second)
	postAlert(t, am, labels, startsAt, nil)

	var inc wire.Incident
	waitFor(t, 30*time.Second, "an incident from Alertmanager with a runbook attempt and its output", func() bool {
		var ok bool
		inc, ok = alertmanagerIncident(e, in.ID)
		return ok && slices.ContainsFunc(inc.Timeline, func(en wire.TimelineEntry) bool { return en.Type == remediation.EntryOutput })
	})
	if inc.Status != remediation.StatusOpen || inc.Runbook != "fix-service" || inc.Attempts != 1 ||
		inc.Trigger.Alarm != "ServiceDown" || !strings.HasPrefix(inc.Trigger.Key, "alertmanager/") {
		t.Fatalf("incident %+v", inc)
	}
	var attempt, output wire.TimelineEntry
	for _, en := range inc.Timeline {
		switch en.Type {
		case remediation.EntryAttempt:
			attempt = en
		case remediation.EntryOutput:
			output = en
		}
	}
	if attempt.Execution == "" || !strings.Contains(output.Output, "fixing "+in.ID) {
		t.Fatalf("timeline %s: attempt %+v output %+v", timelineTypes(inc), attempt, output)
	}

	// Resolved in Alertmanager: the same alert with endsAt in the past.
	endsAt := time.Now().Add(-100 * time.Millisecond)
	postAlert(t, am, labels, startsAt, &endsAt)
	waitFor(t, 30*time.Second, "the incident to be resolved", func() bool {
		got, ok := alertmanagerIncident(e, in.ID)
		inc = got
		return ok && got.Status == remediation.StatusResolved
	})
	if inc.ResolvedAt == nil || inc.Timeline[len(inc.Timeline)-1].Type != remediation.EntryResolved {
		t.Fatalf("resolved incident %+v", inc)
	}
	if list, _ := e.client.Incidents(context.Background(), 100); len(list) != 1 {
		t.Fatalf("%d incidents, want the one: %+v", len(list), list)
	}
	// /metrics reads the store at scrape time.
	if body := getMetrics(t, e); !bytes.Contains(body, []byte(`autoheal_incidents{status="resolved"} 1`)) {
		t.Fatalf("/metrics does not count the resolved incident:\n%s", body)
	}
}
