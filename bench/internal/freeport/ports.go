// Package freeport picks loopback ports for the bench programs' servers. It
// owns nothing else.
package freeport

import (
	"net"
	"sync"
)

var (
	mu    sync.Mutex
	given = map[int]bool{}
)

// Next is a loopback port nothing listens on that this process has not
// handed out before: the kernel may offer a port again once the probe that
// found it is closed, and two listeners of one config would then collide.
func Next() int {
	mu.Lock()
	defer mu.Unlock()
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			panic(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !given[port] {
			given[port] = true
			return port
		}
	}
}
