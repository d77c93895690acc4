package config

import "github.com/autoheal/autoheal/internal/diag"

// Error is one problem in a config file, at FILE:LINE:COL.
type Error = diag.Error

// Errors are every problem found in one file, in file order. Load, Parse
// and Validate return them as *Errors, never empty.
type Errors = diag.Errors
