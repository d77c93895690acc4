package runbook

import "github.com/autoheal/autoheal/internal/diag"

// Error is one problem in a document, at FILE:LINE:COL.
type Error = diag.Error

// Errors are every problem found in one document, in file order. Parse
// returns them as *Errors, never empty.
type Errors = diag.Errors
