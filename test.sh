#!/bin/sh
# Runs the whole test suite on a fresh machine: installs what the tests need,
# vets, and runs every test with the race detector. CI runs exactly this.
set -eu
# Go from the official tarball lives here when it is not on PATH.
command -v go >/dev/null 2>&1 || export PATH="$PATH:/usr/local/go/bin"
cd "$(dirname "$0")"
command -v go >/dev/null || { echo "test.sh: Go is required (https://go.dev/dl)" >&2; exit 1; }
go vet ./...
go test -race -count=1 -timeout 14m ./...
