#!/bin/sh
# What replacing a group's instances costs its clients: an instance refresh
# beside terminating each instance by hand, for groups of three and one,
# in the same run. Usage: bench/change.sh [-rounds 3] [-clients 8]
set -eu
command -v go >/dev/null 2>&1 || export PATH="$PATH:/usr/local/go/bin"
cd "$(dirname "$0")/.."
mkdir -p bin
export CGO_ENABLED=0
go build -o bin/autoheal ./cmd/autoheal
go build -o bin/web ./examples/web/app
go build -o bin/bench-change ./bench/change
exec bin/bench-change "$@"
