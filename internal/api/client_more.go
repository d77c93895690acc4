package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/autoheal/autoheal/internal/api/wire"
)

// The client's methods for runbooks, windows, target groups, alarms,
// incidents and metrics.

// Documents lists documents.
func (c *Client) Documents(ctx context.Context) ([]wire.DocumentSummary, error) {
	var out []wire.DocumentSummary
	return out, c.do(ctx, http.MethodGet, "/v1/documents", nil, &out)
}

// Document returns one document, as the controller sent it.
func (c *Client) Document(ctx context.Context, name string) (json.RawMessage, error) {
	var out json.RawMessage
	return out, c.do(ctx, http.MethodGet, "/v1/documents/"+url.PathEscape(name), nil, &out)
}

// Run starts an execution.
func (c *Client) Run(ctx context.Context, req wire.RunRequest) (string, error) {
	var out wire.RunResponse
	return out.ID, c.do(ctx, http.MethodPost, "/v1/executions", req, &out)
}

// Executions lists the newest executions.
func (c *Client) Executions(ctx context.Context, limit int) ([]wire.Execution, error) {
	var out []wire.Execution
	return out, c.do(ctx, http.MethodGet, "/v1/executions?limit="+strconv.Itoa(limit), nil, &out)
}

// Execution returns one execution.
func (c *Client) Execution(ctx context.Context, id string) (wire.Execution, error) {
	var out wire.Execution
	return out, c.do(ctx, http.MethodGet, "/v1/executions/"+url.PathEscape(id), nil, &out)
}

// WaitExecution returns an execution once it differs from the state whose
// ETag the caller has (empty: at once), or after wait with changed false:
// the controller answers when the execution changes, so following one
// costs no polling.
func (c *Client) WaitExecution(ctx context.Context, id, etag string, wait time.Duration) (ex wire.Execution, tag string, changed bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, wait+30*time.Second)
	defer cancel()
	header := http.Header{}
	if etag != "" {
		header.Set("If-None-Match", etag)
	}
	path := "/v1/executions/" + url.PathEscape(id) + "?wait=" + url.QueryEscape(wait.String())
	resp, err := c.send(ctx, http.MethodGet, path, nil, header)
	if err != nil {
		return ex, etag, false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotModified {
		return ex, etag, false, nil
	}
	if err := decodeResponse(resp, &ex); err != nil {
		return ex, etag, false, err
	}
	return ex, resp.Header.Get("ETag"), true, nil
}

// CancelExecution cancels a running execution.
func (c *Client) CancelExecution(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodPost, "/v1/executions/"+url.PathEscape(id)+"/cancel", nil, nil)
}

// ApproveExecution answers an approve step.
func (c *Client) ApproveExecution(ctx context.Context, id string, req wire.ApproveRequest) error {
	return c.do(ctx, http.MethodPost, "/v1/executions/"+url.PathEscape(id)+"/approve", req, nil)
}

// Windows lists the maintenance windows with their next start and their
// current and last runs.
func (c *Client) Windows(ctx context.Context) ([]wire.WindowStatus, error) {
	var out []wire.WindowStatus
	return out, c.do(ctx, http.MethodGet, "/v1/windows", nil, &out)
}

// NextWindows returns the next n occurrences of a window (0: the server's
// default, 5).
func (c *Client) NextWindows(ctx context.Context, name string, n int) ([]wire.Window, error) {
	path := "/v1/windows/" + url.PathEscape(name) + "/next"
	if n > 0 {
		path += "?n=" + strconv.Itoa(n)
	}
	var out []wire.Window
	return out, c.do(ctx, http.MethodGet, path, nil, &out)
}

// RunWindow starts a run of a window now and returns its id.
func (c *Client) RunWindow(ctx context.Context, name string) (string, error) {
	var out wire.RunWindowResponse
	err := c.do(ctx, http.MethodPost, "/v1/windows/"+url.PathEscape(name)+"/run", nil, &out)
	return out.RunID, err
}

// Plan asks what reloading the config file at path ("" for the
// controller's own) would do.
func (c *Client) Plan(ctx context.Context, path string) (wire.Plan, error) {
	var out wire.Plan
	return out, c.do(ctx, http.MethodPost, "/v1/admin/plan", wire.PlanRequest{Path: path}, &out)
}

// StartRefresh begins an instance refresh of a group.
func (c *Client) StartRefresh(ctx context.Context, group string, req wire.RefreshRequest) (wire.Refresh, error) {
	var out wire.Refresh
	return out, c.do(ctx, http.MethodPost, "/v1/groups/"+url.PathEscape(group)+"/refresh", req, &out)
}

// Refresh returns a group's last instance refresh.
func (c *Client) Refresh(ctx context.Context, group string) (wire.Refresh, error) {
	var out wire.Refresh
	return out, c.do(ctx, http.MethodGet, "/v1/groups/"+url.PathEscape(group)+"/refresh", nil, &out)
}

