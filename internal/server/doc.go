// Package server builds every component from the configuration, runs them
// and stops them in order: config, state dir, store, provider, groups (which
// re-adopt their instances), orphan sweep, then the API. It owns the
// controller's lifetime and nothing else: no policy, no HTTP handlers.
package server
