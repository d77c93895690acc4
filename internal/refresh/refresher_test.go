package refresh

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/autoheal/autoheal/internal/group"
	"github.com/autoheal/autoheal/internal/store"
)

// fakeGroup replaces a terminated instance at once with a new one, which
// serves unless the test holds the new ones back (hold).
type fakeGroup struct {
	mu         sync.Mutex
	ins        []store.Instance
	n, initial int
	hold       bool
	terminated []string
}

func newFakeGroup(n int) *fakeGroup {
	g := &fakeGroup{}
	for range n {
		g.add()
	}
	g.initial = n
	return g
}

func (g *fakeGroup) add() {
	g.n++
	g.ins = append(g.ins, store.Instance{ID: fmt.Sprintf("i-%d", g.n), State: "InService", Health: "healthy", LaunchedAt: time.Now().Add(-time.Second)})
}

func (g *fakeGroup) Name() string { return "web" }

func (g *fakeGroup) Snapshot() group.Snapshot {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := group.Snapshot{Name: "web", Status: "Active", Desired: 3}
	for _, in := range g.ins {
		s.Instances = append(s.Instances, in)
		var num int
		fmt.Sscanf(in.ID, "i-%d", &num)
		if in.State == "InService" && !(g.hold && num > g.initial) {
			s.Serving = append(s.Serving, group.Endpoint{ID: in.ID})
		}
	}
	return s
}

func (g *fakeGroup) Terminate(_ context.Context, id string, _ bool) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	for i := range g.ins {
		if g.ins[i].ID == id {
			g.ins[i].State = group.Terminated
		}
	}
	g.terminated = append(g.terminated, id)
	g.n++
	g.ins = append(g.ins, store.Instance{ID: fmt.Sprintf("i-%d", g.n), State: "InService", Health: "healthy", LaunchedAt: time.Now()})
	return nil
}

type memRecords struct {
	mu sync.Mutex
	m  map[string]string
}

func (m *memRecords) Get(_ context.Context, key string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.m[key]
	if !ok {
		return "", store.ErrNotFound
	}
	return v, nil
}

func (m *memRecords) Set(_ context.Context, key, value string, _ ...store.Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.m[key] = value
	return nil
}

func waitStatus(t *testing.T, r *Refresher, cond func(Status) bool) Status {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := r.Get(context.Background(), "web")
		if err == nil && cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("refresh status %+v %v", st, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRefresherTakenUp: a refresh stopped half way (the controller
// stopped) is taken up by the next Refresher from its record, replaces
// only the instances older than its start, and ends Successful.
func TestRefresherTakenUp(t *testing.T) {
	g := newFakeGroup(3)
	g.hold = true
	recs := &memRecords{m: map[string]string{}}
	deps := Deps{Groups: []Group{g}, Records: recs, Tick: time.Millisecond, Logger: slog.New(slog.DiscardHandler)}
	r := New(deps)
	r.Run()
	if _, err := r.Start(context.Background(), "web", Settings{MinHealthyPercentage: 66, MaxUnavailable: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Start(context.Background(), "web", Settings{}); err == nil {
		t.Fatal("a second refresh started while one runs")
	}
	// The new instances held back: after the first replacement the
	// refresh waits (66 % of 3 keeps 2 healthy).
	waitStatus(t, r, func(s Status) bool { return len(s.Replaced) == 1 && s.Waiting != "" })
	r.Close()
	g.mu.Lock()
	g.hold = false
	g.mu.Unlock()

	r2 := New(deps)
	r2.Run()
	defer r2.Close()
	st := waitStatus(t, r2, func(s Status) bool { return s.Status != InProgress })
	if st.Status != Successful || len(st.Replaced) != 3 {
		t.Fatalf("after the restart: %+v", st)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if fmt.Sprint(g.terminated) != "[i-1 i-2 i-3]" {
		t.Fatalf("terminated %v: only the three old instances, once each", g.terminated)
	}
}

// TestRefreshCancel: once Cancel returns, nothing more is replaced.
func TestRefreshCancel(t *testing.T) {
	g := newFakeGroup(3)
	g.hold = true
	recs := &memRecords{m: map[string]string{}}
	r := New(Deps{Groups: []Group{g}, Records: recs, Tick: time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	r.Run()
	defer r.Close()
	if _, err := r.Start(context.Background(), "web", Settings{MinHealthyPercentage: 66, MaxUnavailable: 1}); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, r, func(s Status) bool { return len(s.Replaced) == 1 && s.Waiting != "" })
	st, err := r.Cancel(context.Background(), "web")
	if err != nil || st.Status != Cancelled || len(st.Replaced) != 1 {
		t.Fatalf("cancel: %+v %v", st, err)
	}
	if _, err := r.Cancel(context.Background(), "web"); err == nil {
		t.Fatal("a second cancel succeeded")
	}
	// Released now, a loop still running would replace the next one.
	g.mu.Lock()
	g.hold = false
	n := len(g.terminated)
	g.mu.Unlock()
	if got, _ := r.Get(context.Background(), "web"); got.Status != Cancelled || n != 1 {
		t.Fatalf("after the cancel: %+v, %d terminated", got, n)
	}
}
