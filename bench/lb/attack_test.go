package main

import (
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestAttackerRedials: an attacker holds its connections: those the server
// closes are dialled again; a slowloris one sends its head a byte at a
// time and never finishes it.
func TestAttackerRedials(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var accepted, bytes atomic.Int64
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			// The first connection of each is closed at once, the others
			// kept and read.
			if accepted.Add(1) <= 3 {
				c.Close()
				continue
			}
			go func() {
				defer c.Close()
				n, _ := io.Copy(io.Discard, c)
				bytes.Add(n)
			}()
		}
	}()
	*drip = 30 * time.Millisecond
	a := newAttacker(l.Addr().String(), 3, true)
	if err := a.start(context.Background()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for a.dials.Load() < 6 || a.closed.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("after 20s: %s", a.summary())
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The re-dialled ones drip.
	sent := func() int {
		a.mu.Lock()
		defer a.mu.Unlock()
		n := 0
		for i, c := range a.conns {
			if c != nil {
				n += a.sent[i]
			}
		}
		return n
	}
	for sent() < 9 {
		if time.Now().After(deadline) {
			t.Fatalf("slowloris sent %d bytes in 20s", sent())
		}
		time.Sleep(10 * time.Millisecond)
	}
	a.stop()
}

func TestGroupRSS(t *testing.T) {
	cmd := exec.Command("/bin/sleep", "60")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	if got := groupRSS(cmd.Process.Pid); got <= 0 {
		t.Fatalf("a sleeping process's group has RSS %d", got)
	}
	if got := groupRSS(os.Getpid() + 1<<22); got != 0 {
		t.Fatalf("a group with no process has RSS %d", got)
	}
}

func TestMedians(t *testing.T) {
	at := &attackTarget{rows: []attackRow{
		{scenario: "none", client: clientStats{sent: 10, answered: 10, p50: time.Millisecond, p99: 3 * time.Millisecond}, rss: [4]int64{1, 2, 3, 4}},
		{scenario: "idle-flood", client: clientStats{sent: 10, answered: 0}, rss: [4]int64{5, 6, 7, 8}},
		{scenario: "idle-flood", client: clientStats{sent: 10, answered: 5, p50: 2 * time.Millisecond, p99: 4 * time.Millisecond}, rss: [4]int64{7, 8, 9, 10}},
	}}
	s, ok := at.medians("idle-flood")
	if !ok || s.share != 0.25 || s.p50 != 2*time.Millisecond || s.p99 != 4*time.Millisecond || s.rss != [4]int64{6, 7, 8, 9} {
		t.Fatalf("medians %+v %v", s, ok)
	}
	if _, ok := at.medians("slowloris"); ok {
		t.Fatal("medians of a scenario not run")
	}
}
