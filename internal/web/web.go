package web

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"sync"
)

//go:embed assets
var assets embed.FS

// Prefix is where the dashboard is served.
const Prefix = "/ui/"

// contentTypes are set explicitly rather than from the system's MIME
// tables, which vary between machines (a .js served as text/plain is
// refused as a module script).
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
}

// csp allows nothing but this origin: no inline script, no inline style
// attributes, no frames, so that an event message rendered by mistake as
// markup still cannot run or load anything.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// file is one embedded asset, read once.
type file struct {
	body  []byte
	ctype string
	etag  string
}

type handler struct {
	files map[string]file // by name under assets/, like "app.js"
}

// Handler serves the embedded assets under /ui/. Any other path under /ui/
// that names no asset gets index.html, so that a reload or a pasted link
// still opens the dashboard; paths outside /ui/ are 404. The assets are
// read and hashed once per process: they are compiled in.
func Handler() http.Handler {
	shared.once.Do(func() { shared.h = load() })
	return shared.h
}

var shared struct {
	once sync.Once
	h    *handler
}

func load() *handler {
	h := &handler{files: map[string]file{}}
	err := fs.WalkDir(assets, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := assets.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		ct := contentTypes[path.Ext(p)]
		if ct == "" {
			ct = "application/octet-stream"
		}
		h.files[strings.TrimPrefix(p, "assets/")] = file{body: b, ctype: ct, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	if err != nil {
		// The assets are compiled in: failing to read them is a build bug.
		panic("web: read embedded assets: " + err.Error())
	}
	return h
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if !strings.HasPrefix(r.URL.Path, Prefix) {
		http.NotFound(w, r)
		return
	}
	name := strings.TrimPrefix(r.URL.Path, Prefix)
	f, ok := h.files[name]
	if !ok {
		if path.Ext(name) != "" && !strings.Contains(name, "/") {
			// A missing asset (app.jss) is a 404, not the page: a script
			// answered with HTML fails in confusing ways.
			http.NotFound(w, r)
			return
		}
		f = h.files["index.html"]
	}
	hd := w.Header()
	hd.Set("Content-Type", f.ctype)
	// Revalidate every time: the names carry no version, so a new binary
	// must not be hidden behind a cached app.js; the ETag makes the check
	// a 304 without a body.
	hd.Set("Cache-Control", "no-cache")
	hd.Set("ETag", f.etag)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "same-origin")
	hd.Set("Content-Security-Policy", csp)
	if match := r.Header.Get("If-None-Match"); match != "" && etagMatch(match, f.etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if r.Method == http.MethodHead {
		return
	}
	w.Write(f.body)
}

// etagMatch reports whether an If-None-Match header names etag.
func etagMatch(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == etag {
			return true
		}
	}
	return false
}
