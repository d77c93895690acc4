package cli

import (
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/autoheal/autoheal/internal/api"
)

// TestCredentialOrder: what client commands send, from the most explicit
// to the least: --token, AUTOHEAL_TOKEN, an instance's own credential
// (inside an instance it acts as itself), the local admin token of
// --state-dir or AUTOHEAL_STATE_DIR, else nothing (the client asks a
// controller on this host where its token is).
func TestCredentialOrder(t *testing.T) {
	a, err := api.LoadCredentials(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	b, err := api.LoadCredentials(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dirA := strings.TrimSuffix(a.TokenFile, "/"+api.TokenFile)
	dirB := strings.TrimSuffix(b.TokenFile, "/"+api.TokenFile)
	// A controller of this user listens here: the state dirs' tokens may go
	// to it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	here := ln.Addr().String()
	tests := []struct {
		name                        string
		flag, envToken, envInstance string
		flagDir, envDir             string
		addr                        string
		want                        string
	}{
		{name: "nothing", want: ""},
		{name: "flag wins", flag: "ah_flag", envToken: "ah_env", envInstance: "ahi_x", flagDir: dirA, want: "ah_flag"},
		{name: "env token", envToken: "ah_env", envInstance: "ahi_x", flagDir: dirA, want: "ah_env"},
		{name: "inside an instance", envInstance: "ahi_x", envDir: dirA, want: "ahi_x"},
		{name: "state dir flag", flagDir: dirA, envDir: dirB, want: a.AdminToken()},
		{name: "state dir env", envDir: dirB, want: b.AdminToken()},
		{name: "state dir unreadable", envDir: t.TempDir(), want: ""},
		{name: "state dir, remote controller", flagDir: dirA, addr: "10.1.2.3:7070", want: ""},
		{name: "state dir, nothing listening", flagDir: dirA, addr: "127.0.0.1:1", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("AUTOHEAL_INSTANCE_TOKEN", tt.envInstance)
			t.Setenv("AUTOHEAL_STATE_DIR", tt.envDir)
			addr := tt.addr
			if addr == "" {
				addr = here
			}
			e := &env{token: tt.flag, stateDir: tt.flagDir, addr: addr}
			if e.token == "" {
				e.token = tt.envToken // as PersistentPreRunE does
			}
			if got := e.credential(); got != tt.want {
				t.Fatalf("credential %q, want %q", got, tt.want)
			}
		})
	}
}

// TestCLIOnTheHost: with no token anywhere, a client command on the
// controller's host uses the local admin token the controller names; a
// token that is not this controller's is refused, not replaced.
func TestCLIOnTheHost(t *testing.T) {
	t.Setenv("AUTOHEAL_TOKEN", "")
	t.Setenv("AUTOHEAL_INSTANCE_TOKEN", "")
	t.Setenv("AUTOHEAL_STATE_DIR", "")
	url, _ := apiServer(t, api.Deps{Logger: slog.New(slog.DiscardHandler)})
	if code, out, errs := runCLI(t, "--addr", url, "-o", "json", "version"); code != ExitOK || !strings.Contains(out, `"server"`) {
		t.Fatalf("version on the host: exit %d: %s%s", code, out, errs)
	}
	other, err := api.LoadCredentials(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dir := strings.TrimSuffix(other.TokenFile, "/"+api.TokenFile)
	if code, _, errs := runCLI(t, "--addr", url, "--state-dir", dir, "status"); code == ExitOK || !strings.Contains(errs, "unknown token") {
		t.Fatalf("another controller's token: exit %d: %s", code, errs)
	}
}
