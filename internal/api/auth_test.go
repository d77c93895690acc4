package api

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/autoheal/autoheal/internal/config"
	"github.com/autoheal/autoheal/internal/event"
	"github.com/autoheal/autoheal/internal/metrics"
	"github.com/autoheal/autoheal/internal/store"
)

// The tokens of these tests, in clear; the handler only knows their hashes.
const (
	viewerToken   = "ah_viewer-token"
	operatorToken = "ah_operator-token"
	adminToken    = "ah_admin-token"
)

var testTokens = []config.Token{
	{Name: "grafana", Role: config.RoleViewer, SHA256: HashToken(viewerToken)},
	{Name: "ops", Role: config.RoleOperator, SHA256: HashToken(operatorToken)},
	// Upper-case hex is valid config.
	{Name: "root", Role: config.RoleAdmin, SHA256: strings.ToUpper(HashToken(adminToken))},
}

// authServer serves the API with testTokens over a real store and metric
// store.
func authServer(t *testing.T, tokens []config.Token) (string, *store.Store) {
	t.Helper()
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ms, err := metrics.New(metrics.Options{Now: time.Now, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ms.Close() })
	h := New(Deps{Store: st, Metrics: ms, Tokens: tokens, Logger: slog.New(slog.DiscardHandler)})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	t.Cleanup(h.Close)
	return srv.URL, st
}

const metricBody = `{"Namespace":"App","MetricData":[{"MetricName":"load","Value":1}]}`

