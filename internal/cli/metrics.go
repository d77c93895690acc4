package cli

import (
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/autoheal/autoheal/internal/api"
	"github.com/autoheal/autoheal/internal/api/wire"
)

// metricsCmd puts, gets and lists metrics, like CloudWatch's
// put-metric-data, get-metric-statistics and list-metrics.
func metricsCmd(e *env) *cobra.Command {
	var namespace, metric string
	list := func(cmd *cobra.Command, _ []string) error {
		resp, err := e.client().ListMetrics(cmd.Context(), namespace, metric)
		if err != nil {
			return err
		}
		if e.json() {
			return e.printJSON(resp)
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAMESPACE\tMETRIC\tDIMENSIONS\tUNIT\tLAST\tBYTES")
		for _, m := range resp.Metrics {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\n", m.Namespace, m.MetricName, dash(dimString(m.Dimensions)), dash(m.Unit),
				m.Last.Local().Format(time.DateTime), m.Bytes)
		}
		tw.Flush()
		fmt.Fprintf(e.stdout, "%d series, %d bytes (at most %d series; resolution %s, retention %s)\n",
			resp.Series, resp.Bytes, resp.MaxSeries, resp.Resolution, resp.Retention)
		return nil
	}
	cmd := &cobra.Command{
		Use:   "metrics",
		Short: "Put, get and list metrics (CloudWatch's PutMetricData and GetMetricStatistics)",
		Long: `Put datapoints into the controller's metric store, get statistics over periods
(Average, Sum, Minimum, Maximum, SampleCount, percentiles like p99), and list
the series with their memory. Without a subcommand, list.

Inside an instance, 'metrics put' sends the instance's identity
(AUTOHEAL_INSTANCE_ID) and reaches the controller through
AUTOHEAL_METADATA_URL when neither --addr nor AUTOHEAL_ADDR is given: the
datums get an InstanceId dimension unless they have one. It sends the
instance's credential (AUTOHEAL_INSTANCE_TOKEN), which may push only the
instance's own metrics unless its group has api_role operator.`,
		Args: cobra.NoArgs,
		RunE: list,
	}
	cmd.Flags().StringVar(&namespace, "namespace", "", "list only this namespace")
	cmd.Flags().StringVar(&metric, "metric", "", "list only this metric name")
	listCmd := &cobra.Command{
		Use:   "list",
		Short: "List series with their unit, newest datapoint and memory",
		Args:  cobra.NoArgs,
		RunE:  list,
	}
	listCmd.Flags().StringVar(&namespace, "namespace", "", "list only this namespace")
	listCmd.Flags().StringVar(&metric, "metric", "", "list only this metric name")
	cmd.AddCommand(metricsPutCmd(e), metricsGetCmd(e), listCmd)
	return cmd
}

func metricsPutCmd(e *env) *cobra.Command {
	var dims []string
	var unit, timestamp, instance string
	cmd := &cobra.Command{
		Use:   "put NAMESPACE METRIC VALUE...",
		Short: "Put a datapoint (several values make one datum with Values)",
		Example: `  autoheal metrics put App QueueDepth 12 --dimension Queue=jobs
  autoheal metrics put App Latency 12.5 14 80 --unit Milliseconds --timestamp -30s`,
		Args: cobra.MinimumNArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			d := wire.Datum{MetricName: args[1], Unit: unit}
			for _, s := range args[2:] {
				v, err := strconv.ParseFloat(s, 64)
				if err != nil {
					return &exitError{ExitConfig, fmt.Errorf("value %q is not a number", s)}
				}
				d.Values = append(d.Values, v)
			}
			if len(d.Values) == 1 {
				d.Value, d.Values = d.Values[0], nil
			}
			var err error
			if d.Dimensions, err = parseDimensions(dims); err != nil {
				return err
			}
			if timestamp != "" {
				if d.Timestamp, err = wire.ParseTime(timestamp, time.Now()); err != nil {
					return &exitError{ExitConfig, fmt.Errorf("--timestamp: %w", err)}
				}
			}
			instanceAddr(cmd, e)
			resp, err := e.client().PutMetricData(cmd.Context(), instance, wire.PutRequest{Namespace: args[0], MetricData: []wire.Datum{d}})
			if err != nil {
				return err
			}
			if e.json() {
				return e.printJSON(resp)
			}
			n := max(len(d.Values), 1)
			fmt.Fprintf(e.stdout, "stored %d value%s of %s %s\n", n, plural(n), args[0], args[1])
			return nil
		},
	}
	cmd.Flags().StringArrayVarP(&dims, "dimension", "d", nil, "dimension Name=Value (repeat for several)")
	cmd.Flags().StringVar(&unit, "unit", "", "CloudWatch unit: Seconds, Milliseconds, Bytes, Count, Percent, Count/Second, ...")
	cmd.Flags().StringVar(&timestamp, "timestamp", "", "when: RFC 3339, Unix seconds, or -DURATION before now (default now)")
	cmd.Flags().StringVar(&instance, "instance", os.Getenv("AUTOHEAL_INSTANCE_ID"), "push as this instance: adds InstanceId unless given (env AUTOHEAL_INSTANCE_ID)")
	return cmd
}

