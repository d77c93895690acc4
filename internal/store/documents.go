package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// docTable is a table that keeps one JSON document per id beside the few
// columns it is searched by: runbook executions and incidents. Each is
// rewritten whole at every change.
type docTable struct {
	name    string   // the table
	what    string   // in messages: "execution"
	cols    []string // id first
	orderBy string   // newest first
}

var (
	executionsTable = docTable{"executions", "execution",
		[]string{"id", "document", "status", "parent", "started_at", "updated_at", "body"}, "started_at DESC, id DESC"}
	incidentsTable = docTable{"incidents", "incident",
		[]string{"id", "key", "status", "opened_at", "updated_at", "body"}, "opened_at DESC, id DESC"}
)

// put inserts or replaces a row (args in the order of t.cols) and appends
// evs in the same transaction.
func (s *Store) putDoc(ctx context.Context, t docTable, args []any, evs []Event) error {
	evs = slices.Clone(evs)
	sets := make([]string, 0, len(t.cols)-1)
	for _, c := range t.cols[1:] {
		sets = append(sets, c+" = excluded."+c)
	}
	q := `INSERT INTO ` + t.name + ` (` + strings.Join(t.cols, ", ") + `) VALUES (?` + strings.Repeat(", ?", len(t.cols)-1) +
		`) ON CONFLICT (id) DO UPDATE SET ` + strings.Join(sets, ", ")
	err := s.write(ctx, func(tx *sql.Tx) ([]Event, error) {
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return nil, err
		}
		s.touch(t.name, args[0])
		return evs, s.appendTx(ctx, tx, evs)
	})
	if err != nil {
		return fmt.Errorf("put %s %v: %w", t.what, args[0], err)
	}
	return nil
}

type rowScanner interface{ Scan(...any) error }

// getDoc reads one row by id, or an error wrapping ErrNotFound.
func getDoc[R any](s *Store, ctx context.Context, t docTable, id string, scan func(rowScanner) (R, error)) (R, error) {
	r, err := scan(s.r.QueryRowContext(ctx, `SELECT `+strings.Join(t.cols, ", ")+` FROM `+t.name+` WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return r, fmt.Errorf("%s %s: %w", t.what, id, ErrNotFound)
	}
	if err != nil {
		return r, fmt.Errorf("read %s %s: %w", t.what, id, err)
	}
	return r, nil
}

// listDocs returns the newest rows first, at most limit (0: 100), only
// those with one of statuses when given.
func listDocs[R any](s *Store, ctx context.Context, t docTable, limit int, statuses []string, scan func(rowScanner) (R, error)) ([]R, error) {
	if limit <= 0 {
		limit = 100
	}
	q := `SELECT ` + strings.Join(t.cols, ", ") + ` FROM ` + t.name
	var args []any
	if len(statuses) > 0 {
		q += ` WHERE status IN (?` + strings.Repeat(",?", len(statuses)-1) + `)`
		for _, st := range statuses {
			args = append(args, st)
		}
	}
	q += ` ORDER BY ` + t.orderBy + ` LIMIT ?`
	args = append(args, limit)
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read %ss: %w", t.what, err)
	}
	defer rows.Close()
	var out []R
	for rows.Next() {
		r, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("read %ss: %w", t.what, err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
