package api

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/autoheal/autoheal/internal/api/wire"
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

// The instances of authServer's groups: pet's (no api_role, two
// instances), web's (viewer) and ops' (operator).
const (
	petA = "i-0000000000000000a"
	petB = "i-0000000000000000b"
	webA = "i-0000000000000000c"
	opsA = "i-0000000000000000d"
)

type authEnv struct {
	base          string
	st            *store.Store
	creds         *Credentials
	pet, web, ops *fakeGroup
}

// authServer serves the API with tokens, the controller's credentials,
// a real store and metric store, and three groups.
func authServer(t *testing.T, tokens []config.Token) authEnv {
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
	e := authEnv{st: st, creds: testCredentials(t),
		pet: newFakeGroup("pet", "", petA, petB), web: newFakeGroup("web", config.RoleViewer, webA), ops: newFakeGroup("ops", config.RoleOperator, opsA)}
	h := New(Deps{Journal: st, Metrics: ms, Tokens: tokens, Credentials: e.creds, Groups: []Group{e.pet, e.web, e.ops},
		Logger: slog.New(slog.DiscardHandler)})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	t.Cleanup(h.Close)
	e.base = srv.URL
	return e
}

const metricBody = `{"Namespace":"App","MetricData":[{"MetricName":"load","Value":1}]}`

// authCase is one request and what it must get.
type authCase struct {
	name         string
	method, path string
	header       map[string]string
	cookie       string
	body         string
	want         int
	wantCode     string // Error.Code when want is an error
	wantAudit    string // the audit message, when one is due
}

func TestAuth(t *testing.T) {
	e := authServer(t, testTokens)
	admin := e.creds.AdminToken()
	pet, web, ops := e.creds.InstanceToken(petA), e.creds.InstanceToken(webA), e.creds.InstanceToken(opsA)
	forged := pet[:len(pet)-2] + "AA"
	tests := []authCase{
		{name: "no token", method: "GET", path: "/v1/version", want: 401, wantCode: "unauthorized"},
		{name: "unknown token", method: "GET", path: "/v1/version", header: bearerHeader("ah_nope"), want: 401, wantCode: "unauthorized"},
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

		// The local admin token, whatever the config has.
		{name: "local admin GET", method: "GET", path: "/v1/status", header: bearerHeader(admin), want: 200},
		{name: "local admin scale", method: "POST", path: "/v1/groups/pet/scale", body: `{"desired":2}`, header: bearerHeader(admin), want: 200,
			wantAudit: "local-admin POST /v1/groups/pet/scale -> 200"},
		{name: "local admin cookie", method: "GET", path: "/v1/status", cookie: admin, want: 200},

		// An instance without a role: its own metadata and metrics only.
		{name: "instance own metadata", method: "GET", path: "/v1/instances/" + petA + "/metadata", header: bearerHeader(pet), want: 200},
		{name: "instance version", method: "GET", path: "/v1/version", header: bearerHeader(pet), want: 200},
		{name: "instance sibling metadata", method: "GET", path: "/v1/instances/" + petB + "/metadata", header: bearerHeader(pet), want: 403, wantCode: "forbidden"},
		{name: "instance status", method: "GET", path: "/v1/status", header: bearerHeader(pet), want: 403, wantCode: "forbidden"},
		{name: "instance logs", method: "GET", path: "/v1/logs?group=web", header: bearerHeader(pet), want: 403, wantCode: "forbidden"},
		{name: "instance scale", method: "POST", path: "/v1/groups/web/scale", body: `{"desired":0}`, header: bearerHeader(pet), want: 403, wantCode: "forbidden"},
		{name: "instance terminates itself", method: "POST", path: "/v1/instances/" + petA + "/terminate", body: `{}`, header: bearerHeader(pet), want: 403, wantCode: "forbidden"},
		{name: "instance own metrics", method: "POST", path: "/v1/metrics", body: metricBody, header: bearerHeader(pet), want: 200},
		{name: "instance metrics as another", method: "POST", path: "/v1/metrics", body: metricBody,
			header: map[string]string{"Authorization": "Bearer " + pet, InstanceHeader: petB}, want: 403, wantCode: "forbidden", wantAudit: "instance:" + petA + " POST /v1/metrics -> 403"},
		{name: "instance metrics dimension of another", method: "POST", path: "/v1/metrics", header: bearerHeader(pet), want: 403, wantCode: "forbidden",
			body:      `{"Namespace":"App","MetricData":[{"MetricName":"up","Value":1},{"MetricName":"up","Value":0,"Dimensions":[{"Name":"InstanceId","Value":"` + webA + `"}]}]}`,
			wantAudit: "instance:" + petA + " POST /v1/metrics -> 403"},
		{name: "instance session", method: "POST", path: "/v1/session", body: `{"token":"` + pet + `"}`, want: 401, wantCode: "unauthorized"},
		{name: "instance cookie", method: "GET", path: "/v1/version", cookie: pet, want: 401, wantCode: "unauthorized"},
		{name: "forged instance credential", method: "GET", path: "/v1/instances/" + petA + "/metadata", header: bearerHeader(forged), want: 401, wantCode: "unauthorized"},
		{name: "credential of an unknown instance", method: "GET", path: "/v1/version", header: bearerHeader(e.creds.InstanceToken("i-00000000000000fff")), want: 401, wantCode: "unauthorized"},

		// Granted roles.
		{name: "viewer instance status", method: "GET", path: "/v1/status", header: bearerHeader(web), want: 200},
		{name: "viewer instance scale", method: "POST", path: "/v1/groups/pet/scale", body: `{"desired":0}`, header: bearerHeader(web), want: 403, wantCode: "forbidden"},
		{name: "viewer instance own metrics", method: "POST", path: "/v1/metrics", body: metricBody, header: bearerHeader(web), want: 200},
		{name: "operator instance scale", method: "POST", path: "/v1/groups/pet/scale", body: `{"desired":1}`, header: bearerHeader(ops), want: 200,
			wantAudit: "instance:" + opsA + " POST /v1/groups/pet/scale -> 200"},
		{name: "operator instance metrics of another", method: "POST", path: "/v1/metrics", header: bearerHeader(ops), want: 200,
			body: `{"Namespace":"App","MetricData":[{"MetricName":"up","Value":0,"Dimensions":[{"Name":"InstanceId","Value":"` + petA + `"}]}]}`},
		{name: "operator instance admin endpoint", method: "POST", path: "/v1/admin/x", body: `{}`, header: bearerHeader(ops), want: 403, wantCode: "forbidden"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { e.check(t, tt) })
	}
	// The pet's header-less push was bound to it; its refused ones left
	// nothing (the one "up" series is the operator instance's push).
	if got := metricsSeries(t, e, petA); len(got) != 2 || got[0].MetricName != "load" || got[1].MetricName != "up" {
		t.Errorf("series with InstanceId=%s: %+v, want load (pet's own) and up (pushed by ops)", petA, got)
	}
}

