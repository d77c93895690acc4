#!/bin/sh
# Builds autoheal and the example apps, then runs the pet demo in the
# foreground (Ctrl-C stops the controller; the pet keeps running and the next
# ./demo.sh re-adopts it). State lives in ./.autoheal-state.
set -eu
# Go from the official tarball lives here when it is not on PATH.
command -v go >/dev/null 2>&1 || export PATH="$PATH:/usr/local/go/bin"
cd "$(dirname "$0")"
mkdir -p bin
# The pet's runbook (examples/pet/documents) restarts its service with curl.
if ! command -v curl >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
	echo "demo.sh: installing curl (apt-get)"
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends curl
fi
# Without cgo the binary starts faster, and it is re-executed as each instance's shim.
export CGO_ENABLED=0
go build -o bin/autoheal ./cmd/autoheal
go build -o bin/pet ./examples/pet
go build -o bin/web ./examples/web/app
echo "autoheal built; the pet will answer at http://127.0.0.1:8080 (API on 127.0.0.1:7070)"
exec bin/autoheal serve --config examples/pet/autoheal.yaml --state-dir "${AUTOHEAL_STATE_DIR:-.autoheal-state}" "$@"
