package limits

import (
	"fmt"

	"github.com/goccy/go-yaml/ast"

	"github.com/autoheal/autoheal/internal/diag"
)

// CheckTree checks the tree the YAML parser built from a file that Check
// let through against the same limits of depth, entries, nodes and
// scalar size, exactly
// as the parser counts them. The scan before the parser keeps it from
// hostile files; it follows the parser's layout rules as far as real files
// go, and may count less on layouts the parser reads in ways of its own
// (FuzzCheck finds such files; FuzzCheckBound shows by how much). This
// check is what makes a limit exact: no file whose tree is beyond a limit
// is accepted, whatever its layout. Scalars are checked here by their
// value, which is never longer than their text, so the two checks agree.
func CheckTree(file string, f *ast.File, lim Limits) *diag.Error {
	w := treeWalk{lim: lim, file: file}
	for _, doc := range f.Docs {
		if doc != nil && doc.Body != nil && w.err == nil {
			w.walk(doc.Body, 0)
		}
	}
	return w.err
}

type treeWalk struct {
	lim   Limits
	file  string
	nodes int
	err   *diag.Error
}

// collection checks a mapping or list of n entries at depth.
func (w *treeWalk) collection(n ast.Node, entries, depth int, seq bool) bool {
	what := "mapping of more than %d keys"
	if seq {
		what = "list of more than %d items"
	}
	w.nodes += entries
	switch {
	case depth > w.lim.Depth:
		w.fail(n, fmt.Sprintf("nesting depth %d exceeds limit %d (%s %s)", depth, w.lim.Depth, w.lim.Kind, NameDepth))
	case entries > w.lim.Entries:
		w.fail(n, fmt.Sprintf(what+" exceeds limit %d (%s %s)", w.lim.Entries, w.lim.Entries, w.lim.Kind, NameEntries))
	case w.nodes > w.lim.Nodes:
		w.fail(n, fmt.Sprintf("more than %d keys and list items exceed limit %d (%s %s)", w.lim.Nodes, w.lim.Nodes, w.lim.Kind, NameNodes))
	}
	return w.err == nil
}

func (w *treeWalk) fail(n ast.Node, msg string) {
	line, col := 1, 1
	if tk := n.GetToken(); tk != nil && tk.Position != nil {
		line, col = max(tk.Position.Line, 1), max(tk.Position.Column, 1)
	}
	w.err = &diag.Error{File: w.file, Line: line, Col: col, Msg: msg}
}

// walk visits the tree as written: aliases are not followed (they are
// references, not copies, until decoded; the decoders bound what they
// build from them).
func (w *treeWalk) walk(n ast.Node, depth int) {
	if w.err != nil {
		return
	}
	switch m := n.(type) {
	case *ast.MappingNode:
		if w.collection(m, len(m.Values), depth+1, false) {
			for _, v := range m.Values {
				w.walk(v.Key, depth+1)
				w.walk(v.Value, depth+1)
			}
		}
	case *ast.MappingValueNode:
		if w.collection(m, 1, depth+1, false) {
			w.walk(m.Key, depth+1)
			w.walk(m.Value, depth+1)
		}
	case *ast.MappingKeyNode:
		w.walk(m.Value, depth)
	case *ast.SequenceNode:
		if w.collection(m, len(m.Values), depth+1, true) {
			for _, v := range m.Values {
				w.walk(v, depth+1)
			}
		}
	case *ast.AnchorNode:
		w.walk(m.Value, depth)
	case *ast.TagNode:
		w.walk(m.Value, depth)
	case *ast.LiteralNode:
		w.scalar(m, len(m.Value.Value))
	case *ast.StringNode:
		w.scalar(m, len(m.Value))
	case ast.ScalarNode:
		if tk := m.GetToken(); tk != nil {
			w.scalar(m, len(tk.Value))
		}
	}
}

// scalar checks a scalar's value, n bytes: never longer than the scalar as
// written, which Check bounded, except on a layout the scan reads in a way
// of its own (a tag alone on a line before a plain scalar's lines).
func (w *treeWalk) scalar(node ast.Node, n int) {
	if n > w.lim.Scalar {
		w.fail(node, fmt.Sprintf("scalar exceeds limit %d bytes (%s %s)", w.lim.Scalar, w.lim.Kind, NameScalar))
	}
}
