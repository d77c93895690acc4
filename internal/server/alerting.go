package server

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/autoheal/autoheal/internal/alarm"
	"github.com/autoheal/autoheal/internal/config"
	"github.com/autoheal/autoheal/internal/group"
	"github.com/autoheal/autoheal/internal/lb"
	"github.com/autoheal/autoheal/internal/metrics"
	"github.com/autoheal/autoheal/internal/notify"
	"github.com/autoheal/autoheal/internal/remediation"
	"github.com/autoheal/autoheal/internal/runbook"
	"github.com/autoheal/autoheal/internal/store"
)

// alerting is the loop from a metric to a fixed instance: the metrics
// store, the alarms that read it, the incidents they open (remediation
// with runbooks) and the channels that tell people.
type alerting struct {
	cfg       *config.Config
	log       *slog.Logger
	metrics   *metrics.Store
	notifier  *notify.Notifier
	alarms    *alarm.Manager
	incidents *remediation.Manager
	groups    []*group.Group
	bal       *lb.Balancer
	// stop ends every goroutine of alerting; wg waits for them: the
	// built-in metrics ticker, the heal tracker and alarm actions waiting
	// for a maintenance window.
	stop      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
	st        *store.Store
	// busy reports an instance a maintenance window works on; alarm
	// actions on it wait. Nil: none.
	busy func(instanceID string) bool
}

func newAlerting(cfg *config.Config, st *store.Store, stateDir string, eng *runbook.Engine, lib *runbook.Library,
	groups []*group.Group, bal *lb.Balancer, log *slog.Logger) (*alerting, error) {
	a := &alerting{cfg: cfg, log: log, groups: groups, bal: bal, st: st, stop: make(chan struct{})}
	journal := func(ctx context.Context, ev store.Event) error { _, err := st.Append(ctx, ev); return err }
	ms, err := metrics.New(metrics.Options{
		Resolution: cfg.Metrics.Resolution.D(),
		Retention:  cfg.Metrics.Retention.D(),
		MaxSeries:  cfg.Metrics.MaxSeries,
		Path:       filepath.Join(stateDir, "metrics.snapshot"),
		Logger:     log,
	})
	if err != nil {
		return nil, err
	}
	a.metrics = ms
	var specs []notify.ChannelSpec
	for _, c := range cfg.Channels {
		specs = append(specs, notify.ChannelSpec{
			Name: c.Name, Type: c.Type, URL: c.URLValue(), Secret: c.SecretValue(), RoutingKey: c.RoutingKeyValue(),
			Timeout: c.Timeout.D(), MaxAttempts: c.MaxAttempts,
		})
	}
	if a.notifier, err = notify.New(st, specs, notify.Options{Logger: log, Journal: journal}); err != nil {
		ms.Close()
		return nil, err
	}
	a.incidents = remediation.New(remediation.Deps{
		Store: st, Runner: eng, Document: lib.Get,
		Notify: func(ctx context.Context, channels []string, m notify.Message) error {
			return a.notifier.SendAll(ctx, channels, m)
		},
		State: func(key string) string {
			if a.alarms == nil {
				return ""
			}
			return a.alarms.State(key)
		},
		GroupOf: func(id string) string {
			if g := groupOf(groups, id); g != nil {
				return g.Name()
			}
			return ""
		},
		Logger: log,
	})
	if a.alarms, err = alarm.NewManager(cfg, alarm.Deps{Metrics: ms, Journal: journal, OnChange: a.onChange, Logger: log}); err != nil {
		a.close()
		return nil, err
	}
	return a, nil
}

// run resumes open incidents and starts the alarms and the built-in
// metrics.
func (a *alerting) run(ctx context.Context) {
	if err := a.incidents.Resume(ctx); err != nil {
		a.log.Warn("resume incidents", "err", err)
	}
	a.alarms.Run()
	// Crash healing opens incidents too: their timeline is the journal's
	// fenced, launched, attached and healthy steps.
	hctx, cancel := context.WithCancel(context.Background())
	a.wg.Add(2)
	go func() {
		defer a.wg.Done()
		<-a.stop
		cancel()
	}()
	go func() {
		defer a.wg.Done()
		a.incidents.Heals().Run(hctx, a.st)
	}()
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		t := time.NewTicker(a.cfg.Metrics.Resolution.D())
		defer t.Stop()
		for {
			a.builtins(time.Now())
			select {
			case <-a.stop:
				return
			case <-t.C:
			}
		}
	}()
}

