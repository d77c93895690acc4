package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/autoheal/autoheal/internal/alarm"
	"github.com/autoheal/autoheal/internal/api/wire"
	"github.com/autoheal/autoheal/internal/config"
	"github.com/autoheal/autoheal/internal/lb"
	"github.com/autoheal/autoheal/internal/metrics"
	"github.com/autoheal/autoheal/internal/runbook"
)

// Fuzz targets for every API body parser, through the whole handler (the
// browser guard, the credential, the route). Each checks, for any body:
//
//   - no panic, and never a 5xx;
//   - an error is a 4xx whose JSON body names the problem (error and
//     code set); 413 only for a body over its limit;
//   - a 2xx only for a body that a separate statement of the endpoint's
//     rule (an oracle written here, not the handler's code) calls valid,
//     and then the component got exactly what the body says;
//   - a 4xx changed nothing.
//
// Seeds are in testdata/fuzz/<target>; ./fuzz.sh runs every target.

// fuzzReq sends one request to h as the local admin (or as an instance,
// with instanceToken) and returns the status and body.
func fuzzReq(h *Handler, token, method, path string, body []byte) (int, []byte) {
	req := httptest.NewRequest(method, "http://127.0.0.1:7070"+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w.Code, w.Body.Bytes()
}

// checkAnswer checks the properties every answer has.
func checkAnswer(t *testing.T, code int, answer, body []byte, limit int64) {
	t.Helper()
	if code >= 500 || code < 200 || (code >= 300 && code < 400) {
		t.Fatalf("status %d for body %q: %s", code, body, answer)
	}
	if code >= 400 {
		var e wire.Error
		if err := json.Unmarshal(answer, &e); err != nil || e.Error == "" || e.Code == "" {
			t.Fatalf("error %d without a JSON error naming the problem: %q", code, answer)
		}
		if (code == http.StatusRequestEntityTooLarge) != (int64(len(body)) > limit) {
			t.Fatalf("status %d for a body of %d bytes (limit %d): %s", code, len(body), limit, answer)
		}
	}
}

// object is the oracle's reading of a JSON object body: nil with ok for
// an empty body, its fields otherwise; not ok for anything else (not
// JSON, not an object, a field twice, data after it).
func object(body []byte) (map[string]json.RawMessage, bool) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, true
	}
	if !json.Valid(body) || duplicateKey(body) != nil {
		return nil, false
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) != nil || m == nil {
		return nil, false
	}
	return m, true
}

// only reports whether every field is one of names.
func only(m map[string]json.RawMessage, names ...string) bool {
	for k := range m {
		found := false
		for _, n := range names {
			found = found || k == n
		}
		if !found {
			return false
		}
	}
	return true
}

// field decodes m[name] into v when present (a JSON null leaves v
// alone); it reports whether the field is absent or of v's type.
func field(m map[string]json.RawMessage, name string, v any) bool {
	raw, ok := m[name]
	if !ok {
		return true
	}
	return json.Unmarshal(raw, v) == nil
}

