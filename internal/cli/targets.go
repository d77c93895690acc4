package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/autoheal/autoheal/internal/api/wire"
)

// targetsCmd describes target health and registers or deregisters
// targets, like ELB's describe-target-health, register-targets and
// deregister-targets.
func targetsCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "targets [TARGET_GROUP]",
		Short: "Show target groups and their targets' health",
		Long: `Show every target group, or one, with each target's state (initial, healthy,
unhealthy, draining, unused), the reason for it, and the group's request metrics.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var tgs []wire.TargetGroup
			if len(args) == 1 {
				h, err := e.client().TargetHealth(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				tgs = []wire.TargetGroup{h}
			} else {
				var err error
				if tgs, err = e.client().TargetGroups(cmd.Context()); err != nil {
					return err
				}
			}
			if e.json() {
				if len(args) == 1 {
					return e.printJSON(tgs[0])
				}
				return e.printJSON(tgs)
			}
			for i, h := range tgs {
				if i > 0 {
					fmt.Fprintln(e.stdout)
				}
				printTargets(e, h)
			}
			return nil
		},
	}
	var weight int
	var wait bool
	register := &cobra.Command{
		Use:   "register TARGET_GROUP ID|HOST:PORT",
		Short: "Register a target (an instance taken out earlier, or an address)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := wire.TargetRequest{ID: args[1], Weight: weight}
			h, err := e.client().RegisterTarget(cmd.Context(), args[0], req)
			if err != nil {
				return err
			}
			if e.json() {
				return e.printJSON(h)
			}
			printTargets(e, h)
			return nil
		},
	}
	register.Flags().IntVar(&weight, "weight", 0, "weight for weighted_round_robin (default 1)")
	deregister := &cobra.Command{
		Use:   "deregister TARGET_GROUP ID",
		Short: "Deregister a target: no new requests, in-flight ones finish (draining)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			h, err := e.client().DeregisterTarget(cmd.Context(), args[0], wire.TargetRequest{ID: args[1], Wait: wait})
			if err != nil {
				return err
			}
			if e.json() {
				return e.printJSON(h)
			}
			printTargets(e, h)
			return nil
		},
	}
	deregister.Flags().BoolVar(&wait, "wait", false, "return only once the target is drained (unused)")
	cmd.AddCommand(register, deregister)
	return cmd
}

func printTargets(e *env, h wire.TargetGroup) {
	m := h.Metrics
	fmt.Fprintf(e.stdout, "target group %s (%s, %s): %d healthy, %d unhealthy; %d requests, %d target 5xx, %d balancer 5xx, %.1fms mean response\n",
		h.Name, h.Protocol, h.Algorithm, m.HealthyHostCount, m.UnHealthyHostCount,
		m.RequestCount, m.HTTPCodeTarget5XX, m.HTTPCodeELB5XX, m.TargetResponseTime*1000)
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TARGET\tADDRESS\tGROUP\tSTATE\tSINCE\tIN FLIGHT\tREASON")
	for _, t := range h.Targets {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", t.ID, t.Address, dash(t.Group), t.State,
			t.Since.Local().Format(time.TimeOnly), t.InFlight, strings.ReplaceAll(t.Reason, "\n", " "))
	}
	tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
