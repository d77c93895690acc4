package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/autoheal/autoheal/internal/group"
	"github.com/autoheal/autoheal/internal/runbook"
	"github.com/autoheal/autoheal/internal/store"
)

// Runbook endpoints: documents, executions, and the instance operations
// the built-in documents use.

func (h *Handler) runbooks() (*runbook.Engine, *runbook.Library, error) {
	if h.deps.Runbooks == nil || h.deps.Documents == nil {
		return nil, nil, fmt.Errorf("%w: runbooks are not enabled in this controller", errNotFound)
	}
	return h.deps.Runbooks, h.deps.Documents, nil
}

// runbookError maps the engine's error kinds, keeping its message.
func runbookError(err error) error {
	switch {
	case errors.Is(err, runbook.ErrNotFound):
		return kindError{errNotFound, err}
	case errors.Is(err, runbook.ErrInvalid):
		return kindError{errInvalid, err}
	}
	return err
}

// kindError gives an error from another package one of the API's kinds
// without repeating the kind in its message.
type kindError struct{ kind, err error }

func (e kindError) Error() string        { return e.err.Error() }
func (e kindError) Is(target error) bool { return target == e.kind }
func (e kindError) Unwrap() error        { return e.err }

func (h *Handler) listDocuments(w http.ResponseWriter, r *http.Request) {
	_, lib, err := h.runbooks()
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, lib.List())
}

func (h *Handler) getDocument(w http.ResponseWriter, r *http.Request) {
	_, lib, err := h.runbooks()
	if err != nil {
		writeError(w, err)
		return
	}
	d, err := lib.Get(r.PathValue("name"))
	if err != nil {
		writeError(w, runbookError(err))
		return
	}
	writeJSON(w, http.StatusOK, d)
}

// RunRequest is the body of POST /v1/executions.
type RunRequest struct {
	Document   string            `json:"document"`
	Parameters map[string]string `json:"parameters,omitempty"`
}

// RunResponse names the new execution.
type RunResponse struct {
	ID string `json:"id"`
}

func (h *Handler) startExecution(w http.ResponseWriter, r *http.Request) {
	eng, _, err := h.runbooks()
	if err != nil {
		writeError(w, err)
		return
	}
	var req RunRequest
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	id, err := eng.Start(r.Context(), req.Document, req.Parameters, "api")
	if err != nil {
		writeError(w, runbookError(err))
		return
	}
	writeJSON(w, http.StatusCreated, RunResponse{ID: id})
}

func (h *Handler) listExecutions(w http.ResponseWriter, r *http.Request) {
	eng, _, err := h.runbooks()
	if err != nil {
		writeError(w, err)
		return
	}
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	list, err := eng.List(r.Context(), limit)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, list)
}

func (h *Handler) getExecution(w http.ResponseWriter, r *http.Request) {
	eng, _, err := h.runbooks()
	if err != nil {
		writeError(w, err)
		return
	}
	ex, err := eng.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		writeError(w, runbookError(err))
		return
	}
	writeJSON(w, http.StatusOK, ex)
}

func (h *Handler) cancelExecution(w http.ResponseWriter, r *http.Request) {
	eng, _, err := h.runbooks()
	if err != nil {
		writeError(w, err)
		return
	}
	if err := eng.Cancel(r.Context(), r.PathValue("id")); err != nil {
		writeError(w, runbookError(err))
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"id": r.PathValue("id"), "status": "cancelling"})
}

// ApproveRequest is the body of POST /v1/executions/{id}/approve.
type ApproveRequest struct {
	Approver string `json:"approver,omitempty"`
	// Reject answers no; the step fails.
	Reject  bool   `json:"reject,omitempty"`
	Comment string `json:"comment,omitempty"`
}

func (h *Handler) approveExecution(w http.ResponseWriter, r *http.Request) {
	eng, _, err := h.runbooks()
	if err != nil {
		writeError(w, err)
		return
	}
	var req ApproveRequest
	if r.ContentLength != 0 {
		if err := decode(r, &req); err != nil {
			writeError(w, err)
			return
		}
	}
	if req.Approver == "" {
		req.Approver = "operator"
	}
	a := runbook.Approval{Approver: req.Approver, Approved: !req.Reject, Comment: req.Comment}
	if err := eng.Approve(r.Context(), r.PathValue("id"), a); err != nil {
		writeError(w, runbookError(err))
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"id": r.PathValue("id"), "approved": !req.Reject})
}

