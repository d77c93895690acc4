// Package store owns autoheal's durable state: the event journal, the
// records of groups and instances, the attachments of volumes and addresses
// with their fencing tokens, and a small key/value table for controller
// metadata. It is one SQLite database in WAL mode with synchronous=FULL under
// the state dir, so every write is on disk before the call returns, and one
// flock on <state dir>/lock so two controllers never share a state dir.
//
// The store records and compares; it does not decide. It must not know about
// lifecycle rules, heal policy, providers or the API: callers hand it records
// and events, and it guarantees they are durable, atomic together and
// published to subscribers in journal order.
//
// When the disk refuses a write (full, read-only, I/O error) the store is
// degraded: it refuses every write at once until Probe proves a durable
// write works again (writable.go). Reads keep working.
package store
