// Package lb is autoheal's load balancer: listeners (HTTP/1.1, optionally
// TLS, and TCP), target groups with ELB's target states, active and passive
// health checks, three balancing algorithms, retries, holding requests
// while no target is healthy, draining, and per-target-group metrics.
//
// It owns its sockets and its targets' health. It does not know how
// instances are launched: the server feeds it each group's serving
// instances (Balancer.SetMembers) and asks it to drain an instance before a
// planned stop (Balancer.Drain).
//
// The HTTP proxy is written against raw connections rather than net/http:
// one goroutine per client connection parses request heads into a reused
// buffer, forwards them on pooled keep-alive connections to targets, and
// streams bodies both ways without buffering them. That is what keeps it
// near HAProxy's request rate on two cores (see bench/lb.sh). A connection
// waiting for its client holds no buffer, a silent one is closed after
// first_byte_timeout, and near max_connections the connection idle longest
// is closed for each new one (idle.go), so that slow and idle clients
// cannot lock others out (bench/lb.sh -attacks).
//
// TCP listeners hand each accepted connection and its target connection
// to a worker process (this binary re-executed, see tcploop_linux.go) that
// copies bytes from an epoll loop in a one-processor runtime.
package lb
