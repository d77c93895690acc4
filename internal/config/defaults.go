package config

import (
	"cmp"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Defaults, as documented on each field in types.go and in
// docs/config-reference.md. A zero value in the file means "the default".
const (
	DefaultDesired            = 1
	DefaultStopSignal         = "SIGTERM"
	DefaultStopTimeout        = Duration(10 * time.Second)
	DefaultLogMaxSize         = ByteSize(10 << 20)
	DefaultLogMaxFiles        = 3
	DefaultMode               = ModeProxy
	DefaultWaitTimeout        = Duration(30 * time.Second)
	DefaultInterval           = Duration(5 * time.Second)
	DefaultMaxTimeout         = Duration(2 * time.Second) // the timeout is min(interval, this)
	DefaultPath               = "/"
	DefaultHealthyThreshold   = 1
	DefaultUnhealthyThreshold = 3
	DefaultStartupTimeout     = Duration(5 * time.Minute)
	DefaultMaxRestarts        = 3
	DefaultRestartWindow      = Duration(5 * time.Minute)
	DefaultBackoffBase        = Duration(time.Second)
	DefaultBackoffCap         = Duration(time.Minute)
	DefaultResetAfter         = Duration(time.Minute)
	DefaultMaxReplacements    = 5
	DefaultReplacementWindow  = Duration(30 * time.Minute)
	DefaultHeartbeatTimeout   = Duration(60 * time.Second)
	DefaultResult             = ResultAbandon

	// Load balancers: listeners.
	DefaultIdleTimeout = Duration(60 * time.Second)
	// As HAProxy's usual `timeout http-request 10s`: a connection that
	// sends nothing is closed as soon as a slow request head would be.
	DefaultFirstByteTimeout = Duration(10 * time.Second)
	DefaultHeaderTimeout    = Duration(10 * time.Second) // http only
	DefaultMaxHeaderBytes   = ByteSize(64 << 10)         // http only
	DefaultMaxBodyBytes     = ByteSize(100 << 20)        // http only
	DefaultMaxConnections   = 10000

	// Load balancers: target groups and their targets.
	DefaultProtocol            = ProtocolHTTP
	DefaultAlgorithm           = AlgorithmRoundRobin
	DefaultDeregistrationDelay = Duration(30 * time.Second)
	DefaultHoldTimeout         = Duration(10 * time.Second)
	DefaultRetries             = 2
	DefaultConnectTimeout      = Duration(2 * time.Second)
	DefaultResponseTimeout     = Duration(60 * time.Second) // http only
	DefaultWeight              = 1

	// Load balancers: target health checks. Interval, timeout and path
	// are those of group health checks (DefaultInterval, DefaultMaxTimeout,
	// DefaultPath); the thresholds are ELB's, not the group checks'.
	DefaultMatcher                  = "200-399" // http only
	DefaultTargetHealthyThreshold   = 2
	DefaultTargetUnhealthyThreshold = 2

	// Maintenance windows and scheduled actions.
	DefaultTimeZone       = "UTC"
	DefaultPriority       = 1
	DefaultMaxConcurrency = "1"
	DefaultMaxErrors      = "0"

	// Metrics.
	DefaultResolution = Duration(10 * time.Second)
	DefaultRetention  = Duration(3 * time.Hour)
	DefaultMaxSeries  = 10000

	// Channels.
	DefaultPagerDutyURL       = "https://events.pagerduty.com/v2/enqueue"
	DefaultChannelTimeout     = Duration(5 * time.Second)
	DefaultChannelMaxAttempts = 10

	// Alarms and their remediation; the default runbook is DefaultRunbook.
	DefaultEvaluationPeriods = 1 // and datapoints_to_alarm defaults to evaluation_periods
	DefaultTreatMissingData  = TreatMissing
	DefaultRemediateAttempts = 3
	DefaultVerifyTimeout     = Duration(2 * time.Minute)
	DefaultRetryPause        = Duration(30 * time.Second)
	DefaultAlertTargetLabel  = "instance_id"
)

// DefaultRunbook is the runbook an alarm's remediation runs when it names
// none: "<metric>#<namespace>", like "webapp-uptime#CustomNamespace".
func DefaultRunbook(metric, namespace string) string { return metric + "#" + namespace }

// setDefaults fills every zero value that means "use the default". It runs
// before validation, so that validation sees the values that will be used
// (a timeout is compared with the interval in force, not with zero), and it
// is idempotent, so Validate may run on a config that already has them.
// It does not resolve Launch.Command: that can fail, so validate does it.
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
		g := &c.Groups[gi]
		if g.Desired == nil {
			g.Desired = ptr(DefaultDesired)
		}
		if g.Max == 0 {
			g.Max = max(*g.Desired, 1)
		}

		l := &g.Launch
		// Stored in canonical form so that the rest of the program compares
		// and prints one spelling; an unknown name is left for validate.
		if _, err := Signal(l.StopSignal); err == nil {
			l.StopSignal = canonicalSignal(l.StopSignal)
		}
		l.StopTimeout = cmp.Or(l.StopTimeout, DefaultStopTimeout)
		l.Logs.MaxSize = cmp.Or(l.Logs.MaxSize, DefaultLogMaxSize)
		l.Logs.MaxFiles = cmp.Or(l.Logs.MaxFiles, DefaultLogMaxFiles)
		switch {
		case l.Workdir == "":
			l.Workdir = c.Dir
		case !filepath.IsAbs(l.Workdir):
			l.Workdir = filepath.Join(c.Dir, l.Workdir)
		}

		for ai := range g.Addresses {
			a := &g.Addresses[ai]
			a.Mode = cmp.Or(a.Mode, DefaultMode)
			a.WaitTimeout = cmp.Or(a.WaitTimeout, DefaultWaitTimeout)
		}

		for hi := range g.HealthChecks {
			h := &g.HealthChecks[hi]
			h.Interval = cmp.Or(h.Interval, DefaultInterval)
			h.Timeout = cmp.Or(h.Timeout, min(h.Interval, DefaultMaxTimeout))
			h.HealthyThreshold = cmp.Or(h.HealthyThreshold, DefaultHealthyThreshold)
			h.UnhealthyThreshold = cmp.Or(h.UnhealthyThreshold, DefaultUnhealthyThreshold)
			h.StartupTimeout = cmp.Or(h.StartupTimeout, max(DefaultStartupTimeout, h.GracePeriod))
			// Path and port mean something only to the checks that use
			// them; filling them elsewhere would make validate reject a
			// field the user never wrote.
			if h.Type == CheckHTTP {
				h.Path = cmp.Or(h.Path, DefaultPath)
			}
			if names := g.PortNames(); (h.Type == CheckTCP || h.Type == CheckHTTP) && h.Port == "" && len(names) == 1 {
				h.Port = names[0]
			}
		}

		hp := &g.Heal
		// MaxRestarts and MaxReplacements are pointers because 0 is a
		// meaningful value ("always replace", "never replace").
		if hp.MaxRestarts == nil {
			hp.MaxRestarts = ptr(DefaultMaxRestarts)
		}
		if hp.MaxReplacements == nil {
			hp.MaxReplacements = ptr(DefaultMaxReplacements)
		}
		hp.RestartWindow = cmp.Or(hp.RestartWindow, DefaultRestartWindow)
		hp.BackoffBase = cmp.Or(hp.BackoffBase, DefaultBackoffBase)
		hp.BackoffCap = cmp.Or(hp.BackoffCap, DefaultBackoffCap)
		hp.ResetAfter = cmp.Or(hp.ResetAfter, DefaultResetAfter)
		hp.ReplacementWindow = cmp.Or(hp.ReplacementWindow, DefaultReplacementWindow)

		for _, hooks := range [][]Hook{g.Hooks.Launch, g.Hooks.Terminate} {
			for i := range hooks {
				h := &hooks[i] // the slices share their arrays with g.Hooks
				h.HeartbeatTimeout = cmp.Or(h.HeartbeatTimeout, DefaultHeartbeatTimeout)
				h.DefaultResult = cmp.Or(h.DefaultResult, DefaultResult)
			}
		}
	}
	// The only named port of each group, for members that give none.
	onlyPort := map[string]string{}
	for gi := range c.Groups {
		g := &c.Groups[gi]
		if _, dup := onlyPort[g.Name]; dup {
			continue
		}
		onlyPort[g.Name] = ""
		if names := g.PortNames(); len(names) == 1 {
			onlyPort[g.Name] = names[0]
		}
	}
	for li := range c.LoadBalancers {
		c.setLoadBalancerDefaults(&c.LoadBalancers[li], onlyPort)
	}
	c.setScheduleDefaults()
	c.setAlarmDefaults()
}

