package hub

import (
	"context"
	"maps"
	"time"

	"google.golang.org/protobuf/proto"

	realtime "github.com/leanhub/realtime"
	"github.com/leanhub/realtime/internal/wire"
)

// Moderation, as in LeanCloud's "permissions and blacklists": member roles
// (the creator is the Owner; Managers are appointed), silencing members
// ("shutup": they still receive, they cannot send) and the conversation's
// blacklist (blocked clients are removed and cannot be added again).
//
// Who may: the Owner and Managers silence, block and change roles; a
// moderator acts only on members it outranks (Owner > Manager > Member),
// and nobody acts on the Owner. The application (Go API, REST) may do
// anything. Each operation runs in the conversation's lane, updates the
// engine's snapshot and tells the members: the targets get
// shutuped/unshutuped/blocked/unblocked (a blocked member also gets left),
// the others members_shutuped/..., and a role change goes to every member
// as member_info_changed.

// failure is a refused part of a member operation: LeanCloud answers
// partly failed operations with the ids that succeeded and, per error,
// the ids it refused (configBitmap bit 32).
type failure struct {
	err *realtime.Error
	ids []string
}

// partial is the outcome of an operation on several members.
type partial struct {
	allowed []string
	failed  []failure
}

func (p *partial) fail(err *realtime.Error, id string) {
	for i := range p.failed {
		if p.failed[i].err.Code == err.Code {
			p.failed[i].ids = append(p.failed[i].ids, id)
			return
		}
	}
	p.failed = append(p.failed, failure{err: err, ids: []string{id}})
}

func failedPids(fs []failure) []*wire.ErrorCommand {
	out := make([]*wire.ErrorCommand, 0, len(fs))
	for _, f := range fs {
		ec := errorCommand(f.err)
		ec.Pids = f.ids
		out = append(out, ec)
	}
	return out
}

func roleRank(r realtime.MemberRole) int {
	switch r {
	case realtime.RoleOwner:
		return 3
	case realtime.RoleManager:
		return 2
	}
	return 1
}

// mayModerate checks that a may moderate the conversation.
func mayModerate(s *convSnap, a actor) error {
	if a.api {
		return nil
	}
	if !s.isMember(a.client) {
		return realtime.ErrConvMembershipNeeded
	}
	if roleRank(s.conv.RoleOf(a.client)) < roleRank(realtime.RoleManager) {
		return realtime.ErrConvUnauthorized.WithDetail("only the owner and managers may do that")
	}
	return nil
}

// outranks reports whether a may act on target.
func outranks(s *convSnap, a actor, target string) bool {
	if target == s.conv.Creator {
		return false
	}
	return a.api || roleRank(s.conv.RoleOf(a.client)) > roleRank(s.conv.RoleOf(target))
}

// withConv returns a copy of s's conversation for changing.
func (s *convSnap) copyConv() *realtime.Conversation {
	c := *s.conv
	c.Roles = maps.Clone(s.conv.Roles)
	c.Silenced = maps.Clone(s.conv.Silenced)
	return &c
}

// setRole gives target a role (RoleManager or RoleMember).
func (e *engine) setRole(ctx context.Context, a actor, convID, target string, role realtime.MemberRole) error {
	h := e.h
	if role != realtime.RoleManager && role != realtime.RoleMember {
		if role == realtime.RoleOwner {
			return realtime.ErrConvUnauthorized.WithDetail("the owner is the creator; the role cannot be given")
		}
		return realtime.ErrUnknownRole.WithDetail("role %q", role)
	}
	_, err := inLane(ctx, e, convID, func(c *convEntry, s *convSnap) (struct{}, error) {
		if s.conv.Transient || s.conv.System {
			return struct{}{}, realtime.ErrConvNotAllowed.WithDetail("roles are for ordinary conversations")
		}
		if err := mayModerate(s, a); err != nil {
			return struct{}{}, err
		}
		if !s.isMember(target) {
			return struct{}{}, realtime.ErrConvMembershipNeeded.WithDetail("%s is not a member", target)
		}
		if !outranks(s, a, target) || (!a.api && roleRank(role) >= roleRank(s.conv.RoleOf(a.client))) {
			return struct{}{}, realtime.ErrConvUnauthorized.WithDetail("a role can be changed only by someone above both roles")
		}
		hctx, cancel := context.WithTimeout(h.ctx, storeTimeout)
		defer cancel()
		if err := h.store.SetRole(hctx, convID, target, role); err != nil {
			return struct{}{}, err
		}
		conv := s.copyConv()
		if conv.Roles == nil {
			conv.Roles = map[string]realtime.MemberRole{}
		}
		if role == realtime.RoleMember {
			delete(conv.Roles, target)
		} else {
			conv.Roles[target] = role
		}
		e.changed(c, newSnap(conv))
		h.tell(&wire.GenericCommand{Cmd: wire.CommandType_conv.Enum(), Op: wire.OpType_member_info_changed.Enum(),
			ConvMessage: &wire.ConvCommand{Cid: proto.String(convID), InitBy: proto.String(a.client),
				Info: &wire.ConvMemberInfo{Pid: proto.String(target), Role: proto.String(string(role))}}},
			audience{clients: conv.Members}, nil)
		return struct{}{}, nil
	})
	return err
}

