package api

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/autoheal/autoheal/internal/alarm"
	"github.com/autoheal/autoheal/internal/group"
	"github.com/autoheal/autoheal/internal/remediation"
	"github.com/autoheal/autoheal/internal/runbook"
)

// GET /metrics serves the controller's state in the Prometheus text
// format. Nothing is counted twice: a collector reads the groups, the load
// balancer, the alarms and the store at scrape time, so the exposition can
// never drift from what the API answers.

// scrapeTimeout bounds one scrape's reads of the store.
const scrapeTimeout = 5 * time.Second

// prometheusHandler registers the controller's collector and Go's and the
// process's on a registry of its own (no global registry: two controllers
// in one test binary must not collide) and serves it.
func (h *Handler) prometheusHandler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		newStateCollector(h.deps),
	)
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(h.deps.Logger.Handler(), slog.LevelWarn),
		// A store read that fails drops its metrics, not the whole scrape.
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4,
		Timeout:             2 * scrapeTimeout,
	})
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

// Instance labels are instance_id, not instance: Prometheus sets instance
// on every scraped series (the target), and would rename ours to
// exported_instance.
var (
	descBuildInfo        = desc("autoheal_build_info", "Always 1; the version label is the controller's version.", "version")
	descGroupDesired     = desc("autoheal_group_desired", "Desired capacity of the group (instances).", "group")
	descGroupMin         = desc("autoheal_group_min", "Minimum capacity of the group (instances).", "group")
	descGroupMax         = desc("autoheal_group_max", "Maximum capacity of the group (instances).", "group")
	descGroupImpaired    = desc("autoheal_group_impaired", "1 while the group is Impaired (launches keep failing), else 0.", "group")
	descInstances        = desc("autoheal_instances", "Instances of the group by lifecycle state (terminated ones excluded).", "group", "state")
	descInstanceHealthy  = desc("autoheal_instance_healthy", "1 if the instance is InService and not unhealthy, else 0.", "group", "instance_id")
	descInstanceRestarts = desc("autoheal_instance_restarts_total", "Restarts in place of the instance's application since it was launched.", "group", "instance_id")
	descTargetHealth     = desc("autoheal_target_health", "Always 1; the state label is the target's current state in its target group.", "target_group", "target", "state")
	descLBRequests       = desc("autoheal_lb_requests_total", "Requests the load balancer received for the target group.", "target_group")
	descLBTargetResp     = desc("autoheal_lb_target_responses_total", "Responses from targets by HTTP status class (2xx, 3xx, 4xx, 5xx).", "target_group", "code_class")
	descLBELB4xx         = desc("autoheal_lb_elb_4xx_total", "4xx responses the load balancer generated itself (not a target's).", "target_group")
	descLBELB5xx         = desc("autoheal_lb_elb_5xx_total", "5xx responses the load balancer generated itself, such as 502 and 503 when no target could answer.", "target_group")
	descLBRetries        = desc("autoheal_lb_retries_total", "Requests the load balancer retried on another target.", "target_group")
	descLBConnections    = desc("autoheal_lb_new_connections_total", "Connections accepted by tcp listeners for the target group.", "target_group")
	descLBResponseTime   = desc("autoheal_lb_target_response_seconds", "Time from a request leaving the load balancer to its target's response head arriving.", "target_group")
	descAlarmState       = desc("autoheal_alarm_state", "1 for the alarm key's current state (OK, ALARM or INSUFFICIENT_DATA), 0 for the others.", "alarm", "key", "state")
	descIncidents        = desc("autoheal_incidents", "Incidents in the store by status.", "status")
	descExecutions       = desc("autoheal_executions", "Runbook executions in the store by status.", "status")
	descStateWritable    = desc("autoheal_state_writable", "1 while the state dir takes writes; 0 while it does not (full disk, read-only file system) and groups hold still.")
)

// lifecycle are the instance states autoheal_instances always reports, so
// that a state's series exists at 0 before the first instance enters it.
var lifecycle = []string{group.Pending, group.PendingWait, group.PendingProceed, group.InService, group.Terminating, group.TerminatingWait}

var alarmStates = []string{alarm.OK.String(), alarm.Alarm.String(), alarm.InsufficientData.String()}

var incidentStatuses = []string{remediation.StatusOpen, remediation.StatusEscalated, remediation.StatusResolved}

var executionStatuses = []string{runbook.StatusPending, runbook.StatusInProgress, runbook.StatusWaiting,
	runbook.StatusSuccess, runbook.StatusFailed, runbook.StatusCancelled, runbook.StatusTimedOut}

// stateCollector is a prometheus.Collector over the controller's live
// state.
type stateCollector struct{ deps Deps }

var _ prometheus.Collector = stateCollector{}

func newStateCollector(deps Deps) stateCollector { return stateCollector{deps: deps} }

