package cli

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/autoheal/autoheal/internal/api/wire"
)

// windowTime shows a window's times in the window's own zone, as the
// server sends them, with the offset: a schedule reads in that zone.
const windowTime = "2006-01-02 15:04 -07:00"

// windowsCmd lists maintenance windows, shows when one opens next and runs
// one now, like SSM's describe-maintenance-windows,
// describe-maintenance-window-schedule and a manual execution.
func windowsCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "windows",
		Short: "Show maintenance windows; run one now",
		Long: `Show every maintenance window with its schedule, its next start, and its run in
progress or its last run. A window runs its tasks (documents) on its targets at
most max_concurrency at once, stops starting them when more than max_errors
failed or at its cutoff, and cancels what still runs when it closes.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return listWindows(cmd, e) },
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List maintenance windows (the default)",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return listWindows(cmd, e) },
	}, windowsNextCmd(e), windowsRunCmd(e))
	return cmd
}

func listWindows(cmd *cobra.Command, e *env) error {
	ws, err := e.client().Windows(cmd.Context())
	if err != nil {
		return err
	}
	if e.json() {
		if ws == nil {
			ws = []wire.WindowStatus{}
		}
		return e.printJSON(ws)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "WINDOW\tSCHEDULE\tTIME ZONE\tDURATION\tCUTOFF\tNEXT START\tRUN")
	for _, w := range ws {
		next := "-"
		if w.Next != nil {
			next = w.Next.Start.Format(windowTime)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", w.Name, w.Schedule, w.TimeZone, w.Duration, w.Cutoff, next, runSummary(w))
	}
	return tw.Flush()
}

func windowsNextCmd(e *env) *cobra.Command {
	var n int
	next := &cobra.Command{
		Use:   "next NAME [-n 5]",
		Short: "Show when a window opens next: start, cutoff and end",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if n < 1 || n > 100 {
				return &exitError{ExitConfig, fmt.Errorf("-n must be from 1 to 100, not %d", n)}
			}
			ws, err := e.client().NextWindows(cmd.Context(), args[0], n)
			if err != nil {
				return err
			}
			if e.json() {
				if ws == nil {
					ws = []wire.Window{}
				}
				return e.printJSON(ws)
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "START\tCUTOFF\tEND")
			for _, w := range ws {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", w.Start.Format(windowTime), w.Cutoff.Format(windowTime), w.End.Format(windowTime))
			}
			return tw.Flush()
		},
	}
	next.Flags().IntVarP(&n, "count", "n", 5, "how many occurrences to show (1 to 100)")
	return next
}

func windowsRunCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "run NAME",
		Short: "Run a window now, whatever its schedule, for its duration from now",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := e.client().RunWindow(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if e.json() {
				return e.printJSON(wire.RunWindowResponse{RunID: id})
			}
			fmt.Fprintf(e.stdout, "maintenance window %s: run %s started; follow it with 'autoheal windows' or 'autoheal events -f'\n", args[0], id)
			return nil
		},
	}
}

// runSummary describes a window's run in progress, or its last one.
func runSummary(w wire.WindowStatus) string {
	if r := w.Running; r != nil {
		return fmt.Sprintf("running %s since %s: task %d/%d, %d target(s): %d succeeded, %d failed, %d running",
			r.ID, r.Started.Local().Format(time.TimeOnly), r.Task, r.Tasks, r.Targets, r.Succeeded, r.Failed, r.Running)
	}
	if r := w.Last; r != nil {
		ended := "-"
		if r.Ended != nil {
			ended = r.Ended.Local().Format(time.DateTime)
		}
		return fmt.Sprintf("last %s %s at %s: %d succeeded, %d failed, %d cancelled, %d not run",
			r.ID, r.Outcome, ended, r.Succeeded, r.Failed, r.Cancelled, r.NotRun)
	}
	return "-"
}