// CancelRefresh stops a group's instance refresh.
func (c *Client) CancelRefresh(ctx context.Context, group string) (wire.Refresh, error) {
	var out wire.Refresh
	return out, c.do(ctx, http.MethodPost, "/v1/groups/"+url.PathEscape(group)+"/refresh/cancel", nil, &out)
}

// TargetGroups lists every target group with its targets and metrics.
func (c *Client) TargetGroups(ctx context.Context) ([]wire.TargetGroup, error) {
	var out []wire.TargetGroup
	return out, c.do(ctx, http.MethodGet, "/v1/target-groups", nil, &out)
}

// TargetHealth describes one target group.
func (c *Client) TargetHealth(ctx context.Context, name string) (wire.TargetGroup, error) {
	var out wire.TargetGroup
	return out, c.do(ctx, http.MethodGet, "/v1/target-groups/"+url.PathEscape(name)+"/health", nil, &out)
}

// RegisterTarget adds or re-adds a target.
func (c *Client) RegisterTarget(ctx context.Context, name string, req wire.TargetRequest) (wire.TargetGroup, error) {
	var out wire.TargetGroup
	return out, c.do(ctx, http.MethodPost, "/v1/target-groups/"+url.PathEscape(name)+"/register", req, &out)
}

// DeregisterTarget drains a target; with req.Wait it returns once drained.
func (c *Client) DeregisterTarget(ctx context.Context, name string, req wire.TargetRequest) (wire.TargetGroup, error) {
	var out wire.TargetGroup
	if req.Wait {
		// A drain lasts up to the deregistration delay.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Hour)
		defer cancel()
	}
	return out, c.do(ctx, http.MethodPost, "/v1/target-groups/"+url.PathEscape(name)+"/deregister", req, &out)
}

// Alarms lists every alarm state.
func (c *Client) Alarms(ctx context.Context) ([]wire.Alarm, error) {
	var out []wire.Alarm
	return out, c.do(ctx, http.MethodGet, "/v1/alarms", nil, &out)
}

// Incidents lists the newest incidents.
func (c *Client) Incidents(ctx context.Context, limit int) ([]wire.Incident, error) {
	var out []wire.Incident
	return out, c.do(ctx, http.MethodGet, "/v1/incidents?limit="+strconv.Itoa(limit), nil, &out)
}

// Incident returns one incident with its timeline.
func (c *Client) Incident(ctx context.Context, id string) (wire.Incident, error) {
	var out wire.Incident
	return out, c.do(ctx, http.MethodGet, "/v1/incidents/"+url.PathEscape(id), nil, &out)
}

// PutMetricData sends datums; instance, when not empty, is sent as
// X-Autoheal-Instance. When some datum is refused the error is an
// *APIError and the response still says what was stored and why the
// others were not.
func (c *Client) PutMetricData(ctx context.Context, instance string, req wire.PutRequest) (wire.PutMetricDataResponse, error) {
	var out wire.PutMetricDataResponse
	b, err := json.Marshal(req)
	if err != nil {
		return out, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
	}
	header := http.Header{"Content-Type": {"application/json"}}
	if instance != "" {
		header.Set(InstanceHeader, instance)
	}
	resp, err := c.send(ctx, http.MethodPost, "/v1/metrics", b, header)
	if err != nil {
		return out, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		return out, decodeResponse(resp, &out)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if json.Unmarshal(body, &out) != nil || out.Error == "" {
		out = wire.PutMetricDataResponse{}
		return out, decodeResponse(&http.Response{StatusCode: resp.StatusCode, Body: io.NopCloser(bytes.NewReader(body))}, nil)
	}
	return out, &APIError{Status: resp.StatusCode, Code: out.Code, Msg: out.Error}
}

// StatisticsQuery is a GET /v1/metrics/statistics query. Times and the
// period are sent as written, so that relative times (-1h) are the
// server's.
type StatisticsQuery struct {
	Namespace, MetricName string
	Dimensions            []wire.Dimension
	StartTime, EndTime    string
	Period                string
	Statistics            []string
	Unit                  string
}

// MetricStatistics answers a GetMetricStatistics query.
func (c *Client) MetricStatistics(ctx context.Context, q StatisticsQuery) (wire.Statistics, error) {
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
	var out wire.Statistics
	return out, c.do(ctx, http.MethodGet, "/v1/metrics/statistics?"+v.Encode(), nil, &out)
}

// ListMetrics lists series, optionally of one namespace and metric.
func (c *Client) ListMetrics(ctx context.Context, namespace, metric string) (wire.ListMetricsResponse, error) {
	v := url.Values{}
	if namespace != "" {
		v.Set("Namespace", namespace)
	}
	if metric != "" {
		v.Set("MetricName", metric)
	}
	var out wire.ListMetricsResponse
	return out, c.do(ctx, http.MethodGet, "/v1/metrics?"+v.Encode(), nil, &out)
}
