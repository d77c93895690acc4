package metrics

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestDecodePut(t *testing.T) {
	body := `{"Namespace": "App", "MetricData": [
		{"MetricName": "Latency", "Dimensions": [{"Name": "InstanceId", "Value": "i-01"}],
		 "Timestamp": "2024-05-02T12:00:00.5Z", "Values": [12, 15.5], "Counts": [3, 1], "Unit": "Milliseconds"},
		{"MetricName": "Queue", "Value": -0.25e2, "Timestamp": 1714651200, "StorageResolution": 60, "Unit": null, "Dimensions": null},
		{"MetricName": "Esc\u0061ped \"q\"", "Value": 0}
	]}`
	req, errs, err := DecodePut([]byte(body), 1000)
	if err != nil || errs != nil {
		t.Fatal(err, errs)
	}
	want := PutRequest{Namespace: "App", MetricData: []Datum{
		{MetricName: "Latency", Dimensions: []Dimension{{"InstanceId", "i-01"}}, Timestamp: time.Date(2024, 5, 2, 12, 0, 0, 5e8, time.UTC),
			Values: []float64{12, 15.5}, Counts: []float64{3, 1}, Unit: "Milliseconds"},
		{MetricName: "Queue", Value: -25, Timestamp: time.Date(2024, 5, 2, 12, 0, 0, 0, time.UTC)},
		{MetricName: `Escaped "q"`},
	}}
	if !reflect.DeepEqual(req, want) {
		t.Errorf("got  %+v\nwant %+v", req, want)
	}
	// What the client encodes decodes to the same.
	b, _ := json.Marshal(want)
	if again, errs, err := DecodePut(b, 1000); err != nil || errs != nil || !reflect.DeepEqual(again, want) {
		t.Errorf("round trip of %s: %+v, %v, %v", b, again, errs, err)
	}
}

func TestDecodePutDatumErrors(t *testing.T) {
	tests := []struct {
		datum, want string
	}{
		{`{"MetricName": "m", "Value": "1"}`, "MetricData[1].Value: invalid: want a number, got a string"},
		{`{"MetricName": "m", "Value": 1e999}`, "MetricData[1].Value: invalid: 1e999 does not fit a 64-bit float"},
		{`{"MetricName": "m", "Values": [1, null]}`, "MetricData[1].Values[1]: invalid: want a number, got null"},
		{`{"MetricName": "m", "Values": {"a": 1}}`, "MetricData[1].Values: invalid: want an array of numbers, got an object"},
		{`{"MetricName": "m", "Value": 1, "Values": [1]}`, "MetricData[1].Values: invalid: give Value or Values, not both"},
		{`{"MetricName": "m"}`, "MetricData[1].Value: invalid: missing: give Value or Values"},
		{`{"MetricName": "m", "Values": []}`, "MetricData[1].Values: invalid: empty"},
		{`{"MetricName": "m", "Value": 1, "Counts": [1]}`, "MetricData[1].Counts: invalid: Counts without Values"},
		{`{"MetricName": "m", "Value": 1, "Vaule": 2}`, "MetricData[1].Vaule: invalid: unknown field"},
		{`{"metricname": "m", "Value": 1}`, "MetricData[1].metricname: invalid: unknown field (names are case-sensitive"},
		{`{"MetricName": "m", "MetricName": "n", "Value": 1}`, "MetricData[1].MetricName: invalid: given twice"},
		{`{"MetricName": 5, "Value": 1}`, "MetricData[1].MetricName: invalid: want a string, got a number"},
		{`{"MetricName": "m", "Value": 1, "Timestamp": "yesterday"}`, `MetricData[1].Timestamp: invalid: "yesterday" is not an RFC 3339 time`},
		{`{"MetricName": "m", "Value": 1, "Timestamp": true}`, "MetricData[1].Timestamp: invalid: want a number, got a boolean"},
		{`{"MetricName": "m", "Value": 1, "Dimensions": [{"Name": "a"}, 3]}`, "MetricData[1].Dimensions[1]: invalid: want an object {Name, Value}, got a number"},
		{`{"MetricName": "m", "Value": 1, "Dimensions": [{"Name": "a", "Valeu": "b"}]}`, "MetricData[1].Dimensions[0].Valeu: invalid: unknown field: give Name and Value"},
		{`{"MetricName": "m", "Value": 1, "Dimensions": [{"Name": 1}]}`, "MetricData[1].Dimensions[0].Name: invalid: want a string, got a number"},
		{`{"MetricName": "m", "StatisticValues": {"Sum": 1}}`, "MetricData[1].StatisticValues: invalid: not supported: send Values and Counts"},
		{`{"MetricName": "m", "Value": 1, "StorageResolution": 5}`, "MetricData[1].StorageResolution: invalid: 5: give 1 or 60"},
		{`[1, 2]`, "MetricData[1]: invalid: want an object, got an array"},
		{`null`, "MetricData[1]: invalid: want an object, got null"},
	}
	for _, tt := range tests {
		t.Run(tt.datum, func(t *testing.T) {
			body := `{"Namespace": "App", "MetricData": [{"MetricName": "ok", "Value": 1}, ` + tt.datum + `, {"MetricName": "ok", "Value": 2}]}`
			req, errs, err := DecodePut([]byte(body), 1000)
			if err != nil {
				t.Fatal(err)
			}
			if len(req.MetricData) != 3 || len(errs) != 3 || errs[0] != nil || errs[2] != nil || req.MetricData[2].Value != 2 {
				t.Fatalf("%+v, %v", req, errs)
			}
			if errs[1] == nil || !strings.Contains(errs[1].Error(), tt.want) || !errors.Is(errs[1], ErrInvalid) {
				t.Errorf("got %v\nwant %s", errs[1], tt.want)
			}
		})
	}
}

