//go:build !linux

package lb

import (
	"log/slog"
	"net"
	"time"
)

// pair is unused off Linux: connections are copied by goroutines.
type pair struct{ done chan struct{} }

func (p *pair) kill() {}

type killConn struct {
	net.Conn
	p *pair
}

func spliceLoop(a, b net.Conn, idle, first time.Duration, home uint64, list *idleList, log *slog.Logger) (*pair, bool) {
	return nil, false
}
