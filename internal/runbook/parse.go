package runbook

import (
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/ohler55/ojg/jp"

	"github.com/autoheal/autoheal/internal/diag"
	"github.com/autoheal/autoheal/internal/limits"
)

// Parse reads a document written in YAML or JSON (JSON is YAML's flow
// style, so one parser reads both), checks it and fills its defaults. path
// is where the document came from: problems name it, and the document is
// named after its base name without extension. Any problem is returned as
// *Errors listing every problem found, each at its line and column; nothing
// of an invalid document is returned.
//
// Parsing happens in passes so that a user fixing a document sees every
// problem at once: the YAML syntax (the parser stops at the first error),
// then the shape of every field (unknown fields, wrong types, values out of
// range), then what needs the whole document (step references, {{ }}
// references, the inputs of each action, loops without an exit).
//
// Before any of that, the raw bytes are checked against limits.Document
// (size, UTF-8, depth, scalar size, number of keys and items), so that the
// YAML parser only sees files the cheap scan let through; the tree it
// builds is checked again, exactly (limits.CheckTree).
func Parse(path string, data []byte) (*Document, error) {
	if le := limits.Check(path, data, limits.Document); le != nil {
		return nil, &Errors{*le}
	}
	file, err := parseYAML(data)
	if err != nil {
		return nil, &Errors{syntaxError(path, err)}
	}
	if le := limits.CheckTree(path, file, limits.Document); le != nil {
		return nil, &Errors{*le}
	}
	body, errs := document(path, file)
	if len(errs) > 0 {
		return nil, errs.Err()
	}
	tree, errs := buildTree(path, body)
	if tree.kind == kindNull && len(errs) > 0 {
		return nil, errs.Err() // the document is too large
	}
	p := &docParser{file: path, errs: errs}
	if !p.checkCounts(tree) {
		return nil, p.errs.Err()
	}
	doc := p.document(tree)
	if path != "" {
		doc.Name = strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
		doc.Source = path
	}
	p.validate(doc)
	if err := p.errs.Err(); err != nil {
		return nil, err
	}
	doc.fillDefaults()
	return doc, nil
}

// parseYAML runs the YAML parser, turning a panic into an error: the
// parser is not ours, and a document is input from users (and from the
// API) that must never take the process down.
func parseYAML(data []byte) (file *ast.File, err error) {
	defer func() {
		if r := recover(); r != nil {
			file, err = nil, fmt.Errorf("cannot parse the document: %v", r)
		}
	}()
	return parser.ParseBytes(data, 0)
}

// syntaxError turns a go-yaml error into a positioned Error.
func syntaxError(path string, err error) Error {
	if ye, ok := errors.AsType[yaml.Error](err); ok {
		line, col := tokenPos(ye.GetToken())
		return Error{File: path, Line: line, Col: col, Msg: ye.GetMessage()}
	}
	return Error{File: path, Line: 1, Col: 1, Msg: err.Error()}
}

// document returns the body of the file's only YAML document. Empty
// documents (a file of comments, a trailing "---") are ignored; a second
// document with content is an error rather than silently ignored.
func document(path string, file *ast.File) (ast.Node, Errors) {
	var body ast.Node
	for _, doc := range file.Docs {
		if doc == nil || doc.Body == nil {
			continue
		}
		if body != nil {
			tk := doc.Body.GetToken()
			if doc.Start != nil {
				tk = doc.Start
			}
			line, col := tokenPos(tk)
			return nil, Errors{{File: path, Line: line, Col: col,
				Msg: "a file holds one document; this is a second one"}}
		}
		body = doc.Body
	}
	if body == nil {
		return nil, Errors{{File: path, Line: 1, Col: 1,
			Msg: "the document is empty: schemaVersion and mainSteps are required"}}
	}
	return body, nil
}

// SchemaVersion is the only schemaVersion accepted, that of SSM Automation
// documents.
const SchemaVersion = "0.3"

// Limits of a step, as in SSM Automation. MaxTimeoutSeconds also keeps
// TimeoutSeconds * time.Second far from overflowing.
const (
	MaxAttemptsLimit  = 100
	MaxTimeoutSeconds = 30 * 24 * 3600
)