func TestDecodePutBodyErrors(t *testing.T) {
	tests := []struct {
		body, want string
	}{
		{``, "body is not valid JSON: unexpected end of input at byte 0"},
		{`{"Namespace": "App", "MetricData": [{"MetricName": "m", "Value": 1}`, "body is not valid JSON: unexpected end of input at byte 67"},
		{`{"Namespace": "App", "MetricData": [{"MetricName": "m", "Value": abc}]}`, "body is not valid JSON: invalid character 'a' looking for a value at byte 65"},
		{`{"Namespace": "App", "MetricData": []} x`, "invalid character 'x' after the top-level value"},
		{`{"Namespace": "App", "MetricData": [{"MetricName": "m\u00zz"}]}`, "invalid \\u escape"},
		{`{"Namespace": "App", "MetricData": [{"MetricName": "m", "Value": 01}]}`, "invalid character '1' after an element"},
		{"{\"Namespace\": \"A\tpp\"}", "control character 0x9 in a string"},
		{`{"Namespace": 5}`, "invalid: body: Namespace: want a string, got a number"},
		{`{"Namespace": "App", "MetricData": {}}`, "invalid: body: MetricData: want an array of datums, got an object"},
		{`{"Namespace": "App", "Metricdata": []}`, `invalid: body: unknown field "Metricdata": give Namespace and MetricData`},
		{`{"Namespace": "App", "Namespace": "B"}`, `invalid: body: field "Namespace" given twice`},
		{`{"Namespace": "App", "MetricData": [{}, {}, {}]}`, "invalid: body: more than 2 datums in MetricData: split the batch"},
		{`[]`, "invalid: body: want an object {Namespace, MetricData}, got an array"},
		{`"App"`, "invalid: body: want an object {Namespace, MetricData}, got a string"},
		{`{"Namespace": "App", "MetricData": [{"x": ` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `}]}`, "exceeded max depth"},
	}
	for _, tt := range tests {
		name := tt.body
		if len(name) > 60 {
			name = name[:60]
		}
		t.Run(name, func(t *testing.T) {
			_, _, err := DecodePut([]byte(tt.body), 2)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, ErrInvalid) {
				t.Errorf("got %v\nwant %s", err, tt.want)
			}
			var se *SyntaxError
			if errors.As(err, &se) && json.Valid([]byte(tt.body)) {
				t.Errorf("syntax error %v, but json.Valid says it is JSON", err)
			}
		})
	}
}

