package hub

import (
	"context"
	"encoding/base64"

	"google.golang.org/protobuf/proto"

	realtime "github.com/leanhub/realtime"
	"github.com/leanhub/realtime/internal/wire"
)

// historyMaxLimit caps one history page.
const historyMaxLimit = 1000

// snapshot returns a conversation's snapshot, loading it through its lane
// when the engine does not have it (so concurrent loads of one
// conversation are one store read). It waits; call it off the read loop.
func (e *engine) snapshot(ctx context.Context, id string) (*convEntry, *convSnap, error) {
	if c, s := e.loaded(id); s != nil {
		if s.conv.Temporary && !s.conv.ExpiresAt.IsZero() && e.h.now().After(s.conv.ExpiresAt) {
			return nil, nil, realtime.ErrConvNotFound.WithDetail("conversation %s expired", id)
		}
		return c, s, nil
	}
	type result struct {
		c   *convEntry
		s   *convSnap
		err error
	}
	ch := make(chan result, 1)
	if err := e.do(id, func(c *convEntry, s *convSnap, err error) { ch <- result{c, s, err} }); err != nil {
		return nil, nil, err
	}
	select {
	case r := <-ch:
		if r.err != nil && r.s != nil {
			return nil, nil, realtime.ErrConvNotFound.WithDetail("conversation %s expired", id)
		}
		return r.c, r.s, r.err
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	}
}

// members returns a conversation's member cursors with the moves not yet
// written to the store.
func (h *Hub) members(ctx context.Context, convID string) ([]realtime.Member, error) {
	mark := h.eng.cursors.mark()
	ms, err := h.store.Members(ctx, convID)
	if err != nil {
		return nil, err
	}
	h.eng.cursors.overlayMembers(ms, mark)
	return ms, nil
}

func (h *Hub) cmdLogs(s *session, req *wire.GenericCommand) {
	l := req.GetLogsMessage()
	if l == nil || l.GetCid() == "" {
		s.c.sendError(req, realtime.ErrConvNotFound.WithDetail("missing conversation id"))
		return
	}
	if !h.limits.allow(s.clientID, famQuery, 1) {
		s.c.sendError(req, realtime.ErrRateLimited)
		return
	}
	s.async(func() {
		ctx, cancel := context.WithTimeout(h.ctx, storeTimeout)
		defer cancel()
		logs, err := h.history(ctx, s.clientID, l)
		if err != nil {
			s.c.sendError(req, err)
			return
		}
		s.c.reply(req, &wire.GenericCommand{Cmd: wire.CommandType_logs.Enum(), LogsMessage: &wire.LogsCommand{Logs: logs}})
	})
}

// history answers a logs command for client.
func (h *Hub) history(ctx context.Context, client string, l *wire.LogsCommand) ([]*wire.LogItem, error) {
	_, snap, err := h.eng.snapshot(ctx, l.GetCid())
	if err != nil {
		return nil, err
	}
	conv := snap.conv
	if !conv.Transient && !snap.isMember(client) {
		return nil, realtime.ErrConvLogRejected
	}
	limit := int(l.GetL())
	if limit <= 0 {
		limit = int(l.GetLimit())
	}
	if limit <= 0 {
		limit = 20
	}
	limit = min(limit, historyMaxLimit)
	q := realtime.HistoryQuery{
		ConvID: conv.ID, Direction: realtime.Older,
		Start: l.GetT(), StartInclusive: l.GetTIncluded(), StartMessageID: l.GetMid(),
		End: l.GetTt(), EndInclusive: l.GetTtIncluded(), EndMessageID: l.GetTmid(),
		Limit: limit, Type: int(l.GetLctype()),
	}
	if conv.System {
		q.Viewer = client // messages addressed to other subscribers stay theirs
	}
	if l.GetDirection() == wire.QueryDirection_NEW {
		q.Direction = realtime.Newer
	}
	msgs, err := h.store.History(ctx, q)
	if err != nil {
		return nil, err
	}
	// Receipt times of one's own messages in a 1:1 conversation.
	var other *realtime.Member
	if len(conv.Members) == 2 {
		if members, err := h.members(ctx, conv.ID); err == nil {
			for i := range members {
				if members[i].ClientID != client {
					other = &members[i]
				}
			}
		}
	}
	logs := make([]*wire.LogItem, 0, len(msgs))
	for _, m := range msgs {
		it := &wire.LogItem{From: proto.String(m.From), Timestamp: proto.Int64(m.Timestamp), MsgId: proto.String(m.ID)}
		if m.Binary != nil {
			it.Data = proto.String(base64.StdEncoding.EncodeToString(m.Binary))
			it.Bin = proto.Bool(true)
		} else {
			it.Data = proto.String(m.Data)
		}
		if m.PatchTimestamp > 0 {
			it.PatchTimestamp = proto.Int64(m.PatchTimestamp)
		}
		it.MentionAll = proto.Bool(m.MentionAll)
		if len(m.MentionPids) > 0 {
			it.MentionPids = m.MentionPids
		}
		if other != nil && m.From == client {
			if other.DeliveredAt >= m.Timestamp {
				it.AckAt = proto.Int64(other.DeliveredAt)
			}
			if other.ReadAt >= m.Timestamp {
				it.ReadAt = proto.Int64(other.ReadAt)
			}
		}
		logs = append(logs, it)
	}
	return logs, nil
}
