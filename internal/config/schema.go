package config

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/token"

	"github.com/autoheal/autoheal/internal/diag"
)

// The schema check walks the syntax tree beside the Go types of Config
// before anything is decoded. It exists because the decoder stops at its
// first problem, and reports custom-type errors (a bad duration) and some
// conversions (1.5 silently truncated into an int) with no position or not
// at all. Walking the tree ourselves lets Parse report every unknown field,
// wrong type and bad duration of a file at once, each at its own place, and
// remember where every value was written for the validation that follows.
// Because it is driven by reflection over the real types, a field added to
// a feature's type is checked with no change here.

// path names a value of the document from its root: struct fields as
// ".name", list items as "[i]", map keys as `["key"]`. Its String is both
// the key under which the value's position is stored and, for a Config
// built in code, the way a problem names the value.
type path []string

func (p path) field(name string) path { return append(p[:len(p):len(p)], "."+name) }
func (p path) index(i int) path       { return append(p[:len(p):len(p)], "["+strconv.Itoa(i)+"]") }
func (p path) key(k string) path      { return append(p[:len(p):len(p)], "["+strconv.Quote(k)+"]") }

func (p path) String() string { return strings.TrimPrefix(strings.Join(p, ""), ".") }

// source is where a parsed config's values were written.
type source struct {
	file  string
	nodes map[string]place // by path.String()
}

// place is where one value was written: the key that holds it (for a list
// item, the item's first token), and the value itself when it is a
// non-empty scalar.
type place struct {
	keyLine, keyCol int
	valLine, valCol int
}

// pos returns where a problem with the value at p is reported: at the value
// itself when it is a scalar (unless atKey), else at the key that holds it;
// for an absent value, at the nearest enclosing value that is present, so a
// missing field points at the mapping that lacks it.
func (s *source) pos(p path, atKey bool) (line, col int) {
	for q := p; ; q = q[:len(q)-1] {
		if pl, ok := s.nodes[q.String()]; ok {
			if !atKey && len(q) == len(p) && pl.valLine > 0 {
				return pl.valLine, pl.valCol
			}
			return pl.keyLine, pl.keyCol
		}
		if len(q) == 0 {
			return 1, 1
		}
	}
}

// has reports whether the value at p was written in the file, so that
// messages can tell a written value from a default.
func (s *source) has(p path) bool {
	if s == nil {
		return false
	}
	_, ok := s.nodes[p.String()]
	return ok
}

// Limits on the walk: aliases let a small file describe a huge tree (the
// "billion laughs"), and a config never needs much depth or many values (a
// hundred groups of every field is about ten thousand).
const (
	maxDepth = 64
	maxSteps = 200_000
)

type checker struct {
	src     *source
	anchors map[string]ast.Node
	errs    Errors
	steps   int
	tooBig  bool // reported once; the walk stops
	fields  map[reflect.Type]map[string]reflect.StructField
}

