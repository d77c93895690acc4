// Package maintenance runs maintenance windows and scheduled actions.
//
// A maintenance window opens on a cron schedule in a time zone, stays open
// for a duration, and runs its tasks, lowest priority first, on its
// targets: a document per target, at most max_concurrency at once, until
// more than max_errors targets failed or the cutoff is reached; what still
// runs when the window closes is cancelled. A scheduled action sets a
// group's capacity on a cron schedule. Starts missed while the controller
// was down (or the host asleep) are not replayed.
//
// The decisions are pure functions of a time (window.go): when a window
// opens next, whether a time falls in a window, how many targets a limit
// allows. The Scheduler (scheduler.go) only sleeps until those times,
// starts documents and writes the journal.
//
// The package must not know how documents run (a Runner does), what an
// instance or a group is beyond the Target it is given, or how the journal
// is stored: the server wires those in through Deps.
package maintenance
