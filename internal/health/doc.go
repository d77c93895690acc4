// Package health probes instances and turns probe results into health
// transitions.
//
// It owns the probers (process, tcp, http, exec), the threshold counting (a
// pure Counter: consecutive results in, transitions out; until a first
// healthy result, failures count only against a start-up deadline) and the
// Checker goroutine that runs one prober on a schedule and reports
// transitions only.
//
// A probe result is not an error: a refused connection or an HTTP 500 is a
// Failure with an output, while an error means the probe could not run at
// all (Kubernetes probe/tcp style). The package must not know what an
// instance, a group or a provider is: an exec check is a function the caller
// hands in, and what a transition means (replace, deregister) is the
// caller's business.
package health