// checkSchema checks body against the type of Config and returns the
// positions of every value it met and every problem it found.
func checkSchema(file string, body ast.Node) (*source, Errors) {
	c := &checker{
		src:     &source{file: file, nodes: map[string]place{}},
		anchors: map[string]ast.Node{},
		fields:  map[reflect.Type]map[string]reflect.StructField{},
	}
	ast.Walk(anchorCollector(c.anchors), body)
	c.record(nil, firstToken(c.resolve(body), body), body)
	c.walk(body, reflect.TypeFor[Config](), nil, "config", 0)
	return c.src, c.errs
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

func (c *checker) errorf(tk *token.Token, format string, args ...any) {
	line, col := 1, 1
	if tk != nil && tk.Position != nil {
		line, col = tk.Position.Line, tk.Position.Column
	}
	c.errs = append(c.errs, Error{File: c.src.file, Line: line, Col: col, Msg: fmt.Sprintf(format, args...)})
}

// resolve looks through anchors, tags and aliases to the value they stand
// for. A nil result is an empty value.
func (c *checker) resolve(n ast.Node) ast.Node {
	for range maxDepth {
		switch m := n.(type) {
		case *ast.AnchorNode:
			n = m.Value
		case *ast.TagNode:
			if _, null := m.Value.(*ast.NullNode); m.Value == nil || null {
				// The decoder dereferences the missing value and panics
				// ("tokens: !t # comment" took autoheal validate down).
				c.errorf(m.GetToken(), "tag %s has no value", m.Start.Value)
				return nil
			}
			n = m.Value
		case *ast.AliasNode:
			target, ok := c.anchors[m.Value.String()]
			if !ok {
				c.errorf(m.GetToken(), "unknown alias %q", m.Value.String())
				return nil
			}
			n = target
		case *ast.NullNode:
			return nil
		default:
			return n
		}
	}
	return nil
}

var (
	durationType = reflect.TypeFor[Duration]()
	byteSizeType = reflect.TypeFor[ByteSize]()
)

// walk checks node n against type t. p is the value's path, name how
// messages call it.
func (c *checker) walk(n ast.Node, t reflect.Type, p path, name string, depth int) {
	if c.tooBig {
		return
	}
	n = c.resolve(n)
	if n == nil {
		return // an empty value is the zero value: the default
	}
	if c.steps++; c.steps > maxSteps || depth > maxDepth {
		if !c.tooBig {
			c.tooBig = true
			c.errorf(n.GetToken(), "%s: the document is too large or too deeply nested (aliases?)", name)
		}
		return
	}
	switch {
	case t == durationType:
		if s, ok := scalarText(n); !ok {
			c.errorf(n.GetToken(), "%s: expected a duration like 10s, got %s", name, describe(n))
		} else if _, err := ParseDuration(s); err != nil {
			c.errorf(n.GetToken(), "%s: %v", name, err)
		}
	case t == byteSizeType:
		if s, ok := scalarText(n); !ok {
			c.errorf(n.GetToken(), "%s: expected a size like 10MiB, got %s", name, describe(n))
		} else if _, err := ParseByteSize(s); err != nil {
			c.errorf(n.GetToken(), "%s: %v", name, err)
		}
	case t.Kind() == reflect.Pointer:
		c.walk(n, t.Elem(), p, name, depth)
	case t.Kind() == reflect.Struct:
		c.structure(n, t, p, name, depth)
	case t.Kind() == reflect.Map:
		c.mapping(n, t, p, name, depth)
	case t.Kind() == reflect.Slice:
		c.list(n, t, p, name, depth)
	default:
		c.scalar(n, t, name)
	}
}

// mapping checks a mapping against map type t, whose keys are strings.
func (c *checker) mapping(n ast.Node, t reflect.Type, p path, name string, depth int) {
	if t.Key().Kind() != reflect.String {
		panic("config: only maps with string keys are supported, not " + t.String())
	}
	if _, ok := mappingValues(n); !ok {
		c.errorf(n.GetToken(), "%s: expected a mapping, got %s", name, describe(n))
		return
	}
	for _, mv := range c.entries(n, depth) {
		if c.tooBig {
			return
		}
		k, ok := c.keyText(mv.Key)
		if !ok {
			c.errorf(mv.Key.GetToken(), "%s: keys must be plain strings", name)
			continue
		}
		kp := p.key(k)
		c.record(kp, mv.Key.GetToken(), mv.Value)
		c.walk(mv.Value, t.Elem(), kp, name+"."+k, depth+1)
	}
}

// list checks a sequence against slice type t.
func (c *checker) list(n ast.Node, t reflect.Type, p path, name string, depth int) {
	seq, ok := n.(*ast.SequenceNode)
	if !ok {
		c.errorf(n.GetToken(), "%s: expected a list, got %s", name, describe(n))
		return
	}
	for i, item := range seq.Values {
		if c.tooBig {
			return
		}
		ip := p.index(i)
		c.record(ip, firstToken(c.resolve(item), item), item)
		c.walk(item, t.Elem(), ip, name+" item", depth+1)
	}
}

// scalar checks a scalar against type t: a string, a number, a boolean.
func (c *checker) scalar(n ast.Node, t reflect.Type, name string) {
	switch t.Kind() {
	case reflect.String:
		if _, ok := scalarText(n); !ok {
			c.errorf(n.GetToken(), "%s: expected a string, got %s", name, describe(n))
		}
	case reflect.Float64:
		switch n.(type) {
		case *ast.IntegerNode, *ast.FloatNode:
		case *ast.InfinityNode, *ast.NanNode:
			// Comparisons with them are always false or always true: a
			// threshold of .inf is a typo, never a rule.
			c.errorf(n.GetToken(), "%s: expected a finite number, got %s", name, describe(n))
		default:
			c.errorf(n.GetToken(), "%s: expected a number, got %s", name, describe(n))
		}
	case reflect.Bool:
		if _, ok := n.(*ast.BoolNode); !ok {
			c.errorf(n.GetToken(), "%s: expected true or false, got %s", name, describe(n))
		}
	case reflect.Int:
		in, ok := n.(*ast.IntegerNode)
		if !ok {
			c.errorf(n.GetToken(), "%s: expected an integer, got %s", name, describe(n))
			return
		}
		// Sizes in the schema are counts and ports; anything beyond int32 is
		// a typo, and refusing it keeps arithmetic on them from overflowing.
		inRange := false
		switch v := in.Value.(type) {
		case int64: // the decoder's type for negative numbers
			inRange = v >= math.MinInt32
		case uint64: // and for the others
			inRange = v <= math.MaxInt32
		}
		if !inRange {
			c.errorf(n.GetToken(), "%s: %s is out of range", name, in.Token.Value)
		}
	default:
		panic("config: no schema check for " + t.String())
	}
}

// structure checks a mapping against struct type t: every key must be one
// of its yaml fields.
func (c *checker) structure(n ast.Node, t reflect.Type, p path, name string, depth int) {
	if _, ok := mappingValues(n); !ok {
		c.errorf(n.GetToken(), "%s: expected a mapping, got %s", name, describe(n))
		return
	}
	fields, ok := c.fields[t]
	if !ok {
		fields = yamlFields(t)
		c.fields[t] = fields
	}
	for _, mv := range c.entries(n, depth) {
		if c.tooBig {
			return
		}
		k, ok := c.keyText(mv.Key)
		if !ok {
			c.errorf(mv.Key.GetToken(), "%s: keys must be plain strings", name)
			continue
		}
		f, ok := fields[k]
		if !ok {
			c.errorf(mv.Key.GetToken(), "unknown field %q%s", k, suggest(k, t))
			continue
		}
		fp := p.field(k)
		c.record(fp, mv.Key.GetToken(), mv.Value)
		c.walk(mv.Value, f.Type, fp, k, depth+1)
	}
}

// entries returns a mapping's pairs with YAML merge keys (<<: *base)
// expanded, a later pair replacing an earlier one with the same key. That
// is the decoder's rule, so the values checked here are the values that
// will be decoded. It differs from the YAML spec in one case, a key written
// before a merge that also sets it (the spec keeps the written key, the
// decoder the merged one), so that case is an error rather than a surprise.
func (c *checker) entries(n ast.Node, depth int) []*ast.MappingValueNode {
	if c.tooBig {
		return nil
	}
	values, _ := mappingValues(n)
	var out []*ast.MappingValueNode
	index := map[string]int{}    // key -> position in out
	written := map[string]bool{} // keys written in this mapping, not merged
	add := func(mv *ast.MappingValueNode, merged bool) {
		// Merges expand like aliases do, so they count against the same
		// budget.
		if c.steps++; c.steps > maxSteps && !c.tooBig {
			c.tooBig = true
			c.errorf(mv.Key.GetToken(), "the document is too large or too deeply nested (aliases?)")
		}
		k, ok := c.keyText(mv.Key)
		if !ok {
			out = append(out, mv) // reported by the caller
			return
		}
		i, seen := index[k]
		switch {
		case !seen:
			index[k] = len(out)
			out = append(out, mv)
		case merged && written[k]:
			c.errorf(out[i].Key.GetToken(), "%q is replaced by the << merge after it: put << before the keys that override it", k)
		default:
			out[i] = mv
		}
		if !merged {
			written[k] = true
		}
	}
	for _, mv := range values {
		if !mv.Key.IsMergeKey() {
			add(mv, false)
			continue
		}
		if depth > maxDepth {
			continue
		}
		// The decoder merges a single mapping only, not the list of
		// mappings the YAML merge key spec also allows.
		v := c.resolve(mv.Value)
		if _, ok := mappingValues(v); !ok {
			c.errorf(mv.Key.GetToken(), "<< must merge one mapping, like <<: *defaults")
			continue
		}
		for _, m := range c.entries(v, depth+1) {
			add(m, true)
		}
	}
	return out
}

// record remembers where the value at p was written.
func (c *checker) record(p path, key *token.Token, value ast.Node) {
	var pl place
	if key != nil && key.Position != nil {
		pl.keyLine, pl.keyCol = key.Position.Line, key.Position.Column
	}
	if v := c.resolve(value); v != nil {
		if _, ok := scalarText(v); ok {
			// The token of the value as written: for an alias, the alias,
			// which is where the reader looks.
			if tk := value.GetToken(); tk != nil && tk.Position != nil {
				pl.valLine, pl.valCol = tk.Position.Line, tk.Position.Column
			}
		}
	}
	if pl.keyLine == 0 {
		pl.keyLine, pl.keyCol = pl.valLine, pl.valCol
	}
	c.src.nodes[p.String()] = pl
}

func (c *checker) keyText(k ast.MapKeyNode) (string, bool) {
	var n ast.Node = k
	if mk, ok := n.(*ast.MappingKeyNode); ok {
		n = mk.Value
	}
	n = c.resolve(n)
	if n == nil {
		return "", false
	}
	return scalarText(n)
}

// mappingValues returns the pairs of a mapping node. A one-pair mapping
// may come as a bare MappingValueNode.
func mappingValues(n ast.Node) ([]*ast.MappingValueNode, bool) {
	switch m := n.(type) {
	case *ast.MappingNode:
		return m.Values, true
	case *ast.MappingValueNode:
		return []*ast.MappingValueNode{m}, true
	}
	return nil, false
}

// scalarText returns a scalar's text as the decoder reads it into a string.
func scalarText(n ast.Node) (string, bool) {
	switch m := n.(type) {
	case *ast.StringNode:
		return m.Value, true
	case *ast.LiteralNode:
		return m.Value.Value, true
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.InfinityNode, *ast.NanNode:
		return m.GetToken().Value, true
	}
	return "", false
}

// describe names a node for "got ..." in messages.
func describe(n ast.Node) string {
	if s, ok := scalarText(n); ok {
		return strconv.Quote(s)
	}
	switch n.(type) {
	case *ast.MappingNode, *ast.MappingValueNode:
		return "a mapping"
	case *ast.SequenceNode:
		return "a list"
	}
	return n.Type().String()
}

// firstToken is where a list item is reported: its first key when it is a
// mapping (the "name" of "- name: pet"), else its own first token.
func firstToken(resolved, written ast.Node) *token.Token {
	if vs, ok := mappingValues(resolved); ok && len(vs) > 0 && resolved == written {
		return vs[0].Key.GetToken()
	}
	if written == nil {
		return nil
	}
	return written.GetToken()
}

// yamlFields maps the YAML names of t's fields to the fields, as the
// decoder names them: the yaml tag, else the lower-cased field name.
func yamlFields(t reflect.Type) map[string]reflect.StructField {
	fields := map[string]reflect.StructField{}
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		switch tag {
		case "-":
			continue
		case "":
			tag = strings.ToLower(f.Name)
		}
		fields[tag] = f
	}
	return fields
}

// suggest helps with a misspelt field: the closest known field when there
// is one, else the list of fields.
func suggest(k string, t reflect.Type) string {
	names := make([]string, 0)
	for name := range yamlFields(t) {
		names = append(names, name)
	}
	slices.Sort(names)
	return diag.Suggest(k, names, "known fields")
}
