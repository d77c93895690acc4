package health

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func TestHTTPProbe(t *testing.T) {
	big := strings.Repeat("x", 10<<10)
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "all good") })
	mux.HandleFunc("/nocontent", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) {
		// Following it would reach /fail; a 3xx is itself a success.
		http.Redirect(w, r, "/fail", http.StatusFound)
	})
	mux.HandleFunc("/fail", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "database down", http.StatusServiceUnavailable)
	})
	mux.HandleFunc("/notfound", http.NotFound)
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, big) })
	mux.HandleFunc("/agent", func(w http.ResponseWriter, r *http.Request) {
		if r.UserAgent() != userAgent || r.Close {
			http.Error(w, "unexpected request: "+r.UserAgent(), http.StatusBadRequest)
		}
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	refused := closedPort(t)

	tests := []struct {
		name    string
		url     string
		want    Result
		output  string // substring
		wantErr bool
	}{
		{"200 is success", srv.URL + "/ok", Success, "HTTP 200 OK: all good", false},
		{"204 is success", srv.URL + "/nocontent", Success, "HTTP 204", false},
		{"redirect is success and not followed", srv.URL + "/redirect", Success, "HTTP 302", false},
		{"503 is failure with body", srv.URL + "/fail", Failure, "HTTP 503 Service Unavailable: database down", false},
		{"404 is failure", srv.URL + "/notfound", Failure, "HTTP 404", false},
		{"probe identifies itself and keeps its connection", srv.URL + "/agent", Success, "HTTP 200", false},
		{"refused is a failure, not an error", "http://" + refused + "/", Failure, "connection refused", false},
		{"malformed url is an error", "http://[::1/", Failure, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			res, out, err := HTTP(tt.url).Probe(ctx)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if res != tt.want || !strings.Contains(out, tt.output) {
				t.Fatalf("got %s %q, want %s containing %q", res, out, tt.want, tt.output)
			}
		})
	}

	t.Run("body read is capped at 4KiB", func(t *testing.T) {
		res, out, err := HTTP(srv.URL + "/big").Probe(context.Background())
		if err != nil || res != Success {
			t.Fatalf("got %s %v", res, err)
		}
		if n := strings.Count(out, "x"); n != maxOutput {
			t.Fatalf("kept %d bytes of body, want %d", n, maxOutput)
		}
	})
}

// TestHTTPProbeHangingServer pins that the probe's context bounds a server
// that accepts and never answers, and one that sends headers then stalls.
func TestHTTPProbeHangingServer(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/stall-body" {
			w.WriteHeader(http.StatusOK)
			w.Write([]byte("partial"))
			w.(http.Flusher).Flush()
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)

	for _, path := range []string{"/hang", "/stall-body"} {
		t.Run(path, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			done := make(chan struct{})
			var res Result
			var out string
			var err error
			go func() {
				defer close(done)
				res, out, err = HTTP(srv.URL + path).Probe(ctx)
			}()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("probe not bounded by its context")
			}
			if err != nil {
				t.Fatal(err)
			}
			switch path {
			case "/hang":
				if res != Failure || !strings.Contains(out, "timed out") {
					t.Fatalf("got %s %q, want a timed-out failure", res, out)
				}
			case "/stall-body":
				// The status came in time: it decides; the cut body is noted.
				if res != Success || !strings.Contains(out, "partial") || !strings.Contains(out, "timed out") {
					t.Fatalf("got %s %q", res, out)
				}
			}
		})
	}
}

func TestTCPProbe(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var accepted atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	tests := []struct {
		name   string
		addr   string
		want   Result
		output string
	}{
		{"listening", ln.Addr().String(), Success, "connected to " + ln.Addr().String()},
		{"refused", closedPort(t), Failure, "connection refused"},
		{"bad address", "127.0.0.1:notaport", Failure, "unknown port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			res, out, err := TCP(tt.addr).Probe(ctx)
			if err != nil {
				t.Fatalf("a target that cannot be reached is a failure, not an error: %v", err)
			}
			if res != tt.want || !strings.Contains(out, tt.output) {
				t.Fatalf("got %s %q, want %s containing %q", res, out, tt.want, tt.output)
			}
		})
	}
	t.Run("expired context", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if res, _, _ := TCP(ln.Addr().String()).Probe(ctx); res != Failure {
			t.Fatalf("got %s", res)
		}
	})
}

func TestExecProbe(t *testing.T) {
	long := strings.Repeat("é", maxOutput) // multi-byte: the cut must stay valid UTF-8
	tests := []struct {
		name    string
		code    int
		out     string
		err     error
		want    Result
		output  string
		wantErr bool
	}{
		{"exit 0", 0, "ready\n", nil, Success, "ready", false},
		{"exit 1", 1, "not ready\n", nil, Failure, "exit code 1: not ready", false},
		{"exit 2 silent", 2, "", nil, Failure, "exit code 2", false},
		{"could not run", -1, "", errors.New("no such shell"), Failure, "", true},
		{"long output capped", 0, long, nil, Success, "…", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Exec(func(ctx context.Context) (int, string, error) { return tt.code, tt.out, tt.err })
			res, out, err := p.Probe(context.Background())
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v", err)
			}
			if res != tt.want || !strings.Contains(out, tt.output) {
				t.Fatalf("got %s %q, want %s containing %q", res, out, tt.want, tt.output)
			}
			if len(out) > maxOutput+len("…") {
				t.Fatalf("output not capped: %d bytes", len(out))
			}
			if !strings.ContainsRune(out, '\uFFFD') && strings.ToValidUTF8(out, "!") != out {
				t.Fatalf("output is not valid UTF-8")
			}
		})
	}
}

func TestProcessProbe(t *testing.T) {
	for _, alive := range []bool{true, false} {
		t.Run(fmt.Sprint("alive=", alive), func(t *testing.T) {
			res, out, err := Process(func() bool { return alive }).Probe(context.Background())
			want := Failure
			if alive {
				want = Success
			}
			if err != nil || res != want || out == "" {
				t.Fatalf("got %s %q %v", res, out, err)
			}
		})
	}
}

// TestTCPProbeHangingListener: a listener whose accept queue is full drops
// new SYNs, so the dial hangs; the probe's context must bound it.
func TestTCPProbeHangingListener(t *testing.T) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil { // never accepted
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
	// Fill the accept queue until a dial hangs.
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; ; i++ {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err != nil {
			break
		}
		conns = append(conns, c)
		if i > 100 {
			t.Skip("the kernel keeps accepting into a full queue")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	res, out, err := TCP(addr).Probe(ctx)
	if err != nil || res != Failure || !strings.Contains(out, "timed out") {
		t.Fatalf("got %s %q %v, want a timed-out failure", res, out, err)
	}
}

// closedPort returns an address nothing listens on.
func closedPort(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