// check sends one case's request and checks the answer and the audit.
func (e authEnv) check(t *testing.T, tt authCase) {
	t.Helper()
	before := auditEvents(t, e.st)
	var body io.Reader
	if tt.body != "" {
		body = strings.NewReader(tt.body)
	}
	req, _ := http.NewRequest(tt.method, e.base+tt.path, body)
	if tt.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
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
		var we wire.Error
		if err := json.Unmarshal(b, &we); err != nil || we.Code != tt.wantCode {
			t.Fatalf("error body %s, want code %s", b, tt.wantCode)
		}
	}
	if got := resp.Header.Get("WWW-Authenticate"); (tt.want == 401) != strings.HasPrefix(got, "Bearer") {
		t.Errorf("WWW-Authenticate %q with status %d", got, tt.want)
	}
	after := auditEvents(t, e.st)
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
			d.Status != tt.want || d.Remote == "" {
			t.Errorf("audit data %+v", ev.Data)
		}
	}
}

// metricsSeries lists the App series pushed for an instance.
func metricsSeries(t *testing.T, e authEnv, id string) []wire.Series {
	t.Helper()
	list, err := NewClientWithToken(e.base, e.creds.AdminToken()).ListMetrics(context.Background(), "App", "")
	if err != nil {
		t.Fatal(err)
	}
	var out []wire.Series
	for _, s := range list.Metrics {
		for _, d := range s.Dimensions {
			if d.Name == "InstanceId" && d.Value == id {
				out = append(out, s)
			}
		}
	}
	return out
}

// TestRegressionNoTokensIsOpen: with no tokens configured the API used to
// be open to every process on the host, an unprivileged instance
// included. It needs a credential now, and a caller on the host is told
// where the local admin token is.
func TestRegressionNoTokensIsOpen(t *testing.T) {
	e := authServer(t, nil)
	for _, tt := range []authCase{
		{name: "read", method: "GET", path: "/v1/status", want: 401, wantCode: "unauthorized"},
		{name: "scale", method: "POST", path: "/v1/groups/pet/scale", body: `{"desired":0}`, want: 401, wantCode: "unauthorized"},
		{name: "push", method: "POST", path: "/v1/metrics", body: metricBody, want: 401, wantCode: "unauthorized"},
		{name: "local admin", method: "POST", path: "/v1/groups/pet/scale", body: `{"desired":2}`, header: bearerHeader(e.creds.AdminToken()), want: 200,
			wantAudit: "local-admin POST /v1/groups/pet/scale -> 200"},
	} {
		t.Run(tt.name, func(t *testing.T) { e.check(t, tt) })
	}
	if e.pet.scales != 1 {
		t.Errorf("pet scaled %d times, want once (by the admin)", e.pet.scales)
	}
	// The 401 names the token file to a caller on this host, and the
	// client uses it by itself.
	resp, err := http.Get(e.base + "/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	var we wire.Error
	json.NewDecoder(resp.Body).Decode(&we)
	resp.Body.Close()
	if we.TokenFile != e.creds.TokenFile || !strings.Contains(we.Error, e.creds.TokenFile) {
		t.Errorf("401 body %+v, want token_file %s", we, e.creds.TokenFile)
	}
	c := NewClient(e.base)
	if _, err := c.Status(context.Background(), false); err != nil || c.Token() != e.creds.AdminToken() {
		t.Errorf("client without a token on this host: %v (token %q)", err, c.Token())
	}
}

// TestClientDiscoveryRefusesOtherFiles pins that a client only ever sends
// a file that is an autoheal token file holding a token: a controller (or
// something listening in its place) that names another file gets nothing.
func TestClientDiscoveryRefusesOtherFiles(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "id_ed25519")
	os.WriteFile(secret, []byte("PRIVATE KEY"), 0o600)
	notToken := filepath.Join(t.TempDir(), TokenFile)
	os.WriteFile(notToken, []byte("PRIVATE KEY"), 0o600)
	for _, file := range []string{secret, notToken} {
		var sent []string
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			sent = append(sent, r.Header.Get("Authorization"))
			w.WriteHeader(401)
			json.NewEncoder(w).Encode(wire.Error{Error: "unauthorized", Code: "unauthorized", TokenFile: file})
		}))
		_, err := NewClient(srv.URL).Version(context.Background())
		srv.Close()
		if err == nil || len(sent) != 1 || sent[0] != "" {
			t.Errorf("%s: %v, sent %q; want one request without a credential", file, err, sent)
		}
	}
}

