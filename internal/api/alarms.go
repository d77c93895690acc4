package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/autoheal/autoheal/internal/alarm"
	"github.com/autoheal/autoheal/internal/api/wire"
)

func (h *Handler) listAlarms(w http.ResponseWriter, r *http.Request) {
	if h.deps.Alarms == nil {
		writeJSON(w, http.StatusOK, []alarm.Status{})
		return
	}
	writeJSON(w, http.StatusOK, h.deps.Alarms.Statuses())
}

// alertmanager receives Alertmanager's webhook (payload version 4).
// Unknown fields are accepted: Alertmanager adds fields over versions,
// and the payload's version says what it promises.
func (h *Handler) alertmanager(w http.ResponseWriter, r *http.Request) {
	if h.deps.Alertmanager == nil {
		writeError(w, fmt.Errorf("%w: the Alertmanager receiver is not enabled", errNotFound))
		return
	}
	buf := bodies.Get().(*bytes.Buffer)
	defer bodies.Put(buf)
	buf.Reset()
	if err := readBody(w, r, MaxAlertmanagerBody, buf); err != nil {
		writeError(w, err)
		return
	}
	var p alarm.AlertmanagerPayload
	if err := json.Unmarshal(buf.Bytes(), &p); err != nil {
		writeError(w, fmt.Errorf("%w: body: %v", errInvalid, err))
		return
	}
	n, err := h.deps.Alertmanager(r.Context(), p)
	if err != nil {
		writeError(w, fmt.Errorf("%w: %v", errInvalid, err))
		return
	}
	writeJSON(w, http.StatusOK, wire.AlertmanagerResponse{Accepted: n})
}
