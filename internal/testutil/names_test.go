package testutil

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestUniqueNameIsUniqueAcrossGoroutines(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]bool{}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				n := UniqueName("ns")
				mu.Lock()
				if seen[n] {
					t.Errorf("%s given twice", n)
				}
				seen[n] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for n := range seen {
		if !strings.HasPrefix(n, "ns-") {
			t.Fatalf("%q lacks the prefix", n)
		}
		break
	}
}

func TestStateDir(t *testing.T) {
	var a, b string
	t.Run("made", func(t *testing.T) {
		a, b = StateDir(t), StateDir(t)
		if a == b {
			t.Fatalf("the same dir twice: %s", a)
		}
		for _, d := range []string{a, b} {
			fi, err := os.Stat(d)
			if err != nil {
				t.Fatal(err)
			}
			if !fi.IsDir() || fi.Mode().Perm() != 0o700 {
				t.Fatalf("%s: %v, want a 0700 directory", d, fi.Mode())
			}
			if ents, _ := os.ReadDir(d); len(ents) != 0 {
				t.Fatalf("%s is not empty", d)
			}
		}
		if err := os.WriteFile(filepath.Join(a, "f"), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	})
	for _, d := range []string{a, b} {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Fatalf("%s after its test ended: %v", d, err)
		}
	}
}

// TestOnlyTestsImportTestutil keeps the package out of the program: only
// _test.go files may import it.
func TestOnlyTestsImportTestutil(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root: %v", err)
	}
	const path = `"github.com/autoheal/autoheal/internal/testutil"`
	err = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if strings.Contains(string(b), path) {
			t.Errorf("%s imports testutil: only tests may", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