// silence stops (on) or lets again (!on) ids send in a conversation,
// until `until` (zero: until lifted).
func (e *engine) silence(ctx context.Context, a actor, convID string, ids []string, until time.Time, on bool) (partial, error) {
	h := e.h
	ids = dedupSorted(ids)
	if err := h.checkTargets(ids); err != nil {
		return partial{}, err
	}
	return inLane(ctx, e, convID, func(c *convEntry, s *convSnap) (partial, error) {
		if err := mayModerate(s, a); err != nil {
			return partial{}, err
		}
		var p partial
		for _, id := range ids {
			if !outranks(s, a, id) {
				p.fail(realtime.ErrConvUnauthorized.WithDetail("cannot silence the owner or someone of the same role"), id)
				continue
			}
			p.allowed = append(p.allowed, id)
		}
		if len(p.allowed) == 0 {
			return p, nil
		}
		hctx, cancel := context.WithTimeout(h.ctx, storeTimeout)
		defer cancel()
		if on {
			if len(s.conv.Silenced)+len(p.allowed) > maxSilenced {
				return partial{}, realtime.ErrSilencedListFull.WithDetail("at most %d silenced members", maxSilenced)
			}
			if err := h.store.Silence(hctx, convID, p.allowed, until); err != nil {
				return partial{}, err
			}
		} else if err := h.store.Unsilence(hctx, convID, p.allowed); err != nil {
			return partial{}, err
		}
		conv := s.copyConv()
		if conv.Silenced == nil {
			conv.Silenced = map[string]time.Time{}
		}
		for _, id := range p.allowed {
			if on {
				conv.Silenced[id] = until
			} else {
				delete(conv.Silenced, id)
			}
		}
		e.changed(c, newSnap(conv))
		self, others := wire.OpType_shutuped, wire.OpType_members_shutuped
		if !on {
			self, others = wire.OpType_unshutuped, wire.OpType_members_unshutuped
		}
		h.notifyTargets(convID, a.client, self, others, p.allowed, conv.Members)
		return p, nil
	})
}

// maxSilenced bounds a conversation's silenced members (LeanCloud: 500).
const maxSilenced = 500

// maxBlocked bounds a conversation's blacklist (LeanCloud: 500 for
// ordinary conversations).
const maxBlocked = 10_000

