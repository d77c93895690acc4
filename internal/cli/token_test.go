package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/autoheal/autoheal/internal/api"
	"github.com/autoheal/autoheal/internal/config"
)

func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Main(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestTokenNew(t *testing.T) {
	code, out, errs := runCLI(t, "token", "new", "ops-laptop", "--role", "operator", "-o", "json")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var got NewTokenOutput
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(got.Token, "ah_"))
	if !strings.HasPrefix(got.Token, "ah_") || err != nil || len(raw) != 32 {
		t.Fatalf("token %q: want ah_ and 32 bytes of base64url (%v)", got.Token, err)
	}
	if got.Name != "ops-laptop" || got.Role != "operator" || got.SHA256 != api.HashToken(got.Token) {
		t.Fatalf("output %+v", got)
	}
	// Two tokens are never the same.
	_, out2, _ := runCLI(t, "token", "new", "x", "-o", "json")
	if strings.Contains(out2, got.Token) {
		t.Fatal("token new printed the same token twice")
	}
}

// TestTokenNewConfigLine checks that the line token new prints is valid
// config as printed, and never holds the token itself.
func TestTokenNewConfigLine(t *testing.T) {
	code, out, errs := runCLI(t, "token", "new", "grafana", "--role", "viewer")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var tok, line string
	for _, l := range strings.Split(out, "\n") {
		switch t := strings.TrimSpace(l); {
		case strings.HasPrefix(t, "ah_"):
			tok = t
		case strings.HasPrefix(t, "- {name:"):
			line = l
		}
	}
	if tok == "" || line == "" || strings.Contains(line, tok) {
		t.Fatalf("output:\n%s", out)
	}
	cfg, err := config.Parse("mem.yaml", []byte("groups:\n  - name: pet\n    launch: {command: /bin/sh}\nauth:\n  tokens:\n"+line+"\n"))
	if err != nil {
		t.Fatalf("the printed line is not valid config: %v\n%s", err, line)
	}
	if want := (config.Token{Name: "grafana", Role: "viewer", SHA256: api.HashToken(tok)}); cfg.Auth.Tokens[0] != want {
		t.Fatalf("config token %+v, want %+v", cfg.Auth.Tokens[0], want)
	}
}

func TestTokenNewBad(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"bad role", []string{"token", "new", "x", "--role", "root"}, "--role \"root\""},
		{"bad name", []string{"token", "new", "Ops Laptop"}, "token name"},
		{"no name", []string{"token", "new"}, "accepts 1 arg"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := runCLI(t, tt.args...)
			if code == ExitOK || !strings.Contains(errs, tt.want) || strings.Contains(out, "ah_") {
				t.Fatalf("exit %d, stdout %q, stderr %q; want failure with %q", code, out, errs, tt.want)
			}
		})
	}
}

func TestTokenHash(t *testing.T) {
	tests := []struct {
		name, in, want string
		ok             bool
	}{
		{"plain", "ah_abc", api.HashToken("ah_abc"), true},
		{"echo newline", "ah_abc\n", api.HashToken("ah_abc"), true},
		{"crlf", "ah_abc\r\n", api.HashToken("ah_abc"), true},
		{"empty", "", "", false},
		{"blank", " \n", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			cmd := tokenCmd(&env{stdout: &out, stderr: &errb, output: "table"})
			cmd.SetArgs([]string{"hash"})
			cmd.SetIn(strings.NewReader(tt.in))
			cmd.SetOut(&errb)
			cmd.SetErr(&errb)
			err := cmd.Execute()
			if (err == nil) != tt.ok {
				t.Fatalf("err %v, want ok %v", err, tt.ok)
			}
			if got := strings.TrimSpace(out.String()); got != tt.want {
				t.Fatalf("hash %q, want %q", got, tt.want)
			}
		})
	}
}

// TestTokenFlag checks --token and AUTOHEAL_TOKEN against a real API with
// tokens configured.
func TestTokenFlag(t *testing.T) {
	const tok = "ah_cli-test-token"
	h := api.New(api.Deps{Logger: slog.New(slog.DiscardHandler),
		Tokens: []config.Token{{Name: "cli", Role: config.RoleViewer, SHA256: api.HashToken(tok)}}})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	t.Cleanup(h.Close)

	t.Setenv("AUTOHEAL_TOKEN", "")
	if code, _, errs := runCLI(t, "--addr", srv.URL, "status"); code == ExitOK || !strings.Contains(errs, "unauthorized") {
		t.Fatalf("no token: exit %d, %s", code, errs)
	}
	if code, _, errs := runCLI(t, "--addr", srv.URL, "--token", tok, "status"); code != ExitOK {
		t.Fatalf("--token: exit %d, %s", code, errs)
	}
	t.Setenv("AUTOHEAL_TOKEN", tok)
	if code, _, errs := runCLI(t, "--addr", srv.URL, "status"); code != ExitOK {
		t.Fatalf("AUTOHEAL_TOKEN: exit %d, %s", code, errs)
	}
	// The flag wins over the environment.
	if code, _, errs := runCLI(t, "--addr", srv.URL, "--token", "ah_wrong", "status"); code == ExitOK || !strings.Contains(errs, "unknown token") {
		t.Fatalf("--token over env: exit %d, %s", code, errs)
	}
	// --help never shows the token from the environment.
	if _, out, _ := runCLI(t, "--help"); strings.Contains(out, tok) {
		t.Fatal("--help printed AUTOHEAL_TOKEN")
	}
}
