package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/autoheal/autoheal/internal/api/wire"
	"github.com/autoheal/autoheal/internal/metrics"
)

// Metric endpoints, shaped like CloudWatch's PutMetricData,
// GetMetricStatistics and ListMetrics:
//
// POST /v1/metrics takes {"Namespace": ..., "MetricData": [datum...]}
// (wire.PutRequest; at most 1000 datums and MaxMetricsBody bytes). A
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
// dimension. A datum that has one keeps it. A push made with an
// instance's credential (whose group is not granted operator) is that
// instance's: the header may only name it, every datum without InstanceId
// gets it, and a datum naming another instance refuses the whole push
// with 403.
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

// Names of POST /v1/metrics.
const (
	// InstanceHeader names the instance a push comes from.
	InstanceHeader = "X-Autoheal-Instance"
	// ReservedNamespace prefixes the built-in metrics' namespaces.
	ReservedNamespace = "Autoheal/"
	// dimInstance is the dimension that names an instance.
	dimInstance = "InstanceId"
)

// listMetricsBody is the body of GET /v1/metrics (wire.ListMetricsResponse).
type listMetricsBody struct {
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
func (h *Handler) metricsStore() (Metrics, error) {
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

// bodies recycles request buffers: the decoders copy what they keep.
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
	if err := readBody(w, r, MaxMetricsBody, buf); err != nil {
		writeError(w, err)
		return
	}
	req, decErrs, err := decodePut(buf.Bytes(), st.Limits().MaxBatch)
	if err != nil {
		writeError(w, err)
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
	if err := bindInstance(r, data, idx); err != nil {
		writeError(w, err)
		return
	}
	putErrs := st.Put(req.Namespace, data)
	if len(data) > 0 && len(putErrs) == len(data) && putErrs[0] != nil {
		if _, ok := putErrs[0].(*metrics.DatumError); !ok {
			writeError(w, metricsError(putErrs[0])) // the batch as a whole
			return
		}
	}
	status, resp := putResponse(len(req.MetricData), decErrs, putErrs, idx)
	writeJSON(w, status, resp)
}

// decodePut parses a PutMetricData body and checks it as a whole: a body
// that is not JSON, or wrong as a whole, is an error and nothing is kept;
// errs has one entry per datum (nil: it decoded) when some did not.
func decodePut(body []byte, maxBatch int) (metrics.PutRequest, []error, error) {
	req, errs, err := metrics.DecodePut(body, maxBatch)
	if err != nil {
		return req, nil, metricsError(err)
	}
	if err := metrics.CheckNamespace(req.Namespace); err != nil {
		return req, nil, metricsError(err)
	}
	if strings.HasPrefix(req.Namespace, ReservedNamespace) {
		return req, nil, fmt.Errorf("%w: namespace %q: %s is reserved for autoheal's own metrics", errInvalid, req.Namespace, ReservedNamespace)
	}
	if len(req.MetricData) == 0 {
		return req, nil, fmt.Errorf("%w: no datums: give MetricData", errInvalid)
	}
	return req, errs, nil
}

// bindInstance adds InstanceId to the datums that have none, for the
// instance the push comes from: the caller's, when its credential is bound
// to an instance, else the one X-Autoheal-Instance names. A bound caller
// may not push for another instance: the push is refused whole. idx maps
// data back to the request's indexes (nil: the same).
func bindInstance(r *http.Request, data []metrics.Datum, idx []int) error {
	id := r.Header.Get(InstanceHeader)
	if bound := caller(r.Context()).boundInstance(); bound != "" {
		if id != "" && id != bound {
			return fmt.Errorf("%w: %s %q: this credential is instance %s's, and an instance pushes its own metrics only", errForbidden, InstanceHeader, id, bound)
		}
		id = bound
		for j, d := range data {
			for _, dim := range d.Dimensions {
				if dim.Name == dimInstance && dim.Value != bound {
					i := j
					if idx != nil {
						i = idx[j]
					}
					return fmt.Errorf("%w: datum %d: %s=%s: this credential is instance %s's, and an instance pushes its own metrics only", errForbidden, i, dimInstance, dim.Value, bound)
				}
			}
		}
	}
	if id == "" {
		return nil
	}
	for i := range data {
		if !slices.ContainsFunc(data[i].Dimensions, func(d metrics.Dimension) bool { return d.Name == dimInstance }) {
			data[i].Dimensions = append(slices.Clip(data[i].Dimensions), metrics.Dimension{Name: dimInstance, Value: id})
		}
	}
	return nil
}

// putResponse says what was stored of n datums: 200 when all were, else
// 400 naming each refused one by its index in the request. idx maps the
// store's answers back to the request (nil: the same).
func putResponse(n int, decErrs, putErrs []error, idx []int) (int, wire.PutMetricDataResponse) {
	resp := wire.PutMetricDataResponse{Errors: []wire.DatumError{}}
	for i, e := range decErrs {
		if e != nil {
			resp.Errors = append(resp.Errors, wire.DatumError{Index: i, Error: e.Error()})
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
		resp.Errors = append(resp.Errors, wire.DatumError{Index: i, Error: e.Error()})
	}
	resp.Accepted = n - len(resp.Errors)
	if len(resp.Errors) == 0 {
		return http.StatusOK, resp
	}
	slices.SortFunc(resp.Errors, func(a, b wire.DatumError) int { return a.Index - b.Index })
	kept := "the others are stored"
	if resp.Accepted == 0 {
		kept = "none stored"
	}
	resp.Error = fmt.Sprintf("%d of %d datums refused (%s): %s", len(resp.Errors), n, kept, resp.Errors[0].Error)
	if len(resp.Errors) > 1 {
		resp.Error += fmt.Sprintf(" (and %d more)", len(resp.Errors)-1)
	}
	resp.Code = "invalid"
	// A partial success is still a client error to fix; the body says
	// exactly what was kept.
	return http.StatusBadRequest, resp
}

// statisticsQuery reads a GET /v1/metrics/statistics query.
func statisticsQuery(v url.Values, now time.Time) (metrics.Query, error) {
	q := metrics.Query{Namespace: v.Get("Namespace"), MetricName: v.Get("MetricName"), Unit: metrics.Unit(v.Get("Unit"))}
	for _, s := range append(v["Dimension"], v["dimension"]...) {
		d, err := wire.ParseDimension(s)
		if err != nil {
			return q, err
		}
		q.Dimensions = append(q.Dimensions, metrics.Dimension{Name: d.Name, Value: d.Value})
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
		if q.EndTime, err = wire.ParseTime(s, now); err != nil {
			return q, err
		}
	}
	q.StartTime = q.EndTime.Add(-time.Hour)
	if s := v.Get("StartTime"); s != "" {
		if q.StartTime, err = wire.ParseTime(s, now); err != nil {
			return q, err
		}
	}
	q.Period = time.Minute
	if s := v.Get("Period"); s != "" {
		if q.Period, err = wire.ParsePeriod(s); err != nil {
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
		q.Statistics = wire.DefaultStatistics
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
	resp := listMetricsBody{Metrics: []metrics.SeriesInfo{}, MaxSeries: lim.MaxSeries,
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
