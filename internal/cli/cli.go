// Package cli implements the autoheal command line: subcommands, flags, and
// table or JSON output. Client commands talk only to the API client and
// know the controller only by the API's wire types (internal/api/wire);
// serve calls the server package, validate the config package, and
// documents validate parses documents offline with the runbook package.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/autoheal/autoheal/internal/api"
	"github.com/autoheal/autoheal/internal/config"
)

// Exit codes.
const (
	ExitOK     = 0
	ExitError  = 1
	ExitConfig = 2 // invalid configuration or usage
)

// exitError carries an exit code through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// Version returns the binary's version from its build info.
func Version() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		v := bi.Main.Version
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += " (" + s.Value[:12] + ")"
			}
		}
		if v != "" {
			return v
		}
	}
	return "(devel)"
}

// env is what every command shares.
type env struct {
	stdout, stderr io.Writer
	addr           string
	output         string
	// token is sent as a bearer token on every API call (--token, env
	// AUTOHEAL_TOKEN); empty: see credential.
	token string
	// stateDir is --state-dir: serve's state, and where client commands
	// look for the local admin token (else env AUTOHEAL_STATE_DIR).
	stateDir string
}

func (e *env) client() *api.Client { return api.NewClientWithToken(e.addr, e.credential()) }

// credential is what client commands send: --token or AUTOHEAL_TOKEN;
// else, inside an instance, its own credential (AUTOHEAL_INSTANCE_TOKEN),
// so that it acts as itself; else the local admin token of --state-dir or
// AUTOHEAL_STATE_DIR when this user may read it and the controller at
// --addr is that token's (api.LocalToken: on this host, its port held by
// the file's owner). With none, the client asks a controller on this host
// where its token is (api.Client).
func (e *env) credential() string {
	if e.token != "" {
		return e.token
	}
	if t := os.Getenv(api.InstanceTokenEnv); t != "" {
		return t
	}
	dir := e.stateDir
	if dir == "" {
		dir = os.Getenv("AUTOHEAL_STATE_DIR")
	}
	if dir != "" {
		if t, err := api.LocalToken(e.addr, dir); err == nil {
			return t
		}
	}
	return ""
}

func (e *env) json() bool { return e.output == "json" }

func (e *env) printJSON(v any) error {
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// Main runs the command line and returns the process exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	e := &env{stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:   "autoheal",
		Short: "Keep stateful pet applications alive on one host",
		Long: `autoheal keeps pet applications alive: it restarts or replaces a failed
instance and hands the replacement the same data volume and the same address.

Start the controller with 'autoheal serve --config FILE'; the other commands
talk to it over its HTTP API (--addr, default 127.0.0.1:7070). On the
controller's host they need no token: they use the local admin token the
controller keeps in its state dir, when this user may read it.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetArgs(args)
	addr := os.Getenv("AUTOHEAL_ADDR")
	if addr == "" {
		addr = "127.0.0.1:7070"
	}
	root.PersistentFlags().StringVar(&e.addr, "addr", addr, "address of the autoheal API (env AUTOHEAL_ADDR)")
	root.PersistentFlags().StringVarP(&e.output, "output", "o", "table", "output format: table or json")
	// The default is read from the environment in PersistentPreRunE, not
	// here: a flag default is printed by --help, and a token must not be.
	root.PersistentFlags().StringVar(&e.token, "token", "", "API token, sent as a bearer token (env AUTOHEAL_TOKEN; default: the local admin token, found through the controller)")
	root.PersistentFlags().StringVar(&e.stateDir, "state-dir", "", "state directory: serve keeps its state there; client commands read its api-token (env AUTOHEAL_STATE_DIR; serve's default /var/lib/autoheal as root, else ~/.local/state/autoheal)")
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		if e.token == "" {
			e.token = os.Getenv("AUTOHEAL_TOKEN")
		}
		if e.output != "table" && e.output != "json" {
			return &exitError{ExitConfig, fmt.Errorf("--output must be table or json, not %q", e.output)}
		}
		return nil
	}
	root.AddCommand(
		serveCmd(e), validateCmd(e), statusCmd(e), eventsCmd(e), logsCmd(e),
		terminateCmd(e), scaleCmd(e), targetsCmd(e), runCmd(e), executionsCmd(e), documentsCmd(e), incidentsCmd(e), alarmsCmd(e), windowsCmd(e), metricsCmd(e), agentCmd(e), tokenCmd(e), hostsCmd(e), clusterCmd(e), diffCmd(e), refreshCmd(e), versionCmd(e),
	)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &exitError{ExitConfig, err}
	})
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	var cerrs *config.Errors
	if errors.As(err, &cerrs) {
		fmt.Fprint(stderr, cerrs.Error())
		if s := cerrs.Error(); len(s) > 0 && s[len(s)-1] != '\n' {
			fmt.Fprintln(stderr)
		}
		return ExitConfig
	}
	fmt.Fprintln(stderr, "autoheal: "+err.Error())
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return ExitError
}

func versionCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of this binary (and of the server when reachable)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := map[string]string{"client": Version()}
			if v, err := e.client().Version(cmd.Context()); err == nil {
				out["server"] = v.Version
			}
			if e.json() {
				return e.printJSON(out)
			}
			fmt.Fprintf(e.stdout, "autoheal %s\n", out["client"])
			if s, ok := out["server"]; ok {
				fmt.Fprintf(e.stdout, "server   %s (%s)\n", s, e.addr)
			}
			return nil
		},
	}
}
