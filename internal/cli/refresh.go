package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/autoheal/autoheal/internal/api/wire"
)

// refreshCmd runs instance refreshes, as AWS's start-instance-refresh,
// describe-instance-refreshes and cancel-instance-refresh.
func refreshCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "refresh",
		Short: "Replace a group's instances one at a time (an instance refresh), see or cancel one",
		Long: `Replace every instance of a group with a new one, a few at a time, each through the
terminate path (drained by the load balancers, fenced, hooks run), keeping
--min-healthy-percentage of the desired capacity healthy (in service, passing its checks
and its target groups'). A group of one is replaced as a heal: its load balancers hold
requests while the new instance starts. The refresh is recorded: a restarted controller
takes it up.`,
	}
	var minHealthy, maxUnavailable int
	start := &cobra.Command{
		Use:   "start GROUP",
		Short: "Begin an instance refresh",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := e.client().StartRefresh(cmd.Context(), args[0], wire.RefreshRequest{MinHealthyPercentage: minHealthy, MaxUnavailable: maxUnavailable})
			return e.printRefresh(r, err)
		},
	}
	start.Flags().IntVar(&minHealthy, "min-healthy-percentage", 0, "percentage of the desired capacity kept healthy (default 90)")
	start.Flags().IntVar(&maxUnavailable, "max-unavailable", 0, "instances replaced at once (default 1)")
	status := &cobra.Command{
		Use:   "status GROUP",
		Short: "Show a group's last instance refresh",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := e.client().Refresh(cmd.Context(), args[0])
			return e.printRefresh(r, err)
		},
	}
	cancel := &cobra.Command{
		Use:   "cancel GROUP",
		Short: "Cancel an instance refresh: instances being replaced finish, no more are",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := e.client().CancelRefresh(cmd.Context(), args[0])
			return e.printRefresh(r, err)
		},
	}
	cmd.AddCommand(start, status, cancel)
	return cmd
}

func (e *env) printRefresh(r wire.Refresh, err error) error {
	if err != nil {
		return err
	}
	if e.json() {
		return e.printJSON(r)
	}
	if r.Status == "" {
		fmt.Fprintf(e.stdout, "group %s: no instance refresh yet\n", r.Group)
		return nil
	}
	fmt.Fprintf(e.stdout, "group %s: refresh %s, %d of %d replaced (min healthy %d%%, max unavailable %d), started %s\n",
		r.Group, r.Status, len(r.Replaced), r.ToReplace, r.Settings.MinHealthyPercentage, r.Settings.MaxUnavailable, r.StartedAt.Format(time.RFC3339))
	if len(r.Replaced) > 0 {
		fmt.Fprintf(e.stdout, "replaced: %s\n", strings.Join(r.Replaced, " "))
	}
	if r.Waiting != "" {
		fmt.Fprintf(e.stdout, "waiting for %s\n", r.Waiting)
	}
	if r.Reason != "" {
		fmt.Fprintf(e.stdout, "reason: %s\n", r.Reason)
	}
	return nil
}
