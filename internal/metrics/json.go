package metrics

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// PutRequest is a PutMetricData body:
//
//	{"Namespace": "App", "MetricData": [{"MetricName": "Latency",
//	  "Dimensions": [{"Name": "InstanceId", "Value": "i-01"}],
//	  "Timestamp": "2024-05-02T12:00:00Z", "Values": [12, 15], "Counts": [3, 1],
//	  "Unit": "Milliseconds"}]}
type PutRequest struct {
	Namespace  string  `json:"Namespace"`
	MetricData []Datum `json:"MetricData"`
}

// SyntaxError is a body that is not JSON. Nothing of it is stored: the
// datums cannot be told apart past the error, and a cut body must not
// store its first half.
type SyntaxError struct {
	Offset int // in bytes
	Msg    string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("body is not valid JSON: %s at byte %d", e.Msg, e.Offset)
}

func (e *SyntaxError) Unwrap() error { return ErrInvalid }

// DecodePut parses a PutMetricData body without reflection, checking its
// syntax as encoding/json does (nesting deeper than 10000 included).
//
// A body that is not JSON (*SyntaxError), whose top level is not an object
// with Namespace (a string) and MetricData (an array) and no other field,
// or with more than maxData datums, is an error as a whole, wrapping
// ErrInvalid; such a body may be refused for its shape before the rest of
// it is read, but invalid JSON is never accepted. A datum that
// is well-formed JSON but wrong in shape (a field of the wrong type, an
// unknown or repeated field, a number out of range, both or neither of
// Value and Values, StatisticValues) gets a *DatumError at its index in
// errs (nil when there are none), and a zero Datum. Field names are
// case-sensitive, as CloudWatch's are. Timestamp is an RFC 3339 string or
// a number of seconds since the Unix epoch. StorageResolution (1 or 60)
// is accepted and ignored: the store has one resolution.
func DecodePut(body []byte, maxData int) (req PutRequest, errs []error, err error) {
	d := &decoder{b: body}
	defer func() {
		if r := recover(); r != nil {
			se, ok := r.(*SyntaxError)
			if !ok {
				panic(r)
			}
			req, errs, err = PutRequest{}, nil, se
		}
	}()
	if d.peek() != '{' {
		return PutRequest{}, nil, invalid("body: want an object {Namespace, MetricData}, got %s", d.kind())
	}
	d.enter('{')
	seen := map[string]bool{}
	for d.more('}', len(seen) == 0) {
		key := string(d.key())
		if seen[key] {
			return PutRequest{}, nil, invalid("body: field %q given twice", key)
		}
		seen[key] = true
		switch key {
		case "Namespace":
			s, kind, ok := d.stringValue(nil)
			if !ok && kind != "null" {
				return PutRequest{}, nil, invalid("body: Namespace: want a string, got %s", kind)
			}
			req.Namespace = s
		case "MetricData":
			if d.peek() == 'n' {
				d.skip()
				continue
			}
			if d.peek() != '[' {
				return PutRequest{}, nil, invalid("body: MetricData: want an array of datums, got %s", d.kind())
			}
			d.enter('[')
			// Room for the datums the body can hold, so that appends do not
			// copy them again and again; a datum takes more than 64 bytes.
			req.MetricData = make([]Datum, 0, max(0, min(maxData, len(d.b)/64+1)))
			d.dims = make([]Dimension, 0, min(maxData*4, len(d.b)/32+1))
			for d.more(']', len(req.MetricData) == 0) {
				i := len(req.MetricData)
				if i == maxData {
					return PutRequest{}, nil, invalid("body: more than %d datums in MetricData: split the batch", maxData)
				}
				dt, derr := d.datum(i)
				req.MetricData = append(req.MetricData, dt)
				if derr != nil {
					if errs == nil {
						errs = make([]error, i, max(i+1, 16))
					}
					errs = append(errs, derr)
				} else if errs != nil {
					errs = append(errs, nil)
				}
			}
		default:
			return PutRequest{}, nil, invalid("body: unknown field %q: give Namespace and MetricData", key)
		}
	}
	d.ws()
	if d.i < len(d.b) {
		d.fail("invalid character %q after the top-level value", d.b[d.i])
	}
	if errs != nil && len(errs) < len(req.MetricData) {
		errs = append(errs, make([]error, len(req.MetricData)-len(errs))...)
	}
	return req, errs, nil
}

