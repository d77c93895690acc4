package server_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/autoheal/autoheal/internal/api/wire"
)

// Browser tests of the dashboard (/ui/) in headless Chromium from Debian's
// package, against an in-process controller running the examples: a pet
// group with the uptime alarm and its runbook, and a web group behind a
// load balancer. Chromium is heavy on a small machine, so one browser runs
// the subtests in order on one controller. Screenshots go to
// $AUTOHEAL_ARTIFACTS/ui when it is set (for CI to keep), else to a temp
// dir. A missing /usr/bin/chromium skips, unless AUTOHEAL_REQUIRE_TOOLS is
// set (test.sh installs the package).

// uiConfig is the pet example (with a fast uptime metric and its alarm)
// and the web example, two instances behind a load balancer, in one
// config.
func uiConfig(petPort, lbPort int) string {
	pet := petConfig(petPort, `    parameters:
      - {name: PET_UPTIME_INTERVAL, value: 200ms}
`)
	web := strings.TrimPrefix(webConfig(lbPort, 2, ""), "\ngroups:\n")
	// The escalation channel is never reached: the runbook resolves the
	// incident on its first attempt.
	alarms := strings.Replace(uptimeAlarm("{max_attempts: 2, verify_timeout: 10s, retry_pause: 1s, escalate: [ops]}"), "{{HOOK}}", "http://127.0.0.1:1/", 1)
	return pet + web + alarms
}

