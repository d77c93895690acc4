package api

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/autoheal/autoheal/internal/alarm"
	"github.com/autoheal/autoheal/internal/api/wire"
	"github.com/autoheal/autoheal/internal/metrics"
)

// bodyEndpoints are every route that takes a body, with its limit.
var bodyEndpoints = []struct {
	path  string
	limit int64
}{
	{"/v1/groups/pet/scale", MaxBody},
	{"/v1/instances/" + petA + "/terminate", MaxBody},
	{"/v1/instances/" + petA + "/restart", MaxBody},
	{"/v1/executions", MaxRunBody},
	{"/v1/executions/exec-1/cancel", MaxBody},
	{"/v1/executions/exec-1/approve", MaxBody},
	{"/v1/target-groups/web/register", MaxBody},
	{"/v1/target-groups/web/deregister", MaxBody},
	{"/v1/windows/patch/run", MaxBody},
	{"/v1/session", MaxBody},
	{"/v1/metrics", MaxMetricsBody},
	{"/v1/alertmanager", MaxAlertmanagerBody},
	{"/v1/admin/plan", MaxBody},
	{"/v1/groups/pet/refresh", MaxBody},
	{"/v1/groups/pet/refresh/cancel", MaxBody},
}

// bodyHandler serves every body endpoint with what it needs to read its
// body (the rest answers 404 after the body was accepted).
func bodyHandler(t testing.TB) (*Handler, *Credentials) {
	t.Helper()
	ms, err := metrics.New(metrics.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ms.Close() })
	creds := testCredentials(t)
	h := New(Deps{Groups: []Group{newFakeGroup("pet", "", petA)}, Metrics: ms, Credentials: creds, Logger: slog.New(slog.DiscardHandler),
		Alertmanager: func(context.Context, alarm.AlertmanagerPayload) (int, error) { return 0, nil }})
	t.Cleanup(h.Close)
	return h, creds
}

// endless is a body that never ends, counting what was read of it.
type endless struct{ read int64 }

func (e *endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = ' ' // JSON white space: no decoder stops early on it
	}
	e.read += int64(len(p))
	return len(p), nil
}

// TestBodyLimits sends every body endpoint a body one byte over its
// limit, declared (refused before any of it is read) and chunked
// (refused at the limit: never more than limit+1 bytes read, so memory
// cannot grow with the body), and checks the 413 names the limit.
func TestBodyLimits(t *testing.T) {
	h, creds := bodyHandler(t)
	for _, ep := range bodyEndpoints {
		for _, declared := range []bool{true, false} {
			name := ep.path + map[bool]string{true: " declared", false: " chunked"}[declared]
			t.Run(name, func(t *testing.T) {
				body := &endless{}
				req := httptest.NewRequest("POST", "http://127.0.0.1:7070"+ep.path, io.NopCloser(body))
				req.ContentLength = -1
				if declared {
					req.ContentLength = ep.limit + 1
				}
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+creds.AdminToken())
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				var e wire.Error
				json.Unmarshal(w.Body.Bytes(), &e)
				want := "limited to " + strconv.FormatInt(ep.limit, 10) + " bytes"
				if w.Code != http.StatusRequestEntityTooLarge || e.Code != "too_large" || !strings.Contains(e.Error, want) || !strings.Contains(e.Error, ep.path) {
					t.Fatalf("%d %s, want 413 naming %q and the path", w.Code, w.Body, want)
				}
				if max := map[bool]int64{true: 0, false: ep.limit + 1}[declared]; body.read > max {
					t.Errorf("read %d bytes of the body, want at most %d", body.read, max)
				}
			})
		}
	}
}

// TestBodyAtLimit: a body of exactly the limit is read (whatever the
// endpoint then makes of it), so the limit is the documented one and not
// one byte less.
func TestBodyAtLimit(t *testing.T) {
	h, creds := bodyHandler(t)
	for _, ep := range bodyEndpoints {
		// A JSON object padded with white space to the limit.
		body := "{}" + strings.Repeat(" ", int(ep.limit)-2)
		req := httptest.NewRequest("POST", "http://127.0.0.1:7070"+ep.path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+creds.AdminToken())
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code == http.StatusRequestEntityTooLarge {
			t.Errorf("%s: a body of exactly %d bytes refused: %s", ep.path, ep.limit, w.Body)
		}
	}
}

