// Package sdnotify speaks systemd's notify protocol (sd_notify(3)): a
// service started with Type=notify says when it is ready, and one with
// WatchdogSec= pings systemd, which restarts it when the pings stop. Out
// of systemd (no NOTIFY_SOCKET), every call does nothing.
package sdnotify

import (
	"context"
	"net"
	"os"
	"strconv"
	"time"
)

// Notify sends state ("READY=1", "WATCHDOG=1", "STOPPING=1") to the
// service manager; false when there is none.
func Notify(state string) (bool, error) {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return false, nil
	}
	if path[0] == '@' {
		path = "\x00" + path[1:] // an abstract socket
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return false, err
	}
	defer c.Close()
	if _, err := c.Write([]byte(state)); err != nil {
		return false, err
	}
	return true, nil
}

// WatchdogInterval is systemd's watchdog timeout for this process
// (WatchdogSec=), or 0 when it has none.
func WatchdogInterval() time.Duration {
	usec, err := strconv.ParseInt(os.Getenv("WATCHDOG_USEC"), 10, 64)
	if err != nil || usec <= 0 {
		return 0
	}
	if pid := os.Getenv("WATCHDOG_PID"); pid != "" && pid != strconv.Itoa(os.Getpid()) {
		return 0 // meant for another process
	}
	return time.Duration(usec) * time.Microsecond
}

// Watchdog pings systemd at half its watchdog timeout until ctx ends,
// each time alive() says the process still does its work; a false skips
// the ping, so that systemd restarts a process stuck that way. It returns
// at once without a watchdog.
func Watchdog(ctx context.Context, alive func() bool) {
	d := WatchdogInterval()
	if d == 0 {
		return
	}
	t := time.NewTicker(d / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if alive() {
				_, _ = Notify("WATCHDOG=1")
			}
		}
	}
}