// TestUI's subtests share one browser and one controller, so they run in
// order, each starting from a state the previous one left; the last one
// kills the pet.
func TestUI(t *testing.T) {
	chromium := externalTool(t, "chromium", "chromium")
	externalTool(t, "curl", "curl") // the pet's runbook resolves the incident with it

	petPort, lbPort := freePort(t), freePort(t)
	cfg := writeConfig(t, uiConfig(petPort, lbPort))
	docs := filepath.Join(filepath.Dir(cfg), "documents")
	if err := os.MkdirAll(docs, 0o755); err != nil {
		t.Fatal(err)
	}
	runbook, err := os.ReadFile(filepath.Join(moduleRoot(), "examples", "pet", "documents", "webapp-uptime#CustomNamespace.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(docs, "webapp-uptime#CustomNamespace.yaml"), runbook, 0o644); err != nil {
		t.Fatal(err)
	}
	gate := "schemaVersion: \"0.3\"\nmainSteps:\n  - {name: ask, action: approve, inputs: {Message: go on?}}\n  - {name: done, action: sleep, inputs: {Duration: 10ms}}\n"
	if err := os.WriteFile(filepath.Join(docs, "gate.yaml"), []byte(gate), 0o644); err != nil {
		t.Fatal(err)
	}
	e := startInProcess(t, cfg, "")
	e.waitInService(3, 30*time.Second)
	e.waitHealthyTargets("web", 2, 30*time.Second)
	var alarmKey string
	waitFor(t, 30*time.Second, "the uptime alarm to be OK", func() bool {
		as, _ := e.client.Alarms(context.Background())
		if len(as) != 1 || as[0].State != "OK" {
			return false
		}
		alarmKey = as[0].Key
		return true
	})

	b := newBrowser(t, chromium, "http://"+e.apiAddr)
	b.signIn(t, e)

	// Every page renders from a fresh load with the live stream connected
	// and nothing on the console.
	t.Run("PagesLoad", func(t *testing.T) {
		for _, p := range []struct{ name, hash, ready string }{
			{"overview", "#/", `[data-testid=group-row][data-group=web]`},
			{"group-pet", "#/groups/pet", `[data-testid=instance-row]`},
			{"group-web", "#/groups/web", `[data-testid=terminate-button]`},
			{"lb-web", "#/lb/web", `[data-testid=target-row]`},
			{"alarm", "#/alarms/" + url.PathEscape(alarmKey), `[data-testid=alarm-state]`},
			{"run-document", "#/run", `[data-testid=document-select]`},
		} {
			t.Logf("page %s: %s", p.name, p.hash)
			b.load(t, p.hash, p.ready)
			b.screenshot(t, p.name)
			// Every control has a name a screen reader can say, and none is
			// taken out of the keyboard's tab order.
			unlabelled := b.evalString(t, `[...document.querySelectorAll("input, select, textarea, button, a[href]")]
				.filter((e) => e.type !== "hidden" && !e.hidden && e.offsetParent !== null)
				.filter((e) => e.tabIndex < 0 || !((e.labels && e.labels.length) || e.getAttribute("aria-label") || e.getAttribute("aria-labelledby") || e.textContent.trim() || e.title))
				.map((e) => e.outerHTML.slice(0, 80)).join(" | ")`)
			if unlabelled != "" {
				t.Errorf("page %s: controls without a name or out of the tab order: %s", p.name, unlabelled)
			}
			if p.name == "overview" {
				writeDocsScreenshot(t, b)
			}
			b.checkConsole(t, p.name)
		}
	})

	// The pet's service stops: the incident must appear on the open
	// overview through the event stream, without a reload, and its page
	// must follow the timeline until the runbook resolves it.
	t.Run("LiveIncident", func(t *testing.T) {
		b.load(t, "#/", `[data-testid=group-row][data-group=pet]`)
		b.eval(t, `window.autohealMarker = "same page"`)
		if code, body, err := httpPost(fmt.Sprintf("http://127.0.0.1:%d/service/stop", petPort), ""); err != nil || code != 200 {
			t.Fatalf("stop the pet's service: %d %v %s", code, err, body)
		}
		// The alarm's incident: on a loaded machine a heal (a health
		// check that timed out) may open one of its own meanwhile.
		b.wait(t, 40*time.Second, chromedp.WaitReady(chromedp.CSS(`[data-testid=incident-row][data-source=alarm]`)))
		b.requireSamePage(t)
		b.screenshot(t, "incident-live-overview")
		id := b.attr(t, `[data-testid=incident-row][data-source=alarm]`, "data-id")
		if id == "" {
			t.Fatal("the incident row has no data-id")
		}

		// In-app navigation, as a click on the row's link does.
		b.eval(t, `location.hash = "#/incidents/" + encodeURIComponent(`+strconv.Quote(id)+`)`)
		b.wait(t, 10*time.Second, chromedp.WaitVisible(chromedp.CSS(`[data-testid=timeline-entry][data-type=detected]`)))
		b.wait(t, 40*time.Second, chromedp.WaitReady(chromedp.CSS(`[data-testid=timeline-entry][data-type=resolved]`)))
		b.waitJS(t, 10*time.Second, `document.querySelector("[data-testid=incident-status]")?.textContent === "resolved"`)
		b.requireSamePage(t)
		b.screenshot(t, "incident")
		b.checkConsole(t, "incident "+id)

		// The runbook's execution, linked from the incident.
		b.wait(t, 10*time.Second, chromedp.Click(chromedp.CSS(`#main a[href^="#/executions/"]`)))
		b.wait(t, 10*time.Second, chromedp.WaitVisible(chromedp.CSS(`[data-testid=step-row]`)))
		b.requireSamePage(t)
		b.screenshot(t, "execution")
		b.checkConsole(t, "execution of incident "+id)
	})

	// Terminate a web instance from its group page: the confirmation dialog
	// opens, confirming calls the API, and the group replaces the instance.
	t.Run("Terminate", func(t *testing.T) {
		b.load(t, "#/groups/web", `[data-testid=terminate-button]`)
		old := b.attr(t, `[data-testid=terminate-button]`, "data-id")
		if old == "" {
			t.Fatal("the terminate button has no data-id")
		}
		b.wait(t, 10*time.Second, chromedp.Click(chromedp.CSS(`[data-testid=terminate-button][data-id=`+strconv.Quote(old)+`]`)))
		b.wait(t, 10*time.Second, chromedp.WaitVisible(chromedp.CSS(`[data-testid=confirm-dialog][open]`)))
		b.screenshot(t, "terminate-confirm")
		b.wait(t, 10*time.Second, chromedp.Click(chromedp.CSS(`[data-testid=confirm-button]`)))
		waitFor(t, 40*time.Second, old+" terminated and replaced", func() bool {
			st, err := e.client.Status(context.Background(), true)
			if err != nil {
				return false
			}
			inService, oldGone := 0, false
			for _, in := range st.Instances {
				if in.Group != "web" {
					continue
				}
				if in.ID == old {
					oldGone = in.State == "Terminated"
				} else if in.State == "InService" {
					inService++
				}
			}
			return oldGone && inService == 2
		})
		b.screenshot(t, "terminated")
		b.checkConsole(t, "terminate "+old)
	})

	// Refresh the web group from its page: the confirmation, then every
	// instance replaced, and the page shows the refresh's outcome.
	t.Run("Refresh", func(t *testing.T) {
		b.load(t, "#/groups/web", `[data-testid=refresh-button]`)
		before := map[string]bool{}
		for _, in := range e.live() {
			before[in.ID] = in.Group == "web"
		}
		b.wait(t, 10*time.Second, chromedp.SetValue(chromedp.CSS(`[data-testid=refresh-min-healthy]`), "50"))
		b.wait(t, 10*time.Second, chromedp.Click(chromedp.CSS(`[data-testid=refresh-button]`)))
		b.wait(t, 10*time.Second, chromedp.WaitVisible(chromedp.CSS(`[data-testid=confirm-dialog][open]`)))
		b.screenshot(t, "refresh-confirm")
		b.wait(t, 10*time.Second, chromedp.Click(chromedp.CSS(`[data-testid=confirm-button]`)))
		waitFor(t, 60*time.Second, "the web group refreshed", func() bool {
			r, err := e.client.Refresh(context.Background(), "web")
			return err == nil && r.Status == "Successful"
		})
		for _, in := range e.live() {
			if before[in.ID] {
				t.Errorf("web instance %s was not replaced", in.ID)
			}
		}
		b.load(t, "#/groups/web", `[data-testid=refresh-status]`)
		b.waitJS(t, 10*time.Second, `document.querySelector("[data-testid=refresh-status]").textContent.includes("Successful")`)
		b.screenshot(t, "refreshed")
		b.checkConsole(t, "refresh web")
	})

	// The pet's process is killed: the open group page shows the exit and
	// the heal decision as they happen.
	t.Run("ScaleRunApprove", func(t *testing.T) {
		// Scale the web group from its page, with the confirmation.
		b.load(t, "#/groups/web", `[data-testid=scale-input]`)
		b.wait(t, 10*time.Second, chromedp.SetValue(chromedp.CSS(`[data-testid=scale-input]`), "1"))
		b.wait(t, 10*time.Second, chromedp.Click(chromedp.CSS(`[data-testid=scale-button]`)))
		b.wait(t, 10*time.Second, chromedp.WaitVisible(chromedp.CSS(`[data-testid=confirm-dialog][open]`)))
		b.wait(t, 10*time.Second, chromedp.Click(chromedp.CSS(`[data-testid=confirm-button]`)))
		waitFor(t, 30*time.Second, "the web group scaled to 1", func() bool {
			g, err := e.client.Group(context.Background(), "web")
			return err == nil && g.Desired == 1
		})
		b.checkConsole(t, "scale web")
		// Run a document with an approve step, then approve it, each
		// with the confirmation.
		b.load(t, "#/run/gate", `[data-testid=run-button]`)
		b.wait(t, 10*time.Second, chromedp.Click(chromedp.CSS(`[data-testid=run-button]`)))
		b.wait(t, 10*time.Second, chromedp.WaitVisible(chromedp.CSS(`[data-testid=confirm-dialog][open]`)))
		b.wait(t, 10*time.Second, chromedp.Click(chromedp.CSS(`[data-testid=confirm-button]`)))
		b.waitJS(t, 30*time.Second, `!!document.querySelector("[data-testid=approve-button]")`)
		b.screenshot(t, "execution-waiting")
		b.wait(t, 10*time.Second, chromedp.Click(chromedp.CSS(`[data-testid=approve-button]`)))
		b.wait(t, 10*time.Second, chromedp.WaitVisible(chromedp.CSS(`[data-testid=confirm-dialog][open]`)))
		b.wait(t, 10*time.Second, chromedp.Click(chromedp.CSS(`[data-testid=confirm-button]`)))
		b.waitJS(t, 30*time.Second, `(document.querySelector("[data-testid=execution-status]") || {}).textContent === "Success"`)
		b.screenshot(t, "execution-approved")
		b.checkConsole(t, "run and approve gate")
	})

	t.Run("CrashHealsLive", func(t *testing.T) {
		// A pet with a process: on a loaded machine a health check may
		// have timed out and the pet be restarting.
		var pet wire.Instance
		waitFor(t, 30*time.Second, "an InService pet with a pid", func() bool {
			for _, in := range e.live() {
				if in.Group == "pet" && in.State == "InService" && in.Pid != 0 {
					pet = in
					return true
				}
			}
			return false
		})
		b.load(t, "#/groups/pet", `[data-testid=instance-row]`)
		// Only rows newer than those on the page when it loaded count.
		b.eval(t, `window.autohealMarker = "same page";
			window.autohealSeq = Math.max(0, ...[...document.querySelectorAll("[data-testid=event-row]")].map((r) => Number(r.dataset.seq)))`)
		if err := syscall.Kill(pet.Pid, syscall.SIGKILL); err != nil {
			t.Fatalf("kill %d: %v", pet.Pid, err)
		}
		for _, typ := range []string{"instance.exit", "instance.heal"} {
			b.waitJS(t, 40*time.Second, `[...document.querySelectorAll("[data-testid=event-row]")].some((r) =>
				Number(r.dataset.seq) > window.autohealSeq && r.textContent.includes(`+strconv.Quote(typ)+`))`)
		}
		b.requireSamePage(t)
		b.screenshot(t, "crash-healed")
		b.checkConsole(t, "group pet after a crash")

		// The heal is an incident too, shown live on the overview; its
		// page has the heal's timeline.
		var healed wire.Instance
		waitFor(t, 30*time.Second, "the pet back InService", func() bool {
			for _, in := range e.live() {
				if in.Group == "pet" && in.State == "InService" && in.Pid != 0 && in.Pid != pet.Pid {
					healed = in
					return true
				}
			}
			return false
		})
		b.load(t, "#/", `[data-testid=group-row]`)
		b.eval(t, `window.autohealMarker = "same page";
			window.autohealIncidents = new Set([...document.querySelectorAll("[data-testid=incident-row]")].map((r) => r.dataset.id))`)
		// Its process now: a loaded machine may have restarted it again
		// while the page loaded.
		waitFor(t, 30*time.Second, "the pet InService with a process", func() bool {
			for _, in := range e.live() {
				if in.Group == "pet" && in.State == "InService" && in.Pid != 0 {
					healed = in
					return true
				}
			}
			return false
		})
		if err := syscall.Kill(healed.Pid, syscall.SIGKILL); err != nil {
			t.Fatalf("kill %d: %v", healed.Pid, err)
		}
		b.waitJS(t, 40*time.Second, `[...document.querySelectorAll("[data-testid=incident-row]")].some((r) => !window.autohealIncidents.has(r.dataset.id))`)
		b.requireSamePage(t)
		id := b.evalString(t, `[...document.querySelectorAll("[data-testid=incident-row]")].find((r) => !window.autohealIncidents.has(r.dataset.id)).dataset.id`)
		b.load(t, "#/incidents/"+id, `[data-testid=incident-timeline]`)
		for _, typ := range []string{"detected", "fenced", "launched", "healthy"} {
			b.waitJS(t, 20*time.Second, `!!document.querySelector("[data-testid=timeline-entry][data-type=`+typ+`]")`)
		}
		b.screenshot(t, "heal-incident")
		b.checkConsole(t, "heal incident")
	})
}

// browser is one headless Chromium tab and what its console said.
type browser struct {
	ctx       context.Context // the tab's
	base      string          // the controller's http://host:port
	artifacts string

	mu      sync.Mutex
	console []string // errors and exceptions not yet reported
	marks   int      // written by checkConsole, to know it has read up to them
}

func newBrowser(t *testing.T, chromium, base string, extra ...chromedp.ExecAllocatorOption) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox, // the tests may run as root, where the sandbox refuses to start
		chromedp.DisableGPU,
		chromedp.WindowSize(1366, 768),
	)
	opts = append(opts, extra...)
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	b := &browser{ctx: ctx, base: base, artifacts: artifactDir(t)}
	// Start the browser with a context without a timeout: the first Do
	// binds the browser's life to its context.
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		acancel()
		t.Fatalf("start chromium: %v", err)
	}
	messages := chromedp.Console(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type != chromedp.ConsoleError && !m.IsException() {
				continue
			}
			where := m.URL
			if where != "" {
				where = fmt.Sprintf(" (%s:%d:%d)", m.URL, m.Line+1, m.Column+1)
			}
			b.mu.Lock()
			b.console = append(b.console, m.String()+where)
			b.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		cancel()
		acancel()
		wg.Wait()
	})
	return b
}

