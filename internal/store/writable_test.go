package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/autoheal/autoheal/internal/testutil"

	"github.com/autoheal/autoheal/internal/event"
)

// codedErr is an error with SQLite's result code, as the driver's.
type codedErr int

func (c codedErr) Error() string { return fmt.Sprintf("sqlite error %d", int(c)) }
func (c codedErr) Code() int     { return int(c) }

func TestNotWritable(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"ENOSPC wrapped", fmt.Errorf("write wal: %w", syscall.ENOSPC), true},
		{"EDQUOT", &os.PathError{Op: "write", Path: "x", Err: syscall.EDQUOT}, true},
		{"EROFS", &os.PathError{Op: "open", Path: "x", Err: syscall.EROFS}, true},
		{"EIO", fmt.Errorf("fsync: %w", syscall.EIO), true},
		{"EACCES", &os.PathError{Op: "open", Path: "x", Err: syscall.EACCES}, true},
		{"SQLITE_FULL", fmt.Errorf("insert event: %w", codedErr(13)), true},
		{"SQLITE_IOERR", codedErr(10), true},
		{"SQLITE_IOERR_WRITE (extended)", codedErr(10 | 3<<8), true},
		{"SQLITE_IOERR_FSYNC (extended)", codedErr(10 | 4<<8), true},
		{"SQLITE_READONLY", codedErr(8), true},
		{"SQLITE_READONLY_DBMOVED (extended)", codedErr(8 | 4<<8), true},
		{"SQLITE_CANTOPEN", codedErr(14), true},
		{"SQLITE_CONSTRAINT", codedErr(19), false},
		{"SQLITE_CONSTRAINT_UNIQUE (extended, low byte 19)", codedErr(19 | 8<<8), false},
		{"SQLITE_BUSY", codedErr(5), false},
		{"SQLITE_ERROR", codedErr(1), false},
		{"ENOENT", &os.PathError{Op: "open", Path: "x", Err: syscall.ENOENT}, false},
		{"conflict", fmt.Errorf("swap: %w", ErrConflict), false},
		{"closed", ErrClosed, false},
		{"cancelled", context.Canceled, false},
		{"deadline", context.DeadlineExceeded, false},
		{"refused while degraded", &NotWritableError{Dir: "/x", Err: codedErr(13)}, true},
		{"ErrNotWritable wrapped", fmt.Errorf("commit: %w", ErrNotWritable), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := NotWritable(tc.err); got != tc.want {
				t.Fatalf("NotWritable(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

func TestReason(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{nil, ""},
		{fmt.Errorf("group pet: instance i-1: %w", codedErr(13)), "database or disk is full"},
		{fmt.Errorf("commit: %w", codedErr(10|4<<8)), "disk I/O error"},
		{codedErr(8), "database is read-only"},
		{codedErr(14), "cannot open database file"},
		{fmt.Errorf("state dir /x is full: %w", &os.PathError{Op: "write", Path: "/x/p", Err: syscall.ENOSPC}), "no space left on device"},
		{&os.PathError{Op: "open", Path: "/x/p", Err: syscall.EROFS}, "read-only file system"},
		{errors.New("something else"), "something else"},
	} {
		if got := Reason(tc.err); got != tc.want {
			t.Errorf("Reason(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
	h := Health{Err: &os.PathError{Op: "open", Path: "/x/p", Err: syscall.EROFS}, Since: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	if got, want := h.String(), "degraded (read-only file system since 2026-01-02T03:04:05Z)"; got != want {
		t.Errorf("Health.String() = %q, want %q", got, want)
	}
	if got := (Health{Writable: true}).String(); got != "writable" {
		t.Errorf("writable Health.String() = %q", got)
	}
}

// bigEvent needs new pages in the WAL: on a full disk it cannot commit.
func bigEvent(i int) Event {
	return event.New("g", "", fmt.Sprintf("big %d %s", i, strings.Repeat("x", 256<<10)), event.GroupError{Op: "test", Error: "x"})
}

func TestFullDiskDegradesAndProbeResumes(t *testing.T) {
	dir := mountTmpfs(t, "size=4m")
	s := open(t, dir)
	ctx := context.Background()
	var acked []int64
	for i := range 3 {
		evs, err := s.Append(ctx, bigEvent(i))
		if err != nil {
			t.Fatal(err)
		}
		acked = append(acked, evs[0].Seq)
	}
	filler := testutil.FillDir(t, dir)

	// The write that meets the full disk fails, and degrades the store.
	var err error
	for i := 3; err == nil && i < 100; i++ {
		var evs []Event
		if evs, err = s.Append(ctx, bigEvent(i)); err == nil {
			acked = append(acked, evs[0].Seq)
		}
	}
	if !errors.Is(err, ErrNotWritable) || !NotWritable(err) || !strings.Contains(err.Error(), "state dir "+dir+" not writable since") {
		t.Fatalf("append on a full disk: %v, want a NotWritableError naming the dir", err)
	}
	h := s.Health()
	if h.Writable || h.Err == nil || h.Since.IsZero() {
		t.Fatalf("health after the failed write: %+v", h)
	}
	select {
	case <-s.HealthChanged():
	default:
		t.Fatal("HealthChanged not signalled when the store degraded")
	}
	// Every write is refused while degraded, even one that would fit.
	if _, err := s.Append(ctx, event.New("g", "", "small", event.GroupError{Op: "test", Error: "x"})); !errors.Is(err, ErrNotWritable) {
		t.Fatalf("small append while degraded: %v", err)
	}
	if err := s.Probe(ctx); err == nil || !NotWritable(err) {
		t.Fatalf("probe on a full disk: %v", err)
	}
	if s.Health().Writable {
		t.Fatal("a failed probe made the store writable")
	}
	// Reads keep working.
	if evs, err := s.Events(ctx, EventFilter{}); err != nil || len(evs) != len(acked) {
		t.Fatalf("read while degraded: %d events, %v; want %d", len(evs), err, len(acked))
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if err := s.Probe(ctx); err != nil {
		t.Fatalf("probe with space back: %v", err)
	}
	if h := s.Health(); !h.Writable || h.Err != nil {
		t.Fatalf("health after a good probe: %+v", h)
	}
	<-s.HealthChanged()
	evs, err := s.Append(ctx, event.New("g", "", "after", event.GroupError{Op: "test", Error: "x"}))
	if err != nil {
		t.Fatalf("append after recovery: %v", err)
	}
	acked = append(acked, evs[0].Seq)
	checkGapless(t, s, acked)
}

// checkGapless checks the journal's seqs have no hole and hold every
// acknowledged one.
func checkGapless(t *testing.T, s *Store, acked []int64) {
	t.Helper()
	all, err := s.Events(context.Background(), EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	have := map[int64]bool{}
	for i, ev := range all {
		have[ev.Seq] = true
		if i > 0 && ev.Seq != all[i-1].Seq+1 {
			t.Fatalf("journal jumps from seq %d to %d", all[i-1].Seq, ev.Seq)
		}
	}
	for _, seq := range acked {
		if !have[seq] {
			t.Fatalf("acknowledged event %d lost", seq)
		}
	}
}

// A file system cannot be remounted read-only while the store has its
// database open for writing (EBUSY), so the test stacks a read-only bind
// mount on the state dir: new files cannot be made there (EROFS), as on a
// read-only state dir, and remounting it read-write brings them back.
func TestReadOnlyStateDirDegradesAndProbeResumes(t *testing.T) {
	dir := mountTmpfs(t, "size=4m")
	s := open(t, dir)
	ctx := context.Background()
	evs, err := s.Append(ctx, event.New("g", "", "before", event.GroupError{Op: "test", Error: "x"}))
	if err != nil {
		t.Fatal(err)
	}
	acked := []int64{evs[0].Seq}
	bindReadOnly(t, dir)

	err = s.Probe(ctx)
	if !errors.Is(err, syscall.EROFS) || !strings.Contains(err.Error(), "is not writable") {
		t.Fatalf("probe on a read-only state dir: %v", err)
	}
	if h := s.Health(); h.Writable || !errors.Is(h.Err, syscall.EROFS) {
		t.Fatalf("health on a read-only state dir: %+v", h)
	}
	if _, err := s.Append(ctx, event.New("g", "", "refused", event.GroupError{Op: "test", Error: "x"})); !errors.Is(err, ErrNotWritable) || !errors.Is(err, syscall.EROFS) {
		t.Fatalf("append while read-only: %v", err)
	}

	mount(t, "-o", "remount,bind,rw", dir)
	if err := s.Probe(ctx); err != nil {
		t.Fatalf("probe after remount rw: %v", err)
	}
	if evs, err = s.Append(ctx, event.New("g", "", "after", event.GroupError{Op: "test", Error: "x"})); err != nil {
		t.Fatalf("append after remount rw: %v", err)
	}
	checkGapless(t, s, append(acked, evs[0].Seq))
}

// bindReadOnly stacks a read-only bind mount of dir on dir, removed at
// cleanup (before the tmpfs under it).
func bindReadOnly(t *testing.T, dir string) {
	t.Helper()
	mount(t, "--bind", dir, dir)
	t.Cleanup(func() {
		// Lazy: the store may still have the dir open through it.
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	mount(t, "-o", "remount,bind,ro", dir)
}

func mount(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("mount", args...).CombinedOutput(); err != nil {
		t.Fatalf("mount %v: %v: %s", args, err, out)
	}
}

// The probe's own transaction is no write of the store's: it journals
// nothing and takes no seq.
func TestProbeJournalsNothing(t *testing.T) {
	s := open(t, t.TempDir())
	ctx := context.Background()
	before, _ := s.LastSeq(ctx)
	for range 3 {
		if err := s.Probe(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if after, _ := s.LastSeq(ctx); after != before {
		t.Fatalf("probe moved the journal from %d to %d", before, after)
	}
	if h := s.Health(); !h.Writable || !h.Since.IsZero() {
		t.Fatalf("health of a store never degraded: %+v", h)
	}
}