func FuzzScale(f *testing.F) {
	for _, s := range []string{`{"desired":2}`, `{"min":0,"max":3,"desired":1}`, `{}`, ``, `{"desired":-1}`, `{"desired":9}`,
		`{"Desired":1}`, `{"desired":1,"desired":2}`, `{"desired":1.5}`, `{"desired":"1"}`, `{"desired":1}{}`, `[1]`, `null`, `{"desired":null}`,
		`{"desired":9223372036854775807}`, `{"max":1e2}`, `{"replicas":1}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		g := newFakeGroup("pet", "", petA)
		creds := fuzzCredentials(t)
		h := New(Deps{Groups: []Group{g}, Credentials: creds, Logger: slog.New(slog.DiscardHandler)})
		code, answer := fuzzReq(h, creds.AdminToken(), "POST", "/v1/groups/pet/scale", body)
		checkAnswer(t, code, answer, body, MaxBody)
		// The oracle: an object of integer min, max, desired (at least
		// one set), within the group's rules.
		min, max, desired := 0, 3, 1
		var set int
		m, ok := object(body)
		for _, f := range []struct {
			name string
			v    *int
		}{{"min", &min}, {"max", &max}, {"desired", &desired}} {
			var p *int
			ok = ok && field(m, f.name, &p)
			if p != nil {
				*f.v = *p
				set++
			}
		}
		valid := ok && m != nil && only(m, "min", "max", "desired") && set > 0 &&
			min >= 0 && max >= 0 && desired >= 0 && min <= max && min <= desired && desired <= max
		if (code == http.StatusOK) != valid {
			t.Fatalf("body %q: status %d, but the rule says valid=%v: %s", body, code, valid, answer)
		}
		s := g.Snapshot()
		if want := map[bool]int{true: 1, false: 0}[valid]; g.scales != want || (valid && (s.Min != min || s.Max != max || s.Desired != desired)) {
			t.Fatalf("body %q: group scaled %d times to %d/%d/%d, want %d/%d/%d", body, g.scales, s.Min, s.Desired, s.Max, min, desired, max)
		}
	})
}

func FuzzTerminate(f *testing.F) {
	for _, s := range []string{`{"decrement":true}`, `{"decrement":false}`, `{}`, ``, ` `, `{"decrement":1}`, `{"Decrement":true}`,
		`{"decrement":true,"decrement":false}`, `{"decrement":true} x`, `null`, `true`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		g := newFakeGroup("pet", "", petA)
		creds := fuzzCredentials(t)
		h := New(Deps{Groups: []Group{g}, Credentials: creds, Logger: slog.New(slog.DiscardHandler)})
		code, answer := fuzzReq(h, creds.AdminToken(), "POST", "/v1/instances/"+petA+"/terminate", body)
		checkAnswer(t, code, answer, body, MaxBody)
		m, ok := object(body)
		var dec bool
		valid := ok && only(m, "decrement") && field(m, "decrement", &dec)
		if (code == http.StatusAccepted) != valid || g.terminates != map[bool]int{true: 1}[valid] {
			t.Fatalf("body %q: status %d, %d terminations, but the rule says valid=%v: %s", body, code, g.terminates, valid, answer)
		}
	})
}

// fakeEngine stands in for the runbook engine: it binds parameters with
// the real documents' rules and records what it started.
type fakeEngine struct {
	lib     *runbook.Library
	mu      sync.Mutex
	started []wire.RunRequest
}

func (e *fakeEngine) Start(ctx context.Context, document string, params map[string]string, origin string) (string, error) {
	doc, err := e.lib.Get(document)
	if err != nil {
		return "", err
	}
	if _, err := doc.Bind(params); err != nil {
		return "", fmt.Errorf("%w: document %s: %v", runbook.ErrInvalid, document, err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.started = append(e.started, wire.RunRequest{Document: document, Parameters: params})
	return "exec-1", nil
}
func (e *fakeEngine) Get(context.Context, string) (runbook.Execution, error) {
	return runbook.Execution{}, runbook.ErrNotFound
}
func (e *fakeEngine) List(context.Context, int) ([]runbook.Execution, error) { return nil, nil }
func (e *fakeEngine) Cancel(context.Context, string) error                   { return runbook.ErrNotFound }
func (e *fakeEngine) Approve(context.Context, string, runbook.Approval) error {
	return runbook.ErrNotFound
}
func (e *fakeEngine) Changed(string) <-chan struct{} { return nil }

func FuzzStartExecution(f *testing.F) {
	for _, s := range []string{`{"document":"Autoheal-RestartInstance","parameters":{"InstanceId":"i-0123456789abcdef0"}}`,
		`{"document":"Autoheal-RestartInstance"}`, `{"document":"nope"}`, `{"document":""}`, `{}`, ``,
		`{"document":"Autoheal-RestartInstance","parameters":{"InstanceId":1}}`, `{"document":"Autoheal-RestartInstance","parameters":{"Other":"x"}}`,
		`{"document":"Autoheal-RestartInstance","parameters":{"InstanceId":"i-1","InstanceId":"i-2"}}`, `{"Document":"x"}`, `{"document":["x"]}`} {
		f.Add([]byte(s))
	}
	lib := runbook.NewLibrary("")
	f.Fuzz(func(t *testing.T, body []byte) {
		eng := &fakeEngine{lib: lib}
		creds := fuzzCredentials(t)
		h := New(Deps{Runbooks: eng, Documents: lib, Credentials: creds, Logger: slog.New(slog.DiscardHandler)})
		code, answer := fuzzReq(h, creds.AdminToken(), "POST", "/v1/executions", body)
		checkAnswer(t, code, answer, body, MaxRunBody)
		m, ok := object(body)
		var req wire.RunRequest
		ok = ok && m != nil && only(m, "document", "parameters") && field(m, "document", &req.Document) && field(m, "parameters", &req.Parameters)
		if code == http.StatusCreated {
			if !ok || len(eng.started) != 1 || eng.started[0].Document != req.Document || !sameParams(eng.started[0].Parameters, req.Parameters) {
				t.Fatalf("body %q: 201, but the rule says valid=%v, started %+v", body, ok, eng.started)
			}
			return
		}
		if len(eng.started) != 0 {
			t.Fatalf("body %q: %d, but an execution was started: %s", body, code, answer)
		}
		if ok && req.Document != "" {
			// A well-formed request is refused only by the document: it
			// must be unknown (404) or its parameters wrong (400).
			if _, err := lib.Get(req.Document); err == nil && code != http.StatusBadRequest || err != nil && code != http.StatusNotFound {
				t.Fatalf("body %q: well formed, refused %d: %s", body, code, answer)
			}
		}
	})
}

func sameParams(a, b map[string]string) bool {
	return len(a) == len(b) && (len(a) == 0 || reflect.DeepEqual(a, b))
}

func FuzzApprove(f *testing.F) {
	for _, s := range []string{`{"approver":"ann","reject":true,"comment":"no"}`, `{}`, ``, `{"reject":"yes"}`, `{"approved":true}`, `{"approver":"a","approver":"b"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := &approveRecorder{}
		creds := fuzzCredentials(t)
		h := New(Deps{Runbooks: rec, Documents: runbook.NewLibrary(""), Credentials: creds, Logger: slog.New(slog.DiscardHandler)})
		code, answer := fuzzReq(h, creds.AdminToken(), "POST", "/v1/executions/exec-1/approve", body)
		checkAnswer(t, code, answer, body, MaxBody)
		m, ok := object(body)
		var req wire.ApproveRequest
		ok = ok && only(m, "approver", "reject", "comment") && field(m, "approver", &req.Approver) && field(m, "reject", &req.Reject) && field(m, "comment", &req.Comment)
		if (code == http.StatusAccepted) != ok {
			t.Fatalf("body %q: status %d, but the rule says valid=%v: %s", body, code, ok, answer)
		}
		if req.Approver == "" {
			req.Approver = "operator"
		}
		if want := (runbook.Approval{Approver: req.Approver, Approved: !req.Reject, Comment: req.Comment}); ok && (len(rec.got) != 1 || rec.got[0] != want) ||
			!ok && len(rec.got) != 0 {
			t.Fatalf("body %q: approvals %+v, want %+v (valid=%v)", body, rec.got, want, ok)
		}
	})
}

