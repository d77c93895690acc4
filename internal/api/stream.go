package api

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/autoheal/autoheal/internal/store"
)

// maxEvents bounds one events response.
const maxEvents = 10000

func (h *Handler) events(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := store.EventFilter{Group: q.Get("group"), Instance: q.Get("instance"), Limit: 100, Tail: true}
	if v := q.Get("after"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			writeError(w, fmt.Errorf("%w: after=%q is not a sequence number", errInvalid, v))
			return
		}
		f.AfterSeq, f.Tail = n, false
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			writeError(w, fmt.Errorf("%w: limit=%q is not a count", errInvalid, v))
			return
		}
		f.Limit = min(n, maxEvents)
	}
	if !boolParam(r, "follow") {
		evs, err := h.deps.Store.Events(r.Context(), f)
		if err != nil {
			writeError(w, err)
			return
		}
		if evs == nil {
			evs = []store.Event{}
		}
		writeJSON(w, http.StatusOK, evs)
		return
	}
	// Follow: server-sent events. Subscribe before reading the backlog so
	// nothing falls between the two; duplicates are skipped by Seq.
	live, unsubscribe := h.deps.Store.Subscribe(1024)
	defer unsubscribe()
	backlog, err := h.deps.Store.Events(r.Context(), f)
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
	if flusher != nil {
		flusher.Flush()
	}
	keepalive := time.NewTicker(15 * time.Second)
	defer keepalive.Stop()
	for {
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
		if flusher != nil {
			flusher.Flush()
		}
	}
}

func matches(f store.EventFilter, ev store.Event) bool {
	return (f.Group == "" || f.Group == ev.Group) && (f.Instance == "" || f.Instance == ev.Instance)
}

// logSource is one log file to serve, with the prefix its lines get.
type logSource struct {
	prefix string
	path   string
}

func (h *Handler) logs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	inst, grp := q.Get("instance"), q.Get("group")
	stream := q.Get("stream")
	if stream == "" {
		stream = "both"
	}
	if stream != "both" && stream != "stdout" && stream != "stderr" {
		writeError(w, fmt.Errorf("%w: stream must be stdout, stderr or both", errInvalid))
		return
	}
	tail := 100
	if v := q.Get("tail"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			writeError(w, fmt.Errorf("%w: tail=%q is not a count", errInvalid, v))
			return
		}
		tail = n
	}
	var ids []string
	switch {
	case inst != "":
		if _, err := h.deps.Store.Instance(r.Context(), inst); err != nil {
			writeError(w, fmt.Errorf("instance %q: %w", inst, errNotFound))
			return
		}
		ids = []string{inst}
	case grp != "":
		if _, err := h.group(grp); err != nil {
			writeError(w, err)
			return
		}
		recs, err := h.deps.Store.Instances(r.Context(), grp, true)
		if err != nil {
			writeError(w, err)
			return
		}
		for _, rec := range recs {
			ids = append(ids, rec.ID)
		}
	default:
		writeError(w, fmt.Errorf("%w: give instance or group", errInvalid))
		return
	}
	var srcs []logSource
	for _, id := range ids {
		out, errp := h.deps.LogFiles(id)
		prefix := ""
		if len(ids) > 1 || grp != "" {
			prefix = id + " "
		}
		if stream != "stderr" {
			srcs = append(srcs, logSource{prefix, out})
		}
		if stream != "stdout" {
			srcs = append(srcs, logSource{prefix, errp})
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	offsets := make([]int64, len(srcs))
	for i, s := range srcs {
		offsets[i] = writeTail(w, s, tail)
	}
	if !boolParam(r, "follow") {
		return
	}
	flusher, _ := w.(http.Flusher)
	if flusher != nil {
		flusher.Flush()
	}
	// Follow like tail -F: poll sizes; a file that shrank was rotated, so read
	// the new one from its start. New instances of a group are picked up.
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-h.closing:
			return
		case <-tick.C:
		}
		if grp != "" {
			recs, err := h.deps.Store.Instances(r.Context(), grp, true)
			if err == nil && len(recs) > len(ids) {
				known := map[string]bool{}
				for _, id := range ids {
					known[id] = true
				}
				for _, rec := range recs {
					if known[rec.ID] {
						continue
					}
					ids = append(ids, rec.ID)
					out, errp := h.deps.LogFiles(rec.ID)
					if stream != "stderr" {
						srcs, offsets = append(srcs, logSource{rec.ID + " ", out}), append(offsets, 0)
					}
					if stream != "stdout" {
						srcs, offsets = append(srcs, logSource{rec.ID + " ", errp}), append(offsets, 0)
					}
				}
			}
		}
		wrote := false
		for i, s := range srcs {
			fi, err := os.Stat(s.path)
			if err != nil {
				continue
			}
			if fi.Size() < offsets[i] {
				offsets[i] = 0
			}
			if fi.Size() == offsets[i] {
				continue
			}
			n, err := copyLines(w, s, offsets[i], fi.Size())
			offsets[i] += n
			wrote = wrote || n > 0
			if err != nil {
				return
			}
		}
		if wrote && flusher != nil {
			flusher.Flush()
		}
	}
}

// writeTail writes the last n lines of a log file and returns the offset
// where following should continue.
func writeTail(w io.Writer, s logSource, n int) int64 {
	f, err := os.Open(s.path)
	if err != nil {
		return 0
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0
	}
	size := fi.Size()
	// Read at most the last 1 MiB: a tail, not a dump.
	start := max(size-1<<20, 0)
	buf := make([]byte, size-start)
	if _, err := f.ReadAt(buf, start); err != nil && err != io.EOF {
		return size
	}
	lines := bytes.SplitAfter(buf, []byte("\n"))
	if len(lines) > 0 && len(lines[len(lines)-1]) == 0 {
		lines = lines[:len(lines)-1]
	}
	if n < len(lines) {
		lines = lines[len(lines)-n:]
	}
	for _, l := range lines {
		io.WriteString(w, s.prefix)
		w.Write(l)
		if l[len(l)-1] != '\n' {
			io.WriteString(w, "\n")
		}
	}
	return size
}

// copyLines writes the bytes [from, to) of a log file, prefixing lines.
func copyLines(w io.Writer, s logSource, from, to int64) (int64, error) {
	f, err := os.Open(s.path)
	if err != nil {
		return 0, nil
	}
	defer f.Close()
	sc := bufio.NewScanner(io.NewSectionReader(f, from, to-from))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var n int64
	for sc.Scan() {
		line := sc.Bytes()
		n += int64(len(line)) + 1
		if n > to-from { // last line without newline: wait for the rest
			n -= int64(len(line)) + 1
			break
		}
		if _, err := fmt.Fprintf(w, "%s%s\n", s.prefix, line); err != nil {
			return n, err
		}
	}
	return n, nil
}
