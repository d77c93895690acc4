package server_test

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/autoheal/autoheal/internal/api"
	"github.com/autoheal/autoheal/internal/config"
	"github.com/autoheal/autoheal/internal/server"
)

const authGroup = `
groups:
  - name: web
    max: 3
    desired: 1
    launch:
      command: /bin/sleep
      args: ["600"]
      stop_timeout: 1s
`

// The tokens of these tests; the config holds only their hashes.
const (
	authViewer   = "ah_server-viewer"
	authOperator = "ah_server-operator"
)

func authConfig() string {
	return authGroup + `
auth:
  tokens:
    - {name: grafana, role: viewer, sha256: ` + api.HashToken(authViewer) + `}
    - {name: ops, role: operator, sha256: ` + api.HashToken(authOperator) + `}
`
}

// TestAuthServeRefusesOpenListen pins that serve does not listen beyond
// loopback with no tokens (remote callers would need the controller's own
// admin token): a config error naming the address, before the state dir
// is even created.
func TestAuthServeRefusesOpenListen(t *testing.T) {
	t.Parallel()
	cfg := writeConfig(t, authGroup)
	for _, listen := range []string{"0.0.0.0:0", ":0", "[::]:0", "example.com:7070"} {
		t.Run(listen, func(t *testing.T) {
			stateDir := filepath.Join(t.TempDir(), "state")
			err := server.Run(context.Background(), server.Options{ConfigPath: cfg, StateDir: stateDir, Listen: listen, Logger: newLogger(&syncBuffer{})})
			var cerrs *config.Errors
			if !errors.As(err, &cerrs) || !strings.Contains(err.Error(), listen) || !strings.Contains(err.Error(), "auth.tokens") {
				t.Fatalf("want a config error naming %s and auth.tokens, got %v", listen, err)
			}
			if _, err := os.Stat(stateDir); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("state dir written before the refusal: %v", err)
			}
		})
	}
	// The binary exits 2, as for any config error.
	stateDir := filepath.Join(t.TempDir(), "state")
	out, err := exec.Command(bins.autoheal, "serve", "--config", cfg, "--state-dir", stateDir, "--listen", "0.0.0.0:0").CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "0.0.0.0:0") {
		t.Fatalf("autoheal serve --listen 0.0.0.0:0 without tokens: %v\n%s", err, out)
	}
}

// TestAuthServeWithTokens runs a controller on every interface with tokens
// configured and drives it with the real CLI and --token.
func TestAuthServeWithTokens(t *testing.T) {
	t.Parallel()
	cfg := writeConfig(t, authConfig())
	stateDir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- server.Run(ctx, server.Options{ConfigPath: cfg, StateDir: stateDir, Listen: "0.0.0.0:0", Version: "test",
			Logger: newLogger(&syncBuffer{}), Ready: func(a net.Addr) { ready <- a }})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("server did not stop in 20s")
		}
		killInstances(t, stateDir)
	})
	var addr string
	select {
	case a := <-ready:
		addr = "127.0.0.1:" + strconv.Itoa(a.(*net.TCPAddr).Port)
	case err := <-done:
		t.Fatalf("serve with tokens on 0.0.0.0 did not start: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("server did not start in 30s")
	}

	cli := func(wantOK bool, args ...string) string {
		t.Helper()
		cmd := exec.Command(bins.autoheal, append([]string{"--addr", addr}, args...)...)
		cmd.Env = append(os.Environ(), "AUTOHEAL_TOKEN=")
		out, err := cmd.CombinedOutput()
		if (err == nil) != wantOK {
			t.Fatalf("autoheal %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	if out := cli(false, "--token", "ah_wrong", "status"); !strings.Contains(out, "unauthorized") {
		t.Fatalf("status with an unknown token:\n%s", out)
	}
	// On the controller's host, as its user, no token is needed: the CLI
	// finds the local admin token.
	if out := cli(true, "status"); !strings.Contains(out, "web") {
		t.Fatalf("status without a token, on the host:\n%s", out)
	}
	if out := cli(true, "--token", authViewer, "status"); !strings.Contains(out, "web") {
		t.Fatalf("status as viewer:\n%s", out)
	}
	if out := cli(false, "--token", authViewer, "scale", "web", "--desired", "2"); !strings.Contains(out, "forbidden") {
		t.Fatalf("scale as viewer:\n%s", out)
	}
	cli(true, "--token", authOperator, "scale", "web", "--desired", "2")

	evs, err := api.NewClientWithToken(addr, authViewer).Events(context.Background(), api.EventsQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var audits []string
	for _, ev := range evs {
		if ev.Type == "api.audit" {
			audits = append(audits, ev.Message)
		}
	}
	if len(audits) != 1 || audits[0] != "ops POST /v1/groups/web/scale -> 200" {
		t.Fatalf("audit events %q, want the operator's scale only", audits)
	}
}
