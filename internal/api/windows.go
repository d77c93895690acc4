package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/autoheal/autoheal/internal/api/wire"
	"github.com/autoheal/autoheal/internal/maintenance"
	"github.com/autoheal/autoheal/internal/store"
)

// Maintenance window endpoints: list, next occurrences, run now (SSM's
// DescribeMaintenanceWindows, DescribeMaintenanceWindowSchedule and a
// manual execution).

// Bounds of GET /v1/windows/{name}/next?n=.
const (
	defaultNextWindows = 5
	maxNextWindows     = 100
)

// windows returns the scheduler, or an error answered 404 when the config
// has no maintenance windows.
func (h *Handler) windows() (Windows, error) {
	if h.deps.Windows == nil {
		return nil, fmt.Errorf("%w: no maintenance windows configured", errNotFound)
	}
	return h.deps.Windows, nil
}

func (h *Handler) listWindows(w http.ResponseWriter, r *http.Request) {
	s, err := h.windows()
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, s.Windows())
}

func (h *Handler) nextWindows(w http.ResponseWriter, r *http.Request) {
	s, err := h.windows()
	if err != nil {
		writeError(w, err)
		return
	}
	n := defaultNextWindows
	if v := r.URL.Query().Get("n"); v != "" {
		if n, err = strconv.Atoi(v); err != nil || n < 1 || n > maxNextWindows {
			writeError(w, fmt.Errorf("%w: n=%q: give a number from 1 to %d", errInvalid, v, maxNextWindows))
			return
		}
	}
	ws, err := s.Next(r.PathValue("name"), n)
	if err != nil {
		writeError(w, windowError(err))
		return
	}
	if ws == nil {
		ws = []maintenance.Window{}
	}
	writeJSON(w, http.StatusOK, ws)
}

func (h *Handler) runWindow(w http.ResponseWriter, r *http.Request) {
	if err := decode(w, r, MaxBody, &noBody{}); err != nil {
		writeError(w, err)
		return
	}
	s, err := h.windows()
	if err != nil {
		writeError(w, err)
		return
	}
	id, err := s.RunNow(r.Context(), r.PathValue("name"))
	if err != nil {
		writeError(w, windowError(err))
		return
	}
	// The run goes on after the answer; its progress is in GET
	// /v1/windows and the journal.
	writeJSON(w, http.StatusAccepted, wire.RunWindowResponse{RunID: id})
}

// windowError maps the scheduler's errors to the API's kinds.
func windowError(err error) error {
	switch {
	case errors.Is(err, maintenance.ErrNotFound):
		return fmt.Errorf("%w: %v", errNotFound, err)
	case errors.Is(err, maintenance.ErrRunning):
		return fmt.Errorf("%w: %v", store.ErrConflict, err)
	case errors.Is(err, maintenance.ErrClosed):
		// The controller is stopping: 503.
		return fmt.Errorf("%w: %v", context.Canceled, err)
	}
	return err
}
