package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"

	"github.com/autoheal/autoheal/internal/api/wire"
	"github.com/autoheal/autoheal/internal/store"
)

// TestStatusAndMetricsSayTheStateDirIsNotWritable: status and /metrics
// follow the store's health, on a real store degraded as a refused write
// degrades it.
func TestStatusAndMetricsSayTheStateDirIsNotWritable(t *testing.T) {
	st := testJournal(t)
	srv := adminServer(t, Deps{Journal: st, StateDir: st, Logger: slog.New(slog.DiscardHandler)})
	status := func() wire.StateDir {
		t.Helper()
		c := NewClientWithToken(strings.TrimPrefix(srv.URL, "http://"), "")
		s, err := c.Status(context.Background(), false)
		if err != nil || s.State == nil {
			t.Fatalf("status: %+v %v", s, err)
		}
		return *s.State
	}
	gauge := func() string {
		t.Helper()
		resp, err := http.Get(srv.URL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "autoheal_state_writable ") {
				return l
			}
		}
		return ""
	}
	if s := status(); !s.Writable || s.Error != "" || s.Since != nil || s.Dir != st.Dir() || s.String() != "ok" {
		t.Fatalf("state of a writable store: %+v", s)
	}
	if g := gauge(); g != "autoheal_state_writable 1" {
		t.Fatalf("gauge of a writable store: %q", g)
	}

	st.Refused(fmt.Errorf("write token: %w", syscall.ENOSPC))
	s := status()
	if s.Writable || s.Error != "no space left on device" || s.Since == nil {
		t.Fatalf("state of a degraded store: %+v", s)
	}
	if want := "degraded (state dir " + st.Dir() + ": no space left on device since "; !strings.HasPrefix(s.String(), want) {
		t.Fatalf("state line %q, want it to start with %q", s.String(), want)
	}
	if g := gauge(); g != "autoheal_state_writable 0" {
		t.Fatalf("gauge of a degraded store: %q", g)
	}

	if err := st.Probe(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s := status(); !s.Writable || s.Since == nil {
		t.Fatalf("state after recovery: %+v (want writable, since the recovery)", s)
	}
}

func TestRefusedWriteIsServiceUnavailable(t *testing.T) {
	st := testJournal(t)
	st.Refused(syscall.EROFS)
	_, err := st.Append(context.Background(), store.Event{Type: "message", Message: "m"})
	rec := httptest.NewRecorder()
	writeError(rec, fmt.Errorf("scale: %w", err))
	var body wire.Error
	json.Unmarshal(rec.Body.Bytes(), &body)
	if rec.Code != http.StatusServiceUnavailable || body.Code != "state_dir_not_writable" || !strings.Contains(body.Error, "read-only file system") {
		t.Fatalf("refused write answered %d %+v", rec.Code, body)
	}
}