// DefaultTimeoutSeconds is the timeout of one attempt of a step of action
// when the step sets none: long for the actions that wait on something
// slow (a script, a condition, a human), ten minutes for the others.
func DefaultTimeoutSeconds(action string) int {
	switch action {
	case ActionRunCommand, ActionWaitForProperty:
		return 3600
	case ActionApprove:
		return 7 * 24 * 3600
	}
	return 600
}

// Output types, as in SSM Automation.
const (
	OutputString     = "String"
	OutputStringList = "StringList"
	OutputInteger    = "Integer"
	OutputBoolean    = "Boolean"
	OutputStringMap  = "StringMap"
	OutputMapList    = "MapList"
)

var (
	paramTypes  = []string{TypeString, TypeStringList, TypeInteger, TypeBoolean}
	outputTypes = []string{OutputString, OutputStringList, OutputInteger, OutputBoolean, OutputStringMap, OutputMapList}
	actions     = []string{ActionRunCommand, ActionExecuteAPI, ActionAssertProperty, ActionWaitForProperty,
		ActionExecuteAutomation, ActionSleep, ActionApprove, ActionBranch}

	// awsActions are the names of SSM Automation for our actions.
	awsActions = map[string]string{
		"aws:runCommand":                 ActionRunCommand,
		"aws:executeAwsApi":              ActionExecuteAPI,
		"aws:assertAwsResourceProperty":  ActionAssertProperty,
		"aws:waitForAwsResourceProperty": ActionWaitForProperty,
		"aws:executeAutomation":          ActionExecuteAutomation,
		"aws:sleep":                      ActionSleep,
		"aws:approve":                    ActionApprove,
		"aws:branch":                     ActionBranch,
	}

	// Step and output names appear in {{ Step.Output }}; parameter names
	// also become environment variable names of scripts.
	stepNameRE   = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)
	outputNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)
	paramNameRE  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)
)

// normalizeAction returns the action an action name stands for.
func normalizeAction(name string) (string, bool) {
	if slices.Contains(actions, name) {
		return name, true
	}
	a, ok := awsActions[name]
	return a, ok
}

// docParser reads a Document out of a tree of nodes, remembering where
// each part was written for the checks that need the whole document.
type docParser struct {
	file   string
	errs   Errors
	params map[string]*node // each parameter's mapping
	steps  []*stepSource    // by index of MainSteps
	tops   []*node          // the document's outputs
}

// stepSource is where a step was written.
type stepSource struct {
	item    *node
	fields  map[string]entry
	outputs []map[string]entry // by index of Outputs
	action  bool               // the action is known
}

func (p *docParser) errorAt(line, col int, format string, args ...any) {
	if line < 1 {
		line, col = 1, 1 // not expected: every node has a place
	}
	p.errs = append(p.errs, Error{File: p.file, Line: line, Col: col, Msg: fmt.Sprintf(format, args...)})
}

func (p *docParser) errorf(n *node, format string, args ...any) {
	p.errorAt(n.line, n.col, format, args...)
}

// fields checks that n is a mapping with only known keys and returns its
// entries by key. what names the mapping in messages.
func (p *docParser) fields(n *node, what string, known ...string) (map[string]entry, bool) {
	if n.kind != kindMap {
		p.errorf(n, "%s: expected a mapping, got %s", what, n.describe())
		return nil, false
	}
	f := make(map[string]entry, len(n.entries))
	for _, e := range n.entries {
		if !slices.Contains(known, e.key) {
			p.errorAt(e.line, e.col, "unknown field %q%s", e.key, suggest(e.key, known, "known fields"))
			continue
		}
		f[e.key] = e
	}
	return f, true
}

// missing reports whether a required key is absent or empty, and where to
// say so: at the key when it was written empty, else at the mapping n.
func missing(f map[string]entry, key string, n *node) (*node, bool) {
	e, ok := f[key]
	switch {
	case !ok:
		return n, true
	case e.val.kind == kindNull:
		return e.val, true
	}
	return nil, false
}

// present returns the value of key, if it was written and not empty.
func present(f map[string]entry, key string) (*node, bool) {
	e, ok := f[key]
	if !ok || e.val.kind == kindNull {
		return nil, false
	}
	return e.val, true
}

