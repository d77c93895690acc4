// Command app is a tiny stateless HTTP app for autoheal's load balancer
// example and the idle-controller benchmark: every instance answers
// "hello from <instance id>", so a client can see which target served it.
// GET /slow?ms=N is a slow request, for draining tests.
//
// It listens like the pet: on the socket autoheal hands it (systemd socket
// activation: LISTEN_FDS and LISTEN_PID, fd 3), else on
// 127.0.0.1:$AUTOHEAL_PORT_HTTP ($PORT, --listen).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

func main() {
	listen := flag.String("listen", "", "address to listen on (default 127.0.0.1:$AUTOHEAL_PORT_HTTP, else 127.0.0.1:$PORT); ignored under socket activation")
	flag.Parse()
	if err := run(*listen); err != nil {
		fmt.Fprintf(os.Stderr, "web: %v\n", err)
		os.Exit(1)
	}
}

func run(listen string) error {
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, syscall.SIGTERM, syscall.SIGINT)
	ln, mode, err := listener(listen)
	if err != nil {
		return err
	}
	id := os.Getenv("AUTOHEAL_INSTANCE_ID")
	fmt.Printf("web: instance %q pid %d: %s %s\n", id, os.Getpid(), mode, ln.Addr())
	srv := &http.Server{Handler: handler(id), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-sigc:
	}
	// The load balancer drains a target before it is stopped, so little is
	// in flight by now; a second is plenty for it.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	srv.Shutdown(ctx)
	return nil
}

// maxSlow bounds GET /slow, so that a typo cannot hold a connection for
// hours.
const maxSlow = time.Minute

// handler answers every GET with the instance id, except /healthz.
//
// GET /slow?ms=N answers the same line at once (flushed, so that a client
// learns which instance serves it while the request is still in flight),
// then finishes the response N milliseconds later with "done after N ms":
// a slow request for load balancer draining tests.
func handler(id string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
		ms, err := strconv.Atoi(r.URL.Query().Get("ms"))
		if err != nil || ms < 0 || time.Duration(ms)*time.Millisecond > maxSlow {
			http.Error(w, fmt.Sprintf("ms must be a whole number of milliseconds from 0 to %d", maxSlow.Milliseconds()), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "hello from %s\n", id)
		http.NewResponseController(w).Flush()
		select {
		case <-time.After(time.Duration(ms) * time.Millisecond):
		case <-r.Context().Done():
			return
		}
		fmt.Fprintf(w, "done after %d ms\n", ms)
	})
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintf(w, "hello from %s\n", id) })
	return mux
}

// listener returns the socket passed by socket activation when it is meant
// for this process (LISTEN_PID is our pid, as systemd requires), else a new
// one on the instance port. Same rules as examples/pet.
func listener(listen string) (ln net.Listener, mode string, err error) {
	if fds := os.Getenv("LISTEN_FDS"); fds != "" && os.Getenv("LISTEN_PID") == strconv.Itoa(os.Getpid()) {
		if n, err := strconv.Atoi(fds); err != nil || n < 1 {
			return nil, "", fmt.Errorf("socket activation: LISTEN_FDS=%q, want at least 1 socket", fds)
		}
		os.Unsetenv("LISTEN_FDS")
		os.Unsetenv("LISTEN_PID")
		os.Unsetenv("LISTEN_FDNAMES")
		f := os.NewFile(3, "LISTEN_FDS fd 3")
		defer f.Close() // FileListener works on a dup
		ln, err := net.FileListener(f)
		if err != nil {
			return nil, "", fmt.Errorf("socket activation: fd 3 is not a listening socket: %w", err)
		}
		return ln, "socket activation (fd 3) on", nil
	}
	if listen == "" {
		port := os.Getenv("AUTOHEAL_PORT_HTTP")
		if port == "" {
			port = os.Getenv("PORT")
		}
		if port == "" {
			return nil, "", errors.New("nowhere to listen: no socket activation, and none of AUTOHEAL_PORT_HTTP, PORT or --listen set")
		}
		// Where autoheal reaches the instance: loopback, or the cluster
		// host's address for an instance placed on another host.
		bind := os.Getenv("AUTOHEAL_BIND_ADDRESS")
		if bind == "" {
			bind = "127.0.0.1"
		}
		listen = net.JoinHostPort(bind, port)
	}
	ln, err = net.Listen("tcp", listen)
	if err != nil {
		return nil, "", err
	}
	return ln, "listening on", nil
}