// maxDepth is encoding/json's nesting limit.
const maxDepth = 10000

type decoder struct {
	b     []byte
	i     int
	depth int
	// The names read last, by place: a batch repeats them.
	lastMetric, lastUnit string
	lastDims             [8]Dimension
	// Datums' dimensions and values are cut from these.
	dims []Dimension
	vals []float64
}

// fail stops decoding with a syntax error at the current offset.
func (d *decoder) fail(format string, args ...any) {
	panic(&SyntaxError{Offset: d.i, Msg: fmt.Sprintf(format, args...)})
}

func (d *decoder) ws() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// peek returns the next non-space byte, 0 at the end.
func (d *decoder) peek() byte {
	d.ws()
	if d.i < len(d.b) {
		return d.b[d.i]
	}
	return 0
}

// kind names the JSON type of the next value, for messages.
func (d *decoder) kind() string {
	switch c := d.peek(); {
	case c == '"':
		return "a string"
	case c == '{':
		return "an object"
	case c == '[':
		return "an array"
	case c == 't' || c == 'f':
		return "a boolean"
	case c == 'n':
		return "null"
	case c == '-' || c >= '0' && c <= '9':
		return "a number"
	case c == 0:
		d.fail("unexpected end of input")
	default:
		d.fail("invalid character %q looking for a value", c)
	}
	return ""
}

// enter consumes the opening c of an object or array.
func (d *decoder) enter(c byte) {
	if d.peek() != c {
		if d.i >= len(d.b) {
			d.fail("unexpected end of input")
		}
		d.fail("invalid character %q, want %q", d.b[d.i], c)
	}
	d.i++
	if d.depth++; d.depth > maxDepth {
		d.fail("exceeded max depth")
	}
}

// more reports whether a container has another element, consuming the
// separating comma or the closing byte; first is true before the first.
func (d *decoder) more(end byte, first bool) bool {
	c := d.peek()
	if c == end {
		d.i++
		d.depth--
		return false
	}
	if !first {
		if c != ',' {
			if c == 0 {
				d.fail("unexpected end of input")
			}
			d.fail("invalid character %q after an element, want ',' or %q", c, end)
		}
		d.i++
		d.ws()
	}
	return true
}

// key reads an object member's name and its colon. The name is the
// body's bytes unless it has escapes: compare it, do not keep it.
func (d *decoder) key() []byte {
	if d.peek() != '"' {
		if d.i >= len(d.b) {
			d.fail("unexpected end of input")
		}
		d.fail("invalid character %q looking for a member name", d.b[d.i])
	}
	raw, escaped := d.rawStr()
	k := raw
	if escaped {
		k = []byte(d.unescape(raw))
	}
	if d.peek() != ':' {
		if d.i >= len(d.b) {
			d.fail("unexpected end of input")
		}
		d.fail("invalid character %q after a member name, want ':'", d.b[d.i])
	}
	d.i++
	return k
}

// str reads a string, with encoding/json's meaning of escapes and of
// invalid UTF-8. last, when not nil, is the string read last at the same
// place: a batch repeats its names, and reusing them saves copies.
func (d *decoder) str(last *string) string {
	raw, escaped := d.rawStr()
	if escaped || !utf8.Valid(raw) {
		return d.unescape(raw)
	}
	if last == nil {
		return string(raw)
	}
	if *last != string(raw) {
		*last = string(raw)
	}
	return *last
}

// unescape decodes the content of the string just read (raw, between
// quotes just before d.i) as encoding/json does.
func (d *decoder) unescape(raw []byte) string {
	var s string
	end := d.i
	if err := json.Unmarshal(d.b[end-len(raw)-2:end], &s); err != nil {
		d.fail("%v", err)
	}
	return s
}

