package store

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/autoheal/autoheal/internal/event"
)

func open(t testing.TB, dir string) *Store {
	t.Helper()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestOpenSetsDurability(t *testing.T) {
	s := open(t, t.TempDir())
	ctx := context.Background()
	var mode string
	var sync, fk, version int
	if err := s.w.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if err := s.w.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync); err != nil {
		t.Fatal(err)
	}
	if err := s.w.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk); err != nil {
		t.Fatal(err)
	}
	if err := s.r.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		t.Fatal(err)
	}
	if mode != "wal" || sync != 2 || fk != 1 || version != SchemaVersion() {
		t.Fatalf("journal_mode=%s synchronous=%d foreign_keys=%d user_version=%d; want wal, 2 (FULL), 1, %d",
			mode, sync, fk, version, SchemaVersion())
	}
	if _, err := s.r.ExecContext(ctx, "INSERT INTO kv (key, value) VALUES ('a', 'b')"); err == nil {
		t.Fatal("the read pool accepted a write")
	}
}

func TestRoundTrip(t *testing.T) {
	s := open(t, t.TempDir())
	ctx := context.Background()
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.UTC)
	term := t0.Add(time.Hour)

	t.Run("instance", func(t *testing.T) {
		in := Instance{
			ID: "i-0123456789abcdef0", Group: "web", State: "InService", Health: "healthy",
			Pid: 42, Restarts: 2, Ports: map[string]int{"http": 8080},
			LaunchedAt: t0, UpdatedAt: t0.Add(time.Minute), LastExit: `{"code":1}`, Cause: "launch",
		}
		if err := s.PutInstance(ctx, in); err != nil {
			t.Fatal(err)
		}
		got, err := s.Instance(ctx, in.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, in) {
			t.Fatalf("got %+v\nwant %+v", got, in)
		}
		in.State, in.TerminatedAt, in.Ports = Terminated, &term, nil
		if err := s.PutInstance(ctx, in); err != nil {
			t.Fatal(err)
		}
		got, _ = s.Instance(ctx, in.ID)
		if !reflect.DeepEqual(got, in) {
			t.Fatalf("after update got %+v\nwant %+v", got, in)
		}
		if _, err := s.Instance(ctx, "i-missing"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("missing instance: %v, want ErrNotFound", err)
		}
	})

	t.Run("zero times", func(t *testing.T) {
		if err := s.PutInstance(ctx, Instance{ID: "i-zero", Group: "web"}); err != nil {
			t.Fatal(err)
		}
		got, err := s.Instance(ctx, "i-zero")
		if err != nil {
			t.Fatal(err)
		}
		if !got.LaunchedAt.IsZero() || got.UpdatedAt.IsZero() || got.TerminatedAt != nil {
			t.Fatalf("launched %v updated %v terminated %v: want zero, now, nil", got.LaunchedAt, got.UpdatedAt, got.TerminatedAt)
		}
	})

	t.Run("group", func(t *testing.T) {
		g := Group{Name: "web", Status: "Impaired", Reason: "too many replacements", Min: 1, Max: 3, Desired: 2,
			Heal: `{"r":[1]}`, UpdatedAt: t0}
		if err := s.PutGroup(ctx, g); err != nil {
			t.Fatal(err)
		}
		if err := s.PutGroup(ctx, Group{Name: "db", Status: "Active", Min: 1, Max: 1, Desired: 1, UpdatedAt: t0}); err != nil {
			t.Fatal(err)
		}
		got, err := s.Group(ctx, "web")
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, g) {
			t.Fatalf("got %+v\nwant %+v", got, g)
		}
		all, err := s.Groups(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != 2 || all[0].Name != "db" || all[1].Name != "web" {
			t.Fatalf("groups %+v, want db and web", all)
		}
		if _, err := s.Group(ctx, "nope"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("missing group: %v, want ErrNotFound", err)
		}
	})

	t.Run("attachment", func(t *testing.T) {
		a, err := s.Attachment(ctx, "volume", "web", "data")
		if err != nil {
			t.Fatal(err)
		}
		if want := (Attachment{Kind: "volume", Group: "web", Name: "data"}); a != want {
			t.Fatalf("never attached: got %+v, want %+v", a, want)
		}
		a, err = s.SwapAttachment(ctx, a, "i-1", true)
		if err != nil {
			t.Fatal(err)
		}
		if a.Holder != "i-1" || a.Token != 1 || a.UpdatedAt.IsZero() {
			t.Fatalf("after attach: %+v", a)
		}
		got, err := s.Attachment(ctx, "volume", "web", "data")
		if err != nil {
			t.Fatal(err)
		}
		if got != a {
			t.Fatalf("read back %+v, want %+v", got, a)
		}
		d, err := s.SwapAttachment(ctx, a, "", false)
		if err != nil {
			t.Fatal(err)
		}
		if d.Holder != "" || d.Token != 1 {
			t.Fatalf("detach must keep the token: %+v", d)
		}
		if _, err := s.SwapAttachment(ctx, a, "i-2", true); !errors.Is(err, ErrConflict) {
			t.Fatalf("swap from a stale record: %v, want ErrConflict", err)
		}
		if _, err := s.SwapAttachment(ctx, Attachment{Kind: "address", Group: "db", Name: "pg"}, "i-9", true); err != nil {
			t.Fatal(err)
		}
		list, err := s.Attachments(ctx, "web")
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 1 || list[0].Name != "data" {
			t.Fatalf("attachments of web: %+v", list)
		}
		if list, _ := s.Attachments(ctx, ""); len(list) != 2 {
			t.Fatalf("all attachments: %+v", list)
		}
	})

	t.Run("kv", func(t *testing.T) {
		if _, err := s.Get(ctx, "k"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("missing key: %v, want ErrNotFound", err)
		}
		for _, v := range []string{"1", "two"} {
			if err := s.Set(ctx, "k", v); err != nil {
				t.Fatal(err)
			}
			if got, err := s.Get(ctx, "k"); err != nil || got != v {
				t.Fatalf("get = %q, %v; want %q", got, err, v)
			}
		}
		if err := s.Delete(ctx, "k"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(ctx, "k"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("deleted key: %v, want ErrNotFound", err)
		}
	})

	t.Run("event", func(t *testing.T) {
		// A known kind comes back with its typed data; an unknown one
		// (a newer build's) as the raw JSON it was written with.
		for _, ev := range []Event{
			{Time: t0, Type: event.KindInstanceAdopt, Group: "web", Instance: "i-1", Message: "re-adopted",
				Data: event.InstanceAdopt{State: "InService", Alive: true, Pid: 42}},
			{Time: t0, Type: "instance.launch", Group: "web", Instance: "i-1", Message: "launched",
				Data: event.Raw{K: "instance.launch", JSON: []byte(`{"argv":["a","b"],"pid":42}`)}},
		} {
			out, err := s.Append(ctx, ev)
			if err != nil {
				t.Fatal(err)
			}
			if out[0].Seq == 0 {
				t.Fatal("no seq assigned")
			}
			ev.Seq = out[0].Seq
			got, err := s.Events(ctx, EventFilter{AfterSeq: ev.Seq - 1})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || !reflect.DeepEqual(got[0], ev) {
				t.Fatalf("got %+v\nwant %+v", got, ev)
			}
		}
	})
}

