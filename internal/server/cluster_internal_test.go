package server

import (
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/autoheal/autoheal/internal/config"
	"github.com/autoheal/autoheal/internal/provider/local"
)

// TestLockClusterState: one serve per state dir; the lock goes with its
// holder.
func TestLockClusterState(t *testing.T) {
	dir := t.TempDir()
	first, err := lockClusterState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if second, err := lockClusterState(dir); err == nil || !strings.Contains(err.Error(), "another autoheal serve runs on it") {
		if second != nil {
			second.Close()
		}
		t.Fatalf("a second lock on the state dir: %v", err)
	}
	first.Close()
	again, err := lockClusterState(dir)
	if err != nil {
		t.Fatalf("after the holder's end: %v", err)
	}
	again.Close()
}

// TestFenceBudget: a quarter of the TTL, so the pets are gone well before
// the lease can lapse, with room for the shims' 100 ms poll.
func TestFenceBudget(t *testing.T) {
	for ttl, want := range map[time.Duration]time.Duration{2 * time.Second: 500 * time.Millisecond, 8 * time.Second: 2 * time.Second} {
		if got := fenceBudget(ttl); got != want {
			t.Errorf("fenceBudget(%v) = %v, want %v", ttl, got, want)
		}
	}
}

// TestClusterServable: what a cluster cannot run is refused by group and
// volume or address: a local volume on a group that follows the leader, a
// handed-over socket on a placed group; shared volumes, local volumes on
// placed groups (pinned) and virtual IPs on placed groups (they go with
// the instance) pass.
func TestClusterServable(t *testing.T) {
	placed := config.Placement{Hosts: []string{"h1", "h2"}}
	cfg := &config.Config{Path: "c.yaml", Groups: []config.Group{
		{Name: "a", Volumes: []config.Volume{{Name: "d", Kind: config.VolumeShared, Path: "/mnt/a"}}},
		{Name: "b", Placement: placed, Volumes: []config.Volume{{Name: "v", Kind: config.VolumeLocal}}},
		{Name: "c", Volumes: []config.Volume{{Name: "v", Kind: config.VolumeLocal}}},
		{Name: "d", Placement: placed, Addresses: []config.Address{{Name: "ip", Kind: config.KindVIP, IP: "10.0.0.9/24"}}},
		{Name: "e", Placement: placed, Addresses: []config.Address{{Name: "s", Listen: "127.0.0.1:9000", Mode: "socket"}}},
		{Name: "f", Placement: placed, Addresses: []config.Address{{Name: "p", Listen: "127.0.0.1:9001", Mode: "proxy"}}},
	}}
	err := clusterServable(cfg)
	if err == nil {
		t.Fatal("accepted")
	}
	msg := err.Error()
	for _, want := range []string{"group c: volume v is local", "group e: address s hands its socket"} {
		if !strings.Contains(msg, want) {
			t.Errorf("missing %q in %s", want, msg)
		}
	}
	for _, not := range []string{"group a:", "group b:", "group d:", "group f:"} {
		if strings.Contains(msg, not) {
			t.Errorf("%s refused: %s", not, msg)
		}
	}
}

// TestAtRisk: the failsafe asks the other hosts when a renewal failed or
// the fence comes within a third of the TTL, and not while renewals keep
// it further (a healthy host's is at least two thirds of the TTL less the
// budget away).
func TestAtRisk(t *testing.T) {
	ttl := 2 * time.Second
	for _, tc := range []struct {
		failing bool
		toFence time.Duration
		want    bool
	}{
		{false, 1500 * time.Millisecond, false}, // just renewed
		{false, 834 * time.Millisecond, false},  // just before the next renewal
		{false, 666 * time.Millisecond, true},   // a renewal is late
		{false, -time.Millisecond, true},        // past the fence
		{true, 1500 * time.Millisecond, true},   // the last renewal failed
	} {
		if got := atRisk(tc.failing, tc.toFence, ttl); got != tc.want {
			t.Errorf("atRisk(%v, %v) = %v, want %v", tc.failing, tc.toFence, got, tc.want)
		}
	}
}

// TestDeadlineNeverGoesBack: the shims' deadline moves only forward, to
// the fence budget before the latest end it was given, whether a renewal
// or the failsafe gave it.
func TestDeadlineNeverGoesBack(t *testing.T) {
	d := &deadlineFile{path: filepath.Join(t.TempDir(), "deadline"), budget: 500 * time.Millisecond, log: slog.Default()}
	now := time.Now()
	d.extend(now.Add(2 * time.Second))
	d.extend(now.Add(time.Second)) // an older renewal's answer, late
	if got := d.end(); !got.Equal(now.Add(2 * time.Second)) {
		t.Fatalf("end went back to %v", got.Sub(now))
	}
	left := local.DeadlineLeft(d.path)
	if left > 1500*time.Millisecond || left < 1400*time.Millisecond {
		t.Fatalf("the shims' deadline is %v away, want the end less the budget (1.5 s)", left)
	}
	d.remove()
	if !local.DeadlinePassed(d.path) {
		t.Fatal("a removed deadline has not passed")
	}
}

// TestPromise: a host that answers no promises to run nothing for a TTL;
// promises only grow; a leading host answers without a promise (it leads
// already).
func TestPromise(t *testing.T) {
	f := &failsafe{promise: filepath.Join(t.TempDir(), "promise")}
	now := time.Now()
	if err := f.promiseUntil(now.Add(2 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := f.promiseUntil(now.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if left := local.DeadlineLeft(f.promise); left < 1900*time.Millisecond {
		t.Fatalf("the promise shrank to %v", left)
	}
	f.leading = true
	if err := f.promiseUntil(now.Add(3 * time.Second)); err != nil {
		t.Fatalf("a leading host refused to answer: %v", err)
	}
	if left := local.DeadlineLeft(f.promise); left > 2100*time.Millisecond {
		t.Fatalf("a leading host made a promise (%v)", left)
	}
}
