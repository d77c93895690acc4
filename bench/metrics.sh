#!/bin/sh
# Metrics ingest benchmarks: in-process Put (1000 datums of one value, and
# 100 datums of 150 values, per batch) beside a map[string]float64 update
# loop; the PutMetricData decoder beside encoding/json; POST /v1/metrics over
# a real loopback socket (1000 datums per request) beside the same requests
# to an empty handler. Each prints datapoints/s (or datums/s) and its
# baseline from the same run.
# Usage: bench/metrics.sh [-benchtime 3s] [-count 1]
set -eu
# Go from the official tarball lives here when it is not on PATH.
command -v go >/dev/null 2>&1 || export PATH="$PATH:/usr/local/go/bin"
cd "$(dirname "$0")/.."
go test -run '^$' -bench 'BenchmarkPut$|BenchmarkDecodePut' -benchmem "$@" ./internal/metrics/
go test -run '^$' -bench 'BenchmarkPutMetricDataHTTP' -benchmem "$@" ./internal/api/
