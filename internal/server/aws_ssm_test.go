package server_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// SSM's actions under the AWS CLI and boto3: Run Command on the
// instances, Automation over the runbooks, Parameter Store.

// ssmConfig is one web group with tags and configured parameters (one
// secret).
const ssmConfig = `
groups:
  - name: web
    desired: 2
    tags: {team: blue}
    parameters:
      - {name: GREETING, value: hello}
      - {name: DB_PASSWORD, value: s3cret-value, secret: true}
    launch:
      command: {{WEB}}
      ports: [http]
      stop_timeout: 5s
`

// greetDoc runs SSM's runCommand form on an instance and reports what it
// said; napDoc sleeps, to be stopped.
const (
	greetDoc = `schemaVersion: "0.3"
description: Greets on an instance.
parameters:
  InstanceId: {type: String}
  Names: {type: StringList, default: [nobody]}
mainSteps:
  - name: greet
    action: aws:runCommand
    inputs:
      DocumentName: AWS-RunShellScript
      InstanceIds: ["{{ InstanceId }}"]
      Parameters:
        commands: ['echo "$GREETING $Names"']
    outputs: [{Name: Said, Selector: $.Stdout, Type: String}]
outputs: [greet.Said]
`
	napDoc = `schemaVersion: "0.3"
mainSteps:
  - name: nap
    action: aws:sleep
    inputs: {Duration: PT10M}
`
)

// startSSM starts a controller of ssmConfig with the documents greet and
// nap and waits for its two instances.
func startSSM(t *testing.T, stateDir string) (*awsEnv, []string) {
	t.Helper()
	needAWSClients(t)
	keys := writeAWSKeys(t)
	cfg := writeConfig(t, ssmConfig+fmt.Sprintf("\napi:\n  aws_credentials_file: %s\n", keys))
	writeDoc(t, cfg, "greet", greetDoc)
	writeDoc(t, cfg, "nap", napDoc)
	a := &awsEnv{env: startInProcess(t, cfg, stateDir), t: t, keysFile: keys, home: t.TempDir()}
	var ids []string
	for _, in := range a.waitInService(2, 30*time.Second) {
		ids = append(ids, in.ID)
	}
	return a, ids
}

// restarted stops a's controller and starts another on its config and
// state dir; the instances live on.
func (a *awsEnv) restarted(n int) *awsEnv {
	a.t.Helper()
	a.stop()
	b := &awsEnv{env: startInProcess(a.t, a.cfgPath, a.stateDir), t: a.t, keysFile: a.keysFile, home: a.home}
	b.waitInService(n, 30*time.Second)
	return b
}

// cliError runs the CLI expecting a refusal whose message holds each of
// want.
func (a *awsEnv) cliError(profile string, want []string, args ...string) {
	a.t.Helper()
	out, err := a.cli(profile, args...)
	if err == nil {
		a.t.Fatalf("aws %s succeeded, want an error with %q: %v", strings.Join(args, " "), want, out)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			a.t.Errorf("aws %s: error lacks %q:\n%v", strings.Join(args, " "), w, err)
		}
	}
}

// invocation waits until the command's invocation on id has ended and
// returns it.
func (a *awsEnv) invocation(cmd, id string) map[string]any {
	a.t.Helper()
	var inv map[string]any
	waitFor(a.t, 30*time.Second, "command "+cmd+" on "+id+" to end", func() bool {
		var err error
		inv, err = a.cli("viewer", "ssm", "get-command-invocation", "--command-id", cmd, "--instance-id", id)
		if err != nil {
			a.t.Fatal(err)
		}
		s := inv["Status"]
		return s != "Pending" && s != "InProgress"
	})
	return inv
}

