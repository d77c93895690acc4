package remediation

import (
	"time"
)

// Attempt phases.
const (
	// PhaseRunning: the attempt is recorded with its execution id; the
	// runbook runs under that id (or, killed before it started, starts
	// under it: the runbook engine starts an id at most once).
	PhaseRunning = "running"
	// PhaseVerifying: the runbook succeeded; the alarm has until VerifyBy
	// to return to OK.
	PhaseVerifying = "verifying"
	// PhaseFailed: the runbook failed or did not fix it in time; the next
	// attempt may start at RetryAt.
	PhaseFailed = "failed"
)

// Attempt is the record of an incident's latest remediation attempt,
// rewritten durably at each of its transitions: what a restarted
// controller resumes from. Its times are absolute, so a wait resumes
// where it was, not from zero.
type Attempt struct {
	N int `json:"n"`
	// Execution is the runbook execution's id, chosen and recorded before
	// it starts.
	Execution string    `json:"execution"`
	Phase     string    `json:"phase"`
	StartedAt time.Time `json:"started_at"`
	// VerifyBy is when verification ends: when the runbook succeeded plus
	// verify_timeout.
	VerifyBy *time.Time `json:"verify_by,omitempty"`
	// RetryAt is when the next attempt may start: when the attempt failed
	// (or its verification ended) plus retry_pause.
	RetryAt *time.Time `json:"retry_at,omitempty"`
}

// Do is an incident's next move.
type Do int

const (
	// DoDone: the incident is resolved; nothing is left.
	DoDone Do = iota
	// DoNotify: a notification recorded as decided (Unsent) is to be
	// enqueued, unless the outbox has it already.
	DoNotify
	// DoWaitExecution: wait for the attempt's execution (starting it under
	// its recorded id if it never started).
	DoWaitExecution
	// DoResolve: the alarm is OK; resolve.
	DoResolve
	// DoAwaitOK: escalated; wait for the alarm to return to OK.
	DoAwaitOK
	// DoEscalate: out of attempts, or no runbook: hand it to people.
	DoEscalate
	// DoAttempt: record the next attempt, then run it.
	DoAttempt
	// DoVerify: wait until At for the alarm to return to OK.
	DoVerify
	// DoVerifyFailed: verification ended at its deadline with the alarm
	// not OK; record the attempt failed, the next one due at At.
	DoVerifyFailed
	// DoPause: wait until At (retry_pause) before the next attempt.
	DoPause
)

var doNames = [...]string{"done", "notify", "wait-execution", "resolve", "await-ok", "escalate", "attempt", "verify", "verify-failed", "pause"}

func (d Do) String() string { return doNames[d] }

// Decision is what an incident does next, and until when for a wait.
type Decision struct {
	Do Do
	At time.Time
}

// Decide is an incident's next move, from its record, whether its alarm
// is OK, and the time. The live loop and a restarted controller both
// follow it, so a restart changes nothing but who waits.
func Decide(inc *Incident, ok bool, now time.Time) Decision {
	spec := inc.Spec
	if spec == nil {
		spec = &Spec{}
	}
	cur := inc.Current
	switch {
	case len(inc.Unsent) > 0:
		return Decision{Do: DoNotify}
	case inc.Status == StatusResolved:
		return Decision{Do: DoDone}
	case cur != nil && cur.Phase == PhaseRunning:
		// Never leave a runbook running unobserved, even once OK.
		return Decision{Do: DoWaitExecution}
	case ok:
		return Decision{Do: DoResolve}
	case inc.Status == StatusEscalated:
		return Decision{Do: DoAwaitOK}
	case inc.Runbook == "" || spec.MaxAttempts <= 0:
		return Decision{Do: DoEscalate}
	case cur == nil:
		if inc.Attempts >= spec.MaxAttempts {
			return Decision{Do: DoEscalate}
		}
		return Decision{Do: DoAttempt}
	case cur.Phase == PhaseVerifying && cur.VerifyBy != nil:
		if now.Before(*cur.VerifyBy) {
			return Decision{Do: DoVerify, At: *cur.VerifyBy}
		}
		return Decision{Do: DoVerifyFailed, At: cur.VerifyBy.Add(spec.RetryPause)}
	}
	// Failed (or a record without its times: retry now).
	if inc.Attempts >= spec.MaxAttempts {
		return Decision{Do: DoEscalate}
	}
	if cur.RetryAt != nil && now.Before(*cur.RetryAt) {
		return Decision{Do: DoPause, At: *cur.RetryAt}
	}
	return Decision{Do: DoAttempt}
}

// upgrade fills in Current for an incident an older controller recorded
// (it kept only the timeline): from its last attempt's entries, with the
// times they give, so that it resumes as it would have gone on.
func upgrade(inc *Incident) {
	if inc.Current != nil || inc.Attempts == 0 || inc.Spec == nil {
		return
	}
	cur := &Attempt{N: inc.Attempts, Phase: PhaseFailed}
	for _, e := range inc.Timeline {
		if e.Attempt != inc.Attempts {
			continue
		}
		t := e.Time
		switch e.Type {
		case EntryAttempt:
			cur.Phase, cur.Execution, cur.StartedAt = PhaseRunning, e.Execution, t
		case EntryOutput:
			by := t.Add(inc.Spec.VerifyTimeout)
			cur.Phase, cur.VerifyBy = PhaseVerifying, &by
		case EntryFailed:
			at := t.Add(inc.Spec.RetryPause)
			cur.Phase, cur.RetryAt = PhaseFailed, &at
		}
	}
	if cur.Phase == PhaseRunning && cur.Execution == "" {
		cur.Phase = PhaseFailed
	}
	inc.Current = cur
}