// TestTokenClient checks that the client sends its token on plain calls,
// metric pushes and streams, and that a missing one surfaces as a 401.
func TestTokenClient(t *testing.T) {
	e := authServer(t, testTokens)
	ctx := context.Background()
	// A controller without local credentials names no token file.
	bare := httptest.NewServer(New(Deps{Tokens: testTokens, Logger: slog.New(slog.DiscardHandler)}))
	defer bare.Close()
	other := bare.URL
	if _, err := NewClient(other).Version(ctx); err == nil {
		t.Fatal("no token: want an error")
	} else if ae, ok := err.(*APIError); !ok || ae.Status != 401 {
		t.Fatalf("no token: %v", err)
	}
	viewer := NewClientWithToken(e.base, viewerToken)
	if _, err := viewer.Version(ctx); err != nil {
		t.Fatalf("viewer version: %v", err)
	}
	req := wire.PutRequest{Namespace: "App", MetricData: []wire.Datum{{MetricName: "load", Value: 1}}}
	if _, err := viewer.PutMetricData(ctx, "", req); err == nil {
		t.Fatal("viewer push: want 403")
	} else if ae, ok := err.(*APIError); !ok || ae.Status != 403 {
		t.Fatalf("viewer push: %v", err)
	}
	if _, err := NewClientWithToken(e.base, operatorToken).PutMetricData(ctx, "", req); err != nil {
		t.Fatalf("operator push: %v", err)
	}
	// A stream: following events until the context ends is no error.
	sctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if err := viewer.FollowEvents(sctx, EventsQuery{}, func(wire.Event) error { return nil }); err != nil {
		t.Fatalf("viewer follow events: %v", err)
	}
	if err := NewClient(other).FollowEvents(sctx, EventsQuery{}, func(wire.Event) error { return nil }); err == nil {
		t.Fatal("follow events without a token: want an error")
	}
}

// TestTokenLookup checks the constant-time lookup's answers: every hash is
// compared, and the one that matches wins wherever it is in the list.
func TestTokenLookup(t *testing.T) {
	tokens := newTokens(append(testTokens,
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
			tok, ok := lookup(tokens, tt.presented)
			if ok != (tt.want != "") || tok.name != tt.want {
				t.Fatalf("lookup(%q) = %q, %v; want %q", tt.presented, tok.name, ok, tt.want)
			}
		})
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
	h := New(Deps{Tokens: testTokens, Credentials: testCredentials(t), Logger: slog.New(slog.DiscardHandler)})
	defer h.Close()
	for name, handler := range map[string]http.Handler{"ServeHTTP": h, "InProcess": h.InProcess()} {
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, httptest.NewRequest("GET", "http://127.0.0.1:7070/v1/version", nil))
		if want := map[string]int{"ServeHTTP": 401, "InProcess": 200}[name]; w.Code != want {
			t.Errorf("%s without a token: %d, want %d", name, w.Code, want)
		}
	}
}

// TestDebugNeedsAdmin: Go's profiler (serve --pprof) shows the process's
// memory and command line, and a profile costs CPU: admins only. It was
// served past auth before.
func TestDebugNeedsAdmin(t *testing.T) {
	creds := testCredentials(t)
	debug := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "profile") })
	h := New(Deps{Debug: debug, Tokens: testTokens, Credentials: creds, Logger: slog.New(slog.DiscardHandler)})
	defer h.Close()
	for tok, want := range map[string]int{"": 401, viewerToken: 403, operatorToken: 403, adminToken: 200, creds.AdminToken(): 200} {
		req := httptest.NewRequest("GET", "http://127.0.0.1:7070/debug/pprof/", nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != want || (want == 200) != (w.Body.String() == "profile") {
			t.Errorf("token %q: %d %s, want %d", tok, w.Code, w.Body, want)
		}
	}
}
