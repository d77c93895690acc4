// Command pet is autoheal's demo pet: a small stateful HTTP app whose data (a
// durable counter and an append-only log of checksummed writes) lives in its
// volume, $AUTOHEAL_VOLUME_DATA. Every change is fsync'd before it is
// acknowledged, so a kill -9 loses nothing that was answered, and the next
// instance, given the same volume, carries on where the last one stopped.
//
// It listens on the socket autoheal hands it (systemd socket activation:
// LISTEN_FDS and LISTEN_PID, fd 3) or on 127.0.0.1:$AUTOHEAL_PORT_HTTP
// ($PORT, --listen). It can be told to hang (POST /hang) or crash
// (POST /crash) to show autoheal healing it. See README.md for the API.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

// shutdownGrace bounds how long SIGTERM waits for in-flight requests. Data
// is on disk after every request, so there is nothing else to wait for.
const shutdownGrace = time.Second

func main() {
	started := time.Now()
	listen := flag.String("listen", "", "address to listen on (default 127.0.0.1:$AUTOHEAL_PORT_HTTP, else 127.0.0.1:$PORT); ignored under socket activation")
	data := flag.String("data", "", "data directory (default $AUTOHEAL_VOLUME_DATA)")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "pet: unexpected arguments %q\n", flag.Args())
		os.Exit(2)
	}
	if err := run(started, *listen, *data); err != nil {
		fmt.Fprintf(os.Stderr, "pet: %v\n", err)
		os.Exit(1)
	}
}

func run(started time.Time, listen, dataDir string) error {
	// Catch signals first: a SIGTERM during start-up must still exit 0.
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, syscall.SIGTERM, syscall.SIGINT)

	if dataDir == "" {
		dataDir = os.Getenv("AUTOHEAL_VOLUME_DATA")
	}
	if dataDir == "" {
		return errors.New("no data directory: set AUTOHEAL_VOLUME_DATA or pass --data")
	}
	st, info, err := openStore(dataDir)
	if err != nil {
		return err
	}
	defer st.close()
	ln, mode, err := listener(listen)
	if err != nil {
		return err
	}

	id := os.Getenv("AUTOHEAL_INSTANCE_ID")
	repair := ""
	switch {
	case info.created:
		repair = ", new log"
	case info.tornCut > 0:
		repair = fmt.Sprintf(", cut a torn last line (%d bytes)", info.tornCut)
	}
	fmt.Printf("pet: instance %q pid %d: %s %s, data %s, counter %d, %d log lines%s\n",
		id, hostPid(), mode, ln.Addr(), dataDir, info.counter, info.lines, repair)

	a := newApp(st, id, started)
	srv := &http.Server{
		Handler:           a.handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	uptimeCtx, stopUptime := context.WithCancel(context.Background())
	defer stopUptime()
	go pushUptime(uptimeCtx, "http://"+ln.Addr().String()+"/")

	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case sig := <-sigc:
		name := "SIGTERM"
		if sig == syscall.SIGINT {
			name = "SIGINT"
		}
		fmt.Printf("pet: %s: shutting down\n", name)
	}
	close(a.stopping) // hung requests give up, so only real work is waited for
	ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	// Shutdown stops accepting at once and waits for in-flight requests.
	if err := srv.Shutdown(ctx); err != nil {
		fmt.Printf("pet: in-flight requests still running after %v: exiting anyway\n", shutdownGrace)
	}
	return nil
}

// listener returns the socket passed by socket activation when it is meant
// for this process (LISTEN_PID is our pid, as systemd requires: the
// variables may have leaked from a parent), else a new one on the instance
// port. mode says which, for the start-up line.
func listener(listen string) (ln net.Listener, mode string, err error) {
	if fds := os.Getenv("LISTEN_FDS"); fds != "" && os.Getenv("LISTEN_PID") == strconv.Itoa(os.Getpid()) {
		if n, err := strconv.Atoi(fds); err != nil || n < 1 {
			return nil, "", fmt.Errorf("socket activation: LISTEN_FDS=%q, want at least 1 socket", fds)
		}
		// Not for any child we might start (as sd_listen_fds(1) does).
		os.Unsetenv("LISTEN_FDS")
		os.Unsetenv("LISTEN_PID")
		os.Unsetenv("LISTEN_FDNAMES")
		f := os.NewFile(3, "LISTEN_FDS fd 3")
		// FileListener dups the fd (close-on-exec); the original is not needed.
		defer f.Close()
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
		// autoheal names where it reaches the instance: loopback, or the
		// cluster host's address for an instance placed on another host.
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
