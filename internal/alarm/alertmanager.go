package alarm

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/autoheal/autoheal/internal/config"
)

// Alertmanager's webhook payload, version 4
// (https://prometheus.io/docs/alerting/latest/configuration/#webhook_config).
type AlertmanagerPayload struct {
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   int               `json:"truncatedAlerts"`
	Status            string            `json:"status"`
	Receiver          string            `json:"receiver"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Alerts            []Alert           `json:"alerts"`
}

// Alert is one alert of a payload.
type Alert struct {
	Status       string            `json:"status"` // firing or resolved
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// AlertAction is what the receiver asks for one alert.
type AlertAction struct {
	Firing     bool
	Key        string // one incident per alert
	Name       string // alertname
	Reason     string
	Labels     map[string]string
	InstanceID string             // from the route's target label
	Route      *config.AlertRoute // nil: no route matched
	Escalate   []string
}

// Route maps an alert to what to do, by the first route whose match
// labels all equal the alert's.
func Route(am config.Alertmanager, a Alert) AlertAction {
	act := AlertAction{
		Firing: a.Status != "resolved",
		Key:    alertKey(a),
		Name:   a.Labels["alertname"],
		Labels: a.Labels,
		Reason: firstOf(a.Annotations["summary"], a.Annotations["description"], a.Labels["alertname"]),
	}
	for i := range am.Routes {
		r := &am.Routes[i]
		ok := true
		for k, v := range r.Match {
			if a.Labels[k] != v {
				ok = false
				break
			}
		}
		if ok {
			act.Route = r
			label := r.TargetLabel
			if label == "" {
				label = "instance_id"
			}
			act.InstanceID = a.Labels[label]
			act.Escalate = r.Escalate
			if len(act.Escalate) == 0 {
				act.Escalate = am.DefaultEscalate
			}
			return act
		}
	}
	act.Escalate = am.DefaultEscalate
	return act
}

// alertKey identifies an alert across its firing and resolved
// notifications: Alertmanager's fingerprint, else its sorted labels.
func alertKey(a Alert) string {
	if a.Fingerprint != "" {
		return "alertmanager/" + a.Fingerprint
	}
	names := make([]string, 0, len(a.Labels))
	for k := range a.Labels {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("alertmanager/")
	for i, k := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k + "=" + a.Labels[k])
	}
	return b.String()
}

func firstOf(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// Receive checks a payload and applies Route to each alert, calling do
// for each. It returns how many alerts it took. The whole payload is
// checked before any alert is acted on: a refused payload did nothing.
func Receive(ctx context.Context, am config.Alertmanager, p AlertmanagerPayload, do func(context.Context, AlertAction) error) (int, error) {
	if p.Version != "4" {
		return 0, fmt.Errorf("payload version %q: only version 4 is understood", p.Version)
	}
	for i, a := range p.Alerts {
		if a.Labels["alertname"] == "" {
			return 0, fmt.Errorf("alert %d has no alertname label", i)
		}
	}
	n := 0
	for _, a := range p.Alerts {
		if err := do(ctx, Route(am, a)); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
