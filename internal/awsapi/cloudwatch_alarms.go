package awsapi

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/autoheal/autoheal/internal/alarm"
	"github.com/autoheal/autoheal/internal/awsid"
	"github.com/autoheal/autoheal/internal/config"
)

// alarmSetter sets alarm states by hand (*alarm.Manager).
type alarmSetter interface {
	SetState(name string, to alarm.State, reason string) ([]string, error)
}

// alarmConfigs tells the alarms' configuration (*alarm.Manager): what
// Statuses does not repeat.
type alarmConfigs interface {
	Configs() []config.Alarm
}

type cwDimension struct {
	Name, Value string
}

type cwMetricAlarm struct {
	AlarmName                  string
	AlarmArn                   string
	AlarmDescription           string `xml:",omitempty"`
	ActionsEnabled             bool
	OKActions                  queryList[string]
	AlarmActions               queryList[string]
	InsufficientDataActions    queryList[string]
	StateValue                 string
	StateReason                string
	StateUpdatedTimestamp      string `xml:",omitempty"`
	StateTransitionedTimestamp string `xml:",omitempty"`
	MetricName                 string
	Namespace                  string
	Statistic                  string `xml:",omitempty"`
	ExtendedStatistic          string `xml:",omitempty"`
	Dimensions                 queryList[cwDimension]
	Period                     int
	EvaluationPeriods          int
	DatapointsToAlarm          int `xml:",omitempty"`
	Threshold                  float64
	ComparisonOperator         string
	TreatMissingData           string `xml:",omitempty"`
}

type describeAlarmsResult struct {
	MetricAlarms    queryList[cwMetricAlarm]
	CompositeAlarms queryList[struct{}]
	NextToken       string `xml:",omitempty"`
}

// cwComparison is a configured comparison as CloudWatch names it
// (autoheal's config already uses CloudWatch's names; anything else is
// passed through).
func cwComparison(s string) string {
	if c, err := alarm.ParseComparison(s); err == nil {
		return c.String()
	}
	return s
}

// cwState parses a StateValue.
func cwState(s string) (alarm.State, error) {
	st, err := alarm.ParseState(s)
	if err != nil {
		return 0, invalid("ValidationError", "StateValue %q: give OK, ALARM or INSUFFICIENT_DATA", s)
	}
	return st, nil
}

// cwActions are an alarm's actions as CloudWatch's action ARNs: notify as
// an SNS topic of the channel's name, restart and replace as EC2's reboot
// and terminate actions, remediate as a Systems Manager automation of
// its runbook.
func cwActions(a config.Alarm, acts []config.Action) []string {
	out := []string{}
	for _, act := range acts {
		switch {
		case act.Notify != "":
			out = append(out, fmt.Sprintf("arn:aws:sns:%s:%s:%s", awsid.Region, awsid.Account, act.Notify))
		case act.Restart != "":
			out = append(out, "arn:aws:automate:"+awsid.Region+":ec2:reboot")
		case act.Replace != "":
			out = append(out, "arn:aws:automate:"+awsid.Region+":ec2:terminate")
		case act.Remediate != nil:
			rb := act.Remediate.Runbook
			if rb == "" {
				rb = config.DefaultRunbook(a.Metric, a.Namespace)
			}
			out = append(out, fmt.Sprintf("arn:aws:ssm:%s:%s:automation-definition/%s", awsid.Region, awsid.Account, rb))
		}
	}
	return out
}

// cwAlarmOf is an alarm state as DescribeAlarms shows it; cfg is its
// configuration when known. An alarm with a "*" dimension has a state per
// value, each shown as an alarm named by its key; the others are named
// by their name.
func cwAlarmOf(s alarm.Status, cfg *config.Alarm) cwMetricAlarm {
	out := cwMetricAlarm{
		AlarmName: s.Key, AlarmArn: awsid.AlarmARN(s.Key), ActionsEnabled: true,
		OKActions: queryList[string]{Member: []string{}}, AlarmActions: queryList[string]{Member: []string{}},
		InsufficientDataActions: queryList[string]{Member: []string{}},
		StateValue:              s.State, StateReason: s.Reason,
		MetricName: s.Metric, Namespace: s.Namespace,
		EvaluationPeriods: s.EvaluationPeriods, DatapointsToAlarm: s.DatapointsToAlarm,
		Threshold: s.Threshold, ComparisonOperator: cwComparison(s.Comparison),
		Dimensions: queryList[cwDimension]{Member: []cwDimension{}},
	}
	if !s.Since.IsZero() {
		out.StateUpdatedTimestamp = cwTime(s.Since)
		out.StateTransitionedTimestamp = out.StateUpdatedTimestamp
	}
	if _, ok := config.Percentile(s.Statistic); ok {
		out.ExtendedStatistic = s.Statistic
	} else {
		out.Statistic = s.Statistic
	}
	if d, err := time.ParseDuration(s.Period); err == nil {
		out.Period = int(d / time.Second)
	}
	dims := s.Dimensions
	if cfg != nil {
		if !slices.Contains(slices.Collect(maps.Values(cfg.Dimensions)), config.DimensionAny) {
			// One state: the alarm's own name.
			out.AlarmName, out.AlarmArn = s.Name, awsid.AlarmARN(s.Name)
		}
		out.AlarmDescription = cfg.Description
		out.TreatMissingData = cmp.Or(cfg.TreatMissingData, config.DefaultTreatMissingData)
		out.OKActions.Member = cwActions(*cfg, cfg.Actions.OK)
		out.AlarmActions.Member = cwActions(*cfg, cfg.Actions.Alarm)
		out.InsufficientDataActions.Member = cwActions(*cfg, cfg.Actions.InsufficientData)
		if len(dims) == 0 {
			dims = cfg.Dimensions
		}
	}
	names := make([]string, 0, len(dims))
	for n := range dims {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		out.Dimensions.Member = append(out.Dimensions.Member, cwDimension{n, dims[n]})
	}
	return out
}