func TestInstancesFilterAndOrder(t *testing.T) {
	s := open(t, t.TempDir())
	ctx := context.Background()
	t0 := time.Now().UTC()
	put := func(id, group, state string, launched time.Time) {
		t.Helper()
		if err := s.PutInstance(ctx, Instance{ID: id, Group: group, State: state, LaunchedAt: launched}); err != nil {
			t.Fatal(err)
		}
	}
	put("i-c", "web", "InService", t0.Add(3*time.Second))
	put("i-a", "web", Terminated, t0.Add(1*time.Second))
	put("i-b", "web", "Pending", t0.Add(2*time.Second))
	put("i-d", "db", "InService", t0)

	ids := func(ins []Instance) string {
		var s []string
		for _, in := range ins {
			s = append(s, in.ID)
		}
		return strings.Join(s, ",")
	}
	for _, tt := range []struct {
		name           string
		group          string
		withTerminated bool
		want           string
	}{
		{"live of web", "web", false, "i-b,i-c"},
		{"all of web", "web", true, "i-a,i-b,i-c"},
		{"live of every group", "", false, "i-d,i-b,i-c"},
		{"everything", "", true, "i-d,i-a,i-b,i-c"},
		{"unknown group", "nope", true, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Instances(ctx, tt.group, tt.withTerminated)
			if err != nil {
				t.Fatal(err)
			}
			if ids(got) != tt.want {
				t.Fatalf("got %s, want %s", ids(got), tt.want)
			}
		})
	}
}

