package server

import (
	"strings"
	"testing"
	"time"

	"github.com/autoheal/autoheal/internal/config"
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

// TestClusterServable: placement and local volumes are refused, by group
// and volume, until a cluster runs them; shared volumes pass.
func TestClusterServable(t *testing.T) {
	cfg := &config.Config{Path: "c.yaml", Groups: []config.Group{
		{Name: "a", Volumes: []config.Volume{{Name: "d", Kind: config.VolumeShared, Path: "/mnt/a"}}},
		{Name: "b", Placement: config.Placement{Hosts: []string{"h1"}}},
		{Name: "c", Volumes: []config.Volume{{Name: "v", Kind: config.VolumeLocal}}},
	}}
	err := clusterServable(cfg)
	if err == nil {
		t.Fatal("accepted")
	}
	msg := err.Error()
	for _, want := range []string{"group b: placement is not run yet", "group c: volume v is local"} {
		if !strings.Contains(msg, want) {
			t.Errorf("missing %q in %s", want, msg)
		}
	}
	if strings.Contains(msg, "group a") {
		t.Errorf("a shared volume refused: %s", msg)
	}
}
