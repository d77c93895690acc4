// Package cluster joins autoheal on several hosts through etcd
// (docs/design.md#13-the-cluster): each host's membership is an etcd lease
// it renews itself, so that it always knows until when the cluster still
// counts it a member (Lease.SafeUntil) and can stop its pets before that;
// one host is elected leader with etcd's concurrency package, and the
// leader's writes are fenced by its election key, so that a deposed
// leader's late write fails; every host must load the same config, which
// the first host records and every other compares with its own, naming
// the difference.
//
// Keys, under /autoheal/CLUSTER/:
//
//	config          the cluster's config (canonical JSON) and its hash
//	hosts/NAME      a member: its record, attached to its lease
//	leader/         the election (concurrency.Election's keys)
//	state/...       records written by the leader, fenced (Member.Write)
package cluster