// TestAWSSSMSendCommand runs commands with the AWS CLI: on one instance
// and on a group's by tag, their output and exit codes, the refusals, and
// a command read back after a controller restart.
func TestAWSSSMSendCommand(t *testing.T) {
	t.Parallel()
	a, ids := startSSM(t, "")

	out := a.mustCLI("admin", "ssm", "send-command", "--document-name", "AWS-RunShellScript", "--instance-ids", ids[0],
		"--parameters", "commands=echo hi,workingDirectory=/tmp", "--comment", "greeting",
		"--output-s3-bucket-name", "my-bucket", "--timeout-seconds", "60")
	cmd, _ := dig(out, "Command", "CommandId").(string)
	if len(cmd) != 36 || dig(out, "Command", "DocumentName") != "AWS-RunShellScript" || dig(out, "Command", "InstanceIds", 0) != ids[0] ||
		dig(out, "Command", "OutputS3BucketName") != "my-bucket" || dig(out, "Command", "Comment") != "greeting" {
		t.Fatalf("send-command: %v", out)
	}
	inv := a.invocation(cmd, ids[0])
	if inv["Status"] != "Success" || inv["StandardOutputContent"] != "hi\n" || inv["ResponseCode"] != float64(0) ||
		inv["PluginName"] != "aws:runShellScript" || inv["ExecutionStartDateTime"] == "" {
		t.Fatalf("get-command-invocation: %v", inv)
	}
	list := a.mustCLI("viewer", "ssm", "list-command-invocations", "--command-id", cmd, "--details")
	if dig(list, "CommandInvocations", 0, "CommandPlugins", 0, "Output") != "hi\n" || dig(list, "CommandInvocations", 0, "Status") != "Success" {
		t.Fatalf("list-command-invocations --details: %v", list)
	}

	// Several lines, one script: the working directory, the instance's
	// environment, a failing exit code; by the group's tag, on both.
	out = a.mustCLI("admin", "ssm", "send-command", "--document-name", "AWS-RunShellScript",
		"--targets", "Key=tag:aws:autoscaling:groupName,Values=web",
		"--parameters", `{"commands": ["cd /tmp", "echo \"$GREETING from $(pwd) {{ not a reference }}\"", "echo oops >&2", "exit 3"], "executionTimeout": ["30"]}`)
	cmd2, _ := dig(out, "Command", "CommandId").(string)
	if n := len(dig(out, "Command", "InstanceIds").([]any)); n != 2 {
		t.Fatalf("send-command by tag ran on %d instances, want 2: %v", n, out)
	}
	for _, id := range ids {
		inv := a.invocation(cmd2, id)
		stdout, _ := inv["StandardOutputContent"].(string)
		if inv["Status"] != "Failed" || inv["ResponseCode"] != float64(3) || !strings.Contains(stdout, "hello from /tmp {{ not a reference }}") ||
			!strings.Contains(stdout, "oops") {
			t.Errorf("invocation on %s: %v", id, inv)
		}
	}

	// Refused, with clear errors.
	send := []string{"ssm", "send-command", "--document-name", "AWS-RunShellScript", "--instance-ids", ids[0], "--parameters", "commands=id"}
	a.cliError("operator", []string{"AccessDenied", "admin"}, send...)
	a.cliError("viewer", []string{"AccessDenied"}, send...)
	a.cliError("admin", []string{"InvalidDocument", "/bin/sh"}, "ssm", "send-command", "--document-name", "AWS-RunPowerShellScript", "--instance-ids", ids[0], "--parameters", "commands=dir")
	a.cliError("admin", []string{"InvalidDocument", "AWS-ConfigureAWSPackage"}, "ssm", "send-command", "--document-name", "AWS-ConfigureAWSPackage", "--instance-ids", ids[0])
	a.cliError("admin", []string{"InvalidParameters", "commands"}, "ssm", "send-command", "--document-name", "AWS-RunShellScript", "--instance-ids", ids[0])
	a.cliError("admin", []string{"InvalidParameters", "script"}, "ssm", "send-command", "--document-name", "AWS-RunShellScript", "--instance-ids", ids[0], "--parameters", "commands=id,script=x")
	a.cliError("admin", []string{"InvalidInstanceId", "i-0000000000000000a"}, "ssm", "send-command", "--document-name", "AWS-RunShellScript", "--instance-ids", "i-0000000000000000a", "--parameters", "commands=id")
	a.cliError("viewer", []string{"InvocationDoesNotExist"}, "ssm", "get-command-invocation", "--command-id", cmd, "--instance-id", ids[1])
	a.cliError("viewer", []string{"InvalidCommandId"}, "ssm", "get-command-invocation", "--command-id", "00000000-0000-4000-8000-000000000000", "--instance-id", ids[0])

	// A parameter and the commands survive the controller.
	a.mustCLI("operator", "ssm", "put-parameter", "--name", "/app/mode", "--value", "blue", "--type", "String")
	b := a.restarted(2)
	if inv := b.invocation(cmd, ids[0]); inv["Status"] != "Success" || inv["StandardOutputContent"] != "hi\n" {
		t.Errorf("after a restart, get-command-invocation: %v", inv)
	}
	if p := b.mustCLI("viewer", "ssm", "get-parameter", "--name", "/app/mode"); dig(p, "Parameter", "Value") != "blue" || dig(p, "Parameter", "Version") != float64(1) {
		t.Errorf("after a restart, get-parameter: %v", p)
	}
}

