package runbook

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// The only template syntax of a document is the reference, as in SSM
// Automation: {{ Name }} for a parameter, {{ Step.Output }} for an output of
// an earlier step, {{ automation:EXECUTION_ID }} for a value of the
// execution. Spaces inside the braces are optional. Nothing else is
// evaluated, and a substituted value is never scanned again, so a value
// holding "{{ X }}" or shell syntax stays the text it is.
//
// Braces around anything else are left as they are, so that text meant for
// another tool passes through: docker's {{ .State.Status }} and {{json .}}
// are not references. A name of the reference form that resolves to
// nothing is an error, not text, so that a typo is caught.
var refRE = regexp.MustCompile(`\{\{\s*([A-Za-z0-9_-]+(?:[.:][A-Za-z0-9_-]+)*)\s*\}\}`)

// Values of an execution every document may reference.
const (
	GlobalExecutionID  = "automation:EXECUTION_ID"
	GlobalDocumentName = "automation:DOCUMENT_NAME"
	GlobalDate         = "global:DATE"      // the day the execution started, 2006-01-02 (UTC)
	GlobalDateTime     = "global:DATE_TIME" // when it started, 2006-01-02_15.04.05 (UTC)
)

// globals lists the values of an execution a document may reference; the
// executor provides each of them, as strings.
var globals = []string{GlobalExecutionID, GlobalDocumentName, GlobalDate, GlobalDateTime}

// refsIn returns the names referenced in s, in order, with repeats.
func refsIn(s string) []string {
	if !strings.Contains(s, "{{") {
		return nil
	}
	var names []string
	for _, m := range refRE.FindAllStringSubmatch(s, -1) {
		names = append(names, m[1])
	}
	return names
}

// wholeRef returns the name s references when s is exactly one reference.
func wholeRef(s string) (string, bool) {
	m := refRE.FindStringSubmatchIndex(s)
	if m == nil || m[0] != 0 || m[1] != len(s) {
		return "", false
	}
	return s[m[2]:m[3]], true
}

// References returns the names v references, each once, in the order they
// first appear: the strings of v are searched, through maps (values, not
// keys) and lists, as Render substitutes them.
func References(v any) []string {
	var names []string
	walkStrings(v, func(s string) {
		for _, name := range refsIn(s) {
			if !slices.Contains(names, name) {
				names = append(names, name)
			}
		}
	})
	return names
}

func walkStrings(v any, f func(string)) {
	switch v := v.(type) {
	case string:
		f(v)
	case []string:
		for _, s := range v {
			f(s)
		}
	case []any:
		for _, it := range v {
			walkStrings(it, f)
		}
	case map[string]any:
		for _, it := range v {
			walkStrings(it, f)
		}
	case map[string]string:
		for _, s := range v {
			f(s)
		}
	}
}

// Render returns a copy of v, decoded inputs of a step, with every
// reference substituted by lookup. A string that is exactly one reference
// becomes the referenced value itself, of its own type: "{{ InstanceIds }}"
// gives a []string. A reference within a longer string is replaced by the
// value as text, a list as its items joined by commas. Map keys are not
// substituted. A reference lookup does not know is an error, naming every
// such reference; v is never modified.
func Render(v any, lookup func(name string) (any, bool)) (any, error) {
	r := renderer{lookup: lookup}
	out := r.render(v)
	if len(r.unknown) > 0 {
		return nil, fmt.Errorf("unknown reference %s", strings.Join(r.unknown, ", "))
	}
	if r.err != nil {
		return nil, r.err
	}
	return out, nil
}

type renderer struct {
	lookup  func(string) (any, bool)
	unknown []string // "{{ name }}", each once
	err     error
}

func (r *renderer) render(v any) any {
	switch v := v.(type) {
	case string:
		return r.str(v)
	case []string:
		out := make([]any, len(v))
		for i, s := range v {
			out[i] = r.str(s)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, it := range v {
			out[i] = r.render(it)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, it := range v {
			out[k] = r.render(it)
		}
		return out
	case map[string]string:
		out := make(map[string]any, len(v))
		for k, s := range v {
			out[k] = r.str(s)
		}
		return out
	}
	return v
}

func (r *renderer) get(name string) (any, bool) {
	v, ok := r.lookup(name)
	if !ok {
		if ref := "{{ " + name + " }}"; !slices.Contains(r.unknown, ref) {
			r.unknown = append(r.unknown, ref)
		}
	}
	return v, ok
}

func (r *renderer) str(s string) any {
	if !strings.Contains(s, "{{") {
		return s
	}
	if name, ok := wholeRef(s); ok {
		v, _ := r.get(name)
		if l, ok := v.([]string); ok {
			return slices.Clone(l) // the caller may change it; the lookup's stays
		}
		return v
	}
	// One pass over the original text: what a reference is replaced with
	// is not searched for references.
	return refRE.ReplaceAllStringFunc(s, func(ref string) string {
		name := refRE.FindStringSubmatch(ref)[1]
		v, ok := r.get(name)
		if !ok {
			return ref
		}
		text, err := Stringify(v)
		if err != nil && r.err == nil {
			r.err = fmt.Errorf("{{ %s }}: %w", name, err)
		}
		return text
	})
}

// Stringify renders a value as the text it stands for within a string:
// strings as they are, numbers and booleans as written in a document, a
// list as its items joined by commas, a map as JSON, nothing as "".
func Stringify(v any) (string, error) {
	switch v := v.(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	case []string:
		return strings.Join(v, ","), nil
	case bool:
		return strconv.FormatBool(v), nil
	case int:
		return strconv.Itoa(v), nil
	case int64:
		return strconv.FormatInt(v, 10), nil
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), nil
	case []any:
		parts := make([]string, len(v))
		for i, it := range v {
			if _, nested := it.([]any); nested {
				b, err := json.Marshal(it)
				if err != nil {
					return "", err
				}
				parts[i] = string(b)
				continue
			}
			s, err := Stringify(it)
			if err != nil {
				return "", err
			}
			parts[i] = s
		}
		return strings.Join(parts, ","), nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("cannot render %T as text: %w", v, err)
	}
	return string(b), nil
}
