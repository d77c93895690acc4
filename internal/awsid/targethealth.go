package awsid

import "strings"

// TargetHealth is a target's health as ELBv2's DescribeTargetHealth
// reports it: State, and for every state but healthy a Reason code and a
// Description.
type TargetHealth struct {
	State, Reason, Description string
}

// ELBv2's target states. The load balancer's own states have the same
// names (lb.StateInitial...).
const (
	TargetInitial   = "initial"
	TargetHealthy   = "healthy"
	TargetUnhealthy = "unhealthy"
	TargetDraining  = "draining"
	TargetUnused    = "unused"
)

// NotRegisteredDescription is AWS's description of a target that is not
// registered to the target group asked about.
const NotRegisteredDescription = "Target is not registered to the target group"

// TargetNotRegistered is the health of a target that is not in the target
// group: unused, Target.NotRegistered.
func TargetNotRegistered() TargetHealth {
	return TargetHealth{State: TargetUnused, Reason: "Target.NotRegistered", Description: NotRegisteredDescription}
}

// TargetHealthOf maps a load balancer target's state and reason (its
// autoheal wording: "failed 2 health checks in a row: timed out after
// 500ms") to ELBv2's: the same state, the Reason code AWS gives in that
// state, and the reason as Description (AWS's own wording when there is
// none). An unknown state is passed through without a Reason.
func TargetHealthOf(state, reason string) TargetHealth {
	th := TargetHealth{State: state, Description: reason}
	def := ""
	switch state {
	case TargetHealthy:
		return th
	case TargetInitial:
		th.Reason, def = "Elb.InitialHealthChecking", "Initial health checks in progress"
		if reason == "registered" {
			th.Reason, def = "Elb.RegistrationInProgress", "Target registration is in progress"
		}
	case TargetUnhealthy:
		th.Reason, def = unhealthyReason(reason), "Health checks failed"
	case TargetDraining:
		th.Reason, def = "Target.DeregistrationInProgress", "Target deregistration is in progress"
	case TargetUnused:
		th.Reason, def = "Target.NotRegistered", NotRegisteredDescription
	}
	if th.Description == "" {
		th.Description = def
	}
	return th
}

// unhealthyReason is the Reason code of an unhealthy target, from the
// load balancer's wording of its last failed check.
func unhealthyReason(reason string) string {
	r := strings.ToLower(reason)
	switch {
	case strings.Contains(r, "timed out") || strings.Contains(r, "timeout") || strings.Contains(r, "deadline exceeded"):
		return "Target.Timeout"
	case strings.Contains(r, "does not match"):
		return "Target.ResponseCodeMismatch"
	}
	return "Target.FailedHealthChecks"
}