// botoSSM is a boto3 script's preamble: an SSM client and call(), which
// prints a call's result, or its error's code and message, as JSON.
const botoSSM = `
import botocore
ssm = boto3.client('ssm', endpoint_url=ENDPOINT)
def call(name, **kw):
    try:
        out = getattr(ssm, name)(**kw)
        out.pop('ResponseMetadata', None)
        return out
    except botocore.exceptions.ClientError as e:
        return {'Error': e.response['Error']['Code'], 'Message': e.response['Error'].get('Message', '')}
`

// mustBoto runs a boto3 script after botoSSM and returns its printed
// JSON.
func (a *awsEnv) mustBoto(profile, script string) map[string]any {
	a.t.Helper()
	out, err := a.boto(profile, botoSSM+script)
	if err != nil {
		a.t.Fatal(err)
	}
	m, _ := out.(map[string]any)
	return m
}

// botoCall calls one SSM action with boto3 and kwargs.
func (a *awsEnv) botoCall(profile, action string, kwargs map[string]any) map[string]any {
	a.t.Helper()
	b, _ := json.Marshal(kwargs)
	return a.mustBoto(profile, fmt.Sprintf("print(json.dumps(call(%q, **json.loads(%q)), default=str))", action, string(b)))
}

// TestAWSSSMAutomation runs documents with boto3: a run to its outputs,
// one stopped, and the refusals.
func TestAWSSSMAutomation(t *testing.T) {
	t.Parallel()
	a, ids := startSSM(t, "")

	out := a.botoCall("operator", "start_automation_execution", map[string]any{
		"DocumentName": "greet", "Parameters": map[string]any{"InstanceId": []string{ids[0]}, "Names": []string{"ann", "bob"}}})
	id, _ := out["AutomationExecutionId"].(string)
	if len(id) != 36 || !strings.HasPrefix(id, "exec-") {
		t.Fatalf("start_automation_execution: %v", out)
	}
	var ex map[string]any
	waitFor(t, 30*time.Second, "the execution to end", func() bool {
		ex = a.botoCall("viewer", "get_automation_execution", map[string]any{"AutomationExecutionId": id})
		s := dig(ex, "AutomationExecution", "AutomationExecutionStatus")
		return s != "InProgress" && s != "Pending"
	})
	ae := dig(ex, "AutomationExecution")
	if dig(ae, "AutomationExecutionStatus") != "Success" || dig(ae, "DocumentName") != "greet" ||
		dig(ae, "Outputs", "greet.Said", 0) != "hello ann,bob\n" || dig(ae, "Parameters", "InstanceId", 0) != ids[0] ||
		dig(ae, "StepExecutions", 0, "StepName") != "greet" || dig(ae, "StepExecutions", 0, "Action") != "aws:runCommand" ||
		dig(ae, "StepExecutions", 0, "StepStatus") != "Success" || dig(ae, "ExecutionStartTime") == nil || dig(ae, "ExecutionEndTime") == nil ||
		!strings.HasPrefix(fmt.Sprint(dig(ae, "ExecutedBy")), "aws:operator") {
		t.Fatalf("get_automation_execution: %v", ex)
	}
	// The execution is autoheal's own: its id is the AWS id's beginning.
	if got, err := a.execution(id[:21]); err != nil || got.Status != "Success" || got.Origin != "aws:operator" {
		t.Errorf("execution %s through the REST API: %+v %v", id[:21], got, err)
	}

	// Stopped: it ends Cancelled.
	out = a.botoCall("operator", "start_automation_execution", map[string]any{"DocumentName": "nap"})
	nap, _ := out["AutomationExecutionId"].(string)
	if stop := a.botoCall("operator", "stop_automation_execution", map[string]any{"AutomationExecutionId": nap}); stop["Error"] != nil {
		t.Fatalf("stop_automation_execution: %v", stop)
	}
	waitFor(t, 30*time.Second, "the stopped execution to end Cancelled", func() bool {
		ex = a.botoCall("viewer", "get_automation_execution", map[string]any{"AutomationExecutionId": nap})
		return dig(ex, "AutomationExecution", "AutomationExecutionStatus") == "Cancelled"
	})
	if stop := a.botoCall("operator", "stop_automation_execution", map[string]any{"AutomationExecutionId": nap}); stop["Error"] != "InvalidAutomationStatusUpdateException" {
		t.Errorf("stop of an ended execution: %v", stop)
	}

	// Refusals.
	for _, tc := range []struct {
		profile, action string
		kwargs          map[string]any
		code, msg       string
	}{
		{"viewer", "start_automation_execution", map[string]any{"DocumentName": "nap"}, "AccessDenied", "operator"},
		{"viewer", "stop_automation_execution", map[string]any{"AutomationExecutionId": nap}, "AccessDenied", "operator"},
		{"operator", "start_automation_execution", map[string]any{"DocumentName": "no-such-doc"}, "AutomationDefinitionNotFoundException", "no-such-doc"},
		{"operator", "start_automation_execution", map[string]any{"DocumentName": "greet"}, "InvalidAutomationExecutionParametersException", "InstanceId"},
		{"operator", "start_automation_execution", map[string]any{"DocumentName": "greet", "Parameters": map[string]any{"InstanceId": []string{ids[0]}, "Nmes": []string{"x"}}},
			"InvalidAutomationExecutionParametersException", "Nmes"},
		{"viewer", "get_automation_execution", map[string]any{"AutomationExecutionId": "exec-0000000000000000-ssm-automation"}, "AutomationExecutionNotFoundException", "not found"},
	} {
		got := a.botoCall(tc.profile, tc.action, tc.kwargs)
		if got["Error"] != tc.code || !strings.Contains(fmt.Sprint(got["Message"]), tc.msg) {
			t.Errorf("%s %s %v: %v, want %s with %q", tc.profile, tc.action, tc.kwargs, got, tc.code, tc.msg)
		}
	}
}

