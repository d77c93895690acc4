package config

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"

	"github.com/autoheal/autoheal/internal/diag"
	"github.com/autoheal/autoheal/internal/limits"
)

// Load reads, defaults and validates the config file at path. Any problem
// is returned as *Errors, each naming path as given, line and column;
// nothing of an invalid file is returned. A file beyond the size limit
// (limits.Config) is refused after reading one byte more than the limit.
func Load(path string) (*Config, error) {
	cfg, _, err := LoadText(path)
	return cfg, err
}

// LoadText is Load that also returns the file's text, read once: a cluster
// compares the text of every host's file with the one it recorded.
func LoadText(path string) (*Config, []byte, error) {
	data, err := limits.ReadFile(path, limits.Config)
	if err != nil {
		if le, ok := errors.AsType[*diag.Error](err); ok {
			return nil, nil, &Errors{*le}
		}
		msg := err.Error()
		if pe, ok := errors.AsType[*fs.PathError](err); ok {
			msg = "cannot read config: " + pe.Err.Error()
		}
		return nil, nil, &Errors{{File: path, Msg: msg}}
	}
	cfg, err := Parse(path, data)
	if err != nil {
		return nil, nil, err
	}
	return cfg, data, nil
}

// Parse decodes, defaults and validates a config whose text is data; path
// is where it came from: problems name it, and relative paths in the config
// are resolved against its directory. Any problem is returned as *Errors.
//
// Parsing happens in three passes so that a user fixing a file sees every
// problem of a kind at once: the YAML syntax (the parser stops at the first
// error), then the schema (every unknown field and wrong type), then, on a
// config that decoded, the counts of lists and maps, defaults and Validate
// (every invalid value).
//
// Before any of that, the raw bytes are checked against limits.Config
// (size, UTF-8, depth, scalar size, number of keys and items): the YAML
// parser takes time and memory far beyond the size of a hostile file, so
// it only sees files the cheap scan let through. The tree it builds is
// checked again against the same limits (limits.CheckTree), exactly as the
// parser counts, whatever the layout.
func Parse(path string, data []byte) (*Config, error) {
	if le := limits.Check(path, data, limits.Config); le != nil {
		return nil, &Errors{*le}
	}
	file, err := parseYAML(data)
	if err != nil {
		return nil, &Errors{decodeError(path, err)}
	}
	if le := limits.CheckTree(path, file, limits.Config); le != nil {
		return nil, &Errors{*le}
	}
	body, errs := document(path, file)
	if len(errs) > 0 {
		return nil, errs.Err()
	}
	src, errs := checkSchema(path, body)
	if len(errs) > 0 {
		return nil, errs.Err()
	}
	var cfg Config
	// The schema check accepted the tree, so the decoder is expected to
	// succeed; it keeps DisallowUnknownField as a second line of defence.
	// AllowDuplicateMapKey only lets a key override one merged in with <<
	// (the parser has already refused a key written twice in a mapping).
	if err := decode(body, &cfg); err != nil {
		return nil, &Errors{decodeError(path, err)}
	}
	cfg.Path, cfg.src = path, src
	if abs, err := filepath.Abs(path); err == nil {
		cfg.Dir = filepath.Dir(abs)
	}
	if errs := cfg.checkCounts(); len(errs) > 0 {
		return nil, errs.Err()
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// parseYAML and decode run the YAML library, turning a panic into an
// error: the library is not ours, a config is input, and the schema check
// between them may not foresee every tree the decoder chokes on.
func parseYAML(data []byte) (file *ast.File, err error) {
	defer func() {
		if r := recover(); r != nil {
			file, err = nil, fmt.Errorf("cannot parse the config: %v", r)
		}
	}()
	return parser.ParseBytes(data, 0)
}

func decode(body ast.Node, cfg *Config) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("cannot decode the config: %v", r)
		}
	}()
	return yaml.NodeToValue(body, cfg, yaml.DisallowUnknownField(), yaml.AllowDuplicateMapKey())
}

// document returns the body of the file's only YAML document. Empty
// documents (a file of comments, a trailing "---") are ignored; a second
// document with content is an error rather than silently ignored.
func document(path string, file *ast.File) (ast.Node, Errors) {
	var body ast.Node
	for _, doc := range file.Docs {
		if doc.Body == nil {
			continue
		}
		if body != nil {
			tk := doc.Body.GetToken()
			if doc.Start != nil {
				tk = doc.Start
			}
			return nil, Errors{{File: path, Line: tk.Position.Line, Col: tk.Position.Column,
				Msg: "a config file holds one YAML document; this is a second one"}}
		}
		body = doc.Body
	}
	if body == nil {
		return nil, Errors{{File: path, Line: 1, Col: 1, Msg: "the config is empty: at least one group is required"}}
	}
	return body, nil
}

// decodeError turns a go-yaml error into a positioned Error.
func decodeError(path string, err error) Error {
	if ye, ok := errors.AsType[yaml.Error](err); ok {
		if tk := ye.GetToken(); tk != nil && tk.Position != nil {
			return Error{File: path, Line: tk.Position.Line, Col: tk.Position.Column, Msg: ye.GetMessage()}
		}
		return Error{File: path, Line: 1, Col: 1, Msg: ye.GetMessage()}
	}
	return Error{File: path, Line: 1, Col: 1, Msg: err.Error()}
}
