package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/autoheal/autoheal/internal/api/wire"
	"github.com/autoheal/autoheal/internal/awsid"
	"github.com/autoheal/autoheal/internal/group"
	"github.com/autoheal/autoheal/internal/nonce"
	"github.com/autoheal/autoheal/internal/store"
	"github.com/autoheal/autoheal/internal/web"
)

// Handler is the API's http.Handler.
type Handler struct {
	deps   Deps
	mux    *http.ServeMux
	groups map[string]Group
	// closing ends live streams (events and logs --follow) on shutdown.
	closing chan struct{}
	once    sync.Once
	started time.Time
	tokens  []authToken
	hosts   map[string]bool
	// patterns are the API's routes, as registered.
	patterns []string
	// nonces are the forwarded claims accepted (forward.go).
	nonces nonce.Set
}

// route registers one of the API's routes.
func (h *Handler) route(pattern string, fn http.HandlerFunc) {
	h.patterns = append(h.patterns, pattern)
	h.mux.HandleFunc(pattern, fn)
}

// Patterns lists the API's routes ("POST /v1/groups/{name}/scale"), so
// that a test can go through every one.
func (h *Handler) Patterns() []string { return append([]string(nil), h.patterns...) }

// New builds the handler.
func New(deps Deps) *Handler {
	if deps.Logger == nil {
		deps.Logger = slog.Default()
	}
	h := &Handler{deps: deps, mux: http.NewServeMux(), groups: map[string]Group{}, closing: make(chan struct{}), started: time.Now(),
		tokens: newTokens(deps.Tokens), hosts: hostSet(deps.Hosts)}
	for _, g := range deps.Groups {
		h.groups[g.Name()] = g
	}
	h.route("GET /v1/version", h.version)
	h.route("GET /v1/status", h.status)
	h.route("GET /v1/groups", h.listGroups)
	h.route("GET /v1/groups/{name}", h.getGroup)
	h.route("POST /v1/groups/{name}/scale", h.scale)
	h.route("GET /v1/instances", h.listInstances)
	h.route("GET /v1/instances/{id}", h.getInstance)
	h.route("POST /v1/instances/{id}/terminate", h.terminate)
	h.route("GET /v1/instances/{id}/metadata", h.metadata)
	h.route("GET /v1/events", h.events)
	h.route("GET /v1/logs", h.logs)
	h.route("POST /v1/instances/{id}/restart", h.restartInstance)
	h.route("GET /v1/groups/{name}/capacity", h.groupCapacity)
	h.route("GET /v1/documents", h.listDocuments)
	h.route("GET /v1/documents/{name}", h.getDocument)
	h.route("POST /v1/executions", h.startExecution)
	h.route("GET /v1/executions", h.listExecutions)
	h.route("GET /v1/executions/{id}", h.getExecution)
	h.route("POST /v1/executions/{id}/cancel", h.cancelExecution)
	h.route("POST /v1/executions/{id}/approve", h.approveExecution)
	h.route("POST /v1/session", h.session)
	h.route("DELETE /v1/session", h.session)
	h.route("GET /v1/alarms", h.listAlarms)
	h.route("POST /v1/alertmanager", h.alertmanager)
	h.route("GET /v1/incidents", h.listIncidents)
	h.route("GET /v1/incidents/{id}", h.getIncident)
	h.route("GET /v1/target-groups/resolve", h.resolveTargetGroup)
	h.route("GET /v1/target-groups", h.listTargetGroups)
	h.route("GET /v1/target-groups/{name}/health", h.targetHealth)
	h.route("POST /v1/target-groups/{name}/register", h.registerTarget)
	h.route("POST /v1/target-groups/{name}/deregister", h.deregisterTarget)
	h.route("GET /v1/windows", h.listWindows)
	h.route("GET /v1/windows/{name}/next", h.nextWindows)
	h.route("POST /v1/windows/{name}/run", h.runWindow)
	h.route("POST /v1/metrics", h.putMetricData)
	h.route("GET /v1/metrics", h.listMetrics)
	h.route("GET /v1/metrics/statistics", h.metricStatistics)
	h.route("POST /v1/admin/plan", h.plan)
	h.route("POST /v1/groups/{name}/refresh", h.startRefresh)
	h.route("GET /v1/groups/{name}/refresh", h.getRefresh)
	h.route("POST /v1/groups/{name}/refresh/cancel", h.cancelRefresh)
	// Prometheus text exposition, outside /v1/ where scrapers look for it.
	h.patterns = append(h.patterns, "GET /metrics")
	h.mux.Handle("GET /metrics", h.prometheusHandler())
	h.mux.Handle("GET /ui/", web.Handler())
	if deps.Debug != nil {
		h.mux.Handle("/debug/", deps.Debug)
	}
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, fmt.Errorf("%w: no route %s %s", errNotFound, r.Method, r.URL.Path))
	})
	return h
}

