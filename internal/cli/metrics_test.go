package cli

import (
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/autoheal/autoheal/internal/api"
	"github.com/autoheal/autoheal/internal/api/wire"
	"github.com/autoheal/autoheal/internal/metrics"
)

// metricsAPI serves the real API over a metrics store.
func metricsAPI(t *testing.T) (string, *metrics.Store) {
	t.Helper()
	st, err := metrics.New(metrics.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	url, _ := apiServer(t, api.Deps{Metrics: st, Groups: []api.Group{oneInstance{"pet", "i-0abc"}}, Logger: slog.New(slog.DiscardHandler)})
	return url, st
}

func TestMetricsCommands(t *testing.T) {
	t.Setenv("AUTOHEAL_INSTANCE_ID", "")
	addr, st := metricsAPI(t)

	code, out, errOut := metricsCLI(t, addr, "metrics", "put", "App", "Latency", "10", "20", "30", "-d", "Group=web", "--unit", "Milliseconds", "--timestamp", "-1s")
	if code != ExitOK || out != "stored 3 values of App Latency\n" {
		t.Fatalf("put: exit %d: %s%s", code, out, errOut)
	}
	code, out, errOut = metricsCLI(t, addr, "-o", "json", "metrics", "put", "App", "Latency", "40", "-d", "Group=web", "--instance", "i-01")
	var put wire.PutMetricDataResponse
	if err := json.Unmarshal([]byte(out), &put); code != ExitOK || err != nil || put.Accepted != 1 {
		t.Fatalf("put -o json: exit %d: %s%s", code, out, errOut)
	}
	if keys := st.Match("App", "Latency", map[string]string{"Group": "web", "InstanceId": "i-01"}); len(keys) != 1 {
		t.Errorf("--instance did not add InstanceId: %v", st.Series())
	}

	code, out, errOut = metricsCLI(t, addr, "metrics", "get", "App", "Latency", "-d", "Group=web", "--statistics", "Average,Maximum,SampleCount,p50", "--period", "3h", "--since", "3h")
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if code != ExitOK || len(lines) != 2 {
		t.Fatalf("get: exit %d:\n%s%s", code, out, errOut)
	}
	if f := strings.Fields(lines[0]); strings.Join(f, " ") != "TIME Average Maximum SampleCount p50 UNIT" {
		t.Errorf("header %q", lines[0])
	}
	if f := strings.Fields(lines[1]); len(f) != 7 || f[2] != "20" || f[3] != "30" || f[4] != "3" || f[6] != "Milliseconds" {
		t.Errorf("row %q", lines[1])
	}
	code, out, _ = metricsCLI(t, addr, "-o", "json", "metrics", "get", "App", "Latency", "-d", "Group=web", "--statistics", "Sum", "--period", "10s", "--since", "1m")
	var res wire.Statistics
	if err := json.Unmarshal([]byte(out), &res); code != ExitOK || err != nil || len(res.Datapoints) != 1 || *res.Datapoints[0].Sum != 60 {
		t.Errorf("get -o json: exit %d, %v:\n%s", code, err, out)
	}
	code, out, errOut = metricsCLI(t, addr, "metrics", "get", "App", "Latency")
	if code != ExitOK || strings.Count(out, "\n") != 1 || !strings.Contains(errOut, "no data: check") {
		t.Errorf("get of a series that does not exist: exit %d:\n%s%s", code, out, errOut)
	}

	for _, args := range [][]string{{"metrics"}, {"metrics", "list"}, {"metrics", "list", "--namespace", "App"}} {
		code, out, errOut = metricsCLI(t, addr, args...)
		lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
		if code != ExitOK || len(lines) != 4 || !strings.HasPrefix(lines[0], "NAMESPACE") ||
			!strings.Contains(lines[1], "Group=web ") || !strings.Contains(lines[2], "Group=web,InstanceId=i-01") ||
			!strings.HasPrefix(lines[3], "2 series, ") || !strings.Contains(lines[3], "resolution 10s, retention 3h0m0s") {
			t.Errorf("%v: exit %d:\n%s%s", args, code, out, errOut)
		}
	}
	code, out, _ = metricsCLI(t, addr, "-o", "json", "metrics", "list", "--metric", "Other")
	var list wire.ListMetricsResponse
	if err := json.Unmarshal([]byte(out), &list); code != ExitOK || err != nil || len(list.Metrics) != 0 || list.Series != 2 {
		t.Errorf("list -o json: exit %d, %v:\n%s", code, err, out)
	}

	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"metrics", "put", "App", "Latency", "abc"}, ExitConfig, `value "abc" is not a number`},
		{[]string{"metrics", "put", "App", "Latency", "1", "-d", "Group"}, ExitConfig, `--dimension: dimension "Group": give Name=Value`},
		{[]string{"metrics", "put", "App", "Latency", "1", "--timestamp", "yesterday"}, ExitConfig, `--timestamp: time "yesterday"`},
		{[]string{"metrics", "put", "App", "Latency", "1", "--unit", "Parsecs"}, ExitError, `1 of 1 datums refused (none stored): MetricData[0].Unit: invalid: unknown unit "Parsecs"`},
		{[]string{"metrics", "put", "App", "Latency", "1", "--timestamp", "-5h"}, ExitError, "MetricData[0].Timestamp: invalid"},
		{[]string{"metrics", "put", "Autoheal/LB", "Latency", "1"}, ExitError, "Autoheal/ is reserved"},
		{[]string{"metrics", "get", "App", "Latency", "--statistics", "Mean"}, ExitConfig, `--statistics: statistic "Mean"`},
		{[]string{"metrics", "get", "App", "Latency", "--period", "15s"}, ExitError, "period 15s: give a multiple of the resolution 10s"},
	} {
		code, out, errOut := metricsCLI(t, addr, tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, want %d: %s%s\nwant %q", tc.args, code, tc.code, out, errOut, tc.want)
		}
	}
}

