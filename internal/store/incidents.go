package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"
)

// IncidentRecord is an incident as stored: searchable columns and its
// whole record as JSON (owned by internal/remediation).
type IncidentRecord struct {
	ID        string
	Key       string
	Status    string
	OpenedAt  time.Time
	UpdatedAt time.Time
	Body      []byte
}

// PutIncident inserts or replaces an incident and appends evs in the same
// transaction.
func (s *Store) PutIncident(ctx context.Context, r IncidentRecord, evs ...Event) error {
	if r.ID == "" {
		return errors.New("put incident: empty id")
	}
	if r.UpdatedAt.IsZero() {
		r.UpdatedAt = now()
	}
	evs = slices.Clone(evs)
	err := s.write(ctx, func(tx *sql.Tx) ([]Event, error) {
		_, err := tx.ExecContext(ctx, `
INSERT INTO incidents (id, key, status, opened_at, updated_at, body) VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET key = excluded.key, status = excluded.status,
	opened_at = excluded.opened_at, updated_at = excluded.updated_at, body = excluded.body`,
			r.ID, r.Key, r.Status, timeArg(r.OpenedAt), timeArg(r.UpdatedAt), string(r.Body))
		if err != nil {
			return nil, err
		}
		return evs, s.appendTx(ctx, tx, evs)
	})
	if err != nil {
		return fmt.Errorf("put incident %s: %w", r.ID, err)
	}
	return nil
}

const incidentCols = `id, key, status, opened_at, updated_at, body`

func scanIncident(sc interface{ Scan(...any) error }) (IncidentRecord, error) {
	var r IncidentRecord
	var opened, updated sql.NullInt64
	var body string
	if err := sc.Scan(&r.ID, &r.Key, &r.Status, &opened, &updated, &body); err != nil {
		return r, err
	}
	r.OpenedAt, r.UpdatedAt, r.Body = timeOf(opened), timeOf(updated), []byte(body)
	return r, nil
}

// Incident returns one incident, or an error wrapping ErrNotFound.
func (s *Store) Incident(ctx context.Context, id string) (IncidentRecord, error) {
	r, err := scanIncident(s.r.QueryRowContext(ctx, `SELECT `+incidentCols+` FROM incidents WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return r, fmt.Errorf("incident %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return r, fmt.Errorf("read incident %s: %w", id, err)
	}
	return r, nil
}

// Incidents returns the newest incidents first, at most limit (0: 100),
// only those with one of statuses when given.
func (s *Store) Incidents(ctx context.Context, limit int, statuses ...string) ([]IncidentRecord, error) {
	if limit <= 0 {
		limit = 100
	}
	q := `SELECT ` + incidentCols + ` FROM incidents`
	var args []any
	if len(statuses) > 0 {
		q += ` WHERE status IN (?` + repeat(",?", len(statuses)-1) + `)`
		for _, st := range statuses {
			args = append(args, st)
		}
	}
	q += ` ORDER BY opened_at DESC, id DESC LIMIT ?`
	args = append(args, limit)
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read incidents: %w", err)
	}
	defer rows.Close()
	var out []IncidentRecord
	for rows.Next() {
		r, err := scanIncident(rows)
		if err != nil {
			return nil, fmt.Errorf("read incidents: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
