package store

import (
	"context"
	"fmt"

	"github.com/uptrace/bun"

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
// is never above its read cursor). Unread reads the client's memberships
// through the members_client index and joins each conversation by primary
// key and its newest message by primary key: it never scans messages.

// MarkDelivered implements realtime.Store.
func (s *SQL) MarkDelivered(ctx context.Context, convID, clientID string, ts int64) (bool, error) {
	if !validID(convID) || !validClientID(clientID) || ts <= 0 {
		return false, nil
	}
	var lastTS int64
	if err := s.r.NewRaw("SELECT last_ts FROM conversations WHERE id = ?", convID).Scan(ctx, &lastTS); err != nil {
		if isNoRows(err) {
			return false, nil
		}
		return false, fmt.Errorf("store: mark delivered: %w", err)
	}
	ts = min(ts, lastTS)
	var moved bool
	err := s.writeTx(ctx, func(tx bun.Tx) error {
		res, err := tx.NewRaw("UPDATE members SET delivered_ts = ? WHERE conv_id = ? AND client_id = ? AND delivered_ts < ?",
			ts, convID, clientID, ts).Exec(ctx)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		moved = n > 0
		return err
	})
	if err != nil {
		return false, wrapInfra("mark delivered", err)
	}
	return moved, nil
}

// MarkRead implements realtime.Store. The read cursor lands on the newest
// message with a timestamp <= ts (all of them when ts is 0 or beyond the
// newest); msgID is recorded when it names that message, else the found
// message's id is. A non-member or unknown conversation gives (nil, false,
// nil).
func (s *SQL) MarkRead(ctx context.Context, convID, clientID string, ts int64, msgID string) (*realtime.Member, bool, error) {
	if !validID(convID) || !validClientID(clientID) {
		return nil, false, nil
	}
	var member *realtime.Member
	var moved bool
	err := s.writeTx(ctx, func(tx bun.Tx) error {
		var conv struct {
			Seq     int64  `bun:"seq"`
			LastTS  int64  `bun:"last_ts"`
			LastMID string `bun:"last_mid"`
		}
		if err := tx.NewRaw("SELECT seq, last_ts, last_mid FROM conversations WHERE id = ?", convID).Scan(ctx, &conv); err != nil {
			if isNoRows(err) {
				return nil
			}
			return err
		}
		seq, rts, mid := conv.Seq, conv.LastTS, conv.LastMID
		if ts > 0 && ts < conv.LastTS {
			var m struct {
				ID  string `bun:"id"`
				Seq int64  `bun:"seq"`
				TS  int64  `bun:"ts"`
			}
			err := tx.NewRaw("SELECT id, seq, ts FROM messages WHERE conv_id = ? AND ts <= ? ORDER BY ts DESC LIMIT 1",
				convID, ts).Scan(ctx, &m)
			switch {
			case isNoRows(err):
				seq, rts, mid = 0, 0, ""
			case err != nil:
				return err
			default:
				seq, rts, mid = m.Seq, m.TS, m.ID
			}
		}
		if msgID != "" && msgID != mid && validText(msgID) && seq > 0 {
			// Only a message at the cursor's timestamp may be named.
			var n int
			if err := tx.NewRaw("SELECT COUNT(*) FROM messages WHERE id = ? AND conv_id = ? AND ts = ?",
				msgID, convID, rts).Scan(ctx, &n); err != nil {
				return err
			}
			if n > 0 {
				mid = msgID
			}
		}
		res, err := tx.NewRaw(`UPDATE members SET read_seq = ?, read_ts = ?, read_mid = ?,
			delivered_ts = CASE WHEN delivered_ts < ? THEN ? ELSE delivered_ts END
			WHERE conv_id = ? AND client_id = ? AND read_seq < ?`,
			seq, rts, mid, rts, rts, convID, clientID, seq).Exec(ctx)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		moved = n > 0
		var row memberRow
		if err := tx.NewRaw("SELECT conv_id, client_id, joined_at, delivered_ts, read_ts, read_seq, read_mid, mention_seq "+
			"FROM members WHERE conv_id = ? AND client_id = ?", convID, clientID).Scan(ctx, &row); err != nil {
			if isNoRows(err) {
				return nil
			}
			return err
		}
		m := row.toMember()
		member = &m
		return nil
	})
	if err != nil {
		return nil, false, wrapInfra("mark read", err)
	}
	return member, moved, nil
}

// Members implements realtime.Store. Members are sorted by client id; an
// unknown (or malformed) conversation is ErrConvNotFound; a transient one has
// none.
func (s *SQL) Members(ctx context.Context, convID string) ([]realtime.Member, error) {
	if !validID(convID) {
		return nil, realtime.ErrConvNotFound.WithDetail("malformed conversation id %q", convID)
	}
	var rows []memberRow
	if err := s.r.NewRaw("SELECT conv_id, client_id, joined_at, delivered_ts, read_ts, read_seq, read_mid, mention_seq "+
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
	out := make([]realtime.Member, len(rows))
	for i := range rows {
		out[i] = rows[i].toMember()
	}
	return out, nil
}

// Unread implements realtime.Store; see the comment at the top of this
// file. Expired temporary conversations are left out.
func (s *SQL) Unread(ctx context.Context, clientID string, since int64, limit int) ([]realtime.UnreadTuple, error) {
	if !validClientID(clientID) {
		return []realtime.UnreadTuple{}, nil
	}
	q := `SELECT c.seq - mb.read_seq AS unread,
		CASE WHEN mb.mention_seq > mb.read_seq OR c.mention_all_seq > mb.read_seq THEN 1 ELSE 0 END AS mentioned,
		` + msgCols + `
		FROM members mb
		JOIN conversations c ON c.id = mb.conv_id
		JOIN messages m ON m.id = c.last_mid
		WHERE mb.client_id = ? AND c.seq > mb.read_seq AND c.last_ts > ?
		AND NOT (c.is_temporary AND c.expires_at > 0 AND c.expires_at <= ?)
		ORDER BY c.last_ts DESC, c.id`
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
