package api

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/autoheal/autoheal/internal/store"
)

// maxEvents bounds one events response.
const maxEvents = 10000

// logPoll is how often a followed log is read for what was appended.
const logPoll = 200 * time.Millisecond

// eventsFilter reads a GET /v1/events query.
func eventsFilter(r *http.Request) (store.EventFilter, error) {
	q := r.URL.Query()
	f := store.EventFilter{Group: q.Get("group"), Instance: q.Get("instance"), Limit: 100, Tail: true}
	if v := q.Get("after"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return f, fmt.Errorf("%w: after=%q is not a sequence number", errInvalid, v)
		}
		f.AfterSeq, f.Tail = n, false
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return f, fmt.Errorf("%w: limit=%q is not a count", errInvalid, v)
		}
		f.Limit = min(n, maxEvents)
	}
	return f, nil
}

func (h *Handler) events(w http.ResponseWriter, r *http.Request) {
	f, err := eventsFilter(r)
	if err != nil {
		writeError(w, err)
		return
	}
	if _, err := h.journal(); err != nil {
		writeError(w, err)
		return
	}
	if boolParam(r, "follow") {
		h.followEvents(w, r, f)
		return
	}
	evs, err := h.deps.Journal.Events(r.Context(), f)
	if err != nil {
		writeError(w, err)
		return
	}
	if evs == nil {
		evs = []store.Event{}
	}
	writeJSON(w, http.StatusOK, evs)
}

// followEvents streams the journal as server-sent events. It subscribes
// before reading the backlog so that nothing falls between the two;
// duplicates are skipped by Seq.
func (h *Handler) followEvents(w http.ResponseWriter, r *http.Request, f store.EventFilter) {
	live, unsubscribe := h.deps.Journal.Subscribe(1024)
	defer unsubscribe()
	backlog, err := h.deps.Journal.Events(r.Context(), f)
	if err != nil {
		writeError(w, err)
		return
	}
	flusher, _ := w.(http.Flusher)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	var last int64
	send := func(ev store.Event) bool {
		if ev.Seq <= last || !matches(f, ev) {
			return true
		}
		last = ev.Seq
		b, _ := json.Marshal(ev)
		_, err := fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", ev.Seq, ev.Type, b)
		return err == nil
	}
	for _, ev := range backlog {
		send(ev)
	}
	keepalive := time.NewTicker(15 * time.Second)
	defer keepalive.Stop()
	for {
		if flusher != nil {
			flusher.Flush()
		}
		select {
		case ev, ok := <-live:
			if !ok {
				// Dropped as a slow subscriber: say so, the client reconnects.
				fmt.Fprintf(w, "event: dropped\ndata: {}\n\n")
				return
			}
			if !send(ev) {
				return
			}
		case <-keepalive.C:
			if _, err := io.WriteString(w, ": keepalive\n\n"); err != nil {
				return
			}
		case <-r.Context().Done():
			return
		case <-h.closing:
			return
		}
	}
}

func matches(f store.EventFilter, ev store.Event) bool {
	return (f.Group == "" || f.Group == ev.Group) && (f.Instance == "" || f.Instance == ev.Instance)
}

// logsQuery is a GET /v1/logs query.
type logsQuery struct {
	instance, group string
	stdout, stderr  bool
	tail            int
	follow          bool
}

func parseLogsQuery(r *http.Request) (logsQuery, error) {
	v := r.URL.Query()
	q := logsQuery{instance: v.Get("instance"), group: v.Get("group"), tail: 100, follow: boolParam(r, "follow")}
	switch v.Get("stream") {
	case "", "both":
		q.stdout, q.stderr = true, true
	case "stdout":
		q.stdout = true
	case "stderr":
		q.stderr = true
	default:
		return q, fmt.Errorf("%w: stream must be stdout, stderr or both", errInvalid)
	}
	if s := v.Get("tail"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return q, fmt.Errorf("%w: tail=%q is not a count", errInvalid, s)
		}
		q.tail = n
	}
	if q.instance == "" && q.group == "" {
		return q, fmt.Errorf("%w: give instance or group", errInvalid)
	}
	return q, nil
}

