// Package diag is the problem list of autoheal's file parsers (the config
// file and runbook documents): each problem at FILE:LINE:COL, every problem
// of a file at once, in file order. It knows nothing of what is parsed.
package diag

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Error is one problem in a file. Line and Col are 1-based and point at the
// offending value, or at the key or list item that lacks a required field;
// they are 0 when the problem has no place in the file (it cannot be read,
// or the value was built in code).
type Error struct {
	File string
	Line int
	Col  int
	Msg  string
}

// Error renders "FILE:LINE:COL: message", the form editors and CI annotate.
func (e Error) Error() string {
	switch {
	case e.Line > 0:
		return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Col, e.Msg)
	case e.File != "":
		return e.File + ": " + e.Msg
	}
	return e.Msg
}

// Errors are every problem found in one file, in file order, as returned
// by Err: never empty.
type Errors []Error

// Error renders one Error per line.
func (es *Errors) Error() string {
	lines := make([]string, len(*es))
	for i, e := range *es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Max bounds a report: past a hundred problems the first ones are what to
// fix, and a file that expands through aliases could otherwise produce
// millions.
const Max = 100

// Err returns es sorted into file order, without exact duplicates (a
// mapping merged in twice through an alias is checked twice) and capped at
// Max, as an error; or nil when there is no problem, keeping a nil *Errors
// out of a non-nil error interface.
func (es Errors) Err() error {
	if len(es) == 0 {
		return nil
	}
	slices.SortStableFunc(es, func(a, b Error) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Col, b.Col))
	})
	es = slices.Compact(es)
	if len(es) > Max {
		last := es[Max-1]
		last.Msg = fmt.Sprintf("too many problems (%d): fix these first", len(es))
		es = append(es[:Max-1:Max-1], last)
	}
	return &es
}
