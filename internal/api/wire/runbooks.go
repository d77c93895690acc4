package wire

import (
	"encoding/json"
	"time"
)

// DocumentSummary is one entry of GET /v1/documents.
type DocumentSummary struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	BuiltIn     bool   `json:"built_in"`
	Source      string `json:"source,omitempty"`
	Error       string `json:"error,omitempty"`
}

// RunRequest is the body of POST /v1/executions.
type RunRequest struct {
	Document   string            `json:"document"`
	Parameters map[string]string `json:"parameters,omitempty"`
}

// RunResponse names the new execution.
type RunResponse struct {
	ID string `json:"id"`
}

// ApproveRequest is the body of POST /v1/executions/{id}/approve.
type ApproveRequest struct {
	Approver string `json:"approver,omitempty"`
	// Reject answers no; the step fails.
	Reject  bool   `json:"reject,omitempty"`
	Comment string `json:"comment,omitempty"`
}

// Execution statuses.
const (
	StatusPending    = "Pending"
	StatusInProgress = "InProgress"
	StatusWaiting    = "Waiting"
	StatusSuccess    = "Success"
	StatusFailed     = "Failed"
	StatusCancelled  = "Cancelled"
	StatusTimedOut   = "TimedOut"
)

// Ended reports whether an execution status is final.
func Ended(status string) bool {
	switch status {
	case StatusSuccess, StatusFailed, StatusCancelled, StatusTimedOut:
		return true
	}
	return false
}

// Execution is one run of a document with its steps.
type Execution struct {
	ID         string          `json:"id"`
	Document   string          `json:"document"`
	Parameters map[string]any  `json:"parameters"`
	Status     string          `json:"status"`
	Error      string          `json:"error,omitempty"`
	Origin     string          `json:"origin,omitempty"`
	Parent     string          `json:"parent,omitempty"`
	StartedAt  time.Time       `json:"started_at"`
	EndedAt    *time.Time      `json:"ended_at,omitempty"`
	Current    string          `json:"current_step,omitempty"`
	Steps      []StepExecution `json:"steps"`
	Outputs    map[string]any  `json:"outputs,omitempty"`
	Approvals  []Approval      `json:"approvals,omitempty"`
	// DocumentV is the document as the execution started with it, kept as
	// sent.
	DocumentV json.RawMessage `json:"document_snapshot,omitempty"`
}

// StepExecution is the state of one step of an execution.
type StepExecution struct {
	Name      string         `json:"name"`
	Action    string         `json:"action"`
	Status    string         `json:"status"`
	Attempts  int            `json:"attempts"`
	StartedAt *time.Time     `json:"started_at,omitempty"`
	EndedAt   *time.Time     `json:"ended_at,omitempty"`
	Inputs    any            `json:"inputs,omitempty"`
	Outputs   map[string]any `json:"outputs,omitempty"`
	Result    any            `json:"result,omitempty"`
	Error     string         `json:"error,omitempty"`
	Child     string         `json:"child,omitempty"`
	// Deadline is when the attempt under way times out.
	Deadline *time.Time `json:"deadline,omitempty"`
	// RetryAt is when the next attempt may start.
	RetryAt *time.Time `json:"retry_at,omitempty"`
}

// Approval is one answer to an approve step.
type Approval struct {
	Step     string    `json:"step"`
	Approver string    `json:"approver"`
	Approved bool      `json:"approved"`
	Comment  string    `json:"comment,omitempty"`
	Time     time.Time `json:"time"`
}

// Incident is one problem from detection to resolution.
type Incident struct {
	ID            string     `json:"id"`
	Status        string     `json:"status"`
	Trigger       Trigger    `json:"trigger"`
	Group         string     `json:"group,omitempty"`
	Instance      string     `json:"instance,omitempty"`
	Runbook       string     `json:"runbook,omitempty"`
	Attempts      int        `json:"attempts"`
	OpenedAt      time.Time  `json:"opened_at"`
	ResolvedAt    *time.Time `json:"resolved_at,omitempty"`
	TimeToRecover float64    `json:"time_to_recover_seconds,omitempty"`
	Notified      []string   `json:"notified,omitempty"`
	// Current is the latest attempt, what a restarted controller resumes
	// from.
	Current *Attempt `json:"current_attempt,omitempty"`
	// OKAt is when the alarm or alert was seen back to OK.
	OKAt *time.Time `json:"ok_at,omitempty"`
	// Unsent are notifications decided and recorded, not yet known to be
	// in the outbox.
	Unsent []string `json:"unsent,omitempty"`
	// Spec is the remediation's settings, kept as sent.
	Spec     json.RawMessage `json:"spec,omitempty"`
	Timeline []TimelineEntry `json:"timeline"`
}

// Attempt is one remediation attempt of an incident.
type Attempt struct {
	N         int        `json:"n"`
	Execution string     `json:"execution"`
	Phase     string     `json:"phase"`
	StartedAt time.Time  `json:"started_at"`
	VerifyBy  *time.Time `json:"verify_by,omitempty"`
	RetryAt   *time.Time `json:"retry_at,omitempty"`
}

// Trigger is what opened an incident.
type Trigger struct {
	Source     string            `json:"source"`
	Alarm      string            `json:"alarm"`
	Key        string            `json:"key"`
	Reason     string            `json:"reason"`
	Namespace  string            `json:"namespace,omitempty"`
	Metric     string            `json:"metric,omitempty"`
	Dimensions map[string]string `json:"dimensions,omitempty"`
}

// TimelineEntry is one line of an incident's timeline.
type TimelineEntry struct {
	Time      time.Time `json:"time"`
	Type      string    `json:"type"`
	Message   string    `json:"message"`
	Attempt   int       `json:"attempt,omitempty"`
	Execution string    `json:"execution,omitempty"`
	Output    string    `json:"output,omitempty"`
}

// Alarm is one alarm key's state.
type Alarm struct {
	Name              string            `json:"name"`
	Key               string            `json:"key"`
	Dimensions        map[string]string `json:"dimensions,omitempty"`
	State             string            `json:"state"`
	Reason            string            `json:"reason"`
	Since             time.Time         `json:"since"`
	Namespace         string            `json:"namespace"`
	Metric            string            `json:"metric"`
	Statistic         string            `json:"statistic"`
	Comparison        string            `json:"comparison"`
	Threshold         float64           `json:"threshold"`
	Period            string            `json:"period"`
	EvaluationPeriods int               `json:"evaluation_periods"`
	DatapointsToAlarm int               `json:"datapoints_to_alarm"`
	Evaluated         time.Time         `json:"evaluated,omitempty"`
}

// AlertmanagerResponse is the answer to a webhook delivery.
type AlertmanagerResponse struct {
	Accepted int `json:"accepted"`
}