func TestEventsFilter(t *testing.T) {
	s := open(t, t.TempDir())
	ctx := context.Background()
	// seq 1..10: groups alternate a/b, instances i-0..i-4 twice.
	for i := range 10 {
		g := "a"
		if i%2 == 1 {
			g = "b"
		}
		if _, err := s.Append(ctx, Event{Type: "t", Group: g, Instance: fmt.Sprintf("i-%d", i%5), Message: strconv.Itoa(i + 1)}); err != nil {
			t.Fatal(err)
		}
	}
	seqs := func(evs []Event) string {
		var s []string
		for _, ev := range evs {
			s = append(s, strconv.FormatInt(ev.Seq, 10))
		}
		return strings.Join(s, ",")
	}
	for _, tt := range []struct {
		name string
		f    EventFilter
		want string
	}{
		{"all", EventFilter{}, "1,2,3,4,5,6,7,8,9,10"},
		{"group", EventFilter{Group: "b"}, "2,4,6,8,10"},
		{"instance", EventFilter{Instance: "i-1"}, "2,7"},
		{"group and instance", EventFilter{Group: "a", Instance: "i-2"}, "3"},
		{"after", EventFilter{AfterSeq: 7}, "8,9,10"},
		{"limit keeps the oldest", EventFilter{Limit: 3}, "1,2,3"},
		{"tail keeps the newest in ascending order", EventFilter{Limit: 3, Tail: true}, "8,9,10"},
		{"tail of a group", EventFilter{Group: "a", Limit: 2, Tail: true}, "7,9"},
		{"tail after", EventFilter{AfterSeq: 8, Limit: 5, Tail: true}, "9,10"},
		{"tail without limit", EventFilter{Tail: true}, "1,2,3,4,5,6,7,8,9,10"},
		{"nothing after the end", EventFilter{AfterSeq: 10}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Events(ctx, tt.f)
			if err != nil {
				t.Fatal(err)
			}
			if seqs(got) != tt.want {
				t.Fatalf("got %s, want %s", seqs(got), tt.want)
			}
		})
	}
	if last, err := s.LastSeq(ctx); err != nil || last != 10 {
		t.Fatalf("last seq %d, %v; want 10", last, err)
	}
}

func TestAppend(t *testing.T) {
	s := open(t, t.TempDir())
	ctx := context.Background()
	before := time.Now()
	in := []Event{{Type: "a"}, {Type: "b", Time: time.Date(2020, 1, 1, 0, 0, 0, 0, time.FixedZone("x", 3600))}}
	out, err := s.Append(ctx, in...)
	if err != nil {
		t.Fatal(err)
	}
	if out[0].Seq != 1 || out[1].Seq != 2 {
		t.Fatalf("seqs %d %d, want 1 2", out[0].Seq, out[1].Seq)
	}
	if out[0].Time.Before(before.Add(-time.Second)) || out[0].Time.Location() != time.UTC {
		t.Fatalf("zero time must become now in UTC, got %v", out[0].Time)
	}
	if !out[1].Time.Equal(in[1].Time) {
		t.Fatalf("given time changed: %v", out[1].Time)
	}
	if in[0].Seq != 0 {
		t.Fatal("Append modified the caller's slice")
	}
	if out, err := s.Append(ctx); err != nil || out != nil {
		t.Fatalf("empty append: %v %v", out, err)
	}
	if _, err := s.Append(ctx, Event{Type: "ok"}, Event{Message: "no type"}); err == nil {
		t.Fatal("an event without a type was accepted")
	}
	if evs, _ := s.Events(ctx, EventFilter{}); len(evs) != 2 {
		t.Fatalf("a failed batch must write nothing, journal has %d events", len(evs))
	}
	if _, err := s.Append(ctx, Event{Type: "bad", Data: event.Raw{K: "bad", JSON: []byte("{")}}); err == nil {
		t.Fatal("unencodable data was accepted")
	}
	if _, err := s.Append(ctx, Event{Type: event.KindGroupActive, Data: event.GroupImpaired{}}); err == nil {
		t.Fatal("an event whose data is of another kind was accepted")
	}
}

