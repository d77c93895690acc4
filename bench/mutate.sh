#!/bin/sh
# Mutation pass over the decision files: each mutant in
# bench/mutate/mutants.txt is applied, its package's unit tests run, and
# the file put back. Usage: bench/mutate.sh [-only REGEXP] [-o table.md]
# Exit 0 when every mutant is killed or marked equivalent.
set -eu
command -v go >/dev/null 2>&1 || export PATH="$PATH:/usr/local/go/bin"
cd "$(dirname "$0")/.."
mkdir -p bin
go build -o bin/mutate ./bench/mutate
exec bin/mutate "$@"