// approveRecorder is an engine with one execution waiting for approval.
type approveRecorder struct {
	fakeEngine
	got []runbook.Approval
}

func (a *approveRecorder) Approve(_ context.Context, id string, ap runbook.Approval) error {
	a.got = append(a.got, ap)
	return nil
}

// fakeTargets is a load balancer with one target group, web, that
// records what it was asked.
type fakeTargets struct {
	registered   []wire.TargetRequest
	deregistered []string
}

func (f *fakeTargets) TargetGroups() []lb.Health { return []lb.Health{f.Health()} }
func (f *fakeTargets) TargetGroup(name string) (TargetGroup, error) {
	if name != "web" {
		return nil, fmt.Errorf("target group %s: %w", name, lb.ErrNotFound)
	}
	return f, nil
}
func (f *fakeTargets) Health() lb.Health { return lb.Health{Name: "web", Targets: []lb.TargetHealth{}} }
func (f *fakeTargets) Register(id, addr string, weight int) error {
	if weight < 0 {
		return errors.New("weight must not be negative")
	}
	f.registered = append(f.registered, wire.TargetRequest{ID: id, Address: addr, Weight: weight})
	return nil
}
func (f *fakeTargets) Deregister(id string) (<-chan struct{}, error) {
	f.deregistered = append(f.deregistered, id)
	done := make(chan struct{})
	close(done)
	return done, nil
}

