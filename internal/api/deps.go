package api

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/autoheal/autoheal/internal/alarm"
	"github.com/autoheal/autoheal/internal/api/wire"
	"github.com/autoheal/autoheal/internal/config"
	"github.com/autoheal/autoheal/internal/group"
	"github.com/autoheal/autoheal/internal/lb"
	"github.com/autoheal/autoheal/internal/maintenance"
	"github.com/autoheal/autoheal/internal/metrics"
	"github.com/autoheal/autoheal/internal/refresh"
	"github.com/autoheal/autoheal/internal/remediation"
	"github.com/autoheal/autoheal/internal/runbook"
	"github.com/autoheal/autoheal/internal/store"
)

// The API's view of the controller: each dependency is the few methods
// the handlers call, declared here where they are used, so that a handler
// can be tested (and fuzzed) over a stand-in and the controller's
// components need not know the API exists. The compile-time guards below
// keep the real components satisfying them.

// Group is one instance group (*group.Group).
type Group interface {
	Name() string
	Config() config.Group
	Snapshot() group.Snapshot
	Parameters() map[string]string
	Instance(id string) (store.Instance, bool)
	Scale(ctx context.Context, min, max, desired *int) (group.Snapshot, error)
	Terminate(ctx context.Context, id string, decrement bool) error
	Restart(ctx context.Context, id string) error
}

// Journal is the durable store as the API reads it (*store.Store): the
// instance records, the event journal and its live feed, and the counts
// the Prometheus exposition reports.
type Journal interface {
	Instance(ctx context.Context, id string) (store.Instance, error)
	Instances(ctx context.Context, group string, withTerminated bool) ([]store.Instance, error)
	Events(ctx context.Context, f store.EventFilter) ([]store.Event, error)
	Subscribe(buffer int) (<-chan store.Event, func())
	Append(ctx context.Context, evs ...store.Event) ([]store.Event, error)
	CountIncidents(ctx context.Context) (map[string]int, error)
	CountExecutions(ctx context.Context) (map[string]int, error)
}

// TargetGroup is one target group of the load balancer (*lb.TargetGroup).
type TargetGroup interface {
	Health() lb.Health
	Register(id, addr string, weight int) error
	Deregister(id string) (<-chan struct{}, error)
}

// Balancer is the load balancer (*lb.Balancer, through TargetGroupsOf).
type Balancer interface {
	TargetGroups() []lb.Health
	TargetGroup(name string) (TargetGroup, error)
}

// Runbooks runs executions (*runbook.Engine).
type Runbooks interface {
	Start(ctx context.Context, document string, params map[string]string, origin string) (string, error)
	Get(ctx context.Context, id string) (runbook.Execution, error)
	List(ctx context.Context, limit int) ([]runbook.Execution, error)
	Cancel(ctx context.Context, id string) error
	Approve(ctx context.Context, id string, a runbook.Approval) error
	// Changed returns a channel closed at the execution's next change,
	// or nil when it is not running here (it will not change).
	Changed(id string) <-chan struct{}
}

// Documents are the runbook documents (*runbook.Library).
type Documents interface {
	List() []runbook.Summary
	Get(name string) (*runbook.Document, error)
}

// Windows are the maintenance windows (*maintenance.Scheduler).
type Windows interface {
	Windows() []maintenance.WindowStatus
	Next(name string, n int) ([]maintenance.Window, error)
	RunNow(ctx context.Context, name string) (string, error)
}

// Metrics is the metric store (*metrics.Store).
type Metrics interface {
	Limits() metrics.Options
	Put(namespace string, data []metrics.Datum) []error
	Statistics(q metrics.Query) (metrics.Result, error)
	Series() []metrics.SeriesInfo
}

// Incidents are remediation's incidents (*remediation.Manager).
type Incidents interface {
	List(ctx context.Context, limit int) ([]remediation.Incident, error)
	Get(ctx context.Context, id string) (remediation.Incident, error)
}

// StateDir is the state dir's health (*store.Store).
type StateDir interface {
	Dir() string
	Health() store.Health
}

