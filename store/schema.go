package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// migration is one schema step. Steps are applied in order, each once, and
// recorded in schema_migrations. Never edit a released step: append a new
// one. Statements use {bool}, {blob}, {fillfactor} and {collate_c} for what
// differs between the dialects (see ddl); a statement beginning with {pg}
// runs on PostgreSQL only.
type migration struct {
	version int
	stmts   []string
}

var migrations = []migration{
	{1, []string{
		`CREATE TABLE IF NOT EXISTS conversations (
			id TEXT PRIMARY KEY,
			name TEXT NOT NULL DEFAULT '',
			creator TEXT NOT NULL DEFAULT '',
			attrs TEXT NOT NULL DEFAULT '{}',
			is_transient {bool} NOT NULL DEFAULT FALSE,
			is_system {bool} NOT NULL DEFAULT FALSE,
			is_unique {bool} NOT NULL DEFAULT FALSE,
			unique_key TEXT UNIQUE,
			is_temporary {bool} NOT NULL DEFAULT FALSE,
			expires_at BIGINT NOT NULL DEFAULT 0,
			muted TEXT NOT NULL DEFAULT '[]',
			created_at BIGINT NOT NULL,
			updated_at BIGINT NOT NULL,
			member_count INTEGER NOT NULL DEFAULT 0,
			seq BIGINT NOT NULL DEFAULT 0,
			last_ts BIGINT NOT NULL DEFAULT 0,
			last_mid TEXT NOT NULL DEFAULT '',
			mention_all_seq BIGINT NOT NULL DEFAULT 0
		){fillfactor}`,
		`CREATE TABLE IF NOT EXISTS members (
			conv_id TEXT NOT NULL,
			client_id TEXT NOT NULL,
			joined_at BIGINT NOT NULL,
			delivered_ts BIGINT NOT NULL DEFAULT 0,
			read_ts BIGINT NOT NULL DEFAULT 0,
			read_seq BIGINT NOT NULL DEFAULT 0,
			read_mid TEXT NOT NULL DEFAULT '',
			mention_seq BIGINT NOT NULL DEFAULT 0,
			PRIMARY KEY (conv_id, client_id)
		){fillfactor}`,
		`CREATE INDEX IF NOT EXISTS members_client ON members (client_id)`,
		`CREATE TABLE IF NOT EXISTS messages (
			id TEXT PRIMARY KEY,
			conv_id TEXT NOT NULL,
			seq BIGINT NOT NULL,
			ts BIGINT NOT NULL,
			from_id TEXT NOT NULL,
			client_msg_id TEXT,
			data TEXT NOT NULL DEFAULT '',
			bin {blob},
			lctype INTEGER NOT NULL DEFAULT 0,
			mention_all {bool} NOT NULL DEFAULT FALSE,
			mention_pids TEXT NOT NULL DEFAULT '',
			receipt {bool} NOT NULL DEFAULT FALSE,
			patch_ts BIGINT NOT NULL DEFAULT 0,
			recalled {bool} NOT NULL DEFAULT FALSE,
			patch_code INTEGER NOT NULL DEFAULT 0,
			patch_reason TEXT NOT NULL DEFAULT ''
		)`,
		// History and cursor lookups; timestamps are unique per conversation.
		`CREATE UNIQUE INDEX IF NOT EXISTS messages_conv_ts ON messages (conv_id, ts)`,
		// De-duplication of retried sends; NULL client_msg_id is not unique.
		`CREATE UNIQUE INDEX IF NOT EXISTS messages_dedup ON messages (from_id, client_msg_id)`,
		// PatchesSince: only patched messages are indexed.
		`CREATE INDEX IF NOT EXISTS messages_patch ON messages (conv_id, patch_ts) WHERE patch_ts > 0`,
		`CREATE TABLE IF NOT EXISTS wills (
			client_id TEXT PRIMARY KEY,
			body TEXT NOT NULL,
			set_at BIGINT NOT NULL
		)`,
		`CREATE TABLE IF NOT EXISTS devices (
			platform TEXT NOT NULL,
			token TEXT NOT NULL,
			client_id TEXT NOT NULL,
			topic TEXT NOT NULL DEFAULT '',
			profile TEXT NOT NULL DEFAULT '',
			badge INTEGER NOT NULL DEFAULT 0,
			updated_at BIGINT NOT NULL,
			PRIMARY KEY (platform, token)
		)`,
		`CREATE INDEX IF NOT EXISTS devices_client ON devices (client_id)`,
		`CREATE TABLE IF NOT EXISTS push_queue (
			id TEXT PRIMARY KEY,
			body TEXT NOT NULL,
			attempts INTEGER NOT NULL DEFAULT 0,
			created_at BIGINT NOT NULL,
			due_at BIGINT NOT NULL,
			lease_until BIGINT NOT NULL DEFAULT 0
		)`,
		`CREATE INDEX IF NOT EXISTS push_queue_due ON push_queue (due_at)`,
	}},
	{2, []string{
		// Receipts of acks older than the hub's memory: only messages
		// that asked for receipts are indexed.
		`CREATE INDEX IF NOT EXISTS messages_receipt ON messages (conv_id, ts) WHERE receipt`,
	}},
	{5, []string{
		// Moderation: member roles ('' is Member), silenced members
		// (until_ts 0: until lifted) and blacklists.
		`ALTER TABLE members ADD COLUMN role TEXT NOT NULL DEFAULT ''`,
		`CREATE TABLE IF NOT EXISTS conv_silenced (
			conv_id TEXT NOT NULL,
			client_id TEXT NOT NULL,
			until_ts BIGINT NOT NULL DEFAULT 0,
			created_at BIGINT NOT NULL,
			PRIMARY KEY (conv_id, client_id)
		)`,
		`CREATE TABLE IF NOT EXISTS conv_blocked (
			conv_id TEXT NOT NULL,
			client_id TEXT NOT NULL,
			created_at BIGINT NOT NULL,
			PRIMARY KEY (conv_id, client_id)
		)`,
		// Messages addressed to some members only (service conversations):
		// a JSON array of client ids, '' for everyone.
		`ALTER TABLE messages ADD COLUMN to_ids TEXT NOT NULL DEFAULT ''`,
	}},
	{6, []string{
		// Each member row carries its conversation's head (kept by the
		// append writer), so that unread conversations are one partial
		// index away: the login sync reads a client's unread memberships
		// only, not all of them.
		`ALTER TABLE members ADD COLUMN conv_seq BIGINT NOT NULL DEFAULT 0`,
		`UPDATE members SET conv_seq = (SELECT c.seq FROM conversations c WHERE c.id = members.conv_id)`,
		`CREATE INDEX IF NOT EXISTS members_unread ON members (client_id) WHERE conv_seq > read_seq`,
	}},
	{7, []string{
		// Session tokens issued before revoked_at (Unix µs) are void
		// (logout, kicks).
		`CREATE TABLE IF NOT EXISTS session_revocations (
			client_id TEXT NOT NULL,
			device TEXT NOT NULL,
			revoked_at BIGINT NOT NULL,
			PRIMARY KEY (client_id, device)
		)`,
		`CREATE INDEX IF NOT EXISTS session_revocations_at ON session_revocations (revoked_at)`,
	}},
	{8, []string{
		// Several hub nodes: each node's lease (Unix ms), the live
		// sessions each node holds, and the events too large for a
		// PostgreSQL NOTIFY payload (the notification carries the id).
		`CREATE TABLE IF NOT EXISTS hub_nodes (
			node TEXT PRIMARY KEY,
			lease_until BIGINT NOT NULL
		)`,
		`CREATE TABLE IF NOT EXISTS hub_presence (
			node TEXT NOT NULL,
			session TEXT NOT NULL,
			client_id TEXT NOT NULL,
			tag TEXT NOT NULL DEFAULT '',
			device TEXT NOT NULL DEFAULT '',
			since BIGINT NOT NULL,
			PRIMARY KEY (node, session)
		)`,
		`CREATE TABLE IF NOT EXISTS hub_events (
			id {serial} PRIMARY KEY,
			data TEXT NOT NULL,
			created_at BIGINT NOT NULL
		)`,
	}},
	{9, []string{
		// The REST API's app-wide history (GET /rtm/messages) and a
		// client's messages (GET /rtm/clients/{id}/messages), newest
		// first without scanning every message.
		`CREATE INDEX IF NOT EXISTS messages_ts ON messages (ts)`,
		`CREATE INDEX IF NOT EXISTS messages_from_ts ON messages (from_id, ts)`,
	}},
	{3, []string{
		// Conversation queries (query.go) that no member condition
		// narrows: by name (byte order, as queries compare it), by
		// creation or update time, chat rooms and system conversations.
		// None of these columns changes when a message is appended, so
		// conversation head updates stay HOT on PostgreSQL; that is also
		// why last_ts (lm) has no index.
		`CREATE INDEX IF NOT EXISTS conversations_name ON conversations (name{collate_c})`,
		`CREATE INDEX IF NOT EXISTS conversations_created ON conversations (created_at)`,
		`CREATE INDEX IF NOT EXISTS conversations_updated ON conversations (updated_at)`,
		`CREATE INDEX IF NOT EXISTS conversations_transient ON conversations (created_at) WHERE is_transient`,
		`CREATE INDEX IF NOT EXISTS conversations_system ON conversations (created_at) WHERE is_system`,
		// Custom attribute equality and $all, as jsonb containment.
		`{pg}CREATE INDEX IF NOT EXISTS conversations_attrs ON conversations USING GIN ((attrs::jsonb) jsonb_path_ops)`,
	}},
	{4, []string{
		// The importer's checkpoint (see import.go): which conversations
		// of which source are imported completely, with a state string
		// the importer compares to decide whether to look at them again.
		`CREATE TABLE IF NOT EXISTS import_progress (
			source TEXT NOT NULL,
			conv_id TEXT NOT NULL,
			state TEXT NOT NULL,
			updated_at BIGINT NOT NULL,
			PRIMARY KEY (source, conv_id)
		)`,
	}},
}