// rawStr reads a string and returns its content as it is in the body.
func (d *decoder) rawStr() (raw []byte, escaped bool) {
	d.i++ // the opening quote
	start := d.i
	for {
		if d.i >= len(d.b) {
			d.fail("unexpected end of input in a string")
		}
		c := d.b[d.i]
		switch {
		case c == '"':
			d.i++
			return d.b[start : d.i-1], escaped
		case c == '\\':
			escaped = true
			d.i++
			if d.i >= len(d.b) {
				d.fail("unexpected end of input in a string")
			}
			switch d.b[d.i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				d.i++
			case 'u':
				d.i++
				for range 4 {
					if d.i >= len(d.b) || !isHex(d.b[d.i]) {
						d.fail("invalid \\u escape")
					}
					d.i++
				}
			default:
				d.fail("invalid escape \\%c in a string", d.b[d.i])
			}
		case c < 0x20:
			d.fail("control character %#x in a string", c)
		default:
			d.i++
		}
	}
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

// number reads a number; err is set when it does not fit a float64.
func (d *decoder) number() (float64, error) {
	start := d.i
	if d.i < len(d.b) && d.b[d.i] == '-' {
		d.i++
	}
	digits := func() int {
		n := 0
		for d.i < len(d.b) && d.b[d.i] >= '0' && d.b[d.i] <= '9' {
			d.i++
			n++
		}
		return n
	}
	switch {
	case d.i < len(d.b) && d.b[d.i] == '0':
		d.i++
	case digits() == 0:
		d.fail("invalid number")
	}
	if d.i < len(d.b) && d.b[d.i] == '.' {
		d.i++
		if digits() == 0 {
			d.fail("invalid number: no digit after '.'")
		}
	}
	if d.i < len(d.b) && (d.b[d.i] == 'e' || d.b[d.i] == 'E') {
		d.i++
		if d.i < len(d.b) && (d.b[d.i] == '+' || d.b[d.i] == '-') {
			d.i++
		}
		if digits() == 0 {
			d.fail("invalid number: no digit in the exponent")
		}
	}
	v, err := strconv.ParseFloat(string(d.b[start:d.i]), 64)
	if err != nil {
		return 0, fmt.Errorf("%s does not fit a 64-bit float", d.b[start:d.i])
	}
	return v, nil
}

func (d *decoder) literal(word string) {
	if len(d.b)-d.i < len(word) || string(d.b[d.i:d.i+len(word)]) != word {
		d.fail("invalid literal, want %s", word)
	}
	d.i += len(word)
}

// skip reads any value.
func (d *decoder) skip() {
	switch c := d.peek(); {
	case c == '"':
		d.rawStr()
	case c == '{':
		d.enter('{')
		for first := true; d.more('}', first); first = false {
			d.key()
			d.skip()
		}
	case c == '[':
		d.enter('[')
		for first := true; d.more(']', first); first = false {
			d.skip()
		}
	case c == 't':
		d.literal("true")
	case c == 'f':
		d.literal("false")
	case c == 'n':
		d.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		d.number()
	default:
		d.kind() // fails with the right message
	}
}

// stringValue reads a string, or skips another value and returns its
// kind with ok false.
func (d *decoder) stringValue(last *string) (s, kind string, ok bool) {
	if d.peek() == '"' {
		return d.str(last), "", true
	}
	kind = d.kind()
	d.skip()
	return "", kind, false
}

// numberValue reads a number, or skips another value.
func (d *decoder) numberValue() (float64, error) {
	if c := d.peek(); c == '-' || c >= '0' && c <= '9' {
		return d.number()
	}
	kind := d.kind()
	d.skip()
	return 0, fmt.Errorf("want a number, got %s", kind)
}

// datumFields are the fields of an element of MetricData; a datumState
// marks each one seen by its index here.
var datumFields = [...]string{"MetricName", "Dimensions", "Timestamp", "Value", "Values", "Counts", "Unit", "StorageResolution"}

// datumState is one element of MetricData being read: the Datum so far,
// the first error in it, and which fields it has given.
type datumState struct {
	idx                            int
	dt                             Datum
	err                            *DatumError
	hasValue, hasValues, hasCounts bool
	seen                           [len(datumFields)]bool
}

// bad records err against field, unless an earlier field already failed:
// the first error is the one reported.
func (s *datumState) bad(field string, err error) {
	if s.err == nil {
		s.err = &DatumError{Index: s.idx, Field: field, Err: fmt.Errorf("%w: %v", ErrInvalid, err)}
	}
}

// complete checks the fields that only make sense together.
func (s *datumState) complete() {
	switch {
	case s.err != nil:
	case s.hasValue && s.hasValues:
		s.bad("Values", errors.New("give Value or Values, not both"))
	case !s.hasValue && !s.hasValues:
		s.bad("Value", errors.New("missing: give Value or Values"))
	case s.hasValues && len(s.dt.Values) == 0:
		s.bad("Values", errors.New("empty"))
	case s.hasCounts && !s.hasValues:
		//lint:ignore ST1005 the message starts with the field's name, spelled as CloudWatch's API spells it
		s.bad("Counts", errors.New("Counts without Values"))
	}
}

// datum reads one element of MetricData.
func (d *decoder) datum(idx int) (Datum, *DatumError) {
	s := datumState{idx: idx}
	if d.peek() != '{' {
		s.bad("", fmt.Errorf("want an object, got %s", d.kind()))
		d.skip()
		return Datum{}, s.err
	}
	d.enter('{')
	for first := true; d.more('}', first); first = false {
		d.datumField(&s)
	}
	s.complete()
	if s.err != nil {
		return Datum{}, s.err
	}
	return s.dt, nil
}

// datumField reads one field of an element of MetricData: a known field
// given twice is an error, and null leaves a field absent, as in
// encoding/json, except for Value, which datumValue handles.
func (d *decoder) datumField(s *datumState) {
	raw := d.key()
	f := -1
	for j, name := range datumFields {
		if string(raw) == name {
			f = j
		}
	}
	if f < 0 {
		d.unknownDatumField(s, raw)
		return
	}
	key := datumFields[f]
	if s.seen[f] {
		s.bad(key, errors.New("given twice"))
		d.skip()
		return
	}
	s.seen[f] = true
	if key != "Value" && d.peek() == 'n' {
		d.literal("null")
		return
	}
	d.datumValue(s, key)
}

// unknownDatumField skips the value of a field MetricData does not have,
// recording why it is refused.
func (d *decoder) unknownDatumField(s *datumState, raw []byte) {
	if string(raw) == "StatisticValues" {
		s.bad("StatisticValues", errors.New("not supported: send Values and Counts"))
	} else {
		s.bad(string(raw), errors.New("unknown field (names are case-sensitive: MetricName, Dimensions, Timestamp, Value, Values, Counts, Unit)"))
	}
	d.skip()
}

// datumValue reads the value of the known field key into s.
func (d *decoder) datumValue(s *datumState, key string) {
	switch key {
	case "MetricName":
		str, kind, ok := d.stringValue(&d.lastMetric)
		if !ok {
			s.bad(key, fmt.Errorf("want a string, got %s", kind))
		}
		s.dt.MetricName = str
	case "Unit":
		str, kind, ok := d.stringValue(&d.lastUnit)
		if !ok {
			s.bad(key, fmt.Errorf("want a string, got %s", kind))
		}
		s.dt.Unit = Unit(str)
	case "Value":
		if d.peek() == 'n' {
			d.literal("null")
			return
		}
		s.hasValue = true
		v, err := d.numberValue()
		if err != nil {
			s.bad(key, err)
		}
		s.dt.Value = v
	case "Values", "Counts":
		vs, field, err := d.numbers(key)
		if err != nil {
			s.bad(field, err)
		}
		if key == "Values" {
			s.hasValues, s.dt.Values = true, vs
		} else {
			s.hasCounts, s.dt.Counts = true, vs
		}
	case "Dimensions":
		dims, field, err := d.dimensions()
		if err != nil {
			s.bad(field, err)
		}
		s.dt.Dimensions = dims
	case "Timestamp":
		t, err := d.timestamp()
		if err != nil {
			s.bad(key, err)
		}
		s.dt.Timestamp = t
	case "StorageResolution":
		if v, err := d.numberValue(); err != nil {
			s.bad(key, err)
		} else if v != 1 && v != 60 {
			s.bad(key, fmt.Errorf("%v: give 1 or 60", v))
		}
	}
}

// numbers reads an array of numbers into the decoder's slab.
func (d *decoder) numbers(key string) (vs []float64, field string, err error) {
	if d.peek() != '[' {
		kind := d.kind()
		d.skip()
		return nil, key, fmt.Errorf("want an array of numbers, got %s", kind)
	}
	start := len(d.vals)
	d.enter('[')
	for first := true; d.more(']', first); first = false {
		v, verr := d.numberValue()
		if verr != nil && err == nil {
			field, err = fmt.Sprintf("%s[%d]", key, len(d.vals)-start), verr
		}
		d.vals = append(d.vals, v)
	}
	return d.vals[start:len(d.vals):len(d.vals)], field, err
}

// dimensions reads an array of {Name, Value} into the decoder's slab.
func (d *decoder) dimensions() (dims []Dimension, field string, err error) {
	if d.peek() != '[' {
		kind := d.kind()
		d.skip()
		return nil, "Dimensions", fmt.Errorf("want an array of {Name, Value}, got %s", kind)
	}
	start := len(d.dims)
	fail := func(f string, e error) {
		if err == nil {
			field, err = f, e
		}
	}
	d.enter('[')
	for first := true; d.more(']', first); first = false {
		i := len(d.dims) - start
		if d.peek() != '{' {
			fail(fmt.Sprintf("Dimensions[%d]", i), fmt.Errorf("want an object {Name, Value}, got %s", d.kind()))
			d.skip()
			continue
		}
		var dm Dimension
		var seen [2]bool
		d.enter('{')
		for first := true; d.more('}', first); first = false {
			key := d.key()
			j := 0
			switch string(key) {
			case "Name":
			case "Value":
				j = 1
			default:
				fail(fmt.Sprintf("Dimensions[%d].%s", i, key), errors.New("unknown field: give Name and Value"))
				d.skip()
				continue
			}
			if seen[j] {
				fail(fmt.Sprintf("Dimensions[%d].%s", i, key), errors.New("given twice"))
			}
			seen[j] = true
			var last *string
			if i < len(d.lastDims) {
				last = &d.lastDims[i].Name
				if j == 1 {
					last = &d.lastDims[i].Value
				}
			}
			s, kind, ok := d.stringValue(last)
			if !ok {
				fail(fmt.Sprintf("Dimensions[%d].%s", i, key), fmt.Errorf("want a string, got %s", kind))
			}
			if j == 0 {
				dm.Name = s
			} else {
				dm.Value = s
			}
		}
		d.dims = append(d.dims, dm)
	}
	return d.dims[start:len(d.dims):len(d.dims)], field, err
}

// timestamp reads an RFC 3339 string or a number of seconds.
func (d *decoder) timestamp() (time.Time, error) {
	if d.peek() == '"' {
		s := d.str(nil)
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time (2024-05-02T12:00:00Z)", s)
		}
		return t, nil
	}
	v, err := d.numberValue()
	if err != nil {
		return time.Time{}, fmt.Errorf("%v (RFC 3339 or seconds since the Unix epoch)", err)
	}
	if math.Abs(v) > 1e11 {
		return time.Time{}, fmt.Errorf("%v seconds since the Unix epoch is out of range", v)
	}
	sec, frac := math.Modf(v)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC(), nil
}