func FuzzTargetRequest(f *testing.F) {
	for _, s := range []string{`{"id":"i-0123456789abcdef0"}`, `{"address":"127.0.0.1:8080","weight":3}`, `{"id":"i-1","wait":true}`, `{}`, ``,
		`{"weight":-1,"id":"x"}`, `{"id":1}`, `{"ID":"x"}`, `{"id":"a","id":"b"}`} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, body []byte, deregister bool) {
		tg := &fakeTargets{}
		creds := fuzzCredentials(t)
		h := New(Deps{Balancer: tg, Credentials: creds, Logger: slog.New(slog.DiscardHandler)})
		path := map[bool]string{false: "/v1/target-groups/web/register", true: "/v1/target-groups/web/deregister"}[deregister]
		code, answer := fuzzReq(h, creds.AdminToken(), "POST", path, body)
		checkAnswer(t, code, answer, body, MaxBody)
		m, ok := object(body)
		var req wire.TargetRequest
		ok = ok && m != nil && only(m, "id", "address", "weight", "wait") && field(m, "id", &req.ID) && field(m, "address", &req.Address) &&
			field(m, "weight", &req.Weight) && field(m, "wait", &req.Wait) && (req.ID != "" || req.Address != "")
		if !deregister {
			ok = ok && req.Weight >= 0
			req.Wait = false
		}
		if (code == http.StatusOK) != ok {
			t.Fatalf("body %q: status %d, but the rule says valid=%v: %s", body, code, ok, answer)
		}
		switch {
		case !ok && len(tg.registered)+len(tg.deregistered) != 0:
			t.Fatalf("body %q refused, but the target group was changed: %+v %+v", body, tg.registered, tg.deregistered)
		case ok && !deregister && (len(tg.registered) != 1 || tg.registered[0] != wire.TargetRequest{ID: req.ID, Address: req.Address, Weight: req.Weight}):
			t.Fatalf("body %q: registered %+v, want %+v", body, tg.registered, req)
		case ok && deregister && (len(tg.deregistered) != 1 || tg.deregistered[0] != firstOf(req.ID, req.Address)):
			t.Fatalf("body %q: deregistered %q, want %+v", body, tg.deregistered, req)
		}
	})
}

