package hub

import (
	"context"
	"encoding/json"
	"errors"
	"sort"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	realtime "github.com/leanhub/realtime"
	"github.com/leanhub/realtime/internal/wire"
)

// Conversation operations: create, change members, update. Each is an
// engine operation the websocket commands, the Go API (and later REST and
// other nodes) share; member changes and updates run in the
// conversation's lane, so they are ordered with its messages: a message
// sent after a removal returned never reaches the removed member.

// actor says who asks for an operation.
type actor struct {
	from   *session // the asking session; nil for the Go API
	client string   // the client id acting ("" for the application itself)
	// api is the application (Go API, REST with the master key): client
	// policies (MemberChange, membership of the asker) do not apply.
	api bool
}

// createConversation stores a new conversation (or finds the unique one
// with the same members), runs the start hooks and tells the members.
func (e *engine) createConversation(ctx context.Context, a actor, c *realtime.Conversation) (*realtime.Conversation, bool, error) {
	h := e.h
	members := dedupSorted(c.Members)
	if a.client != "" && !contains(members, a.client) && !c.Transient && !c.System {
		members = dedupSorted(append(members, a.client))
	}
	for _, m := range members {
		if !validClientID(m) {
			return nil, false, realtime.ErrInvalidMessage.WithDetail("invalid member id %q", m)
		}
	}
	if limit := h.cfg.Limits.MaxMembers; len(members) > limit && !(c.System && len(members) <= h.cfg.Limits.MaxSubscribers) {
		return nil, false, realtime.ErrConvFull.WithDetail("at most %d members", limit)
	}
	if c.System && !a.api {
		return nil, false, realtime.ErrConvNotAllowed.WithDetail("service conversations are created by the application")
	}
	conv := *c
	conv.Members = members
	if conv.Creator == "" {
		conv.Creator = a.client
	}
	if conv.Transient {
		conv.Members = nil
		conv.Unique = false
	}
	if conv.Temporary {
		conv.Unique = false
		if conv.ExpiresAt.IsZero() {
			conv.ExpiresAt = h.now().Add(24 * time.Hour)
		}
	}
	ev := &realtime.ConversationEvent{Op: realtime.ConvStart, InitBy: a.client, Members: members, Name: conv.Name, Attrs: conv.Attrs}
	if err := h.convBefore(ctx, ev); err != nil {
		return nil, false, err
	}
	created, isNew, err := h.store.CreateConversation(ctx, &conv)
	if err != nil {
		return nil, false, err
	}
	entry := e.entry(created.ID)
	snap := newSnap(created)
	entry.run(func() {
		e.setSnap(entry, snap)
		entry.noteHead(created)
	})
	if created.Transient && a.client != "" {
		h.rooms.join(created.ID, a.client)
	}
	if isNew && !created.Transient {
		h.notifyJoined(created.ID, a.client, created.Members, created.Members)
	}
	ev.Conversation = created
	h.convAfter(ev)
	return created, isNew, nil
}

// notifyJoined tells added members they joined (INVITED) and all members
// who joined (MEMBERS_JOINED).
func (h *Hub) notifyJoined(convID, initBy string, added, all []string) {
	h.tell(&wire.GenericCommand{Cmd: wire.CommandType_conv.Enum(), Op: wire.OpType_joined.Enum(),
		ConvMessage: &wire.ConvCommand{Cid: proto.String(convID), InitBy: proto.String(initBy)}},
		audience{clients: added, skip: initBy}, nil)
	h.tell(&wire.GenericCommand{Cmd: wire.CommandType_conv.Enum(), Op: wire.OpType_members_joined.Enum(),
		ConvMessage: &wire.ConvCommand{Cid: proto.String(convID), M: added, InitBy: proto.String(initBy)}},
		audience{clients: all}, nil)
}

// notifyLeft tells removed members they left (KICKED) and the remaining
// members who left (MEMBERS_LEFT).
func (h *Hub) notifyLeft(convID, initBy string, removed, remaining []string) {
	h.tell(&wire.GenericCommand{Cmd: wire.CommandType_conv.Enum(), Op: wire.OpType_left.Enum(),
		ConvMessage: &wire.ConvCommand{Cid: proto.String(convID), InitBy: proto.String(initBy)}},
		audience{clients: removed, skip: initBy}, nil)
	h.tell(&wire.GenericCommand{Cmd: wire.CommandType_conv.Enum(), Op: wire.OpType_members_left.Enum(),
		ConvMessage: &wire.ConvCommand{Cid: proto.String(convID), M: removed, InitBy: proto.String(initBy)}},
		audience{clients: remaining}, nil)
}

