package config

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Alarms: what they watch, when they breach, and the actions they run
// (notify, remediate, restart, replace). The metric store they read is in
// metrics.go, the channels they notify in notify.go.

// Alarm comparison operators, as CloudWatch names them.
const (
	GreaterThanOrEqualToThreshold = "GreaterThanOrEqualToThreshold"
	GreaterThanThreshold          = "GreaterThanThreshold"
	LessThanThreshold             = "LessThanThreshold"
	LessThanOrEqualToThreshold    = "LessThanOrEqualToThreshold"
)

// How an alarm treats missing datapoints, as CloudWatch names it.
const (
	TreatMissing      = "missing"
	TreatBreaching    = "breaching"
	TreatNotBreaching = "notBreaching"
	TreatIgnore       = "ignore"
)

// Statistics, as CloudWatch names them; a percentile is written pNN,
// like p99 or p99.9 (see Percentile).
const (
	StatAverage     = "Average"
	StatSum         = "Sum"
	StatMinimum     = "Minimum"
	StatMaximum     = "Maximum"
	StatSampleCount = "SampleCount"
)

// DimensionAny as a dimension's value makes an alarm track one state per
// distinct value of that dimension among the series that match the rest.
const DimensionAny = "*"

// DimensionInstanceID is the dimension that names an instance, as in
// CloudWatch's EC2 metrics: restart, replace and remediate act on the
// instance it names.
const DimensionInstanceID = "InstanceId"

// Alarm watches one statistic of one metric over fixed periods and moves
// between OK, ALARM and INSUFFICIENT_DATA (a CloudWatch metric alarm).
type Alarm struct {
	// Name identifies the alarm, like a group name. Required, unique among
	// alarms.
	Name string `yaml:"name"`
	// Description is free text, shown with the alarm and in its
	// notifications. Default "".
	Description string `yaml:"description"`
	// Namespace of the metric, like "CustomNamespace" or "Autoheal/LB":
	// letters, digits and . - _ / # : or space, at most 255 characters.
	// Required.
	Namespace string `yaml:"namespace"`
	// Metric is the metric name, like "webapp-uptime": at most 255
	// printable characters. Required.
	Metric string `yaml:"metric"`
	// Dimensions select the series: every one must match. A value of "*"
	// (DimensionAny) matches any value and gives the alarm one state per
	// distinct value, as for InstanceId: "*" (one state per instance).
	// At most 30. Default none: the series without dimensions.
	Dimensions map[string]string `yaml:"dimensions"`
	// Statistic aggregates the datapoints of a period: Average, Sum,
	// Minimum, Maximum, SampleCount, or a percentile pNN (p0 to p100, up
	// to two decimals, like p99 or p99.9). Required.
	Statistic string `yaml:"statistic"`
	// Period is the length of each datapoint the alarm evaluates; a
	// multiple of metrics.resolution. Required.
	Period Duration `yaml:"period"`
	// EvaluationPeriods is N, how many of the most recent periods are
	// evaluated; 1 to 100. Default 1.
	EvaluationPeriods int `yaml:"evaluation_periods"`
	// DatapointsToAlarm is M, how many of those N must breach for ALARM;
	// 1 to EvaluationPeriods. Default: EvaluationPeriods.
	DatapointsToAlarm int `yaml:"datapoints_to_alarm"`
	// Comparison is GreaterThanOrEqualToThreshold, GreaterThanThreshold,
	// LessThanThreshold or LessThanOrEqualToThreshold: a datapoint
	// breaches when "statistic <comparison> threshold". Required.
	Comparison string `yaml:"comparison"`
	// Threshold is compared with each datapoint. Required; a pointer
	// because 0 is a threshold. See ThresholdValue.
	Threshold *float64 `yaml:"threshold"`
	// TreatMissingData is missing, breaching, notBreaching or ignore, as in
	// CloudWatch. Default missing.
	TreatMissingData string `yaml:"treat_missing_data"`
	// Actions run when the alarm enters each state. Default none.
	Actions AlarmActions `yaml:"actions"`
}

// ThresholdValue returns Threshold, 0 when it is nil (which validation
// refuses).
func (a Alarm) ThresholdValue() float64 {
	if a.Threshold == nil {
		return 0
	}
	return *a.Threshold
}

// Percentile returns the percentile a pNN statistic names (99.9 for
// "p99.9"), and false for the other statistics and for a malformed one.
func Percentile(stat string) (float64, bool) {
	if !percentileStat.MatchString(stat) {
		return 0, false
	}
	p, err := strconv.ParseFloat(stat[1:], 64)
	if err != nil || p > 100 {
		return 0, false
	}
	return p, true
}

