package cli

import (
	"context"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/autoheal/autoheal/internal/cluster"
	"github.com/autoheal/autoheal/internal/config"
	"github.com/autoheal/autoheal/internal/group"
)

// Cluster commands talk to etcd directly, with the config's cluster
// section: they work from any host, and with no autoheal running.

// clusterConfig loads the config, its text and its cluster section.
func clusterConfig(path string) (*config.Config, []byte, error) {
	if path == "" {
		return nil, nil, &exitError{ExitConfig, fmt.Errorf("--config is required: the cluster section says where etcd is")}
	}
	cfg, data, err := config.LoadText(path)
	if err != nil {
		return nil, nil, err
	}
	if !cfg.Cluster.Enabled() {
		return nil, nil, &exitError{ExitConfig, fmt.Errorf("%s has no cluster section (cluster.etcd.endpoints)", path)}
	}
	return cfg, data, nil
}

// withCluster loads the config at path and runs f with it, its text and a
// client of its cluster's etcd, within 5 s.
func withCluster(ctx context.Context, path string, f func(context.Context, *config.Config, []byte, *clientv3.Client) error) (*config.Config, error) {
	cfg, data, err := clusterConfig(path)
	if err != nil {
		return nil, err
	}
	cli, err := cluster.Connect(&cfg.Cluster)
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return cfg, f(ctx, cfg, data, cli)
}

func hostsCmd(e *env) *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "hosts --config FILE",
		Short: "List the cluster's hosts: address, membership, lease left, leader",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var hosts []cluster.HostStatus
			cfg, err := withCluster(cmd.Context(), path, func(ctx context.Context, cfg *config.Config, _ []byte, cli *clientv3.Client) (err error) {
				hosts, err = cluster.Hosts(ctx, cli, &cfg.Cluster)
				return err
			})
			if err != nil {
				return err
			}
			// The instances each host runs, as the API (this host's,
			// forwarded to the leader's) reports them: on their host, or,
			// with none named, on the leader's (a group without placement,
			// docs/design.md#13-the-cluster); unknown ("-") when it does
			// not answer.
			ctx, cancel := context.WithTimeout(cmd.Context(), 5*time.Second)
			defer cancel()
			st, err := e.client().Status(ctx, false)
			for i := range hosts {
				hosts[i].Instances = -1
				if err != nil {
					continue
				}
				hosts[i].Instances = 0
				for _, in := range st.Instances {
					on := in.Host == hosts[i].Name || in.Host == "" && hosts[i].Leader
					if on && in.State != group.Terminated {
						hosts[i].Instances++
					}
				}
			}
			if e.json() {
				return e.printJSON(map[string]any{"cluster": cfg.Cluster.Name, "hosts": hosts})
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tADDRESS\tMEMBER\tLEASE LEFT\tLEADER\tINSTANCES\tPID\tSINCE")
			for _, h := range hosts {
				member, left, leader, pid, since, instances := "no", "-", "", "-", "-", "-"
				if h.Member {
					member, left, pid = "yes", h.LeaseLeft.String(), fmt.Sprint(h.PID)
					since = h.Started.Local().Format(time.DateTime)
				}
				if h.Leader {
					leader = "leader"
				}
				if h.Instances >= 0 {
					instances = fmt.Sprint(h.Instances)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", h.Name, h.Address, member, left, leader, instances, pid, since)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "", "config file (YAML) with a cluster section")
	return cmd
}

func clusterCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Manage the cluster's records in etcd",
	}
	var path, host string
	set := &cobra.Command{
		Use:   "set-config --config FILE",
		Short: "Record FILE as the cluster's config: hosts then join only with the same file",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if host == "" {
				host, _ = os.Hostname()
			}
			cfg, err := withCluster(cmd.Context(), path, func(ctx context.Context, cfg *config.Config, data []byte, cli *clientv3.Client) error {
				return cluster.SetConfig(ctx, cli, &cfg.Cluster, host, data)
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "%s: recorded as cluster %s's config\n", path, cfg.Cluster.Name)
			return nil
		},
	}
	set.Flags().StringVarP(&path, "config", "c", "", "config file (YAML) with a cluster section")
	set.Flags().StringVar(&host, "host", "", "who records it, for the record (default: this machine's host name)")
	cmd.AddCommand(set)
	return cmd
}
