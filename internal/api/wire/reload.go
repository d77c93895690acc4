package wire

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
