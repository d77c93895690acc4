// Package metrics is autoheal's series store: it ingests datums shaped like
// CloudWatch's PutMetricData, keeps each series in a ring of fixed-width
// time slots in memory (count, sum, minimum, maximum and a bounded sketch
// for percentiles per slot), answers GetMetricStatistics-shaped queries and
// the per-period aggregates the alarm evaluator needs, and snapshots itself
// to one file so that a controller restart keeps the last hours.
//
// It owns the series and their memory. It does not know HTTP (internal/api
// decodes requests, with DecodePut here so that the decoder can be fuzzed
// beside the store), where built-in metrics come from, or what an alarm is.
//
// Memory is bounded: at most Options.MaxSeries series, each with at most
// Slots() slots (allocated lazily in pages of 64) and at most
// SketchBuckets sketch buckets per slot; Series reports each series' bytes
// and its bound.
package metrics
