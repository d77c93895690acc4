package store

import (
	"context"
	"database/sql"
	"errors"
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
	return s.putDoc(ctx, incidentsTable, []any{r.ID, r.Key, r.Status, timeArg(r.OpenedAt), timeArg(r.UpdatedAt), string(r.Body)}, evs)
}

func scanIncident(sc rowScanner) (IncidentRecord, error) {
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
	return getDoc(s, ctx, incidentsTable, id, scanIncident)
}

// Incidents returns the newest incidents first, at most limit (0: 100),
// only those with one of statuses when given.
func (s *Store) Incidents(ctx context.Context, limit int, statuses ...string) ([]IncidentRecord, error) {
	return listDocs(s, ctx, incidentsTable, limit, statuses, scanIncident)
}