// inLane runs op in a conversation's lane with its snapshot and waits for
// its result (or ctx).
func inLane[T any](ctx context.Context, e *engine, convID string, op func(c *convEntry, s *convSnap) (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	err := e.do(convID, func(c *convEntry, s *convSnap, err error) {
		if err != nil {
			var zero T
			ch <- result{zero, err}
			return
		}
		v, err := op(c, s)
		ch <- result{v, err}
	})
	if err != nil {
		var zero T
		return zero, err
	}
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}

// membersChange is the result of a member change.
type membersChange struct {
	conv    *realtime.Conversation
	changed []string  // the ids actually added or removed
	refused []failure // ids that could not be added (blocked)
}

// changeMembers adds ids to, or removes them from, a conversation. For a
// chat room, joining and leaving are presence kept in memory, and each
// client does it for itself.
func (e *engine) changeMembers(ctx context.Context, a actor, convID string, ids []string, add bool) (membersChange, error) {
	h := e.h
	ids = dedupSorted(ids)
	if len(ids) == 0 {
		if a.client == "" {
			return membersChange{}, realtime.ErrInvalidCommand.WithDetail("no members given")
		}
		ids = []string{a.client}
	}
	if len(ids) > max(h.cfg.Limits.MaxMembers, h.cfg.Limits.MaxSubscribers) {
		return membersChange{}, realtime.ErrConvFull.WithDetail("at most %d members", h.cfg.Limits.MaxMembers)
	}
	for _, m := range ids {
		if !validClientID(m) {
			return membersChange{}, realtime.ErrInvalidMessage.WithDetail("invalid member id %q", m)
		}
	}
	return inLane(ctx, e, convID, func(c *convEntry, s *convSnap) (membersChange, error) {
		conv := s.conv
		self := len(ids) == 1 && ids[0] == a.client
		var refused []failure
		if add {
			// Blocked clients cannot join or be added, whoever asks.
			bctx, cancel := context.WithTimeout(h.ctx, storeTimeout)
			blocked, err := h.store.Blocked(bctx, conv.ID, ids)
			cancel()
			if err != nil {
				return membersChange{}, err
			}
			if len(blocked) > 0 {
				refused = []failure{{err: realtime.ErrBlockedByConv, ids: blocked}}
				kept := ids[:0:0]
				for _, id := range ids {
					if !contains(blocked, id) {
						kept = append(kept, id)
					}
				}
				ids = kept
				if len(ids) == 0 {
					return membersChange{conv: conv, refused: refused}, nil
				}
			}
		}
		if conv.Transient {
			// Chat rooms: no one adds or kicks others (which would also
			// let a client fill the hub's memory with ids).
			if !self && !a.api {
				return membersChange{}, realtime.ErrConvNotAllowed.WithDetail("in a chat room clients join and leave themselves")
			}
			if add {
				h.rooms.join(conv.ID, ids...)
			} else {
				h.rooms.leave(conv.ID, ids...)
			}
			return membersChange{conv: conv, changed: ids, refused: refused}, nil
		}
		if conv.System && !self && !a.api {
			// Service conversations: clients subscribe and unsubscribe
			// themselves; only the application adds others.
			return membersChange{}, realtime.ErrConvNotAllowed.WithDetail("clients subscribe to a service conversation themselves")
		}
		if !a.api && !conv.System {
			if !self {
				if !s.isMember(a.client) {
					return membersChange{}, realtime.ErrConvUpdateRejected
				}
				switch h.cfg.MemberChange {
				case CreatorMayChange:
					if conv.Creator != a.client {
						return membersChange{}, realtime.ErrConvNotAllowed.WithDetail("only the creator may change members")
					}
				case NobodyMayChange:
					return membersChange{}, realtime.ErrConvNotAllowed.WithDetail("members cannot be changed by clients")
				}
			} else if add && !s.isMember(a.client) && (h.cfg.MemberChange != MembersMayChange || !h.mayJoin(s, a.client)) {
				return membersChange{}, realtime.ErrConvNotAllowed.WithDetail("joining is not allowed: a member must add you")
			}
		}
		op := realtime.ConvAdd
		if !add {
			op = realtime.ConvRemove
		}
		if add {
			newMembers := 0
			for _, id := range ids {
				if !s.isMember(id) {
					newMembers++
				}
			}
			limit := h.cfg.Limits.MaxMembers
			if conv.System {
				limit = h.cfg.Limits.MaxSubscribers
			}
			if len(conv.Members)+newMembers > limit {
				return membersChange{}, realtime.ErrConvFull.WithDetail("at most %d members", limit)
			}
		}
		ev := &realtime.ConversationEvent{Op: op, InitBy: a.client, Conversation: conv, Members: ids}
		hctx, cancel := context.WithTimeout(h.ctx, storeTimeout)
		defer cancel()
		if err := h.convBefore(hctx, ev); err != nil {
			return membersChange{}, err
		}
		var updated *realtime.Conversation
		var changed []string
		var err error
		if add {
			updated, changed, err = h.store.AddMembers(hctx, conv.ID, ids)
		} else {
			updated, changed, err = h.store.RemoveMembers(hctx, conv.ID, ids)
		}
		if err != nil {
			// The store may have seen a change this hub did not make:
			// read it again next time.
			c.snap.Store(nil)
			return membersChange{}, err
		}
		e.changed(c, newSnap(updated))
		c.noteHead(updated)
		if len(changed) > 0 && !conv.System { // subscriptions notify nobody
			if add {
				h.notifyJoined(conv.ID, a.client, changed, updated.Members)
			} else {
				h.notifyLeft(conv.ID, a.client, changed, updated.Members)
			}
		}
		ev.Conversation = updated
		ev.Members = changed
		h.convAfter(ev)
		return membersChange{conv: updated, changed: changed, refused: refused}, nil
	})
}

// updateConversation changes a conversation's name and attributes (or
// mutes it for some members) and tells the members.
func (e *engine) updateConversation(ctx context.Context, a actor, u realtime.ConversationUpdate, rawAttr string) (*realtime.Conversation, error) {
	h := e.h
	return inLane(ctx, e, u.ID, func(c *convEntry, s *convSnap) (*realtime.Conversation, error) {
		conv := s.conv
		if !a.api && !s.isMember(a.client) && !conv.Transient {
			return nil, realtime.ErrConvUpdateRejected
		}
		hctx, cancel := context.WithTimeout(h.ctx, storeTimeout)
		defer cancel()
		notify := u.Name != nil || len(u.Attrs) > 0
		if notify {
			ev := &realtime.ConversationEvent{Op: realtime.ConvUpdate, InitBy: a.client, Conversation: conv, Attrs: u.Attrs}
			if u.Name != nil {
				ev.Name = *u.Name
			}
			if err := h.convBefore(hctx, ev); err != nil {
				return nil, err
			}
		}
		updated, err := h.store.UpdateConversation(hctx, u)
		if err != nil {
			return nil, err
		}
		e.changed(c, newSnap(updated))
		if notify {
			if rawAttr == "" {
				rawAttr = updateAttrJSON(u)
			}
			h.tell(&wire.GenericCommand{Cmd: wire.CommandType_conv.Enum(), Op: wire.OpType_updated.Enum(), ConvMessage: &wire.ConvCommand{
				Cid: proto.String(conv.ID), InitBy: proto.String(a.client), Udate: proto.String(isoTime(updated.UpdatedAt)),
				Attr:         &wire.JsonObjectMessage{Data: proto.String(rawAttr)},
				AttrModified: &wire.JsonObjectMessage{Data: proto.String(rawAttr)},
			}}, audience{clients: updated.Members}, a.from)
		}
		return updated, nil
	})
}

// deleteConversation removes a conversation in its lane (so it is ordered
// with its messages: a send queued before it is stored or refused, one
// after it is refused), forgets it here and on the other nodes.
func (e *engine) deleteConversation(ctx context.Context, convID string) error {
	h := e.h
	_, err := inLane(ctx, e, convID, func(c *convEntry, s *convSnap) (struct{}, error) {
		sctx, cancel := context.WithTimeout(h.ctx, storeTimeout)
		defer cancel()
		if err := h.store.DeleteConversation(sctx, convID); err != nil {
			return struct{}{}, err
		}
		c.snap.Store(nil)
		if s.conv.Transient {
			h.rooms.clear(convID)
		}
		if h.cl != nil {
			h.cl.publishChanged(convID)
		}
		return struct{}{}, nil
	})
	if err == nil {
		if c := e.lookup(convID); c != nil {
			e.forgetIfIdle(c)
		}
	}
	return err
}

// deleteMessage removes a stored message in its conversation's lane.
func (e *engine) deleteMessage(ctx context.Context, convID, msgID string) error {
	h := e.h
	_, err := inLane(ctx, e, convID, func(c *convEntry, s *convSnap) (struct{}, error) {
		sctx, cancel := context.WithTimeout(h.ctx, storeTimeout)
		defer cancel()
		return struct{}{}, h.store.DeleteMessage(sctx, convID, msgID)
	})
	if errors.Is(err, realtime.ErrConvNotFound) {
		err = realtime.ErrMessageNotFound.WithDetail("no conversation %s", convID)
	}
	return err
}

// updateAttrJSON is the attr JSON of an update made through the Go API.
func updateAttrJSON(u realtime.ConversationUpdate) string {
	m := map[string]json.RawMessage{}
	if len(u.Attrs) > 0 {
		var attrs map[string]json.RawMessage
		if json.Unmarshal(u.Attrs, &attrs) == nil {
			for k, v := range attrs {
				m["attr."+k] = v
			}
		}
	}
	if u.Name != nil {
		b, _ := json.Marshal(*u.Name)
		m["name"] = b
	}
	b, _ := json.Marshal(m)
	return string(b)
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
