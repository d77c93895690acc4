package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestExpiry: a renewal's TTL counts from the send time, the earliest
// etcd can have processed it.
func TestExpiry(t *testing.T) {
	sent := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	if got := expiry(sent, 2); !got.Equal(sent.Add(2 * time.Second)) {
		t.Fatalf("expiry = %v", got)
	}
	if got := expiry(sent, 0); !got.Equal(sent) {
		t.Fatalf("an expired lease gives no time: %v", got)
	}
}

// TestRenewalWait: a third of the TTL normally (two renewals may be lost),
// a tenth after a failure.
func TestRenewalWait(t *testing.T) {
	for _, tc := range []struct {
		ttl    time.Duration
		failed bool
		want   time.Duration
	}{
		{2 * time.Second, false, 666666666},
		{2 * time.Second, true, 200 * time.Millisecond},
		{30 * time.Second, false, 10 * time.Second},
		{30 * time.Second, true, 3 * time.Second},
	} {
		if got := renewalWait(tc.ttl, tc.failed); got != tc.want {
			t.Errorf("renewalWait(%v, %v) = %v, want %v", tc.ttl, tc.failed, got, tc.want)
		}
	}
}

// TestFenceAt: stopping starts early enough to end by SafeUntil.
func TestFenceAt(t *testing.T) {
	safe := time.Date(2026, 12, 7, 10, 0, 2, 0, time.UTC)
	if got := FenceAt(safe, 800*time.Millisecond); !got.Equal(safe.Add(-800 * time.Millisecond)) {
		t.Fatalf("FenceAt = %v", got)
	}
}

// TestCanonical: comments, layout, key order and flow or block style do
// not make two configs differ; a value does.
func TestCanonical(t *testing.T) {
	a, err := canonical([]byte("# one\ngroups:\n  - name: g\n    launch: {command: sh, args: [-c, x]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := canonical([]byte("groups:\n- launch:\n    args:\n    - -c\n    - x\n    command: sh   # the shell\n  name: g\n"))
	if err != nil {
		t.Fatal(err)
	}
	if hashOf(a) != hashOf(b) {
		t.Fatalf("same config, different trees:\n%s\n%s", a, b)
	}
	c, _ := canonical([]byte("groups:\n  - name: g\n    launch: {command: sh, args: [-c, y]}\n"))
	if hashOf(a) == hashOf(c) {
		t.Fatal("different args, same hash")
	}
}

// TestDiff: every difference at its path, in the file's terms; secrets
// are named, never printed.
func TestDiff(t *testing.T) {
	tree := func(yaml string) any {
		b, err := canonical([]byte(yaml))
		if err != nil {
			t.Fatal(err)
		}
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct {
		name, cluster, host string
		want                []string
	}{
		{"same", "a: 1\n", "a: 1\n", nil},
		{"scalar", "groups: [{name: g, launch: {command: /bin/a}}]\n", "groups: [{name: g, launch: {command: /bin/b}}]\n",
			[]string{`groups[0].launch.command: the cluster has "/bin/a", this host has "/bin/b"`}},
		{"key only here", "a: 1\n", "a: 1\nb: [1]\n", []string{"b: the cluster has none, this host has [1]"}},
		{"key only there", "a: 1\nb: x\n", "a: 1\n", []string{`b: the cluster has "x", this host has none`}},
		{"list length", "l: [1, 2]\n", "l: [1, 3, 4]\n", []string{"l: the cluster has 2 items, this host has 3", "l[1]: the cluster has 2, this host has 3"}},
		{"type", "a: {b: 1}\n", "a: [1]\n", []string{`a: the cluster has {"b":1}, this host has [1]`}},
		{"whole file", "1\n", "2\n", []string{"(the whole file): the cluster has 1, this host has 2"}},
		{"secret", "channels: [{name: c, secret: s1}]\n", "channels: [{name: c, secret: s2}]\n", []string{"channels[0].secret: differs (a secret: values not shown)"}},
		{"long value cut", "a: " + strings.Repeat("x", 100) + "\n", "a: y\n", []string{`a: the cluster has "` + strings.Repeat("x", 56) + `..., this host has "y"`}},
	} {
		got := diff(tree(tc.cluster), tree(tc.host))
		if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
			t.Errorf("%s:\ngot  %q\nwant %q", tc.name, got, tc.want)
		}
	}
}

// TestUnreachable: a request goes on to the next etcd member only when
// this one did not answer in time; an answer from etcd itself is final
// (a refused write must not be retried elsewhere as if unseen).
func TestUnreachable(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{context.DeadlineExceeded, true},
		{fmt.Errorf("txn: %w", context.Canceled), true},
		{status.Error(codes.Unavailable, "connection refused"), true},
		{status.Error(codes.DeadlineExceeded, "deadline"), true},
		{rpctypes.ErrGRPCNoLeader, true},
		{rpctypes.ErrGRPCTooManyOps, false},
		{rpctypes.ErrGRPCLeaseNotFound, false},
		{rpctypes.ErrGRPCPermissionDenied, false},
		{errors.New("something else"), false},
	} {
		if got := unreachable(tc.err); got != tc.want {
			t.Errorf("unreachable(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
