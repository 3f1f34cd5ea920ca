package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/driver/pgdriver"

	"github.com/leanhub/realtime"
)

// normalizeMembers de-duplicates and sorts ids and checks each one.
func normalizeMembers(ids []string) ([]string, error) {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if !validClientID(id) {
			return nil, realtime.ErrInvalidMessage.WithDetail("invalid client id %q", id)
		}
		out = append(out, id)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// uniqueKey identifies a member set: the SHA-256 of the sorted ids.
func uniqueKey(sorted []string) string {
	h := sha256.New()
	for _, id := range sorted {
		h.Write([]byte(id))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// validAttrs accepts an empty value or a JSON object.
func normalizeAttrs(a json.RawMessage) (string, error) {
	a = bytes.TrimSpace(a)
	if len(a) == 0 || string(a) == "null" {
		return "{}", nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(a, &m); err != nil || m == nil {
		return "", realtime.ErrInvalidCommand.WithDetail("attributes must be a JSON object")
	}
	if !validText(string(a)) {
		return "", realtime.ErrInvalidCommand.WithDetail("attributes must be UTF-8 without NUL")
	}
	return string(a), nil
}

// CreateConversation implements realtime.Store. Transient conversations
// (chat rooms) keep no members: c.Members is ignored for them.
func (s *SQL) CreateConversation(ctx context.Context, c *realtime.Conversation) (*realtime.Conversation, bool, error) {
	if c == nil {
		return nil, false, realtime.ErrInvalidCommand.WithDetail("nil conversation")
	}
	if c.Creator != "" && !validClientID(c.Creator) {
		return nil, false, realtime.ErrInvalidMessage.WithDetail("invalid creator %q", c.Creator)
	}
	if !validText(c.Name) {
		return nil, false, realtime.ErrInvalidCommand.WithDetail("invalid name")
	}
	var members []string
	if !c.Transient {
		var err error
		if members, err = normalizeMembers(c.Members); err != nil {
			return nil, false, err
		}
		if len(members) > s.maxMembers {
			return nil, false, realtime.ErrConvFull.WithDetail("%d members, the limit is %d", len(members), s.maxMembers)
		}
	}
	if c.Temporary && c.ExpiresAt.IsZero() {
		return nil, false, realtime.ErrInvalidCommand.WithDetail("temporary conversation without expiry")
	}
	attrs, err := normalizeAttrs(c.Attrs)
	if err != nil {
		return nil, false, err
	}
	for _, m := range c.Muted {
		if !validClientID(m) {
			return nil, false, realtime.ErrInvalidMessage.WithDetail("invalid client id %q", m)
		}
	}
	muted := "[]"
	if len(c.Muted) > 0 {
		b, _ := json.Marshal(c.Muted)
		muted = string(b)
	}
	now := s.clock()
	nowMs := timeMs(now)
	row := &convRow{
		ID:          newID(now),
		Name:        c.Name,
		Creator:     c.Creator,
		Attrs:       attrs,
		Transient:   c.Transient,
		System:      c.System,
		Unique:      c.Unique,
		Temporary:   c.Temporary,
		Muted:       muted,
		CreatedAt:   nowMs,
		UpdatedAt:   nowMs,
		MemberCount: len(members),
	}
	if c.Temporary {
		row.ExpiresAt = timeMs(c.ExpiresAt)
	}
	if c.Unique && !c.Transient {
		row.UniqueKey = uniqueKey(members)
	}
	created := false
	err = s.writeTx(ctx, func(tx bun.Tx) error {
		res, err := tx.NewInsert().Model(row).On("CONFLICT DO NOTHING").Exec(ctx)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil // the unique key exists: return that conversation
		}
		created = true
		if len(members) == 0 {
			return nil
		}
		rows := make([]memberRow, len(members))
		for i, m := range members {
			rows[i] = memberRow{ConvID: row.ID, ClientID: m, JoinedAt: nowMs}
		}
		_, err = tx.NewInsert().Model(&rows).Exec(ctx)
		return err
	})
	if err != nil {
		return nil, false, fmt.Errorf("store: create conversation: %w", err)
	}
	if created {
		return row.toConv(members), true, nil
	}
	var existing convRow
	if err := s.w.NewRaw("SELECT "+convCols+" FROM conversations c WHERE c.unique_key = ?", row.UniqueKey).
		Scan(ctx, &existing); err != nil {
		return nil, false, fmt.Errorf("store: create conversation: find unique: %w", err)
	}
	convs, err := s.fill(ctx, s.w, []convRow{existing}, false, false)
	if err != nil {
		return nil, false, err
	}
	return convs[0], false, nil
}

// fill turns rows into conversations with members and, if asked, last
// messages.
func (s *SQL) fill(ctx context.Context, db bun.IDB, rows []convRow, withLast, withJoined bool) ([]*realtime.Conversation, error) {
	if len(rows) == 0 {
		return []*realtime.Conversation{}, nil
	}
	ids := make([]string, 0, len(rows))
	var mids []string
	for i := range rows {
		if !rows[i].Transient {
			ids = append(ids, rows[i].ID)
		}
		if withLast && rows[i].LastMID != "" {
			mids = append(mids, rows[i].LastMID)
		}
	}
	members := map[string][]string{}
	joined := map[string]map[string]int64{}
	if len(ids) > 0 {
		var ms []struct {
			ConvID   string `bun:"conv_id"`
			ClientID string `bun:"client_id"`
			JoinedAt int64  `bun:"joined_at"`
		}
		if err := db.NewRaw("SELECT conv_id, client_id, joined_at FROM members WHERE conv_id IN (?) ORDER BY conv_id, client_id",
			bun.In(ids)).Scan(ctx, &ms); err != nil {
			return nil, fmt.Errorf("store: load members: %w", err)
		}
		for _, m := range ms {
			members[m.ConvID] = append(members[m.ConvID], m.ClientID)
			if withJoined {
				if joined[m.ConvID] == nil {
					joined[m.ConvID] = map[string]int64{}
				}
				joined[m.ConvID][m.ClientID] = m.JoinedAt
			}
		}
	}
	last := map[string]*realtime.Message{}
	if len(mids) > 0 {
		msgs, err := s.messagesByID(ctx, db, mids)
		if err != nil {
			return nil, err
		}
		last = msgs
	}
	out := make([]*realtime.Conversation, len(rows))
	for i := range rows {
		out[i] = rows[i].toConv(members[rows[i].ID])
		out[i].JoinedAt = joined[rows[i].ID]
		if withLast {
			out[i].LastMessage = last[rows[i].LastMID]
		}
	}
	return out, nil
}

func (s *SQL) messagesByID(ctx context.Context, db bun.IDB, ids []string) (map[string]*realtime.Message, error) {
	var rows []msgRow
	if err := db.NewRaw("SELECT "+msgCols+" FROM messages m WHERE m.id IN (?)", bun.In(ids)).Scan(ctx, &rows); err != nil {
		return nil, fmt.Errorf("store: load messages: %w", err)
	}
	out := make(map[string]*realtime.Message, len(rows))
	for i := range rows {
		out[rows[i].ID] = rows[i].toMessage()
	}
	return out, nil
}

// loadConv reads one conversation row; ErrConvNotFound when missing,
// malformed or expired.
func (s *SQL) loadConv(ctx context.Context, db bun.IDB, id string, lock bool) (*convRow, error) {
	if !validID(id) {
		return nil, realtime.ErrConvNotFound.WithDetail("malformed conversation id %q", id)
	}
	q := "SELECT " + convCols + " FROM conversations c WHERE c.id = ?"
	if lock {
		q += s.forUpdate()
	}
	var row convRow
	if err := db.NewRaw(q, id).Scan(ctx, &row); err != nil {
		if isNoRows(err) {
			return nil, realtime.ErrConvNotFound.WithDetail("conversation %s", id)
		}
		return nil, fmt.Errorf("store: load conversation: %w", err)
	}
	if row.expired(s.nowMs()) {
		return nil, realtime.ErrConvNotFound.WithDetail("conversation %s expired", id)
	}
	return &row, nil
}

// GetConversation implements realtime.Store; it fills LastMessage.
func (s *SQL) GetConversation(ctx context.Context, id string) (*realtime.Conversation, error) {
	row, err := s.loadConv(ctx, s.r, id, false)
	if err != nil {
		return nil, err
	}
	convs, err := s.fill(ctx, s.r, []convRow{*row}, true, true)
	if err != nil {
		return nil, err
	}
	if err := s.fillModeration(ctx, s.r, convs); err != nil {
		return nil, err
	}
	return convs[0], nil
}

// QueryConversations implements realtime.Store: q.Where, q.Sort and the
// other fields become one SELECT (see conversationsSQL and query.go).
// Invalid filters and unknown sort fields fail with ErrConvQueryFailed.
func (s *SQL) QueryConversations(ctx context.Context, q realtime.ConversationQuery) ([]*realtime.Conversation, error) {
	query, args, empty, err := s.conversationsSQL(q)
	if err != nil {
		return nil, err
	}
	if empty {
		return []*realtime.Conversation{}, nil
	}
	if s.pg {
		// The same implicit transaction as the SELECT: one round trip,
		// and the session's own setting is back afterwards.
		query = fmt.Sprintf("SET LOCAL statement_timeout = %d; ", QueryTimeout.Milliseconds()) + query
	}
	var rows []convRow
	if err := s.r.NewRaw(query, args...).Scan(ctx, &rows); err != nil {
		if isStatementTimeout(err) {
			return nil, realtime.ErrConvQueryFailed.WithDetail("query took longer than %s", QueryTimeout)
		}
		return nil, fmt.Errorf("store: query conversations: %w", err)
	}
	return s.fill(ctx, s.r, rows, q.WithLastMessage, false)
}

// QueryTimeout bounds a conversation query on PostgreSQL (its
// statement_timeout); a query that takes longer fails with
// realtime.ErrConvQueryFailed. On SQLite the caller's context bounds it.
const QueryTimeout = 5 * time.Second

// isStatementTimeout reports a PostgreSQL query canceled by
// statement_timeout.
func isStatementTimeout(err error) bool {
	var pe pgdriver.Error
	return errors.As(err, &pe) && pe.Field('C') == "57014"
}

// UpdateConversation implements realtime.Store.
func (s *SQL) UpdateConversation(ctx context.Context, u realtime.ConversationUpdate) (*realtime.Conversation, error) {
	if u.Name != nil && !validText(*u.Name) {
		return nil, realtime.ErrInvalidCommand.WithDetail("invalid name")
	}
	var patch map[string]json.RawMessage
	if a := bytes.TrimSpace(u.Attrs); len(a) > 0 && string(a) != "null" {
		if err := json.Unmarshal(a, &patch); err != nil || patch == nil || !validText(string(a)) {
			return nil, realtime.ErrInvalidCommand.WithDetail("attributes must be a JSON object")
		}
	}
	var out *realtime.Conversation
	err := s.writeTx(ctx, func(tx bun.Tx) error {
		row, err := s.loadConv(ctx, tx, u.ID, true)
		if err != nil {
			return err
		}
		if u.Name != nil {
			row.Name = *u.Name
		}
		if len(patch) > 0 {
			attrs := map[string]json.RawMessage{}
			if row.Attrs != "" {
				if err := json.Unmarshal([]byte(row.Attrs), &attrs); err != nil || attrs == nil {
					attrs = map[string]json.RawMessage{}
				}
			}
			for k, v := range patch {
				if string(bytes.TrimSpace(v)) == "null" {
					delete(attrs, k)
				} else {
					attrs[k] = v
				}
			}
			b, err := json.Marshal(attrs)
			if err != nil {
				return err
			}
			row.Attrs = string(b)
		}
		if len(u.Mute)+len(u.Unmute) > 0 {
			var muted []string
			if row.Muted != "" {
				_ = json.Unmarshal([]byte(row.Muted), &muted)
			}
			for _, id := range u.Mute {
				if !slices.Contains(muted, id) {
					muted = append(muted, id)
				}
			}
			muted = slices.DeleteFunc(muted, func(id string) bool { return slices.Contains(u.Unmute, id) })
			slices.Sort(muted)
			b, _ := json.Marshal(muted)
			if len(muted) == 0 {
				b = []byte("[]")
			}
			row.Muted = string(b)
		}
		row.UpdatedAt = max(s.nowMs(), row.UpdatedAt)
		if _, err := tx.NewRaw("UPDATE conversations SET name = ?, attrs = ?, muted = ?, updated_at = ? WHERE id = ?",
			row.Name, row.Attrs, row.Muted, row.UpdatedAt, row.ID).Exec(ctx); err != nil {
			return err
		}
		if err := s.convChanged(ctx, tx, row.ID); err != nil {
			return err
		}
		out, err = s.fillOne(ctx, tx, row)
		return err
	})
	if err != nil {
		return nil, wrapInfra("update conversation", err)
	}
	return out, nil
}

// wrapInfra returns *realtime.Error values as they are and wraps others.
func wrapInfra(op string, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := err.(*realtime.Error); ok {
		return err
	}
	if err == ErrClosed {
		return err
	}
	return fmt.Errorf("store: %s: %w", op, err)
}

// AddMembers implements realtime.Store. New members' read and delivered
// cursors start at the newest message. For a transient conversation (chat
// room), which keeps no members, nothing is stored and the normalized ids
// are reported as added.
func (s *SQL) AddMembers(ctx context.Context, convID string, clientIDs []string) (*realtime.Conversation, []string, error) {
	ids, err := normalizeMembers(clientIDs)
	if err != nil {
		return nil, nil, err
	}
	var out *realtime.Conversation
	var added []string
	err = s.writeTx(ctx, func(tx bun.Tx) error {
		row, err := s.loadConv(ctx, tx, convID, true)
		if err != nil {
			return err
		}
		if row.Transient {
			added = ids
			out, err = s.fillOne(ctx, tx, row)
			return err
		}
		var existing []string
		if len(ids) > 0 {
			if err := tx.NewRaw("SELECT client_id FROM members WHERE conv_id = ? AND client_id IN (?)",
				row.ID, bun.In(ids)).Scan(ctx, &existing); err != nil {
				return err
			}
		}
		added = nil
		for _, id := range ids {
			if !slices.Contains(existing, id) {
				added = append(added, id)
			}
		}
		if row.MemberCount+len(added) > s.maxMembers && !row.System { // service conversations: subscribers
			return realtime.ErrConvFull.WithDetail("%d members, the limit is %d", row.MemberCount+len(added), s.maxMembers)
		}
		if len(added) > 0 {
			now := s.nowMs()
			rows := make([]memberRow, len(added))
			for i, id := range added {
				rows[i] = memberRow{ConvID: row.ID, ClientID: id, JoinedAt: now,
					DeliveredTS: row.LastTS, ReadTS: row.LastTS, ReadSeq: row.Seq, ReadMID: row.LastMID, ConvSeq: row.Seq}
			}
			if _, err := tx.NewInsert().Model(&rows).Exec(ctx); err != nil {
				return err
			}
			if err := setMemberCount(ctx, tx, row, len(added), now); err != nil {
				return err
			}
		}
		if err := s.convChanged(ctx, tx, row.ID); err != nil {
			return err
		}
		out, err = s.fillOne(ctx, tx, row)
		return err
	})
	if err != nil {
		return nil, nil, wrapInfra("add members", err)
	}
	return out, added, nil
}

// RemoveMembers implements realtime.Store. For a transient conversation
// nothing is stored and the normalized ids are reported as removed.
func (s *SQL) RemoveMembers(ctx context.Context, convID string, clientIDs []string) (*realtime.Conversation, []string, error) {
	ids, err := normalizeMembers(clientIDs)
	if err != nil {
		return nil, nil, err
	}
	var out *realtime.Conversation
	var removed []string
	err = s.writeTx(ctx, func(tx bun.Tx) error {
		row, err := s.loadConv(ctx, tx, convID, true)
		if err != nil {
			return err
		}
		removed = nil
		if row.Transient {
			removed = ids
		} else if len(ids) > 0 {
			if err := tx.NewRaw("DELETE FROM members WHERE conv_id = ? AND client_id IN (?) RETURNING client_id",
				row.ID, bun.In(ids)).Scan(ctx, &removed); err != nil && !isNoRows(err) {
				return err
			}
			slices.Sort(removed)
			if len(removed) > 0 {
				if err := setMemberCount(ctx, tx, row, -len(removed), s.nowMs()); err != nil {
					return err
				}
			}
		}
		if err := s.convChanged(ctx, tx, row.ID); err != nil {
			return err
		}
		out, err = s.fillOne(ctx, tx, row)
		return err
	})
	if err != nil {
		return nil, nil, wrapInfra("remove members", err)
	}
	return out, removed, nil
}

// setMemberCount records a change of a conversation's member count.
func setMemberCount(ctx context.Context, tx bun.Tx, row *convRow, delta int, now int64) error {
	row.MemberCount += delta
	row.UpdatedAt = max(now, row.UpdatedAt)
	_, err := tx.NewRaw("UPDATE conversations SET member_count = ?, updated_at = ? WHERE id = ?",
		row.MemberCount, row.UpdatedAt, row.ID).Exec(ctx)
	return err
}

// fillOne returns one conversation row as a Conversation with its members.
func (s *SQL) fillOne(ctx context.Context, tx bun.Tx, row *convRow) (*realtime.Conversation, error) {
	convs, err := s.fill(ctx, tx, []convRow{*row}, true, false)
	if err != nil {
		return nil, err
	}
	if err := s.fillModeration(ctx, tx, convs); err != nil {
		return nil, err
	}
	return convs[0], nil
}