// SchemaVersion is the schema version this package migrates to: its
// highest step.
func SchemaVersion() int {
	v := 0
	for _, m := range migrations {
		v = max(v, m.version)
	}
	return v
}

func init() {
	// Steps run in version order whatever order they are listed in.
	slices.SortStableFunc(migrations, func(a, b migration) int { return a.version - b.version })
}

// advisoryLockKey serializes migrations across processes on PostgreSQL.
const advisoryLockKey = 0x6c65616e // "lean"

// ddl fills the dialect placeholders of a migration statement. {fillfactor}
// leaves room in PostgreSQL pages of rows updated on every append
// (conversation heads, member cursors) so that updates stay HOT.
//
// {collate_c} gives a text index PostgreSQL's byte order (COLLATE "C"),
// SQLite's default. ddl returns "" for a {pg} statement on SQLite.
func (s *SQL) ddl(stmt string) string {
	pgOnly := strings.HasPrefix(stmt, "{pg}")
	stmt = strings.TrimPrefix(stmt, "{pg}")
	if s.pg {
		return strings.NewReplacer("{serial}", "BIGSERIAL", "{bool}", "BOOLEAN", "{blob}", "BYTEA", "{fillfactor}", " WITH (fillfactor = 70)",
			"{collate_c}", ` COLLATE "C"`).Replace(stmt)
	}
	if pgOnly {
		return ""
	}
	return strings.NewReplacer("{serial}", "INTEGER", "{bool}", "BOOLEAN", "{blob}", "BLOB", "{fillfactor}", "", "{collate_c}", "").Replace(stmt)
}

