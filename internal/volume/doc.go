// Package volume owns the attachment of the local provider's volumes to
// instances: the directory layout under <state dir>/volumes, the one-time
// init marker, and the fencing protocol that keeps a volume from ever being
// used by two live instances.
//
// Three things guard a volume. The store's attachment record names the
// holder and carries a fencing token that increases with every attach
// (compare-and-swap, so concurrent attaches cannot both win). A flock on the
// volume's lock file is held by the instance's processes for as long as any
// of them lives, so Attach can prove a previous holder dead instead of
// trusting a pid. And the token file on the volume itself, checked by
// CheckToken right before the application starts, stops a holder that was
// superseded while it was not looking.
//
// The package must not know how instances are started, how liveness is
// decided (the caller passes isAlive) or what lifecycle state an instance is
// in; it knows paths, locks, tokens and the store.
package volume
