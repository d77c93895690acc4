package awsapi

import (
	"context"
	"strconv"
	"time"

	"github.com/autoheal/autoheal/internal/api"
	"github.com/autoheal/autoheal/internal/config"
	"github.com/autoheal/autoheal/internal/runbook"
	"github.com/autoheal/autoheal/internal/store"
)

// SSM's actions (JSON 1.1, X-Amz-Target AmazonSSM.ACTION) over autoheal's
// runbooks, its instances and a parameter store (docs/design.md §14):
//
//   - Automation is the runbook engine: an automation execution is an
//     execution, its AutomationExecutionId the execution's id padded to
//     AWS's 36 characters (automationID).
//   - Run Command is AWS-RunShellScript only. A command runs as one
//     execution per instance of a one-step aws:runCommand document
//     (runbook.StartShellCommand), the runbooks' own path: durable, and
//     visible as executions too. The command itself (its request and its
//     executions' ids) is recorded in the store's kv table, before its
//     executions start, so that it survives a controller restart.
//   - Parameter Store keeps parameters in the kv table (replicated in a
//     cluster) under ssm/parameter/NAME. The groups' configured parameters
//     (config groups[].parameters, which instances get in their
//     environment) are there too, read-only, as /autoheal/GROUP/NAME: a
//     secret one is a SecureString whose value is never shown, as the
//     rest of the API never shows it.
//
// Roles: reading is viewer's. Starting and stopping automations, writing
// parameters and cancelling commands are operator's, as starting and
// cancelling executions through the REST API. SendCommand is admin's: an
// operator may run the documents an administrator installed, whose
// parameters never reach a script as text; SendCommand runs any text it is
// sent on any instance, as the controller's instances run (and instances'
// credentials, never admin, may not). Reading a SecureString's value
// (WithDecryption) needs operator, as writing one does.
var ssmActions = map[string]action{
	"StartAutomationExecution": {need: config.RoleOperator, run: (*Handler).startAutomationExecution},
	"GetAutomationExecution":   {need: config.RoleViewer, run: (*Handler).getAutomationExecution},
	"StopAutomationExecution":  {need: config.RoleOperator, run: (*Handler).stopAutomationExecution},
	"SendCommand":              {need: config.RoleAdmin, run: (*Handler).sendCommand},
	"GetCommandInvocation":     {need: config.RoleViewer, run: (*Handler).getCommandInvocation},
	"ListCommandInvocations":   {need: config.RoleViewer, run: (*Handler).listCommandInvocations},
	"CancelCommand":            {need: config.RoleOperator, run: (*Handler).cancelCommand},
	"GetParameter":             {need: config.RoleViewer, run: (*Handler).getParameter},
	"GetParameters":            {need: config.RoleViewer, run: (*Handler).getParameters},
	"PutParameter":             {need: config.RoleOperator, run: (*Handler).putParameter},
	"DeleteParameter":          {need: config.RoleOperator, run: (*Handler).deleteParameter},
}

// kvStore is the store's key-value table (*store.Store), reached through
// deps.Journal.
type kvStore interface {
	Get(ctx context.Context, key string) (string, error)
	Set(ctx context.Context, key, value string, evs ...store.Event) error
	Delete(ctx context.Context, key string) error
}

// shellCommands starts a command's executions (*runbook.Engine).
type shellCommands interface {
	StartShellCommand(ctx context.Context, id string, c runbook.ShellCommand, origin string) error
}

func (h *Handler) kv() (kvStore, error) {
	if kv, ok := h.deps.Journal.(kvStore); ok {
		return kv, nil
	}
	return nil, &apiError{Status: 500, Code: "InternalServerError", Msg: "this controller's store keeps no parameters nor commands"}
}

func (h *Handler) engine() (api.Runbooks, error) {
	if h.deps.Runbooks == nil {
		return nil, &apiError{Status: 500, Code: "InternalServerError", Msg: "runbooks are not enabled in this controller"}
	}
	return h.deps.Runbooks, nil
}

// awsTime is a timestamp as the JSON protocols write it: seconds since the
// epoch.
type awsTime time.Time

func (t awsTime) MarshalJSON() ([]byte, error) {
	s := float64(time.Time(t).UnixMilli()) / 1000
	return []byte(strconv.FormatFloat(s, 'f', -1, 64)), nil
}

func timeOf(t *time.Time) *awsTime {
	if t == nil || t.IsZero() {
		return nil
	}
	a := awsTime(*t)
	return &a
}

// isoTime is a StringDateTime: ISO 8601, as GetCommandInvocation writes
// its times.
func isoTime(t *time.Time) string {
	if t == nil || t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}
