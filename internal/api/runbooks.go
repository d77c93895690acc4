package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/autoheal/autoheal/internal/api/wire"
	"github.com/autoheal/autoheal/internal/group"
	"github.com/autoheal/autoheal/internal/runbook"
	"github.com/autoheal/autoheal/internal/store"
)

// Runbook endpoints: documents, executions, and the instance operations
// the built-in documents use.

func (h *Handler) runbooks() (Runbooks, Documents, error) {
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

func (h *Handler) startExecution(w http.ResponseWriter, r *http.Request) {
	var req wire.RunRequest
	if err := decode(w, r, MaxRunBody, &req); err != nil {
		writeError(w, err)
		return
	}
	if req.Document == "" {
		writeError(w, fmt.Errorf("%w: give document", errInvalid))
		return
	}
	eng, _, err := h.runbooks()
	if err != nil {
		writeError(w, err)
		return
	}
	id, err := eng.Start(r.Context(), req.Document, req.Parameters, "api")
	if err != nil {
		writeError(w, runbookError(err))
		return
	}
	writeJSON(w, http.StatusCreated, wire.RunResponse{ID: id})
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

// maxExecutionWait bounds GET /v1/executions/{id}?wait=.
const maxExecutionWait = time.Minute

// getExecution answers an execution. With ?wait=DURATION and the ETag of
// the state the caller has in If-None-Match, it answers when the
// execution changes, or 304 when the wait passes: a client follows an
// execution without polling, woken by the engine.
func (h *Handler) getExecution(w http.ResponseWriter, r *http.Request) {
	eng, _, err := h.runbooks()
	if err != nil {
		writeError(w, err)
		return
	}
	wait, err := waitParam(r.URL.Query().Get("wait"))
	if err != nil {
		writeError(w, err)
		return
	}
	timeout := time.NewTimer(wait)
	defer timeout.Stop()
	id := r.PathValue("id")
	for {
		// Taken before the read: a change after it closes the channel.
		changed := eng.Changed(id)
		ex, err := eng.Get(r.Context(), id)
		if err != nil {
			writeError(w, runbookError(err))
			return
		}
		body, etag := encodeTagged(ex)
		w.Header().Set("ETag", etag)
		if wait == 0 || changed == nil || !etagMatch(r.Header.Get("If-None-Match"), etag) {
			w.Header().Set("Content-Type", "application/json")
			w.Write(body)
			return
		}
		select {
		case <-changed:
		case <-timeout.C:
			w.WriteHeader(http.StatusNotModified)
			return
		case <-r.Context().Done():
			return
		case <-h.closing:
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
}

// waitParam reads ?wait=: empty is no wait.
func waitParam(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 || d > maxExecutionWait {
		return 0, fmt.Errorf("%w: wait=%q: give a duration from 0s to %s", errInvalid, s, maxExecutionWait)
	}
	return d, nil
}

// encodeTagged encodes v as writeJSON does, with an ETag of the bytes.
func encodeTagged(v any) ([]byte, string) {
	b, _ := json.MarshalIndent(v, "", "  ")
	b = append(b, '\n')
	sum := sha256.Sum256(b)
	return b, `"` + hex.EncodeToString(sum[:12]) + `"`
}

// etagMatch reports whether an If-None-Match header names etag.
func etagMatch(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		if t = strings.TrimSpace(t); t == etag || strings.TrimPrefix(t, "W/") == etag {
			return true
		}
	}
	return false
}

func (h *Handler) cancelExecution(w http.ResponseWriter, r *http.Request) {
	if err := decode(w, r, MaxBody, &noBody{}); err != nil {
		writeError(w, err)
		return
	}
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

func (h *Handler) approveExecution(w http.ResponseWriter, r *http.Request) {
	var req wire.ApproveRequest
	if err := decode(w, r, MaxBody, &req); err != nil {
		writeError(w, err)
		return
	}
	eng, _, err := h.runbooks()
	if err != nil {
		writeError(w, err)
		return
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
	if err := decode(w, r, MaxBody, &noBody{}); err != nil {
		writeError(w, err)
		return
	}
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
	in := h.waitRestartBegun(r.Context(), g, before)
	writeJSON(w, http.StatusAccepted, in)
}

func (h *Handler) groupCapacity(w http.ResponseWriter, r *http.Request) {
	g, err := h.group(r.PathValue("name"))
	if err != nil {
		writeError(w, err)
		return
	}
	s := g.Snapshot()
	c := wire.Capacity{Desired: s.Desired}
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
	if h.deps.Balancer == nil {
		writeError(w, fmt.Errorf("%w: no load balancers configured", errNotFound))
		return
	}
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

// waitRestartBegun waits until the instance has left InService or runs a
// new process, for at most ten seconds, woken by the journal: each step of
// a restart is an event. A pid of 0 is no new process: the old one is
// stopped (and its pid cleared) while the instance is still InService, and
// it leaves InService only when the new one is launched.
func (h *Handler) waitRestartBegun(ctx context.Context, g Group, before store.Instance) store.Instance {
	j, err := h.journal()
	if err != nil {
		in, _ := g.Instance(before.ID)
		return in
	}
	live, unsubscribe := j.Subscribe(64)
	defer unsubscribe()
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	for {
		in, ok := g.Instance(before.ID)
		if !ok || in.State != group.InService || (in.Pid != 0 && in.Pid != before.Pid) {
			return in
		}
		select {
		case _, open := <-live:
			if !open {
				return in // dropped as a slow subscriber
			}
		case <-timeout.C:
			return in
		case <-ctx.Done():
			return in
		case <-h.closing:
			return in
		}
	}
}
