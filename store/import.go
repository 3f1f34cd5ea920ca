package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/uptrace/bun"

	"github.com/leanhub/realtime"
)

// Importing data from elsewhere (package importer, cmd/lcimport).
//
// The import methods write conversations and messages with the ids and
// timestamps they had before (LeanCloud's objectIds, message ids and
// millisecond timestamps, which the SDKs cache), where CreateConversation
// and AppendMessages assign new ones. They are upserts by id: what is
// stored already is left as it is and reported, so a second run changes
// nothing and a cut run can be run again.
//
// They write in transactions of at most importChunk rows, through the
// store's write path: on SQLite under the writer lock (wmu) like every
// other write, on PostgreSQL after locking the conversation rows (in id
// order, as the appender does). So an import may run while the store
// appends, and appends stay correct: the append writer's cache of
// conversation heads is dropped after every committed import (see
// SQL.imports), and a batch that raced an import fails its head check and
// is retried reading everything. A running hub, though, keeps its own
// in-memory view of conversations (members, heads, cursors): import before
// starting the hub, or restart it afterwards, and do not serve the
// imported conversations while importing.

// importChunk is the most rows written by one import transaction.
const importChunk = 500

// ImportConversations stores conversations with the IDs, timestamps,
// members and attributes they have; it is the store side of
// importer.Target. For each conversation it reports whether it was stored
// now (created[i]) or why not (errs[i]): a conversation whose id is stored
// already is left unchanged, with created[i] false and errs[i] nil.
// Members' cursors start at 0 (ImportMessages and UpdateCursors move
// them). A unique conversation gets the unique key of its member set;
// when another conversation holds that key already, it is stored without
// one (creating a unique conversation with those members then returns
// the other) and the store logs it. err is an infrastructure failure;
// conversations of the transactions committed before it stay stored.
func (s *SQL) ImportConversations(ctx context.Context, convs []realtime.Conversation) (created []bool, errs []error, err error) {
	created = make([]bool, len(convs))
	errs = make([]error, len(convs))
	type prepared struct {
		i       int
		row     *convRow
		members []string
	}
	var valid []prepared
	seen := map[string]bool{}
	for i := range convs {
		row, members, err := s.importConvRow(&convs[i])
		if err == nil && seen[row.ID] {
			err = realtime.ErrInvalidCommand.WithDetail("conversation %s given twice", row.ID)
		}
		if err != nil {
			errs[i] = err
			continue
		}
		seen[row.ID] = true
		valid = append(valid, prepared{i, row, members})
	}
	for start := 0; start < len(valid); {
		// A chunk holds at most importChunk conversations and about as
		// many member rows (a large group gets a chunk of its own).
		end, rows := start, 0
		for end < len(valid) && (end == start || (end-start < importChunk && rows+len(valid[end].members) <= 4*importChunk)) {
			rows += len(valid[end].members)
			end++
		}
		chunk := valid[start:end]
		start = end
		ids := make([]string, len(chunk))
		for k, p := range chunk {
			ids[k] = p.row.ID
		}
		var stored []int
		err := s.writeTx(ctx, func(tx bun.Tx) error {
			stored = stored[:0]
			var existing []string
			if err := tx.NewRaw("SELECT id FROM conversations WHERE id IN (?)", bun.In(ids)).Scan(ctx, &existing); err != nil && !isNoRows(err) {
				return err
			}
			var keys []string
			for _, p := range chunk {
				if p.row.UniqueKey != "" {
					keys = append(keys, p.row.UniqueKey)
				}
			}
			takenKeys := map[string]bool{}
			if len(keys) > 0 {
				var taken []string
				if err := tx.NewRaw("SELECT unique_key FROM conversations WHERE unique_key IN (?)", bun.In(keys)).
					Scan(ctx, &taken); err != nil && !isNoRows(err) {
					return err
				}
				for _, k := range taken {
					takenKeys[k] = true
				}
			}
			var rows []convRow
			var members []memberRow
			for k, p := range chunk {
				if slices.Contains(existing, p.row.ID) {
					continue
				}
				row := *p.row
				if row.UniqueKey != "" {
					if takenKeys[row.UniqueKey] {
						s.log.Info("store: import: unique conversation's member set is taken; stored without a unique key",
							"conv", row.ID)
						row.UniqueKey = ""
					} else {
						takenKeys[row.UniqueKey] = true
					}
				}
				rows = append(rows, row)
				for _, m := range p.members {
					members = append(members, memberRow{ConvID: row.ID, ClientID: m, JoinedAt: row.CreatedAt})
				}
				stored = append(stored, k)
			}
			if len(rows) == 0 {
				return nil
			}
			if _, err := tx.NewInsert().Model(&rows).Exec(ctx); err != nil {
				return fmt.Errorf("insert conversations: %w", err)
			}
			for len(members) > 0 {
				n := min(len(members), 4*importChunk)
				part := members[:n]
				if _, err := tx.NewInsert().Model(&part).Exec(ctx); err != nil {
					return fmt.Errorf("insert members: %w", err)
				}
				members = members[n:]
			}
			return nil
		})
		if err != nil {
			return created, errs, wrapInfra("import conversations", err)
		}
		for _, k := range stored {
			created[chunk[k].i] = true
		}
	}
	return created, errs, nil
}

