package hub

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	realtime "github.com/leanhub/realtime"
	"github.com/leanhub/realtime/internal/wire"
)

// cmdConv handles the conv command's ops. Each runs off the read loop.
func (h *Hub) cmdConv(s *session, req *wire.GenericCommand) {
	cm := req.GetConvMessage()
	if cm == nil {
		cm = &wire.ConvCommand{}
	}
	var run func(ctx context.Context) (*wire.GenericCommand, error)
	switch req.GetOp() {
	case wire.OpType_start:
		run = func(ctx context.Context) (*wire.GenericCommand, error) { return h.convStart(ctx, s, cm) }
	case wire.OpType_query:
		run = func(ctx context.Context) (*wire.GenericCommand, error) { return h.convQuery(ctx, s, cm) }
	case wire.OpType_add, wire.OpType_join:
		run = func(ctx context.Context) (*wire.GenericCommand, error) { return h.convMembers(ctx, s, cm, true) }
	case wire.OpType_remove, wire.OpType_leave:
		run = func(ctx context.Context) (*wire.GenericCommand, error) { return h.convMembers(ctx, s, cm, false) }
	case wire.OpType_update:
		run = func(ctx context.Context) (*wire.GenericCommand, error) { return h.convUpdate(ctx, s, cm) }
	case wire.OpType_mute, wire.OpType_unmute:
		mute := req.GetOp() == wire.OpType_mute
		run = func(ctx context.Context) (*wire.GenericCommand, error) { return h.convMute(ctx, s, cm, mute) }
	case wire.OpType_max_read:
		run = func(ctx context.Context) (*wire.GenericCommand, error) { return h.convMaxRead(ctx, s, cm) }
	case wire.OpType_count:
		run = func(ctx context.Context) (*wire.GenericCommand, error) { return h.convCount(ctx, s, cm) }
	case wire.OpType_members:
		run = func(ctx context.Context) (*wire.GenericCommand, error) { return h.convMemberList(ctx, s, cm) }
	case wire.OpType_is_member:
		run = func(ctx context.Context) (*wire.GenericCommand, error) { return h.convIsMember(ctx, s, cm) }
	case wire.OpType_member_info_update:
		run = func(ctx context.Context) (*wire.GenericCommand, error) { return h.convMemberInfoUpdate(ctx, s, cm) }
	case wire.OpType_add_shutup, wire.OpType_remove_shutup:
		on := req.GetOp() == wire.OpType_add_shutup
		run = func(ctx context.Context) (*wire.GenericCommand, error) { return h.convShutup(ctx, s, cm, on) }
	case wire.OpType_query_shutup:
		run = func(ctx context.Context) (*wire.GenericCommand, error) { return h.convQueryShutup(ctx, s, cm) }
	default:
		s.c.sendError(req, realtime.ErrInvalidCommand.WithDetail("unsupported conv op %s", req.GetOp()))
		return
	}
	fam := famConv
	switch req.GetOp() {
	case wire.OpType_query, wire.OpType_max_read, wire.OpType_count, wire.OpType_members, wire.OpType_is_member, wire.OpType_query_shutup:
		fam = famQuery
	}
	if !h.limits.allow(s.clientID, fam, 1) {
		s.c.sendError(req, realtime.ErrRateLimited)
		return
	}
	s.async(func() {
		ctx, cancel := context.WithTimeout(h.ctx, storeTimeout)
		defer cancel()
		res, err := run(ctx)
		if err != nil {
			s.c.sendError(req, err)
			return
		}
		s.c.reply(req, res)
	})
}

// splitAttrs separates the name from custom attributes in a conv start's
// attr JSON.
func splitAttrs(raw string) (name string, attrs json.RawMessage, err error) {
	if strings.TrimSpace(raw) == "" {
		return "", nil, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		return "", nil, realtime.ErrInvalidCommand.WithDetail("attributes must be a JSON object")
	}
	if n, ok := m["name"]; ok {
		_ = json.Unmarshal(n, &name)
		delete(m, "name")
	}
	if len(m) == 0 {
		return name, nil, nil
	}
	b, _ := json.Marshal(m)
	return name, b, nil
}

