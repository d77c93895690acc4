#!/bin/sh
# Runs the whole test suite on a fresh machine: installs what the tests need,
# vets, and runs every test with the race detector. CI runs exactly this.
set -eu
cd "$(dirname "$0")"
command -v go >/dev/null || { echo "test.sh: Go is required (https://go.dev/dl)" >&2; exit 1; }
go vet ./...
go test -race -count=1 -timeout 14m ./...
