// Command pet is the demo pet for autoheal: a small stateful HTTP app whose
// data (a durable counter and an append-only log of checksummed writes) lives
// in its volume, $AUTOHEAL_VOLUME_DATA. Every write is fsync'd before it is
// acknowledged, so a SIGKILL loses nothing that was answered 200.
//
// It listens on the socket autoheal hands it (LISTEN_FDS, socket mode) or on
// 127.0.0.1:$AUTOHEAL_PORT_HTTP ($PORT, --listen) in proxy mode.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func main() {
	listen := flag.String("listen", "", "listen address (default 127.0.0.1:$AUTOHEAL_PORT_HTTP or $PORT)")
	dataDir := flag.String("data", os.Getenv("AUTOHEAL_VOLUME_DATA"), "data directory (default $AUTOHEAL_VOLUME_DATA)")
	flag.Parse()
	if err := run(*listen, *dataDir); err != nil {
		log.Fatalf("pet: %v", err)
	}
}

func run(listen, dataDir string) error {
	if dataDir == "" {
		return errors.New("no data directory: set AUTOHEAL_VOLUME_DATA or --data")
	}
	p, err := open(dataDir)
	if err != nil {
		return err
	}
	ln, mode, err := listener(listen)
	if err != nil {
		return err
	}
	fmt.Printf("pet %s starting: pid %d, %s on %s, data %s, counter %d, %d writes\n",
		os.Getenv("AUTOHEAL_INSTANCE_ID"), os.Getpid(), mode, ln.Addr(), dataDir, p.counter, p.writes)
	srv := &http.Server{Handler: p.routes(), ReadHeaderTimeout: 5 * time.Second}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		s := <-stop
		fmt.Printf("pet: %s: shutting down\n", s)
		if p.hung.Load() {
			os.Exit(0) // hung requests will never finish: do not wait for them
		}
		// Data is fsync'd per request, so there is nothing to flush; give
		// in-flight requests a second, but never wait for hung ones.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		os.Exit(0)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	select {} // Shutdown exits the process
}

// listener uses the socket passed by autoheal (systemd convention) when it is
// meant for this process, else listens on the instance port.
func listener(listen string) (net.Listener, string, error) {
	if os.Getenv("LISTEN_PID") == strconv.Itoa(os.Getpid()) && os.Getenv("LISTEN_FDS") != "" {
		n, _ := strconv.Atoi(os.Getenv("LISTEN_FDS"))
		if n < 1 {
			return nil, "", fmt.Errorf("LISTEN_FDS=%q: no socket", os.Getenv("LISTEN_FDS"))
		}
		f := os.NewFile(3, "listen-fd-3")
		ln, err := net.FileListener(f)
		f.Close()
		if err != nil {
			return nil, "", fmt.Errorf("socket from fd 3: %w", err)
		}
		return ln, "socket", nil
	}
	if listen == "" {
		port := os.Getenv("AUTOHEAL_PORT_HTTP")
		if port == "" {
			port = os.Getenv("PORT")
		}
		if port == "" {
			return nil, "", errors.New("no listen address: set AUTOHEAL_PORT_HTTP, PORT or --listen")
		}
		listen = "127.0.0.1:" + port
	}
	ln, err := net.Listen("tcp", listen)
	return ln, "listening", err
}

// pet holds the app's state. mu serializes mutations; gate is held by /hang
// forever, and every request passes through it.
type pet struct {
	dir     string
	started time.Time

	gate sync.RWMutex
	hung atomic.Bool

	mu      sync.Mutex
	counter int64
	writes  int64
	log     *os.File
}

func open(dir string) (*pet, error) {
	p := &pet{dir: dir, started: time.Now()}
	b, err := os.ReadFile(filepath.Join(dir, "counter"))
	switch {
	case err == nil:
		p.counter, err = strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("counter file: %w", err)
		}
	case !errors.Is(err, os.ErrNotExist):
		return nil, err
	}
	path := filepath.Join(dir, "writes.log")
	n, good, err := scan(path)
	if err != nil {
		return nil, err
	}
	// A crash in the middle of an append leaves a torn last line: cut it.
	if fi, err := os.Stat(path); err == nil && fi.Size() > good {
		fmt.Printf("pet: truncating a torn last line of writes.log (%d bytes)\n", fi.Size()-good)
		if err := os.Truncate(path, good); err != nil {
			return nil, err
		}
	}
	p.writes = n
	p.log, err = os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// scan counts the complete lines of the write log and returns the offset
// after the last complete line.
func scan(path string) (lines, good int64, err error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 64<<10)
	for {
		line, err := r.ReadBytes('\n')
		if err == io.EOF {
			return lines, good, nil // a partial last line is not counted
		}
		if err != nil {
			return 0, 0, err
		}
		lines++
		good += int64(len(line))
	}
}