func (h *Handler) restartInstance(w http.ResponseWriter, r *http.Request) {
	g, _, err := h.findInstance(r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	before, _ := g.Instance(r.PathValue("id"))
	if err := g.Restart(r.Context(), r.PathValue("id")); err != nil {
		writeError(w, err)
		return
	}
	// Answer once the restart has begun, so that whoever waits for the
	// instance to be InService again does not see it InService before.
	in := waitRestartBegun(r.Context(), g, before)
	writeJSON(w, http.StatusAccepted, in)
}

// Capacity says whether a group is at its desired capacity with every
// live instance InService.
type Capacity struct {
	Desired   int  `json:"desired"`
	Live      int  `json:"live"`
	InService int  `json:"in_service"`
	Complete  bool `json:"complete"`
}

func (h *Handler) groupCapacity(w http.ResponseWriter, r *http.Request) {
	g, err := h.group(r.PathValue("name"))
	if err != nil {
		writeError(w, err)
		return
	}
	s := g.Snapshot()
	c := Capacity{Desired: s.Desired}
	for _, in := range s.Instances {
		if in.State == group.Terminated {
			continue
		}
		c.Live++
		if in.State == group.InService {
			c.InService++
		}
	}
	c.Complete = c.Live == c.Desired && c.InService == c.Desired
	writeJSON(w, http.StatusOK, c)
}

// resolveTargetGroup answers which target group an instance is in: the
// named one (checked), or its only one.
func (h *Handler) resolveTargetGroup(w http.ResponseWriter, r *http.Request) {
	id, name := r.URL.Query().Get("instance"), r.URL.Query().Get("name")
	var in []string
	for _, tg := range h.deps.Balancer.TargetGroups() {
		for _, t := range tg.Targets {
			if t.ID == id {
				in = append(in, tg.Name)
			}
		}
	}
	switch {
	case name != "":
		for _, n := range in {
			if n == name {
				writeJSON(w, http.StatusOK, map[string]string{"name": name})
				return
			}
		}
		writeError(w, fmt.Errorf("%w: instance %s is not a target of target group %s", errInvalid, id, name))
	case len(in) == 1:
		writeJSON(w, http.StatusOK, map[string]string{"name": in[0]})
	case len(in) == 0:
		writeError(w, fmt.Errorf("%w: instance %s is in no target group", errInvalid, id))
	default:
		writeError(w, fmt.Errorf("%w: instance %s is in %d target groups %v: name one (TargetGroup)", errInvalid, id, len(in), in))
	}
}

// Client methods.

// Documents lists documents.
func (c *Client) Documents(ctx context.Context) ([]runbook.Summary, error) {
	var out []runbook.Summary
	return out, c.do(ctx, http.MethodGet, "/v1/documents", nil, &out)
}

// Document returns one document.
func (c *Client) Document(ctx context.Context, name string) (runbook.Document, error) {
	var out runbook.Document
	return out, c.do(ctx, http.MethodGet, "/v1/documents/"+url.PathEscape(name), nil, &out)
}

// Run starts an execution.
func (c *Client) Run(ctx context.Context, req RunRequest) (string, error) {
	var out RunResponse
	return out.ID, c.do(ctx, http.MethodPost, "/v1/executions", req, &out)
}

// Executions lists the newest executions.
func (c *Client) Executions(ctx context.Context, limit int) ([]runbook.Execution, error) {
	var out []runbook.Execution
	return out, c.do(ctx, http.MethodGet, "/v1/executions?limit="+strconv.Itoa(limit), nil, &out)
}

// Execution returns one execution.
func (c *Client) Execution(ctx context.Context, id string) (runbook.Execution, error) {
	var out runbook.Execution
	return out, c.do(ctx, http.MethodGet, "/v1/executions/"+url.PathEscape(id), nil, &out)
}

// CancelExecution cancels a running execution.
func (c *Client) CancelExecution(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodPost, "/v1/executions/"+url.PathEscape(id)+"/cancel", nil, nil)
}

// ApproveExecution answers an approve step.
func (c *Client) ApproveExecution(ctx context.Context, id string, req ApproveRequest) error {
	return c.do(ctx, http.MethodPost, "/v1/executions/"+url.PathEscape(id)+"/approve", req, nil)
}

// RestartInstance restarts an instance in place.
func (c *Client) RestartInstance(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodPost, "/v1/instances/"+url.PathEscape(id)+"/restart", nil, nil)
}

// waitRestartBegun polls until the instance has left InService or runs a
// new process, for at most ten seconds. A pid of 0 is no new process: the
// old one is stopped (and its pid cleared) while the instance is still
// InService, and it leaves InService only when the new one is launched.
func waitRestartBegun(ctx context.Context, g *group.Group, before store.Instance) store.Instance {
	deadline := time.Now().Add(10 * time.Second)
	for {
		in, ok := g.Instance(before.ID)
		if !ok || in.State != group.InService || (in.Pid != 0 && in.Pid != before.Pid) || time.Now().After(deadline) || ctx.Err() != nil {
			return in
		}
		time.Sleep(2 * time.Millisecond)
	}
}