// TestBodyLimitMemory pushes 64 MiB at the scale endpoint over a real
// connection and measures what the process allocated meanwhile: a body
// refused at its limit costs about the limit, not the body.
func TestBodyLimitMemory(t *testing.T) {
	h, creds := bodyHandler(t)
	srv := httptest.NewServer(h)
	defer srv.Close()
	const size = 64 << 20
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	req, _ := http.NewRequest("POST", srv.URL+"/v1/groups/pet/scale", io.LimitReader(&endless{}, size))
	req.ContentLength = -1 // chunked: the server learns the size only by reading
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+creds.AdminToken())
	resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
	if err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	runtime.ReadMemStats(&after)
	if err == nil && resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d, want 413", resp.StatusCode)
	}
	grew := after.TotalAlloc - before.TotalAlloc
	t.Logf("refusing a %d-byte chunked body (limit %d) allocated %d bytes in the process (client and server)", size, MaxBody, grew)
	if grew > 8<<20 {
		t.Errorf("allocated %d bytes while refusing a %d-byte body (limit %d)", grew, size, MaxBody)
	}
}

// TestRegressionInProcessNilBody: runbook executeApi steps call the
// routes in process with http.NewRequest and no body, whose Body is nil
// (a server's never is); reading it panicked and killed the execution.
func TestRegressionInProcessNilBody(t *testing.T) {
	h, _ := bodyHandler(t)
	for _, ep := range bodyEndpoints {
		req, _ := http.NewRequest("POST", "http://autoheal.internal"+ep.path, nil)
		w := httptest.NewRecorder()
		func() {
			defer func() {
				if p := recover(); p != nil {
					t.Errorf("%s without a body: panic %v", ep.path, p)
				}
			}()
			h.InProcess().ServeHTTP(w, req)
		}()
		if w.Code == http.StatusRequestEntityTooLarge || w.Code >= 500 {
			t.Errorf("%s without a body: %d %s", ep.path, w.Code, w.Body)
		}
	}
}

func TestDuplicateKey(t *testing.T) {
	for body, dup := range map[string]string{
		`{"desired":1}`:                               "",
		`{"desired":1,"desired":0}`:                   "desired",
		`{"a":{"b":1,"b":2}}`:                         "b",
		`{"a":{"b":1},"b":2}`:                         "",
		`{"a":[{"b":1},{"b":2}]}`:                     "",
		`{"a":[{"b":1,"b":2}]}`:                       "b",
		`{"a":"b","b":"a"}`:                           "",
		`{"a":["a","a"],"a2":{"a":1}}`:                "",
		`{"a":[],"a":1}`:                              "a",
		`{"x":{"y":[1,{"z":null,"z":true}]}}`:         "z",
		`[{"a":1},{"a":1}]`:                           "",
		`{"\u0061":1,"a":2}`:                          "a",
		`{"a":1,`:                                     "", // not JSON: the decoder says so
		`"a"`:                                         "",
		`{"parameters":{"InstanceId":"i-1"},"d":"x"}`: "",
	} {
		err := duplicateKey([]byte(body))
		if (err != nil) != (dup != "") || (err != nil && !strings.Contains(err.Error(), `"`+dup+`"`)) {
			t.Errorf("%s: %v, want duplicate %q", body, err, dup)
		}
	}
}

// TestEveryBodyRouteIsBounded keeps bodyEndpoints (and so the limits'
// tests and the fuzz targets' list) up to date: every route that may
// take a body is in it.
func TestEveryBodyRouteIsBounded(t *testing.T) {
	h, _ := bodyHandler(t)
	covered := map[string]bool{}
	for _, ep := range bodyEndpoints {
		covered[ep.path] = true
	}
	for _, p := range h.Patterns() {
		method, path, _ := strings.Cut(p, " ")
		if method != "POST" && method != "PUT" && method != "PATCH" {
			continue
		}
		path = strings.NewReplacer("{name}", map[bool]string{true: "web", false: "pet"}[strings.HasPrefix(path, "/v1/target-groups/")], "{id}", petA).Replace(path)
		if strings.HasPrefix(path, "/v1/windows/") {
			path = strings.Replace(path, "/pet/", "/patch/", 1)
		}
		if strings.HasPrefix(path, "/v1/executions/") {
			path = strings.Replace(path, petA, "exec-1", 1)
		}
		if !covered[path] {
			t.Errorf("%s takes a body and is not in bodyEndpoints", p)
		}
	}
}
