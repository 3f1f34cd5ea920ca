package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/uptrace/bun"

	"github.com/leanhub/realtime"
)

// GetMessage implements realtime.Store.
func (s *SQL) GetMessage(ctx context.Context, convID, msgID string) (*realtime.Message, error) {
	if !validID(convID) || msgID == "" || !validText(msgID) {
		return nil, realtime.ErrMessageNotFound.WithDetail("message %q", msgID)
	}
	var row msgRow
	if err := s.r.NewRaw("SELECT "+msgCols+" FROM messages m WHERE m.id = ? AND m.conv_id = ?", msgID, convID).
		Scan(ctx, &row); err != nil {
		if isNoRows(err) {
			return nil, realtime.ErrMessageNotFound.WithDetail("message %s", msgID)
		}
		return nil, fmt.Errorf("store: get message: %w", err)
	}
	return row.toMessage(), nil
}

// History implements realtime.Store. A malformed or unknown conversation
// id yields no messages (not an error): membership and existence are the
// caller's checks.
func (s *SQL) History(ctx context.Context, q realtime.HistoryQuery) ([]*realtime.Message, error) {
	if !validID(q.ConvID) {
		return []*realtime.Message{}, nil
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 20
	}
	if limit > 1000 {
		limit = 1000
	}
	where := []string{"m.conv_id = ?"}
	args := []any{q.ConvID}
	bound := func(op string, v int64, inclusive bool) {
		if inclusive {
			op += "="
		}
		where = append(where, "m.ts "+op+" ?")
		args = append(args, v)
	}
	order := "ASC"
	if q.Direction == realtime.Newer {
		if q.Start > 0 {
			bound(">", q.Start, q.StartInclusive)
		}
		if q.End > 0 {
			bound("<", q.End, q.EndInclusive)
		}
	} else {
		order = "DESC"
		if q.Start > 0 {
			bound("<", q.Start, q.StartInclusive)
		}
		if q.End > 0 {
			bound(">", q.End, q.EndInclusive)
		}
	}
	if q.Type != 0 {
		where = append(where, "m.lctype = ?")
		args = append(args, q.Type)
	}
	if q.ReceiptOnly {
		where = append(where, "m.receipt") // the messages_receipt partial index
	}
	if q.From != "" {
		where = append(where, "m.from_id = ?")
		args = append(args, q.From)
	}
	if q.Viewer != "" {
		// Messages addressed to some members: the JSON array holds the
		// viewer's id as a quoted JSON string.
		quoted, _ := json.Marshal(q.Viewer)
		where = append(where, `(m.to_ids = '' OR m.from_id = ? OR m.to_ids LIKE ? ESCAPE '\')`)
		args = append(args, q.Viewer, "%"+likeEscape(string(quoted))+"%")
	}
	args = append(args, limit)
	var rows []msgRow
	if err := s.r.NewRaw("SELECT "+msgCols+" FROM messages m WHERE "+strings.Join(where, " AND ")+
		" ORDER BY m.ts "+order+" LIMIT ?", args...).Scan(ctx, &rows); err != nil {
		return nil, fmt.Errorf("store: history: %w", err)
	}
	out := make([]*realtime.Message, len(rows))
	for i := range rows {
		out[i] = rows[i].toMessage()
	}
	if order == "DESC" {
		slices.Reverse(out)
	}
	return out, nil
}

