package awsapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/autoheal/autoheal/internal/awsid"
	"github.com/autoheal/autoheal/internal/runbook"
	"github.com/autoheal/autoheal/internal/store"
)

// --- Run Command ---

// commandKey is where a command is recorded.
func commandKey(id string) string { return "ssm/command/" + id }

// maxScript bounds a command's script: it reaches the script as an
// environment variable, which Linux caps at 128 KiB.
const maxScript = 64 << 10

// ssmTarget is SSM's Targets item.
type ssmTarget struct {
	Key    string
	Values []string
}

type cloudWatchOutputConfig struct {
	CloudWatchLogGroupName  string `json:",omitempty"`
	CloudWatchOutputEnabled bool
}

type sendCommandRequest struct {
	DocumentName           string
	DocumentVersion        string
	DocumentHash           string
	DocumentHashType       string
	InstanceIds            []string
	Targets                []ssmTarget
	Parameters             map[string][]string
	TimeoutSeconds         int
	Comment                string
	OutputS3Region         string
	OutputS3BucketName     string
	OutputS3KeyPrefix      string
	MaxConcurrency         string
	MaxErrors              string
	ServiceRoleArn         string
	NotificationConfig     json.RawMessage
	CloudWatchOutputConfig *cloudWatchOutputConfig
	AlarmConfiguration     json.RawMessage
}

// ssmCommand is a command as recorded: the request, and the execution
// of each instance.
type ssmCommand struct {
	ID                     string                  `json:"id"`
	Caller                 string                  `json:"caller"`
	DocumentName           string                  `json:"document"`
	Comment                string                  `json:"comment,omitempty"`
	Parameters             map[string][]string     `json:"parameters"`
	InstanceIDs            []string                `json:"instance_ids"`
	Targets                []ssmTarget             `json:"targets,omitempty"`
	Executions             []string                `json:"executions"` // by InstanceIDs' index
	RequestedAt            time.Time               `json:"requested_at"`
	TimeoutSeconds         int                     `json:"timeout_seconds,omitempty"`
	OutputS3Region         string                  `json:"output_s3_region,omitempty"`
	OutputS3BucketName     string                  `json:"output_s3_bucket,omitempty"`
	OutputS3KeyPrefix      string                  `json:"output_s3_key_prefix,omitempty"`
	MaxConcurrency         string                  `json:"max_concurrency,omitempty"`
	MaxErrors              string                  `json:"max_errors,omitempty"`
	ServiceRole            string                  `json:"service_role,omitempty"`
	NotificationConfig     json.RawMessage         `json:"notification_config,omitempty"`
	CloudWatchOutputConfig *cloudWatchOutputConfig `json:"cloudwatch_output_config,omitempty"`
	// StartErrors are the instances whose execution did not start, with
	// why.
	StartErrors map[string]string `json:"start_errors,omitempty"`
}

// newCommandID is a CommandId: a random UUID, as AWS's.
func newCommandID() string { return awsid.NewUUID() }

var commandIDRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// shellScriptParameters checks AWS-RunShellScript's parameters.
func shellScriptParameters(p map[string][]string) (cmds []string, dir string, timeout int, err error) {
	for name, vals := range p {
		switch name {
		case "commands":
			cmds = vals
		case "workingDirectory", "executionTimeout":
			if len(vals) > 1 {
				return nil, "", 0, invalid("InvalidParameters", "parameter %s of %s takes one value, got %d", name, runbook.SSMShellDocument, len(vals))
			}
			v := ""
			if len(vals) == 1 {
				v = vals[0]
			}
			if name == "workingDirectory" {
				dir = v
				continue
			}
			if v == "" {
				continue
			}
			n, perr := strconv.Atoi(v)
			if perr != nil || n < 1 || n > runbook.MaxTimeoutSeconds {
				return nil, "", 0, invalid("InvalidParameters", "parameter executionTimeout %q is not a number of seconds from 1 to %d", v, runbook.MaxTimeoutSeconds)
			}
			timeout = n
		default:
			return nil, "", 0, invalid("InvalidParameters", "%s has no parameter %q: its parameters are commands, workingDirectory and executionTimeout", runbook.SSMShellDocument, name)
		}
	}
	script := strings.Join(cmds, "\n")
	switch {
	case strings.TrimSpace(script) == "":
		return nil, "", 0, invalid("InvalidParameters", "%s needs the parameter commands (--parameters commands=\"echo hello\")", runbook.SSMShellDocument)
	case len(script) > maxScript:
		return nil, "", 0, invalid("InvalidParameters", "the commands are %d bytes; at most %d here", len(script), maxScript)
	}
	return cmds, dir, timeout, nil
}

