package hub

import (
	"bytes"
	"context"
	"encoding/json"
	"sort"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	realtime "github.com/leanhub/realtime"
	"github.com/leanhub/realtime/internal/wire"
)

// convCache keeps conversations read from the store; entries are dropped
// when this hub changes them. Member lists are what the send path needs.
//
// Concurrent misses of one id share one store read, so a cold cache under
// load (a thousand first sends) is one query, not a thousand. A read that
// started before a drop is not cached (gen), so a change made while it
// was under way cannot be overwritten by the older state.
type convCache struct {
	mu    sync.RWMutex
	m     map[string]*realtime.Conversation
	loads map[string]*convLoad
	gen   uint64 // bumped by every drop
}

type convLoad struct {
	done chan struct{}
	conv *realtime.Conversation
	err  error
}

const convCacheMax = 100_000

func newConvCache() *convCache {
	return &convCache{m: make(map[string]*realtime.Conversation), loads: make(map[string]*convLoad)}
}

func (c *convCache) drop(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, id)
	delete(c.loads, id)
	c.gen++
}

// conversation returns a conversation, from the cache when possible. The
// result must not be modified.
func (h *Hub) conversation(ctx context.Context, id string) (*realtime.Conversation, error) {
	cc := h.convs
	cc.mu.RLock()
	conv := cc.m[id]
	cc.mu.RUnlock()
	if conv != nil {
		return conv, nil
	}
	cc.mu.Lock()
	if conv := cc.m[id]; conv != nil {
		cc.mu.Unlock()
		return conv, nil
	}
	if l, ok := cc.loads[id]; ok {
		cc.mu.Unlock()
		select {
		case <-l.done:
			return l.conv, l.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	l := &convLoad{done: make(chan struct{})}
	cc.loads[id] = l
	gen := cc.gen
	cc.mu.Unlock()
	defer func() {
		if l.conv == nil && l.err == nil {
			l.err = realtime.ErrInternal // the store panicked; waiters must not see (nil, nil)
		}
		cc.mu.Lock()
		if cc.loads[id] == l {
			delete(cc.loads, id)
		}
		if l.err == nil && l.conv != nil && cc.gen == gen {
			if len(cc.m) >= convCacheMax {
				clear(cc.m) // crude but bounded; the store is the truth
			}
			cc.m[id] = l.conv
		}
		cc.mu.Unlock()
		close(l.done)
	}()
	l.conv, l.err = h.store.GetConversation(ctx, id)
	return l.conv, l.err
}

func (h *Hub) handleConv(s *session, req *wire.GenericCommand) {
	ctx, cancel := h.reqCtx()
	defer cancel()
	var err error
	switch req.GetOp() {
	case wire.OpType_start:
		err = h.convStart(ctx, s, req)
	case wire.OpType_query:
		err = h.convQuery(ctx, s, req)
	case wire.OpType_add, wire.OpType_join:
		err = h.convMembers(ctx, s, req, true)
	case wire.OpType_remove, wire.OpType_leave:
		err = h.convMembers(ctx, s, req, false)
	case wire.OpType_update:
		err = h.convUpdate(ctx, s, req)
	case wire.OpType_max_read:
		err = h.convMaxRead(ctx, s, req)
	case wire.OpType_count:
		err = h.convCount(ctx, s, req)
	case wire.OpType_members:
		err = h.convMemberList(ctx, s, req)
	case wire.OpType_is_member:
		err = h.convIsMember(ctx, s, req)
	case wire.OpType_mute, wire.OpType_unmute:
		err = h.convMute(ctx, s, req, req.GetOp() == wire.OpType_mute)
	default:
		err = realtime.ErrInvalidCommand.WithDetail("unsupported conv op %s", req.GetOp())
	}
	if err != nil {
		s.c.sendError(req, err)
	}
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

func (h *Hub) convStart(ctx context.Context, s *session, req *wire.GenericCommand) error {
	cm := req.GetConvMessage()
	if cm == nil {
		cm = &wire.ConvCommand{}
	}
	members := dedupSorted(append(append([]string(nil), cm.GetM()...), s.clientID))
	for _, m := range members {
		if !validClientID(m) {
			return realtime.ErrInvalidMessage.WithDetail("invalid member id %q", m)
		}
	}
	if len(members) > h.cfg.Limits.MaxMembers {
		return realtime.ErrConvFull.WithDetail("at most %d members", h.cfg.Limits.MaxMembers)
	}
	if err := h.checkConvSignature(s, "", members, "create", cm); err != nil {
		return err
	}
	name, attrs, err := splitAttrs(cm.GetAttr().GetData())
	if err != nil {
		return err
	}
	conv := &realtime.Conversation{
		Name:      name,
		Creator:   s.clientID,
		Members:   members,
		Attrs:     attrs,
		Transient: cm.GetTransient(),
		Unique:    cm.GetUnique() && !cm.GetTransient() && !cm.GetTempConv(),
		Temporary: cm.GetTempConv(),
	}
	if conv.Transient {
		conv.Members = []string{s.clientID}
	}
	if conv.Temporary {
		ttl := time.Duration(cm.GetTempConvTTL()) * time.Second
		if ttl <= 0 || ttl > 30*24*time.Hour {
			ttl = 24 * time.Hour
		}
		conv.ExpiresAt = h.now().Add(ttl)
	}
	ev := &realtime.ConversationEvent{Op: realtime.ConvStart, InitBy: s.clientID, Members: members, Name: name, Attrs: attrs}
	if err := h.convBefore(ctx, ev); err != nil {
		return err
	}
	created, isNew, err := h.store.CreateConversation(ctx, conv)
	if err != nil {
		return err
	}
	h.convs.drop(created.ID)
	if created.Transient {
		h.rooms.join(created.ID, s.clientID)
	}
	res := &wire.ConvCommand{Cid: proto.String(created.ID), Cdate: proto.String(isoTime(created.CreatedAt))}
	if created.Temporary && !created.ExpiresAt.IsZero() {
		res.TempConvTTL = proto.Int32(int32(created.ExpiresAt.Sub(h.now()) / time.Second))
	}
	s.c.reply(req, &wire.GenericCommand{Op: wire.OpType_started.Enum(), ConvMessage: res})
	if isNew && !created.Transient {
		h.notifyMembersJoined(created, s.clientID, created.Members, created.Members)
	}
	ev.Conversation = created
	h.convAfter(ev)
	return nil
}

// notifyMembersJoined tells added members they joined (INVITED) and the
// others who joined (MEMBERS_JOINED).
func (h *Hub) notifyMembersJoined(conv *realtime.Conversation, initBy string, added, all []string) {
	for _, id := range added {
		if id == initBy {
			continue
		}
		for _, t := range h.sessionsOf(id) {
			t.push(&wire.GenericCommand{Cmd: wire.CommandType_conv.Enum(), Op: wire.OpType_joined.Enum(),
				ConvMessage: &wire.ConvCommand{Cid: proto.String(conv.ID), InitBy: proto.String(initBy)}})
		}
	}
	targets := h.sessionsOfAll(all)
	h.fanout(&wire.GenericCommand{Cmd: wire.CommandType_conv.Enum(), Op: wire.OpType_members_joined.Enum(),
		ConvMessage: &wire.ConvCommand{Cid: proto.String(conv.ID), M: added, InitBy: proto.String(initBy)}}, targets, nil)
}

func (h *Hub) convMembers(ctx context.Context, s *session, req *wire.GenericCommand, add bool) error {
	cm := req.GetConvMessage()
	if cm == nil || cm.GetCid() == "" {
		return realtime.ErrConvNotFound.WithDetail("missing conversation id")
	}
	ids := dedupSorted(cm.GetM())
	if len(ids) == 0 {
		ids = []string{s.clientID}
	}
	for _, m := range ids {
		if !validClientID(m) {
			return realtime.ErrInvalidMessage.WithDetail("invalid member id %q", m)
		}
	}
	conv, err := h.store.GetConversation(ctx, cm.GetCid())
	if err != nil {
		return err
	}
	self := len(ids) == 1 && ids[0] == s.clientID
	if conv.Transient {
		// Chat rooms: joining and leaving are presence, kept in memory,
		// and each client does it for itself (no one adds or kicks others,
		// which would also let a client fill the hub's memory with ids).
		if !self {
			return realtime.ErrConvNotAllowed.WithDetail("in a chat room clients join and leave themselves")
		}
		resOp := wire.OpType_added
		if add {
			h.rooms.join(conv.ID, ids...)
		} else {
			resOp = wire.OpType_removed
			h.rooms.leave(conv.ID, ids...)
		}
		s.c.reply(req, &wire.GenericCommand{Op: resOp.Enum(), ConvMessage: &wire.ConvCommand{Cid: proto.String(conv.ID), AllowedPids: ids}})
		return nil
	}
	if !self {
		if !conv.HasMember(s.clientID) {
			return realtime.ErrConvUpdateRejected
		}
		switch h.cfg.MemberChange {
		case CreatorMayChange:
			if conv.Creator != s.clientID {
				return realtime.ErrConvNotAllowed.WithDetail("only the creator may change members")
			}
		case NobodyMayChange:
			return realtime.ErrConvNotAllowed.WithDetail("members cannot be changed by clients")
		}
	} else if add && !conv.Transient && !conv.HasMember(s.clientID) && h.cfg.MemberChange != MembersMayChange {
		return realtime.ErrConvNotAllowed.WithDetail("joining is not allowed")
	}
	action := "invite"
	op := realtime.ConvAdd
	if !add {
		action, op = "kick", realtime.ConvRemove
	}
	// The SDK signs join()/quit() as invite/kick of [self].
	if err := h.checkConvSignature(s, conv.ID, ids, action, cm); err != nil {
		return err
	}
	newMembers := 0
	for _, id := range ids {
		if !conv.HasMember(id) {
			newMembers++
		}
	}
	if add && len(conv.Members)+newMembers > h.cfg.Limits.MaxMembers {
		return realtime.ErrConvFull.WithDetail("at most %d members", h.cfg.Limits.MaxMembers)
	}
	ev := &realtime.ConversationEvent{Op: op, InitBy: s.clientID, Conversation: conv, Members: ids}
	if err := h.convBefore(ctx, ev); err != nil {
		return err
	}
	var updated *realtime.Conversation
	var changed []string
	if add {
		updated, changed, err = h.store.AddMembers(ctx, conv.ID, ids)
	} else {
		updated, changed, err = h.store.RemoveMembers(ctx, conv.ID, ids)
	}
	if err != nil {
		return err
	}
	h.convs.drop(conv.ID)
	resOp := wire.OpType_added
	if !add {
		resOp = wire.OpType_removed
	}
	s.c.reply(req, &wire.GenericCommand{Op: resOp.Enum(), ConvMessage: &wire.ConvCommand{Cid: proto.String(conv.ID), AllowedPids: ids}})
	if len(changed) > 0 && !updated.Transient {
		if add {
			h.notifyMembersJoined(updated, s.clientID, changed, updated.Members)
		} else {
			for _, id := range changed {
				if id == s.clientID {
					continue
				}
				for _, t := range h.sessionsOf(id) {
					t.push(&wire.GenericCommand{Cmd: wire.CommandType_conv.Enum(), Op: wire.OpType_left.Enum(),
						ConvMessage: &wire.ConvCommand{Cid: proto.String(conv.ID), InitBy: proto.String(s.clientID)}})
				}
			}
			targets := h.sessionsOfAll(updated.Members)
			h.fanout(&wire.GenericCommand{Cmd: wire.CommandType_conv.Enum(), Op: wire.OpType_members_left.Enum(),
				ConvMessage: &wire.ConvCommand{Cid: proto.String(conv.ID), M: changed, InitBy: proto.String(s.clientID)}}, targets, nil)
		}
	}
	ev.Conversation = updated
	ev.Members = changed
	h.convAfter(ev)
	return nil
}

func (h *Hub) convUpdate(ctx context.Context, s *session, req *wire.GenericCommand) error {
	cm := req.GetConvMessage()
	conv, err := h.memberConv(ctx, s, cm, realtime.ErrConvUpdateRejected)
	if err != nil {
		return err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(cm.GetAttr().GetData()), &m); err != nil {
		return realtime.ErrInvalidCommand.WithDetail("attributes must be a JSON object")
	}
	u := realtime.ConversationUpdate{ID: conv.ID}
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
	ev := &realtime.ConversationEvent{Op: realtime.ConvUpdate, InitBy: s.clientID, Conversation: conv, Attrs: u.Attrs}
	if u.Name != nil {
		ev.Name = *u.Name
	}
	if err := h.convBefore(ctx, ev); err != nil {
		return err
	}
	updated, err := h.store.UpdateConversation(ctx, u)
	if err != nil {
		return err
	}
	h.convs.drop(conv.ID)
	s.c.reply(req, &wire.GenericCommand{Op: wire.OpType_updated.Enum(), ConvMessage: &wire.ConvCommand{
		Cid: proto.String(conv.ID), Udate: proto.String(isoTime(updated.UpdatedAt))}})
	targets := h.sessionsOfAll(updated.Members)
	h.fanout(&wire.GenericCommand{Cmd: wire.CommandType_conv.Enum(), Op: wire.OpType_updated.Enum(), ConvMessage: &wire.ConvCommand{
		Cid: proto.String(conv.ID), InitBy: proto.String(s.clientID), Udate: proto.String(isoTime(updated.UpdatedAt)),
		Attr: &wire.JsonObjectMessage{Data: proto.String(cm.GetAttr().GetData())}, AttrModified: &wire.JsonObjectMessage{Data: proto.String(cm.GetAttr().GetData())},
	}}, targets, s)
	return nil
}

func (h *Hub) convMaxRead(ctx context.Context, s *session, req *wire.GenericCommand) error {
	cm := req.GetConvMessage()
	conv, err := h.memberConv(ctx, s, cm, realtime.ErrConvMembershipNeeded)
	if err != nil {
		return err
	}
	members, err := h.store.Members(ctx, conv.ID)
	if err != nil {
		return err
	}
	res := &wire.ConvCommand{Cid: proto.String(conv.ID)}
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
	s.c.reply(req, &wire.GenericCommand{Op: wire.OpType_max_read.Enum(), ConvMessage: res})
	return nil
}

func (h *Hub) convCount(ctx context.Context, s *session, req *wire.GenericCommand) error {
	conv, err := h.visibleConv(ctx, s, req)
	if err != nil {
		return err
	}
	n := len(conv.Members)
	if conv.Transient {
		n = len(h.rooms.list(conv.ID))
	}
	s.c.reply(req, &wire.GenericCommand{Op: wire.OpType_result.Enum(), ConvMessage: &wire.ConvCommand{
		Cid: proto.String(conv.ID), Count: proto.Int32(int32(n))}})
	return nil
}

func (h *Hub) convMemberList(ctx context.Context, s *session, req *wire.GenericCommand) error {
	conv, err := h.visibleConv(ctx, s, req)
	if err != nil {
		return err
	}
	s.c.reply(req, &wire.GenericCommand{Op: wire.OpType_members.Enum(), ConvMessage: &wire.ConvCommand{
		Cid: proto.String(conv.ID), M: conv.Members}})
	return nil
}

func (h *Hub) convIsMember(ctx context.Context, s *session, req *wire.GenericCommand) error {
	cm := req.GetConvMessage()
	conv, err := h.visibleConv(ctx, s, req)
	if err != nil {
		return err
	}
	res := map[string]bool{}
	for _, id := range cm.GetM() {
		res[id] = conv.HasMember(id)
	}
	b, _ := json.Marshal(res)
	s.c.reply(req, &wire.GenericCommand{Op: wire.OpType_is_member.Enum(), ConvMessage: &wire.ConvCommand{
		Cid: proto.String(conv.ID), Results: &wire.JsonObjectMessage{Data: proto.String(string(b))}}})
	return nil
}

// convMute records that the client muted (or unmuted) a conversation:
// muted members get no push for it unless a ReceiversOffline hook forces it.
func (h *Hub) convMute(ctx context.Context, s *session, req *wire.GenericCommand, mute bool) error {
	conv, err := h.memberConv(ctx, s, req.GetConvMessage(), realtime.ErrConvUpdateRejected)
	if err != nil {
		return err
	}
	u := realtime.ConversationUpdate{ID: conv.ID}
	if mute {
		u.Mute = []string{s.clientID}
	} else {
		u.Unmute = []string{s.clientID}
	}
	updated, err := h.store.UpdateConversation(ctx, u)
	if err != nil {
		return err
	}
	h.convs.drop(conv.ID)
	s.c.reply(req, &wire.GenericCommand{Op: wire.OpType_updated.Enum(), ConvMessage: &wire.ConvCommand{
		Cid: proto.String(conv.ID), Udate: proto.String(isoTime(updated.UpdatedAt))}})
	return nil
}

// visibleConv returns the conversation of a command if the client may see
// it: a member, or any client for chat rooms and system conversations.
func (h *Hub) visibleConv(ctx context.Context, s *session, req *wire.GenericCommand) (*realtime.Conversation, error) {
	return h.convFor(ctx, s, req.GetConvMessage(), realtime.ErrConvNotFound, true)
}

// memberConv returns the conversation of a command if the client is a
// member, else notMember.
func (h *Hub) memberConv(ctx context.Context, s *session, cm *wire.ConvCommand, notMember *realtime.Error) (*realtime.Conversation, error) {
	return h.convFor(ctx, s, cm, notMember, false)
}

func (h *Hub) convFor(ctx context.Context, s *session, cm *wire.ConvCommand, notMember *realtime.Error, public bool) (*realtime.Conversation, error) {
	if cm.GetCid() == "" {
		return nil, realtime.ErrConvNotFound.WithDetail("missing conversation id")
	}
	conv, err := h.conversation(ctx, cm.GetCid())
	if err != nil {
		return nil, err
	}
	if public && (conv.Transient || conv.System) {
		return conv, nil
	}
	if !conv.HasMember(s.clientID) {
		return nil, notMember
	}
	return conv, nil
}

func dedupSorted(ids []string) []string {
	out := make([]string, 0, len(ids))
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		id = strings.TrimSpace(id)
		if id == "" || seen[id] {
			continue
		}
		seen[id] = true
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

func isoTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

// convQuery answers conversation queries. The where forms the SDKs send are
// supported: objectId (equal or $in), m (equal, $all, $in, $size), tr, sys,
// and $and of those. Clients only see conversations they are members of,
// plus transient and system conversations.
func (h *Hub) convQuery(ctx context.Context, s *session, req *wire.GenericCommand) error {
	cm := req.GetConvMessage()
	if cm == nil {
		cm = &wire.ConvCommand{}
	}
	q := realtime.ConversationQuery{Sort: cm.GetSort(), Skip: int(cm.GetSkip()), Limit: int(cm.GetLimit()), WithLastMessage: true}
	if q.Limit <= 0 {
		q.Limit = 10
	}
	if q.Limit > h.cfg.Limits.MaxQueryLimit {
		q.Limit = h.cfg.Limits.MaxQueryLimit
	}
	if q.Skip < 0 {
		q.Skip = 0
	}
	if ids := cm.GetTempConvIds(); len(ids) > 0 {
		q.IDs = ids
	}
	if w := cm.GetWhere().GetData(); strings.TrimSpace(w) != "" {
		var where map[string]json.RawMessage
		if err := json.Unmarshal([]byte(w), &where); err != nil {
			return realtime.ErrConvQueryFailed.WithDetail("where must be a JSON object")
		}
		if err := applyWhere(&q, where); err != nil {
			return err
		}
	}
	if len(q.IDs) > 0 {
		// Lookups by id (the SDK's getConversations asks limit 999, temporary
		// conversations ask none) return every id asked for, up to 1000.
		q.Limit = min(max(int(cm.GetLimit()), len(q.IDs)), 1000)
	}
	public := q.Transient != nil && *q.Transient || q.System != nil && *q.System
	if len(q.IDs) == 0 && !public && q.Member == "" && len(q.AllMembers) == 0 {
		q.Member = s.clientID
	}
	convs, err := h.store.QueryConversations(ctx, q)
	if err != nil {
		return err
	}
	compact := cm.GetFlag()&1 != 0
	out := make([]map[string]any, 0, len(convs))
	for _, c := range convs {
		if !c.Transient && !c.System && !c.HasMember(s.clientID) {
			continue
		}
		out = append(out, convJSON(c, compact, h.now()))
	}
	b, err := json.Marshal(out)
	if err != nil {
		return err
	}
	s.c.reply(req, &wire.GenericCommand{Op: wire.OpType_query_result.Enum(), ConvMessage: &wire.ConvCommand{
		Results: &wire.JsonObjectMessage{Data: proto.String(string(b))}}})
	return nil
}

func applyWhere(q *realtime.ConversationQuery, where map[string]json.RawMessage) error {
	for k, v := range where {
		switch k {
		case "$and":
			var parts []map[string]json.RawMessage
			if err := json.Unmarshal(v, &parts); err != nil {
				return realtime.ErrConvQueryFailed.WithDetail("bad $and")
			}
			for _, p := range parts {
				if err := applyWhere(q, p); err != nil {
					return err
				}
			}
		case "objectId":
			var id string
			if json.Unmarshal(v, &id) == nil {
				q.IDs = append(q.IDs, id)
				continue
			}
			var cond struct {
				In []string `json:"$in"`
			}
			if err := json.Unmarshal(v, &cond); err != nil || cond.In == nil {
				return realtime.ErrConvQueryFailed.WithDetail("unsupported objectId condition")
			}
			if len(cond.In) > 1000 {
				return realtime.ErrConvQueryFailed.WithDetail("at most 1000 ids")
			}
			q.IDs = append(q.IDs, cond.In...)
		case "m":
			var id string
			if json.Unmarshal(v, &id) == nil {
				q.Member = id
				continue
			}
			var cond struct {
				All  []string `json:"$all"`
				In   []string `json:"$in"`
				Size *int     `json:"$size"`
			}
			if err := json.Unmarshal(v, &cond); err != nil {
				return realtime.ErrConvQueryFailed.WithDetail("unsupported m condition")
			}
			q.AllMembers = append(q.AllMembers, cond.All...)
			if len(cond.In) == 1 {
				q.Member = cond.In[0]
			} else if len(cond.In) > 1 {
				return realtime.ErrConvQueryFailed.WithDetail("m $in with several ids is not supported")
			}
			if cond.Size != nil {
				q.MemberCount = *cond.Size
			}
		case "tr", "transient":
			var b bool
			if json.Unmarshal(v, &b) != nil {
				return realtime.ErrConvQueryFailed.WithDetail("tr must be a boolean")
			}
			q.Transient = &b
		case "sys", "system":
			var b bool
			if json.Unmarshal(v, &b) != nil {
				return realtime.ErrConvQueryFailed.WithDetail("sys must be a boolean")
			}
			q.System = &b
		default:
			return realtime.ErrConvQueryFailed.WithDetail("unsupported query field %q", k)
		}
	}
	return nil
}

// convJSON is a conversation as the SDK's query results carry it.
func convJSON(c *realtime.Conversation, compact bool, now time.Time) map[string]any {
	o := map[string]any{}
	if len(c.Attrs) > 0 && !bytes.Equal(c.Attrs, []byte("null")) {
		_ = json.Unmarshal(c.Attrs, &o)
	}
	o["objectId"] = c.ID
	o["c"] = c.Creator
	o["tr"] = c.Transient
	o["sys"] = c.System
	o["unique"] = c.Unique
	o["name"] = c.Name
	o["createdAt"] = isoTime(c.CreatedAt)
	o["updatedAt"] = isoTime(c.UpdatedAt)
	o["mu"] = nonNil(c.Muted)
	if !compact {
		o["m"] = nonNil(c.Members)
	}
	if c.Temporary && !c.ExpiresAt.IsZero() {
		o["ttl"] = max(0, int(c.ExpiresAt.Sub(now)/time.Second))
	}
	if m := c.LastMessage; m != nil {
		o["lm"] = map[string]any{"__type": "Date", "iso": isoTime(time.UnixMilli(m.Timestamp))}
		o["msg"] = m.Data
		o["msg_mid"] = m.ID
		o["msg_from"] = m.From
		o["msg_timestamp"] = m.Timestamp
		if m.PatchTimestamp > 0 {
			o["patch_timestamp"] = m.PatchTimestamp
		}
	}
	return o
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