func metricsGetCmd(e *env) *cobra.Command {
	var dims []string
	var stats, period, since, until, unit string
	cmd := &cobra.Command{
		Use:   "get NAMESPACE METRIC",
		Short: "Get statistics of one series over periods",
		Long: `Get statistics of the series with exactly the dimensions given, one row per
period that has data. Periods start at multiples of --period; --since and
--until are RFC 3339, Unix seconds, or durations before now.`,
		Example: `  autoheal metrics get App Latency -d InstanceId=i-0abc --statistics Average,p99 --period 1m --since 1h`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := parseDimensions(dims)
			if err != nil {
				return err
			}
			var names []string
			for _, s := range strings.Split(stats, ",") {
				if s = strings.TrimSpace(s); s != "" {
					if err := wire.CheckStatistic(s); err != nil {
						return &exitError{ExitConfig, fmt.Errorf("--statistics: %s", strings.TrimPrefix(err.Error(), "invalid: "))}
					}
					names = append(names, s)
				}
			}
			if len(names) == 0 {
				return &exitError{ExitConfig, fmt.Errorf("--statistics: give at least one")}
			}
			q := api.StatisticsQuery{Namespace: args[0], MetricName: args[1], Dimensions: d, Period: period,
				StartTime: relative(since), EndTime: relative(until), Statistics: names, Unit: unit}
			res, err := e.client().MetricStatistics(cmd.Context(), q)
			if err != nil {
				return err
			}
			if e.json() {
				return e.printJSON(res)
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintf(tw, "TIME\t%s\tUNIT\t\n", strings.Join(names, "\t"))
			for _, dp := range res.Datapoints {
				row := []string{dp.Timestamp.Local().Format(time.DateTime)}
				for _, n := range names {
					row = append(row, formatStat(dp, n))
				}
				fmt.Fprintf(tw, "%s\t%s\t\n", strings.Join(row, "\t"), dash(dp.Unit))
			}
			tw.Flush()
			if len(res.Datapoints) == 0 {
				fmt.Fprintln(e.stderr, "no data: check the namespace, the metric name and every dimension (all of a series' dimensions must be given)")
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVarP(&dims, "dimension", "d", nil, "dimension Name=Value (repeat; give all of the series')")
	cmd.Flags().StringVar(&stats, "statistics", strings.Join(wire.DefaultStatistics, ","), "comma list of Average, Sum, Minimum, Maximum, SampleCount, pNN")
	cmd.Flags().StringVar(&period, "period", "1m", "period: a duration (1m) or seconds, a multiple of the store's resolution")
	cmd.Flags().StringVar(&since, "since", "1h", "start: a duration before now (1h), RFC 3339 or Unix seconds")
	cmd.Flags().StringVar(&until, "until", "", "end (exclusive): like --since (default now, its period included)")
	cmd.Flags().StringVar(&unit, "unit", "", "only a series with this unit")
	return cmd
}

// relative turns a duration (1h) into the API's "before now" (-1h) and
// leaves other times as they are.
func relative(s string) string {
	if _, err := time.ParseDuration(s); err == nil {
		return "-" + s
	}
	return s
}

func parseDimensions(ss []string) ([]wire.Dimension, error) {
	var out []wire.Dimension
	for _, s := range ss {
		d, err := wire.ParseDimension(s)
		if err != nil {
			return nil, &exitError{ExitConfig, fmt.Errorf("--dimension: %w", err)}
		}
		out = append(out, d)
	}
	return out, nil
}

// instanceAddr points the client at the controller that launched this
// instance when no address was given: its metadata URL is
// http://API/v1/instances/ID/metadata.
func instanceAddr(cmd *cobra.Command, e *env) {
	if f := cmd.Flag("addr"); f != nil && f.Changed || os.Getenv("AUTOHEAL_ADDR") != "" {
		return
	}
	if base, _, ok := strings.Cut(os.Getenv("AUTOHEAL_METADATA_URL"), "/v1/instances/"); ok && base != "" {
		e.addr = base
	}
}

func dimString(ds []wire.Dimension) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = d.Name + "=" + d.Value
	}
	return strings.Join(parts, ",")
}

func formatStat(dp wire.Datapoint, name string) string {
	var p *float64
	switch name {
	case wire.Average:
		p = dp.Average
	case wire.Sum:
		p = dp.Sum
	case wire.Minimum:
		p = dp.Minimum
	case wire.Maximum:
		p = dp.Maximum
	case wire.SampleCount:
		p = dp.SampleCount
	default:
		if v, ok := dp.ExtendedStatistics[name]; ok {
			p = &v
		}
	}
	if p == nil {
		return "-"
	}
	return formatValue(*p)
}

// formatValue prints a statistic with up to 3 decimals, or in exponent
// form when very large or small.
func formatValue(v float64) string {
	if a := math.Abs(v); a != 0 && (a >= 1e9 || a < 1e-3) {
		return strconv.FormatFloat(v, 'g', 4, 64)
	}
	s := strconv.FormatFloat(v, 'f', 3, 64)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	if s == "-0" {
		s = "0"
	}
	return s
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
