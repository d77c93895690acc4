package store

import (
	"context"
	"database/sql"
	"errors"
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
	return s.putDoc(ctx, executionsTable, []any{r.ID, r.Document, r.Status, r.Parent,
		timeArg(r.StartedAt), timeArg(r.UpdatedAt), string(r.Body)}, evs)
}

func scanExecution(sc rowScanner) (ExecutionRecord, error) {
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
	return getDoc(s, ctx, executionsTable, id, scanExecution)
}

// Executions returns the newest executions first, at most limit (0: 100),
// only those with one of statuses when given.
func (s *Store) Executions(ctx context.Context, limit int, statuses ...string) ([]ExecutionRecord, error) {
	return listDocs(s, ctx, executionsTable, limit, statuses, scanExecution)
}
