// Package runbook owns documents: runbooks in the shape of SSM Automation
// documents (schemaVersion 0.3), with typed parameters and steps with
// retries, timeouts, failure branches and outputs. It parses them from YAML
// or JSON and validates them, reporting every problem as
// FILE:LINE:COL: message (Parse); it binds the parameters of an execution
// (Document.Bind) and substitutes {{ }} references in a step's inputs
// (Render). It will also own their execution.
//
// Values are data, never code: a parameter reaches a script as an
// environment variable, never spliced into its text, and a substituted
// value is never evaluated or searched for references again.
//
// The package must not know about HTTP handlers, the CLI or how documents
// are stored: it takes bytes and values and returns documents, values and
// errors.
package runbook
