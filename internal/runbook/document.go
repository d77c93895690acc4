package runbook

import "regexp"

// Document is a runbook: an automation document in the shape of an SSM
// Automation document (schemaVersion 0.3), so that operators' documents
// translate line for line. Parse returns it validated, with defaults
// filled.
type Document struct {
	// Name identifies the document (its file name without extension, or
	// the built-in name). Not a YAML field.
	Name string `json:"name" yaml:"-"`
	// SchemaVersion is "0.3". Required.
	SchemaVersion string `json:"schemaVersion" yaml:"schemaVersion"`
	// Description, in Markdown. Optional.
	Description string `json:"description,omitempty" yaml:"description"`
	// AssumeRole is accepted for SSM compatibility and ignored.
	AssumeRole string `json:"assumeRole,omitempty" yaml:"assumeRole"`
	// Parameters by name, in the order written (ParamOrder).
	Parameters map[string]*Parameter `json:"parameters,omitempty" yaml:"parameters"`
	// ParamOrder lists parameter names as written. Not a YAML field.
	ParamOrder []string `json:"-" yaml:"-"`
	// MainSteps run in order unless a step says otherwise. At least one.
	MainSteps []*Step `json:"mainSteps" yaml:"mainSteps"`
	// Outputs are "Step.Output" references reported as the execution's
	// outputs. Optional.
	Outputs []string `json:"outputs,omitempty" yaml:"outputs"`
	// Source is the file the document came from ("" for built-ins). Not a
	// YAML field.
	Source string `json:"source,omitempty" yaml:"-"`
}

// Parameter types.
const (
	TypeString     = "String"
	TypeStringList = "StringList"
	TypeInteger    = "Integer"
	TypeBoolean    = "Boolean"
)

// Parameter is a typed input of a document.
type Parameter struct {
	// Type is String, StringList, Integer or Boolean. Required.
	Type string `json:"type" yaml:"type"`
	// Description. Optional.
	Description string `json:"description,omitempty" yaml:"description"`
	// Default makes the parameter optional; it must have the parameter's
	// type. Parsed into string, []string, int64 or bool.
	Default any `json:"default,omitempty" yaml:"default"`
	// AllowedValues restricts the value (each item for a StringList).
	AllowedValues []any `json:"allowedValues,omitempty" yaml:"allowedValues"`
	// AllowedPattern is a regular expression a String (or each item of a
	// StringList) must match. Optional.
	AllowedPattern string `json:"allowedPattern,omitempty" yaml:"allowedPattern"`
	// DisplayType is SSM's console hint (textfield or textarea): kept,
	// shown by the API, no effect here.
	DisplayType string `json:"displayType,omitempty" yaml:"displayType"`
	// MinItems and MaxItems bound a StringList's length; MinChars and
	// MaxChars a String's (each item's, for a StringList). 0: no bound.
	MinItems int `json:"minItems,omitempty" yaml:"minItems"`
	MaxItems int `json:"maxItems,omitempty" yaml:"maxItems"`
	MinChars int `json:"minChars,omitempty" yaml:"minChars"`
	MaxChars int `json:"maxChars,omitempty" yaml:"maxChars"`

	re *regexp.Regexp // AllowedPattern compiled by Parse, anchored
}

// Actions. The aws: names of SSM Automation are accepted as aliases
// (aws:runCommand, aws:executeAwsApi, aws:assertAwsResourceProperty,
// aws:waitForAwsResourceProperty, aws:executeAutomation, aws:sleep,
// aws:approve, aws:branch) and normalized to these.
const (
	ActionRunCommand        = "runCommand"
	ActionExecuteAPI        = "executeApi"
	ActionAssertProperty    = "assertProperty"
	ActionWaitForProperty   = "waitForProperty"
	ActionExecuteAutomation = "executeAutomation"
	ActionSleep             = "sleep"
	ActionApprove           = "approve"
	ActionBranch            = "branch"
)

// OnFailure values (besides "step:NAME").
const (
	OnFailureAbort    = "Abort"
	OnFailureContinue = "Continue"
)

