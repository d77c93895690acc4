package freeport

import "testing"

// TestNextDistinct: ports from one process never repeat, though the kernel
// offers a closed probe's port again (2,000 draws from ~28,000 ephemeral
// ports repeat dozens of times without the bookkeeping).
func TestNextDistinct(t *testing.T) {
	seen := map[int]bool{}
	for range 2000 {
		p := Next()
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
	}
}
