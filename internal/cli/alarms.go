package cli

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

func alarmsCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "alarms",
		Short: "Alarm states (OK, ALARM, INSUFFICIENT_DATA) with their reasons",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			as, err := e.client().Alarms(cmd.Context())
			if err != nil {
				return err
			}
			if e.json() {
				return e.printJSON(as)
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ALARM\tSTATE\tSINCE\tMETRIC\tCONDITION\tREASON")
			for _, a := range as {
				since := "-"
				if !a.Since.IsZero() {
					since = a.Since.Local().Format(time.TimeOnly)
				}
				cond := fmt.Sprintf("%s %s %g over %s, %d of %d", a.Statistic, a.Comparison, a.Threshold, a.Period, a.DatapointsToAlarm, a.EvaluationPeriods)
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s/%s\t%s\t%s\n", a.Key, a.State, since, a.Namespace, a.Metric, cond, a.Reason)
			}
			return tw.Flush()
		},
	}
}