// Describe implements prometheus.Collector.
func (c stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descBuildInfo, descGroupDesired, descGroupMin, descGroupMax, descGroupImpaired,
		descInstances, descInstanceHealthy, descInstanceRestarts, descTargetHealth, descLBRequests, descLBTargetResp,
		descLBELB4xx, descLBELB5xx, descLBRetries, descLBConnections, descLBResponseTime, descAlarmState,
		descIncidents, descExecutions, descStateWritable} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c stateCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge(descBuildInfo, 1, c.deps.Version)
	if c.deps.StateDir != nil {
		gauge(descStateWritable, boolValue(c.deps.StateDir.Health().Writable))
	}
	c.collectGroups(gauge, counter)
	c.collectLB(ch, counter)
	if c.deps.Alarms != nil {
		for _, s := range c.deps.Alarms.Statuses() {
			for _, st := range alarmStates {
				gauge(descAlarmState, boolValue(s.State == st), s.Name, s.Key, st)
			}
		}
	}
	if c.deps.Journal != nil {
		ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
		defer cancel()
		counts, err := c.deps.Journal.CountIncidents(ctx)
		collectCounts(ch, descIncidents, incidentStatuses, counts, err)
		counts, err = c.deps.Journal.CountExecutions(ctx)
		collectCounts(ch, descExecutions, executionStatuses, counts, err)
	}
}

func (c stateCollector) collectGroups(gauge func(*prometheus.Desc, float64, ...string), counter func(*prometheus.Desc, int64, ...string)) {
	for _, g := range c.deps.Groups {
		s := g.Snapshot()
		gauge(descGroupDesired, float64(s.Desired), s.Name)
		gauge(descGroupMin, float64(s.Min), s.Name)
		gauge(descGroupMax, float64(s.Max), s.Name)
		gauge(descGroupImpaired, boolValue(s.Status == group.Impaired), s.Name)
		byState := map[string]int{}
		for _, st := range lifecycle {
			byState[st] = 0
		}
		for _, in := range s.Instances {
			if in.State == group.Terminated {
				continue
			}
			byState[in.State]++
			// As the built-in Autoheal/Instance Healthy metric counts it.
			gauge(descInstanceHealthy, boolValue(in.State == group.InService && in.Health != "unhealthy"), s.Name, in.ID)
			counter(descInstanceRestarts, int64(in.Restarts), s.Name, in.ID)
		}
		for st, n := range byState {
			gauge(descInstances, float64(n), s.Name, st)
		}
	}
}

func (c stateCollector) collectLB(ch chan<- prometheus.Metric, counter func(*prometheus.Desc, int64, ...string)) {
	if c.deps.Balancer == nil {
		return // no load balancers, no series
	}
	for _, h := range c.deps.Balancer.TargetGroups() {
		for _, t := range h.Targets {
			ch <- prometheus.MustNewConstMetric(descTargetHealth, prometheus.GaugeValue, 1, h.Name, t.ID, t.State)
		}
		m := h.Metrics
		counter(descLBRequests, m.RequestCount, h.Name)
		counter(descLBTargetResp, m.HTTPCodeTarget2XX, h.Name, "2xx")
		counter(descLBTargetResp, m.HTTPCodeTarget3XX, h.Name, "3xx")
		counter(descLBTargetResp, m.HTTPCodeTarget4XX, h.Name, "4xx")
		counter(descLBTargetResp, m.HTTPCodeTarget5XX, h.Name, "5xx")
		counter(descLBELB4xx, m.HTTPCodeELB4XX, h.Name)
		counter(descLBELB5xx, m.HTTPCodeELB5XX, h.Name)
		counter(descLBRetries, m.RetryCount, h.Name)
		counter(descLBConnections, m.NewConnectionCount, h.Name)
		// The buckets are cumulative with le in seconds and 0 for +Inf,
		// which is the histogram's count. The lb reports the mean, not the
		// sum, so the sum is mean × count (exact up to requests that
		// finished between the lb's loads of its counters).
		buckets := map[float64]uint64{}
		var count uint64
		for _, b := range m.ResponseTimeBuckets {
			if b.Le == 0 {
				count = uint64(b.Count)
				continue
			}
			buckets[b.Le] = uint64(b.Count)
		}
		ch <- prometheus.MustNewConstHistogram(descLBResponseTime, count, m.TargetResponseTimeSum, buckets, h.Name)
	}
}

// collectCounts reports known statuses at 0 when absent, and any other
// status the store holds.
func collectCounts(ch chan<- prometheus.Metric, d *prometheus.Desc, known []string, counts map[string]int, err error) {
	if err != nil {
		ch <- prometheus.NewInvalidMetric(d, err)
		return
	}
	statuses := append([]string(nil), known...)
	for st := range counts {
		if !slices.Contains(known, st) {
			statuses = append(statuses, st)
		}
	}
	slices.Sort(statuses[len(known):])
	for _, st := range statuses {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(counts[st]), st)
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
