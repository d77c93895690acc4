package server

import (
	"net"
	"net/http"
	"net/http/pprof"

	"github.com/autoheal/autoheal/internal/api"
	"github.com/autoheal/autoheal/internal/config"
	"github.com/autoheal/autoheal/internal/group"
	"github.com/autoheal/autoheal/internal/lb"
	"github.com/autoheal/autoheal/internal/maintenance"
	"github.com/autoheal/autoheal/internal/runbook"
	"github.com/autoheal/autoheal/internal/store"
)

// apiDeps hands the API the controller's components. A component the
// config leaves out stays a nil interface, not a nil pointer in one: the
// API answers its endpoints 404.
func apiDeps(cfg *config.Config, opts Options, creds *api.Credentials, st *store.Store, groups []*group.Group,
	logFiles func(string) (string, string), bal *lb.Balancer, eng *runbook.Engine, lib *runbook.Library,
	sched *maintenance.Scheduler, al *alerting, addr net.Addr) api.Deps {
	d := api.Deps{
		Journal:      st,
		StateDir:     st,
		LogFiles:     logFiles,
		Version:      opts.Version,
		Logger:       opts.Logger,
		Balancer:     api.TargetGroupsOf(bal),
		Runbooks:     eng,
		Documents:    lib,
		Alertmanager: al.alertmanager,
		Tokens:       cfg.Auth.Tokens,
		Credentials:  creds,
		Hosts:        apiHosts(cfg, opts.Listen, addr),
	}
	for _, g := range groups {
		d.Groups = append(d.Groups, g)
	}
	if len(cfg.MaintenanceWindows) > 0 || len(cfg.ScheduledActions) > 0 {
		// Without either, the windows' endpoints say none are configured.
		d.Windows = sched
	}
	if al.metrics != nil {
		d.Metrics = al.metrics
	}
	if al.alarms != nil {
		d.Alarms = al.alarms
	}
	if al.incidents != nil {
		d.Incidents = al.incidents
	}
	if opts.Pprof {
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		d.Debug = mux
	}
	return d
}

// apiHosts are the names the API answers to besides IP addresses and
// loopback names: the config's api.hosts and the listen address's name
// (--listen myhost:7070), as written and as the kernel reports it.
func apiHosts(cfg *config.Config, listen string, addr net.Addr) []string {
	hosts := append([]string(nil), cfg.API.Hosts...)
	for _, a := range []string{listen, addr.String()} {
		if h, _, err := net.SplitHostPort(a); err == nil && h != "" {
			hosts = append(hosts, h)
		}
	}
	return hosts
}
