package wire

import (
	"encoding/json"
	"time"
)

// Statistic names of GetMetricStatistics; percentiles are pNN (p99, p99.9).
const (
	SampleCount = "SampleCount"
	Average     = "Average"
	Sum         = "Sum"
	Minimum     = "Minimum"
	Maximum     = "Maximum"
)

// Dimension is one Name=Value of a series.
type Dimension struct {
	Name  string `json:"Name"`
	Value string `json:"Value"`
}

// PutRequest is the body of POST /v1/metrics (PutMetricData).
type PutRequest struct {
	Namespace  string  `json:"Namespace"`
	MetricData []Datum `json:"MetricData"`
}

// Datum is one value, or values with counts, of one series at one time.
type Datum struct {
	MetricName string      `json:"MetricName"`
	Dimensions []Dimension `json:"Dimensions,omitempty"`
	// Timestamp is when the value was observed; zero means now.
	Timestamp time.Time `json:"Timestamp,omitzero"`
	Value     float64   `json:"Value"`
	Values    []float64 `json:"Values,omitempty"`
	Counts    []float64 `json:"Counts,omitempty"`
	Unit      string    `json:"Unit,omitempty"`
}

// MarshalJSON writes Value only when Values is empty: a body with both is
// refused, as CloudWatch refuses it.
func (d Datum) MarshalJSON() ([]byte, error) {
	type plain Datum
	if len(d.Values) == 0 {
		return json.Marshal(plain(d))
	}
	return json.Marshal(struct {
		plain
		Value *float64 `json:"Value,omitempty"`
	}{plain: plain(d)})
}

// PutMetricDataResponse is the body of POST /v1/metrics.
type PutMetricDataResponse struct {
	Accepted int          `json:"accepted"`
	Errors   []DatumError `json:"errors"`
	// Error and Code are set when some datum was refused (status 400).
	Error string `json:"error,omitempty"`
	Code  string `json:"code,omitempty"`
}

// DatumError is why one datum was refused.
type DatumError struct {
	Index int    `json:"index"`
	Error string `json:"error"`
}

// Statistics is GetMetricStatistics' answer: the periods with data.
type Statistics struct {
	Label      string      `json:"Label"`
	Datapoints []Datapoint `json:"Datapoints"`
}

// Datapoint is the statistics of one period; only those asked for are set.
type Datapoint struct {
	Timestamp          time.Time          `json:"Timestamp"`
	SampleCount        *float64           `json:"SampleCount,omitempty"`
	Average            *float64           `json:"Average,omitempty"`
	Sum                *float64           `json:"Sum,omitempty"`
	Minimum            *float64           `json:"Minimum,omitempty"`
	Maximum            *float64           `json:"Maximum,omitempty"`
	ExtendedStatistics map[string]float64 `json:"ExtendedStatistics,omitempty"`
	Unit               string             `json:"Unit,omitempty"`
}

// Series is one series with its memory.
type Series struct {
	Namespace  string      `json:"Namespace"`
	MetricName string      `json:"MetricName"`
	Dimensions []Dimension `json:"Dimensions"`
	Unit       string      `json:"Unit,omitempty"`
	Last       time.Time   `json:"Last"`
	Bytes      int64       `json:"Bytes"`
	MaxBytes   int64       `json:"MaxBytes"`
}

// ListMetricsResponse is the body of GET /v1/metrics.
type ListMetricsResponse struct {
	Metrics []Series `json:"Metrics"`
	// Series and Bytes count every series, not only those listed.
	Series     int    `json:"Series"`
	Bytes      int64  `json:"Bytes"`
	MaxSeries  int    `json:"MaxSeries"`
	Resolution string `json:"Resolution"`
	Retention  string `json:"Retention"`
}