// str returns the text of a scalar field. Like the YAML decoder, it takes
// any scalar as its text: version: 0.3 is "0.3".
func (p *docParser) str(f map[string]entry, key string) (string, *node) {
	n, ok := present(f, key)
	if !ok {
		return "", nil
	}
	if !n.scalar() {
		p.errorf(n, "%s: expected a string, got %s", key, n.describe())
		return "", nil
	}
	return n.text, n
}

func (p *docParser) integer(f map[string]entry, key string, lo, hi int64, hint string) (int64, *node) {
	n, ok := present(f, key)
	if !ok {
		return 0, nil
	}
	if n.kind != kindInt {
		p.errorf(n, "%s: expected an integer, got %s", key, n.describe())
		return 0, nil
	}
	if n.i < lo || n.i > hi {
		p.errorf(n, "%s: %s is out of range (%d to %d%s)", key, n.text, lo, hi, hint)
		return 0, nil
	}
	return n.i, n
}

func (p *docParser) boolean(f map[string]entry, key string) (bool, *node) {
	n, ok := present(f, key)
	if !ok {
		return false, nil
	}
	if n.kind != kindBool {
		p.errorf(n, "%s: expected true or false, got %s", key, n.describe())
		return false, nil
	}
	return n.b, n
}

func (p *docParser) document(n *node) *Document {
	doc := &Document{}
	f, ok := p.fields(n, "document", "schemaVersion", "description", "assumeRole", "parameters", "mainSteps", "outputs")
	if !ok {
		return doc
	}
	if v, at := p.str(f, "schemaVersion"); at == nil {
		if at, ok := missing(f, "schemaVersion", n); ok {
			p.errorf(at, "schemaVersion is required: write schemaVersion: %q", SchemaVersion)
		}
	} else if v != SchemaVersion {
		p.errorf(at, "schemaVersion: only %q (SSM Automation) is supported, got %q", SchemaVersion, v)
	} else {
		doc.SchemaVersion = v
	}
	doc.Description, _ = p.str(f, "description")
	doc.AssumeRole, _ = p.str(f, "assumeRole")

	if params, ok := present(f, "parameters"); ok {
		p.parameters(doc, params)
	}

	steps, ok := present(f, "mainSteps")
	switch {
	case !ok:
		at := n
		if e, written := f["mainSteps"]; written {
			at = e.val
		}
		p.errorf(at, "mainSteps is required: a document has at least one step")
	case steps.kind != kindList:
		p.errorf(steps, "mainSteps: expected a list of steps, got %s", steps.describe())
	case len(steps.items) == 0:
		p.errorf(steps, "mainSteps: a document has at least one step")
	default:
		for _, item := range steps.items {
			s, src := p.step(item)
			doc.MainSteps = append(doc.MainSteps, s)
			p.steps = append(p.steps, src)
		}
	}

	if outs, ok := present(f, "outputs"); ok {
		if outs.kind != kindList {
			p.errorf(outs, "outputs: expected a list of Step.Output names, got %s", outs.describe())
		} else {
			for _, item := range outs.items {
				if item.kind != kindString {
					p.errorf(item, "outputs: expected a Step.Output name, got %s", item.describe())
					continue
				}
				doc.Outputs = append(doc.Outputs, item.text)
				p.tops = append(p.tops, item)
			}
		}
	}
	return doc
}

func (p *docParser) parameters(doc *Document, n *node) {
	if n.kind != kindMap {
		p.errorf(n, "parameters: expected a mapping of names to parameters, got %s", n.describe())
		return
	}
	doc.Parameters = make(map[string]*Parameter, len(n.entries))
	p.params = make(map[string]*node, len(n.entries))
	for _, e := range n.entries {
		if !paramNameRE.MatchString(e.key) {
			p.errorAt(e.line, e.col, "parameter name %q: use letters, digits and _, not starting with a digit (it is also an environment variable of scripts)", e.key)
			continue
		}
		prm := p.parameter(e)
		doc.Parameters[e.key] = prm
		doc.ParamOrder = append(doc.ParamOrder, e.key)
		p.params[e.key] = e.val
	}
}