// percentileStat is the syntax of a percentile statistic: p0 to p100 with
// at most two decimals.
var percentileStat = regexp.MustCompile(`^p(100(\.0{1,2})?|[0-9]{1,2}(\.[0-9]{1,2})?)$`)

// AlarmActions are the actions run when an alarm enters each state.
type AlarmActions struct {
	// Alarm actions run when the alarm enters ALARM.
	Alarm []Action `yaml:"alarm"`
	// OK actions run when it enters OK: notify only.
	OK []Action `yaml:"ok"`
	// InsufficientData actions run when it enters INSUFFICIENT_DATA.
	InsufficientData []Action `yaml:"insufficient_data"`
}

// Action is one action of an alarm: exactly one of its fields is set.
type Action struct {
	// Notify names a channel that is sent the state change.
	Notify string `yaml:"notify"`
	// Remediate runs a runbook on the instances the alarm's dimensions
	// name and checks that the alarm returns to OK, retrying and then
	// escalating. "remediate: {}" takes every default.
	Remediate *Remediate `yaml:"remediate"`
	// Restart restarts in place the instance the alarm's InstanceId
	// dimension names; the only value is "instance".
	Restart string `yaml:"restart"`
	// Replace replaces that instance; the only value is "instance".
	Replace string `yaml:"replace"`
}

// The value of restart and replace actions: the instance the alarm's
// InstanceId dimension names.
const ActionTargetInstance = "instance"

// Remediate runs a runbook when an alarm fires, waits for the alarm to
// return to OK, retries, and escalates when it does not.
type Remediate struct {
	// Runbook is the name of the document to run. Default: the convention
	// "<metric>#<namespace>", like "webapp-uptime#CustomNamespace".
	// Whether it exists is checked when the alarm fires: a missing
	// runbook escalates at once.
	Runbook string `yaml:"runbook"`
	// MaxAttempts is how many times the runbook is run before escalating;
	// 1 to 10. Default 3.
	MaxAttempts int `yaml:"max_attempts"`
	// VerifyTimeout is how long, after each run, the alarm has to return
	// to OK before the attempt counts as failed. Default 2m.
	VerifyTimeout Duration `yaml:"verify_timeout"`
	// RetryPause is the wait between a failed attempt and the next.
	// Default 30s.
	RetryPause Duration `yaml:"retry_pause"`
	// Escalate names the channels told, with the incident record, when
	// every attempt failed or there is no runbook. Default none (the
	// incident is only recorded).
	Escalate []string `yaml:"escalate"`
	// Parameters are passed to the runbook. In values, {{ TARGET_ID }} and
	// {{ TARGET_GROUP }} stand for the target instance's id and group, as
	// in maintenance window tasks. Default none.
	Parameters map[string]string `yaml:"parameters"`
}

// Alarm and remediation defaults; the default runbook is DefaultRunbook.
const (
	DefaultEvaluationPeriods = 1 // and datapoints_to_alarm defaults to evaluation_periods
	DefaultTreatMissingData  = TreatMissing
	DefaultRemediateAttempts = 3
	DefaultVerifyTimeout     = Duration(2 * time.Minute)
	DefaultRetryPause        = Duration(30 * time.Second)
)

// DefaultRunbook is the runbook an alarm's remediation runs when it names
// none: "<metric>#<namespace>", like "webapp-uptime#CustomNamespace".
func DefaultRunbook(metric, namespace string) string { return metric + "#" + namespace }

const (
	maxEvaluationPeriods = 100
	maxRemediateAttempts = 10
	// maxDimensions and maxNameLen are CloudWatch's limits.
	maxDimensions = 30
	maxNameLen    = 255
)

// namespaceChars are the characters CloudWatch allows in a namespace.
var namespaceChars = regexp.MustCompile(`^[A-Za-z0-9._/#: -]+$`)

