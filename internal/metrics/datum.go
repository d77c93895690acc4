package metrics

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"
)

// Error kinds. Every error the store returns wraps one of them.
var (
	// ErrInvalid is bad input: a datum, a batch or a query.
	ErrInvalid = errors.New("invalid")
	// ErrTooManySeries refuses a datum that would create a series beyond
	// Options.MaxSeries.
	ErrTooManySeries = errors.New("too many series")
	// ErrClosed refuses datums after Close.
	ErrClosed = errors.New("metrics store closed")
)

// Limits of a datum, as CloudWatch sets them.
const (
	MaxNameLen           = 255  // namespace, metric name, dimension name
	MaxDimensionValueLen = 1024 // dimension value
	MaxDimensions        = 30   // per datum
	// A value's magnitude must be 0 or within [MinMagnitude, MaxMagnitude]:
	// CloudWatch's range, which also bounds the sketch's bucket indexes.
	MinMagnitude = 8.515920e-109
	MaxMagnitude = 1.174271e+108
	// MaxCount is the largest count one Counts entry may carry.
	MaxCount = 1 << 32
)

// Dimension is a name/value pair that is part of a series' identity.
type Dimension struct {
	Name  string `json:"Name"`
	Value string `json:"Value"`
}

// Datum is one entry of PutMetricData's MetricData: a value, or values
// with counts, of one series at one time.
type Datum struct {
	MetricName string      `json:"MetricName"`
	Dimensions []Dimension `json:"Dimensions,omitempty"`
	// Timestamp is when the value was observed; zero means now.
	Timestamp time.Time `json:"Timestamp,omitzero"`
	// Value is one sample; it is used when Values is empty.
	Value float64 `json:"Value"`
	// Values are samples, each occurring Counts[i] times (1 when Counts is
	// empty). At most Options.MaxValues (150) per datum.
	Values []float64 `json:"Values,omitempty"`
	Counts []float64 `json:"Counts,omitempty"`
	// Unit is one of CloudWatch's standard units, or empty.
	Unit Unit `json:"Unit,omitempty"`
}

// MarshalJSON writes Value only when Values is empty: a body with both is
// refused, as CloudWatch refuses it.
func (d Datum) MarshalJSON() ([]byte, error) {
	type plain Datum
	if len(d.Values) == 0 {
		return json.Marshal(plain(d))
	}
	return json.Marshal(struct {
		plain
		Value *float64 `json:"Value,omitempty"`
	}{plain: plain(d)})
}

// Unit is a CloudWatch standard unit.
type Unit string

// units are CloudWatch's StandardUnit values.
var units = map[Unit]bool{}

func init() {
	for _, u := range strings.Fields(`Seconds Microseconds Milliseconds Bytes Kilobytes Megabytes
		Gigabytes Terabytes Bits Kilobits Megabits Gigabits Terabits Percent Count
		Bytes/Second Kilobytes/Second Megabytes/Second Gigabytes/Second Terabytes/Second
		Bits/Second Kilobits/Second Megabits/Second Gigabits/Second Terabits/Second
		Count/Second None`) {
		units[Unit(u)] = true
	}
}

// Valid reports whether u is a CloudWatch standard unit or empty.
func (u Unit) Valid() bool { return u == "" || units[u] }

// DatumError is why one datum of a batch was refused. Err wraps an error
// kind (ErrInvalid, ErrTooManySeries, ErrClosed).
type DatumError struct {
	Index int    // in the batch
	Field string // "Values[3]", "Dimensions[0].Name"; empty for the whole datum
	Err   error
}

func (e *DatumError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("MetricData[%d]: %v", e.Index, e.Err)
	}
	return fmt.Sprintf("MetricData[%d].%s: %v", e.Index, e.Field, e.Err)
}

func (e *DatumError) Unwrap() error { return e.Err }

// invalid is an ErrInvalid with a message.
func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// checkName checks a namespace, metric or dimension name or value: not
// empty, at most max bytes, valid UTF-8 without control characters (they
// separate the parts of a series key).
func checkName(what, s string, max int) error {
	if s == "" {
		return invalid("%s is empty", what)
	}
	if len(s) > max {
		return invalid("%s is %d bytes long, at most %d", what, len(s), max)
	}
	if strings.TrimSpace(s) == "" {
		return invalid("%s is only white space", what)
	}
	for i, r := range s {
		if r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD") {
			return invalid("%s %q is not valid UTF-8", what, s)
		}
		if r < 0x20 || r == 0x7f {
			return invalid("%s %q has a control character", what, s)
		}
	}
	return nil
}

// CheckNamespace checks a namespace as Put does.
func CheckNamespace(ns string) error {
	if err := checkName("Namespace", ns, MaxNameLen); err != nil {
		return err
	}
	for _, r := range ns {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(".-_/#: ", r)) {
			return invalid("Namespace %q: use letters, digits and . - _ / # : or space", ns)
		}
	}
	return nil
}

// checkValue checks one sample value.
func checkValue(v float64) error {
	switch {
	case math.IsNaN(v):
		return invalid("NaN is not a value")
	case math.IsInf(v, 0):
		return invalid("%v is not a value", v)
	case v != 0 && (math.Abs(v) < MinMagnitude || math.Abs(v) > MaxMagnitude):
		return invalid("%g is out of range: 0 or a magnitude from %g to %g", v, MinMagnitude, MaxMagnitude)
	}
	return nil
}

// checkCount checks one Counts entry: a whole number from 0 to MaxCount
// (the sketch counts occurrences).
func checkCount(c float64) error {
	if math.IsNaN(c) || c < 0 || c > MaxCount || c != math.Trunc(c) {
		return invalid("%v is not a count: give a whole number from 0 to %d", c, int64(MaxCount))
	}
	return nil
}
