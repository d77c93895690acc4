package cli

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/autoheal/autoheal/internal/api/wire"
)

// agentCmd checks a local service every interval and pushes 1 (it
// answered 2xx) or 0, as operators do from cron on their instances.
func agentCmd(e *env) *cobra.Command {
	var url, namespace, metric, instance string
	var dims []string
	var interval, timeout time.Duration
	var once bool
	cmd := &cobra.Command{
		Use:   "agent --check URL [--namespace NS] [--metric NAME] [--interval 5s]",
		Short: "Check a service every interval and push a 0/1 uptime metric",
		Long: `Run beside a service (in an instance, or anywhere that reaches the API): every
--interval, GET --check and push --metric (1 when it answered 2xx within
--timeout, else 0) in --namespace, with the dimension InstanceId set to
--instance (default $AUTOHEAL_INSTANCE_ID) and any --dimension Name=Value.
Alarms on the metric can then remediate with a runbook. Inside an instance it
pushes with the instance's credential (AUTOHEAL_INSTANCE_TOKEN) to the
controller that launched it (from AUTOHEAL_METADATA_URL), and may push only
the instance's own metrics unless its group has api_role operator.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if url == "" {
				return &exitError{ExitConfig, fmt.Errorf("give --check URL")}
			}
			var ds []wire.Dimension
			if instance != "" {
				ds = append(ds, wire.Dimension{Name: "InstanceId", Value: instance})
			}
			for _, d := range dims {
				k, v, ok := strings.Cut(d, "=")
				if !ok || k == "" {
					return &exitError{ExitConfig, fmt.Errorf("--dimension %q: want Name=Value", d)}
				}
				ds = append(ds, wire.Dimension{Name: k, Value: v})
			}
			client := &http.Client{Timeout: timeout}
			instanceAddr(cmd, e)
			api := e.client()
			for {
				up := 0.0
				if resp, err := client.Get(url); err == nil {
					resp.Body.Close()
					if resp.StatusCode/100 == 2 {
						up = 1
					}
				}
				ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
				_, err := api.PutMetricData(ctx, instance, wire.PutRequest{Namespace: namespace, MetricData: []wire.Datum{{
					MetricName: metric, Value: up, Unit: "Count", Dimensions: ds, Timestamp: time.Now()}}})
				cancel()
				if err != nil {
					fmt.Fprintf(e.stderr, "autoheal agent: push %s: %v\n", metric, err)
				}
				if once {
					return err
				}
				select {
				case <-cmd.Context().Done():
					return nil
				case <-time.After(interval):
				}
			}
		},
	}
	f := cmd.Flags()
	f.StringVar(&url, "check", "", "URL to GET")
	f.StringVar(&namespace, "namespace", "CustomNamespace", "metric namespace")
	f.StringVar(&metric, "metric", "webapp-uptime", "metric name")
	f.StringVar(&instance, "instance", os.Getenv("AUTOHEAL_INSTANCE_ID"), "InstanceId dimension (default $AUTOHEAL_INSTANCE_ID)")
	f.StringArrayVar(&dims, "dimension", nil, "another dimension, Name=Value (repeatable)")
	f.DurationVar(&interval, "interval", 5*time.Second, "time between checks")
	f.DurationVar(&timeout, "timeout", 2*time.Second, "timeout of the check and of the push")
	f.BoolVar(&once, "once", false, "check and push once, then exit (for cron)")
	return cmd
}
