package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/autoheal/autoheal/internal/metrics"
)

// Metric endpoints, shaped like CloudWatch's PutMetricData,
// GetMetricStatistics and ListMetrics:
//
// POST /v1/metrics takes {"Namespace": ..., "MetricData": [datum...]}
// (metrics.PutRequest; at most 1000 datums and MaxMetricsBody bytes). A
// datum that is wrong is refused alone and the others are stored: the
// answer is 200 with {"accepted": n, "errors": []} when every datum was
// stored, else 400 with the same body plus "error" and "code", "errors"
// naming each refused datum by its index. A body that is not JSON, or
// wrong as a whole (namespace, too many datums), stores nothing and is a
// plain 400. Namespaces starting with "Autoheal/" are the controller's
// own and refused.
//
// An instance pushes with the identity it was given: a request carrying
// the header X-Autoheal-Instance: <id> (the instance's AUTOHEAL_INSTANCE_ID)
// has InstanceId=<id> added to every datum without an InstanceId
// dimension. A datum that has one keeps it. (Auth tokens, which will bind
// the header to the caller, come later.)
//
// GET /v1/metrics/statistics answers a GetMetricStatistics query from
// parameters: Namespace and MetricName; Dimension=Name=Value, repeated
// (or CloudWatch's Dimensions.member.N.Name and .Value); StartTime and
// EndTime, RFC 3339, Unix seconds, "now", or relative to now like -10m
// (default: the hour up to now, the period holding now included); Period, seconds or a duration like 1m (default
// 60); Statistics (and ExtendedStatistics), comma lists of Average, Sum,
// Minimum, Maximum, SampleCount and percentiles like p99 (default
// SampleCount,Average,Minimum,Maximum); Unit.
//
// GET /v1/metrics lists the series (filters Namespace, MetricName) with
// their memory.

// Bounds of POST /v1/metrics.
const (
	// MaxMetricsBody bounds a PutMetricData body: 1000 datums of 150 values
	// each fit.
	MaxMetricsBody = 4 << 20
	// InstanceHeader names the instance a push comes from.
	InstanceHeader = "X-Autoheal-Instance"
	// ReservedNamespace prefixes the built-in metrics' namespaces.
	ReservedNamespace = "Autoheal/"
)

// PutMetricDataResponse is the body of POST /v1/metrics.
type PutMetricDataResponse struct {
	Accepted int          `json:"accepted"`
	Errors   []DatumError `json:"errors"`
	// Error and Code are set when some datum was refused (status 400).
	Error string `json:"error,omitempty"`
	Code  string `json:"code,omitempty"`
}

// DatumError is why one datum was refused.
type DatumError struct {
	Index int    `json:"index"`
	Error string `json:"error"`
}

// ListMetricsResponse is the body of GET /v1/metrics.
type ListMetricsResponse struct {
	Metrics []metrics.SeriesInfo `json:"Metrics"`
	// Series and Bytes count every series, not only those listed.
	Series     int    `json:"Series"`
	Bytes      int64  `json:"Bytes"`
	MaxSeries  int    `json:"MaxSeries"`
	Resolution string `json:"Resolution"`
	Retention  string `json:"Retention"`
}

// metricsStore returns the store, or an error answered 404 when the
// controller keeps no metrics.
func (h *Handler) metricsStore() (*metrics.Store, error) {
	if h.deps.Metrics == nil {
		return nil, fmt.Errorf("%w: metrics are not enabled", errNotFound)
	}
	return h.deps.Metrics, nil
}

// metricsError maps the store's errors to the API's kinds.
func metricsError(err error) error {
	switch {
	case errors.Is(err, metrics.ErrClosed):
		return fmt.Errorf("%w: %v", context.Canceled, err) // stopping: 503
	case errors.Is(err, metrics.ErrInvalid), errors.Is(err, metrics.ErrTooManySeries):
		return fmt.Errorf("%w: %v", errInvalid, strings.TrimPrefix(err.Error(), "invalid: "))
	}
	return err
}

