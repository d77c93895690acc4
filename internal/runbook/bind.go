package runbook

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ParamError is a problem with one run-time parameter of a document. Bind
// returns every such problem, joined with errors.Join.
type ParamError struct {
	Name string
	Msg  string
}

func (e *ParamError) Error() string { return "parameter " + e.Name + ": " + e.Msg }

// Bind checks the parameters of an execution against the document's and
// returns every parameter of the document with its value: the one given,
// converted to the parameter's type, or the default. Values are given as
// text, as they come from the command line or a query:
//
//	String      as is
//	StringList  a JSON array of strings (["a", "b"]), or items separated by
//	            commas (a,b), each with spaces around it removed; "" is the
//	            empty list
//	Integer     a decimal integer
//	Boolean     true or false
//
// and are returned as string, []string, int64 and bool. A value must be one
// of the allowedValues and match the allowedPattern, each item of a
// StringList. An unknown parameter, a missing required one or a bad value
// is an error, with every such problem as a *ParamError.
//
// Values are data and stay data: nothing in them is evaluated, and the
// {{ }} references of the document are not searched for in them.
func (d *Document) Bind(params map[string]string) (map[string]any, error) {
	var errs []error
	order := d.paramOrder()
	for _, name := range slices.Sorted(maps.Keys(params)) {
		if _, ok := d.Parameters[name]; !ok {
			msg := "unknown parameter" + suggest(name, order, "")
			if len(order) == 0 {
				msg = "unknown parameter: document " + d.Name + " takes none"
			}
			errs = append(errs, &ParamError{Name: name, Msg: msg})
		}
	}
	out := make(map[string]any, len(order))
	for _, name := range order {
		prm := d.Parameters[name]
		text, given := params[name]
		if !given {
			if prm.Default == nil {
				errs = append(errs, &ParamError{Name: name, Msg: "required (" + prm.Type + ")"})
				continue
			}
			v := prm.Default
			if l, ok := v.([]string); ok {
				v = slices.Clone(l)
			}
			out[name] = v
			continue
		}
		v, err := prm.parse(text)
		if err == nil {
			err = prm.check(v)
		}
		if err != nil {
			errs = append(errs, &ParamError{Name: name, Msg: err.Error()})
			continue
		}
		out[name] = v
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// paramOrder returns the names of the parameters as written, and those of
// a document built in code (with no ParamOrder) sorted.
func (d *Document) paramOrder() []string {
	order := slices.Clone(d.ParamOrder)
	var rest []string
	for name, prm := range d.Parameters {
		if prm != nil && !slices.Contains(order, name) {
			rest = append(rest, name)
		}
	}
	slices.Sort(rest)
	return slices.DeleteFunc(append(order, rest...), func(name string) bool { return d.Parameters[name] == nil })
}

// quote shows a value in a message, cut short: a value may be long, and is
// shown quoted so that nothing in it can pass for part of the message.
func quote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return strconv.Quote(s)
}

// parse converts a value given as text to the parameter's type.
func (prm *Parameter) parse(text string) (any, error) {
	switch prm.Type {
	case TypeString:
		return text, nil
	case TypeStringList:
		t := strings.TrimSpace(text)
		if strings.HasPrefix(t, "[") {
			var l []string
			if err := json.Unmarshal([]byte(t), &l); err != nil {
				return nil, fmt.Errorf("%s is not a JSON array of strings", quote(text))
			}
			if l == nil {
				l = []string{}
			}
			return l, nil
		}
		if t == "" {
			return []string{}, nil
		}
		l := strings.Split(t, ",")
		for i := range l {
			l[i] = strings.TrimSpace(l[i])
			if l[i] == "" {
				return nil, fmt.Errorf("%s has an empty item", quote(text))
			}
		}
		return l, nil
	case TypeInteger:
		i, err := strconv.ParseInt(text, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s is not an integer", quote(text))
		}
		return i, nil
	case TypeBoolean:
		switch text {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
		return nil, fmt.Errorf("%s is not true or false", quote(text))
	}
	return nil, fmt.Errorf("unknown type %q", prm.Type)
}

// check checks a value of the parameter's type against its allowed values
// and pattern, each item of a list.
func (prm *Parameter) check(v any) error {
	items := []any{v}
	if l, ok := v.([]string); ok {
		items = items[:0]
		for _, s := range l {
			items = append(items, s)
		}
		switch {
		case len(l) < prm.MinItems:
			return fmt.Errorf("%d items, fewer than minItems %d", len(l), prm.MinItems)
		case prm.MaxItems > 0 && len(l) > prm.MaxItems:
			return fmt.Errorf("%d items, more than maxItems %d", len(l), prm.MaxItems)
		}
	}
	re, err := prm.pattern()
	if err != nil {
		return err
	}
	for _, it := range items {
		text := fmt.Sprint(it)
		if len(prm.AllowedValues) > 0 && !slices.ContainsFunc(prm.AllowedValues, func(a any) bool { return fmt.Sprint(a) == text }) {
			allowed := make([]string, len(prm.AllowedValues))
			for i, a := range prm.AllowedValues {
				allowed[i] = fmt.Sprint(a)
			}
			return fmt.Errorf("%s is not one of the allowed values %s", quote(text), strings.Join(allowed, ", "))
		}
		if s, ok := it.(string); ok && re != nil && !re.MatchString(s) {
			return fmt.Errorf("%s does not match the allowed pattern %s", quote(s), prm.AllowedPattern)
		}
		if s, ok := it.(string); ok {
			n := utf8.RuneCountInString(s)
			switch {
			case n < prm.MinChars:
				return fmt.Errorf("%s has %d characters, fewer than minChars %d", quote(s), n, prm.MinChars)
			case prm.MaxChars > 0 && n > prm.MaxChars:
				return fmt.Errorf("%s has %d characters, more than maxChars %d", quote(s), n, prm.MaxChars)
			}
		}
	}
	return nil
}

// pattern returns the compiled AllowedPattern, or nil if there is none.
// Parse compiles it once; a Parameter built in code has it compiled here,
// every time, rather than cached, which would race between executions.
func (prm *Parameter) pattern() (*regexp.Regexp, error) {
	if prm.re != nil || prm.AllowedPattern == "" {
		return prm.re, nil
	}
	re, err := compilePattern(prm.AllowedPattern)
	if err != nil {
		return nil, fmt.Errorf("allowedPattern: %v", err)
	}
	return re, nil
}
