package wire

import "time"

// TargetGroup is a target group's targets and metrics.
type TargetGroup struct {
	Name string `json:"name"`
	// ARN is its AWS-shaped ARN, as the AWS endpoint names it.
	ARN       string    `json:"arn,omitempty"`
	Protocol  string    `json:"protocol"`
	Algorithm string    `json:"algorithm"`
	Targets   []Target  `json:"targets"`
	Metrics   LBMetrics `json:"metrics"`
}

// Target is one target's state in its target group.
type Target struct {
	ID       string    `json:"id"`
	Address  string    `json:"address"`
	Group    string    `json:"group,omitempty"`
	State    string    `json:"state"`
	Reason   string    `json:"reason,omitempty"`
	Since    time.Time `json:"since"`
	Weight   int       `json:"weight"`
	InFlight int64     `json:"in_flight"`
}

// LBMetrics are a target group's counters, named as CloudWatch names ELB's.
type LBMetrics struct {
	RequestCount          int64    `json:"RequestCount"`
	HTTPCodeTarget2XX     int64    `json:"HTTPCode_Target_2XX_Count"`
	HTTPCodeTarget3XX     int64    `json:"HTTPCode_Target_3XX_Count"`
	HTTPCodeTarget4XX     int64    `json:"HTTPCode_Target_4XX_Count"`
	HTTPCodeTarget5XX     int64    `json:"HTTPCode_Target_5XX_Count"`
	HTTPCodeELB4XX        int64    `json:"HTTPCode_ELB_4XX_Count"`
	HTTPCodeELB5XX        int64    `json:"HTTPCode_ELB_5XX_Count"`
	RetryCount            int64    `json:"RetryCount"`
	NewConnectionCount    int64    `json:"NewConnectionCount,omitempty"`
	HealthyHostCount      int      `json:"HealthyHostCount"`
	UnHealthyHostCount    int      `json:"UnHealthyHostCount"`
	TargetResponseTime    float64  `json:"TargetResponseTime"`
	TargetResponseTimeSum float64  `json:"TargetResponseTimeSum"`
	ResponseTimeBuckets   []Bucket `json:"TargetResponseTimeBuckets"`
}

// Bucket is one cumulative histogram bucket; Le 0 is +Inf.
type Bucket struct {
	Le    float64 `json:"le"`
	Count int64   `json:"count"`
}

// TargetRequest is the body of POST /v1/target-groups/{name}/register and
// /deregister: an instance id the target group knows, or a host:port
// address (register only).
type TargetRequest struct {
	ID      string `json:"id,omitempty"`
	Address string `json:"address,omitempty"`
	Weight  int    `json:"weight,omitempty"`
	// Wait makes deregister answer only once the target is drained.
	Wait bool `json:"wait,omitempty"`
}