// PatchMessage implements realtime.Store. The stored PatchTimestamp is
// p.Timestamp (or the clock when zero), raised if needed to stay strictly
// above the message's previous patch time and not below its timestamp.
// The "_lctype" history filter follows the new body (-127 after a recall).
// Unread mention flags already set by the old mentions are left as they
// are.
func (s *SQL) PatchMessage(ctx context.Context, p realtime.Patch) (*realtime.Message, error) {
	if !validID(p.ConvID) || p.MessageID == "" || !validText(p.MessageID) {
		return nil, realtime.ErrMessageNotFound.WithDetail("message %q", p.MessageID)
	}
	if !p.Recall {
		if len(p.Data)+len(p.Binary) > s.maxSize {
			return nil, realtime.ErrMessageTooLarge.WithDetail("%d bytes, the limit is %d", len(p.Data)+len(p.Binary), s.maxSize)
		}
		if !validText(p.Data) {
			return nil, realtime.ErrInvalidMessage.WithDetail("body is not UTF-8 text without NUL")
		}
		for _, id := range p.MentionPids {
			if !validClientID(id) {
				return nil, realtime.ErrInvalidMessage.WithDetail("invalid mentioned client id %q", id)
			}
		}
	}
	if !validText(p.PatchReason) {
		return nil, realtime.ErrInvalidMessage.WithDetail("invalid patch reason")
	}
	var out *realtime.Message
	err := s.writeTx(ctx, func(tx bun.Tx) error {
		var row msgRow
		if err := tx.NewRaw("SELECT "+msgCols+" FROM messages m WHERE m.id = ? AND m.conv_id = ?"+s.forUpdate(),
			p.MessageID, p.ConvID).Scan(ctx, &row); err != nil {
			if isNoRows(err) {
				return realtime.ErrMessageNotFound.WithDetail("message %s", p.MessageID)
			}
			return err
		}
		if !p.System && p.From != row.From {
			return realtime.ErrMessageOwnership.WithDetail("message %s was sent by another client", row.ID)
		}
		ts := p.Timestamp
		if ts == 0 {
			ts = s.nowMs()
		}
		ts = max(ts, row.PatchTS+1, row.TS)
		row.PatchTS = ts
		row.PatchCode = p.PatchCode
		row.PatchReason = p.PatchReason
		if p.Recall {
			row.Data, row.Binary = realtime.RecalledBody, nil
			row.MentionAll, row.MentionPids = false, ""
			row.Recalled = true
			row.LCType = -127
		} else {
			row.Data, row.Binary = p.Data, slices.Clone(p.Binary)
			row.MentionAll, row.MentionPids = p.MentionAll, encodePids(p.MentionPids)
			row.LCType = lcType(p.Data)
		}
		if _, err := tx.NewRaw(`UPDATE messages SET data = ?, bin = ?, lctype = ?, mention_all = ?, mention_pids = ?,
			patch_ts = ?, recalled = ?, patch_code = ?, patch_reason = ? WHERE id = ?`,
			row.Data, nullBytes(row.Binary), row.LCType, row.MentionAll, row.MentionPids,
			row.PatchTS, row.Recalled, row.PatchCode, row.PatchReason, row.ID).Exec(ctx); err != nil {
			return err
		}
		out = row.toMessage()
		return nil
	})
	if err != nil {
		return nil, wrapInfra("patch message", err)
	}
	return out, nil
}

// likeEscape escapes LIKE's wildcards (and the escape character) in s.
func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, "%", `\%`, "_", `\_`).Replace(s)
}

func nullBytes(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

// PatchesSince implements realtime.Store. limit <= 0 means 1000; it is
// capped at 1000 too.
func (s *SQL) PatchesSince(ctx context.Context, clientID string, since int64, limit int) ([]*realtime.Message, error) {
	if !validClientID(clientID) {
		return []*realtime.Message{}, nil
	}
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	var rows []msgRow
	if err := s.r.NewRaw("SELECT "+msgCols+" FROM members mb JOIN messages m ON m.conv_id = mb.conv_id "+
		"WHERE mb.client_id = ? AND m.patch_ts > 0 AND m.patch_ts > ? ORDER BY m.patch_ts, m.id LIMIT ?",
		clientID, since, limit).Scan(ctx, &rows); err != nil {
		return nil, fmt.Errorf("store: patches since: %w", err)
	}
	out := make([]*realtime.Message, len(rows))
	for i := range rows {
		out[i] = rows[i].toMessage()
	}
	return out, nil
}