// logSource is one followed log file and the prefix of its lines.
type logSource struct {
	prefix string
	fw     *follower
}

// logSet is the logs of a request: one instance's, or a group's, which
// gains the logs of instances launched while it is followed.
type logSet struct {
	h     *Handler
	q     logsQuery
	known map[string]bool
	srcs  []logSource
}

// add opens the logs of instances not yet known; fromStart follows a new
// instance's files from their beginning.
func (s *logSet) add(ids []string, fromStart bool) {
	for _, id := range ids {
		if s.known[id] {
			continue
		}
		s.known[id] = true
		prefix := ""
		if s.q.group != "" {
			prefix = id + " "
		}
		out, errp := s.h.deps.LogFiles(id)
		for _, p := range []struct {
			path string
			want bool
		}{{out, s.q.stdout}, {errp, s.q.stderr}} {
			if !p.want {
				continue
			}
			fw := openFollower(p.path)
			if fromStart && fw.f != nil {
				fw.f.Seek(0, io.SeekStart)
			}
			s.srcs = append(s.srcs, logSource{prefix: prefix, fw: fw})
		}
	}
}

func (s *logSet) close() {
	for _, src := range s.srcs {
		src.fw.Close()
	}
}

// ids returns the instances whose logs the query asks for.
func (h *Handler) logIDs(r *http.Request, q logsQuery) ([]string, error) {
	if q.instance != "" {
		if _, err := h.deps.Journal.Instance(r.Context(), q.instance); err != nil {
			return nil, fmt.Errorf("instance %q: %w", q.instance, errNotFound)
		}
		return []string{q.instance}, nil
	}
	if _, err := h.group(q.group); err != nil {
		return nil, err
	}
	recs, err := h.deps.Journal.Instances(r.Context(), q.group, true)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(recs))
	for i, rec := range recs {
		ids[i] = rec.ID
	}
	return ids, nil
}

func (h *Handler) logs(w http.ResponseWriter, r *http.Request) {
	q, err := parseLogsQuery(r)
	if err != nil {
		writeError(w, err)
		return
	}
	if _, err := h.journal(); err != nil {
		writeError(w, err)
		return
	}
	ids, err := h.logIDs(r, q)
	if err != nil {
		writeError(w, err)
		return
	}
	set := &logSet{h: h, q: q, known: map[string]bool{}}
	defer set.close()
	set.add(ids, false)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	for _, src := range set.srcs {
		if err := src.fw.tail(q.tail, lineWriter(w, src.prefix)); err != nil {
			return
		}
	}
	if q.follow {
		h.followLogs(w, r, set)
	}
}

// followLogs writes what the logs gain until the client leaves or the
// controller stops; a group's new instances are picked up.
func (h *Handler) followLogs(w http.ResponseWriter, r *http.Request, set *logSet) {
	flusher, _ := w.(http.Flusher)
	tick := time.NewTicker(logPoll)
	defer tick.Stop()
	for {
		if flusher != nil {
			flusher.Flush()
		}
		select {
		case <-r.Context().Done():
			return
		case <-h.closing:
			return
		case <-tick.C:
		}
		if set.q.group != "" {
			if ids, err := h.logIDs(r, set.q); err == nil {
				set.add(ids, true)
			}
		}
		for _, src := range set.srcs {
			if err := src.fw.poll(lineWriter(w, src.prefix)); err != nil {
				return
			}
		}
	}
}

// lineWriter writes one log line with its prefix.
func lineWriter(w io.Writer, prefix string) func([]byte) error {
	return func(line []byte) error {
		_, err := fmt.Fprintf(w, "%s%s\n", prefix, line)
		return err
	}
}
