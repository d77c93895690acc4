package config

import (
	"cmp"
	"maps"
	"regexp"
	"slices"
	"strings"
)

// The Alertmanager receiver: which runbook each alert that Prometheus
// Alertmanager posts runs, on which instance, and whom it escalates to.

// Alertmanager configures the receiver of Prometheus Alertmanager's
// webhook (POST /v1/alertmanager): each firing alert is matched against
// Routes in order, and the first that matches says which runbook to run
// on which instance.
type Alertmanager struct {
	// Routes are tried in order; the first whose match an alert satisfies
	// handles it. Default none.
	Routes []AlertRoute `yaml:"routes"`
	// DefaultEscalate names the channels an alert that no route matches is
	// escalated to, and those of routes that name none. Default none.
	DefaultEscalate []string `yaml:"default_escalate"`
}

// AlertRoute maps the alerts whose labels match to a runbook.
type AlertRoute struct {
	// Match is a set of label names and values; an alert matches when it
	// has every one of these labels with exactly that value. At least one.
	Match map[string]string `yaml:"match"`
	// Runbook is the name of the document to run. Required; whether it
	// exists is checked when an alert arrives.
	Runbook string `yaml:"runbook"`
	// TargetLabel is the label whose value is the id of the instance the
	// runbook runs on. Default "instance_id".
	TargetLabel string `yaml:"target_label"`
	// Escalate names the channels told when the runbook fails, does not
	// exist, or the alert names no instance. Default: DefaultEscalate.
	Escalate []string `yaml:"escalate"`
}

// DefaultAlertTargetLabel is the label whose value names the instance a
// route's runbook runs on.
const DefaultAlertTargetLabel = "instance_id"

// setDefaults fills the routes' defaults: a route that names no channel
// escalates to default_escalate.
func (am *Alertmanager) setDefaults() {
	for i := range am.Routes {
		r := &am.Routes[i]
		r.TargetLabel = cmp.Or(r.TargetLabel, DefaultAlertTargetLabel)
		if len(r.Escalate) == 0 {
			r.Escalate = slices.Clone(am.DefaultEscalate)
		}
	}
}

// labelName is a Prometheus label name.
var labelName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func (v *validator) alertmanager() {
	am := &v.c.Alertmanager
	p := path{}.field("alertmanager")
	v.channelRefs(am.DefaultEscalate, p.field("default_escalate"))
	for ri := range am.Routes {
		r := &am.Routes[ri]
		rp := p.field("routes").index(ri)
		mp := rp.field("match")
		if len(r.Match) == 0 {
			v.errorf(mp, "a route needs match: at least one label and its value")
		}
		for _, k := range slices.Sorted(maps.Keys(r.Match)) {
			kp := mp.key(k)
			switch {
			case !labelName.MatchString(k):
				v.keyErrorf(kp, "label name %q: use letters, digits and _, not starting with a digit", k)
			case r.Match[k] == "":
				// Alertmanager drops labels with an empty value.
				v.errorf(kp, "label %s: an empty value never matches (Alertmanager sends no empty label)", k)
			}
		}
		// Routes are tried in order: one whose labels include all of an
		// earlier route's is never reached.
		for ei := range ri {
			earlier := am.Routes[ei].Match
			if len(earlier) == 0 || len(r.Match) == 0 {
				continue
			}
			if includes(r.Match, earlier) {
				v.keyErrorf(mp, "this route is never used: the route at %s matches every alert it matches (routes are tried in order; put the more specific one first)",
					v.where(p.field("routes").index(ei)))
				break
			}
		}
		bp := rp.field("runbook")
		switch {
		case strings.TrimSpace(r.Runbook) == "":
			v.errorf(bp, "route runbook is required: the name of the document to run")
		case !documentName(r.Runbook):
			v.errorf(bp, "runbook %q cannot name a document: %s", r.Runbook, documentNameRule)
		}
		if !labelName.MatchString(r.TargetLabel) {
			v.errorf(rp.field("target_label"), "target_label %q: use letters, digits and _, not starting with a digit", r.TargetLabel)
		}
		// A route's escalate defaults to default_escalate, whose
		// problems are reported there.
		if !slices.Equal(r.Escalate, am.DefaultEscalate) {
			v.channelRefs(r.Escalate, rp.field("escalate"))
		}
	}
}

// includes reports whether m has every label of sub with the same value.
func includes(m, sub map[string]string) bool {
	for k, want := range sub {
		if got, ok := m[k]; !ok || got != want {
			return false
		}
	}
	return true
}
