package store

import (
	"context"
	"fmt"

	"github.com/leanhub/realtime"
)

// Unread counting.
//
// A conversation row keeps the seq of its newest message (seq) and of the
// newest mention-all message (mention_all_seq); a member row keeps the seq
// of the newest message it read (read_seq) and of the newest message that
// mentioned it by id (mention_seq). Appending moves the sender's read cursor
// to its own message, so a member's unread count is simply
//
//	conversations.seq - members.read_seq
//
// (reading is "up to a message": sending a message marks what came before
// as read, as LeanCloud does), and it was mentioned when mention_seq or
// mention_all_seq is above read_seq (a member's own mention-all message
// is never above its read cursor). Cursors move through UpdateCursors
// (append.go), written by the append writer. Unread reads the client's memberships
// through the members_client index and joins each conversation by primary
// key and its newest message by primary key: it never scans messages.

// Members implements realtime.Store. Members are sorted by client id; an
// unknown (or malformed) conversation is ErrConvNotFound; a transient one has
// none.
func (s *SQL) Members(ctx context.Context, convID string) ([]realtime.Member, error) {
	if !validID(convID) {
		return nil, realtime.ErrConvNotFound.WithDetail("malformed conversation id %q", convID)
	}
	var rows []memberRow
	if err := s.r.NewRaw("SELECT conv_id, client_id, joined_at, delivered_ts, read_ts, read_seq, read_mid, mention_seq, role "+
		"FROM members WHERE conv_id = ? ORDER BY client_id", convID).Scan(ctx, &rows); err != nil {
		return nil, fmt.Errorf("store: members: %w", err)
	}
	if len(rows) == 0 {
		var n int
		if err := s.r.NewRaw("SELECT COUNT(*) FROM conversations WHERE id = ?", convID).Scan(ctx, &n); err != nil {
			return nil, fmt.Errorf("store: members: %w", err)
		}
		if n == 0 {
			return nil, realtime.ErrConvNotFound.WithDetail("conversation %s", convID)
		}
	}
	var creator string
	if err := s.r.NewRaw("SELECT creator FROM conversations WHERE id = ?", convID).Scan(ctx, &creator); err != nil && !isNoRows(err) {
		return nil, fmt.Errorf("store: members: %w", err)
	}
	out := make([]realtime.Member, len(rows))
	for i := range rows {
		out[i] = rows[i].toMember()
		if out[i].ClientID == creator {
			out[i].Role = realtime.RoleOwner
		}
	}
	return out, nil
}

// unreadQuery finds a client's unread conversations (arguments: client,
// since, now). mb.conv_seq > mb.read_seq selects the members_unread partial
// index: only the client's unread memberships are read, then each
// conversation and its newest message by primary key.
const unreadQuery = `SELECT c.seq - mb.read_seq AS unread,
		CASE WHEN mb.mention_seq > mb.read_seq OR c.mention_all_seq > mb.read_seq THEN 1 ELSE 0 END AS mentioned,
		` + msgCols + `
		FROM members mb
		JOIN conversations c ON c.id = mb.conv_id
		JOIN messages m ON m.id = c.last_mid
		WHERE mb.client_id = ? AND mb.conv_seq > mb.read_seq AND c.seq > mb.read_seq AND c.last_ts > ?
		AND NOT (c.is_temporary AND c.expires_at > 0 AND c.expires_at <= ?)
		ORDER BY c.last_ts DESC, c.id`

// Unread implements realtime.Store; see the comment at the top of this
// file. Expired temporary conversations are left out.
func (s *SQL) Unread(ctx context.Context, clientID string, since int64, limit int) ([]realtime.UnreadTuple, error) {
	if !validClientID(clientID) {
		return []realtime.UnreadTuple{}, nil
	}
	q := unreadQuery
	args := []any{clientID, since, s.nowMs()}
	if limit > 0 {
		q += " LIMIT ?"
		args = append(args, limit)
	}
	var rows []struct {
		Unread    int64 `bun:"unread"`
		Mentioned int   `bun:"mentioned"`
		msgRow
	}
	if err := s.r.NewRaw(q, args...).Scan(ctx, &rows); err != nil {
		return nil, fmt.Errorf("store: unread: %w", err)
	}
	out := make([]realtime.UnreadTuple, len(rows))
	for i := range rows {
		out[i] = realtime.UnreadTuple{
			ConvID:    rows[i].msgRow.ConvID,
			Unread:    int(rows[i].Unread),
			Mentioned: rows[i].Mentioned != 0,
			Last:      rows[i].msgRow.toMessage(),
		}
	}
	return out, nil
}