// commandTargets are the instances a command names: InstanceIds, or
// Targets by InstanceIds, tag:aws:autoscaling:groupName (the group) or
// another tag:KEY of the groups' tags. Targets take the InService
// instances, as SSM takes the online managed nodes.
func (h *Handler) commandTargets(ids []string, targets []ssmTarget) ([]string, error) {
	if (len(ids) == 0) == (len(targets) == 0) {
		return nil, invalid("ValidationException", "give InstanceIds or Targets (one of the two)")
	}
	all := h.liveInstances()
	find := func(id string) (instanceRef, bool) {
		i := slices.IndexFunc(all, func(r instanceRef) bool { return r.in.ID == id })
		if i < 0 {
			return instanceRef{}, false
		}
		return all[i], true
	}
	var out []string
	add := func(id string) {
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	for _, id := range ids {
		r, ok := find(id)
		if !ok || r.in.State != "InService" {
			state := "not one of this controller's instances"
			if ok {
				state = "in state " + r.in.State
			}
			return nil, invalid("InvalidInstanceId", "instance %s is %s: a command runs on InService instances", id, state)
		}
		add(id)
	}
	for _, t := range targets {
		if len(t.Values) == 0 {
			return nil, invalid("InvalidTarget", "target %s has no Values", t.Key)
		}
		switch {
		case t.Key == "InstanceIds":
			for _, id := range t.Values {
				if r, ok := find(id); !ok || r.in.State != "InService" {
					return nil, invalid("InvalidInstanceId", "instance %s is not an InService instance of this controller", id)
				}
				add(id)
			}
		case strings.HasPrefix(t.Key, "tag:"):
			for _, r := range all {
				if r.in.State != "InService" {
					continue
				}
				for _, tag := range ec2InstanceOf(r).Tags {
					if "tag:"+tag.Key == t.Key && slices.Contains(t.Values, tag.Value) {
						add(r.in.ID)
					}
				}
			}
		default:
			return nil, invalid("InvalidTarget", "target key %q is not supported here: InstanceIds, tag:aws:autoscaling:groupName or tag:KEY", t.Key)
		}
	}
	if len(out) == 0 {
		return nil, invalid("InvalidTarget", "the targets match no InService instance")
	}
	return out, nil
}

// commandMu makes a command's recording one step with its look-ups.
var commandMu sync.Mutex

func (h *Handler) sendCommand(c *call) (any, error) {
	var req sendCommandRequest
	if err := decodeJSON(c, &req); err != nil {
		return nil, err
	}
	eng, err := h.engine()
	if err != nil {
		return nil, err
	}
	starter, ok := eng.(shellCommands)
	if !ok {
		return nil, &apiError{Status: 500, Code: "InternalServerError", Msg: "this controller's runbook engine runs no commands"}
	}
	kv, err := h.kv()
	if err != nil {
		return nil, err
	}
	if err := checkShellDocument(req); err != nil {
		return nil, err
	}
	cmds, dir, timeout, err := shellScriptParameters(req.Parameters)
	if err != nil {
		return nil, err
	}
	ids, err := h.commandTargets(req.InstanceIds, req.Targets)
	if err != nil {
		return nil, err
	}
	delivery := commandDelivery(req)
	shell := func(id string) runbook.ShellCommand {
		return runbook.ShellCommand{InstanceID: id, Commands: cmds, WorkingDirectory: dir, ExecutionTimeout: timeout, Delivery: delivery}
	}
	// The document is checked before anything is recorded.
	if _, _, err := runbook.ShellCommandDocument(shell(ids[0])); err != nil {
		return nil, invalid("InvalidParameters", "%v", err)
	}
	cmd := ssmCommand{
		ID: newCommandID(), Caller: c.caller.Name, DocumentName: req.DocumentName, Comment: req.Comment,
		Parameters: req.Parameters, InstanceIDs: ids, Targets: req.Targets, RequestedAt: h.now().UTC(),
		TimeoutSeconds: req.TimeoutSeconds, OutputS3Region: req.OutputS3Region, OutputS3BucketName: req.OutputS3BucketName,
		OutputS3KeyPrefix: req.OutputS3KeyPrefix, MaxConcurrency: req.MaxConcurrency, MaxErrors: req.MaxErrors,
		ServiceRole: req.ServiceRoleArn, NotificationConfig: req.NotificationConfig, CloudWatchOutputConfig: req.CloudWatchOutputConfig,
	}
	for range ids {
		cmd.Executions = append(cmd.Executions, runbook.NewExecutionID())
	}
	// Recorded before its executions start: a controller stopped between
	// the two leaves a command whose unstarted invocations read Failed,
	// never executions no command names.
	commandMu.Lock()
	defer commandMu.Unlock()
	if err := putJSON(c.ctx, kv, commandKey(cmd.ID), cmd); err != nil {
		return nil, err
	}
	origin := fmt.Sprintf("aws:%s command %s", c.caller.Name, cmd.ID)
	for i, id := range ids {
		if err := starter.StartShellCommand(c.ctx, cmd.Executions[i], shell(id), origin); err != nil {
			if cmd.StartErrors == nil {
				cmd.StartErrors = map[string]string{}
			}
			cmd.StartErrors[id] = err.Error()
		}
	}
	if len(cmd.StartErrors) > 0 {
		if err := putJSON(c.ctx, kv, commandKey(cmd.ID), cmd); err != nil {
			return nil, err
		}
	}
	invs := h.invocations(c.ctx, cmd)
	return map[string]any{"Command": commandOf(cmd, invs)}, nil
}

// checkShellDocument checks SendCommand's document and version: only
// runbook.SSMShellDocument runs here.
func checkShellDocument(req sendCommandRequest) error {
	switch req.DocumentName {
	case runbook.SSMShellDocument:
	case runbook.SSMPowerShellDocument:
		return invalid("InvalidDocument", "%s does not run here: instances' scripts run with /bin/sh; send the script with %s", req.DocumentName, runbook.SSMShellDocument)
	case "":
		return invalid("ValidationException", "DocumentName is required: %s", runbook.SSMShellDocument)
	default:
		return invalid("InvalidDocument", "document %q does not run here: SendCommand runs %s only (parameters commands, workingDirectory, executionTimeout); automation documents run with StartAutomationExecution", req.DocumentName, runbook.SSMShellDocument)
	}
	if req.DocumentVersion != "" && req.DocumentVersion != "$DEFAULT" && req.DocumentVersion != "$LATEST" && req.DocumentVersion != "1" {
		return invalid("InvalidDocumentVersion", "%s has one version here (1), not %s", req.DocumentName, req.DocumentVersion)
	}
	return nil
}

// commandDelivery is where a command's output is to be delivered, as the
// request gives it.
func commandDelivery(req sendCommandRequest) map[string]any {
	delivery := map[string]any{}
	for k, v := range map[string]string{"OutputS3Region": req.OutputS3Region, "OutputS3BucketName": req.OutputS3BucketName, "OutputS3KeyPrefix": req.OutputS3KeyPrefix} {
		if v != "" {
			delivery[k] = v
		}
	}
	if req.CloudWatchOutputConfig != nil && req.CloudWatchOutputConfig.CloudWatchOutputEnabled {
		delivery["CloudWatchOutputConfig"] = map[string]any{"CloudWatchOutputEnabled": true}
	}
	return delivery
}

func putJSON(ctx context.Context, kv kvStore, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return kv.Set(ctx, key, string(b))
}

// command reads a recorded command.
func (h *Handler) command(ctx context.Context, id string) (ssmCommand, error) {
	var cmd ssmCommand
	kv, err := h.kv()
	if err != nil {
		return cmd, err
	}
	if !commandIDRE.MatchString(id) {
		return cmd, invalid("InvalidCommandId", "%q is not a command id (a UUID, as SendCommand returns)", id)
	}
	s, err := kv.Get(ctx, commandKey(id))
	if errors.Is(err, store.ErrNotFound) {
		return cmd, invalid("InvalidCommandId", "command %s not found", id)
	}
	if err != nil {
		return cmd, err
	}
	if err := json.Unmarshal([]byte(s), &cmd); err != nil {
		return cmd, fmt.Errorf("command %s: %w", id, err)
	}
	return cmd, nil
}

// invocation is one instance's share of a command, from its execution.
type invocation struct {
	instance, execution string
	status, details     string
	code                int
	stdout, stderr      string
	started, ended      *time.Time
}

// invocationStatus is an execution's status as SSM's command invocation
// status and its details.
func invocationStatus(execStatus string) (status, details string) {
	switch execStatus {
	case runbook.StatusPending:
		return "Pending", "Pending"
	case runbook.StatusInProgress, runbook.StatusWaiting:
		return "InProgress", "InProgress"
	case runbook.StatusSuccess:
		return "Success", "Success"
	case runbook.StatusCancelled:
		return "Cancelled", "Cancelled"
	case runbook.StatusTimedOut:
		return "TimedOut", "ExecutionTimedOut"
	}
	return "Failed", "Failed"
}

// commandStatus is a command's status from its invocations': in progress
// while one is, else Success when all succeeded, else the first of
// Failed, TimedOut, Cancelled among them.
func commandStatus(invs []string) string {
	if len(invs) == 0 {
		return "Pending"
	}
	for _, s := range invs {
		if s == "Pending" || s == "InProgress" {
			return "InProgress"
		}
	}
	for _, s := range []string{"Failed", "TimedOut", "Cancelled"} {
		if slices.Contains(invs, s) {
			return s
		}
	}
	return "Success"
}

// invocations reads the executions of a command.
func (h *Handler) invocations(ctx context.Context, cmd ssmCommand) []invocation {
	out := make([]invocation, 0, len(cmd.InstanceIDs))
	for i, id := range cmd.InstanceIDs {
		inv := invocation{instance: id, code: -1}
		if i < len(cmd.Executions) {
			inv.execution = cmd.Executions[i]
		}
		if msg, failed := cmd.StartErrors[id]; failed {
			inv.status, inv.details, inv.stderr = "Failed", "Undeliverable", msg
			out = append(out, inv)
			continue
		}
		ex, err := h.deps.Runbooks.Get(ctx, inv.execution)
		if err != nil {
			inv.status, inv.details = "Failed", "Undeliverable"
			inv.stderr = "the command did not start on this instance: the controller stopped before its execution " + inv.execution + " started"
			if !errors.Is(err, runbook.ErrNotFound) {
				inv.stderr = err.Error()
			}
			out = append(out, inv)
			continue
		}
		inv.status, inv.details = invocationStatus(ex.Status)
		if len(ex.Steps) > 0 {
			se := ex.Steps[0]
			inv.started, inv.ended = se.StartedAt, se.EndedAt
			if r := scriptResult(se.Result, id); r != nil {
				if code, ok := r["ExitCode"].(float64); ok {
					inv.code = int(code)
				}
				inv.stdout, _ = r["Stdout"].(string)
				inv.stderr, _ = r["Stderr"].(string)
			}
			if inv.stderr == "" && se.Error != "" && inv.status != "Success" {
				inv.stderr = se.Error
			}
		}
		if inv.ended == nil {
			inv.ended = ex.EndedAt
		}
		out = append(out, inv)
	}
	return out
}

// scriptResult is one instance's part of a runCommand step's result:
// {ExitCode, Stdout, Stderr}, under Instances when the step succeeded and
// at the top when it failed.
func scriptResult(res any, id string) map[string]any {
	m, _ := res.(map[string]any)
	if in, ok := m["Instances"].(map[string]any); ok {
		m = in
	}
	r, _ := m[id].(map[string]any)
	return r
}

type ssmCommandOut struct {
	CommandId              string
	DocumentName           string
	DocumentVersion        string
	Comment                string
	ExpiresAfter           *awsTime `json:",omitempty"`
	Parameters             map[string][]string
	InstanceIds            []string
	Targets                []ssmTarget
	RequestedDateTime      awsTime
	Status                 string
	StatusDetails          string
	OutputS3Region         string `json:",omitempty"`
	OutputS3BucketName     string `json:",omitempty"`
	OutputS3KeyPrefix      string `json:",omitempty"`
	MaxConcurrency         string `json:",omitempty"`
	MaxErrors              string `json:",omitempty"`
	TargetCount            int
	CompletedCount         int
	ErrorCount             int
	DeliveryTimedOutCount  int
	ServiceRole            string                  `json:",omitempty"`
	NotificationConfig     json.RawMessage         `json:",omitempty"`
	CloudWatchOutputConfig *cloudWatchOutputConfig `json:",omitempty"`
	TimeoutSeconds         int                     `json:",omitempty"`
}

// commandOf is a command as SendCommand and ListCommands show it.
func commandOf(cmd ssmCommand, invs []invocation) ssmCommandOut {
	out := ssmCommandOut{
		CommandId: cmd.ID, DocumentName: cmd.DocumentName, DocumentVersion: "1", Comment: cmd.Comment,
		Parameters: cmd.Parameters, InstanceIds: cmd.InstanceIDs, Targets: cmd.Targets, RequestedDateTime: awsTime(cmd.RequestedAt),
		OutputS3Region: cmd.OutputS3Region, OutputS3BucketName: cmd.OutputS3BucketName, OutputS3KeyPrefix: cmd.OutputS3KeyPrefix,
		MaxConcurrency: cmd.MaxConcurrency, MaxErrors: cmd.MaxErrors, TargetCount: len(cmd.InstanceIDs),
		ServiceRole: cmd.ServiceRole, NotificationConfig: cmd.NotificationConfig, CloudWatchOutputConfig: cmd.CloudWatchOutputConfig,
		TimeoutSeconds: cmd.TimeoutSeconds,
	}
	if out.Parameters == nil {
		out.Parameters = map[string][]string{}
	}
	if out.Targets == nil {
		out.Targets = []ssmTarget{}
	}
	var statuses []string
	for _, inv := range invs {
		statuses = append(statuses, inv.status)
		switch inv.status {
		case "Success":
			out.CompletedCount++
		case "Failed", "TimedOut", "Cancelled":
			out.CompletedCount++
			out.ErrorCount++
		}
	}
	out.Status = commandStatus(statuses)
	out.StatusDetails = out.Status
	return out
}

type commandInvocationRequest struct {
	CommandId  string
	InstanceId string
	PluginName string
	Details    bool
	MaxResults int
	NextToken  string
	Filters    json.RawMessage
}

// pluginName is the one plugin of AWS-RunShellScript.
const pluginName = "aws:runShellScript"

func (h *Handler) getCommandInvocation(c *call) (any, error) {
	var req commandInvocationRequest
	if err := decodeJSON(c, &req); err != nil {
		return nil, err
	}
	if req.PluginName != "" && req.PluginName != pluginName && req.PluginName != runbook.ShellCommandStep {
		return nil, invalid("InvalidPluginName", "%s has one plugin, %s, not %q", runbook.SSMShellDocument, pluginName, req.PluginName)
	}
	if _, err := h.engine(); err != nil {
		return nil, err
	}
	cmd, err := h.command(c.ctx, req.CommandId)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(cmd.InstanceIDs, req.InstanceId) {
		return nil, invalid("InvocationDoesNotExist", "command %s did not run on instance %q (it ran on %s)", cmd.ID, req.InstanceId, strings.Join(cmd.InstanceIDs, ", "))
	}
	var inv invocation
	for _, x := range h.invocations(c.ctx, cmd) {
		if x.instance == req.InstanceId {
			inv = x
		}
	}
	out := map[string]any{
		"CommandId": cmd.ID, "InstanceId": inv.instance, "Comment": cmd.Comment, "DocumentName": cmd.DocumentName,
		"DocumentVersion": "1", "PluginName": pluginName, "ResponseCode": inv.code,
		"ExecutionStartDateTime": isoTime(inv.started), "ExecutionEndDateTime": isoTime(inv.ended),
		"Status": inv.status, "StatusDetails": inv.details,
		"StandardOutputContent": inv.stdout, "StandardOutputUrl": "", "StandardErrorContent": inv.stderr, "StandardErrorUrl": "",
		"CloudWatchOutputConfig": cloudWatchOutputConfig{},
	}
	if inv.started != nil {
		end := h.now()
		if inv.ended != nil {
			end = *inv.ended
		}
		d := end.Sub(*inv.started)
		out["ExecutionElapsedTime"] = fmt.Sprintf("PT%.3fS", math.Max(d.Seconds(), 0))
	}
	if cmd.CloudWatchOutputConfig != nil {
		out["CloudWatchOutputConfig"] = cmd.CloudWatchOutputConfig
	}
	return out, nil
}

type commandPlugin struct {
	Name                   string
	Status                 string
	StatusDetails          string
	ResponseCode           int
	ResponseStartDateTime  *awsTime `json:",omitempty"`
	ResponseFinishDateTime *awsTime `json:",omitempty"`
	Output                 string
	StandardOutputUrl      string
	StandardErrorUrl       string
	OutputS3Region         string `json:",omitempty"`
	OutputS3BucketName     string `json:",omitempty"`
	OutputS3KeyPrefix      string `json:",omitempty"`
}

type commandInvocationOut struct {
	CommandId          string
	InstanceId         string
	InstanceName       string
	Comment            string
	DocumentName       string
	DocumentVersion    string
	RequestedDateTime  awsTime
	Status             string
	StatusDetails      string
	TraceOutput        string
	StandardOutputUrl  string
	StandardErrorUrl   string
	CommandPlugins     []commandPlugin
	ServiceRole        string          `json:",omitempty"`
	NotificationConfig json.RawMessage `json:",omitempty"`
}

// pluginOutput is a plugin's Output: stdout, then stderr under SSM's
// heading, as SSM writes it.
func pluginOutput(inv invocation) string {
	out := inv.stdout
	if inv.stderr != "" {
		out += "\n----------ERROR-------\n" + inv.stderr
	}
	return out
}

func (h *Handler) listCommandInvocations(c *call) (any, error) {
	var req commandInvocationRequest
	if err := decodeJSON(c, &req); err != nil {
		return nil, err
	}
	if req.CommandId == "" {
		return nil, invalid("ValidationException", "give CommandId: invocations are listed by command here")
	}
	if _, err := h.engine(); err != nil {
		return nil, err
	}
	cmd, err := h.command(c.ctx, req.CommandId)
	if err != nil {
		return nil, err
	}
	list := []commandInvocationOut{}
	for _, inv := range h.invocations(c.ctx, cmd) {
		if req.InstanceId != "" && inv.instance != req.InstanceId {
			continue
		}
		o := commandInvocationOut{
			CommandId: cmd.ID, InstanceId: inv.instance, InstanceName: inv.instance, Comment: cmd.Comment,
			DocumentName: cmd.DocumentName, DocumentVersion: "1", RequestedDateTime: awsTime(cmd.RequestedAt),
			Status: inv.status, StatusDetails: inv.details, CommandPlugins: []commandPlugin{},
			ServiceRole: cmd.ServiceRole, NotificationConfig: cmd.NotificationConfig,
		}
		if req.Details {
			o.CommandPlugins = append(o.CommandPlugins, commandPlugin{
				Name: pluginName, Status: inv.status, StatusDetails: inv.details, ResponseCode: inv.code,
				ResponseStartDateTime: timeOf(inv.started), ResponseFinishDateTime: timeOf(inv.ended),
				Output: pluginOutput(inv), OutputS3Region: cmd.OutputS3Region, OutputS3BucketName: cmd.OutputS3BucketName,
				OutputS3KeyPrefix: cmd.OutputS3KeyPrefix,
			})
		}
		list = append(list, o)
	}
	return map[string]any{"CommandInvocations": list}, nil
}

type cancelCommandRequest struct {
	CommandId   string
	InstanceIds []string
}

func (h *Handler) cancelCommand(c *call) (any, error) {
	var req cancelCommandRequest
	if err := decodeJSON(c, &req); err != nil {
		return nil, err
	}
	if _, err := h.engine(); err != nil {
		return nil, err
	}
	cmd, err := h.command(c.ctx, req.CommandId)
	if err != nil {
		return nil, err
	}
	for _, id := range req.InstanceIds {
		if !slices.Contains(cmd.InstanceIDs, id) {
			return nil, invalid("InvalidInstanceId", "command %s did not run on instance %s", cmd.ID, id)
		}
	}
	for i, id := range cmd.InstanceIDs {
		if len(req.InstanceIds) > 0 && !slices.Contains(req.InstanceIds, id) || i >= len(cmd.Executions) {
			continue
		}
		// One that has ended, or never started, has nothing to cancel.
		if err := h.deps.Runbooks.Cancel(c.ctx, cmd.Executions[i]); err != nil &&
			!errors.Is(err, runbook.ErrInvalid) && !errors.Is(err, runbook.ErrNotFound) {
			return nil, err
		}
	}
	return struct{}{}, nil
}
