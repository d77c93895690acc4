package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"
)

// app is the HTTP side of the pet.
type app struct {
	store   *store
	id      string // AUTOHEAL_INSTANCE_ID
	started time.Time

	hung     chan struct{} // closed by POST /hang
	hangOnce sync.Once
	stopping chan struct{} // closed on SIGTERM/SIGINT: releases hung requests
}

func newApp(s *store, id string, started time.Time) *app {
	return &app{store: s, id: id, started: started, hung: make(chan struct{}), stopping: make(chan struct{})}
}

func (a *app) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /{$}", a.info)
	mux.HandleFunc("POST /incr", a.incr)
	mux.HandleFunc("POST /write", a.write)
	mux.HandleFunc("GET /writes", a.writes)
	mux.HandleFunc("GET /verify", a.verify)
	mux.HandleFunc("POST /hang", a.hang)
	mux.HandleFunc("POST /crash", a.crash)
	serviceRoutes(mux)
	h := serving(mux)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-a.hung:
			a.block(r)
		default:
		}
		h.ServeHTTP(w, r)
	})
}

// block is what every request does once the pet is hung: nothing. The
// connection stays open and unanswered, as with a deadlocked app, so an HTTP
// health check times out while a TCP one still connects. It returns only
// (without answering) when the client gives up, so probes do not pile up
// goroutines, or when the pet shuts down, so SIGTERM need not wait for it.
func (a *app) block(r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-a.stopping:
	}
	panic(http.ErrAbortHandler) // drop the connection with no response, silently
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, map[string]string{"error": err.Error()})
}

// hostPid is the pid the host sees: autoheal runs each instance in a PID
// namespace of its own, where getpid() is the namespace's number, while
// /proc (the host's) and autoheal's API show the host's. Outside a
// namespace the two are the same.
func hostPid() int {
	if s, err := os.Readlink("/proc/self"); err == nil {
		if pid, err := strconv.Atoi(s); err == nil {
			return pid
		}
	}
	return os.Getpid()
}

func (a *app) info(w http.ResponseWriter, r *http.Request) {
	counter, lines, _ := a.store.snapshot()
	writeJSON(w, http.StatusOK, struct {
		Instance string `json:"instance"`
		Counter  int64  `json:"counter"`
		Writes   int64  `json:"writes"`
		Started  string `json:"started"`
		Pid      int    `json:"pid"`
		Greeting string `json:"greeting,omitempty"` // a group parameter, to show they reach the app
	}{a.id, counter, lines, a.started.UTC().Format(time.RFC3339Nano), hostPid(), os.Getenv("PET_GREETING")})
}

func (a *app) incr(w http.ResponseWriter, r *http.Request) {
	n, err := a.store.incr()
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Counter  int64  `json:"counter"`
		Instance string `json:"instance"` // which instance took it, for a client behind a moving address
	}{n, a.id})
}

func (a *app) write(w http.ResponseWriter, r *http.Request) {
	payload, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxPayload))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Errorf("payload larger than %d bytes", maxPayload))
		return
	case err != nil:
		writeError(w, http.StatusBadRequest, fmt.Errorf("read body: %w", err))
		return
	}
	for _, c := range payload {
		if c == '\n' {
			writeError(w, http.StatusBadRequest, errors.New("payload must not contain a newline (one write is one log line)"))
			return
		}
	}
	seq, err := a.store.appendLine(payload)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]int64{"seq": seq})
}

// writes streams the log lines after line ?after=N (default 0), at most
// ?limit=M of them (default all), as a JSON array of strings. Payload bytes
// that are not UTF-8 come out as U+FFFD.
func (a *app) writes(w http.ResponseWriter, r *http.Request) {
	after, err := intParam(r, "after", 0)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	limit, err := intParam(r, "limit", -1)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	_, _, size := a.store.snapshot()
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, "[")
	sent := int64(0)
	stop := errors.New("limit reached")
	err = a.store.eachLine(size, func(n int64, line []byte) error {
		if n <= after {
			return nil
		}
		if limit >= 0 && sent >= limit {
			return stop
		}
		if sent > 0 {
			io.WriteString(w, ",")
		}
		sent++
		b, _ := json.Marshal(string(line)) // a string always marshals
		_, err := w.Write(b)
		return err
	})
	if err != nil && err != stop {
		// The 200 and part of the array are already sent: break the
		// connection so the client cannot take a cut-off list for a whole one.
		fmt.Fprintf(os.Stderr, "pet: GET /writes: %v\n", err)
		panic(http.ErrAbortHandler)
	}
	io.WriteString(w, "]\n")
}

func intParam(r *http.Request, name string, def int64) (int64, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%s=%q: want a non-negative integer", name, v)
	}
	return n, nil
}

func (a *app) verify(w http.ResponseWriter, r *http.Request) {
	lines, err := a.store.verify()
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, struct {
			OK    bool   `json:"ok"`
			Error string `json:"error"`
		}{false, err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, struct {
		OK    bool  `json:"ok"`
		Lines int64 `json:"lines"`
	}{true, lines})
}

// hang makes every request that arrives after it block (see block). The
// pet is marked hung before the 202 goes out, so a client that has seen the
// 202 cannot get an answer to anything else. Requests already in flight
// finish normally.
func (a *app) hang(w http.ResponseWriter, r *http.Request) {
	a.hangOnce.Do(func() {
		close(a.hung)
		fmt.Println("pet: hung on request: no request will be answered any more")
	})
	writeJSON(w, http.StatusAccepted, map[string]bool{"hung": true})
}

// crash answers, then exits with code 3 at once, like a process that dies.
// Nothing is lost: every acknowledged write is already on disk.
func (a *app) crash(w http.ResponseWriter, r *http.Request) {
	// Read the body so the kernel does not reset the connection (and with it
	// the unread answer) when the process exits with unread input.
	io.Copy(io.Discard, io.LimitReader(r.Body, maxPayload))
	body := []byte(`{"crashing":true,"exit_code":3}` + "\n")
	w.Header().Set("Content-Type", "application/json")
	// With a Content-Length, Flush puts the whole answer on the wire; a
	// chunked one would miss its terminator and look cut off.
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Header().Set("Connection", "close")
	w.Write(body)
	if err := http.NewResponseController(w).Flush(); err != nil {
		fmt.Fprintf(os.Stderr, "pet: POST /crash: flush: %v\n", err)
	}
	fmt.Println("pet: crashing on request (exit 3)")
	os.Exit(3)
}
