package runbook

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// validate checks what needs the whole document: step names and the steps
// they point to, {{ }} references, the inputs of each action, and loops.
// It runs on a document that may have problems already reported, and skips
// what those problems leave unknown (the inputs of an unknown action) so as
// not to report one mistake twice.
func (p *docParser) validate(doc *Document) {
	v := &validator{p: p, doc: doc, index: map[string]int{}}
	v.indexNames()
	for i := range doc.MainSteps {
		v.transitions(i)
	}
	for i := range doc.MainSteps {
		v.inputs(i)
	}
	v.documentOutputs()
	v.loops()
}

type validator struct {
	p         *docParser
	doc       *Document
	index     map[string]int // step name -> index of the step that has it
	stepNames []string       // in order
}

func (v *validator) indexNames() {
	for i, s := range v.doc.MainSteps {
		if s.Name == "" {
			continue
		}
		if j, dup := v.index[s.Name]; dup {
			first := v.p.steps[j].fields["name"].val
			v.p.errorf(v.p.steps[i].fields["name"].val, "duplicate step name %q (first at line %d)", s.Name, first.line)
			continue
		}
		v.index[s.Name] = i
		v.stepNames = append(v.stepNames, s.Name)
	}
}

// target reports a step name that names no step.
func (v *validator) target(at *node, field, name string) {
	if _, ok := v.index[name]; !ok {
		v.p.errorf(at, "%s: unknown step %q%s", field, name, suggest(name, v.stepNames, ""))
	}
}

// stepIndex returns the index of the step named name, or -1.
func (v *validator) stepIndex(name string) int {
	if i, ok := v.index[name]; ok {
		return i
	}
	return -1
}

func (v *validator) transitions(i int) {
	s, f := v.doc.MainSteps[i], v.p.steps[i].fields
	if s.NextStep != "" {
		at := f["nextStep"].val
		v.target(at, "nextStep", s.NextStep)
		if s.IsEnd {
			v.p.errorf(at, "nextStep: the step also has isEnd: true, which would ignore it; remove one of them")
		}
	}
	if name, ok := strings.CutPrefix(s.OnFailure, "step:"); ok {
		v.target(f["onFailure"].val, "onFailure", name)
	}
	if name, ok := strings.CutPrefix(s.OnCancel, "step:"); ok {
		v.target(f["onCancel"].val, "onCancel", name)
	}
}

// The inputs of each action. What every input means is described in
// document.go; this is how each is checked.
type inputKind uint8

const (
	inText    inputKind = iota // a scalar; references in it are substituted as text
	inList                     // a list of scalars, or one reference to a StringList
	inInt                      // an integer, or one reference to an Integer
	inNumber                   // a number, or one reference to an Integer
	inEnv                      // a mapping of environment variable names to scalars
	inParams                   // a mapping of parameter names to values
	inAny                      // any value
	inChoices                  // the choices of a branch
)

type inputSpec struct {
	key  string
	kind inputKind
}

var (
	propertyInputs = []inputSpec{{"Method", inText}, {"Path", inText}, {"PropertySelector", inText}, {"DesiredValues", inList}}
	inputSpecs     = map[string][]inputSpec{
		ActionRunCommand: {{"InstanceIds", inList}, {"InstanceId", inText}, {"Commands", inList}, {"Script", inText},
			{"Env", inEnv}, {"WorkingDirectory", inText}, {"OutputLimitBytes", inInt}},
		ActionExecuteAPI:        {{"Method", inText}, {"Path", inText}, {"Body", inAny}},
		ActionAssertProperty:    propertyInputs,
		ActionWaitForProperty:   append(slices.Clone(propertyInputs), inputSpec{"PollIntervalSeconds", inNumber}),
		ActionExecuteAutomation: {{"DocumentName", inText}, {"RuntimeParameters", inParams}},
		ActionSleep:             {{"Duration", inText}, {"Timestamp", inText}},
		ActionApprove:           {{"Message", inText}, {"MinRequiredApprovals", inInt}},
		ActionBranch:            {{"Choices", inChoices}, {"Default", inText}},
	}

	// ssmHints explain inputs of the SSM actions that ours replace with
	// others, for documents translated from SSM.
	ssmHints = map[string]string{
		"runCommand.DocumentName":           "runCommand runs the script itself: write it as Commands (SSM's Parameters.commands) or Script",
		"runCommand.Parameters":             "runCommand runs the script itself: write it as Commands (SSM's Parameters.commands) or Script",
		"executeApi.Service":                "executeApi calls autoheal's own API: write Method and Path (/v1/...)",
		"executeApi.Api":                    "executeApi calls autoheal's own API: write Method and Path (/v1/...)",
		"assertProperty.Service":            "the property actions read autoheal's own API: write Method and Path (/v1/...)",
		"assertProperty.Api":                "the property actions read autoheal's own API: write Method and Path (/v1/...)",
		"waitForProperty.Service":           "the property actions read autoheal's own API: write Method and Path (/v1/...)",
		"waitForProperty.Api":               "the property actions read autoheal's own API: write Method and Path (/v1/...)",
		"approve.Approvers":                 "any operator of autoheal may approve; Approvers is not supported",
		"approve.NotificationArn":           "approval requests go to the notification channels; NotificationArn is not supported",
		"executeAutomation.DocumentVersion": "documents have no versions here; remove DocumentVersion",
	}

	methods = []string{"GET", "POST", "PUT", "PATCH", "DELETE"}
)

