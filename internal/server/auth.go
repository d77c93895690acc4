package server

import (
	"fmt"
	"net"

	"github.com/autoheal/autoheal/internal/config"
)

// checkListen refuses an API beyond loopback while no tokens are
// configured: only the local admin token would be accepted there, and a
// remote caller would have to copy the controller's own key (which can
// kill and replace every instance) and send it over the network. Remote
// callers get tokens of their own. It is a config error (exit 2), found
// before anything starts.
func checkListen(cfg *config.Config, listen string) error {
	if len(cfg.Auth.Tokens) > 0 || loopback(listen) {
		return nil
	}
	return &config.Errors{{File: cfg.Path, Msg: fmt.Sprintf(
		"the API would listen on %s, beyond loopback, with no auth tokens: remote callers would need the controller's own admin token; "+
			"give them tokens of their own in auth.tokens (autoheal token new NAME --role operator) or listen on loopback (--listen 127.0.0.1:7070)", listen)}}
}

// loopback reports whether a listen address only accepts connections from
// this host: 127.0.0.0/8, ::1 or localhost. An empty host (":7070") is
// every interface; any other name may resolve beyond loopback.
func loopback(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
