// Package nonce accepts each signed request's nonce once within its
// window: the followers' forwarded API calls (internal/api) and the
// leader's requests to the hosts' agents (internal/provider/remote).
package nonce

import (
	"sync"
	"time"
)

// Set remembers the nonces accepted until each may be forgotten (its
// claim's time plus the window: past it, the claim is refused for its
// time anyway). The zero value is ready.
type Set struct {
	mu   sync.Mutex
	seen map[string]time.Time // nonce: when it may be forgotten
}

// Once reports whether nonce is new, and remembers it until expires.
func (n *Set) Once(nonce string, now, expires time.Time) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.seen == nil {
		n.seen = map[string]time.Time{}
	}
	for k, t := range n.seen {
		if now.After(t) {
			delete(n.seen, k)
		}
	}
	if _, dup := n.seen[nonce]; dup {
		return false
	}
	n.seen[nonce] = expires
	return true
}
