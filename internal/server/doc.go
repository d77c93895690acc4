// Package server builds every part of a controller from the configuration
// (build.go), starts the parts in order and stops them in the reverse
// order (parts.go): store, provider, API listener, load balancers, groups
// (which re-adopt their instances, then the orphan sweep, then launches),
// the state dir watch (statedir.go: it says when the state dir takes no
// writes and wakes the groups when it does again), runbooks, maintenance, alerting (metrics, alarms, incidents, channels),
// retention, and last the API server, which therefore stops first. Every
// part's stop waits for the goroutines it started. It owns the
// controller's lifetime and nothing else: no policy, no HTTP handlers.
// See docs/design.md.
package server
