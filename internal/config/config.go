package config

import (
	"os"
	"path/filepath"
)

// The file as a whole: Config holds one field per feature, each defined,
// defaulted and checked in its own file (see doc.go). Validate fills every
// feature's defaults, then runs every feature's checks, in the order of
// Config's fields.

// Config is the whole autoheal.yaml file. A Config returned by Load or
// Parse has every default filled in (a zero value in the file means "the
// default") and absolute Launch.Command and Launch.Workdir paths.
type Config struct {
	// Groups are the instance groups autoheal keeps alive. At least one.
	Groups []Group `yaml:"groups"`
	// LoadBalancers put listeners in front of groups' instances and static
	// targets. Default none.
	LoadBalancers []LoadBalancer `yaml:"load_balancers"`
	// MaintenanceWindows run documents on the instances of groups on a
	// schedule. Default none.
	MaintenanceWindows []MaintenanceWindow `yaml:"maintenance_windows"`
	// ScheduledActions set a group's capacity on a schedule. Default none.
	ScheduledActions []ScheduledAction `yaml:"scheduled_actions"`
	// Metrics sizes the in-memory metric store that alarms read.
	Metrics Metrics `yaml:"metrics"`
	// Channels are where notifications and escalations go. Default none.
	Channels []Channel `yaml:"channels"`
	// Alarms watch metrics and act when their state changes. Default none.
	Alarms []Alarm `yaml:"alarms"`
	// Alertmanager maps the alerts that Prometheus Alertmanager posts to
	// runbooks. Default: no route; every alert is recorded and escalated
	// to default_escalate (none).
	Alertmanager Alertmanager `yaml:"alertmanager"`
	// Auth lists the tokens the API and the UI accept. Default none: the
	// API is open to anyone who can reach it, and serve then refuses to
	// listen beyond loopback.
	Auth Auth `yaml:"auth"`
	// API configures the names the API answers to. Default: IP addresses,
	// loopback names and the listen address's name.
	API API `yaml:"api"`
	// Cluster joins autoheal on several hosts through etcd. Default: none,
	// one host.
	Cluster Cluster `yaml:"cluster"`

	// Path is the file the config was read from (not a YAML field).
	Path string `yaml:"-"`
	// Dir is the directory of Path; relative commands, workdirs and
	// scripts are resolved against it (not a YAML field).
	Dir string `yaml:"-"`

	// src remembers where each value was written, so that Validate can
	// name FILE:LINE:COL. Nil for a Config built in code.
	src *source
}

// Validate fills the defaults, resolves Launch.Command, Launch.Workdir and
// listeners' TLS files to absolute paths, and checks every value of c,
// reporting every problem, not only the first. Parse calls it; a Config
// built in code should call it too. It is idempotent.
//
// Problems are returned as *Errors: at FILE:LINE:COL for a config that came
// from Parse, else as "FILE: groups[0].launch.command: message".
func (c *Config) Validate() error {
	c.setDefaults()
	v := &validator{c: c}
	v.config()
	return v.errs.Err()
}

// setDefaults fills every zero value that means "use the default". It runs
// before validation, so that validation sees the values that will be used
// (a timeout is compared with the interval in force, not with zero), and it
// is idempotent, so Validate may run on a config that already has them.
// It does not resolve Launch.Command: that can fail, so validate does it.
// Each feature fills its own, in the order of Config's fields.
func (c *Config) setDefaults() {
	if c.Dir == "" {
		// A Config built in code: relative paths are relative to the file
		// it names, else to the working directory, as on a command line.
		if c.Path != "" {
			if abs, err := filepath.Abs(c.Path); err == nil {
				c.Dir = filepath.Dir(abs)
			}
		} else if wd, err := os.Getwd(); err == nil {
			c.Dir = wd
		}
	}
	for gi := range c.Groups {
		c.Groups[gi].setDefaults(c.Dir)
	}
	c.setLoadBalancerDefaults()
	c.setScheduleDefaults()
	c.Metrics.setDefaults()
	for i := range c.Channels {
		c.Channels[i].setDefaults()
	}
	c.setAlarmDefaults()
	c.API.AWSCredentialsFile = c.resolvePath(c.API.AWSCredentialsFile)
	c.Alertmanager.setDefaults()
	c.Cluster.setDefaults()
	c.resolveClusterPaths()
}

// config checks every feature, in the order of Config's fields. The order
// matters only for a Config built in code, whose problems have no position
// to be sorted by. portConflicts runs once every group's addresses and
// every load balancer's listeners have been seen.
func (v *validator) config() {
	v.groups()
	v.loadBalancers()
	v.portConflicts()
	v.maintenanceWindows()
	v.scheduledActions()
	v.metrics()
	v.channels()
	v.alarms()
	v.alertmanager()
	v.auth()
	v.api()
	v.cluster()
}

// resolvePath makes a path written in the file absolute, relative to the
// config file's directory. The empty path stays empty (for validate to
// report as missing).
func (c *Config) resolvePath(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.Dir, p)
}

func ptr[T any](v T) *T { return &v }