// TestMetricsPutFromInstance is what an instance does: no --addr, only
// the environment autoheal gave it, its credential included; it may push
// its own metrics and no other instance's.
func TestMetricsPutFromInstance(t *testing.T) {
	st, err := metrics.New(metrics.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	addr, creds := apiServer(t, api.Deps{Metrics: st, Groups: []api.Group{oneInstance{"pet", "i-0abc"}}, Logger: slog.New(slog.DiscardHandler)})
	t.Setenv("AUTOHEAL_ADDR", "")
	t.Setenv("AUTOHEAL_TOKEN", "")
	t.Setenv("AUTOHEAL_INSTANCE_ID", "i-0abc")
	t.Setenv("AUTOHEAL_METADATA_URL", addr+"/v1/instances/i-0abc/metadata")
	t.Setenv("AUTOHEAL_INSTANCE_TOKEN", creds.InstanceToken("i-0abc"))
	// The state dir is not this instance's to read (an unprivileged
	// instance's case): the instance credential is what it sends.
	t.Setenv("AUTOHEAL_STATE_DIR", t.TempDir())
	var other, otherErr strings.Builder
	if code := Main(t.Context(), []string{"metrics", "put", "App", "Jobs", "3", "-d", "InstanceId=i-0def"}, &other, &otherErr); code != ExitError ||
		!strings.Contains(otherErr.String(), "an instance pushes its own metrics only") {
		t.Fatalf("push for another instance: exit %d: %s", code, otherErr.String())
	}
	var outb, errb strings.Builder
	if code := Main(t.Context(), []string{"metrics", "put", "App", "Jobs", "3"}, &outb, &errb); code != ExitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	keys := st.Match("App", "Jobs", map[string]string{"InstanceId": "i-0abc"})
	if len(keys) != 1 {
		t.Errorf("series: %v", st.Series())
	}
	pv, err := st.Aggregate(keys[0], time.Now().Add(-time.Minute), time.Now().Add(time.Minute), time.Minute, metrics.Sum)
	if err != nil || !(pv[0].OK && pv[0].Value == 3 || pv[1].OK && pv[1].Value == 3) {
		t.Errorf("%+v, %v", pv, err)
	}
}

func TestFormatValue(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 1: "1", 12.5: "12.5", 1.0 / 3: "0.333", 1e-4: "0.0001", 2.5e12: "2.5e+12", -7.25: "-7.25", -1e-9: "-1e-09"} {
		if got := formatValue(v); got != want {
			t.Errorf("%v: %q, want %q", v, got, want)
		}
	}
}

func metricsCLI(t *testing.T, addr string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb strings.Builder
	code = Main(t.Context(), append([]string{"--addr", addr}, args...), &out, &errb)
	return code, out.String(), errb.String()
}
