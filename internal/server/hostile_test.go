package server_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Hostile web pages against the API, in real Chromium. The operator is
// signed in to the dashboard (its cookie is in the browser) and visits a
// page on another site, evil.example (mapped to 127.0.0.1 by Chromium's
// resolver rules), which tries what any page can: a form that posts
// text/plain, fetch() with text/plain and with JSON. And a page whose
// name is re-pointed at the API (DNS rebinding) tries to read it.
//
// The API sits behind a small recording proxy, so that the test sees that
// each request did reach the API and what it answered: a refusal that
// never happened would prove nothing.

// apiRecorder forwards to the API, keeping Host, and records what passed;
// it serves the attack pages itself.
type apiRecorder struct {
	proxy *httputil.ReverseProxy
	pages map[string]string

	mu   sync.Mutex
	seen []string // "METHOD PATH -> STATUS"
}

func newAPIRecorder(t *testing.T, api string) (*apiRecorder, string) {
	t.Helper()
	target, _ := url.Parse("http://" + api)
	r := &apiRecorder{pages: map[string]string{}}
	r.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = pr.In.Host // what the browser sent: the API judges it
		},
		ModifyResponse: func(resp *http.Response) error {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.seen = append(r.seen, fmt.Sprintf("%s %s -> %d", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode))
			return nil
		},
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: r}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return r, ln.Addr().String()
}

func (r *apiRecorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if page, ok := r.pages[req.URL.Path]; ok {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, page)
		return
	}
	r.proxy.ServeHTTP(w, req)
}

func (r *apiRecorder) requests() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.seen...)
}

// TestBrowserHostilePages: nothing a page on another site makes the
// operator's browser send changes anything, and a rebound name reads
// nothing; the dashboard itself keeps working.
func TestBrowserHostilePages(t *testing.T) {
	chromium := externalTool(t, "chromium", "chromium")
	t.Parallel()
	e := startInProcess(t, writeConfig(t, victimConfig), "")
	in := e.waitInService(1, 30*time.Second)[0]
	rec, api := newAPIRecorder(t, e.apiAddr)
	_, port, _ := net.SplitHostPort(api)
	apiURL := "http://127.0.0.1:" + port

	evil := newHostileSite(t)
	evil.page = hostilePage(apiURL, in.ID)
	// The rebinding page is served at the API's own port under the
	// hostile name: the same origin as the API then is.
	rec.pages["/rebound.html"] = reboundPage(in.ID)

	b := newBrowser(t, chromium, apiURL, chromedp.Flag("host-resolver-rules", "MAP evil.example 127.0.0.1"))
	b.signIn(t, e) // the operator's cookie is in the browser

	// The dashboard, same-origin, still acts: a positive control that the
	// path through the recorder works.
	b.wait(t, 10*time.Second, chromedp.Evaluate[chromedp.Void](`fetch("/v1/groups/victim/scale", {method: "POST", credentials: "same-origin",
		headers: {"Content-Type": "application/json"}, body: JSON.stringify({max: 3})}).then((r) => { window.ownScale = r.status; })`))
	b.waitJS(t, 10*time.Second, `window.ownScale === 200`)

	// The hostile site: a form and three fetches, with the cookie there.
	b.wait(t, 20*time.Second, chromedp.Navigate("http://evil.example:"+evil.port+"/"))
	// The new site's document first (another renderer may take it over),
	// then its script's result.
	b.wait(t, 20*time.Second, chromedp.WaitReady(chromedp.CSS(`#f`)))
	b.waitJS(t, 20*time.Second, `window.attackDone === true`)
	results := b.evalString(t, `JSON.stringify(window.attackResults)`)
	t.Logf("the hostile page saw: %s", results)
	b.screenshot(t, "hostile-page")

	// The rebound name: the page and the API share an origin.
	b.wait(t, 20*time.Second, chromedp.Navigate("http://evil.example:"+port+"/rebound.html"))
	b.wait(t, 20*time.Second, chromedp.WaitReady(chromedp.CSS(`#rebound`)))
	b.waitJS(t, 20*time.Second, `window.readDone === true`)
	read := b.evalString(t, `JSON.stringify(window.readResults)`)
	if strings.Contains(read, in.ID) || strings.Contains(read, `"groups"`) || !strings.Contains(read, "421") {
		t.Errorf("the rebound page read: %s", read)
	}

	seen := strings.Join(rec.requests(), "\n")
	t.Logf("the API saw:\n%s", seen)
	for _, want := range []string{
		"POST /v1/groups/victim/scale -> 200",               // the dashboard's own
		"POST /v1/instances/" + in.ID + "/terminate -> 403", // the form
		"POST /v1/groups/victim/scale -> 403",               // fetch, text/plain, no-cors
		"OPTIONS /v1/groups/victim/scale -> 401",            // fetch, JSON: the preflight fails, the POST is never sent
		"GET /v1/status -> 421",                             // the rebound read
		"GET /v1/instances/" + in.ID + "/metadata -> 421",   // and another
	} {
		if !strings.Contains(seen, want) {
			t.Errorf("the API never saw %q", want)
		}
	}
	if n := strings.Count(seen, "POST /v1/groups/victim/scale -> 200"); n != 1 {
		t.Errorf("%d successful scales, want only the dashboard's", n)
	}
	g, err := e.client.Group(context.Background(), "victim")
	if err != nil || g.Desired != 1 || g.Max != 3 {
		t.Fatalf("victim after the visit: %+v, %v", g, err)
	}
	now, err := e.client.Instance(context.Background(), in.ID)
	if err != nil || now.State != "InService" || now.Pid != in.Pid {
		t.Fatalf("instance %s after the visit: %s pid %d (was %d), %v", in.ID, now.State, now.Pid, in.Pid, err)
	}
	// The console holds the refusals, as a browser reports them.
	t.Logf("console: %q", b.takeConsole())
}