func TestPutIsAtomicWithEvents(t *testing.T) {
	s := open(t, t.TempDir())
	ctx := context.Background()
	sub, cancel := s.Subscribe(10)
	defer cancel()

	if err := s.PutInstance(ctx, Instance{ID: "i-1", Group: "g"}, Event{Message: "no type"}); err == nil {
		t.Fatal("put with a bad event succeeded")
	}
	if _, err := s.Instance(ctx, "i-1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("instance written although its event failed: %v", err)
	}
	if err := s.PutGroup(ctx, Group{Name: "g"}, Event{Message: "no type"}); err == nil {
		t.Fatal("put group with a bad event succeeded")
	}
	if _, err := s.Group(ctx, "g"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("group written although its event failed: %v", err)
	}
	a := Attachment{Kind: "volume", Group: "g", Name: "data"}
	if _, err := s.SwapAttachment(ctx, a, "i-1", true, Event{Message: "no type"}); err == nil {
		t.Fatal("swap with a bad event succeeded")
	}
	if got, _ := s.Attachment(ctx, "volume", "g", "data"); got.Token != 0 {
		t.Fatalf("attachment written although its event failed: %+v", got)
	}
	select {
	case ev := <-sub:
		t.Fatalf("published an event of a rolled back transaction: %+v", ev)
	default:
	}

	if err := s.PutInstance(ctx, Instance{ID: "i-1", Group: "g"}, Event{Type: "instance.launch", Instance: "i-1"}); err != nil {
		t.Fatal(err)
	}
	if ev := <-sub; ev.Type != "instance.launch" || ev.Seq == 0 {
		t.Fatalf("published %+v", ev)
	}
}

