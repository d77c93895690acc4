package config

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

// Error is one problem in a config file, with its position.
type Error struct {
	File string
	Line int
	Col  int
	Msg  string
}

func (e Error) Error() string { return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Col, e.Msg) }

// Errors are every problem found in a file, in file order.
type Errors []Error

// Error renders one FILE:LINE:COL: message per line.
func (es *Errors) Error() string {
	var b strings.Builder
	for _, e := range *es {
		b.WriteString(e.Error())
		b.WriteByte('\n')
	}
	return b.String()
}

// Load reads and validates a config file. Any problem is returned as
// *Errors; nothing is partially valid.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &Errors{{File: path, Line: 1, Col: 1, Msg: fmt.Sprintf("cannot read config: %v", errors.Unwrap(err))}}
	}
	return Parse(path, data)
}

// Parse decodes, defaults and validates a config read from path.
func Parse(path string, data []byte) (*Config, error) {
	file, err := parser.ParseBytes(data, 0)
	if err != nil {
		return nil, &Errors{yamlError(path, err)}
	}
	var scalarErrs Errors
	for _, doc := range file.Docs {
		checkScalars(path, doc, &scalarErrs)
	}
	if len(scalarErrs) > 0 {
		return nil, &scalarErrs
	}
	var cfg Config
	dec := yaml.NewDecoder(bytes.NewReader(data), yaml.DisallowUnknownField())
	if err := dec.Decode(&cfg); err != nil {
		if errors.Is(err, errEmpty) || strings.Contains(err.Error(), "EOF") && len(bytes.TrimSpace(data)) == 0 {
			return nil, &Errors{{File: path, Line: 1, Col: 1, Msg: "empty config: at least one group is required"}}
		}
		return nil, &Errors{yamlError(path, err)}
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, &Errors{{File: path, Line: 1, Col: 1, Msg: err.Error()}}
	}
	cfg.Path, cfg.Dir = path, filepath.Dir(abs)
	v := &validator{path: path, file: file}
	cfg.setDefaults()
	v.validate(&cfg)
	if len(v.errs) > 0 {
		sort.SliceStable(v.errs, func(i, j int) bool {
			a, b := v.errs[i], v.errs[j]
			return a.Line < b.Line || a.Line == b.Line && a.Col < b.Col
		})
		return nil, &v.errs
	}
	return &cfg, nil
}

// typeName makes Go type names readable in messages.
func typeName(t string) string {
	switch {
	case t == "int" || t == "*int" || strings.HasPrefix(t, "int"):
		return "an integer"
	case t == "bool":
		return "true or false"
	case t == "string":
		return "a string"
	case strings.HasPrefix(t, "[]"):
		return "a list"
	case strings.HasPrefix(t, "map["), strings.HasPrefix(t, "config."):
		return "a mapping"
	}
	return t
}

var errEmpty = errors.New("empty document")

// yamlError turns a go-yaml error into a positioned Error.
func yamlError(path string, err error) Error {
	var ye yaml.Error
	if errors.As(err, &ye) && ye.GetToken() != nil {
		tk := ye.GetToken()
		msg := ye.GetMessage()
		var te *yaml.TypeError
		if errors.As(err, &te) && te.Token != nil {
			msg = fmt.Sprintf("invalid value %q: expected %s", te.Token.Value, typeName(te.DstType.String()))
		}
		return Error{File: path, Line: tk.Position.Line, Col: tk.Position.Column, Msg: msg}
	}
	return Error{File: path, Line: 1, Col: 1, Msg: err.Error()}
}

