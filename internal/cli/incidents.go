package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/autoheal/autoheal/internal/api/wire"
)

func incidentsCmd(e *env) *cobra.Command {
	var limit int
	list := func(cmd *cobra.Command, args []string) error {
		incs, err := e.client().Incidents(cmd.Context(), limit)
		if err != nil {
			return err
		}
		if e.json() {
			return e.printJSON(incs)
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "INCIDENT\tSTATUS\tALARM\tINSTANCE\tATTEMPTS\tOPENED\tRECOVERED IN")
		for _, inc := range incs {
			ttr := "-"
			if inc.ResolvedAt != nil {
				ttr = time.Duration(inc.TimeToRecover * float64(time.Second)).Round(time.Millisecond).String()
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", inc.ID, inc.Status, inc.Trigger.Alarm, dash(inc.Instance),
				inc.Attempts, inc.OpenedAt.Local().Format(time.DateTime), ttr)
		}
		return tw.Flush()
	}
	cmd := &cobra.Command{
		Use:   "incidents [list|show ID]",
		Short: "Incidents: what fired, each remediation attempt with its output, and the time to recover",
		Args:  cobra.NoArgs,
		RunE:  list,
	}
	cmd.Flags().IntVarP(&limit, "limit", "n", 20, "how many")
	listCmd := &cobra.Command{Use: "list", Short: "List the newest incidents", Args: cobra.NoArgs, RunE: list}
	listCmd.Flags().IntVarP(&limit, "limit", "n", 20, "how many")
	show := &cobra.Command{
		Use:   "show ID",
		Short: "Show an incident's timeline",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			inc, err := e.client().Incident(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if e.json() {
				return e.printJSON(inc)
			}
			printIncident(e, inc)
			return nil
		},
	}
	cmd.AddCommand(listCmd, show)
	return cmd
}

func printIncident(e *env, inc wire.Incident) {
	fmt.Fprintf(e.stdout, "incident %s: %s; %s %s", inc.ID, inc.Status, inc.Trigger.Source, inc.Trigger.Alarm)
	if inc.Instance != "" {
		fmt.Fprintf(e.stdout, " on %s", inc.Instance)
	}
	if inc.ResolvedAt != nil {
		fmt.Fprintf(e.stdout, "; recovered in %s", time.Duration(inc.TimeToRecover*float64(time.Second)).Round(time.Millisecond))
	}
	fmt.Fprintln(e.stdout)
	for _, en := range inc.Timeline {
		fmt.Fprintf(e.stdout, "  %s  %-9s %s\n", en.Time.Local().Format("15:04:05.000"), en.Type, en.Message)
		if o := strings.TrimSpace(en.Output); o != "" {
			fmt.Fprintf(e.stdout, "      %s\n", strings.ReplaceAll(o, "\n", "\n      "))
		}
	}
}