// artifactDir is where the screenshots go.
func artifactDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if a := os.Getenv("AUTOHEAL_ARTIFACTS"); a != "" {
		dir = filepath.Join(a, "ui")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("screenshots in %s", dir)
	return dir
}

// signIn signs the dashboard in with the controller's local admin token,
// as the operator on its host does: the sign-in page says where the file
// is.
func (b *browser) signIn(t *testing.T, e *env) {
	t.Helper()
	b.wait(t, 20*time.Second, chromedp.Navigate(b.base+"/ui/#/"))
	b.wait(t, 20*time.Second, chromedp.WaitVisible(chromedp.CSS(`[data-testid=token-form]`)))
	if hint := b.evalString(t, `document.querySelector("[data-testid=token-hint]").textContent`); !strings.Contains(hint, filepath.Join(e.stateDir, "api-token")) {
		t.Errorf("the sign-in page does not say where the local admin token is: %q", hint)
	}
	b.screenshot(t, "sign-in")
	b.wait(t, 10*time.Second, chromedp.SetValue(chromedp.CSS(`[data-testid=token-input]`), e.token))
	b.wait(t, 10*time.Second, chromedp.Click(chromedp.CSS(`[data-testid=token-submit]`)))
	b.wait(t, 20*time.Second, chromedp.WaitReady(chromedp.CSS(`[data-testid=connection-status][data-state=live]`)))
	// The calls made while signed out were refused: those 401s are
	// expected, anything else is not.
	b.checkConsole(t, "sign-in", "status of 401")
}

