// Package heal is the healing policy of a group as pure functions: given the
// group's History of restarts and replacements and the current time, Decide
// says whether a failed instance is restarted in place, replaced, or whether
// the group must stop healing and be marked Impaired, and how long to back
// off first.
//
// It owns the counting rules (windows, backoff, reset after a healthy
// period), the History record the group persists as JSON, and the rule
// that resumes a recorded decision after a controller restart: Pending.Wait
// counts what is left of a backoff from its recorded deadline. It must not
// know about processes, clocks, goroutines or storage: time is always a
// parameter, so every rule is tested with exact timestamps and no jitter.
package heal
