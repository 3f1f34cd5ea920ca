package hub

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	realtime "github.com/leanhub/realtime"
	"github.com/leanhub/realtime/internal/wire"
)

// requestTimeout bounds the store work of one client command.
const requestTimeout = 15 * time.Second

func (h *Hub) reqCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(h.ctx, requestTimeout)
}

// newMessageID makes an id for messages that are never stored (transient,
// will): same shape as stored ids.
func newMessageID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// ackError answers a direct command with a coded ack, the way the SDK
// expects send failures.
func ackError(s *session, req *wire.GenericCommand, err error) {
	e := realtime.AsError(err)
	if e == realtime.ErrInternal {
		s.c.h.log.Error("send failed", append(s.logAttrs(), "err", err)...)
	}
	ack := &wire.AckCommand{Code: proto.Int32(int32(e.Code)), Reason: proto.String(e.Reason)}
	if e.AppCode != 0 {
		ack.AppCode = proto.Int32(int32(e.AppCode))
	}
	if e.Detail != "" {
		ack.AppMsg = proto.String(e.Detail)
	}
	s.c.reply(req, &wire.GenericCommand{Cmd: wire.CommandType_ack.Enum(), AckMessage: ack})
}

func (h *Hub) handleDirect(s *session, req *wire.GenericCommand) {
	d := req.GetDirectMessage()
	if d == nil || d.GetCid() == "" {
		ackError(s, req, realtime.ErrInvalidTarget.WithDetail("missing conversation id"))
		return
	}
	if len(d.GetMsg())+len(d.GetBinaryMsg()) > h.cfg.Limits.MaxMessageSize {
		ackError(s, req, realtime.ErrMessageTooLarge.WithDetail("message body over %d bytes", h.cfg.Limits.MaxMessageSize))
		return
	}
	if len(d.GetMentionPids()) > h.cfg.Limits.MaxMentions {
		ackError(s, req, realtime.ErrInvalidMessage.WithDetail("at most %d mentioned clients", h.cfg.Limits.MaxMentions))
		return
	}
	if !s.limiter.allow() {
		ackError(s, req, realtime.ErrRateLimited)
		return
	}
	if err := h.validateBody(d.GetMsg(), d.GetBinaryMsg()); err != nil {
		ackError(s, req, err)
		return
	}
	ctx, cancel := h.reqCtx()
	defer cancel()
	conv, err := h.conversation(ctx, d.GetCid())
	if err != nil {
		if realtime.AsError(err) == realtime.ErrInternal {
			ackError(s, req, err)
		} else {
			ackError(s, req, realtime.ErrInvalidTarget)
		}
		return
	}
	if conv.Temporary && !conv.ExpiresAt.IsZero() && h.now().After(conv.ExpiresAt) {
		ackError(s, req, realtime.ErrTempConvExpired)
		return
	}
	if !h.isMember(conv, s.clientID) {
		ackError(s, req, realtime.ErrInvalidTarget)
		return
	}
	for _, p := range d.GetMentionPids() {
		if !h.isMember(conv, p) {
			ackError(s, req, realtime.ErrInvalidMessage.WithDetail("mentioned client %q is not a member", p))
			return
		}
	}
	msg := &realtime.Message{
		ConvID:      conv.ID,
		From:        s.clientID,
		Data:        d.GetMsg(),
		Binary:      d.GetBinaryMsg(),
		ClientMsgID: d.GetDt(),
		MentionAll:  d.GetMentionAll(),
		MentionPids: d.GetMentionPids(),
		Receipt:     d.GetR(),
		Transient:   d.GetTransient(),
	}
	ev := &realtime.MessageEvent{
		Conversation: conv,
		Message:      msg,
		To:           h.recipients(conv, s.clientID),
		SourceIP:     s.c.remoteIP,
		Will:         d.GetWill(),
	}
	if pd := d.GetPushData(); pd != "" {
		ev.PushData = json.RawMessage(pd)
	}
	if ev.Will && (conv.Transient || msg.Transient) {
		ackError(s, req, realtime.ErrInvalidMessage.WithDetail("will messages are not allowed in transient conversations or as transient messages"))
		return
	}
	// Will messages meet the hooks too (the keyword filter): their body is
	// what gets delivered later.
	rewrite, err := h.messageReceived(ctx, ev)
	if err != nil {
		ackError(s, req, err)
		return
	}
	if ev.Will {
		h.setWill(ctx, s, req, msg)
		return
	}

	if msg.Transient {
		// Never stored, delivered to whoever is online now, still acked.
		msg.ID = newMessageID()
		msg.Timestamp = h.nowMs()
		h.deliver(s, msg, ev.To)
		h.ackSent(s, req, msg)
		return
	}

	results, err := h.store.AppendMessages(ctx, []*realtime.Message{msg})
	if err == nil && len(results) == 1 {
		err = results[0].Err
	}
	if err != nil {
		ackError(s, req, err)
		return
	}
	res := results[0]
	stored := res.Message
	if res.Duplicate {
		h.ackSent(s, req, stored)
		return // a retried send: already delivered the first time
	}
	// Queue the deliveries before the ack: once the sender hears back, a
	// recipient logging in gets the message from the unread sync only,
	// not also as a live push.
	h.deliver(s, stored, ev.To)
	h.ackSent(s, req, stored)
	if rewrite != nil {
		// A hook changed the body: the sender learns it through
		// MESSAGE_UPDATE with the reason, on all its devices.
		patch := patchItem(stored, h.nowMs())
		patch.PatchCode = proto.Int64(int64(rewrite.code))
		patch.PatchReason = proto.String(rewrite.reason)
		cmd := &wire.GenericCommand{Cmd: wire.CommandType_patch.Enum(), Op: wire.OpType_modify.Enum(),
			PatchMessage: &wire.PatchCommand{Patches: []*wire.PatchItem{patch}, LastPatchTime: patch.PatchTimestamp}}
		h.fanout(cmd, h.sessionsOf(s.clientID), nil)
	}
	h.afterStored(ev, stored, ev.To)
}

