package cli

import (
	"cmp"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/autoheal/autoheal/internal/api"
	"github.com/autoheal/autoheal/internal/api/wire"
	"github.com/autoheal/autoheal/internal/config"
	"github.com/autoheal/autoheal/internal/server"
)

func serveCmd(e *env) *cobra.Command {
	var opts server.Options
	var level string
	cmd := &cobra.Command{
		Use:   "serve --config FILE",
		Short: "Run the controller: keep the configured groups alive and serve the API",
		Long: `Run the controller. The whole config file is validated first; nothing starts
and nothing is written unless it is valid. Instances outlive the controller:
stopping or killing 'autoheal serve' leaves them running, and the next serve
re-adopts them.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if opts.ConfigPath == "" {
				return &exitError{ExitConfig, fmt.Errorf("--config is required")}
			}
			var lv slog.Level
			if err := lv.UnmarshalText([]byte(level)); err != nil {
				return &exitError{ExitConfig, fmt.Errorf("--log-level: %w", err)}
			}
			opts.Logger = slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: lv}))
			opts.Version = Version()
			opts.StateDir = e.stateDir
			return server.Run(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVarP(&opts.ConfigPath, "config", "c", "", "config file (YAML)")
	cmd.Flags().StringVar(&opts.Listen, "listen", server.DefaultListen, "API listen address")
	cmd.Flags().StringVar(&level, "log-level", "info", "log level: debug, info, warn, error")
	cmd.Flags().BoolVar(&opts.Pprof, "pprof", false, "serve Go's profiler under /debug/pprof/ on the API address")
	cmd.Flags().StringVar(&opts.Host, "host", "", "this host's name in the config's cluster.hosts (default: the machine's host name)")
	cmd.Flags().StringVar(&opts.DocumentsDir, "documents", "", "directory of runbook documents (*.yaml, *.json; default: documents/ beside the config file, when it exists)")
	return cmd
}

func validateCmd(e *env) *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "validate --config FILE",
		Short: "Check a config file; print FILE:LINE:COL: message per problem and exit 2 if any",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if path == "" && len(args) == 1 {
				path = args[0]
			}
			if path == "" {
				return &exitError{ExitConfig, fmt.Errorf("--config is required")}
			}
			cfg, err := config.Load(path)
			if err != nil {
				return err
			}
			if e.json() {
				return e.printJSON(map[string]any{"valid": true, "file": path, "groups": len(cfg.Groups)})
			}
			fmt.Fprintf(e.stdout, "%s: valid (%d group(s), %d load balancer(s))\n", path, len(cfg.Groups), len(cfg.LoadBalancers))
			return nil
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "", "config file (YAML)")
	return cmd
}

func statusCmd(e *env) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show groups and their instances",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := e.client().Status(cmd.Context(), all)
			if err != nil {
				return err
			}
			if e.json() {
				return e.printJSON(st)
			}
			if st.State != nil && !st.State.Writable {
				// First: it is why nothing below heals.
				fmt.Fprintf(e.stdout, "state: %s; groups hold still (no launch, heal or termination), instances keep running\n\n", st.State)
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "GROUP\tSTATUS\tMIN/DESIRED/MAX\tADDRESSES")
			for _, g := range st.Groups {
				var addrs []string
				for _, a := range g.Addresses {
					addrs = append(addrs, fmt.Sprintf("%s=%s(%s)", a.Name, a.Listen, a.Mode))
				}
				status := g.Status
				if g.Reason != "" {
					status += ": " + g.Reason
				}
				fmt.Fprintf(tw, "%s\t%s\t%d/%d/%d\t%s\n", g.Name, status, g.Min, g.Desired, g.Max, strings.Join(addrs, " "))
			}
			fmt.Fprintln(tw)
			// HOST only when an instance runs on a named cluster host.
			placed := slices.ContainsFunc(st.Instances, func(in wire.Instance) bool { return in.Host != "" })
			host := func(in wire.Instance) string {
				if !placed {
					return ""
				}
				return "\t" + cmp.Or(in.Host, "(leader)")
			}
			if placed {
				fmt.Fprintln(tw, "INSTANCE\tGROUP\tSTATE\tHEALTH\tPID\tRESTARTS\tAGE\tLAST EXIT\tHOST")
			} else {
				fmt.Fprintln(tw, "INSTANCE\tGROUP\tSTATE\tHEALTH\tPID\tRESTARTS\tAGE\tLAST EXIT")
			}
			for _, in := range st.Instances {
				pid := "-"
				if in.Pid > 0 {
					pid = fmt.Sprint(in.Pid)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s%s\n", in.ID, in.Group, in.State, in.Health, pid, in.Restarts, age(in.LaunchedAt), lastExit(in.LastExit), host(in))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "include recently terminated instances")
	return cmd
}

func lastExit(s string) string {
	if s == "" {
		return "-"
	}
	var ex wire.ExitStatus
	if json.Unmarshal([]byte(s), &ex) != nil {
		return "-"
	}
	return ex.String()
}

func age(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := time.Since(t)
	switch {
	case d < time.Minute:
		return d.Round(time.Second).String()
	case d < time.Hour:
		return d.Round(time.Minute).String()
	default:
		return d.Round(time.Hour).String()
	}
}

func eventsCmd(e *env) *cobra.Command {
	var q api.EventsQuery
	var follow bool
	cmd := &cobra.Command{
		Use:   "events",
		Short: "Show the event journal (every lifecycle transition with its cause)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := e.client()
			print := func(ev wire.Event) error {
				if e.json() {
					b, err := json.Marshal(ev)
					if err != nil {
						return err
					}
					_, err = fmt.Fprintf(e.stdout, "%s\n", b)
					return err
				}
				inst := ev.Instance
				if inst == "" {
					inst = "-"
				}
				grp := ev.Group
				if grp == "" {
					grp = "-"
				}
				_, err := fmt.Fprintf(e.stdout, "%s  %-22s %-10s %-19s %s\n", ev.Time.Local().Format("2006-01-02 15:04:05.000"), ev.Type, grp, inst, ev.Message)
				return err
			}
			if follow {
				return c.FollowEvents(cmd.Context(), q, print)
			}
			evs, err := c.Events(cmd.Context(), q)
			if err != nil {
				return err
			}
			if e.json() {
				if evs == nil {
					evs = []wire.Event{}
				}
				return e.printJSON(evs)
			}
			for _, ev := range evs {
				if err := print(ev); err != nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&q.Group, "group", "", "only this group's events")
	cmd.Flags().StringVar(&q.Instance, "instance", "", "only this instance's events")
	cmd.Flags().IntVarP(&q.Limit, "limit", "n", 100, "how many of the latest events to show")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep streaming new events (-o json prints one JSON object per line)")
	return cmd
}

func logsCmd(e *env) *cobra.Command {
	var q api.LogsQuery
	cmd := &cobra.Command{
		Use:   "logs INSTANCE|GROUP",
		Short: "Show an instance's or a whole group's stdout and stderr (kept after termination)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.HasPrefix(args[0], "i-") {
				q.Instance = args[0]
			} else {
				q.Group = args[0]
			}
			return e.client().Logs(cmd.Context(), q, e.stdout)
		},
	}
	cmd.Flags().BoolVarP(&q.Follow, "follow", "f", false, "keep printing new output")
	cmd.Flags().IntVarP(&q.Tail, "tail", "n", 100, "lines from the end of each log to show first")
	cmd.Flags().StringVar(&q.Stream, "stream", "both", "stdout, stderr or both")
	return cmd
}

func terminateCmd(e *env) *cobra.Command {
	var decrement bool
	cmd := &cobra.Command{
		Use:   "terminate INSTANCE",
		Short: "Terminate an instance; the group replaces it unless --decrement",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			in, err := e.client().Terminate(cmd.Context(), args[0], decrement)
			if err != nil {
				return err
			}
			if e.json() {
				return e.printJSON(in)
			}
			what := "a replacement will be launched"
			if decrement {
				what = "desired capacity decremented"
			}
			fmt.Fprintf(e.stdout, "terminating %s (%s); %s\n", in.ID, in.Group, what)
			return nil
		},
	}
	cmd.Flags().BoolVar(&decrement, "decrement", false, "lower the group's desired capacity instead of replacing the instance")
	return cmd
}

func scaleCmd(e *env) *cobra.Command {
	var desired, min, max int
	cmd := &cobra.Command{
		Use:   "scale GROUP --desired N [--min N] [--max N]",
		Short: "Set a group's capacity; also clears an Impaired group",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var req wire.ScaleRequest
			f := cmd.Flags()
			if f.Changed("desired") {
				req.Desired = &desired
			}
			if f.Changed("min") {
				req.Min = &min
			}
			if f.Changed("max") {
				req.Max = &max
			}
			if req.Desired == nil && req.Min == nil && req.Max == nil {
				return &exitError{ExitConfig, fmt.Errorf("give --desired, --min or --max")}
			}
			g, err := e.client().Scale(cmd.Context(), args[0], req)
			if err != nil {
				return err
			}
			if e.json() {
				return e.printJSON(g)
			}
			fmt.Fprintf(e.stdout, "%s: min %d desired %d max %d (%s)\n", g.Name, g.Min, g.Desired, g.Max, g.Status)
			return nil
		},
	}
	cmd.Flags().IntVar(&desired, "desired", 0, "desired capacity")
	cmd.Flags().IntVar(&min, "min", 0, "minimum capacity")
	cmd.Flags().IntVar(&max, "max", 0, "maximum capacity")
	return cmd
}
