package wire

import "time"

// WindowStatus is a maintenance window with its next start and its runs.
type WindowStatus struct {
	Name     string     `json:"name"`
	Schedule string     `json:"schedule"`
	TimeZone string     `json:"time_zone"`
	Duration string     `json:"duration"`
	Cutoff   string     `json:"cutoff"`
	Tasks    int        `json:"tasks"`
	Next     *Window    `json:"next,omitempty"`
	Running  *WindowRun `json:"running,omitempty"`
	Last     *WindowRun `json:"last,omitempty"`
}

// Window is one occurrence of a maintenance window.
type Window struct {
	Start  time.Time `json:"start"`
	End    time.Time `json:"end"`
	Cutoff time.Time `json:"cutoff"`
}

// WindowRun is one run of a window; counts are of executions.
type WindowRun struct {
	ID        string     `json:"id"`
	Trigger   string     `json:"trigger"`
	Started   time.Time  `json:"started"`
	Window    Window     `json:"window"`
	Targets   int        `json:"targets"`
	Task      int        `json:"task"`
	Tasks     int        `json:"tasks"`
	Succeeded int        `json:"succeeded"`
	Failed    int        `json:"failed"`
	Cancelled int        `json:"cancelled"`
	Running   int        `json:"running"`
	NotRun    int        `json:"not_run"`
	Ended     *time.Time `json:"ended,omitempty"`
	Outcome   string     `json:"outcome,omitempty"`
	Reason    string     `json:"reason,omitempty"`
}

// RunWindowResponse is the body of POST /v1/windows/{name}/run.
type RunWindowResponse struct {
	RunID string `json:"run_id"`
}