func (h *Hub) ackSent(s *session, req *wire.GenericCommand, m *realtime.Message) {
	s.c.reply(req, &wire.GenericCommand{Cmd: wire.CommandType_ack.Enum(),
		AckMessage: &wire.AckCommand{Uid: proto.String(m.ID), T: proto.Int64(m.Timestamp)}})
}

// directPush is the push of a message to its recipients.
func directPush(m *realtime.Message, transient bool) *wire.GenericCommand {
	d := &wire.DirectCommand{
		Id:         proto.String(m.ID),
		Cid:        proto.String(m.ConvID),
		FromPeerId: proto.String(m.From),
		Timestamp:  proto.Int64(m.Timestamp),
	}
	if m.Binary != nil {
		d.BinaryMsg = m.Binary
	} else {
		d.Msg = proto.String(m.Data)
	}
	// Always set: the SDK copies it into message.mentionedAll, which must
	// be false, not null, when nobody was mentioned.
	d.MentionAll = proto.Bool(m.MentionAll)
	if len(m.MentionPids) > 0 {
		d.MentionPids = m.MentionPids
	}
	if transient {
		d.Transient = proto.Bool(true)
	}
	if m.PatchTimestamp > 0 {
		d.PatchTimestamp = proto.Int64(m.PatchTimestamp)
	}
	return &wire.GenericCommand{Cmd: wire.CommandType_direct.Enum(), DirectMessage: d}
}

// deliver pushes m to the online sessions of its recipients and to the
// sender's other sessions.
func (h *Hub) deliver(from *session, m *realtime.Message, to []string) {
	targets := h.sessionsOfAll(to)
	if from != nil {
		for _, o := range h.sessionsOf(m.From) {
			if o != from {
				targets = append(targets, o)
			}
		}
	}
	h.fanout(directPush(m, m.Transient), targets, nil)
}

