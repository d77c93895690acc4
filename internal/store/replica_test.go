package store

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// memReplica keeps what it is given, as etcd would; refuse makes it fail
// every write, as etcd does for a deposed leader.
type memReplica struct {
	mu     sync.Mutex
	recs   map[string][]byte
	calls  int
	refuse error
}

func (m *memReplica) Replicate(_ context.Context, recs []Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.refuse != nil {
		return m.refuse
	}
	m.calls++
	for _, r := range recs {
		if r.Value == nil {
			delete(m.recs, r.Key)
		} else {
			m.recs[r.Key] = r.Value
		}
	}
	return nil
}

func (m *memReplica) records() []Record {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Record
	for k, v := range m.recs {
		out = append(out, Record{Key: k, Value: v})
	}
	slices.SortFunc(out, func(a, b Record) int { return strings.Compare(a.Key, b.Key) })
	return out
}

func openStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestReplicaFollowsEveryWrite: every kind of write that must survive a
// leader reaches the replica before it commits, deletions included, and
// a new leader's store imported from the replica holds what the old one
// held, row for row. The journal is not replicated.
func TestReplicaFollowsEveryWrite(t *testing.T) {
	ctx := context.Background()
	old := openStore(t)
	rep := &memReplica{recs: map[string][]byte{}}
	old.SetReplica(rep)
	at := time.Unix(1_700_000_000, 123456789) // nanoseconds must survive
	steps := []func() error{
		func() error { return old.PutGroup(ctx, Group{Name: "pet", Min: 1, Max: 1, Desired: 1}) },
		func() error { return old.Set(ctx, "maintenance/records", `{"w":1}`) },
		func() error { return old.Set(ctx, "gone", "x") },
		func() error { return old.Delete(ctx, "gone") },
		func() error {
			return old.PutExecution(ctx, ExecutionRecord{ID: "e-1", Document: "d", Status: "Running", StartedAt: at, Body: []byte(`{"step":2}`)})
		},
		func() error {
			return old.PutIncident(ctx, IncidentRecord{ID: "n-1", Key: "k", Status: "open", OpenedAt: at, Body: []byte(`{}`)})
		},
		func() error {
			_, err := old.EnqueueNotifications(ctx, []NotificationRecord{{Channel: "c", Event: "e", Body: []byte("b")}})
			return err
		},
	}
	for i, step := range steps {
		before := rep.calls
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if rep.calls != before+1 {
			t.Fatalf("step %d reached the replica %d times, want once", i, rep.calls-before)
		}
	}
	// Neither the journal, nor instances, nor attachments are replicated.
	if _, err := old.SwapAttachment(ctx, Attachment{Kind: "volume", Group: "pet", Name: "data"}, "i-1", true); err != nil || rep.calls != len(steps) {
		t.Fatalf("an attachment reached the replica (%d calls, %v)", rep.calls, err)
	}
	if _, err := old.Append(ctx, Event{Type: "x"}); err != nil || rep.calls != len(steps) {
		t.Fatalf("the journal reached the replica (%d calls, %v)", rep.calls, err)
	}
	if err := old.PutInstance(ctx, Instance{ID: "i-1", Group: "pet", State: "InService", LaunchedAt: at}); err != nil || rep.calls != len(steps) {
		t.Fatalf("an instance reached the replica (%d calls, %v)", rep.calls, err)
	}
	want, err := old.Replicated(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := rep.records(); !reflect.DeepEqual(got, sortRecs(want)) {
		t.Fatalf("the replica holds\n%v\nthe store\n%v", keys(got), keys(want))
	}
	for _, k := range []string{"kv/gone"} {
		if _, ok := rep.recs[k]; ok {
			t.Fatalf("%s was deleted from the store, not from the replica", k)
		}
	}

	next := openStore(t)
	if err := next.Set(ctx, "stale", "x"); err != nil {
		t.Fatal(err)
	}
	if err := next.Import(ctx, rep.records()); err != nil {
		t.Fatal(err)
	}
	got, err := next.Replicated(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(sortRecs(got), sortRecs(want)) {
		t.Fatalf("imported\n%v\nwant\n%v", keys(got), keys(want))
	}
	ex, err := next.Execution(ctx, "e-1")
	if err != nil || !ex.StartedAt.Equal(at) || string(ex.Body) != `{"step":2}` {
		t.Fatalf("imported execution %+v %v", ex, err)
	}
	if _, err := next.Get(ctx, "stale"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a row the replica does not have survived the import: %v", err)
	}
	// Notification ids go on from the imported ones: never reused.
	ns, err := next.EnqueueNotifications(ctx, []NotificationRecord{{Channel: "c", Event: "e"}})
	if err != nil || ns[0].ID != 2 {
		t.Fatalf("next notification id %v %v, want 2", ns, err)
	}
}

// TestReplicaRefusalRollsBack: a write the replica refuses (a deposed
// leader's) is not made, and says why.
func TestReplicaRefusalRollsBack(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	notLeader := errors.New("not the cluster's leader")
	s.SetReplica(&memReplica{recs: map[string][]byte{}, refuse: notLeader})
	err := s.PutGroup(ctx, Group{Name: "pet", Desired: 3})
	if !errors.Is(err, notLeader) {
		t.Fatalf("PutGroup: %v, want the replica's refusal", err)
	}
	if _, err := s.Group(ctx, "pet"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the refused write was made: %v", err)
	}
	if s.Health().Writable != true {
		t.Fatal("a refusal by the replica degraded the store (it is not the disk's)")
	}
}

func sortRecs(r []Record) []Record {
	r = slices.Clone(r)
	slices.SortFunc(r, func(a, b Record) int { return strings.Compare(a.Key, b.Key) })
	return r
}

func keys(r []Record) []string {
	var k []string
	for _, x := range r {
		k = append(k, x.Key+"="+string(x.Value))
	}
	return k
}