// Close ends live streams so that the server can shut down.
func (h *Handler) Close() { h.once.Do(func() { close(h.closing) }) }

// Error kinds, mapped to HTTP status codes by writeError.
var (
	errNotFound = errors.New("not found")
	errInvalid  = errors.New("invalid request")
	// errUnauthorized: no credential, or one that is not known.
	errUnauthorized = errors.New("unauthorized")
	// errForbidden: a known credential that may not make the request, or
	// a request from another origin.
	errForbidden = errors.New("forbidden")
	// errTooLarge: a body over its endpoint's limit.
	errTooLarge = errors.New("request body too large")
	// errMediaType: a body that is not declared JSON.
	errMediaType = errors.New("unsupported media type")
	// errMisdirected: a Host that is not one of this API's names.
	errMisdirected = errors.New("misdirected request")
	// errUnavailable: a cluster follower that cannot reach its leader.
	errUnavailable = errors.New("unavailable")
)

// writeError maps an error kind to a status code: the only place that does.
func writeError(w http.ResponseWriter, err error) { writeErrorBody(w, err, nil) }

// writeErrorBody is writeError with a chance to add to the body.
func writeErrorBody(w http.ResponseWriter, err error, edit func(*wire.Error)) {
	status, code := http.StatusInternalServerError, "internal"
	switch {
	case errors.Is(err, errNotFound), errors.Is(err, group.ErrNotFound), errors.Is(err, store.ErrNotFound):
		status, code = http.StatusNotFound, "not_found"
	case errors.Is(err, errInvalid), errors.Is(err, group.ErrInvalid):
		status, code = http.StatusBadRequest, "invalid"
	case errors.Is(err, store.ErrConflict):
		status, code = http.StatusConflict, "conflict"
	case errors.Is(err, context.Canceled):
		status, code = http.StatusServiceUnavailable, "unavailable"
	case errors.Is(err, store.ErrNotWritable):
		// Nothing was done: try again once the state dir takes writes.
		status, code = http.StatusServiceUnavailable, "state_dir_not_writable"
	case errors.Is(err, errUnauthorized):
		status, code = http.StatusUnauthorized, "unauthorized"
		w.Header().Set("WWW-Authenticate", `Bearer realm="autoheal"`)
	case errors.Is(err, errForbidden):
		status, code = http.StatusForbidden, "forbidden"
	case errors.Is(err, errTooLarge):
		status, code = http.StatusRequestEntityTooLarge, "too_large"
	case errors.Is(err, errMediaType):
		status, code = http.StatusUnsupportedMediaType, "unsupported_media_type"
	case errors.Is(err, errMisdirected):
		status, code = http.StatusMisdirectedRequest, "misdirected"
	case errors.Is(err, errUnavailable):
		status, code = http.StatusServiceUnavailable, "unavailable"
	}
	e := wire.Error{Error: err.Error(), Code: code}
	if edit != nil {
		edit(&e)
	}
	writeJSON(w, status, e)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func (h *Handler) version(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, wire.Version{Version: h.deps.Version, Started: h.started})
}

// statusBody is the body of GET /v1/status (wire.Status).
type statusBody struct {
	Groups    []group.Snapshot       `json:"groups"`
	Instances []store.Instance       `json:"instances"`
	State     *wire.StateDir         `json:"state,omitempty"`
	AWSIDs    map[string]wire.AWSIDs `json:"aws_ids,omitempty"`
}

// awsIDs are each group's AWS-shaped ids (docs/design.md §14).
func awsIDs(groups []group.Snapshot, cfgOf func(string) Group) map[string]wire.AWSIDs {
	out := map[string]wire.AWSIDs{}
	for _, s := range groups {
		ids := wire.AWSIDs{ARN: awsid.GroupARN(s.Name), Volumes: map[string]string{}, Addresses: map[string]string{}}
		if g := cfgOf(s.Name); g != nil {
			for _, v := range g.Config().Volumes {
				ids.Volumes[v.Name] = awsid.Volume(s.Name, v.Name)
			}
			for _, a := range g.Config().Addresses {
				ids.Addresses[a.Name] = awsid.Allocation(s.Name, a.Name)
			}
		}
		out[s.Name] = ids
	}
	return out
}

// stateDir is the state dir's health as status reports it; nil without a
// StateDir.
func (h *Handler) stateDir() *wire.StateDir {
	if h.deps.StateDir == nil {
		return nil
	}
	hl := h.deps.StateDir.Health()
	s := &wire.StateDir{Dir: h.deps.StateDir.Dir(), Writable: hl.Writable}
	if !hl.Writable {
		s.Error = store.Reason(hl.Err)
	}
	if !hl.Since.IsZero() {
		s.Since = &hl.Since
	}
	return s
}