// bounds reads SSM's displayType and the length bounds of a parameter.
func (p *docParser) bounds(prm *Parameter, f map[string]entry, typ string) {
	if v, at := p.str(f, "displayType"); at != nil {
		if v != "textfield" && v != "textarea" {
			p.errorf(at, "displayType: %q: SSM's values are textfield and textarea", v)
		} else {
			prm.DisplayType = v
		}
	}
	for _, b := range []struct {
		key   string
		to    *int
		types []string
	}{
		{"minItems", &prm.MinItems, []string{TypeStringList}},
		{"maxItems", &prm.MaxItems, []string{TypeStringList}},
		{"minChars", &prm.MinChars, []string{TypeString, TypeStringList}},
		{"maxChars", &prm.MaxChars, []string{TypeString, TypeStringList}},
	} {
		v, at := p.integer(f, b.key, 0, 1<<20, "")
		switch {
		case at == nil:
		case !slices.Contains(b.types, typ):
			p.errorf(at, "%s: only %s parameters have it", b.key, strings.Join(b.types, " and "))
		default:
			*b.to = int(v)
		}
	}
	if prm.MaxItems > 0 && prm.MinItems > prm.MaxItems {
		p.errorf(f["minItems"].val, "minItems %d is above maxItems %d", prm.MinItems, prm.MaxItems)
	}
	if prm.MaxChars > 0 && prm.MinChars > prm.MaxChars {
		p.errorf(f["minChars"].val, "minChars %d is above maxChars %d", prm.MinChars, prm.MaxChars)
	}
}

func (p *docParser) parameter(e entry) *Parameter {
	prm := &Parameter{}
	f, ok := p.fields(e.val, "parameter "+e.key, "type", "description", "default", "allowedValues", "allowedPattern",
		"displayType", "minItems", "maxItems", "minChars", "maxChars")
	if !ok {
		return prm
	}
	prm.Description, _ = p.str(f, "description")
	typ, at := p.str(f, "type")
	if at == nil {
		if at, ok := missing(f, "type", e.val); ok {
			p.errorf(at, "parameter %s: type is required (%s)", e.key, strings.Join(paramTypes, ", "))
		}
		return prm
	}
	if !slices.Contains(paramTypes, typ) {
		p.errorf(at, "type: unknown parameter type %q%s; the types are %s", typ, suggest(typ, paramTypes, ""), strings.Join(paramTypes, ", "))
		return prm
	}
	prm.Type = typ

	if av, ok := present(f, "allowedValues"); ok {
		switch {
		case av.kind != kindList:
			p.errorf(av, "allowedValues: expected a list, got %s", av.describe())
		case len(av.items) == 0:
			p.errorf(av, "allowedValues: the list is empty, so no value would be allowed")
		default:
			for _, item := range av.items {
				v, msg := scalarOf(prm.itemType(), item)
				if msg != "" {
					p.errorf(item, "allowedValues: %s", msg)
					continue
				}
				prm.AllowedValues = append(prm.AllowedValues, v)
			}
		}
	}
	p.bounds(prm, f, typ)
	if pat, at := p.str(f, "allowedPattern"); at != nil {
		switch {
		case typ != TypeString && typ != TypeStringList:
			p.errorf(at, "allowedPattern: only String and StringList parameters have a pattern")
		default:
			re, err := compilePattern(pat)
			if err != nil {
				p.errorf(at, "allowedPattern: %v", err)
			} else {
				prm.AllowedPattern, prm.re = pat, re
			}
		}
	}
	if e, written := f["default"]; written {
		d := e.val
		if d.kind == kindNull {
			p.errorf(d, "default: empty; write default: \"\" (or [] for a StringList) for an empty default, or remove it to make the parameter required")
			return prm
		}
		v, msg := valueOf(typ, d)
		if msg != "" {
			p.errorf(d, "default: %s", msg)
			return prm
		}
		if err := prm.check(v); err != nil {
			p.errorf(d, "default: %v", err)
			return prm
		}
		prm.Default = v
	}
	return prm
}

// compilePattern compiles an allowedPattern. The pattern must match the
// whole value, as if written between ^ and $: a pattern meant to restrict
// a value that matched anywhere in it would let anything around the match
// through. (SSM documents write their patterns anchored anyway.)
func compilePattern(pat string) (*regexp.Regexp, error) {
	if _, err := regexp.Compile(pat); err != nil {
		return nil, err
	}
	return regexp.Compile(`^(?:` + pat + `)$`)
}

// itemType is the type of one allowed value of the parameter.
func (prm *Parameter) itemType() string {
	if prm.Type == TypeStringList {
		return TypeString
	}
	return prm.Type
}

