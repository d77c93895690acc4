#!/bin/sh
# Load balancer benchmark: direct, HAProxy (http and tcp), nginx and autoheal's
# http and tcp listeners against the same two backends, with wrk.
# Usage: bench/lb.sh [-duration 10s] [-rounds 5] [-only autoheal-http,haproxy-http] ...
set -eu
# Go from the official tarball lives here when it is not on PATH; haproxy and
# nginx live in sbin, which is not on every user's PATH.
command -v go >/dev/null 2>&1 || export PATH="$PATH:/usr/local/go/bin"
export PATH="$PATH:/usr/sbin:/sbin"
cd "$(dirname "$0")/.."

missing=
for p in haproxy nginx wrk; do
	command -v "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "installing$missing from Debian's packages" >&2
	sudo=
	[ "$(id -u)" -eq 0 ] || sudo=sudo
	# The package lists may be missing or stale; refresh them only then.
	# shellcheck disable=SC2086 # $missing is a list of words
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing >/dev/null ||
		{ $sudo apt-get update -q >/dev/null &&
			$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing >/dev/null; }
fi

mkdir -p bin
export CGO_ENABLED=0
go build -o bin/web ./examples/web/app
go build -o bin/bench-lb ./bench/lb
# autoheal not building must not hide the baselines: its variants are then
# reported failed with the compiler's output, and the others still run.
if ! out=$(go build -o bin/autoheal ./cmd/autoheal 2>&1); then
	echo "autoheal does not build; its variants will be reported failed" >&2
	set -- -autoheal-unbuilt "$out" "$@"
fi
exec bin/bench-lb "$@"