func (h *Hub) convStart(ctx context.Context, s *session, cm *wire.ConvCommand) (*wire.GenericCommand, error) {
	members := dedupSorted(append(append([]string(nil), cm.GetM()...), s.clientID))
	if len(members) > h.cfg.Limits.MaxMembers {
		return nil, realtime.ErrConvFull.WithDetail("at most %d members", h.cfg.Limits.MaxMembers)
	}
	if err := h.checkConvSignature(s, "", members, "create", cm); err != nil {
		return nil, err
	}
	name, attrs, err := splitAttrs(cm.GetAttr().GetData())
	if err != nil {
		return nil, err
	}
	conv := &realtime.Conversation{
		Name:      name,
		Members:   members,
		Attrs:     attrs,
		Transient: cm.GetTransient(),
		Unique:    cm.GetUnique() && !cm.GetTransient() && !cm.GetTempConv(),
		Temporary: cm.GetTempConv(),
	}
	if conv.Temporary {
		ttl := time.Duration(cm.GetTempConvTTL()) * time.Second
		if ttl <= 0 || ttl > 30*24*time.Hour {
			ttl = 24 * time.Hour
		}
		conv.ExpiresAt = h.now().Add(ttl)
	}
	created, _, err := h.eng.createConversation(ctx, actor{from: s, client: s.clientID}, conv)
	if err != nil {
		return nil, err
	}
	res := &wire.ConvCommand{Cid: proto.String(created.ID), Cdate: proto.String(isoTime(created.CreatedAt))}
	if created.Temporary && !created.ExpiresAt.IsZero() {
		res.TempConvTTL = proto.Int32(int32(created.ExpiresAt.Sub(h.now()) / time.Second))
	}
	return &wire.GenericCommand{Op: wire.OpType_started.Enum(), ConvMessage: res}, nil
}

func (h *Hub) convMembers(ctx context.Context, s *session, cm *wire.ConvCommand, add bool) (*wire.GenericCommand, error) {
	if cm.GetCid() == "" {
		return nil, realtime.ErrConvNotFound.WithDetail("missing conversation id")
	}
	ids := dedupSorted(cm.GetM())
	if len(ids) == 0 {
		ids = []string{s.clientID}
	}
	action := "invite"
	if !add {
		action = "kick"
	}
	// The SDK signs join()/quit() as invite/kick of [self].
	if err := h.checkConvSignature(s, cm.GetCid(), ids, action, cm); err != nil {
		return nil, err
	}
	res, err := h.eng.changeMembers(ctx, actor{from: s, client: s.clientID}, cm.GetCid(), ids, add)
	if err != nil {
		return nil, err
	}
	op := wire.OpType_added
	if !add {
		op = wire.OpType_removed
	}
	allowed := ids
	if len(res.refused) > 0 {
		allowed = nil
		for _, id := range ids {
			refused := false
			for _, f := range res.refused {
				refused = refused || contains(f.ids, id)
			}
			if !refused {
				allowed = append(allowed, id)
			}
		}
	}
	return &wire.GenericCommand{Op: op.Enum(), ConvMessage: &wire.ConvCommand{Cid: proto.String(cm.GetCid()),
		AllowedPids: allowed, FailedPids: failedPids(res.refused)}}, nil
}

func (h *Hub) convUpdate(ctx context.Context, s *session, cm *wire.ConvCommand) (*wire.GenericCommand, error) {
	if cm.GetCid() == "" {
		return nil, realtime.ErrConvNotFound.WithDetail("missing conversation id")
	}
	raw := cm.GetAttr().GetData()
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		return nil, realtime.ErrInvalidCommand.WithDetail("attributes must be a JSON object")
	}
	u := realtime.ConversationUpdate{ID: cm.GetCid()}
	if n, ok := m["name"]; ok {
		var name string
		if json.Unmarshal(n, &name) == nil {
			u.Name = &name
		}
		delete(m, "name")
	}
	// The SDK sends custom attributes as "attr.key" or as top-level keys.
	custom := make(map[string]json.RawMessage, len(m))
	for k, v := range m {
		custom[strings.TrimPrefix(k, "attr.")] = v
	}
	if len(custom) > 0 {
		u.Attrs, _ = json.Marshal(custom)
	}
	updated, err := h.eng.updateConversation(ctx, actor{from: s, client: s.clientID}, u, raw)
	if err != nil {
		return nil, err
	}
	return &wire.GenericCommand{Op: wire.OpType_updated.Enum(), ConvMessage: &wire.ConvCommand{
		Cid: proto.String(updated.ID), Udate: proto.String(isoTime(updated.UpdatedAt))}}, nil
}

// convMute records that the client muted (or unmuted) a conversation:
// muted members get no push for it unless a ReceiversOffline hook forces it.
func (h *Hub) convMute(ctx context.Context, s *session, cm *wire.ConvCommand, mute bool) (*wire.GenericCommand, error) {
	if cm.GetCid() == "" {
		return nil, realtime.ErrConvNotFound.WithDetail("missing conversation id")
	}
	u := realtime.ConversationUpdate{ID: cm.GetCid()}
	if mute {
		u.Mute = []string{s.clientID}
	} else {
		u.Unmute = []string{s.clientID}
	}
	updated, err := h.eng.updateConversation(ctx, actor{from: s, client: s.clientID}, u, "")
	if err != nil {
		return nil, err
	}
	return &wire.GenericCommand{Op: wire.OpType_updated.Enum(), ConvMessage: &wire.ConvCommand{
		Cid: proto.String(updated.ID), Udate: proto.String(isoTime(updated.UpdatedAt))}}, nil
}

