#!/bin/sh
# Runs the whole test suite on a fresh machine: installs what the tests need,
# checks formatting, vets, and runs every test with the race detector. CI runs
# exactly this.
set -eu
# Go from the official tarball lives here when it is not on PATH.
command -v go >/dev/null 2>&1 || export PATH="$PATH:/usr/local/go/bin"
cd "$(dirname "$0")"
command -v go >/dev/null || { echo "test.sh: Go is required (https://go.dev/dl)" >&2; exit 1; }

# The /metrics and Alertmanager tests run the real servers from Debian's
# packages: prometheus (prometheus, promtool) and prometheus-alertmanager;
# the pet's runbook uses curl; the dashboard's browser tests drive headless
# Chromium (/usr/bin/chromium); the crash-recovery test runs PostgreSQL 15
# (postgresql); the cluster's tests run etcd members (etcd-server); the
# AWS endpoint's tests drive it with Debian's AWS CLI and boto3 (awscli,
# python3-boto3).
# Install them when they are missing and we may (root, or sudo without a
# password); then the tests must not skip, so AUTOHEAL_REQUIRE_TOOLS=1 makes
# a missing binary fail them. The tests start the binaries themselves and
# never use the packages' system services.
have_tools() {
	command -v curl >/dev/null 2>&1 &&
		command -v promtool >/dev/null 2>&1 &&
		{ command -v prometheus >/dev/null 2>&1 || [ -x /usr/bin/prometheus ]; } &&
		{ command -v prometheus-alertmanager >/dev/null 2>&1 || [ -x /usr/bin/prometheus-alertmanager ]; } &&
		[ -x /usr/bin/chromium ] &&
		[ -x /usr/lib/postgresql/15/bin/postgres ] &&
		[ -x /usr/bin/etcd ] &&
		[ -x /usr/bin/aws ] &&
		/usr/bin/python3 -c 'import boto3' >/dev/null 2>&1
}
packages="prometheus prometheus-alertmanager curl chromium postgresql etcd-server awscli python3-boto3"
if ! have_tools; then
	if [ "$(id -u)" -eq 0 ]; then
		as_root=""
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
		as_root="sudo -n"
	else
		as_root="no"
	fi
	if [ "$as_root" = no ] || ! command -v apt-get >/dev/null 2>&1; then
		echo "test.sh: some of $packages missing and cannot install them (needs apt-get and root or sudo); their tests will skip" >&2
	else
		echo "test.sh: installing Debian packages $packages (apt-get)"
		if $as_root apt-get update -qq &&
			$as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $packages; then
			echo "test.sh: installed $packages"
		else
			echo "test.sh: installing $packages failed; their tests will skip" >&2
		fi
	fi
fi
if have_tools; then
	export AUTOHEAL_REQUIRE_TOOLS="${AUTOHEAL_REQUIRE_TOOLS:-1}"
fi

unformatted=$(gofmt -l cmd internal bench examples)
if [ -n "$unformatted" ]; then
	echo "not gofmt'd (run gofmt -w):" >&2
	echo "$unformatted" >&2
	exit 1
fi
go vet ./...
go test -race -count=1 -timeout 14m ./...
# The crash points only exist in builds with their tag (package crashpoint).
go test -race -count=1 -tags crashpoints ./internal/crashpoint/
# A short pass of every fuzz target (fuzz.sh finds them): a few seconds each
# catches what the seed corpora and a little mutation find; longer runs are
# ./fuzz.sh alone (10m each). FuzzScanExact (the input limits' scan never
# counting less than the YAML parser) still finds layouts the parser reads
# in ways of its own; CheckTree makes the limits exact on them and
# FuzzCheck, run here, holds the scan within twice the limits. A find of
# FuzzScanExact would fail an unrelated change: it runs long with
# ./fuzz.sh FuzzScanExact, and its corpus runs with the tests above.
./fuzz.sh -t 3s -x 'limits FuzzScanExact'
