// Package alarm decides the state of metric alarms as CloudWatch does:
// a statistic per period, M breaching datapoints out of the last N
// (datapoints_to_alarm out of evaluation_periods), a comparison with a
// threshold, and one of four treatments of missing data, giving OK, ALARM
// or INSUFFICIENT_DATA with a reason worded like CloudWatch's.
//
// Evaluate is a pure function of an alarm's Spec, the values of its most
// recent periods (the evaluation range, which Window gives) and its
// current state; Due, Window and PeriodStart place periods in time. Time is
// always a parameter of these (eval.go): they read no clock, start no
// goroutine and keep no state, so every rule is tested with exact
// timestamps.
//
// The Manager (manager.go) is the one part with a loop: Run starts one
// goroutine that evaluates the alarms that are due on each tick, reading
// the clock it was given (Deps.Now), and Close stops and waits for it.
// Alertmanager alerts (alertmanager.go) become alarm states the same way.
//
// It must not know where datapoints come from (the metric store
// aggregates them), nor what happens when a state changes (actions,
// remediation and notifications belong to their callers), nor the
// configuration file: config.Alarm holds the same names as strings, which
// ParseComparison and ParseTreatMissing convert.
package alarm
