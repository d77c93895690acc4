package lb

import (
	"sync/atomic"
	"time"
)

// Metrics are a target group's counters, named as ELB names them. The
// proxy updates them with atomics; nothing on the request path locks.
type Metrics struct {
	requests  atomic.Int64
	target2xx atomic.Int64
	target3xx atomic.Int64
	target4xx atomic.Int64
	target5xx atomic.Int64
	elb4xx    atomic.Int64
	elb5xx    atomic.Int64
	retries   atomic.Int64
	// Target response time: from the request leaving the balancer to the
	// response head arriving, summed in microseconds, and a histogram.
	respSum   atomic.Int64
	respCount atomic.Int64
	respHist  [len(respBuckets) + 1]atomic.Int64
	// tcp listeners
	connections atomic.Int64
}

// respBuckets are the upper bounds of the response time histogram.
var respBuckets = [...]time.Duration{
	250 * time.Microsecond, 500 * time.Microsecond, time.Millisecond, 2500 * time.Microsecond,
	5 * time.Millisecond, 10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond, time.Second,
	2500 * time.Millisecond, 5 * time.Second, 10 * time.Second,
}

func (m *Metrics) observe(code int, rt time.Duration) {
	switch {
	case code >= 500:
		m.target5xx.Add(1)
	case code >= 400:
		m.target4xx.Add(1)
	case code >= 300:
		m.target3xx.Add(1)
	case code >= 200:
		m.target2xx.Add(1)
	}
	m.respSum.Add(int64(rt / time.Microsecond))
	m.respCount.Add(1)
	i := 0
	for i < len(respBuckets) && rt > respBuckets[i] {
		i++
	}
	m.respHist[i].Add(1)
}

// MetricsSnapshot is a target group's metrics at one moment. Counters
// count since the controller started.
type MetricsSnapshot struct {
	RequestCount       int64 `json:"RequestCount"`
	HTTPCodeTarget2XX  int64 `json:"HTTPCode_Target_2XX_Count"`
	HTTPCodeTarget3XX  int64 `json:"HTTPCode_Target_3XX_Count"`
	HTTPCodeTarget4XX  int64 `json:"HTTPCode_Target_4XX_Count"`
	HTTPCodeTarget5XX  int64 `json:"HTTPCode_Target_5XX_Count"`
	HTTPCodeELB4XX     int64 `json:"HTTPCode_ELB_4XX_Count"`
	HTTPCodeELB5XX     int64 `json:"HTTPCode_ELB_5XX_Count"`
	RetryCount         int64 `json:"RetryCount"`
	NewConnectionCount int64 `json:"NewConnectionCount,omitempty"`
	HealthyHostCount   int   `json:"HealthyHostCount"`
	UnHealthyHostCount int   `json:"UnHealthyHostCount"`
	// TargetResponseTime is the mean in seconds, as CloudWatch reports it.
	TargetResponseTime float64 `json:"TargetResponseTime"`
	// TargetResponseTimeSum is the total in seconds, for Prometheus.
	TargetResponseTimeSum float64 `json:"TargetResponseTimeSum"`
	// ResponseTimeBuckets counts responses by upper bound in seconds
	// ("+Inf" last), for percentiles.
	ResponseTimeBuckets []Bucket `json:"TargetResponseTimeBuckets"`
}

// Bucket is one histogram bucket: responses no slower than Le seconds
// (cumulative, as in Prometheus).
type Bucket struct {
	Le    float64 `json:"le"` // 0 means +Inf
	Count int64   `json:"count"`
}

func (m *Metrics) snapshot() MetricsSnapshot {
	s := MetricsSnapshot{
		RequestCount:       m.requests.Load(),
		HTTPCodeTarget2XX:  m.target2xx.Load(),
		HTTPCodeTarget3XX:  m.target3xx.Load(),
		HTTPCodeTarget4XX:  m.target4xx.Load(),
		HTTPCodeTarget5XX:  m.target5xx.Load(),
		HTTPCodeELB4XX:     m.elb4xx.Load(),
		HTTPCodeELB5XX:     m.elb5xx.Load(),
		RetryCount:         m.retries.Load(),
		NewConnectionCount: m.connections.Load(),
	}
	sum := m.respSum.Load()
	s.TargetResponseTimeSum = float64(sum) / 1e6
	if n := m.respCount.Load(); n > 0 {
		s.TargetResponseTime = float64(sum) / float64(n) / 1e6
	}
	var cum int64
	for i := range m.respHist {
		cum += m.respHist[i].Load()
		le := 0.0
		if i < len(respBuckets) {
			le = respBuckets[i].Seconds()
		}
		s.ResponseTimeBuckets = append(s.ResponseTimeBuckets, Bucket{Le: le, Count: cum})
	}
	return s
}
