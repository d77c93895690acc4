package limits

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// shape is what the limits measure, as the YAML parser sees it.
type shape struct {
	depth, entries, nodes, scalar int
}

// measure walks a parsed file as written (aliases not followed).
func measure(f *ast.File) shape {
	var s shape
	var walk func(n ast.Node, depth int)
	collection := func(n, depth int) {
		s.depth = max(s.depth, depth)
		s.entries = max(s.entries, n)
		s.nodes += n
	}
	walk = func(n ast.Node, depth int) {
		switch m := n.(type) {
		case *ast.MappingNode:
			collection(len(m.Values), depth+1)
			for _, v := range m.Values {
				walk(v.Key, depth+1)
				walk(v.Value, depth+1)
			}
		case *ast.MappingValueNode:
			collection(1, depth+1)
			walk(m.Key, depth+1)
			walk(m.Value, depth+1)
		case *ast.MappingKeyNode:
			walk(m.Value, depth)
		case *ast.SequenceNode:
			collection(len(m.Values), depth+1)
			for _, v := range m.Values {
				walk(v, depth+1)
			}
		case *ast.AnchorNode:
			walk(m.Value, depth)
		case *ast.TagNode:
			walk(m.Value, depth)
		case *ast.StringNode:
			s.scalar = max(s.scalar, len(m.Value))
		case *ast.LiteralNode:
			s.scalar = max(s.scalar, len(m.Value.Value))
		}
	}
	for _, doc := range f.Docs {
		if doc != nil && doc.Body != nil {
			walk(doc.Body, 0)
		}
	}
	return s
}

// TestAgreesWithParser checks the scan against the parser on every YAML
// and JSON file of the repository (configs, documents, examples): at
// limits equal to what the parser finds the file passes, and one below the
// file's depth or largest collection it fails, so the scan counts depth
// and entries exactly on real files.
func TestAgreesWithParser(t *testing.T) {
	var files []string
	for _, g := range []string{"../config/testdata/*.yaml", "../runbook/testdata/*/*.yaml", "../runbook/testdata/*/*.json",
		"../runbook/builtin/*.yaml", "../../examples/*.yaml", "../../examples/*/*.yaml", "../../examples/*/*/*.yaml"} {
		m, _ := filepath.Glob(g)
		files = append(files, m...)
	}
	if len(files) < 50 {
		t.Fatalf("only %d files found", len(files))
	}
	checked := 0
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseBytes(data, 0)
		if err != nil || !utf8.Valid(data) {
			continue // a bad.yaml for the parser, or for Check
		}
		s := measure(f)
		if s.depth == 0 {
			continue
		}
		checked++
		// Scalars are measured as written, which is longer than their
		// value (indentation, escapes): only the fuzzer checks them.
		lim := Limits{Kind: "t", Size: 1 << 30, Scalar: 1 << 20, Depth: s.depth, Entries: s.entries, Nodes: s.nodes}
		if err := Check(file, data, lim); err != nil {
			t.Errorf("at the file's own shape %+v: %v", s, err)
		}
		for i, l := range []Limits{lim, lim, lim} {
			switch i {
			case 0:
				l.Depth--
			case 1:
				l.Entries--
			case 2:
				l.Nodes--
			}
			if l.Depth > 0 && l.Entries > 0 && l.Nodes > 0 && Check(file, data, l) == nil {
				t.Errorf("%s (%+v) passes limits %+v", file, s, l)
			}
		}
	}
	t.Logf("%d files", checked)
}

// fuzzLimits are small enough that fuzzing reaches them. The scalar limit
// is high enough that the other limits can be gone around within it (a
// whole file read as one scalar).
var fuzzLimits = Limits{Kind: "fuzz", Size: 1 << 20, Scalar: 64, Depth: 4, Entries: 4, Nodes: 24}

func fuzzSeeds(f *testing.F) {
	for _, s := range []string{
		"a: 1\nb: [1, 2]\n", "a:\n- b: c\n  d: |\n    text\n", "{\"a\": [1, {\"b\": 2}]}",
		"a: \"x\n  y\"\n", "--- |\n  text\n...\n", "? a\n: b\n", "a: &x {b: 1}\nc: *x\n", "a:\r  b:\r    c: d\r",
	} {
		f.Add([]byte(s))
	}
}

// FuzzCheck feeds the scan arbitrary text. It must not panic; on a file it
// lets through, CheckTree must refuse exactly the trees beyond the limits
// (so no file beyond them is accepted, whatever the scan counted), and the
// parser must have built at most twice the limits: the scan may count less
// than the parser on layouts of its own, but not by so much that a hostile
// file gets the parser's unbounded costs back.
func FuzzCheck(f *testing.F) {
	fuzzSeeds(f)
	lim := fuzzLimits
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := Check("fuzz.yaml", data, lim); err != nil {
			if err.Line < 1 || err.Col < 1 {
				t.Fatalf("no position: %v", err)
			}
			return
		}
		file, err := parser.ParseBytes(data, 0)
		if err != nil {
			return
		}
		s := measure(file)
		within := s.depth <= lim.Depth && s.entries <= lim.Entries && s.nodes <= lim.Nodes && s.scalar <= lim.Scalar
		if terr := CheckTree("fuzz.yaml", file, lim); (terr == nil) != within {
			t.Fatalf("CheckTree on %q (shape %+v): %v", data, s, terr)
		} else if terr != nil && (terr.Line < 1 || terr.Col < 1) {
			t.Fatalf("no position: %v", terr)
		}
		if s.depth > 2*lim.Depth || s.entries > 2*lim.Entries || s.nodes > 2*lim.Nodes || s.scalar > 2*lim.Scalar {
			t.Fatalf("the scan let through %q, whose shape is %+v, beyond twice the limits", data, s)
		}
	})
}