// importConvRow checks c as CreateConversation does (but keeps its id and
// times) and returns its row and sorted members.
func (s *SQL) importConvRow(c *realtime.Conversation) (*convRow, []string, error) {
	if !validID(c.ID) {
		return nil, nil, realtime.ErrInvalidCommand.WithDetail("conversation id %q is not 24 lowercase hex digits", c.ID)
	}
	if c.Creator != "" && !validClientID(c.Creator) {
		return nil, nil, realtime.ErrInvalidMessage.WithDetail("invalid creator %q", c.Creator)
	}
	if !validText(c.Name) {
		return nil, nil, realtime.ErrInvalidCommand.WithDetail("invalid name")
	}
	var members []string
	if !c.Transient {
		var err error
		if members, err = normalizeMembers(c.Members); err != nil {
			return nil, nil, err
		}
		if len(members) > s.maxMembers {
			return nil, nil, realtime.ErrConvFull.WithDetail("%d members, the limit is %d", len(members), s.maxMembers)
		}
	}
	if c.Temporary && c.ExpiresAt.IsZero() {
		return nil, nil, realtime.ErrInvalidCommand.WithDetail("temporary conversation without expiry")
	}
	attrs, err := normalizeAttrs(c.Attrs)
	if err != nil {
		return nil, nil, err
	}
	muted, err := normalizeMembers(c.Muted)
	if err != nil {
		return nil, nil, err
	}
	mutedJSON := "[]"
	if len(muted) > 0 {
		mutedJSON = encodePids(muted)
	}
	createdAt := timeMs(c.CreatedAt)
	if createdAt <= 0 {
		createdAt = s.nowMs()
	}
	row := &convRow{
		ID:          c.ID,
		Name:        c.Name,
		Creator:     c.Creator,
		Attrs:       attrs,
		Transient:   c.Transient,
		System:      c.System,
		Unique:      c.Unique,
		Temporary:   c.Temporary,
		ExpiresAt:   timeMs(c.ExpiresAt),
		Muted:       mutedJSON,
		CreatedAt:   createdAt,
		UpdatedAt:   max(timeMs(c.UpdatedAt), createdAt),
		MemberCount: len(members),
	}
	if c.Unique && !c.Transient {
		row.UniqueKey = uniqueKey(members)
	}
	return row, members, nil
}