// visibleConv returns the conversation of a command if the client may see
// it: a member, or any client for chat rooms and system conversations.
func (h *Hub) visibleConv(ctx context.Context, s *session, cm *wire.ConvCommand) (*convSnap, error) {
	return h.convFor(ctx, s, cm, realtime.ErrConvNotFound, true)
}

// memberConv returns the conversation of a command if the client is a
// member, else notMember.
func (h *Hub) memberConv(ctx context.Context, s *session, cm *wire.ConvCommand, notMember *realtime.Error) (*convSnap, error) {
	return h.convFor(ctx, s, cm, notMember, false)
}

func (h *Hub) convFor(ctx context.Context, s *session, cm *wire.ConvCommand, notMember *realtime.Error, public bool) (*convSnap, error) {
	if cm.GetCid() == "" {
		return nil, realtime.ErrConvNotFound.WithDetail("missing conversation id")
	}
	_, snap, err := h.eng.snapshot(ctx, cm.GetCid())
	if err != nil {
		return nil, err
	}
	if public && (snap.conv.Transient || snap.conv.System) {
		return snap, nil
	}
	if !snap.isMember(s.clientID) {
		return nil, notMember
	}
	return snap, nil
}

func (h *Hub) convMaxRead(ctx context.Context, s *session, cm *wire.ConvCommand) (*wire.GenericCommand, error) {
	snap, err := h.memberConv(ctx, s, cm, realtime.ErrConvMembershipNeeded)
	if err != nil {
		return nil, err
	}
	members, err := h.members(ctx, snap.conv.ID)
	if err != nil {
		return nil, err
	}
	res := &wire.ConvCommand{Cid: proto.String(snap.conv.ID)}
	var maxAck, maxRead int64
	for _, m := range members {
		if m.ClientID == s.clientID {
			continue
		}
		maxAck = max(maxAck, m.DeliveredAt)
		maxRead = max(maxRead, m.ReadAt)
		if cm.GetQueryAllMembers() {
			res.MaxReadTuples = append(res.MaxReadTuples, &wire.MaxReadTuple{Pid: proto.String(m.ClientID),
				MaxAckTimestamp: proto.Int64(m.DeliveredAt), MaxReadTimestamp: proto.Int64(m.ReadAt)})
		}
	}
	if maxAck > 0 {
		res.MaxAckTimestamp = proto.Int64(maxAck)
	}
	if maxRead > 0 {
		res.MaxReadTimestamp = proto.Int64(maxRead)
	}
	return &wire.GenericCommand{Op: wire.OpType_max_read.Enum(), ConvMessage: res}, nil
}

func (h *Hub) convCount(ctx context.Context, s *session, cm *wire.ConvCommand) (*wire.GenericCommand, error) {
	snap, err := h.visibleConv(ctx, s, cm)
	if err != nil {
		return nil, err
	}
	n := len(snap.conv.Members)
	if snap.conv.Transient {
		n = h.rooms.count(snap.conv.ID)
	}
	return &wire.GenericCommand{Op: wire.OpType_result.Enum(), ConvMessage: &wire.ConvCommand{
		Cid: proto.String(snap.conv.ID), Count: proto.Int32(int32(n))}}, nil
}

func (h *Hub) convMemberList(ctx context.Context, s *session, cm *wire.ConvCommand) (*wire.GenericCommand, error) {
	snap, err := h.visibleConv(ctx, s, cm)
	if err != nil {
		return nil, err
	}
	return &wire.GenericCommand{Op: wire.OpType_members.Enum(), ConvMessage: &wire.ConvCommand{
		Cid: proto.String(snap.conv.ID), M: snap.conv.Members}}, nil
}

func (h *Hub) convIsMember(ctx context.Context, s *session, cm *wire.ConvCommand) (*wire.GenericCommand, error) {
	snap, err := h.visibleConv(ctx, s, cm)
	if err != nil {
		return nil, err
	}
	if len(cm.GetM()) > maxQueryIDs {
		return nil, realtime.ErrInvalidCommand.WithDetail("at most %d client ids", maxQueryIDs)
	}
	res := map[string]bool{}
	for _, id := range cm.GetM() {
		res[id] = snap.isMember(id)
	}
	b, _ := json.Marshal(res)
	return &wire.GenericCommand{Op: wire.OpType_is_member.Enum(), ConvMessage: &wire.ConvCommand{
		Cid: proto.String(snap.conv.ID), Results: &wire.JsonObjectMessage{Data: proto.String(string(b))}}}, nil
}
