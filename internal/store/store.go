package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver (pure Go, no cgo)
)

const (
	// DBFile is the database file inside the state dir.
	DBFile = "autoheal.db"
	// LockFile is the file flocked by the controller that owns the state dir.
	LockFile = "lock"

	// busyTimeout only matters for the rare moments a reader meets a
	// checkpoint or WAL recovery: writes are already serialised in Go.
	busyTimeout = 10 * time.Second
	// readConns bounds the read pool. WAL lets readers run beside the
	// writer, so API reads never wait for an fsync.
	readConns = 4
	// probeSize is what CheckWritable writes: enough to notice a full disk
	// before SQLite does, in the middle of a transaction.
	probeSize = 64 << 10
)

// ErrClosed is returned by writes to a closed Store.
var ErrClosed = errors.New("store closed")

// Store is the durable state of one controller. It is safe for concurrent
// use. Writes go through one connection and are serialised by a Go
// semaphore, so SQLite never reports SQLITE_BUSY to a writer and events are
// published in the order they were committed.
type Store struct {
	dir  string
	lock *os.File // holds the flock on dir/lock until Close

	w *sql.DB // the only writer: one connection
	r *sql.DB // read pool, query_only

	// wsem serialises write transactions (a channel, not a mutex, so a
	// waiting writer can give up when its context ends). Publishing happens
	// while it is held, which is what keeps subscribers in Seq order.
	wsem chan struct{}
	// wclosed is set by Close while it holds wsem; a write that gets wsem
	// afterwards fails instead of touching a closed database.
	wclosed bool

	insertEvent *sql.Stmt

	subMu  sync.Mutex
	subs   map[*subscriber]struct{}
	closed bool

	closeOnce sync.Once
	closeErr  error

	// healthMu guards health: whether the state dir takes writes
	// (writable.go). healthCh is signalled when it changes.
	healthMu sync.Mutex
	health   Health
	healthCh chan struct{}

	// replica, when set, takes the rows each write touched (replica.go);
	// touched is the current write's, used with wsem held.
	replica Replica
	touched []rowRef
}

// Open opens (creating if needed) the store in dir: dir/autoheal.db in WAL
// mode with synchronous=FULL, migrated to the current schema. It takes an
// exclusive flock on dir/lock and refuses a state dir that another autoheal
// (another process, or another Store in this one) already holds.
func Open(dir string) (*Store, error) {
	if err := CheckWritable(dir); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("open store: state dir %s: %w", dir, err)
	}
	// The driver splits its DSN at the first '?', so such a path would
	// silently open a different file.
	if strings.ContainsRune(abs, '?') {
		return nil, fmt.Errorf("open store: state dir %s: path must not contain '?'", dir)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	s := &Store{
		dir:      dir,
		lock:     lock,
		wsem:     make(chan struct{}, 1),
		subs:     map[*subscriber]struct{}{},
		health:   Health{Writable: true},
		healthCh: make(chan struct{}, 1),
	}
	if err := s.open(filepath.Join(abs, DBFile)); err != nil {
		s.closeDBs()
		lock.Close()
		return nil, fmt.Errorf("open store %s: %w", filepath.Join(dir, DBFile), err)
	}
	// Make the new database and WAL files' directory entries durable too:
	// a crash right after the first write must not lose the files
	// themselves.
	if err := syncDir(dir); err != nil {
		s.Close()
		return nil, fmt.Errorf("open store: %w", err)
	}
	return s, nil
}

