package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/autoheal/autoheal/internal/api/wire"
	"github.com/autoheal/autoheal/internal/lb"
)

// Target group endpoints, shaped like ELB's DescribeTargetHealth,
// RegisterTargets and DeregisterTargets.

func (h *Handler) listTargetGroups(w http.ResponseWriter, r *http.Request) {
	if h.deps.Balancer == nil {
		writeJSON(w, http.StatusOK, []lb.Health{})
		return
	}
	writeJSON(w, http.StatusOK, h.deps.Balancer.TargetGroups())
}

func (h *Handler) targetGroup(name string) (TargetGroup, error) {
	if h.deps.Balancer == nil {
		return nil, fmt.Errorf("%w: target group %q: no load balancers configured", errNotFound, name)
	}
	tg, err := h.deps.Balancer.TargetGroup(name)
	if err != nil {
		return nil, fmt.Errorf("%w: target group %q", errNotFound, name)
	}
	return tg, nil
}

func (h *Handler) targetHealth(w http.ResponseWriter, r *http.Request) {
	tg, err := h.targetGroup(r.PathValue("name"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, tg.Health())
}

func (h *Handler) registerTarget(w http.ResponseWriter, r *http.Request) {
	var req wire.TargetRequest
	if err := decode(w, r, MaxBody, &req); err != nil {
		writeError(w, err)
		return
	}
	if req.ID == "" && req.Address == "" {
		writeError(w, fmt.Errorf("%w: give id or address", errInvalid))
		return
	}
	tg, err := h.targetGroup(r.PathValue("name"))
	if err != nil {
		writeError(w, err)
		return
	}
	if err := tg.Register(req.ID, req.Address, req.Weight); err != nil {
		writeError(w, lbError(err))
		return
	}
	writeJSON(w, http.StatusOK, tg.Health())
}

func (h *Handler) deregisterTarget(w http.ResponseWriter, r *http.Request) {
	var req wire.TargetRequest
	if err := decode(w, r, MaxBody, &req); err != nil {
		writeError(w, err)
		return
	}
	id := req.ID
	if id == "" {
		id = req.Address
	}
	if id == "" {
		writeError(w, fmt.Errorf("%w: give id or address", errInvalid))
		return
	}
	tg, err := h.targetGroup(r.PathValue("name"))
	if err != nil {
		writeError(w, err)
		return
	}
	done, err := tg.Deregister(id)
	if err != nil {
		writeError(w, lbError(err))
		return
	}
	if req.Wait {
		select {
		case <-done:
		case <-r.Context().Done():
			return
		case <-h.closing:
			writeError(w, fmt.Errorf("%w: the controller is stopping; target %s is still draining", context.Canceled, id))
			return
		}
	}
	writeJSON(w, http.StatusOK, tg.Health())
}

// lbError maps the load balancer's errors to the API's kinds.
func lbError(err error) error {
	if errors.Is(err, lb.ErrNotFound) {
		return kindError{errNotFound, err}
	}
	return kindError{errInvalid, err}
}
