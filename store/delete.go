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

// DeleteConversation implements realtime.Store: the conversation row, its
// members (with their cursors), messages, silenced members and blacklist go
// in one transaction, announced to the other nodes like any other change
// of the conversation.
func (s *SQL) DeleteConversation(ctx context.Context, convID string) error {
	err := s.writeTx(ctx, func(tx bun.Tx) error {
		if _, err := s.loadConv(ctx, tx, convID, true); err != nil {
			return err
		}
		for _, table := range []string{"members", "messages", "conv_silenced", "conv_blocked"} {
			if _, err := tx.NewRaw("DELETE FROM "+table+" WHERE conv_id = ?", convID).Exec(ctx); err != nil {
				return err
			}
		}
		if _, err := tx.NewRaw("DELETE FROM conversations WHERE id = ?", convID).Exec(ctx); err != nil {
			return err
		}
		return s.convChanged(ctx, tx, convID)
	})
	return wrapInfra("delete conversation", err)
}

// DeleteMessage implements realtime.Store. The conversation's head (seq,
// newest timestamp) stays where it is, so timestamps and sequence numbers
// keep increasing and cursors stay valid; a deleted newest message is no
// longer the conversation's LastMessage.
func (s *SQL) DeleteMessage(ctx context.Context, convID, msgID string) error {
	if !validID(convID) || msgID == "" || !validText(msgID) {
		return realtime.ErrMessageNotFound.WithDetail("message %q", msgID)
	}
	err := s.writeTx(ctx, func(tx bun.Tx) error {
		var ids []string
		if err := tx.NewRaw("DELETE FROM messages WHERE id = ? AND conv_id = ? RETURNING id", msgID, convID).
			Scan(ctx, &ids); err != nil && !isNoRows(err) {
			return err
		}
		if len(ids) == 0 {
			return realtime.ErrMessageNotFound.WithDetail("message %s", msgID)
		}
		return nil
	})
	return wrapInfra("delete message", err)
}

// AppHistory implements realtime.ReadStore: History over every
// conversation, newest first by (timestamp, id), through the messages_ts
// and messages_from_ts indexes.
func (s *SQL) AppHistory(ctx context.Context, q realtime.HistoryQuery) ([]*realtime.Message, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = 20
	}
	limit = min(limit, 1000)
	var where []string
	var args []any
	if q.From != "" {
		if !validClientID(q.From) {
			return []*realtime.Message{}, nil
		}
		where = append(where, "m.from_id = ?")
		args = append(args, q.From)
	}
	// bound keeps messages on one side of (ts, id): op is "<" or ">".
	bound := func(op string, ts int64, id string, inclusive bool) {
		switch {
		case id != "" && validText(id):
			eq := ""
			if inclusive {
				eq = "="
			}
			where = append(where, "(m.ts "+op+" ? OR (m.ts = ? AND m.id "+op+eq+" ?))")
			args = append(args, ts, ts, id)
		case inclusive:
			where = append(where, "m.ts "+op+"= ?")
			args = append(args, ts)
		default:
			where = append(where, "m.ts "+op+" ?")
			args = append(args, ts)
		}
	}
	order := "DESC"
	if q.Direction == realtime.Newer {
		order = "ASC"
		if q.Start > 0 {
			bound(">", q.Start, q.StartMessageID, q.StartInclusive)
		}
		if q.End > 0 {
			bound("<", q.End, q.EndMessageID, q.EndInclusive)
		}
	} else {
		if q.Start > 0 {
			bound("<", q.Start, q.StartMessageID, q.StartInclusive)
		}
		if q.End > 0 {
			bound(">", q.End, q.EndMessageID, q.EndInclusive)
		}
	}
	if q.Type != 0 {
		where = append(where, "m.lctype = ?")
		args = append(args, q.Type)
	}
	if q.ReceiptOnly {
		where = append(where, "m.receipt")
	}
	if q.Viewer != "" {
		quoted, _ := json.Marshal(q.Viewer)
		where = append(where, `(m.to_ids = '' OR m.from_id = ? OR m.to_ids LIKE ? ESCAPE '\')`)
		args = append(args, q.Viewer, "%"+likeEscape(string(quoted))+"%")
	}
	cond := ""
	if len(where) > 0 {
		cond = " WHERE " + strings.Join(where, " AND ")
	}
	args = append(args, limit)
	var rows []msgRow
	if err := s.r.NewRaw("SELECT "+msgCols+" FROM messages m"+cond+
		" ORDER BY m.ts "+order+", m.id "+order+" LIMIT ?", args...).Scan(ctx, &rows); err != nil {
		return nil, fmt.Errorf("store: app history: %w", err)
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
