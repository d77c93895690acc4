package runbook

import (
	"slices"
)

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
			{"Env", inEnv}, {"WorkingDirectory", inText}, {"OutputLimitBytes", inInt}, {"OutputLocation", inText}},
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
	aws := false
	if e, ok := src.fields["inputs"]; ok && s.Action != ActionRunCommand && awsForm(e.val) {
		switch s.Action {
		case ActionExecuteAPI, ActionAssertProperty, ActionWaitForProperty:
			specs, aws = awsSpecs(s.Action, e.val), true
		}
	}
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
		if aws {
			sc.awsCheck()
		} else {
			sc.request()
		}
	case ActionAssertProperty, ActionWaitForProperty:
		if aws {
			sc.awsCheck()
		} else {
			sc.request()
		}
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