// setAlarmDefaults fills the defaults of the alarms and of their
// remediations.
func (c *Config) setAlarmDefaults() {
	for ai := range c.Alarms {
		a := &c.Alarms[ai]
		a.EvaluationPeriods = cmp.Or(a.EvaluationPeriods, DefaultEvaluationPeriods)
		a.DatapointsToAlarm = cmp.Or(a.DatapointsToAlarm, a.EvaluationPeriods)
		a.TreatMissingData = cmp.Or(a.TreatMissingData, DefaultTreatMissingData)
		ap := path{}.field("alarms").index(ai).field("actions")
		for _, kind := range actionKinds(&a.Actions) {
			for i := range kind.actions {
				act := &kind.actions[i]
				// "remediate:" with nothing after it decodes as nil, like an
				// absent key; written, it asks for every default.
				if act.Remediate == nil && c.src.has(ap.field(kind.name).index(i).field("remediate")) {
					act.Remediate = &Remediate{}
				}
				if r := act.Remediate; r != nil {
					r.setDefaults(a)
				}
			}
		}
	}
}

// setDefaults fills the remediation's defaults; a is its alarm, whose
// metric and namespace name the default runbook.
func (r *Remediate) setDefaults(a *Alarm) {
	// Without a metric or a namespace there is no convention to follow;
	// validate reports what is missing, not the runbook.
	if r.Runbook == "" && a.Metric != "" && a.Namespace != "" {
		r.Runbook = DefaultRunbook(a.Metric, a.Namespace)
	}
	r.MaxAttempts = cmp.Or(r.MaxAttempts, DefaultRemediateAttempts)
	r.VerifyTimeout = cmp.Or(r.VerifyTimeout, DefaultVerifyTimeout)
	r.RetryPause = cmp.Or(r.RetryPause, DefaultRetryPause)
}

// actionKind is one of an alarm's action lists, with its YAML name.
type actionKind struct {
	name    string
	state   string // the alarm state whose entry runs them
	actions []Action
}

// actionKinds returns an alarm's action lists in file order; the slices
// share their arrays with acts.
func actionKinds(acts *AlarmActions) []actionKind {
	return []actionKind{
		{"alarm", "ALARM", acts.Alarm},
		{"ok", "OK", acts.OK},
		{"insufficient_data", "INSUFFICIENT_DATA", acts.InsufficientData},
	}
}

func (v *validator) alarms() {
	names := map[string]path{}
	for ai := range v.c.Alarms {
		a := &v.c.Alarms[ai]
		p := path{}.field("alarms").index(ai)
		v.uniqueName("alarm", a.Name, p.field("name"), names)
		v.alarmMetric(a, p)
		v.alarmRule(a, p)
		for _, kind := range actionKinds(&a.Actions) {
			kp := p.field("actions").field(kind.name)
			for i := range kind.actions {
				v.action(a, kind, &kind.actions[i], kp.index(i))
			}
		}
	}
}

// alarmMetric checks what an alarm watches: namespace, metric, dimensions
// and statistic.
func (v *validator) alarmMetric(a *Alarm, p path) {
	np := p.field("namespace")
	switch {
	case strings.TrimSpace(a.Namespace) == "":
		v.errorf(np, "namespace is required: the namespace of the metric, like CustomNamespace")
	case len(a.Namespace) > maxNameLen || !namespaceChars.MatchString(a.Namespace):
		v.errorf(np, "namespace %q: use letters, digits, spaces and . - _ / # :, at most %d characters", a.Namespace, maxNameLen)
	}
	mp := p.field("metric")
	switch {
	case strings.TrimSpace(a.Metric) == "":
		v.errorf(mp, "metric is required: the name of the metric, like webapp-uptime")
	case len(a.Metric) > maxNameLen || strings.ContainsFunc(a.Metric, unicode.IsControl):
		v.errorf(mp, "metric %q: at most %d printable characters", a.Metric, maxNameLen)
	}

	dp := p.field("dimensions")
	if len(a.Dimensions) > maxDimensions {
		v.keyErrorf(dp, "an alarm has at most %d dimensions, not %d", maxDimensions, len(a.Dimensions))
	}
	for _, k := range slices.Sorted(maps.Keys(a.Dimensions)) {
		kp, val := dp.key(k), a.Dimensions[k]
		switch {
		case strings.TrimSpace(k) == "":
			v.keyErrorf(kp, "dimension name must not be empty")
		case len(k) > maxNameLen:
			v.keyErrorf(kp, "dimension name %.20q...: at most %d characters", k, maxNameLen)
		case val == "":
			v.errorf(kp, "dimension %s needs a value, or \"*\" for one alarm state per value", k)
		case len(val) > maxNameLen:
			v.errorf(kp, "dimension %s: its value has at most %d characters", k, maxNameLen)
		}
	}

	sp := p.field("statistic")
	switch _, isPct := Percentile(a.Statistic); {
	case isPct:
	case a.Statistic == "":
		v.errorf(sp, "statistic is required: Average, Sum, Minimum, Maximum, SampleCount or a percentile like p99")
	case slices.Contains([]string{StatAverage, StatSum, StatMinimum, StatMaximum, StatSampleCount}, a.Statistic):
	default:
		v.errorf(sp, "statistic %q: must be Average, Sum, Minimum, Maximum, SampleCount or a percentile from p0 to p100, like p99 or p99.9%s",
			a.Statistic, didYouMean(a.Statistic, StatAverage, StatSum, StatMinimum, StatMaximum, StatSampleCount))
	}
}