// TestSwapAttachmentRace: many goroutines race to attach from the same
// record; exactly one must win each round and tokens must strictly increase.
func TestSwapAttachmentRace(t *testing.T) {
	s := open(t, t.TempDir())
	ctx := context.Background()
	const rounds, racers = 20, 16
	var last int64
	for round := range rounds {
		old, err := s.Attachment(ctx, "volume", "g", "data")
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		results := make(chan Attachment, racers)
		errs := make(chan error, racers)
		for i := range racers {
			wg.Go(func() {
				id := fmt.Sprintf("i-%d-%d", round, i)
				a, err := s.SwapAttachment(ctx, old, id, true,
					Event{Type: "volume.attach", Instance: id, Message: "attach"})
				if err != nil {
					errs <- err
					return
				}
				results <- a
			})
		}
		wg.Wait()
		close(results)
		close(errs)
		var winners []Attachment
		for a := range results {
			winners = append(winners, a)
		}
		if len(winners) != 1 {
			t.Fatalf("round %d: %d winners: %+v", round, len(winners), winners)
		}
		for err := range errs {
			if !errors.Is(err, ErrConflict) {
				t.Fatalf("round %d: loser error %v, want ErrConflict", round, err)
			}
		}
		w := winners[0]
		if w.Token <= last {
			t.Fatalf("round %d: token %d after %d", round, w.Token, last)
		}
		last = w.Token
		stored, _ := s.Attachment(ctx, "volume", "g", "data")
		if stored.Holder != w.Holder || stored.Token != w.Token {
			t.Fatalf("round %d: stored %+v, winner %+v", round, stored, w)
		}
	}
	evs, err := s.Events(ctx, EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != rounds {
		t.Fatalf("%d attach events, want one per round (%d): losers must write nothing", len(evs), rounds)
	}
}

func TestSubscribe(t *testing.T) {
	ctx := context.Background()

	t.Run("slow subscriber is dropped, others keep receiving", func(t *testing.T) {
		s := open(t, t.TempDir())
		slow, cancelSlow := s.Subscribe(1)
		defer cancelSlow()
		fast, cancelFast := s.Subscribe(100)
		defer cancelFast()
		for i := range 5 {
			if _, err := s.Append(ctx, Event{Type: "t", Message: strconv.Itoa(i)}); err != nil {
				t.Fatal(err)
			}
		}
		var got []Event
		for ev := range slow { // must end: the channel is closed when dropped
			got = append(got, ev)
		}
		if len(got) != 1 || got[0].Seq != 1 {
			t.Fatalf("slow subscriber got %+v, want only the first event before its channel closed", got)
		}
		for want := int64(1); want <= 5; want++ {
			if ev := <-fast; ev.Seq != want {
				t.Fatalf("fast subscriber got seq %d, want %d", ev.Seq, want)
			}
		}
		cancelSlow() // after a drop: must not panic on a closed channel
	})

	t.Run("unsubscribe closes and is idempotent", func(t *testing.T) {
		s := open(t, t.TempDir())
		ch, cancel := s.Subscribe(10)
		cancel()
		cancel()
		if _, ok := <-ch; ok {
			t.Fatal("channel open after unsubscribe")
		}
		if _, err := s.Append(ctx, Event{Type: "t"}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("close closes every subscriber", func(t *testing.T) {
		s := open(t, t.TempDir())
		ch, cancel := s.Subscribe(10)
		defer cancel()
		s.Close()
		if _, ok := <-ch; ok {
			t.Fatal("channel open after Close")
		}
		late, cancelLate := s.Subscribe(10)
		defer cancelLate()
		if _, ok := <-late; ok {
			t.Fatal("subscription after Close is open")
		}
	})

	t.Run("concurrent writers publish in seq order", func(t *testing.T) {
		s := open(t, t.TempDir())
		const writers, each = 8, 25
		ch, cancel := s.Subscribe(writers * each * 3)
		defer cancel()
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				for i := range each {
					var err error
					switch i % 3 {
					case 0:
						_, err = s.Append(ctx, Event{Type: "a"}, Event{Type: "b"})
					case 1:
						err = s.PutInstance(ctx, Instance{ID: fmt.Sprintf("i-%d", w), Group: "g"}, Event{Type: "put"})
					case 2:
						err = s.Set(ctx, "k", "v") // no events: publishes nothing
					}
					if err != nil {
						t.Error(err)
					}
				}
			})
		}
		wg.Wait()
		want := writers * (9*2 + 8) // 9 appends of two and 8 puts of one per writer
		var prev int64
		for range want {
			ev := <-ch
			if ev.Seq != prev+1 {
				t.Fatalf("seq %d after %d", ev.Seq, prev)
			}
			prev = ev.Seq
		}
	})
}

func TestReopenKeepsEverything(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	in := Instance{ID: "i-1", Group: "g", State: "InService", LaunchedAt: time.Now().UTC(), Ports: map[string]int{"p": 1}}
	g := Group{Name: "g", Status: "Active", Desired: 1}
	if err := s.PutInstance(ctx, in, Event{Type: "x"}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutGroup(ctx, g); err != nil {
		t.Fatal(err)
	}
	a, err := s.SwapAttachment(ctx, Attachment{Kind: "volume", Group: "g", Name: "data"}, "i-1", true)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Set(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, Event{Type: "y"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = open(t, dir)
	if got, err := s.Instance(ctx, "i-1"); err != nil || got.State != "InService" || got.Ports["p"] != 1 {
		t.Fatalf("instance %+v, %v", got, err)
	}
	if got, err := s.Group(ctx, "g"); err != nil || got.Desired != 1 {
		t.Fatalf("group %+v, %v", got, err)
	}
	if got, err := s.Attachment(ctx, "volume", "g", "data"); err != nil || got != a {
		t.Fatalf("attachment %+v, %v; want %+v", got, err, a)
	}
	if v, err := s.Get(ctx, "k"); err != nil || v != "v" {
		t.Fatalf("kv %q, %v", v, err)
	}
	out, err := s.Append(ctx, Event{Type: "z"})
	if err != nil {
		t.Fatal(err)
	}
	if out[0].Seq != 3 {
		t.Fatalf("seq after reopen %d, want 3", out[0].Seq)
	}
}

func TestWriteAfterClose(t *testing.T) {
	s := open(t, t.TempDir())
	s.Close()
	if err := s.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if _, err := s.Append(context.Background(), Event{Type: "t"}); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after close: %v, want ErrClosed", err)
	}
}

func TestPrune(t *testing.T) {
	s := open(t, t.TempDir())
	ctx := context.Background()
	for range 10 {
		if _, err := s.Append(ctx, Event{Type: "t"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PruneEvents(ctx, 3); err != nil {
		t.Fatal(err)
	}
	evs, _ := s.Events(ctx, EventFilter{})
	if len(evs) != 3 || evs[0].Seq != 8 {
		t.Fatalf("after prune keep 3: %+v", evs)
	}
	if err := s.PruneEvents(ctx, 0); err != nil {
		t.Fatal(err)
	}
	out, err := s.Append(ctx, Event{Type: "t"})
	if err != nil {
		t.Fatal(err)
	}
	if out[0].Seq != 11 {
		t.Fatalf("seq after pruning everything %d, want 11: a seq must never be reused", out[0].Seq)
	}

	t0 := time.Now().UTC()
	for i := range 5 {
		term := t0.Add(time.Duration(i) * time.Second)
		for _, g := range []string{"a", "b"} {
			id := fmt.Sprintf("i-%s-%d", g, i)
			if err := s.PutInstance(ctx, Instance{ID: id, Group: g, State: Terminated, TerminatedAt: &term}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.PutInstance(ctx, Instance{ID: "i-live", Group: "a", State: "InService"}); err != nil {
		t.Fatal(err)
	}
	if err := s.PruneInstances(ctx, 2); err != nil {
		t.Fatal(err)
	}
	all, _ := s.Instances(ctx, "", true)
	var ids []string
	for _, in := range all {
		ids = append(ids, in.ID)
	}
	got := strings.Join(ids, ",")
	for _, want := range []string{"i-live", "i-a-3", "i-a-4", "i-b-3", "i-b-4"} {
		if !strings.Contains(got, want) {
			t.Fatalf("after prune: %s, missing %s", got, want)
		}
	}
	if len(all) != 5 {
		t.Fatalf("after prune: %s, want 5 instances", got)
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	if _, err := s.w.Exec("PRAGMA user_version = 999"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err := Open(dir)
	if err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("open of a newer schema: %v", err)
	}
}

func TestOpenUnwritable(t *testing.T) {
	parent := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(parent, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(parent, "state")
	_, err := Open(dir)
	if err == nil {
		t.Fatal("open under a regular file succeeded")
	}
	if !strings.Contains(err.Error(), "state dir "+dir+" is not writable") || !errors.Is(err, syscall.ENOTDIR) {
		t.Fatalf("error %q: want it to name the dir, say not writable and wrap ENOTDIR", err)
	}
	if err := CheckWritable(dir); err == nil || !strings.HasPrefix(err.Error(), "state dir "+dir+" is not writable: ") {
		t.Fatalf("CheckWritable: %v", err)
	}
}

func TestOpenReadOnlyMount(t *testing.T) {
	dir := mountTmpfs(t, "ro,size=1m")
	_, err := Open(dir)
	if err == nil || !strings.Contains(err.Error(), "is not writable") || !errors.Is(err, syscall.EROFS) {
		t.Fatalf("open on a read-only mount: %v", err)
	}
}

func TestCheckWritableFull(t *testing.T) {
	dir := mountTmpfs(t, "size=64k")
	// Fill it: write until the filesystem refuses.
	f, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling: %v", err)
			}
			break
		}
	}
	f.Close()
	err = CheckWritable(dir)
	if err == nil || !strings.Contains(err.Error(), "state dir "+dir+" is full") || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("CheckWritable on a full disk: %v", err)
	}
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "is full") {
		t.Fatalf("Open on a full disk: %v", err)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, ".autoheal-probe-*")); len(m) != 0 {
		t.Fatalf("probe left behind: %v", m)
	}
}

// mountTmpfs mounts a tmpfs with opts on a fresh dir, unmounted at cleanup.
// It skips the test where it cannot mount (not root, no CAP_SYS_ADMIN).
func mountTmpfs(t *testing.T, opts string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", opts, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs (%v): %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

func TestLockRefusesSecondOpen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("same process", func(t *testing.T) {
		_, err := Open(dir)
		want := fmt.Sprintf("state dir %s is in use by another autoheal (pid %d)", dir, os.Getpid())
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("second open: %v, want %q", err, want)
		}
	})

	s.Close()

	t.Run("other process", func(t *testing.T) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperHoldStore$")
		cmd.Env = append(os.Environ(), "AUTOHEAL_STORE_HELPER_DIR="+dir)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer cmd.Wait()
		defer stdin.Close() // the helper exits when its stdin closes
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err != nil || strings.TrimSpace(line) != "ready" {
			t.Fatalf("helper: %q, %v", line, err)
		}
		_, err = Open(dir)
		want := fmt.Sprintf("state dir %s is in use by another autoheal (pid %d)", dir, cmd.Process.Pid)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("open while another process holds it: %v, want %q", err, want)
		}
		stdin.Close()
		if err := cmd.Wait(); err != nil {
			t.Fatalf("helper: %v", err)
		}
		s := open(t, dir) // released with the process
		s.Close()
	})

	t.Run("after close", func(t *testing.T) {
		s := open(t, dir)
		s.Close()
	})
}

// TestHelperHoldStore is not a test: TestLockRefusesSecondOpen runs it in a
// child process to hold the store open until its stdin closes.
func TestHelperHoldStore(t *testing.T) {
	dir := os.Getenv("AUTOHEAL_STORE_HELPER_DIR")
	if dir == "" {
		t.Skip("helper process only")
	}
	s, err := Open(dir)
	if err != nil {
		fmt.Fprintln(os.Stdout, "error:", err)
		os.Exit(1)
	}
	fmt.Fprintln(os.Stdout, "ready")
	var b [1]byte
	os.Stdin.Read(b[:])
	s.Close()
	os.Exit(0)
}

// The read pool must see a write as soon as the write returns.
func TestReadYourWrites(t *testing.T) {
	s := open(t, t.TempDir())
	ctx := context.Background()
	for i := range 50 {
		v := strconv.Itoa(i)
		if err := s.Set(ctx, "k", v); err != nil {
			t.Fatal(err)
		}
		if got, err := s.Get(ctx, "k"); err != nil || got != v {
			t.Fatalf("got %q, %v after writing %q", got, err, v)
		}
	}
}

// TestLockWaitsOutAnInstantHolder: a state dir lock held for an instant by
// another open file of the lock (a child forked before its exec closed
// it) is waited for; one held for good is reported after lockWait.
func TestLockWaitsOutAnInstantHolder(t *testing.T) {
	tests := []struct {
		name    string
		release time.Duration // when the other holder lets go; 0: never
		wantErr bool
	}{
		{"released during the wait", 300 * time.Millisecond, false},
		{"released just before the deadline", lockWait - 10*time.Millisecond, false},
		{"held for good", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), LockFile)
			synctest.Test(t, func(t *testing.T) {
				holder, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
				if err != nil {
					t.Fatal(err)
				}
				defer holder.Close()
				if err := flock(holder, syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
					t.Fatal(err)
				}
				if tt.release > 0 {
					go func() {
						time.Sleep(tt.release) // fake time: the point of the test
						holder.Close()
					}()
				}
				f, err := os.OpenFile(path, os.O_RDWR, 0o600)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				err = lockWithin(f, lockWait)
				if (err != nil) != tt.wantErr {
					t.Fatalf("lockWithin: %v, want error %v", err, tt.wantErr)
				}
				if tt.wantErr && !errors.Is(err, syscall.EWOULDBLOCK) {
					t.Fatalf("lockWithin: %v, want EWOULDBLOCK", err)
				}
			})
		})
	}
}
