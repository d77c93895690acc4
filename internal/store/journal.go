package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/autoheal/autoheal/internal/event"
)

// Append writes events to the journal in one transaction and returns them
// with Seq assigned (and Time set to now where it was zero). They are on
// disk when Append returns, and are then published to subscribers.
func (s *Store) Append(ctx context.Context, evs ...Event) ([]Event, error) {
	if len(evs) == 0 {
		return nil, nil
	}
	out := slices.Clone(evs)
	err := s.write(ctx, func(tx *sql.Tx) ([]Event, error) {
		if err := s.appendTx(ctx, tx, out); err != nil {
			return nil, err
		}
		return out, nil
	})
	if err != nil {
		return nil, fmt.Errorf("append events: %w", err)
	}
	return out, nil
}

// appendTx inserts evs in tx, filling in Seq and Time in place. It is shared
// by every write that records its cause in the journal in the same
// transaction.
func (s *Store) appendTx(ctx context.Context, tx *sql.Tx, evs []Event) error {
	if len(evs) == 0 {
		return nil
	}
	// tx.StmtContext reuses the statement already prepared on the single
	// writer connection, so a batch costs no re-preparation.
	stmt := tx.StmtContext(ctx, s.insertEvent)
	t := now()
	for i := range evs {
		ev := &evs[i]
		if err := ev.Check(); err != nil {
			return fmt.Errorf("event %d: %w", i, err)
		}
		if ev.Time.IsZero() {
			ev.Time = t
		} else {
			ev.Time = ev.Time.UTC()
		}
		var data any
		if ev.Data != nil {
			b, err := json.Marshal(ev.Data)
			if err != nil {
				return fmt.Errorf("event %s: data: %w", ev.Type, err)
			}
			data = string(b)
		}
		res, err := stmt.ExecContext(ctx, ev.Time.UnixNano(), ev.Type, ev.Group, ev.Instance, ev.Message, data)
		if err != nil {
			return fmt.Errorf("insert event %s: %w", ev.Type, err)
		}
		if ev.Seq, err = res.LastInsertId(); err != nil {
			return fmt.Errorf("insert event %s: %w", ev.Type, err)
		}
	}
	return nil
}

// Events returns the events matching f in ascending Seq order.
func (s *Store) Events(ctx context.Context, f EventFilter) ([]Event, error) {
	var where []string
	var args []any
	if f.Group != "" {
		where, args = append(where, "grp = ?"), append(args, f.Group)
	}
	if f.Instance != "" {
		where, args = append(where, "instance = ?"), append(args, f.Instance)
	}
	if f.AfterSeq > 0 {
		where, args = append(where, "seq > ?"), append(args, f.AfterSeq)
	}
	q := "SELECT seq, time, type, grp, instance, message, data FROM events"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	// Tail reads backwards from the newest so the index stops after Limit
	// rows instead of scanning the whole journal.
	if f.Tail {
		q += " ORDER BY seq DESC"
	} else {
		q += " ORDER BY seq"
	}
	if f.Limit > 0 {
		q += " LIMIT ?"
		args = append(args, f.Limit)
	}
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		var ev Event
		var t sql.NullInt64
		var data sql.NullString
		if err := rows.Scan(&ev.Seq, &t, &ev.Type, &ev.Group, &ev.Instance, &ev.Message, &data); err != nil {
			return nil, fmt.Errorf("read events: %w", err)
		}
		ev.Time = timeOf(t)
		if data.Valid && data.String != "" {
			// Data an older build wrote in another shape stays readable,
			// as it was: the journal never fails to read for its payloads.
			if ev.Data, err = event.Decode(ev.Type, []byte(data.String)); err != nil {
				ev.Data = event.Raw{K: ev.Type, JSON: []byte(data.String)}
			}
		}
		out = append(out, ev)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	if f.Tail {
		slices.Reverse(out)
	}
	return out, nil
}

// LastSeq is the Seq of the newest event, 0 for an empty journal.
func (s *Store) LastSeq(ctx context.Context) (int64, error) {
	var seq sql.NullInt64
	if err := s.r.QueryRowContext(ctx, "SELECT MAX(seq) FROM events").Scan(&seq); err != nil {
		return 0, fmt.Errorf("read last seq: %w", err)
	}
	return seq.Int64, nil
}

// PruneEvents deletes all but the newest keep events. Seq values are never
// reused afterwards.
func (s *Store) PruneEvents(ctx context.Context, keep int) error {
	if keep < 0 {
		return fmt.Errorf("prune events: keep %d is negative", keep)
	}
	err := s.write(ctx, func(tx *sql.Tx) ([]Event, error) {
		_, err := tx.ExecContext(ctx, `DELETE FROM events WHERE seq <= (
			SELECT seq FROM events ORDER BY seq DESC LIMIT 1 OFFSET ?)`, keep)
		return nil, err
	})
	if err != nil {
		return fmt.Errorf("prune events: %w", err)
	}
	return nil
}

type subscriber struct {
	ch chan Event
}

// Subscribe returns a channel of the events committed from now on, in Seq
// order, and a function that ends the subscription. A subscriber whose
// buffer is full when an event is published is dropped: its channel is
// closed and it must resubscribe and catch up with Events(AfterSeq). The
// store never waits for a reader, so a stuck API client cannot stall the
// controller. With buffer 0 an event finds room only if a receiver is
// already waiting. Close also closes every channel. The returned function
// may be called more than once. Events are shared between subscribers:
// treat their Data as read-only.
func (s *Store) Subscribe(buffer int) (<-chan Event, func()) {
	sub := &subscriber{ch: make(chan Event, max(buffer, 0))}
	s.subMu.Lock()
	if s.closed {
		close(sub.ch)
	} else {
		s.subs[sub] = struct{}{}
	}
	s.subMu.Unlock()
	return sub.ch, func() {
		s.subMu.Lock()
		defer s.subMu.Unlock()
		// Present in the map means nobody closed it yet: publish and
		// Close remove before closing, both under subMu.
		if _, ok := s.subs[sub]; ok {
			delete(s.subs, sub)
			close(sub.ch)
		}
	}
}

// publish hands committed events to every subscriber without blocking.
// Callers hold wsem, so batches arrive in commit order.
func (s *Store) publish(evs []Event) {
	if len(evs) == 0 {
		return
	}
	s.subMu.Lock()
	defer s.subMu.Unlock()
	for sub := range s.subs {
		for _, ev := range evs {
			select {
			case sub.ch <- ev:
				continue
			default:
			}
			delete(s.subs, sub)
			close(sub.ch)
			break
		}
	}
}
