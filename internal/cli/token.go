package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/autoheal/autoheal/internal/api"
	"github.com/autoheal/autoheal/internal/config"
)

// tokenName is the rule config applies to auth.tokens[].name.
var tokenName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// NewTokenOutput is `autoheal token new -o json`.
type NewTokenOutput struct {
	Name   string `json:"name"`
	Role   string `json:"role"`
	Token  string `json:"token"`
	SHA256 string `json:"sha256"`
}

func tokenCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Make API tokens and their hashes for the config's auth.tokens",
		Long: `The API accepts the tokens listed under auth.tokens in the config, each
known only by its SHA-256: the config never holds a token in clear. (It also
accepts the controller's local admin token, STATE/api-token, which the CLI
finds by itself on the controller's host, and each instance's own
credential: give tokens to people and programs elsewhere.)

'token new' makes a token and prints the line to add to the config;
'token hash' prints the SHA-256 of a token read on stdin.`,
	}
	cmd.AddCommand(tokenNewCmd(e), tokenHashCmd(e))
	return cmd
}

func tokenNewCmd(e *env) *cobra.Command {
	var role string
	cmd := &cobra.Command{
		Use:   "new NAME",
		Short: "Print a new random token and the config line with its hash",
		Example: `  autoheal token new ops-laptop --role operator
  autoheal token new grafana --role viewer`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if !tokenName.MatchString(name) {
				return &exitError{ExitConfig, fmt.Errorf("token name %q: use lowercase letters, digits, '_' and '-', starting with a letter or digit, at most 63 characters", name)}
			}
			if !slices.Contains(config.Roles, role) {
				return &exitError{ExitConfig, fmt.Errorf("--role %q: use one of %s", role, strings.Join(config.Roles, ", "))}
			}
			tok, err := api.NewToken()
			if err != nil {
				return err
			}
			out := NewTokenOutput{Name: name, Role: role, Token: tok, SHA256: api.HashToken(tok)}
			if e.json() {
				return e.printJSON(out)
			}
			fmt.Fprintf(e.stdout, "token (shown once; give it to its user, e.g. as AUTOHEAL_TOKEN):\n  %s\n\n", out.Token)
			fmt.Fprintf(e.stdout, "add to the config under auth: tokens: (then restart autoheal serve):\n")
			fmt.Fprintf(e.stdout, "    - {name: %s, role: %s, sha256: %s}\n", out.Name, out.Role, out.SHA256)
			return nil
		},
	}
	cmd.Flags().StringVar(&role, "role", config.RoleViewer, "role of the token: viewer, operator or admin")
	return cmd
}

func tokenHashCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:     "hash",
		Short:   "Print the SHA-256 of a token read on stdin (for auth.tokens[].sha256)",
		Example: `  printf %s "$AUTOHEAL_TOKEN" | autoheal token hash`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			tok, err := readToken(cmd.InOrStdin())
			if err != nil {
				return &exitError{ExitConfig, err}
			}
			sum := api.HashToken(tok)
			if e.json() {
				return e.printJSON(map[string]string{"sha256": sum})
			}
			fmt.Fprintln(e.stdout, sum)
			return nil
		},
	}
}

// readToken reads one token from r: its first line, without surrounding
// white space (echo adds a newline the token does not have).
func readToken(r io.Reader) (string, error) {
	line, err := bufio.NewReader(io.LimitReader(r, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read token: %w", err)
	}
	tok := strings.TrimSpace(line)
	if tok == "" {
		return "", errors.New("no token on stdin: pipe the token in, e.g. printf %s \"$AUTOHEAL_TOKEN\" | autoheal token hash")
	}
	return tok, nil
}
