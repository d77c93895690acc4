package store

import (
	"context"
	"fmt"
)

// CountIncidents returns how many incidents there are by status. It reads
// only the status index, so it is cheap enough for every metrics scrape.
func (s *Store) CountIncidents(ctx context.Context) (map[string]int, error) {
	return s.countBy(ctx, "incidents")
}

// CountExecutions returns how many runbook executions there are by status.
func (s *Store) CountExecutions(ctx context.Context) (map[string]int, error) {
	return s.countBy(ctx, "executions")
}

// countBy counts a table's rows by status; table is one of ours, never
// input.
func (s *Store) countBy(ctx context.Context, table string) (map[string]int, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT status, COUNT(*) FROM `+table+` GROUP BY status`)
	if err != nil {
		return nil, fmt.Errorf("count %s: %w", table, err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var status string
		var n int
		if err := rows.Scan(&status, &n); err != nil {
			return nil, fmt.Errorf("count %s: %w", table, err)
		}
		out[status] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count %s: %w", table, err)
	}
	return out, nil
}