// bodies recycles request buffers: the decoder copies what it keeps.
var bodies = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func (h *Handler) putMetricData(w http.ResponseWriter, r *http.Request) {
	st, err := h.metricsStore()
	if err != nil {
		writeError(w, err)
		return
	}
	buf := bodies.Get().(*bytes.Buffer)
	defer bodies.Put(buf)
	buf.Reset()
	if _, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, MaxMetricsBody)); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, fmt.Errorf("%w: body larger than %d bytes: split the batch", errInvalid, MaxMetricsBody))
			return
		}
		writeError(w, fmt.Errorf("%w: body: %v", errInvalid, err))
		return
	}
	req, decErrs, err := metrics.DecodePut(buf.Bytes(), st.Limits().MaxBatch)
	if err != nil {
		writeError(w, metricsError(err))
		return
	}
	if err := metrics.CheckNamespace(req.Namespace); err != nil {
		writeError(w, metricsError(err))
		return
	}
	if strings.HasPrefix(req.Namespace, ReservedNamespace) {
		writeError(w, fmt.Errorf("%w: namespace %q: %s is reserved for autoheal's own metrics", errInvalid, req.Namespace, ReservedNamespace))
		return
	}
	if len(req.MetricData) == 0 {
		writeError(w, fmt.Errorf("%w: no datums: give MetricData", errInvalid))
		return
	}
	// The datums that decoded go to the store; idx maps them back.
	data, idx := req.MetricData, []int(nil)
	if decErrs != nil {
		data = nil
		for i, e := range decErrs {
			if e == nil {
				data, idx = append(data, req.MetricData[i]), append(idx, i)
			}
		}
	}
	if id := r.Header.Get(InstanceHeader); id != "" {
		for i := range data {
			if !slices.ContainsFunc(data[i].Dimensions, func(d metrics.Dimension) bool { return d.Name == "InstanceId" }) {
				data[i].Dimensions = append(slices.Clip(data[i].Dimensions), metrics.Dimension{Name: "InstanceId", Value: id})
			}
		}
	}
	putErrs := st.Put(req.Namespace, data)
	if len(data) > 0 && len(putErrs) == len(data) && putErrs[0] != nil {
		if _, ok := putErrs[0].(*metrics.DatumError); !ok {
			writeError(w, metricsError(putErrs[0])) // the batch as a whole
			return
		}
	}
	resp := PutMetricDataResponse{Errors: []DatumError{}}
	for i, e := range decErrs {
		if e != nil {
			resp.Errors = append(resp.Errors, DatumError{Index: i, Error: e.Error()})
		}
	}
	for j, e := range putErrs {
		if e == nil {
			continue
		}
		i := j
		if idx != nil {
			i = idx[j]
		}
		var de *metrics.DatumError
		if errors.As(e, &de) {
			de.Index = i // its index in the request
		}
		resp.Errors = append(resp.Errors, DatumError{Index: i, Error: e.Error()})
	}
	resp.Accepted = len(req.MetricData) - len(resp.Errors)
	if len(resp.Errors) == 0 {
		writeJSON(w, http.StatusOK, resp)
		return
	}
	slices.SortFunc(resp.Errors, func(a, b DatumError) int { return a.Index - b.Index })
	kept := "the others are stored"
	if resp.Accepted == 0 {
		kept = "none stored"
	}
	resp.Error = fmt.Sprintf("%d of %d datums refused (%s): %s", len(resp.Errors), len(req.MetricData), kept, resp.Errors[0].Error)
	if len(resp.Errors) > 1 {
		resp.Error += fmt.Sprintf(" (and %d more)", len(resp.Errors)-1)
	}
	resp.Code = "invalid"
	// A partial success is still a client error to fix; the body says
	// exactly what was kept.
	writeJSON(w, http.StatusBadRequest, resp)
}

