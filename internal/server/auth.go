package server

import (
	"fmt"
	"log/slog"
	"net"
	"os"

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

// privateStateDir makes the state dir its owner's alone. It holds the
// journal (SQLite, whose files get the umask's mode), the instances' logs
// and the API's secrets: an instance running as another user (launch.user)
// must not read them. A dir made by the controller already is 0700; one
// an operator made wider is narrowed, and the log says so.
func privateStateDir(dir string, log *slog.Logger) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		if err := os.Chmod(dir, perm&0o700); err != nil {
			return fmt.Errorf("state dir %s has mode %#o, open to other users, and cannot be made private: %w", dir, perm, err)
		}
		log.Warn("state dir was open to other users: made private", "dir", dir, "was", fmt.Sprintf("%#o", perm), "now", fmt.Sprintf("%#o", perm&0o700))
	}
	return nil
}