func firstOf(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func FuzzSession(f *testing.F) {
	for _, s := range []string{`{"token":"TOKEN"}`, `{"token":"ah_nope"}`, `{}`, ``, `{"token":1}`, `{"Token":"TOKEN"}`, `{"token":"TOKEN","token":"x"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		creds := fuzzCredentials(t)
		h := New(Deps{Credentials: creds, Logger: slog.New(slog.DiscardHandler)})
		// The seeds' TOKEN stands for the admin token.
		body = bytes.ReplaceAll(body, []byte("TOKEN"), []byte(creds.AdminToken()))
		code, answer := fuzzReq(h, "", "POST", "/v1/session", body)
		checkAnswer(t, code, answer, body, MaxBody)
		m, ok := object(body)
		var req wire.SessionRequest
		ok = ok && only(m, "token") && field(m, "token", &req.Token) && req.Token == creds.AdminToken()
		if (code == http.StatusOK) != ok {
			t.Fatalf("body %q: status %d, but the rule says valid=%v: %s", body, code, ok, answer)
		}
	})
}

// FuzzNoBody covers the POSTs that take no body (or {}): cancel, restart,
// run a window.
func FuzzNoBody(f *testing.F) {
	for _, s := range []string{``, `{}`, ` {} `, `{"x":1}`, `[]`, `null`, `{}{}`} {
		for r := range 3 {
			f.Add([]byte(s), uint8(r))
		}
	}
	f.Fuzz(func(t *testing.T, body []byte, route uint8) {
		g := newFakeGroup("pet", "", petA)
		creds := fuzzCredentials(t)
		h := New(Deps{Groups: []Group{g}, Runbooks: &fakeEngine{lib: runbook.NewLibrary("")}, Documents: runbook.NewLibrary(""),
			Credentials: creds, Logger: slog.New(slog.DiscardHandler)})
		path := []string{"/v1/executions/exec-1/cancel", "/v1/instances/" + petA + "/restart", "/v1/windows/patch/run"}[int(route)%3]
		code, answer := fuzzReq(h, creds.AdminToken(), "POST", path, body)
		checkAnswer(t, code, answer, body, MaxBody)
		m, ok := object(body)
		ok = ok && len(m) == 0
		// Past the body, cancel finds no execution and run no window
		// (404); restart restarts.
		if ok != (code != http.StatusBadRequest && code != http.StatusRequestEntityTooLarge) || g.restarts != map[bool]int{true: 1}[ok && int(route)%3 == 1] {
			t.Fatalf("%s body %q: status %d, %d restarts, but the rule says valid=%v: %s", path, body, code, g.restarts, ok, answer)
		}
	})
}

func FuzzAlertmanager(f *testing.F) {
	for _, s := range []string{
		`{"version":"4","status":"firing","alerts":[{"status":"firing","labels":{"alertname":"DiskFull","instance_id":"i-1"}}]}`,
		`{"version":"4","alerts":[{"labels":{"alertname":"a"}},{"labels":{}}]}`,
		`{"version":"3","alerts":[]}`, `{"version":"4","alerts":[]}`, `{}`, ``, `[]`, `{"version":4}`,
		`{"version":"4","alerts":[{"status":"resolved","labels":{"alertname":"a"},"startsAt":"2024-01-01T00:00:00Z"}],"extra":1}`,
		`{"version":"4","alerts":[{"labels":{"alertname":"a"},"startsAt":"yesterday"}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var mu sync.Mutex
		var acted []alarm.AlertAction
		receive := func(ctx context.Context, p alarm.AlertmanagerPayload) (int, error) {
			return alarm.Receive(ctx, config.Alertmanager{}, p, func(_ context.Context, a alarm.AlertAction) error {
				mu.Lock()
				defer mu.Unlock()
				acted = append(acted, a)
				return nil
			})
		}
		creds := fuzzCredentials(t)
		h := New(Deps{Alertmanager: receive, Credentials: creds, Logger: slog.New(slog.DiscardHandler)})
		code, answer := fuzzReq(h, creds.AdminToken(), "POST", "/v1/alertmanager", body)
		checkAnswer(t, code, answer, body, MaxAlertmanagerBody)
		// The oracle: JSON that decodes as a payload (Alertmanager adds
		// fields over versions: unknown ones are fine), version "4",
		// every alert named.
		var p alarm.AlertmanagerPayload
		valid := json.Valid(body) && json.Unmarshal(body, &p) == nil && p.Version == "4"
		for _, a := range p.Alerts {
			valid = valid && a.Labels["alertname"] != ""
		}
		if (code == http.StatusOK) != valid {
			t.Fatalf("body %q: status %d, but the rule says valid=%v: %s", body, code, valid, answer)
		}
		if !valid && len(acted) != 0 {
			t.Fatalf("body %q refused with %d, but %d alerts were acted on", body, code, len(acted))
		}
		var resp wire.AlertmanagerResponse
		if valid && (json.Unmarshal(answer, &resp) != nil || resp.Accepted != len(p.Alerts) || len(acted) != len(p.Alerts)) {
			t.Fatalf("body %q: accepted %d, acted on %d, want %d", body, resp.Accepted, len(acted), len(p.Alerts))
		}
	})
}

func FuzzPutMetricData(f *testing.F) {
	for _, s := range []string{
		`{"Namespace":"App","MetricData":[{"MetricName":"up","Value":1}]}`,
		`{"Namespace":"App","MetricData":[{"MetricName":"up","Value":1,"Dimensions":[{"Name":"InstanceId","Value":"i-0000000000000000b"}]}]}`,
		`{"Namespace":"App","MetricData":[{"MetricName":"lat","Values":[1,2,3],"Counts":[1,1,2],"Unit":"Milliseconds"},{"MetricName":"x","Value":"bad"}]}`,
		`{"Namespace":"Autoheal/Instance","MetricData":[{"MetricName":"Healthy","Value":1}]}`,
		`{"Namespace":"App","MetricData":[]}`, `{"Namespace":"","MetricData":[{"MetricName":"m","Value":1}]}`, ``, `{}`, `[]`,
		`{"Namespace":"App","Namespace":"B","MetricData":[{"MetricName":"m","Value":1}]}`,
		`{"Namespace":"App","MetricData":[{"MetricName":"m","Value":1e400}]}`,
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, body []byte, asInstance bool) {
		st, err := metrics.New(metrics.Options{Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		creds := fuzzCredentials(t)
		h := New(Deps{Metrics: st, Groups: []Group{newFakeGroup("pet", "", petA, petB)}, Credentials: creds, Logger: slog.New(slog.DiscardHandler)})
		token := creds.AdminToken()
		if asInstance {
			token = creds.InstanceToken(petA)
		}
		code, answer := fuzzReq(h, token, "POST", "/v1/metrics", body)
		checkAnswer(t, code, answer, body, MaxMetricsBody)
		series := st.Series()
		// The oracle: a JSON object whose Namespace is a string and
		// MetricData a non-empty list of objects, each with a MetricName
		// string.
		var req struct {
			Namespace  *string
			MetricData []map[string]any
		}
		wellFormed := json.Valid(body) && json.Unmarshal(body, &req) == nil && req.Namespace != nil && len(req.MetricData) > 0
		if code == http.StatusOK {
			var resp wire.PutMetricDataResponse
			if !wellFormed || json.Unmarshal(answer, &resp) != nil || resp.Accepted != len(req.MetricData) || len(resp.Errors) != 0 ||
				strings.HasPrefix(*req.Namespace, ReservedNamespace) {
				t.Fatalf("body %q: 200, but well formed=%v: %s", body, wellFormed, answer)
			}
		}
		if code == http.StatusBadRequest && wellFormed {
			// Some datums refused: the answer accounts for every one.
			var resp wire.PutMetricDataResponse
			if json.Unmarshal(answer, &resp) == nil && len(resp.Errors) > 0 && resp.Accepted+len(resp.Errors) != len(req.MetricData) {
				t.Fatalf("body %q: %d accepted and %d refused of %d datums: %s", body, resp.Accepted, len(resp.Errors), len(req.MetricData), answer)
			}
		}
		if code != http.StatusOK && code != http.StatusBadRequest && len(series) != 0 {
			t.Fatalf("body %q refused whole with %d, but %d series were stored", body, code, len(series))
		}
		// An instance's credential stores only its own series.
		for _, s := range series {
			id := ""
			for _, d := range s.Dimensions {
				if d.Name == dimInstance {
					id = d.Value
				}
			}
			if asInstance && id != petA {
				t.Fatalf("body %q pushed as %s stored %s", body, petA, s.SeriesKey)
			}
		}
	})
}

// fuzzCreds are made once per process (in sharedDir): making
// credentials writes files.
var fuzzCreds struct {
	once sync.Once
	c    *Credentials
	err  error
}

func fuzzCredentials(t *testing.T) *Credentials {
	fuzzCreds.once.Do(func() {
		fuzzCreds.c, fuzzCreds.err = LoadCredentials(sharedDir)
	})
	if fuzzCreds.err != nil {
		t.Fatal(fuzzCreds.err)
	}
	return fuzzCreds.c
}