// ImportMessages stores messages with the IDs and Timestamps they have;
// it is the store side of importer.Target. Messages must come in
// ascending Timestamp order within each conversation, Timestamps unique
// per conversation. Each message stored gets the next Seq of its
// conversation, whose head (seq, newest timestamp and id, newest
// mention-all) follows it; Data, Binary, mentions, Recalled and
// PatchTimestamp are kept (a recalled message stores RecalledBody and no
// mentions). Mentioned members' mention marks move as on AppendMessages;
// no read or delivered cursor moves (use UpdateCursors).
//
// One result per message, in order: Message is the stored message (its
// Seq filled); Duplicate means a message with that id was stored in that
// conversation before (Message is that copy and nothing was written);
// Err says why the message was skipped: ErrConvNotFound (unknown or
// malformed conversation), ErrInvalidMessage (malformed id, sender, body
// or mentions; the id is used in another conversation; not newer than
// the conversation's newest stored message). ClientMsgID, Receipt,
// Transient and System are ignored: imported messages are history.
//
// Messages are written in transactions of at most importChunk messages;
// when err (an infrastructure failure) is returned, the transactions
// before it are committed and their results filled.
func (s *SQL) ImportMessages(ctx context.Context, msgs []realtime.Message) ([]realtime.AppendResult, error) {
	results := make([]realtime.AppendResult, len(msgs))
	var valid []int
	for i := range msgs {
		if err := checkImportMessage(&msgs[i]); err != nil {
			results[i].Err = err
			continue
		}
		valid = append(valid, i)
	}
	for start := 0; start < len(valid); start += importChunk {
		chunk := valid[start:min(start+importChunk, len(valid))]
		batch := make([]*realtime.Message, len(chunk))
		for k, i := range chunk {
			batch[k] = &msgs[i]
		}
		var res []realtime.AppendResult
		var err error
		for _, checked := range []bool{false, true} {
			err = s.writeTx(ctx, func(tx bun.Tx) error {
				var err error
				res, err = s.importMessagesTx(ctx, tx, batch, checked)
				return err
			})
			if !errors.Is(err, errImportRecheck) {
				break
			}
		}
		if err != nil {
			return results, wrapInfra("import messages", err)
		}
		s.imports.Add(1)
		for k, i := range chunk {
			results[i] = res[k]
		}
	}
	return results, nil
}

// errImportRecheck fails an import transaction that assumed none of its
// messages was stored and found otherwise; it is rerun with checked set.
var errImportRecheck = errors.New("store: import: some messages are stored already")

// MaxImportedMessageSize bounds the body of an imported message (len(Data)
// + len(Binary)). It is well above Options.MaxMessageSize, which applies to
// new messages: history keeps what the old service accepted.
const MaxImportedMessageSize = 1 << 20

func checkImportMessage(m *realtime.Message) error {
	switch {
	case !validID(m.ConvID):
		return realtime.ErrConvNotFound.WithDetail("malformed conversation id %q", m.ConvID)
	case !validImportedMessageID(m.ID):
		return realtime.ErrInvalidMessage.WithDetail("malformed message id %q", m.ID)
	case m.Timestamp <= 0:
		return realtime.ErrInvalidMessage.WithDetail("message %s has no timestamp", m.ID)
	case m.PatchTimestamp < 0:
		return realtime.ErrInvalidMessage.WithDetail("message %s has a negative patch timestamp", m.ID)
	case !validClientID(m.From):
		return realtime.ErrInvalidMessage.WithDetail("invalid sender %q", m.From)
	case len(m.Data)+len(m.Binary) > MaxImportedMessageSize:
		return realtime.ErrMessageTooLarge.WithDetail("%d bytes, the limit is %d", len(m.Data)+len(m.Binary), MaxImportedMessageSize)
	case !validText(m.Data):
		return realtime.ErrInvalidMessage.WithDetail("body is not UTF-8 text without NUL")
	case !validText(m.PatchReason):
		return realtime.ErrInvalidMessage.WithDetail("invalid patch reason")
	}
	for _, p := range m.MentionPids {
		if !validClientID(p) {
			return realtime.ErrInvalidMessage.WithDetail("invalid mentioned client id %q", p)
		}
	}
	return nil
}

// validImportedMessageID: 1..64 bytes (cursors keep at most 64) of
// printable ASCII without spaces. LeanCloud's ids are 22 base64url
// characters; the store's own are 24 hex digits.
func validImportedMessageID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= ' ' || c > '~' {
			return false
		}
	}
	return true
}

// importHead is a conversation head as an import transaction moves it.
type importHead struct {
	id            string
	seq           int64
	lastTS        int64
	lastMID       string
	mentionAllSeq int64
	transient     bool
	changed       bool
}

