package server_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The two holes a user found in the API's defaults (no auth tokens,
// loopback), each pinned by the test that reproduced it.

const victimConfig = `
groups:
  - name: victim
    desired: 1
    max: 2
    launch:
      command: /bin/sleep
      args: ["600"]
      stop_timeout: 1s
`

// rawCall sends one request to the API as a stranger would: no client,
// only what the caller sets.
func rawCall(t *testing.T, method, url, host string, header map[string]string, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestRegressionAnyLocalCallerScales: with no tokens configured, any
// process on the host (an instance running as nobody included) scaled
// another group to zero with a bare POST.
func TestRegressionAnyLocalCallerScales(t *testing.T) {
	t.Parallel()
	e := startInProcess(t, writeConfig(t, victimConfig), "")
	e.waitInService(1, 30*time.Second)
	code, body := rawCall(t, "POST", "http://"+e.apiAddr+"/v1/groups/victim/scale", "",
		map[string]string{"Content-Type": "application/json"}, `{"desired":0}`)
	if code != http.StatusUnauthorized {
		t.Errorf("scale without a credential: %d %s, want 401", code, body)
	}
	g, err := e.client.Group(context.Background(), "victim")
	if err != nil || g.Desired != 1 {
		t.Fatalf("victim after the call: desired %d, %v; want 1", g.Desired, err)
	}
}

// TestRegressionCrossSiteTerminate: a page on another site made the
// operator's browser terminate an instance (a "simple" text/plain POST
// needs no preflight), and a page on a name rebound to 127.0.0.1 read
// the API.
func TestRegressionCrossSiteTerminate(t *testing.T) {
	t.Parallel()
	e := startInProcess(t, writeConfig(t, victimConfig), "")
	in := e.waitInService(1, 30*time.Second)[0]
	port := e.apiAddr[strings.LastIndexByte(e.apiAddr, ':')+1:]
	hostile := map[string]string{
		"Origin":         "https://evil.example",
		"Sec-Fetch-Site": "cross-site",
		"Content-Type":   "text/plain",
	}
	code, body := rawCall(t, "POST", "http://"+e.apiAddr+"/v1/instances/"+in.ID+"/terminate", "", hostile, `{"decrement":false}`)
	if code < 400 || code >= 500 {
		t.Errorf("cross-site terminate: %d %s, want a 4xx", code, body)
	}
	code, body = rawCall(t, "GET", "http://"+e.apiAddr+"/v1/status", "evil.example:"+port, nil, "")
	if code != http.StatusMisdirectedRequest || !strings.Contains(body, "evil.example") {
		t.Errorf("GET with Host evil.example:%s: %d %s, want 421 naming the host", port, code, body)
	}
	got, err := e.client.Instance(context.Background(), in.ID)
	if err != nil || got.State != "InService" {
		t.Fatalf("instance %s after the calls: %s, %v; want InService", in.ID, got.State, err)
	}
}
