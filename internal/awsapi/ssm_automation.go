package awsapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/autoheal/autoheal/internal/runbook"
)

// --- Automation ---

// automationSuffix pads an execution id (exec- and 16 hex digits, 21
// characters) to the 36 characters AWS's clients require of an
// AutomationExecutionId; the id before it is autoheal's own, as its CLI
// and REST API take it.
const automationSuffix = "-ssm-automation"

// automationID is an execution's AutomationExecutionId.
func automationID(execID string) string { return execID + automationSuffix }

// executionID is the execution an AutomationExecutionId names; autoheal's
// own id is taken too.
func executionID(awsID string) (string, error) {
	id := strings.TrimSuffix(awsID, automationSuffix)
	if !runbook.ValidExecutionID(id) {
		return "", invalid("AutomationExecutionNotFoundException",
			"Automation execution %q not found: an id here is an execution's id (exec- and 16 hex digits) followed by %q", awsID, automationSuffix)
	}
	return id, nil
}

// automationStatus is an execution's or a step's status as SSM names it.
// autoheal's are SSM's; a step never run (Skipped) was not run: Pending.
func automationStatus(s string) string {
	switch s {
	case runbook.StatusPending, runbook.StatusInProgress, runbook.StatusWaiting, runbook.StatusSuccess,
		runbook.StatusFailed, runbook.StatusCancelled, runbook.StatusTimedOut:
		return s
	case runbook.StatusSkipped:
		return runbook.StatusPending
	}
	return runbook.StatusFailed
}

// ssmActionName is a step's action as SSM names it.
func ssmActionName(a string) string {
	switch a {
	case runbook.ActionExecuteAPI:
		return "aws:executeAwsApi"
	case runbook.ActionAssertProperty:
		return "aws:assertAwsResourceProperty"
	case runbook.ActionWaitForProperty:
		return "aws:waitForAwsResourceProperty"
	}
	return "aws:" + a
}

// valueList is a value as SSM's parameter and output maps hold it: a list
// of strings.
func valueList(v any) []string {
	switch x := v.(type) {
	case nil:
		return []string{}
	case []string:
		return x
	case []any:
		out := make([]string, 0, len(x))
		for _, it := range x {
			s, _ := runbook.Stringify(it)
			out = append(out, s)
		}
		return out
	}
	s, _ := runbook.Stringify(v)
	return []string{s}
}

func valueLists(m map[string]any) map[string][]string {
	out := make(map[string][]string, len(m))
	for k, v := range m {
		out[k] = valueList(v)
	}
	return out
}

type startAutomationRequest struct {
	DocumentName        string
	DocumentVersion     string
	Parameters          map[string][]string
	ClientToken         string
	Mode                string
	TargetParameterName string
	Targets             json.RawMessage
	TargetMaps          json.RawMessage
	TargetLocations     json.RawMessage
	MaxConcurrency      string
	MaxErrors           string
}

func (h *Handler) startAutomationExecution(c *call) (any, error) {
	var req startAutomationRequest
	if err := decodeJSON(c, &req); err != nil {
		return nil, err
	}
	eng, err := h.engine()
	if err != nil {
		return nil, err
	}
	switch {
	case req.DocumentName == "":
		return nil, invalid("ValidationException", "DocumentName is required")
	case req.Mode != "" && req.Mode != "Auto":
		return nil, invalid("ValidationException", "Mode %s is not supported here: executions run in Auto mode (an aws:approve step waits for an approval)", req.Mode)
	case len(req.Targets) > 0 || len(req.TargetMaps) > 0 || req.TargetParameterName != "" || len(req.TargetLocations) > 0:
		return nil, invalid("ValidationException", "rate-controlled executions (Targets, TargetMaps, TargetParameterName, TargetLocations) are not supported here: start one execution per target with its parameter")
	case req.DocumentVersion != "" && req.DocumentVersion != "$DEFAULT" && req.DocumentVersion != "$LATEST" && req.DocumentVersion != "1":
		return nil, invalid("InvalidDocumentVersion", "document %s has one version here, the file as it is now ($DEFAULT, $LATEST or 1), not %s", req.DocumentName, req.DocumentVersion)
	}
	params, err := h.automationParams(req.DocumentName, req.Parameters)
	if err != nil {
		return nil, err
	}
	id, err := eng.Start(c.ctx, req.DocumentName, params, "aws:"+c.caller.Name)
	if err != nil {
		return nil, automationError(err)
	}
	return map[string]string{"AutomationExecutionId": automationID(id)}, nil
}