// migrate brings the schema to the newest version. It is safe to run twice
// and from several processes at once: on PostgreSQL the whole run holds a
// transaction-scoped advisory lock; on SQLite it runs in one BEGIN
// IMMEDIATE transaction, which excludes other writers.
func (s *SQL) migrate(ctx context.Context) error {
	// SQLite answers SQLITE_BUSY at once, without waiting out the busy
	// timeout, where waiting could deadlock: two processes opening a new
	// file together and both switching it to WAL. Such a run is retried.
	for attempt := 1; ; attempt++ {
		err := s.migrateOnce(ctx)
		if err == nil || s.pg || !sqliteBusy(err) || attempt == 50 {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(attempt) * 10 * time.Millisecond):
		}
	}
}

// sqliteBusy reports whether err is SQLite's SQLITE_BUSY (5).
func sqliteBusy(err error) bool {
	var coded interface{ Code() int }
	return errors.As(err, &coded) && coded.Code()&0xff == 5
}

func (s *SQL) migrateOnce(ctx context.Context) error {
	conn, err := s.w.Conn(ctx)
	if err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	defer conn.Close()
	begin := "BEGIN IMMEDIATE"
	if s.pg {
		begin = "BEGIN"
	}
	if _, err := conn.ExecContext(ctx, begin); err != nil {
		return fmt.Errorf("store: migrate: begin: %w", err)
	}
	done := false
	defer func() {
		if !done {
			_, _ = conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		}
	}()
	if s.pg {
		if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_xact_lock(?)", advisoryLockKey); err != nil {
			return fmt.Errorf("store: migrate: lock: %w", err)
		}
	}
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY,
		applied_at BIGINT NOT NULL
	)`); err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	rows, err := conn.QueryContext(ctx, "SELECT version FROM schema_migrations")
	if err != nil {
		return fmt.Errorf("store: migrate: read versions: %w", err)
	}
	applied := map[int]bool{}
	current := 0
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return fmt.Errorf("store: migrate: read versions: %w", err)
		}
		applied[v] = true
		current = max(current, v)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: migrate: read versions: %w", err)
	}
	if current > SchemaVersion() {
		return fmt.Errorf("store: database schema version %d is newer than this package's %d", current, SchemaVersion())
	}
	// Every step not recorded yet runs, in order: a step added below an
	// already applied one (branches merged out of order) is not skipped.
	for _, m := range migrations {
		if applied[m.version] {
			continue
		}
		for _, stmt := range m.stmts {
			stmt = s.ddl(stmt)
			if stmt == "" {
				continue
			}
			if _, err := conn.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("store: migrate to %d: %w", m.version, err)
			}
		}
		if _, err := conn.ExecContext(ctx, "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
			m.version, s.nowMs()); err != nil {
			return fmt.Errorf("store: migrate to %d: %w", m.version, err)
		}
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return fmt.Errorf("store: migrate: commit: %w", err)
	}
	done = true
	return nil
}
