package runbook

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/token"
)

// A document is not decoded straight into Document: the YAML decoder stops
// at its first problem and loses positions. Parse first turns the syntax
// tree into a tree of nodes, each knowing where it was written, with
// anchors, aliases and merge keys expanded; then it reads the Document out
// of that tree, reporting every problem at its place. Inputs, whose shape
// depends on the action, are kept as nodes until their action is known.

// kind is the type of a node's value.
type kind uint8

const (
	kindNull kind = iota
	kindString
	kindInt
	kindFloat
	kindBool
	kindMap
	kindList
)

// node is one value of the document and where it was written. For a
// mapping written in block style, the place is its first key, which is
// what a reader looks at; for a list item that is a mapping, that is the
// "name" of "- name: restart".
type node struct {
	kind      kind
	line, col int
	text      string  // a scalar as written (the value of a string)
	i         int64   // kindInt
	f         float64 // kindFloat
	b         bool    // kindBool
	entries   []entry // kindMap, in the order written
	items     []*node // kindList
}

// entry is one key of a mapping and its value.
type entry struct {
	key       string
	line, col int // of the key
	val       *node
}

func (n *node) scalar() bool {
	switch n.kind {
	case kindString, kindInt, kindFloat, kindBool:
		return true
	}
	return false
}

// describe names a value for "got ..." in messages.
func (n *node) describe() string {
	switch n.kind {
	case kindNull:
		return "nothing"
	case kindMap:
		return "a mapping"
	case kindList:
		return "a list"
	}
	return strconv.Quote(n.text)
}

// value returns the node as the Go value Document.Inputs holds: string,
// int64, float64, bool, nil, map[string]any or []any.
func (n *node) value() any {
	switch n.kind {
	case kindString:
		return n.text
	case kindInt:
		return n.i
	case kindFloat:
		return n.f
	case kindBool:
		return n.b
	case kindMap:
		m := make(map[string]any, len(n.entries))
		for _, e := range n.entries {
			m[e.key] = e.val.value()
		}
		return m
	case kindList:
		l := make([]any, len(n.items))
		for i, it := range n.items {
			l[i] = it.value()
		}
		return l
	}
	return nil
}

// Limits on the tree: aliases let a small file describe a huge tree (the
// "billion laughs"), and a document never needs much depth or many values.
const (
	maxDepth = 64
	maxNodes = 100_000
)

// builder turns a syntax tree into nodes.
type builder struct {
	file    string
	anchors map[string]ast.Node
	errs    Errors
	nodes   int
	tooBig  bool // reported once; the build stops
}

func (b *builder) errorf(tk *token.Token, format string, args ...any) {
	line, col := tokenPos(tk)
	b.errs = append(b.errs, Error{File: b.file, Line: line, Col: col, Msg: fmt.Sprintf(format, args...)})
}

func tokenPos(tk *token.Token) (line, col int) {
	if tk == nil || tk.Position == nil || tk.Position.Line < 1 {
		return 1, 1
	}
	return tk.Position.Line, max(tk.Position.Column, 1)
}

// buildTree returns the tree of the body of a document.
func buildTree(file string, body ast.Node) (*node, Errors) {
	b := &builder{file: file, anchors: map[string]ast.Node{}}
	ast.Walk(anchorCollector(b.anchors), body)
	n := b.build(body, 0)
	return n, b.errs
}

// anchorCollector records every &anchor by name so that aliases can be
// followed. A redefined anchor keeps its last definition, a simplification
// that only matters for files that reuse anchor names.
type anchorCollector map[string]ast.Node

func (a anchorCollector) Visit(n ast.Node) ast.Visitor {
	if an, ok := n.(*ast.AnchorNode); ok && an.Name != nil {
		a[an.Name.String()] = an.Value
	}
	return a
}

func (b *builder) build(n ast.Node, depth int) *node {
	if n == nil || b.tooBig {
		return &node{kind: kindNull}
	}
	line, col := tokenPos(n.GetToken())
	// What cannot be read is reported, and read as an empty value.
	null := &node{kind: kindNull, line: line, col: col}
	if b.nodes++; b.nodes > maxNodes || depth > maxDepth {
		b.tooBig = true
		b.errorf(n.GetToken(), "the document is too large or too deeply nested (aliases?)")
		return null
	}
	switch m := n.(type) {
	case *ast.NullNode:
		return &node{kind: kindNull, line: line, col: col}
	case *ast.AnchorNode:
		return b.build(m.Value, depth+1)
	case *ast.AliasNode:
		return b.alias(m, depth, line, col)
	case *ast.TagNode:
		return b.tag(m, depth)
	case *ast.StringNode:
		return &node{kind: kindString, line: line, col: col, text: m.Value}
	case *ast.LiteralNode:
		return &node{kind: kindString, line: line, col: col, text: m.Value.Value}
	case *ast.IntegerNode:
		return integer(m, line, col)
	case *ast.FloatNode:
		return &node{kind: kindFloat, line: line, col: col, text: m.Token.Value, f: m.Value}
	case *ast.InfinityNode:
		return &node{kind: kindFloat, line: line, col: col, text: m.Token.Value, f: m.Value}
	case *ast.NanNode:
		return &node{kind: kindFloat, line: line, col: col, text: m.Token.Value, f: math.NaN()}
	case *ast.BoolNode:
		return &node{kind: kindBool, line: line, col: col, text: m.Token.Value, b: m.Value}
	case *ast.SequenceNode:
		return b.sequence(m, depth, line, col)
	case *ast.MappingNode, *ast.MappingValueNode:
		return b.mapping(n, depth)
	}
	b.errorf(n.GetToken(), "unexpected %s", n.Type())
	return null
}

