package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/autoheal/autoheal/internal/api"
)

// An instance running as an unprivileged user (launch.user: nobody) is a
// hostile process on the controller's host: it tries every state-changing
// call of the API with every credential it can find, and is refused;
// granted api_role operator, its own credential is enough.

// proberConfig is a victim group (root) and, when prober is set, a
// prober group run as nobody.
func proberConfig(prober, role string, calls []string) string {
	cfg := `
groups:
  - name: victim
    desired: 1
    max: 2
    launch:
      command: /bin/sleep
      args: ["600"]
      stop_timeout: 1s
`
	if prober == "" {
		return cfg
	}
	args, _ := json.Marshal(calls)
	roleLine := ""
	if role != "" {
		roleLine = "    api_role: " + role + "\n"
	}
	return cfg + `  - name: prober
    desired: 1
` + roleLine + `    launch:
      command: ` + prober + `
      args: ` + string(args) + `
      user: nobody
      workdir: /
      stop_timeout: 1s
`
}

// buildProber builds the prober where nobody may run it.
func buildProber(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "autoheal-prober")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "prober")
	cmd := exec.Command("go", "build", "-o", bin, "./internal/server/testdata/prober")
	cmd.Dir = moduleRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the prober: %v\n%s", err, out)
	}
	return bin
}

// stateChangingCalls are every route of the API that is not a read, with
// a body that would hurt the victim, its instance id and the prober's
// own placed where a route names them.
func stateChangingCalls(victim string) []string {
	bodies := map[string]string{
		"POST /v1/groups/{name}/scale":             `{"desired":0,"min":0}`,
		"POST /v1/instances/{id}/terminate":        `{"decrement":true}`,
		"POST /v1/executions":                      `{"document":"Autoheal-ReplaceInstance","parameters":{"InstanceId":"` + victim + `"}}`,
		"POST /v1/executions/{id}/approve":         `{"approver":"prober"}`,
		"POST /v1/alertmanager":                    `{"version":"4","alerts":[{"status":"firing","labels":{"alertname":"x","instance_id":"` + victim + `"}}]}`,
		"POST /v1/metrics":                         `{"Namespace":"App","MetricData":[{"MetricName":"up","Value":0,"Dimensions":[{"Name":"InstanceId","Value":"` + victim + `"}]}]}`,
		"POST /v1/target-groups/{name}/register":   `{"address":"127.0.0.1:1"}`,
		"POST /v1/target-groups/{name}/deregister": `{"id":"` + victim + `"}`,
		"POST /v1/session":                         `{"token":"TOKEN"}`,
	}
	var calls []string
	for _, p := range api.New(api.Deps{}).Patterns() {
		method, path, _ := strings.Cut(p, " ")
		if method == "GET" || method == "HEAD" {
			continue
		}
		name := "victim"
		if strings.HasPrefix(path, "/v1/target-groups/") {
			name = "web"
		} else if strings.HasPrefix(path, "/v1/windows/") {
			name = "patch"
		}
		id := victim
		if strings.HasPrefix(path, "/v1/executions/") {
			id = "exec-0000000000000000"
		}
		body := bodies[p]
		if body == "" && method == "POST" {
			body = "{}"
		}
		calls = append(calls, method+" "+strings.NewReplacer("{name}", name, "{id}", id).Replace(path)+" "+body)
	}
	return calls
}

// probe runs the prober group and returns what it found and did.
func probe(t *testing.T, role string) (*env, string, []probeAttempt, []probeFound) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("launch.user needs root: run the tests as root (test.sh does in CI)")
	}
	prober := buildProber(t)
	// The victim's id is known only once it runs: a first controller
	// starts it, and the prober's calls name it. The state dir is left
	// open to listing, as an operator may have made it: the secret files'
	// own modes must keep them.
	stateDir, err := os.MkdirTemp("", "autoheal-open-state")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(stateDir) })
	if err := os.Chmod(stateDir, 0o755); err != nil {
		t.Fatal(err)
	}
	e := startInProcess(t, writeConfig(t, proberConfig("", "", nil)), stateDir)
	var victim string
	waitFor(t, 30*time.Second, "the victim InService", func() bool {
		for _, in := range e.live() {
			if in.Group == "victim" && in.State == "InService" {
				victim = in.ID
				return true
			}
		}
		return false
	})
	e.stop()
	cfg := writeConfig(t, proberConfig(prober, role, stateChangingCalls(victim)))
	e = startInProcess(t, cfg, stateDir)
	var logs bytes.Buffer
	waitFor(t, 60*time.Second, "the prober's PROBE DONE", func() bool {
		logs.Reset()
		e.client.Logs(context.Background(), api.LogsQuery{Group: "prober", Stream: "stdout", Tail: 100000}, &logs)
		return strings.Contains(logs.String(), "PROBE DONE")
	})
	var attempts []probeAttempt
	var looked []probeFound
	sc := bufio.NewScanner(&logs)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		_, line, _ := strings.Cut(sc.Text(), " ") // the instance id prefix
		var a probeAttempt
		if json.Unmarshal([]byte(line), &a) == nil && a.Method != "" {
			attempts = append(attempts, a)
		}
		var f struct{ Found []probeFound }
		if json.Unmarshal([]byte(line), &f) == nil && f.Found != nil {
			looked = f.Found
		}
	}
	return e, victim, attempts, looked
}

