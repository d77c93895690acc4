package awsapi

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/autoheal/autoheal/internal/runbook"
)

// TestSSMStatusNames: autoheal's execution statuses as SSM's automation,
// step, command invocation and command statuses.
func TestSSMStatusNames(t *testing.T) {
	for _, tc := range []struct {
		exec, automation, invocation, details string
	}{
		{runbook.StatusPending, "Pending", "Pending", "Pending"},
		{runbook.StatusInProgress, "InProgress", "InProgress", "InProgress"},
		{runbook.StatusWaiting, "Waiting", "InProgress", "InProgress"},
		{runbook.StatusSuccess, "Success", "Success", "Success"},
		{runbook.StatusFailed, "Failed", "Failed", "Failed"},
		{runbook.StatusCancelled, "Cancelled", "Cancelled", "Cancelled"},
		{runbook.StatusTimedOut, "TimedOut", "TimedOut", "ExecutionTimedOut"},
		{runbook.StatusSkipped, "Pending", "Failed", "Failed"},
	} {
		if got := automationStatus(tc.exec); got != tc.automation {
			t.Errorf("automationStatus(%s) = %s, want %s", tc.exec, got, tc.automation)
		}
		if tc.exec == runbook.StatusSkipped {
			continue // a step's status only
		}
		if got, details := invocationStatus(tc.exec); got != tc.invocation || details != tc.details {
			t.Errorf("invocationStatus(%s) = %s, %s; want %s, %s", tc.exec, got, details, tc.invocation, tc.details)
		}
	}
	for _, tc := range []struct {
		invocations []string
		want        string
	}{
		{nil, "Pending"},
		{[]string{"Success", "Success"}, "Success"},
		{[]string{"Success", "InProgress"}, "InProgress"},
		{[]string{"Failed", "Pending"}, "InProgress"},
		{[]string{"Success", "Failed"}, "Failed"},
		{[]string{"TimedOut", "Success"}, "TimedOut"},
		{[]string{"Cancelled", "TimedOut"}, "TimedOut"},
		{[]string{"Cancelled"}, "Cancelled"},
	} {
		if got := commandStatus(tc.invocations); got != tc.want {
			t.Errorf("commandStatus(%v) = %s, want %s", tc.invocations, got, tc.want)
		}
	}
	for action, want := range map[string]string{
		runbook.ActionRunCommand: "aws:runCommand", runbook.ActionExecuteAPI: "aws:executeAwsApi",
		runbook.ActionAssertProperty: "aws:assertAwsResourceProperty", runbook.ActionWaitForProperty: "aws:waitForAwsResourceProperty",
		runbook.ActionExecuteAutomation: "aws:executeAutomation", runbook.ActionSleep: "aws:sleep",
		runbook.ActionApprove: "aws:approve", runbook.ActionBranch: "aws:branch",
	} {
		if got := ssmActionName(action); got != want {
			t.Errorf("ssmActionName(%s) = %s, want %s", action, got, want)
		}
	}
}

// TestSSMAutomationIDs: an execution's AutomationExecutionId has AWS's 36
// characters and gives the execution back, as does the execution's own
// id; anything else is not found.
func TestSSMAutomationIDs(t *testing.T) {
	id := runbook.NewExecutionID()
	aws := automationID(id)
	if len(aws) != 36 {
		t.Fatalf("automationID(%s) = %s: %d characters, want 36", id, aws, len(aws))
	}
	for _, in := range []string{aws, id} {
		if got, err := executionID(in); err != nil || got != id {
			t.Errorf("executionID(%s) = %s, %v; want %s", in, got, err, id)
		}
	}
	for _, bad := range []string{"", "exec-xyz-ssm-automation", "0a1b2c3d-0000-4000-8000-000000000000", id + "-other-suffix00"} {
		if _, err := executionID(bad); err == nil || !strings.Contains(err.Error(), "AutomationExecutionNotFoundException") {
			t.Errorf("executionID(%q) = %v, want AutomationExecutionNotFoundException", bad, err)
		}
	}
	if c := newCommandID(); !commandIDRE.MatchString(c) {
		t.Errorf("newCommandID() = %s, not a UUID", c)
	}
}