// Step is one step of mainSteps.
type Step struct {
	// Name is unique in the document: [A-Za-z0-9_-]+. Required.
	Name string `json:"name" yaml:"name"`
	// Action, one of the Action constants (after normalization). Required.
	Action string `json:"action" yaml:"action"`
	// Description, as SSM's. Optional.
	Description string `json:"description,omitempty" yaml:"description"`
	// Inputs of the action; see the Inputs types below. Values may hold
	// {{ Param }} and {{ Step.Output }} references, substituted when the
	// step runs. Kept as decoded YAML (map[string]any) and checked by the
	// validator per action.
	Inputs map[string]any `json:"inputs,omitempty" yaml:"inputs"`
	// MaxAttempts: how many times the step is tried. Default 1.
	MaxAttempts int `json:"maxAttempts" yaml:"maxAttempts"`
	// TimeoutSeconds bounds one attempt. Default: the action's (runCommand
	// 3600, waitForProperty 3600, approve 7 days, others 600).
	TimeoutSeconds int `json:"timeoutSeconds" yaml:"timeoutSeconds"`
	// OnFailure: Abort (default), Continue, or step:NAME.
	OnFailure string `json:"onFailure" yaml:"onFailure"`
	// OnCancel is accepted for SSM compatibility: Abort (default) or
	// step:NAME, run when the execution is cancelled during this step.
	OnCancel string `json:"onCancel,omitempty" yaml:"onCancel"`
	// NextStep is the step to run after this one succeeds. Default: the
	// next in the list.
	NextStep string `json:"nextStep,omitempty" yaml:"nextStep"`
	// IsEnd ends the execution after this step succeeds.
	IsEnd bool `json:"isEnd,omitempty" yaml:"isEnd"`
	// IsCritical: when false, the step's failure does not fail the
	// execution. Default true.
	IsCritical *bool `json:"isCritical,omitempty" yaml:"isCritical"`
	// Outputs the step exports for later steps ({{ StepName.OutputName }}).
	Outputs []Output `json:"outputs,omitempty" yaml:"outputs"`
}

// Critical reports whether the step's failure fails the execution.
func (s *Step) Critical() bool { return s.IsCritical == nil || *s.IsCritical }

// Output is a value a step exports.
type Output struct {
	// Name, unique within the step. Required.
	Name string `json:"Name" yaml:"Name"`
	// Selector is a JSONPath into the step's result ($.Payload..., $.Status
	// for executeApi and the property actions; $.Stdout, $.ExitCode for
	// runCommand; $.Output.NAME for executeAutomation). Required.
	Selector string `json:"Selector" yaml:"Selector"`
	// Type: String, StringList, Integer, Boolean, StringMap or MapList.
	// Default String.
	Type string `json:"Type" yaml:"Type"`
}

// The inputs of each action, as the validator checks them and the
// executor reads them (after {{ }} substitution). Keys are written as in
// SSM (PascalCase).
//
// runCommand:
//
//	InstanceIds: [i-...]          # StringList, required (or InstanceId)
//	Commands: ["...", "..."]      # lines of a /bin/sh script; or
//	Script: |                     # the script as one string (one of the two)
//	Env: {NAME: value}            # extra environment; document parameters
//	                              # are always given as environment variables
//	WorkingDirectory: /path       # default: the instance's workdir
//	OutputLimitBytes: 24000       # stdout and stderr cap each (default 24000)
//
// executeApi:
//
//	Method: POST                  # default GET
//	Path: /v1/instances/{{ InstanceId }}/terminate
//	Body: {...}                   # any JSON value; optional
//
// assertProperty / waitForProperty:
//
//	Method: GET                   # default GET
//	Path: /v1/target-groups/{{ TargetGroup }}/health
//	PropertySelector: $.targets..state
//	DesiredValues: [healthy]      # every selected value must be one of these
//	PollIntervalSeconds: 2        # waitForProperty only, default 2
//
// executeAutomation:
//
//	DocumentName: Autoheal-RestartInstance
//	RuntimeParameters: {InstanceId: "{{ InstanceId }}"}
//
// sleep:
//
//	Duration: PT30S               # ISO 8601 (SSM) or a Go duration (30s); or
//	Timestamp: 2026-12-01T10:00:00Z
//
// approve:
//
//	Message: text for the approver
//	MinRequiredApprovals: 1       # default 1
//
// branch:
//
//	Choices:
//	  - NextStep: StepName
//	    Variable: "{{ Step.Output }}"
//	    StringEquals: x           # or EqualsIgnoreCase, StartsWith, EndsWith,
//	                              # Contains, NumericEquals, NumericGreater,
//	                              # NumericLesser, NumericGreaterOrEquals,
//	                              # NumericLesserOrEquals, BooleanEquals;
//	                              # And / Or / Not of choices
//	Default: StepName             # optional