type probeAttempt struct {
	Method, Path, Cred, Body string
	Status                   int
}

type probeFound struct{ Source, Err string }

// TestUnprivilegedInstanceIsRefused: everything the prober tries is
// refused, with whatever it found, and the victim is as it was.
func TestUnprivilegedInstanceIsRefused(t *testing.T) {
	t.Parallel()
	e, victim, attempts, looked := probe(t, "")
	before, _ := e.client.Instance(context.Background(), victim)
	calls := stateChangingCalls(victim)
	if len(attempts) < len(calls)*2 {
		t.Fatalf("%d attempts for %d calls with at least 2 credentials", len(attempts), len(calls))
	}
	// The controller made the state dir, opened to listing before it
	// started, its own again.
	if fi, err := os.Stat(e.stateDir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("state dir mode %v, %v; want 0700", fi.Mode(), err)
	}
	// The secrets stayed secret.
	for _, f := range looked {
		t.Logf("the prober looked at %s: %s", f.Source, map[bool]string{true: "read", false: f.Err}[f.Err == ""])
	}
	for _, secret := range []string{api.TokenFile, "api-instance-key"} {
		p := filepath.Join(e.stateDir, secret)
		ok := false
		for _, f := range looked {
			if f.Source == p && strings.Contains(f.Err, "permission denied") {
				ok = true
			}
		}
		if !ok {
			t.Errorf("the prober did not find %s unreadable: %+v", p, looked)
		}
	}
	creds := map[string]bool{}
	for _, a := range attempts {
		creds[a.Cred] = true
		if a.Method == "DELETE" && a.Path == "/v1/session" {
			continue // signing out clears the caller's own cookie, nothing else
		}
		if a.Status != 401 && a.Status != 403 {
			t.Errorf("%s %s with %s: %d %s, want 401 or 403", a.Method, a.Path, a.Cred, a.Status, a.Body)
		}
	}
	t.Logf("%d calls refused with %d credentials: %v", len(attempts), len(creds), keys(creds))
	// Nothing changed: the victim runs the same process, at the same
	// capacity, and no execution started.
	g, err := e.client.Group(context.Background(), "victim")
	if err != nil || g.Desired != 1 || g.Min != 0 || g.Max != 2 {
		t.Errorf("victim group: %+v, %v", g, err)
	}
	now, err := e.client.Instance(context.Background(), victim)
	if err != nil || now.State != "InService" || now.Pid != before.Pid {
		t.Errorf("victim instance: %s pid %d (was %d), %v", now.State, now.Pid, before.Pid, err)
	}
	if exs, _ := e.client.Executions(context.Background(), 10); len(exs) != 0 {
		t.Errorf("executions started: %+v", exs)
	}
}

// TestUnprivilegedInstanceWithRole: granted operator, its credential
// scales another group (the prober's first call), and the local admin
// token is still out of its reach.
func TestUnprivilegedInstanceWithRole(t *testing.T) {
	t.Parallel()
	e, _, attempts, _ := probe(t, "operator")
	var scaled bool
	for _, a := range attempts {
		if a.Cred == "instance" && a.Method == "POST" && strings.HasSuffix(a.Path, "/v1/groups/victim/scale") {
			scaled = a.Status == 200
			if !scaled {
				t.Errorf("scale with the operator instance's credential: %d %s", a.Status, a.Body)
			}
		}
		if strings.HasPrefix(a.Cred, "file:") && a.Status < 300 {
			t.Errorf("%s %s succeeded with %s", a.Method, a.Path, a.Cred)
		}
	}
	g, err := e.client.Group(context.Background(), "victim")
	if !scaled || err != nil || g.Desired != 0 {
		t.Errorf("victim group after the granted scale: %+v, %v", g, err)
	}
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
