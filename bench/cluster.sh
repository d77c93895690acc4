#!/bin/sh
# Cluster failover: for each fault (the leader's host crashed, cut off, only
# its controller killed, crashed while replacing the pet, or etcd lost
# with a follower's host), the time from the fault (for the last: from
# etcd's return) to the pet's first good answer at its virtual IP from
# another host (every write the client acknowledged through the virtual IP
# kept, its log verified), median and max over N rounds, beside the lease
# TTL; then, for placed groups, a pet on a follower cut off (to its first
# answer at its virtual IP, which follows it), a follower's host crashing
# under a spread group of three (to its instance replaced and healthy), and
# the leader's host crashing under it (to the group whole again, the two
# surviving instances taken over); then etcd lost by every host for 30 s (the pet must answer
# throughout), and the idle cost. Each round is one run of the end-to-end
# test: three hosts as network namespaces, a 3-member etcd across them
# (Debian's etcd-server), autoheal serve on each, the pet on shared
# storage. Needs root (namespaces).
#
#   bench/cluster.sh           10 rounds of each fault
#   bench/cluster.sh -n 20     20 rounds
#
# The time includes the pet's own start-up on the new host (the pet starts
# in a few milliseconds); the client polls the virtual IP without pause
# (each request bounded to 300 ms).
set -eu
command -v go >/dev/null 2>&1 || export PATH="$PATH:/usr/local/go/bin"
cd "$(dirname "$0")/.."
rounds=10
while getopts n: opt; do
	case $opt in
	n) rounds=$OPTARG ;;
	*) echo "usage: $0 [-n rounds]" >&2; exit 2 ;;
	esac
done
[ -x /usr/bin/etcd ] || { echo "bench/cluster.sh: etcd missing (apt-get install etcd-server)" >&2; exit 1; }
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for fault in TestClusterHostCrash TestClusterLeaderPartitioned TestClusterControllerKilled TestClusterHostCrashDuringReplacement TestClusterEtcdLostWithAHost \
	TestClusterFollowerPartitioned TestClusterPlacement TestClusterPlacementLeaderCrash; do
	AUTOHEAL_REQUIRE_TOOLS=1 go test -count="$rounds" -timeout 60m -v -run "^$fault\$" ./internal/server/ >"$log" 2>&1 || {
		tail -50 "$log" >&2
		echo "bench/cluster.sh: $fault failed" >&2
		exit 1
	}
	# "... answered on h2 after 1.962s (lease TTL 2s)"
	grep -o 'after [0-9.]*m\{0,1\}s (lease TTL [0-9a-z]*)' "$log" |
		awk -v fault="$fault" '
		{ v = $2; if (v ~ /ms$/) { sub(/ms$/, "", v); v /= 1000 } else { sub(/s$/, "", v) }
		  t[n++] = v; ttl = $5; sub(/\)$/, "", ttl) }
		END {
			if (n == 0) { print fault ": no rounds measured"; exit 1 }
			for (i = 0; i < n; i++) for (j = i + 1; j < n; j++) if (t[j] < t[i]) { x = t[i]; t[i] = t[j]; t[j] = x }
			med = (n % 2) ? t[int(n / 2)] : (t[n / 2 - 1] + t[n / 2]) / 2
			printf "%-30s rounds %3d  median %.2fs  max %.2fs  min %.2fs  lease TTL %s\n", fault, n, med, t[n - 1], t[0], ttl
		}'
done
# etcd lost by every host for 30 s: the failsafe keeps the pet.
AUTOHEAL_REQUIRE_TOOLS=1 go test -count=1 -timeout 20m -v -run '^TestClusterEtcdLost$' ./internal/server/ >"$log" 2>&1 || {
	tail -50 "$log" >&2
	echo "bench/cluster.sh: TestClusterEtcdLost failed" >&2
	exit 1
}
grep -E 'etcd lost for|etcd back:' "$log" | sed -E 's/^ *cluster_failsafe_test.go:[0-9]+: /TestClusterEtcdLost: /'
# The cost of an idle cluster: 3 hosts, 100 groups on the leader, 30 s,
# with a 2 s lease and with a 5 s one.
for ttl in 2s 5s; do
	AUTOHEAL_CLUSTER_TTL=$ttl AUTOHEAL_CLUSTER_IDLE=1 AUTOHEAL_REQUIRE_TOOLS=1 go test -count=1 -timeout 20m -v -run '^TestClusterIdleCost$' ./internal/server/ >"$log" 2>&1 || {
		tail -50 "$log" >&2
		echo "bench/cluster.sh: TestClusterIdleCost ($ttl) failed" >&2
		exit 1
	}
	grep -E 'starting the cluster|idle cluster|  etcd|  autoheal|  records' "$log" | sed -E 's/^ *cluster_idle_test.go:[0-9]+: //'
done
