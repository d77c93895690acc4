// Package diag is the problem list of autoheal's file parsers (the config
// file and runbook documents): each problem at FILE:LINE:COL, every problem
// of a file at once, in file order. It knows nothing of what is parsed.
package diag

import (
	"cmp"
	"fmt"
	"math"
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

// Suggest helps with a misspelt word: " (did you mean %q?)" with the
// closest known word when there is one; else, when label is set, the list
// of known ones under that label; else "".
func Suggest(word string, known []string, label string) string {
	best, bestDist := "", 3 // more than 2 edits is another word, not a typo
	if len(known) > 1000 {
		return "" // a search too costly for every problem of a huge file
	}
	for _, k := range known {
		d := editDistance(strings.ToLower(word), strings.ToLower(k))
		if d < bestDist && d <= max(len(word), len(k))/2 { // "z" is no typo of "a"
			best, bestDist = k, d
		}
	}
	switch {
	case best != "":
		return fmt.Sprintf(" (did you mean %q?)", best)
	case label != "":
		return " (" + label + ": " + strings.Join(known, ", ") + ")"
	}
	return ""
}

// editDistance is the Levenshtein distance between a and b, or a large
// number when they are too long for a typo.
func editDistance(a, b string) int {
	if len(a) > 200 || len(b) > 200 {
		return math.MaxInt
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