// FuzzDecodePut checks the decoder against encoding/json: it never
// panics; it never calls valid JSON a syntax error, and never accepts
// invalid JSON;
// and a datum it accepts is what encoding/json reads from the same bytes.
func FuzzDecodePut(f *testing.F) {
	for _, seed := range []string{
		`{"Namespace": "App", "MetricData": [{"MetricName": "Latency", "Dimensions": [{"Name": "InstanceId", "Value": "i-01"}], "Timestamp": "2024-05-02T12:00:00Z", "Values": [12, 15.5], "Counts": [3, 1], "Unit": "Milliseconds"}]}`,
		`{"Namespace": "App", "MetricData": [{"MetricName": "Queue", "Value": -0.25e2, "Timestamp": 1714651200.25, "StorageResolution": 1}]}`,
		`{"Namespace": "A\u0070p", "MetricData": [{"MetricName": "\ud83d\ude00 \"x\" \\", "Value": 1E+2}, {"MetricName": "m", "Value": "1"}, null, []]}`,
		`{"Namespace": "App", "MetricData": [{"MetricName": "m", "Values": [1, 2, null], "Counts": {}}, {"MetricName": "m", "Value": 1e999}]}`,
		`{"Namespace": "App", "MetricData": [{"MetricName": "m", "Value": 1, "Dimensions": [{"Name": "a", "Value": "b", "Name": "c"}, 1, {"x": [true, false, null]}]}]}`,
		`{"Namespace": "App", "MetricData": [{"MetricName": "m", "Value": 01}]}`,
		"{\"Namespace\": \"\xff\xfe\", \"MetricData\": [{\"MetricName\": \"\xc3\x28\", \"Value\": 0}]}",
		`{"Namespace": null, "MetricData": null}`,
		` {} `,
		`{"Namespace": "App", "MetricData": [{"MetricName": "m", "Value": 1}`,
		`[[[[]]]]`,
		`{"a":`,
		`"\u00`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, errs, err := DecodePut(body, 50)
		var se *SyntaxError
		valid := json.Valid(body)
		if errors.As(err, &se) && valid || err == nil && !valid {
			t.Fatalf("error %v, json.Valid %v", err, valid)
		}
		if err != nil {
			if req.Namespace != "" || req.MetricData != nil || errs != nil {
				t.Fatalf("an error with a result: %+v %v", req, errs)
			}
			return
		}
		if errs != nil && len(errs) != len(req.MetricData) {
			t.Fatalf("%d errors for %d datums", len(errs), len(req.MetricData))
		}
		// encoding/json, which folds case and takes the last of repeated
		// fields, must read the same from the datums accepted.
		var raw struct {
			Namespace  string
			MetricData []json.RawMessage
		}
		if err := json.Unmarshal(body, &raw); err != nil {
			return // a top-level shape encoding/json reads differently
		}
		if raw.Namespace != req.Namespace {
			t.Fatalf("namespace %q, encoding/json %q", req.Namespace, raw.Namespace)
		}
		if len(raw.MetricData) != len(req.MetricData) {
			t.Fatalf("%d datums, encoding/json %d", len(req.MetricData), len(raw.MetricData))
		}
		for i, rm := range raw.MetricData {
			if errs != nil && errs[i] != nil {
				if !reflect.DeepEqual(req.MetricData[i], Datum{}) {
					t.Fatalf("datum %d refused but not zero: %+v", i, req.MetricData[i])
				}
				continue
			}
			var w struct {
				MetricName string
				Dimensions []Dimension
				Timestamp  any
				Value      *float64
				Values     []float64
				Counts     []float64
				Unit       string
			}
			if err := json.Unmarshal(rm, &w); err != nil {
				t.Fatalf("datum %d accepted, encoding/json: %v", i, err)
			}
			got := req.MetricData[i]
			if got.MetricName != w.MetricName || string(got.Unit) != w.Unit || !sameFloats(got.Values, w.Values) ||
				!sameFloats(got.Counts, w.Counts) || len(got.Dimensions) != len(w.Dimensions) ||
				(w.Value != nil && !sameFloats([]float64{got.Value}, []float64{*w.Value})) {
				t.Fatalf("datum %d: %+v, encoding/json %+v", i, got, w)
			}
			for j := range w.Dimensions {
				if got.Dimensions[j] != w.Dimensions[j] {
					t.Fatalf("datum %d: %+v, encoding/json %+v", i, got, w)
				}
			}
			if got.Timestamp.IsZero() != (w.Timestamp == nil) {
				t.Fatalf("datum %d timestamp %v, encoding/json %v", i, got.Timestamp, w.Timestamp)
			}
		}
	})
}

func sameFloats(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] && !(math.IsNaN(a[i]) && math.IsNaN(b[i])) {
			return false
		}
	}
	return true
}