// setAlarmDefaults fills the defaults of the metric store, channels, alarms
// and the Alertmanager receiver.
func (c *Config) setAlarmDefaults() {
	m := &c.Metrics
	m.Resolution = cmp.Or(m.Resolution, DefaultResolution)
	m.Retention = cmp.Or(m.Retention, DefaultRetention)
	m.MaxSeries = cmp.Or(m.MaxSeries, DefaultMaxSeries)

	for i := range c.Channels {
		ch := &c.Channels[i]
		ch.Timeout = cmp.Or(ch.Timeout, DefaultChannelTimeout)
		ch.MaxAttempts = cmp.Or(ch.MaxAttempts, DefaultChannelMaxAttempts)
		// Only PagerDuty has a well-known endpoint; the URL of any other
		// type is the user's to give, and validate asks for it.
		if ch.Type == ChannelPagerDuty && ch.URL == "" && ch.URLEnv == "" {
			ch.URL = DefaultPagerDutyURL
		}
	}

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
					// Without a metric or a namespace there is no
					// convention to follow; validate reports what is
					// missing, not the runbook.
					if r.Runbook == "" && a.Metric != "" && a.Namespace != "" {
						r.Runbook = DefaultRunbook(a.Metric, a.Namespace)
					}
					r.MaxAttempts = cmp.Or(r.MaxAttempts, DefaultRemediateAttempts)
					r.VerifyTimeout = cmp.Or(r.VerifyTimeout, DefaultVerifyTimeout)
					r.RetryPause = cmp.Or(r.RetryPause, DefaultRetryPause)
				}
			}
		}
	}

	am := &c.Alertmanager
	for i := range am.Routes {
		r := &am.Routes[i]
		r.TargetLabel = cmp.Or(r.TargetLabel, DefaultAlertTargetLabel)
		if len(r.Escalate) == 0 {
			r.Escalate = slices.Clone(am.DefaultEscalate)
		}
	}
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

