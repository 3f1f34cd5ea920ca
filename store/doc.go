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
// A *SQL is safe for concurrent use. On SQLite the store serializes all its
// write transactions in-process (one writer connection, BEGIN IMMEDIATE)
// and reads through a separate pool in WAL mode; on PostgreSQL other writes
// run concurrently with the appender and lock conversation rows before
// member rows.
//
// Close stops taking appends, lets the writer finish the queued ones, and
// waits for it.
//
// # Appending: group commit
//
// AppendMessages is group-committed: every call is queued to one writer
// goroutine owned by the store, which takes all queued calls (at most
// Options.MaxBatch messages) and, when more than one call was in progress
// as it answered the previous batch, waits up to Options.GroupCommitWindow
// until that many are queued. (Counting the previous batch's callers
// instead lets many senders, each waiting for its answer, settle into two
// alternating half-size batches.) It writes the batch in one transaction
// and answers each caller after the commit, so a returned message is
// durable. Within a conversation, seqs are 1, 2, 3... without gaps and
// timestamps strictly increase (max(now, previous+1)). A retried send with
// the same (From, ClientMsgID) gets the first copy with Duplicate set, also
// when both are in the same batch.
//
// A batch is planned in Go: the writer decides every message's fate
// (unknown or expired conversation, not a member, duplicate) and its id,
// seq and timestamp, then sends four statements: one UPDATE of the
// conversation heads (seq, last_ts, last_mid, mention_all_seq: one row per
// conversation, however many messages it got), one multi-row INSERT of the
// messages, one UPDATE of the senders' read and delivered cursors (one row
// per conversation and sender: its newest message of the batch) and, when
// there are mentions, one UPDATE of the mentioned members. Each takes its
// rows as one derived table: VALUES on SQLite (json_each of one JSON
// argument was slower: every column extraction parses JSON again); on
// PostgreSQL unnest of one array literal per column, because parsing and
// planning VALUES lists of hundreds of items cost PostgreSQL more than
// executing the batch. On
// PostgreSQL the four go as one multi-statement query, one round trip.
// Message ids are increasing within a process (ObjectId layout: seconds,
// per-process random bytes, counter), so inserts land at the right edge of
// the primary-key index instead of on random pages of it.
//
// What a batch must know before writing (the conversation heads, which
// senders are members, earlier copies of retried sends) is read by one
// lookup query (a UNION ALL of primary-key and index probes). The writer
// also keeps what it learned in a cache it alone uses: conversation heads
// as its last batch left them, and (conversation, sender) pairs that are
// members. The first attempt at a batch (writeBatchOptimistic) reads only
// what the cache does not know and does not look up retried sends at all;
// with the cache warm it reads nothing. Its writes check every assumption:
// heads are updated only WHERE seq is still the one the batch started from,
// and the batch fails unless every head and every sender's member row was
// updated (SQLite: rows affected; PostgreSQL: the statement raises an error,
// which rolls back the whole query). A retried send whose first copy is
// stored fails the unique index on (from_id, client_msg_id). A failed first
// attempt writes nothing, forgets its cache entries, and is retried reading
// everything, so the cache can be wrong (another process appended, a member
// was removed, anything) without breaking the contract.
//
// On PostgreSQL the first attempt runs without an explicit transaction:
// the lookup, if any, is an autocommit SELECT, and the writes are one
// multi-statement query, which PostgreSQL runs as one implicit transaction;
// so a batch costs one round trip with the cache warm, two without, where
// BEGIN, three lookups, the writes and COMMIT took six. The writes set
// random_page_cost to 1.1 for their transaction (SET LOCAL): the batch
// probes cached pages by primary key, and with the default cost the
// planner hashed a scan of a few thousand member rows instead (4x slower).
// The retry (writeBatchLocked) runs in a transaction that first locks the
// batch's conversation rows in id order (SELECT ... FOR UPDATE), so it
// cannot conflict; several processes may share one PostgreSQL database.
// Optimistic batches of two processes lock the heads by updating them, in
// practice in the same order; should they deadlock, PostgreSQL aborts one,
// which is retried under locks.
//
// On SQLite the batch is one BEGIN IMMEDIATE transaction of the writer
// connection, and time goes to parsing statements and to the pages the
// commit writes to the WAL. The batch statements take ? placeholders and
// are prepared once per text (the text depends only on the number of rows)
// on the writer connection, after the transaction that first needed them,
// and reused. The WAL is checkpointed every 16384 pages rather than 1000:
// batches rewrite the same conversation, member and index pages, which a
// checkpoint then copies once.
//
// BenchmarkAppend measures 64 concurrent senders across 100 conversations
// against a ceiling: bun multi-row INSERTs of the same rows into the same
// table, 64 rows a transaction, nothing else.
//
// # Conversation queries
//
// QueryConversations translates realtime.Filter and the sort into one
// SELECT per dialect (query.go), with Filter.Match's semantics on both:
// values are always query arguments, custom attribute paths are JSON path
// literals built from checked keys only, and $regex means Go's RE2 on both
// (a registered SQL function on SQLite, a rewrite into an equivalent ARE on
// PostgreSQL; regex.go). Migration 3 adds the indexes the SDK's queries
// need when no member condition narrows them (name, created_at,
// updated_at, chat rooms, system conversations, and on PostgreSQL a GIN
// index on attrs::jsonb for custom attribute equality); TestQueryPlans
// shows the plans. On PostgreSQL each query runs under a statement_timeout
// of QueryTimeout. Regular expressions on SQLite need this package's
// driver registration: a store made with New on another SQLite driver
// cannot run $regex.
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
//   - IncrementBadges gives -1 for a device that is not registered.
//
// The conformance suite all stores pass is package storetest.
package store