// cwAlarms are every alarm state with its configuration.
func (h *Handler) cwAlarms() []cwMetricAlarm {
	if h.deps.Alarms == nil {
		return nil
	}
	cfgs := map[string]*config.Alarm{}
	if src, ok := h.deps.Alarms.(alarmConfigs); ok {
		for _, a := range src.Configs() {
			cfgs[a.Name] = &a
		}
	}
	var out []cwMetricAlarm
	for _, s := range h.deps.Alarms.Statuses() {
		out = append(out, cwAlarmOf(s, cfgs[s.Name]))
	}
	return out
}

// cwAlarmNamed reports whether name names the alarm state a: its key, or
// the configured alarm's name.
func cwAlarmNamed(a cwMetricAlarm, name string) bool {
	if a.AlarmName == name {
		return true
	}
	base, _, _ := strings.Cut(a.AlarmName, "/")
	return base == name
}

func (h *Handler) cwDescribeAlarms(c *call) (any, error) {
	p := c.params
	names := list(p, "AlarmNames.member")
	prefix, actionPrefix := p.Get("AlarmNamePrefix"), p.Get("ActionPrefix")
	if len(names) > 0 && prefix != "" {
		return nil, invalid("InvalidParameterCombination", "give AlarmNames or AlarmNamePrefix, not both")
	}
	state := p.Get("StateValue")
	if state != "" {
		if _, err := cwState(state); err != nil {
			return nil, err
		}
	}
	metricAlarms := true
	if types := list(p, "AlarmTypes.member"); len(types) > 0 {
		metricAlarms = slices.Contains(types, "MetricAlarm")
	}
	maxRecords := 50
	if n, err := intParam(p, "MaxRecords"); err != nil {
		return nil, err
	} else if n != nil {
		if *n < 1 || *n > 100 {
			return nil, invalid("ValidationError", "MaxRecords %d: give 1 to 100", *n)
		}
		maxRecords = *n
	}
	offset := 0
	if tok := p.Get("NextToken"); tok != "" {
		n, err := strconv.Atoi(tok)
		if err != nil || n < 0 {
			return nil, invalid("InvalidNextToken", "NextToken %q is not one this endpoint gave", tok)
		}
		offset = n
	}
	var sel []cwMetricAlarm
	if metricAlarms {
		for _, a := range h.cwAlarms() {
			if len(names) > 0 && !slices.ContainsFunc(names, func(n string) bool { return cwAlarmNamed(a, n) }) {
				continue
			}
			if prefix != "" && !strings.HasPrefix(a.AlarmName, prefix) {
				continue
			}
			if state != "" && a.StateValue != state {
				continue
			}
			if actionPrefix != "" && !slices.ContainsFunc(slices.Concat(a.OKActions.Member, a.AlarmActions.Member, a.InsufficientDataActions.Member),
				func(s string) bool { return strings.HasPrefix(s, actionPrefix) }) {
				continue
			}
			sel = append(sel, a)
		}
	}
	res := &describeAlarmsResult{MetricAlarms: queryList[cwMetricAlarm]{Member: []cwMetricAlarm{}}, CompositeAlarms: queryList[struct{}]{Member: []struct{}{}}}
	if offset < len(sel) {
		page := sel[offset:]
		if len(page) > maxRecords {
			page = page[:maxRecords]
			res.NextToken = strconv.Itoa(offset + maxRecords)
		}
		res.MetricAlarms.Member = page
	}
	return res, nil
}

func (h *Handler) cwSetAlarmState(c *call) (any, error) {
	p := c.params
	name, reason := p.Get("AlarmName"), p.Get("StateReason")
	if name == "" {
		return nil, invalid("ValidationError", "AlarmName is required")
	}
	if p.Get("StateValue") == "" {
		return nil, invalid("ValidationError", "StateValue is required: OK, ALARM or INSUFFICIENT_DATA")
	}
	to, err := cwState(p.Get("StateValue"))
	if err != nil {
		return nil, err
	}
	if reason == "" {
		return nil, invalid("ValidationError", "StateReason is required")
	}
	if len(reason) > 1023 {
		return nil, invalid("ValidationError", "StateReason is %d characters long, at most 1023", len(reason))
	}
	if data := p.Get("StateReasonData"); data != "" && !json.Valid([]byte(data)) {
		return nil, invalid("InvalidFormat", "StateReasonData is not JSON")
	}
	setter, ok := h.deps.Alarms.(alarmSetter)
	if !ok {
		return nil, &apiError{Status: http.StatusNotFound, Code: "ResourceNotFound", Msg: fmt.Sprintf("alarm %q not found: no alarms are configured", name)}
	}
	if _, err := setter.SetState(name, to, reason); err != nil {
		if errors.Is(err, alarm.ErrUnknownAlarm) || errors.Is(err, alarm.ErrNoState) {
			return nil, &apiError{Status: http.StatusNotFound, Code: "ResourceNotFound", Msg: err.Error()}
		}
		return nil, invalid("ValidationError", "%v", err)
	}
	return nil, nil
}
