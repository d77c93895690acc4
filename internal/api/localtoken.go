package api

import (
	"bufio"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// A client sends a local admin token it read from a file only to a
// controller on this host that is that file's: the address must be
// loopback, and every socket listening on its port must belong to the
// file's owner. Whoever else binds the port while the controller is down
// (any local user may bind a port above 1024) gets nothing.

// LocalToken reads the local admin token of a state dir for a client of
// addr ("127.0.0.1:7070" or a URL), if this process may read it and addr
// is the file owner's controller on this host.
func LocalToken(addr, stateDir string) (string, error) {
	return localToken(addr, filepath.Join(stateDir, TokenFile))
}

func localToken(addr, file string) (string, error) {
	port, err := loopbackPort(addr)
	if err != nil {
		return "", err
	}
	tok, err := ReadTokenFile(file)
	if err != nil {
		return "", err
	}
	fi, err := os.Stat(file)
	if err != nil {
		return "", err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return "", fmt.Errorf("%s: owner unknown", file)
	}
	owners, err := listenerOwners(port)
	if err != nil {
		return "", err
	}
	if len(owners) == 0 {
		return "", fmt.Errorf("nothing listens on port %d", port)
	}
	for uid := range owners {
		if uid != st.Uid {
			return "", fmt.Errorf("port %d is held by uid %d, not by %s's owner (uid %d): not sending it there", port, uid, file, st.Uid)
		}
	}
	return tok, nil
}

// loopbackPort returns the port of a loopback address, or an error.
func loopbackPort(addr string) (int, error) {
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	u, err := url.Parse(addr)
	if err != nil {
		return 0, err
	}
	ip := net.ParseIP(u.Hostname())
	if u.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return 0, fmt.Errorf("%s is not on this host: the local admin token stays here", u.Host)
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil && u.Port() == "" {
		port, err = 80, nil
	}
	return port, err
}

// listenerOwners returns the uids of the TCP sockets listening on port,
// on any address, from /proc/net/tcp and /proc/net/tcp6.
func listenerOwners(port int) (map[uint32]bool, error) {
	owners := map[uint32]bool{}
	found := false
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(table)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		found = true
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid ...
			fields := strings.Fields(sc.Text())
			if len(fields) < 8 || fields[3] != "0A" { // 0A: LISTEN
				continue
			}
			_, p, ok := strings.Cut(fields[1], ":")
			b, err := hex.DecodeString(p)
			if !ok || err != nil || len(b) != 2 || int(b[0])<<8|int(b[1]) != port {
				continue
			}
			uid, err := strconv.ParseUint(fields[7], 10, 32)
			if err != nil {
				continue
			}
			owners[uint32(uid)] = true
		}
		f.Close()
	}
	if !found {
		return nil, errors.New("no /proc/net/tcp: cannot tell who listens")
	}
	return owners, nil
}