// close stops in order: nothing new is evaluated, incidents stop where
// they are (the next controller resumes them), deliveries stop, metrics
// are written to disk.
func (a *alerting) close() {
	a.closeOnce.Do(func() {
		close(a.stop)
		// Alarms first: no transition starts an action goroutine after
		// the wait below.
		if a.alarms != nil {
			a.alarms.Close()
		}
		a.wg.Wait()
		a.incidents.Close()
		a.notifier.Close()
		a.metrics.Close()
	})
}

// onChange runs an alarm's actions for its new state.
func (a *alerting) onChange(t alarm.Transition) {
	ctx := context.Background()
	var actions []config.Action
	switch t.To {
	case alarm.Alarm:
		actions = t.Alarm.Actions.Alarm
	case alarm.OK:
		actions = t.Alarm.Actions.OK
		a.incidents.Resolved(t.Key, t.Reason)
	default:
		actions = t.Alarm.Actions.InsufficientData
	}
	inst := t.Dimensions[config.DimensionInstanceID]
	for _, act := range actions {
		switch {
		case act.Notify != "":
			ev := notify.EventTrigger
			sev := notify.SeverityError
			if t.To == alarm.OK {
				ev, sev = notify.EventResolve, notify.SeverityInfo
			}
			m := notify.Message{Key: "alarm/" + t.Key, Event: ev, Severity: sev, Source: "autoheal",
				Summary: fmt.Sprintf("%s is %s: %s", t.Key, t.To, t.Reason), Instance: inst,
				Details: map[string]any{"alarm": t.Alarm.Name, "from": t.From.String(), "to": t.To.String(), "dimensions": t.Dimensions}}
			if err := a.notifier.Send(ctx, act.Notify, m); err != nil {
				a.log.Warn("alarm notify", "alarm", t.Key, "channel", act.Notify, "err", err)
			}
		case act.Remediate != nil:
			r := act.Remediate
			params := map[string]string{}
			for k, v := range r.Parameters {
				params[k] = strings.NewReplacer("{{ TARGET_ID }}", inst, "{{TARGET_ID}}", inst).Replace(v)
			}
			spec := &remediation.Spec{Runbook: r.Runbook, MaxAttempts: r.MaxAttempts, VerifyTimeout: r.VerifyTimeout.D(),
				RetryPause: r.RetryPause.D(), Escalate: r.Escalate, Parameters: params}
			tr := remediation.Trigger{Source: "alarm", Alarm: t.Alarm.Name, Key: t.Key, Reason: t.Reason,
				Namespace: t.Alarm.Namespace, Metric: t.Alarm.Metric, Dimensions: t.Dimensions}
			if _, err := a.incidents.Open(ctx, tr, spec, r.Escalate); err != nil {
				a.log.Warn("open incident", "alarm", t.Key, "err", err)
			}
		case act.Restart != "" || act.Replace != "":
			g := groupOf(a.groups, inst)
			if g == nil {
				a.log.Warn("alarm action: no such instance", "alarm", t.Key, "instance", inst)
				continue
			}
			restart := act.Restart != ""
			do := func() {
				var err error
				if restart {
					err = g.Restart(ctx, inst)
				} else {
					err = g.Terminate(ctx, inst, false)
				}
				if err != nil {
					a.log.Warn("alarm action", "alarm", t.Key, "instance", inst, "err", err)
				}
			}
			if a.busy == nil || !a.busy(inst) {
				do()
				continue
			}
			a.log.Info("alarm action waits for a maintenance window working on the instance", "alarm", t.Key, "instance", inst)
			a.wg.Add(1)
			go func() {
				defer a.wg.Done()
				a.afterMaintenance(inst, do)
			}()
		}
	}
}

