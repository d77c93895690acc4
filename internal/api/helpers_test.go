package api

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/autoheal/autoheal/internal/config"
	"github.com/autoheal/autoheal/internal/group"
	"github.com/autoheal/autoheal/internal/store"
)

// sharedDir is a temp dir for the whole test binary (the fuzz targets'
// credentials), removed when it ends.
var sharedDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "autoheal-api-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	sharedDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// testJournal is a real store in a temp dir.
func testJournal(t testing.TB) *store.Store {
	t.Helper()
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// testCredentials are a controller's credentials in a temp state dir.
func testCredentials(t testing.TB) *Credentials {
	t.Helper()
	c, err := LoadCredentials(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// fakeGroup stands in for a group at the edge the API tests cannot reach
// cheaply (a group launches processes): it keeps a capacity with the
// real group's rules and records what it was asked.
type fakeGroup struct {
	name string
	role string // its api_role

	mu                 sync.Mutex
	min, max, desired  int
	instances          []store.Instance
	scales, terminates int
	restarts           int
}

var _ Group = (*fakeGroup)(nil)

// newFakeGroup has capacity 0/1/3 and one InService instance per id.
func newFakeGroup(name, role string, ids ...string) *fakeGroup {
	g := &fakeGroup{name: name, role: role, max: 3, desired: 1}
	for _, id := range ids {
		g.instances = append(g.instances, store.Instance{ID: id, Group: name, State: group.InService, Health: "healthy", Pid: 100, LaunchedAt: time.Now()})
	}
	return g
}

func (g *fakeGroup) Name() string                  { return g.name }
func (g *fakeGroup) Config() config.Group          { return config.Group{Name: g.name, APIRole: g.role} }
func (g *fakeGroup) Parameters() map[string]string { return map[string]string{"P": "v"} }

func (g *fakeGroup) Snapshot() group.Snapshot {
	g.mu.Lock()
	defer g.mu.Unlock()
	return group.Snapshot{Name: g.name, Status: group.Active, Min: g.min, Max: g.max, Desired: g.desired,
		Instances: append([]store.Instance(nil), g.instances...)}
}

func (g *fakeGroup) Instance(id string) (store.Instance, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, in := range g.instances {
		if in.ID == id {
			return in, true
		}
	}
	return store.Instance{}, false
}

// Scale applies group.Group's rules.
func (g *fakeGroup) Scale(ctx context.Context, min, max, desired *int) (group.Snapshot, error) {
	g.mu.Lock()
	mn, mx, d := g.min, g.max, g.desired
	if min != nil {
		mn = *min
	}
	if max != nil {
		mx = *max
	}
	if desired != nil {
		d = *desired
	}
	var err error
	switch {
	case mn < 0 || mx < 0 || d < 0:
		err = fmt.Errorf("%w: capacities must not be negative", group.ErrInvalid)
	case mn > mx:
		err = fmt.Errorf("%w: min %d is greater than max %d", group.ErrInvalid, mn, mx)
	case d < mn || d > mx:
		err = fmt.Errorf("%w: desired %d is outside min %d and max %d", group.ErrInvalid, d, mn, mx)
	default:
		g.min, g.max, g.desired = mn, mx, d
		g.scales++
	}
	g.mu.Unlock()
	return g.Snapshot(), err
}

func (g *fakeGroup) Terminate(ctx context.Context, id string, decrement bool) error {
	if _, ok := g.Instance(id); !ok {
		return fmt.Errorf("instance %s: %w", id, group.ErrNotFound)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.terminates++
	return nil
}

func (g *fakeGroup) Restart(ctx context.Context, id string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.restarts++
	// Leave InService at once, as a real restart soon does.
	for i := range g.instances {
		if g.instances[i].ID == id {
			g.instances[i].State = group.Pending
		}
	}
	return nil
}

// adminServer serves the API over deps as the local admin sees it: a
// request without a credential gets the admin token, so that tests of
// other things than auth can use plain HTTP calls. Auth itself is tested
// without it (auth_test.go).
func adminServer(t testing.TB, deps Deps) *httptest.Server {
	t.Helper()
	if deps.Credentials == nil {
		deps.Credentials = testCredentials(t)
	}
	h := New(deps)
	tok := deps.Credentials.AdminToken()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "" {
			r.Header.Set("Authorization", "Bearer "+tok)
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(h.Close)
	return srv
}