// Bounds of the integer inputs.
const (
	maxOutputLimitBytes = 1 << 20
	maxPollInterval     = 3600
	maxApprovals        = 100
)

// stepScope checks the inputs of one step.
type stepScope struct {
	*validator
	i      int
	step   *Step
	src    *stepSource
	at     *node            // where to report a missing input: the inputs key, else the step
	inputs map[string]*node // written and not empty
}

func (v *validator) inputs(i int) {
	s, src := v.doc.MainSteps[i], v.p.steps[i]
	if !src.action {
		return // an unknown action: its inputs mean nothing yet
	}
	sc := &stepScope{validator: v, i: i, step: s, src: src, at: src.item, inputs: map[string]*node{}}
	specs := inputSpecs[s.Action]
	if e, ok := src.fields["inputs"]; ok {
		sc.at = &node{line: e.line, col: e.col}
		switch e.val.kind {
		case kindNull:
		case kindMap:
			for _, in := range e.val.entries {
				if !slices.ContainsFunc(specs, func(sp inputSpec) bool { return sp.key == in.key }) {
					msg := suggest(in.key, specKeys(specs), s.Action+" takes")
					if hint, ok := ssmHints[s.Action+"."+in.key]; ok {
						msg = ": " + hint
					}
					v.p.errorAt(in.line, in.col, "inputs: unknown input %q%s", in.key, msg)
					continue
				}
				if in.val.kind != kindNull {
					sc.inputs[in.key] = in.val
				}
			}
		default:
			return // not a mapping, reported already
		}
	}
	// Every reference is reported here, once; the type checks below skip
	// the invalid ones.
	for key, n := range sc.inputs {
		sc.refs(n, s.Action == ActionRunCommand && (key == "Commands" || key == "Script"))
	}
	for _, sp := range specs {
		if n, ok := sc.inputs[sp.key]; ok {
			sc.checkKind(sp, n)
		}
	}
	switch s.Action {
	case ActionRunCommand:
		sc.runCommand()
	case ActionExecuteAPI:
		sc.request()
	case ActionAssertProperty, ActionWaitForProperty:
		sc.request()
		sc.property()
	case ActionExecuteAutomation:
		sc.executeAutomation()
	case ActionSleep:
		sc.sleep()
	case ActionApprove:
		if n, ok := sc.inputs["MinRequiredApprovals"]; ok {
			sc.intRange(n, "MinRequiredApprovals", 1, maxApprovals)
		}
	case ActionBranch:
		sc.branch()
	}
	if len(s.Outputs) > 0 && (s.Action == ActionSleep || s.Action == ActionBranch) {
		v.p.errorf(src.fields["outputs"].val, "outputs: a %s step has no result to select outputs from", s.Action)
	}
}

func specKeys(specs []inputSpec) []string {
	keys := make([]string, len(specs))
	for i, sp := range specs {
		keys[i] = sp.key
	}
	return keys
}

