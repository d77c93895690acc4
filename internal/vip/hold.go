package vip

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"

	"github.com/autoheal/autoheal/internal/provider/local"
)

// holdArg is the argument that makes the binary a holder (Init).
const holdArg = "__autoheal_vip"

// announceAt are the times after adding the addresses at which they are
// announced again: a machine that missed the first announcement, or a
// switch that was relearning, gets another within milliseconds, and the
// last one lands after the old holder's lease has surely lapsed.
var announceAt = []time.Duration{0, 50 * time.Millisecond, 200 * time.Millisecond, time.Second, 3 * time.Second}

// Init runs the holder if the process was started as one (Start), and
// exits; otherwise it returns false. Call it first thing in main.
func Init() bool {
	if len(os.Args) < 2 || os.Args[1] != holdArg {
		return false
	}
	os.Exit(runHold(os.Args[2:]))
	return true
}

// Start starts, detached from the caller (its own session, no parent
// death signal), a holder of addrs under the deadline file: it adds and
// announces them, and removes them once the deadline passes or the file is
// removed. lock serialises the holders of one host: a holder started while
// an earlier one runs waits for it to leave, then holds only if its own
// deadline has not passed. exe is this binary; the holder's messages go to
// logPath.
func Start(exe, lock, deadline, logPath string, addrs []Addr) error {
	if heldFor(lock) == deadline {
		// A controller restarted on its lease: the holder it started
		// before holds them still, under the same deadline.
		return nil
	}
	out, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("vip holder log: %w", err)
	}
	defer out.Close()
	args := []string{holdArg, lock, deadline}
	for _, a := range addrs {
		args = append(args, a.String())
	}
	cmd := exec.Command(exe, args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("vip holder: %w", err)
	}
	// Not waited for: it outlives this process. Release lets the runtime
	// forget it; the holder is reparented when this process exits.
	return cmd.Process.Release()
}

func runHold(args []string) int {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("pid", os.Getpid())
	if len(args) < 3 {
		log.Error("usage: " + holdArg + " LOCK DEADLINE ADDR...")
		return 2
	}
	lockPath, deadline := args[0], args[1]
	var addrs []Addr
	for _, s := range args[2:] {
		a, err := Parse(s)
		if err != nil {
			log.Error("vip holder", "err", err)
			return 2
		}
		addrs = append(addrs, a)
	}
	// The addresses go with the deadline, not with a signal: a controller
	// stopped for an upgrade leaves its pets and its addresses.
	signal.Ignore(syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	lock, err := os.OpenFile(lockPath, os.O_CREATE|os.O_RDWR|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		log.Error("vip holder: lock", "err", err)
		return 1
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		log.Error("vip holder: lock", "err", err)
		return 1
	}
	if local.DeadlinePassed(deadline) {
		log.Info("vip holder: the deadline has passed; not holding", "deadline", deadline)
		return 0
	}
	// Say whose deadline this holder follows, for Start (heldFor).
	if err := lock.Truncate(0); err == nil {
		_, _ = lock.WriteAt([]byte(deadline), 0)
	}
	code := hold(addrs, deadline, log)
	return code
}

// heldFor returns the deadline file the holder that has lock follows, or
// "" when no holder runs.
func heldFor(lock string) string {
	f, err := os.Open(lock)
	if err != nil {
		return ""
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err == nil {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		return "" // nobody holds it
	}
	b, _ := io.ReadAll(io.LimitReader(f, 4096))
	return string(b)
}

// hold adds and announces addrs, waits for the deadline, and removes them.
func hold(addrs []Addr, deadline string, log *slog.Logger) int {
	code := 0
	for _, a := range addrs {
		if err := Add(a); err != nil {
			log.Error("vip holder", "err", err)
			code = 1
		}
	}
	log.Info("holding virtual IPs", "addrs", addrs, "deadline", deadline)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		start := time.Now()
		for _, at := range announceAt {
			select {
			case <-stop:
				return
			case <-time.After(time.Until(start.Add(at))):
			}
			for _, a := range addrs {
				if err := Announce(a); err != nil {
					log.Warn("vip holder", "err", err)
				}
			}
		}
	}()
	local.WatchDeadline(deadline, nil)
	close(stop)
	<-done
	for _, a := range addrs {
		if err := Del(a); err != nil {
			log.Error("vip holder", "err", err)
			code = 1
		}
	}
	log.Info("released virtual IPs: the deadline passed", "addrs", addrs)
	return code
}
