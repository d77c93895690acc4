package store

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// Replication (docs/design.md#13-the-cluster): a cluster's leader keeps
// the records that must survive it in etcd as well, so that the next
// leader resumes every open incident, execution and window, every group's
// capacity and every pending notification from what was recorded. The store stays the controller's
// only interface: each write transaction names the rows it touched, and
// before it commits, their new values (or their removal) go to the
// Replica; if the replica refuses (this host no longer leads, or etcd is
// out of reach), the transaction is rolled back, so that nothing is done
// that the next leader would not know of. The journal of events is not
// replicated: each host keeps its own, and the records carry their
// history.

// ErrReplicaUnavailable wraps a replica's failure to answer (etcd out of
// reach): the write was not made, and may be tried again.
var ErrReplicaUnavailable = errors.New("the cluster's records cannot be written now")

// Replica takes the replicated rows a write changes, before the write
// commits.
type Replica interface {
	Replicate(ctx context.Context, recs []Record) error
}

// Record is one replicated row: Key is "TABLE/PK[/PK...]" (each part
// path-escaped), Value the row as a JSON object of its columns, nil for a
// row that was deleted.
type Record struct {
	Key   string
	Value []byte
}

// replicated are the tables that are replicated, with their primary key's
// columns in order. Instances and attachments are not: instances run on
// the leader's host and go with it (the next leader records the ones it
// finds there terminated, and launches its own), and the next leader's
// volume tokens are above any earlier leader's whatever the records say
// (volume.TokenFloor); replicating their every change cost etcd writes
// that, with 100 groups starting at once and three etcd members on one
// disk, made etcd lose the hosts' leases.
var replicated = map[string][]string{
	"groups":        {"name"},
	"kv":            {"key"},
	"executions":    {"id"},
	"incidents":     {"id"},
	"notifications": {"id"},
}

// rowRef names one row of a replicated table.
type rowRef struct {
	table string
	pk    []any
}

func (r rowRef) key() string {
	parts := []string{r.table}
	for _, v := range r.pk {
		parts = append(parts, url.PathEscape(fmt.Sprint(v)))
	}
	return strings.Join(parts, "/")
}

// SetReplica makes every later write replicate the rows it touches to r
// (nil: none). Call it before the store is shared.
func (s *Store) SetReplica(r Replica) { s.replica = r }

// touch records, during a write (wsem held), that the write changed the
// row of table with primary key pk.
func (s *Store) touch(table string, pk ...any) {
	s.touched = append(s.touched, rowRef{table: table, pk: pk})
}

// replicate sends the touched rows, as they are in tx, to the replica.
func (s *Store) replicate(ctx context.Context, tx *sql.Tx) error {
	if s.replica == nil || len(s.touched) == 0 {
		return nil
	}
	seen := map[string]bool{}
	var recs []Record
	for _, r := range s.touched {
		k := r.key()
		if seen[k] {
			continue
		}
		seen[k] = true
		v, err := readRow(ctx, tx, r)
		if err != nil {
			return fmt.Errorf("replicate %s: %w", k, err)
		}
		recs = append(recs, Record{Key: k, Value: v})
	}
	if err := s.replica.Replicate(ctx, recs); err != nil {
		return fmt.Errorf("replicate: %w", err)
	}
	return nil
}

// readRow returns row r as a JSON object, or nil when it does not exist.
func readRow(ctx context.Context, tx *sql.Tx, r rowRef) ([]byte, error) {
	cols := replicated[r.table]
	where := make([]string, len(cols))
	for i, c := range cols {
		where[i] = c + " = ?"
	}
	rows, err := tx.QueryContext(ctx, `SELECT * FROM `+r.table+` WHERE `+strings.Join(where, " AND "), r.pk...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	if !rows.Next() {
		return nil, rows.Err()
	}
	m, err := rowMap(rows)
	if err != nil {
		return nil, err
	}
	return json.Marshal(m)
}

func rowMap(rows *sql.Rows) (map[string]any, error) {
	names, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	vals := make([]any, len(names))
	ptrs := make([]any, len(names))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return nil, err
	}
	m := make(map[string]any, len(names))
	for i, n := range names {
		if b, ok := vals[i].([]byte); ok {
			vals[i] = string(b) // TEXT: every column here is text or a number
		}
		m[n] = vals[i]
	}
	return m, nil
}

// Replicated returns every replicated row: what a first leader puts in
// etcd.
func (s *Store) Replicated(ctx context.Context) ([]Record, error) {
	var out []Record
	for _, table := range sortedTables() {
		rows, err := s.r.QueryContext(ctx, `SELECT * FROM `+table)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			m, err := rowMap(rows)
			if err != nil {
				rows.Close()
				return nil, err
			}
			var pk []any
			for _, c := range replicated[table] {
				pk = append(pk, m[c])
			}
			v, err := json.Marshal(m)
			if err != nil {
				rows.Close()
				return nil, err
			}
			out = append(out, Record{Key: rowRef{table, pk}.key(), Value: v})
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

func sortedTables() []string {
	var t []string
	for k := range replicated {
		t = append(t, k)
	}
	slices.Sort(t)
	return t
}

// Import replaces every replicated table's rows with recs, in one
// transaction: what a new leader does with the records in etcd before it
// runs anything. Nothing is replicated back.
func (s *Store) Import(ctx context.Context, recs []Record) error {
	type row struct {
		table string
		m     map[string]any
	}
	var rows []row
	for _, r := range recs {
		table, _, _ := strings.Cut(r.Key, "/")
		if _, ok := replicated[table]; !ok {
			return fmt.Errorf("import %s: not a replicated table", r.Key)
		}
		if r.Value == nil {
			continue
		}
		d := json.NewDecoder(bytes.NewReader(r.Value))
		d.UseNumber() // nanosecond times do not fit a float
		var m map[string]any
		if err := d.Decode(&m); err != nil {
			return fmt.Errorf("import %s: %w", r.Key, err)
		}
		for k, v := range m {
			if n, ok := v.(json.Number); ok {
				if i, err := n.Int64(); err == nil {
					m[k] = i
				} else if f, err := n.Float64(); err == nil {
					m[k] = f
				}
			}
		}
		rows = append(rows, row{table, m})
	}
	err := s.write(ctx, func(tx *sql.Tx) ([]Event, error) {
		for _, t := range sortedTables() {
			if _, err := tx.ExecContext(ctx, `DELETE FROM `+t); err != nil {
				return nil, err
			}
		}
		for _, r := range rows {
			cols := make([]string, 0, len(r.m))
			for c := range r.m {
				if !validColumn(c) {
					return nil, fmt.Errorf("%s: column %q", r.table, c)
				}
				cols = append(cols, c)
			}
			slices.Sort(cols)
			args := make([]any, len(cols))
			for i, c := range cols {
				args[i] = r.m[c]
			}
			q := `INSERT INTO ` + r.table + ` (` + strings.Join(cols, ", ") + `) VALUES (?` + strings.Repeat(", ?", len(cols)-1) + `)`
			if _, err := tx.ExecContext(ctx, q, args...); err != nil {
				return nil, fmt.Errorf("%s: %w", r.table, err)
			}
		}
		return nil, nil // it touches nothing: an import is not replicated back
	})
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	return nil
}

// validColumn accepts the column names the schema uses: a record from etcd
// names columns, and only names are spliced into SQL.
func validColumn(c string) bool {
	if c == "" {
		return false
	}
	for _, r := range c {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}
