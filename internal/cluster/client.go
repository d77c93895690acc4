package cluster

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/autoheal/autoheal/internal/config"
)

// Connect opens a client to the cluster's etcd, with its TLS and auth
// settings. It does not wait for a member to answer: the first request
// does, within its own context.
func Connect(c *config.Cluster) (*clientv3.Client, error) {
	return connect(c, c.Etcd.Endpoints)
}

// connectEach opens one client per endpoint (Lease.renewers).
func connectEach(c *config.Cluster) ([]*clientv3.Client, error) {
	var clis []*clientv3.Client
	for _, ep := range c.Etcd.Endpoints {
		cli, err := connect(c, []string{ep})
		if err != nil {
			for _, o := range clis {
				o.Close()
			}
			return nil, err
		}
		clis = append(clis, cli)
	}
	return clis, nil
}

func connect(c *config.Cluster, endpoints []string) (*clientv3.Client, error) {
	cfg := clientv3.Config{
		Endpoints:   endpoints,
		DialTimeout: c.Etcd.DialTimeout.D(),
		// gRPC checks a silent connection no sooner than every 10 s
		// whatever is asked, far beyond a 2 s lease: renewals do not rely
		// on it (Lease.renewers).
		DialKeepAliveTime:    10 * time.Second,
		DialKeepAliveTimeout: c.LeaseTTL.D(),
		Logger:               zap.NewNop(),
		RejectOldCluster:     false,
	}
	tlsCfg, err := clientTLS(&c.Etcd)
	if err != nil {
		return nil, err
	}
	cfg.TLS = tlsCfg
	if c.Etcd.Username != "" {
		b, err := os.ReadFile(c.Etcd.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("cluster.etcd.password_file: %w", err)
		}
		cfg.Username = c.Etcd.Username
		cfg.Password = strings.TrimRight(strings.SplitN(string(b), "\n", 2)[0], "\r")
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("etcd %s: %w", strings.Join(endpoints, ","), err)
	}
	return cli, nil
}

// clientTLS builds the TLS config when an endpoint is https or a
// certificate is given; nil means plain HTTP.
func clientTLS(e *config.Etcd) (*tls.Config, error) {
	https := false
	for _, ep := range e.Endpoints {
		https = https || strings.HasPrefix(ep, "https://")
	}
	if !https && e.CAFile == "" && e.CertFile == "" {
		return nil, nil
	}
	t := &tls.Config{MinVersion: tls.VersionTLS12}
	if e.CAFile != "" {
		pem, err := os.ReadFile(e.CAFile)
		if err != nil {
			return nil, fmt.Errorf("cluster.etcd.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("cluster.etcd.ca_file %s: no PEM certificate in it", e.CAFile)
		}
		t.RootCAs = pool
	}
	if e.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(e.CertFile, e.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("cluster.etcd.cert_file and key_file: %w", err)
		}
		t.Certificates = []tls.Certificate{cert}
	}
	return t, nil
}

// prefix is the root of the cluster's keys.
func prefix(c *config.Cluster) string { return "/autoheal/" + c.Name + "/" }

func configKey(c *config.Cluster) string         { return prefix(c) + "config" }
func hostKey(c *config.Cluster, h string) string { return prefix(c) + "hosts/" + h }
func hostsPrefix(c *config.Cluster) string       { return prefix(c) + "hosts/" }
func electionPrefix(c *config.Cluster) string    { return prefix(c) + "leader" }

// StateKey is the key of a leader's record under state/.
func StateKey(c *config.Cluster, name string) string { return prefix(c) + "state/" + name }