// alarmRule checks when an alarm breaches: period, evaluation periods,
// comparison, threshold and the treatment of missing data.
func (v *validator) alarmRule(a *Alarm, p path) {
	res := v.c.Metrics.Resolution
	resOK := res >= Duration(time.Second) && res%Duration(time.Second) == 0
	resNote := ""
	if v.defaulted(path{}.field("metrics").field("resolution")) {
		resNote = " (the default)"
	}
	pp := p.field("period")
	periodOK := false
	switch {
	case a.Period == 0:
		v.errorf(pp, "period is required: the length of each datapoint the alarm evaluates, a multiple of metrics.resolution (%s), like 1m", res)
	case a.Period < 0:
		v.nonNegative(pp, a.Period)
	case !resOK:
		// Reported on metrics.resolution.
	case a.Period%res != 0:
		v.errorf(pp, "period %s is not a multiple of metrics.resolution %s%s", a.Period, res, resNote)
	default:
		periodOK = true
	}

	ep, mp := p.field("evaluation_periods"), p.field("datapoints_to_alarm")
	nOK := a.EvaluationPeriods >= 1 && a.EvaluationPeriods <= maxEvaluationPeriods
	if !nOK {
		v.errorf(ep, "evaluation_periods %d: must be from 1 to %d", a.EvaluationPeriods, maxEvaluationPeriods)
	}
	switch {
	case a.DatapointsToAlarm < 1:
		v.errorf(mp, "datapoints_to_alarm must be at least 1, got %d", a.DatapointsToAlarm)
	case nOK && a.DatapointsToAlarm > a.EvaluationPeriods:
		note := ""
		if v.defaulted(ep) {
			note = " (the default)"
		}
		v.errorf(mp, "datapoints_to_alarm %d is greater than evaluation_periods %d%s: M of N needs M <= N", a.DatapointsToAlarm, a.EvaluationPeriods, note)
	}
	if ret := v.c.Metrics.Retention; periodOK && nOK && a.Period*Duration(a.EvaluationPeriods) > ret {
		note := ""
		if v.defaulted(path{}.field("metrics").field("retention")) {
			note = " (the default)"
		}
		v.errorf(pp, "period %s × evaluation_periods %d is longer than metrics.retention %s%s: the alarm could never see all its datapoints",
			a.Period, a.EvaluationPeriods, ret, note)
	}

	cp := p.field("comparison")
	switch a.Comparison {
	case GreaterThanOrEqualToThreshold, GreaterThanThreshold, LessThanThreshold, LessThanOrEqualToThreshold:
	case "":
		v.errorf(cp, "comparison is required: GreaterThanOrEqualToThreshold, GreaterThanThreshold, LessThanThreshold or LessThanOrEqualToThreshold")
	default:
		hint := didYouMean(a.Comparison, GreaterThanOrEqualToThreshold, GreaterThanThreshold, LessThanThreshold, LessThanOrEqualToThreshold)
		if name, ok := map[string]string{">=": GreaterThanOrEqualToThreshold, ">": GreaterThanThreshold, "<": LessThanThreshold, "<=": LessThanOrEqualToThreshold}[strings.TrimSpace(a.Comparison)]; ok {
			hint = fmt.Sprintf(" (write %s)", name)
		}
		v.errorf(cp, "comparison %q: must be GreaterThanOrEqualToThreshold, GreaterThanThreshold, LessThanThreshold or LessThanOrEqualToThreshold%s", a.Comparison, hint)
	}
	if a.Threshold == nil {
		v.errorf(p.field("threshold"), "threshold is required: the value each datapoint is compared with")
	} else if math.IsNaN(*a.Threshold) || math.IsInf(*a.Threshold, 0) {
		v.errorf(p.field("threshold"), "threshold must be a finite number, got %v", *a.Threshold)
	}
	switch a.TreatMissingData {
	case TreatMissing, TreatBreaching, TreatNotBreaching, TreatIgnore:
	default:
		v.errorf(p.field("treat_missing_data"), "treat_missing_data %q: must be missing, breaching, notBreaching or ignore%s",
			a.TreatMissingData, didYouMean(a.TreatMissingData, TreatMissing, TreatBreaching, TreatNotBreaching, TreatIgnore))
	}
}

