package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// When the state dir cannot take a write (a full disk, a file system gone
// read-only, an I/O error), the store is degraded: the write that met it
// fails, and every later write fails at once with a *NotWritableError
// without touching the disk, until Probe proves a durable write works
// again. Whoever records before acting (a group's heal, a runbook step, a
// window task) therefore does not act: acting without its record would
// break the exactly-once guarantees the records give. Reads keep working.
// See docs/design.md §3.

// ErrNotWritable is matched (errors.Is) by every error of a write refused
// or failed because the state dir cannot take writes.
var ErrNotWritable = errors.New("state dir not writable")

// NotWritableError is a write refused or failed because the state dir
// cannot take writes.
type NotWritableError struct {
	Dir   string
	Since time.Time // when the store became degraded
	Err   error     // the write error that degraded it
}

func (e *NotWritableError) Error() string {
	return fmt.Sprintf("state dir %s not writable since %s: %v", e.Dir, e.Since.Format(time.RFC3339), e.Err)
}

// Is makes errors.Is(err, ErrNotWritable) true.
func (e *NotWritableError) Is(target error) bool { return target == ErrNotWritable }

func (e *NotWritableError) Unwrap() error { return e.Err }

// Health is whether the state dir takes writes.
type Health struct {
	Writable bool
	// Err is the write error that degraded the store (nil when writable).
	Err error
	// Since is when the store became degraded, or writable again (zero
	// when it never was degraded).
	Since time.Time
}

// String is "writable", or "degraded (REASON since T)".
func (h Health) String() string {
	if h.Writable {
		return "writable"
	}
	return fmt.Sprintf("degraded (%s since %s)", Reason(h.Err), h.Since.Format(time.RFC3339))
}

// Reason is what an operator needs of a write error NotWritable accepts:
// the errno's text ("no space left on device") or SQLite's kind of refusal,
// without the operation chain around it; any other error's own text.
func Reason(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	var coded interface{ Code() int }
	if errors.As(err, &coded) {
		switch coded.Code() & 0xff {
		case sqliteFull:
			return "database or disk is full"
		case sqliteIOErr:
			return "disk I/O error"
		case sqliteReadonly:
			return "database is read-only"
		case sqliteCantOpen:
			return "cannot open database file"
		}
	}
	if err == nil {
		return ""
	}
	return err.Error()
}

// SQLite's primary result codes that mean the disk refused a write
// (extended codes carry them in their low byte).
const (
	sqliteReadonly = 8
	sqliteIOErr    = 10
	sqliteFull     = 13
	sqliteCantOpen = 14
)

// NotWritable reports whether err means the state dir cannot take a write
// (a full disk or quota, a read-only file system, an I/O error, a
// permission taken away), as opposed
// to an error of the write itself (a conflict, a closed store, a cancelled
// context, a constraint). It looks at errnos and at SQLite's result codes,
// which is all SQLite reports of the errno it met.
func NotWritable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrNotWritable) {
		return true
	}
	for _, errno := range []syscall.Errno{syscall.ENOSPC, syscall.EDQUOT, syscall.EROFS, syscall.EIO, syscall.EACCES} {
		if errors.Is(err, errno) {
			return true
		}
	}
	var coded interface{ Code() int }
	if errors.As(err, &coded) {
		switch coded.Code() & 0xff {
		case sqliteFull, sqliteIOErr, sqliteReadonly, sqliteCantOpen:
			return true
		}
	}
	return false
}

// Health says whether the state dir takes writes.
func (s *Store) Health() Health {
	s.healthMu.Lock()
	defer s.healthMu.Unlock()
	return s.health
}

// HealthChanged is signalled (a buffered channel of one: a missed signal
// is never more than one behind) when Health changes.
func (s *Store) HealthChanged() <-chan struct{} { return s.healthCh }

// notWritable returns the error a write gets while the store is degraded,
// nil when it is writable.
func (s *Store) notWritable() error {
	h := s.Health()
	if h.Writable {
		return nil
	}
	return &NotWritableError{Dir: s.dir, Since: h.Since, Err: h.Err}
}

// degrade marks the store degraded by err, a write error that NotWritable
// accepts, and returns the error the write reports.
func (s *Store) degrade(err error) error {
	s.healthMu.Lock()
	if s.health.Writable {
		s.health = Health{Err: err, Since: now()}
		s.signalHealth()
	}
	h := s.health
	s.healthMu.Unlock()
	return &NotWritableError{Dir: s.dir, Since: h.Since, Err: err}
}

// Refused degrades the store for err when NotWritable(err) accepts it: a
// write the state dir refused outside SQLite (a volume's token, an
// instance's files) means the next record would be refused too, and the
// controller holds still until Probe succeeds. It reports whether it did.
func (s *Store) Refused(err error) bool {
	if !NotWritable(err) {
		return false
	}
	s.degrade(err)
	return true
}

// signalHealth pokes HealthChanged. Called with healthMu held.
func (s *Store) signalHealth() {
	select {
	case s.healthCh <- struct{}{}:
	default:
	}
}

// Probe tries one small durable write of each kind the controller makes: a
// file written, fsynced and removed in the state dir (volume tokens, the
// shims' state, the metrics snapshot) and a SQLite transaction (records and
// the journal). When both succeed a degraded store is writable again; when
// one fails with an error NotWritable accepts, a writable store becomes
// degraded (a read-only or full state dir is seen before a heal needs it).
// The returned error is the probe's.
func (s *Store) Probe(ctx context.Context) error {
	err := checkWritable(s.dir, probeSmall)
	if err == nil {
		err = s.probeTx(ctx)
	}
	switch {
	case err == nil:
		s.healthMu.Lock()
		if !s.health.Writable {
			s.health = Health{Writable: true, Since: now()}
			s.signalHealth()
		}
		s.healthMu.Unlock()
	case NotWritable(err):
		s.degrade(err)
	}
	return err
}

// probeTx writes the kv row "probe" in a transaction of its own, past the
// degraded store's refusal.
func (s *Store) probeTx(ctx context.Context) error {
	select {
	case s.wsem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s.wsem }()
	if s.wclosed {
		return ErrClosed
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO kv (key, value) VALUES ('probe', ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`, now().Format(time.RFC3339Nano))
	if err != nil {
		tx.Rollback()
		return fmt.Errorf("probe: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	return nil
}

// probeSmall is what Probe writes in a file: the periodic probe runs every
// few seconds and must cost next to nothing.
const probeSmall = 4 << 10

// CheckWritable creates dir if needed and proves it can take a durable
// write: it writes, fsyncs and removes a 64 KiB probe file. The error says
// whether the dir is full (ENOSPC, EDQUOT) or not writable, so an operator
// sees that before the controller starts, not as a failed transaction later.
func CheckWritable(dir string) error { return checkWritable(dir, probeSize) }

func checkWritable(dir string, size int) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return writableErr(dir, err)
	}
	f, err := os.CreateTemp(dir, ".autoheal-probe-*")
	if err != nil {
		return writableErr(dir, err)
	}
	name := f.Name()
	defer os.Remove(name)
	_, err = f.Write(make([]byte, size))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return writableErr(dir, err)
	}
	if err := os.Remove(name); err != nil {
		return writableErr(dir, err)
	}
	return nil
}

func writableErr(dir string, err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("state dir %s is full: %w", dir, err)
	}
	return fmt.Errorf("state dir %s is not writable: %w", dir, err)
}