// fanout encodes cmd once and sends it to every session, adding each
// session's peerId to the encoded bytes (protobuf accepts fields in any
// order, so appending field 4 is the same as having set it).
func (h *Hub) fanout(cmd *wire.GenericCommand, targets []*session, except *session) {
	if len(targets) == 0 {
		return
	}
	cmd.Service = proto.Int32(2)
	cmd.ServerTs = proto.Int64(h.nowMs())
	cmd.PeerId = nil
	raw, err := proto.Marshal(cmd)
	if err != nil {
		h.log.Error("encode push", "err", err)
		return
	}
	for _, s := range targets {
		if s == except {
			continue
		}
		frame := make([]byte, 0, len(raw)+len(s.clientID)+2)
		frame = append(frame, raw...)
		frame = protowire.AppendTag(frame, 4, protowire.BytesType)
		frame = protowire.AppendString(frame, s.clientID)
		if s.c.base64 {
			b := make([]byte, base64.StdEncoding.EncodedLen(len(frame)))
			base64.StdEncoding.Encode(b, frame)
			frame = b
		}
		s.c.enqueue(frame)
	}
}

func without(list []string, id string) []string {
	out := make([]string, 0, len(list))
	for _, x := range list {
		if x != id {
			out = append(out, x)
		}
	}
	return out
}

// handleAck records a client's delivery acknowledgement {cid, fromts,
// tots} and sends delivery receipts.
func (h *Hub) handleAck(s *session, req *wire.GenericCommand) {
	a := req.GetAckMessage()
	if a == nil || a.GetCid() == "" {
		return
	}
	ctx, cancel := h.reqCtx()
	defer cancel()
	tots := a.GetTots()
	if tots <= 0 {
		tots = a.GetT()
	}
	if tots <= 0 {
		return
	}
	moved, err := h.store.MarkDelivered(ctx, a.GetCid(), s.clientID, tots)
	if err != nil {
		h.log.Error("mark delivered", append(s.logAttrs(), "err", err)...)
		return
	}
	if !moved {
		return
	}
	conv, err := h.conversation(ctx, a.GetCid())
	if err != nil || conv.Transient {
		return
	}
	from := a.GetFromts()
	if from <= 0 || from > tots {
		from = tots
	}
	msgs, err := h.store.History(ctx, realtime.HistoryQuery{ConvID: conv.ID, Direction: realtime.Newer,
		Start: from, StartInclusive: true, End: tots, EndInclusive: true, Limit: 100})
	if err != nil {
		h.log.Error("receipts history", append(s.logAttrs(), "err", err)...)
		return
	}
	for _, m := range msgs {
		if !m.Receipt || m.From == s.clientID {
			continue
		}
		for _, t := range h.sessionsOf(m.From) {
			if len(conv.Members) > 2 && !t.groupReceipts() {
				continue
			}
			t.push(&wire.GenericCommand{Cmd: wire.CommandType_rcp.Enum(), RcpMessage: &wire.RcpCommand{
				Id: proto.String(m.ID), Cid: proto.String(conv.ID), T: proto.Int64(tots),
				Read: proto.Bool(false), From: proto.String(s.clientID)}})
		}
	}
}

// handleRead moves read cursors, sends read receipts to the other members
// and clears the unread count on the reader's other devices.
func (h *Hub) handleRead(s *session, req *wire.GenericCommand) {
	r := req.GetReadMessage()
	if r == nil {
		return
	}
	// One tuple per conversation (the newest wins), and a bounded number
	// per command: a read costs a store write and receipts to others.
	byConv := map[string]int{}
	var tuples []*wire.ReadTuple
	add := func(t *wire.ReadTuple) {
		if t.GetCid() == "" {
			return
		}
		if i, ok := byConv[t.GetCid()]; ok {
			if old := tuples[i]; t.GetTimestamp() > old.GetTimestamp() || t.GetTimestamp() == 0 {
				tuples[i] = t
			}
			return
		}
		if len(tuples) >= maxReadTuples {
			return
		}
		byConv[t.GetCid()] = len(tuples)
		tuples = append(tuples, t)
	}
	for _, t := range r.GetConvs() {
		add(t)
	}
	for _, cid := range append(r.GetCids(), r.GetCid()) {
		add(&wire.ReadTuple{Cid: proto.String(cid)})
	}
	ctx, cancel := h.reqCtx()
	defer cancel()
	for _, t := range tuples {
		m, moved, err := h.store.MarkRead(ctx, t.GetCid(), s.clientID, t.GetTimestamp(), t.GetMid())
		if err != nil {
			h.log.Error("mark read", append(s.logAttrs(), "err", err)...)
			continue
		}
		if m == nil {
			continue // not a member
		}
		if others := h.sessionsOf(s.clientID); len(others) > 1 {
			// The reader's other devices learn what is left unread (usually
			// nothing: the SDK reads up to the newest message).
			left := h.unreadAfter(ctx, t.GetCid(), s.clientID, m.ReadAt)
			h.fanout(&wire.GenericCommand{Cmd: wire.CommandType_unread.Enum(), UnreadMessage: &wire.UnreadCommand{
				Convs:     []*wire.UnreadTuple{{Cid: proto.String(t.GetCid()), Unread: proto.Int32(int32(left)), Mentioned: proto.Bool(false)}},
				NotifTime: proto.Int64(h.nowMs())}}, others, s)
		}
		// Receipts go out even when the cursor did not move: sending a
		// message moves the sender's own read cursor (one's messages are
		// never unread), so the read() that follows would otherwise never
		// tell the others what was read.
		_ = moved
		conv, err := h.conversation(ctx, t.GetCid())
		if err != nil || conv.Transient {
			continue
		}
		for _, member := range conv.Members {
			if member == s.clientID {
				continue
			}
			for _, o := range h.sessionsOf(member) {
				if len(conv.Members) > 2 && !o.groupReceipts() {
					continue
				}
				o.push(&wire.GenericCommand{Cmd: wire.CommandType_rcp.Enum(), RcpMessage: &wire.RcpCommand{
					Cid: proto.String(conv.ID), T: proto.Int64(m.ReadAt), Read: proto.Bool(true), From: proto.String(s.clientID)}})
			}
		}
	}
}

