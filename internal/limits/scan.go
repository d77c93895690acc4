package limits

import (
	"bytes"
	"fmt"
	"unicode/utf8"

	"github.com/autoheal/autoheal/internal/diag"
)

// The scanner follows YAML's layout line by line, as far as the limits
// need and no further: block collections by indentation, flow collections
// by brackets, and scalars (plain, quoted, block) by where they start and
// end. It does not check syntax (the parser does, on a file the scan let
// through). It counts exactly what the parser builds from the YAML people
// write (TestAgreesWithParser, on every file of the repository), and it
// must never count less than the parser on any input, or the limits could
// be gone around (FuzzCheck). JSON is YAML's flow style and is scanned as
// such.
//
// The scan is linear in the file's size: every loop moves forward, and
// nothing is pushed once a limit is exceeded.

// kind of a block level, known once its first entry has been read.
type kind uint8

const (
	kindUnknown kind = iota // pushed for a deeper line, not yet read
	kindMap
	kindSeq
	kindScalar // a multi-line scalar value: its lines are not entries
)

// level is one open block collection: the column of its entries.
type level struct {
	indent  int
	kind    kind
	entries int
}

// flow is one open flow collection ([ or {).
type flow struct {
	seq     bool
	entries int
	fresh   bool // at the start of an entry: after [, { or ,
	// pair is set when the entry of a flow list is a key and its value
	// ([a: b]): the entry is then a mapping of one pair, a level deeper.
	pair bool
}

type scanner struct {
	lim  Limits
	file string
	data []byte
	err  *diag.Error

	line      int // of the current line, 1-based
	lineStart int // offset of the current line in data

	blocks []level
	flows  []flow
	nodes  int

	// expectChild is set when the last line ended a key or a "-" with no
	// value: a deeper next line opens a nested collection. When it is
	// clear, a deeper line continues the last scalar. tagged is set when
	// it ended with a tag: the next line opens a level at any indentation.
	expectChild bool
	tagged      bool
	emptyItem   bool // the last line ended with an empty "-"
	// A scalar that may go on over the next lines.
	quote       byte // open quote, or 0
	block       bool // in a block scalar (| or >)
	blockParent int  // whose lines are indented more than this
	blanks      int  // blank lines since the last line with content
	scalarLen   int
	scalarLine  int
	scalarStart int // offset of its line in data
	scalarOff   int // offset in its line
}

func (s *scanner) run() {
	s.line = 1
	for off := 0; off < len(s.data) && s.err == nil; s.line++ {
		// A line ends at LF, CRLF or a lone CR, as YAML and the parser
		// have it: a file of CR-ended lines is as nested as one of LF.
		end := bytes.IndexAny(s.data[off:], "\r\n")
		next := off + end + 1
		switch {
		case end < 0:
			end, next = len(s.data)-off, len(s.data)
		case s.data[off+end] == '\r' && next < len(s.data) && s.data[next] == '\n':
			next++
		}
		s.lineStart = off
		s.scanLine(s.data[off : off+end])
		off = next
	}
}

// fail records the first problem at offset i of the current line.
func (s *scanner) fail(i int, format string, args ...any) {
	if s.err != nil {
		return
	}
	col := utf8.RuneCount(s.data[s.lineStart:s.lineStart+i]) + 1
	s.err = &diag.Error{File: s.file, Line: s.line, Col: col, Msg: fmt.Sprintf(format, args...)}
}

func (s *scanner) scanLine(l []byte) {
	if s.block {
		ind := indentOf(l)
		if (ind == len(l) || ind > s.blockParent) && !marker(l, "---") && !marker(l, "...") {
			s.addScalar(len(l) + 1)
			return
		}
		s.block = false
	}
	if s.quote != 0 || len(s.flows) > 0 {
		s.blanks = 0
	}
	if s.quote != 0 {
		s.addScalar(1) // the line break
		i := s.quoted(l, 0, s.quote)
		if i >= 0 && len(s.flows) > 0 {
			s.flow(l, i)
		}
		return
	}
	if len(s.flows) > 0 {
		s.flow(l, 0)
		return
	}
	ind := indentOf(l)
	if ind == len(l) {
		s.blanks++ // a line break in a multi-line plain scalar
		return
	}
	if l[ind] == '#' {
		return
	}
	if ind == 0 && (marker(l, "---") || marker(l, "...")) {
		s.blocks, s.expectChild, s.tagged = s.blocks[:0], true, false // a new document
		// "--- |" or "--- text": the document's node starts on the line.
		if i := skipSpaces(l, 3); i < len(l) && l[i] != '#' && l[0] == '-' {
			s.place(l, i)
		}
		return
	}
	if ind == 0 && l[0] == '%' && len(s.blocks) == 0 {
		return // a directive, before a document's content
	}
	s.place(l, ind)
}

