package runbook

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

const bindDoc = `schemaVersion: "0.3"
parameters:
  InstanceId: {type: String, allowedPattern: "i-[0-9a-f]{17}"}
  Mode: {type: String, default: fast, allowedValues: [fast, slow]}
  Note: {type: String, default: ""}
  Groups: {type: StringList, default: [web], allowedPattern: "[a-z]+"}
  Count: {type: Integer, default: 2, allowedValues: [1, 2, 3]}
  Force: {type: Boolean, default: false}
mainSteps:
  - name: a
    action: runCommand
    inputs:
      InstanceId: "{{ InstanceId }}"
      Commands: ['echo "$Note"']
`

func TestBind(t *testing.T) {
	doc, err := Parse("bind.yaml", []byte(bindDoc))
	if err != nil {
		t.Fatal(err)
	}
	const id = "i-0123456789abcdef0"
	defaults := map[string]any{"InstanceId": id, "Mode": "fast", "Note": "", "Groups": []string{"web"},
		"Count": int64(2), "Force": false}
	with := func(k string, v any) map[string]any {
		m := map[string]any{}
		for k, v := range defaults {
			m[k] = v
		}
		m[k] = v
		return m
	}
	tests := []struct {
		name   string
		params map[string]string
		want   map[string]any
		err    []string // lines of the error, in order
	}{
		{"defaults", map[string]string{"InstanceId": id}, defaults, nil},
		{"comma list", map[string]string{"InstanceId": id, "Groups": "web, api ,db"}, with("Groups", []string{"web", "api", "db"}), nil},
		{"json list", map[string]string{"InstanceId": id, "Groups": `["web","api"]`}, with("Groups", []string{"web", "api"}), nil},
		{"empty list", map[string]string{"InstanceId": id, "Groups": ""}, with("Groups", []string{}), nil},
		{"empty json list", map[string]string{"InstanceId": id, "Groups": "[]"}, with("Groups", []string{}), nil},
		{"integer", map[string]string{"InstanceId": id, "Count": "3"}, with("Count", int64(3)), nil},
		{"boolean", map[string]string{"InstanceId": id, "Force": "true"}, with("Force", true), nil},
		{"allowed value", map[string]string{"InstanceId": id, "Mode": "slow"}, with("Mode", "slow"), nil},
		// Values are data: shell syntax and references stay the text they are.
		{"injection", map[string]string{"InstanceId": id, "Note": "'; rm -rf / #"}, with("Note", "'; rm -rf / #"), nil},
		{"reference in a value", map[string]string{"InstanceId": id, "Note": "{{ InstanceId }}"}, with("Note", "{{ InstanceId }}"), nil},
		{"missing", nil, nil, []string{"parameter InstanceId: required (String)"}},
		{"unknown", map[string]string{"InstanceId": id, "Instanceid": "x", "Other": "y"}, nil, []string{
			`parameter Instanceid: unknown parameter (did you mean "InstanceId"?)`,
			"parameter Other: unknown parameter",
		}},
		{"bad values", map[string]string{
			"InstanceId": "i-1; reboot", "Mode": "medium", "Groups": "web,,api", "Count": "two", "Force": "yes",
		}, nil, []string{
			`parameter InstanceId: "i-1; reboot" does not match the allowed pattern i-[0-9a-f]{17}`,
			`parameter Mode: "medium" is not one of the allowed values fast, slow`,
			`parameter Groups: "web,,api" has an empty item`,
			`parameter Count: "two" is not an integer`,
			`parameter Force: "yes" is not true or false`,
		}},
		// The pattern must match the whole value, not a part of it.
		{"pattern matches the whole value", map[string]string{"InstanceId": "x" + id}, nil, []string{
			`parameter InstanceId: "xi-0123456789abcdef0" does not match the allowed pattern i-[0-9a-f]{17}`,
		}},
		{"list items checked", map[string]string{"InstanceId": id, "Groups": `["web", "Web"]`, "Count": "4"}, nil, []string{
			`parameter Groups: "Web" does not match the allowed pattern [a-z]+`,
			`parameter Count: "4" is not one of the allowed values 1, 2, 3`,
		}},
		{"bad json list", map[string]string{"InstanceId": id, "Groups": `["web", 1]`}, nil, []string{
			`parameter Groups: "[\"web\", 1]" is not a JSON array of strings`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := doc.Bind(tt.params)
			if tt.err != nil {
				if err == nil {
					t.Fatalf("no error, got %v", got)
				}
				if got != nil {
					t.Errorf("values with the error: %v", got)
				}
				if lines := strings.Split(err.Error(), "\n"); !reflect.DeepEqual(lines, tt.err) {
					t.Errorf("error:\n%s\nwant:\n%s", err, strings.Join(tt.err, "\n"))
				}
				var pe *ParamError
				if !errors.As(err, &pe) {
					t.Errorf("no *ParamError in %#v", err)
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

// TestBindDefaultsAreCopies: an execution that changes its list must not
// change the document's default.
func TestBindDefaultsAreCopies(t *testing.T) {
	doc, err := Parse("bind.yaml", []byte(bindDoc))
	if err != nil {
		t.Fatal(err)
	}
	v, err := doc.Bind(map[string]string{"InstanceId": "i-0123456789abcdef0"})
	if err != nil {
		t.Fatal(err)
	}
	v["Groups"].([]string)[0] = "changed"
	if got := doc.Parameters["Groups"].Default.([]string)[0]; got != "web" {
		t.Errorf("default changed to %q", got)
	}
}

// TestBindBuiltInCode binds the parameters of a document built in code,
// with no ParamOrder and a pattern not compiled by Parse.
func TestBindBuiltInCode(t *testing.T) {
	doc := &Document{Name: "code", Parameters: map[string]*Parameter{
		"B": {Type: TypeString, AllowedPattern: "[a-z]+"},
		"A": {Type: TypeInteger, Default: int64(1), AllowedValues: []any{1, 2}},
	}}
	got, err := doc.Bind(map[string]string{"B": "abc"})
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]any{"A": int64(1), "B": "abc"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if _, err := doc.Bind(map[string]string{"B": "ABC", "A": "3"}); err == nil ||
		err.Error() != "parameter A: \"3\" is not one of the allowed values 1, 2\nparameter B: \"ABC\" does not match the allowed pattern [a-z]+" {
		t.Errorf("got %v", err)
	}
	if _, err := (&Document{Name: "none"}).Bind(map[string]string{"X": "1"}); err == nil ||
		err.Error() != "parameter X: unknown parameter: document none takes none" {
		t.Errorf("got %v", err)
	}
}
