package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
)

// Request bodies are bounded. A body over its endpoint's limit is refused
// with 413 naming the limit: at once, before reading anything, when its
// Content-Length says so, else as soon as the limit is passed (a chunked
// body is read at most one byte past it, and the connection is closed
// rather than drained). Nothing of a refused body is kept.
const (
	// MaxBody bounds the small JSON bodies: scale, terminate, approve,
	// cancel, restart, register and deregister targets, run a window, and
	// the session.
	MaxBody = 64 << 10
	// MaxRunBody bounds POST /v1/executions: a document's parameters.
	MaxRunBody = 1 << 20
	// MaxMetricsBody bounds a PutMetricData body: 1000 datums of 150 values
	// each fit.
	MaxMetricsBody = 4 << 20
	// MaxAlertmanagerBody bounds an Alertmanager webhook delivery.
	MaxAlertmanagerBody = 4 << 20
)

// readBody reads a whole body of at most limit bytes into buf.
func readBody(w http.ResponseWriter, r *http.Request, limit int64, buf *bytes.Buffer) error {
	if r.ContentLength > limit {
		return tooLarge(r, limit)
	}
	if r.Body == nil {
		return nil // an in-process request without a body
	}
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, limit))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return tooLarge(r, limit)
	case err != nil:
		return fmt.Errorf("%w: body: %v", errInvalid, err)
	}
	return nil
}

func tooLarge(r *http.Request, limit int64) error {
	return fmt.Errorf("%w: the body of %s %s is limited to %d bytes", errTooLarge, r.Method, r.URL.Path, limit)
}

// decode reads a JSON body of at most limit bytes into v: one value, no
// field v does not have, none given twice, nothing after it. An empty
// body leaves v as it is.
func decode(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	buf := bodies.Get().(*bytes.Buffer)
	defer bodies.Put(buf)
	buf.Reset()
	if err := readBody(w, r, limit, buf); err != nil {
		return err
	}
	if len(bytes.TrimSpace(buf.Bytes())) == 0 {
		return nil
	}
	if err := decodeStrict(buf.Bytes(), v); err != nil {
		return fmt.Errorf("%w: body: %v", errInvalid, err)
	}
	return nil
}

// decodeStrict decodes one JSON object into v: unknown fields, a field
// given twice (which parsers read differently: Go keeps the last, others
// the first) and data after the value are errors.
func decodeStrict(b []byte, v any) error {
	if t := bytes.TrimLeft(b, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return errors.New("want a JSON object {...}")
	}
	if err := duplicateKey(b); err != nil {
		return err
	}
	if err := exactFields(b, v); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	switch _, err := dec.Token(); {
	case err == io.EOF:
		return nil
	case err == nil:
		return errors.New("unexpected data after the JSON value")
	default:
		return fmt.Errorf("after the JSON value: %v", err)
	}
}

// exactFields refuses a top-level field whose name is not, exactly, one
// of v's: encoding/json matches names without regard to case, so that
// {"Desired": 1, "desired": 0} would set one field twice.
func exactFields(b []byte, v any) error {
	t := reflect.TypeOf(v)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return nil
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(b, &fields) != nil {
		return nil // not an object: the decoder says why
	}
	names := map[string]bool{}
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			names[name] = true
		}
	}
	for k := range fields {
		if names[k] {
			continue
		}
		for n := range names {
			if strings.EqualFold(n, k) {
				return fmt.Errorf("unknown field %q (did you mean %q?)", k, n)
			}
		}
		return fmt.Errorf("unknown field %q", k)
	}
	return nil
}

// duplicateKey reports the first object key given twice. A document that
// is not JSON is left to the decoder to report.
func duplicateKey(b []byte) error {
	type frame struct {
		object, wantKey bool
		keys            map[string]bool
	}
	var stack []*frame
	dec := json.NewDecoder(bytes.NewReader(b))
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			stack = stack[:len(stack)-1]
			continue
		}
		if key, ok := tok.(string); ok && top != nil && top.object && top.wantKey {
			if top.keys == nil {
				top.keys = map[string]bool{}
			}
			if top.keys[key] {
				return fmt.Errorf("field %q given twice", key)
			}
			top.keys[key], top.wantKey = true, false
			continue
		}
		// A value: its object wants a key next.
		if top != nil && top.object {
			top.wantKey = true
		}
		if d, ok := tok.(json.Delim); ok {
			stack = append(stack, &frame{object: d == '{', wantKey: d == '{'})
		}
	}
}

// noBody is the body of the POSTs that take none: empty, or {}.
type noBody struct{}
