package web

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func get(t *testing.T, srv *httptest.Server, path string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func TestHandler(t *testing.T) {
	t.Parallel()
	// Mounted the way the API mounts it, beside a catch-all like the API's.
	mux := http.NewServeMux()
	mux.Handle("/ui/", Handler())
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "api 404", http.StatusNotFound) })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	index, err := assets.ReadFile("assets/index.html")
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name, path string
		status     int
		ctype      string
		isIndex    bool
		contains   string
	}{
		{"root", "/ui/", 200, "text/html; charset=utf-8", true, ""},
		{"index", "/ui/index.html", 200, "text/html; charset=utf-8", true, ""},
		{"script", "/ui/app.js", 200, "text/javascript; charset=utf-8", false, "EventSource"},
		{"chart module", "/ui/chart.js", 200, "text/javascript; charset=utf-8", false, "lineChart"},
		{"style", "/ui/app.css", 200, "text/css; charset=utf-8", false, "prefers-color-scheme"},
		{"spa fallback", "/ui/groups/x", 200, "text/html; charset=utf-8", true, ""},
		{"spa fallback deep", "/ui/executions/ex-1/steps", 200, "text/html; charset=utf-8", true, ""},
		{"missing asset", "/ui/nope.js", 404, "", false, ""},
		{"outside /ui/", "/v1/status", 404, "", false, "api 404"},
		{"root path", "/", 404, "", false, ""},
		{"no trailing slash redirects", "/ui", 200, "text/html; charset=utf-8", true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := get(t, srv, tc.path)
			if resp.StatusCode != tc.status {
				t.Fatalf("GET %s: status %d, want %d", tc.path, resp.StatusCode, tc.status)
			}
			if tc.ctype != "" && resp.Header.Get("Content-Type") != tc.ctype {
				t.Errorf("GET %s: Content-Type %q, want %q", tc.path, resp.Header.Get("Content-Type"), tc.ctype)
			}
			if tc.isIndex && body != string(index) {
				t.Errorf("GET %s: body is not index.html", tc.path)
			}
			if tc.contains != "" && !strings.Contains(body, tc.contains) {
				t.Errorf("GET %s: body lacks %q", tc.path, tc.contains)
			}
			if tc.status == 200 {
				for _, h := range []string{"Cache-Control", "ETag", "Content-Security-Policy", "X-Content-Type-Options"} {
					if resp.Header.Get(h) == "" {
						t.Errorf("GET %s: no %s header", tc.path, h)
					}
				}
			}
		})
	}
}

func TestHandlerRevalidates(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(Handler())
	t.Cleanup(srv.Close)
	resp, _ := get(t, srv, "/ui/app.js")
	if cc := resp.Header.Get("Cache-Control"); cc != "no-cache" {
		t.Errorf("Cache-Control %q, want no-cache (names carry no version)", cc)
	}
	etag := resp.Header.Get("ETag")
	resp, body := get(t, srv, "/ui/app.js", "If-None-Match", etag)
	if resp.StatusCode != http.StatusNotModified || body != "" {
		t.Errorf("If-None-Match %s: status %d with %d bytes, want 304 and no body", etag, resp.StatusCode, len(body))
	}
	resp, _ = get(t, srv, "/ui/app.js", "If-None-Match", `"other"`)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("stale ETag: status %d, want 200", resp.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/ui/app.js", nil)
	pr, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	pr.Body.Close()
	if pr.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: status %d, want 405", pr.StatusCode)
	}
}

// TestAssetsLoadNothingFromTheInternet: the dashboard must work on a host
// with no internet access, and must not leak that it is being looked at.
func TestAssetsLoadNothingFromTheInternet(t *testing.T) {
	t.Parallel()
	url := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}`)
	n := 0
	err := fs.WalkDir(assets, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		n++
		b, err := assets.ReadFile(p)
		if err != nil {
			return err
		}
		s := string(b)
		for _, scheme := range []string{"http://", "https://"} {
			if i := strings.Index(strings.ToLower(s), scheme); i >= 0 {
				t.Errorf("%s references %s: %q", p, scheme, s[max(i-40, 0):min(i+60, len(s))])
			}
		}
		if m := url.FindString(s); m != "" {
			t.Errorf("%s references a host: %q", p, m)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 4 {
		t.Fatalf("walked %d assets, want index.html, app.js, chart.js, app.css", n)
	}
}

// TestScriptsParse runs node --check on every script, as an ES module, when
// node is installed.
func TestScriptsParse(t *testing.T) {
	t.Parallel()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed")
	}
	dir := t.TempDir()
	err = fs.WalkDir(assets, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(p) != ".js" {
			return err
		}
		b, err := assets.ReadFile(p)
		if err != nil {
			return err
		}
		// .mjs: parse as a module whatever node's default.
		f := filepath.Join(dir, strings.TrimSuffix(filepath.Base(p), ".js")+".mjs")
		if err := os.WriteFile(f, b, 0o644); err != nil {
			return err
		}
		if out, err := exec.Command(node, "--check", f).CombinedOutput(); err != nil {
			t.Errorf("node --check %s: %v\n%s", p, err, out)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
