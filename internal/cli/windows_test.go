package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/autoheal/autoheal/internal/api"
	"github.com/autoheal/autoheal/internal/api/wire"
	"github.com/autoheal/autoheal/internal/config"
	"github.com/autoheal/autoheal/internal/maintenance"
)

// windowsRunner stands in for the runbook executor: every execution
// succeeds at once.
type windowsRunner struct{}

func (windowsRunner) StartAs(context.Context, string, string, map[string]string, string) error {
	return nil
}
func (windowsRunner) Exists(context.Context, string) (bool, error) { return true, nil }
func (windowsRunner) Wait(context.Context, string) (string, error) {
	return maintenance.StatusSuccess, nil
}
func (windowsRunner) Cancel(context.Context, string) error { return nil }

// windowsAPI serves the real API over a scheduler with one window.
func windowsAPI(t *testing.T) string {
	t.Helper()
	cfg := &config.Config{
		Groups: []config.Group{{Name: "web", Launch: config.Launch{Command: "sh"}}},
		MaintenanceWindows: []config.MaintenanceWindow{{
			Name: "patch", Schedule: "0 3 * * SUN", TimeZone: "Europe/Paris",
			Duration: config.Duration(2 * time.Hour), Cutoff: config.Duration(30 * time.Minute),
			Targets: config.WindowTargets{Groups: []string{"web"}},
			Tasks:   []config.WindowTask{{Document: "restart"}},
		}},
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	sched, err := maintenance.New(cfg, maintenance.Deps{
		Runner:  windowsRunner{},
		Targets: func() []maintenance.Target { return []maintenance.Target{{ID: "i-01", Group: "web"}} },
		// Thursday 2 May 2024, noon UTC.
		Now:    func() time.Time { return time.Date(2024, 5, 2, 12, 0, 0, 0, time.UTC) },
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sched.Close)
	url, _ := apiServer(t, api.Deps{Windows: sched, Logger: slog.New(slog.DiscardHandler)})
	return url
}

func windowsCLI(t *testing.T, addr string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Main(context.Background(), append([]string{"--addr", addr}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

func TestWindowsCommands(t *testing.T) {
	addr := windowsAPI(t)

	for _, args := range [][]string{{"windows"}, {"windows", "list"}} {
		code, out, errOut := windowsCLI(t, addr, args...)
		if code != ExitOK {
			t.Fatalf("%v: exit %d: %s", args, code, errOut)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 2 || !strings.HasPrefix(lines[0], "WINDOW") {
			t.Fatalf("%v:\n%s", args, out)
		}
		for _, want := range []string{"patch", "0 3 * * SUN", "Europe/Paris", "2h", "30m", "2024-05-05 03:00 +02:00"} {
			if !strings.Contains(lines[1], want) {
				t.Errorf("%v: %q lacks %q", args, lines[1], want)
			}
		}
	}

	code, out, _ := windowsCLI(t, addr, "windows", "next", "patch", "-n", "2")
	want := "START                    CUTOFF                   END\n" +
		"2024-05-05 03:00 +02:00  2024-05-05 04:30 +02:00  2024-05-05 05:00 +02:00\n" +
		"2024-05-12 03:00 +02:00  2024-05-12 04:30 +02:00  2024-05-12 05:00 +02:00\n"
	if code != ExitOK || out != want {
		t.Errorf("next: exit %d\n%s\nwant\n%s", code, out, want)
	}
	code, out, _ = windowsCLI(t, addr, "-o", "json", "windows", "next", "patch")
	var next []wire.Window
	if err := json.Unmarshal([]byte(out), &next); code != ExitOK || err != nil || len(next) != 5 {
		t.Errorf("next -o json: exit %d, %v\n%s", code, err, out)
	}
	if code, _, errOut := windowsCLI(t, addr, "windows", "next", "patch", "-n", "0"); code != ExitConfig || !strings.Contains(errOut, "-n must be from 1 to 100") {
		t.Errorf("next -n 0: exit %d: %s", code, errOut)
	}

	code, out, _ = windowsCLI(t, addr, "-o", "json", "windows", "run", "patch")
	var run wire.RunWindowResponse
	if err := json.Unmarshal([]byte(out), &run); code != ExitOK || err != nil || !strings.HasPrefix(run.RunID, "mw-") {
		t.Fatalf("run -o json: exit %d, %v\n%s", code, err, out)
	}
	// The run ends at once; the listing then shows it as the last one.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, out, _ = windowsCLI(t, addr, "windows")
		if strings.Contains(out, "last "+run.RunID+" Success") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the run never showed as ended:\n%s", out)
		}
		time.Sleep(5 * time.Millisecond)
	}
	code, out, _ = windowsCLI(t, addr, "-o", "json", "windows")
	var ws []wire.WindowStatus
	if err := json.Unmarshal([]byte(out), &ws); code != ExitOK || err != nil || len(ws) != 1 || ws[0].Last == nil || ws[0].Last.Succeeded != 1 {
		t.Errorf("list -o json: exit %d, %v\n%s", code, err, out)
	}

	if code, out, _ := windowsCLI(t, addr, "windows", "run", "patch"); code != ExitOK || !strings.Contains(out, "maintenance window patch: run mw-") {
		t.Errorf("run: exit %d: %s", code, out)
	}
	if code, _, errOut := windowsCLI(t, addr, "windows", "run", "nope"); code != ExitError || !strings.Contains(errOut, `maintenance window "nope"`) {
		t.Errorf("run nope: exit %d: %s", code, errOut)
	}
}

func TestWindowsWithoutWindows(t *testing.T) {
	url, _ := apiServer(t, api.Deps{Logger: slog.New(slog.DiscardHandler)})
	code, _, errOut := windowsCLI(t, url, "windows")
	if code != ExitError || !strings.Contains(errOut, "no maintenance windows configured") {
		t.Errorf("exit %d: %s", code, errOut)
	}
}
