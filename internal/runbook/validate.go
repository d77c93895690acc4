package runbook

import (
	"fmt"
	"slices"
	"strings"
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
