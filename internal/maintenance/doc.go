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
// A run, each task it starts on a target (with its execution's id) and
// each scheduled action's time are recorded before they begin
// (records.go): a restarted controller takes a run up where it was,
// never starting a task or applying a scheduled time twice.
//
// The decisions are pure functions of a time (window.go): when a window
// opens next, whether a time falls in a window, how many targets a limit
// allows; and of a record and a time (records.go): what a restarted
// controller does with a run, a task or an action it finds recorded. The
// Scheduler (scheduler.go, run.go) only sleeps until those times, starts
// documents and writes its records and the journal.
//
// The package must not know how documents run (a Runner does), what an
// instance or a group is beyond the Target it is given, or how the journal
// is stored: the server wires those in through Deps.
package maintenance