// maxReadTuples caps the conversations one read command marks.
const maxReadTuples = 200

// historyMaxLimit caps one history page.
const historyMaxLimit = 1000

func (h *Hub) handleLogs(s *session, req *wire.GenericCommand) {
	l := req.GetLogsMessage()
	if l == nil || l.GetCid() == "" {
		s.c.sendError(req, realtime.ErrConvNotFound.WithDetail("missing conversation id"))
		return
	}
	ctx, cancel := h.reqCtx()
	defer cancel()
	conv, err := h.conversation(ctx, l.GetCid())
	if err != nil {
		s.c.sendError(req, err)
		return
	}
	if !conv.Transient && !conv.HasMember(s.clientID) {
		s.c.sendError(req, realtime.ErrConvLogRejected)
		return
	}
	limit := int(l.GetL())
	if limit <= 0 {
		limit = int(l.GetLimit())
	}
	if limit <= 0 {
		limit = 20
	}
	if limit > historyMaxLimit {
		limit = historyMaxLimit
	}
	q := realtime.HistoryQuery{
		ConvID: conv.ID, Direction: realtime.Older,
		Start: l.GetT(), StartInclusive: l.GetTIncluded(), StartMessageID: l.GetMid(),
		End: l.GetTt(), EndInclusive: l.GetTtIncluded(), EndMessageID: l.GetTmid(),
		Limit: limit, Type: int(l.GetLctype()),
	}
	if l.GetDirection() == wire.QueryDirection_NEW {
		q.Direction = realtime.Newer
	}
	msgs, err := h.store.History(ctx, q)
	if err != nil {
		s.c.sendError(req, err)
		return
	}
	// Receipt times of one's own messages in a 1:1 conversation.
	var other *realtime.Member
	if len(conv.Members) == 2 {
		if members, err := h.store.Members(ctx, conv.ID); err == nil {
			for i := range members {
				if members[i].ClientID != s.clientID {
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
		if other != nil && m.From == s.clientID {
			if other.DeliveredAt >= m.Timestamp {
				it.AckAt = proto.Int64(other.DeliveredAt)
			}
			if other.ReadAt >= m.Timestamp {
				it.ReadAt = proto.Int64(other.ReadAt)
			}
		}
		logs = append(logs, it)
	}
	s.c.reply(req, &wire.GenericCommand{Cmd: wire.CommandType_logs.Enum(), LogsMessage: &wire.LogsCommand{Logs: logs}})
}

// patchItem describes a stored message's current state for a patch push.
func patchItem(m *realtime.Message, patchTime int64) *wire.PatchItem {
	p := &wire.PatchItem{
		Cid:            proto.String(m.ConvID),
		Mid:            proto.String(m.ID),
		Timestamp:      proto.Int64(m.Timestamp),
		Recall:         proto.Bool(m.Recalled),
		From:           proto.String(m.From),
		PatchTimestamp: proto.Int64(patchTime),
		MentionAll:     proto.Bool(m.MentionAll),
		MentionPids:    m.MentionPids,
	}
	if m.Binary != nil {
		p.BinaryMsg = m.Binary
	} else {
		p.Data = proto.String(m.Data)
	}
	if m.PatchCode != 0 {
		p.PatchCode = proto.Int64(int64(m.PatchCode))
		p.PatchReason = proto.String(m.PatchReason)
	}
	return p
}

// handlePatch edits or recalls messages (patch/modify).
func (h *Hub) handlePatch(s *session, req *wire.GenericCommand) {
	if req.GetOp() != wire.OpType_modify {
		s.c.sendError(req, realtime.ErrInvalidCommand.WithDetail("unsupported patch op %s", req.GetOp()))
		return
	}
	items := req.GetPatchMessage().GetPatches()
	if len(items) == 0 {
		s.c.sendError(req, realtime.ErrInvalidCommand.WithDetail("no patches"))
		return
	}
	if len(items) > 100 {
		s.c.sendError(req, realtime.ErrInvalidCommand.WithDetail("at most 100 patches per command"))
		return
	}
	ctx, cancel := h.reqCtx()
	defer cancel()
	// Validate every item before applying any, so a bad item changes
	// nothing.
	type planned struct {
		conv  *realtime.Conversation
		patch realtime.Patch
		to    []string
	}
	plan := make([]planned, 0, len(items))
	for _, it := range items {
		if it.GetRecall() && h.cfg.DisableRecall {
			s.c.sendError(req, realtime.ErrMessageRecallOff)
			return
		}
		if !it.GetRecall() && h.cfg.DisableEdit {
			s.c.sendError(req, realtime.ErrMessageEditDisabled)
			return
		}
		if len(it.GetData())+len(it.GetBinaryMsg()) > h.cfg.Limits.MaxMessageSize {
			s.c.sendError(req, realtime.ErrMessageTooLarge.WithDetail("message body over %d bytes", h.cfg.Limits.MaxMessageSize))
			return
		}
		if !it.GetRecall() {
			if err := h.validateBody(it.GetData(), it.GetBinaryMsg()); err != nil {
				s.c.sendError(req, err)
				return
			}
		}
		conv, err := h.conversation(ctx, it.GetCid())
		if err != nil {
			s.c.sendError(req, realtime.ErrMessageNotFound)
			return
		}
		orig, err := h.store.GetMessage(ctx, conv.ID, it.GetMid())
		if err != nil {
			s.c.sendError(req, err)
			return
		}
		if orig.From != s.clientID {
			s.c.sendError(req, realtime.ErrMessageOwnership)
			return
		}
		if orig.Recalled {
			s.c.sendError(req, realtime.ErrMessageNotFound.WithDetail("the message was recalled"))
			return
		}
		if !h.isMember(conv, s.clientID) {
			s.c.sendError(req, realtime.ErrConvMembershipNeeded)
			return
		}
		for _, p := range it.GetMentionPids() {
			if !conv.HasMember(p) {
				s.c.sendError(req, realtime.ErrInvalidMessage.WithDetail("mentioned client %q is not a member", p))
				return
			}
		}
		p := realtime.Patch{
			ConvID: conv.ID, MessageID: orig.ID, From: s.clientID, Recall: it.GetRecall(),
			Data: it.GetData(), Binary: it.GetBinaryMsg(), MentionAll: it.GetMentionAll(), MentionPids: it.GetMentionPids(),
		}
		to := h.recipients(conv, s.clientID)
		if err := h.messageUpdate(ctx, &realtime.MessageUpdateEvent{Conversation: conv, Original: orig, Patch: &p, To: to}, &to); err != nil {
			s.c.sendError(req, err)
			return
		}
		plan = append(plan, planned{conv: conv, patch: p, to: to})
	}
	last := int64(0)
	for _, pl := range plan {
		m, err := h.store.PatchMessage(ctx, pl.patch)
		if err != nil {
			s.c.sendError(req, err)
			return
		}
		if m.PatchTimestamp > last {
			last = m.PatchTimestamp
		}
		targets := h.sessionsOfAll(pl.to)
		if !contains(pl.to, s.clientID) {
			targets = append(targets, h.sessionsOf(s.clientID)...)
		}
		cmd := &wire.GenericCommand{Cmd: wire.CommandType_patch.Enum(), Op: wire.OpType_modify.Enum(),
			PatchMessage: &wire.PatchCommand{Patches: []*wire.PatchItem{patchItem(m, m.PatchTimestamp)}, LastPatchTime: proto.Int64(m.PatchTimestamp)}}
		h.fanout(cmd, targets, s)
	}
	s.c.reply(req, &wire.GenericCommand{Op: wire.OpType_modified.Enum(), PatchMessage: &wire.PatchCommand{LastPatchTime: proto.Int64(last)}})
}

// replayPatches sends a reconnecting client the edits and recalls it missed.
func (h *Hub) replayPatches(ctx context.Context, s *session, since int64) {
	msgs, err := h.store.PatchesSince(ctx, s.clientID, since, patchReplayMaxPatches)
	if err != nil {
		h.log.Error("patches since", append(s.logAttrs(), "err", err)...)
		return
	}
	if len(msgs) == 0 {
		return
	}
	items := make([]*wire.PatchItem, 0, len(msgs))
	last := since
	for _, m := range msgs {
		items = append(items, patchItem(m, m.PatchTimestamp))
		if m.PatchTimestamp > last {
			last = m.PatchTimestamp
		}
	}
	s.push(&wire.GenericCommand{Cmd: wire.CommandType_patch.Enum(), Op: wire.OpType_modify.Enum(),
		PatchMessage: &wire.PatchCommand{Patches: items, LastPatchTime: proto.Int64(last)}})
}

func contains(list []string, id string) bool {
	for _, x := range list {
		if x == id {
			return true
		}
	}
	return false
}

// setWill keeps a will message for the client (one per client).
func (h *Hub) setWill(ctx context.Context, s *session, req *wire.GenericCommand, msg *realtime.Message) {
	msg.ID = newMessageID()
	msg.Timestamp = h.nowMs()
	h.noWill.forget(s.clientID)
	if err := h.store.SetWill(ctx, realtime.Will{ClientID: s.clientID, Message: *msg, SetAt: h.now()}); err != nil {
		ackError(s, req, err)
		return
	}
	// Again after the write: a drop racing with this send may have marked
	// the client will-less in between.
	h.noWill.forget(s.clientID)
	h.ackSent(s, req, msg)
}

// sendWill delivers a client's will message to its conversation's online
// members. Will messages are not stored.
func (h *Hub) sendWill(clientID string) {
	// Not h.ctx: a socket that drops while the hub shuts down still sends
	// its will.
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	if h.noWill.known(clientID) {
		return
	}
	w, err := h.store.TakeWill(ctx, clientID)
	if err != nil {
		h.log.Error("take will", "client", clientID, "err", err)
		return
	}
	h.noWill.remember(clientID)
	if w == nil {
		return
	}
	conv, err := h.conversation(ctx, w.Message.ConvID)
	if err != nil || !conv.HasMember(clientID) {
		return
	}
	m := w.Message
	m.From = clientID
	m.ID = newMessageID()
	m.Timestamp = h.nowMs()
	h.deliver(nil, &m, without(conv.Members, clientID))
}

// validateBody applies Config.MessageTypes to a text body.
func (h *Hub) validateBody(data string, binary []byte) error {
	if h.cfg.MessageTypes == nil || binary != nil {
		return nil
	}
	return h.cfg.MessageTypes.Validate(data)
}

// unreadAfter counts the messages from others after a read cursor (at most
// historyMaxLimit; one indexed range read, usually empty).
func (h *Hub) unreadAfter(ctx context.Context, convID, clientID string, readAt int64) int {
	msgs, err := h.store.History(ctx, realtime.HistoryQuery{ConvID: convID, Direction: realtime.Newer, Start: readAt, Limit: historyMaxLimit})
	if err != nil {
		h.log.Error("unread after read", "conv", convID, "client", clientID, "err", err)
		return 0
	}
	n := 0
	for _, m := range msgs {
		if m.From != clientID {
			n++
		}
	}
	return n
}