// place finds the block level the line at indentation ind belongs to,
// opening or closing levels, then scans its content.
func (s *scanner) place(l []byte, ind int) {
	more := s.blanks + len(l) - ind + 1 // if the line goes on a scalar
	s.blanks = 0
	if s.tagged {
		s.tagged, s.expectChild = false, false
		s.push(ind, kindUnknown)
		s.content(l, ind)
		return
	}
	if len(s.blocks) == 1 && s.top().kind == kindScalar {
		// A document that is a plain scalar: its lines go on at any
		// indentation.
		s.addScalar(more)
		return
	}
	for len(s.blocks) > 0 && s.top().indent > ind {
		s.blocks = s.blocks[:len(s.blocks)-1]
	}
	item := seqIndicator(l, ind)
	switch {
	case len(s.blocks) > 0 && s.top().kind == kindScalar:
		s.addScalar(more) // more lines of a plain scalar
		return
	case len(s.blocks) == 0:
		s.push(ind, kindUnknown)
	case s.top().indent < ind:
		if !s.expectChild {
			s.addScalar(more)
			return
		}
		s.push(ind, kindUnknown)
	case s.expectChild && item && s.top().kind == kindMap:
		s.push(ind, kindUnknown) // "key:" then "- item" at the key's column
	case s.expectChild && s.emptyItem && s.top().kind == kindSeq && s.top().indent == ind && s.startsKey(l, ind):
		// The parser takes a key at the column of an empty "-" above it
		// as the item's value, not as the next key of the mapping around
		// the list ("-" then "a:" at one column nests, line after line).
		s.push(ind, kindUnknown)
	case s.top().kind == kindSeq && !item && len(s.blocks) > 1 && s.blocks[len(s.blocks)-2].indent == ind && s.startsKey(l, ind):
		s.blocks = s.blocks[:len(s.blocks)-1] // the next key after such a list
	}
	s.expectChild, s.emptyItem = false, false
	s.content(l, ind)
}

// content scans a line's content from i, its first character, which is
// an entry of the top level: a list item or a key (or a lone scalar).
func (s *scanner) content(l []byte, i int) {
	if s.err != nil {
		return
	}
	j := skipProperties(l, i)
	if j == len(l) || l[j] == '#' {
		if s.top().kind != kindUnknown {
			s.entry(i) // the parser counts it an entry of the level
		}
		s.propertiesEnd(l, i, j) // "&anchor" or "!tag" alone
		return
	}
	i = j
	if explicitIndicator(l, i) {
		s.explicit(l, i)
		return
	}
	fresh := s.top().kind == kindUnknown
	if !fresh || seqIndicator(l, i) || s.startsKey(l, i) {
		s.entry(i) // not a value alone on its line below its key
	}
	for s.err == nil && seqIndicator(l, i) {
		s.setKind(i, kindSeq)
		k := skipSpaces(l, i+1)
		j := skipProperties(l, k) // "- &a - b"
		if j == len(l) || l[j] == '#' {
			s.propertiesEnd(l, k, j)
			s.emptyItem = true
			return
		}
		if !seqIndicator(l, j) && !explicitIndicator(l, j) && !s.startsKey(l, j) {
			s.node(l, j)
			return
		}
		// A compact nested collection: "- - x" or "- key: value", whose
		// entries are at column j.
		s.push(j, kindUnknown)
		s.entry(j)
		i, fresh = j, false
	}
	if explicitIndicator(l, i) {
		s.explicit(l, i) // "- ? key"
		return
	}
	if s.startsKey(l, i) {
		s.setKind(i, kindMap)
		s.value(l, s.node(l, i))
		return
	}
	if fresh {
		s.setKind(i, kindScalar) // "key:" then the value on the next lines
	}
	s.node(l, i)
}