// wait runs one action with a timeout.
func (b *browser) wait(t *testing.T, timeout time.Duration, a chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, timeout)
	defer cancel()
	if err := chromedp.Do(ctx, a); err != nil {
		b.screenshot(t, "failure")
		t.Fatalf("%v (console: %q)", err, b.takeConsole())
	}
}

// load opens a page with a fresh document (a change of the hash alone
// would not reload it), and waits until the selector is rendered and the
// event stream is live.
func (b *browser) load(t *testing.T, hash, ready string) {
	t.Helper()
	b.wait(t, 10*time.Second, chromedp.Navigate("about:blank"))
	b.wait(t, 20*time.Second, chromedp.Navigate(b.base+"/ui/"+hash))
	b.wait(t, 20*time.Second, chromedp.WaitReady(chromedp.CSS(ready)))
	b.wait(t, 20*time.Second, chromedp.WaitReady(chromedp.CSS(`[data-testid=connection-status][data-state=live]`)))
}

// waitJS waits until the expression is true in the page.
func (b *browser) waitJS(t *testing.T, timeout time.Duration, js string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, timeout)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](js, chromedp.WithPollingInterval(100*time.Millisecond))); err != nil {
		b.screenshot(t, "failure")
		t.Fatalf("waiting for %s: %v (console: %q)", js, err, b.takeConsole())
	}
}

