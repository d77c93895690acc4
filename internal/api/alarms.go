package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/autoheal/autoheal/internal/alarm"
)

func (h *Handler) listAlarms(w http.ResponseWriter, r *http.Request) {
	if h.deps.Alarms == nil {
		writeJSON(w, http.StatusOK, []alarm.Status{})
		return
	}
	writeJSON(w, http.StatusOK, h.deps.Alarms.Statuses())
}

// AlertmanagerResponse is the answer to a webhook delivery.
type AlertmanagerResponse struct {
	Accepted int `json:"accepted"`
}

// alertmanager receives Alertmanager's webhook (payload version 4).
func (h *Handler) alertmanager(w http.ResponseWriter, r *http.Request) {
	if h.deps.Alertmanager == nil {
		writeError(w, fmt.Errorf("%w: the Alertmanager receiver is not enabled", errNotFound))
		return
	}
	var p alarm.AlertmanagerPayload
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<20))
	if err := dec.Decode(&p); err != nil {
		writeError(w, fmt.Errorf("%w: body: %v", errInvalid, err))
		return
	}
	n, err := h.deps.Alertmanager(r.Context(), p)
	if err != nil {
		writeError(w, fmt.Errorf("%w: %v", errInvalid, err))
		return
	}
	writeJSON(w, http.StatusOK, AlertmanagerResponse{Accepted: n})
}

// Alarms lists every alarm state.
func (c *Client) Alarms(ctx context.Context) ([]alarm.Status, error) {
	var out []alarm.Status
	return out, c.do(ctx, http.MethodGet, "/v1/alarms", nil, &out)
}
