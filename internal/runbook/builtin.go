package runbook

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
)

//go:embed builtin/*.yaml
var builtinFS embed.FS

// Library is the set of documents executions can run: the built-in ones
// and those in an operator's documents directory (*.yaml, *.yml, *.json),
// read when asked for, so that a document edited on disk is used by the
// next execution.
type Library struct {
	dir string

	once     sync.Once
	builtins map[string]*Document
	err      error
}

// NewLibrary returns the library; dir may be "".
func NewLibrary(dir string) *Library { return &Library{dir: dir} }

func (l *Library) loadBuiltins() {
	l.builtins = map[string]*Document{}
	entries, _ := builtinFS.ReadDir("builtin")
	for _, e := range entries {
		data, _ := builtinFS.ReadFile("builtin/" + e.Name())
		d, err := Parse("builtin/"+e.Name(), data)
		if err != nil {
			l.err = fmt.Errorf("built-in document %s: %w", e.Name(), err)
			return
		}
		d.Source = ""
		l.builtins[d.Name] = d
	}
}

// Get returns a document by name; a file in the documents directory
// cannot shadow a built-in.
func (l *Library) Get(name string) (*Document, error) {
	l.once.Do(l.loadBuiltins)
	if l.err != nil {
		return nil, l.err
	}
	if d, ok := l.builtins[name]; ok {
		return d, nil
	}
	if l.dir != "" && !strings.ContainsAny(name, `/\`) && name != "" && name[0] != '.' {
		for _, ext := range []string{".yaml", ".yml", ".json"} {
			path := filepath.Join(l.dir, name+ext)
			data, err := ReadFile(path)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				// Beyond the size limit, or unreadable: saying "not found"
				// would send the operator looking for the wrong problem.
				return nil, err
			}
			return Parse(path, data)
		}
	}
	return nil, fmt.Errorf("%w: document %q (not built in%s)", ErrNotFound, name, l.where())
}

func (l *Library) where() string {
	if l.dir == "" {
		return ", and no documents directory is configured"
	}
	return " nor in " + l.dir
}

// Summary lists a document.
type Summary struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	BuiltIn     bool   `json:"built_in"`
	Source      string `json:"source,omitempty"`
	Error       string `json:"error,omitempty"`
}

// List returns every document, built-ins first; a file that does not parse
// is listed with its error.
func (l *Library) List() []Summary {
	l.once.Do(l.loadBuiltins)
	var out []Summary
	for _, d := range l.builtins {
		out = append(out, Summary{Name: d.Name, Description: firstLine(d.Description), BuiltIn: true})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	if l.dir == "" {
		return out
	}
	entries, _ := os.ReadDir(l.dir)
	for _, e := range entries {
		ext := filepath.Ext(e.Name())
		if e.IsDir() || (ext != ".yaml" && ext != ".yml" && ext != ".json") {
			continue
		}
		path := filepath.Join(l.dir, e.Name())
		s := Summary{Name: strings.TrimSuffix(e.Name(), ext), Source: path}
		data, err := ReadFile(path)
		if err == nil {
			var d *Document
			if d, err = Parse(path, data); err == nil {
				s.Description = firstLine(d.Description)
			}
		}
		if err != nil {
			s.Error = err.Error()
		}
		out = append(out, s)
	}
	return out
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}
