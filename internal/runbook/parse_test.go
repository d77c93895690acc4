package runbook

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/autoheal/autoheal/internal/diag"
)

var update = flag.Bool("update", false, "rewrite testdata/bad/*.err from the current output")

// corpus returns the documents of a testdata directory, YAML and JSON.
func corpus(t testing.TB, dir string) []string {
	t.Helper()
	var files []string
	for _, pat := range []string{"*.yaml", "*.json"} {
		m, _ := filepath.Glob(filepath.Join("testdata", dir, pat))
		files = append(files, m...)
	}
	slices.Sort(files)
	if len(files) == 0 {
		t.Fatalf("no documents in testdata/%s", dir)
	}
	return files
}

// TestBadDocuments parses every testdata/bad document and compares the
// problems with the golden FILE.err: one FILE:LINE:COL: message line each,
// in file order.
func TestBadDocuments(t *testing.T) {
	for _, f := range corpus(t, "bad") {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			doc, err := Parse(f, data)
			if doc != nil {
				t.Error("Parse returned a document with its errors")
			}
			errs, ok := errors.AsType[*Errors](err)
			if !ok || len(*errs) == 0 {
				t.Fatalf("want *Errors, got %#v", err)
			}
			for _, e := range *errs {
				if e.File != f || e.Line < 1 || e.Col < 1 {
					t.Errorf("problem without a position: %+v", e)
				}
			}
			got := errs.Error() + "\n"
			if *update {
				if err := os.WriteFile(f+".err", []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(f + ".err")
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("errors differ\n got:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func TestGoodDocuments(t *testing.T) {
	for _, f := range corpus(t, "good") {
		t.Run(filepath.Base(f), func(t *testing.T) {
			doc := parseFile(t, f)
			if want := strings.TrimSuffix(filepath.Base(f), filepath.Ext(f)); doc.Name != want || doc.Source != f {
				t.Errorf("Name, Source = %q, %q; want %q, %q", doc.Name, doc.Source, want, f)
			}
			for _, s := range doc.MainSteps {
				if s.MaxAttempts < 1 || s.TimeoutSeconds < 1 || s.OnFailure == "" || s.OnCancel == "" {
					t.Errorf("step %s: defaults not filled: %+v", s.Name, s)
				}
				if !slices.Contains(actions, s.Action) {
					t.Errorf("step %s: action %q not normalized", s.Name, s.Action)
				}
				for _, o := range s.Outputs {
					if o.Type == "" {
						t.Errorf("step %s: output %s has no type", s.Name, o.Name)
					}
				}
			}
			if len(doc.ParamOrder) != len(doc.Parameters) {
				t.Errorf("ParamOrder %v for %d parameters", doc.ParamOrder, len(doc.Parameters))
			}
		})
	}
}

func parseFile(t *testing.T, f string) *Document {
	t.Helper()
	data, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := Parse(f, data)
	if err != nil {
		t.Fatalf("%s:\n%v", f, err)
	}
	return doc
}

// TestParse checks what Parse makes of small documents: defaults, names,
// normalized actions, decoded inputs, and the problems of broken ones.
func TestParse(t *testing.T) {
	const head = "schemaVersion: \"0.3\"\nmainSteps:\n"
	tests := []struct {
		name  string
		path  string
		doc   string
		check func(t *testing.T, d *Document)
		err   string // a line of the expected problems
	}{
		{
			name: "defaults",
			path: "runbooks/Restart.yaml",
			doc: head + `
  - {name: a, action: runCommand, inputs: {InstanceId: i-1, Script: "true"}, outputs: [{Name: Out, Selector: $.Stdout}]}
  - {name: b, action: waitForProperty, inputs: {Path: /v1/x, PropertySelector: $.s, DesiredValues: [ok]}}
  - {name: c, action: approve}
  - {name: d, action: executeApi, inputs: {Path: /v1/x}, maxAttempts: 4, timeoutSeconds: 5, onFailure: Continue}
`,
			check: func(t *testing.T, d *Document) {
				if d.Name != "Restart" || d.Source != "runbooks/Restart.yaml" {
					t.Errorf("Name, Source = %q, %q", d.Name, d.Source)
				}
				want := []struct {
					attempts, timeout int
					onFailure         string
				}{{1, 3600, "Abort"}, {1, 3600, "Abort"}, {1, 604800, "Abort"}, {4, 5, "Continue"}}
				for i, w := range want {
					s := d.MainSteps[i]
					if s.MaxAttempts != w.attempts || s.TimeoutSeconds != w.timeout || s.OnFailure != w.onFailure || s.OnCancel != "Abort" {
						t.Errorf("step %s: %d attempts, %ds, %s, %s; want %+v", s.Name, s.MaxAttempts, s.TimeoutSeconds, s.OnFailure, s.OnCancel, w)
					}
					if !s.Critical() {
						t.Errorf("step %s is not critical", s.Name)
					}
				}
				if typ := d.MainSteps[0].Outputs[0].Type; typ != OutputString {
					t.Errorf("output type %q", typ)
				}
			},
		},
		{
			name: "no path, no name",
			doc:  head + "  - {name: a, action: sleep, inputs: {Duration: 1s}}\n",
			check: func(t *testing.T, d *Document) {
				if d.Name != "" || d.Source != "" {
					t.Errorf("Name, Source = %q, %q", d.Name, d.Source)
				}
			},
		},
		{
			name: "aws aliases",
			doc: head + `
  - {name: a, action: "aws:executeAwsApi", inputs: {Path: /v1/x}}
  - {name: b, action: "aws:assertAwsResourceProperty", inputs: {Path: /v1/x, PropertySelector: $.s, DesiredValues: [ok]}}
  - {name: c, action: "aws:waitForAwsResourceProperty", inputs: {Path: /v1/x, PropertySelector: $.s, DesiredValues: [ok]}}
  - {name: d, action: "aws:executeAutomation", inputs: {DocumentName: Other}}
  - {name: e, action: "aws:sleep", inputs: {Duration: PT1S}}
  - {name: f, action: "aws:approve"}
  - {name: g, action: "aws:runCommand", inputs: {InstanceIds: [i-1], Commands: [uptime]}}
  - {name: h, action: "aws:branch", inputs: {Choices: [{NextStep: a, Variable: "{{ a.X }}", StringEquals: y}]}, isEnd: true}
`,
			err: "{{ a.X }}: step \"a\" has no outputs",
		},
		{
			name: "aws aliases normalized",
			doc: head + `
  - {name: a, action: "aws:executeAwsApi", inputs: {Path: /v1/x}}
  - {name: b, action: "aws:sleep", inputs: {Duration: PT1S}}
  - {name: c, action: "aws:runCommand", inputs: {InstanceIds: [i-1], Commands: [uptime]}}
`,
			check: func(t *testing.T, d *Document) {
				var got []string
				for _, s := range d.MainSteps {
					got = append(got, s.Action)
				}
				if want := []string{ActionExecuteAPI, ActionSleep, ActionRunCommand}; !slices.Equal(got, want) {
					t.Errorf("actions %v, want %v", got, want)
				}
			},
		},
		{
			name: "parameters",
			doc: `schemaVersion: "0.3"
parameters:
  Zeta: {type: String, default: "08"}
  Alpha: {type: StringList, default: [a, b], allowedValues: [a, b, c]}
  Mid: {type: Integer, default: -3}
  Flag: {type: Boolean, default: true}
mainSteps:
  - {name: a, action: sleep, inputs: {Duration: 1s}}
`,
			check: func(t *testing.T, d *Document) {
				if want := []string{"Zeta", "Alpha", "Mid", "Flag"}; !slices.Equal(d.ParamOrder, want) {
					t.Errorf("ParamOrder %v, want %v", d.ParamOrder, want)
				}
				want := map[string]any{"Zeta": "08", "Alpha": []string{"a", "b"}, "Mid": int64(-3), "Flag": true}
				for name, v := range want {
					if got := d.Parameters[name].Default; !reflect.DeepEqual(got, v) {
						t.Errorf("%s default %#v, want %#v", name, got, v)
					}
				}
			},
		},
		{
			name: "inputs decoded",
			doc: head + `
  - name: a
    action: executeApi
    inputs:
      Path: /v1/x
      Body: {n: 3, neg: -2, f: 1.5, b: false, nothing: null, list: [x, 2], map: {k: v}}
`,
			check: func(t *testing.T, d *Document) {
				want := map[string]any{"n": int64(3), "neg": int64(-2), "f": 1.5, "b": false, "nothing": nil,
					"list": []any{"x", int64(2)}, "map": map[string]any{"k": "v"}}
				if got := d.MainSteps[0].Inputs["Body"]; !reflect.DeepEqual(got, want) {
					t.Errorf("Body = %#v\nwant %#v", got, want)
				}
			},
		},
		{
			name: "merge keys: written keys win",
			doc: `schemaVersion: "0.3"
mainSteps:
  - &base {name: a, action: executeApi, maxAttempts: 2, inputs: {Path: /v1/x}}
  - {maxAttempts: 3, <<: *base, name: b}
`,
			check: func(t *testing.T, d *Document) {
				if s := d.MainSteps[1]; s.Name != "b" || s.MaxAttempts != 3 || s.Action != ActionExecuteAPI {
					t.Errorf("merged step %+v", s)
				}
			},
		},
		{
			name: "json",
			path: "doc.json",
			doc:  `{"schemaVersion": "0.3", "mainSteps": [{"name": "a", "action": "sleep", "inputs": {"Duration": "PT1M30S"}, "isCritical": false}]}`,
			check: func(t *testing.T, d *Document) {
				if d.Name != "doc" || d.MainSteps[0].Critical() {
					t.Errorf("%+v", d.MainSteps[0])
				}
			},
		},
		{
			name: "loop left by a branch without Default",
			doc: head + `
  - {name: poll, action: executeApi, inputs: {Path: /v1/x}, outputs: [{Name: S, Selector: $.s}]}
  - {name: more, action: branch, inputs: {Choices: [{NextStep: poll, Variable: "{{ poll.S }}", StringEquals: busy}]}}
`,
		},
		{
			name: "loop left by onFailure Continue",
			doc: head + `
  - {name: a, action: executeApi, inputs: {Path: /v1/x}}
  - {name: b, action: executeApi, inputs: {Path: /v1/x}, nextStep: a, onFailure: Continue}
`,
			err: "steps loop without end: a -> b -> a",
		},
		{
			name: "loop left by onFailure step",
			doc: head + `
  - {name: a, action: executeApi, inputs: {Path: /v1/x}}
  - {name: b, action: executeApi, inputs: {Path: /v1/x}, nextStep: a, onFailure: "step:c"}
  - {name: c, action: sleep, inputs: {Duration: 1s}}
`,
		},
		{
			name: "loop through a Default",
			doc: head + `
  - {name: a, action: executeApi, inputs: {Path: /v1/x}, outputs: [{Name: S, Selector: $.s}]}
  - {name: b, action: branch, inputs: {Choices: [{NextStep: c, Variable: "{{ a.S }}", StringEquals: x}], Default: a}}
  - {name: c, action: sleep, nextStep: b, inputs: {Duration: 1s}}
`,
			err: "steps loop without end: a -> b -> a",
		},
		{
			name: "two loops, each reported",
			doc: head + `
  - {name: a, action: sleep, nextStep: b, inputs: {Duration: 1s}}
  - {name: b, action: sleep, nextStep: a, onFailure: "step:c", inputs: {Duration: 1s}}
  - {name: c, action: sleep, nextStep: c, inputs: {Duration: 1s}}
`,
			err: ":6:5: steps loop without end: c -> c",
		},
		{
			name: "every problem of a step",
			doc: head + `
  - {name: a, action: sleep, maxAttempts: 0, timeoutSeconds: -5, onFailure: Retry, nextStep: z, inputs: {Duration: x}}
`,
			err: "test.yaml:4:43: maxAttempts: 0 is out of range (1 to 100)\n" +
				"test.yaml:4:62: timeoutSeconds: -5 is out of range (0 to 2592000; 0 means the action's default)\n" +
				"test.yaml:4:77: onFailure: \"Retry\" is not one of Abort, Continue, step:NAME\n" +
				"test.yaml:4:94: nextStep: unknown step \"z\"\n" +
				"test.yaml:4:116: inputs.Duration: \"x\" is not a duration like PT30S or 30s",
		},
		{
			name: "not a mapping",
			doc:  "- a\n- b\n",
			err:  "test.yaml:1:1: document: expected a mapping, got a list",
		},
		{
			// Found by FuzzParse: an unknown alias read as an empty list
			// item had no position.
			name: "unknown alias in a list",
			doc:  "mainSteps:\n  - name: a\n    outputs:\n    - *nope\n",
			err:  "test.yaml:4:7: unknown alias \"nope\"\ntest.yaml:4:7: outputs item: expected a mapping, got nothing",
		},
		{
			name: "scalar document",
			doc:  "hello",
			err:  "test.yaml:1:1: document: expected a mapping, got \"hello\"",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tt.path
			if path == "" && (tt.err != "" || tt.check == nil) {
				path = "test.yaml"
			}
			d, err := Parse(path, []byte(tt.doc))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("got %v\nwant a problem %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.check != nil {
				tt.check(t, d)
			}
		})
	}
}

func TestErrorFormat(t *testing.T) {
	es := Errors{
		{File: "b.yaml", Line: 3, Col: 7, Msg: "second"},
		{File: "b.yaml", Line: 1, Col: 2, Msg: "first"},
		{File: "b.yaml", Line: 1, Col: 2, Msg: "first"},
	}
	err := es.Err()
	if got, want := err.Error(), "b.yaml:1:2: first\nb.yaml:3:7: second"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if (Errors{}).Err() != nil {
		t.Error("no problem is not a nil error")
	}
	var many Errors
	for i := range 500 {
		many = append(many, Error{File: "f", Line: i + 1, Col: 1, Msg: "x"})
	}
	if got := *many.Err().(*Errors); len(got) != diag.Max || !strings.Contains(got[diag.Max-1].Msg, "too many problems (500)") {
		t.Errorf("%d problems, last %q", len(got), got[len(got)-1].Msg)
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"PT30S", 30 * time.Second, true},
		{"PT1H30M", 90 * time.Minute, true},
		{"P1D", 24 * time.Hour, true},
		{"P1DT2H", 26 * time.Hour, true},
		{"PT0.5S", 500 * time.Millisecond, true},
		{"30s", 30 * time.Second, true},
		{"1h30m", 90 * time.Minute, true},
		{"0s", 0, true},
		{"P", 0, false},
		{"PT", 0, false},
		{"P1DT", 0, false},
		{"PT-1S", 0, false},
		{"-1s", 0, false},
		{"P999999999D", 0, false},
		{"100000h", 0, false},
		{"soon", 0, false},
		{"", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

// FuzzParse feeds Parse arbitrary documents, seeded with the corpus. Parse
// must never panic or hang, and must return either a document whose
// defaults are filled or problems that each have a position.
func FuzzParse(f *testing.F) {
	for _, dir := range []string{"good", "bad"} {
		for _, file := range corpus(f, dir) {
			data, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := Parse("fuzz.yaml", data)
		if err != nil {
			if d != nil {
				t.Fatal("a document with problems")
			}
			errs, ok := errors.AsType[*Errors](err)
			if !ok || len(*errs) == 0 {
				t.Fatalf("want *Errors, got %#v", err)
			}
			for _, e := range *errs {
				if e.Line < 1 || e.Col < 1 || e.Msg == "" {
					t.Fatalf("problem without a position: %+v", e)
				}
			}
			return
		}
		if len(d.MainSteps) == 0 || d.SchemaVersion != SchemaVersion {
			t.Fatalf("accepted %+v", d)
		}
		for _, s := range d.MainSteps {
			if s.MaxAttempts < 1 || s.MaxAttempts > MaxAttemptsLimit || s.TimeoutSeconds < 1 || s.OnFailure == "" {
				t.Fatalf("step %+v", s)
			}
			// Every reference of a valid document resolves, so rendering
			// with a lookup that knows everything must succeed.
			if _, err := Render(s.Inputs, func(string) (any, bool) { return "v", true }); err != nil {
				t.Fatalf("render: %v", err)
			}
		}
		if _, err := d.Bind(nil); err != nil && !strings.Contains(err.Error(), "required") {
			t.Fatalf("bind of the defaults: %v", err)
		}
	})
}

// TestSSMShellScript: an aws:runCommand step written as SSM writes it
// (AWS-RunShellScript, Parameters.commands as one string or a list,
// workingDirectory and executionTimeout as SSM's one-item lists, the
// output's S3 and CloudWatch destinations, a step description, a
// parameter's displayType and bounds) reads as ours.
func TestSSMShellScript(t *testing.T) {
	doc, err := Parse("ssm.yaml", []byte(`
schemaVersion: "0.3"
parameters:
  InstanceId:
    type: String
    displayType: textfield
    minChars: 19
    maxChars: 19
  Tags:
    type: StringList
    default: [a]
    minItems: 1
    maxItems: 2
mainSteps:
  - name: drain
    description: Drain the instance
    action: aws:runCommand
    inputs:
      DocumentName: AWS-RunShellScript
      InstanceIds: ["{{ InstanceId }}"]
      OutputS3BucketName: logs
      OutputS3KeyPrefix: drain/
      CloudWatchOutputConfig: {CloudWatchOutputEnabled: true}
      Parameters:
        commands: echo draining
        workingDirectory: [/tmp]
        executionTimeout: ["120"]
  - name: check
    action: aws:runCommand
    timeoutSeconds: 30
    inputs:
      DocumentName: AWS-RunShellScript
      InstanceIds: ["{{ InstanceId }}"]
      Parameters: {commands: [uptime, "test -d \"$PWD\""], executionTimeout: "600"}
`))
	if err != nil {
		t.Fatal(err)
	}
	s := doc.MainSteps[0]
	if s.Description != "Drain the instance" || s.TimeoutSeconds != 120 {
		t.Fatalf("step: description %q, timeout %d", s.Description, s.TimeoutSeconds)
	}
	if got := fmt.Sprintf("%v %v", s.Inputs["Commands"], s.Inputs["WorkingDirectory"]); got != "[echo draining] /tmp" {
		t.Fatalf("inputs %v", s.Inputs)
	}
	if s.Inputs["OutputLocation"] != ssmOutputLocation {
		t.Fatalf("the step does not say where its output goes: %v", s.Inputs)
	}
	for _, k := range []string{"DocumentName", "Parameters", "OutputS3BucketName", "CloudWatchOutputConfig"} {
		if _, ok := s.Inputs[k]; ok {
			t.Fatalf("input %s kept: %v", k, s.Inputs)
		}
	}
	// The step's own timeoutSeconds wins over executionTimeout.
	if c := doc.MainSteps[1]; c.TimeoutSeconds != 30 || fmt.Sprint(c.Inputs["Commands"]) != `[uptime test -d "$PWD"]` {
		t.Fatalf("second step: timeout %d, inputs %v", c.TimeoutSeconds, c.Inputs)
	}
	id, tags := doc.Parameters["InstanceId"], doc.Parameters["Tags"]
	if id.DisplayType != "textfield" || id.MinChars != 19 || tags.MaxItems != 2 {
		t.Fatalf("parameters: %+v %+v", id, tags)
	}
	for _, tc := range []struct {
		prm  *Parameter
		v    any
		want string
	}{
		{id, "i-0123456789abcdef0", ""},
		{id, "i-0123", "fewer than minChars 19"},
		{id, "i-0123456789abcdef01", "more than maxChars 19"},
		{tags, []string{}, "fewer than minItems 1"},
		{tags, []string{"a", "b", "c"}, "more than maxItems 2"},
		{tags, []string{"a", "b"}, ""},
	} {
		err := tc.prm.check(tc.v)
		if (err == nil) != (tc.want == "") || err != nil && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("check(%v) = %v, want %q", tc.v, err, tc.want)
		}
	}
}