// scalarOf reads a scalar of type typ (String, Integer or Boolean); msg
// says what is wrong with it.
func scalarOf(typ string, n *node) (v any, msg string) {
	switch typ {
	case TypeString:
		if n.scalar() {
			return n.text, ""
		}
		return nil, "expected a string, got " + n.describe()
	case TypeInteger:
		if n.kind == kindInt {
			return n.i, ""
		}
		return nil, "expected an integer, got " + n.describe()
	case TypeBoolean:
		if n.kind == kindBool {
			return n.b, ""
		}
		return nil, "expected true or false, got " + n.describe()
	}
	return nil, "unknown type " + typ
}

// valueOf reads a value of parameter type typ.
func valueOf(typ string, n *node) (v any, msg string) {
	if typ != TypeStringList {
		return scalarOf(typ, n)
	}
	if n.kind != kindList {
		return nil, "expected a list of strings, got " + n.describe()
	}
	l := make([]string, 0, len(n.items))
	for _, item := range n.items {
		if !item.scalar() {
			return nil, "expected a list of strings, got " + item.describe() + " in it"
		}
		l = append(l, item.text)
	}
	return l, ""
}

var stepFields = []string{"name", "action", "description", "inputs", "maxAttempts", "timeoutSeconds", "onFailure", "onCancel",
	"nextStep", "isEnd", "isCritical", "outputs"}

func (p *docParser) step(n *node) (*Step, *stepSource) {
	s, src := &Step{}, &stepSource{item: n}
	f, ok := p.fields(n, "mainSteps item", stepFields...)
	if !ok {
		return s, src
	}
	src.fields = f
	name, at := p.str(f, "name")
	switch {
	case at != nil && !stepNameRE.MatchString(name):
		p.errorf(at, "name: %q is not a step name: use letters, digits, _ and -", name)
	case at != nil:
		s.Name = name
	default:
		if at, ok := missing(f, "name", n); ok {
			p.errorf(at, "the step has no name")
		}
	}
	s.Description, _ = p.str(f, "description")
	action, at := p.str(f, "action")
	switch {
	case at == nil:
		if at, ok := missing(f, "action", n); ok {
			p.errorf(at, "step %s: action is required (%s)", name, strings.Join(actions, ", "))
		}
	default:
		if a, ok := normalizeAction(action); ok {
			s.Action, src.action = a, true
		} else {
			p.errorf(at, "action: %s", unknownAction(action))
		}
	}
	var execTimeout int64
	if in, ok := present(f, "inputs"); ok {
		if in.kind != kindMap {
			p.errorf(in, "inputs: expected a mapping, got %s", in.describe())
		} else {
			if s.Action == ActionRunCommand {
				execTimeout = p.ssmShellScript(in)
			}
			s.Inputs = in.value().(map[string]any)
		}
	}
	if v, at := p.integer(f, "maxAttempts", 1, MaxAttemptsLimit, ""); at != nil {
		s.MaxAttempts = int(v)
	}
	if v, at := p.integer(f, "timeoutSeconds", 0, MaxTimeoutSeconds, "; 0 means the action's default"); at != nil {
		s.TimeoutSeconds = int(v)
	}
	if s.TimeoutSeconds == 0 && execTimeout > 0 {
		s.TimeoutSeconds = int(execTimeout)
	}
	if v, at := p.str(f, "onFailure"); at != nil {
		if msg := checkTransition(v, true); msg != "" {
			p.errorf(at, "onFailure: %s", msg)
		} else {
			s.OnFailure = v
		}
	}
	if v, at := p.str(f, "onCancel"); at != nil {
		if msg := checkTransition(v, false); msg != "" {
			p.errorf(at, "onCancel: %s", msg)
		} else {
			s.OnCancel = v
		}
	}
	s.NextStep, _ = p.str(f, "nextStep")
	s.IsEnd, _ = p.boolean(f, "isEnd")
	if v, at := p.boolean(f, "isCritical"); at != nil {
		s.IsCritical = &v
	}
	if outs, ok := present(f, "outputs"); ok {
		p.outputs(s, src, outs)
	}
	return s, src
}

