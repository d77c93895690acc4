package config

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
)

// The validator and the checks that several features share: names, the
// positions of problems, durations, lists of names in messages.

var (
	groupName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
	itemName  = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
	envVar    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	allDigits = regexp.MustCompile(`^[0-9]+$`)
)

// validator collects every problem of one Config; each feature's file adds
// the checks of its part of the file as methods.
type validator struct {
	c    *Config
	errs Errors
	// ports in use on this host, across all groups, for conflicts.
	listens []portUse
	fixed   []portUse
	// vips seen, IP → owner, for duplicates.
	vips map[string]string
}

// errorf reports a problem with the value at p (or with the mapping that
// lacks it, when it is absent).
func (v *validator) errorf(p path, format string, args ...any) {
	v.report(p, false, fmt.Sprintf(format, args...))
}

// keyErrorf reports a problem with a map key rather than its value.
func (v *validator) keyErrorf(p path, format string, args ...any) {
	v.report(p, true, fmt.Sprintf(format, args...))
}

func (v *validator) report(p path, atKey bool, msg string) {
	if v.c.src == nil {
		if s := p.String(); s != "" {
			msg = s + ": " + msg
		}
		v.errs = append(v.errs, Error{File: v.c.Path, Msg: msg})
		return
	}
	line, col := v.c.src.pos(p, atKey)
	v.errs = append(v.errs, Error{File: v.c.src.file, Line: line, Col: col, Msg: msg})
}

// where names the place of an earlier value in a message about a
// duplicate: "line 3", or its path for a Config built in code.
func (v *validator) where(p path) string {
	if v.c.src == nil {
		return p.String()
	}
	line, _ := v.c.src.pos(p, true)
	return "line " + strconv.Itoa(line)
}

// defaulted reports whether the value at p was filled in by default rather
// than written, so that a message about it can say so.
func (v *validator) defaulted(p path) bool { return v.c.src != nil && !v.c.src.has(p) }

// uniqueName checks the name of a load balancer, target group, window or
// scheduled action: like a group name, as it is a path segment of the API
// and a column of the CLI, and unique among those of its kind.
func (v *validator) uniqueName(kind, name string, p path, names map[string]path) {
	switch first, dup := names[name]; {
	case name == "":
		v.errorf(p, "%s name is required", kind)
	case !groupName.MatchString(name):
		v.errorf(p, "%s name %q: use lowercase letters, digits and '-', starting with a letter or digit, at most 63 characters", kind, name)
	case dup:
		v.errorf(p, "duplicate %s name %q (first at %s)", kind, name, v.where(first))
	default:
		names[name] = p
	}
}

// nonNegative reports a negative duration. Only a Config built in code can
// hold one: the parser refuses them.
func (v *validator) nonNegative(p path, d Duration) {
	if d < 0 {
		v.errorf(p, "%s must not be negative, got %s", p[len(p)-1][1:], d)
	}
}

// itHas lists names for a message: "it has a, b" or "it has none".
func itHas(names []string) string {
	if len(names) == 0 {
		return "it has none"
	}
	return "it has " + strings.Join(names, ", ")
}

// didYouMean suggests the known name that differs from s only in case.
func didYouMean(s string, known ...string) string {
	for _, k := range known {
		if strings.EqualFold(s, k) {
			return fmt.Sprintf(" (did you mean %q?)", k)
		}
	}
	return ""
}

// pathErr strips the operation and path from an *fs.PathError: messages
// name the path themselves.
func pathErr(err error) error {
	if pe, ok := errors.AsType[*os.PathError](err); ok {
		return pe.Err
	}
	return err
}
