package runbook

import (
	"slices"
	"strconv"
	"strings"
)

// SSM's form of aws:runCommand: DocumentName AWS-RunShellScript with its
// Parameters, read as ours (Commands, WorkingDirectory, the step's
// timeout) at parse time, in place in the document's tree, so that the
// checks and the run that follow see one form at the places written.

// SSM's shell script document, as aws:runCommand names it, and the one it
// refuses by name.
const (
	ssmShellDocument      = "AWS-RunShellScript"
	ssmPowerShellDocument = "AWS-RunPowerShellScript"
)

// ssmOutputInputs are aws:runCommand's inputs about where the output goes
// (S3, CloudWatch Logs) and its delivery: accepted, and the output is kept
// in the execution's record instead.
var ssmOutputInputs = []string{"OutputS3BucketName", "OutputS3KeyPrefix", "OutputS3Region", "CloudWatchOutputConfig",
	"Comment", "TimeoutSeconds", "MaxConcurrency", "MaxErrors", "NotificationConfig", "ServiceRoleArn", "DocumentHash", "DocumentHashType", "DocumentVersion"}

// ssmOutputLocation is where the output of a script whose SSM step named
// S3 or CloudWatch Logs goes: the step's result says it.
const ssmOutputLocation = "kept in this execution's step result (autoheal writes no S3 object nor CloudWatch Logs stream)"

// ssmShellScript rewrites, in place, the inputs of an aws:runCommand step
// written as SSM writes it — DocumentName AWS-RunShellScript with
// Parameters commands (a list or one string), workingDirectory and
// executionTimeout — into ours (Commands, WorkingDirectory). It returns
// executionTimeout in seconds (0: none).
func (p *docParser) ssmShellScript(in *node) (timeout int64) {
	i := slices.IndexFunc(in.entries, func(e entry) bool { return e.key == "DocumentName" })
	if i < 0 {
		return 0
	}
	if !p.ssmDocument(in, in.entries[i].val) {
		return 0
	}
	var kept []entry
	var params *node
	for _, e := range in.entries {
		switch {
		case e.key == "DocumentName":
		case e.key == "Parameters":
			params = e.val
		case e.key == "Commands" || e.key == "Script" || e.key == "WorkingDirectory":
			p.errorAt(e.line, e.col, "inputs.%s: the script is %s's Parameters here; write it once", e.key, ssmShellDocument)
		case slices.Contains(ssmOutputInputs, e.key):
			// Accepted: the output stays in the execution's record,
			// which says so (OutputLocation).
			if (strings.HasPrefix(e.key, "Output") || e.key == "CloudWatchOutputConfig") &&
				!slices.ContainsFunc(kept, func(k entry) bool { return k.key == "OutputLocation" }) {
				kept = append(kept, entry{key: "OutputLocation", line: e.line, col: e.col,
					val: &node{kind: kindString, line: e.line, col: e.col, text: ssmOutputLocation}})
			}
		default:
			kept = append(kept, e)
		}
	}
	if params == nil || params.kind != kindMap {
		at := in.entries[i].val
		if params != nil {
			at = params
		}
		p.errorf(at, "inputs.Parameters: %s needs Parameters with commands", ssmShellDocument)
		in.entries = kept
		return 0
	}
	kept, timeout = p.ssmParameters(params, kept)
	in.entries = kept
	return timeout
}

// ssmDocument checks the DocumentName of an SSM runCommand: only the
// shell script runs. A refused one is said once, here: the SSM inputs are
// then removed from in, not reported again as unknown.
func (p *docParser) ssmDocument(in, name *node) bool {
	var msg string
	switch {
	case !name.scalar():
		msg = "inputs.DocumentName: expected a string, got " + name.describe()
	case name.text == ssmPowerShellDocument:
		msg = "inputs.DocumentName: " + ssmPowerShellDocument + " does not run here: instances' scripts run with /bin/sh; write the script for " + ssmShellDocument
	case name.text != ssmShellDocument:
		msg = "inputs.DocumentName: " + strconv.Quote(name.text) + ": only " + ssmShellDocument + " runs here (write its Parameters.commands), or write Commands or Script without DocumentName"
	default:
		return true
	}
	p.errorf(name, "%s", msg)
	in.entries = slices.DeleteFunc(in.entries, func(e entry) bool {
		return e.key == "DocumentName" || e.key == "Parameters" || slices.Contains(ssmOutputInputs, e.key)
	})
	return false
}

// ssmParameters reads AWS-RunShellScript's parameters into our inputs,
// appended to kept, and returns executionTimeout in seconds.
func (p *docParser) ssmParameters(params *node, kept []entry) ([]entry, int64) {
	var timeout int64
	for _, e := range params.entries {
		switch e.key {
		case "commands":
			cmds := e.val
			if cmds.scalar() {
				cmds = &node{kind: kindList, line: cmds.line, col: cmds.col, items: []*node{cmds}}
			}
			kept = append(kept, entry{key: "Commands", line: e.line, col: e.col, val: cmds})
		case "workingDirectory":
			if v := p.ssmOne(e.key, e.val); v != nil && v.text != "" {
				kept = append(kept, entry{key: "WorkingDirectory", line: e.line, col: e.col, val: v})
			}
		case "executionTimeout":
			v := p.ssmOne(e.key, e.val)
			if v == nil {
				continue
			}
			n, err := strconv.ParseInt(v.text, 10, 64)
			if err != nil || n < 1 || n > MaxTimeoutSeconds {
				p.errorf(v, "inputs.Parameters.executionTimeout: %q is not a number of seconds from 1 to %d", v.text, MaxTimeoutSeconds)
				continue
			}
			timeout = n
		default:
			p.errorAt(e.line, e.col, "inputs.Parameters: unknown parameter %q of %s%s", e.key, ssmShellDocument,
				suggest(e.key, []string{"commands", "workingDirectory", "executionTimeout"}, "its parameters are"))
		}
	}
	return kept, timeout
}

// ssmOne is the one value of an SSM parameter: SSM's values are lists,
// usually of one item (["3600"]); a plain value is taken too.
func (p *docParser) ssmOne(key string, v *node) *node {
	if v.kind == kindList {
		if len(v.items) != 1 {
			p.errorf(v, "inputs.Parameters.%s: expected one value, got %d", key, len(v.items))
			return nil
		}
		v = v.items[0]
	}
	if !v.scalar() {
		p.errorf(v, "inputs.Parameters.%s: expected a string, got %s", key, v.describe())
		return nil
	}
	return v
}
