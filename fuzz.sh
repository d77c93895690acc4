#!/bin/sh
# Runs every Go fuzz target of the repository, one after the other, each for
# a while, and fails if any of them finds a failing input. Targets are found
# by grep: every "func FuzzX(" in a _test.go file, so a new one is run with
# no change here.
#
#   ./fuzz.sh                 every target for 10m (FUZZTIME)
#   ./fuzz.sh -t 5s           every target for 5s (test.sh's short pass)
#   ./fuzz.sh -t 20m Config   the targets whose package or name matches
#   ./fuzz.sh -x FuzzCheck    every target but those that match
#
# A failing input is written by Go under the package's
# testdata/fuzz/<Target>/; commit it with the fix, it then runs with the
# ordinary tests. Workers: FUZZ_PARALLEL, default 1 (the machine is shared).
set -eu
command -v go >/dev/null 2>&1 || export PATH="$PATH:/usr/local/go/bin"
cd "$(dirname "$0")"

time="${FUZZTIME:-10m}"
parallel="${FUZZ_PARALLEL:-1}"
exclude=""
while getopts t:p:x: opt; do
	case $opt in
	t) time=$OPTARG ;;
	p) parallel=$OPTARG ;;
	x) exclude=$OPTARG ;;
	*) echo "usage: $0 [-t duration] [-p workers] [-x exclude] [pattern]" >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
pattern="${1:-}"

# "dir name" per target, in a stable order.
targets=$(grep -rEo --include='*_test.go' '^func Fuzz[A-Za-z0-9_]+\(' cmd internal bench examples 2>/dev/null |
	sed -E 's|^(.*)/[^/]+_test\.go:func (Fuzz[A-Za-z0-9_]+)\($|\1 \2|' | sort -u)
if [ -n "$pattern" ]; then
	targets=$(printf '%s\n' "$targets" | grep -- "$pattern" || true)
fi
if [ -n "$exclude" ]; then
	targets=$(printf '%s\n' "$targets" | grep -v -- "$exclude" || true)
fi
if [ -z "$targets" ]; then
	echo "fuzz.sh: no fuzz target${pattern:+ matches $pattern}" >&2
	exit 2
fi

count=$(printf '%s\n' "$targets" | wc -l)
echo "fuzz.sh: $count target(s), $time each, $parallel worker(s)"
failed=""
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# The loop reads the list from a here-document, not a pipe, so that
# failed is set in this shell.
while read -r dir name; do
	start=$(date +%s)
	if go test -run '^$' -fuzz "^${name}\$" -fuzztime "$time" -parallel "$parallel" "./$dir" >"$log" 2>&1; then
		echo "ok    $dir $name ($(($(date +%s) - start))s, $(grep -Eo 'execs: [0-9]+' "$log" | tail -1 | cut -d' ' -f2) execs)"
	elif grep -Eq '^ *context deadline exceeded$' "$log" && ! grep -q 'Failing input written' "$log" &&
		! grep -Eq -- "--- FAIL: ${name}/" "$log"; then
		# Go 1.26's fuzz coordinator can report its own -fuzztime deadline
		# as a failure when a worker is slow to stop (golang/go#75804,
		# fixed in Go 1.27): no input failed, so it is not one.
		echo "ok    $dir $name ($(($(date +%s) - start))s, $(grep -Eo 'execs: [0-9]+' "$log" | tail -1 | cut -d' ' -f2) execs; the coordinator's deadline race golang/go#75804 ignored)"
	else
		echo "FAIL  $dir $name"
		sed 's/^/      /' "$log" | tail -40
		failed="$failed $dir:$name"
	fi
done <<EOT
$targets
EOT
if [ -n "$failed" ]; then
	echo "fuzz.sh: failed:$failed" >&2
	echo "fuzz.sh: the failing inputs are under each package's testdata/fuzz/<Target>/" >&2
	exit 1
fi
echo "fuzz.sh: no failure"