// block puts ids on the conversation's blacklist (on), removing those who
// are members, or takes them off (!on).
func (e *engine) block(ctx context.Context, a actor, convID string, ids []string, on bool) (partial, error) {
	h := e.h
	ids = dedupSorted(ids)
	if err := h.checkTargets(ids); err != nil {
		return partial{}, err
	}
	return inLane(ctx, e, convID, func(c *convEntry, s *convSnap) (partial, error) {
		if err := mayModerate(s, a); err != nil {
			return partial{}, err
		}
		var p partial
		for _, id := range ids {
			if on && !outranks(s, a, id) {
				p.fail(realtime.ErrConvUnauthorized.WithDetail("cannot block the owner or someone of the same role"), id)
				continue
			}
			p.allowed = append(p.allowed, id)
		}
		if len(p.allowed) == 0 {
			return p, nil
		}
		hctx, cancel := context.WithTimeout(h.ctx, storeTimeout)
		defer cancel()
		if !on {
			if err := h.store.Unblock(hctx, convID, p.allowed); err != nil {
				return partial{}, err
			}
			h.notifyTargets(convID, a.client, wire.OpType_unblocked, wire.OpType_members_unblocked, p.allowed, s.conv.Members)
			return p, nil
		}
		if listed, err := h.store.ListBlocked(hctx, convID, "", maxBlocked); err != nil {
			return partial{}, err
		} else if len(listed)+len(p.allowed) > maxBlocked {
			return partial{}, realtime.ErrBlacklistFull.WithDetail("at most %d blocked clients", maxBlocked)
		}
		updated, removed, err := h.store.Block(hctx, convID, p.allowed)
		if err != nil {
			c.snap.Store(nil)
			return partial{}, err
		}
		e.changed(c, newSnap(updated))
		if s.conv.Transient {
			h.rooms.leave(convID, p.allowed...)
		}
		h.notifyTargets(convID, a.client, wire.OpType_blocked, wire.OpType_members_blocked, p.allowed, updated.Members)
		if len(removed) > 0 {
			// The SDK's blocked handler does not drop the members from
			// its copy: tell it they left too.
			h.notifyLeft(convID, a.client, removed, updated.Members)
			h.convAfter(&realtime.ConversationEvent{Op: realtime.ConvRemove, InitBy: a.client, Conversation: updated, Members: removed})
		}
		return p, nil
	})
}

// checkTargets validates the client ids of a moderation command.
func (h *Hub) checkTargets(ids []string) error {
	if len(ids) == 0 {
		return realtime.ErrInvalidCommand.WithDetail("no client ids")
	}
	if len(ids) > h.cfg.Limits.MaxMembers {
		return realtime.ErrInvalidCommand.WithDetail("at most %d client ids", h.cfg.Limits.MaxMembers)
	}
	for _, id := range ids {
		if !validClientID(id) {
			return realtime.ErrInvalidMessage.WithDetail("invalid client id %q", id)
		}
	}
	return nil
}

// notifyTargets tells the targets of a moderation op (op self) and the
// other members (op others, with the targets' ids).
func (h *Hub) notifyTargets(convID, initBy string, self, others wire.OpType, targets, members []string) {
	h.tell(&wire.GenericCommand{Cmd: wire.CommandType_conv.Enum(), Op: self.Enum(),
		ConvMessage: &wire.ConvCommand{Cid: proto.String(convID), InitBy: proto.String(initBy)}},
		audience{clients: targets}, nil)
	rest := make([]string, 0, len(members))
	for _, m := range members {
		if !contains(targets, m) {
			rest = append(rest, m)
		}
	}
	h.tell(&wire.GenericCommand{Cmd: wire.CommandType_conv.Enum(), Op: others.Enum(),
		ConvMessage: &wire.ConvCommand{Cid: proto.String(convID), InitBy: proto.String(initBy), M: targets}},
		audience{clients: rest}, nil)
}

// convMemberInfoUpdate: conv member_info_update {cid, targetClientId, info{pid, role}}.
func (h *Hub) convMemberInfoUpdate(ctx context.Context, s *session, cm *wire.ConvCommand) (*wire.GenericCommand, error) {
	target := cm.GetTargetClientId()
	if target == "" {
		target = cm.GetInfo().GetPid()
	}
	if cm.GetCid() == "" || target == "" {
		return nil, realtime.ErrInvalidCommand.WithDetail("cid and the member are required")
	}
	if err := h.eng.setRole(ctx, actor{from: s, client: s.clientID}, cm.GetCid(), target, realtime.MemberRole(cm.GetInfo().GetRole())); err != nil {
		return nil, err
	}
	return &wire.GenericCommand{Op: wire.OpType_member_info_updated.Enum(), ConvMessage: &wire.ConvCommand{Cid: proto.String(cm.GetCid())}}, nil
}

// convShutup: conv add_shutup / remove_shutup {cid, m}.
func (h *Hub) convShutup(ctx context.Context, s *session, cm *wire.ConvCommand, on bool) (*wire.GenericCommand, error) {
	if cm.GetCid() == "" {
		return nil, realtime.ErrConvNotFound.WithDetail("missing conversation id")
	}
	p, err := h.eng.silence(ctx, actor{from: s, client: s.clientID}, cm.GetCid(), cm.GetM(), time.Time{}, on)
	if err != nil {
		return nil, err
	}
	op := wire.OpType_shutup_added
	if !on {
		op = wire.OpType_shutup_removed
	}
	return &wire.GenericCommand{Op: op.Enum(), ConvMessage: &wire.ConvCommand{Cid: proto.String(cm.GetCid()),
		AllowedPids: p.allowed, FailedPids: failedPids(p.failed)}}, nil
}

