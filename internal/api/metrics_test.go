package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/autoheal/autoheal/internal/api/wire"
	"github.com/autoheal/autoheal/internal/metrics"
)

// metricsNow is the store's clock in these tests.
var metricsNow = time.Date(2024, 5, 2, 12, 0, 0, 0, time.UTC)

// metricsServer serves the API over a metrics store whose clock stands
// at metricsNow.
func metricsServer(t testing.TB) (*Client, *metrics.Store, string) {
	t.Helper()
	st, err := metrics.New(metrics.Options{Now: func() time.Time { return metricsNow }, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	creds := testCredentials(t)
	srv := httptest.NewServer(New(Deps{Metrics: st, Credentials: creds, Logger: slog.New(slog.DiscardHandler)}))
	t.Cleanup(srv.Close)
	return NewClientWithToken(srv.URL, creds.AdminToken()), st, srv.URL
}

// post sends a metrics body as c's caller, with header's pairs.
func post(t *testing.T, c *Client, url, body string, header ...string) (int, wire.PutMetricDataResponse, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url+"/v1/metrics", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.Token())
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out wire.PutMetricDataResponse
	json.Unmarshal(b, &out)
	return resp.StatusCode, out, string(b)
}

func TestPutMetricData(t *testing.T) {
	c, st, url := metricsServer(t)
	ctx := context.Background()

	resp, err := c.PutMetricData(ctx, "i-0abc", wire.PutRequest{Namespace: "App", MetricData: []wire.Datum{
		{MetricName: "Latency", Values: []float64{10, 20, 30}, Counts: []float64{1, 1, 2}, Unit: "Milliseconds"},
		{MetricName: "Latency", Dimensions: []wire.Dimension{{Name: "InstanceId", Value: "i-other"}}, Value: 5, Unit: "Milliseconds"},
		{MetricName: "Queue", Value: 0, Timestamp: metricsNow.Add(-time.Minute)},
	}})
	if err != nil || resp.Accepted != 3 || len(resp.Errors) != 0 {
		t.Fatalf("%+v, %v", resp, err)
	}
	// The header named the instance of datums without an InstanceId.
	keys := st.Match("App", "Latency", map[string]string{"InstanceId": "*"})
	if len(keys) != 2 || keys[0].String() != "App Latency{InstanceId=i-0abc}" || keys[1].String() != "App Latency{InstanceId=i-other}" {
		t.Errorf("series: %v", keys)
	}

	t.Run("some datums refused", func(t *testing.T) {
		code, out, raw := post(t, c, url, `{"Namespace": "App", "MetricData": [
			{"MetricName": "Partial", "Value": 1},
			{"MetricName": "Partial", "Value": "x"},
			{"MetricName": "Partial", "Values": [1, 2], "Counts": [1]},
			{"MetricName": "Partial", "Value": 2, "Unit": "Parsecs"},
			{"MetricName": "Partial", "Value": 3, "Timestamp": "2020-01-01T00:00:00Z"},
			{"MetricName": "Partial", "Value": 4}]}`)
		if code != http.StatusBadRequest || out.Accepted != 2 || len(out.Errors) != 4 || out.Code != "invalid" {
			t.Fatalf("%d %s", code, raw)
		}
		want := []string{
			"MetricData[1].Value: invalid: want a number, got a string",
			"MetricData[2].Counts: invalid: 1 counts for 2 values",
			`MetricData[3].Unit: invalid: unknown unit "Parsecs"`,
			"MetricData[4].Timestamp: invalid: 2020-01-01T00:00:00Z is more than 3h0m0s before now",
		}
		for i, w := range want {
			if e := out.Errors[i]; e.Index != i+1 || !strings.HasPrefix(e.Error, w) {
				t.Errorf("error %d: %+v, want %q", i, e, w)
			}
		}
		if !strings.HasPrefix(out.Error, "4 of 6 datums refused (the others are stored): MetricData[1].Value") {
			t.Errorf("error: %q", out.Error)
		}
		res, err := c.MetricStatistics(ctx, StatisticsQuery{Namespace: "App", MetricName: "Partial", Statistics: []string{"Sum"}})
		if err != nil || len(res.Datapoints) != 1 || *res.Datapoints[0].Sum != 5 {
			t.Errorf("the good datums: %+v, %v", res, err)
		}
		// The client returns the same detail with an error.
		resp, err := c.PutMetricData(ctx, "", wire.PutRequest{Namespace: "App", MetricData: []wire.Datum{{MetricName: "Partial", Value: 1, Unit: "Seconds"}, {MetricName: "", Value: 1}}})
		var ae *APIError
		if !errors.As(err, &ae) || ae.Status != 400 || resp.Accepted != 1 || len(resp.Errors) != 1 || resp.Errors[0].Index != 1 {
			t.Errorf("client: %+v, %v", resp, err)
		}
	})

	t.Run("refused whole", func(t *testing.T) {
		big := `{"Namespace": "App", "MetricData": [` + strings.Repeat(`{"MetricName": "m", "Value": 1},`, 1000) + `{"MetricName": "m", "Value": 1}]}`
		for _, tc := range []struct{ body, want string }{
			{`{"Namespace": "App", "MetricData": [{"MetricName": "m", "Value": 1}`, "body is not valid JSON: unexpected end of input at byte"},
			{`{"Namespace": "App", "MetricData": [{"MetricName": "m", "Value": 1}, {"MetricName": "m", "Value": NaN}]}`, "body is not valid JSON: invalid character 'N'"},
			{`{"Namespace": "Autoheal/Health", "MetricData": [{"MetricName": "m", "Value": 1}]}`, "Autoheal/ is reserved for autoheal's own metrics"},
			{`{"Namespace": "", "MetricData": [{"MetricName": "m", "Value": 1}]}`, "Namespace is empty"},
			{`{"Namespace": "App", "MetricData": []}`, "no datums: give MetricData"},
			{big, "more than 1000 datums in MetricData: split the batch"},
		} {
			code, out, raw := post(t, c, url, tc.body)
			if code != http.StatusBadRequest || out.Accepted != 0 || !strings.Contains(raw, tc.want) || !strings.Contains(raw, `"code": "invalid"`) {
				t.Errorf("%.60s: %d %s", tc.body, code, raw)
			}
		}
		huge := `{"Namespace": "App", "MetricData": [{"MetricName": "m", "Values": [` + strings.Repeat("1,", MaxMetricsBody/2) + `1]}]}`
		if code, _, raw := post(t, c, url, huge); code != http.StatusRequestEntityTooLarge ||
			!strings.Contains(raw, "the body of POST /v1/metrics is limited to 4194304 bytes") || !strings.Contains(raw, `"code": "too_large"`) {
			t.Errorf("a body over the limit: %d %s", code, raw)
		}
		if infos := st.Series(); len(infos) != 4 {
			t.Errorf("a refused body stored something: %v", infos)
		}
	})
}

func TestMetricStatistics(t *testing.T) {
	c, st, url := metricsServer(t)
	ctx := context.Background()
	var data []wire.Datum
	for m := range 10 {
		vals := make([]float64, 100)
		for i := range vals {
			vals[i] = float64(i + 1)
		}
		data = append(data, wire.Datum{MetricName: "Latency", Timestamp: metricsNow.Add(time.Duration(m-10) * time.Minute),
			Dimensions: []wire.Dimension{{Name: "InstanceId", Value: "i-01"}, {Name: "Group", Value: "web"}}, Values: vals, Unit: "Milliseconds"})
	}
	if _, err := c.PutMetricData(ctx, "", wire.PutRequest{Namespace: "App", MetricData: data}); err != nil {
		t.Fatal(err)
	}
	dims := []wire.Dimension{{Name: "Group", Value: "web"}, {Name: "InstanceId", Value: "i-01"}}
	res, err := c.MetricStatistics(ctx, StatisticsQuery{Namespace: "App", MetricName: "Latency", Dimensions: dims,
		StartTime: "-10m", Period: "5m", Statistics: []string{"Average", "Maximum", "SampleCount", "p50", "p99"}})
	if err != nil || len(res.Datapoints) != 2 {
		t.Fatalf("%+v, %v", res, err)
	}
	dp := res.Datapoints[0]
	if !dp.Timestamp.Equal(metricsNow.Add(-10*time.Minute)) || *dp.Average != 50.5 || *dp.Maximum != 100 || *dp.SampleCount != 500 ||
		dp.Unit != "Milliseconds" || dp.Sum != nil || dp.ExtendedStatistics["p50"] < 49.5 || dp.ExtendedStatistics["p50"] > 50.5 ||
		dp.ExtendedStatistics["p99"] < 98 || dp.ExtendedStatistics["p99"] > 100 {
		t.Errorf("datapoint: %+v %v", dp, dp.ExtendedStatistics)
	}

	// CloudWatch's own parameter names, defaults for the rest.
	req, _ := http.NewRequest(http.MethodGet, url+"/v1/metrics/statistics?Namespace=App&MetricName=Latency&Dimensions.member.1.Name=InstanceId&Dimensions.member.1.Value=i-01"+
		"&Dimensions.member.2.Name=Group&Dimensions.member.2.Value=web&StartTime="+metricsNow.Add(-5*time.Minute).Format(time.RFC3339)+"&EndTime=now&Period=300", nil)
	req.Header.Set("Authorization", "Bearer "+c.Token())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var r2 wire.Statistics
	json.NewDecoder(resp.Body).Decode(&r2)
	resp.Body.Close()
	if len(r2.Datapoints) != 1 || r2.Datapoints[0].SampleCount == nil || *r2.Datapoints[0].Minimum != 1 || r2.Datapoints[0].Average == nil {
		t.Errorf("query parameters: %+v", r2)
	}

	for _, tc := range []struct {
		q    StatisticsQuery
		want string
	}{
		{StatisticsQuery{MetricName: "Latency"}, "give a namespace and a metric name"},
		{StatisticsQuery{Namespace: "App", MetricName: "Latency", Period: "15s"}, "period 15s: give a multiple of the resolution 10s"},
		{StatisticsQuery{Namespace: "App", MetricName: "Latency", Period: "x"}, `period "x": give seconds (60) or a duration (1m)`},
		{StatisticsQuery{Namespace: "App", MetricName: "Latency", StartTime: "yesterday"}, `time "yesterday": give RFC 3339`},
		{StatisticsQuery{Namespace: "App", MetricName: "Latency", Statistics: []string{"Mean"}}, `statistic "Mean"`},
		{StatisticsQuery{Namespace: "App", MetricName: "Latency", StartTime: "-48h", Period: "10"}, "periods of 10s"},
		{StatisticsQuery{Namespace: "App", MetricName: "Latency", Dimensions: []wire.Dimension{{Name: "", Value: "x"}}}, `dimension "=x": give Name=Value`},
	} {
		var ae *APIError
		if _, err := c.MetricStatistics(ctx, tc.q); !errors.As(err, &ae) || ae.Status != 400 || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.q, err, tc.want)
		}
	}
	// A series that does not exist has no datapoints.
	if res, err := c.MetricStatistics(ctx, StatisticsQuery{Namespace: "App", MetricName: "Latency"}); err != nil || len(res.Datapoints) != 0 {
		t.Errorf("no such series: %+v, %v", res, err)
	}

	list, err := c.ListMetrics(ctx, "", "")
	if err != nil || len(list.Metrics) != 1 || list.Series != 1 || list.Bytes <= 0 || list.MaxSeries != 10000 || list.Resolution != "10s" ||
		list.Metrics[0].Bytes != list.Bytes || list.Metrics[0].MaxBytes < list.Bytes || list.Metrics[0].Unit != "Milliseconds" {
		t.Errorf("list: %+v, %v", list, err)
	}
	if list, err := c.ListMetrics(ctx, "Other", ""); err != nil || len(list.Metrics) != 0 || list.Series != 1 {
		t.Errorf("list Other: %+v, %v", list, err)
	}
	_ = st
}