func (b *browser) eval(t *testing.T, js string) {
	t.Helper()
	b.wait(t, 10*time.Second, chromedp.Evaluate[chromedp.Void](js))
}

func (b *browser) evalString(t *testing.T, js string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	r, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
	if err != nil {
		t.Fatalf("evaluate %s: %v", js, err)
	}
	return r
}

func (b *browser) attr(t *testing.T, sel, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	r, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS(sel), name))
	if err != nil {
		t.Fatalf("attribute %s of %s: %v", name, sel, err)
	}
	return r.Value
}

// requireSamePage fails when the page was reloaded since the marker was
// set: what it shows must have come through the event stream.
func (b *browser) requireSamePage(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	got, err := chromedp.Run(ctx, chromedp.Evaluate[string](`window.autohealMarker || ""`))
	if err != nil {
		t.Fatal(err)
	}
	if got != "same page" {
		t.Fatal("the page was reloaded: the update did not come live")
	}
}

// screenshot writes the whole page to the artifact dir as NAME.png.
func (b *browser) screenshot(t *testing.T, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100: PNG
	if err != nil {
		t.Errorf("screenshot %s: %v", name, err)
		return
	}
	if err := os.WriteFile(filepath.Join(b.artifacts, name+".png"), png, 0o644); err != nil {
		t.Errorf("screenshot %s: %v", name, err)
	}
}