// TestSSMParameterNames: names, ARNs and version selectors.
func TestSSMParameterNames(t *testing.T) {
	for _, tc := range []struct {
		in, name, selector string
		version            int64
		err                string
	}{
		{in: "plain", name: "plain"},
		{in: "/app/db/url", name: "/app/db/url"},
		{in: "/app/db/url:3", name: "/app/db/url", selector: ":3", version: 3},
		{in: "arn:aws:ssm:local:000000000000:parameter/app/db/url", name: "/app/db/url"},
		{in: "arn:aws:ssm:us-east-1:123456789012:parameter/plain", name: "plain"},
		{in: "", err: "ValidationException"},
		{in: "has space", err: "ValidationException"},
		{in: "/app:label", err: "ParameterVersionLabelNotFound"},
		{in: "arn:aws:s3:::bucket", err: "ValidationException"},
	} {
		name, sel, v, err := parameterName(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("parameterName(%q) = %v, want %s", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || name != tc.name || sel != tc.selector || v != tc.version {
			t.Errorf("parameterName(%q) = %q, %q, %d, %v; want %q, %q, %d", tc.in, name, sel, v, err, tc.name, tc.selector, tc.version)
		}
		if arn := parameterARN(name); !strings.HasSuffix(arn, ":parameter/"+strings.TrimPrefix(name, "/")) {
			t.Errorf("parameterARN(%s) = %s", name, arn)
		}
	}
}

// TestSSMShellScriptParameters: AWS-RunShellScript's parameters as
// SendCommand takes them.
func TestSSMShellScriptParameters(t *testing.T) {
	cmds, dir, timeout, err := shellScriptParameters(map[string][]string{
		"commands": {"cd /", "ls"}, "workingDirectory": {"/tmp"}, "executionTimeout": {"90"}})
	if err != nil || strings.Join(cmds, ";") != "cd /;ls" || dir != "/tmp" || timeout != 90 {
		t.Errorf("shellScriptParameters = %v, %q, %d, %v", cmds, dir, timeout, err)
	}
	for _, tc := range []struct {
		params map[string][]string
		want   string
	}{
		{map[string][]string{}, "needs the parameter commands"},
		{map[string][]string{"commands": {" "}}, "needs the parameter commands"},
		{map[string][]string{"commands": {"ls"}, "script": {"x"}}, `no parameter "script"`},
		{map[string][]string{"commands": {"ls"}, "executionTimeout": {"soon"}}, "executionTimeout"},
		{map[string][]string{"commands": {"ls"}, "executionTimeout": {"0"}}, "executionTimeout"},
		{map[string][]string{"commands": {"ls"}, "workingDirectory": {"/a", "/b"}}, "one value"},
		{map[string][]string{"commands": {strings.Repeat("x", maxScript+1)}}, "bytes"},
	} {
		if _, _, _, err := shellScriptParameters(tc.params); err == nil || !strings.Contains(err.Error(), tc.want) ||
			!strings.Contains(err.Error(), "InvalidParameters") {
			t.Errorf("shellScriptParameters(%v) = %v, want InvalidParameters with %q", tc.params, err, tc.want)
		}
	}
}

// TestSSMJSONShapes: timestamps are epoch seconds, as the JSON protocol
// writes them, and an execution reads as SSM's AutomationExecution.
func TestSSMJSONShapes(t *testing.T) {
	start := time.Date(2024, 5, 6, 7, 8, 9, 250e6, time.UTC)
	end := start.Add(2 * time.Second)
	ex := runbook.Execution{
		ID: "exec-0123456789abcdef", Document: "greet", Status: runbook.StatusFailed, Error: "step greet failed: boom",
		Parameters: map[string]any{"InstanceId": "i-0123456789abcdef0", "Names": []any{"a", "b"}, "Count": int64(2)},
		Outputs:    map[string]any{"greet.Said": "hi"}, StartedAt: start, EndedAt: &end, Origin: "aws:operator",
		Steps: []runbook.StepExecution{
			{Name: "greet", Action: runbook.ActionRunCommand, Status: runbook.StatusFailed, StartedAt: &start, EndedAt: &end, Error: "boom",
				Inputs: map[string]any{"Commands": []any{"echo hi"}, "WorkingDirectory": "/tmp"}},
			{Name: "after", Action: runbook.ActionSleep, Status: runbook.StatusSkipped},
		},
	}
	b, err := json.Marshal(automationOf(ex))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	json.Unmarshal(b, &got)
	want := map[string]any{
		"AutomationExecutionId": "exec-0123456789abcdef-ssm-automation", "AutomationExecutionStatus": "Failed",
		"ExecutionStartTime": 1714979289.25, "ExecutionEndTime": 1714979291.25, "FailureMessage": "step greet failed: boom",
		"ExecutedBy": "aws:operator", "Mode": "Auto",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v (%T), want %v", k, got[k], got[k], v)
		}
	}
	params, _ := got["Parameters"].(map[string]any)
	if p, _ := json.Marshal(params); string(p) != `{"Count":["2"],"InstanceId":["i-0123456789abcdef0"],"Names":["a","b"]}` {
		t.Errorf("Parameters = %s", p)
	}
	steps, _ := got["StepExecutions"].([]any)
	if len(steps) != 1 {
		t.Fatalf("StepExecutions = %v, want the one step run (a skipped one is not shown)", steps)
	}
	step := steps[0].(map[string]any)
	inputs, _ := step["Inputs"].(map[string]any)
	if step["Action"] != "aws:runCommand" || step["StepStatus"] != "Failed" || step["FailureMessage"] != "boom" ||
		inputs["Commands"] != `["echo hi"]` || inputs["WorkingDirectory"] != "/tmp" {
		t.Errorf("StepExecutions[0] = %v", step)
	}
}
