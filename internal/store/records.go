package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
)

// Terminated is the lifecycle state of an instance that is gone for good;
// such instances are hidden from Instances unless asked for and are what
// PruneInstances deletes.
const Terminated = "Terminated"

// PutInstance inserts or replaces the record of an instance and appends evs
// in the same transaction: a state change and its cause are durable together
// or not at all. UpdatedAt is set to now when zero.
func (s *Store) PutInstance(ctx context.Context, in Instance, evs ...Event) error {
	return s.Commit(ctx, InstanceChange(in, evs...))
}

// InstanceChange is PutInstance as a part of a Commit.
func InstanceChange(in Instance, evs ...Event) Change {
	if in.UpdatedAt.IsZero() {
		in.UpdatedAt = now()
	}
	evs = slices.Clone(evs)
	return Change{what: "put instance " + in.ID, evs: evs, run: func(ctx context.Context, tx *sql.Tx) error {
		if in.ID == "" {
			return errors.New("empty id")
		}
		var ports any
		if in.Ports != nil {
			b, err := json.Marshal(in.Ports)
			if err != nil {
				return fmt.Errorf("ports: %w", err)
			}
			ports = string(b)
		}
		var terminated any
		if in.TerminatedAt != nil {
			terminated = timeArg(*in.TerminatedAt)
		}
		_, err := tx.ExecContext(ctx, `
INSERT INTO instances (id, grp, state, health, pid, restarts, ports, launched_at, updated_at, terminated_at, last_exit, cause, host)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET
	grp = excluded.grp, state = excluded.state, health = excluded.health, pid = excluded.pid,
	restarts = excluded.restarts, ports = excluded.ports, launched_at = excluded.launched_at,
	updated_at = excluded.updated_at, terminated_at = excluded.terminated_at,
	last_exit = excluded.last_exit, cause = excluded.cause, host = excluded.host`,
			in.ID, in.Group, in.State, in.Health, in.Pid, in.Restarts, ports,
			timeArg(in.LaunchedAt), timeArg(in.UpdatedAt), terminated, in.LastExit, in.Cause, in.Host)
		return err
	}}
}

const instanceCols = `id, grp, state, health, pid, restarts, ports, launched_at, updated_at, terminated_at, last_exit, cause, host`

// Instance returns the record of one instance, or an error wrapping
// ErrNotFound.
func (s *Store) Instance(ctx context.Context, id string) (Instance, error) {
	row := s.r.QueryRowContext(ctx, `SELECT `+instanceCols+` FROM instances WHERE id = ?`, id)
	in, err := scanInstance(row)
	if errors.Is(err, sql.ErrNoRows) {
		return Instance{}, fmt.Errorf("instance %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Instance{}, fmt.Errorf("read instance %s: %w", id, err)
	}
	return in, nil
}

// Instances returns the instances of group ("" for every group) ordered by
// launch time, without the Terminated ones unless withTerminated.
func (s *Store) Instances(ctx context.Context, group string, withTerminated bool) ([]Instance, error) {
	q := `SELECT ` + instanceCols + ` FROM instances WHERE (? = '' OR grp = ?)`
	args := []any{group, group}
	if !withTerminated {
		q += ` AND state != ?`
		args = append(args, Terminated)
	}
	// NULL launch times (never launched) sort first; id breaks ties so the
	// order is stable.
	q += ` ORDER BY launched_at, id`
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read instances: %w", err)
	}
	defer rows.Close()
	var out []Instance
	for rows.Next() {
		in, err := scanInstance(rows)
		if err != nil {
			return nil, fmt.Errorf("read instances: %w", err)
		}
		out = append(out, in)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read instances: %w", err)
	}
	return out, nil
}

// PruneInstances deletes the records of Terminated instances beyond the
// newest keep of each group (by termination time). Live instances are never
// touched, and neither are their events: the journal has its own retention.
func (s *Store) PruneInstances(ctx context.Context, keep int) error {
	if keep < 0 {
		return fmt.Errorf("prune instances: keep %d is negative", keep)
	}
	err := s.write(ctx, func(tx *sql.Tx) ([]Event, error) {
		ids, err := queryStrings(ctx, tx, `
SELECT id FROM (
	SELECT id, ROW_NUMBER() OVER (
		PARTITION BY grp
		ORDER BY COALESCE(terminated_at, updated_at, 0) DESC, id DESC) AS n
	FROM instances WHERE state = ?)
WHERE n > ?`, Terminated, keep)
		if err != nil {
			return nil, err
		}
		for _, id := range ids {
			if _, err := tx.ExecContext(ctx, `DELETE FROM instances WHERE id = ?`, id); err != nil {
				return nil, err
			}
		}
		return nil, nil
	})
	if err != nil {
		return fmt.Errorf("prune instances: %w", err)
	}
	return nil
}

type scanner interface{ Scan(dest ...any) error }

