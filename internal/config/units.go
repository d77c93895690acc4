package config

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Duration is a time.Duration written as "10s", "1m30s" in YAML.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String formats d as time.Duration does, without its zero trailing units
// ("2m" rather than "2m0s"), in a form ParseDuration reads back.
func (d Duration) String() string {
	s := time.Duration(d).String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// UnmarshalYAML accepts "250ms", "10s", "1m30s" and 0; negative durations
// are refused because every duration in the schema is a wait or a window.
func (d *Duration) UnmarshalYAML(unmarshal func(any) error) error {
	s, err := scalarString(unmarshal)
	if err != nil {
		return err
	}
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// MarshalYAML writes the duration in the form UnmarshalYAML reads.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// ParseDuration parses a non-negative duration as written in the config.
// A bare 0 is allowed (it means "the default"); any other number needs a
// unit, because "10" could be seconds or milliseconds to different readers.
func ParseDuration(s string) (Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q: use a number with a unit, like 500ms, 10s or 1m30s", s)
	}
	if v < 0 {
		return 0, fmt.Errorf("invalid duration %q: must not be negative", s)
	}
	return Duration(v), nil
}

// ByteSize is a size written as 1048576, "512KiB", "10MiB", "1GiB" or "10MB".
type ByteSize int64

// Byte size units. Both the binary (KiB) and the decimal (KB) forms are
// accepted because both are common in operators' habits; they mean what
// IEC says they mean.
var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	// Longest suffixes first: "MiB" must not be taken for "B".
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
	{"B", 1},
}

// String formats s with the largest binary unit that divides it exactly
// ("10MiB", "1536B"), so that it reads back to the same value.
func (s ByteSize) String() string {
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if s != 0 && int64(s)%u.mult == 0 {
			return strconv.FormatInt(int64(s)/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(int64(s), 10) + "B"
}

// UnmarshalYAML accepts a number of bytes or a string with a unit:
// 1048576, "100", "512KiB", "10MiB", "1GiB", "10MB", "1KB".
func (s *ByteSize) UnmarshalYAML(unmarshal func(any) error) error {
	str, err := scalarString(unmarshal)
	if err != nil {
		return err
	}
	n, err := ParseByteSize(str)
	if err != nil {
		return err
	}
	*s = ByteSize(n)
	return nil
}

// MarshalYAML writes the size in the form UnmarshalYAML reads.
func (s ByteSize) MarshalYAML() (any, error) { return s.String(), nil }

// ParseByteSize parses a size: bytes, or a number (fractions allowed) with
// one of the units B, KB, MB, GB, TB, KiB, MiB, GiB, TiB. Units are case
// sensitive: "mb" could be read as millibits or megabits, and guessing is
// worse than asking.
func ParseByteSize(str string) (int64, error) {
	str = strings.TrimSpace(str)
	num, mult := str, int64(1)
	for _, u := range sizeUnits {
		if strings.HasSuffix(str, u.suffix) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(str, u.suffix)), u.mult
			break
		}
	}
	bad := fmt.Errorf("invalid size %q: use bytes or a number with a unit, like 512KiB, 10MiB, 1GiB or 10MB", str)
	if num == "" || strings.ContainsAny(num, "+-eEinxXpP_") {
		// Signs, exponents, hex floats, Inf and NaN all parse as floats;
		// none of them is a size anyone writes on purpose.
		return 0, bad
	}
	if mult == 1 {
		n, err := strconv.ParseInt(num, 10, 64)
		if err != nil {
			return 0, bad
		}
		return n, nil
	}
	f, err := strconv.ParseFloat(num, 64)
	// "NaN" (in any case but lower) passes the letter check above, and
	// int64(NaN) is the most negative int64.
	if err != nil || math.IsNaN(f) || f*float64(mult) >= math.MaxInt64 {
		return 0, bad
	}
	return int64(f * float64(mult)), nil
}

// scalarString reads a YAML scalar of any kind as text, so that 100 and
// "100" mean the same size. A mapping or a list is refused.
func scalarString(unmarshal func(any) error) (string, error) {
	var v any
	if err := unmarshal(&v); err != nil {
		return "", err
	}
	switch v := v.(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	case map[string]any, []any:
		return "", errors.New("expected a single value, not a mapping or a list")
	default:
		return fmt.Sprint(v), nil
	}
}

// signals are the stop signals the config accepts: those an application
// may reasonably be asked to stop on. SIGSTOP and friends would leave it
// alive and holding its volume.
var signals = map[string]syscall.Signal{
	"SIGTERM": syscall.SIGTERM, "SIGINT": syscall.SIGINT, "SIGQUIT": syscall.SIGQUIT,
	"SIGHUP": syscall.SIGHUP, "SIGUSR1": syscall.SIGUSR1, "SIGUSR2": syscall.SIGUSR2,
	"SIGKILL": syscall.SIGKILL, "SIGWINCH": syscall.SIGWINCH, "SIGPWR": syscall.SIGPWR,
}

// Signal parses a stop signal name: "SIGTERM" or "TERM", in any case. The
// empty name is the default, SIGTERM.
func Signal(name string) (syscall.Signal, error) {
	if s, ok := signals[canonicalSignal(name)]; ok {
		return s, nil
	}
	return 0, fmt.Errorf("unknown signal %q (one of %s)", name, strings.Join(signalNames(), ", "))
}

// canonicalSignal turns "term", "TERM" and "" into "SIGTERM".
func canonicalSignal(name string) string {
	n := strings.ToUpper(strings.TrimSpace(name))
	if n == "" {
		return "SIGTERM"
	}
	if !strings.HasPrefix(n, "SIG") {
		n = "SIG" + n
	}
	return n
}

func signalNames() []string {
	names := make([]string, 0, len(signals))
	for k := range signals {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}
