package config

import (
	"cmp"
	"time"
)

// Metrics: the size of the in-memory metric store that alarms read.

// Metrics sizes the in-memory store of metric datapoints (CloudWatch
// metrics): what is kept, for how long, and how finely.
type Metrics struct {
	// Resolution is the width of the store's time buckets: datapoints are
	// aggregated per resolution interval, and an alarm's period is a
	// multiple of it. A whole number of seconds, at least 1s. Default 10s.
	Resolution Duration `yaml:"resolution"`
	// Retention is how long datapoints are kept; at least Resolution and
	// at most 10,000 resolution intervals, and at least every alarm's
	// period × evaluation_periods. Default 3h.
	Retention Duration `yaml:"retention"`
	// MaxSeries caps the number of series (a namespace, a metric name and
	// a set of dimensions); a datum for a new series past it is refused.
	// At least 1. Default 10000.
	MaxSeries int `yaml:"max_series"`
}

// Buckets returns how many resolution intervals a series keeps.
func (m Metrics) Buckets() int {
	if m.Resolution <= 0 {
		return 0
	}
	return int(m.Retention / m.Resolution)
}

// Metric store defaults.
const (
	DefaultResolution = Duration(10 * time.Second)
	DefaultRetention  = Duration(3 * time.Hour)
	DefaultMaxSeries  = 10000
)

const (
	// maxBuckets bounds what one series keeps (retention / resolution),
	// so that max_series bounds the store's memory.
	maxBuckets     = 10000
	maxSeriesLimit = 1_000_000
)

// setDefaults fills the metric store's defaults.
func (m *Metrics) setDefaults() {
	m.Resolution = cmp.Or(m.Resolution, DefaultResolution)
	m.Retention = cmp.Or(m.Retention, DefaultRetention)
	m.MaxSeries = cmp.Or(m.MaxSeries, DefaultMaxSeries)
}

func (v *validator) metrics() {
	m := &v.c.Metrics
	p := path{}.field("metrics")
	rp := p.field("resolution")
	resOK := m.Resolution >= Duration(time.Second) && m.Resolution%Duration(time.Second) == 0
	if !resOK {
		// Datapoints are timestamped to the second, as in CloudWatch;
		// finer buckets would only split them arbitrarily.
		v.errorf(rp, "resolution %s: use a whole number of seconds, at least 1s", m.Resolution)
	}
	switch tp := p.field("retention"); {
	case !resOK:
	case m.Retention < m.Resolution:
		v.errorf(tp, "retention %s is shorter than resolution %s", m.Retention, m.Resolution)
	case m.Buckets() > maxBuckets:
		v.errorf(tp, "retention %s is %d intervals of resolution %s: at most %d, so that a series' memory stays bounded (raise resolution or lower retention)",
			m.Retention, m.Buckets(), m.Resolution, maxBuckets)
	}
	if m.MaxSeries < 1 || m.MaxSeries > maxSeriesLimit {
		v.errorf(p.field("max_series"), "max_series %d: must be from 1 to %d", m.MaxSeries, maxSeriesLimit)
	}
}