func TestMetricsDisabled(t *testing.T) {
	srv := httptest.NewServer(New(Deps{Credentials: testCredentials(t), Logger: slog.New(slog.DiscardHandler)}))
	defer srv.Close()
	c := NewClient(srv.URL)
	if _, err := c.ListMetrics(context.Background(), "", ""); !IsNotFound(err) {
		t.Errorf("list: %v", err)
	}
	if _, err := c.PutMetricData(context.Background(), "", wire.PutRequest{Namespace: "App", MetricData: []wire.Datum{{MetricName: "m"}}}); !IsNotFound(err) {
		t.Errorf("put: %v", err)
	}
}

func TestParseTime(t *testing.T) {
	now := metricsNow
	for in, want := range map[string]time.Time{
		"now":                       now,
		"-10m":                      now.Add(-10 * time.Minute),
		"+1h30m":                    now.Add(90 * time.Minute),
		"2024-05-02T11:00:00+02:00": time.Date(2024, 5, 2, 9, 0, 0, 0, time.UTC),
		"1714651200":                time.Date(2024, 5, 2, 12, 0, 0, 0, time.UTC),
		"1714651200.5":              time.Date(2024, 5, 2, 12, 0, 0, 5e8, time.UTC),
	} {
		if got, err := wire.ParseTime(in, now); err != nil || !got.Equal(want) {
			t.Errorf("%s: %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-", "-10", "yesterday", "-1x", "0"} {
		if _, err := wire.ParseTime(in, now); err == nil {
			t.Errorf("%q: no error", in)
		}
	}
}

// Batched ingest through the HTTP API over a real loopback socket:
// 1000 datums of one value per request, JSON, datapoints per second,
// beside a baseline of the same requests to a handler that only reads
// the body and answers 200 (the HTTP stack's own ceiling on this
// machine). Client and server share the CPUs.
//
//	go test -run '^$' -bench BenchmarkPutMetricDataHTTP -benchtime 3s ./internal/api/
func BenchmarkPutMetricDataHTTP(b *testing.B) {
	var body bytes.Buffer
	req := wire.PutRequest{Namespace: "Bench"}
	for i := range 1000 {
		req.MetricData = append(req.MetricData, wire.Datum{MetricName: "Latency", Unit: "Milliseconds", Value: float64(1 + i%97),
			Dimensions: []wire.Dimension{{Name: "Group", Value: "web"}, {Name: "InstanceId", Value: fmt.Sprintf("i-%04d", i)}}})
	}
	json.NewEncoder(&body).Encode(req)
	benchCreds := testCredentials(b)
	empty := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"accepted": 1000, "errors": []}` + "\n"))
	})
	for _, v := range []struct {
		name    string
		handler func(b *testing.B) http.Handler
	}{
		{"baseline-empty-handler", func(*testing.B) http.Handler { return empty }},
		{"autoheal", func(b *testing.B) http.Handler {
			st, err := metrics.New(metrics.Options{Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { st.Close() })
			return New(Deps{Metrics: st, Credentials: benchCreds, Logger: slog.New(slog.DiscardHandler)})
		}},
	} {
		b.Run(v.name, func(b *testing.B) {
			srv := httptest.NewServer(v.handler(b))
			defer srv.Close()
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			defer client.CloseIdleConnections()
			var once sync.Once
			b.SetBytes(int64(body.Len()))
			b.SetParallelism(2)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/metrics", bytes.NewReader(body.Bytes()))
					req.Header.Set("Content-Type", "application/json")
					req.Header.Set("Authorization", "Bearer "+benchCreds.AdminToken())
					resp, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						once.Do(func() { b.Errorf("status %d", resp.StatusCode) })
					}
				}
			})
			b.ReportMetric(float64(b.N)*1000/b.Elapsed().Seconds(), "datapoints/s")
		})
	}
}