// UnmarshalYAML parses "10s", "1m30s", "250ms".
func (d *Duration) UnmarshalYAML(b []byte) error {
	s := strings.Trim(strings.TrimSpace(string(b)), `"'`)
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("invalid duration %q: use a number with a unit, like 500ms, 10s or 1m30s", s)
	}
	if v < 0 {
		return fmt.Errorf("invalid duration %q: must not be negative", s)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration as a string.
func (d Duration) MarshalYAML() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalYAML parses a byte size: 1048576, "512KiB", "10MiB", "1GiB", "10MB".
func (s *ByteSize) UnmarshalYAML(b []byte) error {
	str := strings.Trim(strings.TrimSpace(string(b)), `"'`)
	n, err := ParseByteSize(str)
	if err != nil {
		return err
	}
	*s = ByteSize(n)
	return nil
}

// ParseByteSize parses a size with an optional unit (B, KB, MB, GB, KiB,
// MiB, GiB).
func ParseByteSize(str string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000}, {"B", 1}}
	num, mult := str, int64(1)
	for _, u := range units {
		if strings.HasSuffix(str, u.suffix) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(str, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseFloat(num, 64)
	if err != nil || n < 0 || math.IsInf(n, 0) || n*float64(mult) > math.MaxInt64/2 {
		return 0, fmt.Errorf("invalid size %q: use bytes or a unit, like 512KiB, 10MiB or 1GiB", str)
	}
	return int64(n * float64(mult)), nil
}

var signals = map[string]syscall.Signal{
	"SIGTERM": syscall.SIGTERM, "SIGINT": syscall.SIGINT, "SIGQUIT": syscall.SIGQUIT,
	"SIGHUP": syscall.SIGHUP, "SIGUSR1": syscall.SIGUSR1, "SIGUSR2": syscall.SIGUSR2,
	"SIGKILL": syscall.SIGKILL, "SIGWINCH": syscall.SIGWINCH, "SIGPWR": syscall.SIGPWR,
}

// Signal parses a signal name: "SIGTERM" or "TERM" (any case).
func Signal(name string) (syscall.Signal, error) {
	n := strings.ToUpper(strings.TrimSpace(name))
	if n == "" {
		return syscall.SIGTERM, nil
	}
	if !strings.HasPrefix(n, "SIG") {
		n = "SIG" + n
	}
	if s, ok := signals[n]; ok {
		return s, nil
	}
	names := make([]string, 0, len(signals))
	for k := range signals {
		names = append(names, k)
	}
	sort.Strings(names)
	return 0, fmt.Errorf("unknown signal %q (one of %s)", name, strings.Join(names, ", "))
}

// pos returns the position for a problem at path ("$.groups[0].launch.command"):
// the value when it exists and is a scalar, else the key that holds it, else
// the nearest ancestor's key (for a missing field: the mapping that lacks it).
func (v *validator) pos(path string) (int, int) {
	if v.file == nil || len(v.file.Docs) == 0 {
		return 1, 1
	}
	node := v.file.Docs[0].Body
	line, col := 1, 1
	for _, seg := range splitPath(path) {
		found := false
		switch n := node.(type) {
		case *ast.MappingNode:
			for _, mv := range n.Values {
				if mv.Key.String() == seg {
					tk := mv.Key.GetToken()
					line, col = tk.Position.Line, tk.Position.Column
					node, found = mv.Value, true
					break
				}
			}
		case *ast.MappingValueNode:
			if n.Key.String() == seg {
				tk := n.Key.GetToken()
				line, col = tk.Position.Line, tk.Position.Column
				node, found = n.Value, true
			}
		case *ast.SequenceNode:
			if i, err := strconv.Atoi(seg); err == nil && i >= 0 && i < len(n.Values) {
				node, found = n.Values[i], true
				if tk := firstToken(node); tk != nil {
					line, col = tk.Position.Line, tk.Position.Column
				}
			}
		}
		if !found {
			return line, col
		}
	}
	switch node.(type) {
	case *ast.MappingNode, *ast.MappingValueNode, *ast.SequenceNode, nil:
		return line, col
	}
	if tk := node.GetToken(); tk != nil {
		return tk.Position.Line, tk.Position.Column
	}
	return line, col
}

// firstToken is the first key of a mapping, or the node's own token.
func firstToken(n ast.Node) *token.Token {
	switch m := n.(type) {
	case *ast.MappingNode:
		if len(m.Values) > 0 {
			return m.Values[0].Key.GetToken()
		}
	case *ast.MappingValueNode:
		return m.Key.GetToken()
	}
	if n == nil {
		return nil
	}
	return n.GetToken()
}

// splitPath turns "$.groups[0].launch" into ["groups", "0", "launch"].
func splitPath(p string) []string {
	p = strings.TrimPrefix(strings.TrimPrefix(p, "$"), ".")
	p = strings.ReplaceAll(p, "[", ".")
	p = strings.ReplaceAll(p, "]", "")
	if p == "" {
		return nil
	}
	return strings.Split(p, ".")
}

// durationKeys and sizeKeys are the fields whose scalars are checked on the
// syntax tree before decoding, so that a bad value is reported at its own
// position (a decoder error from a custom type carries none).
var durationKeys = map[string]bool{
	"stop_timeout": true, "wait_timeout": true, "interval": true, "timeout": true, "grace_period": true,
	"restart_window": true, "backoff_base": true, "backoff_cap": true, "reset_after": true,
	"replacement_window": true, "heartbeat_timeout": true,
}

var sizeKeys = map[string]bool{"max_size": true}

// checkScalars walks the tree and reports every bad duration or size.
func checkScalars(path string, n ast.Node, errs *Errors) {
	switch m := n.(type) {
	case *ast.DocumentNode:
		checkScalars(path, m.Body, errs)
	case *ast.MappingNode:
		for _, mv := range m.Values {
			checkScalars(path, mv, errs)
		}
	case *ast.MappingValueNode:
		key := m.Key.String()
		if durationKeys[key] || sizeKeys[key] {
			if tk := m.Value.GetToken(); tk != nil && isScalar(m.Value) {
				var err error
				if durationKeys[key] {
					var d Duration
					err = d.UnmarshalYAML([]byte(tk.Value))
				} else {
					var s ByteSize
					err = s.UnmarshalYAML([]byte(tk.Value))
				}
				if err != nil {
					*errs = append(*errs, Error{File: path, Line: tk.Position.Line, Col: tk.Position.Column, Msg: key + ": " + err.Error()})
				}
			}
		}
		checkScalars(path, m.Value, errs)
	case *ast.SequenceNode:
		for _, x := range m.Values {
			checkScalars(path, x, errs)
		}
	}
}

func isScalar(n ast.Node) bool {
	switch n.(type) {
	case *ast.MappingNode, *ast.MappingValueNode, *ast.SequenceNode:
		return false
	}
	return true
}