// explicit scans a line that starts with "? " (an explicit key) or ": "
// (its value): the node after the indicator is at its own column, like the
// content of a list item, and may be a collection.
func (s *scanner) explicit(l []byte, i int) {
	s.setKind(i, kindMap)
	if l[i] == '?' {
		s.entry(i)
	}
	j := skipSpaces(l, i+1)
	if j == len(l) || l[j] == '#' {
		s.expectChild = true
		return
	}
	s.push(j, kindUnknown)
	s.content(l, j)
}

func explicitIndicator(l []byte, i int) bool {
	return i < len(l) && (l[i] == '?' || l[i] == ':') && (i+1 == len(l) || isSpace(l[i+1]))
}

// value scans what follows a key's ":" at i.
func (s *scanner) value(l []byte, i int) {
	if i < 0 {
		return
	}
	j := skipSpaces(l, i)
	if j == len(l) || l[j] == '#' {
		s.expectChild = true
		return
	}
	s.node(l, j)
}

// startsKey reports whether the node at i is a key: followed, on this
// line, by ": " or a final ":". It scans nothing else and counts nothing.
func (s *scanner) startsKey(l []byte, i int) bool {
	i = skipProperties(l, i)
	if i == len(l) {
		return false
	}
	switch l[i] {
	case '"', '\'':
		end := quoteEnd(l, i+1, l[i])
		return end >= 0 && keyIndicator(l, skipSpaces(l, end))
	case '[', '{', '|', '>', '#':
		return false
	}
	return keyIndicator(l, plainEnd(l, i, false))
}

// node scans one node starting at i: properties (&anchor, !tag), then a
// scalar or a flow collection. It returns the offset after a key's ":"
// when the node is a key, else -1.
func (s *scanner) node(l []byte, i int) int {
	j := skipProperties(l, i)
	if j == len(l) || l[j] == '#' {
		s.propertiesEnd(l, i, j) // "key: &anchor" then the value below
		return -1
	}
	i = j
	switch l[i] {
	case '"', '\'':
		s.startScalar(i)
		end := s.quoted(l, i+1, l[i])
		if end < 0 {
			return -1
		}
		return s.afterNode(l, end)
	case '[', '{':
		return s.afterNode(l, s.flow(l, i))
	case '|', '>':
		s.block, s.blockParent = true, s.blockIndent()
		s.startScalar(i) // its lines are counted as they come
		return -1
	}
	end := plainEnd(l, i, false)
	s.startScalar(i)
	s.addScalar(end - i)
	if keyIndicator(l, end) {
		return end + 1
	}
	return -1
}

// propertiesEnd notes that the line ends with the properties at [i, j)
// of a node written below. The parser takes the next node as the value of
// a tag whatever its indentation ("- !" then "- x" at the same column is
// a list in a list), so after a tag the next line opens a level.
func (s *scanner) propertiesEnd(l []byte, i, j int) {
	s.expectChild = true
	s.tagged = hasTag(l, i, j)
}

// hasTag reports whether the properties at [i, j) hold a tag: a property
// that starts with "!" ("&a!" is an anchor whose name ends in "!").
func hasTag(l []byte, i, j int) bool {
	for k := i; k < j; k++ {
		if l[k] == '!' && (k == i || isSpace(l[k-1])) {
			return true
		}
	}
	return false
}

// afterNode looks past a quoted scalar or flow collection that ended at i
// for the ":" that makes it a key.
func (s *scanner) afterNode(l []byte, i int) int {
	if i < 0 {
		return -1
	}
	j := skipSpaces(l, i)
	if keyIndicator(l, j) {
		return j + 1
	}
	return -1
}

// blockIndent is the indentation a block scalar's lines must exceed: that
// of the collection holding it, or -1 at the top of a document.
func (s *scanner) blockIndent() int {
	for k := len(s.blocks) - 1; k >= 0; k-- {
		if s.blocks[k].kind != kindScalar && s.blocks[k].kind != kindUnknown {
			return s.blocks[k].indent
		}
	}
	return -1
}

func (s *scanner) top() *level { return &s.blocks[len(s.blocks)-1] }

func (s *scanner) push(indent int, k kind) {
	s.blocks = append(s.blocks, level{indent: indent, kind: k})
}