// setScheduleDefaults fills the defaults of maintenance windows and
// scheduled actions. Schedules are kept as written (CronFields expands
// them), so that messages and listings show what the user wrote.
func (c *Config) setScheduleDefaults() {
	for wi := range c.MaintenanceWindows {
		w := &c.MaintenanceWindows[wi]
		w.TimeZone = cmp.Or(w.TimeZone, DefaultTimeZone)
		for ti := range w.Tasks {
			t := &w.Tasks[ti]
			// A pointer because 0 is a priority (the first).
			if t.Priority == nil {
				t.Priority = ptr(DefaultPriority)
			}
			t.MaxConcurrency = cmp.Or(t.MaxConcurrency, DefaultMaxConcurrency)
			t.MaxErrors = cmp.Or(t.MaxErrors, DefaultMaxErrors)
		}
	}
	for ai := range c.ScheduledActions {
		a := &c.ScheduledActions[ai]
		a.TimeZone = cmp.Or(a.TimeZone, DefaultTimeZone)
	}
}

// setLoadBalancerDefaults fills a load balancer's defaults. As for health
// checks, a field that only one protocol uses is filled only for that
// protocol, so that validate can refuse it where the user wrote it in vain.
func (c *Config) setLoadBalancerDefaults(lb *LoadBalancer, onlyPort map[string]string) {
	for i := range lb.Listeners {
		l := &lb.Listeners[i]
		l.IdleTimeout = cmp.Or(l.IdleTimeout, DefaultIdleTimeout)
		l.FirstByteTimeout = cmp.Or(l.FirstByteTimeout, DefaultFirstByteTimeout)
		l.MaxConnections = cmp.Or(l.MaxConnections, DefaultMaxConnections)
		if l.Protocol == ProtocolHTTP {
			l.HeaderTimeout = cmp.Or(l.HeaderTimeout, DefaultHeaderTimeout)
			l.MaxHeaderBytes = cmp.Or(l.MaxHeaderBytes, DefaultMaxHeaderBytes)
			l.MaxBodyBytes = cmp.Or(l.MaxBodyBytes, DefaultMaxBodyBytes)
		}
		if l.TLS != nil {
			l.TLS.CertFile = c.resolvePath(l.TLS.CertFile)
			l.TLS.KeyFile = c.resolvePath(l.TLS.KeyFile)
		}
	}
	for i := range lb.TargetGroups {
		tg := &lb.TargetGroups[i]
		tg.Protocol = cmp.Or(tg.Protocol, DefaultProtocol)
		tg.Algorithm = cmp.Or(tg.Algorithm, DefaultAlgorithm)
		tg.DeregistrationDelay = cmp.Or(tg.DeregistrationDelay, DefaultDeregistrationDelay)
		tg.HoldTimeout = cmp.Or(tg.HoldTimeout, DefaultHoldTimeout)
		// A pointer because 0 is meaningful: never retry.
		if tg.Retries == nil {
			tg.Retries = ptr(DefaultRetries)
		}
		tg.ConnectTimeout = cmp.Or(tg.ConnectTimeout, DefaultConnectTimeout)
		if tg.Protocol == ProtocolHTTP {
			tg.ResponseTimeout = cmp.Or(tg.ResponseTimeout, DefaultResponseTimeout)
		}

		for mi := range tg.Groups {
			m := &tg.Groups[mi]
			m.Weight = cmp.Or(m.Weight, DefaultWeight)
			// A group with one named port leaves no choice; with none or
			// several, validate asks for the port.
			m.Port = cmp.Or(m.Port, onlyPort[m.Group])
		}
		for ti := range tg.Targets {
			t := &tg.Targets[ti]
			t.Weight = cmp.Or(t.Weight, DefaultWeight)
			t.ID = cmp.Or(t.ID, t.Address)
		}

		h := &tg.HealthCheck
		// An unknown target group protocol is reported once, on the target
		// group; copying it would report it again here.
		if h.Protocol == "" && (tg.Protocol == ProtocolHTTP || tg.Protocol == ProtocolTCP) {
			h.Protocol = tg.Protocol
		}
		h.Interval = cmp.Or(h.Interval, DefaultInterval)
		h.Timeout = cmp.Or(h.Timeout, min(h.Interval, DefaultMaxTimeout))
		h.HealthyThreshold = cmp.Or(h.HealthyThreshold, DefaultTargetHealthyThreshold)
		h.UnhealthyThreshold = cmp.Or(h.UnhealthyThreshold, DefaultTargetUnhealthyThreshold)
		if h.Protocol == ProtocolHTTP {
			h.Path = cmp.Or(h.Path, DefaultPath)
			h.Matcher = cmp.Or(h.Matcher, DefaultMatcher)
		}
	}
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