func TestAuth(t *testing.T) {
	base, st := authServer(t, testTokens)
	tests := []struct {
		name         string
		method, path string
		header       map[string]string
		cookie       string
		body         string
		want         int
		wantCode     string // Error.Code when want is an error
		wantAudit    string // the audit message, when one is due
	}{
		{name: "no token", method: "GET", path: "/v1/version", want: 401, wantCode: "unauthorized"},
		{name: "unknown token", method: "GET", path: "/v1/version", header: map[string]string{"Authorization": "Bearer ah_nope"}, want: 401, wantCode: "unauthorized"},
		{name: "not bearer", method: "GET", path: "/v1/version", header: map[string]string{"Authorization": "Basic " + viewerToken}, want: 401, wantCode: "unauthorized"},
		{name: "token in query refused", method: "GET", path: "/v1/version?token=" + viewerToken, want: 401, wantCode: "unauthorized"},
		{name: "prometheus without token", method: "GET", path: "/metrics", want: 401, wantCode: "unauthorized"},
		{name: "viewer GET", method: "GET", path: "/v1/version", header: bearerHeader(viewerToken), want: 200},
		{name: "viewer scheme lower case", method: "GET", path: "/v1/version", header: map[string]string{"Authorization": "bearer " + viewerToken}, want: 200},
		{name: "viewer HEAD", method: "HEAD", path: "/v1/version", header: bearerHeader(viewerToken), want: 200},
		{name: "viewer prometheus", method: "GET", path: "/metrics", header: bearerHeader(viewerToken), want: 200},
		{name: "viewer POST", method: "POST", path: "/v1/metrics", body: metricBody, header: bearerHeader(viewerToken), want: 403, wantCode: "forbidden"},
		{name: "viewer alertmanager", method: "POST", path: "/v1/alertmanager", body: `{}`, header: bearerHeader(viewerToken), want: 403, wantCode: "forbidden"},
		{name: "viewer cookie GET", method: "GET", path: "/v1/version", cookie: viewerToken, want: 200},
		{name: "session with an unknown token", method: "POST", path: "/v1/session", body: `{"token":"ah_nope"}`, want: 401, wantCode: "unauthorized"},
		// A successful metric push is data, not an operation: not audited.
		{name: "operator POST metrics", method: "POST", path: "/v1/metrics", body: metricBody, header: bearerHeader(operatorToken), want: 200},
		{name: "operator POST", method: "POST", path: "/v1/session", body: `{"token":"` + operatorToken + `"}`, header: bearerHeader(operatorToken), want: 200,
			wantAudit: "ops POST /v1/session -> 200"},
		{name: "operator POST failing", method: "POST", path: "/v1/groups/nope/scale", body: `{"desired":1}`, header: bearerHeader(operatorToken), want: 404, wantCode: "not_found",
			wantAudit: "ops POST /v1/groups/nope/scale -> 404"},
		{name: "operator cookie same origin", method: "POST", path: "/v1/metrics", body: metricBody, cookie: operatorToken,
			header: map[string]string{"Sec-Fetch-Site": "same-origin"}, want: 200},
		{name: "operator cookie cross site", method: "POST", path: "/v1/metrics", body: metricBody, cookie: operatorToken,
			header: map[string]string{"Sec-Fetch-Site": "cross-site"}, want: 403, wantCode: "forbidden"},
		{name: "operator admin endpoint", method: "POST", path: "/v1/admin/anything", body: `{}`, header: bearerHeader(operatorToken), want: 403, wantCode: "forbidden"},
		{name: "admin POST", method: "POST", path: "/v1/metrics", body: metricBody, header: bearerHeader(adminToken), want: 200},
		{name: "admin endpoint", method: "POST", path: "/v1/admin/anything", body: `{}`, header: bearerHeader(adminToken), want: 404, wantCode: "not_found",
			wantAudit: "root POST /v1/admin/anything -> 404"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := auditEvents(t, st)
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			req, _ := http.NewRequest(tt.method, base+tt.path, body)
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			if tt.cookie != "" {
				req.AddCookie(&http.Cookie{Name: TokenCookie, Value: tt.cookie})
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.want, b)
			}
			if tt.wantCode != "" && tt.method != "HEAD" {
				var e Error
				if err := json.Unmarshal(b, &e); err != nil || e.Code != tt.wantCode {
					t.Fatalf("error body %s, want code %s", b, tt.wantCode)
				}
			}
			if got := resp.Header.Get("WWW-Authenticate"); (tt.want == 401) != strings.HasPrefix(got, "Bearer") {
				t.Errorf("WWW-Authenticate %q with status %d", got, tt.want)
			}
			after := auditEvents(t, st)
			switch {
			case tt.wantAudit == "" && len(after) != len(before):
				t.Fatalf("unexpected audit events: %+v", after[len(before):])
			case tt.wantAudit != "":
				if len(after) != len(before)+1 {
					t.Fatalf("want one audit event, got %+v", after[len(before):])
				}
				ev := after[len(after)-1]
				if ev.Message != tt.wantAudit {
					t.Errorf("audit message %q, want %q", ev.Message, tt.wantAudit)
				}
				name, _, _ := strings.Cut(tt.wantAudit, " ")
				d, _ := ev.Data.(event.APIAudit)
				if d.Token != name || d.Method != tt.method || d.Path != tt.path ||
					d.Status != tt.want || d.Remote == "" || d.Role == "" {
					t.Errorf("audit data %+v", ev.Data)
				}
			}
		})
	}
}

// TestAuthOpenWithoutTokens pins that a controller with no tokens is open,
// as before auth existed, and journals nothing extra.
func TestAuthOpenWithoutTokens(t *testing.T) {
	base, st := authServer(t, nil)
	resp, err := http.Post(base+"/v1/metrics", "application/json", strings.NewReader(metricBody))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("open POST: %d", resp.StatusCode)
	}
	if evs := auditEvents(t, st); len(evs) != 0 {
		t.Fatalf("audit events with no tokens: %+v", evs)
	}
}