// unknownAction explains an action name that is not one of ours.
func unknownAction(name string) string {
	known := append(slices.Clone(actions), slices.Sorted(maps.Keys(awsActions))...)
	if s := suggest(name, known, ""); s != "" {
		return fmt.Sprintf("unknown action %q%s", name, s)
	}
	if strings.HasPrefix(name, "aws:") {
		return fmt.Sprintf("SSM action %q has no equivalent here; the actions are %s (or their aws: names)", name, strings.Join(actions, ", "))
	}
	return fmt.Sprintf("unknown action %q; the actions are %s", name, strings.Join(actions, ", "))
}

// checkTransition checks the syntax of an onFailure (withContinue) or
// onCancel value; that the step it names exists is checked later.
func checkTransition(v string, withContinue bool) string {
	choices := []string{OnFailureAbort, "step:NAME"}
	if withContinue {
		choices = []string{OnFailureAbort, OnFailureContinue, "step:NAME"}
	}
	switch {
	case v == OnFailureAbort, v == OnFailureContinue && withContinue:
		return ""
	case strings.HasPrefix(v, "step:"):
		if !stepNameRE.MatchString(strings.TrimPrefix(v, "step:")) {
			return fmt.Sprintf("%q does not name a step", v)
		}
		return ""
	}
	return fmt.Sprintf("%q is not one of %s%s", v, strings.Join(choices, ", "), suggest(v, choices[:len(choices)-1], ""))
}

func (p *docParser) outputs(s *Step, src *stepSource, n *node) {
	if n.kind != kindList {
		p.errorf(n, "outputs: expected a list, got %s", n.describe())
		return
	}
	first := map[string]int{}
	for _, item := range n.items {
		f, ok := p.fields(item, "outputs item", "Name", "Selector", "Type")
		if !ok {
			continue
		}
		var o Output
		name, at := p.str(f, "Name")
		switch {
		case at == nil:
			if at, ok := missing(f, "Name", item); ok {
				p.errorf(at, "the output has no Name")
			}
		case !outputNameRE.MatchString(name):
			p.errorf(at, "Name: %q is not an output name: use letters, digits, _ and -", name)
		case first[name] > 0:
			p.errorf(at, "duplicate output name %q (first at line %d)", name, first[name])
		default:
			first[name] = at.line
			o.Name = name
		}
		sel, at := p.str(f, "Selector")
		switch {
		case at == nil:
			if at, ok := missing(f, "Selector", item); ok {
				p.errorf(at, "output %s: Selector is required, a JSONPath like $.Payload.state", name)
			}
		default:
			if msg := checkSelector(sel); msg != "" {
				p.errorf(at, "Selector: %s", msg)
			} else {
				o.Selector = sel
			}
		}
		if typ, at := p.str(f, "Type"); at != nil {
			if !slices.Contains(outputTypes, typ) {
				p.errorf(at, "Type: unknown output type %q%s; the types are %s", typ, suggest(typ, outputTypes, ""), strings.Join(outputTypes, ", "))
			} else {
				o.Type = typ
			}
		}
		s.Outputs = append(s.Outputs, o)
		src.outputs = append(src.outputs, f)
	}
}

// checkSelector checks a JSONPath selector; the message says what is wrong.
func checkSelector(sel string) string {
	if !strings.HasPrefix(sel, "$") {
		return fmt.Sprintf("%q is not a JSONPath: it must start with $", sel)
	}
	if _, err := jp.ParseString(sel); err != nil {
		return fmt.Sprintf("%q is not a valid JSONPath: %v", sel, err)
	}
	return ""
}

// fillDefaults sets every field left empty to its default.
func (d *Document) fillDefaults() {
	for _, s := range d.MainSteps {
		if s.MaxAttempts == 0 {
			s.MaxAttempts = 1
		}
		if s.TimeoutSeconds == 0 {
			s.TimeoutSeconds = DefaultTimeoutSeconds(s.Action)
		}
		if s.OnFailure == "" {
			s.OnFailure = OnFailureAbort
		}
		if s.OnCancel == "" {
			s.OnCancel = OnFailureAbort
		}
		for i := range s.Outputs {
			if s.Outputs[i].Type == "" {
				s.Outputs[i].Type = OutputString
			}
		}
	}
}

// suggest helps with a misspelt word (see diag.Suggest).
func suggest(word string, known []string, label string) string {
	return diag.Suggest(word, known, label)
}