// entry formats one log line: seq, time, payload and a CRC-32C of them.
func entry(seq int64, t time.Time, payload string) string {
	body := fmt.Sprintf("%d\t%d\t%s", seq, t.UnixNano(), payload)
	return fmt.Sprintf("%s\t%08x\n", body, crc32.Checksum([]byte(body), castagnoli))
}

// verifyLine checks one line's checksum.
func verifyLine(line string) error {
	i := strings.LastIndexByte(line, '\t')
	if i < 0 {
		return errors.New("no checksum")
	}
	want, err := strconv.ParseUint(line[i+1:], 16, 32)
	if err != nil {
		return errors.New("bad checksum field")
	}
	if crc32.Checksum([]byte(line[:i]), castagnoli) != uint32(want) {
		return errors.New("checksum mismatch")
	}
	return nil
}

func (p *pet) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /{$}", p.info)
	mux.HandleFunc("POST /incr", p.incr)
	mux.HandleFunc("POST /write", p.write)
	mux.HandleFunc("GET /writes", p.list)
	mux.HandleFunc("GET /verify", p.verify)
	mux.HandleFunc("POST /hang", p.hang)
	mux.HandleFunc("POST /crash", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "crashing\n")
		w.(http.Flusher).Flush()
		go func() { time.Sleep(10 * time.Millisecond); os.Exit(3) }()
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hang" {
			mux.ServeHTTP(w, r)
			return
		}
		p.gate.RLock() // blocks forever once /hang holds the gate
		defer p.gate.RUnlock()
		mux.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (p *pet) info(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	writeJSON(w, 200, map[string]any{
		"instance": os.Getenv("AUTOHEAL_INSTANCE_ID"), "counter": p.counter, "writes": p.writes,
		"started": p.started.UTC().Format(time.RFC3339Nano), "pid": os.Getpid(),
		"greeting": os.Getenv("PET_GREETING"),
	})
}

func (p *pet) incr(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := writeFileAtomic(filepath.Join(p.dir, "counter"), []byte(strconv.FormatInt(p.counter+1, 10)+"\n")); err != nil {
		writeJSON(w, 500, map[string]any{"error": err.Error()})
		return
	}
	p.counter++
	writeJSON(w, 200, map[string]any{"counter": p.counter})
}

func (p *pet) write(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	if err != nil {
		writeJSON(w, 400, map[string]any{"error": "body: " + err.Error()})
		return
	}
	payload := string(b)
	if strings.ContainsAny(payload, "\n\t") {
		writeJSON(w, 400, map[string]any{"error": "payload must not contain newlines or tabs"})
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	seq := p.writes + 1
	if _, err := p.log.WriteString(entry(seq, time.Now(), payload)); err != nil {
		writeJSON(w, 500, map[string]any{"error": err.Error()})
		return
	}
	if err := p.log.Sync(); err != nil {
		writeJSON(w, 500, map[string]any{"error": err.Error()})
		return
	}
	p.writes = seq
	writeJSON(w, 200, map[string]any{"seq": seq})
}

func (p *pet) list(w http.ResponseWriter, r *http.Request) {
	after, _ := strconv.ParseInt(r.URL.Query().Get("after"), 10, 64)
	f, err := os.Open(filepath.Join(p.dir, "writes.log"))
	if err != nil {
		writeJSON(w, 200, []string{})
		return
	}
	defer f.Close()
	out := []string{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 128<<10), 128<<10)
	for n := int64(1); sc.Scan(); n++ {
		if n > after && len(out) < 10000 {
			out = append(out, sc.Text())
		}
	}
	writeJSON(w, 200, out)
}

func (p *pet) verify(w http.ResponseWriter, r *http.Request) {
	f, err := os.Open(filepath.Join(p.dir, "writes.log"))
	if errors.Is(err, os.ErrNotExist) {
		writeJSON(w, 200, map[string]any{"ok": true, "lines": 0})
		return
	}
	if err != nil {
		writeJSON(w, 500, map[string]any{"ok": false, "error": err.Error()})
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 128<<10), 128<<10)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if err := verifyLine(line); err != nil {
			writeJSON(w, 500, map[string]any{"ok": false, "error": fmt.Sprintf("line %d: %v", n, err)})
			return
		}
		if seq, _ := strconv.Atoi(strings.SplitN(line, "\t", 2)[0]); seq != n {
			writeJSON(w, 500, map[string]any{"ok": false, "error": fmt.Sprintf("line %d: sequence %d out of order", n, seq)})
			return
		}
	}
	writeJSON(w, 200, map[string]any{"ok": true, "lines": n})
}

// hang makes every later request block forever, so health checks fail.
func (p *pet) hang(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, 202, map[string]any{"hanging": true})
	w.(http.Flusher).Flush()
	p.hung.Store(true)
	go p.gate.Lock() // waits for in-flight requests, then holds the gate forever
}

// writeFileAtomic replaces a file durably: temp file, fsync, rename, fsync dir.
func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