func (b *browser) takeConsole() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.console
	b.console = nil
	return c
}

// checkConsole fails on any console error or uncaught exception since the
// last check, but those that contain one of expected. Messages arrive on
// their own stream, after the command that caused them has returned: the
// check writes a mark of its own on the console and waits for it, and the
// stream keeps the page's order, so every message the page wrote before
// is in by then.
func (b *browser) checkConsole(t *testing.T, page string, expected ...string) {
	t.Helper()
	b.marks++
	mark := fmt.Sprintf("[autoheal test mark %d]", b.marks)
	b.eval(t, fmt.Sprintf("console.error(%q)", mark))
	isMark := func(m string) bool { return strings.Contains(m, mark) }
	waitFor(t, 10*time.Second, "the console to catch up with the page", func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return slices.ContainsFunc(b.console, isMark)
	})
	var c []string
	for _, m := range slices.DeleteFunc(b.takeConsole(), isMark) {
		if !slices.ContainsFunc(expected, func(e string) bool { return strings.Contains(m, e) }) {
			c = append(c, m)
		}
	}
	if len(c) > 0 {
		t.Errorf("console errors on %s:\n%s", page, strings.Join(c, "\n"))
	}
}

// writeDocsScreenshot writes the README's picture of the overview,
// docs/dashboard.png, the size of a laptop screen. It is written when
// missing, or again with AUTOHEAL_UPDATE_SCREENSHOT=1, so that a test run
// does not change a tracked file each time.
func writeDocsScreenshot(t *testing.T, b *browser) {
	t.Helper()
	p := filepath.Join(moduleRoot(), "docs", "dashboard.png")
	if _, err := os.Stat(p); err == nil && os.Getenv("AUTOHEAL_UPDATE_SCREENSHOT") == "" {
		return
	}
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Errorf("screenshot for the README: %v", err)
		return
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s", p)
}
