package runbook

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// SSM Run Command's SendCommand of AWS-RunShellScript (the AWS-compatible
// endpoint's ssm:SendCommand) as an execution: a one-step document in
// SSM's aws:runCommand form, built here and parsed as any document's step
// is (ssm.go reads its Parameters), so that a command runs exactly as a
// runbook's aws:runCommand does: in the instance's environment, output
// captured and capped, exit 194 restarting the instance, durable in the
// execution store, resumed (or, interrupted, failed) by the next
// controller.

// SSM's document names, as SendCommand takes them.
const (
	SSMShellDocument      = ssmShellDocument
	SSMPowerShellDocument = ssmPowerShellDocument
	// ShellCommandStep is the step of a command's execution: SSM's plugin
	// aws:runShellScript, named as a step may be.
	ShellCommandStep = "runShellScript"
)

// ShellCommand is one instance's share of a SendCommand.
type ShellCommand struct {
	InstanceID string
	// Commands are the script's lines (AWS-RunShellScript's commands).
	Commands []string
	// WorkingDirectory, "" for the instance's own.
	WorkingDirectory string
	// ExecutionTimeout in seconds (executionTimeout); 0: SSM's 3600.
	ExecutionTimeout int
	// Delivery are the request's output inputs that SSM names
	// (OutputS3BucketName, OutputS3KeyPrefix, OutputS3Region,
	// CloudWatchOutputConfig): accepted, and the step's result says the
	// output stays in the execution.
	Delivery map[string]any
}

// shellCommandScript is the step's script: it runs the commands sent,
// which reach it as the document's parameter commands, in its environment
// as every parameter does (a document's script never has values spliced
// into its text). So nothing sent is read as a document: "{{ x }}" in a
// command stays text.
const shellCommandScript = `eval "$commands"`

// ShellCommandDocument is the document that runs c, and its parameter
// values: commands (the lines joined) and, when given, workingDirectory,
// which the step references (a substituted value is not scanned again).
func ShellCommandDocument(c ShellCommand) (*Document, map[string]string, error) {
	if len(c.Commands) == 0 {
		return nil, nil, fmt.Errorf("%w: %s needs Parameters.commands", ErrInvalid, ssmShellDocument)
	}
	timeout := c.ExecutionTimeout
	if timeout == 0 {
		timeout = 3600
	}
	ssmParams := map[string]any{"commands": shellCommandScript, "executionTimeout": strconv.Itoa(timeout)}
	docParams := map[string]any{"commands": map[string]any{"type": TypeString, "description": "the script (AWS-RunShellScript's commands)"}}
	values := map[string]string{"commands": strings.Join(c.Commands, "\n")}
	if c.WorkingDirectory != "" {
		ssmParams["workingDirectory"] = "{{ workingDirectory }}"
		docParams["workingDirectory"] = map[string]any{"type": TypeString}
		values["workingDirectory"] = c.WorkingDirectory
	}
	inputs := map[string]any{"DocumentName": ssmShellDocument, "InstanceIds": []string{c.InstanceID}, "Parameters": ssmParams}
	for k, v := range c.Delivery {
		inputs[k] = v
	}
	text, err := json.MarshalIndent(map[string]any{
		"schemaVersion": "0.3",
		"description":   "SSM SendCommand of " + ssmShellDocument + " on " + c.InstanceID,
		"parameters":    docParams,
		"mainSteps":     []any{map[string]any{"name": ShellCommandStep, "action": "aws:runCommand", "inputs": inputs}},
	}, "", "  ")
	if err != nil {
		return nil, nil, err
	}
	doc, err := Parse(ssmShellDocument, text)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	doc.Source = ""
	return doc, values, nil
}

// StartShellCommand starts, under an id the caller chose (NewExecutionID)
// and recorded first, the execution that runs c; as StartAs, an id that
// already names an execution starts nothing.
func (e *Engine) StartShellCommand(ctx context.Context, id string, c ShellCommand, origin string) error {
	if !ValidExecutionID(id) {
		return fmt.Errorf("%w: execution id %q: want exec- and 16 hex digits", ErrInvalid, id)
	}
	doc, values, err := ShellCommandDocument(c)
	if err != nil {
		return err
	}
	e.startMu.Lock()
	defer e.startMu.Unlock()
	if ok, err := e.Exists(ctx, id); err != nil || ok {
		return err
	}
	return e.startDoc(ctx, id, doc, values, origin, "")
}
