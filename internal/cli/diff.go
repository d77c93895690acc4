package cli

import (
	"fmt"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/autoheal/autoheal/internal/api/wire"
)

// diffCmd prints what reloading a config file would do, like terraform
// plan: the running controller loads and checks the file and compares it
// with what it runs.
func diffCmd(e *env) *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "diff [--config FILE]",
		Short: "Show what reloading a config file would do: what starts, stops, changes in place, and which instances are replaced and why",
		Long: `Show what reloading a config file would do. The controller loads and checks the
file as at start (errors name FILE:LINE:COL) and compares it with the config it runs:
groups added and removed (with their instances), instances to be replaced (a changed
launch template, volumes, addresses or parameters) and why, capacities set, and what
changes in place (health checks, alarms, channels, windows, load balancers...).
Without --config, the controller's own file as it is now. Needs an admin credential
(the controller reads the file).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if path != "" {
				abs, err := filepath.Abs(path)
				if err != nil {
					return err
				}
				path = abs
			}
			p, err := e.client().Plan(cmd.Context(), path)
			if err != nil {
				return err
			}
			if e.json() {
				return e.printJSON(p)
			}
			printPlan(e, p)
			return nil
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "", "config file (YAML); default the controller's own")
	return cmd
}

func printPlan(e *env, p wire.Plan) {
	if len(p.Changes) == 0 {
		fmt.Fprintf(e.stdout, "%s: no change\n", p.Path)
		return
	}
	fmt.Fprintf(e.stdout, "%s: %d change(s)\n", p.Path, len(p.Changes))
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tOBJECT\tFIELDS\tINSTANCES\tWHY")
	for _, c := range p.Changes {
		fields, ins := strings.Join(c.Fields, ","), strings.Join(c.Instances, ",")
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.Kind, c.Object, dash(fields), dash(ins), c.Why)
	}
	tw.Flush()
}