func scanInstance(sc scanner) (Instance, error) {
	var in Instance
	var ports sql.NullString
	var launched, updated, terminated sql.NullInt64
	if err := sc.Scan(&in.ID, &in.Group, &in.State, &in.Health, &in.Pid, &in.Restarts, &ports,
		&launched, &updated, &terminated, &in.LastExit, &in.Cause, &in.Host); err != nil {
		return Instance{}, err
	}
	if ports.Valid && ports.String != "" {
		if err := json.Unmarshal([]byte(ports.String), &in.Ports); err != nil {
			return Instance{}, fmt.Errorf("instance %s: ports: %w", in.ID, err)
		}
	}
	in.LaunchedAt, in.UpdatedAt = timeOf(launched), timeOf(updated)
	if terminated.Valid {
		t := timeOf(terminated)
		in.TerminatedAt = &t
	}
	return in, nil
}

// PutGroup inserts or replaces the durable state of a group and appends evs
// in the same transaction. UpdatedAt is set to now when zero.
func (s *Store) PutGroup(ctx context.Context, g Group, evs ...Event) error {
	return s.Commit(ctx, GroupChange(g, evs...))
}

// GroupChange is PutGroup as a part of a Commit.
func GroupChange(g Group, evs ...Event) Change {
	if g.UpdatedAt.IsZero() {
		g.UpdatedAt = now()
	}
	return Change{what: "put group " + g.Name, evs: slices.Clone(evs), refs: []rowRef{{"groups", []any{g.Name}}}, run: func(ctx context.Context, tx *sql.Tx) error {
		if g.Name == "" {
			return errors.New("empty name")
		}
		_, err := tx.ExecContext(ctx, `
INSERT INTO groups (name, status, reason, min, max, desired, heal, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (name) DO UPDATE SET
	status = excluded.status, reason = excluded.reason, min = excluded.min, max = excluded.max,
	desired = excluded.desired, heal = excluded.heal, updated_at = excluded.updated_at`,
			g.Name, g.Status, g.Reason, g.Min, g.Max, g.Desired, g.Heal, timeArg(g.UpdatedAt))
		return err
	}}
}

const groupCols = `name, status, reason, min, max, desired, heal, updated_at`