// refs checks every reference in the strings of n. In a script
// (script), references are refused: their values would be spliced into
// shell text, where a value such as "; rm -rf /" is a command.
func (sc *stepScope) refs(n *node, script bool) {
	switch n.kind {
	case kindString:
		for _, name := range refsIn(n.text) {
			if script {
				how := fmt.Sprintf("pass it with Env (NAME: \"{{ %s }}\") and use $NAME", name)
				if _, ok := sc.doc.Parameters[name]; ok {
					how = fmt.Sprintf("use $%s: parameters are in the script's environment", name)
				}
				sc.p.errorf(n, "{{ %s }} in a script: values are never spliced into shell text; %s", name, how)
				continue
			}
			if _, msg := sc.resolve(name, sc.i); msg != "" {
				sc.p.errorf(n, "{{ %s }}: %s", name, msg)
			}
		}
	case kindMap:
		for _, e := range n.entries {
			sc.refs(e.val, script)
		}
	case kindList:
		for _, it := range n.items {
			sc.refs(it, script)
		}
	}
}

// resolve returns the type of the value name references from step before
// (a parameter's, an output's, String for the values of an execution), or
// a message saying why it references nothing.
func (v *validator) resolve(name string, before int) (typ, msg string) {
	switch {
	case strings.Contains(name, ":"):
		if slices.Contains(globals, name) {
			return TypeString, ""
		}
		return "", fmt.Sprintf("unknown value%s; the values of an execution are %s", suggest(name, globals, ""), strings.Join(globals, ", "))
	case !strings.Contains(name, "."):
		if prm, ok := v.doc.Parameters[name]; ok && prm != nil {
			return prm.Type, ""
		}
		if _, ok := v.index[name]; ok {
			return "", fmt.Sprintf("%q is a step: write {{ %s.OUTPUT }} for one of its outputs", name, name)
		}
		return "", "unknown parameter" + suggest(name, v.doc.ParamOrder, "")
	case strings.Count(name, ".") > 1:
		return "", "not a reference: write {{ Parameter }} or {{ Step.Output }}"
	}
	stepName, out, _ := strings.Cut(name, ".")
	j, ok := v.index[stepName]
	switch {
	case !ok:
		return "", fmt.Sprintf("unknown step %q%s", stepName, suggest(stepName, v.stepNames, ""))
	case j == before:
		return "", "a step cannot use its own outputs"
	case j > before:
		return "", fmt.Sprintf("step %q comes later; a step can use the outputs of the steps before it only", stepName)
	}
	var names []string
	for _, o := range v.doc.MainSteps[j].Outputs {
		if o.Name == out {
			return cmpOr(o.Type, OutputString), ""
		}
		if o.Name != "" {
			names = append(names, o.Name)
		}
	}
	if len(names) == 0 {
		return "", fmt.Sprintf("step %q has no outputs", stepName)
	}
	return "", fmt.Sprintf("step %q has no output %q%s", stepName, out, suggest(out, names, "its outputs"))
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// refType returns the type of the value a string that is exactly one
// reference stands for; ok is false for any other string, and for a
// reference already reported as invalid.
func (sc *stepScope) refType(n *node) (name, typ string, ok bool) {
	if n.kind != kindString {
		return "", "", false
	}
	name, ok = wholeRef(n.text)
	if !ok {
		return "", "", false
	}
	typ, msg := sc.resolve(name, sc.i)
	return name, typ, msg == "" && typ != ""
}

func isListType(typ string) bool {
	return typ == TypeStringList || typ == OutputStringMap || typ == OutputMapList
}

// checkKind checks that the value n of an input has the input's kind.
func (sc *stepScope) checkKind(sp inputSpec, n *node) {
	key := "inputs." + sp.key
	switch sp.kind {
	case inText:
		if !n.scalar() {
			sc.p.errorf(n, "%s: expected a string, got %s", key, n.describe())
		} else if name, typ, ok := sc.refType(n); ok && isListType(typ) {
			sc.p.errorf(n, "%s: expected a string, but {{ %s }} is a %s", key, name, typ)
		}
	case inList:
		sc.list(n, key)
	case inInt, inNumber:
		want := "an integer"
		if sp.kind == inNumber {
			want = "a number"
		}
		switch name, typ, ok := sc.refType(n); {
		case n.kind == kindInt, n.kind == kindFloat && sp.kind == inNumber:
		case ok && typ == TypeInteger:
		case ok:
			sc.p.errorf(n, "%s: expected %s, but {{ %s }} is a %s", key, want, name, typ)
		case n.kind == kindString && refsIn(n.text) != nil:
			// an invalid reference, already reported
		default:
			sc.p.errorf(n, "%s: expected %s, got %s", key, want, n.describe())
		}
	case inEnv:
		if n.kind != kindMap {
			sc.p.errorf(n, "%s: expected a mapping of variable names to values, got %s", key, n.describe())
			return
		}
		for _, e := range n.entries {
			if !paramNameRE.MatchString(e.key) {
				sc.p.errorAt(e.line, e.col, "%s: %q is not an environment variable name: use letters, digits and _, not starting with a digit", key, e.key)
			}
			sc.checkKind(inputSpec{sp.key + "." + e.key, inText}, e.val)
		}
	case inParams:
		if n.kind != kindMap {
			sc.p.errorf(n, "%s: expected a mapping of parameter names to values, got %s", key, n.describe())
			return
		}
		for _, e := range n.entries {
			if e.val.kind == kindMap {
				sc.p.errorf(e.val, "%s.%s: expected a string or a list, got a mapping", key, e.key)
			} else if e.val.kind == kindList {
				sc.list(e.val, key+"."+e.key)
			}
		}
	case inChoices, inAny:
		// checked by the action
	}
}

// list checks a list of scalars, or one reference to a StringList.
func (sc *stepScope) list(n *node, key string) {
	switch n.kind {
	case kindList:
		for _, it := range n.items {
			if !it.scalar() {
				sc.p.errorf(it, "%s: expected a list of strings, got %s in it", key, it.describe())
			} else if name, typ, ok := sc.refType(it); ok && isListType(typ) {
				sc.p.errorf(it, "%s: {{ %s }} is a %s, which would make a list in the list; write %s: \"{{ %s }}\" for the list itself", key, name, typ, key, name)
			}
		}
		return
	case kindString:
		name, typ, ok := sc.refType(n)
		switch {
		case ok && typ == TypeStringList:
			return
		case ok:
			sc.p.errorf(n, "%s: expected a list, but {{ %s }} is a %s; write [\"{{ %s }}\"] for a list of one", key, name, typ, name)
			return
		case refsIn(n.text) != nil:
			if _, whole := wholeRef(n.text); whole {
				return // an invalid reference, already reported
			}
		}
	}
	sc.p.errorf(n, "%s: expected a list, got %s", key, n.describe())
}

// literal returns the text of an input that holds no reference.
func literal(n *node) (string, bool) {
	if !n.scalar() || refsIn(n.text) != nil {
		return "", false
	}
	return n.text, true
}

// requireOne reports unless exactly one of the inputs a and b is given.
func (sc *stepScope) requireOne(a, b string) {
	_, hasA := sc.inputs[a]
	nb, hasB := sc.inputs[b]
	switch {
	case !hasA && !hasB:
		sc.p.errorf(sc.at, "inputs: %s needs %s or %s", sc.step.Action, a, b)
	case hasA && hasB:
		sc.p.errorf(nb, "inputs.%s: give %s or %s, not both", b, a, b)
	}
}

func (sc *stepScope) require(key, what string) (*node, bool) {
	n, ok := sc.inputs[key]
	if !ok {
		sc.p.errorf(sc.at, "inputs: %s needs %s, %s", sc.step.Action, key, what)
	}
	return n, ok
}

func (sc *stepScope) intRange(n *node, key string, lo, hi int64) {
	if n.kind == kindInt && (n.i < lo || n.i > hi) {
		sc.p.errorf(n, "inputs.%s: %s is out of range (%d to %d)", key, n.text, lo, hi)
	}
}

// numberRange checks a number that must be above 0 and at most hi.
func (sc *stepScope) numberRange(n *node, key string, hi float64) {
	v := n.f
	if n.kind == kindInt {
		v = float64(n.i)
	}
	if (n.kind == kindInt || n.kind == kindFloat) && !(v > 0 && v <= hi) {
		sc.p.errorf(n, "inputs.%s: %s is out of range (above 0, at most %g)", key, n.text, hi)
	}
}

func (sc *stepScope) runCommand() {
	sc.requireOne("InstanceIds", "InstanceId")
	sc.requireOne("Commands", "Script")
	if n, ok := sc.inputs["Commands"]; ok && n.kind == kindList && len(n.items) == 0 {
		sc.p.errorf(n, "inputs.Commands: the list is empty")
	}
	if n, ok := sc.inputs["Script"]; ok {
		if s, ok := literal(n); ok && strings.TrimSpace(s) == "" {
			sc.p.errorf(n, "inputs.Script: the script is empty")
		}
	}
	if n, ok := sc.inputs["WorkingDirectory"]; ok {
		if s, ok := literal(n); ok && !strings.HasPrefix(s, "/") {
			sc.p.errorf(n, "inputs.WorkingDirectory: %q is not an absolute path", s)
		}
	}
	if n, ok := sc.inputs["OutputLimitBytes"]; ok {
		sc.intRange(n, "OutputLimitBytes", 1, maxOutputLimitBytes)
	}
}

// request checks the Method and Path of an action that calls the API.
func (sc *stepScope) request() {
	if n, ok := sc.inputs["Method"]; ok && n.scalar() {
		if !slices.Contains(methods, n.text) {
			sc.p.errorf(n, "inputs.Method: %q is not one of %s%s", n.text, strings.Join(methods, ", "), suggest(n.text, methods, ""))
		}
	}
	n, ok := sc.require("Path", "an API path like /v1/groups")
	if !ok || !n.scalar() {
		return
	}
	// The prefix is checked as written, before any substitution, so that
	// no value can point the request elsewhere than autoheal's API.
	if !strings.HasPrefix(n.text, "/v1/") {
		sc.p.errorf(n, "inputs.Path: %q does not start with /v1/: executeApi and the property actions call autoheal's own API", n.text)
		return
	}
	path, _, _ := strings.Cut(n.text, "?")
	if slices.Contains(strings.Split(path, "/"), "..") {
		sc.p.errorf(n, "inputs.Path: %q has a .. segment", n.text)
	}
}

func (sc *stepScope) property() {
	if n, ok := sc.require("PropertySelector", "a JSONPath like $.targets..state"); ok && n.scalar() {
		// References may fill in values, as in $.targets[?(@.id ==
		// '{{ InstanceId }}')].state, but not the selector's shape: it
		// is checked with each reference standing for 0.
		if _, whole := wholeRef(n.text); whole {
			sc.p.errorf(n, "inputs.PropertySelector: write the selector itself, not a reference to it")
		} else if msg := checkSelector(refRE.ReplaceAllString(n.text, "0")); msg != "" {
			sc.p.errorf(n, "inputs.PropertySelector: %s", strings.Replace(msg, strconv.Quote(refRE.ReplaceAllString(n.text, "0")), strconv.Quote(n.text), 1))
		}
	}
	if n, ok := sc.require("DesiredValues", "the list of values the property may take"); ok {
		if n.kind == kindList && len(n.items) == 0 {
			sc.p.errorf(n, "inputs.DesiredValues: the list is empty, so no value would do")
		}
	}
	if n, ok := sc.inputs["PollIntervalSeconds"]; ok {
		sc.numberRange(n, "PollIntervalSeconds", maxPollInterval)
	}
}

func (sc *stepScope) executeAutomation() {
	n, ok := sc.require("DocumentName", "the name of the document to run")
	if !ok {
		return
	}
	if s, ok := literal(n); ok {
		switch {
		case strings.TrimSpace(s) == "":
			sc.p.errorf(n, "inputs.DocumentName: empty")
		case s == sc.doc.Name:
			sc.p.errorf(n, "inputs.DocumentName: the document would run itself without end")
		}
	}
}

func (sc *stepScope) sleep() {
	sc.requireOne("Duration", "Timestamp")
	if n, ok := sc.inputs["Duration"]; ok {
		if s, ok := literal(n); ok {
			d, err := ParseDuration(s)
			timeout := sc.step.TimeoutSeconds
			if timeout == 0 {
				timeout = DefaultTimeoutSeconds(ActionSleep)
			}
			switch {
			case err != nil:
				sc.p.errorf(n, "inputs.Duration: %v", err)
			case d > time.Duration(timeout)*time.Second:
				// The timeout bounds the sleep as any other action.
				sc.p.errorf(n, "inputs.Duration: %s is longer than the step's timeout (%ds): raise timeoutSeconds", d, timeout)
			}
		}
	}
	if n, ok := sc.inputs["Timestamp"]; ok {
		if s, ok := literal(n); ok {
			if _, err := time.Parse(time.RFC3339, s); err != nil {
				sc.p.errorf(n, "inputs.Timestamp: %q is not an RFC 3339 time like 2026-12-01T10:00:00Z", s)
			}
		}
	}
}

// The operators of a branch choice, by the type of their operand.
var (
	stringOperators  = []string{"StringEquals", "EqualsIgnoreCase", "StartsWith", "EndsWith", "Contains"}
	numericOperators = []string{"NumericEquals", "NumericGreater", "NumericLesser", "NumericGreaterOrEquals", "NumericLesserOrEquals"}
	booleanOperators = []string{"BooleanEquals"}
	logicOperators   = []string{"And", "Or", "Not"}
)

func (sc *stepScope) branch() {
	if n, ok := sc.require("Choices", "a list of choices"); ok {
		switch {
		case n.kind != kindList:
			sc.p.errorf(n, "inputs.Choices: expected a list of choices, got %s", n.describe())
		case len(n.items) == 0:
			sc.p.errorf(n, "inputs.Choices: the list is empty")
		default:
			for _, c := range n.items {
				sc.choice(c, true, 0)
			}
		}
	}
	if n, ok := sc.inputs["Default"]; ok && n.scalar() {
		sc.target(n, "inputs.Default", n.text)
	}
}

// choice checks one choice of a branch: at the top, a NextStep and a
// condition; within And, Or and Not, a condition only. A condition is a
// Variable and one operator, or one of And, Or (lists of conditions) and
// Not (one condition).
func (sc *stepScope) choice(n *node, top bool, depth int) {
	known := slices.Concat([]string{"Variable"}, stringOperators, numericOperators, booleanOperators, logicOperators)
	if top {
		known = append([]string{"NextStep"}, known...)
	}
	what := "choice"
	if !top {
		what = "condition"
	}
	if n.kind != kindMap {
		sc.p.errorf(n, "%s: expected a mapping, got %s", what, n.describe())
		return
	}
	f := map[string]*node{}
	for _, e := range n.entries {
		if !slices.Contains(known, e.key) {
			if e.key == "NextStep" {
				sc.p.errorf(&node{line: e.line, col: e.col}, "NextStep: the conditions within And, Or and Not have none; the choice that holds them has")
			} else {
				sc.p.errorf(&node{line: e.line, col: e.col}, "unknown field %q%s", e.key, suggest(e.key, known, "known fields"))
			}
			continue
		}
		if e.val.kind != kindNull {
			f[e.key] = e.val
		}
	}
	if top {
		switch next, ok := f["NextStep"]; {
		case !ok:
			sc.p.errorf(n, "the choice has no NextStep")
		case !next.scalar():
			sc.p.errorf(next, "NextStep: expected a step name, got %s", next.describe())
		default:
			sc.target(next, "NextStep", next.text)
		}
	}
	var ops []string
	for _, e := range n.entries {
		if _, ok := f[e.key]; ok && e.key != "NextStep" && e.key != "Variable" {
			ops = append(ops, e.key)
		}
	}
	switch len(ops) {
	case 0:
		sc.p.errorf(n, "the %s has no operator: write Variable and one of StringEquals, NumericEquals, BooleanEquals, ..., or And, Or, Not", what)
		return
	case 1:
	default:
		sc.p.errorf(f[ops[1]], "%s: the condition already has %s; combine operators with And or Or", ops[1], ops[0])
		return
	}
	op, operand := ops[0], f[ops[0]]
	variable, hasVar := f["Variable"]
	if slices.Contains(logicOperators, op) {
		if hasVar {
			sc.p.errorf(variable, "Variable: with %s, the Variable goes in each condition", op)
		}
		if depth >= 16 {
			sc.p.errorf(operand, "%s: conditions nest too deep", op)
			return
		}
		if op == "Not" {
			sc.choice(operand, false, depth+1)
			return
		}
		switch {
		case operand.kind != kindList:
			sc.p.errorf(operand, "%s: expected a list of conditions, got %s", op, operand.describe())
			return
		case len(operand.items) == 0:
			sc.p.errorf(operand, "%s: the list of conditions is empty", op)
			return
		}
		for _, c := range operand.items {
			sc.choice(c, false, depth+1)
		}
		return
	}
	switch {
	case !hasVar:
		sc.p.errorf(n, "%s: the condition has no Variable, like Variable: \"{{ Step.Output }}\"", op)
	case variable.kind != kindString:
		sc.p.errorf(variable, "Variable: expected one reference like \"{{ Step.Output }}\", got %s", variable.describe())
	default:
		if _, ok := wholeRef(variable.text); !ok {
			sc.p.errorf(variable, "Variable: expected one reference like \"{{ Step.Output }}\", got %q", variable.text)
		}
	}
	_, _, isRef := sc.refType(operand)
	isRef = isRef || (operand.kind == kindString && refsIn(operand.text) != nil)
	switch {
	case slices.Contains(stringOperators, op):
		if !operand.scalar() {
			sc.p.errorf(operand, "%s: expected a string, got %s", op, operand.describe())
		}
	case slices.Contains(numericOperators, op):
		if operand.kind != kindInt && operand.kind != kindFloat && !isRef {
			sc.p.errorf(operand, "%s: expected a number, got %s", op, operand.describe())
		}
	case slices.Contains(booleanOperators, op):
		if operand.kind != kindBool && !isRef {
			sc.p.errorf(operand, "%s: expected true or false, got %s", op, operand.describe())
		}
	}
}

// documentOutputs checks the document's outputs, Step.Output names.
func (v *validator) documentOutputs() {
	for i, name := range v.doc.Outputs {
		at := v.p.tops[i]
		if strings.Count(name, ".") != 1 {
			v.p.errorf(at, "outputs: %q is not a Step.Output name", name)
			continue
		}
		if _, msg := v.resolve(name, len(v.doc.MainSteps)); msg != "" {
			v.p.errorf(at, "outputs: %s: %s", name, msg)
		}
	}
}

// loops reports every loop of steps from which the execution cannot reach
// an end.
//
// The rule. Steps are the nodes of a graph with one more node, the end.
// A step leads, when it succeeds, to
//   - the end if it has isEnd: true;
//   - else its nextStep, if it has one;
//   - else the step after it in mainSteps, or the end if it is the last;
//   - for a branch: the NextStep of each choice, and its Default; with no
//     Default, where it would lead as any other step (SSM runs the next
//     step when no choice matches and there is no Default).
//
// and, when it fails, with onFailure: Continue, where it leads when it
// succeeds; with onFailure: step:NAME, to NAME. onFailure: Abort (the
// default) ends the execution as failed: that is not counted as a way out,
// or every loop would have one, and a loop that only stops when a step
// fails runs forever when all goes well. onCancel is not counted either: a
// cancellation comes from outside.
//
// A loop is fine as long as some path leaves it for the end: polling, a
// branch that stops retrying, a failure handler. A loop with no path to
// the end is reported once, at the step of the loop written first, with
// the shortest cycle through that step. Steps that only lead into such a
// loop are not reported: fixing the loop fixes them.
func (v *validator) loops() {
	steps := v.doc.MainSteps
	n := len(steps)
	if n == 0 {
		return
	}
	end := n
	succ := make([][]int, n)
	for i := range steps {
		succ[i] = v.successors(i)
	}
	// Which steps can reach the end: a walk back from it.
	pred := make([][]int, n+1)
	for i, ss := range succ {
		for _, j := range ss {
			pred[j] = append(pred[j], i)
		}
	}
	canEnd := make([]bool, n+1)
	canEnd[end] = true
	queue := []int{end}
	for len(queue) > 0 {
		j := queue[0]
		queue = queue[1:]
		for _, i := range pred[j] {
			if !canEnd[i] {
				canEnd[i] = true
				queue = append(queue, i)
			}
		}
	}
	// Every step that cannot reach the end leads only to steps that
	// cannot either, so it is in a loop or leads into one. The loops are
	// the strongly connected components of those steps that have a cycle.
	trapped := func(i int) bool { return i < n && !canEnd[i] }
	for _, comp := range components(n, succ, trapped) {
		first := slices.Min(comp)
		cycle := shortestCycle(first, succ, func(i int) bool { return slices.Contains(comp, i) })
		if cycle == nil {
			continue // a single step that does not lead to itself
		}
		names := make([]string, len(cycle))
		for k, i := range cycle {
			names[k] = steps[i].Name
			if names[k] == "" {
				names[k] = fmt.Sprintf("#%d", i+1)
			}
		}
		if len(names) > 12 {
			names = append(names[:10:10], fmt.Sprintf("... (%d steps)", len(cycle)-1), names[len(names)-1])
		}
		v.p.errorf(v.p.steps[first].item, "steps loop without end: %s; no path leaves the loop for an end (isEnd: true, or the last step); leave it with a branch, or with onFailure: step:NAME or Continue", strings.Join(names, " -> "))
	}
}

// successors returns the steps (n for the end) step i may lead to, as
// described on loops.
func (v *validator) successors(i int) []int {
	steps := v.doc.MainSteps
	n := len(steps)
	s := steps[i]
	idx := func(name string) int {
		if j := v.stepIndex(name); j >= 0 {
			return j
		}
		return n // an unknown step, reported already: taken as an end so as not to report a loop
	}
	fall := n
	switch {
	case s.IsEnd:
	case s.NextStep != "":
		fall = idx(s.NextStep)
	case i+1 < n:
		fall = i + 1
	}
	var out []int
	if s.Action == ActionBranch {
		choices, _ := s.Inputs["Choices"].([]any)
		for _, c := range choices {
			if m, ok := c.(map[string]any); ok {
				if next, ok := m["NextStep"].(string); ok {
					out = append(out, idx(next))
				}
			}
		}
		if def, ok := s.Inputs["Default"]; ok && def != nil {
			name, _ := def.(string)
			out = append(out, idx(name))
		} else {
			out = append(out, fall)
		}
	} else {
		out = append(out, fall)
	}
	switch name, ok := strings.CutPrefix(s.OnFailure, "step:"); {
	case ok:
		out = append(out, idx(name))
	case s.OnFailure == OnFailureContinue:
		out = append(out, fall)
	}
	return out
}

// components returns the strongly connected components (Tarjan's
// algorithm) of the graph of the nodes below n for which in is true.
func components(n int, succ [][]int, in func(int) bool) [][]int {
	index := make([]int, n)
	low := make([]int, n)
	onStack := make([]bool, n)
	for i := range index {
		index[i] = -1
	}
	var stack []int
	var comps [][]int
	next := 0
	var visit func(int)
	visit = func(v int) {
		index[v], low[v] = next, next
		next++
		stack = append(stack, v)
		onStack[v] = true
		for _, w := range succ[v] {
			if !in(w) {
				continue
			}
			if index[w] < 0 {
				visit(w)
				low[v] = min(low[v], low[w])
			} else if onStack[w] {
				low[v] = min(low[v], index[w])
			}
		}
		if low[v] == index[v] {
			var comp []int
			for {
				w := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				onStack[w] = false
				comp = append(comp, w)
				if w == v {
					break
				}
			}
			comps = append(comps, comp)
		}
	}
	for v := range n {
		if in(v) && index[v] < 0 {
			visit(v)
		}
	}
	return comps
}

// shortestCycle returns the shortest path from start back to itself
// through nodes for which in is true, start first and last, or nil.
func shortestCycle(start int, succ [][]int, in func(int) bool) []int {
	parent := map[int]int{}
	queue := []int{start}
	for len(queue) > 0 {
		v := queue[0]
		queue = queue[1:]
		for _, w := range succ[v] {
			if w == start {
				path := []int{start}
				for u := v; u != start; u = parent[u] {
					path = append(path, u)
				}
				path = append(path, start)
				slices.Reverse(path)
				return path
			}
			if _, seen := parent[w]; seen || !in(w) {
				continue
			}
			parent[w] = v
			queue = append(queue, w)
		}
	}
	return nil
}