// action checks one action of an alarm.
func (v *validator) action(a *Alarm, kind actionKind, act *Action, p path) {
	var set []string
	for _, f := range []struct {
		name string
		set  bool
	}{{"notify", act.Notify != ""}, {"remediate", act.Remediate != nil}, {"restart", act.Restart != ""}, {"replace", act.Replace != ""}} {
		if f.set || (v.c.src.has(p.field(f.name)) && f.name != "remediate") {
			set = append(set, f.name)
		}
	}
	switch len(set) {
	case 0:
		v.errorf(p, "an action needs one of notify, remediate, restart or replace")
		return
	case 1:
	default:
		v.errorf(p, "an action is one of notify, remediate, restart or replace, not %s: write each as its own list item", strings.Join(set, " and "))
		return
	}
	switch set[0] {
	case "notify":
		v.channelRef(act.Notify, p.field("notify"))
	case "remediate":
		v.remediate(a, kind, act.Remediate, p.field("remediate"))
	case "restart", "replace":
		what, target := set[0], act.Restart
		if what == "replace" {
			target = act.Replace
		}
		tp := p.field(what)
		switch _, hasID := a.Dimensions[DimensionInstanceID]; {
		case target != ActionTargetInstance:
			v.errorf(tp, "%s %q: the only target is instance (the instance the alarm's InstanceId dimension names)", what, target)
		case kind.name == "ok":
			v.keyErrorf(tp, "%s runs when the alarm enters ALARM or INSUFFICIENT_DATA, not OK: there is nothing to repair", what)
		case !hasID:
			v.keyErrorf(tp, "%s needs the alarm's InstanceId dimension: it acts on the instance that dimension names", what)
		}
	}
}

func (v *validator) remediate(a *Alarm, kind actionKind, r *Remediate, p path) {
	if kind.name == "ok" {
		v.keyErrorf(p, "remediate runs when the alarm enters ALARM or INSUFFICIENT_DATA, not OK: there is nothing to repair")
		return
	}
	rp := p.field("runbook")
	switch {
	case r.Runbook == "":
		// Only when the metric or the namespace is missing, which is
		// reported on them.
		if !v.defaulted(rp) {
			v.errorf(rp, "runbook must not be empty")
		}
	case !documentName(r.Runbook) && v.defaulted(rp):
		v.errorf(rp, "the default runbook %q (<metric>#<namespace>) cannot name a document: %s; set runbook", r.Runbook, documentNameRule)
	case !documentName(r.Runbook):
		v.errorf(rp, "runbook %q cannot name a document: %s", r.Runbook, documentNameRule)
	}
	if r.MaxAttempts < 1 || r.MaxAttempts > maxRemediateAttempts {
		v.errorf(p.field("max_attempts"), "max_attempts %d: must be from 1 to %d", r.MaxAttempts, maxRemediateAttempts)
	}
	v.nonNegative(p.field("retry_pause"), r.RetryPause)
	vp := p.field("verify_timeout")
	// To return to OK the alarm needs N-M+1 periods that do not breach:
	// until then M of its N datapoints still do, whatever the runbook did.
	need := a.EvaluationPeriods - a.DatapointsToAlarm + 1
	switch {
	case r.VerifyTimeout < 0:
		v.nonNegative(vp, r.VerifyTimeout)
	case a.Period > 0 && need >= 1 && r.VerifyTimeout < a.Period*Duration(need):
		note, fix := "", ""
		if v.defaulted(vp) {
			note, fix = " (the default)", "; set verify_timeout"
		}
		periods := "1 period"
		if need > 1 {
			periods = fmt.Sprintf("%d periods", need)
		}
		v.errorf(vp, "verify_timeout %s%s is shorter than the %s the alarm needs to return to OK: %s of %s without a breach (evaluation_periods - datapoints_to_alarm + 1)%s",
			r.VerifyTimeout, note, a.Period*Duration(need), periods, a.Period, fix)
	}
	v.channelRefs(r.Escalate, p.field("escalate"))
	v.documentParameters(r.Parameters, p.field("parameters"))
}
