package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/autoheal/autoheal/internal/lb"
)

// Target group endpoints, shaped like ELB's DescribeTargetHealth,
// RegisterTargets and DeregisterTargets.

func (h *Handler) listTargetGroups(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, h.deps.Balancer.TargetGroups())
}

func (h *Handler) targetGroup(name string) (*lb.TargetGroup, error) {
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

// TargetRequest is the body of POST /v1/target-groups/{name}/register and
// /deregister: an instance id the target group knows, or a host:port
// address (register only).
type TargetRequest struct {
	ID      string `json:"id,omitempty"`
	Address string `json:"address,omitempty"`
	Weight  int    `json:"weight,omitempty"`
	// Wait makes deregister answer only once the target is drained.
	Wait bool `json:"wait,omitempty"`
}

func (h *Handler) registerTarget(w http.ResponseWriter, r *http.Request) {
	tg, err := h.targetGroup(r.PathValue("name"))
	if err != nil {
		writeError(w, err)
		return
	}
	var req TargetRequest
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	if req.ID == "" && req.Address == "" {
		writeError(w, fmt.Errorf("%w: give id or address", errInvalid))
		return
	}
	if err := tg.Register(req.ID, req.Address, req.Weight); err != nil {
		writeError(w, lbError(err))
		return
	}
	writeJSON(w, http.StatusOK, tg.Health())
}

func (h *Handler) deregisterTarget(w http.ResponseWriter, r *http.Request) {
	tg, err := h.targetGroup(r.PathValue("name"))
	if err != nil {
		writeError(w, err)
		return
	}
	var req TargetRequest
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	id := req.ID
	if id == "" {
		id = req.Address
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

// TargetGroups lists every target group with its targets and metrics.
func (c *Client) TargetGroups(ctx context.Context) ([]lb.Health, error) {
	var out []lb.Health
	return out, c.do(ctx, http.MethodGet, "/v1/target-groups", nil, &out)
}

// TargetHealth describes one target group.
func (c *Client) TargetHealth(ctx context.Context, name string) (lb.Health, error) {
	var out lb.Health
	return out, c.do(ctx, http.MethodGet, "/v1/target-groups/"+url.PathEscape(name)+"/health", nil, &out)
}

// RegisterTarget adds or re-adds a target.
func (c *Client) RegisterTarget(ctx context.Context, name string, req TargetRequest) (lb.Health, error) {
	var out lb.Health
	return out, c.do(ctx, http.MethodPost, "/v1/target-groups/"+url.PathEscape(name)+"/register", req, &out)
}

// DeregisterTarget drains a target; with req.Wait it returns once drained.
func (c *Client) DeregisterTarget(ctx context.Context, name string, req TargetRequest) (lb.Health, error) {
	var out lb.Health
	if req.Wait {
		// A drain lasts up to the deregistration delay.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Hour)
		defer cancel()
	}
	return out, c.do(ctx, http.MethodPost, "/v1/target-groups/"+url.PathEscape(name)+"/deregister", req, &out)
}