// importMessagesTx writes one chunk in tx. Unless checked, it assumes no
// message of the chunk is stored (true on a first import, when every
// message is newer than its conversation's head) and fails with
// errImportRecheck when the insert shows otherwise; checked, it looks the
// ids up first.
func (s *SQL) importMessagesTx(ctx context.Context, tx bun.Tx, msgs []*realtime.Message, checked bool) ([]realtime.AppendResult, error) {
	convIDs := make([]string, 0, len(msgs))
	for _, m := range msgs {
		convIDs = append(convIDs, m.ConvID)
	}
	slices.Sort(convIDs)
	convIDs = slices.Compact(convIDs)
	var headRows []struct {
		ID            string `bun:"id"`
		Seq           int64  `bun:"seq"`
		LastTS        int64  `bun:"last_ts"`
		LastMID       string `bun:"last_mid"`
		MentionAllSeq int64  `bun:"mention_all_seq"`
		Transient     bool   `bun:"is_transient"`
	}
	// On PostgreSQL FOR UPDATE locks the heads (in id order) against
	// concurrent appends; SQLite's writes are serialized already.
	if err := tx.NewRaw("SELECT id, seq, last_ts, last_mid, mention_all_seq, is_transient FROM conversations "+
		"WHERE id IN (?) ORDER BY id"+s.forUpdate(), bun.In(convIDs)).Scan(ctx, &headRows); err != nil && !isNoRows(err) {
		return nil, fmt.Errorf("read heads: %w", err)
	}
	heads := make(map[string]*importHead, len(headRows))
	for _, r := range headRows {
		heads[r.ID] = &importHead{id: r.ID, seq: r.Seq, lastTS: r.LastTS, lastMID: r.LastMID,
			mentionAllSeq: r.MentionAllSeq, transient: r.Transient}
	}
	if !checked {
		// Every message newer than its conversation's head, and no id
		// twice: nothing of the chunk can be stored in its conversation.
		last := map[string]int64{}
		ids := make(map[string]bool, len(msgs))
		for _, m := range msgs {
			h := heads[m.ConvID]
			prev, ok := last[m.ConvID]
			if !ok && h != nil {
				prev = h.lastTS
			}
			if h == nil || m.Timestamp <= prev || ids[m.ID] {
				checked = true
				break
			}
			last[m.ConvID], ids[m.ID] = m.Timestamp, true
		}
	}
	stored := map[string]*realtime.Message{}
	if checked {
		ids := make([]string, len(msgs))
		for k, m := range msgs {
			ids[k] = m.ID
		}
		var rows []msgRow
		if err := tx.NewRaw("SELECT "+msgCols+" FROM messages m WHERE m.id IN (?)", bun.In(ids)).Scan(ctx, &rows); err != nil && !isNoRows(err) {
			return nil, fmt.Errorf("look up messages: %w", err)
		}
		for i := range rows {
			stored[rows[i].ID] = rows[i].toMessage()
		}
	}
	results := make([]realtime.AppendResult, len(msgs))
	var inserts []msgRow
	var changed []*importHead
	mentions := map[cursorKey]int64{}
	inBatch := map[string]bool{}
	for k, m := range msgs {
		if old := stored[m.ID]; old != nil {
			if old.ConvID == m.ConvID {
				results[k] = realtime.AppendResult{Message: old, Duplicate: true}
			} else {
				results[k].Err = realtime.ErrInvalidMessage.WithDetail("message id %s is used in conversation %s", m.ID, old.ConvID)
			}
			continue
		}
		if inBatch[m.ID] {
			results[k].Err = realtime.ErrInvalidMessage.WithDetail("message id %s given twice", m.ID)
			continue
		}
		h := heads[m.ConvID]
		if h == nil {
			results[k].Err = realtime.ErrConvNotFound.WithDetail("conversation %s", m.ConvID)
			continue
		}
		if m.Timestamp <= h.lastTS {
			results[k].Err = realtime.ErrInvalidMessage.WithDetail(
				"message %s (timestamp %d) is not newer than the conversation's newest stored message (%d)",
				m.ID, m.Timestamp, h.lastTS)
			continue
		}
		inBatch[m.ID] = true
		out := *m
		out.Seq = h.seq + 1
		out.ClientMsgID, out.Receipt, out.Transient, out.System = "", false, false, false
		out.MentionPids = slices.Clone(m.MentionPids)
		out.Binary = slices.Clone(m.Binary)
		if len(out.Binary) == 0 {
			out.Binary = nil
		}
		lctype := lcType(out.Data)
		if out.Recalled {
			out.Data, out.Binary, out.MentionAll, out.MentionPids = realtime.RecalledBody, nil, false, nil
			lctype = -127
		}
		h.seq, h.lastTS, h.lastMID = out.Seq, out.Timestamp, out.ID
		if out.MentionAll {
			h.mentionAllSeq = out.Seq
		}
		if !h.changed {
			h.changed = true
			changed = append(changed, h)
		}
		if !h.transient {
			for _, p := range out.MentionPids {
				if p != out.From {
					mentions[cursorKey{out.ConvID, p}] = out.Seq
				}
			}
		}
		results[k].Message = &out
		inserts = append(inserts, msgRow{
			ID: out.ID, ConvID: out.ConvID, Seq: out.Seq, TS: out.Timestamp, From: out.From,
			Data: out.Data, Binary: out.Binary, LCType: lctype, MentionAll: out.MentionAll,
			MentionPids: encodePids(out.MentionPids), PatchTS: out.PatchTimestamp, Recalled: out.Recalled,
			PatchCode: out.PatchCode, PatchReason: out.PatchReason,
		})
	}
	if len(inserts) == 0 {
		return results, nil
	}
	q, args := s.importInsertStmt(inserts)
	res, err := s.importExec(ctx, tx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("insert messages: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n != int64(len(inserts)) {
		if !checked {
			return nil, errImportRecheck
		}
		return nil, fmt.Errorf("insert messages: %d of %d rows inserted (%v)", n, len(inserts), err)
	}

	slices.SortFunc(changed, func(a, b *importHead) int { return strings.Compare(a.id, b.id) })
	n := len(changed)
	ids, mids := make([]string, n), make([]string, n)
	seqs, tss, mas := make([]int64, n), make([]int64, n), make([]int64, n)
	for i, h := range changed {
		ids[i], seqs[i], tss[i], mids[i], mas[i] = h.id, h.seq, h.lastTS, h.lastMID, h.mentionAllSeq
	}
	table, targs := s.derivedTable([]string{"id:text", "seq:bigint", "ts:bigint", "mid:text", "mas:bigint"},
		ids, seqs, tss, mids, mas)
	if _, err := s.importExec(ctx, tx, "UPDATE conversations SET seq = v.seq, last_ts = v.ts, last_mid = v.mid, "+
		"mention_all_seq = v.mas FROM "+table+" WHERE conversations.id = v.id", targs...); err != nil {
		return nil, fmt.Errorf("update heads: %w", err)
	}
	// Every member row carries its conversation's head (the unread index).
	if _, err := s.importExec(ctx, tx, "UPDATE members SET conv_seq = v.seq FROM "+table+
		" WHERE members.conv_id = v.id AND members.conv_seq < v.seq", targs...); err != nil {
		return nil, fmt.Errorf("update member heads: %w", err)
	}
	if len(mentions) > 0 {
		keys := sortedKeys(mentions)
		cs, cl, ms := make([]string, len(keys)), make([]string, len(keys)), make([]int64, len(keys))
		for i, k := range keys {
			cs[i], cl[i], ms[i] = k.conv, k.client, mentions[k]
		}
		table, targs := s.derivedTable([]string{"c:text", "s:text", "seq:bigint"}, cs, cl, ms)
		if _, err := s.importExec(ctx, tx, "UPDATE members SET mention_seq = v.seq FROM "+table+
			" WHERE members.conv_id = v.c AND members.client_id = v.s AND members.mention_seq < v.seq", targs...); err != nil {
			return nil, fmt.Errorf("update mentions: %w", err)
		}
	}
	return results, nil
}

// importInsertStmt is the multi-row INSERT of imported messages, ON
// CONFLICT DO NOTHING (the caller compares the rows inserted): VALUES on
// SQLite, a derivedTable on PostgreSQL (see insertStmt).
func (s *SQL) importInsertStmt(rows []msgRow) (string, []any) {
	const cols = "id, conv_id, seq, ts, from_id, data, bin, lctype, mention_all, mention_pids, patch_ts, recalled, patch_code, patch_reason"
	if !s.pg {
		var b strings.Builder
		args := make([]any, 0, 14*len(rows))
		b.WriteString("INSERT INTO messages (" + cols + ") VALUES ")
		for i, r := range rows {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
			args = append(args, r.ID, r.ConvID, r.Seq, r.TS, r.From, r.Data, nullBytes(r.Binary), r.LCType,
				r.MentionAll, r.MentionPids, r.PatchTS, r.Recalled, r.PatchCode, r.PatchReason)
		}
		b.WriteString(" ON CONFLICT DO NOTHING")
		return b.String(), args
	}
	n := len(rows)
	ids, convs, froms, data, pids, reasons := make([]string, n), make([]string, n), make([]string, n),
		make([]string, n), make([]string, n), make([]string, n)
	seqs, tss, lctypes, patchTS, codes := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	bins := make([][]byte, n)
	mentionAll, recalled := make([]bool, n), make([]bool, n)
	for i, r := range rows {
		ids[i], convs[i], seqs[i], tss[i], froms[i], data[i] = r.ID, r.ConvID, r.Seq, r.TS, r.From, r.Data
		bins[i], lctypes[i], mentionAll[i], pids[i] = r.Binary, int64(r.LCType), r.MentionAll, r.MentionPids
		patchTS[i], recalled[i], codes[i], reasons[i] = r.PatchTS, r.Recalled, int64(r.PatchCode), r.PatchReason
	}
	table, args := s.derivedTable([]string{"id:text", "conv_id:text", "seq:bigint", "ts:bigint", "from_id:text",
		"data:text", "bin:bytea", "lctype:integer", "mention_all:boolean", "mention_pids:text", "patch_ts:bigint",
		"recalled:boolean", "patch_code:integer", "patch_reason:text"},
		ids, convs, seqs, tss, froms, data, bins, lctypes, mentionAll, pids, patchTS, recalled, codes, reasons)
	return "INSERT INTO messages (" + cols + ") SELECT v.id, v.conv_id, v.seq, v.ts, v.from_id, v.data, v.bin, " +
		"v.lctype, v.mention_all, v.mention_pids, v.patch_ts, v.recalled, v.patch_code, v.patch_reason FROM " + table +
		" ON CONFLICT DO NOTHING", args
}

// importExec runs a statement of an import transaction: on PostgreSQL
// formatted by bun (derivedTable's array arguments), on SQLite with bound
// arguments, which SQLite parses much faster than the same values inline.
func (s *SQL) importExec(ctx context.Context, tx bun.Tx, q string, args ...any) (sql.Result, error) {
	if s.pg {
		return tx.NewRaw(q, args...).Exec(ctx)
	}
	return tx.Tx.ExecContext(ctx, q, args...)
}

// ImportProgress returns the checkpoint of an import source: conversation
// id -> the state string the importer saved with SaveImportProgress.
func (s *SQL) ImportProgress(ctx context.Context, source string) (map[string]string, error) {
	var rows []struct {
		ConvID string `bun:"conv_id"`
		State  string `bun:"state"`
	}
	if err := s.r.NewRaw("SELECT conv_id, state FROM import_progress WHERE source = ?", source).Scan(ctx, &rows); err != nil && !isNoRows(err) {
		return nil, fmt.Errorf("store: import progress: %w", err)
	}
	out := make(map[string]string, len(rows))
	for _, r := range rows {
		out[r.ConvID] = r.State
	}
	return out, nil
}

// SaveImportProgress records states (conversation id -> state) in the
// checkpoint of an import source, replacing earlier ones.
func (s *SQL) SaveImportProgress(ctx context.Context, source string, states map[string]string) error {
	if len(states) == 0 {
		return nil
	}
	if !validText(source) {
		return realtime.ErrInvalidCommand.WithDetail("invalid import source name")
	}
	convs := make([]string, 0, len(states))
	for id, st := range states {
		if !validText(id) || !validText(st) {
			return realtime.ErrInvalidCommand.WithDetail("invalid import progress entry %q", id)
		}
		convs = append(convs, id)
	}
	slices.Sort(convs)
	now := s.nowMs()
	for len(convs) > 0 {
		part := convs[:min(len(convs), importChunk)]
		convs = convs[len(part):]
		srcs, stss, nows := make([]string, len(part)), make([]string, len(part)), make([]int64, len(part))
		for i, id := range part {
			srcs[i], stss[i], nows[i] = source, states[id], now
		}
		table, args := s.derivedTable([]string{"src:text", "c:text", "st:text", "at:bigint"}, srcs, part, stss, nows)
		// WHERE true: SQLite's upsert after INSERT ... SELECT needs it to
		// parse ON CONFLICT.
		q := "INSERT INTO import_progress (source, conv_id, state, updated_at) SELECT v.src, v.c, v.st, v.at FROM " +
			table + " WHERE true ON CONFLICT (source, conv_id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at"
		if err := s.writeTx(ctx, func(tx bun.Tx) error {
			_, err := s.importExec(ctx, tx, q, args...)
			return err
		}); err != nil {
			return wrapInfra("save import progress", err)
		}
	}
	return nil
}
