package runbook

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestRender(t *testing.T) {
	values := map[string]any{
		"Id":                      "i-1",
		"Ids":                     []string{"i-1", "i-2"},
		"Count":                   int64(3),
		"Force":                   true,
		"Ratio":                   0.5,
		"Evil":                    "'; rm -rf / # {{ Id }} $(reboot)",
		"Ref":                     "{{ Id }}",
		"check.State":             "healthy",
		"check.Tags":              map[string]any{"a": "b"},
		"automation:EXECUTION_ID": "e-1",
	}
	lookup := func(name string) (any, bool) {
		v, ok := values[name]
		return v, ok
	}
	tests := []struct {
		name string
		in   any
		want any
		err  string
	}{
		{"plain", "no references", "no references", ""},
		{"whole string", "{{ Id }}", "i-1", ""},
		{"spaces optional", "{{Id}}", "i-1", ""},
		{"whole list keeps its type", "{{ Ids }}", []string{"i-1", "i-2"}, ""},
		{"whole integer keeps its type", "{{ Count }}", int64(3), ""},
		{"whole boolean keeps its type", "{{ Force }}", true, ""},
		{"list in text", "ids={{ Ids }}", "ids=i-1,i-2", ""},
		{"scalars in text", "{{ Count }}/{{ Force }}/{{ Ratio }}/{{ automation:EXECUTION_ID }}", "3/true/0.5/e-1", ""},
		{"output", "state: {{ check.State }}", "state: healthy", ""},
		{"map in text", "tags {{ check.Tags }}", `tags {"a":"b"}`, ""},
		{"other braces are text", "{{ .State.Status }} {{json .}} {{}} {{ a b }}", "{{ .State.Status }} {{json .}} {{}} {{ a b }}", ""},
		// A substituted value is never evaluated nor scanned again.
		{"injection stays text", "echo {{ Evil }}", "echo '; rm -rf / # {{ Id }} $(reboot)", ""},
		{"whole injection stays text", "{{ Evil }}", "'; rm -rf / # {{ Id }} $(reboot)", ""},
		{"reference in a value is not followed", "{{ Ref }}", "{{ Id }}", ""},
		{"nested", map[string]any{
			"{{ Id }}": []any{"{{ Ids }}", "x{{ Count }}", int64(7), nil, map[string]any{"k": "{{ Force }}"}},
		}, map[string]any{
			"{{ Id }}": []any{[]string{"i-1", "i-2"}, "x3", int64(7), nil, map[string]any{"k": true}},
		}, ""},
		{"unknown", []any{"{{ Nope }}", "a {{ step.Out }} {{ Nope }}"}, nil, "unknown reference {{ Nope }}, {{ step.Out }}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Render(tt.in, lookup)
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("got %v, %v; want error %q", got, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %#v\nwant %#v", got, tt.want)
			}
		})
	}
}

// TestRenderLeavesInputsAlone: the inputs of a document are rendered for
// every execution, so Render must not change them, nor hand out a list
// the lookup still holds.
func TestRenderLeavesInputsAlone(t *testing.T) {
	ids := []string{"i-1"}
	in := map[string]any{"A": []any{"{{ X }}"}, "B": "{{ L }}"}
	out, err := Render(in, func(name string) (any, bool) {
		if name == "L" {
			return ids, true
		}
		return "x", true
	})
	if err != nil {
		t.Fatal(err)
	}
	if in["A"].([]any)[0] != "{{ X }}" {
		t.Errorf("input changed: %v", in)
	}
	out.(map[string]any)["B"].([]string)[0] = "changed"
	if ids[0] != "i-1" {
		t.Error("the lookup's list changed")
	}
}

// TestInjection follows a hostile parameter value from the command line
// to a step's inputs: it stays one plain string, and a document cannot
// splice it into a script.
func TestInjection(t *testing.T) {
	const evil = `'; rm -rf / #`
	doc, err := Parse("inj.yaml", []byte(`schemaVersion: "0.3"
parameters:
  Name: {type: String}
mainSteps:
  - name: greet
    action: runCommand
    inputs:
      InstanceId: i-1
      Commands: ['echo "hello $Name"']
      Env: {GREETING: "hello {{ Name }}", RAW: "{{ Name }}"}
`))
	if err != nil {
		t.Fatal(err)
	}
	params, err := doc.Bind(map[string]string{"Name": evil})
	if err != nil {
		t.Fatal(err)
	}
	if params["Name"] != evil {
		t.Fatalf("bound %#v", params["Name"])
	}
	out, err := Render(doc.MainSteps[0].Inputs, func(name string) (any, bool) {
		v, ok := params[name]
		return v, ok
	})
	if err != nil {
		t.Fatal(err)
	}
	in := out.(map[string]any)
	env := in["Env"].(map[string]any)
	if env["RAW"] != evil || env["GREETING"] != "hello "+evil {
		t.Errorf("env %#v", env)
	}
	if cmds := in["Commands"].([]any); cmds[0] != `echo "hello $Name"` {
		t.Errorf("commands %#v", cmds)
	}

	_, err = Parse("inj.yaml", []byte(`schemaVersion: "0.3"
parameters:
  Name: {type: String}
mainSteps:
  - {name: greet, action: runCommand, inputs: {InstanceId: i-1, Script: "echo hello {{ Name }}"}}
`))
	if err == nil || !strings.Contains(err.Error(), "{{ Name }} in a script: values are never spliced into shell text; use $Name") {
		t.Errorf("a reference in a script: %v", err)
	}
}

func TestReferences(t *testing.T) {
	in := map[string]any{
		"a":         []any{"{{ B }} and {{ a.Out }}", "{{ B }}", int64(1)},
		"{{ Key }}": "{{ automation:EXECUTION_ID }}{{ .Not }}",
	}
	got := References(in)
	slices.Sort(got) // map order is random
	if want := []string{"B", "a.Out", "automation:EXECUTION_ID"}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if got := References("x {{ A }} {{ B }} {{ A }}"); !slices.Equal(got, []string{"A", "B"}) {
		t.Errorf("got %v", got)
	}
}