// Group returns the durable state of a group, or an error wrapping
// ErrNotFound.
func (s *Store) Group(ctx context.Context, name string) (Group, error) {
	g, err := scanGroup(s.r.QueryRowContext(ctx, `SELECT `+groupCols+` FROM groups WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return Group{}, fmt.Errorf("group %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return Group{}, fmt.Errorf("read group %s: %w", name, err)
	}
	return g, nil
}

// Groups returns every group ordered by name.
func (s *Store) Groups(ctx context.Context) ([]Group, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+groupCols+` FROM groups ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("read groups: %w", err)
	}
	defer rows.Close()
	var out []Group
	for rows.Next() {
		g, err := scanGroup(rows)
		if err != nil {
			return nil, fmt.Errorf("read groups: %w", err)
		}
		out = append(out, g)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read groups: %w", err)
	}
	return out, nil
}

func scanGroup(sc scanner) (Group, error) {
	var g Group
	var updated sql.NullInt64
	if err := sc.Scan(&g.Name, &g.Status, &g.Reason, &g.Min, &g.Max, &g.Desired, &g.Heal, &updated); err != nil {
		return Group{}, err
	}
	g.UpdatedAt = timeOf(updated)
	return g, nil
}

// Attachment returns who holds a volume or address. One that was never
// attached is returned detached (Holder "", Token 0) without error, so a
// caller can pass it straight to SwapAttachment.
func (s *Store) Attachment(ctx context.Context, kind, group, name string) (Attachment, error) {
	a, err := scanAttachment(s.r.QueryRowContext(ctx,
		`SELECT kind, grp, name, holder, token, updated_at FROM attachments WHERE kind = ? AND grp = ? AND name = ?`,
		kind, group, name))
	if errors.Is(err, sql.ErrNoRows) {
		return Attachment{Kind: kind, Group: group, Name: name}, nil
	}
	if err != nil {
		return Attachment{}, fmt.Errorf("read attachment %s %s/%s: %w", kind, group, name, err)
	}
	return a, nil
}

// Attachments returns the attachments of group ("" for every group) that
// were ever made, ordered by kind, group and name.
func (s *Store) Attachments(ctx context.Context, group string) ([]Attachment, error) {
	rows, err := s.r.QueryContext(ctx,
		`SELECT kind, grp, name, holder, token, updated_at FROM attachments WHERE (? = '' OR grp = ?) ORDER BY kind, grp, name`,
		group, group)
	if err != nil {
		return nil, fmt.Errorf("read attachments: %w", err)
	}
	defer rows.Close()
	var out []Attachment
	for rows.Next() {
		a, err := scanAttachment(rows)
		if err != nil {
			return nil, fmt.Errorf("read attachments: %w", err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read attachments: %w", err)
	}
	return out, nil
}

func scanAttachment(sc scanner) (Attachment, error) {
	var a Attachment
	var updated sql.NullInt64
	if err := sc.Scan(&a.Kind, &a.Group, &a.Name, &a.Holder, &a.Token, &updated); err != nil {
		return Attachment{}, err
	}
	a.UpdatedAt = timeOf(updated)
	return a, nil
}

// SwapAttachment sets the holder of an attachment to holder iff its stored
// holder and token still equal old.Holder and old.Token; otherwise it fails
// with an error wrapping ErrConflict and changes nothing. With bump the token
// is incremented: that is an attach, and the new token fences every earlier
// holder. evs are appended in the same transaction. It returns the new
// record.
//
// The comparison and the write happen inside one write transaction, and
// writes are serialised, so of any number of concurrent swaps from the same
// old record exactly one succeeds.
func (s *Store) SwapAttachment(ctx context.Context, old Attachment, holder string, bump bool, evs ...Event) (Attachment, error) {
	next, c := AttachmentSwap(old, holder, bump, evs...)
	if err := s.Commit(ctx, c); err != nil {
		return Attachment{}, err
	}
	return next, nil
}

// AttachmentSwap is SwapAttachment as a part of a Commit: it returns the
// record the swap writes, and the change, which fails the whole commit if
// the stored record is no longer old.
func AttachmentSwap(old Attachment, holder string, bump bool, evs ...Event) (Attachment, Change) {
	token := old.Token
	if bump {
		token++
	}
	return AttachmentSwapTo(old, holder, token, evs...)
}

// AttachmentSwapTo is AttachmentSwap with the new record's token given:
// a volume's next token may be above old's by more than one (a cluster
// leader's floor, volume.TokenFloor). It must not be below old's.
func AttachmentSwapTo(old Attachment, holder string, token int64, evs ...Event) (Attachment, Change) {
	next := Attachment{Kind: old.Kind, Group: old.Group, Name: old.Name, Holder: holder, Token: token, UpdatedAt: now()}
	what := fmt.Sprintf("swap attachment %s %s/%s", old.Kind, old.Group, old.Name)
	return next, Change{what: what, evs: slices.Clone(evs), run: func(ctx context.Context, tx *sql.Tx) error {
		if old.Kind == "" || old.Group == "" || old.Name == "" {
			return errors.New("kind, group and name are required")
		}
		if next.Token < old.Token {
			return fmt.Errorf("token %d is below the record's %d: tokens never go back", next.Token, old.Token)
		}
		var cur Attachment
		err := tx.QueryRowContext(ctx,
			`SELECT holder, token FROM attachments WHERE kind = ? AND grp = ? AND name = ?`,
			old.Kind, old.Group, old.Name).Scan(&cur.Holder, &cur.Token)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if cur.Holder != old.Holder || cur.Token != old.Token {
			return fmt.Errorf("held by %q with token %d, expected %q with token %d: %w",
				cur.Holder, cur.Token, old.Holder, old.Token, ErrConflict)
		}
		_, err = tx.ExecContext(ctx, `
INSERT INTO attachments (kind, grp, name, holder, token, updated_at) VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (kind, grp, name) DO UPDATE SET
	holder = excluded.holder, token = excluded.token, updated_at = excluded.updated_at`,
			next.Kind, next.Group, next.Name, next.Holder, next.Token, timeArg(next.UpdatedAt))
		return err
	}}
}

// Get returns the value stored under key, or an error wrapping ErrNotFound.
func (s *Store) Get(ctx context.Context, key string) (string, error) {
	var v string
	err := s.r.QueryRowContext(ctx, `SELECT value FROM kv WHERE key = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("key %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("get %s: %w", key, err)
	}
	return v, nil
}

// Set stores value under key, durably, and appends evs in the same
// transaction.
func (s *Store) Set(ctx context.Context, key, value string, evs ...Event) error {
	evs = slices.Clone(evs)
	err := s.write(ctx, func(tx *sql.Tx) ([]Event, error) {
		_, err := tx.ExecContext(ctx,
			`INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
			key, value)
		if err != nil {
			return nil, err
		}
		s.touch("kv", key)
		return evs, s.appendTx(ctx, tx, evs)
	})
	if err != nil {
		return fmt.Errorf("set %s: %w", key, err)
	}
	return nil
}

// Delete removes key; a missing key is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	err := s.write(ctx, func(tx *sql.Tx) ([]Event, error) {
		_, err := tx.ExecContext(ctx, `DELETE FROM kv WHERE key = ?`, key)
		s.touch("kv", key)
		return nil, err
	})
	if err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	return nil
}

// queryStrings returns the first column of a query's rows.
func queryStrings(ctx context.Context, tx *sql.Tx, q string, args ...any) ([]string, error) {
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
