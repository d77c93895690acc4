// Package notify delivers escalations to people: a generic webhook (JSON
// signed with HMAC-SHA256), Slack incoming webhooks and PagerDuty Events v2.
//
// Send only writes the message to a durable outbox (one SQLite write) and
// returns; it never waits for the network, so healing never blocks on a
// slow or dead receiver. A worker goroutine owned by the Notifier delivers
// the outbox: per-channel timeouts, retries with exponential backoff and
// jitter up to the channel's MaxAttempts, messages of one channel and one
// key (incident) in the order they were sent, and the status of every
// delivery recorded for the incident timeline. Rows still pending when the
// controller stops are picked up by the next New on the same store, so
// delivery is at least once: receivers dedupe on X-Autoheal-Delivery (the
// webhook) or the dedup key (PagerDuty).
//
// The formats are pure functions of a message (channels.go); the backoff is
// a pure function of the attempt count (outbox.go).
//
// The package must not know what an incident, an alarm or a runbook is
// beyond the Message it is given, nor how the config file spells channels:
// the server maps config to ChannelSpec.
package notify