// TestTokenClient checks that the client sends its token on plain calls,
// metric pushes and streams, and that a missing one surfaces as a 401.
func TestTokenClient(t *testing.T) {
	base, _ := authServer(t, testTokens)
	ctx := context.Background()
	if _, err := NewClient(base).Version(ctx); err == nil {
		t.Fatal("no token: want an error")
	} else if ae, ok := err.(*APIError); !ok || ae.Status != 401 {
		t.Fatalf("no token: %v", err)
	}
	viewer := NewClientWithToken(base, viewerToken)
	if _, err := viewer.Version(ctx); err != nil {
		t.Fatalf("viewer version: %v", err)
	}
	req := metrics.PutRequest{Namespace: "App", MetricData: []metrics.Datum{{MetricName: "load", Value: 1}}}
	if _, err := viewer.PutMetricData(ctx, "", req); err == nil {
		t.Fatal("viewer push: want 403")
	} else if ae, ok := err.(*APIError); !ok || ae.Status != 403 {
		t.Fatalf("viewer push: %v", err)
	}
	if _, err := NewClientWithToken(base, operatorToken).PutMetricData(ctx, "", req); err != nil {
		t.Fatalf("operator push: %v", err)
	}
	// A stream: following events until the context ends is no error.
	sctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if err := viewer.FollowEvents(sctx, EventsQuery{}, func(store.Event) error { return nil }); err != nil {
		t.Fatalf("viewer follow events: %v", err)
	}
	if err := NewClient(base).FollowEvents(sctx, EventsQuery{}, func(store.Event) error { return nil }); err == nil {
		t.Fatal("follow events without a token: want an error")
	}
}

// TestTokenLookup checks the constant-time lookup's answers: every hash is
// compared, and the one that matches wins wherever it is in the list.
func TestTokenLookup(t *testing.T) {
	a := newAuthenticator(append(testTokens,
		config.Token{Name: "broken", Role: config.RoleAdmin, SHA256: "not hex"},
		config.Token{Name: "no-role", Role: "root", SHA256: HashToken("ah_no-role")},
	))
	tests := []struct {
		presented string
		want      string // token name, "" for none
	}{
		{viewerToken, "grafana"},
		{operatorToken, "ops"},
		{adminToken, "root"}, // upper-case hex in the config
		{"", ""},
		{"ah_nope", ""},
		{viewerToken + "x", ""},
		{viewerToken[:len(viewerToken)-1], ""},
		{HashToken(viewerToken), ""}, // the hash is not the token
		{"ah_no-role", ""},           // an invalid role never matches
	}
	for _, tt := range tests {
		t.Run(tt.presented, func(t *testing.T) {
			tok, ok := a.lookup(tt.presented)
			if ok != (tt.want != "") || tok.name != tt.want {
				t.Fatalf("lookup(%q) = %q, %v; want %q", tt.presented, tok.name, ok, tt.want)
			}
		})
	}
	if !newAuthenticator(nil).open() || a.open() {
		t.Fatal("open: want true only with no tokens")
	}
}

func bearerHeader(token string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + token}
}

func auditEvents(t *testing.T, st *store.Store) []store.Event {
	t.Helper()
	evs, err := st.Events(context.Background(), store.EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var out []store.Event
	for _, ev := range evs {
		if ev.Type == event.KindAPIAudit {
			out = append(out, ev)
		}
	}
	return out
}

// TestAuthInProcess pins that autoheal's own in-process callers (runbook
// executeApi steps) reach the routes with no token: a controller with
// tokens must not fail its own runbooks with 401.
func TestAuthInProcess(t *testing.T) {
	h := New(Deps{Tokens: testTokens, Logger: slog.New(slog.DiscardHandler)})
	defer h.Close()
	for name, handler := range map[string]http.Handler{"ServeHTTP": h, "InProcess": h.InProcess()} {
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, httptest.NewRequest("GET", "/v1/version", nil))
		if want := map[string]int{"ServeHTTP": 401, "InProcess": 200}[name]; w.Code != want {
			t.Errorf("%s without a token: %d, want %d", name, w.Code, want)
		}
	}
}