func (s *Store) open(path string) error {
	ms := strconv.FormatInt(busyTimeout.Milliseconds(), 10)
	// busy_timeout first (the driver orders it so), then the durability
	// settings. _txlock=immediate makes BEGIN take the write lock at once,
	// so a transaction never has to upgrade from a read lock and fail with
	// SQLITE_BUSY half way.
	wdsn := path + "?_pragma=busy_timeout(" + ms + ")" +
		"&_pragma=journal_mode(WAL)" +
		"&_pragma=synchronous(FULL)" +
		"&_pragma=foreign_keys(1)" +
		"&_txlock=immediate"
	w, err := sql.Open("sqlite", wdsn)
	if err != nil {
		return err
	}
	// One writer connection: SQLite allows one writer anyway, and a second
	// connection would only turn waiting into SQLITE_BUSY.
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	s.w = w

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.PingContext(ctx); err != nil {
		return err
	}
	var mode string
	if err := w.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return fmt.Errorf("journal mode: %w", err)
	}
	if !strings.EqualFold(mode, "wal") {
		// Without WAL every reader would block the writer; refuse rather
		// than run slow and surprising (e.g. on a filesystem without
		// shared memory support).
		return fmt.Errorf("journal mode is %q, want wal", mode)
	}
	if err := migrate(ctx, w); err != nil {
		return err
	}

	// Readers are opened after the migration so they never see a
	// half-created schema; journal_mode is persistent in the file.
	rdsn := path + "?_pragma=busy_timeout(" + ms + ")" +
		"&_pragma=foreign_keys(1)" +
		"&_query_only=1"
	r, err := sql.Open("sqlite", rdsn)
	if err != nil {
		return err
	}
	r.SetMaxOpenConns(readConns)
	r.SetMaxIdleConns(readConns)
	s.r = r
	if err := r.PingContext(ctx); err != nil {
		return err
	}

	s.insertEvent, err = w.PrepareContext(ctx,
		`INSERT INTO events (time, type, grp, instance, message, data) VALUES (?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("prepare: %w", err)
	}
	return nil
}

// Dir is the state dir the store lives in.
func (s *Store) Dir() string { return s.dir }

// Close closes every subscriber channel, the database and the lock. It is
// safe to call more than once. In-flight writes finish first.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.subMu.Lock()
		s.closed = true
		for sub := range s.subs {
			delete(s.subs, sub)
			close(sub.ch)
		}
		s.subMu.Unlock()

		// Wait for the writer in flight, so Close never cuts a
		// transaction between commit and publish.
		s.wsem <- struct{}{}
		s.wclosed = true
		s.closeErr = s.closeDBs()
		<-s.wsem
		if s.lock != nil {
			if err := s.lock.Close(); err != nil && s.closeErr == nil {
				s.closeErr = fmt.Errorf("close store: release lock: %w", err)
			}
		}
	})
	return s.closeErr
}

func (s *Store) closeDBs() error {
	var errs []error
	if s.insertEvent != nil {
		errs = append(errs, s.insertEvent.Close())
	}
	if s.r != nil {
		errs = append(errs, s.r.Close())
	}
	if s.w != nil {
		// Closing the last connection checkpoints the WAL into the
		// database file.
		errs = append(errs, s.w.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	return nil
}

// A Change is one part of a write transaction, for Commit: a record put or
// swapped, and the events journaled with it.
type Change struct {
	what string // names the change in an error
	evs  []Event
	run  func(ctx context.Context, tx *sql.Tx) error
	refs []rowRef // the replicated rows it changes
}

// Commit makes changes durable together, in one transaction (one fsync):
// all of them or, if one fails, none. Their events are journaled in order.
// The error names the change that failed.
func (s *Store) Commit(ctx context.Context, changes ...Change) error {
	var failed string
	err := s.write(ctx, func(tx *sql.Tx) ([]Event, error) {
		var evs []Event
		for _, c := range changes {
			if err := c.run(ctx, tx); err != nil {
				failed = c.what
				return nil, err
			}
			s.touched = append(s.touched, c.refs...)
			evs = append(evs, c.evs...)
		}
		return evs, s.appendTx(ctx, tx, evs)
	})
	switch {
	case err == nil:
		return nil
	case failed != "":
		return fmt.Errorf("%s: %w", failed, err)
	case len(changes) == 1:
		return fmt.Errorf("%s: %w", changes[0].what, err)
	}
	return err
}

// write runs fn in one write transaction and, once it has committed,
// publishes the events it returns. Nothing is published for a transaction
// that did not commit. A degraded store refuses the write at once; a write
// that fails because the disk refused it degrades the store (writable.go).
func (s *Store) write(ctx context.Context, fn func(tx *sql.Tx) ([]Event, error)) error {
	select {
	case s.wsem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s.wsem }()
	if s.wclosed {
		return ErrClosed
	}
	if err := s.notWritable(); err != nil {
		return err
	}
	err := s.writeTx(ctx, fn)
	if NotWritable(err) && ctx.Err() == nil {
		return s.degrade(err)
	}
	return err
}

// writeTx is write's transaction. Called with wsem held.
func (s *Store) writeTx(ctx context.Context, fn func(tx *sql.Tx) ([]Event, error)) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	s.touched = s.touched[:0]
	evs, err := fn(tx)
	if err == nil {
		// Before the commit: a write the replica refused is not made.
		err = s.replicate(ctx, tx)
	}
	if err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	s.publish(evs)
	return nil
}

// lockDir takes the exclusive, non-blocking flock that makes one controller
// the owner of a state dir, and records its pid for the error the next one
// gets. The descriptor is close-on-exec (Go's default), so instances, which
// outlive the controller, never inherit the lock.
func lockDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, LockFile)
	// No O_TRUNC: truncating before holding the lock would erase the
	// owner's pid.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock state dir %s: %w", dir, err)
	}
	if err := lockWithin(f, lockWait); err != nil {
		defer f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			b, _ := os.ReadFile(path)
			pid := strings.TrimSpace(string(b))
			if pid == "" {
				pid = "unknown"
			}
			return nil, fmt.Errorf("state dir %s is in use by another autoheal (pid %s)", dir, pid)
		}
		return nil, fmt.Errorf("lock state dir %s: %w", dir, err)
	}
	pid := []byte(strconv.Itoa(os.Getpid()) + "\n")
	err = f.Truncate(0)
	if err == nil {
		_, err = f.WriteAt(pid, 0)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock state dir %s: write pid: %w", dir, err)
	}
	return f, nil
}

// lockWait is how long a held state dir lock is waited for before the
// dir is reported in use. A controller that just ended can leave its lock
// held for an instant: a child it (or, in tests, another server of the
// same process) was forking at that moment shares the lock's open file
// until its exec closes it (close-on-exec acts at exec, not at fork). A
// second live controller holds it for good, and is reported after this.
const lockWait = 2 * time.Second

// lockWithin takes an exclusive flock on f, trying again until wait has
// passed while someone else holds it.
func lockWithin(f *os.File, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for pause := time.Millisecond; ; pause = min(2*pause, 50*time.Millisecond) {
		err := flock(f, syscall.LOCK_EX|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EWOULDBLOCK) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(pause)
	}
}

// flock retries on EINTR, which Go's runtime signals can cause.
func flock(f *os.File, how int) error {
	for {
		err := syscall.Flock(int(f.Fd()), how)
		if err != syscall.EINTR {
			return err
		}
	}
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync state dir %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync state dir %s: %w", dir, err)
	}
	return nil
}

// Times are stored as integer unix nanoseconds in UTC: they sort and compare
// in SQL, and a zero time.Time (which has no unix nano value) is NULL.
func timeArg(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixNano()
}

func timeOf(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return time.Unix(0, n.Int64).UTC()
}

func now() time.Time { return time.Now().UTC() }
