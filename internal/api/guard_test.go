package api

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/autoheal/autoheal/internal/api/wire"
)

func TestHostAllowed(t *testing.T) {
	h := New(Deps{Hosts: []string{"autoheal.example.com", "Ops.Example.COM:7070", "[::1]", ""}, Logger: slog.New(slog.DiscardHandler)})
	defer h.Close()
	for host, want := range map[string]bool{
		"":                          true, // HTTP/1.0: not a browser
		"127.0.0.1:7070":            true,
		"127.0.0.1":                 true,
		"127.9.9.9:80":              true,
		"[::1]:7070":                true,
		"10.0.0.5:7070":             true, // an address cannot be rebound
		"localhost:7070":            true,
		"LOCALHOST.:7070":           true,
		"dash.localhost:7070":       true,
		"autoheal.example.com:7070": true,
		"autoheal.example.com":      true,
		"AUTOHEAL.example.com.:443": true,
		"ops.example.com:9999":      true, // the port is not the check
		"evil.example:7070":         false,
		"127.0.0.1.evil.example":    false,
		"localhost.evil.example":    false,
		"example.com":               false,
		"autoheal.example.com.evil": false,
		"xn--autoheal-example":      false,
	} {
		if got := h.hostAllowed(host); got != want {
			t.Errorf("hostAllowed(%q) = %v, want %v", host, got, want)
		}
	}
}

// TestGuard sends requests with the local admin token, so that the guard
// is the only reason to refuse them: a browser's ambient credential (the
// dashboard's cookie) or a stolen one changes nothing here.
func TestGuard(t *testing.T) {
	pet := newFakeGroup("pet", "", petA)
	creds := testCredentials(t)
	h := New(Deps{Groups: []Group{pet}, Credentials: creds, Hosts: []string{"autoheal.example.com"}, Logger: slog.New(slog.DiscardHandler)})
	defer h.Close()
	const own = "127.0.0.1:7070"
	typed := map[string]string{"Content-Type": "application/json"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{"Content-Type": "application/json"}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	tests := []struct {
		name         string
		method, host string
		header       map[string]string
		body         string
		want         int
		wantIn       string // in the error message
	}{
		{name: "GET own host", method: "GET", host: own, want: 200},
		{name: "GET rebound name", method: "GET", host: "evil.example:7070", want: 421, wantIn: `Host "evil.example:7070"`},
		{name: "GET configured name", method: "GET", host: "autoheal.example.com", want: 200},
		{name: "POST rebound name", method: "POST", host: "evil.example:7070", header: typed, body: `{"desired":1}`, want: 421},
		{name: "POST plain", method: "POST", host: own, header: typed, body: `{"desired":1}`, want: 200},
		{name: "POST typed by a person", method: "POST", host: own, header: with("Sec-Fetch-Site", "none"), body: `{"desired":1}`, want: 200},
		{name: "POST same origin", method: "POST", host: own, header: with("Sec-Fetch-Site", "same-origin", "Origin", "http://"+own), body: `{"desired":1}`, want: 200},
		{name: "POST own origin, old browser", method: "POST", host: own, header: with("Origin", "http://"+own), body: `{"desired":1}`, want: 200},
		{name: "POST cross site", method: "POST", host: own, header: with("Sec-Fetch-Site", "cross-site"), body: `{"desired":1}`, want: 403, wantIn: "cross-origin"},
		{name: "POST same site", method: "POST", host: own, header: with("Sec-Fetch-Site", "same-site"), body: `{"desired":1}`, want: 403},
		{name: "POST unknown fetch site", method: "POST", host: own, header: with("Sec-Fetch-Site", "whatever"), body: `{"desired":1}`, want: 403},
		{name: "POST other origin, old browser", method: "POST", host: own, header: with("Origin", "https://evil.example"), body: `{"desired":1}`, want: 403},
		{name: "POST other port", method: "POST", host: own, header: with("Origin", "http://127.0.0.1:8080"), body: `{"desired":1}`, want: 403},
		{name: "POST null origin", method: "POST", host: own, header: with("Origin", "null"), body: `{"desired":1}`, want: 403},
		{name: "POST forged pair", method: "POST", host: own, header: with("Sec-Fetch-Site", "same-origin", "Origin", "https://evil.example"), body: `{"desired":1}`, want: 403},
		{name: "POST text/plain", method: "POST", host: own, header: map[string]string{"Content-Type": "text/plain"}, body: `{"desired":1}`, want: 415, wantIn: `Content-Type "text/plain"`},
		{name: "POST form", method: "POST", host: own, header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, body: `desired=1`, want: 415},
		{name: "POST empty form", method: "POST", host: own, header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, want: 415},
		{name: "POST multipart", method: "POST", host: own, header: map[string]string{"Content-Type": "multipart/form-data; boundary=x"}, body: "--x--", want: 415},
		{name: "POST untyped body", method: "POST", host: own, body: `{"desired":1}`, want: 415, wantIn: "application/json"},
		{name: "POST json with charset", method: "POST", host: own, header: map[string]string{"Content-Type": "application/json; charset=utf-8"}, body: `{"desired":1}`, want: 200},
		{name: "POST json-like type", method: "POST", host: own, header: map[string]string{"Content-Type": "application/json-patch+json"}, body: `{"desired":1}`, want: 415},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := "/v1/version"
			if tt.method == "POST" {
				path = "/v1/groups/pet/scale"
			}
			req := httptest.NewRequest(tt.method, path, strings.NewReader(tt.body))
			req.Host = tt.host
			req.Header.Set("Authorization", "Bearer "+creds.AdminToken())
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != tt.want {
				t.Fatalf("%d, want %d: %s", w.Code, tt.want, w.Body)
			}
			var e wire.Error
			if tt.want >= 400 && (decodeJSON(w.Body.Bytes(), &e) != nil || !strings.Contains(e.Error, tt.wantIn)) {
				t.Errorf("error %s, want one naming %q", w.Body, tt.wantIn)
			}
		})
	}
	// Only the allowed POSTs reached the group.
	if pet.scales != 5 {
		t.Errorf("the group was scaled %d times, want 5", pet.scales)
	}
}

func decodeJSON(b []byte, v any) error { return json.Unmarshal(b, v) }

// The checks are no help to a page when the request it sends is GET: the
// API answers GETs only with reads, and a read needs Host to be this API.
func TestGuardLeavesReadsAlone(t *testing.T) {
	h := New(Deps{Logger: slog.New(slog.DiscardHandler)})
	defer h.Close()
	req := httptest.NewRequest("GET", "/ui/", nil)
	req.Host = "127.0.0.1:7070"
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != http.StatusOK {
		t.Errorf("cross-site GET of the dashboard: %d", w.Code)
	}
}