// ParseTime reads a time for the metric endpoints: RFC 3339, Unix
// seconds, "now", or a duration before (-10m) or after (+10m) now.
func ParseTime(s string, now time.Time) (time.Time, error) {
	switch {
	case s == "now":
		return now, nil
	case strings.HasPrefix(s, "-") || strings.HasPrefix(s, "+"):
		d, err := time.ParseDuration(s[1:])
		if err != nil {
			return time.Time{}, fmt.Errorf("time %q: give RFC 3339, Unix seconds, now, or -DURATION like -10m", s)
		}
		if s[0] == '-' {
			d = -d
		}
		return now.Add(d), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if sec, err := strconv.ParseFloat(s, 64); err == nil && sec > 0 && sec < 1e11 {
		return time.Unix(0, int64(sec*1e9)).UTC(), nil
	}
	return time.Time{}, fmt.Errorf("time %q: give RFC 3339, Unix seconds, now, or -DURATION like -10m", s)
}

// ParsePeriod reads a period: seconds (60) or a duration (1m).
func ParsePeriod(s string) (time.Duration, error) {
	if n, err := strconv.Atoi(s); err == nil && n > 0 {
		return time.Duration(n) * time.Second, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return d, nil
	}
	return 0, fmt.Errorf("period %q: give seconds (60) or a duration (1m)", s)
}

// ParseDimension reads Name=Value.
func ParseDimension(s string) (metrics.Dimension, error) {
	name, value, ok := strings.Cut(s, "=")
	if !ok || name == "" {
		return metrics.Dimension{}, fmt.Errorf("dimension %q: give Name=Value", s)
	}
	return metrics.Dimension{Name: name, Value: value}, nil
}

// DefaultStatistics are answered when a query names none.
var DefaultStatistics = []string{metrics.SampleCount, metrics.Average, metrics.Minimum, metrics.Maximum}

// statisticsQuery reads a GET /v1/metrics/statistics query.
func statisticsQuery(v url.Values, now time.Time) (metrics.Query, error) {
	q := metrics.Query{Namespace: v.Get("Namespace"), MetricName: v.Get("MetricName"), Unit: metrics.Unit(v.Get("Unit"))}
	for _, s := range append(v["Dimension"], v["dimension"]...) {
		d, err := ParseDimension(s)
		if err != nil {
			return q, err
		}
		q.Dimensions = append(q.Dimensions, d)
	}
	for n := 1; n <= metrics.MaxDimensions; n++ {
		p := "Dimensions.member." + strconv.Itoa(n)
		name, value := v.Get(p+".Name"), v.Get(p+".Value")
		if name == "" && value == "" {
			break
		}
		q.Dimensions = append(q.Dimensions, metrics.Dimension{Name: name, Value: value})
	}
	var err error
	// By default the period that holds now is in, even when now is its
	// first instant.
	q.EndTime = now.Add(time.Nanosecond)
	if s := v.Get("EndTime"); s != "" {
		if q.EndTime, err = ParseTime(s, now); err != nil {
			return q, err
		}
	}
	q.StartTime = q.EndTime.Add(-time.Hour)
	if s := v.Get("StartTime"); s != "" {
		if q.StartTime, err = ParseTime(s, now); err != nil {
			return q, err
		}
	}
	q.Period = time.Minute
	if s := v.Get("Period"); s != "" {
		if q.Period, err = ParsePeriod(s); err != nil {
			return q, err
		}
	}
	for _, s := range append(v["Statistics"], v["ExtendedStatistics"]...) {
		for _, name := range strings.Split(s, ",") {
			if name = strings.TrimSpace(name); name != "" {
				q.Statistics = append(q.Statistics, name)
			}
		}
	}
	if len(q.Statistics) == 0 {
		q.Statistics = DefaultStatistics
	}
	return q, nil
}

func (h *Handler) metricStatistics(w http.ResponseWriter, r *http.Request) {
	st, err := h.metricsStore()
	if err != nil {
		writeError(w, err)
		return
	}
	q, err := statisticsQuery(r.URL.Query(), st.Limits().Now())
	if err != nil {
		writeError(w, fmt.Errorf("%w: %v", errInvalid, err))
		return
	}
	res, err := st.Statistics(q)
	if err != nil {
		writeError(w, metricsError(err))
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (h *Handler) listMetrics(w http.ResponseWriter, r *http.Request) {
	st, err := h.metricsStore()
	if err != nil {
		writeError(w, err)
		return
	}
	ns, name := r.URL.Query().Get("Namespace"), r.URL.Query().Get("MetricName")
	lim := st.Limits()
	resp := ListMetricsResponse{Metrics: []metrics.SeriesInfo{}, MaxSeries: lim.MaxSeries,
		Resolution: lim.Resolution.String(), Retention: lim.Retention.String()}
	for _, in := range st.Series() {
		resp.Series++
		resp.Bytes += in.Bytes
		if (ns == "" || in.Namespace == ns) && (name == "" || in.MetricName == name) {
			resp.Metrics = append(resp.Metrics, in)
		}
	}
	writeJSON(w, http.StatusOK, resp)
}

// PutMetricData sends datums; instance, when not empty, is sent as
// X-Autoheal-Instance. When some datum is refused the error is an
// *APIError and the response still says what was stored and why the
// others were not.
func (c *Client) PutMetricData(ctx context.Context, instance string, req metrics.PutRequest) (PutMetricDataResponse, error) {
	var out PutMetricDataResponse
	b, err := json.Marshal(req)
	if err != nil {
		return out, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/v1/metrics", bytes.NewReader(b))
	if err != nil {
		return out, err
	}
	hr.Header.Set("Content-Type", "application/json")
	if instance != "" {
		hr.Header.Set(InstanceHeader, instance)
	}
	resp, err := c.http.Do(hr)
	if err != nil {
		return out, fmt.Errorf("cannot reach autoheal at %s (is `autoheal serve` running? set --addr): %w", c.base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		return out, decodeResponse(resp, &out)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if json.Unmarshal(body, &out) != nil || out.Error == "" {
		out = PutMetricDataResponse{}
		return out, decodeResponse(&http.Response{StatusCode: resp.StatusCode, Body: io.NopCloser(bytes.NewReader(body))}, nil)
	}
	return out, &APIError{Status: resp.StatusCode, Code: out.Code, Msg: out.Error}
}

// StatisticsQuery is a GET /v1/metrics/statistics query. Times and the
// period are sent as written, so that relative times (-1h) are the
// server's.
type StatisticsQuery struct {
	Namespace, MetricName string
	Dimensions            []metrics.Dimension
	StartTime, EndTime    string
	Period                string
	Statistics            []string
	Unit                  string
}

// MetricStatistics answers a GetMetricStatistics query.
func (c *Client) MetricStatistics(ctx context.Context, q StatisticsQuery) (metrics.Result, error) {
	v := url.Values{"Namespace": {q.Namespace}, "MetricName": {q.MetricName}}
	for _, d := range q.Dimensions {
		v.Add("Dimension", d.Name+"="+d.Value)
	}
	for k, s := range map[string]string{"StartTime": q.StartTime, "EndTime": q.EndTime, "Period": q.Period, "Unit": q.Unit} {
		if s != "" {
			v.Set(k, s)
		}
	}
	if len(q.Statistics) > 0 {
		v.Set("Statistics", strings.Join(q.Statistics, ","))
	}
	var out metrics.Result
	return out, c.do(ctx, http.MethodGet, "/v1/metrics/statistics?"+v.Encode(), nil, &out)
}

// ListMetrics lists series, optionally of one namespace and metric.
func (c *Client) ListMetrics(ctx context.Context, namespace, metric string) (ListMetricsResponse, error) {
	v := url.Values{}
	if namespace != "" {
		v.Set("Namespace", namespace)
	}
	if metric != "" {
		v.Set("MetricName", metric)
	}
	var out ListMetricsResponse
	return out, c.do(ctx, http.MethodGet, "/v1/metrics?"+v.Encode(), nil, &out)
}