// convQueryShutup: conv query_shutup {cid, limit, next}.
func (h *Hub) convQueryShutup(ctx context.Context, s *session, cm *wire.ConvCommand) (*wire.GenericCommand, error) {
	snap, err := h.memberConv(ctx, s, cm, realtime.ErrConvMembershipNeeded)
	if err != nil {
		return nil, err
	}
	ids, next, err := h.page(ctx, cm.GetLimit(), cm.GetNext(), func(after string, limit int) ([]string, error) {
		return h.store.ListSilenced(ctx, snap.conv.ID, after, limit)
	})
	if err != nil {
		return nil, err
	}
	return &wire.GenericCommand{Op: wire.OpType_shutup_result.Enum(), ConvMessage: &wire.ConvCommand{
		Cid: proto.String(snap.conv.ID), M: ids, Next: proto.String(next)}}, nil
}

// page reads one page of an id list: limit (default 10, at most 100) ids
// after next; the returned next is "" on the last page.
func (h *Hub) page(ctx context.Context, limit int32, next string, list func(after string, limit int) ([]string, error)) ([]string, string, error) {
	n := int(limit)
	if n <= 0 {
		n = 10
	}
	n = min(n, 100)
	ids, err := list(next, n+1)
	if err != nil {
		return nil, "", err
	}
	if len(ids) > n {
		return ids[:n], ids[n-1], nil
	}
	return ids, "", nil
}

// cmdBlacklist handles the blacklist command: block, unblock, query.
func (h *Hub) cmdBlacklist(s *session, req *wire.GenericCommand) {
	bm := req.GetBlacklistMessage()
	if bm == nil || bm.GetSrcCid() == "" {
		s.c.sendError(req, realtime.ErrInvalidCommand.WithDetail("blacklist needs srcCid"))
		return
	}
	op := req.GetOp()
	if op != wire.OpType_block && op != wire.OpType_unblock && op != wire.OpType_query {
		s.c.sendError(req, realtime.ErrInvalidCommand.WithDetail("unsupported blacklist op %s", op))
		return
	}
	fam := famConv
	if op == wire.OpType_query {
		fam = famQuery
	}
	if !h.limits.allow(s.clientID, fam, 1) {
		s.c.sendError(req, realtime.ErrRateLimited)
		return
	}
	s.async(func() {
		ctx, cancel := context.WithTimeout(h.ctx, storeTimeout)
		defer cancel()
		cid := bm.GetSrcCid()
		if op == wire.OpType_query {
			snap, err := h.memberConv(ctx, s, &wire.ConvCommand{Cid: proto.String(cid)}, realtime.ErrConvMembershipNeeded)
			if err != nil {
				s.c.sendError(req, err)
				return
			}
			ids, next, err := h.page(ctx, bm.GetLimit(), bm.GetNext(), func(after string, limit int) ([]string, error) {
				return h.store.ListBlocked(ctx, snap.conv.ID, after, limit)
			})
			if err != nil {
				s.c.sendError(req, err)
				return
			}
			s.c.reply(req, &wire.GenericCommand{Op: wire.OpType_query_result.Enum(), BlacklistMessage: &wire.BlacklistCommand{
				SrcCid: proto.String(cid), BlockedPids: ids, Next: proto.String(next)}})
			return
		}
		on := op == wire.OpType_block
		if err := h.checkBlacklistSignature(s, cid, bm, on); err != nil {
			s.c.sendError(req, err)
			return
		}
		p, err := h.eng.block(ctx, actor{from: s, client: s.clientID}, cid, bm.GetToPids(), on)
		if err != nil {
			s.c.sendError(req, err)
			return
		}
		res := wire.OpType_blocked
		if !on {
			res = wire.OpType_unblocked
		}
		s.c.reply(req, &wire.GenericCommand{Op: res.Enum(), BlacklistMessage: &wire.BlacklistCommand{
			SrcCid: proto.String(cid), AllowedPids: p.allowed, FailedPids: failedPids(p.failed)}})
	})
}
