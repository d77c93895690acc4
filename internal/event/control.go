package event

import "time"

// Kinds of the controller, the API, notifications, alarms, incidents,
// executions and maintenance.
const (
	KindControllerStart       Kind = "controller.start"
	KindControllerStop        Kind = "controller.stop"
	KindControllerSweep       Kind = "controller.sweep"
	KindControllerOrphanGroup Kind = "controller.orphan_group"
	KindControllerStateDir    Kind = "controller.state_dir"
	KindAPIAudit              Kind = "api.audit"
	KindNotifyDelivered       Kind = "notify.delivered"
	KindNotifyFailed          Kind = "notify.failed"
	KindAlarmState            Kind = "alarm.state"
	KindIncidentOpen          Kind = "incident.open"
	KindIncidentAttempt       Kind = "incident.attempt"
	KindIncidentEscalated     Kind = "incident.escalated"
	KindIncidentResolved      Kind = "incident.resolved"
	KindExecutionStart        Kind = "execution.start"
	KindExecutionStep         Kind = "execution.step"
	KindExecutionEnd          Kind = "execution.end"
	KindExecutionApproval     Kind = "execution.approval"
	KindExecutionResume       Kind = "execution.resume"
	KindWindowStart           Kind = "maintenance.window.start"
	KindWindowEnd             Kind = "maintenance.window.end"
	KindWindowSkip            Kind = "maintenance.window.skip"
	KindWindowResume          Kind = "maintenance.window.resume"
	KindTaskStart             Kind = "maintenance.task.start"
	KindTaskEnd               Kind = "maintenance.task.end"
	KindScheduledAction       Kind = "schedule.action"
	KindGroupRefresh          Kind = "group.refresh"
)

// ControllerStart is a controller run's start.
type ControllerStart struct {
	Version string `json:"version"`
	Config  string `json:"config"`
	Pid     int    `json:"pid"`
}

// ControllerStop is a controller run's orderly end; instances keep running.
type ControllerStop struct {
	Cause string `json:"cause,omitempty"`
}

// ControllerSweep lists the orphan processes a starting controller killed.
type ControllerSweep struct {
	Pids []int `json:"pids"`
}

// ControllerOrphanGroup is an instance of a group no longer in the config,
// left as it was.
type ControllerOrphanGroup struct {
	State string `json:"state"`
}

// ControllerStateDir is the state dir taking writes again after a time it
// did not (a full disk, a read-only file system): it is journaled when the
// store is writable again, since nothing could be journaled meanwhile.
// Groups held still from Since until this event's time.
type ControllerStateDir struct {
	Dir   string    `json:"dir"`
	Error string    `json:"error"`
	Since time.Time `json:"since"`
	// DownMS is how long the state dir took no writes.
	DownMS int64 `json:"down_ms"`
}

// APIAudit is a state-changing API call made with a token.
type APIAudit struct {
	Token  string `json:"token"`
	Role   string `json:"role"`
	Method string `json:"method"`
	Path   string `json:"path"`
	Status int    `json:"status"`
	Remote string `json:"remote"`
}

// GroupRefresh is a step of an instance refresh: begun, an instance
// replaced, ended (Successful, Cancelled, Failed).
type GroupRefresh struct {
	Status   string `json:"status"`
	Instance string `json:"instance,omitempty"`
	Reason   string `json:"reason,omitempty"`
}

// Delivery is a notification's delivery outcome.
type Delivery struct {
	Delivery int64  `json:"delivery"`
	Channel  string `json:"channel"`
	// ChannelType is webhook, slack or pagerduty.
	ChannelType string `json:"type"`
	// Key is what the notification is about (an incident).
	Key string `json:"key"`
	// Event is what was notified: trigger, resolve...
	Event      string `json:"event"`
	Attempts   int    `json:"attempts"`
	HTTPStatus int    `json:"http_status,omitempty"`
	Error      string `json:"error,omitempty"`
}

