package cli

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/autoheal/autoheal/internal/api"
	"github.com/autoheal/autoheal/internal/config"
	"github.com/autoheal/autoheal/internal/group"
	"github.com/autoheal/autoheal/internal/store"
)

// apiServer serves the real API over deps with a controller's local
// credentials in a temp state dir, as serve does: the CLI, on this host,
// finds the admin token through the controller's 401.
func apiServer(t *testing.T, deps api.Deps) (url string, creds *api.Credentials) {
	t.Helper()
	creds, err := api.LoadCredentials(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	deps.Credentials = creds
	h := api.New(deps)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	t.Cleanup(h.Close)
	return srv.URL, creds
}

// oneInstance is a group of one InService instance: what the API needs
// to know an instance's credential. It refuses every change.
type oneInstance struct{ name, id string }

var _ api.Group = oneInstance{}

func (g oneInstance) Name() string                  { return g.name }
func (g oneInstance) Config() config.Group          { return config.Group{Name: g.name} }
func (g oneInstance) Parameters() map[string]string { return nil }
func (g oneInstance) Snapshot() group.Snapshot {
	in, _ := g.Instance(g.id)
	return group.Snapshot{Name: g.name, Max: 1, Desired: 1, Instances: []store.Instance{in}}
}
func (g oneInstance) Instance(id string) (store.Instance, bool) {
	return store.Instance{ID: g.id, Group: g.name, State: group.InService}, id == g.id
}
func (g oneInstance) Scale(context.Context, *int, *int, *int) (group.Snapshot, error) {
	return group.Snapshot{}, group.ErrInvalid
}
func (g oneInstance) Terminate(context.Context, string, bool) error { return group.ErrInvalid }
func (g oneInstance) Restart(context.Context, string) error         { return group.ErrInvalid }