// automationParams turns SSM's lists into the engine's text: a list
// parameter's values as a JSON array, another's one value.
func (h *Handler) automationParams(document string, in map[string][]string) (map[string]string, error) {
	var doc *runbook.Document
	if h.deps.Documents != nil {
		d, err := h.deps.Documents.Get(document)
		if err != nil {
			return nil, automationError(err)
		}
		doc = d
	}
	out := make(map[string]string, len(in))
	for name, vals := range in {
		var p *runbook.Parameter
		if doc != nil {
			p = doc.Parameters[name]
		}
		switch {
		case p != nil && p.Type == runbook.TypeStringList:
			b, _ := json.Marshal(vals)
			out[name] = string(b)
		case len(vals) == 1:
			out[name] = vals[0]
		case len(vals) == 0:
			out[name] = ""
		default:
			return nil, invalid("InvalidAutomationExecutionParametersException", "parameter %s takes one value, got %d", name, len(vals))
		}
	}
	return out, nil
}

// automationError maps the engine's errors to SSM's.
func automationError(err error) error {
	var perr *runbook.Errors
	switch {
	case errors.Is(err, runbook.ErrNotFound):
		return invalid("AutomationDefinitionNotFoundException", "%v", err)
	case errors.Is(err, runbook.ErrInvalid):
		return invalid("InvalidAutomationExecutionParametersException", "%v", err)
	case errors.As(err, &perr):
		return invalid("InvalidDocument", "the document does not validate: %v", err)
	}
	return err
}

type stepExecution struct {
	StepName           string
	Action             string
	TimeoutSeconds     int64  `json:",omitempty"`
	OnFailure          string `json:",omitempty"`
	MaxAttempts        int    `json:",omitempty"`
	ExecutionStartTime *awsTime
	ExecutionEndTime   *awsTime
	StepStatus         string
	Inputs             map[string]string   `json:",omitempty"`
	Outputs            map[string][]string `json:",omitempty"`
	FailureMessage     string              `json:",omitempty"`
	StepExecutionId    string
	IsCritical         bool
	IsEnd              bool
	NextStep           string `json:",omitempty"`
}

type automationExecution struct {
	AutomationExecutionId       string
	DocumentName                string
	DocumentVersion             string
	ExecutionStartTime          *awsTime
	ExecutionEndTime            *awsTime
	AutomationExecutionStatus   string
	StepExecutions              []stepExecution
	StepExecutionsTruncated     bool
	Parameters                  map[string][]string
	Outputs                     map[string][]string
	FailureMessage              string `json:",omitempty"`
	Mode                        string
	ParentAutomationExecutionId string `json:",omitempty"`
	ExecutedBy                  string `json:",omitempty"`
	CurrentStepName             string `json:",omitempty"`
	CurrentAction               string `json:",omitempty"`
}

