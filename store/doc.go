// Package store is the SQL realtime.Store and realtime.DeviceStore of the
// project, on SQLite (embedded, pure Go through modernc.org/sqlite) or
// PostgreSQL, through github.com/uptrace/bun.
//
//	s, err := store.Open(ctx, "file:/var/lib/chat/realtime.db", nil)     // SQLite
//	s, err := store.Open(ctx, "postgres://user@host/db?sslmode=disable", nil) // PostgreSQL
//	s, err := store.New(ctx, myBunDB, &store.Options{MaxMembers: 500})
//	defer s.Close()
//
// Open and New migrate the schema (an ordered list of steps recorded in the
// schema_migrations table; safe to run twice, and from several processes at
// once: PostgreSQL runs it under pg_advisory_xact_lock, SQLite in BEGIN
// IMMEDIATE).
//
// # Concurrency
//
// A *SQL is safe for concurrent use. AppendMessages is group-committed: every
// call is queued to one writer goroutine owned by the store, which takes all
// queued calls (at most Options.MaxBatch messages), waits up to
// Options.GroupCommitWindow for more only when the previous batch had several
// callers, writes them in one transaction with multi-row statements, and
// answers each caller after the commit, so a returned message is durable.
// Within a conversation, seqs are 1, 2, 3... without gaps and timestamps
// strictly increase (max(now, previous+1)); the conversation row is read
// under a row lock in the batch transaction (PostgreSQL: SELECT ... FOR
// UPDATE), so several processes may share one PostgreSQL database. A
// retried send with the same (From, ClientMsgID) gets the first copy with
// Duplicate set, also when both are in the same batch; a batch that loses a
// race on the unique index to another process is retried.
//
// On SQLite the store serializes all its write transactions in-process (one
// writer connection, BEGIN IMMEDIATE) and reads through a separate pool in
// WAL mode; on PostgreSQL other writes run concurrently with the appender
// and lock conversation rows before member rows.
//
// Close stops taking appends, lets the writer finish the queued ones, and
// waits for it.
//
// # Readings of the realtime.Store contract
//
//   - Unread counts are the messages after the member's read cursor. Since
//     appending moves the sender's read cursor to its own message (as the
//     contract says), a reply also marks everything before it as read.
//   - Recalling or editing a message does not recompute unread mention
//     flags already raised by it.
//   - Transient conversations (chat rooms) keep no members: AddMembers and
//     RemoveMembers store nothing for them and report the given ids (sorted,
//     de-duplicated) as added or removed; anyone may append to them.
//   - The unique key of a unique conversation is its member set at
//     creation.
//   - Appending to an expired temporary conversation fails with
//     realtime.ErrTempConvExpired; reads treat it as not found.
//   - History of an unknown conversation is empty, not an error. PatchesSince
//     with limit <= 0 returns at most 1000 messages.
//   - Malformed conversation ids are ErrConvNotFound, malformed message ids
//     ErrMessageNotFound, malformed client ids ErrInvalidMessage (client ids
//     are 1..64 bytes of UTF-8 without control characters).
//   - IncrementBadge of an unknown device returns an error wrapping
//     realtime.ErrBadDeviceToken.
//
// The conformance suite all stores pass is package storetest.
package store
