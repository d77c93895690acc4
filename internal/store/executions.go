package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"
)

// ExecutionRecord is a runbook execution as stored: its searchable columns
// and its whole state as JSON (owned by internal/runbook).
type ExecutionRecord struct {
	ID        string
	Document  string
	Status    string
	Parent    string
	StartedAt time.Time
	UpdatedAt time.Time
	Body      []byte
}

// PutExecution inserts or replaces an execution and appends evs in the same
// transaction.
func (s *Store) PutExecution(ctx context.Context, r ExecutionRecord, evs ...Event) error {
	if r.ID == "" {
		return errors.New("put execution: empty id")
	}
	if r.UpdatedAt.IsZero() {
		r.UpdatedAt = now()
	}
	evs = slices.Clone(evs)
	err := s.write(ctx, func(tx *sql.Tx) ([]Event, error) {
		_, err := tx.ExecContext(ctx, `
INSERT INTO executions (id, document, status, parent, started_at, updated_at, body)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET
	document = excluded.document, status = excluded.status, parent = excluded.parent,
	started_at = excluded.started_at, updated_at = excluded.updated_at, body = excluded.body`,
			r.ID, r.Document, r.Status, r.Parent, timeArg(r.StartedAt), timeArg(r.UpdatedAt), string(r.Body))
		if err != nil {
			return nil, err
		}
		return evs, s.appendTx(ctx, tx, evs)
	})
	if err != nil {
		return fmt.Errorf("put execution %s: %w", r.ID, err)
	}
	return nil
}

const execCols = `id, document, status, parent, started_at, updated_at, body`

func scanExecution(sc interface{ Scan(...any) error }) (ExecutionRecord, error) {
	var r ExecutionRecord
	var started, updated sql.NullInt64
	var body string
	if err := sc.Scan(&r.ID, &r.Document, &r.Status, &r.Parent, &started, &updated, &body); err != nil {
		return r, err
	}
	r.StartedAt, r.UpdatedAt, r.Body = timeOf(started), timeOf(updated), []byte(body)
	return r, nil
}

// Execution returns one execution, or an error wrapping ErrNotFound.
func (s *Store) Execution(ctx context.Context, id string) (ExecutionRecord, error) {
	r, err := scanExecution(s.r.QueryRowContext(ctx, `SELECT `+execCols+` FROM executions WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return r, fmt.Errorf("execution %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return r, fmt.Errorf("read execution %s: %w", id, err)
	}
	return r, nil
}

// Executions returns the newest executions first, at most limit (0: 100),
// only those with one of statuses when given.
func (s *Store) Executions(ctx context.Context, limit int, statuses ...string) ([]ExecutionRecord, error) {
	if limit <= 0 {
		limit = 100
	}
	q := `SELECT ` + execCols + ` FROM executions`
	var args []any
	if len(statuses) > 0 {
		q += ` WHERE status IN (?` + repeat(",?", len(statuses)-1) + `)`
		for _, st := range statuses {
			args = append(args, st)
		}
	}
	q += ` ORDER BY started_at DESC, id DESC LIMIT ?`
	args = append(args, limit)
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read executions: %w", err)
	}
	defer rows.Close()
	var out []ExecutionRecord
	for rows.Next() {
		r, err := scanExecution(rows)
		if err != nil {
			return nil, fmt.Errorf("read executions: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func repeat(s string, n int) string {
	out := ""
	for range n {
		out += s
	}
	return out
}
