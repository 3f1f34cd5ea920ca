package hub

import (
	"context"

	"google.golang.org/protobuf/proto"

	realtime "github.com/leanhub/realtime"
	"github.com/leanhub/realtime/internal/wire"
)

// Acks and reads: cursor moves that produce receipts.
//
// A client acks messages it received ({cid, fromts, tots}, batched by the
// SDK) and reads conversations (up to a timestamp, usually the newest
// message). Both run on the caller's goroutine when the conversation is in
// the engine (the common case: it just delivered the message), and in the
// conversation's lane otherwise, which loads it first. Neither waits for
// the store: the move goes to the cursor buffer, receipt-wanting messages
// are found among the conversation's recent messages (a store read of the
// messages_receipt index, off the read loop, only for older ones), and the
// unread count left after a read is sequence arithmetic.

// ack records a delivery acknowledgement and sends delivery receipts to the
// senders of receipt-wanting messages in the range.
func (e *engine) ack(client string, convID string, fromts, tots int64) {
	if tots <= 0 || !validConvID(convID) {
		return
	}
	if c, s := e.loaded(convID); s != nil {
		e.ackLoaded(c, s, client, fromts, tots)
		return
	}
	_ = e.do(convID, func(c *convEntry, s *convSnap, err error) {
		if err == nil {
			e.ackLoaded(c, s, client, fromts, tots)
		}
	})
}

func (e *engine) ackLoaded(c *convEntry, s *convSnap, client string, fromts, tots int64) {
	if s.conv.Transient || !s.isMember(client) {
		return // strangers' acks move nothing and tell nobody anything
	}
	c.mu.Lock()
	hd := c.head
	tots = min(tots, hd.ts)
	if fromts <= 0 || fromts > tots {
		fromts = tots
	}
	covered := c.recent.covers(fromts, hd)
	var wanted []recentMsg
	if covered {
		c.recent.between(fromts, tots, func(m recentMsg) {
			if m.receipt && m.from != client {
				wanted = append(wanted, m)
			}
		})
	}
	c.mu.Unlock()
	if tots <= 0 {
		return
	}
	e.cursors.delivered(c.id, client, tots)
	if covered {
		e.deliveredReceipts(s, client, tots, wanted)
		return
	}
	// Older than what the engine remembers: look the messages up off the
	// read loop.
	e.h.tasks.goTask(func() {
		ctx, cancel := context.WithTimeout(e.h.ctx, storeTimeout)
		defer cancel()
		msgs, err := e.h.store.History(ctx, realtime.HistoryQuery{ConvID: c.id, Direction: realtime.Newer,
			Start: fromts, StartInclusive: true, End: tots, EndInclusive: true, ReceiptOnly: true, Limit: historyMaxLimit})
		if err != nil {
			e.h.log.Error("receipt lookup", "conv", c.id, "client", client, "err", err)
			return
		}
		var wanted []recentMsg
		for _, m := range msgs {
			if m.From != client {
				wanted = append(wanted, recentMsg{seq: m.Seq, ts: m.Timestamp, id: m.ID, from: m.From, receipt: true})
			}
		}
		e.deliveredReceipts(s, client, tots, wanted)
	})
}

// deliveredReceipts tells the senders of msgs that client received them.
func (e *engine) deliveredReceipts(s *convSnap, client string, tots int64, msgs []recentMsg) {
	group := len(s.conv.Members) > 2
	for _, m := range msgs {
		e.h.tell(&wire.GenericCommand{Cmd: wire.CommandType_rcp.Enum(), RcpMessage: &wire.RcpCommand{
			Id: proto.String(m.id), Cid: proto.String(s.conv.ID), T: proto.Int64(tots),
			Read: proto.Bool(false), From: proto.String(client)}},
			audience{clients: []string{m.from}, groupOnly: group}, nil)
	}
}

// readRequest is one conversation of a read command.
type readRequest struct {
	convID string
	ts     int64 // read up to this timestamp; 0: everything
	from   *session
	client string
}

// read moves a client's read cursor, tells the reader's other devices
// what is left unread and sends read receipts to the other members.
func (e *engine) read(r readRequest) {
	if !validConvID(r.convID) {
		return
	}
	if c, s := e.loaded(r.convID); s != nil {
		e.readLoaded(c, s, r)
		return
	}
	_ = e.do(r.convID, func(c *convEntry, s *convSnap, err error) {
		if err == nil {
			e.readLoaded(c, s, r)
		}
	})
}

func (e *engine) readLoaded(c *convEntry, s *convSnap, r readRequest) {
	if s.conv.Transient || !s.isMember(r.client) {
		return
	}
	c.mu.Lock()
	hd := c.head
	target := recentMsg{seq: hd.seq, ts: hd.ts, id: hd.mid}
	resolved := true
	if r.ts > 0 && r.ts < hd.ts {
		if c.recent.covers(r.ts, hd) {
			target, resolved = c.recent.atOrBefore(r.ts)
			if !resolved {
				target, resolved = recentMsg{}, true // before the first message
			}
		} else {
			resolved = false
		}
	}
	c.mu.Unlock()
	if resolved {
		e.applyRead(s, r, target, hd)
		return
	}
	// A cursor older than the recent messages: find its message off the
	// read loop.
	e.h.tasks.goTask(func() {
		ctx, cancel := context.WithTimeout(e.h.ctx, storeTimeout)
		defer cancel()
		msgs, err := e.h.store.History(ctx, realtime.HistoryQuery{ConvID: c.id, Direction: realtime.Older,
			Start: r.ts, StartInclusive: true, Limit: 1})
		if err != nil {
			e.h.log.Error("read cursor lookup", "conv", c.id, "client", r.client, "err", err)
			return
		}
		var target recentMsg
		if len(msgs) == 1 {
			m := msgs[0]
			target = recentMsg{seq: m.Seq, ts: m.Timestamp, id: m.ID, from: m.From}
		}
		e.applyRead(s, r, target, hd)
	})
}

func (e *engine) applyRead(s *convSnap, r readRequest, target recentMsg, hd head) {
	h := e.h
	if target.seq > 0 {
		e.cursors.read(s.conv.ID, r.client, target.seq, target.ts, target.id)
	}
	if h.elsewhere(r.client, r.from) {
		// The reader's other devices learn what is left unread (usually
		// nothing: the SDK reads up to the newest message).
		left := max(hd.seq-target.seq, 0)
		h.tell(&wire.GenericCommand{Cmd: wire.CommandType_unread.Enum(), UnreadMessage: &wire.UnreadCommand{
			Convs:     []*wire.UnreadTuple{{Cid: proto.String(s.conv.ID), Unread: proto.Int32(int32(left)), Mentioned: proto.Bool(false)}},
			NotifTime: proto.Int64(h.nowMs())}}, audience{clients: []string{r.client}}, r.from)
	}
	// Receipts go out even when the cursor did not move: sending a
	// message moves the sender's own read cursor (one's messages are never
	// unread), so the read() that follows would otherwise never tell the
	// others what was read.
	rcp := &wire.GenericCommand{Cmd: wire.CommandType_rcp.Enum(), RcpMessage: &wire.RcpCommand{
		Cid: proto.String(s.conv.ID), T: proto.Int64(target.ts), Read: proto.Bool(true), From: proto.String(r.client)}}
	if len(s.conv.Members) <= 2 {
		h.tell(rcp, audience{clients: s.conv.Members, skip: r.client}, nil)
	} else {
		// In groups only sessions that asked for group receipts get
		// them: each node looks at those, not at every member.
		h.tell(rcp, audience{conv: s, skip: r.client, groupOnly: true}, nil)
	}
}
