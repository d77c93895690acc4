package volume

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
)

// TestNextToken: one more than the last, never below the floor.
func TestNextToken(t *testing.T) {
	for _, tc := range []struct{ cur, floor, want int64 }{
		{0, 0, 1},
		{7, 0, 8},
		{7, TokenFloor(3), TokenFloor(3)},
		{TokenFloor(3), TokenFloor(3), TokenFloor(3) + 1},
		{TokenFloor(9) + 4, TokenFloor(3), TokenFloor(9) + 5},
	} {
		if got := nextToken(tc.cur, tc.floor); got != tc.want {
			t.Errorf("nextToken(%d, %d) = %d, want %d", tc.cur, tc.floor, got, tc.want)
		}
	}
	if TokenFloor(2) <= TokenFloor(1)+(1<<20)-1 {
		t.Fatal("a leader's 2^20 tokens reach the next revision's floor")
	}
}

// TestSharedVolumeAcrossHosts: two hosts, each with its own store, keep one
// volume in a shared directory. The host whose leadership came later
// (higher etcd revision) attaches with tokens above the earlier one's, so
// its holder starts and the earlier holder, if it tried again, is fenced,
// although neither store knows the other's tokens.
func TestSharedVolumeAcrossHosts(t *testing.T) {
	shared := filepath.Join(t.TempDir(), "db")
	ctx := context.Background()
	a, _ := newManager(t)
	b, _ := newManager(t)
	for _, m := range []*Manager{a, b} {
		m.SetDir("db", "data", shared)
		if _, err := m.Prepare("db", "data"); err != nil {
			t.Fatal(err)
		}
	}
	if p := a.Paths("db", "data"); p.Data != filepath.Join(shared, "data") || p.TokenFile != filepath.Join(shared, "token") {
		t.Fatalf("paths %+v not in the shared dir", p)
	}
	a.SetTokenFloor(TokenFloor(100))
	var atA int64
	for range 3 { // several replacements on host a
		att, err := a.Attach(ctx, "db", "data", "i-a", alive())
		if err != nil {
			t.Fatal(err)
		}
		if err := CheckToken(a.Paths("db", "data").TokenFile, att.Token); err != nil {
			t.Fatal(err)
		}
		if err := a.Detach(ctx, "db", "data", "i-a"); err != nil {
			t.Fatal(err)
		}
		atA = att.Token
	}
	b.SetTokenFloor(TokenFloor(101))
	att, err := b.Attach(ctx, "db", "data", "i-b", alive())
	if err != nil {
		t.Fatal(err)
	}
	if att.Token <= atA {
		t.Fatalf("host b's token %d is not above host a's %d", att.Token, atA)
	}
	if err := CheckToken(b.Paths("db", "data").TokenFile, att.Token); err != nil {
		t.Fatalf("host b's holder refused: %v", err)
	}
	if err := CheckToken(a.Paths("db", "data").TokenFile, atA); !errors.Is(err, ErrFenced) {
		t.Fatalf("host a's old holder: %v, want ErrFenced", err)
	}
}
