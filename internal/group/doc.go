// Package group owns the reconcile loop of one instance group and the
// lifecycle state machine of its instances: launch (attach volumes, associate
// addresses, run hooks, start, wait healthy), heal (restart in place or
// replace, with backoff, up to Impaired) and terminate (drain, fence, hooks,
// detach).
//
// One goroutine per group owns the group's state; lifecycle work runs as one
// job at a time in a second goroutine and changes state only through that
// owner. The package decides nothing about policy (package heal does, as a
// pure function) and knows nothing about how processes are started (a
// provider does) or how state is stored (package store does).
package group
