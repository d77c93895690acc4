package group

import "testing"

// TestFreePortDistinct: ports handed to instances do not repeat while
// held, though the kernel offers a closed probe's port again (2,000 draws
// from ~28,000 ephemeral ports repeat dozens of times without the
// bookkeeping).
func TestFreePortDistinct(t *testing.T) {
	seen := map[int]bool{}
	for range 2000 {
		p, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
	}
}