// Refresher runs instance refreshes (*refresh.Refresher).
type Refresher interface {
	Start(ctx context.Context, group string, s refresh.Settings) (refresh.Status, error)
	Get(ctx context.Context, group string) (refresh.Status, error)
	Cancel(ctx context.Context, group string) (refresh.Status, error)
}

// Alarms are the alarm states (*alarm.Manager).
type Alarms interface {
	Statuses() []alarm.Status
}

var (
	_ Group     = (*group.Group)(nil)
	_ Journal   = (*store.Store)(nil)
	_ StateDir  = (*store.Store)(nil)
	_ Runbooks  = (*runbook.Engine)(nil)
	_ Documents = (*runbook.Library)(nil)
	_ Windows   = (*maintenance.Scheduler)(nil)
	_ Metrics   = (*metrics.Store)(nil)
	_ Incidents = (*remediation.Manager)(nil)
	_ Alarms    = (*alarm.Manager)(nil)
	_ Refresher = (*refresh.Refresher)(nil)
)

// TargetGroupsOf adapts the load balancer to Balancer; nil (no load
// balancers configured) gives nil.
func TargetGroupsOf(b *lb.Balancer) Balancer {
	if b == nil {
		return nil
	}
	return lbBalancer{b}
}

type lbBalancer struct{ b *lb.Balancer }

func (l lbBalancer) TargetGroups() []lb.Health { return l.b.TargetGroups() }

// LoadBalancers passes the configuration through, for the AWS endpoint.
func (l lbBalancer) LoadBalancers() []config.LoadBalancer { return l.b.LoadBalancers() }

func (l lbBalancer) TargetGroup(name string) (TargetGroup, error) {
	tg, err := l.b.TargetGroup(name)
	if err != nil {
		// A nil *lb.TargetGroup in the interface would not be nil.
		return nil, err
	}
	return tg, nil
}

// Deps are what the handlers serve from. Every component but Journal is
// optional: its endpoints answer 404 (or an empty list) without it. Leave
// an absent component nil, not a nil pointer in the interface.
type Deps struct {
	Journal Journal
	Groups  []Group
	// LogFiles returns an instance's current stdout and stderr log paths.
	LogFiles func(id string) (stdout, stderr string)
	Version  string
	Logger   *slog.Logger
	Balancer Balancer
	Windows  Windows
	// Runbooks and Documents serve documents and executions.
	Runbooks  Runbooks
	Documents Documents
	Metrics   Metrics
	Incidents Incidents
	Alarms    Alarms
	// StateDir says whether the state dir takes writes, for status and
	// /metrics. Optional.
	StateDir StateDir
	// Alertmanager takes a webhook payload and returns how many alerts it
	// took; nil disables the receiver.
	Alertmanager func(context.Context, alarm.AlertmanagerPayload) (int, error)
	// Tokens are the configured API tokens (config auth.tokens).
	Tokens []config.Token
	// Credentials are the controller's own: its local admin token and the
	// key of the instances' credentials. Nil accepts only Tokens.
	Credentials *Credentials
	// Hosts are the names, besides loopback names and IP addresses, that
	// requests may carry in Host (config api.hosts and the listen
	// address's name).
	Hosts []string
	// Debug, when set, is served under /debug/ to admins only (Go's
	// profiler, --pprof).
	Debug http.Handler
	// Forward, on a cluster's follower, sends every authorized request to
	// the leader (forward.go).
	Forward *Forwarding
	// PeerKey, on a cluster's leader, lets followers forward requests
	// signed with it.
	PeerKey []byte
	// Plan, when set, says what reloading the config file at path (""
	// for the controller's own) would do; an error wrapping ErrBadConfig
	// is the file's fault.
	Plan func(ctx context.Context, path string) (wire.Plan, error)
	// Refresh runs instance refreshes (*refresh.Refresher). Optional.
	Refresh Refresher
	// AWS, when set, serves the AWS-compatible endpoint and the
	// instances' metadata service (aws.go).
	AWS AWSEndpoint
}
