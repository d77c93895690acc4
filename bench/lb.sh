#!/bin/sh
# Load balancer benchmark: direct, HAProxy (http and tcp), nginx and autoheal's
# http and tcp listeners against the same two backends, with wrk.
# Usage: bench/lb.sh [-duration 10s] [-rounds 5] [-only autoheal-http,haproxy-http] ...
#        bench/lb.sh -attacks [-slowloris 2000] [-idle-conns 10000] [-phase 20s] ...
#        (slowloris and an idle flood against autoheal's http listener and
#        HAProxy: a normal client's answered share and latency, and RSS)
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

# The attacks hold 12,000 connections at once, each a descriptor in this
# benchmark and one or two in the proxy; HAProxy also sizes itself from
# its maxconn. Raise the limit when we may (root); else the attacks that
# do not fit report how many connections could not be dialled.
ulimit -n 100000 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

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