// automationOf is an execution as GetAutomationExecution shows it. The
// steps not run are left out, as SSM leaves them.
func automationOf(ex runbook.Execution) automationExecution {
	out := automationExecution{
		AutomationExecutionId: automationID(ex.ID), DocumentName: ex.Document, DocumentVersion: "1",
		ExecutionStartTime: timeOf(&ex.StartedAt), ExecutionEndTime: timeOf(ex.EndedAt),
		AutomationExecutionStatus: automationStatus(ex.Status), StepExecutions: []stepExecution{},
		Parameters: valueLists(ex.Parameters), Outputs: valueLists(ex.Outputs), FailureMessage: ex.Error,
		Mode: "Auto", ExecutedBy: ex.Origin, CurrentStepName: ex.Current,
	}
	if ex.Parent != "" {
		out.ParentAutomationExecutionId = automationID(ex.Parent)
	}
	for i, se := range ex.Steps {
		if se.Status == runbook.StatusSkipped || (se.Status == runbook.StatusPending && se.Name != ex.Current) {
			continue
		}
		s := stepExecution{
			StepName: se.Name, Action: ssmActionName(se.Action), StepStatus: automationStatus(se.Status),
			ExecutionStartTime: timeOf(se.StartedAt), ExecutionEndTime: timeOf(se.EndedAt),
			Outputs: valueLists(se.Outputs), FailureMessage: se.Error, IsCritical: true,
			StepExecutionId: fmt.Sprintf("%s-%d", ex.ID, i),
		}
		if in, ok := se.Inputs.(map[string]any); ok {
			s.Inputs = map[string]string{}
			for k, v := range in {
				if str, ok := v.(string); ok {
					s.Inputs[k] = str
				} else {
					b, _ := json.Marshal(v)
					s.Inputs[k] = string(b)
				}
			}
		}
		if ex.DocumentV != nil && i < len(ex.DocumentV.MainSteps) {
			st := ex.DocumentV.MainSteps[i]
			s.TimeoutSeconds, s.OnFailure, s.MaxAttempts = int64(st.TimeoutSeconds), st.OnFailure, st.MaxAttempts
			s.IsCritical, s.IsEnd, s.NextStep = st.Critical(), st.IsEnd, st.NextStep
		}
		if se.Name == ex.Current {
			out.CurrentAction = s.Action
		}
		out.StepExecutions = append(out.StepExecutions, s)
	}
	return out
}

type automationIDRequest struct {
	AutomationExecutionId string
	Type                  string
}

// execution reads the execution an AutomationExecutionId names.
func (h *Handler) execution(ctx context.Context, awsID string) (runbook.Execution, error) {
	eng, err := h.engine()
	if err != nil {
		return runbook.Execution{}, err
	}
	id, err := executionID(awsID)
	if err != nil {
		return runbook.Execution{}, err
	}
	ex, err := eng.Get(ctx, id)
	if errors.Is(err, runbook.ErrNotFound) {
		return ex, invalid("AutomationExecutionNotFoundException", "Automation execution %s (%s) not found", awsID, id)
	}
	return ex, err
}

func (h *Handler) getAutomationExecution(c *call) (any, error) {
	var req automationIDRequest
	if err := decodeJSON(c, &req); err != nil {
		return nil, err
	}
	ex, err := h.execution(c.ctx, req.AutomationExecutionId)
	if err != nil {
		return nil, err
	}
	return map[string]any{"AutomationExecution": automationOf(ex)}, nil
}

func (h *Handler) stopAutomationExecution(c *call) (any, error) {
	var req automationIDRequest
	if err := decodeJSON(c, &req); err != nil {
		return nil, err
	}
	if req.Type != "" && req.Type != "Cancel" {
		return nil, invalid("ValidationException", "Type %s is not supported here: an execution stops with Type Cancel (it ends Cancelled)", req.Type)
	}
	ex, err := h.execution(c.ctx, req.AutomationExecutionId)
	if err != nil {
		return nil, err
	}
	eng, _ := h.engine()
	if err := eng.Cancel(c.ctx, ex.ID); err != nil {
		if errors.Is(err, runbook.ErrInvalid) {
			return nil, invalid("InvalidAutomationStatusUpdateException", "execution %s is %s: only a running execution stops", ex.ID, ex.Status)
		}
		return nil, err
	}
	return struct{}{}, nil
}