// FuzzScanExact holds the scan to its aim: it never counts less than the
// parser, so that CheckTree never has anything to refuse. It still finds
// layouts the parser reads in ways of its own (a plain scalar continued by
// an explicit ":" line, say), so test.sh's short fuzz pass leaves it out;
// run it with ./fuzz.sh FuzzScanExact.
func FuzzScanExact(f *testing.F) {
	fuzzSeeds(f)
	lim := fuzzLimits
	f.Fuzz(func(t *testing.T, data []byte) {
		if Check("fuzz.yaml", data, lim) != nil {
			return
		}
		file, err := parser.ParseBytes(data, 0)
		if err != nil {
			return
		}
		if s := measure(file); s.depth > lim.Depth || s.entries > lim.Entries || s.nodes > lim.Nodes || s.scalar > lim.Scalar {
			t.Fatalf("the scan let through %q, whose shape is %+v", data, s)
		}
	})
}

// BenchmarkCheck scans files at the config's size limit, of the shapes
// that cost the parser most: one line of flow collections (a column
// counted per scalar made this quadratic), and block mappings. The scan is
// linear: bytes per second are the same for both.
func BenchmarkCheck(b *testing.B) {
	var flowLine, blocks []byte
	flowLine = append(flowLine, '[')
	for int64(len(flowLine)) < Config.Size-20 {
		flowLine = append(flowLine, "[a, b, c, d, e, f], "...)
	}
	flowLine = append(flowLine, ']')
	for i := 0; int64(len(blocks)) < Config.Size-40; i++ {
		blocks = fmt.Appendf(blocks, "k%d:\n  a: 1\n  b: [x, y]\n", i)
	}
	lim := Config
	lim.Nodes, lim.Entries = 1<<30, 1<<30
	for _, bc := range []struct {
		name string
		data []byte
	}{{"flow line", flowLine}, {"block mappings", blocks}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(bc.data)))
			for b.Loop() {
				if err := Check("f", bc.data, lim); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestCheckTree: the check on the parser's tree refuses each limit one
// beyond, accepts at the limit, and catches the layout FuzzCheck found
// that the scan reads one level shallower than the parser.
func TestCheckTree(t *testing.T) {
	lim := Limits{Kind: "t", Size: 1 << 20, Scalar: 64, Depth: 3, Entries: 3, Nodes: 8}
	for _, tc := range []struct {
		name, yaml string
		want       string // in the message; "" for accepted
		line, col  int
	}{
		{"at every limit", "a:\n  b: [1, 2, 3]\nc: 1\n", "", 0, 0},
		{"one level too deep", "a:\n  b:\n    c: [1]\n", "nesting depth 4 exceeds limit 3", 3, 8},
		{"one key too many", "a: 1\nb: 2\nc: 3\nd: 4\n", "mapping of more than 3 keys", 1, 2},
		{"one item too many", "- 1\n- 2\n- 3\n- 4\n", "list of more than 3 items", 1, 1},
		{"one node too many", "a: [1, 2]\nb: [3, 4]\nc: [5, 6]\n", "more than 8 keys and list items", 3, 4},
		{"a layout the scan reads shallower", "0:\n 0:\n  0:\n   0\n: 0  \n:", "nesting depth 4 exceeds limit 3", 0, 0},
		{"a scalar at the limit", "a: " + strings.Repeat("x", 64) + "\n", "", 0, 0},
		{"a scalar one byte beyond", "a: " + strings.Repeat("x", 65) + "\n", "scalar exceeds limit 64 bytes", 1, 4},
		{"a block scalar one byte beyond", "a: |\n  " + strings.Repeat("x", 64) + "\n", "scalar exceeds limit 64 bytes", 1, 4},
		{"a tagged scalar continued", "!\n 0\n" + strings.Repeat("0", 63), "scalar exceeds limit 64 bytes", 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := parser.ParseBytes([]byte(tc.yaml), 0)
			if err != nil {
				t.Fatal(err)
			}
			err2 := CheckTree("f.yaml", f, lim)
			switch {
			case tc.want == "" && err2 != nil:
				t.Fatalf("refused: %v", err2)
			case tc.want == "":
				return
			case err2 == nil:
				t.Fatalf("accepted, want %q", tc.want)
			case !strings.Contains(err2.Msg, tc.want):
				t.Fatalf("got %v, want %q", err2, tc.want)
			case tc.line != 0 && (err2.Line != tc.line || err2.Col != tc.col):
				t.Fatalf("at %d:%d, want %d:%d (%v)", err2.Line, err2.Col, tc.line, tc.col, err2)
			}
		})
	}
}
