package nonce

import (
	"testing"
	"time"
)

// TestOnce: a nonce is accepted once while remembered, and forgotten only
// after its expiry.
func TestOnce(t *testing.T) {
	var s Set
	t0 := time.Unix(1000, 0)
	if !s.Once("a", t0, t0.Add(time.Minute)) {
		t.Fatal("a new nonce refused")
	}
	if s.Once("a", t0.Add(30*time.Second), t0.Add(time.Minute)) {
		t.Fatal("a replay accepted within the window")
	}
	if !s.Once("b", t0, t0.Add(time.Minute)) {
		t.Fatal("another nonce refused")
	}
	if s.Once("a", t0.Add(time.Minute), t0.Add(2*time.Minute)) {
		t.Fatal("a replay accepted at its expiry")
	}
	if !s.Once("a", t0.Add(time.Minute+time.Nanosecond), t0.Add(2*time.Minute)) {
		t.Fatal("a nonce past its expiry still remembered")
	}
}
