// Package refresh rolls a group's instances over to new ones, as an Auto
// Scaling instance refresh (docs/design.md §15): one at a time (or
// max_unavailable), each through the group's terminate path (drained by
// the load balancers, fenced, hooks run), keeping min_healthy_percentage
// of the desired capacity healthy. What to do next is a pure function of
// the group's instances (Decide); the Refresher applies it and records
// the refresh so that a restarted controller takes it up.
package refresh

// Instance is one instance as the decision sees it.
type Instance struct {
	ID string
	// Old: launched before the refresh began, to be replaced.
	Old bool
	// Healthy: in service, its checks and its load balancers' passing.
	Healthy bool
	// Terminating: on its way out.
	Terminating bool
}

// Settings are a refresh's bounds.
type Settings struct {
	// MinHealthyPercentage of the desired capacity stays healthy
	// (default 90, as AWS's).
	MinHealthyPercentage int `json:"min_healthy_percentage"`
	// MaxUnavailable instances may be out at once (default 1).
	MaxUnavailable int `json:"max_unavailable"`
}

// Step is what to do now.
type Step struct {
	// Terminate are the old instances to terminate now.
	Terminate []string
	// Done: no old instance is left and the group is healthy.
	Done bool
	// Waiting says what the refresh waits for, when it does nothing.
	Waiting string
}

// Decide returns the next step of a refresh of a group of desired
// instances. A group of one cannot keep a healthy instance while it is
// replaced (its volumes are fenced to one instance): its instance is
// terminated once healthy, and its load balancers hold the requests while
// the new one starts, as for a heal.
func Decide(desired int, s Settings, ins []Instance) Step {
	var old, healthy, out int
	var candidates []string
	for _, in := range ins {
		switch {
		case in.Terminating:
			out++
			if in.Old {
				old++
			}
		case in.Old:
			old++
			if in.Healthy {
				candidates = append(candidates, in.ID)
			}
		}
		if !in.Terminating && in.Healthy {
			healthy++
		}
	}
	if old == 0 {
		if healthy >= desired {
			return Step{Done: true}
		}
		return Step{Waiting: "the new instances to be healthy"}
	}
	minHealthy := (desired*s.MinHealthyPercentage + 99) / 100
	if desired == 1 {
		minHealthy = 0
	}
	// Out of service now: terminating ones, and missing healthy ones.
	unavailable := max(desired-healthy, out)
	n := min(s.MaxUnavailable-unavailable, healthy-minHealthy, len(candidates))
	if n <= 0 {
		if len(candidates) == 0 {
			return Step{Waiting: "an old instance to be healthy before it is replaced"}
		}
		return Step{Waiting: "the replaced instances' successors to be healthy (min_healthy_percentage, max_unavailable)"}
	}
	return Step{Terminate: candidates[:n]}
}
