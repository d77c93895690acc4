package api

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/autoheal/autoheal/internal/api/wire"
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