// TestAWSSSMParameters drives Parameter Store with boto3: versions,
// overwrite, the types, the groups' configured parameters, secrets and
// roles.
func TestAWSSSMParameters(t *testing.T) {
	t.Parallel()
	a, _ := startSSM(t, "")
	got := a.mustBoto("operator", `
r = {}
r['put1'] = call('put_parameter', Name='/app/db/url', Value='postgres://db', Type='String')
r['again'] = call('put_parameter', Name='/app/db/url', Value='postgres://other', Type='String')
r['put2'] = call('put_parameter', Name='/app/db/url', Value='postgres://db2', Overwrite=True)
r['get'] = call('get_parameter', Name='/app/db/url')
r['list'] = call('put_parameter', Name='hosts', Value='a,b,c', Type='StringList')
r['secret'] = call('put_parameter', Name='/app/token', Value='t0k3n', Type='SecureString')
r['enc'] = call('get_parameter', Name='/app/token')
r['dec'] = call('get_parameter', Name='/app/token', WithDecryption=True)
r['many'] = call('get_parameters', Names=['/app/db/url', 'hosts', '/app/missing', '/autoheal/web/GREETING'])
r['group'] = call('get_parameter', Name='/autoheal/web/GREETING')
r['groupSecret'] = call('get_parameter', Name='/autoheal/web/DB_PASSWORD')
r['groupSecretDec'] = call('get_parameter', Name='/autoheal/web/DB_PASSWORD', WithDecryption=True)
r['groupPut'] = call('put_parameter', Name='/autoheal/web/GREETING', Value='x', Overwrite=True)
r['missing'] = call('get_parameter', Name='/app/missing')
r['reserved'] = call('put_parameter', Name='/aws/x', Value='x', Type='String')
r['badType'] = call('put_parameter', Name='x', Value='x', Type='Binary')
r['oldVersion'] = call('get_parameter', Name='/app/db/url:1')
r['byVersion'] = call('get_parameter', Name='/app/db/url:2')
r['delete'] = call('delete_parameter', Name='hosts')
r['deleted'] = call('get_parameter', Name='hosts')
print(json.dumps(r, default=str))
`)
	check := func(what string, ok bool) {
		t.Helper()
		if !ok {
			t.Errorf("%s: %v", what, got[what])
		}
	}
	check("put1", dig(got, "put1", "Version") == float64(1) && dig(got, "put1", "Tier") == "Standard")
	check("again", dig(got, "again", "Error") == "ParameterAlreadyExists")
	check("put2", dig(got, "put2", "Version") == float64(2))
	check("get", dig(got, "get", "Parameter", "Value") == "postgres://db2" && dig(got, "get", "Parameter", "Version") == float64(2) &&
		dig(got, "get", "Parameter", "Type") == "String" && dig(got, "get", "Parameter", "ARN") == "arn:aws:ssm:local:000000000000:parameter/app/db/url" &&
		dig(got, "get", "Parameter", "LastModifiedDate") != nil)
	check("enc", dig(got, "enc", "Parameter", "Type") == "SecureString" && dig(got, "enc", "Parameter", "Value") == "(secret)")
	check("dec", dig(got, "dec", "Parameter", "Value") == "t0k3n")
	check("many", len(dig(got, "many", "Parameters").([]any)) == 3 && dig(got, "many", "InvalidParameters", 0) == "/app/missing" &&
		dig(got, "many", "Parameters", 1, "Value") == "a,b,c" && dig(got, "many", "Parameters", 1, "Type") == "StringList")
	check("group", dig(got, "group", "Parameter", "Value") == "hello")
	check("groupSecret", dig(got, "groupSecret", "Parameter", "Value") == "(secret)" && dig(got, "groupSecret", "Parameter", "Type") == "SecureString")
	check("groupSecretDec", dig(got, "groupSecretDec", "Error") == "AccessDeniedException" && !strings.Contains(fmt.Sprint(got["groupSecretDec"]), "s3cret"))
	check("groupPut", dig(got, "groupPut", "Error") == "ValidationException" && strings.Contains(fmt.Sprint(dig(got, "groupPut", "Message")), "read-only"))
	check("missing", dig(got, "missing", "Error") == "ParameterNotFound")
	check("reserved", dig(got, "reserved", "Error") == "ValidationException")
	check("badType", dig(got, "badType", "Error") != nil)
	check("oldVersion", dig(got, "oldVersion", "Error") == "ParameterVersionNotFound")
	check("byVersion", dig(got, "byVersion", "Parameter", "Value") == "postgres://db2" && dig(got, "byVersion", "Parameter", "Selector") == ":2")
	check("deleted", dig(got, "deleted", "Error") == "ParameterNotFound")

	// A viewer reads, but neither writes nor decrypts.
	got = a.mustBoto("viewer", `
print(json.dumps({
  'get': call('get_parameter', Name='/app/db/url'),
  'put': call('put_parameter', Name='/app/db/url', Value='x', Overwrite=True),
  'dec': call('get_parameter', Name='/app/token', WithDecryption=True),
}, default=str))
`)
	check("get", dig(got, "get", "Parameter", "Value") == "postgres://db2")
	check("put", dig(got, "put", "Error") == "AccessDenied")
	check("dec", dig(got, "dec", "Error") == "AccessDeniedException" && !strings.Contains(fmt.Sprint(got["dec"]), "t0k3n"))
}
