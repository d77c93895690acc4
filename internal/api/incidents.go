package api

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/autoheal/autoheal/internal/remediation"
)

func (h *Handler) incidents() (Incidents, error) {
	if h.deps.Incidents == nil {
		return nil, fmt.Errorf("%w: incidents are not enabled in this controller", errNotFound)
	}
	return h.deps.Incidents, nil
}

func (h *Handler) listIncidents(w http.ResponseWriter, r *http.Request) {
	m, err := h.incidents()
	if err != nil {
		writeError(w, err)
		return
	}
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	list, err := m.List(r.Context(), limit)
	if err != nil {
		writeError(w, err)
		return
	}
	if list == nil {
		list = []remediation.Incident{}
	}
	writeJSON(w, http.StatusOK, list)
}

func (h *Handler) getIncident(w http.ResponseWriter, r *http.Request) {
	m, err := h.incidents()
	if err != nil {
		writeError(w, err)
		return
	}
	inc, err := m.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		if errors.Is(err, remediation.ErrNotFound) {
			err = kindError{errNotFound, err}
		}
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, inc)
}