// setKind fixes the kind of the top level when its first entry tells it,
// and checks the depth when it is a collection.
func (s *scanner) setKind(i int, k kind) {
	t := s.top()
	if t.kind != kindUnknown {
		return
	}
	t.kind = k
	if k != kindScalar {
		s.checkDepth(i)
	}
}

func (s *scanner) depth() int {
	d := len(s.flows)
	for _, f := range s.flows {
		if f.pair {
			d++
		}
	}
	for _, b := range s.blocks {
		if b.kind == kindMap || b.kind == kindSeq {
			d++
		}
	}
	return d
}

func (s *scanner) checkDepth(i int) {
	if d := s.depth(); d > s.lim.Depth {
		s.fail(i, "nesting depth %d exceeds limit %d (%s %s)", d, s.lim.Depth, s.lim.Kind, NameDepth)
	}
}

// entry counts a key or item at i of the top block level.
func (s *scanner) entry(i int) {
	t := s.top()
	t.entries++
	s.count(i, t.entries, t.kind == kindSeq)
}

// count checks the n-th entry of a collection and the file's node count.
func (s *scanner) count(i, n int, seq bool) {
	if n > s.lim.Entries {
		what := "mapping of more than %d keys"
		if seq {
			what = "list of more than %d items"
		}
		s.fail(i, what+" exceeds limit %d (%s %s)", s.lim.Entries, s.lim.Entries, s.lim.Kind, NameEntries)
	}
	if s.nodes++; s.nodes > s.lim.Nodes {
		s.fail(i, "more than %d keys and list items exceed limit %d (%s %s)", s.lim.Nodes, s.lim.Nodes, s.lim.Kind, NameNodes)
	}
}

// startScalar starts counting a scalar at i. Its column is only counted
// (in characters) if it is reported: counting it here would make a long
// line of short scalars quadratic.
func (s *scanner) startScalar(i int) {
	s.scalarLen, s.scalarLine, s.scalarStart, s.scalarOff = 0, s.line, s.lineStart, i
}

// addScalar adds n bytes to the current scalar.
func (s *scanner) addScalar(n int) {
	if s.scalarLen += n; s.scalarLen > s.lim.Scalar && s.err == nil {
		col := utf8.RuneCount(s.data[s.scalarStart:s.scalarStart+s.scalarOff]) + 1
		s.err = &diag.Error{File: s.file, Line: s.scalarLine, Col: col,
			Msg: fmt.Sprintf("scalar exceeds limit %d bytes (%s %s)", s.lim.Scalar, s.lim.Kind, NameScalar)}
	}
}

// flow scans flow collections from i, where one opens or, on a line that
// continues them, 0. It returns the offset after the bracket that closes
// the outermost one, or -1 when they go on to the next line.
func (s *scanner) flow(l []byte, i int) int {
	for i < len(l) && s.err == nil {
		c := l[i]
		switch {
		case c == ' ' || c == '\t':
			i++
		case c == '#' && (i == 0 || l[i-1] == ' ' || l[i-1] == '\t'):
			return -1 // a comment to the end of the line
		case c == '[' || c == '{':
			s.flowEntry(i)
			s.flows = append(s.flows, flow{seq: c == '[', fresh: true})
			s.checkDepth(i)
			i++
		case c == ']' || c == '}':
			i++
			if len(s.flows) > 0 {
				s.flows = s.flows[:len(s.flows)-1]
			}
			if len(s.flows) == 0 {
				return i
			}
		case c == ',':
			if len(s.flows) > 0 {
				f := &s.flows[len(s.flows)-1]
				f.fresh, f.pair = true, false
			}
			i++
		case c == ':' && (i+1 == len(l) || isSpace(l[i+1]) || isFlowIndicator(l[i+1])):
			s.flowKey(i) // its value is not a new entry
			i++
		case c == '"' || c == '\'':
			s.flowEntry(i)
			s.startScalar(i)
			if i = s.quoted(l, i+1, c); i < 0 {
				return -1
			}
			if i < len(l) && l[i] == ':' {
				s.flowKey(i) // "a":1, as JSON writes it
				i++
			}
		default:
			s.flowEntry(i)
			end := plainEnd(l, i, true)
			s.startScalar(i)
			s.addScalar(end - i)
			i = end
		}
	}
	if len(s.flows) == 0 {
		return i
	}
	return -1
}

