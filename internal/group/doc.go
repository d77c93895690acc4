// Package group owns the reconcile loop of one instance group and the
// lifecycle state machine of its instances: launch (attach volumes, associate
// addresses, run the launch's scripts, start, wait healthy), heal (restart in
// place or replace, with backoff, up to Impaired) and terminate (drain, fence,
// hooks, detach).
//
// Its decisions are pure functions of a value view of the group, the policy
// and the time (plan.go, rules.go, scripts.go): plan says what to do next as
// one step, and the executor (exec.go and the job files) carries the step out
// through the provider, the volumes and the addresses. One goroutine per
// group owns the state and plans; the steps run as one job at a time in a
// second goroutine, which changes state only through the owner.
//
// What must survive a controller restart is durable before it acts: heal
// decisions with their absolute deadlines and the start of every launch or
// terminate script are kept in the group's ledger (ledger.go), written with
// the group's next durable write. The package decides nothing about heal
// policy itself (package heal does), and knows nothing about how processes
// are started (a provider does) or how state is stored (package store does).
package group