// alias builds the value an alias at line:col stands for; an unknown
// alias reads as null.
func (b *builder) alias(m *ast.AliasNode, depth, line, col int) *node {
	target, ok := b.anchors[m.Value.String()]
	if !ok {
		b.errorf(m.GetToken(), "unknown alias %q", m.Value.String())
		return &node{kind: kindNull, line: line, col: col}
	}
	v := b.build(target, depth+1)
	if v.scalar() || v.kind == kindNull {
		// A scalar is reported where the alias is, which is where the
		// reader looks; a mapping keeps the places of its own keys.
		c := *v
		c.line, c.col = line, col
		return &c
	}
	return v
}

// tag builds a tagged value: !!str makes a scalar a string, the other
// standard tags change nothing, and any other tag is refused.
func (b *builder) tag(m *ast.TagNode, depth int) *node {
	tag := ""
	if m.Start != nil {
		tag = m.Start.Value
	}
	v := b.build(m.Value, depth+1)
	switch {
	case tag == "!!str" && v.scalar():
		v.kind = kindString
	case strings.HasPrefix(tag, "!!"):
		// The standard tags say what the value already is.
	default:
		b.errorf(m.GetToken(), "tag %s is not supported", tag)
	}
	return v
}

// integer builds an integer; one above MaxInt64 is kept as a float.
func integer(m *ast.IntegerNode, line, col int) *node {
	v := &node{kind: kindInt, line: line, col: col, text: m.Token.Value}
	switch i := m.Value.(type) {
	case int64:
		v.i = i
	case uint64:
		if i <= math.MaxInt64 {
			v.i = int64(i)
		} else {
			v.kind, v.f = kindFloat, float64(i)
		}
	}
	return v
}

// sequence builds a list; an item with no place of its own (an empty one)
// takes the list's.
func (b *builder) sequence(m *ast.SequenceNode, depth, line, col int) *node {
	v := &node{kind: kindList, line: line, col: col}
	for _, item := range m.Values {
		it := b.build(item, depth+1)
		if it.line == 0 {
			it.line, it.col = line, col
		}
		v.items = append(v.items, it)
	}
	return v
}

// mapping builds a mapping with YAML merge keys (<<: *base, or a list of
// them) expanded as the YAML spec says: keys written in the mapping win
// over merged ones, and an earlier merged mapping wins over a later one.
func (b *builder) mapping(n ast.Node, depth int) *node {
	v := &node{kind: kindMap}
	var pairs []*ast.MappingValueNode
	switch m := n.(type) {
	case *ast.MappingNode:
		pairs = m.Values
		if m.IsFlowStyle || len(pairs) == 0 {
			v.line, v.col = tokenPos(m.Start)
		}
	case *ast.MappingValueNode:
		pairs = []*ast.MappingValueNode{m}
	}
	if v.line == 0 && len(pairs) > 0 {
		v.line, v.col = tokenPos(pairs[0].Key.GetToken())
	}
	index := map[string]int{}
	merged := map[string]bool{}
	add := func(e entry, fromMerge bool) {
		i, seen := index[e.key]
		switch {
		case !seen:
			index[e.key] = len(v.entries)
			v.entries = append(v.entries, e)
			merged[e.key] = fromMerge
		case merged[e.key] && !fromMerge:
			v.entries[i] = e
			merged[e.key] = false
		}
	}
	var merges []*node
	for _, mv := range pairs {
		if b.tooBig {
			return v
		}
		if mv.Key.IsMergeKey() {
			src := b.build(mv.Value, depth+1)
			switch src.kind {
			case kindMap:
				merges = append(merges, src)
				continue
			case kindList:
				ok := true
				for _, it := range src.items {
					ok = ok && it.kind == kindMap
				}
				if ok {
					merges = append(merges, src.items...)
					continue
				}
			}
			b.errorf(mv.Key.GetToken(), "<< must merge a mapping or a list of mappings, like <<: *defaults")
			continue
		}
		k, ok := b.keyText(mv.Key, depth)
		if !ok {
			b.errorf(mv.Key.GetToken(), "keys must be plain strings")
			continue
		}
		e := entry{key: k, val: b.build(mv.Value, depth+1)}
		e.line, e.col = tokenPos(mv.Key.GetToken())
		if e.val.kind == kindNull {
			// An empty value ("key:") has no place of its own: its token
			// is wherever the parser stopped.
			e.val = &node{kind: kindNull, line: e.line, col: e.col}
		}
		add(e, false)
	}
	for _, src := range merges {
		for _, e := range src.entries {
			add(e, true)
		}
	}
	return v
}

func (b *builder) keyText(k ast.MapKeyNode, depth int) (string, bool) {
	var n ast.Node = k
	if mk, ok := n.(*ast.MappingKeyNode); ok {
		n = mk.Value
	}
	v := b.build(n, depth+1)
	return v.text, v.scalar()
}