// alertmanager takes Alertmanager's webhook: firing alerts open incidents
// (remediated by their route's runbook, or escalated), resolved ones
// resolve them.
func (a *alerting) alertmanager(ctx context.Context, p alarm.AlertmanagerPayload) (int, error) {
	return alarm.Receive(ctx, a.cfg.Alertmanager, p, func(ctx context.Context, act alarm.AlertAction) error {
		if !act.Firing {
			a.incidents.Resolved(act.Key, "resolved in Alertmanager")
			return nil
		}
		tr := remediation.Trigger{Source: "alertmanager", Alarm: act.Name, Key: act.Key, Reason: act.Reason, Dimensions: map[string]string{}}
		for k, v := range act.Labels {
			tr.Dimensions[k] = v
		}
		if act.InstanceID != "" {
			tr.Dimensions[config.DimensionInstanceID] = act.InstanceID
		}
		var spec *remediation.Spec
		if act.Route != nil && act.Route.Runbook != "" {
			spec = &remediation.Spec{Runbook: act.Route.Runbook, MaxAttempts: config.DefaultRemediateAttempts,
				VerifyTimeout: config.DefaultVerifyTimeout.D(), RetryPause: config.DefaultRetryPause.D(), Escalate: act.Escalate}
		}
		_, err := a.incidents.Open(ctx, tr, spec, act.Escalate)
		return err
	})
}

// builtins puts the controller's own metrics: per instance whether it is
// healthy (Autoheal/Instance Healthy, 1 or 0), per target group its host
// counts (Autoheal/LoadBalancer), and the controller's counts
// (Autoheal/Controller).
func (a *alerting) builtins(now time.Time) {
	var inst []metrics.Datum
	inService, live := 0, 0
	for _, g := range a.groups {
		for _, in := range g.Snapshot().Instances {
			if in.State == group.Terminated {
				continue
			}
			live++
			up := 0.0
			if in.State == group.InService && in.Health != "unhealthy" {
				up = 1
				inService++
			}
			inst = append(inst, metrics.Datum{MetricName: "Healthy", Timestamp: now, Value: up,
				Dimensions: []metrics.Dimension{{Name: "Group", Value: in.Group}, {Name: "InstanceId", Value: in.ID}}})
		}
	}
	for i := 0; i < len(inst); i += 1000 {
		a.metrics.Put("Autoheal/Instance", inst[i:min(i+1000, len(inst))])
	}
	var lbd []metrics.Datum
	for _, h := range a.bal.TargetGroups() {
		dims := []metrics.Dimension{{Name: "TargetGroup", Value: h.Name}}
		lbd = append(lbd,
			metrics.Datum{MetricName: "HealthyHostCount", Dimensions: dims, Timestamp: now, Value: float64(h.Metrics.HealthyHostCount), Unit: "Count"},
			metrics.Datum{MetricName: "UnHealthyHostCount", Dimensions: dims, Timestamp: now, Value: float64(h.Metrics.UnHealthyHostCount), Unit: "Count"},
			metrics.Datum{MetricName: "TargetResponseTime", Dimensions: dims, Timestamp: now, Value: h.Metrics.TargetResponseTime, Unit: "Seconds"},
		)
	}
	if len(lbd) > 0 {
		a.metrics.Put("Autoheal/LoadBalancer", lbd)
	}
	a.metrics.Put("Autoheal/Controller", []metrics.Datum{
		{MetricName: "Instances", Timestamp: now, Value: float64(live), Unit: "Count"},
		{MetricName: "InServiceInstances", Timestamp: now, Value: float64(inService), Unit: "Count"},
	})
}

// afterMaintenance runs do once no maintenance window works on the
// instance (or drops it when the controller stops).
func (a *alerting) afterMaintenance(inst string, do func()) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for a.busy(inst) {
		select {
		case <-a.stop:
			return
		case <-t.C:
		}
	}
	do()
}
