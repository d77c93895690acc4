package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Notification statuses.
const (
	NotificationPending   = "pending"
	NotificationDelivered = "delivered"
	NotificationFailed    = "failed"
)

// NotificationRecord is one message for one channel in the outbox, as
// stored: its searchable columns, its delivery state and the message itself
// as JSON (owned by internal/notify).
type NotificationRecord struct {
	// ID is assigned by EnqueueNotifications, increasing.
	ID       int64
	Channel  string
	Key      string // dedup key: the incident id
	Event    string
	Group    string
	Instance string
	// Status is NotificationPending, NotificationDelivered or
	// NotificationFailed.
	Status     string
	Attempts   int
	LastError  string
	LastStatus int // HTTP status of the last attempt, 0 if none
	CreatedAt  time.Time
	UpdatedAt  time.Time
	// NextAt is the earliest next attempt while pending; zero means now.
	NextAt time.Time
	Body   []byte
}

// NotificationFilter selects notifications. Zero fields match everything.
type NotificationFilter struct {
	Channel string
	Key     string
	Group   string
	Status  string
	// Limit is the maximum number returned, newest first (0: 100).
	Limit int
}

// EnqueueNotifications inserts rs as pending, in order, with evs in the same
// transaction, and returns them with ID assigned (CreatedAt and UpdatedAt
// set to now where zero). They are on disk when it returns.
func (s *Store) EnqueueNotifications(ctx context.Context, rs []NotificationRecord, evs ...Event) ([]NotificationRecord, error) {
	out := slices.Clone(rs)
	for i := range out {
		r := &out[i]
		if r.Channel == "" || r.Event == "" {
			return nil, fmt.Errorf("enqueue notification %d: channel and event are required", i)
		}
		r.Status = NotificationPending
		if r.CreatedAt.IsZero() {
			r.CreatedAt = now()
		}
		if r.UpdatedAt.IsZero() {
			r.UpdatedAt = r.CreatedAt
		}
	}
	evs = slices.Clone(evs)
	err := s.write(ctx, func(tx *sql.Tx) ([]Event, error) {
		for i := range out {
			r := &out[i]
			res, err := tx.ExecContext(ctx, `
INSERT INTO notifications (channel, dedup_key, event, status, attempts, last_error, last_status,
	created_at, updated_at, next_at, grp, instance, body)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				r.Channel, r.Key, r.Event, r.Status, r.Attempts, r.LastError, r.LastStatus,
				timeArg(r.CreatedAt), timeArg(r.UpdatedAt), timeArg(r.NextAt), r.Group, r.Instance, string(r.Body))
			if err != nil {
				return nil, err
			}
			if r.ID, err = res.LastInsertId(); err != nil {
				return nil, err
			}
			s.touch("notifications", r.ID)
		}
		return evs, s.appendTx(ctx, tx, evs)
	})
	if err != nil {
		return nil, fmt.Errorf("enqueue notifications: %w", err)
	}
	return out, nil
}

// UpdateNotification records the delivery state of r (status, attempts,
// last error and HTTP status, updated and next attempt times) and appends
// evs in the same transaction. The message itself never changes.
func (s *Store) UpdateNotification(ctx context.Context, r NotificationRecord, evs ...Event) error {
	if r.UpdatedAt.IsZero() {
		r.UpdatedAt = now()
	}
	evs = slices.Clone(evs)
	err := s.write(ctx, func(tx *sql.Tx) ([]Event, error) {
		res, err := tx.ExecContext(ctx, `
UPDATE notifications SET status = ?, attempts = ?, last_error = ?, last_status = ?, updated_at = ?, next_at = ?
WHERE id = ?`,
			r.Status, r.Attempts, r.LastError, r.LastStatus, timeArg(r.UpdatedAt), timeArg(r.NextAt), r.ID)
		if err != nil {
			return nil, err
		}
		if n, err := res.RowsAffected(); err != nil {
			return nil, err
		} else if n == 0 {
			return nil, ErrNotFound
		}
		s.touch("notifications", r.ID)
		return evs, s.appendTx(ctx, tx, evs)
	})
	if err != nil {
		return fmt.Errorf("update notification %d: %w", r.ID, err)
	}
	return nil
}

const notificationCols = `id, channel, dedup_key, event, grp, instance, status, attempts, last_error, last_status,
	created_at, updated_at, next_at, body`

func scanNotification(sc scanner) (NotificationRecord, error) {
	var r NotificationRecord
	var created, updated, next sql.NullInt64
	var body string
	if err := sc.Scan(&r.ID, &r.Channel, &r.Key, &r.Event, &r.Group, &r.Instance, &r.Status, &r.Attempts,
		&r.LastError, &r.LastStatus, &created, &updated, &next, &body); err != nil {
		return r, err
	}
	r.CreatedAt, r.UpdatedAt, r.NextAt, r.Body = timeOf(created), timeOf(updated), timeOf(next), []byte(body)
	return r, nil
}

// Notification returns one notification, or an error wrapping ErrNotFound.
func (s *Store) Notification(ctx context.Context, id int64) (NotificationRecord, error) {
	r, err := scanNotification(s.r.QueryRowContext(ctx,
		`SELECT `+notificationCols+` FROM notifications WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return r, fmt.Errorf("notification %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return r, fmt.Errorf("read notification %d: %w", id, err)
	}
	return r, nil
}

// PendingNotifications returns pending notifications with ID > afterID in
// ascending ID order (the order they must be delivered in), at most limit
// (0: all).
func (s *Store) PendingNotifications(ctx context.Context, afterID int64, limit int) ([]NotificationRecord, error) {
	q := `SELECT ` + notificationCols + ` FROM notifications WHERE status = ? AND id > ? ORDER BY id`
	args := []any{NotificationPending, afterID}
	if limit > 0 {
		q += ` LIMIT ?`
		args = append(args, limit)
	}
	out, err := s.queryNotifications(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read pending notifications: %w", err)
	}
	return out, nil
}

// Notifications returns the notifications matching f, newest first.
func (s *Store) Notifications(ctx context.Context, f NotificationFilter) ([]NotificationRecord, error) {
	var where []string
	var args []any
	for _, c := range []struct{ col, v string }{
		{"channel", f.Channel}, {"dedup_key", f.Key}, {"grp", f.Group}, {"status", f.Status},
	} {
		if c.v != "" {
			where, args = append(where, c.col+" = ?"), append(args, c.v)
		}
	}
	q := `SELECT ` + notificationCols + ` FROM notifications`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	q += ` ORDER BY id DESC LIMIT ?`
	args = append(args, limit)
	out, err := s.queryNotifications(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read notifications: %w", err)
	}
	return out, nil
}

func (s *Store) queryNotifications(ctx context.Context, q string, args ...any) ([]NotificationRecord, error) {
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []NotificationRecord
	for rows.Next() {
		r, err := scanNotification(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// PruneNotifications deletes all but the newest keep finished (delivered or
// failed) notifications. Pending ones are never pruned.
func (s *Store) PruneNotifications(ctx context.Context, keep int) error {
	if keep < 0 {
		return fmt.Errorf("prune notifications: keep %d is negative", keep)
	}
	err := s.write(ctx, func(tx *sql.Tx) ([]Event, error) {
		ids, err := queryStrings(ctx, tx, `SELECT id FROM notifications WHERE status != ? AND id <= (
			SELECT id FROM notifications WHERE status != ? ORDER BY id DESC LIMIT 1 OFFSET ?)`,
			NotificationPending, NotificationPending, keep)
		if err != nil {
			return nil, err
		}
		for _, id := range ids {
			if _, err := tx.ExecContext(ctx, `DELETE FROM notifications WHERE id = ?`, id); err != nil {
				return nil, err
			}
			n, _ := strconv.ParseInt(id, 10, 64)
			s.touch("notifications", n)
		}
		return nil, nil
	})
	if err != nil {
		return fmt.Errorf("prune notifications: %w", err)
	}
	return nil
}
