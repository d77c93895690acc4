package wire

import "time"

// PlanRequest asks what loading a config file would do (POST
// /v1/admin/plan); an empty path is the controller's own file.
type PlanRequest struct {
	Path string `json:"path,omitempty"`
}

// Plan is what a reload of the config file at Path would do, in order.
type Plan struct {
	Path    string       `json:"path"`
	Changes []PlanChange `json:"changes"`
}

// PlanChange is one change of a Plan (reload.Change).
type PlanChange struct {
	Kind       string   `json:"kind"`
	Object     string   `json:"object"`
	Fields     []string `json:"fields,omitempty"`
	Why        string   `json:"why"`
	Instances  []string `json:"instances,omitempty"`
	HasVolumes bool     `json:"has_volumes,omitempty"`
}

// RefreshRequest starts an instance refresh (POST
// /v1/groups/{name}/refresh); zero values take the defaults (90 %, 1).
type RefreshRequest struct {
	MinHealthyPercentage int `json:"min_healthy_percentage,omitempty"`
	MaxUnavailable       int `json:"max_unavailable,omitempty"`
}

// Refresh is a group's instance refresh (refresh.Status).
type Refresh struct {
	Group     string          `json:"group"`
	Status    string          `json:"status"`
	Settings  RefreshSettings `json:"settings"`
	StartedAt time.Time       `json:"started_at"`
	EndedAt   *time.Time      `json:"ended_at,omitempty"`
	Replaced  []string        `json:"replaced"`
	ToReplace int             `json:"to_replace"`
	Waiting   string          `json:"waiting,omitempty"`
	Reason    string          `json:"reason,omitempty"`
}

// RefreshSettings are a refresh's bounds.
type RefreshSettings struct {
	MinHealthyPercentage int `json:"min_healthy_percentage"`
	MaxUnavailable       int `json:"max_unavailable"`
}
