// Command app is a small stateless HTTP app for the load balancer example
// and the idle-controller benchmark: GET / answers with the instance id.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
)

func main() {
	listen := flag.String("listen", "", "listen address (default 127.0.0.1:$AUTOHEAL_PORT_HTTP or $PORT)")
	flag.Parse()
	ln, err := listener(*listen)
	if err != nil {
		log.Fatalf("web: %v", err)
	}
	id := os.Getenv("AUTOHEAL_INSTANCE_ID")
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintf(w, "hello from %s\n", id) })
	fmt.Printf("web %s listening on %s\n", id, ln.Addr())
	log.Fatal(http.Serve(ln, mux))
}

func listener(listen string) (net.Listener, error) {
	if os.Getenv("LISTEN_PID") == strconv.Itoa(os.Getpid()) && os.Getenv("LISTEN_FDS") != "" {
		f := os.NewFile(3, "listen-fd-3")
		defer f.Close()
		return net.FileListener(f)
	}
	if listen == "" {
		port := os.Getenv("AUTOHEAL_PORT_HTTP")
		if port == "" {
			port = os.Getenv("PORT")
		}
		if port == "" {
			return nil, errors.New("no listen address: set AUTOHEAL_PORT_HTTP, PORT or --listen")
		}
		listen = "127.0.0.1:" + port
	}
	return net.Listen("tcp", listen)
}
