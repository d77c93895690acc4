package api

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/autoheal/autoheal/internal/api/wire"
	"github.com/autoheal/autoheal/internal/refresh"
	"github.com/autoheal/autoheal/internal/store"
)

// ErrBadConfig is a config file that does not load: the planner wraps it
// (its message names FILE:LINE:COL), and the API answers 400.
var ErrBadConfig = errors.New("config does not load")

// plan answers what reloading a config file would do (autoheal diff):
// admin only (the route is under /v1/admin/), as it reads a file the
// controller's user may read.
func (h *Handler) plan(w http.ResponseWriter, r *http.Request) {
	var req wire.PlanRequest
	if err := decode(w, r, MaxBody, &req); err != nil {
		writeError(w, err)
		return
	}
	if h.deps.Plan == nil {
		writeError(w, fmt.Errorf("%w: this controller does not plan reloads", errNotFound))
		return
	}
	p, err := h.deps.Plan(r.Context(), req.Path)
	if errors.Is(err, ErrBadConfig) {
		err = fmt.Errorf("%w: %v", errInvalid, err)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

// startRefresh begins an instance refresh of a group.
func (h *Handler) startRefresh(w http.ResponseWriter, r *http.Request) {
	var req wire.RefreshRequest
	if err := decode(w, r, MaxBody, &req); err != nil {
		writeError(w, err)
		return
	}
	if h.deps.Refresh == nil {
		writeError(w, fmt.Errorf("%w: this controller runs no instance refreshes", errNotFound))
		return
	}
	st, err := h.deps.Refresh.Start(r.Context(), r.PathValue("name"), refresh.Settings{MinHealthyPercentage: req.MinHealthyPercentage, MaxUnavailable: req.MaxUnavailable})
	if err != nil {
		writeError(w, refreshError(err))
		return
	}
	writeJSON(w, http.StatusAccepted, st)
}

// getRefresh answers a group's last refresh.
func (h *Handler) getRefresh(w http.ResponseWriter, r *http.Request) {
	if h.deps.Refresh == nil {
		writeError(w, fmt.Errorf("%w: this controller runs no instance refreshes", errNotFound))
		return
	}
	st, err := h.deps.Refresh.Get(r.Context(), r.PathValue("name"))
	if err != nil {
		writeError(w, refreshError(err))
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// cancelRefresh stops a group's refresh in progress.
func (h *Handler) cancelRefresh(w http.ResponseWriter, r *http.Request) {
	if err := decode(w, r, MaxBody, &noBody{}); err != nil {
		writeError(w, err)
		return
	}
	if h.deps.Refresh == nil {
		writeError(w, fmt.Errorf("%w: this controller runs no instance refreshes", errNotFound))
		return
	}
	st, err := h.deps.Refresh.Cancel(r.Context(), r.PathValue("name"))
	if err != nil {
		writeError(w, refreshError(err))
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func refreshError(err error) error {
	switch {
	case errors.Is(err, refresh.ErrNoGroup), errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("%w: %v", errNotFound, err)
	case errors.Is(err, refresh.ErrInProgress), errors.Is(err, refresh.ErrNone):
		return fmt.Errorf("%w: %v", store.ErrConflict, err)
	case errors.Is(err, refresh.ErrInvalid):
		return fmt.Errorf("%w: %v", errInvalid, err)
	}
	return err
}
