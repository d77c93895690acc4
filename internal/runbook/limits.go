package runbook

import (
	"github.com/autoheal/autoheal/internal/limits"
)

// ReadFile reads a document file, at most limits.Document.Size+1 bytes of
// it: a larger file is refused (as *diag.Error) without being read whole.
func ReadFile(path string) ([]byte, error) {
	return limits.ReadFile(path, limits.Document)
}

// checkCounts refuses a document with more steps or parameters than
// limits.Steps and limits.DocParameters, at the first one beyond the
// limit, before any of them is read. It reports whether the counts are
// within the limits.
func (p *docParser) checkCounts(tree *node) bool {
	ok := true
	for _, e := range tree.entries {
		switch {
		case e.key == "mainSteps" && e.val.kind == kindList && len(e.val.items) > limits.Steps:
			p.errorf(e.val.items[limits.Steps], "mainSteps: %d exceeds limit %d (steps per document)", len(e.val.items), limits.Steps)
			ok = false
		case e.key == "parameters" && e.val.kind == kindMap && len(e.val.entries) > limits.DocParameters:
			beyond := e.val.entries[limits.DocParameters]
			p.errorAt(beyond.line, beyond.col, "parameters: %d exceeds limit %d (parameters per document)", len(e.val.entries), limits.DocParameters)
			ok = false
		}
	}
	return ok
}
