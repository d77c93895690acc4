package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/autoheal/autoheal/internal/api/wire"
	"github.com/autoheal/autoheal/internal/config"
	"github.com/autoheal/autoheal/internal/maintenance"
)

// windowRunner stands in for the runbook executor, the edge the scheduler
// runs documents through.
type windowRunner struct {
	release chan struct{}
}

func (f *windowRunner) StartAs(context.Context, string, string, map[string]string, string) error {
	return nil
}

func (f *windowRunner) Exists(context.Context, string) (bool, error) { return true, nil }

func (f *windowRunner) Wait(ctx context.Context, _ string) (string, error) {
	select {
	case <-f.release:
		return maintenance.StatusSuccess, nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

func (f *windowRunner) Cancel(context.Context, string) error { return nil }

// windowsServer serves the API over a scheduler with one window, "patch",
// daily at 03:00 in Paris, whose executions last until release is closed.
func windowsServer(t *testing.T, now time.Time) (*Client, *maintenance.Scheduler, chan struct{}) {
	t.Helper()
	cfg := &config.Config{
		Groups: []config.Group{{Name: "web", Launch: config.Launch{Command: "sh"}}},
		MaintenanceWindows: []config.MaintenanceWindow{{
			Name: "patch", Schedule: "0 3 * * *", TimeZone: "Europe/Paris", Duration: config.Duration(time.Hour),
			Targets: config.WindowTargets{Groups: []string{"web"}},
			Tasks:   []config.WindowTask{{Document: "restart", Parameters: map[string]string{"InstanceId": "{{ TARGET_ID }}"}}},
		}},
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	sched, err := maintenance.New(cfg, maintenance.Deps{
		Runner:  &windowRunner{release: release},
		Targets: func() []maintenance.Target { return []maintenance.Target{{ID: "i-01", Group: "web"}} },
		Now:     func() time.Time { return now },
		Logger:  slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sched.Close)
	srv := adminServer(t, Deps{Windows: sched, Logger: slog.New(slog.DiscardHandler)})
	return NewClient(srv.URL), sched, release
}

func TestWindowsEndpoints(t *testing.T) {
	now := time.Date(2024, 5, 2, 10, 0, 0, 0, time.UTC)
	c, sched, release := windowsServer(t, now)
	ctx := context.Background()

	ws, err := c.Windows(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// 03:00 in Paris in May is 01:00 UTC.
	first := time.Date(2024, 5, 3, 1, 0, 0, 0, time.UTC)
	if len(ws) != 1 || ws[0].Name != "patch" || ws[0].TimeZone != "Europe/Paris" || ws[0].Duration != "1h" ||
		ws[0].Next == nil || !ws[0].Next.Start.Equal(first) || ws[0].Running != nil {
		t.Fatalf("windows: %+v", ws)
	}
	if _, off := ws[0].Next.Start.Zone(); off != 2*3600 {
		t.Errorf("next start %s is not in the window's zone", ws[0].Next.Start)
	}

	next, err := c.NextWindows(ctx, "patch", 3)
	if err != nil || len(next) != 3 || !next[0].Start.Equal(first) || !next[2].Start.Equal(first.Add(48*time.Hour)) {
		t.Errorf("next 3: %v, %v", next, err)
	}
	if next, err := c.NextWindows(ctx, "patch", 0); err != nil || len(next) != 5 {
		t.Errorf("next (default): %d, %v", len(next), err)
	}
	if _, err := c.NextWindows(ctx, "nope", 1); !IsNotFound(err) {
		t.Errorf("next of an unknown window: %v", err)
	}

	id, err := c.RunWindow(ctx, "patch")
	if err != nil || !strings.HasPrefix(id, "mw-") {
		t.Fatalf("run: %q, %v", id, err)
	}
	if _, err := c.RunWindow(ctx, "patch"); apiStatus(err) != http.StatusConflict || !strings.Contains(err.Error(), id) {
		t.Errorf("second run: %v", err)
	}
	if _, err := c.RunWindow(ctx, "nope"); !IsNotFound(err) {
		t.Errorf("run of an unknown window: %v", err)
	}
	ws, _ = c.Windows(ctx)
	if ws[0].Running == nil || ws[0].Running.ID != id || ws[0].Running.Trigger != maintenance.TriggerManual {
		t.Errorf("while running: %+v", ws[0])
	}
	close(release)
	deadline := time.Now().Add(10 * time.Second)
	for ws, _ = c.Windows(ctx); ws[0].Last == nil; ws, _ = c.Windows(ctx) {
		if time.Now().After(deadline) {
			t.Fatal("the run never ended")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if ws[0].Last.ID != id || ws[0].Last.Outcome != maintenance.OutcomeSuccess || ws[0].Last.Succeeded != 1 {
		t.Errorf("last run: %+v", ws[0].Last)
	}

	sched.Close()
	if _, err := c.RunWindow(ctx, "patch"); apiStatus(err) != http.StatusServiceUnavailable {
		t.Errorf("run while stopping: %v", err)
	}
}

func TestWindowsNextBadCount(t *testing.T) {
	c, _, _ := windowsServer(t, time.Now())
	for _, n := range []string{"0", "101", "x", "-1"} {
		resp, err := http.Get(c.base + "/v1/windows/patch/next?n=" + n)
		if err != nil {
			t.Fatal(err)
		}
		var e wire.Error
		json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || e.Code != "invalid" {
			t.Errorf("n=%s: %d %+v", n, resp.StatusCode, e)
		}
	}
}

func TestNoWindowsConfigured(t *testing.T) {
	srv := adminServer(t, Deps{Logger: slog.New(slog.DiscardHandler)})
	defer srv.Close()
	for _, r := range []struct{ method, path string }{
		{http.MethodGet, "/v1/windows"},
		{http.MethodGet, "/v1/windows/patch/next"},
		{http.MethodPost, "/v1/windows/patch/run"},
	} {
		req, _ := http.NewRequest(r.method, srv.URL+r.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), "no maintenance windows configured") {
			t.Errorf("%s %s: %d %s", r.method, r.path, resp.StatusCode, body)
		}
	}
}

func apiStatus(err error) int {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Status
	}
	return 0
}
