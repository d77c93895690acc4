package api

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/autoheal/autoheal/internal/config"
)

// forwardBed is a leader's API (with a group) behind a recorder of what
// reaches it, and a follower's API forwarding there.
type forwardBed struct {
	group    *fakeGroup
	leader   *httptest.Server
	follower *httptest.Server
	fcreds   *Credentials

	mu   sync.Mutex
	seen []*http.Request // as the leader received them
	last struct{ claim, sig, body string }
}

func newForwardBed(t *testing.T, leaderKey, followerKey []byte) *forwardBed {
	t.Helper()
	b := &forwardBed{group: newFakeGroup("pet", "", "i-1"), fcreds: testCredentials(t)}
	lh := New(Deps{Journal: testJournal(t), Groups: []Group{b.group}, Credentials: testCredentials(t), PeerKey: leaderKey})
	b.leader = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		b.mu.Lock()
		b.seen = append(b.seen, r.Clone(context.Background()))
		b.last.claim, b.last.sig, b.last.body = r.Header.Get(forwardedHeader), r.Header.Get(forwardedSigHeader), string(body)
		b.mu.Unlock()
		lh.ServeHTTP(w, r)
	}))
	t.Cleanup(b.leader.Close)
	t.Cleanup(lh.Close)
	fh := New(Deps{Credentials: b.fcreds, Tokens: []config.Token{{Name: "ops", Role: config.RoleViewer, SHA256: HashToken("viewer-secret")}},
		Forward: &Forwarding{Host: "h2", Key: followerKey, Leader: func(context.Context) (string, error) { return b.leader.URL, nil }}})
	b.follower = httptest.NewServer(fh)
	t.Cleanup(b.follower.Close)
	t.Cleanup(fh.Close)
	return b
}

func call(t *testing.T, method, url, token, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestForwardToLeader: a follower's own admin token (which the leader does
// not know) reads and changes the leader's groups through the follower;
// the token itself never reaches the leader; a configured viewer token
// keeps its role there; no token, no forwarding.
func TestForwardToLeader(t *testing.T) {
	key := bytes.Repeat([]byte{1}, 32)
	b := newForwardBed(t, key, key)
	admin := b.fcreds.AdminToken()
	if code, body := call(t, "GET", b.follower.URL+"/v1/groups/pet", admin, ""); code != 200 || !strings.Contains(body, `"pet"`) {
		t.Fatalf("GET through the follower: %d %s", code, body)
	}
	if code, body := call(t, "POST", b.follower.URL+"/v1/groups/pet/scale", admin, `{"desired": 1}`); code != 200 {
		t.Fatalf("scale through the follower: %d %s", code, body)
	}
	if b.group.scales != 1 {
		t.Fatalf("the leader's group was scaled %d times, want 1", b.group.scales)
	}
	if code, body := call(t, "POST", b.follower.URL+"/v1/groups/pet/scale", "viewer-secret", `{"desired": 1}`); code != 403 {
		t.Fatalf("a viewer's scale through the follower: %d %s", code, body)
	}
	if code, body := call(t, "GET", b.follower.URL+"/v1/groups/pet", "viewer-secret", ""); code != 200 {
		t.Fatalf("a viewer's read through the follower: %d %s", code, body)
	}
	if code, _ := call(t, "GET", b.follower.URL+"/v1/groups/pet", "", ""); code != 401 {
		t.Fatalf("no token: %d, want 401 from the follower", code)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, r := range b.seen {
		if a := r.Header.Get("Authorization"); a != "" {
			t.Fatalf("the leader received the caller's credential %q", a)
		}
	}
	if len(b.seen) != 3 {
		t.Fatalf("the leader received %d requests, want 3 (the refused ones stay on the follower)", len(b.seen))
	}
}

// TestForwardedClaimsRefused: under another key, replayed, with another
// body, or for another path, a forwarded claim is refused by the leader.
func TestForwardedClaimsRefused(t *testing.T) {
	key := bytes.Repeat([]byte{1}, 32)
	if code, body := func() (int, string) {
		b := newForwardBed(t, key, bytes.Repeat([]byte{2}, 32))
		return call(t, "GET", b.follower.URL+"/v1/groups/pet", b.fcreds.AdminToken(), "")
	}(); code != 401 || !strings.Contains(body, "bad signature") {
		t.Fatalf("another key: %d %s", code, body)
	}
	b := newForwardBed(t, key, key)
	if code, body := call(t, "POST", b.follower.URL+"/v1/groups/pet/scale", b.fcreds.AdminToken(), `{"desired": 1}`); code != 200 {
		t.Fatalf("scale: %d %s", code, body)
	}
	b.mu.Lock()
	claim, sig := b.last.claim, b.last.sig
	b.mu.Unlock()
	send := func(path, body string) (int, string) {
		req, _ := http.NewRequest("POST", b.leader.URL+path, strings.NewReader(body))
		req.Header.Set(forwardedHeader, claim)
		req.Header.Set(forwardedSigHeader, sig)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(out)
	}
	for _, tc := range []struct{ name, path, body, want string }{
		{"replayed", "/v1/groups/pet/scale", `{"desired": 1}`, "replayed"},
		{"another body", "/v1/groups/pet/scale", `{"desired": 3}`, "not the one signed"},
		{"another path", "/v1/groups/pet/scale?x=1", `{"desired": 1}`, "signed for another request"},
	} {
		if code, body := send(tc.path, tc.body); code != 401 || !strings.Contains(body, tc.want) {
			t.Errorf("%s: %d %s, want 401 %q", tc.name, code, body, tc.want)
		}
	}
	if b.group.scales != 1 {
		t.Fatalf("the group was scaled %d times, want 1", b.group.scales)
	}
}