func (h *Handler) snapshots() []group.Snapshot {
	out := make([]group.Snapshot, 0, len(h.deps.Groups))
	for _, g := range h.deps.Groups {
		out = append(out, g.Snapshot())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (h *Handler) instances(all bool) []store.Instance {
	out := []store.Instance{}
	for _, s := range h.snapshots() {
		for _, in := range s.Instances {
			if all || in.State != group.Terminated {
				out = append(out, in)
			}
		}
	}
	return out
}

func boolParam(r *http.Request, name string) bool {
	v, _ := strconv.ParseBool(r.URL.Query().Get(name))
	return v
}

func (h *Handler) status(w http.ResponseWriter, r *http.Request) {
	all := boolParam(r, "all")
	snaps := h.snapshots()
	if !all {
		for i := range snaps {
			live := []store.Instance{}
			for _, in := range snaps[i].Instances {
				if in.State != group.Terminated {
					live = append(live, in)
				}
			}
			snaps[i].Instances = live
		}
	}
	writeJSON(w, http.StatusOK, statusBody{Groups: snaps, Instances: h.instances(all), State: h.stateDir(),
		AWSIDs: awsIDs(snaps, func(name string) Group { return h.groups[name] })})
}

// journal returns the store, or an error answered 404 when the handler
// has none (tests of other parts).
func (h *Handler) journal() (Journal, error) {
	if h.deps.Journal == nil {
		return nil, fmt.Errorf("%w: no journal", errNotFound)
	}
	return h.deps.Journal, nil
}

func (h *Handler) listGroups(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, h.snapshots())
}

func (h *Handler) group(name string) (Group, error) {
	g, ok := h.groups[name]
	if !ok {
		return nil, fmt.Errorf("group %q: %w", name, errNotFound)
	}
	return g, nil
}

func (h *Handler) getGroup(w http.ResponseWriter, r *http.Request) {
	g, err := h.group(r.PathValue("name"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, g.Snapshot())
}

func (h *Handler) scale(w http.ResponseWriter, r *http.Request) {
	var req wire.ScaleRequest
	if err := decode(w, r, MaxBody, &req); err != nil {
		writeError(w, err)
		return
	}
	if req.Min == nil && req.Max == nil && req.Desired == nil {
		writeError(w, fmt.Errorf("%w: give at least one of min, max, desired", errInvalid))
		return
	}
	g, err := h.group(r.PathValue("name"))
	if err != nil {
		writeError(w, err)
		return
	}
	snap, err := g.Scale(r.Context(), req.Min, req.Max, req.Desired)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, snap)
}

func (h *Handler) listInstances(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, h.instances(boolParam(r, "all")))
}

func (h *Handler) findInstance(id string) (Group, store.Instance, error) {
	for _, g := range h.deps.Groups {
		if in, ok := g.Instance(id); ok {
			return g, in, nil
		}
	}
	return nil, store.Instance{}, fmt.Errorf("instance %q: %w", id, errNotFound)
}

func (h *Handler) getInstance(w http.ResponseWriter, r *http.Request) {
	_, in, err := h.findInstance(r.PathValue("id"))
	if err != nil {
		// Terminated instances pruned from memory are still in the store.
		if j, jerr := h.journal(); jerr == nil {
			if rec, serr := j.Instance(r.Context(), r.PathValue("id")); serr == nil {
				writeJSON(w, http.StatusOK, rec)
				return
			}
		}
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, in)
}

func (h *Handler) terminate(w http.ResponseWriter, r *http.Request) {
	var req wire.TerminateRequest
	if err := decode(w, r, MaxBody, &req); err != nil {
		writeError(w, err)
		return
	}
	g, _, err := h.findInstance(r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	if err := g.Terminate(r.Context(), r.PathValue("id"), req.Decrement); err != nil {
		writeError(w, err)
		return
	}
	in, _ := g.Instance(r.PathValue("id"))
	writeJSON(w, http.StatusAccepted, in)
}

func (h *Handler) metadata(w http.ResponseWriter, r *http.Request) {
	g, in, err := h.findInstance(r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	cfg := g.Config()
	md := wire.Metadata{
		InstanceID: in.ID, Group: in.Group, State: in.State, Ports: in.Ports,
		Addresses: map[string]string{}, Volumes: map[string]string{},
		Parameters: g.Parameters(), Tags: cfg.Tags,
	}
	for _, a := range cfg.ListenAddresses() {
		md.Addresses[a.Name] = a.Listen
	}
	for _, v := range cfg.Volumes {
		md.Volumes[v.Name] = v.MountPath
	}
	writeJSON(w, http.StatusOK, md)
}
