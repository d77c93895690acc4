//go:build linux

package remote

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/autoheal/autoheal/internal/config"
	"github.com/autoheal/autoheal/internal/provider"
	"github.com/autoheal/autoheal/internal/provider/local"
	"github.com/autoheal/autoheal/internal/store"
)

func TestMain(m *testing.M) {
	// The test binary is also the shim.
	if local.Init() {
		return
	}
	if _, ok := os.LookupEnv("GORACE"); !ok {
		os.Setenv("GORACE", "atexit_sleep_ms=0")
	}
	os.Exit(m.Run())
}

// bed is a leader h1 and a host h2 whose agent answers at 127.0.0.2 (a
// loopback address of its own), each with its own local provider and
// state dir.
type bed struct {
	c      *Client
	agent  *Agent
	member atomic.Bool // h2's membership
	cut    atomic.Bool // h2's agent answers nothing
	leader atomic.Value
	recs   map[string]store.Instance
}

func newBed(t *testing.T) *bed {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("no second loopback address: %v", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	cl := &config.Cluster{PeerPort: port, LeaseTTL: config.Duration(2 * time.Second), Hosts: []config.ClusterHost{
		{Name: "h1", Address: "127.0.0.1"}, {Name: "h2", Address: "127.0.0.2"},
	}}
	key := []byte("0123456789abcdef0123456789abcdef")
	b := &bed{recs: map[string]store.Instance{}}
	b.member.Store(true)
	b.leader.Store("h1")
	mk := func(host string) *Agent {
		dir := t.TempDir()
		l, err := local.New(local.Options{StateDir: dir, NoSpareShim: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		return &Agent{Host: host, Key: key, Local: l, Dir: filepath.Join(dir, "placed"), LeaderTTL: time.Second,
			Leader: func(context.Context) (string, error) { return b.leader.Load().(string), nil }, Log: slog.Default()}
	}
	b.agent = mk("h2")
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if b.cut.Load() {
			panic(http.ErrAbortHandler)
		}
		b.agent.ServeHTTP(w, r)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	b.c = &Client{Host: "h1", Self: mk("h1"), Cluster: cl, Key: key, Log: slog.Default(), Ctx: t.Context(),
		Member: func(h string) bool { return h == "h1" || b.member.Load() },
		Record: func(_ context.Context, id string) (store.Instance, error) { return b.recs[id], nil },
	}
	return b
}

func (b *bed) spec(t *testing.T, host, script string) provider.Spec {
	id := provider.NewInstanceID()
	b.recs[id] = store.Instance{ID: id, Group: "g", State: "Pending", Ports: map[string]int{"http": 8080}}
	return provider.Spec{ID: id, Group: "g", Host: host, Command: "/bin/sh", Args: []string{"-c", script},
		Workdir: t.TempDir(), Env: []string{"PATH=/usr/bin:/bin"}}
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

func TestRemoteInstanceLifecycle(t *testing.T) {
	b := newBed(t)
	ctx := t.Context()
	spec := b.spec(t, "h2", "echo started; exec sleep 60")
	p, err := b.c.Launch(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if p.Pid() <= 0 || !alive(p.Pid()) {
		t.Fatalf("launched on h2: pid %d is not running", p.Pid())
	}
	// The host keeps the record the leader launched it with, for the
	// next leader.
	pl, err := b.c.Collect(ctx)
	if err != nil || len(pl) != 1 || pl[0].Record.ID != spec.ID || pl[0].Record.Host != "h2" || !pl[0].Alive || pl[0].Record.Ports["http"] != 8080 || pl[0].Pid != p.Pid() {
		t.Fatalf("Collect = %+v, %v; want the instance alive on h2 with its ports", pl, err)
	}
	res, err := b.c.Run(ctx, spec, "echo \"$0 ran on h2\"; exit 4", 5*time.Second)
	if err != nil || res.ExitCode != 4 || !strings.Contains(res.Output, "ran on h2") {
		t.Fatalf("Run = %+v, %v", res, err)
	}
	// A new leader's adoption finds the same process.
	q, err := b.c.AdoptOn(ctx, "h2", spec.ID)
	if err != nil || q.Pid() != p.Pid() {
		t.Fatalf("AdoptOn = %v, %v; want pid %d", q, err, p.Pid())
	}
	if err := b.c.Stop(ctx, p, syscall.SIGTERM, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	if alive(p.Pid()) {
		t.Fatalf("pid %d runs after Stop", p.Pid())
	}
	select {
	case <-p.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("the leader never saw the stopped instance exit")
	}
	if pl, err := b.c.Collect(ctx); err != nil || len(pl) != 0 {
		t.Fatalf("after Stop, Collect = %+v, %v; want nothing", pl, err)
	}
	if q, err := b.c.AdoptOn(ctx, "h2", spec.ID); !errors.Is(err, provider.ErrNotFound) && (err != nil || !isDone(q)) {
		t.Fatalf("AdoptOn a stopped instance: %v, %v; want it exited or not found", q, err)
	}
}

func TestRemoteExitIsSeen(t *testing.T) {
	b := newBed(t)
	p, err := b.c.Launch(t.Context(), b.spec(t, "h2", "sleep 0.2; exit 3"))
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("exit not seen")
	}
	if e := p.Exit(); e.Code != 3 || e.Lost {
		t.Fatalf("exit %+v, want code 3", e)
	}
}

// A host that leaves the cluster takes its instances with it: the leader's
// wait ends Lost, a stop is done, an adoption finds it Lost.
func TestRemoteHostLeaves(t *testing.T) {
	b := newBed(t)
	spec := b.spec(t, "h2", "exec sleep 60")
	p, err := b.c.Launch(t.Context(), spec)
	if err != nil {
		t.Fatal(err)
	}
	// Its agent stops answering (the link is cut), then its lease lapses.
	b.cut.Store(true)
	b.member.Store(false)
	select {
	case <-p.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("the leader never took the instance for lost")
	}
	if e := p.Exit(); !e.Lost {
		t.Fatalf("exit %+v, want Lost", e)
	}
	if err := b.c.Stop(t.Context(), p, syscall.SIGTERM, time.Second); err != nil {
		t.Fatalf("Stop on a lost host: %v", err)
	}
	q, err := b.c.AdoptOn(t.Context(), "h2", spec.ID)
	if err != nil || !q.Exit().Lost {
		t.Fatalf("AdoptOn a lost host: %+v, %v; want Lost", q, err)
	}
	if _, err := b.c.Launch(t.Context(), b.spec(t, "h2", "true")); err == nil {
		t.Fatal("launched on a host that is not a member")
	}
	syscall.Kill(p.Pid(), syscall.SIGKILL) // the test's own shim would stop it at its deadline
}

// The agent refuses what does not come from the leader: no signature, a
// wrong key, a replay, another body, another host, a host that does not
// lead.
func TestAgentRefuses(t *testing.T) {
	b := newBed(t)
	base := "http://127.0.0.2:" + strconv.Itoa(b.c.Cluster.PeerPort)
	spec := b.spec(t, "h2", "exec sleep 60")
	body, _ := json.Marshal(launchReq{Spec: spec, Record: b.recs[spec.ID]})
	signed := func(key []byte, from, to string, body []byte) http.Header {
		c, _ := json.Marshal(claim{From: from, To: to, Path: PathPrefix + opLaunch, Body: bodyHash(body), Time: time.Now().UnixMilli(), Nonce: hex.EncodeToString([]byte(t.Name() + from + to + string(key)))})
		h := http.Header{}
		h.Set(claimHeader, string(c))
		h.Set(sigHeader, hex.EncodeToString(claimMAC(key, string(c))))
		return h
	}
	post := func(h http.Header, body []byte) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, base+PathPrefix+opLaunch, bytes.NewReader(body))
		req.Header = h
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var e errorResp
		json.NewDecoder(resp.Body).Decode(&e)
		return resp.StatusCode, e.Error
	}
	key := b.c.Key
	good := signed(key, "h1", "h2", body)
	other, _ := json.Marshal(launchReq{Spec: b.spec(t, "h2", "exec sleep 61")})
	for _, tc := range []struct {
		name string
		h    http.Header
		body []byte
		want string
	}{
		{"unsigned", http.Header{}, body, "bad or missing signature"},
		{"another key", signed([]byte("not the cluster's key............"), "h1", "h2", body), body, "bad or missing signature"},
		{"another body", good, other, "body does not match"},
		{"for another host", signed(key, "h1", "h1", body), body, `request for host "h1"`},
		{"from a host that does not lead", signed(key, "h3", "h2", body), body, "host h3 does not lead"},
	} {
		if code, msg := post(tc.h, tc.body); code != http.StatusForbidden || !strings.Contains(msg, tc.want) {
			t.Errorf("%s: %d %q, want 403 with %q", tc.name, code, msg, tc.want)
		}
	}
	if code, msg := post(good, body); code != http.StatusOK {
		t.Fatalf("the leader's request: %d %s", code, msg)
	}
	defer b.c.Stop(context.Background(), &proc{id: spec.ID, host: "h2", done: make(chan struct{})}, syscall.SIGKILL, time.Second)
	if code, msg := post(good, body); code != http.StatusForbidden || !strings.Contains(msg, "replayed") {
		t.Fatalf("replay: %d %q, want refused", code, msg)
	}
	// A leader deposed since: the agent reads who leads again.
	b.leader.Store("h3")
	if _, err := b.c.Launch(t.Context(), b.spec(t, "h2", "exec sleep 60")); err == nil || !strings.Contains(err.Error(), "does not lead") {
		t.Fatalf("a deposed leader's launch: %v, want refused", err)
	}
}
