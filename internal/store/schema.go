package store

import (
	"context"
	"database/sql"
	"fmt"
)

// migrations are applied in order; PRAGMA user_version records how many ran.
// Append new steps, never edit a released one: a state dir written by an
// older autoheal is upgraded step by step.
//
// No foreign keys are declared although foreign_keys is on: instances of a
// group that left the config, and attachments of an instance that was pruned,
// are legitimate records, and the journal must accept any event.
var migrations = []string{
	// 1: the initial schema.
	`
CREATE TABLE events (
	seq      INTEGER PRIMARY KEY AUTOINCREMENT, -- AUTOINCREMENT: a Seq is never reused, even after pruning everything
	time     INTEGER NOT NULL,                  -- unix nanoseconds, UTC
	type     TEXT    NOT NULL,
	grp      TEXT    NOT NULL DEFAULT '',
	instance TEXT    NOT NULL DEFAULT '',
	message  TEXT    NOT NULL DEFAULT '',
	data     TEXT                               -- JSON object or NULL
);
CREATE INDEX events_grp ON events (grp, seq);
CREATE INDEX events_instance ON events (instance, seq);

CREATE TABLE groups (
	name       TEXT    PRIMARY KEY,
	status     TEXT    NOT NULL DEFAULT '',
	reason     TEXT    NOT NULL DEFAULT '',
	min        INTEGER NOT NULL DEFAULT 0,
	max        INTEGER NOT NULL DEFAULT 0,
	desired    INTEGER NOT NULL DEFAULT 0,
	heal       TEXT    NOT NULL DEFAULT '',
	updated_at INTEGER
);

CREATE TABLE instances (
	id            TEXT    PRIMARY KEY,
	grp           TEXT    NOT NULL,
	state         TEXT    NOT NULL DEFAULT '',
	health        TEXT    NOT NULL DEFAULT '',
	pid           INTEGER NOT NULL DEFAULT 0,
	restarts      INTEGER NOT NULL DEFAULT 0,
	ports         TEXT,                          -- JSON object or NULL
	launched_at   INTEGER,
	updated_at    INTEGER,
	terminated_at INTEGER,
	last_exit     TEXT    NOT NULL DEFAULT '',
	cause         TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX instances_grp ON instances (grp, launched_at);

CREATE TABLE attachments (
	kind       TEXT    NOT NULL,
	grp        TEXT    NOT NULL,
	name       TEXT    NOT NULL,
	holder     TEXT    NOT NULL DEFAULT '',
	token      INTEGER NOT NULL DEFAULT 0,
	updated_at INTEGER,
	PRIMARY KEY (kind, grp, name)
);

CREATE TABLE kv (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
);
`,
	// 2: runbook executions, each one JSON record rewritten at every step.
	`
CREATE TABLE executions (
	id         TEXT    PRIMARY KEY,
	document   TEXT    NOT NULL,
	status     TEXT    NOT NULL,
	parent     TEXT    NOT NULL DEFAULT '',
	started_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	body       TEXT    NOT NULL                -- JSON
);
CREATE INDEX executions_started ON executions (started_at);
CREATE INDEX executions_status ON executions (status);
`,
	// 3: the notification outbox: one row per message and channel, kept
	// after delivery as the record of what was sent.
	`
CREATE TABLE notifications (
	id           INTEGER PRIMARY KEY AUTOINCREMENT, -- delivery order; never reused, so receivers can dedupe on it
	channel      TEXT    NOT NULL,
	dedup_key    TEXT    NOT NULL DEFAULT '',
	event        TEXT    NOT NULL,
	status       TEXT    NOT NULL,                  -- pending, delivered, failed
	attempts     INTEGER NOT NULL DEFAULT 0,
	last_error   TEXT    NOT NULL DEFAULT '',
	last_status  INTEGER NOT NULL DEFAULT 0,        -- HTTP status of the last attempt, 0 if none
	created_at   INTEGER NOT NULL,
	updated_at   INTEGER NOT NULL,
	next_at      INTEGER,                           -- earliest next attempt while pending
	grp          TEXT    NOT NULL DEFAULT '',
	instance     TEXT    NOT NULL DEFAULT '',
	body         TEXT    NOT NULL                   -- JSON message
);
CREATE INDEX notifications_status ON notifications (status, id);
CREATE INDEX notifications_key ON notifications (dedup_key, id);
CREATE INDEX notifications_channel ON notifications (channel, id);
`,
	// 4: incidents, each one JSON record with its timeline.
	`
CREATE TABLE incidents (
	id         TEXT    PRIMARY KEY,
	key        TEXT    NOT NULL,
	status     TEXT    NOT NULL,
	opened_at  INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	body       TEXT    NOT NULL                -- JSON
);
CREATE INDEX incidents_opened ON incidents (opened_at);
CREATE INDEX incidents_status ON incidents (status);
`,
	// 5: the cluster host an instance runs on ('' for the controller's own).
	`
ALTER TABLE instances ADD COLUMN host TEXT NOT NULL DEFAULT '';
`,
}

// migrate brings the schema to len(migrations) in one transaction, so a
// crash mid-migration leaves the previous version intact.
func migrate(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer tx.Rollback()
	var v int
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return fmt.Errorf("migrate: read user_version: %w", err)
	}
	if v > len(migrations) {
		// Running an old binary on a newer schema could drop what it does
		// not understand; refuse instead.
		return fmt.Errorf("migrate: schema version %d is newer than this autoheal supports (%d)", v, len(migrations))
	}
	if v == len(migrations) {
		return nil
	}
	for i := v; i < len(migrations); i++ {
		if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
			return fmt.Errorf("migrate: step %d: %w", i+1, err)
		}
	}
	// user_version lives in the database header and changes within the
	// transaction, so it commits or rolls back with the schema.
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", len(migrations))); err != nil {
		return fmt.Errorf("migrate: set user_version: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// SchemaVersion is the schema version this build writes.
func SchemaVersion() int { return len(migrations) }