// hostileSite serves one page on its own port.
type hostileSite struct {
	port string
	page string
}

func newHostileSite(t *testing.T) *hostileSite {
	t.Helper()
	h := &hostileSite{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, h.port, _ = net.SplitHostPort(ln.Addr().String())
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, h.page)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return h
}

// hostilePage posts a text/plain form whose body is JSON (the classic
// trick: name `{"decrement":false,"x":"` and value `"}`), then fetches
// with text/plain (no preflight, response opaque) and with JSON (needs a
// preflight).
func hostilePage(api, id string) string {
	return `<!doctype html><title>cute cats</title>
<iframe name="sink" id="sink"></iframe>
<form id="f" method="POST" enctype="text/plain" target="sink" action="` + api + `/v1/instances/` + id + `/terminate">
<input type="hidden" name='{"decrement":false,"x":"' value='"}'></form>
<script>
window.attackResults = {};
async function attack() {
  document.getElementById("sink").addEventListener("load", async () => {
    try {
      const plain = await fetch("` + api + `/v1/groups/victim/scale", {method: "POST", mode: "no-cors", credentials: "include",
        headers: {"Content-Type": "text/plain"}, body: JSON.stringify({desired: 0})});
      window.attackResults.plain = plain.type + " " + plain.status;
    } catch (e) { window.attackResults.plain = String(e); }
    try {
      const json = await fetch("` + api + `/v1/groups/victim/scale", {method: "POST", credentials: "include",
        headers: {"Content-Type": "application/json"}, body: JSON.stringify({desired: 0})});
      window.attackResults.json = json.status;
    } catch (e) { window.attackResults.json = String(e); }
    window.attackDone = true;
  }, {once: true});
  document.getElementById("f").submit();
}
attack();
</script>`
}

// reboundPage reads the API from what is, to the browser, its own origin.
func reboundPage(id string) string {
	return `<!doctype html><title>rebound</title><p id="rebound">hello</p><script>
window.readResults = [];
(async () => {
  for (const path of ["/v1/status", "/v1/instances/` + id + `/metadata"]) {
    try {
      const r = await fetch(path, {credentials: "include"});
      window.readResults.push(r.status + " " + (await r.text()));
    } catch (e) { window.readResults.push(String(e)); }
  }
  window.readDone = true;
})();
</script>`
}
