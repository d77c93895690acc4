#!/bin/sh
# Heal-time, hang and idle-controller benchmarks, each beside a baseline
# measured in the same run. Usage: bench/heal.sh [-cycles 50] [-groups 100] ...
set -eu
# Go from the official tarball lives here when it is not on PATH.
command -v go >/dev/null 2>&1 || export PATH="$PATH:/usr/local/go/bin"
cd "$(dirname "$0")/.."
mkdir -p bin
# Without cgo the binary starts faster, and it is re-executed as each instance's shim.
export CGO_ENABLED=0
go build -o bin/autoheal ./cmd/autoheal
go build -o bin/pet ./examples/pet
go build -o bin/web ./examples/web/app
go build -o bin/bench-heal ./bench/heal
exec bin/bench-heal "$@"