// NotifyDelivered is a delivered notification.
type NotifyDelivered struct{ Delivery }

// NotifyFailed is a notification given up on.
type NotifyFailed struct{ Delivery }

// AlarmState is an alarm's (or one of its per-dimension states')
// transition.
type AlarmState struct {
	Alarm      string            `json:"alarm"`
	Key        string            `json:"key"`
	From       string            `json:"from"`
	To         string            `json:"to"`
	Reason     string            `json:"reason,omitempty"`
	Dimensions map[string]string `json:"dimensions,omitempty"`
}

// Incident names an incident and its status after the event.
type Incident struct {
	Incident string `json:"incident"`
	Status   string `json:"status"`
}

// IncidentOpen opens an incident.
type IncidentOpen struct {
	Incident
	// Source is alarm, alertmanager or heal.
	Source string `json:"source"`
	Alarm  string `json:"alarm,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// IncidentAttempt starts a remediation attempt.
type IncidentAttempt struct {
	Incident
	Attempt   int    `json:"attempt"`
	Runbook   string `json:"runbook"`
	Execution string `json:"execution"`
}

// IncidentEscalated hands an incident to people.
type IncidentEscalated struct {
	Incident
	Reason string `json:"reason"`
}

// IncidentResolved closes an incident.
type IncidentResolved struct {
	Incident
	// RecoverMS is the time to recover, from open to resolved.
	RecoverMS int64 `json:"recover_ms"`
}

// Execution names a runbook execution.
type Execution struct {
	Execution string `json:"execution"`
	Document  string `json:"document,omitempty"`
}

// ExecutionStart starts an execution.
type ExecutionStart struct {
	Execution
	Origin string `json:"origin,omitempty"`
}

// ExecutionStep ends one step of an execution.
type ExecutionStep struct {
	Execution
	Step   string `json:"step"`
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
}

// ExecutionEnd ends an execution.
type ExecutionEnd struct {
	Execution
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
}

// ExecutionApproval waits for an approval.
type ExecutionApproval struct {
	Execution
	Step    string `json:"step"`
	Message string `json:"message,omitempty"`
}

// ExecutionResume resumes an execution after a controller restart.
type ExecutionResume struct {
	Execution
	Step string `json:"step"`
	// Action is what the restarted controller does with the step: run (it
	// had not begun), continue (an attempt safe to repeat goes on under
	// its recorded deadline), retry (the next attempt at its recorded
	// time), timed_out (its deadline passed meanwhile), interrupted (an
	// attempt with effects is not repeated: the step fails), ended,
	// finish.
	Action string `json:"action,omitempty"`
}

// WindowStart starts a maintenance window's run.
type WindowStart struct {
	Window  string    `json:"window"`
	RunID   string    `json:"run_id"`
	Trigger string    `json:"trigger"`
	Targets []string  `json:"targets"`
	Start   time.Time `json:"start"`
	Cutoff  time.Time `json:"cutoff"`
	End     time.Time `json:"end"`
}

// WindowEnd ends a maintenance window's run.
type WindowEnd struct {
	Window    string `json:"window"`
	RunID     string `json:"run_id"`
	Outcome   string `json:"outcome"`
	Targets   int    `json:"targets"`
	Succeeded int    `json:"succeeded"`
	Failed    int    `json:"failed"`
	Cancelled int    `json:"cancelled"`
	NotRun    int    `json:"not_run"`
	Reason    string `json:"reason,omitempty"`
}

// WindowResume is a window's run taken up by a restarted controller.
type WindowResume struct {
	Window string `json:"window"`
	RunID  string `json:"run_id"`
	// Action is continue (the window is open: the run goes on) or end
	// (it closed meanwhile: the run ends with its tasks' outcomes).
	Action string `json:"action"`
	// Tasks are the tasks recorded as started, Running those of them not
	// recorded as ended.
	Tasks   int       `json:"tasks"`
	Running int       `json:"running"`
	End     time.Time `json:"end"`
}

// WindowSkip is a window start that did not run.
type WindowSkip struct {
	Window string    `json:"window"`
	Start  time.Time `json:"start"`
	Reason string    `json:"reason"`
}

// Task names a window task on one target.
type Task struct {
	Window    string `json:"window"`
	RunID     string `json:"run_id"`
	Task      int    `json:"task"`
	Document  string `json:"document"`
	Execution string `json:"execution_id,omitempty"`
}

// TaskStart starts a window task on one target.
type TaskStart struct{ Task }

// TaskEnd ends a window task on one target.
type TaskEnd struct {
	Task
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
}

// ScheduledAction is a scheduled capacity change, applied or failed.
type ScheduledAction struct {
	Action   string    `json:"action"`
	Schedule string    `json:"schedule"`
	Time     time.Time `json:"time"`
	Min      *int      `json:"min,omitempty"`
	Max      *int      `json:"max,omitempty"`
	Desired  *int      `json:"desired,omitempty"`
	Error    string    `json:"error,omitempty"`
}

func (ControllerStart) Kind() Kind       { return KindControllerStart }
func (ControllerStop) Kind() Kind        { return KindControllerStop }
func (ControllerSweep) Kind() Kind       { return KindControllerSweep }
func (ControllerOrphanGroup) Kind() Kind { return KindControllerOrphanGroup }
func (ControllerStateDir) Kind() Kind    { return KindControllerStateDir }
func (APIAudit) Kind() Kind              { return KindAPIAudit }
func (NotifyDelivered) Kind() Kind       { return KindNotifyDelivered }
func (NotifyFailed) Kind() Kind          { return KindNotifyFailed }
func (AlarmState) Kind() Kind            { return KindAlarmState }
func (IncidentOpen) Kind() Kind          { return KindIncidentOpen }
func (IncidentAttempt) Kind() Kind       { return KindIncidentAttempt }
func (IncidentEscalated) Kind() Kind     { return KindIncidentEscalated }
func (IncidentResolved) Kind() Kind      { return KindIncidentResolved }
func (ExecutionStart) Kind() Kind        { return KindExecutionStart }
func (ExecutionStep) Kind() Kind         { return KindExecutionStep }
func (ExecutionEnd) Kind() Kind          { return KindExecutionEnd }
func (ExecutionApproval) Kind() Kind     { return KindExecutionApproval }
func (ExecutionResume) Kind() Kind       { return KindExecutionResume }
func (WindowStart) Kind() Kind           { return KindWindowStart }
func (WindowEnd) Kind() Kind             { return KindWindowEnd }
func (WindowSkip) Kind() Kind            { return KindWindowSkip }
func (WindowResume) Kind() Kind          { return KindWindowResume }
func (TaskStart) Kind() Kind             { return KindTaskStart }
func (TaskEnd) Kind() Kind               { return KindTaskEnd }
func (ScheduledAction) Kind() Kind       { return KindScheduledAction }
func (GroupRefresh) Kind() Kind          { return KindGroupRefresh }

func init() {
	register[GroupRefresh]()
	register[ControllerStart]()
	register[ControllerStop]()
	register[ControllerSweep]()
	register[ControllerOrphanGroup]()
	register[ControllerStateDir]()
	register[APIAudit]()
	register[NotifyDelivered]()
	register[NotifyFailed]()
	register[AlarmState]()
	register[IncidentOpen]()
	register[IncidentAttempt]()
	register[IncidentEscalated]()
	register[IncidentResolved]()
	register[ExecutionStart]()
	register[ExecutionStep]()
	register[ExecutionEnd]()
	register[ExecutionApproval]()
	register[ExecutionResume]()
	register[WindowStart]()
	register[WindowEnd]()
	register[WindowSkip]()
	register[WindowResume]()
	register[TaskStart]()
	register[TaskEnd]()
	register[ScheduledAction]()
}
