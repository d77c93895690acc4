package runbook

import (
	"slices"
	"strconv"
	"strings"
	"time"
)

// The checks of each action's inputs beyond their kinds (checkKind): what
// is required, what excludes what, and the ranges and formats of values
// written as literals.

// runCommand checks a runCommand step: a target, a script, and its limits.
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

// property checks the selector and values of assertProperty and
// waitForProperty.
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

// executeAutomation checks the document an executeAutomation step runs.
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

// sleep checks a sleep step's Duration or Timestamp.
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

// branch checks a branch step's Choices and Default.
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
	what := "choice"
	if !top {
		what = "condition"
	}
	if n.kind != kindMap {
		sc.p.errorf(n, "%s: expected a mapping, got %s", what, n.describe())
		return
	}
	f := sc.choiceFields(n, top)
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
	op, ok := sc.choiceOperator(n, f, what)
	if !ok {
		return
	}
	if slices.Contains(logicOperators, op) {
		sc.logicCondition(op, f, depth)
		return
	}
	sc.comparison(n, op, f)
}

// choiceFields returns the fields of choice n that are given (not null),
// by name, reporting the unknown ones; NextStep is known at the top only.
func (sc *stepScope) choiceFields(n *node, top bool) map[string]*node {
	known := slices.Concat([]string{"Variable"}, stringOperators, numericOperators, booleanOperators, logicOperators)
	if top {
		known = append([]string{"NextStep"}, known...)
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
	return f
}

// choiceOperator returns the one operator of choice n, whose given fields
// are f; ok is false, and the problem reported, for none or more than one.
func (sc *stepScope) choiceOperator(n *node, f map[string]*node, what string) (op string, ok bool) {
	var ops []string
	for _, e := range n.entries {
		if _, ok := f[e.key]; ok && e.key != "NextStep" && e.key != "Variable" {
			ops = append(ops, e.key)
		}
	}
	switch len(ops) {
	case 0:
		sc.p.errorf(n, "the %s has no operator: write Variable and one of StringEquals, NumericEquals, BooleanEquals, ..., or And, Or, Not", what)
		return "", false
	case 1:
		return ops[0], true
	default:
		sc.p.errorf(f[ops[1]], "%s: the condition already has %s; combine operators with And or Or", ops[1], ops[0])
		return "", false
	}
}

// logicCondition checks a condition whose operator op is And, Or or Not,
// and the conditions within it, depth being how deep it nests.
func (sc *stepScope) logicCondition(op string, f map[string]*node, depth int) {
	operand := f[op]
	if variable, ok := f["Variable"]; ok {
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
}

// comparison checks condition n, whose operator op compares its Variable
// with an operand: the Variable must be one reference, and the operand of
// op's type, or a reference.
func (sc *stepScope) comparison(n *node, op string, f map[string]*node) {
	operand := f[op]
	switch variable, hasVar := f["Variable"]; {
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