// flowKey notes the ":" of a key at i in a flow collection. In a flow
// list, the entry is a mapping of one pair: a node and a level more.
func (s *scanner) flowKey(i int) {
	if len(s.flows) == 0 {
		return
	}
	f := &s.flows[len(s.flows)-1]
	if !f.seq || f.pair {
		return
	}
	f.pair = true
	if s.nodes++; s.nodes > s.lim.Nodes {
		s.fail(i, "more than %d keys and list items exceed limit %d (%s %s)", s.lim.Nodes, s.lim.Nodes, s.lim.Kind, NameNodes)
	}
	s.checkDepth(i)
}

// flowEntry counts a node at i when it starts an entry of the innermost
// flow collection.
func (s *scanner) flowEntry(i int) {
	if len(s.flows) == 0 {
		return
	}
	f := &s.flows[len(s.flows)-1]
	if !f.fresh {
		return
	}
	f.fresh = false
	f.entries++
	s.count(i, f.entries, f.seq)
}

// quoted scans a quoted scalar from i, after its opening quote q or at the
// start of a line it continues. It returns the offset after the closing
// quote, or -1 when the scalar goes on to the next line.
func (s *scanner) quoted(l []byte, i int, q byte) int {
	end := quoteEnd(l, i, q)
	if end < 0 {
		s.quote = q
		s.addScalar(len(l) - i)
		return -1
	}
	s.quote = 0
	s.addScalar(end - 1 - i) // the closing quote is not text
	return end
}

// quoteEnd returns the offset after the quote q that closes a scalar
// whose text goes on at i, or -1 when the line ends first. In single
// quotes ” is a quote; in double quotes a backslash escapes.
func quoteEnd(l []byte, i int, q byte) int {
	for ; i < len(l); i++ {
		switch l[i] {
		case '\\':
			if q == '"' {
				i++
			}
		case q:
			if q == '\'' && i+1 < len(l) && l[i+1] == '\'' {
				i++
				continue
			}
			return i + 1
		}
	}
	return -1
}

// plainEnd returns where the plain scalar starting at i ends on its line:
// at a key's ":", a comment, or (in flow) an indicator. It always takes
// the first character, so that scanning goes forward.
func plainEnd(l []byte, i int, inFlow bool) int {
	for j := i + 1; j < len(l); j++ {
		c := l[j]
		switch {
		case c == ':' && (j+1 == len(l) || isSpace(l[j+1]) || inFlow && isFlowIndicator(l[j+1])):
			return j
		case c == '#' && isSpace(l[j-1]):
			return j
		case inFlow && isFlowIndicator(c):
			return j
		}
	}
	return len(l)
}

// keyIndicator reports whether a key's ":" is at i.
func keyIndicator(l []byte, i int) bool {
	return i >= 0 && i < len(l) && l[i] == ':' && (i+1 == len(l) || isSpace(l[i+1]))
}

// seqIndicator reports whether a list item's "-" is at i.
func seqIndicator(l []byte, i int) bool {
	return i < len(l) && l[i] == '-' && (i+1 == len(l) || isSpace(l[i+1]))
}

// skipProperties skips a node's anchor (&a) and tag (!t) and the spaces
// after them.
func skipProperties(l []byte, i int) int {
	for i < len(l) && (l[i] == '&' || l[i] == '!') {
		// The parser ends a tag at a space only: "!\t0" is one tag.
		tag := l[i] == '!'
		for i < len(l) && l[i] != ' ' && (tag || l[i] != '\t') {
			i++
		}
		i = skipSpaces(l, i)
	}
	return i
}

func skipSpaces(l []byte, i int) int {
	for i < len(l) && isSpace(l[i]) {
		i++
	}
	return i
}

func indentOf(l []byte) int {
	i := 0
	for i < len(l) && l[i] == ' ' {
		i++
	}
	return i
}

// marker reports whether the line is the document marker m ("---",
// "...") alone or followed by a space.
func marker(l []byte, m string) bool {
	return bytes.HasPrefix(l, []byte(m)) && (len(l) == len(m) || isSpace(l[len(m)]))
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' }

func isFlowIndicator(c byte) bool {
	return c == ',' || c == '[' || c == ']' || c == '{' || c == '}'
}
